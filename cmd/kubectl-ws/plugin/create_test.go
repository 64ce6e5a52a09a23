package plugin

import (
	"strings"
	"testing"

	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"
	"github.com/spf13/cobra"
)

// Both "kubectl ws create" and "kubectl create workspace" create.
var createCommands = map[string]struct {
	command func(*options) *cobra.Command
	args    []string
	// notice is what the command prints to stderr before anything else.
	notice string
}{
	"kubectl ws create": {newWorkspaceCommand, []string{"create"},
		"Command \"create\" is deprecated, install the 'kubectl create workspace' plugin instead, compare https://docs.kcp.io/kcp/latest/setup/kubectl-plugin/.\n"},
	"kubectl create workspace": {newCreateWorkspaceCommand, nil, ""},
}

func TestCreate(t *testing.T) {
	for name, c := range createCommands {
		t.Run(name, func(t *testing.T) {
			f := newFakeKCP()
			f.add("root:acme")
			f.readyAfter = 3
			_, config := startFake(t, f, "root:acme")
			before := readFile(t, config)
			stdout, stderr, err := runCommand(t, c.command, append(c.args, "--kubeconfig", config, "x", "--type", "root:Team")...)
			want := "Workspace \"x\" (type root:team) created. Waiting for it to be ready...\n" +
				"Workspace \"x\" (type root:team) is ready to use.\n"
			if err != nil || stdout != want || stderr != c.notice {
				t.Fatalf("%s: %v, stdout\n%s\nstderr %q; want\n%s", name, err, stdout, stderr, want)
			}
			sent := f.created["root:acme:x"]
			if sent == nil || *sent.Spec.Type != (tenancyv1alpha1.WorkspaceTypeReference{Path: "root", Name: "team"}) || sent.Spec.Location != nil {
				t.Fatalf("created %+v, want type root:team and no location in root:acme", sent)
			}
			if f.gets["root:acme:x"] != 4 {
				t.Errorf("read the workspace %d times, want until it was ready (4)", f.gets["root:acme:x"])
			}
			if readFile(t, config) != before {
				t.Fatal("create without --enter changed the kubeconfig")
			}
		})
	}
}

func TestCreateDefaultTypeAndSelector(t *testing.T) {
	f := newFakeKCP()
	_, config := startFake(t, f, "root")
	stdout, _, err := runCommand(t, newCreateWorkspaceCommand, "--kubeconfig", config, "x", "--location-selector", "region=eu")
	if err != nil || !strings.HasPrefix(stdout, "Workspace \"x\" (type root:universal) created.") {
		t.Fatalf("create: %v, stdout %q", err, stdout)
	}
	sent := f.created["root:x"]
	if sent.Spec.Type != nil || sent.Spec.Location == nil || sent.Spec.Location.Selector.MatchLabels["region"] != "eu" {
		t.Fatalf("created %+v, want no type and a selector region=eu", sent.Spec)
	}
	_, stderr, err := runCommand(t, newCreateWorkspaceCommand, "--kubeconfig", config, "y", "--location-selector", "a b")
	if err == nil || !strings.Contains(stderr, "Error: invalid location selector: ") {
		t.Fatalf("create with a bad selector: %v, stderr %q", err, stderr)
	}
}

func TestCreateEnter(t *testing.T) {
	f := newFakeKCP()
	f.add("root:acme")
	base, config := startFake(t, f, "root:acme")
	stdout, stderr, err := runCommand(t, newCreateWorkspaceCommand, "--kubeconfig", config, "x", "--enter")
	want := "Workspace \"x\" (type root:universal) created. Waiting for it to be ready...\n" +
		"Workspace \"x\" (type root:universal) is ready to use.\n" +
		"Current workspace is 'root:acme:x' (type root:universal).\n"
	if err != nil || stdout != want || stderr != "" {
		t.Fatalf("create --enter: %v, stdout\n%s\nstderr %q; want\n%s", err, stdout, stderr, want)
	}
	if got := serverOf(t, config, currentName); got != base+"/clusters/root:acme:x" {
		t.Fatalf("after create --enter: server %q", got)
	}
}

func TestCreateIgnoreExisting(t *testing.T) {
	f := newFakeKCP()
	f.add("root:x")
	_, config := startFake(t, f, "root")
	for _, args := range [][]string{{"--ignore-existing"}, {"--ignore-existing", "--type", "root:universal"}} {
		stdout, _, err := runCommand(t, newCreateWorkspaceCommand, append(args, "--kubeconfig", config, "x")...)
		want := "Workspace \"x\" (type root:universal) already exists.\nWorkspace \"x\" (type root:universal) is ready to use.\n"
		if err != nil || stdout != want {
			t.Fatalf("create x %v: %v, stdout %q, want %q", args, err, stdout, want)
		}
	}
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{nil, `workspaces.tenancy.kcp.io "x" already exists`},
		{[]string{"--ignore-existing", "--type", "root:team"}, `workspace "x" cannot be created with type root:team, it already exists with different type root:universal`},
		{[]string{"--ignore-existing", "--type", "team"}, "--ignore-existing must not be used with non-absolute type path"},
	} {
		stdout, stderr, err := runCommand(t, newCreateWorkspaceCommand, append(tc.args, "--kubeconfig", config, "x")...)
		if err == nil || stdout != "" || stderr != "Error: "+tc.wantErr+"\n" {
			t.Errorf("create x %v: %v, stdout %q, stderr %q; want Error: %s", tc.args, err, stdout, stderr, tc.wantErr)
		}
	}
}

func TestCreateContext(t *testing.T) {
	f := newFakeKCP()
	base, config := startFake(t, f, "root")
	stdout, _, err := runCommand(t, newCreateWorkspaceCommand, "--kubeconfig", config, "x", "--create-context", "x-ctx")
	if err != nil || !strings.HasSuffix(stdout, "is ready to use.\nCreated context \"x-ctx\".\n") {
		t.Fatalf("create --create-context: %v, stdout %q", err, stdout)
	}
	after := loadConfig(t, config)
	if after.CurrentContext != "kcp" || serverOf(t, config, "x-ctx") != base+"/clusters/root:x" || after.Contexts["x-ctx"].AuthInfo != "user" {
		t.Fatalf("after create --create-context: current context %q, context x-ctx %+v with server %q", after.CurrentContext, after.Contexts["x-ctx"], serverOf(t, config, "x-ctx"))
	}

	_, stderr, err := runCommand(t, newCreateWorkspaceCommand, "--kubeconfig", config, "x", "--ignore-existing", "--create-context", "x-ctx", "--enter")
	if err != nil || stderr != "" {
		t.Fatalf("create --ignore-existing --create-context --enter: %v, stderr %q", err, stderr)
	}
	if got := loadConfig(t, config).CurrentContext; got != "x-ctx" {
		t.Fatalf("after --enter: current context %q, want x-ctx", got)
	}

	// --ignore-existing overwrites the context, without it is kept. x-ctx
	// is current now: y is created in root:x.
	stdout, _, err = runCommand(t, newCreateWorkspaceCommand, "--kubeconfig", config, "y", "--ignore-existing", "--create-context", "x-ctx")
	if err != nil || !strings.HasSuffix(stdout, "Updated context \"x-ctx\".\n") || serverOf(t, config, "x-ctx") != base+"/clusters/root:x:y" {
		t.Fatalf("create y --ignore-existing --create-context x-ctx: %v, stdout %q, server %q", err, stdout, serverOf(t, config, "x-ctx"))
	}
	_, stderr, err = runCommand(t, newCreateWorkspaceCommand, "--kubeconfig", config, "z", "--create-context", "x-ctx")
	if err == nil || stderr != "Error: failed to create context: context \"x-ctx\" already exists in kubeconfig, use --overwrite to update it\n" {
		t.Fatalf("create z --create-context x-ctx: %v, stderr %q", err, stderr)
	}
}

func TestWorkspaceCreateContextCommand(t *testing.T) {
	_, config := startFake(t, newFakeKCP(), "root:acme")
	if got := mustRun(t, "create-context", "--kubeconfig", config); got != "Created context \"root:acme\" and switched to it.\n" {
		t.Fatalf("kubectl ws create-context printed %q", got)
	}
	mustFail(t, `context "root:acme" already exists in kubeconfig, use --overwrite to update it`, "create-context", "--kubeconfig", config)
	if got := mustRun(t, "create-context", "--overwrite", "--kubeconfig", config); got != "Updated context \"root:acme\".\n" {
		t.Fatalf("kubectl ws create-context --overwrite printed %q", got)
	}
}
