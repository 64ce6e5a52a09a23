package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"

	apisv1alpha1 "github.com/kcp-dev/sdk/apis/apis/v1alpha1"
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
		s.pipe(bindingManifest("widgets", "root:provider", "widgets"), "root:other", "apply", "-f", "-")
		waitBound(t, kcp, "root:other", "widgets")
		s.pipe(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: widgets-content}
rules: [{apiGroups: [apis.kcp.io], resources: [apiexports/content], resourceNames: [widgets], verbs: ["*"]}]
`, "root:provider", "create", "-f", "-")
		s.kubectl("root:provider", "create", "clusterrolebinding", "bob-serves-widgets", "--clusterrole=widgets-content", "--user=bob")
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
			config := s.tokenConfig(token, "root")
			config.Host = s.URL("/services/apiexport/" + provider + "/widgets/clusters/" + target)
			c, err := dynamic.NewForConfig(config)
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
		w, err := vw("bob-token", "*").Watch(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		widget("root:other", "b2")
		if ev := nextEvent(t, w); ev.Type != watch.Added || ev.Object.(*unstructured.Unstructured).GetName() != "b2" {
			t.Errorf("watching across consumers: got %s %v, want ADDED b2", ev.Type, ev.Object)
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
		if err := inConsumer.Delete(ctx, "a2", metav1.DeleteOptions{}); err != nil {
			t.Fatalf("bob deletes a widget of a consumer: %v", err)
		}

		// Nothing else.
		_, err = vw("carol-token", "*").List(ctx, metav1.ListOptions{})
		expectAPIStatus(t, "carol, without apiexports/content, lists", err, 403, `API export: "widgets"`)
		_, err = vw("bob-token", provider).Namespace("default").List(ctx, metav1.ListOptions{})
		expectAPIStatus(t, "bob lists in a cluster that binds nothing", err, 403, "could not find suitable APIBinding in target logical cluster")
		config := s.tokenConfig("bob-token", "root")
		config.Host = s.URL("/services/apiexport/" + provider + "/widgets/clusters/" + consumer)
		_, err = clientFor(t, config).CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
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

// TestAPIExportEndpointSlice proves what an export's endpoint slice says, as a
// provider's controller reads it (kcp's multicluster provider watches it by
// name): no endpoint while no workspace binds the export, the URL of the
// export's virtual workspace once one does, none again once the last binding
// goes, and an invalid export once the export is gone.
func TestAPIExportEndpointSlice(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		kcp := kcpClient(t, s)
		provider := s.makeWorkspace("root", "provider", "")
		s.makeWorkspace("root", "consumer", "")
		s.pipe(widgetsProvider(10), "root:provider", "apply", "-f", "-")
		identifiedExport(t, kcp.ApisV1alpha2().APIExports().Cluster(logicalcluster.NewPath("root:provider")), "widgets")
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
		s.pipe(bindingManifest("widgets", "root:provider", "widgets"), "root:consumer", "apply", "-f", "-")
		waitBound(t, kcp, "root:consumer", "widgets")
		says("lists the virtual workspace", func(e *apisv1alpha1.APIExportEndpointSlice) bool {
			return valid(e) && len(e.Status.APIExportEndpoints) == 1 && e.Status.APIExportEndpoints[0].URL == url
		})
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
