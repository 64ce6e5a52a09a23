package crd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"k8s.io/apiextensions-apiserver/pkg/apihelpers"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/conversion"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/handlers"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/warning"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/kube-openapi/pkg/validation/spec"
	"k8s.io/utils/lru"
	"sigs.k8s.io/structured-merge-diff/v6/typed"
	"sigs.k8s.io/yaml"

	"github.com/warren-dev/warren/apiserver/scheme"
	"github.com/warren-dev/warren/apiserver/virtual/apiexport"
	"github.com/warren-dev/warren/tenancy/clusterwatch"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

const (
	// cachedViews bounds how many clusters' CRD views are held.
	cachedViews = 4096
	// cachedServed bounds how many distinct CRD specs have built stores and
	// request scopes; the least recently used are dropped.
	cachedServed = 512
)

var (
	handlerBuilds = metrics.NewCounter(&metrics.CounterOpts{
		Namespace: "warren", Subsystem: "crd", Name: "handler_builds_total", StabilityLevel: metrics.ALPHA,
		Help: "Custom resource handlers built: one per distinct CRD spec served, again after eviction.",
	})
	handlersHeld = metrics.NewGauge(&metrics.GaugeOpts{
		Namespace: "warren", Subsystem: "crd", Name: "handlers", StabilityLevel: metrics.ALPHA,
		Help: "Custom resource handlers held, each shared by every cluster whose CRD has its spec.",
	})
)

func init() {
	legacyregistry.MustRegister(handlerBuilds, handlersHeld)
}

// listWatcher is the storage of CustomResourceDefinitions.
type listWatcher interface {
	rest.Lister
	rest.Watcher
}

// Config is what the handler serves with.
type Config struct {
	// CRDs is the storage of CustomResourceDefinitions.
	CRDs listWatcher
	// Options gives custom resource stores their storage.
	Options             generic.RESTOptionsGetter
	Authorizer          authorizer.Authorizer
	Admission           admission.Interface
	MaxRequestBodyBytes int64
	MinRequestTimeout   time.Duration
	// Builtins records the built-in groups for each cluster's discovery,
	// LegacyBuiltins the core group.
	Builtins, LegacyBuiltins *Builtins
	// APIBindings is the storage of APIBindings, whose bound resources a
	// cluster serves as it serves its CRDs; Schemas reads the
	// APIResourceSchemas they name.
	APIBindings listWatcher
	Schemas     rest.Getter
	// Exports caches APIExports and their schemas, whose resources their
	// virtual workspace serves across clusters; ExportOfIdentity finds an
	// export of an identity hash, whose resources another export may claim.
	Exports          *apiexport.Exports
	ExportOfIdentity func(hash string) (apiexport.Ref, bool)
}

// Handler serves the custom resources of every cluster: a request's cluster
// decides which CRDs exist. It also serves the discovery and OpenAPI of CRD
// groups, and, for clusters with CRDs, the merged root documents (Discovery).
type Handler struct {
	config     Config
	views      *clusterwatch.Views[*view]
	converters *conversion.CRConverterFactory
	static     map[string]*spec.Schema
	notFound   http.Handler

	mu     sync.Mutex // serializes building served CRDs
	served *lru.Cache // spec hash → *served
}

// New returns the handler; Run keeps its views of clusters' CRDs fresh.
func New(c Config, notFound http.Handler) (*Handler, error) {
	converters, err := conversion.NewCRConverterFactory(nil, nil)
	if err != nil {
		return nil, fmt.Errorf("CRD converters: %w", err)
	}
	return &Handler{
		config:     c,
		views:      clusterwatch.NewViews(cachedViews, loadView(c.CRDs, c.APIBindings, c.Schemas), c.CRDs, c.APIBindings),
		converters: converters,
		notFound:   notFound,
		served:     newServedCache(cachedServed),
	}, nil
}

// SetStaticOpenAPI gives the handler the OpenAPI models of the built-in types,
// which server-side apply of custom resources needs; call it once the built-in
// groups are installed, before serving.
func (h *Handler) SetStaticOpenAPI(models map[string]*spec.Schema) { h.static = models }

// Run keeps the views fresh until ctx ends.
func (h *Handler) Run(ctx context.Context) { h.views.Run(ctx) }

func (h *Handler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	ctx := req.Context()
	info, ok := genericapirequest.RequestInfoFrom(ctx)
	cluster, hasCluster := logicalcluster.From(ctx)
	if !ok || !hasCluster || !strings.HasPrefix(info.Path, "/apis/") {
		h.notFound.ServeHTTP(w, req)
		return
	}
	gr := schema.GroupResource{Group: info.APIGroup, Resource: info.Resource}
	// An export's virtual workspace serves only what is stored under the
	// export's identity, in one cluster as across all; across clusters
	// nothing else serves custom resources.
	if ref, vw := apiexport.From(ctx); vw || cluster == logicalcluster.Wildcard {
		if !vw || !info.IsResourceRequest {
			h.notFound.ServeHTTP(w, req)
			return
		}
		d, err := h.exportDefinition(ctx, ref, gr)
		if err != nil {
			h.internalError(w, req, err)
			return
		}
		h.serve(w, req, info, d)
		return
	}
	v, err := h.views.Get(ctx, cluster)
	if err != nil {
		h.internalError(w, req, err)
		return
	}
	if !info.IsResourceRequest {
		h.serveGroupDiscovery(w, req, v, info.Path)
		return
	}
	h.serve(w, req, info, v.served[gr])
}

// serve serves a resource request of the CRD of d, nil for none.
func (h *Handler) serve(w http.ResponseWriter, req *http.Request, info *genericapirequest.RequestInfo, crd *definition) {
	ctx := req.Context()
	if crd == nil || !servesVersion(crd.CustomResourceDefinition, info.APIVersion) || !scopeMatches(crd.CustomResourceDefinition, info) {
		h.notFound.ServeHTTP(w, req)
		return
	}
	s, err := h.servedFor(crd)
	if err != nil {
		h.internalError(w, req, err)
		return
	}
	defer s.release()
	sv, ok := s.versions[info.APIVersion]
	if !ok {
		h.notFound.ServeHTTP(w, req)
		return
	}
	for _, msg := range sv.warnings {
		warning.AddWarning(ctx, "", msg)
	}
	admit := h.config.Admission
	if !crd.DeletionTimestamp.IsZero() || apihelpers.IsCRDConditionTrue(crd.CustomResourceDefinition, apiextensionsv1.Terminating) {
		admit = refuseCreate{admit}
	}
	if info.Verb == "patch" && info.Subresource != "scale" && isApply(req) {
		if err := h.checkApply(req, sv.typeConverter); err != nil {
			responsewriters.ErrorNegotiated(err, scheme.Codecs, schema.GroupVersion{Group: info.APIGroup, Version: info.APIVersion}, w, req)
			return
		}
	}
	var serve http.HandlerFunc
	switch {
	case info.Subresource == "":
		serve = h.resourceVerb(info.Verb, sv, admit)
	case info.Subresource == "status" && sv.storage.Status != nil:
		serve = subresourceVerb(info.Verb, sv.storage.Status, sv.status, admit)
	case info.Subresource == "scale" && sv.storage.Scale != nil:
		serve = subresourceVerb(info.Verb, sv.storage.Scale, sv.scale, admit)
	default: // a subresource this version does not have
		h.notFound.ServeHTTP(w, req)
		return
	}
	if serve == nil {
		err := apierrors.NewMethodNotSupported(schema.GroupResource{Group: info.APIGroup, Resource: info.Resource}, info.Verb)
		responsewriters.ErrorNegotiated(err, scheme.Codecs, schema.GroupVersion{Group: info.APIGroup, Version: info.APIVersion}, w, req)
		return
	}
	serve(w, req)
}

// patchTypes are the patches custom resources take: no strategic merge, as
// they have no Go types to carry merge keys.
var patchTypes = []string{string(types.JSONPatchType), string(types.MergePatchType), string(types.ApplyYAMLPatchType)}

func (h *Handler) resourceVerb(verb string, sv *servedVersion, admit admission.Interface) http.HandlerFunc {
	store, scope := sv.storage.CustomResource, sv.main
	switch verb {
	case "get":
		return handlers.GetResource(store, scope)
	case "list":
		return handlers.ListResource(store, store, scope, false, h.config.MinRequestTimeout)
	case "watch":
		return handlers.ListResource(store, store, scope, true, h.config.MinRequestTimeout)
	case "create":
		return handlers.CreateResource(store, scope, admit)
	case "update":
		return handlers.UpdateResource(store, scope, admit)
	case "patch":
		return handlers.PatchResource(store, scope, admit, patchTypes)
	case "delete":
		return handlers.DeleteResource(store, true, scope, admit)
	case "deletecollection":
		return handlers.DeleteCollection(store, true, scope, admit)
	}
	return nil
}

// isApply tells a server-side apply patch.
func isApply(req *http.Request) bool {
	mediaType, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	return mediaType == string(types.ApplyYAMLPatchType)
}

// checkApply refuses, as a bad request, an apply patch that does not fit the
// resource's schema (an undeclared field): the field manager fails such a
// patch with an error that is no API status, which would be answered as an
// internal error. The body is read once and given back to the request.
func (h *Handler) checkApply(req *http.Request, tc managedfields.TypeConverter) error {
	body, err := io.ReadAll(io.LimitReader(req.Body, h.config.MaxRequestBodyBytes+1))
	if err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("reading the patch: %v", err))
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	obj := map[string]any{}
	if int64(len(body)) > h.config.MaxRequestBodyBytes || yaml.Unmarshal(body, &obj) != nil {
		return nil // the patch handler answers these
	}
	if _, err := tc.ObjectToTyped(&unstructured.Unstructured{Object: obj}, typed.AllowDuplicates); err != nil {
		return apierrors.NewBadRequest(fmt.Sprintf("the applied object does not fit the schema: %v", err))
	}
	return nil
}

// subresource is the storage of status or scale.
type subresource interface {
	rest.Getter
	rest.Updater
	rest.Patcher
}

func subresourceVerb(verb string, store subresource, scope *handlers.RequestScope, admit admission.Interface) http.HandlerFunc {
	switch verb {
	case "get":
		return handlers.GetResource(store, scope)
	case "update":
		return handlers.UpdateResource(store, scope, admit)
	case "patch":
		return handlers.PatchResource(store, scope, admit, patchTypes)
	}
	return nil
}

// serveGroupDiscovery serves path, /apis/<group> or /apis/<group>/<version>,
// of the view's groups.
func (h *Handler) serveGroupDiscovery(w http.ResponseWriter, req *http.Request, v *view, path string) {
	if err := v.discovery(); err != nil {
		h.internalError(w, req, err)
		return
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	if len(parts) < 2 || len(parts) > 3 {
		h.notFound.ServeHTTP(w, req)
		return
	}
	g, ok := v.group(parts[1])
	if !ok {
		h.notFound.ServeHTTP(w, req)
		return
	}
	if len(parts) == 2 {
		writeDiscovery(w, req, &g)
		return
	}
	resources, ok := v.resources[schema.GroupVersion{Group: parts[1], Version: parts[2]}]
	if !ok {
		h.notFound.ServeHTTP(w, req)
		return
	}
	writeDiscovery(w, req, &metav1.APIResourceList{GroupVersion: parts[1] + "/" + parts[2], APIResources: resources})
}

// newServedCache returns a cache of size served specs that evicts the least
// recently used, to be destroyed once idle.
func newServedCache(size int) *lru.Cache {
	return lru.NewWithEvictionFunc(size, func(_ lru.Key, s any) { s.(*served).evict() })
}

// servedFor returns the stores and scopes of a CRD's spec, building them on
// first use, acquired for one request: the caller releases them.
func (h *Handler) servedFor(d *definition) (*served, error) {
	if s, ok := h.served.Get(d.hash); ok && s.(*served).acquire() {
		return s.(*served), nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if s, ok := h.served.Get(d.hash); ok && s.(*served).acquire() {
		return s.(*served), nil
	}
	s, err := newServed(&servingInputs{
		options:      h.config.Options,
		converters:   h.converters,
		authorizer:   h.config.Authorizer,
		static:       h.static,
		maxBodyBytes: h.config.MaxRequestBodyBytes,
		prefix:       d.prefix,
	}, d.CustomResourceDefinition)
	if err != nil {
		return nil, fmt.Errorf("serving CRD %s: %w", d.Name, err)
	}
	s.acquire()
	h.served.Add(d.hash, s)
	handlerBuilds.Inc()
	handlersHeld.Set(float64(h.served.Len()))
	return s, nil
}

func (h *Handler) internalError(w http.ResponseWriter, req *http.Request, err error) {
	responsewriters.ErrorNegotiated(apierrors.NewInternalError(err), scheme.Codecs, schema.GroupVersion{}, w, req)
}

func servesVersion(crd *apiextensionsv1.CustomResourceDefinition, version string) bool {
	for _, v := range crd.Spec.Versions {
		if v.Name == version {
			return v.Served
		}
	}
	return false
}

// scopeMatches says whether a request's namespace fits the CRD's scope: a
// namespaced resource may be listed, watched and deleted across namespaces.
func scopeMatches(crd *apiextensionsv1.CustomResourceDefinition, info *genericapirequest.RequestInfo) bool {
	if crd.Spec.Scope != apiextensionsv1.NamespaceScoped {
		return info.Namespace == ""
	}
	return info.Namespace != "" || info.Verb == "list" || info.Verb == "watch" || info.Verb == "deletecollection"
}

// refuseCreate refuses to create custom resources of a CRD being deleted.
type refuseCreate struct {
	admission.Interface
}

var errTerminating = errors.New("create not allowed while custom resource definition is terminating")

func (r refuseCreate) Handles(op admission.Operation) bool {
	return op == admission.Create || r.Interface.Handles(op)
}

func (r refuseCreate) Admit(ctx context.Context, a admission.Attributes, o admission.ObjectInterfaces) error {
	if a.GetOperation() == admission.Create {
		return apierrors.NewForbidden(a.GetResource().GroupResource(), a.GetName(), errTerminating)
	}
	if m, ok := r.Interface.(admission.MutationInterface); ok {
		return m.Admit(ctx, a, o)
	}
	return nil
}

func (r refuseCreate) Validate(ctx context.Context, a admission.Attributes, o admission.ObjectInterfaces) error {
	if a.GetOperation() == admission.Create {
		return apierrors.NewForbidden(a.GetResource().GroupResource(), a.GetName(), errTerminating)
	}
	if v, ok := r.Interface.(admission.ValidationInterface); ok {
		return v.Validate(ctx, a, o)
	}
	return nil
}

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}
