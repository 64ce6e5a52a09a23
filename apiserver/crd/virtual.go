package crd

import (
	"context"
	"net/http"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	apisv1alpha1 "github.com/kcp-dev/sdk/apis/apis/v1alpha1"
	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"

	"github.com/warren-dev/warren/apiserver/virtual/apiexport"
)

// bindingVersions are the versions of apis.kcp.io in which an export's virtual
// workspace shows its APIBindings, preferred first.
var bindingVersions = []schema.GroupVersion{apisv1alpha2.SchemeGroupVersion, apisv1alpha1.SchemeGroupVersion}

// serveExportDiscovery serves the discovery and OpenAPI of an export's virtual
// workspace, alike across clusters and in one: the resources the export
// exports, and its APIBindings, read-only, in apis.kcp.io. The OpenAPI of
// apis.kcp.io is the built-in one next serves; any other path is not found.
func (h *Handler) serveExportDiscovery(w http.ResponseWriter, req *http.Request, ref apiexport.Ref, next http.Handler) {
	path := strings.TrimSuffix(req.URL.Path, "/")
	switch {
	case path == "/version":
		next.ServeHTTP(w, req)
		return
	case path == "/api":
		writeDiscovery(w, req, &metav1.APIVersions{})
		return
	case strings.HasPrefix(path, "/openapi/v3/apis/"+apisv1alpha2.SchemeGroupVersion.Group+"/"):
		next.ServeHTTP(w, req)
		return
	case path != "/apis" && !strings.HasPrefix(path, "/apis/") && !strings.HasPrefix(path, "/openapi/v3"):
		h.notFound.ServeHTTP(w, req)
		return
	}
	v, err := h.exportView(req.Context(), ref)
	if err != nil {
		h.internalError(w, req, err)
		return
	}
	switch {
	case path == "/apis":
		v.root(nil).ServeHTTP(w, req)
	case strings.HasPrefix(path, "/apis/"):
		h.serveGroupDiscovery(w, req, v, path)
	case path == "/openapi/v3":
		serveOpenAPIIndex(w, req, v, next, func(p string) bool {
			return strings.HasPrefix(p, "apis/"+apisv1alpha2.SchemeGroupVersion.Group+"/")
		})
	default:
		gv, err := schema.ParseGroupVersion(strings.TrimPrefix(path, "/openapi/v3/apis/"))
		doc, ok := v.openapi[gv]
		if err != nil || !ok || !strings.HasPrefix(path, "/openapi/v3/apis/") {
			h.notFound.ServeHTTP(w, req)
			return
		}
		serveOpenAPI(w, req, doc)
	}
}

// exportView is the view of the virtual workspace of ref: its exported
// resources, and the APIBindings.
func (h *Handler) exportView(ctx context.Context, ref apiexport.Ref) (*view, error) {
	defs, err := h.exportDefinitions(ctx, ref, func(apisv1alpha2.ResourceSchema) bool { return true })
	if err != nil {
		return nil, err
	}
	v := &view{served: map[schema.GroupResource]*definition{}}
	for _, d := range defs {
		v.served[schema.GroupResource{Group: d.Spec.Group, Resource: d.Spec.Names.Plural}] = d
		v.established = append(v.established, d.CustomResourceDefinition)
	}
	if err := v.discovery(); err != nil {
		return nil, err
	}
	group := bindingVersions[0].Group
	if _, taken := v.group(group); taken {
		// An export of a resource of apis.kcp.io itself keeps the group.
		return v, nil
	}
	g := metav1.APIGroup{Name: group}
	for _, gv := range bindingVersions {
		resources := []metav1.APIResource{{
			Name: "apibindings", SingularName: "apibinding", Kind: "APIBinding", Verbs: metav1.Verbs{"get", "list", "watch"},
		}}
		v.resources[gv] = resources
		v.versions[group] = append(v.versions[group], aggregatedVersion(gv, resources))
		g.Versions = append(g.Versions, metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version})
	}
	g.PreferredVersion = g.Versions[0]
	v.groups = append(v.groups, g)
	sort.Slice(v.groups, func(i, j int) bool { return v.groups[i].Name < v.groups[j].Name })
	return v, nil
}
