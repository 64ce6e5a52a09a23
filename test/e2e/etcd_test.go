package e2e

import (
	"strings"
	"testing"

	"github.com/warren-dev/warren/bench/etcdserver"
)

// TestEtcdStorage runs the same apiserver on upstream's etcd3 store
// (--storage etcd://), the comparison the API benchmark makes: the built-in
// resources of two clusters work and survive a restart.
func TestEtcdStorage(t *testing.T) {
	e, err := etcdserver.Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	s := startServerWith(t, "--storage", "etcd://"+strings.TrimPrefix(e.Endpoint, "http://"))
	for _, cluster := range []string{"root", "other"} {
		if out, err := s.kubectlIn(manifests(), cluster, "create", "-f", "-"); err != nil {
			t.Fatalf("%s: create: %v\n%s", cluster, err, out)
		}
	}
	s.Restart()
	for _, cluster := range []string{"root", "other"} {
		for _, o := range objects {
			if got := s.kubectl(cluster, "get", o.name, "-n", "team", "-o", "name"); strings.TrimSpace(got) != o.name {
				t.Errorf("%s: %s after restart: %q", cluster, o.name, got)
			}
		}
	}
	s.kubectl("root", "delete", "namespace", "team", "--timeout=30s")
	if got := s.kubectl("other", "get", "configmaps", "-n", "team", "-o", "name"); !strings.Contains(got, "settings") {
		t.Errorf("deleting root's namespace touched other's: %q", got)
	}
}
