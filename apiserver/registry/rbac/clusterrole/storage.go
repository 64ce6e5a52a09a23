// Package clusterrole serves rbac.authorization.k8s.io/v1 ClusterRoles.
package clusterrole

import (
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"

	"github.com/warren-dev/warren/apiserver/registry"
	"github.com/warren-dev/warren/apiserver/registry/rbac"
)

// NewREST returns the storage of clusterroles.
func NewREST(getter generic.RESTOptionsGetter) (*registry.REST, error) {
	return registry.NewREST(getter, registry.Resource{
		GroupResource: rbacv1.Resource("clusterroles"),
		SingularName:  "clusterrole",
		New:           func() runtime.Object { return &rbacv1.ClusterRole{} },
		NewList:       func() runtime.Object { return &rbacv1.ClusterRoleList{} },
		Strategy: rbac.RoleStrategy(false, func(obj runtime.Object) []rbacv1.PolicyRule {
			return obj.(*rbacv1.ClusterRole).Rules
		}),
	})
}
