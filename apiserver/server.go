package apiserver

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/anonymous"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	authnunion "k8s.io/apiserver/pkg/authentication/request/union"
	"k8s.io/apiserver/pkg/authentication/request/x509"
	"k8s.io/apiserver/pkg/authentication/token/tokenfile"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	authzpath "k8s.io/apiserver/pkg/authorization/path"
	authzunion "k8s.io/apiserver/pkg/authorization/union"
	genericfilters "k8s.io/apiserver/pkg/endpoints/filters"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/apiserver/pkg/util/notfoundhandler"

	"github.com/warren-dev/warren/apiserver/authorization"
	"github.com/warren-dev/warren/apiserver/crd"
	"github.com/warren-dev/warren/apiserver/openapi"
	"github.com/warren-dev/warren/apiserver/pki"
	"github.com/warren-dev/warren/apiserver/registry"
	"github.com/warren-dev/warren/apiserver/registry/core/namespace"
	"github.com/warren-dev/warren/apiserver/scheme"
	"github.com/warren-dev/warren/apiserver/token"
	"github.com/warren-dev/warren/storage"
	"github.com/warren-dev/warren/tenancy"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// healthPaths are served to everyone, authenticated or not.
var healthPaths = []string{"/healthz", "/livez", "/readyz", "/healthz/*", "/livez/*", "/readyz/*"}

// Server is a running warren apiserver.
type Server struct {
	generic *genericapiserver.GenericAPIServer
	backend *storage.Backend
	apis    *apis
	// Kubeconfig is the path of the admin's kubeconfig.
	Kubeconfig string
	// URL is where the server serves.
	URL string
}

// NewServer opens the storage and builds the apiserver the options describe.
func NewServer(ctx context.Context, o *Options) (*Server, error) {
	if err := o.Complete(); err != nil {
		return nil, err
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	files := pki.FilesIn(o.DataDir)
	if err := pki.Ensure(files, servingHosts(o)); err != nil {
		return nil, fmt.Errorf("certificates in %s: %w", o.DataDir, err)
	}
	o.SecureServing.ServerCert.CertKey.CertFile = files.ServingCert
	o.SecureServing.ServerCert.CertKey.KeyFile = files.ServingKey

	config := genericapiserver.NewRecommendedConfig(scheme.Codecs)
	config.EffectiveVersion = newEffectiveVersion()
	if err := o.SecureServing.ApplyTo(&config.SecureServing, &config.LoopbackClientConfig); err != nil {
		return nil, fmt.Errorf("serving: %w", err)
	}
	namer := openapinamer.NewDefinitionNamer(scheme.OpenAPIScheme)
	config.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(openapi.GetOpenAPIDefinitions, namer)
	config.OpenAPIConfig.Info.Title = "warren"
	config.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(openapi.GetOpenAPIDefinitions, namer)
	config.OpenAPIV3Config.Info.Title = "warren"

	s := &Server{}
	built := false
	defer func() {
		if !built {
			s.close()
		}
	}()
	if etcd, ok := strings.CutPrefix(o.Storage, "etcd://"); ok {
		config.RESTOptionsGetter = &restOptions{etcd: []string{"http://" + etcd}}
	} else {
		backend, err := storage.Open(ctx, storage.Config{Storage: o.Storage, Shard: o.Shard, CompactionInterval: o.CompactionInterval})
		if err != nil {
			return nil, err
		}
		s.backend = backend
		config.RESTOptionsGetter = &restOptions{backend: backend}
	}
	saKey, err := pki.ServiceAccountKey(files)
	if err != nil {
		return nil, err
	}
	if s.apis, err = newAPIs(config.RESTOptionsGetter, token.NewSigner(saKey)); err != nil {
		return nil, err
	}
	if s.backend != nil {
		s.apis.tenancy.Eraser = s.backend
	} else {
		s.apis.tenancy.Eraser = config.RESTOptionsGetter.(*restOptions)
	}
	url := "https://" + listenHost(o)
	s.URL = url
	// The Shard object is named after the schema, as an object name may be.
	shard := strings.ReplaceAll(strings.ToLower(o.Shard), "_", "-")
	if err := tenancy.Bootstrap(ctx, s.apis.tenancy, shard, url); err != nil {
		return nil, err
	}
	index := tenancy.NewIndex(s.apis.tenancy.Workspaces, s.apis.tenancy.LogicalClusters, s.apis.tenancy.WorkspaceTypes)

	ca, err := dynamiccertificates.NewDynamicCAContentFromFile("client-ca", files.CACert)
	if err != nil {
		return nil, fmt.Errorf("client CA: %w", err)
	}
	// The TLS handshake asks for client certificates signed by the CA.
	config.SecureServing.ClientCA = ca
	serviceAccounts := token.NewAuthenticator(&saKey.PublicKey, s.apis.serviceAccounts)
	authn, tokens, err := authentication(o, ca, serviceAccounts)
	if err != nil {
		return nil, err
	}
	config.Authentication.Authenticator = authn
	config.Authentication.APIAudiences = authenticator.Audiences{token.APIAudience}
	rbac := authorization.NewRBAC(s.apis.rbac)
	if config.Authorization.Authorizer, err = newAuthorizer(tenancy.NewAccess(index, rbac, adminGroups, reservedGroups), rbac); err != nil {
		return nil, err
	}
	// Whether a user may use a workspace type is decided in the type's
	// workspace by its RBAC alone, as kcp's deep access review decides it.
	use, err := authzunion.New(
		authzunion.NamedAuthorizer{AuthorizerName: "admins", Authorizer: authorizerfactory.NewPrivilegedGroups(adminGroups...)},
		authzunion.NamedAuthorizer{AuthorizerName: "rbac", Authorizer: rbac},
	)
	if err != nil {
		return nil, err
	}
	s.apis.addReviews(config.Authorization.Authorizer, rbac, tokens)
	genericapiserver.AuthorizeClientBearerToken(config.LoopbackClientConfig, &config.Authentication, &config.Authorization)
	builtins := crd.NewBuiltins()
	config.AggregatedDiscoveryGroupManager = builtins
	config.AdmissionControl = admission.NewChainHandler(
		namespace.NewLifecycle(s.apis.namespaces),
		authorization.NewEscalation(rbac, config.Authorization.Authorizer),
		crd.NewAdmission(builtins),
		tenancy.NewAdmission(index, use, url),
	)
	crds, err := crd.New(crd.Config{
		CRDs:                s.apis.crds,
		Options:             config.RESTOptionsGetter,
		Authorizer:          config.Authorization.Authorizer,
		Admission:           config.AdmissionControl,
		MaxRequestBodyBytes: config.MaxRequestBodyBytes,
		MinRequestTimeout:   time.Duration(config.MinRequestTimeout) * time.Second,
		Builtins:            builtins,
	}, notfoundhandler.New(scheme.Codecs, genericfilters.NoMuxAndDiscoveryIncompleteKey))
	if err != nil {
		return nil, err
	}
	config.BuildHandlerChainFunc = func(h http.Handler, c *genericapiserver.Config) http.Handler {
		return tenancy.Routing(index.Resolve, genericapiserver.DefaultBuildHandlerChain(tenancy.Serving(index.Cluster, wildcardFilter(crds.Discovery(h))), c))
	}

	// Requests no built-in API serves go to the custom resources of their cluster.
	generic, err := config.Complete().New("warren", genericapiserver.NewEmptyDelegateWithCustomHandler(crds))
	if err != nil {
		return nil, err
	}
	s.generic = generic
	if err := s.apis.install(generic); err != nil {
		return nil, err
	}
	builtins.SetLegacy(generic.DiscoveryGroupManager)
	crds.SetStaticOpenAPI(s.apis.legacy.StaticOpenAPISpec)
	namespaces := namespace.NewController(s.apis.namespaces, s.apis.finalize, s.apis.namespaced)
	crdController := crd.NewController(crds, s.apis.crdStatus)
	workspaces := tenancy.NewLifecycle(s.apis.tenancy, index, shard, url)
	if o.HomeWorkspaces {
		s.apis.workspaces.Homes = tenancy.NewHomes(s.apis.tenancy, index, config.Authorization.Authorizer, shard, url)
	}
	if err := generic.AddPostStartHook("warren-controllers", func(ctx genericapiserver.PostStartHookContext) error {
		go index.Run(ctx)
		go workspaces.Run(ctx)
		go namespaces.Run(ctx)
		go rbac.Run(ctx)
		go crds.Run(ctx)
		go crdController.Run(ctx)
		return nil
	}); err != nil {
		return nil, err
	}
	if s.backend != nil {
		if err := generic.AddReadyzChecks(healthz.NamedCheck("storage", func(*http.Request) error { return s.backend.Ready() })); err != nil {
			return nil, err
		}
	}
	if s.Kubeconfig, err = writeKubeconfig(o, files); err != nil {
		return nil, err
	}
	built = true
	return s, nil
}

// Run serves until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	defer s.close()
	return s.generic.PrepareRun().RunWithContext(ctx)
}

func (s *Server) close() {
	if s.backend != nil {
		s.backend.Close()
	}
}

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

// authentication accepts client certificates of the installation's CA, service
// account tokens, static tokens, and anonymous requests to health endpoints only. tokens
// authenticates bearer tokens alone, for token reviews.
func authentication(o *Options, ca dynamiccertificates.CAContentProvider, serviceAccounts authenticator.Token) (all, tokens authenticator.Request, err error) {
	bearers := []authenticator.Request{bearertoken.New(serviceAccounts)}
	if o.TokenAuthFile != "" {
		static, err := tokenfile.NewCSV(o.TokenAuthFile)
		if err != nil {
			return nil, nil, fmt.Errorf("--token-auth-file: %w", err)
		}
		bearers = append(bearers, bearertoken.New(static))
	}
	tokens = group.NewAuthenticatedGroupAdder(authnunion.New(bearers...))
	authenticators := append([]authenticator.Request{x509.NewDynamic(ca.VerifyOptions, x509.CommonNameUserConversion)}, bearers...)
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

// reservedGroups are kcp's system groups besides the admins': no workspace can
// grant impersonating them.
var reservedGroups = []string{
	"system:kcp:logical-cluster-admin", "system:kcp:external-logical-cluster-admin",
	"system:kcp:tenancy:workspace-bootstrapper", user.AllAuthenticated,
}

// newAuthorizer decides, first, who may enter the request's workspace at all
// (access, which also looks the workspace up), then allows health endpoints to
// everyone, everything to the installation's admins, and leaves the rest to the
// RBAC of the request's cluster.
func newAuthorizer(access, rbac authorizer.Authorizer) (authorizer.Authorizer, error) {
	health, err := authzpath.NewAuthorizer(healthPaths)
	if err != nil {
		return nil, err
	}
	return authzunion.New(
		authzunion.NamedAuthorizer{AuthorizerName: "workspace-access", Authorizer: access},
		authzunion.NamedAuthorizer{AuthorizerName: "health", Authorizer: health},
		authzunion.NamedAuthorizer{AuthorizerName: "admins", Authorizer: authorizerfactory.NewPrivilegedGroups(adminGroups...)},
		authzunion.NamedAuthorizer{AuthorizerName: "rbac", Authorizer: rbac},
	)
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
