// Package frontproxy is warren's front proxy: the one address clients of a
// sharded installation use. It is stateless — any number run behind a load
// balancer, and a restart loses nothing — and knows the installation as
// package shards follows it through the shards' APIs.
//
// It authenticates a client once (a client certificate of the installation's
// CA, or a static token) and passes the user on in X-Remote-* headers over a
// connection authenticated with the front proxy's own client certificate,
// which shards trust as k8s.io/apiserver's request-header authentication
// does; any other bearer token (a service account's) goes on unchanged, for
// the shard to verify. Headers a client sends in the proxy's name are dropped.
// A request to /clusters/<path or name>/… goes to the shard holding that
// logical cluster, addressed by name; /services/apiexport/<cluster>/… to the
// shard holding the export's cluster; anything else to the root shard. A shard
// that is down fails only the requests routed to it, with 503.
package frontproxy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	authnunion "k8s.io/apiserver/pkg/authentication/request/union"
	x509request "k8s.io/apiserver/pkg/authentication/request/x509"
	"k8s.io/apiserver/pkg/authentication/token/tokenfile"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/client-go/tools/clientcmd"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/klog/v2"

	"github.com/spf13/pflag"

	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"

	"github.com/warren-dev/warren/apiserver/pki"
	"github.com/warren-dev/warren/tenancy"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
	"github.com/warren-dev/warren/tenancy/shards"
)

// The headers in which the proxy names the user of a request it passes on;
// shards read these.
const (
	UserHeader        = "X-Remote-User"
	UIDHeader         = "X-Remote-Uid"
	GroupHeader       = "X-Remote-Group"
	ExtraHeaderPrefix = "X-Remote-Extra-"
)

// Options are the settings of `warren proxy`.
type Options struct {
	// DataDir holds the proxy's serving certificate and admin.kubeconfig;
	// PKIDir the installation's CAs and keys (DataDir if empty).
	DataDir, PKIDir string
	// RootShard is a kubeconfig of the root shard: where it is.
	RootShard string
	// TokenAuthFile holds static bearer tokens, as a shard's does.
	TokenAuthFile string
	SecureServing *genericoptions.SecureServingOptions
}

// NewOptions returns the defaults: 127.0.0.1:6443, data in ./.warren-proxy.
func NewOptions() *Options {
	o := &Options{DataDir: ".warren-proxy", SecureServing: genericoptions.NewSecureServingOptions()}
	o.SecureServing.BindAddress = net.ParseIP("127.0.0.1")
	o.SecureServing.BindPort = 6443
	return o
}

// AddFlags adds the options' flags to fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "directory of the proxy's serving certificate and admin.kubeconfig")
	fs.StringVar(&o.PKIDir, "pki-dir", o.PKIDir, "directory of the installation's CAs, keys and admin certificate, shared with its shards (default: --data-dir)")
	fs.StringVar(&o.RootShard, "root-shard", o.RootShard, "kubeconfig of the root shard (its address; the proxy reaches shards with the installation's shard certificate in --pki-dir)")
	fs.StringVar(&o.TokenAuthFile, "token-auth-file", o.TokenAuthFile, "static bearer tokens, in kube-apiserver's CSV format: token,user,uid,\"group1,group2\"")
	o.SecureServing.AddFlags(fs)
}

// Proxy is a running front proxy.
type Proxy struct {
	serving      *genericapiserver.SecureServingInfo
	handler      http.Handler
	installation *shards.Installation
	// URL is where it serves; Kubeconfig the admin's kubeconfig for it.
	URL, Kubeconfig string
}

// New builds the proxy the options describe.
func New(o *Options) (*Proxy, error) {
	if o.RootShard == "" {
		return nil, errors.New("--root-shard is required")
	}
	if errs := o.SecureServing.Validate(); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	files := pki.FilesIn(o.DataDir, o.PKIDir)
	host := o.SecureServing.BindAddress.String()
	if o.SecureServing.BindAddress.IsUnspecified() {
		host = "127.0.0.1"
	}
	hosts := []string{"localhost", "127.0.0.1", "::1", host}
	if name, err := os.Hostname(); err == nil {
		hosts = append(hosts, name)
	}
	if err := pki.Ensure(files, hosts); err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	o.SecureServing.ServerCert.CertKey.CertFile, o.SecureServing.ServerCert.CertKey.KeyFile = files.ServingCert, files.ServingKey
	p := &Proxy{URL: "https://" + net.JoinHostPort(host, fmt.Sprint(o.SecureServing.BindPort))}
	if err := o.SecureServing.ApplyTo(&p.serving); err != nil {
		return nil, fmt.Errorf("serving: %w", err)
	}
	ca, err := dynamiccertificates.NewDynamicCAContentFromFile("client-ca", files.CACert)
	if err != nil {
		return nil, fmt.Errorf("client CA: %w", err)
	}
	p.serving.ClientCA = ca
	authn, err := authentication(ca, o.TokenAuthFile)
	if err != nil {
		return nil, err
	}
	root, err := clientcmd.BuildConfigFromFlags("", o.RootShard)
	if err != nil {
		return nil, fmt.Errorf("the root shard's kubeconfig %s: %w", o.RootShard, err)
	}
	rootURL, _, _ := strings.Cut(root.Host, "/clusters/")
	p.installation = shards.New(pki.ShardConfig(files, rootURL), "", false, shards.Observer{})
	transport, err := shardTransport(files)
	if err != nil {
		return nil, err
	}
	if p.Kubeconfig, err = pki.WriteKubeconfig(files, o.DataDir, p.URL); err != nil {
		return nil, err
	}
	p.handler = &router{installation: p.installation, rootURL: rootURL, authn: authn, transport: transport}
	return p, nil
}

// Run serves until ctx ends.
func (p *Proxy) Run(ctx context.Context) error {
	go p.installation.Run(ctx)
	// Watches passed on never end by themselves: after shutdownTimeout they
	// are cut, and their clients resume through another proxy.
	stopped, _, err := p.serving.Serve(p.handler, shutdownTimeout, ctx.Done())
	if err != nil {
		return err
	}
	<-stopped
	return nil
}

// shutdownTimeout is how long a proxy that is shutting down lets requests finish.
const shutdownTimeout = 5 * time.Second

// authentication accepts client certificates of ca and static tokens of
// tokenFile, if set.
func authentication(ca dynamiccertificates.CAContentProvider, tokenFile string) (authenticator.Request, error) {
	authenticators := []authenticator.Request{x509request.NewDynamic(ca.VerifyOptions, x509request.CommonNameUserConversion)}
	if tokenFile != "" {
		static, err := tokenfile.NewCSV(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("--token-auth-file: %w", err)
		}
		authenticators = append(authenticators, bearertoken.New(static))
	}
	return group.NewAuthenticatedGroupAdder(authnunion.New(authenticators...)), nil
}

// shardTransport reaches shards, trusting the installation's CA, with the
// front proxy's client certificate.
func shardTransport(files pki.Files) (*http.Transport, error) {
	cert, err := tls.LoadX509KeyPair(files.FrontProxyCert, files.FrontProxyKey)
	if err != nil {
		return nil, fmt.Errorf("front proxy certificate: %w", err)
	}
	cas, err := certutil.CertsFromFile(files.CACert)
	if err != nil {
		return nil, fmt.Errorf("the installation's CA: %w", err)
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}
	t.MaxIdleConnsPerHost = 256
	t.ForceAttemptHTTP2 = true
	return t, nil
}

// router authenticates a request and passes it on to its shard.
type router struct {
	installation *shards.Installation
	rootURL      string
	authn        authenticator.Request
	transport    http.RoundTripper
}

// healthPaths are the proxy's own.
var healthPaths = sets.New("/healthz", "/livez", "/readyz")

func (r *router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if healthPaths.Has(req.URL.Path) {
		r.health(w, req)
		return
	}
	if strings.Contains(req.URL.Path+"/", "/../") || strings.Contains(req.URL.Path+"/", "/./") || strings.Contains(strings.ToLower(req.URL.RawPath), "%2f") {
		writeStatus(w, apierrors.NewBadRequest("the path must not have dot segments or encoded slashes"))
		return
	}
	// Only the proxy names users in X-Remote-* headers: a client's own are
	// dropped, and the proxy's are set on the request it sends, after Go's
	// reverse proxy has removed the headers the client's Connection names.
	resp, authenticated, _ := r.authn.AuthenticateRequest(req)
	base, path, err := r.route(req.Context(), req.URL.Path, authenticated)
	if err != nil {
		writeStatus(w, err)
		return
	}
	target, err := url.Parse(base)
	if err != nil {
		writeStatus(w, apierrors.NewInternalError(err))
		return
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme, pr.Out.URL.Host = target.Scheme, target.Host
			pr.Out.URL.Path, pr.Out.URL.RawPath = path, ""
			pr.Out.Host = target.Host
			for h := range pr.Out.Header {
				if strings.HasPrefix(h, "X-Remote-") {
					pr.Out.Header.Del(h)
				}
			}
			if authenticated {
				passOn(pr.Out.Header, resp.User)
			}
		},
		Transport:     r.transport,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			klog.FromContext(req.Context()).V(2).Info("A shard did not answer", "shard", base, "err", err)
			writeStatus(w, unavailable())
		},
	}
	proxy.ServeHTTP(w, req)
}

// passOn names u in the headers of a request the proxy passes on; the
// credentials u authenticated with stay with the proxy.
func passOn(h http.Header, u user.Info) {
	h.Del("Authorization")
	h.Set(UserHeader, u.GetName())
	if uid := u.GetUID(); uid != "" {
		h.Set(UIDHeader, uid)
	}
	for _, g := range u.GetGroups() {
		h.Add(GroupHeader, g)
	}
	for k, vs := range u.GetExtra() {
		for _, v := range vs {
			h.Add(ExtraHeaderPrefix+url.PathEscape(k), v)
		}
	}
}

// unavailable is the answer for a request whose shard did not answer; it
// names no shard.
func unavailable() error {
	e := apierrors.NewServiceUnavailable("the workspace's shard is unavailable")
	e.ErrStatus.Details = &metav1.StatusDetails{RetryAfterSeconds: 1}
	return e
}

// health answers for the proxy itself: it is ready once it knows the shards.
func (r *router) health(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == "/readyz" {
		if err := r.installation.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprint(w, "ok")
}

// route returns the base URL of the shard a request to path goes to, and the
// path it asks there.
func (r *router) route(ctx context.Context, path string, authenticated bool) (base, rest string, err error) {
	if after, ok := strings.CutPrefix(path, "/clusters/"); ok {
		target, tail, _ := strings.Cut(after, "/")
		if target == string(logicalcluster.Wildcard) {
			// Wildcard requests are each shard's own, at its URL.
			return r.rootURL, path, nil
		}
		if err := tenancy.ValidateAddress(target); err != nil {
			return "", "", apierrors.NewBadRequest(err.Error())
		}
		name, base, ok := r.find(ctx, target, authenticated)
		if !ok {
			// The root shard answers for what no shard is known to hold.
			return r.rootURL, path, nil
		}
		return base, "/clusters/" + string(name) + "/" + tail, nil
	}
	if after, ok := strings.CutPrefix(path, "/services/apiexport/"); ok {
		cluster, _, _ := strings.Cut(after, "/")
		if _, base, ok := r.installation.Route(logicalcluster.Name(cluster)); ok {
			return base, path, nil
		}
	}
	return r.rootURL, path, nil
}

// find returns the logical cluster a path or name addresses and the base URL
// of its shard; for an authenticated client, it looks for a workspace made
// too recently to be known yet.
func (r *router) find(ctx context.Context, target string, authenticated bool) (logicalcluster.Name, string, bool) {
	if !tenancy.IsPath(target) {
		name := logicalcluster.Name(target)
		_, base, ok := r.installation.Route(name)
		return name, base, ok
	}
	p := tenancy.Path(target)
	if start := strings.SplitN(target, ":", 2)[0]; start != string(tenancy.RootPath) && start != "user" {
		// A path starting at a cluster's name is below that cluster's path.
		c, ok := r.installation.Cluster(logicalcluster.Name(start))
		if !ok {
			return "", "", false
		}
		p = c.Path + tenancy.Path(strings.TrimPrefix(target, start))
	}
	if c, ok := r.installation.At(p); ok {
		_, base, ok := r.installation.Route(c.Name)
		return c.Name, base, ok
	}
	if !authenticated {
		return "", "", false
	}
	return r.findMade(ctx, p)
}

// findMade finds the workspace at p, made too recently for the shards' watches
// to have told the proxy, by reading it from its parent's shard.
func (r *router) findMade(ctx context.Context, p tenancy.Path) (logicalcluster.Name, string, bool) {
	parentPath, ok := p.Parent()
	if !ok {
		return "", "", false
	}
	parent, ok := r.installation.At(parentPath)
	if !ok {
		return "", "", false
	}
	ws, err := r.installation.Workspace(ctx, parent, p.Base())
	if err != nil || ws.Spec.Cluster == "" {
		return "", "", false
	}
	shard, ok := r.installation.Shard(ws.Annotations[corev1alpha1.LogicalClusterShardAnnotationKey])
	if !ok {
		return "", "", false
	}
	return logicalcluster.Name(ws.Spec.Cluster), shard, true
}

// writeStatus answers err as a Kubernetes Status.
func writeStatus(w http.ResponseWriter, err error) {
	status := apierrors.NewInternalError(err).Status()
	var s apierrors.APIStatus
	if errors.As(err, &s) {
		status = s.Status()
	}
	status.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	if d := status.Details; d != nil && d.RetryAfterSeconds > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(d.RetryAfterSeconds))
	}
	responsewriters.WriteRawJSON(int(status.Code), status, w)
}
