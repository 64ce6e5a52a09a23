package authorization

import (
	"maps"
	"slices"
	"strings"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
)

// The bootstrap policy holds in every cluster without being stored in any: a
// binding may name these cluster roles, and the bootstrap bindings apply
// everywhere. A cluster role stored in a cluster under one of these names takes
// precedence there.

var (
	readVerbs  = []string{"get", "list", "watch"}
	writeVerbs = []string{"create", "update", "patch", "delete", "deletecollection"}
	allVerbs   = append(append([]string{}, readVerbs...), writeVerbs...)
)

// Resources of the namespaced built-in APIs, by group, as the user-facing
// roles grant them.
var (
	contentResources = map[string][]string{
		"":                    {"configmaps", "events", "serviceaccounts"},
		"coordination.k8s.io": {"leases"},
		"events.k8s.io":       {"events"},
	}
	secretResources = map[string][]string{"": {"secrets"}}
	rbacResources   = map[string][]string{"rbac.authorization.k8s.io": {"roles", "rolebindings"}}
)

func rules(verbs []string, resources ...map[string][]string) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, byGroup := range resources {
		for _, group := range slices.Sorted(maps.Keys(byGroup)) {
			out = append(out, rbacv1.PolicyRule{Verbs: verbs, APIGroups: []string{group}, Resources: byGroup[group]})
		}
	}
	return out
}

func concat(lists ...[]rbacv1.PolicyRule) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

var namespaceRead = rbacv1.PolicyRule{Verbs: readVerbs, APIGroups: []string{""}, Resources: []string{"namespaces"}}

// bootstrapRoles are the cluster roles every cluster has.
var bootstrapRoles = map[string][]rbacv1.PolicyRule{
	"cluster-admin": {
		{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}},
		{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}},
	},
	"admin": concat(
		rules(allVerbs, contentResources, secretResources, rbacResources),
		[]rbacv1.PolicyRule{namespaceRead},
	),
	"edit": concat(
		rules(allVerbs, contentResources, secretResources),
		rules(readVerbs, rbacResources),
		[]rbacv1.PolicyRule{namespaceRead},
	),
	"view": concat(rules(readVerbs, contentResources), []rbacv1.PolicyRule{namespaceRead}),
	"system:basic-user": {
		{Verbs: []string{"create"}, APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"selfsubjectaccessreviews", "selfsubjectrulesreviews"}},
		{Verbs: []string{"create"}, APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"selfsubjectreviews"}},
	},
	"system:discovery": {
		{Verbs: []string{"get"}, NonResourceURLs: []string{"/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"}},
	},
	"system:public-info-viewer": {
		{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz", "/livez", "/readyz", "/version", "/version/"}},
	},
	// kcp's: entering a workspace, and reading the workspaces in one.
	"system:kcp:workspace:access": {
		{Verbs: []string{"access"}, NonResourceURLs: []string{"/"}},
	},
	"system:kcp:tenancy:reader": {
		{Verbs: readVerbs, APIGroups: []string{"tenancy.kcp.io"}, Resources: []string{"workspaces", "workspacetypes"}},
		{Verbs: readVerbs, APIGroups: []string{"core.kcp.io"}, Resources: []string{"logicalclusters"}},
	},
}

// bootstrapBindings grant bootstrap roles to groups in every cluster.
var bootstrapBindings = []binding{
	{role: rbacv1.RoleRef{Kind: "ClusterRole", Name: "cluster-admin"}, subjects: groups(user.SystemPrivilegedGroup)},
	{role: rbacv1.RoleRef{Kind: "ClusterRole", Name: "system:basic-user"}, subjects: groups(user.AllAuthenticated)},
	{role: rbacv1.RoleRef{Kind: "ClusterRole", Name: "system:discovery"}, subjects: groups(user.AllAuthenticated)},
	{role: rbacv1.RoleRef{Kind: "ClusterRole", Name: "system:public-info-viewer"}, subjects: groups(user.AllAuthenticated, user.AllUnauthenticated)},
}

func groups(names ...string) []rbacv1.Subject {
	out := make([]rbacv1.Subject, len(names))
	for i, n := range names {
		out[i] = rbacv1.Subject{Kind: rbacv1.GroupKind, APIGroup: rbacv1.GroupName, Name: n}
	}
	return out
}

// BootstrapRoles returns the bootstrap cluster roles, sorted by name, as the
// objects a cluster shows them as (they are stored nowhere).
func BootstrapRoles() []rbacv1.ClusterRole {
	out := make([]rbacv1.ClusterRole, 0, len(bootstrapRoles))
	for name, rules := range bootstrapRoles {
		out = append(out, rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{
				Name: name,
				// As Kubernetes marks its own.
				Labels:      map[string]string{"kubernetes.io/bootstrapping": "rbac-defaults"},
				Annotations: map[string]string{"rbac.authorization.kubernetes.io/autoupdate": "true"},
			},
			Rules: rules,
		})
	}
	slices.SortFunc(out, func(a, b rbacv1.ClusterRole) int { return strings.Compare(a.Name, b.Name) })
	return out
}
