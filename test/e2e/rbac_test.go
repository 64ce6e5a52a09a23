package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// TestRBACIsolation makes alice admin of cluster a, then tries every verb on
// every resource in cluster b as alice: all forbidden, while the same calls in a
// succeed.
func TestRBACIsolation(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *server) {
		ctx := context.Background()
		for _, cluster := range []string{"a", "b"} {
			s.kubectl(cluster, "create", "configmap", "existing", "--from-literal=k=v")
			s.kubectl(cluster, "create", "namespace", "work")
		}
		s.kubectl("a", "create", "clusterrolebinding", "alice-admin", "--clusterrole=cluster-admin", "--user=alice")
		s.kubectl("a", "create", "rolebinding", "alice-edit", "--clusterrole=edit", "--user=alice", "-n", "default")

		inA := clientFor(t, s.tokenConfig("alice-token", "a"))
		eventually(t, "alice is admin in a", func() error {
			_, err := inA.CoreV1().ConfigMaps("default").Get(ctx, "existing", metav1.GetOptions{})
			return err
		})
		inB := clientFor(t, s.tokenConfig("alice-token", "b"))
		for _, c := range verbs() {
			if err := c.do(ctx, inA); err != nil {
				t.Errorf("in a, %s: %v", c.name, err)
			}
			if err := c.do(ctx, inB); !apierrors.IsForbidden(err) {
				t.Errorf("in b, %s: got %v, want Forbidden", c.name, err)
			}
		}
		// The admin still sees b untouched.
		if got := s.kubectl("b", "get", "configmap", "existing", "-o", "jsonpath={.data.k}"); got != "v" {
			t.Errorf("b's configmap data = %q", got)
		}
		// kubectl auth can-i agrees.
		if out, _ := s.kubectlAs("alice-token", "b", "auth", "can-i", "get", "configmaps"); strings.TrimSpace(out) != "no" {
			t.Errorf("can-i in b = %q", out)
		}
		if out, _ := s.kubectlAs("alice-token", "a", "auth", "can-i", "get", "configmaps"); strings.TrimSpace(out) != "yes" {
			t.Errorf("can-i in a = %q", out)
		}
		// A group binding grants bob read access in a only.
		s.kubectl("a", "create", "clusterrolebinding", "devs-view", "--clusterrole=view", "--group=devs")
		bobA := clientFor(t, s.tokenConfig("bob-token", "a"))
		eventually(t, "devs may list namespaces in a", func() error {
			_, err := bobA.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
			return err
		})
		if _, err := bobA.CoreV1().ConfigMaps("default").Create(ctx, configMap("nope"), metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("view lets bob create: %v", err)
		}
		// Unauthenticated requests get nothing but health.
		if out, err := s.kubectlAs("wrong-token", "a", "get", "configmaps"); err == nil || !strings.Contains(out, "Unauthorized") && !strings.Contains(out, "logged in") {
			t.Errorf("a wrong token: %v\n%s", err, out)
		}
	})
}

// call is one API call of an access matrix.
type call struct {
	name string
	do   func(context.Context, kubernetes.Interface) error
}

// verbs are calls of every verb, creating fresh names; deleting the namespace
// "work" comes last.
func verbs() []call {
	n := 0
	fresh := func() string { n++; return fmt.Sprintf("obj-%d", n) }
	return []call{
		{"get configmap", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoreV1().ConfigMaps("default").Get(ctx, "existing", metav1.GetOptions{})
			return err
		}},
		{"list configmaps", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
			return err
		}},
		{"watch configmaps", func(ctx context.Context, c kubernetes.Interface) error {
			w, err := c.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{})
			if err == nil {
				w.Stop()
			}
			return err
		}},
		{"create+update+patch+delete configmap", func(ctx context.Context, c kubernetes.Interface) error {
			cm, err := c.CoreV1().ConfigMaps("default").Create(ctx, configMap(fresh()), metav1.CreateOptions{})
			if err != nil {
				return err
			}
			cm.Data = map[string]string{"k": "changed"}
			if _, err := c.CoreV1().ConfigMaps("default").Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
				return err
			}
			if _, err := c.CoreV1().ConfigMaps("default").Patch(ctx, cm.Name, types.MergePatchType, []byte(`{"data":{"p":"1"}}`), metav1.PatchOptions{}); err != nil {
				return err
			}
			return c.CoreV1().ConfigMaps("default").Delete(ctx, cm.Name, metav1.DeleteOptions{})
		}},
		{"update existing configmap", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoreV1().ConfigMaps("default").Patch(ctx, "existing", types.MergePatchType, []byte(`{"metadata":{"labels":{"touched":"yes"}}}`), metav1.PatchOptions{})
			return err
		}},
		{"deletecollection secrets", func(ctx context.Context, c kubernetes.Interface) error {
			return c.CoreV1().Secrets("default").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
		}},
		{"get namespace", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoreV1().Namespaces().Get(ctx, "work", metav1.GetOptions{})
			return err
		}},
		{"create namespace", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fresh()}}, metav1.CreateOptions{})
			return err
		}},
		{"create role", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.RbacV1().Roles("default").Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: fresh()}}, metav1.CreateOptions{})
			return err
		}},
		{"list clusterrolebindings", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
			return err
		}},
		{"list leases", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.CoordinationV1().Leases("default").List(ctx, metav1.ListOptions{})
			return err
		}},
		{"create subjectaccessreview", func(ctx context.Context, c kubernetes.Interface) error {
			_, err := c.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
				Spec: authorizationv1.SubjectAccessReviewSpec{User: "x", ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Resource: "configmaps"}},
			}, metav1.CreateOptions{})
			return err
		}},
		{"delete namespace", func(ctx context.Context, c kubernetes.Interface) error {
			return c.CoreV1().Namespaces().Delete(ctx, "work", metav1.DeleteOptions{})
		}},
	}
}

func configMap(name string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"k": "v"}}
}

// TestRBACEscalation: a namespace admin may grant what the admin holds, and
// nothing more.
func TestRBACEscalation(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *server) {
		s.kubectl("root", "create", "rolebinding", "alice-admin", "--clusterrole=admin", "--user=alice")
		eventually(t, "alice is admin of default", func() error {
			out, err := s.kubectlAs("alice-token", "root", "get", "configmaps")
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
		for _, allowed := range [][]string{
			{"create", "rolebinding", "bob-edit", "--clusterrole=edit", "--user=bob"},
			{"create", "role", "secret-reader", "--verb=get", "--resource=secrets"},
		} {
			if out, err := s.kubectlAs("alice-token", "root", allowed...); err != nil {
				t.Errorf("%v: %v\n%s", allowed, err, out)
			}
		}
		for _, refused := range [][]string{
			{"create", "rolebinding", "self-admin", "--clusterrole=cluster-admin", "--user=alice"},
			{"create", "role", "everything", "--verb=*", "--resource=*.*"},
		} {
			out, err := s.kubectlAs("alice-token", "root", refused...)
			if err == nil || !strings.Contains(out, "not currently held") {
				t.Errorf("%v: %v\n%s", refused, err, out)
			}
		}
	})
}
