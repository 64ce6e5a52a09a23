package crd

import (
	"context"
	"net/http"
	"slices"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
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
// exports, the built-in resources it claims, and its APIBindings, read-only,
// in apis.kcp.io. The OpenAPI of built-in groups is the one next serves; any
// other path is not found.
func (h *Handler) serveExportDiscovery(w http.ResponseWriter, req *http.Request, ref apiexport.Ref, next http.Handler) {
	path := strings.TrimSuffix(req.URL.Path, "/")
	switch {
	case path == "/version":
		next.ServeHTTP(w, req)
		return
	case path != "/api" && path != "/api/v1" && path != "/apis" && !strings.HasPrefix(path, "/apis/") && !strings.HasPrefix(path, "/openapi/v3"):
		h.notFound.ServeHTTP(w, req)
		return
	}
	v, err := h.exportView(req.Context(), ref)
	if err != nil {
		h.internalError(w, req, err)
		return
	}
	core, served := v.resources[schema.GroupVersion{Version: "v1"}]
	builtinOpenAPI := func(p string) bool {
		return strings.HasPrefix(p, "apis/"+apisv1alpha2.SchemeGroupVersion.Group+"/") || served && p == "api/v1" ||
			slices.ContainsFunc(v.groups, func(g metav1.APIGroup) bool {
				_, ok := v.openapi[schema.GroupVersion{Group: g.Name, Version: strings.TrimPrefix(p, "apis/"+g.Name+"/")}]
				return !ok && strings.HasPrefix(p, "apis/"+g.Name+"/")
			})
	}
	switch {
	case path == "/api":
		versions := &metav1.APIVersions{}
		if served {
			versions.Versions = []string{"v1"}
		}
		writeDiscovery(w, req, versions)
	case path == "/api/v1":
		if !served {
			h.notFound.ServeHTTP(w, req)
			return
		}
		writeDiscovery(w, req, &metav1.APIResourceList{GroupVersion: "v1", APIResources: core})
	case strings.HasPrefix(path, "/openapi/v3/") && builtinOpenAPI(strings.TrimPrefix(path, "/openapi/v3/")):
		next.ServeHTTP(w, req)
	case path == "/apis":
		v.root(nil).ServeHTTP(w, req)
	case strings.HasPrefix(path, "/apis/"):
		h.serveGroupDiscovery(w, req, v, path)
	case path == "/openapi/v3":
		serveOpenAPIIndex(w, req, v, next, builtinOpenAPI)
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

// exportView is the view of the virtual workspace of ref: its exported and
// claimed resources, and the APIBindings. It is built once per version of the
// export's cluster, unless the export claims other exports' resources, which
// each target cluster serves as it bound them.
func (h *Handler) exportView(ctx context.Context, ref apiexport.Ref) (*view, error) {
	p, err := h.config.Exports.Get(ctx, ref.Cluster)
	if err != nil {
		return nil, err
	}
	if export := p.Export(ref.Export); export != nil && !slices.ContainsFunc(export.Spec.PermissionClaims, func(c apisv1alpha2.PermissionClaim) bool { return c.IdentityHash != "" }) {
		v, err := p.Memo("discovery/"+ref.Export, func() (any, error) { return h.buildExportView(context.WithoutCancel(ctx), ref) })
		if err != nil {
			return nil, err
		}
		return v.(*view), nil
	}
	return h.buildExportView(ctx, ref)
}

// buildExportView builds the view of the virtual workspace of ref.
func (h *Handler) buildExportView(ctx context.Context, ref apiexport.Ref) (*view, error) {
	defs, err := h.exportDefinitions(ctx, ref, func(apisv1alpha2.ResourceSchema) bool { return true })
	if err != nil {
		return nil, err
	}
	claimed, err := h.claimedDefinitions(ctx, ref, func(apisv1alpha2.PermissionClaim) bool { return true })
	if err != nil {
		return nil, err
	}
	defs = append(defs, claimed...)
	v := &view{served: map[schema.GroupResource]*definition{}}
	for _, d := range defs {
		v.served[schema.GroupResource{Group: d.Spec.Group, Resource: d.Spec.Names.Plural}] = d
		v.established = append(v.established, d.CustomResourceDefinition)
	}
	if err := v.discovery(); err != nil {
		return nil, err
	}
	for _, gv := range bindingVersions {
		v.add(gv, metav1.APIResource{Name: "apibindings", SingularName: "apibinding", Kind: "APIBinding", Verbs: metav1.Verbs{"get", "list", "watch"}})
	}
	if err := h.addClaimed(ctx, v, ref); err != nil {
		return nil, err
	}
	return v, nil
}

// addClaimed adds to v the built-in resources the export of ref claims, in
// every version the server serves them.
func (h *Handler) addClaimed(ctx context.Context, v *view, ref apiexport.Ref) error {
	export, err := h.config.Exports.Export(ctx, ref)
	if err != nil || export == nil {
		return err
	}
	claims := export.Spec.PermissionClaims
	for _, b := range []*Builtins{h.config.LegacyBuiltins, h.config.Builtins} {
		b.mu.Lock()
		for _, claim := range claims {
			for _, bv := range b.versions {
				if claim.IdentityHash != "" || bv.group != claim.Group {
					continue
				}
				for _, r := range bv.version.Resources {
					if r.Resource == claim.Resource {
						v.add(schema.GroupVersion{Group: bv.group, Version: bv.version.Version}, legacyResources(r)...)
					}
				}
			}
		}
		b.mu.Unlock()
	}
	return nil
}

// legacyResources are the unaggregated discovery entries of r: the resource
// and its subresources.
func legacyResources(r apidiscoveryv2.APIResourceDiscovery) []metav1.APIResource {
	kind := ""
	if r.ResponseKind != nil {
		kind = r.ResponseKind.Kind
	}
	namespaced := r.Scope == apidiscoveryv2.ScopeNamespace
	out := []metav1.APIResource{{
		Name: r.Resource, SingularName: r.SingularResource, Namespaced: namespaced, Kind: kind,
		Verbs: r.Verbs, ShortNames: r.ShortNames, Categories: r.Categories,
	}}
	for _, sub := range r.Subresources {
		s := metav1.APIResource{Name: r.Resource + "/" + sub.Subresource, Namespaced: namespaced, Verbs: sub.Verbs}
		if sub.ResponseKind != nil {
			s.Group, s.Version, s.Kind = sub.ResponseKind.Group, sub.ResponseKind.Version, sub.ResponseKind.Kind
		}
		out = append(out, s)
	}
	return out
}

// add adds resources of gv to the view's discovery, after its CRDs'; the
// core group is served at /api, the others at /apis.
func (v *view) add(gv schema.GroupVersion, resources ...metav1.APIResource) {
	if _, seen := v.resources[gv]; !seen && gv.Group != "" {
		i := slices.IndexFunc(v.groups, func(g metav1.APIGroup) bool { return g.Name == gv.Group })
		if i < 0 {
			v.groups = append(v.groups, metav1.APIGroup{Name: gv.Group})
			slices.SortFunc(v.groups, func(a, b metav1.APIGroup) int { return strings.Compare(a.Name, b.Name) })
			i = slices.IndexFunc(v.groups, func(g metav1.APIGroup) bool { return g.Name == gv.Group })
		}
		g := &v.groups[i]
		g.Versions = append(g.Versions, metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.Version})
		g.PreferredVersion = g.Versions[0]
	}
	v.resources[gv] = append(v.resources[gv], resources...)
	if gv.Group != "" {
		i := slices.IndexFunc(v.versions[gv.Group], func(d apidiscoveryv2.APIVersionDiscovery) bool { return d.Version == gv.Version })
		if i < 0 {
			v.versions[gv.Group] = append(v.versions[gv.Group], aggregatedVersion(gv, v.resources[gv]))
		} else {
			v.versions[gv.Group][i] = aggregatedVersion(gv, v.resources[gv])
		}
	}
}
