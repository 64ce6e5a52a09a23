// Package e2e runs the real warren binary against real SQLite files and a real
// PostgreSQL, and drives it with the real kubectl on the PATH and with client-go.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/warren-dev/warren/test/warrentest"
)

// binary is the warren binary under test, built once by TestMain.
var binary string

// pluginDir holds kubectl-ws, the kubectl plugin "kubectl ws", built once by
// TestMain, for kubectl to find on the PATH.
var pluginDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "warren-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if binary, err = warrentest.Build(context.Background(), dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := buildPlugin(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pluginDir = dir
	// Every server started kills itself if a reader changes an object its
	// caches hold (lists share them), and the test that started it fails.
	if err := os.Setenv("KUBE_CACHE_MUTATION_DETECTOR", "true"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, err := exec.LookPath("kubectl"); err != nil {
		fmt.Fprintln(os.Stderr, "these tests drive the real kubectl, which is not on the PATH")
		return 1
	}
	return m.Run()
}

// buildPlugin compiles the kubectl plugins, kubectl-ws and
// kubectl-create-workspace ("kubectl create workspace"), into dir.
func buildPlugin(dir string) error {
	for binary, pkg := range map[string]string{
		"kubectl-ws":               "github.com/warren-dev/warren/cmd/kubectl-ws",
		"kubectl-create-workspace": "github.com/warren-dev/warren/cmd/kubectl-create_workspace",
	} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, binary), pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %w\n%s", binary, err, out)
		}
	}
	return nil
}
