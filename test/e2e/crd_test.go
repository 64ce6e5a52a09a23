package e2e

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
)

// Every CRD of these tests is named widgets.example.com: the point is that the
// same name means a different API in each logical cluster.
const crdName = "widgets.example.com"

var (
	widgetsGVR = schema.GroupVersionResource{Group: "example.com", Version: "v1", Resource: "widgets"}
	crdsGVR    = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
)

// widgetsV1 is the start of most CRDs of these tests: widgets.example.com, its
// names and a served storage version v1, whose fields follow.
const widgetsV1 = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
`

// sizedWidgets is cluster a's Widget: a size with a minimum and a default, and
// a color from an enum.
const sizedWidgets = widgetsV1 + `    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, minimum: 1, default: 3}
              color: {type: string, enum: [red, blue]}
`

// ownedWidgets is cluster b's Widget: same name, unrelated schema.
const ownedWidgets = widgetsV1 + `    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [owner]
            properties:
              owner: {type: string}
              replicas: {type: integer, default: 1}
`

// scaledWidgets has status and scale subresources and printer columns, one of
// them only in the wide output.
const scaledWidgets = widgetsV1 + `    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Color, type: string, jsonPath: .spec.color}
    - {name: Replicas, type: integer, jsonPath: .status.replicas, priority: 1}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              color: {type: string}
              replicas: {type: integer}
          status:
            type: object
            properties:
              replicas: {type: integer}
`

// rangeSchema is a version's schema with a CEL rule across two fields. Both are
// required: the rule would fail on a missing key otherwise.
const rangeSchema = `    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [min, max]
            x-kubernetes-validations:
            - {rule: "self.min <= self.max", message: "min must not exceed max"}
            properties:
              min: {type: integer}
              max: {type: integer}
`

const rangeWidgetsV1 = widgetsV1 + rangeSchema

// rangeWidgetsV1V2 adds a served v2 with the same schema; v1 stays the storage
// version and conversion stays None.
const rangeWidgetsV1V2 = rangeWidgetsV1 + `  - name: v2
    served: true
    storage: false
` + rangeSchema

// widgetsInGroup is a CRD in the group %[1]s. It carries the approval
// annotation that Kubernetes asks of *.k8s.io groups, so that only the group
// itself can be the reason of a refusal.
const widgetsInGroup = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.%[1]s
  annotations: {api-approved.kubernetes.io: "unapproved, testing only"}
spec:
  group: %[1]s
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object}}
`

// widget is an example.com/v1 Widget without a namespace, so that kubectl's -n
// (or the default namespace) places it; spec is YAML flow.
func widget(name, spec string) string {
	return widgetAt("example.com/v1", name, spec)
}

func widgetAt(apiVersion, name, spec string) string {
	return "apiVersion: " + apiVersion + "\nkind: Widget\nmetadata: {name: " + name + "}\nspec: " + spec + "\n"
}

// TestCRDIsolation defines widgets.example.com in two clusters with unrelated
// schemas: each cluster validates, defaults, prunes, lists, discovers and
// explains by its own definition, and a third cluster has no widgets at all.
func TestCRDIsolation(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *server) {
		a, b, none := "crd-iso-a", "crd-iso-b", "crd-iso-none"
		s.establish(a, sizedWidgets)
		s.establish(b, ownedWidgets)

		for _, cluster := range []string{a, b} {
			s.expect(cluster, crdName+"\n", "api-resources", "--api-group=example.com", "-o", "name")
		}
		s.expect(none, "", "api-resources", "--api-group=example.com", "-o", "name")
		s.refused("", none, `the server doesn't have a resource type "widgets"`, "get", "widgets")

		// a: minimum, enum, default, and the three ways of meeting an unknown field.
		s.refused(widget("tiny", "{size: 0}"), a, "spec.size: Invalid value: 0", "create", "-f", "-")
		s.refused(widget("green", "{color: green}"), a, `spec.color: Unsupported value: "green"`, "create", "-f", "-")
		s.pipe(widget("defaulted", "{color: red}"), a, "create", "-f", "-")
		s.expect(a, "3", "get", "widget", "defaulted", "-o", "jsonpath={.spec.size}")
		s.pipe(widget("pruned", "{size: 2, bogus: x}"), a, "create", "--validate=false", "-f", "-")
		s.expect(a, `{"size":2}`, "get", "widget", "pruned", "-o", "jsonpath={.spec}")
		if out := s.pipe(widget("warned", "{size: 2, bogus: x}"), a, "create", "--validate=warn", "-f", "-"); !strings.Contains(out, `unknown field "spec.bogus"`) {
			t.Errorf("--validate=warn printed no warning of spec.bogus:\n%s", out)
		}
		s.expect(a, `{"size":2}`, "get", "widget", "warned", "-o", "jsonpath={.spec}")
		s.refused(widget("strict", "{size: 2, bogus: x}"), a, `unknown field "spec.bogus"`, "create", "--validate=strict", "-f", "-")
		s.refused("", a, `"strict" not found`, "get", "widget", "strict")

		// b: required, default.
		s.refused(widget("ownerless", "{replicas: 2}"), b, "spec.owner: Required value", "create", "-f", "-")
		s.pipe(widget("defaulted", "{owner: me}"), b, "create", "-f", "-")
		s.expect(b, "1", "get", "widget", "defaulted", "-o", "jsonpath={.spec.replicas}")
		s.pipe(widget("b-only", "{owner: you}"), b, "create", "-f", "-")

		// What one cluster's Widget accepts the other's refuses, both ways.
		aSpec, bSpec := "{size: 2, color: blue}", "{owner: me, replicas: 2}"
		s.pipe(widget("valid", aSpec), a, "create", "--validate=strict", "-f", "-")
		s.pipe(widget("valid", bSpec), b, "create", "--validate=strict", "-f", "-")
		s.refused(widget("from-a", aSpec), b, `unknown field "spec.size"`, "create", "--validate=strict", "-f", "-")
		s.refused(widget("from-a", aSpec), b, "spec.owner: Required value", "create", "--validate=false", "-f", "-")
		s.refused(widget("from-b", bSpec), a, `unknown field "spec.owner"`, "create", "--validate=strict", "-f", "-")
		s.expect(a, `{"color":"blue","size":2}`, "get", "widget", "valid", "-o", "jsonpath={.spec}")
		s.expect(b, `{"owner":"me","replicas":2}`, "get", "widget", "valid", "-o", "jsonpath={.spec}")

		// Each cluster lists its own widgets only.
		s.expectNames(a, []string{"defaulted", "pruned", "valid", "warned"}, "get", "widgets", "-o", "jsonpath={.items[*].metadata.name}")
		s.expectNames(b, []string{"b-only", "defaulted", "valid"}, "get", "widgets", "-o", "jsonpath={.items[*].metadata.name}")
		s.refused("", a, `"b-only" not found`, "get", "widget", "b-only")

		// kubectl explain reads each cluster's OpenAPI.
		for cluster, want := range map[string][]string{a: {"color", "size"}, b: {"owner", "replicas"}} {
			out := s.kubectl(cluster, "explain", "widget.spec")
			if got := explainedFields(out); !slices.Equal(got, want) {
				t.Errorf("%s: explain widget.spec lists fields %v, want %v:\n%s", cluster, got, want, out)
			}
		}
	})
}

// TestCRDSubresourcesAndColumns checks a CRD's printer columns and its status
// and scale subresources: the main resource ignores status, the status
// subresource ignores everything else, and scale maps onto the declared paths.
func TestCRDSubresourcesAndColumns(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *server) {
		c := "crd-sub"
		s.establish(c, scaledWidgets)

		resources, err := discoveryFor(t, s, c).ServerResourcesForGroupVersion("example.com/v1")
		if err != nil {
			t.Fatalf("discovery of example.com/v1: %v", err)
		}
		var names []string
		for _, r := range resources.APIResources {
			names = append(names, r.Name)
			if r.Name == "widgets/scale" && (r.Group != "autoscaling" || r.Version != "v1" || r.Kind != "Scale") {
				t.Errorf("widgets/scale is discovered as %s/%s %s, want autoscaling/v1 Scale", r.Group, r.Version, r.Kind)
			}
		}
		slices.Sort(names)
		if want := []string{"widgets", "widgets/scale", "widgets/status"}; !slices.Equal(names, want) {
			t.Errorf("example.com/v1 resources = %v, want %v", names, want)
		}

		s.pipe(widget("x", "{size: 4, color: blue, replicas: 1}"), c, "create", "-f", "-")
		table := s.kubectl(c, "get", "widgets")
		header, row := tableRow(t, table, "x")
		if want := []string{"NAME", "SIZE", "COLOR"}; !slices.Equal(header, want) {
			t.Errorf("table columns = %v, want %v:\n%s", header, want, table)
		}
		if row["SIZE"] != "4" || row["COLOR"] != "blue" {
			t.Errorf("row of x = %v, want SIZE 4 and COLOR blue:\n%s", row, table)
		}
		s.expect(c, "1", "get", "widget", "x", "-o", "jsonpath={.metadata.generation}")

		// Scale writes the spec path; spec changes move the generation.
		s.kubectl(c, "scale", "widget/x", "--replicas=5")
		s.expect(c, "5/2", "get", "widget", "x", "-o", "jsonpath={.spec.replicas}/{.metadata.generation}")

		// The status subresource writes status and ignores spec.
		s.kubectl(c, "patch", "widget", "x", "--subresource=status", "--type=merge", "-p", `{"status":{"replicas":2},"spec":{"replicas":7}}`)
		s.expect(c, "5/2/2", "get", "widget", "x", "-o", "jsonpath={.spec.replicas}/{.status.replicas}/{.metadata.generation}")
		// The main resource ignores status.
		s.kubectl(c, "patch", "widget", "x", "--type=merge", "-p", `{"status":{"replicas":9}}`)
		s.expect(c, "2", "get", "widget", "x", "-o", "jsonpath={.status.replicas}")
		s.expect(c, "2", "get", "widget", "x", "--subresource=status", "-o", "jsonpath={.status.replicas}")
		s.expect(c, "autoscaling/v1 Scale 5 2", "get", "widget", "x", "--subresource=scale", "-o", "jsonpath={.apiVersion} {.kind} {.spec.replicas} {.status.replicas}")
		s.expect(c, "2", "get", "widget", "x", "-o", "jsonpath={.metadata.generation}")

		// The priority-1 column shows in the wide output only.
		table = s.kubectl(c, "get", "widgets", "-o", "wide")
		header, row = tableRow(t, table, "x")
		if want := []string{"NAME", "SIZE", "COLOR", "REPLICAS"}; !slices.Equal(header, want) {
			t.Errorf("wide table columns = %v, want %v:\n%s", header, want, table)
		}
		if row["REPLICAS"] != "2" {
			t.Errorf("wide row of x = %v, want REPLICAS 2:\n%s", row, table)
		}
	})
}

// TestCRDVersionsApplyAndCEL checks CEL validation rules, server-side apply
// with field managers on custom resources, and serving a second version
// (conversion None) added to a CRD that already has objects.
func TestCRDVersionsApplyAndCEL(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *server) {
		c := "crd-ver"
		s.establish(c, rangeWidgetsV1)

		// CEL, on create and on update.
		s.refused(widget("inverted", "{min: 5, max: 1}"), c, "min must not exceed max", "create", "-f", "-")
		s.refused("", c, `"inverted" not found`, "get", "widget", "inverted")
		s.pipe(widget("old", "{min: 1, max: 2}"), c, "create", "-f", "-")
		s.refused("", c, "min must not exceed max", "patch", "widget", "old", "--type=merge", "-p", `{"spec":{"min":9}}`)
		s.expect(c, "1", "get", "widget", "old", "-o", "jsonpath={.spec.min}")

		// Server-side apply: ownership, conflict, forced takeover.
		first, second := widget("applied", "{min: 1, max: 5}"), widget("applied", "{min: 2, max: 5}")
		s.pipe(first, c, "apply", "--server-side", "--field-manager=m1", "-f", "-")
		s.expectNames(c, []string{"m1"}, "get", "widget", "applied", "-o", "jsonpath={.metadata.managedFields[*].manager}")
		s.pipe(first, c, "apply", "--server-side", "--field-manager=m1", "-f", "-")
		s.refused(second, c, `conflict with "m1": .spec.min`, "apply", "--server-side", "--field-manager=m2", "-f", "-")
		s.expect(c, "1", "get", "widget", "applied", "-o", "jsonpath={.spec.min}")
		s.pipe(second, c, "apply", "--server-side", "--field-manager=m2", "--force-conflicts", "-f", "-")
		s.expect(c, "2", "get", "widget", "applied", "-o", "jsonpath={.spec.min}")
		s.expectNames(c, []string{"m1", "m2"}, "get", "widget", "applied", "-o", "jsonpath={.metadata.managedFields[*].manager}")
		m1 := s.kubectl(c, "get", "widget", "applied", "-o", `jsonpath={.metadata.managedFields[?(@.manager=="m1")].fieldsV1}`)
		if !strings.Contains(m1, `"f:max"`) || strings.Contains(m1, `"f:min"`) {
			t.Errorf("after m2 forced .spec.min, m1 should own .spec.max and not .spec.min: %s", m1)
		}
		s.refused(widget("applied", "{min: 9, max: 5}"), c, "min must not exceed max", "apply", "--server-side", "--field-manager=m2", "--force-conflicts", "-f", "-")

		// A second served version, same schema, no conversion.
		s.establish(c, rangeWidgetsV1V2)
		eventually(t, "example.com/v2 in discovery", func() error {
			out, err := s.kubectlIn("", c, "api-versions")
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			versions := strings.Fields(out)
			for _, want := range []string{"example.com/v1", "example.com/v2"} {
				if !slices.Contains(versions, want) {
					return fmt.Errorf("api-versions lacks %s:\n%s", want, out)
				}
			}
			return nil
		})
		s.expect(c, "example.com/v2 1 2", "get", "widgets.v2.example.com", "old", "-o", "jsonpath={.apiVersion} {.spec.min} {.spec.max}")
		s.pipe(widgetAt("example.com/v2", "new", "{min: 3, max: 4}"), c, "create", "-f", "-")
		s.expect(c, "example.com/v1 3 4", "get", "widgets.v1.example.com", "new", "-o", "jsonpath={.apiVersion} {.spec.min} {.spec.max}")
		s.refused(widgetAt("example.com/v2", "inverted", "{min: 5, max: 1}"), c, "min must not exceed max", "create", "-f", "-")
		s.expect(c, `["v1"]`, "get", "crd", crdName, "-o", "jsonpath={.status.storedVersions}")
	})
}

// TestCRDDeletion deletes a CRD holding widgets in two namespaces: the widgets
// and the API go, a re-created CRD starts empty, and the same-named CRD of
// another cluster keeps its widgets.
func TestCRDDeletion(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *server) {
		doomed, kept := "crd-del-a", "crd-del-b"
		all := `-o=jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}{" "}{end}`
		for _, cluster := range []string{doomed, kept} {
			s.establish(cluster, sizedWidgets)
			s.kubectl(cluster, "create", "namespace", "team-1")
			s.kubectl(cluster, "create", "namespace", "team-2")
			s.pipe(widget("w1", "{size: 1}"), cluster, "create", "-n", "team-1", "-f", "-")
			s.pipe(widget("w2", "{size: 2}"), cluster, "create", "-n", "team-1", "-f", "-")
			s.pipe(widget("w3", "{size: 3}"), cluster, "create", "-n", "team-2", "-f", "-")
			s.expectNames(cluster, []string{"team-1/w1", "team-1/w2", "team-2/w3"}, "get", "widgets", "-A", all)
		}

		s.kubectl(doomed, "delete", "crd", crdName, "--timeout=30s")
		s.refused("", doomed, `"widgets.example.com" not found`, "get", "crd", crdName)
		eventually(t, "widgets leave discovery", func() error {
			if out, err := s.kubectlIn("", doomed, "api-resources", "--api-group=example.com", "-o", "name"); err != nil || out != "" {
				return fmt.Errorf("api-resources: %v: %q", err, out)
			}
			out, err := s.kubectlIn("", doomed, "get", "widgets", "-A")
			if err == nil || !strings.Contains(out, `the server doesn't have a resource type "widgets"`) {
				return fmt.Errorf("get widgets: %v: %s", err, out)
			}
			return nil
		})

		s.establish(doomed, sizedWidgets)
		s.expect(doomed, "", "get", "widgets", "-A", all)
		s.refused("", doomed, `"w1" not found`, "get", "widget", "w1", "-n", "team-1")

		s.expect(kept, crdName+"\n", "api-resources", "--api-group=example.com", "-o", "name")
		s.expect(kept, "True", "get", "crd", crdName, "-o", `jsonpath={.status.conditions[?(@.type=="Established")].status}`)
		s.expectNames(kept, []string{"team-1/w1", "team-1/w2", "team-2/w3"}, "get", "widgets", "-A", all)
	})
}

// TestCRDBuiltinGroupRefused: a CRD may not take a group that a built-in API
// serves; the refusal is Invalid on spec.group, and the built-in group keeps
// exactly its own resources.
func TestCRDBuiltinGroupRefused(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *server) {
		ctx := context.Background()
		c := "crd-builtin"
		crds := dynamicFor(t, s, c).Resource(crdsGVR)
		for _, group := range []string{"rbac.authorization.k8s.io", "apiextensions.k8s.io"} {
			manifest := fmt.Sprintf(widgetsInGroup, group)
			out, err := s.kubectlIn(manifest, c, "apply", "-f", "-")
			if err == nil || !strings.Contains(out, "is invalid") || !strings.Contains(out, "spec.group") {
				t.Errorf("%s: kubectl apply: got %v, want an Invalid error on spec.group:\n%s", group, err, out)
			}
			_, err = crds.Create(ctx, decodeManifest(t, manifest), metav1.CreateOptions{})
			if !apierrors.IsInvalid(err) || !hasCause(err, "spec.group") {
				t.Errorf("%s: create through client-go: got %v, want 422 Invalid with a cause on spec.group", group, err)
			}
			s.refused("", c, "not found", "get", "crd", "widgets."+group)
		}
		s.expect(c, "clusterrolebindings.rbac.authorization.k8s.io\nclusterroles.rbac.authorization.k8s.io\nrolebindings.rbac.authorization.k8s.io\nroles.rbac.authorization.k8s.io\n",
			"api-resources", "--api-group=rbac.authorization.k8s.io", "-o", "name")
		s.expect(c, "customresourcedefinitions.apiextensions.k8s.io\n", "api-resources", "--api-group=apiextensions.k8s.io", "-o", "name")

		// The same manifest in a group of its own is accepted: the group was the
		// only reason.
		s.establish(c, fmt.Sprintf(widgetsInGroup, "example.com"))
	})
}

// TestCRDDynamicClient drives a Widget through client-go's dynamic client:
// every verb, optimistic concurrency, validation, and a watch that sees
// exactly ADDED, MODIFIED, DELETED in order.
func TestCRDDynamicClient(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *server) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c := "crd-dyn"
		s.establish(c, sizedWidgets)
		widgets := dynamicFor(t, s, c).Resource(widgetsGVR).Namespace("default")

		list, err := widgets.List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		if len(list.Items) != 0 {
			t.Fatalf("list of a new CRD has %d items", len(list.Items))
		}
		w, err := widgets.Watch(ctx, metav1.ListOptions{ResourceVersion: list.GetResourceVersion()})
		if err != nil {
			t.Fatalf("watch: %v", err)
		}
		defer w.Stop()

		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "example.com/v1",
			"kind":       "Widget",
			"metadata":   map[string]any{"name": "dyn"},
			"spec":       map[string]any{"color": "red"},
		}}
		created, err := widgets.Create(ctx, obj, metav1.CreateOptions{})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		if size := specSize(created); size != 3 {
			t.Errorf("created spec.size = %d, want the default 3", size)
		}
		got, err := widgets.Get(ctx, "dyn", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if got.GetUID() != created.GetUID() || got.GetResourceVersion() != created.GetResourceVersion() || got.GetNamespace() != "default" {
			t.Errorf("get = %s/%s uid %s rv %s, want default/dyn uid %s rv %s",
				got.GetNamespace(), got.GetName(), got.GetUID(), got.GetResourceVersion(), created.GetUID(), created.GetResourceVersion())
		}
		list, err = widgets.List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		if list.GetKind() != "WidgetList" || len(list.Items) != 1 || list.Items[0].GetName() != "dyn" {
			t.Errorf("list = %s of %d items, want WidgetList of dyn", list.GetKind(), len(list.Items))
		}

		if err := unstructured.SetNestedField(got.Object, int64(7), "spec", "size"); err != nil {
			t.Fatal(err)
		}
		updated, err := widgets.Update(ctx, got, metav1.UpdateOptions{})
		if err != nil {
			t.Fatalf("update: %v", err)
		}
		if specSize(updated) != 7 || updated.GetResourceVersion() == created.GetResourceVersion() {
			t.Errorf("update returned size %d rv %s, want 7 and a new rv", specSize(updated), updated.GetResourceVersion())
		}
		stale := created.DeepCopy()
		if err := unstructured.SetNestedField(stale.Object, int64(8), "spec", "size"); err != nil {
			t.Fatal(err)
		}
		if _, err := widgets.Update(ctx, stale, metav1.UpdateOptions{}); !apierrors.IsConflict(err) {
			t.Errorf("update at a stale resourceVersion: got %v, want Conflict", err)
		}
		invalid := updated.DeepCopy()
		if err := unstructured.SetNestedField(invalid.Object, int64(0), "spec", "size"); err != nil {
			t.Fatal(err)
		}
		if _, err := widgets.Update(ctx, invalid, metav1.UpdateOptions{}); !apierrors.IsInvalid(err) || !hasCause(err, "spec.size") {
			t.Errorf("update to size 0: got %v, want Invalid on spec.size", err)
		}
		if err := widgets.Delete(ctx, "dyn", metav1.DeleteOptions{}); err != nil {
			t.Fatalf("delete: %v", err)
		}
		if _, err := widgets.Get(ctx, "dyn", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("get after delete: got %v, want NotFound", err)
		}

		// The refused updates make no events.
		for _, want := range []struct {
			typ  watch.EventType
			rv   string
			size int64
		}{
			{watch.Added, created.GetResourceVersion(), 3},
			{watch.Modified, updated.GetResourceVersion(), 7},
			{watch.Deleted, "", 7},
		} {
			e := nextEvent(t, w)
			u, ok := e.Object.(*unstructured.Unstructured)
			if e.Type != want.typ || !ok {
				t.Fatalf("watch event %s %#v, want %s of a Widget", e.Type, e.Object, want.typ)
			}
			if u.GetName() != "dyn" || u.GetUID() != created.GetUID() || specSize(u) != want.size || want.rv != "" && u.GetResourceVersion() != want.rv {
				t.Errorf("%s event of %s uid %s rv %s size %d, want dyn uid %s rv %q size %d",
					e.Type, u.GetName(), u.GetUID(), u.GetResourceVersion(), specSize(u), created.GetUID(), want.rv, want.size)
			}
		}

		// The resource does not exist in a cluster without the CRD.
		if _, err := dynamicFor(t, s, "crd-dyn-none").Resource(widgetsGVR).Namespace("default").List(ctx, metav1.ListOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("list widgets where no CRD defines them: got %v, want NotFound", err)
		}
	})
}

// establish applies the manifest of a CRD of widgets to cluster, waits for
// Established, and then for discovery to serve widgets: kubectl maps kinds
// through discovery, which Kubernetes too updates asynchronously.
func (s *server) establish(cluster, manifest string) {
	s.t.Helper()
	s.pipe(manifest, cluster, "apply", "-f", "-")
	name := decodeManifest(s.t, manifest).GetName()
	s.kubectl(cluster, "wait", "--for=condition=Established", "crd/"+name, "--timeout=30s")
	group := strings.TrimPrefix(name, "widgets.")
	eventually(s.t, cluster+": "+group+" in discovery", func() error {
		out, err := s.kubectlIn("", cluster, "api-resources", "--api-group="+group, "-o", "name")
		if err != nil || !strings.Contains(out, "widgets."+group) {
			return fmt.Errorf("api-resources: %v: %q", err, out)
		}
		return nil
	})
}

// pipe runs kubectl with stdin, failing the test if it fails.
func (s *server) pipe(stdin, cluster string, args ...string) string {
	s.t.Helper()
	out, err := s.kubectlIn(stdin, cluster, args...)
	if err != nil {
		s.t.Fatalf("%s: kubectl %s: %v\n%s", cluster, strings.Join(args, " "), err, out)
	}
	return out
}

// refused fails the test unless kubectl fails and says want.
func (s *server) refused(stdin, cluster, want string, args ...string) {
	s.t.Helper()
	out, err := s.kubectlIn(stdin, cluster, args...)
	if err == nil || !strings.Contains(out, want) {
		s.t.Errorf("%s: kubectl %s: got %v, want a failure saying %q:\n%s", cluster, strings.Join(args, " "), err, want, out)
	}
}

// expect fails the test unless kubectl prints exactly want.
func (s *server) expect(cluster, want string, args ...string) {
	s.t.Helper()
	if got := s.kubectl(cluster, args...); got != want {
		s.t.Errorf("%s: kubectl %s = %q, want %q", cluster, strings.Join(args, " "), got, want)
	}
}

// expectNames fails the test unless kubectl prints exactly the words of want,
// in any order: list order is not what these tests are about.
func (s *server) expectNames(cluster string, want []string, args ...string) {
	s.t.Helper()
	out := s.kubectl(cluster, args...)
	got := strings.Fields(out)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		s.t.Errorf("%s: kubectl %s = %v, want %v", cluster, strings.Join(args, " "), got, want)
	}
}

// tableRow is the header of a kubectl table and the row of name in it, keyed
// by column. No cell of these tests holds a space.
func tableRow(t *testing.T, table, name string) ([]string, map[string]string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(table, "\n"), "\n")
	header := strings.Fields(lines[0])
	// kubectl aligns cells under their column's name, and leaves empty cells
	// blank: cut each row at the columns' offsets.
	offsets := make([]int, len(header))
	from := 0
	for i, column := range header {
		offsets[i] = from + strings.Index(lines[0][from:], column)
		from = offsets[i] + len(column)
	}
	for _, line := range lines[1:] {
		if cells := strings.Fields(line); len(cells) == 0 || cells[0] != name {
			continue
		}
		row := map[string]string{}
		for i, column := range header {
			end := len(line)
			if i+1 < len(offsets) {
				end = min(offsets[i+1], len(line))
			}
			if offsets[i] < end {
				row[column] = strings.TrimSpace(line[offsets[i]:end])
			}
		}
		return header, row
	}
	t.Fatalf("no row of %s in:\n%s", name, table)
	return nil, nil
}

// explainedField matches a field line of kubectl explain: indented, a name, a
// <type>. Description lines never have a word directly followed by a <type>.
var explainedField = regexp.MustCompile(`(?m)^[ \t]+([A-Za-z]\w*)[ \t]+<`)

// explainedFields are the sorted names of the fields kubectl explain lists.
func explainedFields(out string) []string {
	var fields []string
	for _, m := range explainedField.FindAllStringSubmatch(out, -1) {
		fields = append(fields, m[1])
	}
	slices.Sort(fields)
	return fields
}

func decodeManifest(t *testing.T, manifest string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(manifest), 4096).Decode(&u.Object); err != nil {
		t.Fatalf("decoding manifest: %v\n%s", err, manifest)
	}
	return u
}

func dynamicFor(t *testing.T, s *server, cluster string) dynamic.Interface {
	t.Helper()
	d, err := dynamic.NewForConfig(s.Config(cluster))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func discoveryFor(t *testing.T, s *server, cluster string) discovery.DiscoveryInterface {
	t.Helper()
	d, err := discovery.NewDiscoveryClientForConfig(s.Config(cluster))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// hasCause reports whether err is an API status with a cause on field.
func hasCause(err error, field string) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil {
		return false
	}
	for _, c := range status.Status().Details.Causes {
		if c.Field == field {
			return true
		}
	}
	return false
}

// specSize is spec.size of a Widget, or -1 without one.
func specSize(u *unstructured.Unstructured) int64 {
	size, found, err := unstructured.NestedInt64(u.Object, "spec", "size")
	if err != nil || !found {
		return -1
	}
	return size
}

func nextEvent(t *testing.T, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case e, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("the watch ended early")
		}
		return e
	case <-time.After(20 * time.Second):
		t.Fatal("no watch event within 20s")
	}
	return watch.Event{}
}

// TestCRDPatchesAndCollections: custom resources take client-side apply (which
// kubectl sends as a merge patch), JSON and merge patches, refuse strategic merge
// patches as Kubernetes does (they have no Go types to carry merge keys), and
// delete by collection, with and without a label selector.
func TestCRDPatchesAndCollections(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *server) {
		c := "crd-patch"
		s.establish(c, sizedWidgets)
		s.pipe(widget("w", "{size: 2}"), c, "apply", "-f", "-")
		s.pipe(widget("w", "{size: 4, color: blue}"), c, "apply", "-f", "-")
		s.expect(c, "4 blue", "get", "widget", "w", "-o", "jsonpath={.spec.size} {.spec.color}")
		s.refused("", c, "application/merge-patch+json", "patch", "widget", "w", "-p", `{"spec":{"size":5}}`)
		s.pipe("", c, "patch", "widget", "w", "--type=json", "-p", `[{"op":"replace","path":"/spec/size","value":6}]`)
		s.pipe("", c, "patch", "widget", "w", "--type=merge", "-p", `{"spec":{"color":null}}`)
		s.expect(c, "6 ", "get", "widget", "w", "-o", "jsonpath={.spec.size} {.spec.color}")

		for _, name := range []string{"keep-1", "keep-2"} {
			s.pipe(widget(name, "{size: 1}"), c, "create", "-f", "-")
		}
		s.kubectl(c, "label", "widget", "keep-1", "keep-2", "tier=keep")
		ctx := context.Background()
		widgets := dynamicFor(t, s, c).Resource(widgetsGVR).Namespace("default")
		if err := widgets.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "tier!=keep"}); err != nil {
			t.Fatalf("deleting the unlabelled widgets: %v", err)
		}
		s.expectNames(c, []string{"keep-1", "keep-2"}, "get", "widgets", "-o", "jsonpath={.items[*].metadata.name}")
		s.kubectl(c, "delete", "widgets", "--all")
		s.expect(c, "", "get", "widgets", "-o", "jsonpath={.items[*].metadata.name}")
	})
}

// TestCRDSharedHandlers: clusters whose CRDs have the same spec share one built
// handler; a CRD with another spec gets its own, and sharing never mixes the
// clusters' custom resources.
func TestCRDSharedHandlers(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *server) {
		shared := []string{"share-1", "share-2", "share-3"}
		for _, cluster := range shared {
			s.establish(cluster, sizedWidgets)
			s.pipe(widget("in-"+cluster, "{size: 2}"), cluster, "create", "-f", "-")
		}
		if builds := s.metric("warren_crd_handler_builds_total"); builds != 1 {
			t.Errorf("three clusters with the same CRD spec built %v handlers, want 1", builds)
		}
		s.establish("share-other", ownedWidgets)
		s.pipe(widget("in-share-other", "{owner: me}"), "share-other", "create", "-f", "-")
		if builds := s.metric("warren_crd_handler_builds_total"); builds != 2 {
			t.Errorf("a CRD of another spec made %v handler builds in all, want 2", builds)
		}
		for _, cluster := range append(shared, "share-other") {
			s.expect(cluster, "in-"+cluster, "get", "widgets", "-o", "jsonpath={.items[*].metadata.name}")
		}
	})
}

// metric reads a metric without labels from the server's /metrics.
func (s *server) metric(name string) float64 {
	s.t.Helper()
	for _, line := range strings.Split(s.kubectl("root", "get", "--raw", "/metrics"), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				s.t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	s.t.Fatalf("/metrics has no %s", name)
	return 0
}
