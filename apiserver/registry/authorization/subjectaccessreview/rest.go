// Package subjectaccessreview serves subjectaccessreviews: may a given user do
// something in the request's cluster.
package subjectaccessreview

import (
	"context"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/warren-dev/warren/apiserver/registry/authorization"
)

// REST answers subject access reviews; nothing is stored.
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

func (r *REST) New() runtime.Object     { return &authorizationv1.SubjectAccessReview{} }
func (r *REST) Destroy()                {}
func (r *REST) NamespaceScoped() bool   { return false }
func (r *REST) GetSingularName() string { return "subjectaccessreview" }

// Create decides the review.
func (r *REST) Create(ctx context.Context, obj runtime.Object, validate rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	review := obj.(*authorizationv1.SubjectAccessReview)
	spec := field.NewPath("spec")
	var errs field.ErrorList
	if (review.Spec.ResourceAttributes == nil) == (review.Spec.NonResourceAttributes == nil) {
		errs = append(errs, field.Invalid(spec.Child("resourceAttributes"), review.Spec.ResourceAttributes, "exactly one of nonResourceAttributes or resourceAttributes must be specified"))
	}
	if review.Spec.User == "" && len(review.Spec.Groups) == 0 {
		errs = append(errs, field.Invalid(spec.Child("user"), review.Spec.User, "at least one of user or group must be specified"))
	}
	if len(errs) > 0 {
		return nil, apierrors.NewInvalid(authorizationv1.SchemeGroupVersion.WithKind("SubjectAccessReview").GroupKind(), "", errs)
	}
	if validate != nil {
		if err := validate(ctx, obj); err != nil {
			return nil, err
		}
	}
	extra := map[string][]string{}
	for k, v := range review.Spec.Extra {
		extra[k] = v
	}
	u := &user.DefaultInfo{Name: review.Spec.User, UID: review.Spec.UID, Groups: review.Spec.Groups, Extra: extra}
	a := authorization.Attributes(u, review.Spec.ResourceAttributes, review.Spec.NonResourceAttributes)
	review.Status = authorization.Decide(ctx, r.authz, a)
	return review, nil
}
