package serviceaccount

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/warren-dev/warren/apiserver/token"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

const (
	// defaultExpiry and minExpiry bound a requested token's lifetime, as in
	// Kubernetes.
	defaultExpiry = time.Hour
	minExpiry     = 10 * time.Minute
	maxExpiry     = 48 * time.Hour
)

// TokenREST serves serviceaccounts/token (`kubectl create token`).
type TokenREST struct {
	serviceAccounts rest.Getter
	signer          *token.Signer
}

var (
	_ rest.NamedCreater             = (*TokenREST)(nil)
	_ rest.GroupVersionKindProvider = (*TokenREST)(nil)
)

// NewTokenREST returns the subresource, signing with signer.
func NewTokenREST(serviceAccounts rest.Getter, signer *token.Signer) *TokenREST {
	return &TokenREST{serviceAccounts: serviceAccounts, signer: signer}
}

func (r *TokenREST) New() runtime.Object { return &authenticationv1.TokenRequest{} }
func (r *TokenREST) Destroy()            {}

// GroupVersionKind implements rest.GroupVersionKindProvider: the subresource
// takes and returns TokenRequests.
func (r *TokenREST) GroupVersionKind(schema.GroupVersion) schema.GroupVersionKind {
	return authenticationv1.SchemeGroupVersion.WithKind("TokenRequest")
}

// Create issues a token for the service account name of the request's cluster
// and namespace.
func (r *TokenREST) Create(ctx context.Context, name string, obj runtime.Object, validate rest.ValidateObjectFunc, _ *metav1.CreateOptions) (runtime.Object, error) {
	req := obj.(*authenticationv1.TokenRequest)
	cluster, ok := logicalcluster.From(ctx)
	if !ok || cluster == logicalcluster.Wildcard {
		return nil, apierrors.NewBadRequest("a token is issued in one cluster")
	}
	expiry := defaultExpiry
	if s := req.Spec.ExpirationSeconds; s != nil {
		expiry = time.Duration(*s) * time.Second
	}
	if expiry < minExpiry || expiry > maxExpiry {
		return nil, apierrors.NewInvalid(authenticationv1.SchemeGroupVersion.WithKind("TokenRequest").GroupKind(), name, field.ErrorList{
			field.Invalid(field.NewPath("spec", "expirationSeconds"), req.Spec.ExpirationSeconds,
				fmt.Sprintf("must be between %d and %d seconds", int(minExpiry.Seconds()), int(maxExpiry.Seconds()))),
		})
	}
	if req.Spec.BoundObjectRef != nil {
		return nil, apierrors.NewBadRequest("tokens bound to objects are not supported")
	}
	obj2, err := r.serviceAccounts.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	sa := obj2.(*corev1.ServiceAccount)
	if validate != nil {
		if err := validate(ctx, req); err != nil {
			return nil, err
		}
	}
	audiences := req.Spec.Audiences
	if len(audiences) == 0 {
		audiences = []string{token.APIAudience}
	}
	expires := time.Now().Add(expiry)
	signed, err := r.signer.Issue(cluster, sa, audiences, expires)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("signing the token: %w", err))
	}
	out := req.DeepCopy()
	out.Spec.Audiences = audiences
	seconds := int64(expiry.Seconds())
	out.Spec.ExpirationSeconds = &seconds
	out.Status = authenticationv1.TokenRequestStatus{Token: signed, ExpirationTimestamp: metav1.NewTime(expires)}
	return out, nil
}
