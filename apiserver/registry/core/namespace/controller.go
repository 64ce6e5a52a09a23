package namespace

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	"github.com/warren-dev/warren/apiserver/logicalcluster"
)

// Controller empties deleted namespaces, in every cluster, then removes them.
// One controller serves all clusters: it watches Terminating namespaces through
// the wildcard cluster and keeps nothing per cluster but queued work.
type Controller struct {
	namespaces *REST
	finalize   *FinalizeREST
	contents   map[string]Contents
	queue      workqueue.TypedRateLimitingInterface[ref]
}

// Contents is the store of a namespaced resource, which a deleted namespace is
// emptied of.
type Contents interface {
	rest.CollectionDeleter
	rest.Lister
}

// ref names a namespace of a cluster.
type ref struct {
	cluster logicalcluster.Name
	name    string
}

// NewController returns the controller; contents are the stores of every
// namespaced resource, by resource name.
func NewController(namespaces *REST, finalize *FinalizeREST, contents map[string]Contents) *Controller {
	return &Controller{
		namespaces: namespaces,
		finalize:   finalize,
		contents:   contents,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[ref](),
			workqueue.TypedRateLimitingQueueConfig[ref]{Name: "namespace"}),
	}
}

// Run works until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	defer c.queue.ShutDown()
	go c.watch(ctx)
	go func() {
		for c.next(ctx) {
		}
	}()
	<-ctx.Done()
}

// watch queues every Terminating namespace, from all clusters, and re-watches
// when the watch ends.
func (c *Controller) watch(ctx context.Context) {
	wildcard := logicalcluster.WithName(ctx, logicalcluster.Wildcard)
	rv := "0"
	for ctx.Err() == nil {
		w, err := c.namespaces.Watch(wildcard, &metainternalversion.ListOptions{
			ResourceVersion: rv,
			FieldSelector:   fields.OneTermEqualSelector("status.phase", string(corev1.NamespaceTerminating)),
		})
		if err != nil {
			klog.FromContext(ctx).Error(err, "Watching namespaces failed; retrying")
			rv = "0"
			sleep(ctx, time.Second)
			continue
		}
		rv = c.consume(ctx, w, rv)
	}
}

// consume queues the namespaces w delivers and returns the revision to resume from.
func (c *Controller) consume(ctx context.Context, w watch.Interface, rv string) string {
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return rv
		case ev, ok := <-w.ResultChan():
			if !ok {
				return rv
			}
			switch ev.Type {
			case watch.Error:
				return "0" // e.g. too old a revision: list again
			case watch.Added, watch.Modified:
				m, err := meta.Accessor(ev.Object)
				if err != nil {
					continue
				}
				rv = m.GetResourceVersion()
				cluster := m.GetAnnotations()[logicalcluster.Annotation]
				c.queue.Add(ref{cluster: logicalcluster.Name(cluster), name: m.GetName()})
			case watch.Bookmark, watch.Deleted:
				if m, err := meta.Accessor(ev.Object); err == nil {
					rv = m.GetResourceVersion()
				}
			}
		}
	}
}

func (c *Controller) next(ctx context.Context) bool {
	r, shutdown := c.queue.Get()
	if shutdown {
		return false
	}
	defer c.queue.Done(r)
	if err := c.sync(ctx, r); err != nil {
		klog.FromContext(ctx).Error(err, "Emptying namespace failed; retrying", "cluster", r.cluster, "namespace", r.name)
		c.queue.AddRateLimited(r)
		return true
	}
	c.queue.Forget(r)
	return true
}

// sync empties one Terminating namespace, then removes its finalizer and itself.
// Every step is idempotent: several processes may run it for the same namespace.
func (c *Controller) sync(ctx context.Context, r ref) error {
	ctx = genericapirequest.WithNamespace(logicalcluster.WithName(ctx, r.cluster), "")
	obj, err := c.namespaces.Get(ctx, r.name, &metav1.GetOptions{})
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
	inNamespace := genericapirequest.WithNamespace(ctx, r.name)
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
	_, _, err = c.finalize.Update(ctx, r.name, rest.DefaultUpdatedObjectInfo(WithoutFinalizer(ns)), rest.ValidateAllObjectFunc, rest.ValidateAllObjectUpdateFunc, false, &metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("removing the finalizer: %w", err)
	}
	if _, _, err := c.namespaces.Delete(ctx, r.name, rest.ValidateAllObjectFunc, &metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
