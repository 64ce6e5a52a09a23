package apiserver

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/anonymous"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	authnunion "k8s.io/apiserver/pkg/authentication/request/union"
	"k8s.io/apiserver/pkg/authentication/request/x509"
	"k8s.io/apiserver/pkg/authentication/token/tokenfile"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	authzpath "k8s.io/apiserver/pkg/authorization/path"
	authzunion "k8s.io/apiserver/pkg/authorization/union"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	// The controllers' work queues report on /metrics (depth, latency,
	// work per controller, by queue name).
	_ "k8s.io/component-base/metrics/prometheus/workqueue"

	"github.com/warren-dev/warren/apiserver/clientcert"
	"github.com/warren-dev/warren/apiserver/frontproxy"
	"github.com/warren-dev/warren/apiserver/pki"
	"github.com/warren-dev/warren/apiserver/registry"
	"github.com/warren-dev/warren/apiserver/scheme"
	"github.com/warren-dev/warren/tenancy"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// healthPaths are served to everyone, authenticated or not.
var healthPaths = []string{"/healthz", "/livez", "/readyz", "/healthz/*", "/livez/*", "/readyz/*"}

// Server is a running warren apiserver.
type Server struct {
	generic *genericapiserver.GenericAPIServer
	storage Storage
	// Kubeconfig is the path of the admin's kubeconfig.
	Kubeconfig string
	// URL is where the server serves.
	URL string
}

// NewServer builds the apiserver the options describe, opening its storage:
// Options → Config → CompletedConfig → Server.
func NewServer(ctx context.Context, o *Options) (*Server, error) {
	c, err := o.Config(ctx)
	if err != nil {
		return nil, err
	}
	return c.Complete().New(ctx)
}

// Run serves until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	defer s.close()
	return s.generic.PrepareRun().RunWithContext(ctx)
}

func (s *Server) close() { s.storage.Close() }

// servingHosts are the names the serving certificate covers.
func servingHosts(o *Options) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if ip := o.SecureServing.BindAddress; ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
		hosts = append(hosts, ip.String())
	}
	if name, err := os.Hostname(); err == nil {
		hosts = append(hosts, name)
	}
	return hosts
}

// authentication accepts requests passed on by a front proxy (a client
// certificate of frontProxyCA, the user in X-Remote-* headers), client
// certificates of the installation's CA, service account tokens, tokens of
// identity providers (jwt, if set), static tokens (of tokenFile, if set), and
// anonymous requests to health endpoints only.
// tokens authenticates bearer tokens alone, for token reviews.
func authentication(tokenFile string, jwt authenticator.Token, ca, frontProxyCA dynamiccertificates.CAContentProvider, serviceAccounts authenticator.Token) (all, tokens authenticator.Request, err error) {
	bearers := []authenticator.Request{bearertoken.New(serviceAccounts)}
	if jwt != nil {
		bearers = append(bearers, bearertoken.New(jwt))
	}
	if tokenFile != "" {
		static, err := tokenfile.NewCSV(tokenFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--token-auth-file: %w", err)
		}
		bearers = append(bearers, bearertoken.New(static))
	}
	tokens = group.NewAuthenticatedGroupAdder(authnunion.New(bearers...))
	proxied := headerrequest.NewDynamicVerifyOptionsSecure(frontProxyCA.VerifyOptions,
		headerrequest.StaticStringSlice{pki.FrontProxyUser}, headerrequest.StaticStringSlice{frontproxy.UserHeader},
		headerrequest.StaticStringSlice{frontproxy.UIDHeader}, headerrequest.StaticStringSlice{frontproxy.GroupHeader},
		headerrequest.StaticStringSlice{frontproxy.ExtraHeaderPrefix})
	certs := clientcert.Remember(x509.NewDynamic(ca.VerifyOptions, x509.CommonNameUserConversion), ca.VerifyOptions)
	authenticators := append([]authenticator.Request{proxied, certs}, bearers...)
	all = authnunion.New(
		group.NewAuthenticatedGroupAdder(authnunion.New(authenticators...)),
		healthOnly(anonymous.NewAuthenticator(nil)),
	)
	return impersonationScoped(all), tokens, nil
}

// impersonationWorkspace is the key of the requestor's extra information that
// names the workspace a request impersonating someone is made in.
const impersonationWorkspace = "impersonation.warren.dev/workspace"

// impersonationScoped names, in the requestor's extra information, the
// workspace a request that impersonates someone is made in. k8s.io/apiserver's
// impersonation filter remembers for a few seconds which impersonations a
// requestor was allowed, keyed by the requestor and the impersonated user
// alone; a workspace's RBAC decides impersonation in it, so without the
// workspace in the key an impersonation allowed in one workspace would pass
// unchecked in any other.
func impersonationScoped(a authenticator.Request) authenticator.Request {
	return authenticator.RequestFunc(func(req *http.Request) (*authenticator.Response, bool, error) {
		resp, ok, err := a.AuthenticateRequest(req)
		if !ok || err != nil || !impersonates(req) {
			return resp, ok, err
		}
		u := resp.User
		extra := maps.Clone(u.GetExtra())
		if extra == nil {
			extra = map[string][]string{}
		}
		extra[impersonationWorkspace] = []string{logicalcluster.Target(req.Context())}
		scoped := *resp
		scoped.User = &user.DefaultInfo{Name: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups(), Extra: extra}
		return &scoped, true, nil
	})
}

// impersonates reports whether req asks to act as someone else.
func impersonates(req *http.Request) bool {
	for h := range req.Header {
		if strings.HasPrefix(h, "Impersonate-") {
			return true
		}
	}
	return false
}

// healthOnly lets a authenticate requests to health paths only.
func healthOnly(a authenticator.Request) authenticator.Request {
	return authenticator.RequestFunc(func(req *http.Request) (*authenticator.Response, bool, error) {
		for _, p := range healthPaths {
			if prefix, ok := strings.CutSuffix(p, "*"); ok && strings.HasPrefix(req.URL.Path, prefix) || req.URL.Path == p {
				return a.AuthenticateRequest(req)
			}
		}
		return nil, false, nil
	})
}

// adminGroups are the installation's admins: Kubernetes' and kcp's. They may
// do anything in every cluster and across them; no workspace grants or
// withholds it.
var adminGroups = []string{user.SystemPrivilegedGroup, "system:kcp:admin"}

// isAdmin tells an installation admin.
func isAdmin(u user.Info) bool {
	return slices.ContainsFunc(u.GetGroups(), func(g string) bool { return slices.Contains(adminGroups, g) })
}

// reservedGroups are kcp's system groups besides the admins', and warren's
// shards': no workspace can grant impersonating them.
var reservedGroups = []string{
	"system:kcp:logical-cluster-admin", "system:kcp:external-logical-cluster-admin",
	"system:kcp:tenancy:workspace-bootstrapper", user.AllAuthenticated, tenancy.ShardsGroup,
}

// newAuthorizer decides, first, the requests of virtual workspaces (virtual,
// by the export they are for), then who may enter the request's workspace at
// all (access, which also looks the workspace up), then allows health endpoints
// to everyone, everything to the installation's admins, and leaves the rest to
// the RBAC of the request's cluster.
func newAuthorizer(virtual, access, rbac authorizer.Authorizer) (authorizer.Authorizer, error) {
	health, err := authzpath.NewAuthorizer(healthPaths)
	if err != nil {
		return nil, err
	}
	return authzunion.New(
		authzunion.NamedAuthorizer{AuthorizerName: "installation-endpoints", Authorizer: installationEndpoints},
		// It decides every request of a virtual workspace, and no other.
		authzunion.NamedAuthorizer{AuthorizerName: "virtual-workspace", Authorizer: virtual},
		authzunion.NamedAuthorizer{AuthorizerName: "workspace-access", Authorizer: access},
		authzunion.NamedAuthorizer{AuthorizerName: "health", Authorizer: health},
		authzunion.NamedAuthorizer{AuthorizerName: "admins", Authorizer: authorizerfactory.NewPrivilegedGroups(adminGroups...)},
		authzunion.NamedAuthorizer{AuthorizerName: "rbac", Authorizer: rbac},
	)
}

// installationEndpoints keeps the server's own endpoints — /metrics, and
// /debug/… (profiles, log levels, API priority and fairness's dumps of every
// request in flight) — for the installation's admins, and /metrics also for
// system:monitoring: they show every tenant's requests, so no workspace's RBAC
// grants them, though a workspace's creator may do anything there.
var installationEndpoints = authorizer.AuthorizerFunc(func(_ context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	if attrs.IsResourceRequest() {
		return authorizer.DecisionNoOpinion, "", nil
	}
	p := attrs.GetPath()
	metrics := p == "/metrics" || strings.HasPrefix(p, "/metrics/")
	if !metrics && p != "/debug" && !strings.HasPrefix(p, "/debug/") {
		return authorizer.DecisionNoOpinion, "", nil
	}
	switch u := attrs.GetUser(); {
	case u != nil && isAdmin(u):
		return authorizer.DecisionNoOpinion, "", nil
	case u != nil && metrics && attrs.GetVerb() == "get" && slices.Contains(u.GetGroups(), monitoringGroup):
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionDeny, "the server's own endpoints are the installation admins'", nil
})

// monitoringGroup is Kubernetes' group of metrics scrapers.
const monitoringGroup = "system:monitoring"

// deepForShards answers a subject access review asked by one of the
// installation's shards with deep, which decides by a workspace's RBAC alone,
// as "use" and "bind" are decided (the shard asks on behalf of a user of its
// own); and any other with authz, as the request would be decided.
func deepForShards(authz, deep authorizer.Authorizer) authorizer.Authorizer {
	return authorizer.AuthorizerFunc(func(ctx context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
		if u, ok := genericapirequest.UserFrom(ctx); ok && slices.Contains(u.GetGroups(), pki.ShardsGroup) {
			return deep.Authorize(ctx, attrs)
		}
		return authz.Authorize(ctx, attrs)
	})
}

// wildcardFilter runs after authorization, in front of the API handlers: a
// request across all clusters may only list and watch.
func wildcardFilter(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		ctx := req.Context()
		cluster, _ := logicalcluster.From(ctx)
		info, _ := genericapirequest.RequestInfoFrom(ctx)
		if cluster == logicalcluster.Wildcard {
			if err := wildcardAllows(info); err != nil {
				responsewriters.ErrorNegotiated(err, scheme.Codecs, schema.GroupVersion{}, w, req)
				return
			}
		}
		h.ServeHTTP(w, req)
	})
}

func wildcardAllows(info *genericapirequest.RequestInfo) error {
	if info == nil || !info.IsResourceRequest {
		return nil
	}
	gr := schema.GroupResource{Group: info.APIGroup, Resource: info.Resource}
	return registry.AcrossClusters(gr, info.Verb == "list" || info.Verb == "watch", info.Namespace != "")
}

// listenHost is the host clients reach the server at.
func listenHost(o *Options) string {
	if ip := o.SecureServing.BindAddress; ip != nil && !ip.IsUnspecified() {
		return net.JoinHostPort(ip.String(), fmt.Sprint(o.SecureServing.BindPort))
	}
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(o.SecureServing.BindPort))
}
