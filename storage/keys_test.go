package storage

import "testing"

// TestClusterKeys: the key layout of clustered resources round-trips, and the
// cluster of any resource's key is found without knowing its prefix.
func TestClusterKeys(t *testing.T) {
	for _, tc := range []struct{ prefix, cluster, rest, namespace, name string }{
		{"/core/configmaps", "2x7kq9v4m1c8", "/default/cm", "default", "cm"},
		{"/rbac.authorization.k8s.io/clusterroles", "root", "/view", "", "view"},
		{"/example.com/widgets", "root", "", "", ""},
	} {
		key := ClusterKey(tc.prefix, tc.cluster, tc.rest)
		cluster, namespace, name := SplitClusterKey(tc.prefix, key)
		if cluster != tc.cluster || namespace != tc.namespace || name != tc.name {
			t.Errorf("SplitClusterKey(%q) = %q, %q, %q", key, cluster, namespace, name)
		}
		if tc.rest != "" && ClusterOf(key) != tc.cluster {
			t.Errorf("ClusterOf(%q) = %q, want %q", key, ClusterOf(key), tc.cluster)
		}
	}
	for _, key := range []string{"", "/", "/core/configmaps", "core/configmaps/root/x"} {
		if c := ClusterOf(key); c != "" {
			t.Errorf("ClusterOf(%q) = %q, want none", key, c)
		}
	}
}
