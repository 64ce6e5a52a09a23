package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kcp-dev/logicalcluster/v3"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"

	apisv1alpha1 "github.com/kcp-dev/sdk/apis/apis/v1alpha1"
	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"
	conditionsv1alpha1 "github.com/kcp-dev/sdk/apis/third_party/conditions/apis/conditions/v1alpha1"
	kcpclientset "github.com/kcp-dev/sdk/client/clientset/versioned/cluster"
)

// kcpClient is kcp's generated cluster-aware clientset for s as the admin,
// speaking JSON as kcp's clients do (kcp's types have no protobuf form).
func kcpClient(t *testing.T, s *server) kcpclientset.ClusterInterface {
	t.Helper()
	return kcpClientFor(t, s, rest.CopyConfig(s.Config("root")))
}

// kcpClientFor is kcp's clientset for s with the credentials of config.
func kcpClientFor(t *testing.T, s *server, config *rest.Config) kcpclientset.ClusterInterface {
	t.Helper()
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
		// Once it has its identity, warren's controller leaves it alone.
		export := identifiedExport(t, kcp.ApisV1alpha2().APIExports().Cluster(root), "widgets")
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
		s.refused(twoVersionSchema("Somewhere"), "root", `spec.scope: Unsupported value: "Somewhere"`, "apply", "-f", "-")
		s.refused(twoVersionSchema("Cluster"), "root", "Conversion must be specified when multiple versions exist", "apply", "-f", "-")
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

// twoVersionSchema is an APIResourceSchema of gadgets in two versions, without
// a conversion.
func twoVersionSchema(scope string) string {
	return `apiVersion: apis.kcp.io/v1alpha1
kind: APIResourceSchema
metadata:
  name: v1.gadgets.example.com
spec:
  group: example.com
  names: {plural: gadgets, kind: Gadget}
  scope: ` + scope + `
  versions: [{name: v1, served: true, storage: true, schema: {type: object}}, {name: v2, served: true, storage: false, schema: {type: object}}]
`
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
		s.pipe(widgetsProvider(10), "root", "apply", "-f", "-")
		for _, path := range []string{"root", "root:team"} {
			s.pipe(bindingManifest("widgets", "root", "widgets"), path, "apply", "-f", "-")
		}
		// Once bound, warren's controller leaves the binding alone.
		b := waitBound(t, kcp, "root:team", "widgets")
		b.Status.Conditions = append(b.Status.Conditions, conditionsv1alpha1.Condition{Type: "Extra", Status: "True", LastTransitionTime: metav1.Now()})
		b.Spec.Reference.Export.Path = "root:elsewhere" // ignored by a status update
		b, err := bindings.Cluster(logicalcluster.NewPath("root:team")).UpdateStatus(ctx, b, metav1.UpdateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(jsonOf(b.Status.Conditions), `"type":"Extra"`) || b.Spec.Reference.Export.Path != "root" {
			t.Errorf("after a status update: conditions %s, reference %s", jsonOf(b.Status.Conditions), jsonOf(b.Spec.Reference))
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
		if out := s.kubectl("root:team", "get", "apibindings"); !strings.Contains(out, "READY") || !strings.Contains(out, "True") {
			t.Errorf("kubectl get apibindings shows no Ready column:\n%s", out)
		}

		// A workspace admin may not write it: warren serves bound resources
		// by what it says.
		s.kubectl("root:team", "create", "clusterrolebinding", "alice-admin", "--clusterrole=cluster-admin", "--user=alice")
		alice := kcpClientFor(t, s, s.tokenConfig("alice-token", "root")).ApisV1alpha2().APIBindings().Cluster(logicalcluster.NewPath("root:team"))
		var forged *apisv1alpha2.APIBinding
		eventually(t, "alice enters root:team", func() error {
			forged, err = alice.Get(ctx, "widgets", metav1.GetOptions{})
			return err
		})
		forged.Status.BoundResources = []apisv1alpha2.BoundAPIResource{{Group: "example.com", Resource: "widgets",
			Schema: apisv1alpha2.BoundAPIResourceSchema{Name: "v1.widgets.example.com", UID: "x", IdentityHash: "someone-elses"}}}
		_, err = alice.UpdateStatus(ctx, forged, metav1.UpdateOptions{})
		expectAPIStatus(t, "a workspace admin writes a binding's status", err, 403, "the status of apibindings is written by warren's controllers")

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

// TestAPIExportIdentity proves that an export gets an identity as in kcp: a
// secret of 32 random bytes in kcp-system when it names none, whose SHA-256 is
// its status.identityHash, IdentityValid true, its workspace's path, and an
// endpoint slice owned by it — none where the export asks for none, and a hash
// of the secret the export names when it names one.
func TestAPIExportIdentity(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s.makeWorkspace("root", "provider", "")
		provider := logicalcluster.NewPath("root:provider")
		kcp := kcpClient(t, s)
		exports := kcp.ApisV1alpha2().APIExports().Cluster(provider)
		if _, err := exports.Create(ctx, &apisv1alpha2.APIExport{ObjectMeta: metav1.ObjectMeta{Name: "widgets"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		export := identifiedExport(t, exports, "widgets")
		if ref := export.Spec.Identity.SecretRef; ref.Namespace != "kcp-system" || ref.Name != "widgets" {
			t.Errorf("secretRef = %s, want kcp-system/widgets", jsonOf(ref))
		}
		secret, err := s.client("root:provider").CoreV1().Secrets("kcp-system").Get(ctx, "widgets", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		key := secret.Data["key"]
		if len(key) != 43 {
			t.Errorf("the identity key has %d bytes, want 43 (32 random bytes in base64)", len(key))
		}
		if want := sha256Hex(key); export.Status.IdentityHash != want {
			t.Errorf("identityHash = %q, want the SHA-256 of the key %q", export.Status.IdentityHash, want)
		}
		if path := export.Annotations["kcp.io/path"]; path != "root:provider" {
			t.Errorf("kcp.io/path = %q, want root:provider", path)
		}
		var slice *apisv1alpha1.APIExportEndpointSlice
		eventually(t, "the export's endpoint slice", func() error {
			slice, err = kcp.ApisV1alpha1().APIExportEndpointSlices().Cluster(provider).Get(ctx, "widgets", metav1.GetOptions{})
			return err
		})
		if slice.Spec.APIExport.Name != "widgets" || slice.Spec.APIExport.Path != "root:provider" {
			t.Errorf("the slice refers to %s, want root:provider widgets", jsonOf(slice.Spec.APIExport))
		}
		if owners := slice.OwnerReferences; len(owners) != 1 || owners[0].Kind != "APIExport" || owners[0].UID != export.UID {
			t.Errorf("the slice's owners are %s, want the export", jsonOf(owners))
		}

		// An export naming a secret of its own, and no slice.
		s.kubectl("root:provider", "create", "namespace", "ids")
		s.kubectl("root:provider", "create", "secret", "generic", "shared", "-n", "ids", "--from-literal=key=not-random")
		gadgets := &apisv1alpha2.APIExport{
			ObjectMeta: metav1.ObjectMeta{Name: "gadgets", Annotations: map[string]string{"apiexports.apis.kcp.io/skip-endpointslice": "true"}},
			Spec:       apisv1alpha2.APIExportSpec{Identity: &apisv1alpha2.Identity{SecretRef: &corev1.SecretReference{Namespace: "ids", Name: "shared"}}},
		}
		if _, err := exports.Create(ctx, gadgets, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if got, want := identifiedExport(t, exports, "gadgets").Status.IdentityHash, sha256Hex([]byte("not-random")); got != want {
			t.Errorf("identityHash of gadgets = %q, want %q", got, want)
		}
		if _, err := kcp.ApisV1alpha1().APIExportEndpointSlices().Cluster(provider).Get(ctx, "gadgets", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the slice of an export annotated to have none: got %v, want NotFound", err)
		}

		// The identity is verified again whenever its secret changes.
		identityValid := func(want string) {
			t.Helper()
			eventually(t, "gadgets' IdentityValid "+want, func() error {
				e, err := exports.Get(ctx, "gadgets", metav1.GetOptions{})
				if err != nil {
					return err
				}
				if !strings.Contains(jsonOf(e.Status.Conditions), want) {
					return fmt.Errorf("conditions %s", jsonOf(e.Status.Conditions))
				}
				return nil
			})
		}
		s.kubectl("root:provider", "delete", "secret", "shared", "-n", "ids")
		identityValid(`"type":"IdentityValid","status":"False","severity":"Error","lastTransitionTime"`)
		s.kubectl("root:provider", "create", "secret", "generic", "shared", "-n", "ids", "--from-literal=key=other")
		identityValid(`hash mismatch: identity secret hash`)
		s.pipe("apiVersion: v1\nkind: Secret\nmetadata: {name: shared, namespace: ids}\nstringData: {key: not-random}\n", "root:provider", "replace", "-f", "-")
		identityValid(`"type":"IdentityValid","status":"True"`)
	})
}

// identifiedExport waits for the export name to have a valid identity.
func identifiedExport(t *testing.T, exports interface {
	Get(context.Context, string, metav1.GetOptions) (*apisv1alpha2.APIExport, error)
}, name string) *apisv1alpha2.APIExport {
	t.Helper()
	var export *apisv1alpha2.APIExport
	eventually(t, "the identity of export "+name, func() error {
		var err error
		if export, err = exports.Get(context.Background(), name, metav1.GetOptions{}); err != nil {
			return err
		}
		for _, c := range export.Status.Conditions {
			if c.Type == apisv1alpha2.APIExportIdentityValid && c.Status == "True" && export.Status.IdentityHash != "" {
				return nil
			}
		}
		return fmt.Errorf("status %s", jsonOf(export.Status))
	})
	return export
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestAPIBindPermission proves kcp's bind check: a user binds an export, or
// lists its endpoints in a slice, only with the verb bind on it in the
// export's workspace, granted there by RBAC; a missing export, a missing
// workspace and a denial are one 403, so nobody learns what exists.
func TestAPIBindPermission(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s.makeWorkspace("root", "provider", "")
		s.makeWorkspace("root", "consumer", "")
		s.pipe(`{"apiVersion":"apis.kcp.io/v1alpha2","kind":"APIExport","metadata":{"name":"widgets"}}`, "root:provider", "apply", "-f", "-")
		s.kubectl("root:consumer", "create", "clusterrolebinding", "alice-admin", "--clusterrole=cluster-admin", "--user=alice")
		alice := kcpClientFor(t, s, s.tokenConfig("alice-token", "root"))
		consumer := logicalcluster.NewPath("root:consumer")
		bind := func(name, path, export string) error {
			_, err := alice.ApisV1alpha2().APIBindings().Cluster(consumer).Create(ctx, &apisv1alpha2.APIBinding{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec: apisv1alpha2.APIBindingSpec{Reference: apisv1alpha2.BindingReference{
					Export: &apisv1alpha2.ExportBindingReference{Path: path, Name: export}}},
			}, metav1.CreateOptions{})
			return err
		}
		eventually(t, "alice enters root:consumer", func() error {
			_, err := alice.ApisV1alpha2().APIBindings().Cluster(consumer).List(ctx, metav1.ListOptions{})
			return err
		})
		for _, c := range []struct{ what, path, export string }{
			{"an export she may not bind", "root:provider", "widgets"},
			{"a missing export", "root:provider", "gadgets"},
			{"an export in a missing workspace", "root:nowhere", "widgets"},
		} {
			expectAPIStatus(t, "alice binds "+c.what, bind("b", c.path, c.export), 403,
				`apibindings.apis.kcp.io "b" is forbidden: unable to create APIBinding: no permission to bind to export `+c.path+":"+c.export)
		}
		_, err := alice.ApisV1alpha1().APIExportEndpointSlices().Cluster(consumer).Create(ctx, &apisv1alpha1.APIExportEndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Name: "s"},
			Spec:       apisv1alpha1.APIExportEndpointSliceSpec{APIExport: apisv1alpha1.ExportBindingReference{Path: "root:provider", Name: "widgets"}},
		}, metav1.CreateOptions{})
		expectAPIStatus(t, "alice lists the endpoints of an export she may not bind", err, 403,
			"unable to create APIExportEndpointSlice: no permission to bind to export root:provider:widgets")

		grantExport(s, "alice", "widgets", "apiexports", "bind")
		eventually(t, "alice binds widgets once she may", func() error { return bind("widgets", "root:provider", "widgets") })
		expectAPIStatus(t, "alice binds a missing export she may not read", bind("b", "root:provider", "gadgets"), 403,
			"no permission to bind to export root:provider:gadgets")

		// An export of her own workspace, named without a path.
		if _, err := alice.ApisV1alpha2().APIExports().Cluster(consumer).Create(ctx, &apisv1alpha2.APIExport{ObjectMeta: metav1.ObjectMeta{Name: "local"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := bind("local", "", "local"); err != nil {
			t.Errorf("alice binds an export of her own workspace: %v", err)
		}
		expectAPIStatus(t, "alice binds a missing export of her own workspace", bind("b", "", "gone"), 403,
			"unable to create APIBinding: no permission to bind to export gone")
	})
}

// TestAPIsAdmission proves kcp's admission rules of schemas and exports, with
// kcp's 403 answers: a schema's name is <prefix>.<plural>.<group>, and it never
// changes; an export's resources name schemas of their names and groups.
func TestAPIsAdmission(t *testing.T) {
	t.Parallel()
	eachDialect(t, func(t *testing.T, s *server) {
		schema := func(name, group string) string {
			return "apiVersion: apis.kcp.io/v1alpha1\nkind: APIResourceSchema\nmetadata: {name: " + name + "}\nspec:\n  group: \"" + group +
				"\"\n  names: {plural: widgets, kind: Widget}\n  scope: Cluster\n  versions: [{name: v1, served: true, storage: true, schema: {type: object}}]\n"
		}
		for _, c := range []struct{ name, group, want string }{
			{"widgets.example.com", "example.com", `metadata.name: Invalid value: "widgets.example.com": must end in .widgets.example.com`},
			{"v1.gadgets.example.com", "example.com", "must end in .widgets.example.com"},
			{"1x.widgets.example.com", "example.com", "must match ^[a-z]([-a-z0-9]*[a-z0-9])?$ in front of .widgets.example.com"},
			{"v1.widgets.core", "core", "spec.group: Invalid value: \"core\": must be empty string for the core group"},
		} {
			s.refused(schema(c.name, c.group), "root", `apiresourceschemas.apis.kcp.io "`+c.name+`" is forbidden: `, "create", "-f", "-")
			s.refused(schema(c.name, c.group), "root", c.want, "create", "-f", "-")
		}
		s.pipe(schema("v1.widgets.example.com", "example.com"), "root", "create", "-f", "-")
		s.pipe(schema("v1.widgets.core", ""), "root", "create", "-f", "-")
		s.refused("", "root", "spec: Invalid value:", "patch", "apiresourceschema", "v1.widgets.example.com", "--type=merge", "-p", `{"spec":{"scope":"Namespaced"}}`)
		s.refused("", "root", "is immutable", "patch", "apiresourceschema", "v1.widgets.example.com", "--type=merge", "-p", `{"spec":{"scope":"Namespaced"}}`)
		s.kubectl("root", "label", "apiresourceschema", "v1.widgets.example.com", "touched=yes")
		s.refused(`{"apiVersion":"apis.kcp.io/v1alpha2","kind":"APIExport","metadata":{"name":"widgets"},"spec":{"resources":[{"name":"widgets","group":"example.com","schema":"v1.widgets.other.com"}]}}`,
			"root", `spec.resources[0].schema: Invalid value: "v1.widgets.other.com": must end in .widgets.example.com`, "create", "-f", "-")
		s.pipe(`{"apiVersion":"apis.kcp.io/v1alpha2","kind":"APIExport","metadata":{"name":"widgets"},"spec":{"resources":[{"name":"widgets","group":"","schema":"v1.widgets.core"}]}}`, "root", "create", "-f", "-")
	})
}
