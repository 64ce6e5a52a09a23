package apis

import (
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"

	apisv1alpha1 "github.com/kcp-dev/sdk/apis/apis/v1alpha1"

	"github.com/warren-dev/warren/apiserver/registry"
)

// NewAPIExportEndpointSlices returns the storage of APIExportEndpointSlices —
// where the virtual workspace of an export is served — and a copy of it that
// writes only their status.
func NewAPIExportEndpointSlices(getter generic.RESTOptionsGetter) (*registry.REST, *genericregistry.Store, error) {
	s := registry.NewStrategy(false)
	s.Check = func(obj runtime.Object) field.ErrorList {
		if obj.(*apisv1alpha1.APIExportEndpointSlice).Spec.APIExport.Name == "" {
			return field.ErrorList{field.Required(field.NewPath("spec", "export", "name"), "")}
		}
		return nil
	}
	s.CheckChange = func(obj, old runtime.Object) field.ErrorList {
		e, prev := obj.(*apisv1alpha1.APIExportEndpointSlice), old.(*apisv1alpha1.APIExportEndpointSlice)
		return immutable(field.NewPath("spec", "export"), !equality.Semantic.DeepEqual(e.Spec.APIExport, prev.Spec.APIExport),
			"APIExport reference must not be changed")
	}
	main, err := registry.NewREST(getter, registry.Resource{
		GroupResource: apisv1alpha1.Resource("apiexportendpointslices"),
		SingularName:  "apiexportendpointslice",
		New:           func() runtime.Object { return &apisv1alpha1.APIExportEndpointSlice{} },
		NewList:       func() runtime.Object { return &apisv1alpha1.APIExportEndpointSliceList{} },
		Strategy:      s,
		Categories:    []string{"kcp"},
		Table: registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.Column("Export", "string", "The APIExport whose endpoints the slice lists"),
				registry.Column("Partition", "string", "The partition that selects the shards listed"),
			},
			Cells: func(obj runtime.Object) []any {
				e := obj.(*apisv1alpha1.APIExportEndpointSlice)
				return []any{e.Spec.APIExport.Name, e.Spec.Partition}
			},
		},
	})
	if err != nil {
		return nil, nil, err
	}
	return main, registry.SplitStatus(main.Store, s, func(to, from *apisv1alpha1.APIExportEndpointSlice) { to.Status = from.Status }), nil
}
