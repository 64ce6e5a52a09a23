package authorization

import (
	"context"
	"fmt"

	rbacv1 "k8s.io/api/rbac/v1"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/warren-dev/warren/tenancy/clusterwatch"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// cachedClusters bounds how many clusters' RBAC snapshots are held.
const cachedClusters = 1024

// Store is an RBAC resource's storage.
type Store interface {
	rest.Lister
	rest.Watcher
}

// Stores are the four RBAC resources.
type Stores struct {
	Roles, RoleBindings, ClusterRoles, ClusterRoleBindings Store
}

// RBAC is the per-cluster RBAC authorizer.
type RBAC struct {
	stores   Stores
	policies *clusterwatch.Views[*policy]
}

var (
	_ authorizer.Authorizer   = (*RBAC)(nil)
	_ authorizer.RuleResolver = (*RBAC)(nil)
)

// NewRBAC returns the authorizer; Run keeps its snapshots fresh.
func NewRBAC(stores Stores) *RBAC {
	r := &RBAC{stores: stores}
	r.policies = clusterwatch.NewViews(cachedClusters, r.load, stores.ClusterRoles, stores.Roles, stores.ClusterRoleBindings, stores.RoleBindings)
	return r
}

// binding is a role binding or cluster role binding (namespace "").
type binding struct {
	kind, name, namespace string
	role                  rbacv1.RoleRef
	subjects              []rbacv1.Subject
}

// policy is the RBAC of one cluster.
type policy struct {
	clusterRoles    map[string][]rbacv1.PolicyRule
	roles           map[string][]rbacv1.PolicyRule // by namespace/name
	clusterBindings []binding
	bindings        map[string][]binding // by namespace
}

// Authorize implements authorizer.Authorizer.
func (r *RBAC) Authorize(ctx context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	cluster, ok := logicalcluster.From(ctx)
	if !ok || cluster == logicalcluster.Wildcard {
		return authorizer.DecisionNoOpinion, "", nil
	}
	p, err := r.policy(ctx, cluster)
	if err != nil {
		return authorizer.DecisionNoOpinion, "", err
	}
	u := Subject(a.GetUser(), cluster)
	var reason string
	p.visit(u, a.GetNamespace(), func(b *binding, rules []rbacv1.PolicyRule) bool {
		for i := range rules {
			if allows(a, &rules[i]) {
				reason = fmt.Sprintf("RBAC: allowed by %s %q of %s %q", b.kind, b.name, b.role.Kind, b.role.Name)
				return false
			}
		}
		return true
	})
	if reason != "" {
		return authorizer.DecisionAllow, reason, nil
	}
	return authorizer.DecisionNoOpinion, "", nil
}

// ConditionsAwareAuthorize implements authorizer.Authorizer; RBAC decisions are
// unconditional.
func (r *RBAC) ConditionsAwareAuthorize(ctx context.Context, a authorizer.Attributes) authorizer.ConditionsAwareDecision {
	return authorizer.ConditionsAwareDecisionFromParts(r.Authorize(ctx, a))
}

// EvaluateConditions implements authorizer.Authorizer.
func (r *RBAC) EvaluateConditions(context.Context, authorizer.ConditionsAwareDecision, authorizer.ConditionsData) (authorizer.Decision, string, error) {
	return authorizer.DecisionDeny, "", authorizer.ErrorConditionEvaluationNotSupported
}

// RulesFor implements authorizer.RuleResolver: the rules u holds in the
// cluster of ctx, cluster-wide and in namespace.
func (r *RBAC) RulesFor(ctx context.Context, u user.Info, namespace string) ([]authorizer.ResourceRuleInfo, []authorizer.NonResourceRuleInfo, bool, error) {
	cluster, ok := logicalcluster.From(ctx)
	if !ok || cluster == logicalcluster.Wildcard {
		return nil, nil, false, nil
	}
	p, err := r.policy(ctx, cluster)
	if err != nil {
		return nil, nil, true, err
	}
	var resources []authorizer.ResourceRuleInfo
	var nonResources []authorizer.NonResourceRuleInfo
	for _, rule := range p.rulesFor(Subject(u, cluster), namespace) {
		if len(rule.NonResourceURLs) > 0 {
			nonResources = append(nonResources, &authorizer.DefaultNonResourceRuleInfo{Verbs: rule.Verbs, NonResourceURLs: rule.NonResourceURLs})
			continue
		}
		resources = append(resources, &authorizer.DefaultResourceRuleInfo{Verbs: rule.Verbs, APIGroups: rule.APIGroups, Resources: rule.Resources, ResourceNames: rule.ResourceNames})
	}
	return resources, nonResources, false, nil
}

// rulesFor returns every rule u holds in cluster, cluster-wide and in namespace.
func (r *RBAC) rulesFor(ctx context.Context, cluster logicalcluster.Name, u user.Info, namespace string) ([]rbacv1.PolicyRule, error) {
	p, err := r.policy(ctx, cluster)
	if err != nil {
		return nil, err
	}
	return p.rulesFor(Subject(u, cluster), namespace), nil
}

func (p *policy) rulesFor(u user.Info, namespace string) []rbacv1.PolicyRule {
	var rules []rbacv1.PolicyRule
	p.visit(u, namespace, func(_ *binding, r []rbacv1.PolicyRule) bool {
		rules = append(rules, r...)
		return true
	})
	return rules
}

// Subject is who u is in cluster: a service account of another cluster is
// nobody there but an authenticated user.
func Subject(u user.Info, cluster logicalcluster.Name) user.Info {
	if home, ok := u.GetExtra()[logicalcluster.UserExtra]; ok && (len(home) != 1 || home[0] != string(cluster)) {
		return &user.DefaultInfo{Name: "system:foreign:" + u.GetName(), Groups: []string{user.AllAuthenticated}}
	}
	return u
}

// visit calls f with every binding that applies to u in namespace (bootstrap,
// cluster-wide, then the namespace's) and its role's rules, until f returns false.
func (p *policy) visit(u user.Info, namespace string, f func(*binding, []rbacv1.PolicyRule) bool) {
	for _, list := range [][]binding{bootstrapBindings, p.clusterBindings, p.bindings[namespace]} {
		for i := range list {
			b := &list[i]
			if !b.appliesTo(u) {
				continue
			}
			if !f(b, p.rules(b)) {
				return
			}
		}
	}
}

func (p *policy) rules(b *binding) []rbacv1.PolicyRule {
	if b.role.Kind == "Role" {
		return p.roles[b.namespace+"/"+b.role.Name]
	}
	if rules, ok := p.clusterRoles[b.role.Name]; ok {
		return rules
	}
	return bootstrapRoles[b.role.Name]
}

func (b *binding) appliesTo(u user.Info) bool {
	for _, s := range b.subjects {
		switch s.Kind {
		case rbacv1.UserKind:
			if u.GetName() == s.Name {
				return true
			}
		case rbacv1.GroupKind:
			if contains(u.GetGroups(), s.Name) {
				return true
			}
		case rbacv1.ServiceAccountKind:
			ns := s.Namespace
			if ns == "" {
				ns = b.namespace
			}
			if u.GetName() == serviceaccount.MakeUsername(ns, s.Name) {
				return true
			}
		}
	}
	return false
}

// policy returns the snapshot of cluster's RBAC.
func (r *RBAC) policy(ctx context.Context, cluster logicalcluster.Name) (*policy, error) {
	p, err := r.policies.Get(ctx, cluster)
	if err != nil {
		return nil, fmt.Errorf("reading the RBAC of cluster %s: %w", cluster, err)
	}
	return p, nil
}

// load lists the cluster's RBAC objects; revision is the oldest of the lists'.
func (r *RBAC) load(ctx context.Context, cluster logicalcluster.Name) (*policy, uint64, error) {
	ctx = genericapirequest.WithNamespace(logicalcluster.WithName(ctx, cluster), "")
	p := &policy{clusterRoles: map[string][]rbacv1.PolicyRule{}, roles: map[string][]rbacv1.PolicyRule{}, bindings: map[string][]binding{}}
	revision := uint64(0)
	list := func(s Store) (runtime.Object, error) {
		obj, err := s.List(ctx, &metainternalversion.ListOptions{})
		if err != nil {
			return nil, err
		}
		rv, err := clusterwatch.Revision(obj)
		if err != nil {
			return nil, err
		}
		if revision == 0 || rv < revision {
			revision = rv
		}
		return obj, nil
	}
	obj, err := list(r.stores.ClusterRoles)
	if err != nil {
		return nil, 0, err
	}
	for _, cr := range obj.(*rbacv1.ClusterRoleList).Items {
		p.clusterRoles[cr.Name] = cr.Rules
	}
	if obj, err = list(r.stores.Roles); err != nil {
		return nil, 0, err
	}
	for _, role := range obj.(*rbacv1.RoleList).Items {
		p.roles[role.Namespace+"/"+role.Name] = role.Rules
	}
	if obj, err = list(r.stores.ClusterRoleBindings); err != nil {
		return nil, 0, err
	}
	for _, b := range obj.(*rbacv1.ClusterRoleBindingList).Items {
		p.clusterBindings = append(p.clusterBindings, binding{kind: "ClusterRoleBinding", name: b.Name, role: b.RoleRef, subjects: b.Subjects})
	}
	if obj, err = list(r.stores.RoleBindings); err != nil {
		return nil, 0, err
	}
	for _, b := range obj.(*rbacv1.RoleBindingList).Items {
		p.bindings[b.Namespace] = append(p.bindings[b.Namespace], binding{kind: "RoleBinding", name: b.Name, namespace: b.Namespace, role: b.RoleRef, subjects: b.Subjects})
	}
	return p, revision, nil
}

// Run drops a cluster's snapshot whenever one of its RBAC objects changes, until
// ctx ends.
func (r *RBAC) Run(ctx context.Context) { r.policies.Run(ctx) }
