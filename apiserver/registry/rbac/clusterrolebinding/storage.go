// Package clusterrolebinding serves rbac.authorization.k8s.io/v1 ClusterRoleBindings.
package clusterrolebinding

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"

	"github.com/warren-dev/warren/apiserver/registry"
	"github.com/warren-dev/warren/apiserver/registry/rbac"
)

// NewREST returns the storage of clusterrolebindings.
func NewREST(getter generic.RESTOptionsGetter) (*registry.REST, error) {
	return registry.NewREST(getter, registry.Resource{
		GroupResource: rbacv1.Resource("clusterrolebindings"),
		SingularName:  "clusterrolebinding",
		New:           func() runtime.Object { return &rbacv1.ClusterRoleBinding{} },
		NewList:       func() runtime.Object { return &rbacv1.ClusterRoleBindingList{} },
		Strategy: rbac.BindingStrategy(false, func(obj runtime.Object) (rbacv1.RoleRef, []rbacv1.Subject) {
			b := obj.(*rbacv1.ClusterRoleBinding)
			return b.RoleRef, b.Subjects
		}),
		Table: registry.Table{
			Columns: []metav1.TableColumnDefinition{registry.Column("Role", "string", "The role bound")},
			Cells: func(obj runtime.Object) []any {
				ref := obj.(*rbacv1.ClusterRoleBinding).RoleRef
				return []any{ref.Kind + "/" + ref.Name}
			},
		},
	})
}
