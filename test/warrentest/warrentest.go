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
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
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

// ClusterURL is the server URL of a logical cluster.
func (s *Server) ClusterURL(cluster string) string {
	return s.URL("/clusters/" + cluster)
}

// Config is a client-go configuration for cluster, as the admin.
func (s *Server) Config(cluster string) *rest.Config {
	s.t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig)
	if err != nil {
		s.t.Fatal(err)
	}
	cfg.Host = s.ClusterURL(cluster)
	cfg.QPS, cfg.Burst = -1, 0
	return cfg
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
