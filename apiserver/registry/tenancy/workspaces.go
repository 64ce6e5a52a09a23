package tenancy

import (
	"context"
	"maps"
	"slices"

	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"

	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"

	"github.com/warren-dev/warren/apiserver/registry"
	"github.com/warren-dev/warren/tenancy"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// Workspaces is the storage of workspaces. In root, the name "~" is the
// caller's home workspace, as in kcp, when Homes is set.
type Workspaces struct {
	*registry.REST
	// Homes makes and answers for home workspaces; nil turns them off.
	Homes *tenancy.Homes
}

// Get implements rest.Getter.
func (w *Workspaces) Get(ctx context.Context, name string, opts *metav1.GetOptions) (runtime.Object, error) {
	if cluster, _ := logicalcluster.From(ctx); name == tenancy.HomeWorkspace && cluster == logicalcluster.Root && w.Homes != nil {
		u, _ := genericapirequest.UserFrom(ctx)
		return w.Homes.Get(ctx, u)
	}
	return w.REST.Get(ctx, name, opts)
}

// NewWorkspaces returns the storage of workspaces, a copy of it that writes
// only their status (and the phase label that mirrors it), and one that writes
// only where a workspace is placed: the shard annotation, the region label and
// spec.URL, for a workspace scheduled after it was made.
func NewWorkspaces(getter generic.RESTOptionsGetter) (_ *Workspaces, status, placement *genericregistry.Store, _ error) {
	s := registry.NewStrategy(false)
	s.Name = apivalidation.NameIsDNSLabel
	s.Prepare = func(obj, old runtime.Object) {
		ws := obj.(*tenancyv1alpha1.Workspace)
		if old == nil {
			ws.Spec.Cluster = string(tenancy.NewClusterName())
			ws.Status = tenancyv1alpha1.WorkspaceStatus{Phase: corev1alpha1.LogicalClusterPhaseScheduling}
			ws.Labels = withPhase(ws.Labels, ws.Status.Phase)
			if !slices.Contains(ws.Finalizers, tenancy.Finalizer) {
				ws.Finalizers = append(ws.Finalizers, tenancy.Finalizer)
			}
			return
		}
		prev := old.(*tenancyv1alpha1.Workspace)
		ws.Status = prev.Status
		ws.Labels = withPhase(ws.Labels, prev.Status.Phase)
		keepSystem(ws, prev)
	}
	s.Check = func(obj runtime.Object) field.ErrorList {
		spec := obj.(*tenancyv1alpha1.Workspace).Spec
		path := field.NewPath("spec")
		var errs field.ErrorList
		if spec.Type == nil {
			errs = append(errs, field.Required(path.Child("type"), ""))
		} else {
			errs = append(errs, checkType(path.Child("type"), *spec.Type)...)
		}
		if l := spec.Location; l != nil && l.Selector != nil {
			errs = append(errs, metav1validation.ValidateLabelSelector(l.Selector, metav1validation.LabelSelectorValidationOptions{}, path.Child("location", "selector"))...)
		}
		if spec.Mount != nil {
			errs = append(errs, field.Forbidden(path.Child("mount"), "warren does not mount workspaces"))
		}
		return errs
	}
	s.CheckChange = func(obj, old runtime.Object) field.ErrorList {
		ws, prev := obj.(*tenancyv1alpha1.Workspace), old.(*tenancyv1alpha1.Workspace)
		return apivalidation.ValidateImmutableField(ws.Spec, prev.Spec, field.NewPath("spec"))
	}
	s.Fields = func(obj runtime.Object) fields.Set {
		return fields.Set{"status.phase": string(obj.(*tenancyv1alpha1.Workspace).Status.Phase)}
	}
	main, err := registry.NewREST(getter, registry.Resource{
		GroupResource: tenancyv1alpha1.Resource("workspaces"),
		SingularName:  "workspace",
		New:           func() runtime.Object { return &tenancyv1alpha1.Workspace{} },
		NewList:       func() runtime.Object { return &tenancyv1alpha1.WorkspaceList{} },
		Strategy:      s,
		ShortNames:    []string{"ws"},
		Categories:    []string{"kcp"},
		Table: registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.Column("Type", "string", "Type of the workspace"),
				registry.Column("Region", "string", "The region this workspace is in"),
				registry.Column("Phase", "string", "The current phase (e.g. Scheduling, Initializing, Ready, Deleting)"),
				registry.Column("URL", "string", "URL to access the workspace"),
			},
			Cells: func(obj runtime.Object) []any {
				ws := obj.(*tenancyv1alpha1.Workspace)
				typ := ""
				if ws.Spec.Type != nil {
					typ = string(ws.Spec.Type.Name)
				}
				return []any{typ, ws.Labels["region"], string(ws.Status.Phase), ws.Spec.URL}
			},
		},
	})
	if err != nil {
		return nil, nil, nil, err
	}
	status = registry.StatusOnly(main.Store, s, func(obj, old runtime.Object) {
		ws, prev := obj.(*tenancyv1alpha1.Workspace), old.(*tenancyv1alpha1.Workspace)
		st := ws.Status
		*ws = *prev.DeepCopy()
		ws.Status = st
		ws.Labels = withPhase(ws.Labels, st.Phase)
	})
	// spec.URL is set once, here; the rest of spec stays as it is.
	placing := *s
	placing.CheckChange = func(obj, old runtime.Object) field.ErrorList {
		ws, prev := obj.(*tenancyv1alpha1.Workspace), old.(*tenancyv1alpha1.Workspace)
		if prev.Spec.URL != "" && ws.Spec.URL != prev.Spec.URL {
			return field.ErrorList{field.Invalid(field.NewPath("spec", "URL"), ws.Spec.URL, "a placed workspace stays where it is")}
		}
		return nil
	}
	placement = registry.StatusOnly(main.Store, &placing, func(obj, old runtime.Object) {
		ws, prev := obj.(*tenancyv1alpha1.Workspace), old.(*tenancyv1alpha1.Workspace)
		placed := prev.DeepCopy()
		placed.Spec.URL = ws.Spec.URL
		if placed.Annotations == nil {
			placed.Annotations = map[string]string{}
		}
		placed.Annotations[tenancy.ShardAnnotation] = ws.Annotations[tenancy.ShardAnnotation]
		if region, ok := ws.Labels[tenancy.RegionLabel]; ok {
			placed.Labels = maps.Clone(placed.Labels)
			placed.Labels[tenancy.RegionLabel] = region
		}
		*ws = *placed
	})
	return &Workspaces{REST: main}, status, placement, nil
}

// withPhase returns labels with kcp's label of a workspace's phase.
func withPhase(labels map[string]string, phase corev1alpha1.LogicalClusterPhaseType) map[string]string {
	if labels[tenancyv1alpha1.WorkspacePhaseLabel] == string(phase) {
		return labels
	}
	out := maps.Clone(labels)
	if out == nil {
		out = map[string]string{}
	}
	out[tenancyv1alpha1.WorkspacePhaseLabel] = string(phase)
	return out
}

// systemAnnotations are a workspace's annotations that only warren sets: its
// owner and the shard holding its logical cluster.
var systemAnnotations = []string{tenancyv1alpha1.ExperimentalWorkspaceOwnerAnnotationKey, tenancy.ShardAnnotation}

// keepSystem keeps the system annotations of prev on ws: clients cannot
// change them.
func keepSystem(ws, prev *tenancyv1alpha1.Workspace) {
	a := maps.Clone(ws.Annotations)
	for _, key := range systemAnnotations {
		if v, ok := prev.Annotations[key]; ok {
			if a == nil {
				a = map[string]string{}
			}
			a[key] = v
		} else {
			delete(a, key)
		}
	}
	ws.Annotations = a
}
