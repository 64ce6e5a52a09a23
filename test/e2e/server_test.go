package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// tokens are the static users every test server knows, besides the admin.
const tokens = `alice-token,alice,alice-uid
bob-token,bob,bob-uid,"devs"
`

// dialects are the storages every end-to-end test runs on.
var dialects = []string{"sqlite", "postgres"}

// server is a running warren process.
type server struct {
	t          *testing.T
	dataDir    string
	args       []string
	port       int
	kubeconfig string
	cmd        *exec.Cmd
	exited     chan struct{}
	log        *bytes.Buffer
}

// eachDialect runs f as a subtest against a fresh server on every dialect.
func eachDialect(t *testing.T, f func(t *testing.T, s *server)) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			f(t, startServer(t, dialect))
		})
	}
}

func postgresURL() string {
	if u := os.Getenv("WARREN_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// startServer starts warren on a free port with a fresh data directory and, on
// postgres, a fresh schema dropped when the test ends.
func startServer(t *testing.T, dialect string) *server {
	t.Helper()
	var storage []string
	if dialect == "postgres" {
		shard := "e2e_" + randomSuffix()
		storage = []string{"--storage", postgresURL(), "--shard", shard}
		t.Cleanup(func() { dropSchema(t, shard) })
	}
	return startServerWith(t, storage...)
}

// startServerWith starts warren with extra arguments.
func startServerWith(t *testing.T, extra ...string) *server {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(tokens), 0o600); err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, dataDir: filepath.Join(dir, "data"), port: freePort(t)}
	s.args = append([]string{"start", "--data-dir", s.dataDir, "--secure-port", fmt.Sprint(s.port), "--token-auth-file", tokenFile}, extra...)
	s.kubeconfig = filepath.Join(s.dataDir, "admin.kubeconfig")
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *server) start() {
	s.t.Helper()
	s.log = &bytes.Buffer{}
	s.cmd = exec.Command(binary, s.args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting warren: %v", err)
	}
	s.exited = make(chan struct{})
	go func() {
		_ = s.cmd.Wait()
		close(s.exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if s.ready() {
			return
		}
		select {
		case <-s.exited:
			s.t.Fatalf("warren exited before it was ready:\n%s", s.log)
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("warren not ready after 30s:\n%s", s.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ready reports whether /readyz answers ok, asked anonymously.
func (s *server) ready() bool {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Get(s.url("/readyz"))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stop sends SIGTERM and waits for a graceful exit.
func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
		s.t.Errorf("warren did not exit within 30s of SIGTERM:\n%s", s.log)
	}
	if s.t.Failed() {
		s.t.Logf("warren's log:\n%s", s.log)
	}
}

// restart stops the server gracefully and starts it again on the same data.
func (s *server) restart() {
	s.t.Helper()
	s.stop()
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		s.t.Fatalf("warren exited with %d after SIGTERM:\n%s", code, s.log)
	}
	s.start()
}

func (s *server) url(path string) string {
	return fmt.Sprintf("https://127.0.0.1:%d%s", s.port, path)
}

// clusterURL is the server URL of a logical cluster.
func (s *server) clusterURL(cluster string) string {
	return s.url("/clusters/" + cluster)
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
	full := []string{"--kubeconfig", s.kubeconfig, "--server", s.clusterURL(cluster)}
	if token != "" {
		full = []string{"--kubeconfig", os.DevNull, "--server", s.clusterURL(cluster), "--insecure-skip-tls-verify", "--token", token}
	}
	full = append(full, args...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", full...)
	cmd.Env = append(os.Environ(), "KUBECACHEDIR="+filepath.Join(s.dataDir, "kubecache"))
	cmd.Stdin = strings.NewReader(stdin)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// config is a client-go configuration for cluster, as the admin.
func (s *server) config(cluster string) *rest.Config {
	s.t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	if err != nil {
		s.t.Fatal(err)
	}
	cfg.Host = s.clusterURL(cluster)
	cfg.QPS, cfg.Burst = -1, 0
	return cfg
}

// tokenConfig is a client-go configuration for cluster as the user of token.
func (s *server) tokenConfig(token, cluster string) *rest.Config {
	return &rest.Config{
		Host:            s.clusterURL(cluster),
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS:             -1,
	}
}

func (s *server) client(cluster string) kubernetes.Interface {
	s.t.Helper()
	return clientFor(s.t, s.config(cluster))
}

func clientFor(t *testing.T, cfg *rest.Config) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomSuffix() string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func dropSchema(t *testing.T, name string) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, postgresURL())
	if err != nil {
		t.Errorf("connecting to drop schema %s: %v", name, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
		t.Errorf("dropping schema %s: %v", name, err)
	}
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
