package serviceaccount

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"

	"github.com/warren-dev/warren/apiserver/registry"
)

// NewREST returns the storage of serviceaccounts.
func NewREST(getter generic.RESTOptionsGetter) (*registry.REST, error) {
	return registry.NewREST(getter, registry.Resource{
		GroupResource: corev1.Resource("serviceaccounts"),
		SingularName:  "serviceaccount",
		New:           func() runtime.Object { return &corev1.ServiceAccount{} },
		NewList:       func() runtime.Object { return &corev1.ServiceAccountList{} },
		Strategy:      strategy(),
		ShortNames:    []string{"sa"},
		Table: registry.Table{
			Columns: []metav1.TableColumnDefinition{registry.Column("Secrets", "string", "Number of secrets")},
			Cells:   func(obj runtime.Object) []any { return []any{int64(len(obj.(*corev1.ServiceAccount).Secrets))} },
		},
	})
}
