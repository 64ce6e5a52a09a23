// Package warrentest runs the real warren binary, for tests and benchmarks. It
// builds the binary, starts it on a free port of the loopback interface with a
// data directory and arguments of its caller, waits until /readyz answers, and
// stops it with SIGTERM, kills it with SIGKILL, or starts it again on the same
// data and port. What the process prints is readable at any time, also while it
// prints.
//
// A Process returns its errors, for benchmarks. A Server is a Process owned by
// a test: it has a fresh data directory, fails the test instead of returning
// errors, is stopped when the test ends, and makes workspaces every user may
// enter. Storage puts a Server on SQLite or on a schema of its own of the test
// PostgreSQL (package pgtest).
//
// The package does not import package testing, so benchmark binaries may use it.
package warrentest

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/warren-dev/warren/tenancy"
	"github.com/warren-dev/warren/tenancy/client"
)

const (
	// readyWithin bounds how long a launch may take to answer /readyz.
	readyWithin = time.Minute
	// stopWithin bounds how long a graceful stop may take before the process
	// is killed.
	stopWithin = 30 * time.Second
)

// Build compiles warren, pure Go, into dir and returns the binary's path.
func Build(ctx context.Context, dir string) (string, error) {
	binary := filepath.Join(dir, "warren")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", binary, "github.com/warren-dev/warren/cmd/warren")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building warren: %w\n%s", err, out)
	}
	return binary, nil
}

// Process is a warren process serving a data directory. Launch, Stop, Kill and
// Restart are for one goroutine at a time; the rest may be used from any.
type Process struct {
	binary string
	// DataDir is the server's --data-dir, the same at every launch.
	DataDir string
	// Args is the command line after the binary's name.
	Args []string
	// Port is where the server listens, on 127.0.0.1.
	Port int
	// Kubeconfig is the admin's kubeconfig, written by the server.
	Kubeconfig string
	// ReadyIn is how long the last launch took from start to answering /readyz.
	ReadyIn time.Duration

	probe *http.Client

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for
	log    *Log
}

// StartProcess runs binary start on dataDir and a free port, with extra
// arguments, and waits until it is ready.
func StartProcess(binary, dataDir string, extra ...string) (*Process, error) {
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	return StartCommand(binary, "start", dataDir, port, extra...)
}

// StartCommand runs the warren command ("start", "proxy") with the data
// directory dataDir on port and extra arguments, and waits until it is ready.
func StartCommand(binary, command, dataDir string, port int, extra ...string) (*Process, error) {
	p := &Process{
		binary:     binary,
		DataDir:    dataDir,
		Args:       append([]string{command, "--data-dir", dataDir, "--secure-port", strconv.Itoa(port)}, extra...),
		Port:       port,
		Kubeconfig: filepath.Join(dataDir, "admin.kubeconfig"),
		probe: &http.Client{Timeout: time.Second, Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
			DisableKeepAlives: true,
		}},
	}
	if err := p.Launch(); err != nil {
		return nil, err
	}
	return p, nil
}

// Launch starts the process, with a new log, and waits until /readyz answers.
// A process that is not ready in time is killed.
func (p *Process) Launch() error {
	log := &Log{}
	cmd := exec.Command(p.binary, p.Args...)
	cmd.Stdout, cmd.Stderr = log, log
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting warren: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // its outcome is cmd.ProcessState
		close(exited)
	}()
	p.mu.Lock()
	p.cmd, p.exited, p.log = cmd, exited, log
	p.mu.Unlock()
	deadline := start.Add(readyWithin)
	for !p.Ready() {
		if time.Now().After(deadline) {
			why := p.unready()
			p.Kill()
			return fmt.Errorf("warren not ready within %s (%s):\n%s", readyWithin, why, log)
		}
		select {
		case <-exited:
			return fmt.Errorf("warren exited before it was ready (%s):\n%s", cmd.ProcessState, log)
		case <-time.After(10 * time.Millisecond):
		}
	}
	p.ReadyIn = time.Since(start)
	return nil
}

// Ready reports whether /readyz answers ok, asked anonymously.
func (p *Process) Ready() bool {
	resp, err := p.probe.Get(p.URL("/readyz"))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// unready is what /readyz?verbose says of the checks that fail.
func (p *Process) unready() string {
	resp, err := p.probe.Get(p.URL("/readyz?verbose"))
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var failed []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "[-]") {
			failed = append(failed, line)
		}
	}
	return strings.Join(failed, "; ")
}

// Stop sends SIGTERM and waits for the process to exit; after stopWithin it
// kills it and says so. A process that has already exited is left as it is.
func (p *Process) Stop() error {
	cmd, exited := p.current()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM) // fails only if it has just exited
	select {
	case <-exited:
		return nil
	case <-time.After(stopWithin):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("warren did not exit within %s of SIGTERM and was killed:\n%s", stopWithin, p.Log())
	}
}

// Kill sends SIGKILL and waits for the process to end.
func (p *Process) Kill() {
	cmd, exited := p.current()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill() // fails only if it has already exited
	<-exited
}

// Restart stops the process gracefully and launches it again on the same data;
// the graceful stop must exit 0.
func (p *Process) Restart() error {
	if err := p.Stop(); err != nil {
		return err
	}
	if cmd, _ := p.current(); cmd != nil && cmd.ProcessState.ExitCode() != 0 {
		return fmt.Errorf("warren exited with %d after SIGTERM:\n%s", cmd.ProcessState.ExitCode(), p.Log())
	}
	return p.Launch()
}

func (p *Process) current() (*exec.Cmd, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd, p.exited
}

// Log is what the current process, the one of the last launch, has printed.
func (p *Process) Log() string {
	p.mu.Lock()
	log := p.log
	p.mu.Unlock()
	if log == nil {
		return ""
	}
	return log.String()
}

// Pid is the process's id.
func (p *Process) Pid() int {
	cmd, _ := p.current()
	return cmd.Process.Pid
}

// RSS is the process's resident memory in bytes.
func (p *Process) RSS() (int64, error) {
	status := fmt.Sprintf("/proc/%d/status", p.Pid())
	data, err := os.ReadFile(status)
	if err != nil {
		return 0, fmt.Errorf("reading the resident memory: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parsing VmRSS of %s: %w", status, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("no VmRSS in %s", status)
}

// URL is the server's URL of path.
func (p *Process) URL(path string) string {
	return fmt.Sprintf("https://127.0.0.1:%d%s", p.Port, path)
}

// AdminConfig is the admin's client configuration for /clusters/<cluster>,
// unthrottled.
func (p *Process) AdminConfig(cluster string) (*rest.Config, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", p.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("reading the admin's kubeconfig: %w", err)
	}
	cfg.Host = p.URL("/clusters/" + cluster)
	cfg.QPS, cfg.Burst = -1, 0
	return cfg, nil
}

// Metrics is what the process says on /metrics, asked as the admin.
func (p *Process) Metrics() (string, error) {
	cfg, err := p.AdminConfig("root")
	if err != nil {
		return "", err
	}
	c, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return "", err
	}
	resp, err := c.Get(p.URL("/metrics"))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("reading /metrics: %w", err)
	}
	return string(body), nil
}

// Leads tells whether the process says on /metrics that it leads its shard.
func (p *Process) Leads() (bool, error) {
	body, err := p.Metrics()
	if err != nil {
		return false, err
	}
	for line := range strings.Lines(body) {
		if strings.HasPrefix(line, "warren_storage_leader{") {
			return strings.HasSuffix(strings.TrimSpace(line), " 1"), nil
		}
	}
	return false, nil
}

// CreateWorkspace makes root's child name as the admin, unless it exists,
// waits until it is Ready, and returns its logical cluster's name.
func (p *Process) CreateWorkspace(ctx context.Context, name string) (string, error) {
	cfg, err := p.AdminConfig(string(tenancy.RootPath))
	if err != nil {
		return "", err
	}
	c, err := client.New(cfg)
	if err != nil {
		return "", fmt.Errorf("workspace %s: %w", name, err)
	}
	if _, err := c.Create(ctx, string(tenancy.RootPath), name, nil); err != nil && !apierrors.IsAlreadyExists(err) {
		return "", fmt.Errorf("creating workspace %s: %w", name, err)
	}
	ws, err := c.WaitReady(ctx, string(tenancy.RootPath), name, 10*time.Millisecond)
	if err != nil {
		return "", fmt.Errorf("waiting for workspace %s: %w", name, err)
	}
	return ws.Spec.Cluster, nil
}

// FreePort returns a free TCP port of the loopback interface.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// CPU is the processor time the process has used, user and system.
func (p *Process) CPU() (time.Duration, error) { return CPU(p.Pid()) }

// CPU is the processor time the process pid has used, user and system, from
// /proc (whose clock ticks are 1/100 s on Linux).
func CPU(pid int) (time.Duration, error) {
	stat := fmt.Sprintf("/proc/%d/stat", pid)
	data, err := os.ReadFile(stat)
	if err != nil {
		return 0, fmt.Errorf("reading the processor time: %w", err)
	}
	// Fields after the command's name, which is in parentheses: utime and
	// stime are the 12th and 13th.
	_, rest, ok := strings.Cut(string(data), ") ")
	fields := strings.Fields(rest)
	if !ok || len(fields) < 13 {
		return 0, fmt.Errorf("parsing %s", stat)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parsing %s: %w", stat, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}
