// Package apiexport serves kcp's APIExport virtual workspace: the one endpoint
// through which a provider's controller reads and writes the objects of its
// exported resources in every workspace that binds them,
//
//	/services/apiexport/<export's logical cluster>/<export>/clusters/*/…           (list and watch)
//	/services/apiexport/<export's logical cluster>/<export>/clusters/<cluster>/…   (every verb)
//
// on the same port as the workspaces. A request there is decided by the
// export, not by the consumer's RBAC: its user needs the request's verb on
// apiexports/content of the export in the export's workspace, and the export
// must have its identity; in one cluster, that cluster must bind the export
// and the resource must be one the binding bound. It reaches only the objects
// stored under the export's identity: nothing of the consumers' own APIs, and
// nothing of another export of the same group and resource. As in kcp, a
// cluster is named by its logical cluster name, never by a path.
//
// Its discovery and OpenAPI, at /clusters/* as at /clusters/<cluster>, show the
// export's resources and, in apis.kcp.io, the APIBindings of the export, which
// it serves read-only: those labelled with the export (see tenancy.Bind).
//
// It serves the resources the export claims of the clusters that accepted
// the claims (see Claims).
package apiexport

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"

	"github.com/warren-dev/warren/apiserver/scheme"
	"github.com/warren-dev/warren/tenancy"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// Prefix starts the URL path of every APIExport virtual workspace; endpoint
// slices publish it.
const Prefix = tenancy.VirtualWorkspacePrefix

// Ref names the export a request of the virtual workspace is for.
type Ref struct {
	// Cluster is the export's logical cluster.
	Cluster logicalcluster.Name
	Export  string
}

type refKey struct{}

// From returns the export of a request of the virtual workspace.
func From(ctx context.Context) (Ref, bool) {
	r, ok := ctx.Value(refKey{}).(Ref)
	return r, ok
}

// Routing takes the requests of the virtual workspace: it records their export
// in the context and hands them on as requests of /clusters/<cluster>/…, which
// the workspace routing resolves. Other paths under /services/apiexport/ are
// 404.
func Routing(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if !strings.HasPrefix(req.URL.Path, Prefix) {
			next.ServeHTTP(w, req)
			return
		}
		ref, target, rest, err := parse(strings.TrimPrefix(req.URL.Path, Prefix))
		if err != nil {
			responsewriters.ErrorNegotiated(apierrors.NewNotFound(schema.GroupResource{}, req.URL.Path), scheme.Codecs, schema.GroupVersion{}, w, req)
			return
		}
		r := req.WithContext(context.WithValue(req.Context(), refKey{}, ref))
		u := *req.URL
		u.Path, u.RawPath = "/clusters/"+target+rest, ""
		r.URL = &u
		r.RequestURI = u.RequestURI()
		next.ServeHTTP(w, r)
	})
}

// parse splits <cluster>/<export>/clusters/<target><rest>.
func parse(path string) (ref Ref, target, rest string, err error) {
	parts := strings.SplitN(path, "/", 5)
	if len(parts) < 4 || parts[2] != "clusters" {
		return Ref{}, "", "", fmt.Errorf("not a path of the virtual workspace")
	}
	if err := logicalcluster.Validate(parts[0]); err != nil {
		return Ref{}, "", "", err
	}
	if errs := validation.IsDNS1123Subdomain(parts[1]); len(errs) > 0 {
		return Ref{}, "", "", fmt.Errorf("invalid export name: %s", errs[0])
	}
	target = parts[3]
	if target != string(logicalcluster.Wildcard) {
		if err := logicalcluster.Validate(target); err != nil {
			return Ref{}, "", "", err
		}
	}
	if len(parts) == 5 {
		rest = "/" + parts[4]
	}
	return Ref{Cluster: logicalcluster.Name(parts[0]), Export: parts[1]}, target, rest, nil
}

// kcp's reasons for denying a request of the virtual workspace.
const (
	noBinding = "could not find suitable APIBinding in target logical cluster"
	noReason  = "failed to find suitable reason to allow access in APIBinding"
)

// Authorizer decides every request of the virtual workspace, and no other.
type Authorizer struct {
	exports  *Exports
	bindings bindings
	claims   *Claims
	// content decides verbs on apiexports/content in the export's cluster:
	// the installation's admins and that cluster's RBAC.
	content authorizer.Authorizer
}

var _ authorizer.Authorizer = (*Authorizer)(nil)

// bindings reads APIBindings.
type bindings interface {
	rest.Getter
	rest.Lister
}

// NewAuthorizer returns the authorizer; exports reads APIExports, bindings
// APIBindings, claims tells what bindings grant through permission claims.
func NewAuthorizer(exports *Exports, bindings bindings, claims *Claims, content authorizer.Authorizer) *Authorizer {
	return &Authorizer{exports: exports, bindings: bindings, claims: claims, content: content}
}

// Authorize implements authorizer.Authorizer.
func (a *Authorizer) Authorize(ctx context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	ref, ok := From(ctx)
	if !ok {
		return authorizer.DecisionNoOpinion, "", nil
	}
	if attrs.GetVerb() == "impersonate" {
		return authorizer.DecisionDeny, "impersonation is not allowed in a virtual workspace", nil
	}
	decision, reason, err := a.content.Authorize(logicalcluster.WithName(ctx, ref.Cluster), authorizer.AttributesRecord{
		User:            attrs.GetUser(),
		Verb:            attrs.GetVerb(),
		APIGroup:        apisv1alpha2.SchemeGroupVersion.Group,
		APIVersion:      apisv1alpha2.SchemeGroupVersion.Version,
		Resource:        "apiexports",
		Subresource:     "content",
		Name:            ref.Export,
		ResourceRequest: true,
	})
	if err != nil || decision != authorizer.DecisionAllow {
		return authorizer.DecisionDeny, fmt.Sprintf("API export: %q, workspace: %q RBAC decision: %s", ref.Export, ref.Cluster, reason), nil
	}
	export, err := a.exports.Export(ctx, ref)
	if err != nil {
		return authorizer.DecisionNoOpinion, "", err
	}
	if export == nil {
		return authorizer.DecisionDeny, noReason, nil
	}
	if !attrs.IsResourceRequest() {
		// Discovery and OpenAPI; the handler serves nothing else.
		return authorizer.DecisionAllow, "", nil
	}
	if attrs.GetAPIGroup() == apisv1alpha2.SchemeGroupVersion.Group && attrs.GetResource() == "apibindings" {
		return authorizeBindings(attrs)
	}
	if export.Status.IdentityHash == "" {
		return authorizer.DecisionDeny, noReason, nil
	}
	if !exported(export, attrs.GetAPIGroup(), attrs.GetResource()) {
		if claim, ok := claimOf(export, schema.GroupResource{Group: attrs.GetAPIGroup(), Resource: attrs.GetResource()}); ok {
			return a.authorizeClaim(ctx, ref, claim, attrs)
		}
		return authorizer.DecisionDeny, noReason, nil
	}
	target, ok := logicalcluster.From(ctx)
	if !ok {
		return authorizer.DecisionDeny, noBinding, nil
	}
	if target == logicalcluster.Wildcard {
		return authorizer.DecisionAllow, "", nil
	}
	list, err := a.bindings.List(genericapirequest.WithNamespace(ctx, ""), &metainternalversion.ListOptions{})
	if err != nil {
		return authorizer.DecisionNoOpinion, "", err
	}
	found := false
	for _, b := range list.(*apisv1alpha2.APIBindingList).Items {
		if b.Status.APIExportClusterName != string(ref.Cluster) || b.Spec.Reference.Export == nil || b.Spec.Reference.Export.Name != ref.Export {
			continue
		}
		found = true
		for _, r := range b.Status.BoundResources {
			if r.Group == attrs.GetAPIGroup() && r.Resource == attrs.GetResource() && r.Schema.IdentityHash == export.Status.IdentityHash {
				return authorizer.DecisionAllow, "", nil
			}
		}
	}
	if !found {
		return authorizer.DecisionDeny, noBinding, nil
	}
	return authorizer.DecisionDeny, noReason, nil
}

// authorizeBindings decides a request of APIBindings, which the virtual
// workspace serves read-only; Claims.Visibility shows it only the export's.
func authorizeBindings(attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	switch attrs.GetVerb() {
	case "get", "list", "watch":
		if attrs.GetSubresource() == "" {
			return authorizer.DecisionAllow, "", nil
		}
	}
	return authorizer.DecisionDeny, "APIBindings are read-only in the virtual workspace", nil
}

// ConditionsAwareAuthorize implements authorizer.Authorizer; its decisions are
// unconditional.
func (a *Authorizer) ConditionsAwareAuthorize(ctx context.Context, attrs authorizer.Attributes) authorizer.ConditionsAwareDecision {
	return authorizer.ConditionsAwareDecisionFromParts(a.Authorize(ctx, attrs))
}

// EvaluateConditions implements authorizer.Authorizer.
func (a *Authorizer) EvaluateConditions(context.Context, authorizer.ConditionsAwareDecision, authorizer.ConditionsData) (authorizer.Decision, string, error) {
	return authorizer.DecisionDeny, "", authorizer.ErrorConditionEvaluationNotSupported
}

// exported tells whether export exports the resource of group; an export
// never exports a built-in resource (its schema may name one), which only a
// permission claim reaches.
func exported(export *apisv1alpha2.APIExport, group, resource string) bool {
	if scheme.Scheme.IsGroupRegistered(group) {
		return false
	}
	for _, r := range export.Spec.Resources {
		if r.Group == group && r.Name == resource && r.Storage.CRD != nil {
			return true
		}
	}
	return false
}
