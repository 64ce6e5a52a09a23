package e2e

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"

	apisv1alpha1 "github.com/kcp-dev/sdk/apis/apis/v1alpha1"
	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"
	conditionsv1alpha1 "github.com/kcp-dev/sdk/apis/third_party/conditions/apis/conditions/v1alpha1"
	kcpclientset "github.com/kcp-dev/sdk/client/clientset/versioned/cluster"
)

// kcpClient is kcp's generated cluster-aware clientset for s, speaking JSON as
// kcp's clients do (kcp's types have no protobuf form).
func kcpClient(t *testing.T, s *server) kcpclientset.ClusterInterface {
	t.Helper()
	config := rest.CopyConfig(s.Config("root"))
	config.Host = s.URL("")
	config.ContentType, config.AcceptContentTypes = runtime.ContentTypeJSON, runtime.ContentTypeJSON
	kcp, err := kcpclientset.NewForConfig(config)
	if err != nil {
		t.Fatal(err)
	}
	return kcp
}

// TestAPIsGroupServed proves that apis.kcp.io is served in every workspace as
// kcp serves it: APIExports and APIBindings in v1alpha2 (preferred) and
// v1alpha1, APIResourceSchemas and APIExportEndpointSlices in v1alpha1, all
// cluster-scoped, in category kcp, with their OpenAPI for kubectl explain.
func TestAPIsGroupServed(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		s.makeWorkspace("root", "team", "")
		for _, path := range []string{"root", "root:team"} {
			s.expectLines(path, []string{
				"apibindings apis.kcp.io/v1alpha2 false APIBinding",
				"apiexportendpointslices apis.kcp.io/v1alpha1 false APIExportEndpointSlice",
				"apiexports apis.kcp.io/v1alpha2 false APIExport",
				"apiresourceschemas apis.kcp.io/v1alpha1 false APIResourceSchema",
			}, "api-resources", "--api-group=apis.kcp.io", "--no-headers")
			group := s.kubectl(path, "get", "--raw", "/apis/apis.kcp.io")
			if !strings.Contains(group, `"preferredVersion":{"groupVersion":"apis.kcp.io/v1alpha2"`) || !strings.Contains(group, `"groupVersion":"apis.kcp.io/v1alpha1"`) {
				t.Errorf("%s: /apis/apis.kcp.io = %s, want v1alpha2 preferred and v1alpha1 served", path, group)
			}
			for _, resource := range []string{"apibindings", "apiexports"} {
				v1 := s.kubectl(path, "get", "--raw", "/apis/apis.kcp.io/v1alpha1")
				if !strings.Contains(v1, `"name":"`+resource+`"`) || !strings.Contains(v1, `"name":"`+resource+`/status"`) {
					t.Errorf("%s: v1alpha1 lacks %s or its status: %s", path, resource, v1)
				}
			}
		}
		if out := s.kubectl("root", "explain", "apiexports.spec.resources"); !strings.Contains(out, "VERSION:    v1alpha2") || !strings.Contains(out, "schema") {
			t.Errorf("explain apiexports.spec.resources:\n%s", out)
		}
		if out := s.kubectl("root", "explain", "apiexports.spec", "--api-version=apis.kcp.io/v1alpha1"); !strings.Contains(out, "latestResourceSchemas") {
			t.Errorf("explain of v1alpha1 apiexports.spec lacks latestResourceSchemas:\n%s", out)
		}
		s.pipe(apiExportV1alpha1, "root", "apply", "--server-side", "-f", "-")
		if out := s.kubectl("root", "get", "kcp", "-o", "name"); !strings.Contains(out, "apiexport.apis.kcp.io/widgets\n") {
			t.Errorf("kubectl get kcp lists no APIExport:\n%s", out)
		}
	})
}

// apiExportV1alpha1 is an export written as a kcp user of v1alpha1 writes it.
const apiExportV1alpha1 = `apiVersion: apis.kcp.io/v1alpha1
kind: APIExport
metadata:
  name: widgets
spec:
  latestResourceSchemas: ["v1.widgets.example.com"]
  permissionClaims:
  - group: ""
    resource: configmaps
    all: true
`

// TestAPIsConversion writes APIExports and APIBindings in one version and reads
// them in the other through kcp's clientset: the sdk's conversions apply both
// ways, and what only v1alpha2 can say survives a round trip through v1alpha1.
func TestAPIsConversion(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		kcp := kcpClient(t, s)
		root := logicalcluster.NewPath("root")
		s.pipe(apiExportV1alpha1, "root", "apply", "-f", "-")
		export, err := kcp.ApisV1alpha2().APIExports().Cluster(root).Get(ctx, "widgets", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		wantResources := []apisv1alpha2.ResourceSchema{{Name: "widgets", Group: "example.com", Schema: "v1.widgets.example.com",
			Storage: apisv1alpha2.ResourceSchemaStorage{CRD: &apisv1alpha2.ResourceSchemaStorageCRD{}}}}
		if got := export.Spec.Resources; !jsonEqual(got, wantResources) {
			t.Errorf("v1alpha2 resources = %s, want %s", jsonOf(got), jsonOf(wantResources))
		}
		if claims := export.Spec.PermissionClaims; len(claims) != 1 || claims[0].Resource != "configmaps" || !slices.Equal(claims[0].Verbs, []string{"*"}) {
			t.Errorf("v1alpha2 claims = %s, want configmaps with verbs [*]", jsonOf(claims))
		}

		// Verbs other than "*" and a default selector exist only in v1alpha2:
		// v1alpha1 carries them in kcp's annotation.
		export.Spec.PermissionClaims[0].Verbs = []string{"get", "list"}
		export.Spec.PermissionClaims[0].DefaultSelector = &apisv1alpha2.PermissionClaimSelector{
			LabelSelector: metav1.LabelSelector{MatchLabels: map[string]string{"env": "prod"}}}
		if _, err := kcp.ApisV1alpha2().APIExports().Cluster(root).Update(ctx, export, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		old, err := kcp.ApisV1alpha1().APIExports().Cluster(root).Get(ctx, "widgets", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(old.Spec.LatestResourceSchemas, []string{"v1.widgets.example.com"}) {
			t.Errorf("v1alpha1 latestResourceSchemas = %v", old.Spec.LatestResourceSchemas)
		}
		old.Labels = map[string]string{"touched": "v1alpha1"}
		if _, err := kcp.ApisV1alpha1().APIExports().Cluster(root).Update(ctx, old, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		again, err := kcp.ApisV1alpha2().APIExports().Cluster(root).Get(ctx, "widgets", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := again.Spec.PermissionClaims; len(got) != 1 || !slices.Equal(got[0].Verbs, []string{"get", "list"}) ||
			got[0].DefaultSelector == nil || got[0].DefaultSelector.MatchLabels["env"] != "prod" {
			t.Errorf("after an update through v1alpha1 the v1alpha2 claims are %s, want the verbs and the selector kept", jsonOf(got))
		}
		if again.Labels["touched"] != "v1alpha1" {
			t.Errorf("the update through v1alpha1 was lost: labels %v", again.Labels)
		}

		binding := &apisv1alpha1.APIBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "widgets"},
			Spec: apisv1alpha1.APIBindingSpec{
				Reference: apisv1alpha1.BindingReference{Export: &apisv1alpha1.ExportBindingReference{Path: "root", Name: "widgets"}},
				PermissionClaims: []apisv1alpha1.AcceptablePermissionClaim{{
					PermissionClaim: apisv1alpha1.PermissionClaim{GroupResource: apisv1alpha1.GroupResource{Resource: "configmaps"}, All: true},
					State:           apisv1alpha1.ClaimAccepted,
				}},
			},
		}
		if _, err := kcp.ApisV1alpha1().APIBindings().Cluster(root).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		b, err := kcp.ApisV1alpha2().APIBindings().Cluster(root).Get(ctx, "widgets", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ref := b.Spec.Reference.Export; ref == nil || ref.Path != "root" || ref.Name != "widgets" {
			t.Errorf("v1alpha2 reference = %s", jsonOf(b.Spec.Reference))
		}
		if c := b.Spec.PermissionClaims; len(c) != 1 || c[0].State != apisv1alpha2.ClaimAccepted || !c[0].Selector.MatchAll {
			t.Errorf("v1alpha2 claims = %s, want configmaps accepted with matchAll", jsonOf(c))
		}
	})
}

// TestAPIsValidation proves the rules of kcp's CRDs for the four types, as
// 422 errors with field paths and kcp's messages.
func TestAPIsValidation(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		s.pipe(apiExportV1alpha1, "root", "apply", "-f", "-")
		s.pipe(bindingManifest("widgets", "root", "widgets"), "root", "apply", "-f", "-")
		s.refused("", "root", `spec.reference: Invalid value: "object": APIExport reference must not be changed`,
			"patch", "apibinding", "widgets", "--type=merge", "-p", `{"spec":{"reference":{"export":{"name":"gadgets"}}}}`)
		s.refused(bindingManifest("nothing", "", ""), "root", "spec.reference.export.name: Required value", "apply", "-f", "-")
		s.refused("", "root", `spec.permissionClaims[0].selector: Required value: either one of matchAll, matchLabels, or matchExpressions must be set`,
			"patch", "apibinding", "widgets", "--type=merge", "-p", `{"spec":{"permissionClaims":[{"resource":"secrets","verbs":["get"],"state":"Accepted","selector":{}}]}}`)
		s.refused("", "root", `spec.permissionClaims[0].state: Unsupported value: "Maybe"`,
			"patch", "apibinding", "widgets", "--type=merge", "-p", `{"spec":{"permissionClaims":[{"resource":"secrets","verbs":["get"],"state":"Maybe","selector":{"matchAll":true}}]}}`)
		s.refused("", "root", `spec.resources[0].storage.virtual: Forbidden`,
			"patch", "apiexports.v1alpha2.apis.kcp.io", "widgets", "--type=json", "-p",
			`[{"op":"replace","path":"/spec/resources/0/storage","value":{"virtual":{"reference":{"kind":"Thing","name":"x"},"identityHash":"abc"}}}]`)
		s.refused(`apiVersion: apis.kcp.io/v1alpha1
kind: APIResourceSchema
metadata:
  name: v1.gadgets.example.com
spec:
  group: example.com
  names: {plural: gadgets, kind: Gadget}
  scope: Somewhere
  versions: [{name: v1, served: true, storage: true, schema: {type: object}}, {name: v2, served: true, storage: false, schema: {type: object}}]
`, "root", `spec.scope: Unsupported value: "Somewhere"`, "apply", "-f", "-")
		s.refused(`apiVersion: apis.kcp.io/v1alpha1
kind: APIResourceSchema
metadata:
  name: v1.gadgets.example.com
spec:
  group: example.com
  names: {plural: gadgets, kind: Gadget}
  scope: Cluster
  versions: [{name: v1, served: true, storage: true, schema: {type: object}}, {name: v2, served: true, storage: false, schema: {type: object}}]
`, "root", "Conversion must be specified when multiple versions exist", "apply", "-f", "-")
		s.refused(`apiVersion: apis.kcp.io/v1alpha1
kind: APIExportEndpointSlice
metadata:
  name: nowhere
spec:
  export: {path: root}
`, "root", "spec.export.name: Required value", "apply", "-f", "-")
		s.pipe(`apiVersion: apis.kcp.io/v1alpha1
kind: APIExportEndpointSlice
metadata:
  name: widgets
spec:
  export: {path: root, name: widgets}
`, "root", "apply", "-f", "-")
		s.refused("", "root", `spec.export: Invalid value: "object": APIExport reference must not be changed`,
			"patch", "apiexportendpointslice", "widgets", "--type=merge", "-p", `{"spec":{"export":{"name":"gadgets"}}}`)
		s.expectLines("root", []string{"widgets widgets"}, "get", "apiexportendpointslices", "--no-headers", "-o", "custom-columns=N:.metadata.name,E:.spec.export.name")
	})
}

// bindingManifest is the v1alpha2 APIBinding name of the export at path.
func bindingManifest(name, path, export string) string {
	return `apiVersion: apis.kcp.io/v1alpha2
kind: APIBinding
metadata:
  name: ` + name + `
spec:
  reference:
    export:
      path: "` + path + `"
      name: "` + export + `"
`
}

// TestAPIsStatusSubresource proves that status is a subresource, as kcp's CRDs
// declare it: an update of an object keeps its status, an update of its status
// keeps the rest; objects of one workspace are not another's, and the admin
// lists them across workspaces with their kcp.io/cluster.
func TestAPIsStatusSubresource(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		team := s.makeWorkspace("root", "team", "")
		kcp := kcpClient(t, s)
		bindings := kcp.ApisV1alpha2().APIBindings()
		for _, path := range []string{"root", "root:team"} {
			s.pipe(bindingManifest("widgets", "root", "widgets"), path, "apply", "-f", "-")
		}
		b, err := bindings.Cluster(logicalcluster.NewPath("root:team")).Get(ctx, "widgets", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b.Status.Phase = apisv1alpha2.APIBindingPhaseBound
		b.Status.Conditions = conditionsv1alpha1.Conditions{{Type: conditionsv1alpha1.ReadyCondition, Status: "True", LastTransitionTime: metav1.Now()}}
		b.Spec.Reference.Export.Path = "root:elsewhere" // ignored by a status update
		if b, err = bindings.Cluster(logicalcluster.NewPath("root:team")).UpdateStatus(ctx, b, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if b.Status.Phase != apisv1alpha2.APIBindingPhaseBound || b.Spec.Reference.Export.Path != "root" {
			t.Errorf("after a status update: phase %q, reference %s", b.Status.Phase, jsonOf(b.Spec.Reference))
		}
		b.Status.Phase = ""
		b.Labels = map[string]string{"kept": "yes"}
		if b, err = bindings.Cluster(logicalcluster.NewPath("root:team")).Update(ctx, b, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if b.Status.Phase != apisv1alpha2.APIBindingPhaseBound || b.Labels["kept"] != "yes" {
			t.Errorf("after an update: phase %q, labels %v; want the phase kept and the label written", b.Status.Phase, b.Labels)
		}
		b.Status.Phase = ""
		if _, err := bindings.Cluster(logicalcluster.NewPath("root:team")).UpdateStatus(ctx, b, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), `status.phase: Forbidden: cannot transition from "Bound" to ""`) {
			t.Errorf("a status update from Bound to no phase: got %v, want kcp's 422", err)
		}
		s.expectLines("root:team", []string{"widgets True"}, "get", "apibindings", "--no-headers", "-o", "custom-columns=N:.metadata.name,R:.status.conditions[0].status")
		if out := s.kubectl("root:team", "get", "apibindings"); !strings.Contains(out, "READY") || !strings.Contains(out, "True") {
			t.Errorf("kubectl get apibindings shows no Ready column:\n%s", out)
		}
		root, err := bindings.Cluster(logicalcluster.NewPath("root")).Get(ctx, "widgets", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if root.Status.Phase != "" {
			t.Errorf("root's binding has the phase %q that only root:team's was given", root.Status.Phase)
		}
		all, err := bindings.List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var clusters []string
		for _, item := range all.Items {
			clusters = append(clusters, item.Annotations["kcp.io/cluster"])
		}
		want := []string{"root", team}
		slices.Sort(clusters)
		slices.Sort(want)
		if !slices.Equal(clusters, want) {
			t.Errorf("the bindings across workspaces are in %v, want %v", clusters, want)
		}
	})
}

// expectLines fails the test unless kubectl prints the lines of want, each a
// row of words however kubectl aligns them.
func (s *server) expectLines(cluster string, want []string, args ...string) {
	s.t.Helper()
	var got []string
	for line := range strings.Lines(s.kubectl(cluster, args...)) {
		got = append(got, strings.Join(strings.Fields(line), " "))
	}
	if !slices.Equal(got, want) {
		s.t.Errorf("%s: kubectl %s = %q, want %q", cluster, strings.Join(args, " "), got, want)
	}
}

func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func jsonEqual(a, b any) bool { return jsonOf(a) == jsonOf(b) }
