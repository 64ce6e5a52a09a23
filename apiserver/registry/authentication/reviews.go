// Package authentication serves tokenreviews (who a bearer token authenticates
// as) and selfsubjectreviews (`kubectl auth whoami`).
package authentication

import (
	"context"
	"net/http"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"

	"github.com/warren-dev/warren/apiserver/registry"
)

// NewTokenReviews authenticates spec.token as a request bearing it would be,
// with tokens.
func NewTokenReviews(tokens authenticator.Request) *registry.Review {
	return &registry.Review{
		NewFunc:  func() runtime.Object { return &authenticationv1.TokenReview{} },
		Singular: "tokenreview",
		Answer: func(ctx context.Context, _ user.Info, obj runtime.Object) (runtime.Object, error) {
			review := obj.(*authenticationv1.TokenReview)
			if review.Spec.Token == "" {
				return nil, apierrors.NewInvalid(authenticationv1.SchemeGroupVersion.WithKind("TokenReview").GroupKind(), "", field.ErrorList{
					field.Required(field.NewPath("spec", "token"), ""),
				})
			}
			req := (&http.Request{Header: http.Header{}}).WithContext(ctx)
			req.Header.Set("Authorization", "Bearer "+review.Spec.Token)
			resp, ok, err := tokens.AuthenticateRequest(req)
			review.Status = authenticationv1.TokenReviewStatus{Authenticated: ok && err == nil}
			if err != nil {
				review.Status.Error = err.Error()
			}
			if ok && err == nil {
				review.Status.User = userInfo(resp.User)
				review.Status.Audiences = resp.Audiences
			}
			return review, nil
		},
	}
}

// NewSelfSubjectReviews returns the requesting user.
func NewSelfSubjectReviews() *registry.Review {
	return &registry.Review{
		NewFunc:  func() runtime.Object { return &authenticationv1.SelfSubjectReview{} },
		Singular: "selfsubjectreview",
		Answer: func(_ context.Context, u user.Info, obj runtime.Object) (runtime.Object, error) {
			review := obj.(*authenticationv1.SelfSubjectReview)
			review.Status.UserInfo = userInfo(u)
			return review, nil
		},
	}
}

func userInfo(u user.Info) authenticationv1.UserInfo {
	extra := map[string]authenticationv1.ExtraValue{}
	for k, v := range u.GetExtra() {
		extra[k] = v
	}
	return authenticationv1.UserInfo{Username: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups(), Extra: extra}
}
