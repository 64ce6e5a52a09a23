package crd

import (
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apiserver/pkg/endpoints/discovery"
	"k8s.io/apiserver/pkg/endpoints/discovery/aggregated"
	"k8s.io/apiserver/pkg/endpoints/handlers/negotiation"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/kube-openapi/pkg/handler3"

	"github.com/warren-dev/warren/apiserver/scheme"
	"github.com/warren-dev/warren/apiserver/virtual/apiexport"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// Builtins is the aggregated discovery manager of the built-in groups. It
// records what the server registers, so each cluster's discovery can show the
// built-in groups beside its own CRD groups (written here, not through another
// ResourceManager, which logs every group it is given).
type Builtins struct {
	aggregated.ResourceManager
	mu       sync.Mutex
	versions []builtinVersion
	legacy   discovery.GroupManager
}

type builtinVersion struct {
	group   string
	version apidiscoveryv2.APIVersionDiscovery
}

// NewBuiltins returns the manager; give it to the server's config as its
// AggregatedDiscoveryGroupManager.
func NewBuiltins() *Builtins {
	return &Builtins{ResourceManager: aggregated.NewResourceManager("apis")}
}

// NewLegacyBuiltins returns the manager of the core group; set it as the
// server's AggregatedLegacyDiscoveryGroupManager before installing the core
// group.
func NewLegacyBuiltins() *Builtins {
	return &Builtins{ResourceManager: aggregated.NewResourceManager("api")}
}

func (b *Builtins) AddGroupVersion(group string, v apidiscoveryv2.APIVersionDiscovery) {
	b.mu.Lock()
	b.versions = append(b.versions, builtinVersion{group: group, version: v})
	b.mu.Unlock()
	b.ResourceManager.AddGroupVersion(group, v)
}

// SetLegacy gives the manager of the unaggregated /apis document, once the
// server is built.
func (b *Builtins) SetLegacy(m discovery.GroupManager) { b.legacy = m }

// Groups returns the names of the built-in groups.
func (b *Builtins) Groups() map[string]bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	groups := map[string]bool{"": true}
	for _, v := range b.versions {
		groups[v.group] = true
	}
	return groups
}

// Discovery serves, for clusters with CRDs, the root documents that list APIs:
// /apis (both forms) and the OpenAPI v3 index, and the OpenAPI v3 documents of
// CRD groups. Other requests, and clusters without CRDs, go to next.
func (h *Handler) Discovery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if ref, vw := apiexport.From(req.Context()); vw {
			if info, ok := genericapirequest.RequestInfoFrom(req.Context()); ok && info.IsResourceRequest {
				next.ServeHTTP(w, req)
				return
			}
			h.serveExportDiscovery(w, req, ref, next)
			return
		}
		path := strings.TrimSuffix(req.URL.Path, "/")
		gvPath, isOpenAPIGroup := strings.CutPrefix(path, "/openapi/v3/")
		if path != "/apis" && path != "/openapi/v3" && !isOpenAPIGroup {
			next.ServeHTTP(w, req)
			return
		}
		cluster, ok := logicalcluster.From(req.Context())
		if !ok || cluster == logicalcluster.Wildcard {
			next.ServeHTTP(w, req)
			return
		}
		v, err := h.views.Get(req.Context(), cluster)
		if err != nil {
			h.internalError(w, req, err)
			return
		}
		if len(v.established) == 0 {
			next.ServeHTTP(w, req)
			return
		}
		if err := v.discovery(); err != nil {
			h.internalError(w, req, err)
			return
		}
		switch {
		case path == "/apis":
			v.root(h.config.Builtins).ServeHTTP(w, req)
		case path == "/openapi/v3":
			serveOpenAPIIndex(w, req, v, next, func(string) bool { return true })
		default:
			gv, err := schema.ParseGroupVersion(strings.TrimPrefix(gvPath, "apis/"))
			doc, ok := v.openapi[gv]
			if err != nil || !ok || !strings.HasPrefix(gvPath, "apis/") {
				next.ServeHTTP(w, req)
				return
			}
			serveOpenAPI(w, req, doc)
		}
	})
}

// root returns the /apis handler of the view: the built-in groups (none for
// a nil b), then the view's groups, unaggregated or aggregated as the client
// asks.
func (v *view) root(b *Builtins) http.Handler {
	v.rootOnce.Do(func() {
		list := &apidiscoveryv2.APIGroupDiscoveryList{}
		if b != nil {
			index := map[string]int{}
			b.mu.Lock()
			for _, bv := range b.versions {
				i, ok := index[bv.group]
				if !ok {
					i = len(list.Items)
					index[bv.group] = i
					list.Items = append(list.Items, apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: bv.group}})
				}
				list.Items[i].Versions = append(list.Items[i].Versions, bv.version)
			}
			b.mu.Unlock()
		}
		for _, g := range v.groups {
			list.Items = append(list.Items, apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: g.Name}, Versions: v.versions[g.Name]})
		}
		body, err := json.Marshal(list)
		etag := hashOf(body)
		aggregatedHandler := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			mediaType, _, nerr := negotiation.NegotiateOutputMediaType(req, discoveryCodecs, aggregated.DiscoveryEndpointRestrictions)
			if nerr != nil || mediaType.Convert == nil || mediaType.Convert.GroupVersion() != apidiscoveryv2.SchemeGroupVersion {
				responsewriters.ErrorNegotiated(negotiation.NewNotAcceptableError([]string{apidiscoveryv2.SchemeGroupVersion.String()}),
					scheme.Codecs, schema.GroupVersion{}, w, req)
				return
			}
			if err != nil {
				responsewriters.InternalError(w, req, err)
				return
			}
			aggregated.ServeHTTPWithETag(list, etag, apidiscoveryv2.SchemeGroupVersion, discoveryCodecs, w, req)
		})
		legacy := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			var all []metav1.APIGroup
			if b != nil {
				groups, err := b.legacy.Groups(req.Context(), req)
				if err != nil {
					responsewriters.InternalError(w, req, err)
					return
				}
				all = append(all, groups...)
			}
			all = append(all, v.groups...)
			writeDiscovery(w, req, &metav1.APIGroupList{Groups: all})
		})
		v.rootHandler = aggregated.WrapAggregatedDiscoveryToHandler(legacy, aggregatedHandler, nil)
	})
	return v.rootHandler
}

// discoveryCodecs encode aggregated discovery documents.
var discoveryCodecs = func() serializer.CodecFactory {
	s := runtime.NewScheme()
	utilruntime.Must(apidiscoveryv2.AddToScheme(s))
	return serializer.NewCodecFactory(s)
}()

func writeDiscovery(w http.ResponseWriter, req *http.Request, obj runtime.Object) {
	responsewriters.WriteObjectNegotiated(scheme.Codecs, negotiation.DefaultEndpointRestrictions, schema.GroupVersion{}, w, req, http.StatusOK, obj, false)
}

// serveOpenAPIIndex serves the OpenAPI v3 index: the built-in group versions
// next lists whose paths keep keeps, and the view's group versions. Their URLs
// are rooted at /openapi/v3, which clients resolve under the cluster's path.
func serveOpenAPIIndex(w http.ResponseWriter, req *http.Request, v *view, next http.Handler, keep func(path string) bool) {
	builtin := httptest.NewRecorder()
	// Ask for the whole document: the client's conditions are about ours.
	inner := req.Clone(req.Context())
	inner.Header = http.Header{"Accept": {"application/json"}}
	next.ServeHTTP(builtin, inner)
	var index handler3.OpenAPIV3Discovery
	if builtin.Code != http.StatusOK || json.Unmarshal(builtin.Body.Bytes(), &index) != nil {
		w.WriteHeader(builtin.Code)
		_, _ = w.Write(builtin.Body.Bytes())
		return
	}
	if index.Paths == nil {
		index.Paths = map[string]handler3.OpenAPIV3DiscoveryGroupVersion{}
	}
	maps.DeleteFunc(index.Paths, func(path string, _ handler3.OpenAPIV3DiscoveryGroupVersion) bool { return !keep(path) })
	for gv, doc := range v.openapi {
		index.Paths["apis/"+gv.String()] = handler3.OpenAPIV3DiscoveryGroupVersion{ServerRelativeURL: "/openapi/v3/apis/" + gv.String() + "?hash=" + doc.hash}
	}
	body, err := json.Marshal(index)
	if err != nil {
		responsewriters.InternalError(w, req, err)
		return
	}
	serveOpenAPI(w, req, &openapiDocument{json: body, hash: hashOf(body)})
}

// serveOpenAPI serves an OpenAPI document as JSON with its hash as ETag.
func serveOpenAPI(w http.ResponseWriter, req *http.Request, doc *openapiDocument) {
	etag := `"` + doc.hash + `"`
	w.Header().Set("Etag", etag)
	w.Header().Set("Vary", "Accept")
	if req.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if req.URL.Query().Get("hash") == doc.hash {
		w.Header().Set("Cache-Control", "public, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache, private")
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(doc.json)
}
