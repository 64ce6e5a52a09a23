package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
)

// TestBadInput sends what clients get wrong, or attackers try: each gets a 4xx
// Status with a message, and the server stays healthy.
func TestBadInput(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *server) {
		admin := s.adminHTTP(t)
		big := strings.Repeat("x", 1600*1024)
		cases := []struct {
			name, method, path, contentType, body string
			code                                  int
			message                               string
		}{
			{"malformed JSON", "POST", "/api/v1/namespaces/default/configmaps", "application/json", `{"kind":"ConfigMap",`, 400, ""},
			{"malformed YAML", "POST", "/api/v1/namespaces/default/configmaps", "application/yaml", "kind: ConfigMap\n  : -", 400, ""},
			{"invalid name", "POST", "/api/v1/namespaces/default/configmaps", "application/json",
				`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Not_Valid"}}`, 422, "metadata.name"},
			{"invalid data key", "POST", "/api/v1/namespaces/default/configmaps", "application/json",
				`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"k"},"data":{"a/b":"c"}}`, 422, "data[a/b]"},
			{"unknown field, strict", "POST", "/api/v1/namespaces/default/configmaps?fieldValidation=Strict", "application/json",
				`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"strict"},"spec":{"foo":1}}`, 400, "unknown field"},
			{"invalid role binding", "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", "application/json",
				`{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"b"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"r"},"subjects":[{"kind":"Robot","name":"x"}]}`,
				422, "roleRef.kind"},
			{"configmap over 1 MiB", "POST", "/api/v1/namespaces/default/configmaps", "application/json",
				`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"a":"` + big + `"}}`, 422, "data"},
			{"object over the storage limit", "POST", "/apis/coordination.k8s.io/v1/namespaces/default/leases", "application/json",
				`{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"big"},"spec":{"holderIdentity":"` + big + `"}}`, 413, ""},
			{"wrong namespace in body", "POST", "/api/v1/namespaces/default/configmaps", "application/json",
				`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"n","namespace":"other"}}`, 400, "namespace"},
			{"invalid cluster name", "GET", "/clusters/Not_A_Name/api/v1/namespaces", "", "", 400, "invalid logical cluster name"},
			{"dot-dot cluster", "GET", "/clusters/../api/v1/namespaces", "", "", 400, "invalid logical cluster name"},
			{"encoded dot-dot cluster", "GET", "/clusters/%2e%2e/api/v1/namespaces", "", "", 400, "invalid logical cluster name"},
			{"wildcard write", "POST", "/clusters/*/api/v1/namespaces/default/configmaps", "application/json",
				`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"w"}}`, 405, "across all clusters"},
			{"wildcard in one namespace", "GET", "/clusters/*/api/v1/namespaces/default/configmaps", "", "", 400, "cannot name one"},
			{"invalid resource version", "GET", "/api/v1/namespaces/default/configmaps?resourceVersion=abc&resourceVersionMatch=Exact", "", "", 400, ""},
			{"invalid continue token", "GET", "/api/v1/namespaces/default/configmaps?limit=1&continue=garbage", "", "", 400, "continue"},
		}
		for _, c := range cases {
			t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
				req, err := http.NewRequest(c.method, s.URL(""), bytes.NewBufferString(c.body))
				if err != nil {
					t.Fatal(err)
				}
				req.URL.Opaque = "//" + req.URL.Host + c.path // sent as written, never cleaned
				if c.contentType != "" {
					req.Header.Set("Content-Type", c.contentType)
				}
				resp, err := admin.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != c.code {
					t.Errorf("status %d, want %d: %s", resp.StatusCode, c.code, body)
				}
				var status metav1.Status
				if err := json.Unmarshal(body, &status); err != nil || status.Kind != "Status" || int(status.Code) != c.code {
					t.Errorf("the answer is not a Status of code %d (%v): %s", c.code, err, body)
				}
				if c.message != "" && !bytes.Contains(body, []byte(c.message)) {
					t.Errorf("message lacks %q: %s", c.message, body)
				}
			})
		}
		if !s.Ready() {
			t.Fatal("the server is not ready after bad input")
		}
		s.kubectl("root", "get", "configmaps")
	})
}

// adminHTTP is an HTTP client presenting the admin's client certificate.
func (s *server) adminHTTP(t *testing.T) *http.Client {
	t.Helper()
	cfg, err := clientcmd.LoadFromFile(s.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	auth := cfg.AuthInfos["admin"]
	cert, err := tls.X509KeyPair(auth.ClientCertificateData, auth.ClientKeyData)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(s.DataDir + "/ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatal(fmt.Errorf("no CA in %s/ca.crt", s.DataDir))
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool}}}
}
