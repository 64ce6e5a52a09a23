package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestServiceAccountTokens issues a token with `kubectl create token` in one
// cluster: it works there under the account's bindings, is nobody in another
// cluster holding a same-named account and binding, and stops working when the
// account is deleted. A workspace's service accounts may enter it though its
// RBAC grants nobody "access", as in kcp.
func TestServiceAccountTokens(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *server) {
		for _, cluster := range []string{"home", "away"} {
			s.kubectl(cluster, "create", "serviceaccount", "bot")
			s.kubectl(cluster, "create", "rolebinding", "bot-view", "--clusterrole=view", "--serviceaccount=default:bot")
			s.kubectl(cluster, "create", "configmap", "visible")
		}
		token := strings.TrimSpace(s.kubectl("home", "create", "token", "bot"))

		who, err := s.kubectlAs(token, "home", "auth", "whoami", "-o", "jsonpath={.status.userInfo.username} {.status.userInfo.extra.authentication\\.kubernetes\\.io/cluster-name}")
		if err != nil || who != "system:serviceaccount:default:bot [\""+s.Workspace("home")+"\"]" {
			t.Errorf("whoami in home: %v: %q", err, who)
		}
		eventually(t, "the token reads configmaps in home", func() error {
			out, err := s.kubectlAs(token, "home", "get", "configmap", "visible", "-o", "name")
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
		if out, err := s.kubectlAs(token, "home", "create", "configmap", "written"); err == nil || !strings.Contains(out, "forbidden") {
			t.Errorf("view lets the token write: %v\n%s", err, out)
		}
		if out, err := s.kubectlAs(token, "away", "get", "configmap", "visible"); err == nil || !strings.Contains(out, "forbidden") {
			t.Errorf("the token reads in another cluster: %v\n%s", err, out)
		}
		// In a workspace open to nobody, its own service account is let in.
		s.makeWorkspace("root", "closed", "")
		s.kubectl("root:closed", "create", "serviceaccount", "bot")
		s.kubectl("root:closed", "create", "rolebinding", "bot-view", "--clusterrole=view", "--serviceaccount=default:bot")
		s.kubectl("root:closed", "create", "configmap", "visible")
		inside := strings.TrimSpace(s.kubectl("root:closed", "create", "token", "bot"))
		eventually(t, "the account of root:closed reads configmaps there", func() error {
			out, err := s.kubectlAs(inside, "root:closed", "get", "configmap", "visible", "-o", "name")
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
		if out, err := s.kubectlAs(token, "root:closed", "get", "configmap", "visible"); err == nil || !strings.Contains(out, "access denied") {
			t.Errorf("home's account in root:closed: %v\n%s", err, out)
		}
		// A token for another audience does not authenticate to the API.
		other := strings.TrimSpace(s.kubectl("home", "create", "token", "bot", "--audience=vault"))
		if out, err := s.kubectlAs(other, "home", "get", "configmaps"); err == nil || !strings.Contains(out, "Unauthorized") {
			t.Errorf("a vault token reads: %v\n%s", err, out)
		}
		s.kubectl("home", "delete", "serviceaccount", "bot")
		if out, err := s.kubectlAs(token, "home", "get", "configmaps"); err == nil || !strings.Contains(out, "Unauthorized") {
			t.Errorf("a deleted account's token: %v\n%s", err, out)
		}
	})
}
