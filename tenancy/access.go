package tenancy

import (
	"context"
	"fmt"

	"k8s.io/apiserver/pkg/authorization/authorizer"

	tenancyv1alpha1 "github.com/warren-dev/warren/tenancy/apis/tenancy/v1alpha1"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// Access decides who may enter a workspace at all; what they may do inside is
// then the workspace's own RBAC. A user may enter a workspace they created, a
// service account the workspace it lives in, and anyone else only with the
// verb "access" on workspaces/content of that workspace in the parent's RBAC.
// It never allows by itself: it denies or has no opinion.
type Access struct {
	index  *Index
	parent authorizer.Authorizer
}

// NewAccess returns the authorizer; parent decides the "access" verb in the
// parent workspace (its RBAC).
func NewAccess(index *Index, parent authorizer.Authorizer) *Access {
	return &Access{index: index, parent: parent}
}

// Authorize implements authorizer.Authorizer.
func (a *Access) Authorize(ctx context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	name, ok := logicalcluster.From(ctx)
	if !ok || name == logicalcluster.Root || name == logicalcluster.Wildcard {
		return authorizer.DecisionNoOpinion, "", nil
	}
	c, err := a.index.Cluster(ctx, name)
	if err != nil {
		return authorizer.DecisionNoOpinion, "", err
	}
	owner, u := c.Owner, attrs.GetUser()
	if owner == nil || u == nil {
		return authorizer.DecisionNoOpinion, "", nil
	}
	if owner.User != "" && u.GetName() == owner.User {
		return authorizer.DecisionNoOpinion, "", nil
	}
	if home := u.GetExtra()[logicalcluster.UserExtra]; len(home) == 1 && home[0] == string(name) {
		return authorizer.DecisionNoOpinion, "", nil
	}
	content := authorizer.AttributesRecord{
		User:            u,
		Verb:            tenancyv1alpha1.AccessVerb,
		APIGroup:        tenancyv1alpha1.GroupName,
		APIVersion:      tenancyv1alpha1.SchemeGroupVersion.Version,
		Resource:        "workspaces",
		Subresource:     "content",
		Name:            owner.Name,
		ResourceRequest: true,
	}
	decision, _, err := a.parent.Authorize(logicalcluster.WithName(ctx, logicalcluster.Name(owner.Cluster)), content)
	if err != nil {
		return authorizer.DecisionNoOpinion, "", err
	}
	if decision == authorizer.DecisionAllow {
		return authorizer.DecisionNoOpinion, "", nil
	}
	parent, _ := c.Path.Parent()
	return authorizer.DecisionDeny, fmt.Sprintf("%q may not enter workspace %s: that needs the verb %q on %s %q in %s",
		u.GetName(), c.Path, tenancyv1alpha1.AccessVerb, tenancyv1alpha1.ContentResource, owner.Name, parent), nil
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
