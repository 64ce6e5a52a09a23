package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/warren-dev/warren/test/warrentest"
)

// tokens are the static users every test server knows, besides the admin.
const tokens = `alice-token,alice,alice-uid
bob-token,bob,bob-uid,"devs"
carol-token,carol,carol-uid
`

// dialects are the storages every end-to-end test runs on.
var dialects = []string{"sqlite", "postgres"}

// server is a running warren with the e2e tests' static users.
type server struct {
	*warrentest.Server
	t *testing.T
}

// eachDialect runs f as a subtest against a fresh server on every dialect.
func eachDialect(t *testing.T, f func(t *testing.T, s *server)) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			f(t, startServer(t, dialect))
		})
	}
}

// startServer starts warren on dialect.
func startServer(t *testing.T, dialect string) *server {
	t.Helper()
	return startServerWith(t, warrentest.Storage(t, dialect)...)
}

// startServerWith starts warren with extra arguments, knowing the users of tokens.
func startServerWith(t *testing.T, extra ...string) *server {
	t.Helper()
	tokenFile := filepath.Join(t.TempDir(), "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(tokens), 0o600); err != nil {
		t.Fatal(err)
	}
	return &server{Server: warrentest.Start(t, binary, append([]string{"--token-auth-file", tokenFile}, extra...)...), t: t}
}

// kubectl runs kubectl as the admin against cluster, failing the test if it fails.
func (s *server) kubectl(cluster string, args ...string) string {
	s.t.Helper()
	out, err := s.kubectlAs("", cluster, args...)
	if err != nil {
		s.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// kubectlIn runs kubectl with stdin.
func (s *server) kubectlIn(stdin, cluster string, args ...string) (string, error) {
	return s.run(stdin, "", cluster, args...)
}

// kubectlAs runs kubectl as the user of token ("" for the admin) against cluster.
func (s *server) kubectlAs(token, cluster string, args ...string) (string, error) {
	return s.run("", token, cluster, args...)
}

func (s *server) run(stdin, token, cluster string, args ...string) (string, error) {
	full := []string{"--kubeconfig", s.Kubeconfig, "--server", s.ClusterURL(cluster)}
	if token != "" {
		full = []string{"--kubeconfig", os.DevNull, "--server", s.ClusterURL(cluster), "--insecure-skip-tls-verify", "--token", token}
	}
	full = append(full, args...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", full...)
	cmd.Env = append(os.Environ(), "KUBECACHEDIR="+filepath.Join(s.DataDir, "kubecache"))
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// tokenConfig is a client-go configuration for cluster as the user of token.
func (s *server) tokenConfig(token, cluster string) *rest.Config {
	return &rest.Config{
		Host:            s.ClusterURL(cluster),
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS:             -1,
	}
}

// tokenConfigAt is a client-go configuration for the user of token at
// /clusters/<address>, taken as it is: a path or a logical cluster name,
// existing or not.
func (s *server) tokenConfigAt(token, address string) *rest.Config {
	config := s.tokenConfig(token, "root")
	config.Host = s.URL("/clusters/" + address)
	return config
}

func (s *server) client(cluster string) kubernetes.Interface {
	s.t.Helper()
	return clientFor(s.t, s.Config(cluster))
}

func clientFor(t *testing.T, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// eventually retries f until it returns nil or 20 seconds pass.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
