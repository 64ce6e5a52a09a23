package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/warren-dev/warren/tenancy"
)

// TestWorkspaceImpersonation: a workspace's admin may impersonate users and
// groups of the workspace, but no installation-wide identity (system:masters,
// kcp's admin and system groups), neither in their own workspace nor in
// another, in root or across all clusters, as kcp refuses it.
func TestWorkspaceImpersonation(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		ctx := context.Background()
		s.makeWorkspace("root", "alices", tenancy.Universal)
		s.makeWorkspace("root", "other", tenancy.Universal)
		s.kubectl("root:alices", "create", "clusterrolebinding", "alice-admin", "--clusterrole=cluster-admin", "--user=alice")
		as := func(address, user string, groups ...string) *rest.Config {
			c := s.tokenConfigAt("alice-token", address)
			c.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
			return c
		}
		eventually(t, "alice impersonates bob of the devs in her workspace", func() error {
			_, err := clientFor(t, as("root:alices", "bob", "devs")).CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
			// bob himself may not enter it: the impersonation went through.
			if err == nil || !strings.Contains(err.Error(), `User "bob" cannot list resource "configmaps"`) {
				return fmt.Errorf("as bob: %v", err)
			}
			return nil
		})
		for _, address := range []string{"root:alices", "root:other", "root", "*"} {
			for _, groups := range [][]string{{"system:masters"}, {"system:kcp:admin"}, {"system:kcp:logical-cluster-admin"}, {"a", "b", "c", "system:kcp:admin"}} {
				_, err := clientFor(t, as(address, "anyone", groups...)).CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
				if !apierrors.IsForbidden(err) || address == "root:alices" && !strings.Contains(err.Error(), "not allowed") {
					t.Errorf("alice impersonating %v at %s: %v; want 403, not allowed", groups, address, err)
				}
			}
		}
		// An impersonation allowed in her workspace is not taken as allowed in
		// another, where the impersonated user may do what she may not.
		s.kubectl("root:other", "create", "clusterrolebinding", "bob-admin", "--clusterrole=cluster-admin", "--user=bob")
		if _, err := clientFor(t, as("root:alices", "bob")).CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
			t.Fatalf("alice as bob in her workspace: %v", err)
		}
		_, err := clientFor(t, as("root:other", "bob")).CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
		expectAPIStatus(t, "alice as bob in root:other, right after", err, 403, `User "alice" cannot`)
		// The admin may.
		admin := s.Config("root:alices")
		admin.Impersonate = rest.ImpersonationConfig{UserName: "ops", Groups: []string{"system:masters"}}
		if _, err := clientFor(t, admin).CoreV1().Namespaces().List(ctx, metav1.ListOptions{}); err != nil {
			t.Errorf("the installation's admin impersonating system:masters: %v", err)
		}
	})
}

// TestWorkspaceBootstrapRoles: every workspace shows the bootstrap cluster
// roles as Kubernetes does (get, list, describe, selectors, pages), though none
// is stored in it; a stored role of the same name takes one's place in that
// workspace only; across all clusters only stored roles are listed.
func TestWorkspaceBootstrapRoles(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		s.makeWorkspace("root", "a", tenancy.Universal)
		s.makeWorkspace("root", "b", tenancy.Universal)
		bootstrap := []string{"admin", "cluster-admin", "edit", "system:basic-user", "system:discovery", "system:kcp:tenancy:reader",
			"system:kcp:workspace:access", "system:public-info-viewer", "view"}
		names := func(out string) []string {
			var got []string
			for _, line := range strings.Fields(out) {
				got = append(got, strings.TrimPrefix(line, "clusterrole.rbac.authorization.k8s.io/"))
			}
			slices.Sort(got)
			return got
		}
		for _, args := range [][]string{
			{"get", "clusterroles", "-o", "name"},
			{"get", "clusterroles", "-o", "name", "--chunk-size=2"},
			{"get", "clusterroles", "-o", "name", "-l", "kubernetes.io/bootstrapping=rbac-defaults"},
		} {
			if got := names(s.kubectl("root:a", args...)); !slices.Equal(got, bootstrap) {
				t.Errorf("kubectl %s in a fresh workspace: %v, want %v", strings.Join(args, " "), got, bootstrap)
			}
		}
		s.expect("root:a", `["get","list","watch"]`, "get", "clusterrole", "view", "-o", `jsonpath={.rules[0].verbs}`)
		if out := s.kubectl("root:a", "describe", "clusterrole", "edit"); !strings.Contains(out, "configmaps") {
			t.Errorf("kubectl describe clusterrole edit:\n%s", out)
		}
		s.expect("root:a", "", "get", "clusterroles", "-o", "name", "--field-selector=metadata.name=nope")

		s.kubectl("root:a", "create", "clusterrole", "view", "--verb=get", "--resource=secrets")
		s.expect("root:a", "secrets", "get", "clusterrole", "view", "-o", `jsonpath={.rules[0].resources[0]}`)
		if got := names(s.kubectl("root:a", "get", "clusterroles", "-o", "name")); !slices.Equal(got, bootstrap) {
			t.Errorf("cluster roles of root:a with its own view: %v, want each name once", got)
		}
		if out := s.kubectl("root:b", "get", "clusterrole", "view", "-o", `jsonpath={.rules[*].resources}`); !strings.Contains(out, "configmaps") || strings.Contains(out, "secrets") {
			t.Errorf("root:b's view, the bootstrap role, grants %s", out)
		}
		if got := names(s.kubectl("*", "get", "clusterroles", "-o", "name")); !slices.Equal(got, []string{"system:kcp:home-clusterworkspace-create", "system:kcp:universal-workspacetype-use", "view"}) {
			t.Errorf("cluster roles across all clusters: %v, want only the stored ones", got)
		}
	})
}
