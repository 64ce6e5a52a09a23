package lease

import (
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"

	"github.com/warren-dev/warren/apiserver/registry"
)

// NewREST returns the storage of leases.
func NewREST(getter generic.RESTOptionsGetter) (*registry.REST, error) {
	return registry.NewREST(getter, registry.Resource{
		GroupResource: coordinationv1.Resource("leases"),
		SingularName:  "lease",
		New:           func() runtime.Object { return &coordinationv1.Lease{} },
		NewList:       func() runtime.Object { return &coordinationv1.LeaseList{} },
		Strategy:      strategy(),
		Table: registry.Table{
			Columns: []metav1.TableColumnDefinition{registry.Column("Holder", "string", "The holder of the lease")},
			Cells: func(obj runtime.Object) []any {
				holder := ""
				if h := obj.(*coordinationv1.Lease).Spec.HolderIdentity; h != nil {
					holder = *h
				}
				return []any{holder}
			},
		},
	})
}
