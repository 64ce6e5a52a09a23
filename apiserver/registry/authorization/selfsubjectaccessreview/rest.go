// Package selfsubjectaccessreview serves selfsubjectaccessreviews (`kubectl auth
// can-i`): may the requesting user do something in the request's cluster.
package selfsubjectaccessreview

import (
	"context"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/warren-dev/warren/apiserver/registry/authorization"
)

// REST answers self subject access reviews; nothing is stored.
type REST struct {
	authz authorizer.Authorizer
}

var (
	_ rest.Creater              = (*REST)(nil)
	_ rest.Scoper               = (*REST)(nil)
	_ rest.SingularNameProvider = (*REST)(nil)
)

// NewREST returns the resource, deciding with authz.
func NewREST(authz authorizer.Authorizer) *REST { return &REST{authz: authz} }

func (r *REST) New() runtime.Object     { return &authorizationv1.SelfSubjectAccessReview{} }
func (r *REST) Destroy()                {}
func (r *REST) NamespaceScoped() bool   { return false }
func (r *REST) GetSingularName() string { return "selfsubjectaccessreview" }

// Create decides the review for the requesting user.
func (r *REST) Create(ctx context.Context, obj runtime.Object, validate rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	review := obj.(*authorizationv1.SelfSubjectAccessReview)
	if (review.Spec.ResourceAttributes == nil) == (review.Spec.NonResourceAttributes == nil) {
		return nil, apierrors.NewInvalid(authorizationv1.SchemeGroupVersion.WithKind("SelfSubjectAccessReview").GroupKind(), "", field.ErrorList{
			field.Invalid(field.NewPath("spec", "resourceAttributes"), review.Spec.ResourceAttributes, "exactly one of nonResourceAttributes or resourceAttributes must be specified"),
		})
	}
	u, ok := genericapirequest.UserFrom(ctx)
	if !ok {
		return nil, apierrors.NewBadRequest("no user present on request")
	}
	if validate != nil {
		if err := validate(ctx, obj); err != nil {
			return nil, err
		}
	}
	a := authorization.Attributes(u, review.Spec.ResourceAttributes, review.Spec.NonResourceAttributes)
	review.Status = authorization.Decide(ctx, r.authz, a)
	return review, nil
}
