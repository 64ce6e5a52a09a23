package namespace

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/util/dryrun"

	"github.com/warren-dev/warren/apiserver/registry"
)

// REST is the storage of namespaces.
type REST struct {
	*registry.REST
	// defaults is nil when new namespaces start empty.
	defaults *defaults
	// active, if set, learns of each namespace created, Active.
	active func(ctx context.Context, name string)
}

// FinalizeREST serves namespaces/finalize, which changes spec.finalizers only.
type FinalizeREST struct {
	store *genericregistry.Store
}

// NewREST returns the storage of namespaces and of their finalize subresource.
// created, if set, runs after a namespace is created, with the request's
// context; it makes what every namespace starts with, and must be idempotent:
// when it fails, RetryDefaults runs it again.
func NewREST(getter generic.RESTOptionsGetter, created func(ctx context.Context, ns *corev1.Namespace) error) (*REST, *FinalizeREST, error) {
	r := registry.Resource{
		GroupResource: corev1.Resource("namespaces"),
		SingularName:  "namespace",
		New:           func() runtime.Object { return &corev1.Namespace{} },
		NewList:       func() runtime.Object { return &corev1.NamespaceList{} },
		Strategy:      strategy(),
		ShortNames:    []string{"ns"},
		Table: registry.Table{
			Columns: []metav1.TableColumnDefinition{registry.Column("Status", "string", "The status of the namespace")},
			Cells:   func(obj runtime.Object) []any { return []any{string(obj.(*corev1.Namespace).Status.Phase)} },
		},
	}
	main, err := registry.NewREST(getter, r)
	if err != nil {
		return nil, nil, err
	}
	namespaces := &REST{REST: main}
	if created != nil {
		namespaces.defaults = newDefaults(created, func(ctx context.Context, name string) (*corev1.Namespace, error) {
			obj, err := main.Get(genericapirequest.WithNamespace(ctx, ""), name, &metav1.GetOptions{})
			if err != nil {
				return nil, err
			}
			return obj.(*corev1.Namespace), nil
		})
	}
	main.BeginCreate = func(ctx context.Context, obj runtime.Object, opts *metav1.CreateOptions) (genericregistry.FinishFunc, error) {
		if dryrun.IsDryRun(opts.DryRun) {
			return func(context.Context, bool) {}, nil
		}
		ns := obj.(*corev1.Namespace)
		return func(ctx context.Context, success bool) {
			if !success {
				return
			}
			if namespaces.active != nil {
				namespaces.active(ctx, ns.Name)
			}
			if namespaces.defaults != nil {
				namespaces.defaults.created(ctx, ns)
			}
		}, nil
	}
	finalize := *main.Store
	finalize.UpdateStrategy = finalizeStrategy()
	return namespaces, &FinalizeREST{store: &finalize}, nil
}

// RetryDefaults makes the defaults of new namespaces whose create could not
// make them, until ctx ends.
func (r *REST) RetryDefaults(ctx context.Context) {
	if r.defaults != nil {
		r.defaults.run(ctx)
	}
}

// Delete marks a namespace Terminating; it is removed once its finalizers are.
func (r *REST) Delete(ctx context.Context, name string, deleteValidation rest.ValidateObjectFunc, options *metav1.DeleteOptions) (runtime.Object, bool, error) {
	obj, err := r.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		return nil, false, err
	}
	ns := obj.(*corev1.Namespace)
	if options == nil {
		options = metav1.NewDeleteOptions(0)
	}
	pre := &storage.Preconditions{UID: &ns.UID, ResourceVersion: &ns.ResourceVersion}
	if p := options.Preconditions; p != nil {
		if p.UID != nil && *p.UID != ns.UID {
			return nil, false, apierrors.NewConflict(corev1.Resource("namespaces"), name,
				fmt.Errorf("precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, ns.UID))
		}
		if p.ResourceVersion != nil && *p.ResourceVersion != ns.ResourceVersion {
			return nil, false, apierrors.NewConflict(corev1.Resource("namespaces"), name,
				fmt.Errorf("precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, ns.ResourceVersion))
		}
	}
	if ns.DeletionTimestamp == nil {
		if deleteValidation != nil {
			if err := deleteValidation(ctx, ns); err != nil {
				return nil, false, err
			}
		}
		key, err := r.KeyFunc(ctx, name)
		if err != nil {
			return nil, false, err
		}
		out := &corev1.Namespace{}
		err = r.Storage.GuaranteedUpdate(ctx, key, out, false, pre, func(existing runtime.Object, _ storage.ResponseMeta) (runtime.Object, *uint64, error) {
			ns := existing.(*corev1.Namespace).DeepCopy()
			if ns.DeletionTimestamp == nil {
				now := metav1.Now()
				ns.DeletionTimestamp = &now
				ns.DeletionGracePeriodSeconds = new(int64)
			}
			ns.Status.Phase = corev1.NamespaceTerminating
			return ns, nil, nil
		}, dryrun.IsDryRun(options.DryRun), nil)
		if err != nil {
			return nil, false, err
		}
		ns = out
	}
	if len(ns.Spec.Finalizers) > 0 {
		return ns, false, nil
	}
	return r.REST.Delete(ctx, name, deleteValidation, options)
}

func (r *FinalizeREST) New() runtime.Object { return &corev1.Namespace{} }

func (r *FinalizeREST) Destroy() {}

// Update replaces spec.finalizers of a namespace.
func (r *FinalizeREST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo, createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc, forceAllowCreate bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	return r.store.Update(ctx, name, objInfo, createValidation, updateValidation, false, options)
}

// Terminating reports whether ns is being deleted and still holds the
// "kubernetes" finalizer: what the namespace controller empties.
func Terminating(ns *corev1.Namespace) bool {
	return ns.Status.Phase == corev1.NamespaceTerminating && hasFinalizer(ns)
}

// WithoutFinalizer returns ns without the "kubernetes" finalizer.
func WithoutFinalizer(ns *corev1.Namespace) *corev1.Namespace {
	out := ns.DeepCopy()
	out.Spec.Finalizers = nil
	for _, f := range ns.Spec.Finalizers {
		if f != corev1.FinalizerKubernetes {
			out.Spec.Finalizers = append(out.Spec.Finalizers, f)
		}
	}
	return out
}
