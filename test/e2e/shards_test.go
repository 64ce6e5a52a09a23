package e2e

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	kcplogicalcluster "github.com/kcp-dev/logicalcluster/v3"
	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"
	conditionsv1alpha1 "github.com/kcp-dev/sdk/apis/third_party/conditions/apis/conditions/v1alpha1"
	kcpclientset "github.com/kcp-dev/sdk/client/clientset/versioned/cluster"

	"github.com/warren-dev/warren/test/pgtest"
	"github.com/warren-dev/warren/test/warrentest"
)

// installation is a sharded warren: a root shard, two more shards labelled
// region=eu (alpha) and region=us (beta), and a front proxy, each a process of
// its own, sharing one PKI directory.
type installation struct {
	t                  *testing.T
	dialect            string
	pki                string
	root, alpha, beta  *warrentest.Server
	proxy              *warrentest.Server
	proxyPort          int
	kcp                kcpclientset.ClusterInterface
	external, rootConf string
	// tokens is the static token file of the shards and the proxy: every
	// process of an installation authenticates the same users, as a
	// provider's operator reaches shards' virtual workspaces directly.
	tokens string
	// storage is where each shard's rows are: a SQLite file, or a schema of
	// a PostgreSQL server.
	storage map[*warrentest.Server]shardStorage
}

// shardStorage is where a shard keeps its rows, and its name.
type shardStorage struct {
	name, file, url, schema string
}

// startInstallation starts the root shard, shards alpha (region=eu) and beta
// (region=us), and the proxy. On SQLite each shard has its file; on
// PostgreSQL, root and alpha are schemas of the test server and beta one of a
// second server the test makes, and each shard connects as a role that can
// reach nothing but its own schema.
func startInstallation(t *testing.T, dialect string) *installation {
	t.Helper()
	in := &installation{t: t, dialect: dialect, pki: filepath.Join(t.TempDir(), "pki"), storage: map[*warrentest.Server]shardStorage{}}
	in.tokens = filepath.Join(t.TempDir(), "tokens.csv")
	if err := os.WriteFile(in.tokens, []byte(tokens), 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	if in.proxyPort, err = warrentest.FreePort(); err != nil {
		t.Fatal(err)
	}
	in.external = fmt.Sprintf("https://127.0.0.1:%d", in.proxyPort)
	var second string
	if dialect == "postgres" {
		second = pgtest.NewServer(t)
	}
	in.root = in.shard("root", pgtest.URL(), "", "--external-url", in.external)
	in.rootConf = in.root.Kubeconfig
	in.alpha = in.shard("alpha", pgtest.URL(), "region=eu", "--root-shard", in.rootConf, "--external-url", in.external)
	in.beta = in.shard("beta", second, "region=us", "--root-shard", in.rootConf, "--external-url", in.external)
	in.proxy = in.startProxy()
	cfg := in.proxyConfig()
	if in.kcp, err = kcpclientset.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	return in
}

// shard starts the shard name, on the PostgreSQL server at url if the
// installation is on PostgreSQL, with labels and extra arguments.
func (in *installation) shard(name, url, labels string, extra ...string) *warrentest.Server {
	in.t.Helper()
	args := append([]string{"--pki-dir", in.pki, "--token-auth-file", in.tokens}, extra...)
	if labels != "" {
		args = append(args, "--shard-labels", labels)
	}
	st := shardStorage{name: name}
	if in.dialect == "postgres" {
		st.schema, st.url = name+"_"+strings.ToLower(rand.Text()[:8]), url
		if err := pgtest.CreateSchema(context.Background(), url, st.schema); err != nil {
			in.t.Fatal(err)
		}
		in.t.Cleanup(func() {
			if err := pgtest.DropSchema(context.Background(), url, st.schema); err != nil {
				in.t.Error(err)
			}
		})
		st.name = strings.ReplaceAll(st.schema, "_", "-")
		args = append(args, "--shard", st.schema, "--storage", pgtest.ConfinedTo(in.t, url, st.schema))
	} else {
		args = append(args, "--shard", name)
	}
	s := warrentest.Start(in.t, binary, args...)
	if in.dialect != "postgres" {
		st.file = filepath.Join(s.DataDir, "warren.db")
	}
	in.storage[s] = st
	return s
}

func (in *installation) startProxy() *warrentest.Server {
	p, err := warrentest.StartCommand(binary, "proxy", filepath.Join(in.t.TempDir(), "proxy"), in.proxyPort,
		"--pki-dir", in.pki, "--root-shard", in.rootConf, "--token-auth-file", in.tokens)
	if err != nil {
		in.t.Fatal(err)
	}
	return warrentest.Adopt(in.t, p)
}

// proxyConfig is the admin's client configuration of the proxy, unaddressed.
func (in *installation) proxyConfig() *rest.Config {
	cfg, err := in.proxy.AdminConfig("root")
	if err != nil {
		in.t.Fatal(err)
	}
	cfg.Host = in.external
	return cfg
}

// create makes the workspace name in parent through the proxy, with a
// location selector of labels if not empty, waits until it is Ready and
// returns it.
func (in *installation) create(parent, name string, labels map[string]string) *tenancyv1alpha1.Workspace {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ws := &tenancyv1alpha1.Workspace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if labels != nil {
		ws.Spec.Location = &tenancyv1alpha1.WorkspaceLocation{Selector: &metav1.LabelSelector{MatchLabels: labels}}
	}
	workspaces := in.kcp.Cluster(kcplogicalcluster.NewPath(parent)).TenancyV1alpha1().Workspaces()
	if _, err := workspaces.Create(ctx, ws, metav1.CreateOptions{}); err != nil {
		in.t.Fatalf("creating workspace %s in %s through the proxy: %v", name, parent, err)
	}
	for {
		got, err := workspaces.Get(ctx, name, metav1.GetOptions{})
		if err == nil && got.Status.Phase == corev1alpha1.LogicalClusterPhaseReady {
			return got
		}
		if ctx.Err() != nil {
			in.t.Fatalf("workspace %s in %s not Ready: %v %+v", name, parent, err, got.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// holds reports whether shard s has the LogicalCluster of cluster, asked
// directly, not through the proxy.
func (in *installation) holds(s *warrentest.Server, cluster string) bool {
	in.t.Helper()
	cfg, err := s.AdminConfig(cluster)
	if err != nil {
		in.t.Fatal(err)
	}
	cfg.Host = s.URL("")
	c, err := kcpclientset.NewForConfig(cfg)
	if err != nil {
		in.t.Fatal(err)
	}
	_, err = c.Cluster(kcplogicalcluster.NewPath(cluster)).CoreV1alpha1().LogicalClusters().Get(context.Background(), corev1alpha1.LogicalClusterName, metav1.GetOptions{})
	switch {
	case err == nil, apierrors.IsServiceUnavailable(err): // one initialising answers 503
		return true
	case apierrors.IsNotFound(err):
		return false
	}
	in.t.Fatalf("reading logical cluster %s on %s: %v", cluster, s.URL(""), err)
	return false
}

// rows counts the rows of cluster where shard s keeps them, in SQL.
func (in *installation) rows(s *warrentest.Server, cluster string) int64 {
	in.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	const query = `SELECT count(*) FROM objects WHERE cluster = $1`
	st := in.storage[s]
	var n int64
	var err error
	if st.file != "" {
		n, err = sqliteRow[int64](ctx, st.file, query, cluster)
	} else {
		n, err = postgresRow[int64](ctx, st.url, st.schema, query, cluster)
	}
	if err != nil {
		in.t.Fatal(err)
	}
	return n
}

// name is the name of shard s.
func (in *installation) name(s *warrentest.Server) string { return in.storage[s].name }

// configMaps is a client of the core group of the workspace at path, through
// the proxy.
func (in *installation) configMaps(path string) kubernetes.Interface {
	cfg := in.proxyConfig()
	cfg.Host = in.external + "/clusters/" + path
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		in.t.Fatal(err)
	}
	return c
}

// tokenKubeconfig writes a kubeconfig addressing the workspace at path through
// the proxy as the user of token.
func (in *installation) tokenKubeconfig(token, path string) string {
	config := clientcmdapi.NewConfig()
	config.Clusters["warren"] = &clientcmdapi.Cluster{Server: in.external + "/clusters/" + path, InsecureSkipTLSVerify: true}
	config.AuthInfos["user"] = &clientcmdapi.AuthInfo{Token: token}
	config.Contexts["warren"] = &clientcmdapi.Context{Cluster: "warren", AuthInfo: "user"}
	config.CurrentContext = "warren"
	file := filepath.Join(in.t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*config, file); err != nil {
		in.t.Fatal(err)
	}
	return file
}

// roundTripper is a function that is an http.RoundTripper.
type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// TestShards runs three shards and a proxy as separate processes and uses
// them through the proxy only: workspaces scheduled by location selector and
// by default, a tree across shards, kubectl and the kcp clientset, a shard
// killed (only its workspaces answer 503) and back, a proxy restart, and a
// deletion across shards that leaves no row on any shard.
func TestShards(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) { testShards(t, dialect) })
	}
}

func testShards(t *testing.T, dialect string) {
	in := startInstallation(t, dialect)
	ctx := context.Background()

	eu := in.create("root", "eu", map[string]string{"region": "eu"})
	us := in.create("root", "us", map[string]string{"region": "us"})
	if got, want := eu.Annotations[corev1alpha1.LogicalClusterShardAnnotationKey], in.name(in.alpha); got != want {
		t.Errorf("workspace eu is on shard %q, want %s (region=eu)", got, want)
	}
	if got, want := us.Annotations[corev1alpha1.LogicalClusterShardAnnotationKey], in.name(in.beta); got != want {
		t.Errorf("workspace us is on shard %q, want %s (region=us)", got, want)
	}
	if eu.Labels["region"] != "eu" {
		t.Errorf("workspace eu has labels %v, want region=eu copied from its shard", eu.Labels)
	}
	if want := in.external + "/clusters/root:eu"; eu.Spec.URL != want {
		t.Errorf("workspace eu has URL %q, want %q (the proxy's)", eu.Spec.URL, want)
	}
	if !in.holds(in.alpha, eu.Spec.Cluster) || in.holds(in.root, eu.Spec.Cluster) || in.holds(in.beta, eu.Spec.Cluster) {
		t.Errorf("the logical cluster of eu is not on alpha alone")
	}

	// A tree across shards: a child on beta of a workspace on alpha.
	team := in.create("root:eu", "team", map[string]string{"region": "us"})
	if !in.holds(in.beta, team.Spec.Cluster) {
		t.Errorf("workspace root:eu:team is not on beta")
	}
	if want := in.external + "/clusters/root:eu:team"; team.Spec.URL != want {
		t.Errorf("workspace root:eu:team has URL %q, want %q", team.Spec.URL, want)
	}
	// Without a selector, a workspace goes where the fewest are.
	shardsUsed := map[string]bool{}
	for i := range 4 {
		ws := in.create("root", "free"+strconv.Itoa(i), nil)
		shardsUsed[ws.Annotations[corev1alpha1.LogicalClusterShardAnnotationKey]] = true
	}
	if len(shardsUsed) < 2 {
		t.Errorf("four workspaces without a location all went to %v", shardsUsed)
	}
	// A workspace whose logical cluster on another shard never becomes Ready
	// (its type binds an export that does not exist) can still be deleted,
	// and leaves no row there.
	stuck := "apiVersion: tenancy.kcp.io/v1alpha1\nkind: WorkspaceType\nmetadata: {name: stuck}\n" +
		"spec: {extend: {with: [{name: universal, path: root}]}, defaultAPIBindings: [{path: 'root:us', export: nothing}]}\n"
	if out, stderr, err := kubectlIn(in.proxy.Kubeconfig, stuck, "--server", in.external+"/clusters/root:us", "create", "-f", "-"); err != nil {
		t.Fatalf("creating workspace type stuck: %v %s %s", err, out, stderr)
	}
	jam := &tenancyv1alpha1.Workspace{ObjectMeta: metav1.ObjectMeta{Name: "jam"}, Spec: tenancyv1alpha1.WorkspaceSpec{
		Type:     &tenancyv1alpha1.WorkspaceTypeReference{Name: "stuck", Path: "root:us"},
		Location: &tenancyv1alpha1.WorkspaceLocation{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"region": "eu"}}},
	}}
	usWorkspaces := in.kcp.Cluster(kcplogicalcluster.NewPath("root:us")).TenancyV1alpha1().Workspaces()
	jam, err := usWorkspaces.Create(ctx, jam, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); !in.holds(in.alpha, jam.Spec.Cluster); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the logical cluster of root:us:jam never appeared on alpha")
		}
	}
	if err := usWorkspaces.Delete(ctx, "jam", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		_, err := usWorkspaces.Get(ctx, "jam", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workspace root:us:jam, initialising on another shard, not deleted: %v", err)
		}
	}
	if n := in.rows(in.alpha, jam.Spec.Cluster); n != 0 {
		t.Errorf("%d rows of deleted workspace root:us:jam left on alpha", n)
	}

	// Objects in a workspace on each shard, through the proxy, by path and by name.
	for _, path := range []string{"root:eu", "root:us", "root:eu:team", team.Spec.Cluster} {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "default"}, Data: map[string]string{"at": path}}
		if _, err := in.configMaps(path).CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil && !(path == team.Spec.Cluster && apierrors.IsAlreadyExists(err)) {
			t.Fatalf("creating a config map in %s through the proxy: %v", path, err)
		}
	}
	proxyKubeconfig := in.proxy.Kubeconfig

	// A user the proxy authenticates by token works in a workspace on
	// alpha: kubectl ws create makes a workspace of root's type universal,
	// whose use the root shard decides, and enters it.
	mustKubectl(t, proxyKubeconfig, "--server", in.external+"/clusters/root:eu", "create", "clusterrolebinding", "alice-admin", "--clusterrole", "cluster-admin", "--user", "alice")
	alice := in.tokenKubeconfig("alice-token", "root:eu")
	mustKubectl(t, alice, "create", "workspace", "dev", "--enter")
	if got, want := currentServer(t, alice), in.external+"/clusters/root:eu:dev"; got != want {
		t.Errorf("kubectl ws create --enter through the proxy: current server %s, want %s", got, want)
	}
	// Her first kubectl ws through the proxy makes her home, where she
	// works at once, by its name and by its path.
	carol := in.tokenKubeconfig("carol-token", "root")
	home := "user:carol"
	if stdout, stderr, err := kubectlOn(carol, "ws"); err != nil || !strings.Contains(stderr, "go to home workspace") {
		t.Fatalf("carol's first kubectl ws through the proxy: %v %q %q", err, stdout, stderr)
	}
	mustKubectl(t, carol, "create", "configmap", "first")
	mustKubectl(t, carol, "--server", in.external+"/clusters/"+home, "get", "configmap", "first")
	admin := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(admin, []byte(readKubeconfig(t, proxyKubeconfig)), 0o600); err != nil {
		t.Fatal(err)
	}
	tree := mustWS(t, admin, "tree")
	for _, ws := range []string{"eu", "us", "team", "dev"} {
		if !strings.Contains(tree, ws) {
			t.Errorf("kubectl ws tree through the proxy lacks %s:\n%s", ws, tree)
		}
	}
	// A selector no shard matches waits in Scheduling (without a URL, which
	// kubectl ws tree cannot follow, as with kcp).
	lost := &tenancyv1alpha1.Workspace{ObjectMeta: metav1.ObjectMeta{Name: "lost"},
		Spec: tenancyv1alpha1.WorkspaceSpec{Location: &tenancyv1alpha1.WorkspaceLocation{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"region": "mars"}}}}}
	if _, err := in.kcp.Cluster(kcplogicalcluster.NewPath("root")).TenancyV1alpha1().Workspaces().Create(ctx, lost, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	// A workspace's admin cannot act as a shard: the shards' group cannot be
	// impersonated, logical clusters cannot be made, nor a workspace moved.
	for _, args := range [][]string{
		{"get", "namespaces", "--as", "mallory", "--as-group", "system:warren:shards"},
		{"create", "-f", "-"},
	} {
		stdin := ""
		if args[0] == "create" {
			stdin = "apiVersion: core.kcp.io/v1alpha1\nkind: LogicalCluster\nmetadata: {name: cluster, annotations: {kcp.io/path: root}}\n"
		}
		out, stderr, err := kubectlIn(alice, stdin, args...)
		if err == nil || !strings.Contains(stderr, "Forbidden") && !strings.Contains(stderr, "MethodNotAllowed") {
			t.Errorf("alice, admin of root:eu, kubectl %s: %v %s %s; want a refusal", strings.Join(args, " "), err, out, stderr)
		}
	}
	mustKubectl(t, alice, "--server", in.external+"/clusters/root:eu", "annotate", "workspace", "dev", "--overwrite", "core.kcp.io/shard=elsewhere")
	dev, err := in.kcp.Cluster(kcplogicalcluster.NewPath("root:eu")).TenancyV1alpha1().Workspaces().Get(ctx, "dev", metav1.GetOptions{})
	if err != nil || dev.Annotations[corev1alpha1.LogicalClusterShardAnnotationKey] == "elsewhere" {
		t.Errorf("a user moved workspace dev to shard %q: %v", dev.Annotations[corev1alpha1.LogicalClusterShardAnnotationKey], err)
	}

	// The user cannot pass as anyone else: the proxy drops X-Remote-* headers.
	forged := in.proxyConfig()
	forged.TLSClientConfig = rest.TLSClientConfig{Insecure: true}
	forged.BearerToken = "alice-token"
	forged.Host = in.external + "/clusters/root"
	forged.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		return roundTripper(func(req *http.Request) (*http.Response, error) {
			req.Header.Set("X-Remote-User", "admin")
			req.Header.Set("X-Remote-Group", "system:masters")
			return rt.RoundTrip(req)
		})
	}
	fc, err := kcpclientset.NewForConfig(forged)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fc.Cluster(kcplogicalcluster.NewPath("root")).CoreV1alpha1().Shards().List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("a user with forged X-Remote-* headers listed shards: %v, want 403", err)
	}
	out, stderr, err := kubectlOn(proxyKubeconfig, "--server", in.external+"/clusters/root:eu:team", "get", "configmap", "hello", "-o", "jsonpath={.data.at}")
	if err != nil || out != "root:eu:team" {
		t.Fatalf("kubectl through the proxy: %q %v %s", out, err, stderr)
	}
	out, stderr, err = kubectlOn(proxyKubeconfig, "--server", in.external+"/clusters/root", "get", "workspaces", "-o", "name")
	if err != nil || !strings.Contains(out, "workspace.tenancy.kcp.io/eu") || !strings.Contains(out, "workspace.tenancy.kcp.io/us") {
		t.Fatalf("kubectl get workspaces in root through the proxy: %q %v %s", out, err, stderr)
	}

	in.exportAcrossShards(ctx, eu.Spec.Cluster)

	// A shard killed: its workspaces answer 503, the others keep working.
	in.beta.Kill()
	_, err = in.configMaps("root:us").CoreV1().ConfigMaps("default").Get(ctx, "hello", metav1.GetOptions{})
	if !apierrors.IsServiceUnavailable(err) {
		t.Errorf("a workspace of a killed shard answered %v, want 503", err)
	}
	if _, err := in.configMaps("root:eu").CoreV1().ConfigMaps("default").Get(ctx, "hello", metav1.GetOptions{}); err != nil {
		t.Errorf("a workspace of a running shard while another is down: %v", err)
	}
	in.beta.Launch()
	if _, err := in.configMaps("root:us").CoreV1().ConfigMaps("default").Get(ctx, "hello", metav1.GetOptions{}); err != nil {
		t.Errorf("a workspace of a restarted shard: %v", err)
	}

	// A proxy restart loses nothing.
	in.proxy.Restart()
	if _, err := in.configMaps("root:eu:team").CoreV1().ConfigMaps("default").Get(ctx, "hello", metav1.GetOptions{}); err != nil {
		t.Errorf("after a proxy restart: %v", err)
	}

	// Deleting root:eu deletes its child on beta first; no row of either is left.
	if n := in.rows(in.beta, team.Spec.Cluster); n == 0 {
		t.Fatalf("no rows of root:eu:team on beta before the deletion")
	}
	if err := in.kcp.Cluster(kcplogicalcluster.NewPath("root")).TenancyV1alpha1().Workspaces().Delete(ctx, "eu", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := in.kcp.Cluster(kcplogicalcluster.NewPath("root")).TenancyV1alpha1().Workspaces().Get(ctx, "eu", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workspace eu not deleted: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, c := range []struct {
		s       *warrentest.Server
		cluster string
	}{{in.alpha, eu.Spec.Cluster}, {in.beta, team.Spec.Cluster}} {
		if n := in.rows(c.s, c.cluster); n != 0 {
			t.Errorf("%d rows of deleted cluster %s left on its shard", n, c.cluster)
		}
	}
	got, err := in.kcp.Cluster(kcplogicalcluster.NewPath("root")).TenancyV1alpha1().Workspaces().Get(ctx, "lost", metav1.GetOptions{})
	if err != nil || got.Status.Phase != corev1alpha1.LogicalClusterPhaseScheduling || !slices.ContainsFunc(got.Status.Conditions, func(c conditionsv1alpha1.Condition) bool {
		return c.Type == tenancyv1alpha1.WorkspaceScheduled && c.Reason == tenancyv1alpha1.WorkspaceReasonUnschedulable
	}) {
		t.Errorf("a workspace no shard matches: %v %+v", err, got.Status)
	}
}

// exportAcrossShards exports widgets from root:eu (on alpha, logical cluster
// exporter) and binds them in root:us (on beta) and root:shop (on alpha): the
// endpoint slice lists the virtual workspaces of both shards, and the
// provider's operator, as bob, who has no access to the consumers, serves the
// widgets of both through them.
func (in *installation) exportAcrossShards(ctx context.Context, exporter string) {
	in.create("root", "shop", map[string]string{"region": "eu"})
	bob := &rest.Config{Host: in.external + "/clusters/root:eu", BearerToken: "bob-token", TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	exportAcross(in.t, ctx, in.kcp, in.proxy.Kubeconfig, in.external, "root:eu", []string{"root:us", "root:shop"}, []string{
		in.alpha.URL("/services/apiexport/" + exporter + "/widgets"),
		in.beta.URL("/services/apiexport/" + exporter + "/widgets"),
	}, bob)
}

// exportAcross exports widgets from the workspace at exporter, binds them in
// the workspaces at consumers, expects the export's endpoint slice to list
// exactly endpoints, and runs the provider's operator as operator (addressing
// exporter; bob unless it is an admin): it must serve the widgets of every
// consumer. Requests go to base with kubeconfig's credentials.
func exportAcross(t *testing.T, ctx context.Context, kcp kcpclientset.ClusterInterface, kubeconfig, base, exporter string, consumers, endpoints []string, operator *rest.Config) {
	t.Helper()
	apply := func(path, manifest string) error {
		out, stderr, err := kubectlIn(kubeconfig, manifest, "--server", base+"/clusters/"+path, "apply", "-f", "-")
		if err != nil {
			return fmt.Errorf("kubectl apply in %s: %v %s %s", path, err, out, stderr)
		}
		return nil
	}
	content := `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: widgets-content}
rules: [{apiGroups: [apis.kcp.io], resources: [apiexports/content], resourceNames: [widgets], verbs: ["*"]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: bob-serves-widgets}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: widgets-content}
subjects: [{kind: User, name: bob}]
`
	for _, manifest := range []string{widgetsProvider(10), widgetsOperator, content} {
		if err := apply(exporter, manifest); err != nil {
			t.Fatal(err)
		}
	}
	export := identifiedExport(t, kcp.Cluster(kcplogicalcluster.NewPath(exporter)).ApisV1alpha2().APIExports(), "widgets")
	for _, consumer := range consumers {
		// A shard learns of another's export through its watch, a moment
		// after it is made (as kcp's shards through its cache server).
		eventually(t, consumer+": binding widgets of "+exporter, func() error { return apply(consumer, bindingManifest("widgets", exporter, "widgets")) })
		if b := waitBound(t, kcp, consumer, "widgets"); len(b.Status.BoundResources) != 1 || b.Status.BoundResources[0].Schema.IdentityHash != export.Status.IdentityHash {
			t.Errorf("%s: bound resources %s, want widgets under the identity of %s's export", consumer, jsonOf(b.Status.BoundResources), exporter)
		}
	}
	slices.Sort(endpoints)
	eventually(t, "the endpoint slice lists the virtual workspace of each shard with consumers", func() error {
		slice, err := kcp.Cluster(kcplogicalcluster.NewPath(exporter)).ApisV1alpha1().APIExportEndpointSlices().Get(ctx, "widgets", metav1.GetOptions{})
		if err != nil {
			return err
		}
		var got []string
		for _, e := range slice.Status.APIExportEndpoints {
			got = append(got, e.URL)
		}
		slices.Sort(got)
		if !slices.Equal(got, endpoints) {
			return fmt.Errorf("endpoints %v, want %v", got, endpoints)
		}
		return nil
	})

	for i, consumer := range consumers {
		if err := apply(consumer, fmt.Sprintf("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: a, namespace: default}\nspec: {size: %d}\n", i+2)); err != nil {
			t.Fatal(err)
		}
	}
	defer runOperator(t, ctx, operator)()
	for i, consumer := range consumers {
		eventually(t, consumer+": widget a observed", func() error {
			out, stderr, err := kubectlOn(kubeconfig, "--server", base+"/clusters/"+consumer, "get", "widget", "a", "-n", "default", "-o", "jsonpath={.status.observed}")
			if err != nil || out != strconv.Itoa(i+2) {
				return fmt.Errorf("%v: %q %s", err, out, stderr)
			}
			return nil
		})
	}
}

// TestShardsInOneProcess runs warren start --shards 3: three shards and the
// proxy in one process, used through its one address as a single warren is.
// Workspaces spread over the shards, a tree spans them, an export is bound
// and served on every shard, and deleting the tree leaves no row on any shard.
func TestShardsInOneProcess(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			args := []string{"--shards", "3"}
			var schemas []string
			if dialect == "postgres" {
				root := pgtest.Schema(t, "test_")
				schemas = []string{root, root + "_1", root + "_2"}
				for _, extra := range schemas[1:] {
					t.Cleanup(func() {
						if err := pgtest.DropSchema(context.Background(), pgtest.URL(), extra); err != nil {
							t.Error(err)
						}
					})
				}
				args = append(args, "--storage", pgtest.URL(), "--shard", root)
			}
			s := warrentest.Start(t, binary, args...)
			ctx := context.Background()
			cfg, err := s.AdminConfig("root")
			if err != nil {
				t.Fatal(err)
			}
			cfg.Host = s.URL("")
			kcp, err := kcpclientset.NewForConfig(cfg)
			if err != nil {
				t.Fatal(err)
			}
			shards, err := kcp.Cluster(kcplogicalcluster.NewPath("root")).CoreV1alpha1().Shards().List(ctx, metav1.ListOptions{})
			if err != nil || len(shards.Items) != 3 {
				t.Fatalf("shards: %v %v", err, shards)
			}
			// Each workspace goes to the shard with the fewest logical
			// clusters; each has a child, which may go elsewhere.
			used := map[string]bool{}
			clusters, teamShards := map[string]string{}, map[string]string{}
			workspaces := func(path string) interface {
				Create(context.Context, *tenancyv1alpha1.Workspace, metav1.CreateOptions) (*tenancyv1alpha1.Workspace, error)
				Get(context.Context, string, metav1.GetOptions) (*tenancyv1alpha1.Workspace, error)
				Delete(context.Context, string, metav1.DeleteOptions) error
			} {
				return kcp.Cluster(kcplogicalcluster.NewPath(path)).TenancyV1alpha1().Workspaces()
			}
			ready := func(path, name string) *tenancyv1alpha1.Workspace {
				t.Helper()
				deadline := time.Now().Add(time.Minute)
				for {
					ws, err := workspaces(path).Get(ctx, name, metav1.GetOptions{})
					if err == nil && ws.Status.Phase == corev1alpha1.LogicalClusterPhaseReady {
						return ws
					}
					if time.Now().After(deadline) {
						t.Fatalf("workspace %s:%s not Ready: %v", path, name, err)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}
			for i := range 3 {
				name := "org" + strconv.Itoa(i)
				if _, err := workspaces("root").Create(ctx, &tenancyv1alpha1.Workspace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				ws := ready("root", name)
				used[ws.Annotations[corev1alpha1.LogicalClusterShardAnnotationKey]] = true
				clusters["root:"+name] = ws.Spec.Cluster
				if _, err := workspaces("root:"+name).Create(ctx, &tenancyv1alpha1.Workspace{ObjectMeta: metav1.ObjectMeta{Name: "team"}}, metav1.CreateOptions{}); err != nil {
					t.Fatal(err)
				}
				child := ready("root:"+name, "team")
				used[child.Annotations[corev1alpha1.LogicalClusterShardAnnotationKey]] = true
				teamShards["root:"+name+":team"] = child.Annotations[corev1alpha1.LogicalClusterShardAnnotationKey]
				clusters["root:"+name+":team"] = child.Spec.Cluster
			}
			if len(used) != 3 {
				t.Errorf("six workspaces used shards %v, want all three", used)
			}
			// An export in root:org0 bound in every team: the endpoint
			// slice lists the virtual workspace of each shard holding a
			// team, and the provider's operator serves them all.
			vw := map[string]string{}
			for _, shard := range shards.Items {
				vw[shard.Name] = shard.Spec.VirtualWorkspaceURL
			}
			var teams, endpoints []string
			for i := range 3 {
				path := "root:org" + strconv.Itoa(i) + ":team"
				teams = append(teams, path)
				endpoint := vw[teamShards[path]] + "/services/apiexport/" + clusters["root:org0"] + "/widgets"
				if !slices.Contains(endpoints, endpoint) {
					endpoints = append(endpoints, endpoint)
				}
			}
			operator := rest.CopyConfig(cfg)
			operator.Host = s.URL("/clusters/root:org0")
			exportAcross(t, ctx, kcp, s.Kubeconfig, s.URL(""), "root:org0", teams, endpoints, operator)

			c := kubernetes.NewForConfigOrDie(&rest.Config{Host: s.URL("/clusters/root:org1:team"), TLSClientConfig: cfg.TLSClientConfig})
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "default"}}
			if _, err := c.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			out := mustWS(t, func() string {
				file := filepath.Join(t.TempDir(), "kubeconfig")
				if err := os.WriteFile(file, []byte(readKubeconfig(t, s.Kubeconfig)), 0o600); err != nil {
					t.Fatal(err)
				}
				return file
			}(), "tree")
			if strings.Count(out, "team") != 3 {
				t.Errorf("kubectl ws tree:\n%s", out)
			}
			for i := range 3 {
				if err := workspaces("root").Delete(ctx, "org"+strconv.Itoa(i), metav1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			deadline := time.Now().Add(time.Minute)
			for i := 0; i < 3; {
				if _, err := workspaces("root").Get(ctx, "org"+strconv.Itoa(i), metav1.GetOptions{}); apierrors.IsNotFound(err) {
					i++
					continue
				}
				if time.Now().After(deadline) {
					t.Fatalf("workspace org%d not deleted", i)
				}
				time.Sleep(20 * time.Millisecond)
			}
			for path, cluster := range clusters {
				var total int64
				for i, shard := range []string{"root", "root-1", "root-2"} {
					ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
					var n int64
					var err error
					if dialect == "postgres" {
						n, err = postgresRow[int64](ctx, pgtest.URL(), schemas[i], `SELECT count(*) FROM objects WHERE cluster = $1`, cluster)
					} else {
						n, err = sqliteRow[int64](ctx, filepath.Join(s.DataDir, shard, "warren.db"), `SELECT count(*) FROM objects WHERE cluster = $1`, cluster)
					}
					cancel()
					if err != nil {
						t.Fatal(err)
					}
					total += n
				}
				if total != 0 {
					t.Errorf("%d rows of deleted workspace %s left", total, path)
				}
			}
		})
	}
}
