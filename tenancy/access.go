package tenancy

import (
	"context"
	"slices"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"

	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// AccessVerb is the verb on the non-resource path "/" of a workspace that lets
// a user enter it, granted by the workspace's own RBAC (cluster-admin there
// includes it), as in kcp.
const AccessVerb = "access"

// accessDenied is the one reason a user gets for a workspace they may not
// enter, whether it exists or not.
const accessDenied = "access denied"

// Access decides who may enter a workspace at all; what they may do inside is
// then the workspace's own RBAC. It runs first among the authorizers, so it is
// where a request's workspace is looked up: for everyone but the installation's
// admins, a workspace that does not exist, one not yet serving and one they may
// not enter are denied alike, with the same reason, so nobody learns which
// workspaces exist. A service account may always enter the workspace it lives
// in; anyone else needs the verb "access" on "/" in the workspace's RBAC.
// Anonymous requests (health checks) are left to the other authorizers at the
// server's own paths and denied in any named workspace. It never allows by
// itself: it denies or has no opinion.
//
// It also keeps installation-wide identities out of reach of workspaces, as
// kcp does: no workspace's RBAC, even cluster-admin there, lets anyone but
// members of system:masters impersonate a reserved group they are not in.
type Access struct {
	index *Index
	rbac  authorizer.Authorizer
	// admins are the groups whose members may go anywhere; reserved the
	// groups only their members may impersonate.
	admins, reserved []string
}

// NewAccess returns the authorizer; rbac decides "access" in a workspace (its
// own RBAC), members of the admins groups are never denied entry, and the
// admins and reserved groups may be impersonated only by their members.
func NewAccess(index *Index, rbac authorizer.Authorizer, admins, reserved []string) *Access {
	return &Access{index: index, rbac: rbac, admins: admins, reserved: append(slices.Clone(admins), reserved...)}
}

// impersonationDenied is kcp's reason for refusing to impersonate a reserved
// group.
const impersonationDenied = "impersonation is not allowed for the requestor"

// Authorize implements authorizer.Authorizer.
func (a *Access) Authorize(ctx context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	u := attrs.GetUser()
	if u == nil {
		return authorizer.DecisionDeny, accessDenied, nil
	}
	if a.impersonatesReserved(u, attrs) {
		return authorizer.DecisionDeny, impersonationDenied, nil
	}
	if a.admin(u) {
		// An admin is told what is there, and what is not (Serving).
		return authorizer.DecisionNoOpinion, "", nil
	}
	if slices.Contains(u.GetGroups(), user.AllUnauthenticated) {
		if logicalcluster.Requested(ctx) {
			return authorizer.DecisionDeny, accessDenied, nil
		}
		return authorizer.DecisionNoOpinion, "", nil
	}
	name, resolved := logicalcluster.From(ctx)
	if !resolved {
		return authorizer.DecisionDeny, accessDenied, nil
	}
	if name == logicalcluster.Wildcard {
		return authorizer.DecisionNoOpinion, "", nil
	}
	enters, err := a.enters(ctx, u, name)
	if err != nil {
		return authorizer.DecisionNoOpinion, "", err
	}
	if !enters {
		return authorizer.DecisionDeny, accessDenied, nil
	}
	return authorizer.DecisionNoOpinion, "", nil
}

// Enters tells whether u, neither an admin nor unauthenticated, may enter the
// logical cluster the request of ctx is in, as Authorize decides it: the
// cluster is resolved, served here and Ready or Terminating, and u is one of
// its service accounts or its RBAC grants u access. It returns the cluster.
func (a *Access) Enters(ctx context.Context, u user.Info) (logicalcluster.Name, bool) {
	if a.admin(u) || slices.Contains(u.GetGroups(), user.AllUnauthenticated) {
		return "", false
	}
	name, resolved := logicalcluster.From(ctx)
	if !resolved || name == logicalcluster.Wildcard {
		return "", false
	}
	enters, err := a.enters(ctx, u, name)
	return name, err == nil && enters
}

// admin tells an installation admin.
func (a *Access) admin(u user.Info) bool {
	return slices.ContainsFunc(u.GetGroups(), func(g string) bool { return slices.Contains(a.admins, g) })
}

func (a *Access) enters(ctx context.Context, u user.Info, name logicalcluster.Name) (bool, error) {
	c, err := a.index.Served(ctx, name)
	if err != nil {
		return false, nil
	}
	switch c.Phase {
	case corev1alpha1.LogicalClusterPhaseReady, corev1alpha1.LogicalClusterPhaseTerminating:
	default:
		return false, nil
	}
	if ownServiceAccount(u, name) {
		return true, nil
	}
	enter := authorizer.AttributesRecord{User: u, Verb: AccessVerb, Path: "/"}
	decision, _, err := a.rbac.Authorize(ctx, enter)
	if err != nil {
		return false, err
	}
	return decision == authorizer.DecisionAllow, nil
}

// impersonatesReserved reports whether attrs ask whether u may impersonate a
// reserved group u is not in (or every group at once), and u is no member of
// system:masters. Both of k8s.io/apiserver's ways of asking count: the verb
// "impersonate" on groups of the core group, and the constrained
// "impersonate:<mode>" on groups of authentication.k8s.io.
func (a *Access) impersonatesReserved(u user.Info, attrs authorizer.Attributes) bool {
	verb := attrs.GetVerb()
	if attrs.GetResource() != "groups" || (verb != "impersonate" && !strings.HasPrefix(verb, "impersonate:")) {
		return false
	}
	if g := attrs.GetAPIGroup(); g != "" && g != authenticationv1.GroupName {
		return false
	}
	groups := u.GetGroups()
	g := attrs.GetName()
	if slices.Contains(groups, user.SystemPrivilegedGroup) {
		return false
	}
	return g == "*" || slices.Contains(a.reserved, g) && !slices.Contains(groups, g)
}

// ownServiceAccount reports whether u is a service account of cluster.
func ownServiceAccount(u user.Info, cluster logicalcluster.Name) bool {
	if !strings.HasPrefix(u.GetName(), serviceaccount.ServiceAccountUsernamePrefix) {
		return false
	}
	home := u.GetExtra()[logicalcluster.UserExtra]
	return len(home) == 1 && home[0] == string(cluster)
}

// ConditionsAwareAuthorize implements authorizer.Authorizer; its decisions are
// unconditional.
func (a *Access) ConditionsAwareAuthorize(ctx context.Context, attrs authorizer.Attributes) authorizer.ConditionsAwareDecision {
	return authorizer.ConditionsAwareDecisionFromParts(a.Authorize(ctx, attrs))
}

// EvaluateConditions implements authorizer.Authorizer.
func (a *Access) EvaluateConditions(context.Context, authorizer.ConditionsAwareDecision, authorizer.ConditionsData) (authorizer.Decision, string, error) {
	return authorizer.DecisionDeny, "", authorizer.ErrorConditionEvaluationNotSupported
}
