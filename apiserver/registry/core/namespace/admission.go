package namespace

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilcache "k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/apiserver/pkg/admission"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"

	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// immortal namespaces may not be deleted.
var immortal = map[string]bool{metav1.NamespaceDefault: true}

// Lifecycle is the admission of namespaced writes: nothing is created in a
// namespace that does not exist or is being deleted, and "default" is never
// deleted. It reads the namespace of the request's cluster from storage, and
// remembers one found Active for a second at most (a read was a ninth of a
// create's CPU): a namespace's deletion reaches it through the controller's
// watch (Forget) within the watch's lag, and at the latest when the second is
// over — so no process admits a create into a namespace deleted longer ago,
// whatever becomes of its watch.
type Lifecycle struct {
	*admission.Handler
	namespaces *REST
	active     *utilcache.LRUExpireCache
}

// activeFor and actives bound how long and how many Active namespaces are
// remembered.
const (
	activeFor = time.Second
	actives   = 16384
)

// namespaceKey names a namespace across clusters.
type namespaceKey struct {
	cluster logicalcluster.Name
	name    string
}

var _ admission.ValidationInterface = (*Lifecycle)(nil)

// NewLifecycle returns the admission over namespaces' storage, which tells it
// of each namespace created.
func NewLifecycle(namespaces *REST) *Lifecycle {
	l := &Lifecycle{Handler: admission.NewHandler(admission.Create, admission.Delete), namespaces: namespaces, active: utilcache.NewLRUExpireCache(actives)}
	namespaces.active = l.created
	return l
}

// created remembers a namespace just created, Active: the objects made in it
// next are admitted without reading it.
func (l *Lifecycle) created(ctx context.Context, name string) {
	if cluster, ok := logicalcluster.From(ctx); ok {
		l.active.Add(namespaceKey{cluster, name}, struct{}{}, activeFor)
	}
}

// Forget drops what is remembered of a namespace that changed.
func (l *Lifecycle) Forget(cluster logicalcluster.Name, name string) {
	l.active.Remove(namespaceKey{cluster, name})
}

// Validate implements admission.ValidationInterface.
func (l *Lifecycle) Validate(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	isNamespace := a.GetResource().GroupResource() == corev1.Resource("namespaces") && a.GetSubresource() == ""
	if a.GetOperation() == admission.Delete {
		if isNamespace && immortal[a.GetName()] {
			return apierrors.NewForbidden(a.GetResource().GroupResource(), a.GetName(), fmt.Errorf("this namespace may not be deleted"))
		}
		return nil
	}
	if isNamespace || a.GetNamespace() == "" {
		return nil
	}
	cluster, _ := logicalcluster.From(ctx)
	key := namespaceKey{cluster, a.GetNamespace()}
	if _, ok := l.active.Get(key); ok {
		return nil
	}
	obj, err := l.namespaces.Get(genericapirequest.WithNamespace(ctx, ""), a.GetNamespace(), &metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return apierrors.NewNotFound(corev1.Resource("namespaces"), a.GetNamespace())
	}
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	if obj.(*corev1.Namespace).Status.Phase == corev1.NamespaceTerminating {
		return apierrors.NewForbidden(a.GetResource().GroupResource(), a.GetName(),
			fmt.Errorf("unable to create new content in namespace %s because it is being terminated", a.GetNamespace()))
	}
	l.active.Add(key, struct{}{}, activeFor)
	return nil
}
