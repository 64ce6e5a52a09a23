package apiserver

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	authzunion "k8s.io/apiserver/pkg/authorization/union"
	genericfilters "k8s.io/apiserver/pkg/endpoints/filters"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	"k8s.io/apiserver/pkg/registry/generic"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/apiserver/pkg/server/options/encryptionconfig"
	"k8s.io/apiserver/pkg/util/notfoundhandler"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	apisv1alpha1 "github.com/kcp-dev/sdk/apis/apis/v1alpha1"
	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"

	"github.com/warren-dev/warren/apiserver/authorization"
	"github.com/warren-dev/warren/apiserver/crd"
	"github.com/warren-dev/warren/apiserver/encodings"
	"github.com/warren-dev/warren/apiserver/listcost"
	"github.com/warren-dev/warren/apiserver/openapi"
	"github.com/warren-dev/warren/apiserver/pki"
	apisregistry "github.com/warren-dev/warren/apiserver/registry/apis"
	"github.com/warren-dev/warren/apiserver/registry/core/namespace"
	"github.com/warren-dev/warren/apiserver/scheme"
	"github.com/warren-dev/warren/apiserver/token"
	"github.com/warren-dev/warren/apiserver/virtual/apiexport"
	"github.com/warren-dev/warren/storage"
	"github.com/warren-dev/warren/tenancy"
	"github.com/warren-dev/warren/tenancy/clusterwatch"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
	"github.com/warren-dev/warren/tenancy/shards"
)

// Config is what a server is built from: the generic apiserver's config, the
// storage of its objects, its keys and warren's own settings. Options.Config
// makes one from flags; a process serving several shards makes one per shard,
// each with its Storage. Complete().New() builds the server.
type Config struct {
	Generic *genericapiserver.RecommendedConfig
	// Storage keeps every object; the server owns it from New on (and closes
	// it if New fails).
	Storage Storage
	// ClientCA is the CA whose client certificates authenticate users.
	ClientCA dynamiccertificates.CAContentProvider
	// FrontProxyCA is the CA of the front proxies' client certificates: a
	// request with one is from the user its X-Remote-* headers name.
	FrontProxyCA dynamiccertificates.CAContentProvider
	// ServiceAccountKey signs and verifies service account tokens.
	ServiceAccountKey *ecdsa.PrivateKey
	// TokenAuthFile, if set, holds static bearer tokens.
	TokenAuthFile string
	// AuthenticationConfig, if set, is kube-apiserver's structured
	// AuthenticationConfiguration: the identity providers whose tokens are
	// accepted.
	AuthenticationConfig string
	// Shard names the shard served, as its Shard object is named.
	Shard string
	// ShardLabels label its Shard object.
	ShardLabels map[string]string
	// URL is where the server serves; ExternalURL where clients reach its
	// workspaces (the front proxy), which workspace URLs start with.
	URL, ExternalURL string
	// Installation reaches the root shard with the shards' credentials;
	// RootShard says whether this is the root shard.
	Installation *rest.Config
	RootShard    bool
	// HomeWorkspaces makes users' home workspaces on first use.
	HomeWorkspaces bool
	// IndexClusters bounds the logical clusters the path index holds.
	IndexClusters int
	// EncodedItems keeps the protobuf encodings of list items (nil: none).
	EncodedItems *encodings.Cache
	// Kubeconfig is the path of the admin's kubeconfig.
	Kubeconfig string
	// PriorityAndFairness queues requests by API priority and fairness within
	// the generic config's MaxRequestsInFlight + MaxMutatingRequestsInFlight.
	PriorityAndFairness bool
}

// Config completes and validates the options, writes what the data directory
// holds (certificates, keys, the admin's kubeconfig), opens the storage, and
// returns the server's Config.
func (o *Options) Config(ctx context.Context) (*Config, error) {
	if err := o.Complete(); err != nil {
		return nil, err
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	files := pki.FilesIn(o.DataDir, o.PKIDir)
	if err := pki.Ensure(files, servingHosts(o)); err != nil {
		return nil, fmt.Errorf("certificates in %s: %w", o.DataDir, err)
	}
	o.SecureServing.ServerCert.CertKey.CertFile = files.ServingCert
	o.SecureServing.ServerCert.CertKey.KeyFile = files.ServingKey

	generic := genericapiserver.NewRecommendedConfig(scheme.Codecs)
	generic.EffectiveVersion = newEffectiveVersion()
	// On shutdown, end watches (other shards and proxies follow this one
	// through them) and give them this long to go, rather than waiting for
	// the request timeout: their clients resume elsewhere or on restart.
	generic.ShutdownWatchTerminationGracePeriod = watchTerminationGrace
	generic.MaxRequestsInFlight, generic.MaxMutatingRequestsInFlight = o.MaxRequestsInFlight, o.MaxMutatingRequestsInFlight
	if err := o.SecureServing.ApplyTo(&generic.SecureServing, &generic.LoopbackClientConfig); err != nil {
		return nil, fmt.Errorf("serving: %w", err)
	}
	if err := o.Audit.ApplyTo(&generic.Config); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	namer := openapinamer.NewDefinitionNamer(scheme.OpenAPIScheme)
	generic.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(openapi.GetOpenAPIDefinitions, namer)
	generic.OpenAPIConfig.Info.Title = "warren"
	generic.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(openapi.GetOpenAPIDefinitions, namer)
	generic.OpenAPIV3Config.Info.Title = "warren"

	ca, err := dynamiccertificates.NewDynamicCAContentFromFile("client-ca", files.CACert)
	if err != nil {
		return nil, fmt.Errorf("client CA: %w", err)
	}
	frontProxyCA, err := dynamiccertificates.NewDynamicCAContentFromFile("front-proxy-ca", files.FrontProxyCACert)
	if err != nil {
		return nil, fmt.Errorf("front proxy CA: %w", err)
	}
	saKey, err := pki.ServiceAccountKey(files)
	if err != nil {
		return nil, err
	}
	kubeconfig, err := pki.WriteKubeconfig(files, o.DataDir, "https://"+listenHost(o))
	if err != nil {
		return nil, err
	}
	rootURL := "https://" + listenHost(o)
	if o.RootShard != "" {
		root, err := clientcmd.BuildConfigFromFlags("", o.RootShard)
		if err != nil {
			return nil, fmt.Errorf("the root shard's kubeconfig %s: %w", o.RootShard, err)
		}
		rootURL, _, _ = strings.Cut(root.Host, "/clusters/")
	}
	c := &Config{
		Generic:              generic,
		ClientCA:             ca,
		FrontProxyCA:         frontProxyCA,
		ServiceAccountKey:    saKey,
		TokenAuthFile:        o.TokenAuthFile,
		AuthenticationConfig: o.AuthenticationConfig,
		// The Shard object is named after the schema, as an object name may be.
		Shard:          strings.ReplaceAll(strings.ToLower(o.Shard), "_", "-"),
		ShardLabels:    o.ShardLabels,
		URL:            "https://" + listenHost(o),
		ExternalURL:    strings.TrimSuffix(o.ExternalURL, "/"),
		Installation:   pki.ShardConfig(files, rootURL),
		RootShard:      o.RootShard == "",
		HomeWorkspaces: o.HomeWorkspaces,
		IndexClusters:  o.IndexClusters,
		EncodedItems:   encodings.New(int64(o.EncodedItemCacheMiB) << 20),
		Kubeconfig:     kubeconfig,

		PriorityAndFairness: o.PriorityAndFairness,
	}
	if c.ExternalURL == "" {
		c.ExternalURL = c.URL
	}
	var encryption encryptionconfig.StaticTransformers
	if o.EncryptionProviderConfig != "" {
		// Upstream's providers (aescbc, aesgcm, secretbox, KMS v2, identity)
		// and its rule: the first provider of a resource writes, every one
		// reads, so keys rotate as with kube-apiserver.
		loaded, err := encryptionconfig.LoadEncryptionConfig(ctx, o.EncryptionProviderConfig, false, c.Shard)
		if err != nil {
			return nil, fmt.Errorf("--encryption-provider-config %s: %w", o.EncryptionProviderConfig, err)
		}
		encryption = loaded.Transformers
		// A KMS plugin that is down makes warren unready, not dead: a
		// restart would not bring it back (as kube-apiserver).
		generic.HealthzChecks = append(generic.HealthzChecks, loaded.HealthChecks...)
		generic.ReadyzChecks = append(generic.ReadyzChecks, loaded.HealthChecks...)
	}
	if etcd, ok := strings.CutPrefix(o.Storage, "etcd://"); ok {
		c.Storage = NewEtcdStorage([]string{"http://" + etcd}, encryption)
		return c, nil
	}
	decoded := int64(o.DecodedObjectCacheMiB) << 20
	if decoded == 0 {
		decoded = -1 // off
	}
	backend, err := storage.Open(ctx, storage.Config{Storage: o.Storage, Shard: o.Shard, CompactionInterval: o.CompactionInterval, DecodedCacheSize: decoded})
	if err != nil {
		return nil, err
	}
	c.Storage = NewSQLStorage(backend, encryption)
	return c, nil
}

// watchTerminationGrace is how long a shutting down server waits for the
// watches it ended to drain.
const watchTerminationGrace = 5 * time.Second

// completedConfig is a Config whose generic part is ready to build from.
type completedConfig struct {
	*Config
}

// CompletedConfig is what Complete returns; only it builds a server.
type CompletedConfig struct {
	*completedConfig
}

// Complete fills in what follows from the rest of the config: the generic
// apiserver's storage is warren's.
func (c *Config) Complete() CompletedConfig {
	c.Generic.RESTOptionsGetter = c.Storage
	// The TLS handshake asks for client certificates signed by either CA.
	c.Generic.SecureServing.ClientCA = dynamiccertificates.NewUnionCAContentProvider(c.ClientCA, c.FrontProxyCA)
	return CompletedConfig{&completedConfig{c}}
}

// New builds the server: the stores of every API, root, the workspace index,
// authentication, authorization and admission, the handler chain, and the
// controllers, which start when it runs. Whatever fails, the storage is closed.
func (c CompletedConfig) New(ctx context.Context) (_ *Server, err error) {
	if c.Storage == nil {
		return nil, errors.New("a server needs a storage")
	}
	s := &Server{storage: c.Storage, Kubeconfig: c.Kubeconfig, URL: c.URL}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	config := c.Generic
	// With priority and fairness, lists are charged by their size in their
	// workspace, which the stores record as they answer them.
	var (
		options   generic.RESTOptionsGetter = c.Storage
		listSizes *listcost.Sizes
	)
	if c.PriorityAndFairness {
		listSizes = listcost.New(listSizeKeys)
		options = recordingLists{RESTOptionsGetter: c.Storage, sizes: listSizes}
	}
	apis, err := newAPIs(options, token.NewSigner(c.ServiceAccountKey))
	if err != nil {
		return nil, err
	}
	apis.tenancy.Eraser = c.Storage
	apis.tenancy.APIBindings, apis.tenancy.APIExports = apis.bindings.Bindings, apis.exports.Exports
	self := corev1alpha1.Shard{
		ObjectMeta: metav1.ObjectMeta{Name: c.Shard, Labels: c.ShardLabels},
		Spec:       corev1alpha1.ShardSpec{BaseURL: c.URL, ExternalURL: c.ExternalURL, VirtualWorkspaceURL: c.URL},
	}
	if c.RootShard {
		err = tenancy.Bootstrap(ctx, apis.tenancy, &self)
		if err == nil {
			err = bootstrapFairness(ctx, apis.flowSchemas, apis.priorityLevels)
		}
	} else {
		err = shards.Register(ctx, c.Installation, &self)
	}
	if err != nil {
		return nil, err
	}
	// The lifecycle sees the logical clusters of other shards, to follow
	// those of its workspaces there; the binding and endpoint slice
	// controllers their exports and slices.
	var (
		workspaces     *tenancy.Lifecycle
		bindings       *tenancy.Bindings
		endpointSlices *tenancy.Slices
	)
	installation := shards.New(c.Installation, c.Shard, c.RootShard, shards.Observer{
		Cluster: func(lc *tenancy.Cluster) { workspaces.ObserveElsewhere(lc) },
		Export: func(cluster logicalcluster.Name, name string) {
			bindings.ExportChanged(cluster, name)
			endpointSlices.ExportChanged(cluster, name)
		},
		Slice: func(cluster logicalcluster.Name, slice *apisv1alpha1.APIExportEndpointSlice, gone bool) {
			endpointSlices.ObserveElsewhere(cluster, slice, gone)
		},
	})
	index := tenancy.NewIndex(c.IndexClusters, apis.tenancy.Workspaces, apis.tenancy.LogicalClusters, apis.tenancy.WorkspaceTypes, c.Shard, installation)
	exportGetter := index.Exports(apis.exports.Exports)
	apis.bindings.ExportGetter, apis.bindings.SchemaGetter = exportGetter, index.Schemas(apis.bindings.Schemas)
	apis.endpointSlices.ExportGetter = exportGetter

	serviceAccounts := token.NewAuthenticator(&c.ServiceAccountKey.PublicKey, apis.serviceAccounts)
	var jwt authenticator.Token
	if c.AuthenticationConfig != "" {
		if jwt, err = jwtAuthenticators(ctx, c.AuthenticationConfig, c.Shard); err != nil {
			return nil, err
		}
	}
	authn, tokens, err := authentication(c.TokenAuthFile, jwt, c.ClientCA, c.FrontProxyCA, serviceAccounts)
	if err != nil {
		return nil, err
	}
	config.Authentication.Authenticator = authn
	config.Authentication.APIAudiences = authenticator.Audiences{token.APIAudience}
	rbac := authorization.NewRBAC(apis.rbac)
	// Whether a user may use a workspace type, bind an export or reach its
	// virtual workspace is decided in the workspace holding it by its RBAC
	// alone, as kcp's deep access review decides it; a workspace on another
	// shard by that shard.
	use, err := authzunion.New(
		authzunion.NamedAuthorizer{AuthorizerName: "other-shards", Authorizer: installation.Authorizer(index)},
		authzunion.NamedAuthorizer{AuthorizerName: "admins", Authorizer: authorizerfactory.NewPrivilegedGroups(adminGroups...)},
		authzunion.NamedAuthorizer{AuthorizerName: "rbac", Authorizer: rbac},
	)
	if err != nil {
		return nil, err
	}
	claims := apiexport.NewClaims(apis.bindings.Bindings)
	exported := apiexport.NewExports(apis.exports.Exports, apis.bindings.Schemas, installation.Exported)
	virtual := apiexport.NewAuthorizer(exported, apis.bindings.Bindings, claims, use)
	access := tenancy.NewAccess(index, rbac, adminGroups, reservedGroups)
	if config.Authorization.Authorizer, err = newAuthorizer(virtual, access, rbac); err != nil {
		return nil, err
	}
	apis.addReviews(deepForShards(config.Authorization.Authorizer, use), rbac, tokens)
	genericapiserver.AuthorizeClientBearerToken(config.LoopbackClientConfig, &config.Authentication, &config.Authorization)
	builtins, legacyBuiltins := crd.NewBuiltins(), crd.NewLegacyBuiltins()
	config.AggregatedDiscoveryGroupManager = builtins
	namespaceLifecycle := namespace.NewLifecycle(apis.namespaces)
	config.AdmissionControl = admission.NewChainHandler(
		namespaceLifecycle,
		authorization.NewEscalation(rbac, config.Authorization.Authorizer),
		crd.NewAdmission(builtins),
		tenancy.NewAdmission(index, use, installation),
		apisregistry.NewAdmission(),
		tenancy.NewBind(index, exportGetter, apis.bindings.Bindings, use, isAdmin),
		apiexport.NewSelectorAdmission(claims),
		fairnessInRoot{},
	)
	exports := tenancy.NewExports(apis.exports)
	crds, err := crd.New(crd.Config{
		CRDs:                apis.crds,
		Options:             options,
		Authorizer:          config.Authorization.Authorizer,
		Admission:           config.AdmissionControl,
		MaxRequestBodyBytes: config.MaxRequestBodyBytes,
		MinRequestTimeout:   time.Duration(config.MinRequestTimeout) * time.Second,
		Builtins:            builtins,
		LegacyBuiltins:      legacyBuiltins,
		APIBindings:         apis.bindings.Bindings,
		Schemas:             apis.bindings.Schemas,
		Exports:             exported,
		ExportOfIdentity: func(hash string) (apiexport.Ref, bool) {
			cluster, name, ok := exports.ByIdentity(hash)
			return apiexport.Ref{Cluster: cluster, Export: name}, ok
		},
	}, notfoundhandler.New(scheme.Codecs, genericfilters.NoMuxAndDiscoveryIncompleteKey))
	if err != nil {
		return nil, err
	}
	var (
		apf               *fairness
		fairnessInformers kubeinformers.SharedInformerFactory
	)
	if c.PriorityAndFairness {
		if apf, fairnessInformers, err = newFairness(c.Installation, config.MaxRequestsInFlight+config.MaxMutatingRequestsInFlight, access.Enters, listSizes); err != nil {
			return nil, err
		}
		config.FlowControl = apf
	}
	config.BuildHandlerChainFunc = func(h http.Handler, gc *genericapiserver.Config) http.Handler {
		// The chain's authorization, and no other use of the authorizer,
		// records each request's logical cluster in its audit event.
		authz := gc.Authorization.Authorizer
		gc.Authorization.Authorizer = auditedCluster(authz, index)
		defer func() { gc.Authorization.Authorizer = authz }()
		served := apf.givesSeatBack(tenancy.Serving(index.Served, wildcardFilter(claims.Visibility(exported, crds.Discovery(h)))))
		return apiexport.Routing(tenancy.Routing(index.ResolveServed, apf.withSeats(genericapiserver.DefaultBuildHandlerChain(served, gc))))
	}

	// Requests no built-in API serves go to the custom resources of their cluster.
	generic, err := config.Complete().New("warren", genericapiserver.NewEmptyDelegateWithCustomHandler(crds))
	if err != nil {
		return nil, err
	}
	s.generic = generic
	generic.AggregatedLegacyDiscoveryGroupManager = legacyBuiltins
	if err := apis.install(generic, c.EncodedItems); err != nil {
		return nil, err
	}
	builtins.SetLegacy(generic.DiscoveryGroupManager)
	crds.SetStaticOpenAPI(apis.legacy.StaticOpenAPISpec)
	namespaces := namespace.NewController(apis.namespaces, apis.finalize, apis.namespaced, namespaceLifecycle)
	crdController := crd.NewController(crds, apis.crdStatus)
	workspaces = tenancy.NewLifecycle(apis.tenancy, index, tenancy.Shard{Name: c.Shard, ExternalURL: c.ExternalURL, Labels: c.ShardLabels}, installation)
	apis.bindings.Objects = crds
	bindings = tenancy.NewBindings(apis.bindings, index, workspaces.Wake)
	endpointSlices = tenancy.NewSlices(apis.endpointSlices, index, bindings, c.URL)
	if c.HomeWorkspaces {
		apis.workspaces.Homes = tenancy.NewHomes(apis.tenancy, index, config.Authorization.Authorizer, c.Shard, c.ExternalURL)
	}
	if err := generic.AddPostStartHook("warren-controllers", func(ctx genericapiserver.PostStartHookContext) error {
		// Caches follow the storage in every process; controllers
		// reconcile in the shard's leader alone.
		go installation.Run(ctx)
		go index.Run(ctx)
		go rbac.Run(ctx)
		go crds.Run(ctx)
		go claims.Run(ctx)
		go exported.Run(ctx)
		if fairnessInformers != nil {
			fairnessInformers.Start(ctx.Done())
		}
		var lead context.Context = ctx
		if leader := c.Storage.Leader(); leader != nil {
			lead = clusterwatch.WithLeader(ctx, leader)
		}
		go workspaces.Run(lead)
		go exports.Run(lead)
		go bindings.Run(lead)
		go endpointSlices.Run(lead)
		go namespaces.Run(lead)
		go crdController.Run(lead)
		return nil
	}); err != nil {
		return nil, err
	}
	if err := generic.AddReadyzChecks(
		healthz.NamedCheck("storage", func(*http.Request) error { return c.Storage.Ready() }),
		healthz.NamedCheck("shards", func(*http.Request) error { return installation.Ready() }),
	); err != nil {
		return nil, err
	}
	return s, nil
}
