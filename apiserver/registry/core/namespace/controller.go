package namespace

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/warren-dev/warren/tenancy/clusterwatch"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// Controller empties deleted namespaces, in every cluster, then removes them.
// One controller serves all clusters: it watches Terminating namespaces through
// the wildcard cluster.
type Controller struct {
	namespaces *REST
	finalize   *FinalizeREST
	contents   map[string]Contents
	admission  *Lifecycle
}

// Contents is the store of a namespaced resource, which a deleted namespace is
// emptied of.
type Contents interface {
	rest.CollectionDeleter
	rest.Lister
}

// NewController returns the controller; contents are the stores of every
// namespaced resource, by resource name. Every process's controller tells
// admission of each namespace that begins terminating or goes.
func NewController(namespaces *REST, finalize *FinalizeREST, contents map[string]Contents, admission *Lifecycle) *Controller {
	return &Controller{namespaces: namespaces, finalize: finalize, contents: contents, admission: admission}
}

// Run works until ctx ends. It also retries the defaults of new namespaces
// (REST.RetryDefaults).
func (c *Controller) Run(ctx context.Context) {
	go c.namespaces.RetryDefaults(ctx)
	w := &clusterwatch.Controller{
		Name:     "namespace",
		Source:   c.namespaces,
		Selector: fields.OneTermEqualSelector("status.phase", string(corev1.NamespaceTerminating)),
		Sync:     c.sync,
		Observe: func(ev clusterwatch.Event) {
			if m, err := meta.Accessor(ev.Object); err == nil {
				c.admission.Forget(ev.Cluster, m.GetName())
			}
		},
	}
	w.Run(ctx)
}

// sync empties one Terminating namespace, then removes its finalizer and itself.
// Every step is idempotent: several processes may run it for the same namespace.
func (c *Controller) sync(ctx context.Context, r clusterwatch.Ref) error {
	ctx = genericapirequest.WithNamespace(logicalcluster.WithName(ctx, r.Cluster), "")
	obj, err := c.namespaces.Get(ctx, r.Name, &metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	ns := obj.(*corev1.Namespace)
	if !Terminating(ns) {
		return nil
	}
	inNamespace := genericapirequest.WithNamespace(ctx, r.Name)
	for resource, store := range c.contents {
		if _, err := store.DeleteCollection(inNamespace, rest.ValidateAllObjectFunc, &metav1.DeleteOptions{}, &metainternalversion.ListOptions{}); err != nil {
			return fmt.Errorf("deleting %s: %w", resource, err)
		}
		left, err := store.List(inNamespace, &metainternalversion.ListOptions{Limit: 1})
		if err != nil {
			return fmt.Errorf("listing %s: %w", resource, err)
		}
		if meta.LenList(left) > 0 {
			return fmt.Errorf("%s are left in the namespace", resource)
		}
	}
	_, _, err = c.finalize.Update(ctx, r.Name, rest.DefaultUpdatedObjectInfo(WithoutFinalizer(ns)), rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("removing the finalizer: %w", err)
	}
	if _, _, err := c.namespaces.Delete(ctx, r.Name, rest.ValidateAllObjectFunc, &metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}
