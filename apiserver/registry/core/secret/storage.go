package secret

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"

	"github.com/warren-dev/warren/apiserver/registry"
)

// NewREST returns the storage of secrets.
func NewREST(getter generic.RESTOptionsGetter) (*registry.REST, error) {
	return registry.NewREST(getter, registry.Resource{
		GroupResource: corev1.Resource("secrets"),
		SingularName:  "secret",
		New:           func() runtime.Object { return &corev1.Secret{} },
		NewList:       func() runtime.Object { return &corev1.SecretList{} },
		Strategy:      strategy(),
		Table: registry.Table{
			Columns: []metav1.TableColumnDefinition{
				registry.Column("Type", "string", "The type of the secret"),
				registry.Column("Data", "integer", "Number of keys in data"),
			},
			Cells: func(obj runtime.Object) []any {
				s := obj.(*corev1.Secret)
				return []any{string(s.Type), int64(len(s.Data))}
			},
		},
	})
}
