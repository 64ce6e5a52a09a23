package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// testKubeconfig has the context "warren" in use and an unrelated context
// "other" whose cluster names its CA by a relative path.
const testKubeconfig = `apiVersion: v1
kind: Config
current-context: warren
clusters:
- name: warren
  cluster:
    server: https://warren.example:6443/clusters/root:acme
    certificate-authority-data: Y2EtZGF0YQ==
- name: other
  cluster:
    server: https://other.example:443
    certificate-authority: certs/ca.crt
contexts:
- name: warren
  context:
    cluster: warren
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

func TestKubeconfigCurrent(t *testing.T) {
	k, err := loadKubeconfig(writeKubeconfig(t, testKubeconfig))
	if err != nil {
		t.Fatal(err)
	}
	got, err := k.current()
	want := location{base: "https://warren.example:6443", path: "root:acme"}
	if err != nil || got != want {
		t.Fatalf("current() = %+v, %v; want %+v", got, err, want)
	}
	if _, err := k.previous(); err == nil || err.Error() != "there is no previous workspace" {
		t.Fatalf("previous() without one = %v; want there is no previous workspace", err)
	}
}

func TestKubeconfigFromEnvironment(t *testing.T) {
	t.Setenv(clientcmd.RecommendedConfigPathEnvVar, writeKubeconfig(t, testKubeconfig))
	k, err := loadKubeconfig("")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := k.current(); err != nil || got.path != "root:acme" {
		t.Fatalf("current() from $KUBECONFIG = %+v, %v; want root:acme", got, err)
	}
}

func TestMissingKubeconfig(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	if _, err := loadKubeconfig(missing); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("loadKubeconfig(%s) = %v; want an error", missing, err)
	}
}

func TestKubeconfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, content, wantErr string
	}{
		{"no current context", strings.Replace(testKubeconfig, "current-context: warren", "", 1), "the kubeconfig has no current context"},
		{"missing context", strings.Replace(testKubeconfig, "current-context: warren", "current-context: gone", 1), `the kubeconfig has no context "gone"`},
		{"missing cluster", strings.Replace(testKubeconfig, "cluster: warren", "cluster: gone", 1), `the kubeconfig has no cluster "gone"`},
		{"bad path", strings.Replace(testKubeconfig, "root:acme", "root:ACME", 1), `"ACME" is not a valid name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := loadKubeconfig(writeKubeconfig(t, tc.content))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := k.current(); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("current() = %v; want error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestSwitchToKeepsTheRest(t *testing.T) {
	path := writeKubeconfig(t, testKubeconfig)
	before, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := loadKubeconfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.switchTo(location{base: "https://warren.example:6443", path: "root:acme:team-a"}); err != nil {
		t.Fatal(err)
	}
	after, err := clientcmd.LoadFromFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := after.Clusters["warren"].Server; got != "https://warren.example:6443/clusters/root:acme:team-a" {
		t.Errorf("current server = %q", got)
	}
	if got := after.Clusters[previousName].Server; got != "https://warren.example:6443/clusters/root:acme" {
		t.Errorf("previous server = %q", got)
	}
	if got := string(after.Clusters[previousName].CertificateAuthorityData); got != "ca-data" {
		t.Errorf("previous cluster's CA = %q, want the current cluster's", got)
	}
	previous := after.Contexts[previousName]
	if previous == nil || previous.Cluster != previousName || previous.AuthInfo != "alice" || previous.Namespace != "apps" {
		t.Errorf("previous context = %+v, want cluster %s, user alice, namespace apps", previous, previousName)
	}
	assertUntouched(t, before, after)
}

// assertUntouched fails unless after has before's current context, current
// cluster apart from its server, and every other entry.
func assertUntouched(t *testing.T, before, after *clientcmdapi.Config) {
	t.Helper()
	if after.CurrentContext != before.CurrentContext {
		t.Errorf("current context = %q, want %q", after.CurrentContext, before.CurrentContext)
	}
	current := *after.Clusters["warren"]
	current.Server = before.Clusters["warren"].Server
	if !reflect.DeepEqual(&current, before.Clusters["warren"]) {
		t.Errorf("current cluster changed beyond its server: %+v, was %+v", &current, before.Clusters["warren"])
	}
	for _, name := range []string{"other"} {
		if !reflect.DeepEqual(after.Clusters[name], before.Clusters[name]) {
			t.Errorf("cluster %q changed: %+v, was %+v", name, after.Clusters[name], before.Clusters[name])
		}
	}
	for _, name := range []string{"warren", "other"} {
		if !reflect.DeepEqual(after.Contexts[name], before.Contexts[name]) {
			t.Errorf("context %q changed: %+v, was %+v", name, after.Contexts[name], before.Contexts[name])
		}
	}
	if !reflect.DeepEqual(after.AuthInfos, before.AuthInfos) {
		t.Errorf("users changed: %+v, were %+v", after.AuthInfos, before.AuthInfos)
	}
}

func TestSwitchToSwapsPrevious(t *testing.T) {
	path := writeKubeconfig(t, testKubeconfig)
	base := "https://warren.example:6443"
	current := "root:acme"
	for _, target := range []string{"root:x", "root:acme", "root:x"} {
		k, err := loadKubeconfig(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := k.switchTo(location{base: base, path: target}); err != nil {
			t.Fatal(err)
		}
		if got := serverOf(t, path, "warren"); got != base+"/clusters/"+target {
			t.Fatalf("after entering %s: current server %q", target, got)
		}
		if got := serverOf(t, path, previousName); got != base+"/clusters/"+current {
			t.Fatalf("after entering %s from %s: previous server %q", target, current, got)
		}
		current = target
	}
}

func TestSwitchToRefusesThePreviousContext(t *testing.T) {
	path := writeKubeconfig(t, testKubeconfig)
	k, err := loadKubeconfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.switchTo(location{base: "https://warren.example:6443", path: "root:x"}); err != nil {
		t.Fatal(err)
	}
	k, err = loadKubeconfig(path)
	if err != nil {
		t.Fatal(err)
	}
	k.config.CurrentContext = previousName
	err = k.switchTo(location{base: "https://warren.example:6443", path: "root:y"})
	if err == nil || !strings.Contains(err.Error(), "use another context") {
		t.Fatalf("switchTo from the previous context = %v; want an error", err)
	}
}

func TestRestConfigResolvesPaths(t *testing.T) {
	path := writeKubeconfig(t, strings.Replace(testKubeconfig, "current-context: warren", "current-context: other", 1))
	k, err := loadKubeconfig(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(path)
	if err := os.Mkdir(filepath.Join(dir, "certs"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"ca.crt", "bob.crt", "bob.key"} {
		if err := os.WriteFile(filepath.Join(dir, "certs", name), []byte("pem"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	config, err := k.restConfig()
	if err != nil {
		t.Fatal(err)
	}
	if config.CAFile != filepath.Join(dir, "certs/ca.crt") || config.CertFile != filepath.Join(dir, "certs/bob.crt") {
		t.Fatalf("CA file %q, certificate %q; want them resolved against %s", config.CAFile, config.CertFile, dir)
	}
}
