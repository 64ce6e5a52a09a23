// Package tenancy serves the tenancy APIs: Workspaces and WorkspaceTypes
// (tenancy.warren.dev) and LogicalClusters (core.warren.dev). What a workspace
// is never changes once it is created (its type and cluster); where it is in
// its life (status) is written by warren's lifecycle controller alone, and
// LogicalClusters are read-only to clients.
package tenancy

import (
	"context"
	"maps"
	"slices"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/warren-dev/warren/apiserver/registry"
	"github.com/warren-dev/warren/tenancy"
	corev1alpha1 "github.com/warren-dev/warren/tenancy/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/warren-dev/warren/tenancy/apis/tenancy/v1alpha1"
)

// NewWorkspaces returns the storage of workspaces and a copy of it that writes
// only their status.
func NewWorkspaces(getter generic.RESTOptionsGetter) (*registry.REST, *genericregistry.Store, error) {
	s := registry.NewStrategy(false)
	s.Name = apivalidation.NameIsDNSLabel
	s.Prepare = func(obj, old runtime.Object) {
		ws := obj.(*tenancyv1alpha1.Workspace)
		if old == nil {
			ws.Spec.Cluster = string(tenancy.NewClusterName())
			ws.Status = tenancyv1alpha1.WorkspaceStatus{Phase: corev1alpha1.Scheduling}
			if !slices.Contains(ws.Finalizers, tenancy.Finalizer) {
				ws.Finalizers = append(ws.Finalizers, tenancy.Finalizer)
			}
			return
		}
		prev := old.(*tenancyv1alpha1.Workspace)
		ws.Status = prev.Status
		keepOwner(ws, prev)
	}
	s.Check = func(obj runtime.Object) field.ErrorList {
		ws := obj.(*tenancyv1alpha1.Workspace)
		return checkType(field.NewPath("spec", "type"), ws.Spec.Type)
	}
	s.CheckChange = func(obj, old runtime.Object) field.ErrorList {
		ws, prev := obj.(*tenancyv1alpha1.Workspace), old.(*tenancyv1alpha1.Workspace)
		return apivalidation.ValidateImmutableField(ws.Spec, prev.Spec, field.NewPath("spec"))
	}
	s.Fields = func(obj runtime.Object) fields.Set {
		return fields.Set{"status.phase": string(obj.(*tenancyv1alpha1.Workspace).Status.Phase)}
	}
	main, err := registry.NewREST(getter, registry.Resource{
		GroupResource: tenancyv1alpha1.SchemeGroupVersion.WithResource("workspaces").GroupResource(),
		SingularName:  "workspace",
		New:           func() runtime.Object { return &tenancyv1alpha1.Workspace{} },
		NewList:       func() runtime.Object { return &tenancyv1alpha1.WorkspaceList{} },
		Strategy:      s,
		ShortNames:    []string{"ws"},
		Table: registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.Column("Type", "string", "The workspace's type"),
				registry.Column("Phase", "string", "Where the workspace is in its life"),
				registry.Column("URL", "string", "The workspace's address"),
			},
			Cells: func(obj runtime.Object) []any {
				ws := obj.(*tenancyv1alpha1.Workspace)
				return []any{typeName(ws.Spec.Type), string(ws.Status.Phase), ws.Status.URL}
			},
		},
	})
	if err != nil {
		return nil, nil, err
	}
	status := statusOnly(main.Store, s, func(obj, old runtime.Object) {
		ws, prev := obj.(*tenancyv1alpha1.Workspace), old.(*tenancyv1alpha1.Workspace)
		st := ws.Status
		*ws = *prev.DeepCopy()
		ws.Status = st
	})
	return main, status, nil
}

// statusOnly returns a copy of store whose updates keep what keep copies from
// the stored object (everything but status).
func statusOnly(store *genericregistry.Store, s *registry.Strategy, keep func(obj, old runtime.Object)) *genericregistry.Store {
	status := *store
	st := *s
	st.Prepare = keep
	status.UpdateStrategy = &st
	return &status
}

// keepOwner keeps the owner annotation of prev on ws: clients cannot change it.
func keepOwner(ws, prev *tenancyv1alpha1.Workspace) {
	owner, ok := prev.Annotations[tenancy.OwnerAnnotation]
	if !ok {
		delete(ws.Annotations, tenancy.OwnerAnnotation)
		return
	}
	a := maps.Clone(ws.Annotations)
	if a == nil {
		a = map[string]string{}
	}
	a[tenancy.OwnerAnnotation] = owner
	ws.Annotations = a
}

// NewWorkspaceTypes returns the storage of workspace types.
func NewWorkspaceTypes(getter generic.RESTOptionsGetter) (*registry.REST, error) {
	s := registry.NewStrategy(false)
	s.Name = apivalidation.NameIsDNSLabel
	s.Check = func(obj runtime.Object) field.ErrorList {
		spec := obj.(*tenancyv1alpha1.WorkspaceType).Spec
		path := field.NewPath("spec")
		var errs field.ErrorList
		if d := spec.DefaultChildType; d != nil {
			errs = append(errs, checkType(path.Child("defaultChildType"), *d)...)
		}
		for name, sel := range map[string]*tenancyv1alpha1.TypeSelector{"limitAllowedChildren": spec.LimitAllowedChildren, "limitAllowedParents": spec.LimitAllowedParents} {
			if sel == nil {
				continue
			}
			for i, t := range sel.Types {
				errs = append(errs, checkType(path.Child(name, "types").Index(i), t)...)
			}
		}
		for i, ns := range spec.InitialNamespaces {
			for _, msg := range apivalidation.ValidateNamespaceName(ns, false) {
				errs = append(errs, field.Invalid(path.Child("initialNamespaces").Index(i), ns, msg))
			}
		}
		for i, b := range spec.InitialClusterRoleBindings {
			p := path.Child("initialClusterRoleBindings").Index(i)
			for _, msg := range apivalidation.NameIsDNSSubdomain(b.Name, false) {
				errs = append(errs, field.Invalid(p.Child("name"), b.Name, msg))
			}
			if b.ClusterRole == "" {
				errs = append(errs, field.Required(p.Child("clusterRole"), ""))
			}
			if b.Name == tenancy.AdminBinding {
				errs = append(errs, field.Invalid(p.Child("name"), b.Name, "is the binding making a workspace's creator its admin"))
			}
		}
		return errs
	}
	return registry.NewREST(getter, registry.Resource{
		GroupResource: tenancyv1alpha1.SchemeGroupVersion.WithResource("workspacetypes").GroupResource(),
		SingularName:  "workspacetype",
		New:           func() runtime.Object { return &tenancyv1alpha1.WorkspaceType{} },
		NewList:       func() runtime.Object { return &tenancyv1alpha1.WorkspaceTypeList{} },
		Strategy:      s,
	})
}

// checkType validates a type reference.
func checkType(path *field.Path, ref corev1alpha1.TypeReference) field.ErrorList {
	var errs field.ErrorList
	if ref.Name != "" {
		for _, msg := range apivalidation.NameIsDNSLabel(ref.Name, false) {
			errs = append(errs, field.Invalid(path.Child("name"), ref.Name, msg))
		}
	}
	if ref.Path != "" {
		if _, err := tenancy.ParsePath(ref.Path); err != nil {
			errs = append(errs, field.Invalid(path.Child("path"), ref.Path, err.Error()))
		}
	}
	return errs
}

func typeName(ref corev1alpha1.TypeReference) string {
	if ref.Path == "" {
		return ref.Name
	}
	return ref.Path + ":" + ref.Name
}

// readOnly serves a store's reads only.
type readOnly struct {
	store *genericregistry.Store
}

var (
	_ rest.Getter               = readOnly{}
	_ rest.Lister               = readOnly{}
	_ rest.Watcher              = readOnly{}
	_ rest.SingularNameProvider = readOnly{}
)

func (r readOnly) New() runtime.Object     { return r.store.New() }
func (r readOnly) Destroy()                {}
func (r readOnly) NamespaceScoped() bool   { return r.store.NamespaceScoped() }
func (r readOnly) GetSingularName() string { return r.store.GetSingularName() }
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

// NewLogicalClusters returns the storage of logical clusters clients are served
// (reads only), the store warren writes them through, and a copy of it that
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
				registry.Column("Path", "string", "The cluster's path"),
				registry.Column("Phase", "string", "Where the cluster is in its life"),
				registry.Column("Shard", "string", "The shard storing the cluster"),
			},
			Cells: func(obj runtime.Object) []any {
				lc := obj.(*corev1alpha1.LogicalCluster)
				return []any{lc.Spec.Path, string(lc.Status.Phase), lc.Status.Shard}
			},
		},
	})
	if err != nil {
		return nil, nil, nil, err
	}
	status = statusOnly(store, s, func(obj, old runtime.Object) {
		lc, prev := obj.(*corev1alpha1.LogicalCluster), old.(*corev1alpha1.LogicalCluster)
		st := lc.Status
		*lc = *prev.DeepCopy()
		lc.Status = st
	})
	return readOnly{store}, store, status, nil
}
