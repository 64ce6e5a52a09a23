package registry

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
)

// Review is the storage of a review resource (access reviews, token reviews): a
// review is created, answered in the request's cluster, and never stored.
type Review struct {
	// NewFunc makes an empty review.
	NewFunc func() runtime.Object
	// Singular is the resource's singular name.
	Singular string
	// Answer returns the review with its status filled in for the requesting
	// user.
	Answer func(ctx context.Context, u user.Info, review runtime.Object) (runtime.Object, error)
}

var (
	_ rest.Creater              = (*Review)(nil)
	_ rest.Scoper               = (*Review)(nil)
	_ rest.SingularNameProvider = (*Review)(nil)
)

func (r *Review) New() runtime.Object     { return r.NewFunc() }
func (r *Review) Destroy()                {}
func (r *Review) NamespaceScoped() bool   { return false }
func (r *Review) GetSingularName() string { return r.Singular }

// Create answers the review.
func (r *Review) Create(ctx context.Context, obj runtime.Object, validate rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	u, ok := genericapirequest.UserFrom(ctx)
	if !ok {
		return nil, apierrors.NewBadRequest("no user present on request")
	}
	if validate != nil {
		if err := validate(ctx, obj); err != nil {
			return nil, err
		}
	}
	return r.Answer(ctx, u, obj)
}
