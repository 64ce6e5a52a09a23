package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
)

// claimsProvider exports widgets and claims configmaps and secrets.
const claimsProvider = `apiVersion: apis.kcp.io/v1alpha2
kind: APIExport
metadata:
  name: widgets
spec:
  resources:
  - {name: widgets, group: example.com, schema: v1.widgets.example.com}
  permissionClaims:
  - {group: "", resource: configmaps, verbs: [get, list, watch, create, update, patch]}
  - {group: "", resource: secrets, verbs: [get, list]}
`

// claimsBinding binds root:provider's widgets accepting or rejecting the
// claim of configmaps (verbs and selector, YAML) and rejecting secrets.
func claimsBinding(state, verbs, selector string) string {
	return `apiVersion: apis.kcp.io/v1alpha2
kind: APIBinding
metadata: {name: widgets}
spec:
  reference: {export: {path: "root:provider", name: widgets}}
  permissionClaims:
  - {group: "", resource: configmaps, verbs: ` + verbs + `, selector: ` + selector + `, state: ` + state + `}
  - {group: "", resource: secrets, verbs: [get, list], selector: {matchAll: true}, state: Rejected}
`
}

// TestPermissionClaims proves what an export's permission claims give its
// provider through the virtual workspace: the claimed built-in resources of
// each consumer that accepted the claim, only the objects its selector
// selects (objects entering and leaving the selection are added and deleted
// on the provider's watch), with the verbs both the export and the binding
// name; a label the selector requires is put on what the provider creates.
// Nothing of a consumer that rejected the claim or made none, nothing once a
// consumer rejects it. The bindings' status says what was applied, with
// kcp's conditions.
func TestPermissionClaims(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		kcp := kcpClient(t, s)
		provider := s.makeWorkspace("root", "provider", "")
		s.pipe(widgetsProvider(10), "root:provider", "apply", "-f", "-")
		s.pipe(claimsProvider, "root:provider", "apply", "-f", "-")
		identifiedExport(t, kcp.ApisV1alpha2().APIExports().Cluster(logicalcluster.NewPath("root:provider")), "widgets")
		a, b, c := s.makeWorkspace("root", "a", ""), s.makeWorkspace("root", "b", ""), s.makeWorkspace("root", "c", "")
		s.pipe(claimsBinding("Accepted", "[get, list, watch, create]", "{matchLabels: {app: shared}}"), "root:a", "apply", "-f", "-")
		s.pipe(claimsBinding("Accepted", "[get, list, watch, create, update, patch]", "{matchAll: true}"), "root:b", "apply", "-f", "-")
		s.pipe(bindingManifest("widgets", "root:provider", "widgets"), "root:c", "apply", "-f", "-")
		bindingA := waitBound(t, kcp, "root:a", "widgets")
		bindingB := waitBound(t, kcp, "root:b", "widgets")
		waitBound(t, kcp, "root:c", "widgets")
		if got := jsonOf(bindingA.Status.AppliedPermissionClaims); got != `[{"resource":"configmaps","verbs":["get","list","watch","create"],"selector":{"matchLabels":{"app":"shared"}}}]` {
			t.Errorf("a's applied claims: %s", got)
		}
		if len(bindingA.Status.ExportPermissionClaims) != 2 {
			t.Errorf("a's export claims: %s", jsonOf(bindingA.Status.ExportPermissionClaims))
		}
		for _, want := range []string{`"type":"PermissionClaimsApplied","status":"True"`, `"type":"PermissionClaimsValid","status":"False"`, `"reason":"PermissionClaimsMismatch"`} {
			if !strings.Contains(jsonOf(bindingA.Status.Conditions), want) {
				t.Errorf("a's conditions lack %s: %s", want, jsonOf(bindingA.Status.Conditions))
			}
		}
		if !strings.Contains(jsonOf(bindingB.Status.Conditions), `"type":"PermissionClaimsValid","status":"True"`) {
			t.Errorf("b's conditions: %s", jsonOf(bindingB.Status.Conditions))
		}
		grantContent(s, "bob", "widgets")
		configMap := func(cluster, name string, labels ...string) {
			t.Helper()
			args := []string{"create", "configmap", name}
			s.kubectl(cluster, args...)
			if len(labels) > 0 {
				s.kubectl(cluster, append([]string{"label", "configmap", name}, labels...)...)
			}
		}
		configMap("root:a", "shared-a", "app=shared")
		configMap("root:a", "private-a")
		configMap("root:b", "any-b")
		configMap("root:c", "c")

		vw := func(target string) typedcorev1.CoreV1Interface {
			return clientFor(t, s.virtualConfig("bob-token", provider, "widgets", target)).CoreV1()
		}
		mine := func(list *corev1.ConfigMapList) []string {
			var got []string
			for _, cm := range list.Items {
				if strings.HasSuffix(cm.Name, "-a") || strings.HasSuffix(cm.Name, "-b") || cm.Name == "c" || cm.Name == "made" {
					got = append(got, cm.Annotations["kcp.io/cluster"]+"/"+cm.Name)
				}
			}
			slices.Sort(got)
			return got
		}
		_, lists, err := discovery.NewDiscoveryClientForConfigOrDie(s.virtualConfig("bob-token", provider, "widgets", "*")).ServerGroupsAndResources()
		if err != nil {
			t.Fatal(err)
		}
		var resources []string
		for _, l := range lists {
			for _, r := range l.APIResources {
				if l.GroupVersion == "v1" {
					resources = append(resources, r.Name)
				}
			}
		}
		if slices.Sort(resources); !slices.Equal(resources, []string{"configmaps", "secrets"}) {
			t.Errorf("the virtual workspace's core resources: %v", resources)
		}
		var list *corev1.ConfigMapList
		eventually(t, "bob lists the claimed configmaps", func() error {
			var err error
			if list, err = vw("*").ConfigMaps("").List(ctx, metav1.ListOptions{}); err != nil {
				return err
			}
			if got, want := mine(list), sorted(a+"/shared-a", b+"/any-b"); !slices.Equal(got, want) {
				return fmt.Errorf("listed %v, want %v", got, want)
			}
			return nil
		})
		for _, cm := range list.Items {
			if cm.Annotations["kcp.io/cluster"] == c || cm.Annotations["kcp.io/cluster"] == a && cm.Name != "shared-a" {
				t.Errorf("bob sees %s/%s", cm.Annotations["kcp.io/cluster"], cm.Name)
			}
		}
		var w watch.Interface
		w, err = vw("*").ConfigMaps("").Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Stop()
		s.kubectl("root:a", "label", "configmap", "private-a", "app=shared")
		if ev := nextEvent(t, w); ev.Type != watch.Added || ev.Object.(*corev1.ConfigMap).Name != "private-a" {
			t.Errorf("a configmap entering the selection: %s %v", ev.Type, ev.Object)
		}
		s.kubectl("root:a", "label", "configmap", "shared-a", "app-")
		if ev := nextEvent(t, w); ev.Type != watch.Deleted || ev.Object.(*corev1.ConfigMap).Name != "shared-a" {
			t.Errorf("a configmap leaving the selection: %s %v", ev.Type, ev.Object)
		}

		// In one consumer: the verbs of both claims, the selected objects.
		inA := vw(a).ConfigMaps("default")
		if _, err := inA.Get(ctx, "private-a", metav1.GetOptions{}); err != nil {
			t.Errorf("bob gets a selected configmap: %v", err)
		}
		_, err = inA.Get(ctx, "shared-a", metav1.GetOptions{})
		expectAPIStatus(t, "bob gets a configmap the selector leaves out", err, 404, "")
		made, err := inA.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "made"}}, metav1.CreateOptions{})
		if err != nil || made.Labels["app"] != "shared" {
			t.Errorf("bob creates a configmap in a: %v %v", err, made)
		}
		_, err = inA.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other", Labels: map[string]string{"app": "other"}}}, metav1.CreateOptions{})
		expectAPIStatus(t, "bob creates a configmap with another value of the selector's label", err, 403, "protected label app must have value shared")
		_, err = inA.Update(ctx, made, metav1.UpdateOptions{})
		expectAPIStatus(t, "bob updates in a, whose binding did not grant update", err, 403, "")
		if _, err := vw(b).ConfigMaps("default").Update(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "any-b"}, Data: map[string]string{"k": "v"}}, metav1.UpdateOptions{}); err != nil {
			t.Errorf("bob updates in b: %v", err)
		}
		applied := []byte(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"applied-b"},"data":{"k":"v"}}`)
		if _, err := vw(b).ConfigMaps("default").Patch(ctx, "applied-b", types.ApplyPatchType, applied, metav1.PatchOptions{FieldManager: "provider"}); err != nil {
			t.Errorf("bob creates a configmap in b server-side: %v", err)
		}
		_, err = vw(a).Secrets("default").List(ctx, metav1.ListOptions{})
		expectAPIStatus(t, "bob lists the secrets a rejected", err, 403, "")
		_, err = vw(c).ConfigMaps("default").List(ctx, metav1.ListOptions{})
		expectAPIStatus(t, "bob lists the configmaps of c, which accepted nothing", err, 403, "")
		_, err = vw("*").ConfigMaps("").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "x"}}, metav1.CreateOptions{})
		if err == nil {
			t.Error("bob creates across clusters")
		}

		// b rejects the claim: bob's watch ends, may not resume from before,
		// and bob sees nothing of b any more.
		s.pipe(claimsBinding("Rejected", "[get, list, watch, create, update, patch]", "{matchAll: true}"), "root:b", "apply", "-f", "-")
		ended := time.After(20 * time.Second)
	drain:
		for {
			select {
			case _, open := <-w.ResultChan():
				if !open {
					break drain
				}
			case <-ended:
				t.Fatal("bob's watch goes on after b rejected the claim")
			}
		}
		_, err = vw("*").ConfigMaps("").Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
		expectAPIStatus(t, "bob resumes a watch from before the claim was rejected", err, 410, "permission claims changed")
		eventually(t, "b's configmaps gone from bob's view", func() error {
			if _, err := vw(b).ConfigMaps("default").List(ctx, metav1.ListOptions{}); err == nil {
				return fmt.Errorf("bob still lists in b")
			}
			list, err := vw("*").ConfigMaps("").List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			if got, want := mine(list), sorted(a+"/made", a+"/private-a"); !slices.Equal(got, want) {
				return fmt.Errorf("listed %v, want %v", got, want)
			}
			return nil
		})
	})
}

func sorted(s ...string) []string {
	slices.Sort(s)
	return s
}

// TestPermissionClaimsOfExports claims another export's resource by its
// identity hash: the provider of the claiming export reaches, through its
// virtual workspace, the widgets of the consumers that bound both exports and
// accepted the claim, with the claim's verbs, and nothing of a consumer that
// bound only the widgets.
func TestPermissionClaimsOfExports(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		kcp := kcpClient(t, s)
		_, consumer, export, _ := bindWidgets(t, s, kcp)
		s.makeWorkspace("root", "other", "")
		bindProvider(t, s, kcp, "root:other", "widgets")
		identity := export.Status.IdentityHash
		s.pipe(`apiVersion: apis.kcp.io/v1alpha2
kind: APIExport
metadata: {name: auditor}
spec:
  permissionClaims:
  - {group: example.com, resource: widgets, identityHash: `+identity+`, verbs: [get, list, watch]}
`, "root:provider", "apply", "-f", "-")
		auditor := identifiedExport(t, kcp.ApisV1alpha2().APIExports().Cluster(logicalcluster.NewPath("root:provider")), "auditor")
		s.pipe(`apiVersion: apis.kcp.io/v1alpha2
kind: APIBinding
metadata: {name: auditor}
spec:
  reference: {export: {path: "root:provider", name: auditor}}
  permissionClaims:
  - {group: example.com, resource: widgets, identityHash: `+identity+`, verbs: [get, list, watch], selector: {matchAll: true}, state: Accepted}
`, "root:consumer", "apply", "-f", "-")
		b := waitBound(t, kcp, "root:consumer", "auditor")
		if !strings.Contains(jsonOf(b.Status.Conditions), `"type":"PermissionClaimsValid","status":"True"`) || len(b.Status.AppliedPermissionClaims) != 1 {
			t.Errorf("the auditor's binding: %s", jsonOf(b.Status))
		}
		for _, cluster := range []string{"root:consumer", "root:other"} {
			eventually(t, cluster+": a widget", func() error {
				out, err := s.kubectlIn("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w, namespace: default}\nspec: {size: 2}\n", cluster, "apply", "-f", "-")
				if err != nil {
					return fmt.Errorf("%v: %s", err, out)
				}
				return nil
			})
		}
		grantContent(s, "carol", "auditor")
		vw := func(target string) dynamic.NamespaceableResourceInterface {
			c, err := dynamic.NewForConfig(s.virtualConfig("carol-token", auditor.Annotations["kcp.io/cluster"], "auditor", target))
			if err != nil {
				t.Fatal(err)
			}
			return c.Resource(schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"})
		}
		eventually(t, "carol lists the claimed widgets", func() error {
			list, err := vw("*").List(ctx, metav1.ListOptions{})
			if err != nil {
				return err
			}
			var got []string
			for _, item := range list.Items {
				got = append(got, item.GetAnnotations()["kcp.io/cluster"]+"/"+item.GetName())
			}
			if want := []string{consumer + "/w"}; !slices.Equal(got, want) {
				return fmt.Errorf("listed %v, want %v", got, want)
			}
			return nil
		})
		w, err := vw(consumer).Namespace("default").Get(ctx, "w", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("carol gets the consumer's widget: %v", err)
		}
		_, err = vw(consumer).Namespace("default").Update(ctx, w, metav1.UpdateOptions{})
		expectAPIStatus(t, "carol updates a widget, a verb the claim lacks", err, 403, "")
		dc := discovery.NewDiscoveryClientForConfigOrDie(s.virtualConfig("carol-token", auditor.Annotations["kcp.io/cluster"], "auditor", consumer))
		if resources, err := dc.ServerResourcesForGroupVersion("example.com/v1"); err != nil || len(resources.APIResources) == 0 || resources.APIResources[0].Name != "widgets" {
			t.Errorf("the auditor's virtual workspace discovers %v: %v", resources, err)
		}
	})
}
