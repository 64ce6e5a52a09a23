package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"

	"github.com/warren-dev/warren/tenancy"
	"github.com/warren-dev/warren/tenancy/client"
	"github.com/warren-dev/warren/test/pgtest"
	"github.com/warren-dev/warren/test/warrentest"
)

// The tests of workspaces run in parallel with each other (two at a time on
// two CPUs): each has servers, directories and schemas of its own, and most of
// their time is spent waiting, on servers starting and stopping.

// TestWorkspacePlugin drives kubectl ws and kubectl create workspace through
// the real kubectl, as kcp's users run kcp's plugins: it shows root, creates an
// organization and enters it, creates a team there, goes down, up, back and to
// root, and draws the tree. After every step the kubeconfig's server is the
// URL of the workspace the plugin named, and plain kubectl on that kubeconfig
// addresses it. kubectl get ws shows kcp's columns.
func TestWorkspacePlugin(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		config := s.kubeconfigCopy(t)
		for _, step := range []struct {
			args []string
			want string
			// in is the workspace the kubeconfig addresses after the step.
			in string
		}{
			{[]string{"ws", "."}, currentSays("root", ""), "root"},
			{[]string{"create", "workspace", "acme", "--type", "organization", "--enter"}, createdSays("acme", "root:organization") + currentSays("root:acme", "root:organization"), "root:acme"},
			{[]string{"create", "workspace", "team-a", "--type", "team"}, createdSays("team-a", "root:team"), "root:acme"},
			{[]string{"ws", "team-a"}, currentSays("root:acme:team-a", "root:team"), "root:acme:team-a"},
			{[]string{"ws", ".."}, currentSays("root:acme", ""), "root:acme"},
			{[]string{"ws", "-"}, currentSays("root:acme:team-a", ""), "root:acme:team-a"},
			{[]string{"ws", ":root"}, currentSays("root", "root"), "root"},
			{[]string{"ws", "tree"}, ".\n└── root\n    └── acme\n        └── team-a\n\n", "root"},
		} {
			if got := mustKubectl(t, config, step.args...); got != step.want {
				t.Fatalf("kubectl %s printed\n%s\nwant\n%s", strings.Join(step.args, " "), got, step.want)
			}
			if got, want := currentServer(t, config), s.URL("/clusters/"+step.in); got != want {
				t.Fatalf("after kubectl %s, the kubeconfig's server is %s, want %s", strings.Join(step.args, " "), got, want)
			}
			if got := kubectlAddresses(t, config); got != step.in {
				t.Fatalf("after kubectl %s, kubectl addresses %s, want %s", strings.Join(step.args, " "), got, step.in)
			}
		}
		header, row := tableRow(t, s.kubectl("root", "get", "ws"), "acme")
		if want := []string{"NAME", "TYPE", "REGION", "PHASE", "URL", "AGE"}; !slices.Equal(header, want) {
			t.Errorf("kubectl get ws columns %v, want %v", header, want)
		}
		if row["TYPE"] != "organization" || row["PHASE"] != "Ready" || row["URL"] != s.URL("/clusters/root:acme") {
			t.Errorf("kubectl get ws shows acme as %v; want type organization, phase Ready, URL %s", row, s.URL("/clusters/root:acme"))
		}
		if _, row := tableRow(t, s.kubectl("root:acme", "get", "workspaces"), "team-a"); row["TYPE"] != "team" || row["URL"] != s.URL("/clusters/root:acme:team-a") {
			t.Errorf("kubectl get workspaces in root:acme shows team-a as %v", row)
		}
		s.expect("root", "acme", "get", "kcp", "-o", "jsonpath={.items[?(@.kind==\"Workspace\")].metadata.name}")
	})
}

// TestWorkspaceTree builds organization → team → project from Workspace
// manifests with kubectl apply and create, each level in the one before: the
// team's type defaults to the organization's default child type. Every level
// holds only its own objects and its own child, its LogicalCluster names its
// path and its parent's logical cluster, and it answers at its logical
// cluster's name as at its path.
func TestWorkspaceTree(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		ctx := context.Background()
		clusters := map[string]string{"root": "root"}
		children := map[string]string{}
		for _, level := range []struct{ parent, name, verb, spec, typ string }{
			{"root", "org", "apply", "spec: {type: {name: organization}}", "root:organization"},
			{"root:org", "team", "apply", "", "root:universal"},
			{"root:org:team", "project", "create", "spec: {type: {name: universal, path: root}}", "root:universal"},
		} {
			path := level.parent + ":" + level.name
			s.pipe(workspaceManifest(level.name, level.spec), level.parent, level.verb, "-f", "-")
			s.kubectl(level.parent, "wait", "--for=jsonpath={.status.phase}=Ready", "workspace/"+level.name, "--timeout=20s")
			typ, cluster, _ := strings.Cut(s.kubectl(level.parent, "get", "workspace", level.name, "-o", "jsonpath={.spec.type.path}:{.spec.type.name} {.spec.cluster}"), " ")
			if typ != level.typ {
				t.Errorf("%s has type %s, want %s", path, typ, level.typ)
			}
			clusters[path], children[level.parent] = cluster, level.name
			s.kubectl(path, "create", "configmap", "level", "--from-literal=path="+path)
		}
		for _, path := range []string{"root", "root:org", "root:org:team", "root:org:team:project"} {
			var want []string
			if child, ok := children[path]; ok {
				want = append(want, "workspace.tenancy.kcp.io/"+child)
			}
			if path != "root" {
				want = append([]string{"configmap/level"}, want...)
			}
			s.expectNames(path, want, "get", "configmaps,workspaces", "-A", "-o", "name")
		}
		for _, path := range []string{"root:org", "root:org:team", "root:org:team:project"} {
			_, row := tableRow(t, s.kubectl(path, "get", "logicalcluster", "cluster"), "cluster")
			if row["PHASE"] != "Ready" || row["URL"] != s.URL("/clusters/"+clusters[path]) {
				t.Errorf("%s: kubectl get logicalcluster cluster shows %v", path, row)
			}
			s.expect(path, path, "get", "logicalcluster", "cluster", "-o", `jsonpath={.metadata.annotations.kcp\.io/path}`)
			parent, _ := tenancy.Path(path).Parent()
			s.expect(path, clusters[string(parent)], "get", "logicalcluster", "cluster", "-o", "jsonpath={.spec.owner.cluster}")
			byName := s.Config("root")
			byName.Host = s.URL("/clusters/" + clusters[path])
			for _, config := range []*rest.Config{s.Config(path), byName} {
				cm, err := clientFor(t, config).CoreV1().ConfigMaps("default").Get(ctx, "level", metav1.GetOptions{})
				if err != nil || cm.Data["path"] != path {
					t.Errorf("configmap level at %s (%s): %v, %v", config.Host, path, cm.Data, err)
				}
			}
		}
	})
}

// TestWorkspaceServerSideApply makes a workspace with kubectl apply
// --server-side, as GitOps tools do, and applies it again with a label: both
// apply, and the workspace is Ready, labelled, of the type applied. kubectl
// explain knows kcp's fields from the server's OpenAPI.
func TestWorkspaceServerSideApply(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		for _, field := range []string{"workspace.spec.type", "workspace.spec.location.selector", "workspacetype.spec.limitAllowedParents", "logicalcluster.status.phase"} {
			if out := s.kubectl("root", "explain", field); !strings.Contains(out, "FIELD:") || !strings.Contains(out, "DESCRIPTION:") {
				t.Errorf("kubectl explain %s printed\n%s", field, out)
			}
		}
		manifest := workspaceManifest("applied", "spec: {type: {name: organization}}")
		s.pipe(manifest, "root", "apply", "--server-side", "-f", "-")
		s.kubectl("root", "wait", "--for=jsonpath={.status.phase}=Ready", "workspace/applied", "--timeout=20s")
		s.pipe(strings.Replace(manifest, "metadata:\n", "metadata:\n  labels: {stage: two}\n", 1), "root", "apply", "--server-side", "-f", "-")
		s.expect("root", "two root:organization", "get", "workspace", "applied", "-o", "jsonpath={.metadata.labels.stage} {.spec.type.path}:{.spec.type.name}")
	})
}

// TestWorkspaceIsolation fills two sibling workspaces, root:acme:a and
// root:acme:b, with objects of the same names and different content: each
// reads, lists and watches only its own, deleting a namespace in one leaves the
// other's, and their parent holds none of them.
func TestWorkspaceIsolation(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		ctx := context.Background()
		s.makeWorkspace("root", "acme", tenancy.Organization)
		a, b := "root:acme:a", "root:acme:b"
		for _, path := range []string{a, b} {
			s.makeWorkspace("root:acme", tenancy.Path(path).Base(), "")
			s.pipe(siblingObjects(path), path, "create", "-f", "-")
		}
		for path, want := range map[string]contents{a: siblingContents(a), b: siblingContents(b), "root:acme": {Namespaces: []string{"default"}}} {
			if got := contentsOf(t, s.client(path)); !reflect.DeepEqual(got, want) {
				t.Errorf("%s holds %+v, want %+v", path, got, want)
			}
		}

		// A watch in b sees b's changes only: a's configmap, made first, would
		// come first.
		list, err := s.client(b).CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w, err := s.client(b).CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		s.kubectl(a, "create", "configmap", "made-in-a")
		s.kubectl(b, "create", "configmap", "made-in-b")
		if e := nextEvent(t, w); e.Type != watch.Added || watchedName(t, e.Object) != "made-in-b" {
			t.Errorf("first event of the watch in b: %s %s, want ADDED made-in-b", e.Type, watchedName(t, e.Object))
		}

		s.kubectl(a, "delete", "namespace", "shared", "--wait=true", "--timeout=30s")
		s.expect(b, b, "get", "configmap", "same", "-n", "shared", "-o", "jsonpath={.data.owner}")
		s.expect(b, "Active", "get", "namespace", "shared", "-o", "jsonpath={.status.phase}")
	})
}

// contents is what a workspace holds of the kinds siblingObjects makes.
type contents struct {
	// ConfigMaps and Secrets are the owners in their data, of all namespaces.
	ConfigMaps, Secrets []string
	Namespaces          []string
	// ClusterRoles are each name=the resource names of its rules.
	ClusterRoles []string
}

// siblingContents is what siblingObjects makes in the workspace at path.
func siblingContents(path string) contents {
	name := tenancy.Path(path).Base()
	return contents{
		ConfigMaps:   []string{path, path},
		Secrets:      []string{path},
		Namespaces:   []string{"default", "only-" + name, "shared"},
		ClusterRoles: []string{"same=" + name},
	}
}

// contentsOf lists what c's workspace holds.
func contentsOf(t *testing.T, c kubernetes.Interface) contents {
	t.Helper()
	ctx := context.Background()
	var got contents
	cms, err := c.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cm := range cms.Items {
		got.ConfigMaps = append(got.ConfigMaps, cm.Data["owner"])
	}
	secrets, err := c.CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range secrets.Items {
		got.Secrets = append(got.Secrets, string(secret.Data["owner"]))
	}
	namespaces, err := c.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range namespaces.Items {
		got.Namespaces = append(got.Namespaces, ns.Name)
	}
	roles, err := c.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range roles.Items {
		if role.Labels["kubernetes.io/bootstrapping"] == "rbac-defaults" {
			continue // every workspace's, stored in none
		}
		var names []string
		for _, rule := range role.Rules {
			names = append(names, rule.ResourceNames...)
		}
		got.ClusterRoles = append(got.ClusterRoles, role.Name+"="+strings.Join(names, ","))
	}
	return got
}

// TestWorkspaceAccess: entering a workspace takes the verb "access" on "/" in
// the workspace's own RBAC, as in kcp. alice, bound so in root:acme and
// allowed there to make workspaces, makes root:acme:mine, whose admin she is
// and whose owner and logical cluster she cannot forge. Before the binding, and
// after it is removed, she is refused in root:acme exactly as in root:other,
// root:acme:team-b (the admin's) and a workspace that does not exist; bob may
// not enter her workspace. kubectl ws tells her which exist and which she may
// not enter, as kcp's plugin does.
func TestWorkspaceAccess(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		ctx := context.Background()
		s.makeWorkspace("root", "acme", tenancy.Organization)
		otherCluster := s.makeWorkspace("root", "other", "")
		s.makeWorkspace("root:acme", "team-b", "")
		denied := func(user string) string {
			return fmt.Sprintf(`User %q cannot list resource "configmaps" in API group "" in the namespace "default": access denied`, user)
		}
		aliceIn := func(address string) kubernetes.Interface {
			return clientFor(t, s.tokenConfigAt("alice-token", address))
		}
		for _, path := range []string{"root:acme", "root:nope", "root:acme:nope", "zzzzzzzzzzzzz"} {
			_, err := aliceIn(path).CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
			expectAPIStatus(t, "alice lists configmaps in "+path+" before the grant", err, 403, denied("alice"))
		}

		s.kubectl("root:acme", "create", "clusterrole", "workspace-maker", "--verb=create,get,list,watch", "--resource=workspaces.tenancy.kcp.io")
		s.kubectl("root:acme", "create", "clusterrolebinding", "alice-makes-workspaces", "--clusterrole=workspace-maker", "--user=alice")
		s.kubectl("root:acme", "create", "clusterrolebinding", "alice-enters", "--clusterrole=system:kcp:workspace:access", "--user=alice")
		alice, err := client.New(s.tokenConfig("alice-token", "root"))
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "alice lists the workspaces of root:acme", func() error {
			_, err := alice.List(ctx, "root:acme")
			return err
		})

		// She makes mine, trying to forge its owner, cluster and phase.
		forged := fmt.Sprintf(`apiVersion: tenancy.kcp.io/v1alpha1
kind: Workspace
metadata: {name: mine, annotations: {experimental.tenancy.kcp.io/owner: '{"username":"admin"}'}}
spec: {cluster: %s}
status: {phase: Ready}
`, otherCluster)
		if out, err := s.run(forged, "alice-token", "root:acme", "create", "-f", "-"); err != nil {
			t.Fatalf("alice creates root:acme:mine: %v\n%s", err, out)
		}
		mine, err := alice.WaitReady(ctx, "root:acme", "mine", 20*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		owner, err := tenancy.Owner(mine.Annotations)
		if err != nil || owner == nil || owner.Username != "alice" || owner.UID != "alice-uid" || mine.Spec.Cluster == otherCluster || mine.Spec.Type.Name != tenancy.Universal {
			t.Errorf("alice's workspace: owner %+v (%v), cluster %s (root:other's is %s), type %v; want owner alice, a new cluster, type universal", owner, err, mine.Spec.Cluster, otherCluster, mine.Spec.Type)
		}
		inMine := aliceIn("root:acme:mine")
		if _, err := inMine.CoreV1().ConfigMaps("default").Create(ctx, configMap("hers"), metav1.CreateOptions{}); err != nil {
			t.Errorf("alice creates a configmap in her workspace: %v", err)
		}
		bindings, err := inMine.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("alice lists the cluster role bindings of her workspace: %v", err)
		}
		if b := bindings.Items; len(b) != 1 || b[0].Name != tenancy.AdminBinding || b[0].RoleRef.Name != "cluster-admin" ||
			len(b[0].Subjects) != 1 || b[0].Subjects[0].Kind != "User" || b[0].Subjects[0].Name != "alice" {
			t.Errorf("cluster role bindings of alice's workspace: %+v; want only %s, of cluster-admin to the user alice", b, tenancy.AdminBinding)
		}
		s.expect("root:acme:mine", "alice", "get", "logicalcluster", "cluster", "-o", "jsonpath={.spec.createdBy.username}")

		// Everything else stays closed, and looks alike.
		for _, path := range []string{"root:other", "root:acme:team-b", "root:acme:nope", "zzzzzzzzzzzzz", otherCluster} {
			_, err := aliceIn(path).CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
			expectAPIStatus(t, "alice lists configmaps in "+path, err, 403, denied("alice"))
		}
		_, err = alice.Create(ctx, "root:other", "sneaky", nil)
		expectAPIStatus(t, "alice creates a workspace in root:other", err, 403, "access denied")
		_, err = clientFor(t, s.tokenConfigAt("bob-token", "root:acme:mine")).CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
		expectAPIStatus(t, "bob lists configmaps in alice's workspace", err, 403, denied("bob"))
		s.expect("root:other", "", "get", "workspaces", "-o", "name")

		config := s.tokenKubeconfig(t, "alice-token", "root")
		before := readKubeconfig(t, config)
		for _, tc := range []struct{ arg, want string }{
			{":root:other", `Error: access to workspace "root:other" denied`},
			{":root:nope", `Error: workspace "root:nope" not found`},
		} {
			if got := refusedWS(t, config, tc.arg); !strings.HasPrefix(got, tc.want) {
				t.Errorf("kubectl ws %s as alice said %q, want %q", tc.arg, got, tc.want)
			}
		}
		if readKubeconfig(t, config) != before {
			t.Error("a refused kubectl ws changed alice's kubeconfig")
		}
		if got := mustWS(t, config, ":root:acme"); got != currentSays("root:acme", "root:organization") {
			t.Errorf("kubectl ws :root:acme as alice printed %q", got)
		}
		if got := mustWS(t, config, "mine"); got != currentSays("root:acme:mine", "root:universal") {
			t.Errorf("kubectl ws mine as alice printed %q", got)
		}

		// Once the binding is gone, so is she.
		s.kubectl("root:acme", "delete", "clusterrolebinding", "alice-enters")
		eventually(t, "alice is refused in root:acme", func() error {
			_, err := aliceIn("root:acme").CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
			if !apierrors.IsForbidden(err) {
				return fmt.Errorf("alice lists configmaps in root:acme: %v", err)
			}
			return nil
		})
		_, err = aliceIn("root:acme").CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
		expectAPIStatus(t, "alice lists configmaps in root:acme after the binding went", err, 403, denied("alice"))
		if _, err := inMine.CoreV1().ConfigMaps("default").Get(ctx, "hers", metav1.GetOptions{}); err != nil {
			t.Errorf("alice reads her configmap in her own workspace, whose admin she stays: %v", err)
		}
	})
}

// TestWorkspaceDeleteErases deletes root:gone, holding root:gone:kid, both full
// of objects (a CRD and its resources among them): the workspaces go, every row
// of their logical clusters leaves the objects table at once and the log once
// compacted, and no row of root (but the Workspace gone) or of the sibling
// root:kept changes. A workspace made again under the old name is a new, empty
// one.
func TestWorkspaceDeleteErases(t *testing.T) {
	t.Parallel()
	const (
		rows = `SELECT count(*) FROM objects WHERE cluster = $1`
		// unmatched are the rows of a cluster whose keys the pattern of the
		// log query below misses.
		unmatched = `SELECT count(*) FROM objects WHERE cluster = $1 AND key NOT LIKE '%/' || $1 || '/%'`
		// unchanged are the rows of a cluster as they were at revision $2.
		unchanged = `SELECT count(*) FROM objects WHERE cluster = $1 AND revision <= $2`
		revision  = `SELECT current FROM revision`
		rowsOf    = `SELECT count(*) FROM objects WHERE cluster IN ($1, $2)`
		logOf     = `SELECT count(*) FROM log WHERE key LIKE '%/' || $1 || '/%' OR key LIKE '%/' || $2 || '/%'`
	)
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			s := startServerWith(t, append(warrentest.Storage(t, dialect), "--compaction-interval", "1s")...)
			gone, kid := s.makeWorkspace("root", "gone", ""), s.makeWorkspace("root:gone", "kid", "")
			kept := s.makeWorkspace("root", "kept", "")
			for _, path := range []string{"root:gone", "root:gone:kid", "root:kept"} {
				s.pipe(siblingObjects(path), path, "create", "-f", "-")
			}
			for _, path := range []string{"root:gone:kid", "root:kept"} {
				s.establish(path, sizedWidgets)
				s.pipe(widget("w", "{size: 2}"), path, "create", "-n", "shared", "-f", "-")
			}
			for _, cluster := range []string{gone, kid} {
				if n, missed := storageCount(t, s, rows, cluster), storageCount(t, s, unmatched, cluster); n < 10 || missed != 0 {
					t.Fatalf("cluster %s has %d rows, %d of whose keys the log's pattern misses; want at least 10, none missed", cluster, n, missed)
				}
			}
			before := storageCount(t, s, revision)
			rootRows, keptRows := storageCount(t, s, unchanged, "root", before), storageCount(t, s, unchanged, kept, before)

			s.kubectl("root", "delete", "workspace", "gone", "--wait=true", "--timeout=30s")
			s.refused("", "root", `workspaces.tenancy.kcp.io "gone" not found`, "get", "workspace", "gone")
			for _, address := range []string{"root:gone", "root:gone:kid", gone, kid} {
				expectAPIStatus(t, "/clusters/"+address+" after the delete", s.request(s.Config("root"), "/clusters/"+address+"/api"), 404, "not found")
			}
			if n := storageCount(t, s, rowsOf, gone, kid); n != 0 {
				t.Errorf("%d rows of the deleted clusters %s and %s are left in objects", n, gone, kid)
			}
			if n := storageCount(t, s, unchanged, "root", before); n != rootRows-1 {
				t.Errorf("%d rows of root are as they were before the delete, want %d: all but the Workspace gone", n, rootRows-1)
			}
			if n := storageCount(t, s, unchanged, kept, before); n != keptRows {
				t.Errorf("%d rows of root:kept are as they were before the delete, want all %d", n, keptRows)
			}
			s.expect("root:kept", "root:kept", "get", "configmap", "same", "-n", "shared", "-o", "jsonpath={.data.owner}")
			s.expect("root:kept", "2", "get", "widget", "w", "-n", "shared", "-o", "jsonpath={.spec.size}")
			eventually(t, "the log compacted", func() error {
				if n := storageCount(t, s, logOf, gone, kid); n != 0 {
					return fmt.Errorf("%d log rows of the deleted clusters %s and %s are left", n, gone, kid)
				}
				return nil
			})

			if again := s.makeWorkspace("root", "gone", ""); again == gone || again == kid {
				t.Errorf("the new root:gone has an old logical cluster, %s", again)
			}
			s.expect("root:gone", "", "get", "configmaps,workspaces", "-A", "-o", "name")
		})
	}
}

// TestWorkspaceTerminating deletes root:gone while its child root:gone:kid
// holds a finalizer of someone else's: root:gone turns Terminating and stays
// so, serving reads and refusing new objects, and kid's logical cluster is
// erased. Once the holder removes its finalizer, as it may in a terminating
// Kubernetes namespace, both workspaces go.
func TestWorkspaceTerminating(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		ctx := context.Background()
		const hold = "e2e.warren.dev/hold"
		s.makeWorkspace("root", "gone", "")
		s.makeWorkspace("root:gone", "kid", "")
		s.kubectl("root:gone", "patch", "workspace", "kid", "--type=json", "-p", `[{"op":"add","path":"/metadata/finalizers/-","value":"`+hold+`"}]`)
		s.kubectl("root:gone", "create", "configmap", "before")
		s.kubectl("root", "delete", "workspace", "gone", "--wait=false")
		admin, err := client.New(s.Config("root"))
		if err != nil {
			t.Fatal(err)
		}
		eventually(t, "root:gone Terminating, waiting for kid to lose its finalizer", func() error {
			gone, err := admin.Get(ctx, "root", "gone")
			if err != nil {
				return err
			}
			kid, err := admin.Get(ctx, "root:gone", "kid")
			if err != nil {
				return err
			}
			if gone.Status.Phase != corev1alpha1.LogicalClusterPhaseTerminating || !slices.Equal(kid.Finalizers, []string{hold}) {
				return fmt.Errorf("root:gone is %s, kid has finalizers %v", gone.Status.Phase, kid.Finalizers)
			}
			return nil
		})
		s.expect("root:gone", "before", "get", "configmap", "before", "-o", "jsonpath={.metadata.name}")
		_, err = s.client("root:gone").CoreV1().ConfigMaps("default").Create(ctx, configMap("after"), metav1.CreateOptions{})
		expectAPIStatus(t, "creating a configmap in the terminating root:gone", err, 403, "workspace root:gone is being deleted")
		_, err = admin.Create(ctx, "root:gone", "late", nil)
		expectAPIStatus(t, "creating a workspace in the terminating root:gone", err, 403, "workspace root:gone is being deleted")
		expectAPIStatus(t, "the erased root:gone:kid", s.request(s.Config("root"), "/clusters/root:gone:kid/api"), 404, "not found")

		s.kubectl("root:gone", "patch", "workspace", "kid", "--type=json", "-p", `[{"op":"test","path":"/metadata/finalizers/0","value":"`+hold+`"},{"op":"remove","path":"/metadata/finalizers/0"}]`)
		eventually(t, "root:gone deleted", func() error {
			if _, err := admin.Get(ctx, "root", "gone"); !apierrors.IsNotFound(err) {
				return fmt.Errorf("root:gone: %v", err)
			}
			return nil
		})
	})
}

// TestWorkspaceRestart builds a tree of workspaces with objects, restarts the
// server, and finds the same tree, the same logical clusters and objects at
// the same paths; new workspaces can still be made, at any level.
func TestWorkspaceRestart(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		ctx := context.Background()
		config := s.kubeconfigCopy(t)
		mustKubectl(t, config, "create", "workspace", "acme", "--type", "organization")
		clusters := map[string]string{}
		for _, path := range []string{"root:acme:team-a", "root:acme:team-b", "root:acme:team-a:proj"} {
			parent, _ := tenancy.Path(path).Parent()
			clusters[path] = s.makeWorkspace(string(parent), tenancy.Path(path).Base(), "")
		}
		for path := range clusters {
			where := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "where"}, Data: map[string]string{"path": path}}
			if _, err := s.client(path).CoreV1().ConfigMaps("default").Create(ctx, where, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		want := ".\n└── root\n    └── acme\n        ├── team-a\n        │   └── proj\n        └── team-b\n\n"
		if got := mustWS(t, config, "tree"); got != want {
			t.Fatalf("kubectl ws tree printed\n%s\nwant\n%s", got, want)
		}

		s.Restart()
		if got := mustWS(t, config, "tree"); got != want {
			t.Errorf("after the restart, kubectl ws tree printed\n%s\nwant\n%s", got, want)
		}
		admin, err := client.New(s.Config("root"))
		if err != nil {
			t.Fatal(err)
		}
		for path, cluster := range clusters {
			parent, _ := tenancy.Path(path).Parent()
			if ws, err := admin.Get(ctx, string(parent), tenancy.Path(path).Base()); err != nil || ws.Spec.Cluster != cluster {
				t.Errorf("after the restart, %s: %v; want logical cluster %s", path, err, cluster)
			}
			if cm, err := s.client(path).CoreV1().ConfigMaps("default").Get(ctx, "where", metav1.GetOptions{}); err != nil || cm.Data["path"] != path {
				t.Errorf("after the restart, configmap where in %s: %v", path, err)
			}
			s.expect(path, path, "get", "logicalcluster", "cluster", "-o", `jsonpath={.metadata.annotations.kcp\.io/path}`)
		}
		mustWS(t, config, ":root:acme:team-b")
		if got := mustKubectl(t, config, "create", "workspace", "late", "--enter"); got != createdSays("late", "root:universal")+currentSays("root:acme:team-b:late", "root:universal") {
			t.Errorf("kubectl create workspace late --enter after the restart printed\n%s", got)
		}
		s.makeWorkspace("root", "new-org", tenancy.Organization)
		mustWS(t, config, ":root")
		want = ".\n└── root\n    ├── acme\n    │   ├── team-a\n    │   │   └── proj\n    │   └── team-b\n    │       └── late\n    └── new-org\n\n"
		if got := mustWS(t, config, "tree"); got != want {
			t.Errorf("kubectl ws tree printed\n%s\nwant\n%s", got, want)
		}
	})
}

// TestWorkspaceBadInput: invalid names, unknown types and types not allowed
// where they are asked for are refused with 422 and make nothing; root cannot
// be deleted, logical clusters are read-only, the type of a workspace cannot
// change; malformed paths are 400 for everyone; an unknown workspace is 404
// for the admin, and, for anyone else, 403 exactly as one they may not enter;
// without credentials every workspace is 401 alike. kubectl ws refuses to
// enter what does not exist and leaves the kubeconfig alone.
func TestWorkspaceBadInput(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		ctx := context.Background()
		s.makeWorkspace("root", "acme", tenancy.Organization)
		admin, err := client.New(s.Config("root"))
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ parent, name, typ, field, detail string }{
			{"root", "Bad_Name", "", "metadata.name", "a lowercase RFC 1123 label"},
			{"root", strings.Repeat("a", 64), "", "metadata.name", "must be no more than 63 characters"},
			{"root", "a:b", "", "metadata.name", "a lowercase RFC 1123 label"},
			{"root", "x", "nosuch", "spec.type", `"root:nosuch": no such workspace type`},
			{"root", "x", "No_Type", "spec.type.name", "must be a lowercase RFC 1123 label"},
			{"root:acme", "x", tenancy.Organization, "spec.type", "workspace type root:organization only allows [root:root] parent workspaces, but parent type root:organization only implements [root:organization root:universal]"},
			{"root", "x", tenancy.Team, "spec.type", "workspace type root:team only allows [root:organization root:team] parent workspaces, but parent type root:root only implements [root:root root:universal]"},
			{"root", "x", tenancy.Root, "spec.type", "workspace type root:root cannot have any parent"},
			{"root", "x", tenancy.Home, "spec.type", "workspace type root:home cannot have any parent"},
		} {
			what := fmt.Sprintf("creating %q of type %q in %s", tc.name, tc.typ, tc.parent)
			_, err := admin.Create(ctx, tc.parent, tc.name, typeRef(tc.typ))
			expectAPIStatus(t, what, err, 422, tc.detail)
			if !hasCause(err, tc.field) {
				t.Errorf("%s: %v names no field %s", what, err, tc.field)
			}
		}
		s.expectNames("root", []string{"workspace.tenancy.kcp.io/acme"}, "get", "workspaces", "-o", "name")
		s.expect("root:acme", "", "get", "workspaces", "-o", "name")

		s.refused("", "root", "(MethodNotAllowed)", "delete", "logicalcluster", "cluster")
		s.refused("", "root:acme", "(MethodNotAllowed)", "label", "logicalcluster", "cluster", "x=y")
		s.refused("", "root", `workspaces.tenancy.kcp.io "root" not found`, "delete", "workspace", "root")
		s.expect("root", "Ready", "get", "logicalcluster", "cluster", "-o", "jsonpath={.status.phase}")
		s.refused("", "root", "field is immutable", "patch", "workspace", "acme", "--type=merge", "-p", `{"spec":{"type":{"name":"universal"}}}`)
		s.refused("", "root", "spec.mount: Forbidden", "patch", "workspace", "acme", "--type=merge", "-p", `{"spec":{"mount":{"ref":{"apiVersion":"v1","kind":"ConfigMap","name":"x"}}}}`)
		s.expect("root", "root:organization", "get", "workspace", "acme", "-o", "jsonpath={.spec.type.path}:{.spec.type.name}")

		for _, tc := range []struct {
			address string
			code    int32
			message string
		}{
			{"root:nope", 404, `workspaces.tenancy.kcp.io "root:nope" not found`},
			{"root:acme:nope", 404, `workspaces.tenancy.kcp.io "root:acme:nope" not found`},
			{"zzzzzzzzzzzzz", 404, `workspaces.tenancy.kcp.io "zzzzzzzzzzzzz" not found`},
			{"root::x", 400, `invalid workspace path "root::x"`},
			{"root:Acme", 400, `invalid workspace path "root:Acme"`},
			{"Root", 400, `invalid logical cluster name "Root"`},
		} {
			expectAPIStatus(t, "the admin at /clusters/"+tc.address, s.request(s.Config("root"), "/clusters/"+tc.address+"/api"), tc.code, tc.message)
		}
		// alice may enter none of these; whether they exist she cannot tell.
		alice := s.tokenConfig("alice-token", "root")
		for _, address := range []string{"root:acme", "root:nope", "root:acme:nope", "zzzzzzzzzzzzz", s.makeWorkspace("root", "hidden", "")} {
			expectAPIStatus(t, "alice at /clusters/"+address, s.request(alice, "/clusters/"+address+"/api"), 403, `User "alice" cannot get path "/api": access denied`)
		}
		for _, address := range []string{"root::x", "root:Acme"} {
			expectAPIStatus(t, "alice at /clusters/"+address, s.request(alice, "/clusters/"+address+"/api"), 400, "invalid workspace path")
		}
		anonymous := rest.AnonymousClientConfig(alice)
		for _, address := range []string{"root", "root:acme", "root:nope"} {
			expectAPIStatus(t, "anonymous at /clusters/"+address, s.request(anonymous, "/clusters/"+address+"/api"), 401, "Unauthorized")
		}

		config := s.kubeconfigCopy(t)
		before := readKubeconfig(t, config)
		for _, tc := range []struct{ arg, want string }{
			{"nope", "Error: the server could not find the requested resource"},
			{":root:acme:nope", "Error: the server could not find the requested resource"},
			{"acme:nope:deeper", "Error: the server could not find the requested resource"},
			{"Bad_Name", "Error: invalid workspace path: Bad_Name"},
			{"..", "Error: invalid workspace path: .."},
			{"-", "Error: no previous workspace found in kubeconfig"},
		} {
			if got := refusedWS(t, config, tc.arg); !strings.HasPrefix(got, tc.want) {
				t.Errorf("kubectl ws %s said %q, want %q", tc.arg, got, tc.want)
			}
		}
		if readKubeconfig(t, config) != before {
			t.Error("a refused kubectl ws changed the kubeconfig")
		}
	})
}

// makeWorkspace creates the workspace name of type typ (the parent type's
// default child type if empty) in the workspace at parent, as the admin, waits
// until it is Ready and returns its logical cluster's name. Unlike
// Server.Workspace, it lets nobody else in.
func (s *server) makeWorkspace(parent, name, typ string) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.New(s.Config("root"))
	if err != nil {
		s.t.Fatal(err)
	}
	if _, err := c.Create(ctx, parent, name, typeRef(typ)); err != nil {
		s.t.Fatal(err)
	}
	ws, err := c.WaitReady(ctx, parent, name, 20*time.Millisecond)
	if err != nil {
		s.t.Fatal(err)
	}
	return ws.Spec.Cluster
}

// typeRef refers to the type name, or to none if name is empty.
func typeRef(name string) *tenancyv1alpha1.WorkspaceTypeReference {
	if name == "" {
		return nil
	}
	return &tenancyv1alpha1.WorkspaceTypeReference{Name: tenancyv1alpha1.WorkspaceTypeName(name)}
}

// workspaceManifest is the YAML of the Workspace name with spec, a YAML
// fragment.
func workspaceManifest(name, spec string) string {
	return "apiVersion: tenancy.kcp.io/v1alpha1\nkind: Workspace\nmetadata:\n  name: " + name + "\n" + spec + "\n"
}

// siblingObjects are objects of the same names in every workspace, each
// telling the path of the workspace it was made for, and a namespace of that
// workspace's own: only-<name>.
func siblingObjects(path string) string {
	name := tenancy.Path(path).Base()
	return fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata: {name: shared}
---
apiVersion: v1
kind: Namespace
metadata: {name: only-%[2]s}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: same, namespace: default}
data: {owner: %[1]s}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: same, namespace: shared}
data: {owner: %[1]s}
---
apiVersion: v1
kind: Secret
metadata: {name: same, namespace: shared}
stringData: {owner: %[1]s}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: same}
rules: [{apiGroups: [""], resources: [configmaps], resourceNames: [%[2]s], verbs: [get]}]
`, path, name)
}

// currentSays is what kubectl ws says when path is the current workspace, of
// type typ if the plugin knows it.
func currentSays(path, typ string) string {
	if typ == "" {
		return fmt.Sprintf("Current workspace is '%s'.\n", path)
	}
	return fmt.Sprintf("Current workspace is '%s' (type %s).\n", path, typ)
}

// createdSays is what kubectl ws create says of the workspace name of type typ.
func createdSays(name, typ string) string {
	return fmt.Sprintf("Workspace %q (type %s) created. Waiting for it to be ready...\nWorkspace %q (type %s) is ready to use.\n", name, typ, name, typ)
}

// kubeconfigCopy copies the admin's kubeconfig, whose current context
// addresses root, for kubectl ws to change.
func (s *server) kubeconfigCopy(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(file, []byte(readKubeconfig(t, s.Kubeconfig)), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// tokenKubeconfig writes a kubeconfig whose current context addresses the
// workspace at path as the user of token, trusting any server certificate.
func (s *server) tokenKubeconfig(t *testing.T, token, path string) string {
	t.Helper()
	config := clientcmdapi.NewConfig()
	config.Clusters["warren"] = &clientcmdapi.Cluster{Server: s.ClusterURL(path), InsecureSkipTLSVerify: true}
	config.AuthInfos["user"] = &clientcmdapi.AuthInfo{Token: token}
	config.Contexts["warren"] = &clientcmdapi.Context{Cluster: "warren", AuthInfo: "user"}
	config.CurrentContext = "warren"
	file := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*config, file); err != nil {
		t.Fatal(err)
	}
	return file
}

// readKubeconfig returns the content of the kubeconfig file.
func readKubeconfig(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// kubectlOn runs the real kubectl with args and the kubeconfig file config,
// its discovery cache beside it, and returns its standard output and error
// output apart. kubectl finds kubectl-ws on the PATH.
func kubectlOn(config string, args ...string) (stdout, stderr string, err error) {
	return kubectlIn(config, "", args...)
}

// kubectlIn is kubectlOn with stdin as kubectl's standard input.
func kubectlIn(config, stdin string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kubectl", args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(),
		"KUBECONFIG="+config,
		"KUBECACHEDIR="+filepath.Join(filepath.Dir(config), "cache"),
		"PATH="+pluginDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// mustWS runs "kubectl ws args..." on the kubeconfig file config, fails the
// test unless it succeeds without complaint, and returns what it printed.
func mustWS(t *testing.T, config string, args ...string) string {
	t.Helper()
	return mustKubectl(t, config, append([]string{"ws"}, args...)...)
}

// mustKubectl runs "kubectl args..." (a plugin's command) on the kubeconfig
// file config, fails the test unless it succeeds without complaint, and
// returns what it printed.
func mustKubectl(t *testing.T, config string, args ...string) string {
	t.Helper()
	stdout, stderr, err := kubectlOn(config, args...)
	if err != nil || stderr != "" {
		t.Fatalf("kubectl %s: %v\n%s%s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

// refusedWS runs "kubectl ws args..." on the kubeconfig file config, fails the
// test unless it exits non-zero with nothing on its standard output, and
// returns its error output.
func refusedWS(t *testing.T, config string, args ...string) string {
	t.Helper()
	stdout, stderr, err := kubectlOn(config, append([]string{"ws"}, args...)...)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || stdout != "" {
		t.Errorf("kubectl ws %s: %v, printed %q; want a failure", strings.Join(args, " "), err, stdout)
	}
	return stderr
}

// currentServer is the server URL of the current context's cluster in the
// kubeconfig file config.
func currentServer(t *testing.T, config string) string {
	t.Helper()
	c, err := clientcmd.LoadFromFile(config)
	if err != nil {
		t.Fatal(err)
	}
	current, ok := c.Contexts[c.CurrentContext]
	if !ok || c.Clusters[current.Cluster] == nil {
		t.Fatalf("%s has no current context and cluster", config)
	}
	return c.Clusters[current.Cluster].Server
}

// kubectlAddresses is the path of the workspace plain kubectl addresses with the
// kubeconfig file config, as its LogicalCluster tells.
func kubectlAddresses(t *testing.T, config string) string {
	t.Helper()
	stdout, stderr, err := kubectlOn(config, "get", "logicalcluster", "cluster", "-o", `jsonpath={.metadata.annotations.kcp\.io/path}`)
	if err != nil {
		t.Fatalf("kubectl get logicalcluster cluster: %v\n%s", err, stderr)
	}
	return stdout
}

// request GETs path, from the server's root, with config's credentials and
// returns the server's refusal, or nil.
func (s *server) request(config *rest.Config, path string) error {
	s.t.Helper()
	config = rest.CopyConfig(config)
	config.Host = s.URL("")
	dc, err := discovery.NewDiscoveryClientForConfig(config)
	if err != nil {
		s.t.Fatal(err)
	}
	return dc.RESTClient().Get().AbsPath(path).Do(context.Background()).Error()
}

// expectAPIStatus fails the test unless err is an API status of code whose
// message holds message.
func expectAPIStatus(t *testing.T, what string, err error, code int32, message string) {
	t.Helper()
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Code != code || !strings.Contains(status.Status().Message, message) {
		t.Errorf("%s: got %v, want status %d saying %q", what, err, code, message)
	}
}

// watchedName is the name of a watched object.
func watchedName(t *testing.T, obj any) string {
	t.Helper()
	m, ok := obj.(metav1.Object)
	if !ok {
		t.Fatalf("watched %T, which has no metadata", obj)
	}
	return m.GetName()
}

// storageCount runs query, a count over the server's storage tables, with
// args, directly in its database: the SQLite file, read only, or the
// PostgreSQL schema of its shard.
func storageCount(t *testing.T, s *server, query string, args ...any) int64 {
	t.Helper()
	return storageRow[int64](t, s, query, args...)
}

// storageRow runs query, which reads one value from the server's storage
// tables, as storageCount does.
func storageRow[T any](t *testing.T, s *server, query string, args ...any) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var v T
	var err error
	if i := slices.Index(s.Args, "--shard"); i >= 0 {
		v, err = postgresRow[T](ctx, pgtest.URL(), s.Args[i+1], query, args...)
	} else {
		v, err = sqliteRow[T](ctx, filepath.Join(s.DataDir, "warren.db"), query, args...)
	}
	if err != nil {
		t.Fatalf("%s %v: %v", query, args, err)
	}
	return v
}

// sqliteRow reads one value with query from the SQLite file, read only.
func sqliteRow[T any](ctx context.Context, file, query string, args ...any) (T, error) {
	var v T
	db, err := sql.Open("sqlite", "file:"+file+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		return v, err
	}
	defer db.Close()
	err = db.QueryRowContext(ctx, query, args...).Scan(&v)
	return v, err
}

// postgresRow reads one value with query from the schema shard of the
// PostgreSQL database at url.
func postgresRow[T any](ctx context.Context, url, shard, query string, args ...any) (T, error) {
	var v T
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return v, err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SET search_path TO "+pgx.Identifier{shard}.Sanitize()); err != nil {
		return v, err
	}
	err = conn.QueryRow(ctx, query, args...).Scan(&v)
	return v, err
}

// sandboxType is a workspace type of the test's own, in root: its workspaces
// start with a namespace and a binding besides the defaults (warren's
// annotations), may be made only in root, and may have no children.
const sandboxType = `apiVersion: tenancy.kcp.io/v1alpha1
kind: WorkspaceType
metadata:
  name: sandbox
  annotations:
    initialization.warren.dev/namespaces: tools
    initialization.warren.dev/cluster-role-bindings: '[{"name": "devs-view", "clusterRole": "view", "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "devs"}]}]'
spec:
  limitAllowedParents: {types: [{name: root, path: root}]}
  limitAllowedChildren: {none: true}
`

// TestWorkspaceCustomType makes a workspace type and uses it at once: the new
// workspace starts with the type's namespaces and bindings, and the type's
// placement rules hold. The type is stamped with its workspace's path and
// defaults its child type as kcp's does; types warren cannot serve are refused.
func TestWorkspaceCustomType(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		s.pipe(sandboxType, "root", "create", "-f", "-")
		s.expect("root", "root root:universal", "get", "workspacetype", "sandbox", "-o",
			`jsonpath={.metadata.annotations.kcp\.io/path} {.spec.defaultChildWorkspaceType.path}:{.spec.defaultChildWorkspaceType.name}`)
		s.pipe(workspaceManifest("box", "spec: {type: {name: sandbox}}"), "root", "create", "-f", "-")
		s.kubectl("root", "wait", "--for=jsonpath={.status.phase}=Ready", "workspace/box", "--timeout=20s")
		s.expectNames("root:box", []string{"namespace/default", "namespace/tools"}, "get", "namespaces", "-o", "name")
		// The admin, who made it, owns nothing (as in kcp): devs-view is all.
		s.expectNames("root:box", []string{"clusterrolebinding.rbac.authorization.k8s.io/devs-view"}, "get", "clusterrolebindings", "-o", "name")
		// bob (group devs) may view inside once he may enter.
		s.kubectl("root:box", "create", "clusterrolebinding", "bob-enters", "--clusterrole=system:kcp:workspace:access", "--user=bob")
		s.kubectl("root:box", "create", "configmap", "seen", "-n", "tools")
		eventually(t, "bob views configmaps in root:box", func() error {
			out, err := s.kubectlAs("bob-token", "root:box", "get", "configmaps", "-n", "tools", "-o", "name")
			if err != nil || strings.TrimSpace(out) != "configmap/seen" {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
		if out, err := s.kubectlAs("bob-token", "root:box", "create", "configmap", "nope", "-n", "tools"); err == nil || !strings.Contains(out, "forbidden") {
			t.Errorf("bob, a viewer, creates in root:box: %v\n%s", err, out)
		}
		// A sandbox has no children, and lives only in root.
		out, err := s.kubectlIn(workspaceManifest("kid", ""), "root:box", "create", "-f", "-")
		if err == nil || !strings.Contains(out, "spec.type") || !strings.Contains(out, "workspace type root:sandbox cannot have any child") {
			t.Errorf("a child of a sandbox: %v\n%s", err, out)
		}
		s.makeWorkspace("root", "org", "organization")
		out, err = s.kubectlIn(workspaceManifest("box", "spec: {type: {name: sandbox}}"), "root:org", "create", "-f", "-")
		if err == nil || !strings.Contains(out, "workspace type root:sandbox only allows [root:root] parent workspaces") {
			t.Errorf("a sandbox in an organization: %v\n%s", err, out)
		}
		for _, tc := range []struct{ spec, says string }{
			{"spec: {initializer: true}", "spec.initializer: Forbidden"},
			{"spec: {terminator: true}", "spec.terminator: Forbidden"},
			{"spec: {limitAllowedParents: {none: true, types: [{name: root}]}}", "exactly one of none and types must be set"},
			{"spec: {extend: {with: [{name: Bad}]}}", "spec.extend.with[0].name: Invalid value"},
		} {
			manifest := "apiVersion: tenancy.kcp.io/v1alpha1\nkind: WorkspaceType\nmetadata: {name: odd}\n" + tc.spec + "\n"
			if out, err := s.kubectlIn(manifest, "root", "create", "-f", "-"); err == nil || !strings.Contains(out, tc.says) {
				t.Errorf("a workspace type with %s: %v\n%s", tc.spec, err, out)
			}
		}
		for _, name := range []string{"any", "system"} {
			manifest := "apiVersion: tenancy.kcp.io/v1alpha1\nkind: WorkspaceType\nmetadata: {name: " + name + "}\n"
			if out, err := s.kubectlIn(manifest, "root", "create", "-f", "-"); err == nil || !strings.Contains(out, "is reserved") {
				t.Errorf("a workspace type named %s: %v\n%s", name, err, out)
			}
		}
	})
}

// TestWorkspaceTypeUse: a workspace type of another workspace may be used only
// with the verb "use" on it there, as in kcp; the built-in types are usable by
// every authenticated user. alice, admin of her own workspace, may make
// universal and team-less children there, but not of root:acme's type lab
// until root:acme grants her "use" on it, and a refused type leaves nothing of
// its initial bindings anywhere.
func TestWorkspaceTypeUse(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		ctx := context.Background()
		s.makeWorkspace("root", "acme", tenancy.Organization)
		lab := strings.Replace(strings.Replace(sandboxType, "name: sandbox", "name: lab", 1),
			"  limitAllowedParents: {types: [{name: root, path: root}]}\n", "", 1)
		s.pipe(lab, "root:acme", "create", "-f", "-")
		s.makeWorkspace("root", "alices", tenancy.Universal)
		s.kubectl("root:alices", "create", "clusterrolebinding", "alice-admin", "--clusterrole=cluster-admin", "--user=alice")
		alice, err := client.New(s.tokenConfig("alice-token", "root"))
		if err != nil {
			t.Fatal(err)
		}
		labType := &tenancyv1alpha1.WorkspaceTypeReference{Name: "lab", Path: "root:acme"}
		eventually(t, "alice makes a universal workspace in root:alices", func() error {
			_, err := alice.Create(ctx, "root:alices", "plain", nil)
			return err
		})
		_, err = alice.Create(ctx, "root:alices", "x", labType)
		expectAPIStatus(t, "alice makes a workspace of root:acme's type lab", err, 403,
			"unable to use workspace type root:acme:lab: missing verb='use' permission on workspacetype")
		s.expectNames("root:alices", []string{"workspace.tenancy.kcp.io/plain"}, "get", "workspaces", "-o", "name")

		// kubectl create clusterrole knows no verb "use" on workspace types.
		s.pipe(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: lab-user}
rules: [{apiGroups: [tenancy.kcp.io], resources: [workspacetypes], resourceNames: [lab], verbs: [use]}]
`, "root:acme", "create", "-f", "-")
		s.kubectl("root:acme", "create", "clusterrolebinding", "alice-uses-lab", "--clusterrole=lab-user", "--user=alice")
		eventually(t, "alice makes a workspace of type lab once she may use it", func() error {
			_, err := alice.Create(ctx, "root:alices", "x", labType)
			return err
		})
		if _, err := alice.WaitReady(ctx, "root:alices", "x", 20*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		s.expectNames("root:alices:x", []string{"clusterrolebinding.rbac.authorization.k8s.io/devs-view", "clusterrolebinding.rbac.authorization.k8s.io/workspace-admin"},
			"get", "clusterrolebindings", "-o", "name")
	})
}
