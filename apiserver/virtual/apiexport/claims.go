package apiexport

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/kcp-dev/logicalcluster/v3"
	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"

	"github.com/warren-dev/warren/apiserver/registry"
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
	views *clusterwatch.Views[granted]
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
	return &Claims{views: clusterwatch.NewViews(cachedClaims, loadGranted(bindings), bindings)}
}

// Run keeps the claims fresh until ctx ends.
func (c *Claims) Run(ctx context.Context) { c.views.Run(ctx) }

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

// Visibility narrows a request of a claimed resource in the virtual
// workspace to the objects the accepted claims select (registry.WithVisible);
// exports reads APIExports. It must run after authorization.
func (c *Claims) Visibility(exports rest.Getter, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx := req.Context()
		ref, vw := From(ctx)
		info, ok := genericapirequest.RequestInfoFrom(ctx)
		if !vw || !ok || !info.IsResourceRequest {
			next.ServeHTTP(w, req)
			return
		}
		gr := schema.GroupResource{Group: info.APIGroup, Resource: info.Resource}
		obj, err := exports.Get(genericapirequest.WithNamespace(warrencluster.WithName(ctx, ref.Cluster), ""), ref.Export, &metav1.GetOptions{})
		if err != nil {
			next.ServeHTTP(w, req) // the authorizer let nothing through
			return
		}
		if _, claimed := claimOf(obj.(*apisv1alpha2.APIExport), gr); !claimed || exported(obj.(*apisv1alpha2.APIExport), gr.Group, gr.Resource) {
			next.ServeHTTP(w, req)
			return
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
