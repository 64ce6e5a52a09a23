// Package warrenproc runs the warren binary for benchmarks: it builds it,
// starts it on a data directory and waits until it is ready, hands out the
// admin's client configuration per cluster, and reads the process's memory.
package warrenproc

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/warren-dev/warren/tenancy"
	"github.com/warren-dev/warren/tenancy/client"
)

// Server is a warren process under benchmark.
type Server struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	log     bytes.Buffer
	dataDir string
	// Port is where the server listens, on 127.0.0.1.
	Port int
	// Ready is how long the process took from start to answering /readyz.
	Ready time.Duration
}

// Start runs binary start with storage args and waits until it is ready.
func Start(binary, dataDir string, storageArgs ...string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{Port: port, dataDir: dataDir, exited: make(chan struct{})}
	args := append([]string{"start", "--data-dir", dataDir, "--secure-port", strconv.Itoa(port)}, storageArgs...)
	s.cmd = exec.Command(binary, args...)
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	start := time.Now()
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting warren: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	probe := &http.Client{Timeout: time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	for {
		select {
		case <-s.exited:
			return nil, fmt.Errorf("warren exited before it was ready:\n%s", s.log.String())
		default:
		}
		if resp, err := probe.Get(fmt.Sprintf("https://127.0.0.1:%d/readyz", port)); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.Ready = time.Since(start)
				return s, nil
			}
		}
		if time.Since(start) > time.Minute {
			s.Stop()
			return nil, fmt.Errorf("warren not ready within a minute:\n%s", s.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Config is the admin's client configuration for cluster.
func (s *Server) Config(cluster string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(s.dataDir, "admin.kubeconfig"))
	if err != nil {
		return nil, err
	}
	cfg.Host = fmt.Sprintf("https://127.0.0.1:%d/clusters/%s", s.Port, cluster)
	cfg.QPS, cfg.Burst = -1, 0
	// Controllers talk protobuf to built-in APIs, as the benchmark does.
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	return cfg, nil
}

// Workspace makes root's child name unless it exists, waits until it is Ready,
// and returns the admin's client configuration for it.
func (s *Server) Workspace(ctx context.Context, name string) (*rest.Config, error) {
	root, err := s.Config(string(tenancy.RootPath))
	if err != nil {
		return nil, err
	}
	c, err := client.New(root)
	if err != nil {
		return nil, err
	}
	if _, err := c.Create(ctx, string(tenancy.RootPath), name, nil); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	if _, err := c.WaitReady(ctx, string(tenancy.RootPath), name, 10*time.Millisecond); err != nil {
		return nil, err
	}
	return s.Config(string(tenancy.RootPath.Join(name)))
}

// RSS is the server's resident memory in bytes.
func (s *Server) RSS() (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", s.cmd.Process.Pid)
}

// Stop shuts the server down gracefully.
func (s *Server) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// Log is what the server has written so far.
func (s *Server) Log() string { return s.log.String() }

// DropSchema drops a PostgreSQL schema (a shard) and everything in it.
func DropSchema(ctx context.Context, pgURL, schema string) error {
	conn, err := pgx.Connect(ctx, pgURL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	return err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Build compiles warren into dir and returns the binary's path.
func Build(ctx context.Context, dir string) (string, error) {
	binary := filepath.Join(dir, "warren")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", binary, "github.com/warren-dev/warren/cmd/warren")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building warren: %w\n%s", err, out)
	}
	return binary, nil
}
