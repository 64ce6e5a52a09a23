package e2e

import (
	"strings"
	"testing"
)

// objects has one manifest of every built-in resource; each names its kind as
// kubectl prints it in `-o name`.
var objects = []struct{ name, manifest string }{
	{"namespace/team", `apiVersion: v1
kind: Namespace
metadata: {name: team}`},
	{"configmap/settings", `apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: team}
data: {color: blue}`},
	{"secret/creds", `apiVersion: v1
kind: Secret
metadata: {name: creds, namespace: team}
stringData: {password: hunter2}`},
	{"serviceaccount/robot", `apiVersion: v1
kind: ServiceAccount
metadata: {name: robot, namespace: team}`},
	{"lease.coordination.k8s.io/lock", `apiVersion: coordination.k8s.io/v1
kind: Lease
metadata: {name: lock, namespace: team}
spec: {holderIdentity: me, leaseDurationSeconds: 15}`},
	{"event/started", `apiVersion: v1
kind: Event
metadata: {name: started, namespace: team}
involvedObject: {kind: ConfigMap, name: settings, namespace: team}
reason: Started
message: it began
type: Normal`},
	{"role.rbac.authorization.k8s.io/reader", `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: team}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [get, list]}]`},
	{"rolebinding.rbac.authorization.k8s.io/readers", `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: readers, namespace: team}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects: [{kind: User, name: alice}]`},
	{"clusterrole.rbac.authorization.k8s.io/ns-reader", `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ns-reader}
rules: [{apiGroups: [""], resources: [namespaces], verbs: [get, list]}]`},
	{"clusterrolebinding.rbac.authorization.k8s.io/ns-readers", `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ns-readers}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ns-reader}
subjects: [{kind: Group, name: devs}]`},
	{"customresourcedefinition.apiextensions.k8s.io/widgets.example.com", `apiVersion: apiextensions.k8s.io/v1
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
    schema: {openAPIV3Schema: {type: object}}`},
}

func manifests() string {
	var b strings.Builder
	for _, o := range objects {
		b.WriteString("---\n" + o.manifest + "\n")
	}
	return b.String()
}

// TestKubectlVerbs drives every built-in resource through kubectl's verbs, in the
// root cluster and in another one.
func TestKubectlVerbs(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *server) {
		for _, cluster := range []string{"root", "tenant-1"} {
			out, err := s.kubectlIn(manifests(), cluster, "create", "-f", "-", "-o", "name")
			if err != nil {
				t.Fatalf("%s: create: %v\n%s", cluster, err, out)
			}
			for _, o := range objects {
				if !strings.Contains(out, o.name) {
					t.Errorf("%s: create printed no %s:\n%s", cluster, o.name, out)
				}
				ns := []string{"-n", "team"}
				got := s.kubectl(cluster, append([]string{"get", o.name, "-o", "name"}, ns...)...)
				if strings.TrimSpace(got) != o.name {
					t.Errorf("%s: get %s = %q", cluster, o.name, got)
				}
			}
			// Client-side apply twice (the second a no-op), then a change.
			for range 2 {
				if out, err := s.kubectlIn(manifests(), cluster, "apply", "-f", "-"); err != nil {
					t.Fatalf("%s: apply: %v\n%s", cluster, err, out)
				}
			}
			if out, err := s.kubectlIn(strings.Replace(objects[1].manifest, "blue", "green", 1), cluster, "apply", "-f", "-"); err != nil {
				t.Fatalf("%s: apply change: %v\n%s", cluster, err, out)
			}
			if got := s.kubectl(cluster, "get", "cm", "settings", "-n", "team", "-o", "jsonpath={.data.color}"); got != "green" {
				t.Errorf("%s: applied color = %q, want green", cluster, got)
			}
			// Patches of every type.
			s.kubectl(cluster, "patch", "cm", "settings", "-n", "team", "--type=merge", "-p", `{"data":{"size":"L"}}`)
			s.kubectl(cluster, "patch", "cm", "settings", "-n", "team", "--type=json", "-p", `[{"op":"add","path":"/data/shape","value":"round"}]`)
			s.kubectl(cluster, "patch", "cm", "settings", "-n", "team", "-p", `{"data":{"weight":"9"}}`)
			s.kubectl(cluster, "label", "cm", "settings", "-n", "team", "tier=gold")
			s.kubectl(cluster, "annotate", "cm", "settings", "-n", "team", "note=hi")
			got := s.kubectl(cluster, "get", "cm", "-n", "team", "-l", "tier=gold", "-o", "jsonpath={.items[0].data}")
			for _, want := range []string{`"size":"L"`, `"shape":"round"`, `"weight":"9"`} {
				if !strings.Contains(got, want) {
					t.Errorf("%s: patched data %s lacks %s", cluster, got, want)
				}
			}
			// Tables.
			if got := s.kubectl(cluster, "get", "cm", "-n", "team"); !strings.Contains(got, "DATA") || !strings.Contains(got, "settings") {
				t.Errorf("%s: configmap table:\n%s", cluster, got)
			}
			if got := s.kubectl(cluster, "get", "secret", "creds", "-n", "team"); !strings.Contains(got, "Opaque") {
				t.Errorf("%s: secret table:\n%s", cluster, got)
			}
			if got := s.kubectl(cluster, "get", "events", "-n", "team"); !strings.Contains(got, "Started") {
				t.Errorf("%s: event table:\n%s", cluster, got)
			}
			if got := s.kubectl(cluster, "get", "events.events.k8s.io", "started", "-n", "team", "-o", "jsonpath={.note}"); got != "it began" {
				t.Errorf("%s: events.k8s.io note = %q", cluster, got)
			}
			if got := s.kubectl(cluster, "get", "secret", "creds", "-n", "team", "-o", "jsonpath={.data.password}"); got != "aHVudGVyMg==" {
				t.Errorf("%s: stringData folded into data as %q", cluster, got)
			}
			// Every namespace starts with its default service account.
			s.kubectl(cluster, "get", "sa", "default", "-n", "team")
			// Deletes.
			s.kubectl(cluster, "delete", "cm", "settings", "-n", "team")
			if out, err := s.kubectlAs("", cluster, "get", "cm", "settings", "-n", "team"); err == nil || !strings.Contains(out, "NotFound") {
				t.Errorf("%s: get after delete: %v\n%s", cluster, err, out)
			}
		}
	})
}

// TestServerSideApply applies with two field managers: managed fields are
// recorded and a conflicting apply is refused unless forced.
func TestServerSideApply(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *server) {
		cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared, namespace: default}\ndata: {owner: first}\n"
		for range 2 {
			if out, err := s.kubectlIn(cm, "root", "apply", "--server-side", "--field-manager=first", "-f", "-"); err != nil {
				t.Fatalf("apply: %v\n%s", err, out)
			}
		}
		got := s.kubectl("root", "get", "cm", "shared", "-o", "yaml", "--show-managed-fields")
		if !strings.Contains(got, "manager: first") || !strings.Contains(got, "operation: Apply") {
			t.Errorf("managed fields missing:\n%s", got)
		}
		second := strings.Replace(cm, "first", "second", 1)
		out, err := s.kubectlIn(second, "root", "apply", "--server-side", "--field-manager=second", "-f", "-")
		if err == nil || !strings.Contains(strings.ToLower(out), "conflict") {
			t.Fatalf("conflicting apply: %v\n%s", err, out)
		}
		if out, err := s.kubectlIn(second, "root", "apply", "--server-side", "--field-manager=second", "--force-conflicts", "-f", "-"); err != nil {
			t.Fatalf("forced apply: %v\n%s", err, out)
		}
		if got := s.kubectl("root", "get", "cm", "shared", "-o", "jsonpath={.data.owner}"); got != "second" {
			t.Errorf("owner = %q after forced apply", got)
		}
		if out, err := s.kubectlIn(second, "root", "diff", "--server-side", "--field-manager=second", "-f", "-"); err != nil {
			t.Errorf("diff of an applied object: %v\n%s", err, out)
		}
	})
}

// TestDiscoveryAndOpenAPI checks what kubectl learns about a cluster's APIs.
func TestDiscoveryAndOpenAPI(t *testing.T) {
	eachDialect(t, func(t *testing.T, s *server) {
		for _, cluster := range []string{"root", "other"} {
			got := s.kubectl(cluster, "api-resources")
			for _, want := range []string{"configmaps", "leases", "clusterrolebindings", "customresourcedefinitions", "selfsubjectaccessreviews", "tokenreviews"} {
				if !strings.Contains(got, want) {
					t.Errorf("%s: api-resources lacks %s:\n%s", cluster, want, got)
				}
			}
			if got := s.kubectl(cluster, "explain", "configmap.data"); !strings.Contains(got, "ConfigMap") {
				t.Errorf("%s: explain (OpenAPI v3):\n%s", cluster, got)
			}
			if got := s.kubectl(cluster, "explain", "lease.spec", "--output=plaintext-openapiv2"); !strings.Contains(got, "holderIdentity") {
				t.Errorf("%s: explain (OpenAPI v2):\n%s", cluster, got)
			}
			if got := s.kubectl(cluster, "version", "-o", "json"); !strings.Contains(got, "serverVersion") {
				t.Errorf("%s: version:\n%s", cluster, got)
			}
		}
	})
}
