package authorization

import (
	"context"
	"fmt"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	rbacvalidation "k8s.io/component-helpers/auth/rbac/validation"

	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// Escalation is the admission that keeps RBAC from being a way up: a user may
// write a role only with rules the user holds, and bind a role only if the user
// holds its rules, in the same cluster and namespace, unless RBAC grants the
// "escalate" (roles) or "bind" (bindings) verb, as in Kubernetes.
type Escalation struct {
	*admission.Handler
	rbac  *RBAC
	authz authorizer.Authorizer
}

var _ admission.ValidationInterface = (*Escalation)(nil)

// NewEscalation returns the admission; authz decides the escalate and bind verbs.
func NewEscalation(rbac *RBAC, authz authorizer.Authorizer) *Escalation {
	return &Escalation{Handler: admission.NewHandler(admission.Create, admission.Update), rbac: rbac, authz: authz}
}

// Validate implements admission.ValidationInterface.
func (e *Escalation) Validate(ctx context.Context, a admission.Attributes, _ admission.ObjectInterfaces) error {
	if a.GetResource().Group != rbacv1.GroupName || a.GetSubresource() != "" {
		return nil
	}
	var granted []rbacv1.PolicyRule
	verb, target := "", ""
	switch obj := a.GetObject().(type) {
	case *rbacv1.Role:
		granted, verb, target = obj.Rules, "escalate", "roles"
	case *rbacv1.ClusterRole:
		granted, verb, target = obj.Rules, "escalate", "clusterroles"
	case *rbacv1.RoleBinding:
		rules, err := e.roleRules(ctx, obj.Namespace, obj.RoleRef)
		if err != nil {
			return err
		}
		granted, verb, target = rules, "bind", roleResource(obj.RoleRef)
	case *rbacv1.ClusterRoleBinding:
		rules, err := e.roleRules(ctx, "", obj.RoleRef)
		if err != nil {
			return err
		}
		granted, verb, target = rules, "bind", "clusterroles"
	default:
		return nil
	}
	name := a.GetName()
	if verb == "bind" {
		name = refName(a.GetObject())
	}
	decision, _, err := e.authz.Authorize(ctx, authorizer.AttributesRecord{
		User: a.GetUserInfo(), Verb: verb, APIGroup: rbacv1.GroupName, Resource: target,
		Namespace: a.GetNamespace(), Name: name, ResourceRequest: true,
	})
	if err == nil && decision == authorizer.DecisionAllow {
		return nil
	}
	cluster, _ := logicalcluster.From(ctx)
	held, err := e.rbac.rulesFor(ctx, cluster, a.GetUserInfo(), a.GetNamespace())
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	if covered, missing := rbacvalidation.Covers(held, granted); !covered {
		return apierrors.NewForbidden(a.GetResource().GroupResource(), a.GetName(),
			fmt.Errorf("user %q is attempting to grant RBAC permissions not currently held: %s", a.GetUserInfo().GetName(), describe(missing)))
	}
	return nil
}

func (e *Escalation) roleRules(ctx context.Context, namespace string, ref rbacv1.RoleRef) ([]rbacv1.PolicyRule, error) {
	cluster, _ := logicalcluster.From(ctx)
	p, err := e.rbac.policy(ctx, cluster)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	return p.rules(&binding{namespace: namespace, role: ref}), nil
}

// describe prints rules as Kubernetes does in this error.
func describe(rules []rbacv1.PolicyRule) string {
	parts := make([]string, len(rules))
	for i, r := range rules {
		var fields []string
		add := func(name string, values []string) {
			if len(values) > 0 {
				fields = append(fields, fmt.Sprintf("%s:[%q]", name, strings.Join(values, `" "`)))
			}
		}
		add("APIGroups", r.APIGroups)
		add("Resources", r.Resources)
		add("ResourceNames", r.ResourceNames)
		add("NonResourceURLs", r.NonResourceURLs)
		add("Verbs", r.Verbs)
		parts[i] = "{" + strings.Join(fields, ", ") + "}"
	}
	return strings.Join(parts, " ")
}

func roleResource(ref rbacv1.RoleRef) string {
	if ref.Kind == "Role" {
		return "roles"
	}
	return "clusterroles"
}

func refName(obj any) string {
	switch b := obj.(type) {
	case *rbacv1.RoleBinding:
		return b.RoleRef.Name
	case *rbacv1.ClusterRoleBinding:
		return b.RoleRef.Name
	}
	return ""
}
