package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
)

// TestAuditNamesTheLogicalCluster runs warren with upstream's audit policy
// file and log backend: every event of a request in a workspace carries kcp's
// annotations naming its logical cluster (tenancy.kcp.io/workspace,
// kcp.io/cluster) and path (kcp.io/path), a denied request's too, so each
// tenant's trail can be filtered from one log.
func TestAuditNamesTheLogicalCluster(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	policy, log := filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "audit.log")
	if err := os.WriteFile(policy, []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServerWith(t, "--audit-policy-file", policy, "--audit-log-path", log)
	a, b := s.Workspace("a"), s.Workspace("b")
	s.kubectl("a", "create", "clusterrolebinding", "alice-admin", "--clusterrole=cluster-admin", "--user=alice")
	eventually(t, "alice creates a config map in root:a", func() error {
		out, err := s.kubectlAs("alice-token", "a", "create", "configmap", "mine")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	if out, err := s.kubectlAs("alice-token", "b", "get", "configmap", "theirs"); err == nil || !strings.Contains(out, "Forbidden") {
		t.Fatalf("alice asked for a config map in root:b, where she has no role: %v %s", err, out)
	}

	want := map[string]struct{ cluster, path string }{
		"mine":   {a, "root:a"},
		"theirs": {b, "root:b"},
	}
	eventually(t, "the audit log records both requests with their logical clusters", func() error {
		data, err := os.ReadFile(log)
		if err != nil {
			return err
		}
		seen := map[string]bool{}
		lines := bufio.NewScanner(bytes.NewReader(data))
		lines.Buffer(nil, 1<<20)
		for lines.Scan() {
			var ev auditv1.Event
			if err := json.Unmarshal(lines.Bytes(), &ev); err != nil {
				return fmt.Errorf("an audit line that is no event: %v: %s", err, lines.Text())
			}
			if ev.User.Username != "alice" || ev.ObjectRef == nil || ev.Stage != auditv1.StageResponseComplete {
				continue
			}
			w, ok := want[ev.ObjectRef.Name]
			if !ok {
				continue
			}
			if got := ev.Annotations; got["tenancy.kcp.io/workspace"] != w.cluster || got["kcp.io/cluster"] != w.cluster || got["kcp.io/path"] != w.path {
				t.Errorf("the event of alice's %s of %s (status %d) has annotations %v, want workspace and cluster %s at %s",
					ev.Verb, ev.ObjectRef.Name, ev.ResponseStatus.Code, got, w.cluster, w.path)
			}
			seen[ev.ObjectRef.Name] = true
		}
		if len(seen) != len(want) {
			return fmt.Errorf("events seen for %v", seen)
		}
		return nil
	})
}
