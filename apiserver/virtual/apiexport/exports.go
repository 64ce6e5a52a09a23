package apiexport

import (
	"context"
	"fmt"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	apisv1alpha1 "github.com/kcp-dev/sdk/apis/apis/v1alpha1"
	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"

	"github.com/warren-dev/warren/tenancy"
	"github.com/warren-dev/warren/tenancy/clusterwatch"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// cachedProviders bounds how many clusters' exports are held.
const cachedProviders = 1024

// Exports caches what the virtual workspaces serve from: per logical cluster
// holding exports, its APIExports and APIResourceSchemas, kept fresh by
// watches of both, and what requests derive from them (Provider.Memo). A
// request of a virtual workspace reads none of them from storage while its
// export's cluster is cached and unchanged.
//
// Clusters other shards hold are served from what this shard follows of them
// (elsewhere): a Provider per snapshot of theirs, remade when it changes.
type Exports struct {
	views     *clusterwatch.Views[*Provider]
	elsewhere func(logicalcluster.Name) (*tenancy.Exported, bool)
	// remote holds, by cluster, the Provider of the snapshot of elsewhere
	// used last; requests of this shard's clusters take no lock for it.
	remote sync.Map
}

// listWatcher lists and watches a resource.
type listWatcher interface {
	rest.Lister
	rest.Watcher
}

// NewExports returns the cache of the APIExports and APIResourceSchemas of
// exports and schemas, and of what elsewhere tells of clusters other shards
// hold; Run keeps it fresh.
func NewExports(exports, schemas listWatcher, elsewhere func(logicalcluster.Name) (*tenancy.Exported, bool)) *Exports {
	return &Exports{
		views:     clusterwatch.NewViews(cachedProviders, loadProvider(exports, schemas), exports, schemas),
		elsewhere: elsewhere,
	}
}

// Run keeps the cache fresh until ctx ends.
func (e *Exports) Run(ctx context.Context) { e.views.Run(ctx) }

// Get returns the exports and schemas of cluster.
func (e *Exports) Get(ctx context.Context, cluster logicalcluster.Name) (*Provider, error) {
	snapshot, ok := e.elsewhere(cluster)
	if !ok {
		e.remote.Delete(cluster)
		return e.views.Get(ctx, cluster)
	}
	if snapshot == nil {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("the exports of logical cluster %s, on another shard, are not listed yet", cluster))
	}
	if p, ok := e.remote.Load(cluster); ok && p.(*Provider).from == snapshot {
		return p.(*Provider), nil
	}
	p := &Provider{exports: snapshot.Exports, schemas: snapshot.Schemas, memo: map[string]*memoized{}, from: snapshot}
	e.remote.Store(cluster, p)
	return p, nil
}

// Export returns the export of ref, nil if there is none.
func (e *Exports) Export(ctx context.Context, ref Ref) (*apisv1alpha2.APIExport, error) {
	p, err := e.Get(ctx, ref.Cluster)
	if err != nil {
		return nil, err
	}
	return p.Export(ref.Export), nil
}

// Provider is what one cluster exports: its APIExports and
// APIResourceSchemas as read at one revision, never changed (a change of
// either makes a new Provider), and what is derived from them.
type Provider struct {
	exports map[string]*apisv1alpha2.APIExport
	schemas map[string]*apisv1alpha1.APIResourceSchema

	// from is the snapshot of another shard's cluster it was made of.
	from *tenancy.Exported

	mu   sync.Mutex
	memo map[string]*memoized
}

type memoized struct {
	once  sync.Once
	value any
	err   error
}

func loadProvider(exports, schemas rest.Lister) clusterwatch.Load[*Provider] {
	return func(ctx context.Context, cluster logicalcluster.Name) (*Provider, uint64, error) {
		ctx = genericapirequest.WithNamespace(logicalcluster.WithName(ctx, cluster), "")
		e, err := exports.List(ctx, &metainternalversion.ListOptions{})
		if err != nil {
			return nil, 0, fmt.Errorf("listing the APIExports of cluster %s: %w", cluster, err)
		}
		s, err := schemas.List(ctx, &metainternalversion.ListOptions{})
		if err != nil {
			return nil, 0, fmt.Errorf("listing the APIResourceSchemas of cluster %s: %w", cluster, err)
		}
		revision, err := clusterwatch.Revision(e)
		if err != nil {
			return nil, 0, err
		}
		schemaRevision, err := clusterwatch.Revision(s)
		if err != nil {
			return nil, 0, err
		}
		p := &Provider{exports: map[string]*apisv1alpha2.APIExport{}, schemas: map[string]*apisv1alpha1.APIResourceSchema{}, memo: map[string]*memoized{}}
		for i := range e.(*apisv1alpha2.APIExportList).Items {
			x := &e.(*apisv1alpha2.APIExportList).Items[i]
			p.exports[x.Name] = x
		}
		for i := range s.(*apisv1alpha1.APIResourceSchemaList).Items {
			x := &s.(*apisv1alpha1.APIResourceSchemaList).Items[i]
			p.schemas[x.Name] = x
		}
		return p, min(revision, schemaRevision), nil
	}
}

// Export returns the export name, nil if there is none. Callers must not
// change it.
func (p *Provider) Export(name string) *apisv1alpha2.APIExport { return p.exports[name] }

// Schema returns the schema name, nil if there is none. Callers must not
// change it.
func (p *Provider) Schema(name string) *apisv1alpha1.APIResourceSchema { return p.schemas[name] }

// Memo returns what build makes of the provider for key, building it once;
// what it returns is shared by every request and must not be changed.
func (p *Provider) Memo(key string, build func() (any, error)) (any, error) {
	p.mu.Lock()
	m, ok := p.memo[key]
	if !ok {
		m = &memoized{}
		p.memo[key] = m
	}
	p.mu.Unlock()
	m.once.Do(func() { m.value, m.err = build() })
	return m.value, m.err
}
