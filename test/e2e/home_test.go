package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/kcp-dev/logicalcluster/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"

	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"
	kcpclientset "github.com/kcp-dev/sdk/client/clientset/versioned/cluster"

	"github.com/warren-dev/warren/tenancy"
	"github.com/warren-dev/warren/test/warrentest"
)

// homeOf GETs the home workspace "~" in root as the user of config, as kcp's
// `kubectl ws ~` does (client-go retrying 429s).
func homeOf(t *testing.T, s *server, config *rest.Config) (*tenancyv1alpha1.Workspace, error) {
	t.Helper()
	config = rest.CopyConfig(config)
	config.Host = s.URL("")
	config.ContentType, config.AcceptContentTypes = runtime.ContentTypeJSON, runtime.ContentTypeJSON
	kcp, err := kcpclientset.NewForConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	return kcp.TenancyV1alpha1().Workspaces().Cluster(logicalcluster.NewPath("root")).Get(context.Background(), tenancy.HomeWorkspace, metav1.GetOptions{})
}

// TestWorkspaceHome: a user's first `kubectl ws` takes them to their home
// workspace, made on first use as kcp makes it: a logical cluster of type
// root:home named after the user as kcp names it, at the path user:<name>,
// whose admin the user is and which nobody else may enter. Many first requests
// at once make one home. Whom root's RBAC does not let create workspaces/~ gets
// none, and --enable-home-workspaces=false turns homes off.
func TestWorkspaceHome(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		ctx := context.Background()
		alice := s.tokenConfig("alice-token", "root")
		config := s.tokenKubeconfig(t, "alice-token", "root")
		stdout, stderr, err := kubectlOn(config, "ws")
		home := string(tenancy.HomeName("alice"))
		if err != nil || stdout != currentSays(home, "") || !strings.Contains(stderr, "go to home workspace") {
			t.Fatalf("alice's first kubectl ws: %v, printed %q and %q; want her home %s", err, stdout, stderr, home)
		}
		if got, want := currentServer(t, config), s.URL("/clusters/"+home); got != want {
			t.Errorf("after kubectl ws, alice's server is %s, want %s", got, want)
		}
		if got := mustWS(t, config, "~"); got != currentSays(home, "") {
			t.Errorf("kubectl ws ~ printed %q", got)
		}
		ws, err := homeOf(t, s, alice)
		if err != nil {
			t.Fatal(err)
		}
		if ws.Name != "cluster" || ws.Spec.Cluster != home || ws.Spec.URL != s.URL("/clusters/"+home) || ws.Status.Phase != "Ready" || ws.CreationTimestamp.IsZero() {
			t.Errorf("alice's home workspace: %+v", ws)
		}
		// Hers by name and by path; she is its admin.
		byName := func(token string) *rest.Config { return s.tokenConfigAt(token, home) }
		if _, err := clientFor(t, byName("alice-token")).CoreV1().ConfigMaps("default").Create(ctx, configMap("by-name"), metav1.CreateOptions{}); err != nil {
			t.Errorf("alice creates a configmap in her home by its name: %v", err)
		}
		if out, err := s.kubectlAs("alice-token", "user:alice", "create", "configmap", "by-path"); err != nil {
			t.Errorf("alice creates a configmap in her home at user:alice: %v\n%s", err, out)
		}
		s.expect("user:alice", "user:alice root:home alice", "get", "logicalcluster", "cluster", "-o",
			`jsonpath={.metadata.annotations.kcp\.io/path} {.metadata.annotations.internal\.tenancy\.kcp\.io/type} {.spec.createdBy.username}`)
		s.expectNames("user:alice", []string{"clusterrolebinding.rbac.authorization.k8s.io/workspace-admin"}, "get", "clusterrolebindings", "-o", "name")
		// A workspace in her home is below user:alice.
		if out, err := s.run(workspaceManifest("proj", ""), "alice-token", "user:alice", "create", "-f", "-"); err != nil {
			t.Fatalf("alice makes a workspace in her home: %v\n%s", err, out)
		}
		s.kubectl("user:alice", "wait", "--for=jsonpath={.status.phase}=Ready", "workspace/proj", "--timeout=20s")
		s.expect("user:alice", s.URL("/clusters/user:alice:proj"), "get", "workspace", "proj", "-o", "jsonpath={.spec.URL}")
		if out, err := s.kubectlAs("alice-token", "user:alice:proj", "get", "configmaps"); err != nil {
			t.Errorf("alice in user:alice:proj: %v\n%s", err, out)
		}
		// From her home, kubectl ws walks down and up by paths that start at
		// its logical cluster, as kcp's plugin does.
		if got, want := mustWS(t, config, "proj"), currentSays(home+":proj", "root:universal"); got != want {
			t.Errorf("kubectl ws proj from her home printed %q, want %q", got, want)
		}
		if got, want := mustWS(t, config, ".."), currentSays(home, ""); got != want {
			t.Errorf("kubectl ws .. from %s:proj printed %q, want %q", home, got, want)
		}
		// bob may not enter it, whichever way he names it.
		for address, config := range map[string]*rest.Config{home: byName("bob-token"), "user:alice": s.tokenConfig("bob-token", "user:alice"), "user:alice:proj": s.tokenConfig("bob-token", "user:alice:proj")} {
			_, err := clientFor(t, config).CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
			expectAPIStatus(t, "bob in alice's home at "+address, err, 403, "access denied")
		}

		// bob's first requests, many at once, make one home.
		var wg sync.WaitGroup
		clusters := make([]string, 8)
		errs := make([]error, len(clusters))
		for i := range clusters {
			wg.Go(func() {
				ws, err := homeOf(t, s, s.tokenConfig("bob-token", "root"))
				if err == nil {
					clusters[i] = ws.Spec.Cluster
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i := range clusters {
			if errs[i] != nil || clusters[i] != string(tenancy.HomeName("bob")) {
				t.Errorf("bob's request %d for his home: %q, %v", i, clusters[i], errs[i])
			}
		}
		if n := storageCount(t, s, `SELECT count(*) FROM objects WHERE cluster = $1 AND key LIKE '%logicalclusters%'`, string(tenancy.HomeName("bob"))); n != 1 {
			t.Errorf("bob's home has %d LogicalClusters, want 1", n)
		}

		// Root's RBAC decides who may have one.
		s.kubectl("root", "delete", "clusterrolebinding", tenancy.HomeCreateBinding)
		eventually(t, "carol may have no home made", func() error {
			_, err := homeOf(t, s, s.tokenConfig("carol-token", "root"))
			if err == nil || !strings.Contains(err.Error(), "may not have a home workspace made") {
				return fmt.Errorf("carol's home: %v", err)
			}
			return nil
		})
		_, err = homeOf(t, s, s.tokenConfig("carol-token", "root"))
		expectAPIStatus(t, "carol asks for her home", err, 403, `"carol" may not have a home workspace made`)
		if _, err := homeOf(t, s, alice); err != nil {
			t.Errorf("alice's home, made before: %v", err)
		}
	})
	t.Run("off", func(t *testing.T) {
		t.Parallel()
		s := startServerWith(t, append(warrentest.Storage(t, "sqlite"), "--enable-home-workspaces=false")...)
		_, err := homeOf(t, s, s.tokenConfig("alice-token", "root"))
		expectAPIStatus(t, "alice asks for her home with homes off", err, 404, "not found")
	})
}
