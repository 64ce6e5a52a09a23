package main

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

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// server is a warren process under benchmark.
type server struct {
	cmd     *exec.Cmd
	exited  chan struct{}
	log     bytes.Buffer
	port    int
	dataDir string
	// ready is how long the process took from start to answering /readyz.
	ready time.Duration
}

// startServer runs binary start with storage args and waits until it is ready.
func startServer(binary, dataDir string, storageArgs ...string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &server{port: port, dataDir: dataDir, exited: make(chan struct{})}
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
				s.ready = time.Since(start)
				return s, nil
			}
		}
		if time.Since(start) > time.Minute {
			s.stop()
			return nil, fmt.Errorf("warren not ready within a minute:\n%s", s.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// config is the admin's client configuration for cluster.
func (s *server) config(cluster string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", filepath.Join(s.dataDir, "admin.kubeconfig"))
	if err != nil {
		return nil, err
	}
	cfg.Host = fmt.Sprintf("https://127.0.0.1:%d/clusters/%s", s.port, cluster)
	cfg.QPS, cfg.Burst = -1, 0
	// Controllers talk protobuf to built-in APIs, as the benchmark does.
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	return cfg, nil
}

// rss is the server's resident memory in bytes.
func (s *server) rss() (int64, error) {
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

// stop shuts the server down gracefully.
func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// build compiles warren into dir.
func build(ctx context.Context, dir string) (string, error) {
	binary := filepath.Join(dir, "warren")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", binary, "github.com/warren-dev/warren/cmd/warren")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building warren: %w\n%s", err, out)
	}
	return binary, nil
}
