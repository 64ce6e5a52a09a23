package tenancy

import (
	"context"
	"slices"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/watch"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"

	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"

	"github.com/warren-dev/warren/apiserver/registry"
	"github.com/warren-dev/warren/tenancy"
)

// NewLogicalClusters returns the storage of logical clusters clients are served
// (reads; and creates and deletes to the installation's shards, in group
// tenancy.ShardsGroup, which make and delete the logical clusters of workspaces on
// each other), the store warren writes them through, and a copy of it that
// writes only their status.
func NewLogicalClusters(getter generic.RESTOptionsGetter) (served rest.Storage, store, status *genericregistry.Store, err error) {
	s := registry.NewStrategy(false)
	s.CheckChange = func(obj, old runtime.Object) field.ErrorList {
		lc, prev := obj.(*corev1alpha1.LogicalCluster), old.(*corev1alpha1.LogicalCluster)
		return apivalidation.ValidateImmutableField(lc.Spec, prev.Spec, field.NewPath("spec"))
	}
	store, err = registry.NewStore(getter, registry.Resource{
		GroupResource: corev1alpha1.SchemeGroupVersion.WithResource("logicalclusters").GroupResource(),
		SingularName:  "logicalcluster",
		New:           func() runtime.Object { return &corev1alpha1.LogicalCluster{} },
		NewList:       func() runtime.Object { return &corev1alpha1.LogicalClusterList{} },
		Strategy:      s,
		Table: registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.Column("Phase", "string", "The current phase (e.g. Scheduling, Initializing, Ready)"),
				registry.Column("URL", "string", "URL to access the logical cluster"),
			},
			Cells: func(obj runtime.Object) []any {
				lc := obj.(*corev1alpha1.LogicalCluster)
				return []any{string(lc.Status.Phase), lc.Status.URL}
			},
		},
	})
	if err != nil {
		return nil, nil, nil, err
	}
	status = registry.StatusOnly(store, s, func(obj, old runtime.Object) {
		lc, prev := obj.(*corev1alpha1.LogicalCluster), old.(*corev1alpha1.LogicalCluster)
		st := lc.Status
		*lc = *prev.DeepCopy()
		lc.Status = st
	})
	return readOnly{store}, store, status, nil
}

// readOnly serves a store's reads, and its creates and deletes to shards.
type readOnly struct {
	store *genericregistry.Store
}

var (
	_ rest.Getter               = readOnly{}
	_ rest.Lister               = readOnly{}
	_ rest.Watcher              = readOnly{}
	_ rest.Creater              = readOnly{}
	_ rest.GracefulDeleter      = readOnly{}
	_ rest.SingularNameProvider = readOnly{}
	_ rest.CategoriesProvider   = readOnly{}
)

// shardsOnly says why the requester of ctx may not make or delete logical
// clusters, or nil if they may: to everyone else, as to a client of kcp,
// they are read-only.
func (r readOnly) shardsOnly(ctx context.Context, verb string) error {
	if u, ok := genericapirequest.UserFrom(ctx); ok && slices.Contains(u.GetGroups(), tenancy.ShardsGroup) {
		return nil
	}
	return apierrors.NewMethodNotSupported(r.store.DefaultQualifiedResource, verb)
}

func (r readOnly) Create(ctx context.Context, obj runtime.Object, validate rest.ValidateObjectFunc, opts *metav1.CreateOptions) (runtime.Object, error) {
	if err := r.shardsOnly(ctx, "create"); err != nil {
		return nil, err
	}
	if name := obj.(*corev1alpha1.LogicalCluster).Name; name != corev1alpha1.LogicalClusterName {
		return nil, apierrors.NewInvalid(corev1alpha1.Kind("LogicalCluster"), name, field.ErrorList{
			field.NotSupported(field.NewPath("metadata", "name"), name, []string{corev1alpha1.LogicalClusterName})})
	}
	return r.store.Create(ctx, obj, validate, opts)
}

func (r readOnly) Delete(ctx context.Context, name string, validate rest.ValidateObjectFunc, opts *metav1.DeleteOptions) (runtime.Object, bool, error) {
	if err := r.shardsOnly(ctx, "delete"); err != nil {
		return nil, false, err
	}
	return r.store.Delete(ctx, name, validate, opts)
}

func (r readOnly) New() runtime.Object     { return r.store.New() }
func (r readOnly) Destroy()                {}
func (r readOnly) NamespaceScoped() bool   { return r.store.NamespaceScoped() }
func (r readOnly) GetSingularName() string { return r.store.GetSingularName() }
func (r readOnly) Categories() []string    { return []string{"kcp"} }
func (r readOnly) NewList() runtime.Object { return r.store.NewList() }
func (r readOnly) Get(ctx context.Context, name string, opts *metav1.GetOptions) (runtime.Object, error) {
	return r.store.Get(ctx, name, opts)
}
func (r readOnly) List(ctx context.Context, opts *metainternalversion.ListOptions) (runtime.Object, error) {
	return r.store.List(ctx, opts)
}
func (r readOnly) Watch(ctx context.Context, opts *metainternalversion.ListOptions) (watch.Interface, error) {
	return r.store.Watch(ctx, opts)
}
func (r readOnly) ConvertToTable(ctx context.Context, obj, opts runtime.Object) (*metav1.Table, error) {
	return r.store.ConvertToTable(ctx, obj, opts)
}
