// Package rbac serves roles, role bindings, cluster roles and cluster role
// bindings, validated as Kubernetes validates them.
package rbac

import (
	rbacv1 "k8s.io/api/rbac/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/warren-dev/warren/apiserver/registry"
)

// name validates the name of an RBAC object: any path segment, so that names like
// "system:controller:x" are valid.
func name(name string, prefix bool) []string { return path.IsValidPathSegmentName(name) }

// roleStrategy returns the strategy of Roles (namespaced) or ClusterRoles.
func roleStrategy(namespaced bool, rules func(runtime.Object) []rbacv1.PolicyRule) *registry.Strategy {
	s := registry.NewStrategy(namespaced)
	s.Name = name
	s.Check = func(obj runtime.Object) field.ErrorList {
		var errs field.ErrorList
		for i, rule := range rules(obj) {
			errs = append(errs, validateRule(rule, namespaced, field.NewPath("rules").Index(i))...)
		}
		return errs
	}
	return s
}

func validateRule(rule rbacv1.PolicyRule, namespaced bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(rule.Verbs) == 0 {
		errs = append(errs, field.Required(p.Child("verbs"), "verbs must contain at least one value"))
	}
	if len(rule.NonResourceURLs) > 0 {
		if namespaced {
			errs = append(errs, field.Invalid(p.Child("nonResourceURLs"), rule.NonResourceURLs, "namespaced rules cannot apply to non-resource URLs"))
		}
		if len(rule.APIGroups) > 0 || len(rule.Resources) > 0 || len(rule.ResourceNames) > 0 {
			errs = append(errs, field.Invalid(p.Child("nonResourceURLs"), rule.NonResourceURLs, "rules cannot apply to both regular resources and non-resource URLs"))
		}
		return errs
	}
	if len(rule.APIGroups) == 0 {
		errs = append(errs, field.Required(p.Child("apiGroups"), "resource rules must supply at least one api group"))
	}
	if len(rule.Resources) == 0 {
		errs = append(errs, field.Required(p.Child("resources"), "resource rules must supply at least one resource"))
	}
	return errs
}

// bindingStrategy returns the strategy of RoleBindings (namespaced) or
// ClusterRoleBindings; binding returns an object's role reference and subjects.
func bindingStrategy(namespaced bool, binding func(runtime.Object) (rbacv1.RoleRef, []rbacv1.Subject)) *registry.Strategy {
	s := registry.NewStrategy(namespaced)
	s.Name = name
	s.Check = func(obj runtime.Object) field.ErrorList {
		ref, subjects := binding(obj)
		errs := validateRoleRef(ref, namespaced, field.NewPath("roleRef"))
		for i, subject := range subjects {
			errs = append(errs, validateSubject(subject, namespaced, field.NewPath("subjects").Index(i))...)
		}
		return errs
	}
	s.CheckChange = func(obj, old runtime.Object) field.ErrorList {
		ref, _ := binding(obj)
		oldRef, _ := binding(old)
		if ref != oldRef {
			return field.ErrorList{field.Invalid(field.NewPath("roleRef"), ref, "cannot change roleRef")}
		}
		return nil
	}
	return s
}

func validateRoleRef(ref rbacv1.RoleRef, namespaced bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if ref.APIGroup != rbacv1.GroupName {
		errs = append(errs, field.NotSupported(p.Child("apiGroup"), ref.APIGroup, []string{rbacv1.GroupName}))
	}
	kinds := []string{"ClusterRole"}
	if namespaced {
		kinds = append(kinds, "Role")
	}
	if ref.Kind != "ClusterRole" && (!namespaced || ref.Kind != "Role") {
		errs = append(errs, field.NotSupported(p.Child("kind"), ref.Kind, kinds))
	}
	if ref.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	} else {
		for _, msg := range name(ref.Name, false) {
			errs = append(errs, field.Invalid(p.Child("name"), ref.Name, msg))
		}
	}
	return errs
}

func validateSubject(s rbacv1.Subject, namespaced bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if s.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	}
	switch s.Kind {
	case rbacv1.ServiceAccountKind:
		if s.Name != "" {
			for _, msg := range apivalidation.ValidateServiceAccountName(s.Name, false) {
				errs = append(errs, field.Invalid(p.Child("name"), s.Name, msg))
			}
		}
		if s.APIGroup != "" {
			errs = append(errs, field.NotSupported(p.Child("apiGroup"), s.APIGroup, []string{""}))
		}
		if !namespaced && s.Namespace == "" {
			errs = append(errs, field.Required(p.Child("namespace"), ""))
		}
	case rbacv1.UserKind, rbacv1.GroupKind:
		if s.APIGroup != rbacv1.GroupName {
			errs = append(errs, field.NotSupported(p.Child("apiGroup"), s.APIGroup, []string{rbacv1.GroupName}))
		}
	default:
		errs = append(errs, field.NotSupported(p.Child("kind"), s.Kind, []string{rbacv1.ServiceAccountKind, rbacv1.UserKind, rbacv1.GroupKind}))
	}
	return errs
}
