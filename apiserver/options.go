package apiserver

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	genericoptions "k8s.io/apiserver/pkg/server/options"

	"github.com/warren-dev/warren/storage"
	"github.com/warren-dev/warren/tenancy"
)

// Options are the settings of `warren start`.
type Options struct {
	// DataDir holds the SQLite database (unless Storage says otherwise), the
	// certificates and admin.kubeconfig.
	DataDir string
	// Storage is a SQLite file path or sqlite:// URL, a postgres:// URL, or
	// etcd://host:port to serve from upstream's etcd3 store for comparison.
	Storage string
	// Shard is the Postgres schema of the shard served.
	Shard string
	// CompactionInterval is how often the log of changes is compacted, as
	// kube-apiserver's --etcd-compaction-interval.
	CompactionInterval time.Duration
	// DecodedObjectCacheMiB bounds the memory of the cache of objects decoded
	// from storage, which gets, lists, writes and watches share; 0 turns it off.
	DecodedObjectCacheMiB int
	// EncodedItemCacheMiB bounds the memory of the cache of list items'
	// protobuf encodings; 0 turns it off.
	EncodedItemCacheMiB int
	// IndexClusters bounds how many logical clusters the path index holds
	// (each about 175 bytes); a cluster out of it costs a read or two on its
	// next request.
	IndexClusters int
	// TokenAuthFile is a static token file in kube-apiserver's CSV format.
	TokenAuthFile string
	// AuthenticationConfig is kube-apiserver's structured
	// AuthenticationConfiguration file (OpenID Connect issuers).
	AuthenticationConfig string
	// HomeWorkspaces gives every user who may have one a home workspace on
	// first use, as kcp's --enable-home-workspaces does.
	HomeWorkspaces bool
	SecureServing  *genericoptions.SecureServingOptionsWithLoopback
	// PKIDir holds the installation's CAs, keys and admin certificate, shared
	// by its shards and proxies; empty means DataDir.
	PKIDir string
	// RootShard is the kubeconfig of the root shard, for any other shard;
	// empty means this is the root shard.
	RootShard string
	// ExternalURL is where clients reach the shard's workspaces: the front
	// proxy's address; empty means the shard's own.
	ExternalURL string
	// ShardLabels label the shard's Shard object; workspaces' location
	// selectors match them.
	ShardLabels map[string]string
	// Shards, if more than 1, runs an installation of that many shards in
	// this process behind a front proxy (RunInstallation).
	Shards int
	// EncryptionProviderConfig is kube-apiserver's EncryptionConfiguration
	// file: which resources are encrypted at rest, and with which keys.
	EncryptionProviderConfig string
	// Audit are upstream's audit options: the policy file and the log and
	// webhook backends.
	Audit *genericoptions.AuditOptions
	// PriorityAndFairness queues requests by API priority and fairness, flows
	// told apart by logical cluster, within MaxRequestsInFlight +
	// MaxMutatingRequestsInFlight requests served at once; without it each
	// bounds its kind of request, as kube-apiserver's flags of these names.
	PriorityAndFairness                              bool
	MaxRequestsInFlight, MaxMutatingRequestsInFlight int
}

// NewOptions returns the defaults: SQLite under ./.warren, 127.0.0.1:6443.
func NewOptions() *Options {
	o := &Options{DataDir: ".warren", Shard: storage.DefaultShard, Shards: 1, CompactionInterval: 5 * time.Minute, DecodedObjectCacheMiB: 64, EncodedItemCacheMiB: 32, IndexClusters: tenancy.DefaultIndexClusters, HomeWorkspaces: true, PriorityAndFairness: true, MaxRequestsInFlight: 400, MaxMutatingRequestsInFlight: 200, SecureServing: genericoptions.NewSecureServingOptions().WithLoopback(), Audit: genericoptions.NewAuditOptions()}
	o.SecureServing.BindAddress = net.ParseIP("127.0.0.1")
	o.SecureServing.BindPort = 6443
	return o
}

// AddFlags adds the options' flags to fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.DataDir, "data-dir", o.DataDir, "directory of the SQLite database, certificates and admin.kubeconfig")
	fs.StringVar(&o.Storage, "storage", o.Storage, "a SQLite file (default <data-dir>/warren.db), a postgres:// URL, or etcd://host:port")
	fs.StringVar(&o.Shard, "shard", o.Shard, "the shard served: its name, and its PostgreSQL schema")
	fs.StringVar(&o.RootShard, "root-shard", o.RootShard, "kubeconfig of the root shard (its address: shards reach each other with the shard certificate in --pki-dir); set on every shard but the root shard, which holds root and the registry of shards")
	fs.StringVar(&o.ExternalURL, "external-url", o.ExternalURL, "where clients reach this shard's workspaces, the front proxy's https://host:port (default: the shard's own address)")
	fs.StringToStringVar(&o.ShardLabels, "shard-labels", o.ShardLabels, "labels of the shard's Shard object (region=eu,…), which workspaces' spec.location.selector matches")
	fs.IntVar(&o.Shards, "shards", o.Shards, "run this many shards in this process behind a built-in front proxy, for trying shards out: SQLite files under --data-dir, or schemas <shard>, <shard>_1, … of the --storage PostgreSQL database")
	fs.StringVar(&o.PKIDir, "pki-dir", o.PKIDir, "directory of the installation's CAs, keys and admin certificate, shared by all its shards and proxies (default: --data-dir)")
	fs.DurationVar(&o.CompactionInterval, "compaction-interval", o.CompactionInterval, "how often the log of changes is compacted; watches and lists older than two intervals get 410 Gone")
	fs.IntVar(&o.DecodedObjectCacheMiB, "decoded-object-cache-mib", o.DecodedObjectCacheMiB, "memory (MiB) for objects decoded from storage, kept by key and revision so that gets, lists and watches of the same version copy them instead of decoding them again, per shard served; 0 turns the cache off")
	fs.IntVar(&o.EncodedItemCacheMiB, "encoded-item-cache-mib", o.EncodedItemCacheMiB, "memory (MiB) for the protobuf encodings of the items of list answers, kept by object, resourceVersion and list kind so that a list of objects unchanged since an earlier answer writes their bytes instead of encoding them again, per shard served; 0 turns the cache off")
	fs.IntVar(&o.IndexClusters, "index-clusters", o.IndexClusters, "logical clusters whose path, type, phase and shard the server holds in memory (about 175 bytes each, which the collector does not scan), so that routing a request to one needs no read; holding more takes as much more of --memory-limit")
	fs.BoolVar(&o.HomeWorkspaces, "enable-home-workspaces", o.HomeWorkspaces, "make each user a home workspace (user:<name>, kubectl ws ~) on first use, if root's RBAC lets them create workspaces/~")
	fs.StringVar(&o.TokenAuthFile, "token-auth-file", o.TokenAuthFile, "static bearer tokens, in kube-apiserver's CSV format: token,user,uid,\"group1,group2\"")
	fs.StringVar(&o.AuthenticationConfig, "authentication-config", o.AuthenticationConfig, "kube-apiserver's AuthenticationConfiguration file (apiserver.config.k8s.io/v1): OpenID Connect issuers whose tokens are accepted, with their audiences, claim mappings and validation rules; users named system:… are refused and groups system:… dropped")
	fs.StringVar(&o.EncryptionProviderConfig, "encryption-provider-config", o.EncryptionProviderConfig, "kube-apiserver's EncryptionConfiguration file (apiserver.config.k8s.io/v1): the resources encrypted at rest (secrets, …) and their providers and keys, the first of which writes; read at start")
	fs.BoolVar(&o.PriorityAndFairness, "enable-priority-and-fairness", o.PriorityAndFairness, "queue and dispatch requests by API priority and fairness (configured by root's FlowSchemas and PriorityLevelConfigurations), telling flows apart by workspace; if false, --max-requests-inflight and --max-mutating-requests-inflight bound each kind of request")
	fs.IntVar(&o.MaxRequestsInFlight, "max-requests-inflight", o.MaxRequestsInFlight, "with --max-mutating-requests-inflight, how many requests are served at once (their sum with priority and fairness, each of its kind without); 0 means no limit without priority and fairness")
	fs.IntVar(&o.MaxMutatingRequestsInFlight, "max-mutating-requests-inflight", o.MaxMutatingRequestsInFlight, "how many mutating requests are served at once, added to --max-requests-inflight with priority and fairness")
	o.SecureServing.AddFlags(fs)
	o.Audit.AddFlags(fs)
}

// Complete fills in what follows from other options.
func (o *Options) Complete() error {
	if o.Storage == "" {
		o.Storage = filepath.Join(o.DataDir, "warren.db")
	}
	return nil
}

// Validate reports every invalid option.
func (o *Options) Validate() error {
	errs := append(o.SecureServing.Validate(), o.Audit.Validate()...)
	if o.CompactionInterval <= 0 {
		errs = append(errs, errors.New("--compaction-interval must be positive"))
	}
	if o.IndexClusters <= 0 {
		errs = append(errs, errors.New("--index-clusters must be positive"))
	}
	if o.DecodedObjectCacheMiB < 0 {
		errs = append(errs, errors.New("--decoded-object-cache-mib must not be negative"))
	}
	if o.EncodedItemCacheMiB < 0 {
		errs = append(errs, errors.New("--encoded-item-cache-mib must not be negative"))
	}
	if o.MaxRequestsInFlight < 0 || o.MaxMutatingRequestsInFlight < 0 {
		errs = append(errs, errors.New("--max-requests-inflight and --max-mutating-requests-inflight must not be negative"))
	} else if o.PriorityAndFairness && o.MaxRequestsInFlight+o.MaxMutatingRequestsInFlight == 0 {
		errs = append(errs, errors.New("with --enable-priority-and-fairness, --max-requests-inflight and --max-mutating-requests-inflight must add up to a positive number"))
	}
	if o.DataDir == "" {
		errs = append(errs, errors.New("--data-dir must not be empty"))
	}
	if o.Shards < 1 {
		errs = append(errs, errors.New("--shards must be at least 1"))
	}
	if o.Shards > 1 {
		if o.RootShard != "" || o.ExternalURL != "" {
			errs = append(errs, errors.New("--shards runs a whole installation: it takes neither --root-shard nor --external-url"))
		}
		if o.Audit.LogOptions.Path != "" || o.Audit.WebhookOptions.ConfigFile != "" {
			errs = append(errs, errors.New("--shards runs an installation for trying shards out: audit a shard in a process of its own"))
		}
		if o.Storage != "" && !strings.HasPrefix(o.Storage, "postgres://") && !strings.HasPrefix(o.Storage, "postgresql://") {
			errs = append(errs, fmt.Errorf("--storage %q: with --shards, each shard has its SQLite file under --data-dir, or its schema of a postgres:// database", o.Storage))
		}
	}
	if o.ExternalURL != "" {
		if u, err := url.Parse(o.ExternalURL); err != nil || u.Scheme != "https" || u.Host == "" || strings.TrimSuffix(u.Path, "/") != "" {
			errs = append(errs, fmt.Errorf("--external-url %q: it must be https://host:port, without a path", o.ExternalURL))
		}
	}
	if strings.HasPrefix(o.Storage, "etcd://") && !strings.Contains(strings.TrimPrefix(o.Storage, "etcd://"), ":") {
		errs = append(errs, fmt.Errorf("--storage %q: an etcd address is etcd://host:port", o.Storage))
	}
	return errors.Join(errs...)
}
