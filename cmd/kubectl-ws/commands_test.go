package main

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1alpha1 "github.com/warren-dev/warren/tenancy/apis/core/v1alpha1"
)

// testOptions poll faster than the plugin does, so tests take little time.
func testOptions() *options {
	return &options{pollInterval: 5 * time.Millisecond, readyTimeout: 5 * time.Second}
}

// runWS runs the plugin with args and returns what it printed and its exit code.
func runWS(t *testing.T, o *options, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut strings.Builder
	code = run(context.Background(), o, args, &out, &errOut)
	return out.String(), errOut.String(), code
}

// mustRunWS runs the plugin with args, fails the test unless it succeeds, and
// returns what it printed.
func mustRunWS(t *testing.T, o *options, args ...string) string {
	t.Helper()
	stdout, stderr, code := runWS(t, o, args...)
	if code != 0 || stderr != "" {
		t.Fatalf("kubectl ws %s: exit %d, stderr %q", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

// mustFailWS runs the plugin with args, fails the test unless it fails with an
// error containing wantErr, and returns what it printed.
func mustFailWS(t *testing.T, o *options, wantErr string, args ...string) string {
	t.Helper()
	stdout, stderr, code := runWS(t, o, args...)
	if code == 0 || !strings.HasPrefix(stderr, "error: ") || !strings.Contains(stderr, wantErr) {
		t.Fatalf("kubectl ws %s: exit %d, stderr %q; want a failure containing %q", strings.Join(args, " "), code, stderr, wantErr)
	}
	return stdout
}

func TestCurrentNeedsNoServer(t *testing.T) {
	for _, tc := range []struct{ server, want string }{
		{"https://127.0.0.1:1/clusters/root:acme", "root:acme"},
		{"https://127.0.0.1:1", "root"},
	} {
		config := writeKubeconfig(t, strings.Replace(testKubeconfig, "https://warren.example:6443/clusters/root:acme", tc.server, 1))
		want := `Current workspace is "` + tc.want + `".` + "\n"
		for _, args := range [][]string{{"--kubeconfig", config}, {"current", "--kubeconfig", config}} {
			if got := mustRunWS(t, testOptions(), args...); got != want {
				t.Errorf("kubectl ws %v printed %q, want %q", args, got, want)
			}
		}
	}
}

func TestEnterAndReturn(t *testing.T) {
	f := newFakeWarren()
	f.add("root:acme", corev1alpha1.Ready)
	f.add("root:acme:team-a", corev1alpha1.Ready)
	base, config := startFake(t, f, "root")
	for _, step := range []struct{ arg, current, previous string }{
		{"acme", "root:acme", "root"},
		{"team-a", "root:acme:team-a", "root:acme"},
		{"..", "root:acme", "root:acme:team-a"},
		{"-", "root:acme:team-a", "root:acme"},
		{"-", "root:acme", "root:acme:team-a"},
		{":root", "root", "root:acme"},
		{"root:acme:team-a", "root:acme:team-a", "root"},
	} {
		want := `Current workspace is "` + step.current + `".` + "\n"
		if got := mustRunWS(t, testOptions(), "--kubeconfig", config, step.arg); got != want {
			t.Fatalf("kubectl ws %s printed %q, want %q", step.arg, got, want)
		}
		if got := serverOf(t, config, "warren"); got != base+"/clusters/"+step.current {
			t.Fatalf("after kubectl ws %s: server %q, want %s/clusters/%s", step.arg, got, base, step.current)
		}
		if got := serverOf(t, config, previousName); got != base+"/clusters/"+step.previous {
			t.Fatalf("after kubectl ws %s: previous server %q, want %s/clusters/%s", step.arg, got, base, step.previous)
		}
	}
}

func TestEnterChecksTheTarget(t *testing.T) {
	f := newFakeWarren()
	f.add("root:init", corev1alpha1.Initializing)
	f.add("root:secret", corev1alpha1.Ready)
	f.noAccess["root:secret"] = true
	f.readyAfter = -1
	_, config := startFake(t, f, "root")
	before := readFile(t, config)
	for _, tc := range []struct{ arg, wantErr string }{
		{"missing", `workspace "root:missing" not found`},
		{"init", `workspace "root:init" is not ready (phase Initializing)`},
		{"secret", `you may not access workspace "root:secret": `},
		{"secret", "user may not access root:secret"},
		{"..", "root has no parent workspace"},
		{"-", "there is no previous workspace"},
	} {
		if out := mustFailWS(t, testOptions(), tc.wantErr, "--kubeconfig", config, tc.arg); out != "" {
			t.Errorf("kubectl ws %s printed %q", tc.arg, out)
		}
		if readFile(t, config) != before {
			t.Fatalf("kubectl ws %s changed the kubeconfig", tc.arg)
		}
	}
}

func TestEnterRejectsBadPathsWithoutRequests(t *testing.T) {
	f := newFakeWarren()
	_, config := startFake(t, f, "root")
	for _, arg := range []string{"Acme", "a:", ":acme", "a_b"} {
		mustFailWS(t, testOptions(), "invalid workspace path", "--kubeconfig", config, arg)
	}
	if got := f.requested(); len(got) != 0 {
		t.Fatalf("bad paths sent requests %v", got)
	}
}

func TestEnterRequests(t *testing.T) {
	f := newFakeWarren()
	f.add("root:acme", corev1alpha1.Ready)
	_, config := startFake(t, f, "root")
	mustRunWS(t, testOptions(), "--kubeconfig", config, "acme")
	want := []string{
		"GET /clusters/root/apis/tenancy.warren.dev/v1alpha1/workspaces/acme",
		"GET /clusters/root:acme/api",
	}
	if got := f.requested(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("kubectl ws acme sent %q, want %q", got, want)
	}
}

func TestEnterWithoutReadingTheParent(t *testing.T) {
	f := newFakeWarren()
	f.add("root:acme", corev1alpha1.Ready)
	f.forbidden["root"] = true
	_, config := startFake(t, f, "root")
	if got := mustRunWS(t, testOptions(), "--kubeconfig", config, "acme"); got != "Current workspace is \"root:acme\".\n" {
		t.Fatalf("kubectl ws acme printed %q", got)
	}
	mustFailWS(t, testOptions(), `workspace "root:missing" not found`, "--kubeconfig", config, ":root:missing")
}

func TestEnterUnavailableWithoutRetrying(t *testing.T) {
	f := newFakeWarren()
	f.add("root:booting", corev1alpha1.Ready)
	f.forbidden["root"] = true
	f.unavailable["root:booting"] = true
	_, config := startFake(t, f, "root")
	mustFailWS(t, testOptions(), `accessing workspace "root:booting": workspace root:booting is Initializing`, "--kubeconfig", config, "booting")
	var discoveries int
	for _, r := range f.requested() {
		if strings.HasSuffix(r, "/api") {
			discoveries++
		}
	}
	if discoveries != 1 {
		t.Fatalf("asked the unavailable workspace %d times, want once", discoveries)
	}
}

func TestCreate(t *testing.T) {
	f := newFakeWarren()
	f.add("root:acme", corev1alpha1.Ready)
	f.readyAfter = 3
	_, config := startFake(t, f, "root:acme")
	before := readFile(t, config)
	got := mustRunWS(t, testOptions(), "--kubeconfig", config, "create", "x", "--type", "root:team")
	want := `Workspace "x" (type root:team) created. Waiting for it to be ready...
Workspace "x" (type root:team) is ready to use.
`
	if got != want {
		t.Fatalf("kubectl ws create printed\n%s\nwant\n%s", got, want)
	}
	ws := f.workspaces["root:acme:x"]
	if ws == nil || ws.Spec.Type != (corev1alpha1.TypeReference{Path: "root", Name: "team"}) {
		t.Fatalf("created workspace %+v, want type root:team in root:acme", ws)
	}
	if f.gets["root:acme:x"] != 4 {
		t.Errorf("polled the workspace %d times, want until it was ready (4)", f.gets["root:acme:x"])
	}
	if readFile(t, config) != before {
		t.Fatal("kubectl ws create without --enter changed the kubeconfig")
	}
}

func TestCreateAndEnter(t *testing.T) {
	f := newFakeWarren()
	f.readyAfter = 1
	base, config := startFake(t, f, "root")
	got := mustRunWS(t, testOptions(), "--kubeconfig", config, "create", "x", "--enter")
	want := `Workspace "x" (type root:universal) created. Waiting for it to be ready...
Workspace "x" (type root:universal) is ready to use.
Current workspace is "root:x".
`
	if got != want {
		t.Fatalf("kubectl ws create --enter printed\n%s\nwant\n%s", got, want)
	}
	if got := serverOf(t, config, "warren"); got != base+"/clusters/root:x" {
		t.Fatalf("server after create --enter = %q", got)
	}
}

func TestCreateFailures(t *testing.T) {
	f := newFakeWarren()
	f.add("root:taken", corev1alpha1.Ready)
	f.readyAfter = -1
	_, config := startFake(t, f, "root")
	slow := testOptions()
	slow.readyTimeout = 200 * time.Millisecond
	for _, tc := range []struct {
		o       *options
		args    []string
		wantErr string
	}{
		{testOptions(), []string{"create", "taken"}, `creating workspace "taken" in "root": workspaces.tenancy.warren.dev "taken" already exists`},
		{testOptions(), []string{"create", "Bad_Name"}, `Workspace.tenancy.warren.dev "Bad_Name" is invalid`},
		{testOptions(), []string{"create", "x", "--type", "root:"}, `invalid workspace type "root:"`},
		{testOptions(), []string{"create"}, "accepts 1 arg(s), received 0"},
		{slow, []string{"create", "slow"}, `workspace "root:slow" was not ready within 200ms (phase Initializing)`},
	} {
		mustFailWS(t, tc.o, tc.wantErr, append([]string{"--kubeconfig", config}, tc.args...)...)
	}
}

func TestCreateForbidden(t *testing.T) {
	f := newFakeWarren()
	f.add("root:locked", corev1alpha1.Ready)
	f.forbidden["root:locked"] = true
	_, config := startFake(t, f, "root:locked")
	mustFailWS(t, testOptions(), `creating workspace "x" in "root:locked": workspaces.tenancy.warren.dev is forbidden: user may not touch workspaces in root:locked`, "--kubeconfig", config, "create", "x")
	if f.workspaces["root:locked:x"] != nil {
		t.Fatal("the forbidden workspace was created")
	}
}

func TestTree(t *testing.T) {
	f := newFakeWarren()
	for _, path := range []string{"root:acme", "root:acme:team-a", "root:other", "root:zeta", "root:zeta:a", "root:zeta:a:b", "root:acme:team-c"} {
		f.add(path, corev1alpha1.Ready)
	}
	f.add("root:acme:team-b", corev1alpha1.Initializing)
	f.forbidden["root:other"] = true
	_, config := startFake(t, f, "root")
	want := `root
├── acme
│   ├── team-a
│   ├── team-b (Initializing)
│   └── team-c
├── other (not allowed to list its workspaces)
└── zeta
    └── a
        └── b
`
	if got := mustRunWS(t, testOptions(), "--kubeconfig", config, "tree"); got != want {
		t.Fatalf("kubectl ws tree printed\n%s\nwant\n%s", got, want)
	}
	mustRunWS(t, testOptions(), "--kubeconfig", config, "zeta")
	if got := mustRunWS(t, testOptions(), "--kubeconfig", config, "tree"); got != "root:zeta\n└── a\n    └── b\n" {
		t.Fatalf("kubectl ws tree in root:zeta printed\n%s", got)
	}
}

func TestTreeOfAnUnlistableWorkspace(t *testing.T) {
	f := newFakeWarren()
	f.forbidden["root"] = true
	_, config := startFake(t, f, "root")
	if got := mustRunWS(t, testOptions(), "--kubeconfig", config, "tree"); got != "root (not allowed to list its workspaces)\n" {
		t.Fatalf("kubectl ws tree printed %q", got)
	}
}

func TestTreeFailsWithoutServer(t *testing.T) {
	unreachable := strings.Replace(testKubeconfig, "https://warren.example:6443", "https://127.0.0.1:1", 1)
	config := writeKubeconfig(t, strings.Replace(unreachable, "certificate-authority-data: Y2EtZGF0YQ==", "insecure-skip-tls-verify: true", 1))
	mustFailWS(t, testOptions(), `listing workspaces in "root:acme"`, "--kubeconfig", config, "tree")
}

func TestBadArguments(t *testing.T) {
	config := writeKubeconfig(t, testKubeconfig)
	mustFailWS(t, testOptions(), "accepts at most 1 arg(s)", "--kubeconfig", config, "a", "b")
	mustFailWS(t, testOptions(), "unknown flag: --nope", "--kubeconfig", config, "--nope")
	mustFailWS(t, testOptions(), "unknown command", "--kubeconfig", config, "current", "x")
}
