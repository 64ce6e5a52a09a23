package e2e

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestNamespaceDeletion deletes a namespace holding objects of every namespaced
// resource: it turns Terminating, refuses new content, empties, then goes; the
// same namespace in another cluster is untouched.
func TestNamespaceDeletion(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *server) {
		ctx := context.Background()
		for _, cluster := range []string{"root", "neighbour"} {
			if out, err := s.kubectlIn(manifests(), cluster, "create", "-f", "-"); err != nil {
				t.Fatalf("%s: create: %v\n%s", cluster, err, out)
			}
		}
		s.kubectl("root", "delete", "namespace", "team", "--wait=true", "--timeout=30s")
		c := s.client("root")
		if _, err := c.CoreV1().Namespaces().Get(ctx, "team", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Fatalf("namespace after delete: %v", err)
		}
		for _, resource := range []string{"configmaps", "secrets", "serviceaccounts", "leases", "events", "roles", "rolebindings"} {
			if got := s.kubectl("root", "get", resource, "-n", "team", "-o", "name"); got != "" {
				t.Errorf("%s left in the deleted namespace: %s", resource, got)
			}
			if got := s.kubectl("neighbour", "get", resource, "-n", "team", "-o", "name"); got == "" {
				t.Errorf("%s of the neighbour's namespace were deleted", resource)
			}
		}
		// New content in a missing namespace is refused.
		if out, err := s.kubectlAs("", "root", "create", "configmap", "late", "-n", "team"); err == nil || !strings.Contains(out, `namespaces "team" not found`) {
			t.Errorf("create in a deleted namespace: %v\n%s", err, out)
		}
		// default may not be deleted.
		if out, err := s.kubectlAs("", "root", "delete", "namespace", "default"); err == nil || !strings.Contains(out, "Forbidden") {
			t.Errorf("deleting default: %v\n%s", err, out)
		}
	})
}

// TestRestartKeepsData stops the server with SIGTERM and starts it on the same
// data directory and storage: objects of several clusters are all there, and
// the admin kubeconfig written first still works.
func TestRestartKeepsData(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *server) {
		for _, cluster := range []string{"root", "kept"} {
			if out, err := s.kubectlIn(manifests(), cluster, "create", "-f", "-"); err != nil {
				t.Fatalf("%s: create: %v\n%s", cluster, err, out)
			}
		}
		before := s.kubectl("kept", "get", "configmap", "settings", "-n", "team", "-o", "jsonpath={.metadata.uid}/{.metadata.resourceVersion}")
		s.Restart()
		for _, cluster := range []string{"root", "kept"} {
			for _, o := range objects {
				if got := s.kubectl(cluster, "get", o.name, "-n", "team", "-o", "name"); strings.TrimSpace(got) != o.name {
					t.Errorf("%s: %s after restart: %q", cluster, o.name, got)
				}
			}
		}
		if after := s.kubectl("kept", "get", "configmap", "settings", "-n", "team", "-o", "jsonpath={.metadata.uid}/{.metadata.resourceVersion}"); after != before {
			t.Errorf("configmap changed across the restart: %s, then %s", before, after)
		}
		// Writes continue with newer resource versions.
		s.kubectl("kept", "label", "configmap", "settings", "-n", "team", "after=restart")
	})
}
