// Package warrentest runs the real warren binary for tests: built once, started
// on a free port with a fresh data directory (and, on PostgreSQL, a fresh
// schema), stopped gracefully, killed, restarted on the same data.
package warrentest

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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/warren-dev/warren/tenancy"
	"github.com/warren-dev/warren/tenancy/client"
)

// Build compiles warren into dir and returns the binary's path.
func Build(dir string) (string, error) {
	binary := filepath.Join(dir, "warren")
	cmd := exec.Command("go", "build", "-o", binary, "github.com/warren-dev/warren/cmd/warren")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building warren: %w\n%s", err, out)
	}
	return binary, nil
}

// PostgresURL is the test server: a local PostgreSQL with trust authentication.
func PostgresURL() string {
	if u := os.Getenv("WARREN_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// Storage returns the arguments that put a server on dialect ("sqlite": the
// default file in its data directory; "postgres": a new schema, dropped when
// the test ends).
func Storage(t testing.TB, dialect string) []string {
	if dialect != "postgres" {
		return nil
	}
	shard := "test_" + RandomSuffix()
	t.Cleanup(func() { DropSchema(t, shard) })
	return []string{"--storage", PostgresURL(), "--shard", shard}
}

// Server is a warren process.
type Server struct {
	t       testing.TB
	binary  string
	DataDir string
	Args    []string
	Port    int
	// Kubeconfig is the admin's kubeconfig, written by the server.
	Kubeconfig string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	log    *bytes.Buffer
	// workspaces are the logical clusters of the workspaces Workspace made.
	workspaces map[string]string
}

// Start starts binary on a free port with a fresh data directory and extra
// arguments, waits until it is ready, and stops it when the test ends.
func Start(t testing.TB, binary string, extra ...string) *Server {
	t.Helper()
	s := &Server{t: t, binary: binary, DataDir: filepath.Join(t.TempDir(), "data"), Port: FreePort(t)}
	s.Args = append([]string{"start", "--data-dir", s.DataDir, "--secure-port", fmt.Sprint(s.Port)}, extra...)
	s.Kubeconfig = filepath.Join(s.DataDir, "admin.kubeconfig")
	s.Launch()
	t.Cleanup(s.Stop)
	return s
}

// Launch starts the process and waits until /readyz answers.
func (s *Server) Launch() {
	s.t.Helper()
	s.mu.Lock()
	s.log = &bytes.Buffer{}
	s.cmd = exec.Command(s.binary, s.Args...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		s.mu.Unlock()
		s.t.Fatalf("starting warren: %v", err)
	}
	exited := make(chan struct{})
	s.exited = exited
	cmd := s.cmd
	s.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !s.Ready() {
		select {
		case <-exited:
			s.t.Fatalf("warren exited before it was ready:\n%s", s.Log())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("warren not ready after 30s:\n%s", s.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Ready reports whether /readyz answers ok, asked anonymously.
func (s *Server) Ready() bool {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Get(s.URL("/readyz"))
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Log is what the current process printed.
func (s *Server) Log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// Stop sends SIGTERM and waits for a graceful exit; the test fails if the
// process needs more than 30 s, and shows the log if the test failed.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		s.t.Errorf("warren did not exit within 30s of SIGTERM:\n%s", s.Log())
	}
	if s.t.Failed() {
		s.t.Logf("warren's log:\n%s", s.Log())
	}
}

// Kill sends SIGKILL and waits for the process to end.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.mu.Unlock()
	_ = cmd.Process.Kill()
	<-exited
}

// Restart stops the server gracefully and starts it again on the same data; it
// fails the test unless the graceful stop exited 0.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		s.t.Fatalf("warren exited with %d after SIGTERM:\n%s", code, s.Log())
	}
	s.Launch()
}

// URL is the server's URL of path.
func (s *Server) URL(path string) string {
	return fmt.Sprintf("https://127.0.0.1:%d%s", s.Port, path)
}

// ClusterURL is the server URL of a workspace: a path (root:a:b), a logical
// cluster name the server assigned, the wildcard "*", or any other name, which
// is the child of root of that name, made by Workspace on first use.
func (s *Server) ClusterURL(cluster string) string {
	s.t.Helper()
	return s.URL("/clusters/" + s.address(cluster))
}

func (s *Server) address(cluster string) string {
	s.mu.Lock()
	_, made := s.workspaces[cluster]
	assigned := false
	for _, c := range s.workspaces {
		assigned = assigned || c == cluster
	}
	s.mu.Unlock()
	if cluster == "*" || tenancy.IsPath(cluster) || assigned {
		return cluster
	}
	if !made {
		s.Workspace(cluster)
	}
	return string(tenancy.RootPath.Join(cluster))
}

// Config is a client-go configuration for cluster (as ClusterURL takes it), as
// the admin.
func (s *Server) Config(cluster string) *rest.Config {
	s.t.Helper()
	cfg := s.adminConfig()
	cfg.Host = s.ClusterURL(cluster)
	return cfg
}

func (s *Server) adminConfig() *rest.Config {
	s.t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		s.t.Fatal(err)
	}
	cfg.QPS, cfg.Burst = -1, 0
	return cfg
}

// Workspace makes the child name of root, as the admin, waits until it is
// Ready, lets every authenticated user enter it (what they may do inside is its
// RBAC), and returns its logical cluster's name. It does so once per name.
func (s *Server) Workspace(name string) string {
	s.t.Helper()
	s.mu.Lock()
	cluster, ok := s.workspaces[name]
	s.mu.Unlock()
	if ok {
		return cluster
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.New(s.adminConfig())
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := c.Create(ctx, string(tenancy.RootPath), name, nil); err != nil && !apierrors.IsAlreadyExists(err) {
		s.t.Fatalf("workspace %s: %v", name, err)
	}
	ws, err := c.WaitReady(ctx, string(tenancy.RootPath), name, 20*time.Millisecond)
	if err != nil {
		s.t.Fatalf("workspace %s: %v", name, err)
	}
	s.openToAll(ctx, c, name)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.workspaces == nil {
		s.workspaces = map[string]string{}
	}
	s.workspaces[name] = ws.Spec.Cluster
	return ws.Spec.Cluster
}

// openToAll lets every authenticated user enter root's child name: its RBAC
// binds them kcp's role granting "access" on "/".
func (s *Server) openToAll(ctx context.Context, c *client.Client, name string) {
	s.t.Helper()
	inside, err := kubernetes.NewForConfig(c.Config(string(tenancy.RootPath.Join(name))))
	if err != nil {
		s.t.Fatal(err)
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "everyone-enters"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:kcp:workspace:access"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: user.AllAuthenticated}},
	}
	if _, err := inside.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		s.t.Fatalf("access to workspace %s: %v", name, err)
	}
}

// FreePort returns a free TCP port of the loopback interface.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// RandomSuffix is 12 random hex digits.
func RandomSuffix() string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// DropSchema drops a Postgres schema and everything in it.
func DropSchema(t testing.TB, name string) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, PostgresURL())
	if err != nil {
		t.Errorf("connecting to drop schema %s: %v", name, err)
		return
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE"); err != nil {
		t.Errorf("dropping schema %s: %v", name, err)
	}
}
