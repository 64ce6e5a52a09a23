package authorization

import (
	"context"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/warren-dev/warren/apiserver/registry"
)

// NewSubjectAccessReviews answers whether spec's user may do something.
func NewSubjectAccessReviews(authz authorizer.Authorizer) *registry.Review {
	return &registry.Review{
		NewFunc:  func() runtime.Object { return &authorizationv1.SubjectAccessReview{} },
		Singular: "subjectaccessreview",
		Answer: func(ctx context.Context, _ user.Info, obj runtime.Object) (runtime.Object, error) {
			review := obj.(*authorizationv1.SubjectAccessReview)
			spec := field.NewPath("spec")
			errs := exactlyOne(review.Spec.ResourceAttributes, review.Spec.NonResourceAttributes)
			if review.Spec.User == "" && len(review.Spec.Groups) == 0 {
				errs = append(errs, field.Invalid(spec.Child("user"), review.Spec.User, "at least one of user or group must be specified"))
			}
			if len(errs) > 0 {
				return nil, apierrors.NewInvalid(authorizationv1.SchemeGroupVersion.WithKind("SubjectAccessReview").GroupKind(), "", errs)
			}
			extra := map[string][]string{}
			for k, v := range review.Spec.Extra {
				extra[k] = v
			}
			u := &user.DefaultInfo{Name: review.Spec.User, UID: review.Spec.UID, Groups: review.Spec.Groups, Extra: extra}
			review.Status = decide(ctx, authz, attributes(u, review.Spec.ResourceAttributes, review.Spec.NonResourceAttributes))
			return review, nil
		},
	}
}

// NewSelfSubjectAccessReviews answers whether the requesting user may do
// something.
func NewSelfSubjectAccessReviews(authz authorizer.Authorizer) *registry.Review {
	return &registry.Review{
		NewFunc:  func() runtime.Object { return &authorizationv1.SelfSubjectAccessReview{} },
		Singular: "selfsubjectaccessreview",
		Answer: func(ctx context.Context, u user.Info, obj runtime.Object) (runtime.Object, error) {
			review := obj.(*authorizationv1.SelfSubjectAccessReview)
			if errs := exactlyOne(review.Spec.ResourceAttributes, review.Spec.NonResourceAttributes); len(errs) > 0 {
				return nil, apierrors.NewInvalid(authorizationv1.SchemeGroupVersion.WithKind("SelfSubjectAccessReview").GroupKind(), "", errs)
			}
			review.Status = decide(ctx, authz, attributes(u, review.Spec.ResourceAttributes, review.Spec.NonResourceAttributes))
			return review, nil
		},
	}
}

// NewSelfSubjectRulesReviews lists what the requesting user may do in a
// namespace.
func NewSelfSubjectRulesReviews(rules authorizer.RuleResolver) *registry.Review {
	return &registry.Review{
		NewFunc:  func() runtime.Object { return &authorizationv1.SelfSubjectRulesReview{} },
		Singular: "selfsubjectrulesreview",
		Answer: func(ctx context.Context, u user.Info, obj runtime.Object) (runtime.Object, error) {
			review := obj.(*authorizationv1.SelfSubjectRulesReview)
			if review.Spec.Namespace == "" {
				return nil, apierrors.NewInvalid(authorizationv1.SchemeGroupVersion.WithKind("SelfSubjectRulesReview").GroupKind(), "", field.ErrorList{
					field.Required(field.NewPath("spec", "namespace"), "no namespace on request"),
				})
			}
			resources, nonResources, incomplete, err := rules.RulesFor(ctx, u, review.Spec.Namespace)
			status := authorizationv1.SubjectRulesReviewStatus{Incomplete: incomplete}
			if err != nil {
				status.EvaluationError = err.Error()
			}
			for _, rule := range resources {
				status.ResourceRules = append(status.ResourceRules, authorizationv1.ResourceRule{
					Verbs: rule.GetVerbs(), APIGroups: rule.GetAPIGroups(), Resources: rule.GetResources(), ResourceNames: rule.GetResourceNames(),
				})
			}
			for _, rule := range nonResources {
				status.NonResourceRules = append(status.NonResourceRules, authorizationv1.NonResourceRule{
					Verbs: rule.GetVerbs(), NonResourceURLs: rule.GetNonResourceURLs(),
				})
			}
			review.Status = status
			return review, nil
		},
	}
}

func exactlyOne(r *authorizationv1.ResourceAttributes, nr *authorizationv1.NonResourceAttributes) field.ErrorList {
	if (r == nil) == (nr == nil) {
		return field.ErrorList{field.Invalid(field.NewPath("spec", "resourceAttributes"), r, "exactly one of nonResourceAttributes or resourceAttributes must be specified")}
	}
	return nil
}
