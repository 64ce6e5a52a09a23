package plugin

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// testKubeconfig has the context "kcp" in use and an unrelated context
// "other" whose cluster names its CA by a relative path.
const testKubeconfig = `apiVersion: v1
kind: Config
current-context: kcp
clusters:
- name: kcp
  cluster:
    server: https://kcp.example:6443/clusters/root:acme
    insecure-skip-tls-verify: true
- name: other
  cluster:
    server: https://other.example:443
    certificate-authority: certs/ca.crt
contexts:
- name: kcp
  context:
    cluster: kcp
    user: alice
    namespace: apps
- name: other
  context:
    cluster: other
    user: bob
users:
- name: alice
  user:
    token: alice-token
- name: bob
  user:
    client-certificate: certs/bob.crt
    client-key: certs/bob.key
`

// writeKubeconfig writes content to a kubeconfig file in a new directory.
func writeKubeconfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// newEdit returns an edit of the kubeconfig file at path, as "kubectl ws"
// starts one; it talks to no server, as the tests' URLs do not /clusters/.
func newEdit(t *testing.T, path string) (*kubeconfigEdit, *clientcmdapi.Context) {
	t.Helper()
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	config := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	starting, err := config.ConfigAccess().GetStartingConfig()
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	client, err := newClient(config)
	if err != nil {
		t.Fatal(err)
	}
	return &kubeconfigEdit{config: config, starting: starting, client: client, out: &out, errOut: &errOut}, starting.Contexts[starting.CurrentContext]
}

func mustParse(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// The server URLs below have no /clusters/, so that commit's check of
// APIBindings sends no request.
func TestCommitCopiesTheUsersContext(t *testing.T) {
	path := writeKubeconfig(t, testKubeconfig)
	before := loadConfig(t, path)
	k, current := newEdit(t, path)
	if err := k.commit(context.Background(), current, mustParse(t, "https://kcp.example:6443/x"), false, nil); err != nil {
		t.Fatal(err)
	}
	after := loadConfig(t, path)
	if after.CurrentContext != currentName {
		t.Errorf("current context %q, want %s", after.CurrentContext, currentName)
	}
	wantCluster := *before.Clusters["kcp"]
	wantCluster.Server = "https://kcp.example:6443/x"
	wantCluster.LocationOfOrigin = after.Clusters[currentName].LocationOfOrigin
	if !reflect.DeepEqual(after.Clusters[currentName], &wantCluster) {
		t.Errorf("cluster %s = %+v, want a copy of kcp with the new server", currentName, after.Clusters[currentName])
	}
	if c := after.Contexts[currentName]; c.Cluster != currentName || c.AuthInfo != "alice" || c.Namespace != "apps" {
		t.Errorf("context %s = %+v, want kcp's pointing at cluster %s", currentName, c, currentName)
	}
	if c := after.Contexts[previousName]; c.Cluster != "kcp" || c.AuthInfo != "alice" {
		t.Errorf("context %s = %+v, want a copy of kcp", previousName, c)
	}
	if _, ok := after.Clusters[previousName]; ok {
		t.Errorf("cluster %s written, but the previous context uses kcp", previousName)
	}
	for _, name := range []string{"kcp", "other"} {
		if !reflect.DeepEqual(after.Clusters[name], before.Clusters[name]) || !reflect.DeepEqual(after.Contexts[name], before.Contexts[name]) {
			t.Errorf("cluster or context %q changed", name)
		}
	}
	if !reflect.DeepEqual(after.AuthInfos, before.AuthInfos) {
		t.Errorf("users changed")
	}
	if got := k.out.(*strings.Builder).String(); got != "Current workspace is the URL \"https://kcp.example:6443/x\".\n" {
		t.Errorf("commit printed %q", got)
	}
}

func TestCommitKeepsThePreviousCluster(t *testing.T) {
	path := writeKubeconfig(t, testKubeconfig)
	for _, server := range []string{"https://h/one", "https://h/two"} {
		k, current := newEdit(t, path)
		if err := k.commit(context.Background(), current, mustParse(t, server), true, nil); err != nil {
			t.Fatal(err)
		}
	}
	after := loadConfig(t, path)
	if got := serverOf(t, path, currentName); got != "https://h/two" {
		t.Errorf("current server %q", got)
	}
	if got := serverOf(t, path, previousName); got != "https://h/one" || after.Contexts[previousName].Cluster != previousName {
		t.Errorf("previous server %q via cluster %q; want https://h/one via %s", got, after.Contexts[previousName].Cluster, previousName)
	}
}

func TestSwapContexts(t *testing.T) {
	path := writeKubeconfig(t, testKubeconfig)
	k, current := newEdit(t, path)
	if _, err := k.swapContexts(context.Background(), current); err == nil || err.Error() != "no previous workspace found in kubeconfig" {
		t.Fatalf("swap without previous = %v", err)
	}
	for _, server := range []string{"https://h/one", "https://h/two"} {
		k, current := newEdit(t, path)
		if err := k.commit(context.Background(), current, mustParse(t, server), true, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"https://h/one", "https://h/two", "https://h/one"} {
		k, current := newEdit(t, path)
		got, err := k.swapContexts(context.Background(), current)
		if err != nil || got != want || serverOf(t, path, currentName) != want {
			t.Fatalf("swap = %q, %v, current server %q; want %s", got, err, serverOf(t, path, currentName), want)
		}
	}
	// Back from the user's own context, the previous context uses cluster kcp.
	path = writeKubeconfig(t, testKubeconfig)
	k, current = newEdit(t, path)
	if err := k.commit(context.Background(), current, mustParse(t, "https://h/one"), true, nil); err != nil {
		t.Fatal(err)
	}
	k, current = newEdit(t, path)
	if got, err := k.swapContexts(context.Background(), current); err != nil || got != "https://kcp.example:6443/clusters/root:acme" {
		t.Fatalf("swap back to the user's context = %q, %v", got, err)
	}
	if c := loadConfig(t, path).Contexts[previousName]; c.Cluster != previousName || serverOf(t, path, previousName) != "https://h/one" {
		t.Fatalf("previous context %+v, server %q", c, serverOf(t, path, previousName))
	}
}

func TestCurrentContextMissing(t *testing.T) {
	config := writeKubeconfig(t, strings.Replace(testKubeconfig, "current-context: kcp", "current-context: gone", 1))
	mustFail(t, `invalid configuration: [context was not found for specified context: gone, cluster has no server defined]`, "--kubeconfig", config, "a")
}
