package e2e

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "gopkg.in/go-jose/go-jose.v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// issuer is an OpenID Connect identity provider served by the test: its
// discovery document, its keys, and tokens it signs.
type issuer struct {
	*httptest.Server
	key *rsa.PrivateKey
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	i := &issuer{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": i.URL, "jwks_uri": i.URL + "/keys", "id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported": []string{"id_token"}, "subject_types_supported": []string{"public"},
		})
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "one", Algorithm: "RS256", Use: "sig"}}})
	})
	i.Server = httptest.NewTLSServer(mux)
	t.Cleanup(i.Close)
	return i
}

// token signs claims, with the issuer, an hour's validity and those given.
func (i *issuer) token(t *testing.T, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: i.key, KeyID: "one"}}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	all := map[string]any{"iss": i.URL, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	for k, v := range claims {
		all[k] = v
	}
	payload, err := json.Marshal(all)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	token, err := signed.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// TestOIDC runs warren with upstream's structured AuthenticationConfiguration
// naming an identity provider the test serves: a user's token from it works in
// the workspace where the user is bound and nowhere else; the provider cannot
// make anyone an admin (groups system:… are dropped); tokens for another
// audience or from another signer are refused.
func TestOIDC(t *testing.T) {
	t.Parallel()
	idp := newIssuer(t)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: idp.Certificate().Raw})
	config := fmt.Sprintf(`apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
jwt:
- issuer:
    url: %s
    audiences: [warren]
    certificateAuthority: |
      %s
  claimMappings:
    username: {claim: sub, prefix: "oidc:"}
    groups: {claim: groups, prefix: ""}
`, idp.URL, strings.ReplaceAll(strings.TrimSpace(string(ca)), "\n", "\n      "))
	file := filepath.Join(t.TempDir(), "authentication.yaml")
	if err := os.WriteFile(file, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServerWith(t, "--authentication-config", file)
	s.Workspace("a")
	s.Workspace("b")
	s.kubectl("a", "create", "clusterrolebinding", "dana-admin", "--clusterrole=cluster-admin", "--user=oidc:dana")
	ctx := context.Background()
	dana := idp.token(t, map[string]any{"sub": "dana", "aud": "warren", "groups": []string{"devs", "system:masters", "system:warren:shards"}})

	eventually(t, "dana's token works in root:a", func() error {
		_, err := clientFor(t, s.tokenConfig(dana, "a")).CoreV1().ConfigMaps("default").Create(ctx, configMap("from-oidc"), metav1.CreateOptions{})
		return err
	})
	if _, err := clientFor(t, s.tokenConfig(dana, "b")).CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("dana lists config maps in root:b, where she is not bound: %v, want 403", err)
	}
	if _, err := clientFor(t, s.tokenConfig(dana, "root")).CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("dana, whose token claims system:masters, lists root's namespaces: %v, want 403", err)
	}
	for what, token := range map[string]string{
		"a token for another audience": idp.token(t, map[string]any{"sub": "dana", "aud": "elsewhere"}),
		"a token another key signed":   newIssuer(t).token(t, map[string]any{"sub": "dana", "aud": "warren", "iss": idp.URL}),
	} {
		if _, err := clientFor(t, s.tokenConfig(token, "a")).CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{}); !apierrors.IsUnauthorized(err) {
			t.Errorf("%s: %v, want 401", what, err)
		}
	}
}
