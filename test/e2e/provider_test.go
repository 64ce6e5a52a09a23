package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
	"k8s.io/client-go/rest"

	"github.com/warren-dev/warren/test/provider"
)

// TestProviderOperator runs the model of a provider's operator
// (test/provider, written with controller-runtime) as a user who may read the
// export's endpoint slice and use its content, and nothing in any consumer. It
// finds the virtual workspace in the endpoint slice and writes the status of
// the widgets of every consumer: those made before it starts and after, those
// of a consumer that binds the export while it runs, two widgets of one name
// in two workspaces each from its own spec, and changes of spec.
func TestProviderOperator(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		kcp := kcpClient(t, s)
		bindWidgets(t, s, kcp)
		s.makeWorkspace("root", "other", "")
		bindProvider(t, s, kcp, "root:other", "widgets")
		s.makeWorkspace("root", "late", "")
		grantContent(s, "bob", "widgets")
		s.pipe(widgetsOperator, "root:provider", "apply", "-f", "-")
		widget := func(cluster, name string, size int) {
			t.Helper()
			eventually(t, fmt.Sprintf("%s: widget %s of size %d", cluster, name, size), func() error {
				manifest := fmt.Sprintf("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: %s, namespace: default}\nspec: {size: %d}\n", name, size)
				if out, err := s.kubectlIn(manifest, cluster, "apply", "-f", "-"); err != nil {
					return fmt.Errorf("%v: %s", err, out)
				}
				return nil
			})
		}
		observed := func(cluster, name string, size int) {
			t.Helper()
			eventually(t, fmt.Sprintf("%s: widget %s observed at %d", cluster, name, size), func() error {
				out, err := s.kubectlAs("", cluster, "get", "widget", name, "--no-headers", "-o", "custom-columns=O:.status.observed")
				if err != nil || strings.TrimSpace(out) != fmt.Sprint(size) {
					return fmt.Errorf("%v: %s", err, out)
				}
				return nil
			})
		}
		widget("root:consumer", "a", 2)
		widget("root:other", "a", 3)

		defer runOperator(t, context.Background(), s.tokenConfig("bob-token", "root:provider"))()

		observed("root:consumer", "a", 2)
		observed("root:other", "a", 3)
		widget("root:other", "b", 4)
		observed("root:other", "b", 4)
		widget("root:consumer", "a", 5)
		observed("root:consumer", "a", 5)
		observed("root:other", "a", 3)
		bindProvider(t, s, kcp, "root:late", "widgets")
		widget("root:late", "a", 6)
		observed("root:late", "a", 6)
	})
}

// runOperator runs the provider's operator for the export widgets as config
// until the returned function stops it; the operator must not fail.
func runOperator(t *testing.T, ctx context.Context, config *rest.Config) (stop func()) {
	ctx, cancel := context.WithCancel(logr.NewContext(ctx, testr.New(t)))
	done := make(chan error, 1)
	go func() { done <- provider.Run(ctx, config, "widgets") }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the operator: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the operator did not stop")
		}
	}
}

// widgetsOperator lets bob, in the provider's workspace, enter it and read the
// endpoint slice of the export widgets: what its operator asks of it.
const widgetsOperator = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: widgets-operator}
rules:
- {nonResourceURLs: ["/"], verbs: [access]}
- {apiGroups: [apis.kcp.io], resources: [apiexportendpointslices], resourceNames: [widgets], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: bob-operates-widgets}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: widgets-operator}
subjects: [{kind: User, name: bob}]
`
