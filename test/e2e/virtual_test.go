package e2e

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	apisv1alpha1 "github.com/kcp-dev/sdk/apis/apis/v1alpha1"
	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"
	"github.com/kcp-dev/sdk/apis/apis/v1alpha2/permissionclaims"
)

// TestVirtualWorkspace drives an export's virtual workspace as a provider's
// controller does, with the rights kcp asks for (apiexports/content in the
// provider's workspace) and no access to any consumer: it lists and watches
// the widgets of every consumer at /clusters/*, each with its kcp.io/cluster,
// and reads and writes them, status too, at /clusters/<consumer>. It reaches
// nothing else: no cluster that does not bind the export, no resource the
// export does not export, no write across clusters, and nobody without the
// right gets in.
func TestVirtualWorkspace(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		kcp := kcpClient(t, s)
		provider, consumer, _, _ := bindWidgets(t, s, kcp)
		other := s.makeWorkspace("root", "other", "")
		bindProvider(t, s, kcp, "root:other", "widgets")
		grantContent(s, "bob", "widgets")
		widget := func(cluster, name string) {
			t.Helper()
			eventually(t, cluster+": widget "+name, func() error {
				out, err := s.kubectlIn("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: "+name+", namespace: default}\nspec: {size: 2}\n", cluster, "apply", "-f", "-")
				if err != nil {
					return fmt.Errorf("%v: %s", err, out)
				}
				return nil
			})
		}
		widget("root:consumer", "a1")
		widget("root:consumer", "a2")
		widget("root:other", "b1")

		vw := func(token, target string) dynamic.NamespaceableResourceInterface {
			c, err := dynamic.NewForConfig(s.virtualConfig(token, provider, "widgets", target))
			if err != nil {
				t.Fatal(err)
			}
			return c.Resource(schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"})
		}
		var list *unstructured.UnstructuredList
		eventually(t, "bob lists the widgets of every consumer", func() error {
			var err error
			list, err = vw("bob-token", "*").List(ctx, metav1.ListOptions{})
			return err
		})
		var got []string
		for _, item := range list.Items {
			got = append(got, item.GetAnnotations()["kcp.io/cluster"]+"/"+item.GetName())
		}
		slices.Sort(got)
		want := []string{consumer + "/a1", consumer + "/a2", other + "/b1"}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("the virtual workspace lists %v, want %v", got, want)
		}
		// Field and label selectors, as informers use them.
		s.kubectl("root:other", "label", "widget", "b1", "tier=gold")
		for _, tc := range []struct {
			what string
			opts metav1.ListOptions
			want []string
		}{
			{"by name", metav1.ListOptions{FieldSelector: "metadata.name=a2"}, []string{consumer + "/a2"}},
			{"by namespace and label", metav1.ListOptions{FieldSelector: "metadata.namespace=default", LabelSelector: "tier=gold"}, []string{other + "/b1"}},
		} {
			selected, err := vw("bob-token", "*").List(ctx, tc.opts)
			if err != nil {
				t.Fatalf("bob lists %s: %v", tc.what, err)
			}
			var got []string
			for _, item := range selected.Items {
				got = append(got, item.GetAnnotations()["kcp.io/cluster"]+"/"+item.GetName())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("bob lists %s: %v, want %v", tc.what, got, tc.want)
			}
		}
		w, err := vw("bob-token", "*").Watch(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		widget("root:other", "b2")
		for {
			// The watch resumes at the list: the label change comes first.
			ev := nextEvent(t, w)
			if name := ev.Object.(*unstructured.Unstructured).GetName(); ev.Type == watch.Modified && name == "b1" {
				continue
			} else if ev.Type != watch.Added || name != "b2" {
				t.Errorf("watching across consumers: got %s %s, want ADDED b2", ev.Type, name)
			}
			break
		}

		// One consumer: every verb, status too.
		inConsumer := vw("bob-token", consumer).Namespace("default")
		a1, err := inConsumer.Get(ctx, "a1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := unstructured.SetNestedField(a1.Object, int64(7), "status", "observed"); err != nil {
			t.Fatal(err)
		}
		if _, err := inConsumer.UpdateStatus(ctx, a1, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("bob writes a widget's status through the virtual workspace: %v", err)
		}
		s.expectLines("root:consumer", []string{"7"}, "get", "widget", "a1", "--no-headers", "-o", "custom-columns=O:.status.observed")
		made := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "example.com/v1", "kind": "Widget",
			"metadata": map[string]any{"name": "from-provider"}, "spec": map[string]any{"size": int64(3)}}}
		if _, err := inConsumer.Create(ctx, made, metav1.CreateOptions{}); err != nil {
			t.Fatalf("bob makes a widget in a consumer: %v", err)
		}
		s.expectLines("root:consumer", []string{"from-provider 3"}, "get", "widget", "from-provider", "--no-headers", "-o", "custom-columns=N:.metadata.name,S:.spec.size")
		if _, err := inConsumer.Patch(ctx, "from-provider", types.MergePatchType, []byte(`{"spec":{"size":4}}`), metav1.PatchOptions{}); err != nil {
			t.Fatalf("bob merge-patches a widget: %v", err)
		}
		applied := []byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"from-provider"},"status":{"observed":4}}`)
		if _, err := inConsumer.Patch(ctx, "from-provider", types.ApplyPatchType, applied, metav1.PatchOptions{FieldManager: "provider"}, "status"); err != nil {
			t.Fatalf("bob applies a widget's status server-side: %v", err)
		}
		s.expectLines("root:consumer", []string{"4 4 provider"}, "get", "widget", "from-provider", "--no-headers", "-o",
			`custom-columns=S:.spec.size,O:.status.observed,M:.metadata.managedFields[?(@.subresource=="status")].manager`)
		if err := inConsumer.Delete(ctx, "a2", metav1.DeleteOptions{}); err != nil {
			t.Fatalf("bob deletes a widget of a consumer: %v", err)
		}

		// Nothing else.
		_, err = vw("carol-token", "*").List(ctx, metav1.ListOptions{})
		expectAPIStatus(t, "carol, without apiexports/content, lists", err, 403, `API export: "widgets"`)
		_, err = vw("bob-token", provider).Namespace("default").List(ctx, metav1.ListOptions{})
		expectAPIStatus(t, "bob lists in a cluster that binds nothing", err, 403, "could not find suitable APIBinding in target logical cluster")
		_, err = clientFor(t, s.virtualConfig("bob-token", provider, "widgets", consumer)).CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
		expectAPIStatus(t, "bob lists a consumer's configmaps", err, 403, "failed to find suitable reason to allow access in APIBinding")
		_, err = vw("bob-token", "*").Namespace("default").Create(ctx, made, metav1.CreateOptions{})
		if !apierrors.IsMethodNotSupported(err) && !apierrors.IsBadRequest(err) {
			t.Errorf("bob creates across clusters: got %v, want a refusal", err)
		}
		_, err = vw("bob-token", "root:consumer").List(ctx, metav1.ListOptions{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("a virtual workspace path naming a workspace by path: got %v, want 404", err)
		}
	})
}

// grantContent gives user every verb on apiexports/content of the export in
// root:provider: what a provider's controller needs to use the export's
// virtual workspace.
func grantContent(s *server, user, export string) {
	grantExport(s, user, export, "apiexports/content", `"*"`)
}

// grantExport gives user verbs (a YAML list's items) on resource of the export
// in root:provider (kubectl create clusterrole knows no verb bind on exports).
func grantExport(s *server, user, export, resource, verbs string) {
	role := export + "-" + strings.ReplaceAll(resource, "/", "-")
	s.pipe(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: `+role+`}
rules: [{apiGroups: [apis.kcp.io], resources: [`+resource+`], resourceNames: [`+export+`], verbs: [`+verbs+`]}]
`, "root:provider", "apply", "-f", "-")
	s.kubectl("root:provider", "create", "clusterrolebinding", user+"-"+role, "--clusterrole="+role, "--user="+user)
}

// virtualConfig is a client-go configuration for the virtual workspace of the
// export of provider at /clusters/<target>, as the user of token.
func (s *server) virtualConfig(token, provider, export, target string) *rest.Config {
	config := s.tokenConfig(token, "root")
	config.Host = s.URL("/services/apiexport/" + provider + "/" + export + "/clusters/" + target)
	return config
}

// TestVirtualWorkspaceDiscovery proves what a provider's tools see of an
// export's virtual workspace, across clusters and in one: in discovery, in
// OpenAPI and through kubectl, the exported resources and, read-only, the
// APIBindings of the export — not those of another export, and nothing of
// the consumers' own APIs. The binding admission labels each binding with its
// export, and the label cannot be changed.
func TestVirtualWorkspaceDiscovery(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		kcp := kcpClient(t, s)
		provider, consumer, _, _ := bindWidgets(t, s, kcp)
		s.pipe(gizmosProvider, "root:provider", "apply", "-f", "-")
		identifiedExport(t, kcp.ApisV1alpha2().APIExports().Cluster(logicalcluster.NewPath("root:provider")), "gizmos")
		bindProvider(t, s, kcp, "root:consumer", "gizmos")
		grantContent(s, "bob", "widgets")

		label := permissionclaims.ToAPIBindingExportLabelValue(logicalcluster.Name(provider), "widgets")
		s.expectLines("root:consumer", []string{label}, "get", "apibinding", "widgets", "--no-headers", "-o", `custom-columns=L:.metadata.labels.internal\.apis\.kcp\.io/export`)
		s.kubectl("root:consumer", "label", "apibinding", "widgets", "--overwrite", "internal.apis.kcp.io/export=forged")
		s.expectLines("root:consumer", []string{label}, "get", "apibinding", "widgets", "--no-headers", "-o", `custom-columns=L:.metadata.labels.internal\.apis\.kcp\.io/export`)

		want := []string{"apis.kcp.io/v1alpha1/apibindings", "apis.kcp.io/v1alpha2/apibindings", "example.com/v1/widgets", "example.com/v1/widgets/status"}
		for _, target := range []string{"*", consumer} {
			config := s.virtualConfig("bob-token", provider, "widgets", target)
			var got []string
			eventually(t, "discovery at /clusters/"+target, func() error {
				dc, err := discovery.NewDiscoveryClientForConfig(config)
				if err != nil {
					return err
				}
				_, lists, err := dc.ServerGroupsAndResources()
				if err != nil {
					return err
				}
				got = nil
				for _, l := range lists {
					for _, r := range l.APIResources {
						got = append(got, l.GroupVersion+"/"+r.Name)
					}
				}
				slices.Sort(got)
				return nil
			})
			if !slices.Equal(got, want) {
				t.Errorf("discovery at /clusters/%s: %v, want %v", target, got, want)
			}
			// The unaggregated documents, as older clients read them.
			body, err := clientFor(t, config).Discovery().RESTClient().Get().AbsPath("/apis/example.com/v1").DoRaw(ctx)
			if err != nil || !strings.Contains(string(body), `"name":"widgets"`) {
				t.Errorf("/apis/example.com/v1 at /clusters/%s: %v %s", target, err, body)
			}
			paths, err := clientFor(t, config).Discovery().OpenAPIV3().Paths()
			if err != nil {
				t.Fatal(err)
			}
			keys := slices.Sorted(maps.Keys(paths))
			if !slices.Equal(keys, []string{"apis/apis.kcp.io/v1alpha1", "apis/apis.kcp.io/v1alpha2", "apis/example.com/v1"}) {
				t.Errorf("OpenAPI v3 at /clusters/%s: %v", target, keys)
			}
			if doc, err := paths["apis/example.com/v1"].Schema("application/json"); err != nil || !strings.Contains(string(doc), "com.example.v1.Widget") {
				t.Errorf("OpenAPI of example.com/v1 at /clusters/%s: %v %.200s", target, err, doc)
			}
		}

		// A change of the export shows at once (nothing cached stays stale).
		s.kubectl("root:provider", "patch", "apiexport", "widgets", "--type=json", "-p",
			`[{"op":"add","path":"/spec/resources/-","value":{"name":"gizmos","group":"example.org","schema":"v1.gizmos.example.org","storage":{"crd":{}}}}]`)
		eventually(t, "the export's new resource in discovery", func() error {
			resources, err := discovery.NewDiscoveryClientForConfigOrDie(s.virtualConfig("bob-token", provider, "widgets", "*")).ServerResourcesForGroupVersion("example.org/v1")
			if err != nil {
				return err
			}
			if len(resources.APIResources) != 1 || resources.APIResources[0].Name != "gizmos" {
				return fmt.Errorf("example.org/v1: %v", resources.APIResources)
			}
			return nil
		})
		s.kubectl("root:provider", "patch", "apiexport", "widgets", "--type=json", "-p", `[{"op":"remove","path":"/spec/resources/1"}]`)

		// kubectl, with its discovery, against the virtual workspace.
		kubeconfig := s.tokenKubeconfig(t, "bob-token", "root")
		vwURL := s.URL("/services/apiexport/" + provider + "/widgets/clusters/")
		if out, stderr, err := kubectlOn(kubeconfig, "--server", vwURL+consumer, "get", "apibindings", "--no-headers", "-o", "custom-columns=N:.metadata.name"); err != nil || strings.TrimSpace(out) != "widgets" {
			t.Errorf("kubectl lists the bindings in the virtual workspace: %q %v %s", out, err, stderr)
		}
		if out, stderr, err := kubectlOn(kubeconfig, "--server", vwURL+"*", "get", "apibindings", "--no-headers", "-o", "custom-columns=N:.metadata.name"); err != nil || strings.TrimSpace(out) != "widgets" {
			t.Errorf("kubectl lists the bindings across clusters: %q %v %s", out, err, stderr)
		}
		if _, stderr, err := kubectlOn(kubeconfig, "--server", vwURL+consumer, "get", "configmaps"); err == nil || !strings.Contains(stderr, `doesn't have a resource type "configmaps"`) {
			t.Errorf("kubectl gets configmaps in the virtual workspace: %v %s", err, stderr)
		}
		if _, stderr, err := kubectlOn(kubeconfig, "--server", vwURL+consumer, "explain", "widgets.spec.size"); err != nil {
			t.Errorf("kubectl explains widgets in the virtual workspace: %v %s", err, stderr)
		}

		bindings := func(target string) dynamic.NamespaceableResourceInterface {
			c, err := dynamic.NewForConfig(s.virtualConfig("bob-token", provider, "widgets", target))
			if err != nil {
				t.Fatal(err)
			}
			return c.Resource(apisv1alpha2.SchemeGroupVersion.WithResource("apibindings"))
		}
		if _, err := bindings(consumer).Get(ctx, "widgets", metav1.GetOptions{}); err != nil {
			t.Errorf("bob gets the binding of widgets: %v", err)
		}
		_, err := bindings(consumer).Get(ctx, "gizmos", metav1.GetOptions{})
		expectAPIStatus(t, "bob gets the binding of another export", err, 404, "")
		err = bindings(consumer).Delete(ctx, "widgets", metav1.DeleteOptions{})
		expectAPIStatus(t, "bob deletes a binding", err, 403, "read-only")
		// However the list is spelt: the old watch path, a trailing slash, a
		// field selector.
		byName, err := bindings("*").List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=widgets"})
		if err != nil || len(byName.Items) != 1 || byName.Items[0].GetAnnotations()["kcp.io/cluster"] != consumer {
			t.Errorf("bob lists the bindings named widgets across clusters: %v %v", err, byName)
		}
		raw := clientFor(t, s.virtualConfig("bob-token", provider, "widgets", "*")).Discovery().RESTClient()
		for _, path := range []string{"/apis/apis.kcp.io/v1alpha2/apibindings/", "/apis/apis.kcp.io/v1alpha2/watch/apibindings?timeoutSeconds=1"} {
			body, err := raw.Get().AbsPath(strings.Split(path, "?")[0]).Param("timeoutSeconds", "1").DoRaw(ctx)
			if err != nil || strings.Contains(string(body), `"gizmos"`) || !strings.Contains(string(body), `"widgets"`) {
				t.Errorf("bob reads %s: %v %.300s", path, err, body)
			}
		}

		// An export naming a built-in resource as its own reaches nothing.
		s.pipe("apiVersion: apis.kcp.io/v1alpha2\nkind: APIExport\nmetadata: {name: sneaky}\nspec:\n  resources: [{group: \"\", name: secrets, schema: a.secrets.core}]\n", "root:provider", "apply", "-f", "-")
		identifiedExport(t, kcp.ApisV1alpha2().APIExports().Cluster(logicalcluster.NewPath("root:provider")), "sneaky")
		grantContent(s, "bob", "sneaky")
		_, err = clientFor(t, s.virtualConfig("bob-token", provider, "sneaky", "*")).CoreV1().Secrets("").List(ctx, metav1.ListOptions{})
		expectAPIStatus(t, "bob lists every secret through an export naming secrets", err, 403, "")
		_, err = discovery.NewDiscoveryClientForConfigOrDie(s.virtualConfig("carol-token", provider, "widgets", "*")).ServerGroups()
		expectAPIStatus(t, "carol, without apiexports/content, reads discovery", err, 403, "")
	})
}

// gizmosProvider is a second export of root:provider, of another group.
const gizmosProvider = `apiVersion: apis.kcp.io/v1alpha1
kind: APIResourceSchema
metadata:
  name: v1.gizmos.example.org
spec:
  group: example.org
  names: {plural: gizmos, singular: gizmo, kind: Gizmo, listKind: GizmoList}
  scope: Cluster
  versions:
  - {name: v1, served: true, storage: true, schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
---
apiVersion: apis.kcp.io/v1alpha2
kind: APIExport
metadata:
  name: gizmos
spec:
  resources:
  - {name: gizmos, group: example.org, schema: v1.gizmos.example.org}
`

// TestAPIExportEndpointSlice proves what an export's endpoint slice says, as a
// provider's controller reads it (kcp's multicluster provider watches it by
// name): no endpoint while no workspace binds the export, the URL of the
// export's virtual workspace once one does, none again once the last binding
// goes, and an invalid export once the export is gone. Only warren writes its
// status.
func TestAPIExportEndpointSlice(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		kcp := kcpClient(t, s)
		provider, _ := exportWidgets(t, s, kcp)
		s.makeWorkspace("root", "consumer", "")
		slices := kcp.ApisV1alpha1().APIExportEndpointSlices().Cluster(logicalcluster.NewPath("root:provider"))
		says := func(what string, want func(*apisv1alpha1.APIExportEndpointSlice) bool) {
			t.Helper()
			eventually(t, "the endpoint slice "+what, func() error {
				// As kcp's multicluster provider asks for it.
				list, err := slices.List(ctx, metav1.ListOptions{FieldSelector: "metadata.name=widgets"})
				if err != nil {
					return err
				}
				if len(list.Items) != 1 || !want(&list.Items[0]) {
					return fmt.Errorf("slices %s", jsonOf(list.Items))
				}
				return nil
			})
		}
		url := s.URL("/services/apiexport/" + provider + "/widgets")
		valid := func(e *apisv1alpha1.APIExportEndpointSlice) bool {
			return strings.Contains(jsonOf(e.Status.Conditions), `"type":"APIExportValid","status":"True"`) &&
				strings.Contains(jsonOf(e.Status.Conditions), `"type":"PartitionValid","status":"True"`)
		}
		says("lists no endpoint", func(e *apisv1alpha1.APIExportEndpointSlice) bool {
			return valid(e) && len(e.Status.APIExportEndpoints) == 0
		})
		bindProvider(t, s, kcp, "root:consumer", "widgets")
		says("lists the virtual workspace", func(e *apisv1alpha1.APIExportEndpointSlice) bool {
			return valid(e) && len(e.Status.APIExportEndpoints) == 1 && e.Status.APIExportEndpoints[0].URL == url
		})
		// Only warren writes the endpoints, to each of which a provider's
		// controller sends its credentials; not even the workspace's admin.
		s.kubectl("root:provider", "create", "clusterrolebinding", "alice-admin", "--clusterrole=cluster-admin", "--user=alice")
		alice := kcpClientFor(t, s, s.tokenConfig("alice-token", "root")).ApisV1alpha1().APIExportEndpointSlices().Cluster(logicalcluster.NewPath("root:provider"))
		var forged *apisv1alpha1.APIExportEndpointSlice
		eventually(t, "alice reads the endpoint slice", func() error {
			var err error
			forged, err = alice.Get(ctx, "widgets", metav1.GetOptions{})
			return err
		})
		forged.Status.APIExportEndpoints = append(forged.Status.APIExportEndpoints, apisv1alpha1.APIExportEndpoint{URL: "https://elsewhere.example"})
		_, err := alice.UpdateStatus(ctx, forged, metav1.UpdateOptions{})
		expectAPIStatus(t, "a workspace admin writes an endpoint slice's status", err, 403, "the status of apiexportendpointslices is written by warren's controllers")
		s.kubectl("root:consumer", "delete", "apibinding", "widgets", "--timeout=30s")
		says("lists no endpoint once nothing binds the export", func(e *apisv1alpha1.APIExportEndpointSlice) bool {
			return valid(e) && len(e.Status.APIExportEndpoints) == 0
		})
		s.kubectl("root:provider", "delete", "apiexport", "widgets")
		says("reports its export missing", func(e *apisv1alpha1.APIExportEndpointSlice) bool {
			return strings.Contains(jsonOf(e.Status.Conditions), `"reason":"APIExportNotFound","message":"Error getting APIExport root:provider|widgets"`)
		})
	})
}
