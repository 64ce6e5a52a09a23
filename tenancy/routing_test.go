package tenancy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"

	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// shapes resolves every well-formed path or name to a Ready cluster of that
// name, so that FuzzRouting exercises Routing's parsing, not a store.
func shapes(_ context.Context, s string) (*Cluster, error) {
	if IsPath(s) {
		if _, err := ParsePath(s); err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		s = strings.ReplaceAll(s, ":", "-")
	} else if err := logicalcluster.Validate(s); err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	return &Cluster{Name: logicalcluster.Name(s), Phase: corev1alpha1.LogicalClusterPhaseReady}, nil
}

// FuzzRouting sends arbitrary paths through Routing: it never panics, answers
// 400 or passes on exactly one valid cluster (or the wildcard) with a rooted
// path that holds no /clusters/ prefix of its own making.
func FuzzRouting(f *testing.F) {
	for _, seed := range []string{
		"/api/v1/namespaces", "/clusters/root/api", "/clusters/*/apis/x/v1/ys", "/clusters/../api",
		"/clusters/", "/clusters", "/clusters/a", "/clusters/a/clusters/b/api", "/clusters/%2e%2e/api",
		"/clusters/A_B/api", "/clusters/a:b/api", "//clusters/a", "/clusters/root:a:b/api", "/clusters/root::a/api",
		"/clusters/:root/api", "/clusters/root:/api",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, path string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.Path = path
		var got struct {
			called  bool
			cluster logicalcluster.Name
			path    string
		}
		h := Routing(shapes, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			got.called = true
			got.cluster, _ = logicalcluster.From(r.Context())
			got.path = r.URL.Path
		}))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !got.called {
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("%q: refused with %d, want 400", path, rec.Code)
			}
			return
		}
		if got.cluster != logicalcluster.Wildcard && logicalcluster.Validate(string(got.cluster)) != nil {
			t.Fatalf("%q: routed to invalid cluster %q", path, got.cluster)
		}
		if strings.HasPrefix(path, clustersPrefix) && !strings.HasPrefix(got.path, "/") {
			t.Fatalf("%q: routed path %q is not rooted", path, got.path)
		}
		if !strings.HasPrefix(path, clustersPrefix) && (got.cluster != logicalcluster.Root || got.path != path) {
			t.Fatalf("%q: a bare path went to %q as %q", path, got.cluster, got.path)
		}
	})
}

// TestPaths checks the path grammar: what parses, and how paths split and join.
func TestPaths(t *testing.T) {
	for _, s := range []string{"root", "root:a", "root:acme:team-a", "root:" + strings.Repeat("a", 63), "2x7kq9v4m1c8:team-a", "user"} {
		if _, err := ParsePath(s); err != nil {
			t.Errorf("ParsePath(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "root:", "root::a", ":root", "root:A", "root:a_b", "Toor:a", "to_or:a", "root:" + strings.Repeat("a", 64)} {
		if _, err := ParsePath(s); err == nil {
			t.Errorf("ParsePath(%q) succeeded", s)
		}
	}
	p := RootPath.Join("acme").Join("team-a")
	if p != "root:acme:team-a" || p.Base() != "team-a" || strings.Join(p.Segments(), "/") != "acme/team-a" {
		t.Errorf("path %q: base %q, segments %q", p, p.Base(), p.Segments())
	}
	if parent, ok := p.Parent(); !ok || parent != "root:acme" {
		t.Errorf("parent of %q: %q, %v", p, parent, ok)
	}
	if _, ok := RootPath.Parent(); ok || RootPath.Base() != "root" {
		t.Errorf("root has a parent or base %q", RootPath.Base())
	}
	for range 100 {
		if n := NewClusterName(); IsPath(string(n)) || logicalcluster.Validate(string(n)) != nil || len(n) != clusterNameLength {
			t.Fatalf("NewClusterName() = %q", n)
		}
	}
}

// TestHomePaths checks the paths of home workspaces (user:<name>, kcp's alias)
// and the names of their logical clusters, which are kcp's for the same user.
func TestHomePaths(t *testing.T) {
	for _, tc := range []struct {
		path, user string
		segments   []string
		parent     string
	}{
		{"user:alice", "alice", nil, ""},
		{"user:alice@example.com:proj", "alice@example.com", []string{"proj"}, "user:alice@example.com"},
		{"user:system:admin", "system", []string{"admin"}, "user:system"},
	} {
		p, err := ParsePath(tc.path)
		if err != nil {
			t.Fatalf("ParsePath(%q): %v", tc.path, err)
		}
		_, user, segments := p.split()
		parent, hasParent := p.Parent()
		if user != tc.user || !slices.Equal(segments, tc.segments) || parent != Path(tc.parent) || hasParent != (tc.parent != "") {
			t.Errorf("%q: user %q, segments %q, parent %q (%v)", tc.path, user, segments, parent, hasParent)
		}
	}
	for _, s := range []string{"user:", "user:a/b", "user:alice:Bad", "user:alice::x"} {
		if _, err := ParsePath(s); err == nil {
			t.Errorf("ParsePath(%q) succeeded", s)
		}
	}
	if got := HomePath("alice"); got != "user:alice" {
		t.Errorf("HomePath(alice) = %q", got)
	}
	seen := map[logicalcluster.Name]string{}
	for _, u := range []string{"alice", "bob", "system:admin", "a", ""} {
		n := HomeName(u)
		if err := logicalcluster.Validate(string(n)); err != nil || IsPath(string(n)) {
			t.Errorf("HomeName(%q) = %q: %v", u, n, err)
		}
		if other, ok := seen[n]; ok {
			t.Errorf("HomeName(%q) = HomeName(%q) = %q", u, other, n)
		}
		seen[n] = u
	}
}
