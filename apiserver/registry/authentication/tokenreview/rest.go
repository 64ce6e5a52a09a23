// Package tokenreview serves tokenreviews: who a bearer token authenticates as.
package tokenreview

import (
	"context"
	"net/http"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/registry/rest"
)

// REST answers token reviews; nothing is stored.
type REST struct {
	tokens authenticator.Request
}

var (
	_ rest.Creater              = (*REST)(nil)
	_ rest.Scoper               = (*REST)(nil)
	_ rest.SingularNameProvider = (*REST)(nil)
)

// NewREST returns the resource, authenticating tokens with tokens.
func NewREST(tokens authenticator.Request) *REST { return &REST{tokens: tokens} }

func (r *REST) New() runtime.Object     { return &authenticationv1.TokenReview{} }
func (r *REST) Destroy()                {}
func (r *REST) NamespaceScoped() bool   { return false }
func (r *REST) GetSingularName() string { return "tokenreview" }

// Create authenticates spec.token as a request bearing it would be.
func (r *REST) Create(ctx context.Context, obj runtime.Object, validate rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	review := obj.(*authenticationv1.TokenReview)
	if review.Spec.Token == "" {
		return nil, apierrors.NewInvalid(authenticationv1.SchemeGroupVersion.WithKind("TokenReview").GroupKind(), "", field.ErrorList{
			field.Required(field.NewPath("spec", "token"), ""),
		})
	}
	if validate != nil {
		if err := validate(ctx, obj); err != nil {
			return nil, err
		}
	}
	req := (&http.Request{Header: http.Header{}}).WithContext(ctx)
	req.Header.Set("Authorization", "Bearer "+review.Spec.Token)
	resp, ok, err := r.tokens.AuthenticateRequest(req)
	review.Status = authenticationv1.TokenReviewStatus{Authenticated: ok && err == nil}
	if err != nil {
		review.Status.Error = err.Error()
	}
	if ok && err == nil {
		u := resp.User
		extra := map[string]authenticationv1.ExtraValue{}
		for k, v := range u.GetExtra() {
			extra[k] = v
		}
		review.Status.User = authenticationv1.UserInfo{Username: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups(), Extra: extra}
		review.Status.Audiences = resp.Audiences
	}
	return review, nil
}
