package apiexport

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"slices"
	"strconv"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/kcp-dev/logicalcluster/v3"
	apisv1alpha1 "github.com/kcp-dev/sdk/apis/apis/v1alpha1"
	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"

	"github.com/warren-dev/warren/apiserver/registry"
	"github.com/warren-dev/warren/apiserver/scheme"
	"github.com/warren-dev/warren/tenancy"
	"github.com/warren-dev/warren/tenancy/clusterwatch"
	warrencluster "github.com/warren-dev/warren/tenancy/logicalcluster"
)

// cachedClaims bounds how many clusters' granted claims are held.
const cachedClaims = 4096

// Claims knows what the APIBindings of each cluster grant exports through
// their accepted permission claims (status.appliedPermissionClaims), kept
// fresh by a watch of APIBindings. It decides, with the export's own claims,
// what a provider reaches of a consumer's resources of other APIs: only the
// claimed resources of clusters that accepted the claim, only the objects
// the accepted selector selects, only with the verbs of both claims. warren
// decides it when the provider reads, where kcp labels every claimed object.
//
// A claim names a built-in resource, or another export's resource by that
// export's identity hash: the provider then reaches the objects stored under
// that identity.
type Claims struct {
	bindings bindingLister
	views    *clusterwatch.Views[granted]

	mu sync.Mutex
	// applied are a hash of the applied claims of the bindings that have
	// some (8 bytes and a key each);
	// changed is the revision at which the claims of each export last
	// changed; watches are the open watches of claimed objects, by export.
	applied map[clusterwatch.Ref]uint64
	changed map[Ref]uint64
	watches map[Ref]map[*context.CancelFunc]bool
}

// granted are the claims the bindings of one cluster grant, by export.
type granted map[Ref]map[schema.GroupResource]grant

// grant is one accepted claim: its verbs, the objects it selects and the
// labels its selector requires.
type grant struct {
	verbs    []string
	selector labels.Selector
	labels   map[string]string
}

// bindingLister lists and watches APIBindings.
type bindingLister interface {
	rest.Lister
	rest.Watcher
}

// NewClaims returns the claims granted by the APIBindings of bindings; Run
// keeps them fresh.
func NewClaims(bindings bindingLister) *Claims {
	return &Claims{
		bindings: bindings,
		views:    clusterwatch.NewViews(cachedClaims, loadGranted(bindings), bindings),
		applied:  map[clusterwatch.Ref]uint64{},
		changed:  map[Ref]uint64{},
		watches:  map[Ref]map[*context.CancelFunc]bool{},
	}
}

// Run keeps the claims fresh until ctx ends.
func (c *Claims) Run(ctx context.Context) {
	go clusterwatch.Follow(ctx, c.bindings, nil, c.observe)
	c.views.Run(ctx)
}

func loadGranted(bindings rest.Lister) clusterwatch.Load[granted] {
	return func(ctx context.Context, cluster warrencluster.Name) (granted, uint64, error) {
		obj, err := bindings.List(genericapirequest.WithNamespace(warrencluster.WithName(ctx, cluster), ""), &metainternalversion.ListOptions{})
		if err != nil {
			return nil, 0, fmt.Errorf("listing the APIBindings of cluster %s: %w", cluster, err)
		}
		revision, err := clusterwatch.Revision(obj)
		if err != nil {
			return nil, 0, err
		}
		out := granted{}
		for _, b := range obj.(*apisv1alpha2.APIBindingList).Items {
			if b.Spec.Reference.Export == nil || b.Status.APIExportClusterName == "" || b.DeletionTimestamp != nil {
				continue
			}
			ref := Ref{Cluster: warrencluster.Name(b.Status.APIExportClusterName), Export: b.Spec.Reference.Export.Name}
			for _, c := range b.Status.AppliedPermissionClaims {
				selector := labels.Everything()
				if !c.Selector.MatchAll {
					if selector, err = metav1.LabelSelectorAsSelector(&c.Selector.LabelSelector); err != nil {
						continue // validation refuses such a selector
					}
				}
				if out[ref] == nil {
					out[ref] = map[schema.GroupResource]grant{}
				}
				out[ref][schema.GroupResource{Group: c.Group, Resource: c.Resource}] = grant{verbs: c.Verbs, selector: selector, labels: c.Selector.MatchLabels}
			}
		}
		return out, revision, nil
	}
}

// grant returns what cluster's bindings grant the export of ref of gr.
func (c *Claims) grant(ctx context.Context, cluster warrencluster.Name, ref Ref, gr schema.GroupResource) (grant, bool, error) {
	g, err := c.views.Get(ctx, cluster)
	if err != nil {
		return grant{}, false, err
	}
	out, ok := g[ref][gr]
	return out, ok, nil
}

// claimOf returns the export's claim of gr.
func claimOf(export *apisv1alpha2.APIExport, gr schema.GroupResource) (apisv1alpha2.PermissionClaim, bool) {
	for _, c := range export.Spec.PermissionClaims {
		if c.Group == gr.Group && c.Resource == gr.Resource {
			return c, true
		}
	}
	return apisv1alpha2.PermissionClaim{}, false
}

// allows tells whether verbs, which "*" may stand for, include verb.
func allows(verbs []string, verb string) bool {
	return slices.Contains(verbs, "*") || slices.Contains(verbs, verb)
}

// Visibility narrows a request of the virtual workspace (registry.WithVisible)
// to what its export may see: of APIBindings, those of the export; of a
// claimed resource, the objects the accepted claims select. A watch of a
// claimed resource ends when a binding's claims of the export change, and
// may not resume from before that change (410 Gone, so the watcher lists
// again and sees what it may see now). exports caches APIExports. It must run
// after authorization.
func (c *Claims) Visibility(exports *Exports, next http.Handler) http.Handler {
	bindings := apisv1alpha2.Resource("apibindings")
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx := req.Context()
		ref, vw := From(ctx)
		info, ok := genericapirequest.RequestInfoFrom(ctx)
		if !vw || !ok || !info.IsResourceRequest {
			next.ServeHTTP(w, req)
			return
		}
		gr := schema.GroupResource{Group: info.APIGroup, Resource: info.Resource}
		if gr == bindings {
			label := tenancy.ExportLabel(ref.Cluster, ref.Export)
			next.ServeHTTP(w, req.WithContext(registry.WithVisible(ctx, gr, func(o runtime.Object) bool {
				m, err := meta.Accessor(o)
				return err == nil && m.GetLabels()[apisv1alpha1.InternalAPIBindingExportLabelKey] == label
			})))
			return
		}
		export, err := exports.Export(ctx, ref)
		if err == nil && export == nil {
			err = apierrors.NewNotFound(apisv1alpha2.Resource("apiexports"), ref.Export)
		}
		if err != nil {
			responsewriters.ErrorNegotiated(err, scheme.Codecs, schema.GroupVersion{}, w, req)
			return
		}
		if _, claimed := claimOf(export, gr); !claimed || exported(export, gr.Group, gr.Resource) {
			next.ServeHTTP(w, req)
			return
		}
		if info.Verb == "watch" {
			var stop func()
			if ctx, stop, err = c.watching(ctx, ref, req.URL.Query().Get("resourceVersion")); err != nil {
				responsewriters.ErrorNegotiated(err, scheme.Codecs, schema.GroupVersion{}, w, req)
				return
			}
			defer stop()
		}
		visible := func(o runtime.Object) bool {
			m, err := meta.Accessor(o)
			if err != nil {
				return false
			}
			g, ok, err := c.grant(ctx, warrencluster.Name(logicalcluster.From(m)), ref, gr)
			return err == nil && ok && g.selector.Matches(labels.Set(m.GetLabels()))
		}
		next.ServeHTTP(w, req.WithContext(registry.WithVisible(ctx, gr, visible)))
	})
}

// watching registers a watch of claimed objects through the export of ref,
// from resourceVersion: it returns its context, which ends when a binding's
// claims of the export change, and stop, to call when the watch ends. A watch
// from before the last such change is refused as expired.
func (c *Claims) watching(ctx context.Context, ref Ref, resourceVersion string) (context.Context, func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rv, err := strconv.ParseUint(resourceVersion, 10, 64); err == nil && rv > 0 && rv < c.changed[ref] {
		return nil, nil, apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (the export's permission claims changed at %d)", rv, c.changed[ref]))
	}
	ctx, cancel := context.WithCancel(ctx)
	w := &cancel
	if c.watches[ref] == nil {
		c.watches[ref] = map[*context.CancelFunc]bool{}
	}
	c.watches[ref][w] = true
	return ctx, func() {
		cancel()
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.watches[ref], w)
		if len(c.watches[ref]) == 0 {
			delete(c.watches, ref)
		}
	}, nil
}

// observe notes, from every change of an APIBinding, when the claims it
// grants change: it remembers the applied claims of the bindings that have
// some, and ends the watches of claimed objects of their export.
func (c *Claims) observe(ev clusterwatch.Event) {
	b, ok := ev.Object.(*apisv1alpha2.APIBinding)
	if !ok || b.Spec.Reference.Export == nil || b.Status.APIExportClusterName == "" {
		return
	}
	ref := Ref{Cluster: warrencluster.Name(b.Status.APIExportClusterName), Export: b.Spec.Reference.Export.Name}
	key := clusterwatch.Ref{Cluster: ev.Cluster, Name: b.Name}
	var claims uint64
	if ev.Type != watch.Deleted && len(b.Status.AppliedPermissionClaims) > 0 {
		j, err := json.Marshal(b.Status.AppliedPermissionClaims)
		if err != nil {
			return
		}
		h := fnv.New64a()
		_, _ = h.Write(j)
		claims = h.Sum64() | 1 // never 0, which stands for none
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.applied[key] == claims {
		return
	}
	if claims == 0 {
		delete(c.applied, key)
	} else {
		c.applied[key] = claims
	}
	if rv, err := strconv.ParseUint(b.ResourceVersion, 10, 64); err == nil && rv > c.changed[ref] {
		c.changed[ref] = rv
	}
	for cancel := range c.watches[ref] {
		(*cancel)()
	}
}

// authorizeClaim decides a request of a resource the export claims: across
// clusters, lists and watches within the export's verbs; in one cluster, the
// verbs both the export's claim and the cluster's accepting binding name.
func (a *Authorizer) authorizeClaim(ctx context.Context, ref Ref, claim apisv1alpha2.PermissionClaim, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	verb := attrs.GetVerb()
	target, ok := warrencluster.From(ctx)
	if !ok {
		return authorizer.DecisionDeny, noBinding, nil
	}
	if target == warrencluster.Wildcard {
		if (verb == "list" || verb == "watch") && allows(claim.Verbs, verb) {
			return authorizer.DecisionAllow, "", nil
		}
		return authorizer.DecisionDeny, noReason, nil
	}
	g, ok, err := a.claims.grant(ctx, target, ref, schema.GroupResource{Group: attrs.GetAPIGroup(), Resource: attrs.GetResource()})
	if err != nil {
		return authorizer.DecisionNoOpinion, "", err
	}
	if ok && allows(tenancy.ClaimVerbs(g.verbs, claim.Verbs), verb) {
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionDeny, noReason, nil
}

// SelectorAdmission gives an object the provider creates or updates through
// the virtual workspace, of a claimed resource, the labels its claim's
// selector requires, as kcp does, and refuses one that would not be selected.
type SelectorAdmission struct {
	*admission.Handler
	claims *Claims
}

var (
	_ admission.MutationInterface   = (*SelectorAdmission)(nil)
	_ admission.ValidationInterface = (*SelectorAdmission)(nil)
)

// NewSelectorAdmission returns the plugin.
func NewSelectorAdmission(claims *Claims) *SelectorAdmission {
	return &SelectorAdmission{Handler: admission.NewHandler(admission.Create, admission.Update), claims: claims}
}

// claimed returns the grant of the resource of attrs in the request's
// cluster and the object written, if the request is one of the virtual
// workspace of a claimed resource.
func (s *SelectorAdmission) claimed(ctx context.Context, attrs admission.Attributes) (grant, metav1.Object, bool, error) {
	ref, vw := From(ctx)
	cluster, ok := warrencluster.From(ctx)
	if !vw || !ok || cluster == warrencluster.Wildcard || attrs.GetSubresource() != "" {
		return grant{}, nil, false, nil
	}
	g, ok, err := s.claims.grant(ctx, cluster, ref, attrs.GetResource().GroupResource())
	if err != nil || !ok {
		return grant{}, nil, false, err
	}
	m, err := meta.Accessor(attrs.GetObject())
	if err != nil {
		return grant{}, nil, false, nil
	}
	return g, m, true, nil
}

// Admit implements admission.MutationInterface.
func (s *SelectorAdmission) Admit(ctx context.Context, attrs admission.Attributes, _ admission.ObjectInterfaces) error {
	g, m, ok, err := s.claimed(ctx, attrs)
	if err != nil || !ok {
		return err
	}
	set := m.GetLabels()
	for k, v := range g.labels {
		switch have, ok := set[k]; {
		case !ok:
			if set == nil {
				set = map[string]string{}
			}
			set[k] = v
		case have != v:
			return admission.NewForbidden(attrs, fmt.Errorf("protected label %s must have value %s", k, v))
		}
	}
	m.SetLabels(set)
	return nil
}

// Validate implements admission.ValidationInterface.
func (s *SelectorAdmission) Validate(ctx context.Context, attrs admission.Attributes, _ admission.ObjectInterfaces) error {
	g, m, ok, err := s.claimed(ctx, attrs)
	if err != nil || !ok {
		return err
	}
	if !g.selector.Matches(labels.Set(m.GetLabels())) {
		return admission.NewForbidden(attrs, fmt.Errorf("the object's labels do not match the selector %q of the permission claim", g.selector))
	}
	return nil
}
