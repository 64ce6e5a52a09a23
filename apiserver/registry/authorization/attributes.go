// Package authorization holds what the access review resources share: turning a
// review's spec into authorizer attributes and a decision into its status. Its
// subpackages serve subjectaccessreviews, selfsubjectaccessreviews and
// selfsubjectrulesreviews; every review is answered in the request's cluster.
package authorization

import (
	"context"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// Attributes turns a review's resource or non-resource attributes into what
// the authorizer decides on.
func Attributes(u user.Info, r *authorizationv1.ResourceAttributes, nr *authorizationv1.NonResourceAttributes) authorizer.AttributesRecord {
	a := authorizer.AttributesRecord{User: u}
	if r != nil {
		a.Verb, a.Namespace, a.APIGroup, a.APIVersion = r.Verb, r.Namespace, r.Group, r.Version
		a.Resource, a.Subresource, a.Name = r.Resource, r.Subresource, r.Name
		a.ResourceRequest = true
	} else if nr != nil {
		a.Verb, a.Path = nr.Verb, nr.Path
	}
	return a
}

// Decide asks authz about a and returns the review's status.
func Decide(ctx context.Context, authz authorizer.Authorizer, a authorizer.Attributes) authorizationv1.SubjectAccessReviewStatus {
	decision, reason, err := authz.Authorize(ctx, a)
	status := authorizationv1.SubjectAccessReviewStatus{
		Allowed: decision == authorizer.DecisionAllow,
		Denied:  decision == authorizer.DecisionDeny,
		Reason:  reason,
	}
	if err != nil {
		status.EvaluationError = err.Error()
	}
	return status
}
