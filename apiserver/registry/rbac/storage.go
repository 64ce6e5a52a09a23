package rbac

import (
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"

	"github.com/warren-dev/warren/apiserver/registry"
)

// NewRoles returns the storage of roles.
func NewRoles(getter generic.RESTOptionsGetter) (*registry.REST, error) {
	return registry.NewREST(getter, registry.Resource{
		GroupResource: rbacv1.Resource("roles"),
		SingularName:  "role",
		New:           func() runtime.Object { return &rbacv1.Role{} },
		NewList:       func() runtime.Object { return &rbacv1.RoleList{} },
		Strategy:      roleStrategy(true, func(obj runtime.Object) []rbacv1.PolicyRule { return obj.(*rbacv1.Role).Rules }),
	})
}

// NewClusterRoles returns the storage of clusterroles.
func NewClusterRoles(getter generic.RESTOptionsGetter) (*registry.REST, error) {
	return registry.NewREST(getter, registry.Resource{
		GroupResource: rbacv1.Resource("clusterroles"),
		SingularName:  "clusterrole",
		New:           func() runtime.Object { return &rbacv1.ClusterRole{} },
		NewList:       func() runtime.Object { return &rbacv1.ClusterRoleList{} },
		Strategy:      roleStrategy(false, func(obj runtime.Object) []rbacv1.PolicyRule { return obj.(*rbacv1.ClusterRole).Rules }),
	})
}

// NewRoleBindings returns the storage of rolebindings.
func NewRoleBindings(getter generic.RESTOptionsGetter) (*registry.REST, error) {
	binding := func(obj runtime.Object) (rbacv1.RoleRef, []rbacv1.Subject) {
		b := obj.(*rbacv1.RoleBinding)
		return b.RoleRef, b.Subjects
	}
	return registry.NewREST(getter, registry.Resource{
		GroupResource: rbacv1.Resource("rolebindings"),
		SingularName:  "rolebinding",
		New:           func() runtime.Object { return &rbacv1.RoleBinding{} },
		NewList:       func() runtime.Object { return &rbacv1.RoleBindingList{} },
		Strategy:      bindingStrategy(true, binding),
		Table:         bindingTable(binding),
	})
}

// NewClusterRoleBindings returns the storage of clusterrolebindings.
func NewClusterRoleBindings(getter generic.RESTOptionsGetter) (*registry.REST, error) {
	binding := func(obj runtime.Object) (rbacv1.RoleRef, []rbacv1.Subject) {
		b := obj.(*rbacv1.ClusterRoleBinding)
		return b.RoleRef, b.Subjects
	}
	return registry.NewREST(getter, registry.Resource{
		GroupResource: rbacv1.Resource("clusterrolebindings"),
		SingularName:  "clusterrolebinding",
		New:           func() runtime.Object { return &rbacv1.ClusterRoleBinding{} },
		NewList:       func() runtime.Object { return &rbacv1.ClusterRoleBindingList{} },
		Strategy:      bindingStrategy(false, binding),
		Table:         bindingTable(binding),
	})
}

func bindingTable(binding func(runtime.Object) (rbacv1.RoleRef, []rbacv1.Subject)) registry.Table {
	return registry.Table{
		Columns: []metav1.TableColumnDefinition{registry.Column("Role", "string", "The role bound")},
		Cells: func(obj runtime.Object) []any {
			ref, _ := binding(obj)
			return []any{ref.Kind + "/" + ref.Name}
		},
	}
}
