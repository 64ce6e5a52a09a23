// Package token issues and verifies service account tokens, each bound to the
// logical cluster of its service account.
//
// A token is a JWT signed with the installation's service account key (ES256).
// Besides Kubernetes' claims it names the cluster; a token authenticates only
// while its service account exists in that cluster with the same UID, and the
// user it yields carries the cluster in its extra information, so the authorizer
// treats it as nobody in any other cluster.
package token

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/user"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

const (
	// Issuer is the iss claim of every token.
	Issuer = "https://warren.dev/serviceaccount"
	// APIAudience is the audience a token must have to authenticate to the API.
	APIAudience = "warren"
)

// claims are the claims of a service account token.
type claims struct {
	jwt.RegisteredClaims
	Kubernetes kubernetesClaims `json:"kubernetes.io"`
	Cluster    string           `json:"kcp.io/cluster"`
}

type kubernetesClaims struct {
	Namespace      string `json:"namespace"`
	ServiceAccount struct {
		Name string `json:"name"`
		UID  string `json:"uid"`
	} `json:"serviceaccount"`
}

// Signer signs tokens.
type Signer struct {
	key *ecdsa.PrivateKey
}

// NewSigner returns a signer with key.
func NewSigner(key *ecdsa.PrivateKey) *Signer { return &Signer{key: key} }

// Issue returns a token for sa of cluster, valid for audiences until expires.
func (s *Signer) Issue(cluster logicalcluster.Name, sa *corev1.ServiceAccount, audiences []string, expires time.Time) (string, error) {
	now := time.Now()
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   serviceaccount.MakeUsername(sa.Namespace, sa.Name),
			Audience:  audiences,
			ExpiresAt: jwt.NewNumericDate(expires),
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
		},
		Cluster: string(cluster),
	}
	c.Kubernetes.Namespace = sa.Namespace
	c.Kubernetes.ServiceAccount.Name = sa.Name
	c.Kubernetes.ServiceAccount.UID = string(sa.UID)
	return jwt.NewWithClaims(jwt.SigningMethodES256, c).SignedString(s.key)
}

// Authenticator authenticates service account tokens.
type Authenticator struct {
	key             *ecdsa.PublicKey
	serviceAccounts rest.Getter
}

var _ authenticator.Token = (*Authenticator)(nil)

// NewAuthenticator returns an authenticator of tokens signed by key's private
// half, looking service accounts up in serviceAccounts.
func NewAuthenticator(key *ecdsa.PublicKey, serviceAccounts rest.Getter) *Authenticator {
	return &Authenticator{key: key, serviceAccounts: serviceAccounts}
}

// AuthenticateToken implements authenticator.Token. A token that is not one of
// warren's is left to other authenticators (false, nil).
func (a *Authenticator) AuthenticateToken(ctx context.Context, raw string) (*authenticator.Response, bool, error) {
	c := &claims{}
	_, err := jwt.ParseWithClaims(raw, c, func(*jwt.Token) (any, error) { return a.key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithIssuer(Issuer), jwt.WithExpirationRequired(), jwt.WithLeeway(time.Minute))
	if errors.Is(err, jwt.ErrTokenMalformed) || errors.Is(err, jwt.ErrTokenSignatureInvalid) || errors.Is(err, jwt.ErrTokenInvalidIssuer) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("service account token: %w", err)
	}
	audiences, ok := authenticator.AudiencesFrom(ctx)
	if !ok || len(audiences) == 0 {
		audiences = authenticator.Audiences{APIAudience}
	}
	var matched authenticator.Audiences
	for _, aud := range c.Audience {
		if slices.Contains(audiences, aud) {
			matched = append(matched, aud)
		}
	}
	if len(matched) == 0 {
		return nil, false, errors.New("service account token: not valid for this audience")
	}
	if logicalcluster.Validate(c.Cluster) != nil {
		return nil, false, errors.New("service account token: invalid cluster")
	}
	ns, name := c.Kubernetes.Namespace, c.Kubernetes.ServiceAccount.Name
	lookup := genericapirequest.WithNamespace(logicalcluster.WithName(ctx, logicalcluster.Name(c.Cluster)), ns)
	obj, err := a.serviceAccounts.Get(lookup, name, &metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, false, errors.New("service account token: the service account no longer exists")
	}
	if err != nil {
		return nil, false, fmt.Errorf("service account token: looking up %s/%s: %w", ns, name, err)
	}
	if sa := obj.(*corev1.ServiceAccount); sa.UID != types.UID(c.Kubernetes.ServiceAccount.UID) {
		return nil, false, errors.New("service account token: the service account was replaced")
	}
	return &authenticator.Response{
		Audiences: matched,
		User: &user.DefaultInfo{
			Name:   serviceaccount.MakeUsername(ns, name),
			UID:    c.Kubernetes.ServiceAccount.UID,
			Groups: serviceaccount.MakeGroupNames(ns),
			Extra:  map[string][]string{logicalcluster.UserExtra: {c.Cluster}},
		},
	}, true, nil
}
