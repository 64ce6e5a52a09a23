// Package role serves rbac.authorization.k8s.io/v1 Roles.
package role

import (
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"

	"github.com/warren-dev/warren/apiserver/registry"
	"github.com/warren-dev/warren/apiserver/registry/rbac"
)

// NewREST returns the storage of roles.
func NewREST(getter generic.RESTOptionsGetter) (*registry.REST, error) {
	return registry.NewREST(getter, registry.Resource{
		GroupResource: rbacv1.Resource("roles"),
		SingularName:  "role",
		New:           func() runtime.Object { return &rbacv1.Role{} },
		NewList:       func() runtime.Object { return &rbacv1.RoleList{} },
		Strategy: rbac.RoleStrategy(true, func(obj runtime.Object) []rbacv1.PolicyRule {
			return obj.(*rbacv1.Role).Rules
		}),
	})
}
