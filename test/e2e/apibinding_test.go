package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	kcpcrypto "github.com/kcp-dev/apimachinery/v2/pkg/util/crypto"
	"github.com/kcp-dev/logicalcluster/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"

	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"
	kcpclientset "github.com/kcp-dev/sdk/client/clientset/versioned/cluster"
)

// widgetsProvider is a provider's schema of widgets.example.com and the
// export of it, with a size (an integer at most max) and a status.
func widgetsProvider(max int) string {
	return fmt.Sprintf(`apiVersion: apis.kcp.io/v1alpha1
kind: APIResourceSchema
metadata:
  name: v1.widgets.example.com
spec:
  group: example.com
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns: [{name: Size, type: integer, jsonPath: .spec.size}]
    schema:
      type: object
      properties:
        spec:
          type: object
          properties:
            size: {type: integer, maximum: %d, default: 1}
        status:
          type: object
          properties:
            observed: {type: integer}
---
apiVersion: apis.kcp.io/v1alpha2
kind: APIExport
metadata:
  name: widgets
spec:
  resources:
  - {name: widgets, group: example.com, schema: v1.widgets.example.com}
`, max)
}

// waitBound waits for the binding name in cluster to be Bound and Ready.
func waitBound(t *testing.T, kcp kcpclientset.ClusterInterface, cluster, name string) *apisv1alpha2.APIBinding {
	t.Helper()
	var b *apisv1alpha2.APIBinding
	eventually(t, cluster+": binding "+name+" bound", func() error {
		var err error
		if b, err = kcp.ApisV1alpha2().APIBindings().Cluster(logicalcluster.NewPath(cluster)).Get(context.Background(), name, metav1.GetOptions{}); err != nil {
			return err
		}
		for _, c := range b.Status.Conditions {
			if c.Type == "Ready" && c.Status == "True" && b.Status.Phase == apisv1alpha2.APIBindingPhaseBound {
				return nil
			}
		}
		return fmt.Errorf("status %s", jsonOf(b.Status))
	})
	return b
}

// bindWidgets makes root:provider exporting widgets (widgetsProvider(10)) and
// root:consumer binding them, and returns the two logical clusters, the export
// and the bound binding.
func bindWidgets(t *testing.T, s *server, kcp kcpclientset.ClusterInterface) (provider, consumer string, export *apisv1alpha2.APIExport, binding *apisv1alpha2.APIBinding) {
	t.Helper()
	provider, export = exportWidgets(t, s, kcp)
	consumer = s.makeWorkspace("root", "consumer", "")
	return provider, consumer, export, bindProvider(t, s, kcp, "root:consumer", "widgets")
}

// exportWidgets makes root:provider exporting widgets (widgetsProvider(10))
// and returns its logical cluster and the export, once it has its identity.
func exportWidgets(t *testing.T, s *server, kcp kcpclientset.ClusterInterface) (string, *apisv1alpha2.APIExport) {
	t.Helper()
	provider := s.makeWorkspace("root", "provider", "")
	s.pipe(widgetsProvider(10), "root:provider", "apply", "-f", "-")
	return provider, identifiedExport(t, kcp.ApisV1alpha2().APIExports().Cluster(logicalcluster.NewPath("root:provider")), "widgets")
}

// bindProvider binds, in cluster, the export of root:provider named export,
// in a binding of its name, and waits for it to be bound.
func bindProvider(t *testing.T, s *server, kcp kcpclientset.ClusterInterface, cluster, export string) *apisv1alpha2.APIBinding {
	t.Helper()
	s.pipe(bindingManifest(export, "root:provider", export), cluster, "apply", "-f", "-")
	return waitBound(t, kcp, cluster, export)
}

// TestAPIBindingServesResource binds an export in a consumer workspace and uses
// the bound resource there as a CRD's — discovery, explain, defaulting,
// validation with field paths, printer columns, the status subresource — with
// no CRD in the consumer and nothing in the provider's own API. Its objects are
// stored under the export's identity.
func TestAPIBindingServesResource(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		kcp := kcpClient(t, s)
		provider, consumer, export, b := bindWidgets(t, s, kcp)
		if b.Status.APIExportClusterName != provider {
			t.Errorf("apiExportClusterName = %q, want %q", b.Status.APIExportClusterName, provider)
		}
		if r := b.Status.BoundResources; len(r) != 1 || r[0].Group != "example.com" || r[0].Resource != "widgets" ||
			r[0].Schema.Name != "v1.widgets.example.com" || r[0].Schema.IdentityHash != export.Status.IdentityHash ||
			len(r[0].StorageVersions) != 1 || r[0].StorageVersions[0] != "v1" {
			t.Errorf("boundResources = %s", jsonOf(r))
		}
		for _, c := range []string{"APIExportValid", "InitialBindingCompleted", "BindingUpToDate"} {
			if !strings.Contains(jsonOf(b.Status.Conditions), `"type":"`+c+`","status":"True"`) {
				t.Errorf("condition %s is not true: %s", c, jsonOf(b.Status.Conditions))
			}
		}
		eventually(t, "widgets in the consumer's discovery", func() error {
			out, err := s.kubectlIn("", "root:consumer", "api-resources", "--api-group=example.com", "-o", "name")
			if err != nil || out != "widgets.example.com\n" {
				return fmt.Errorf("%v: %q", err, out)
			}
			return nil
		})
		s.expect("root:provider", "", "api-resources", "--api-group=example.com", "-o", "name")
		s.expect("root:consumer", "", "get", "customresourcedefinitions", "-o", "name")
		if out := s.kubectl("root:consumer", "explain", "widgets.spec.size"); !strings.Contains(out, "<integer>") {
			t.Errorf("explain widgets.spec.size:\n%s", out)
		}

		s.kubectl("root:consumer", "create", "namespace", "ns")
		s.pipe("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1, namespace: ns}\nspec: {}\n", "root:consumer", "apply", "-f", "-")
		s.expectLines("root:consumer", []string{"w1 1"}, "get", "widgets", "-n", "ns", "--no-headers", "-o", "custom-columns=N:.metadata.name,S:.spec.size")
		if out := s.kubectl("root:consumer", "get", "widgets", "-n", "ns"); !strings.Contains(out, "SIZE") {
			t.Errorf("kubectl get widgets shows no Size column:\n%s", out)
		}
		s.refused("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w2, namespace: ns}\nspec: {size: 11}\n", "root:consumer",
			"spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10", "apply", "-f", "-")
		s.kubectl("root:consumer", "patch", "widget", "w1", "-n", "ns", "--subresource=status", "--type=merge", "-p", `{"status":{"observed":3}}`)
		s.expectLines("root:consumer", []string{"3"}, "get", "widget", "w1", "-n", "ns", "--no-headers", "-o", "custom-columns=O:.status.observed")

		prefix := "/example.com/widgets:" + export.Status.IdentityHash + "/"
		if n := storageCount(t, s, `SELECT count(*) FROM objects WHERE cluster = $1 AND key LIKE $2`, consumer, prefix+"%"); n != 1 {
			t.Errorf("%d objects of the consumer stored under %s, want 1", n, prefix)
		}
	})
}

// TestAPIBindingIdentityIsolation binds two exports of the same group and
// resource, with different schemas, in two consumers: each consumer is served
// its own export's schema, the objects of the two are stored under two
// identities, and a second binding of the resource in one consumer is a naming
// conflict, in kcp's words.
func TestAPIBindingIdentityIsolation(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		s.makeWorkspace("root", "small", "")
		s.makeWorkspace("root", "large", "")
		a := s.makeWorkspace("root", "a", "")
		b := s.makeWorkspace("root", "b", "")
		kcp := kcpClient(t, s)
		s.pipe(widgetsProvider(10), "root:small", "apply", "-f", "-")
		s.pipe(widgetsProvider(100), "root:large", "apply", "-f", "-")
		small := identifiedExport(t, kcp.ApisV1alpha2().APIExports().Cluster(logicalcluster.NewPath("root:small")), "widgets")
		large := identifiedExport(t, kcp.ApisV1alpha2().APIExports().Cluster(logicalcluster.NewPath("root:large")), "widgets")
		if small.Status.IdentityHash == large.Status.IdentityHash {
			t.Fatal("two exports have one identity")
		}
		s.pipe(bindingManifest("widgets", "root:small", "widgets"), "root:a", "apply", "-f", "-")
		s.pipe(bindingManifest("widgets", "root:large", "widgets"), "root:b", "apply", "-f", "-")
		waitBound(t, kcp, "root:a", "widgets")
		waitBound(t, kcp, "root:b", "widgets")
		widget := "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: default}\nspec: {size: 50}\n"
		eventually(t, "root:b makes a widget of size 50", func() error {
			out, err := s.kubectlIn(widget, "root:b", "apply", "-f", "-")
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
		eventually(t, "root:a refuses a widget of size 50", func() error {
			out, err := s.kubectlIn(widget, "root:a", "apply", "-f", "-")
			if err == nil || !strings.Contains(out, "should be less than or equal to 10") {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
		for _, c := range []struct{ cluster, identity string }{{a, small.Status.IdentityHash}, {b, large.Status.IdentityHash}} {
			other := large.Status.IdentityHash
			if c.identity == other {
				other = small.Status.IdentityHash
			}
			if n := storageCount(t, s, `SELECT count(*) FROM objects WHERE cluster = $1 AND key LIKE $2`, c.cluster, "/example.com/widgets:"+other+"/%"); n != 0 {
				t.Errorf("cluster %s has %d objects under the other export's identity", c.cluster, n)
			}
		}
		if n := storageCount(t, s, `SELECT count(*) FROM objects WHERE cluster = $1 AND key LIKE $2`, b, "/example.com/widgets:"+large.Status.IdentityHash+"/%"); n != 1 {
			t.Errorf("root:b has %d widgets under its export's identity, want 1", n)
		}

		// A second binding of widgets.example.com in root:a conflicts.
		s.pipe(bindingManifest("more-widgets", "root:large", "widgets"), "root:a", "apply", "-f", "-")
		eventually(t, "the second binding's naming conflict", func() error {
			got, err := kcp.ApisV1alpha2().APIBindings().Cluster(logicalcluster.NewPath("root:a")).Get(context.Background(), "more-widgets", metav1.GetOptions{})
			if err != nil {
				return err
			}
			want := `Unable to bind APIs: naming conflict with APIBinding \"widgets\" bound to APIExport root:small:widgets: spec.names.plural=widgets is forbidden`
			if got.Status.Phase != apisv1alpha2.APIBindingPhaseBinding || !strings.Contains(jsonOf(got.Status.Conditions), `"reason":"NamingConflicts"`) ||
				!strings.Contains(jsonOf(got.Status.Conditions), want) {
				return fmt.Errorf("status %s", jsonOf(got.Status))
			}
			return nil
		})
	})
}

// TestAPIBindingDeletion proves what deleting a binding does, as in kcp: the
// consumer's objects of what it bound are deleted, in every namespace, and
// then the binding goes and its resources leave the consumer's API; nothing of
// them is left stored. While a binding binds a resource, the consumer may not
// make a CRD of it.
func TestAPIBindingDeletion(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		_, consumer, export, b := bindWidgets(t, s, kcpClient(t, s))
		if !strings.Contains(jsonOf(b.Finalizers), "apis.kcp.io/apibinding-finalizer") {
			t.Errorf("finalizers %v, want kcp's binding finalizer", b.Finalizers)
		}
		s.refused(sizedWidgets, "root:consumer",
			`cannot create because resource is bound by APIBinding "widgets"`, "apply", "-f", "-")
		s.kubectl("root:consumer", "create", "namespace", "ns")
		eventually(t, "widgets in the consumer", func() error {
			for _, ns := range []string{"default", "ns"} {
				if out, err := s.kubectlIn("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 2}\n", "root:consumer", "apply", "-n", ns, "-f", "-"); err != nil {
					return fmt.Errorf("%v: %s", err, out)
				}
			}
			return nil
		})
		prefix := "/example.com/widgets:" + export.Status.IdentityHash + "/%"
		if n := storageCount(t, s, `SELECT count(*) FROM objects WHERE cluster = $1 AND key LIKE $2`, consumer, prefix); n != 2 {
			t.Fatalf("%d widgets stored, want 2", n)
		}
		s.kubectl("root:consumer", "delete", "apibinding", "widgets", "--timeout=30s")
		s.expect("root:consumer", "", "get", "apibindings", "-o", "name")
		if n := storageCount(t, s, `SELECT count(*) FROM objects WHERE cluster = $1 AND key LIKE $2`, consumer, prefix); n != 0 {
			t.Errorf("%d widgets stored after their binding was deleted, want none", n)
		}
		eventually(t, "widgets gone from the consumer's discovery", func() error {
			out, err := s.kubectlIn("", "root:consumer", "api-resources", "--api-group=example.com", "-o", "name")
			if err != nil || out != "" {
				return fmt.Errorf("%v: %q", err, out)
			}
			return nil
		})
		// Now the consumer may define widgets itself.
		s.pipe(sizedWidgets, "root:consumer", "apply", "-f", "-")
	})
}

// TestAPIBindingExportDeleted deletes an export that a consumer has bound,
// and its schema: the binding says so in kcp's words at once, stays Bound and
// Ready, and the consumer's objects stay readable, writable and deletable,
// after a restart too; deleting the binding then leaves nothing stored.
func TestAPIBindingExportDeleted(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		kcp := kcpClient(t, s)
		_, consumer, export, _ := bindWidgets(t, s, kcp)
		eventually(t, "a widget in the consumer", func() error {
			out, err := s.kubectlIn("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: default}\nspec: {size: 2}\n", "root:consumer", "apply", "-f", "-")
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
		s.kubectl("root:provider", "delete", "apiexport", "widgets")
		eventually(t, "the binding reports its export missing", func() error {
			b, err := kcp.ApisV1alpha2().APIBindings().Cluster(logicalcluster.NewPath("root:consumer")).Get(context.Background(), "widgets", metav1.GetOptions{})
			if err != nil {
				return err
			}
			conds := jsonOf(b.Status.Conditions)
			if !strings.Contains(conds, `"type":"APIExportValid","status":"False"`) || !strings.Contains(conds, `"reason":"APIExportNotFound","message":"APIExport root:provider|widgets not found"`) ||
				!strings.Contains(conds, `"type":"Ready","status":"True"`) || b.Status.Phase != apisv1alpha2.APIBindingPhaseBound || len(b.Status.BoundResources) != 1 {
				return fmt.Errorf("status %s", jsonOf(b.Status))
			}
			return nil
		})
		// Its schema too, and the server restarts: the consumer is served
		// from warren's copy of the schema.
		s.kubectl("root:provider", "delete", "apiresourceschema", "v1.widgets.example.com")
		s.Restart()
		s.expectLines("root:consumer", []string{"w 2"}, "get", "widgets", "--no-headers", "-o", "custom-columns=N:.metadata.name,S:.spec.size")
		s.kubectl("root:consumer", "patch", "widget", "w", "--type=merge", "-p", `{"spec":{"size":3}}`)

		// A new export of the name, with a new identity secret, has a new
		// identity: the binding keeps its objects under the old one and says so.
		s.kubectl("root:provider", "delete", "secret", "widgets", "-n", "kcp-system")
		s.pipe(widgetsProvider(10), "root:provider", "apply", "-f", "-")
		renewed := identifiedExport(t, kcp.ApisV1alpha2().APIExports().Cluster(logicalcluster.NewPath("root:provider")), "widgets")
		eventually(t, "the binding refuses the new identity", func() error {
			b, err := kcp.ApisV1alpha2().APIBindings().Cluster(logicalcluster.NewPath("root:consumer")).Get(context.Background(), "widgets", metav1.GetOptions{})
			if err != nil {
				return err
			}
			want := `"reason":"APIExportInvalidReference","message":"APIExport root:provider|widgets has identity ` + renewed.Status.IdentityHash +
				`, but resources are bound under identity ` + export.Status.IdentityHash + `"`
			if !strings.Contains(jsonOf(b.Status.Conditions), want) || b.Status.BoundResources[0].Schema.IdentityHash != export.Status.IdentityHash {
				return fmt.Errorf("status %s", jsonOf(b.Status))
			}
			return nil
		})
		s.expectLines("root:consumer", []string{"w 3"}, "get", "widgets", "--no-headers", "-o", "custom-columns=N:.metadata.name,S:.spec.size")
		s.kubectl("root:consumer", "delete", "apibinding", "widgets", "--timeout=30s")
		if n := storageCount(t, s, `SELECT count(*) FROM objects WHERE cluster = $1 AND key LIKE $2`, consumer, "/example.com/widgets:"+export.Status.IdentityHash+"/%"); n != 0 {
			t.Errorf("%d widgets stored after the binding of a deleted export was deleted, want none", n)
		}
	})
}

// TestAPIBindingConflictReevaluated proves that a binding in a naming conflict
// binds as soon as what it conflicts with goes, a CRD of the consumer's or
// another binding, instead of staying in the conflict (kcp#1822).
func TestAPIBindingConflictReevaluated(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		kcp := kcpClient(t, s)
		s.makeWorkspace("root", "provider", "")
		s.makeWorkspace("root", "other", "")
		s.makeWorkspace("root", "consumer", "")
		s.pipe(widgetsProvider(10), "root:provider", "apply", "-f", "-")
		s.pipe(widgetsProvider(100), "root:other", "apply", "-f", "-")
		for _, p := range []string{"root:provider", "root:other"} {
			identifiedExport(t, kcp.ApisV1alpha2().APIExports().Cluster(logicalcluster.NewPath(p)), "widgets")
		}
		s.establish("root:consumer", sizedWidgets)
		conflicted := func(name, with string) {
			t.Helper()
			eventually(t, name+" in a naming conflict with "+with, func() error {
				b, err := kcp.ApisV1alpha2().APIBindings().Cluster(logicalcluster.NewPath("root:consumer")).Get(context.Background(), name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				if conds := jsonOf(b.Status.Conditions); !strings.Contains(conds, `"reason":"NamingConflicts","message":"Unable to bind APIs: naming conflict with `+with) {
					return fmt.Errorf("status %s", jsonOf(b.Status))
				}
				return nil
			})
		}
		s.pipe(bindingManifest("first", "root:provider", "widgets"), "root:consumer", "apply", "-f", "-")
		conflicted("first", `CustomResourceDefinition \"widgets.example.com\": spec.names.plural=widgets is forbidden`)
		s.kubectl("root:consumer", "delete", "crd", "widgets.example.com", "--timeout=30s")
		waitBound(t, kcp, "root:consumer", "first")

		s.pipe(bindingManifest("second", "root:other", "widgets"), "root:consumer", "apply", "-f", "-")
		conflicted("second", `APIBinding \"first\" bound to APIExport root:provider:widgets`)
		s.kubectl("root:consumer", "delete", "apibinding", "first", "--timeout=30s")
		waitBound(t, kcp, "root:consumer", "second")
	})
}

// TestDefaultAPIBindings makes workspaces of types with spec.defaultAPIBindings:
// each is Ready only once the bindings its type and the types it extends name
// are bound (kcp's names, an export without a path taken from the type's own
// workspace), and serves the bound resources from then on. A workspace whose
// export does not exist yet waits, Initializing with system:apibindings and
// kcp's condition, and becomes Ready once the export appears. Writing such a
// type takes bind on each export it names.
func TestDefaultAPIBindings(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		kcp := kcpClient(t, s)
		provider, _ := exportWidgets(t, s, kcp)
		s.pipe(`apiVersion: tenancy.kcp.io/v1alpha1
kind: WorkspaceType
metadata: {name: local}
spec:
  defaultAPIBindings: [{export: widgets}]
`, "root:provider", "apply", "-f", "-")
		s.pipe(`apiVersion: tenancy.kcp.io/v1alpha1
kind: WorkspaceType
metadata: {name: widgeted}
spec:
  extend: {with: [{name: local, path: "root:provider"}]}
  defaultAPIBindings: [{path: "root:provider", export: gizmos}]
`, "root", "apply", "-f", "-")

		// gizmos does not exist yet: the workspace waits for it.
		if _, err := s.kubectlIn(workspaceManifest("w", "spec: {type: {name: widgeted}}"), "root", "create", "-f", "-"); err != nil {
			t.Fatal(err)
		}
		workspaces := kcp.TenancyV1alpha1().Workspaces().Cluster(logicalcluster.NewPath("root"))
		eventually(t, "the workspace waits for its export", func() error {
			ws, err := workspaces.Get(ctx, "w", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if ws.Status.Phase != "Initializing" || !slices.Contains(ws.Status.Initializers, "system:apibindings") ||
				!strings.Contains(jsonOf(ws.Status.Conditions), `"type":"APIBindingsInitialized","status":"False"`) ||
				!strings.Contains(jsonOf(ws.Status.Conditions), `"reason":"APIBindingErrors","message":"encountered errors: unable to complete initialization: unable to find APIExport root:provider:gizmos"`) {
				return fmt.Errorf("status %s", jsonOf(ws.Status))
			}
			return nil
		})
		s.pipe(gizmosProvider, "root:provider", "apply", "-f", "-")
		var cluster string
		eventually(t, "the workspace is Ready", func() error {
			ws, err := workspaces.Get(ctx, "w", metav1.GetOptions{})
			if err != nil {
				return err
			}
			if ws.Status.Phase != "Ready" {
				return fmt.Errorf("status %s", jsonOf(ws.Status))
			}
			cluster = ws.Spec.Cluster
			return nil
		})
		// Both bindings are bound the moment it is Ready.
		list, err := kcp.ApisV1alpha2().APIBindings().Cluster(logicalcluster.NewPath("root:w")).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, b := range list.Items {
			if b.Status.Phase != apisv1alpha2.APIBindingPhaseBound {
				t.Errorf("binding %s of a Ready workspace: %s", b.Name, jsonOf(b.Status))
			}
			got[b.Spec.Reference.Export.Path+"|"+b.Spec.Reference.Export.Name] = b.Name
		}
		for ref, hash := range map[string]string{provider + "|widgets": kcpHash(cluster + "|" + provider + "|widgets"), "root:provider|gizmos": kcpHash(cluster + "|root:provider|gizmos")} {
			name, ok := got[ref]
			_, export, _ := strings.Cut(ref, "|")
			if !ok || name != export+"-"+hash {
				t.Errorf("default bindings %v: want %s named %s-%s", got, ref, export, hash)
			}
		}
		s.pipe("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: first, namespace: default}\n", "root:w", "create", "-f", "-")

		// bob may make types in his workspace, but binds nothing.
		s.makeWorkspace("root", "team", "")
		s.kubectl("root:team", "create", "clusterrolebinding", "bob-admin", "--clusterrole=cluster-admin", "--user=bob")
		typ := "apiVersion: tenancy.kcp.io/v1alpha1\nkind: WorkspaceType\nmetadata: {name: bobs}\nspec: {defaultAPIBindings: [{path: \"root:provider\", export: widgets}]}\n"
		out, err := s.run(typ, "bob-token", "root:team", "create", "-f", "-")
		if err == nil || !strings.Contains(out, "unable to create or update WorkspaceType: no permission to bind to export root:provider:widgets") {
			t.Errorf("bob names an export he may not bind: %v %s", err, out)
		}
		grantExport(s, "bob", "widgets", "apiexports", "bind")
		if out, err := s.run(typ, "bob-token", "root:team", "create", "-f", "-"); err != nil {
			t.Errorf("bob names an export he may bind: %v %s", err, out)
		}
	})
}

// kcpHash is the first five characters, lowercased, of kcp's base62 SHA-224
// of s.
func kcpHash(s string) string {
	return strings.ToLower(kcpcrypto.Base62Sha224.String(s)[:5])
}

// gaugesProvider exports gauges: a CEL rule, a scale subresource, pruning.
const gaugesProvider = `apiVersion: apis.kcp.io/v1alpha1
kind: APIResourceSchema
metadata:
  name: v1.gauges.example.com
spec:
  group: example.com
  names: {plural: gauges, singular: gauge, kind: Gauge, listKind: GaugeList}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    schema:
      type: object
      properties:
        spec:
          type: object
          x-kubernetes-validations: [{rule: "self.min <= self.max", message: "min must not exceed max"}]
          properties:
            min: {type: integer}
            max: {type: integer}
            replicas: {type: integer}
        status:
          type: object
          properties:
            replicas: {type: integer}
---
apiVersion: apis.kcp.io/v1alpha2
kind: APIExport
metadata:
  name: gauges
spec:
  resources:
  - {name: gauges, group: example.com, schema: v1.gauges.example.com}
`

// TestAPIBindingCRDFeatures uses a bound resource as a CRD's, in what CRDs do
// beyond validation: pruning of unknown fields, CEL rules, the scale
// subresource, server-side apply and watch.
func TestAPIBindingCRDFeatures(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		kcp := kcpClient(t, s)
		s.makeWorkspace("root", "provider", "")
		s.makeWorkspace("root", "consumer", "")
		s.pipe(gaugesProvider, "root:provider", "apply", "-f", "-")
		identifiedExport(t, kcp.ApisV1alpha2().APIExports().Cluster(logicalcluster.NewPath("root:provider")), "gauges")
		bindProvider(t, s, kcp, "root:consumer", "gauges")
		gauges := dynamicFor(t, s, "root:consumer").Resource(schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "gauges"}).Namespace("default")
		var w watch.Interface
		eventually(t, "a watch of gauges", func() error {
			var err error
			w, err = gauges.Watch(ctx, metav1.ListOptions{})
			return err
		})
		defer w.Stop()

		s.pipe("apiVersion: example.com/v1\nkind: Gauge\nmetadata: {name: g}\nspec: {min: 1, max: 5, replicas: 1}\n", "root:consumer", "apply", "--server-side", "-f", "-")
		if ev := nextEvent(t, w); ev.Type != watch.Added || ev.Object.(*unstructured.Unstructured).GetName() != "g" {
			t.Errorf("watching gauges: %s %v", ev.Type, ev.Object)
		}
		s.refused("apiVersion: example.com/v1\nkind: Gauge\nmetadata: {name: g}\nspec: {unknown: x}\n", "root:consumer",
			"Error from server (BadRequest): the applied object does not fit the schema: .spec.unknown: field not declared in schema", "apply", "--server-side", "-f", "-")
		s.pipe("apiVersion: example.com/v1\nkind: Gauge\nmetadata: {name: pruned}\nspec: {min: 1, max: 2, unknown: x}\n", "root:consumer", "create", "--validate=false", "-f", "-")
		for _, name := range []string{"g", "pruned"} {
			g, err := gauges.Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, found, _ := unstructured.NestedFieldNoCopy(g.Object, "spec", "unknown"); found {
				t.Errorf("gauge %s kept an unknown field: %v", name, g.Object["spec"])
			}
			if managers := jsonOf(g.GetManagedFields()); name == "g" && !strings.Contains(managers, `"operation":"Apply"`) {
				t.Errorf("managed fields after a server-side apply: %s", managers)
			}
		}
		s.refused("apiVersion: example.com/v1\nkind: Gauge\nmetadata: {name: bad}\nspec: {min: 6, max: 5}\n", "root:consumer", "min must not exceed max", "apply", "-f", "-")
		s.kubectl("root:consumer", "scale", "gauge", "g", "--replicas=3")
		s.expectLines("root:consumer", []string{"3"}, "get", "gauge", "g", "--no-headers", "-o", "custom-columns=R:.spec.replicas")
		scale, err := gauges.Get(ctx, "g", metav1.GetOptions{}, "scale")
		if err != nil || scale.GetKind() != "Scale" {
			t.Errorf("the scale of a gauge: %v %v", err, scale)
		}
	})
}
