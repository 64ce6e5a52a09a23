package configmap

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"

	"github.com/warren-dev/warren/apiserver/registry"
)

// NewREST returns the storage of configmaps.
func NewREST(getter generic.RESTOptionsGetter) (*registry.REST, error) {
	return registry.NewREST(getter, registry.Resource{
		GroupResource: corev1.Resource("configmaps"),
		SingularName:  "configmap",
		New:           func() runtime.Object { return &corev1.ConfigMap{} },
		NewList:       func() runtime.Object { return &corev1.ConfigMapList{} },
		Strategy:      strategy(),
		ShortNames:    []string{"cm"},
		Table: registry.Table{
			Columns: []metav1.TableColumnDefinition{registry.Column("Data", "integer", "Number of keys in data and binaryData")},
			Cells: func(obj runtime.Object) []any {
				cm := obj.(*corev1.ConfigMap)
				return []any{int64(len(cm.Data) + len(cm.BinaryData))}
			},
		},
	})
}
