package plugin

import (
	"context"
	"strings"
	"testing"
	"time"

	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"
	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// testHome is the home directory the tests' plugin believes in.
const testHome = "/home/tester"

// testOptions poll faster than the plugin does, so tests take little time.
func testOptions(out, errOut *strings.Builder) *options {
	o := newOptions(out, errOut)
	o.homeDir = func() (string, error) { return testHome, nil }
	o.existPoll, o.readyPoll = time.Millisecond, time.Millisecond
	o.existTimeout, o.readyTimeout = time.Second, time.Second
	return o
}

// runCommand runs the command newCommand builds with args and returns what it
// printed and whether it failed.
func runCommand(t *testing.T, newCommand func(*options) *cobra.Command, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut strings.Builder
	cmd := newCommand(testOptions(&out, &errOut))
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// mustRun runs "kubectl ws" with args, fails the test unless it succeeds
// without writing to stderr, and returns what it printed.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, err := runCommand(t, newWorkspaceCommand, args...)
	if err != nil || stderr != "" {
		t.Fatalf("kubectl ws %s: %v, stderr %q", strings.Join(args, " "), err, stderr)
	}
	return stdout
}

// mustFail runs "kubectl ws" with args, fails the test unless it fails and
// prints "Error: <wantErr>" as kcp's plugin does, and returns its stdout.
func mustFail(t *testing.T, wantErr string, args ...string) string {
	t.Helper()
	stdout, stderr, err := runCommand(t, newWorkspaceCommand, args...)
	if err == nil || !strings.Contains(stderr, "Error: "+wantErr+"\n") {
		t.Fatalf("kubectl ws %s: %v, stderr %q; want a failure printing %q", strings.Join(args, " "), err, stderr, "Error: "+wantErr)
	}
	return stdout
}

func TestCurrentNeedsNoServer(t *testing.T) {
	for _, tc := range []struct{ server, want, short string }{
		{"https://127.0.0.1:1/clusters/root:acme", "Current workspace is 'root:acme'.\n", "root:acme\n"},
		{"https://127.0.0.1:1/clusters/root", "Current workspace is 'root'.\n", "root\n"},
		{"https://127.0.0.1:1", "Current workspace is the URL \"https://127.0.0.1:1\".\n", ""},
	} {
		config := writeKubeconfig(t, strings.Replace(testKubeconfig, "https://kcp.example:6443/clusters/root:acme", tc.server, 1))
		for _, args := range [][]string{{"."}, {"current"}, {"use", "."}} {
			if got := mustRun(t, append(args, "--kubeconfig", config)...); got != tc.want {
				t.Errorf("kubectl ws %v printed %q, want %q", args, got, tc.want)
			}
			if got := mustRun(t, append(args, "--short", "--kubeconfig", config)...); got != tc.short {
				t.Errorf("kubectl ws %v --short printed %q, want %q", args, got, tc.short)
			}
		}
	}
}

func TestEnterAndReturn(t *testing.T) {
	f := newFakeKCP()
	f.add("root:a")
	f.add("root:a:b")
	f.add("root:c")
	base, config := startFake(t, f, "root")
	for _, step := range []struct{ arg, want, current, previous string }{
		{"a", "Current workspace is 'root:a' (type root:universal).\n", "root:a", "root"},
		{"b", "Current workspace is 'root:a:b' (type root:universal).\n", "root:a:b", "root:a"},
		// kcp's plugin reads the Workspace by the path as written, dots
		// and all, which client-go refuses to send: no type.
		{"..", "Current workspace is 'root:a'.\n", "root:a", "root:a:b"},
		{"-", "Current workspace is 'root:a:b'.\n", "root:a:b", "root:a"},
		{"-", "Current workspace is 'root:a'.\n", "root:a", "root:a:b"},
		{":", "Current workspace is 'root'.\n", "root", "root:a"},
		{":root:a:b", "Current workspace is 'root:a:b' (type root:universal).\n", "root:a:b", "root"},
		{"..:..:c", "Current workspace is 'root:c'.\n", "root:c", "root:a:b"},
		{"cd", "", "", ""}, // "use" by its alias, below
	} {
		if step.arg == "cd" {
			if got := mustRun(t, "cd", "..", "--kubeconfig", config); got != "Current workspace is 'root' (type root).\n" {
				t.Fatalf("kubectl ws cd .. printed %q", got)
			}
			continue
		}
		if got := mustRun(t, "--kubeconfig", config, step.arg); got != step.want {
			t.Fatalf("kubectl ws %s printed %q, want %q", step.arg, got, step.want)
		}
		if got := serverOf(t, config, currentName); got != base+"/clusters/"+step.current {
			t.Fatalf("after kubectl ws %s: current server %q, want %s/clusters/%s", step.arg, got, base, step.current)
		}
		if got := serverOf(t, config, previousName); got != base+"/clusters/"+step.previous {
			t.Fatalf("after kubectl ws %s: previous server %q, want %s/clusters/%s", step.arg, got, base, step.previous)
		}
	}
	if got := serverOf(t, config, "kcp"); got != base+"/clusters/root" {
		t.Fatalf("the user's own context now addresses %q; want it untouched", got)
	}
}

func TestEnterWithRootNote(t *testing.T) {
	f := newFakeKCP()
	f.add("root:a")
	_, config := startFake(t, f, "root:a")
	for _, tc := range []struct {
		args           []string
		stdout, stderr string
	}{
		{[]string{"root"}, "Current workspace is 'root' (type root).\n", rootNote},
		{[]string{"root:a"}, "Current workspace is 'root:a' (type root:universal).\n", rootNote},
		{[]string{"root/a"}, "Current workspace is 'root:a' (type root:universal).\n", rootNote},
		// With --short only "root" itself is taken as absolute.
		{[]string{"--short", "root"}, "root\n", rootNote},
		{[]string{"--short", ":root:a"}, "root:a\n", ""},
	} {
		stdout, stderr, err := runCommand(t, newWorkspaceCommand, append(tc.args, "--kubeconfig", config)...)
		if err != nil || stdout != tc.stdout || stderr != tc.stderr {
			t.Errorf("kubectl ws %v: %v, stdout %q, stderr %q; want stdout %q, stderr %q", tc.args, err, stdout, stderr, tc.stdout, tc.stderr)
		}
	}
}

func TestHome(t *testing.T) {
	f := newFakeKCP()
	f.add(homeCluster + ":x")
	f.homeBusy = 1
	base, config := startFake(t, f, "root")
	stdout, stderr, err := runCommand(t, newWorkspaceCommand, "--kubeconfig", config)
	if err != nil || stdout != "Current workspace is '"+homeCluster+"'.\n" || stderr != homeNote {
		t.Fatalf("kubectl ws: %v, stdout %q, stderr %q", err, stdout, stderr)
	}
	if got := serverOf(t, config, currentName); got != base+"/clusters/"+homeCluster {
		t.Fatalf("after kubectl ws: server %q", got)
	}
	for _, args := range [][]string{{"~:x"}, {testHome + "/x"}} {
		if got := mustRun(t, append(args, "--kubeconfig", config)...); got != "Current workspace is '"+homeCluster+":x' (type root:universal).\n" {
			t.Fatalf("kubectl ws %v printed %q", args, got)
		}
	}
	if got := mustRun(t, "~", "--short", "--kubeconfig", config); got != homeCluster+"\n" {
		t.Fatalf("kubectl ws ~ --short printed %q", got)
	}
	var homes int
	for _, r := range f.requested() {
		if r == "GET /clusters/root/apis/tenancy.kcp.io/v1alpha1/workspaces/~" {
			homes++
		}
	}
	// The first was answered 429 and retried.
	if homes != 5 {
		t.Fatalf("asked for ~ %d times, want 5", homes)
	}
}

func TestEnterChecksTheTarget(t *testing.T) {
	f := newFakeKCP()
	f.add("root:secret")
	f.noAccess["root:secret"] = true
	_, config := startFake(t, f, "root")
	before := readFile(t, config)
	for _, tc := range []struct{ arg, wantErr string }{
		// Discovery in a workspace that does not exist fails with a 404,
		// which client-go words as below.
		{"missing", "the server could not find the requested resource"},
		{"secret", `access to workspace "root:secret" denied`},
		// Up from root is the empty path, which is invalid; above that
		// there is nothing.
		{"..", "invalid workspace path: .."},
		{"..:..", "cannot go up from root"},
		{"-", "no previous workspace found in kubeconfig"},
		{"Acme", "invalid workspace path: Acme"},
		{"a:", "invalid workspace path: a:"},
	} {
		if out := mustFail(t, tc.wantErr, "--kubeconfig", config, tc.arg); out != "" {
			t.Errorf("kubectl ws %s printed %q", tc.arg, out)
		}
		if readFile(t, config) != before {
			t.Fatalf("kubectl ws %s changed the kubeconfig", tc.arg)
		}
	}
	f.denyUnknown = true
	mustFail(t, `workspace "root:missing" not found`, "--kubeconfig", config, "missing")
	// The Workspace is read in the parent as written, "root:x:..", which
	// this server does not tell about either; the message keeps the dots.
	mustFail(t, `access to workspace "root:x:..:missing" denied`, "--kubeconfig", config, "x:..:missing")
}

func TestEnterRequests(t *testing.T) {
	f := newFakeKCP()
	f.add("root:a")
	_, config := startFake(t, f, "root")
	mustRun(t, "--kubeconfig", config, "a")
	want := []string{
		"GET /clusters/root:a/api",
		"GET /clusters/root:a/apis",
		"GET /clusters/root/apis/tenancy.kcp.io/v1alpha1/workspaces/a",
		"GET /clusters/root:a/apis/apis.kcp.io/v1alpha2/apibindings",
	}
	if got := f.requested(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("kubectl ws a sent\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestEnterWithoutReadingTheParent(t *testing.T) {
	f := newFakeKCP()
	f.add("root:a")
	f.forbidden["root"] = true
	_, config := startFake(t, f, "root")
	if got := mustRun(t, "--kubeconfig", config, "a"); got != "Current workspace is 'root:a'.\n" {
		t.Fatalf("kubectl ws a printed %q", got)
	}
}

func TestEnterWarnsOfUnresolvedClaims(t *testing.T) {
	f := newFakeKCP()
	f.add("root:a")
	claim := apisv1alpha2.PermissionClaim{GroupResource: apisv1alpha2.GroupResource{Group: "", Resource: "configmaps"}, Verbs: []string{"get", "list"}}
	f.bindings["root:a"] = []apisv1alpha2.APIBinding{{
		ObjectMeta: metav1.ObjectMeta{Name: "b"},
		Status:     apisv1alpha2.APIBindingStatus{ExportPermissionClaims: []apisv1alpha2.PermissionClaim{claim}},
	}}
	_, config := startFake(t, f, "root")
	stdout, stderr, err := runCommand(t, newWorkspaceCommand, "--kubeconfig", config, "a")
	want := "Warning: claim for configmaps exported but not specified on APIBinding b\nAdd this claim to the APIBinding's Spec.\n" +
		"Warning: claim for configmaps specified on APIBinding b but not accepted or rejected.\n" +
		"Warning: allowed verbs () on claim for configmaps on APIBinding b do not match expected verbs ().\n"
	if err != nil || stdout != "Current workspace is 'root:a' (type root:universal).\n" || stderr != want {
		t.Fatalf("kubectl ws a: %v, stdout %q, stderr\n%s\nwant\n%s", err, stdout, stderr, want)
	}
}

func TestBadArguments(t *testing.T) {
	config := writeKubeconfig(t, testKubeconfig)
	// kcp answers too many arguments with help, and no error.
	if got := mustRun(t, "--kubeconfig", config, "a", "b"); !strings.Contains(got, "Usage:") {
		t.Fatalf("kubectl ws a b printed %q, want help", got)
	}
	mustFail(t, "unknown flag: --nope", "--kubeconfig", config, "--nope")
	mustFail(t, "unknown shorthand flag: 'w' in -w", "--kubeconfig", config, "-w", "x", "a")
}
