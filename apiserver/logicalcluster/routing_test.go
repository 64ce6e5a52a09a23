package logicalcluster

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzRouting sends arbitrary paths through Routing: it never panics, answers
// 400 or passes on exactly one valid cluster (or the wildcard) with a rooted
// path that holds no /clusters/ prefix of its own making.
func FuzzRouting(f *testing.F) {
	for _, seed := range []string{
		"/api/v1/namespaces", "/clusters/root/api", "/clusters/*/apis/x/v1/ys", "/clusters/../api",
		"/clusters/", "/clusters", "/clusters/a", "/clusters/a/clusters/b/api", "/clusters/%2e%2e/api",
		"/clusters/A_B/api", "/clusters/a:b/api", "//clusters/a",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, path string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.Path = path
		var got struct {
			called  bool
			cluster Name
			path    string
		}
		h := Routing(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			got.called = true
			got.cluster, _ = From(r.Context())
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
		if got.cluster != Wildcard && Validate(string(got.cluster)) != nil {
			t.Fatalf("%q: routed to invalid cluster %q", path, got.cluster)
		}
		if strings.HasPrefix(path, clustersPrefix) && !strings.HasPrefix(got.path, "/") {
			t.Fatalf("%q: routed path %q is not rooted", path, got.path)
		}
		if !strings.HasPrefix(path, clustersPrefix) && (got.cluster != Root || got.path != path) {
			t.Fatalf("%q: a bare path went to %q as %q", path, got.cluster, got.path)
		}
	})
}
