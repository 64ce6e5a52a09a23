// Package authorization serves the access reviews: subjectaccessreviews (may a
// given user do something), selfsubjectaccessreviews (`kubectl auth can-i`) and
// selfsubjectrulesreviews (`kubectl auth can-i --list`), each answered in the
// request's cluster.
package authorization

import (
	"context"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

// attributes turns a review's resource or non-resource attributes into what
// the authorizer decides on.
func attributes(u user.Info, r *authorizationv1.ResourceAttributes, nr *authorizationv1.NonResourceAttributes) authorizer.AttributesRecord {
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

// decide asks authz about a and returns the review's status.
func decide(ctx context.Context, authz authorizer.Authorizer, a authorizer.Attributes) authorizationv1.SubjectAccessReviewStatus {
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
