package apiserver

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apiserver/pkg/registry/generic"
	"k8s.io/apiserver/pkg/server/options/encryptionconfig"
	apistorage "k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/apiserver/pkg/storage/storagebackend/factory"
	"k8s.io/client-go/tools/cache"

	"github.com/warren-dev/warren/apiserver/listcost"
	"github.com/warren-dev/warren/apiserver/registry"
	"github.com/warren-dev/warren/apiserver/scheme"
	"github.com/warren-dev/warren/storage"
	"github.com/warren-dev/warren/tenancy/clusterwatch"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// storedAs maps resources stored under another resource's keys and version:
// events.k8s.io Events are core/v1 Events, as in Kubernetes.
var storedAs = map[schema.GroupResource]schema.GroupVersionResource{
	{Group: "events.k8s.io", Resource: "events"}: corev1.SchemeGroupVersion.WithResource("events"),
}

// Storage is where a server keeps the objects of every resource, given to it
// in its Config: a shard of warren's SQL storage, or, for comparison, upstream's
// etcd3 store. It hands every registry store its storage, with the request's
// cluster in every key.
type Storage interface {
	generic.RESTOptionsGetter
	// EraseCluster deletes every stored object of a logical cluster, which
	// takes no new object until ReviveCluster.
	EraseCluster(ctx context.Context, cluster string) (int, error)
	ReviveCluster(ctx context.Context, cluster string) error
	// Ready says why the storage cannot serve now, or nil; /readyz asks it.
	Ready() error
	// Leader tells when this process leads the shard, of all the processes
	// serving it, and so runs its controllers; nil: always.
	Leader() clusterwatch.Leader
	// Close releases the storage; the server closes it when it stops.
	Close()
}

// NewSQLStorage returns the storage of a shard of warren's SQL storage, which
// it owns from now on.
// Values of the resources encryption names are encrypted at rest by their
// transformers (nil: none).
func NewSQLStorage(b *storage.Backend, encryption encryptionconfig.StaticTransformers) Storage {
	return &sqlStorage{backend: b, encryption: encryption}
}

// NewEtcdStorage returns upstream's etcd3 store on the etcd at endpoints, with
// encryption as NewSQLStorage's.
func NewEtcdStorage(endpoints []string, encryption encryptionconfig.StaticTransformers) Storage {
	return &etcdStorage{endpoints: endpoints, encryption: encryption}
}

// sqlStorage gives every resource a warren storage.Store on the backend.
type sqlStorage struct {
	backend    *storage.Backend
	encryption encryptionconfig.StaticTransformers
}

// etcdStorage gives every resource an etcd3 store of upstream's.
type etcdStorage struct {
	endpoints  []string
	encryption encryptionconfig.StaticTransformers
}

func (s *sqlStorage) GetRESTOptions(gr schema.GroupResource, _ runtime.Object) (generic.RESTOptions, error) {
	return restOptions(gr, nil, s.encryption, s.decorate)
}

func (s *etcdStorage) GetRESTOptions(gr schema.GroupResource, _ runtime.Object) (generic.RESTOptions, error) {
	return restOptions(gr, s.endpoints, s.encryption, s.decorate)
}

// restOptions are the options of resource gr: stored in its storage version
// (or under the resource it is stored as), under its prefix, encrypted as
// encryption says.
func restOptions(gr schema.GroupResource, servers []string, encryption encryptionconfig.StaticTransformers, decorator generic.StorageDecorator) (generic.RESTOptions, error) {
	gvr, ok := storedAs[gr]
	if !ok {
		gv, _ := scheme.StorageVersion(gr)
		gvr = gv.WithResource(gr.Resource)
	}
	codec, err := scheme.StorageCodec(gvr)
	if err != nil {
		return generic.RESTOptions{}, err
	}
	cfg := storagebackend.NewDefaultConfig("", codec)
	cfg.Transport.ServerList = servers
	if encryption != nil {
		cfg.Transformer = encryption.TransformerForResource(gvr.GroupResource())
	}
	return generic.RESTOptions{
		StorageConfig:           cfg.ForResource(gr),
		Decorator:               decorator,
		DeleteCollectionWorkers: 1,
		ResourcePrefix:          registry.Prefix(gvr.GroupResource()),
	}, nil
}

func (s *sqlStorage) decorate(config *storagebackend.ConfigForResource, prefix string, _ func(runtime.Object) (string, error),
	newFunc, newListFunc func() runtime.Object, _ apistorage.AttrFunc, _ apistorage.IndexerFuncs, _ *cache.Indexers) (apistorage.Interface, factory.DestroyFunc, error) {
	store, err := s.backend.NewStore(storage.ResourceConfig{
		Codec:             config.Codec,
		NewFunc:           newFunc,
		NewListFunc:       newListFunc,
		ResourcePrefix:    prefix,
		GroupResource:     config.GroupResource,
		Transformer:       config.Transformer,
		Clustered:         true,
		ClusterAnnotation: logicalcluster.Annotation,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("storage of %s: %w", config.GroupResource, err)
	}
	return registry.ClusterKeyed(store, prefix, config.GroupResource), func() {}, nil
}

// recordingLists gives every store it hands out the recording of the sizes
// of the lists it answers (listcost).
type recordingLists struct {
	generic.RESTOptionsGetter
	sizes *listcost.Sizes
}

// listSizeKeys is how many (workspace, resource, namespace) keys' list sizes
// are remembered: ~100 bytes each.
const listSizeKeys = 1 << 16

func (r recordingLists) GetRESTOptions(gr schema.GroupResource, obj runtime.Object) (generic.RESTOptions, error) {
	opts, err := r.RESTOptionsGetter.GetRESTOptions(gr, obj)
	if err != nil || opts.Decorator == nil {
		return opts, err
	}
	decorate := opts.Decorator
	opts.Decorator = func(config *storagebackend.ConfigForResource, prefix string, keyFunc func(runtime.Object) (string, error),
		newFunc, newListFunc func() runtime.Object, getAttrs apistorage.AttrFunc, trigger apistorage.IndexerFuncs, indexers *cache.Indexers) (apistorage.Interface, factory.DestroyFunc, error) {
		store, destroy, err := decorate(config, prefix, keyFunc, newFunc, newListFunc, getAttrs, trigger, indexers)
		if err != nil {
			return nil, nil, err
		}
		return r.sizes.Storage(store), destroy, nil
	}
	return opts, nil
}

func (s *sqlStorage) EraseCluster(ctx context.Context, cluster string) (int, error) {
	return s.backend.EraseCluster(ctx, cluster)
}

func (s *sqlStorage) ReviveCluster(ctx context.Context, cluster string) error {
	return s.backend.ReviveCluster(ctx, cluster)
}

func (s *sqlStorage) Ready() error { return s.backend.Ready() }

func (s *sqlStorage) Leader() clusterwatch.Leader { return s.backend.Leadership() }
func (s *sqlStorage) Close()                      { s.backend.Close() }

func (s *etcdStorage) decorate(config *storagebackend.ConfigForResource, prefix string, _ func(runtime.Object) (string, error),
	newFunc, newListFunc func() runtime.Object, _ apistorage.AttrFunc, _ apistorage.IndexerFuncs, _ *cache.Indexers) (apistorage.Interface, factory.DestroyFunc, error) {
	store, destroy, err := factory.Create(*config, newFunc, newListFunc, prefix)
	if err != nil {
		return nil, nil, err
	}
	return registry.ClusterKeyed(&etcdMarked{Interface: store, prefix: prefix}, prefix, config.GroupResource), destroy, nil
}

// ReviveCluster has nothing to do: etcd keeps no record of erased clusters.
func (s *etcdStorage) ReviveCluster(context.Context, string) error { return nil }

// Ready leaves etcd's health to the stores' own checks.
func (s *etcdStorage) Ready() error { return nil }

// Leader is nil: one process serves etcd, for comparison only.
func (s *etcdStorage) Leader() clusterwatch.Leader { return nil }

// Close has nothing to release: each store's client is destroyed with it.
func (s *etcdStorage) Close() {}

// etcdMarked gives objects stored in etcd their cluster annotation. warren's own
// storage derives it from the key on every read; etcd3's store cannot, as lists
// and watches return objects without keys, so on etcd the annotation is written
// with the object, taken from the key on every write.
type etcdMarked struct {
	apistorage.Interface
	prefix string
}

func (s *etcdMarked) mark(key string, obj runtime.Object) {
	cluster, _, _ := storage.SplitClusterKey(s.prefix, key)
	m, err := meta.Accessor(obj)
	if err != nil {
		return
	}
	a := m.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	a[logicalcluster.Annotation] = cluster
	m.SetAnnotations(a)
}

func (s *etcdMarked) Create(ctx context.Context, key string, obj, out runtime.Object, ttl uint64) error {
	s.mark(key, obj)
	return s.Interface.Create(ctx, key, obj, out, ttl)
}

func (s *etcdMarked) GuaranteedUpdate(ctx context.Context, key string, destination runtime.Object, ignoreNotFound bool,
	preconditions *apistorage.Preconditions, tryUpdate apistorage.UpdateFunc, cached runtime.Object) error {
	marked := func(input runtime.Object, res apistorage.ResponseMeta) (runtime.Object, *uint64, error) {
		out, ttl, err := tryUpdate(input, res)
		if err == nil {
			s.mark(key, out)
		}
		return out, ttl, err
	}
	return s.Interface.GuaranteedUpdate(ctx, key, destination, ignoreNotFound, preconditions, marked, cached)
}

// EraseCluster deletes every object of a logical cluster from etcd. etcd has no
// index by cluster, so it reads every key (keys only, a page at a time) and
// deletes those in the cluster: the third segment of /<group>/<resource>/<cluster>/….
func (s *etcdStorage) EraseCluster(ctx context.Context, cluster string) (int, error) {
	client, err := clientv3.New(clientv3.Config{Endpoints: s.endpoints, DialTimeout: 10 * time.Second, Context: ctx})
	if err != nil {
		return 0, fmt.Errorf("erasing cluster %s: %w", cluster, err)
	}
	defer client.Close()
	deleted := 0
	for from := "/"; ; {
		page, err := client.Get(ctx, from, clientv3.WithFromKey(), clientv3.WithKeysOnly(), clientv3.WithLimit(1000))
		if err != nil {
			return deleted, fmt.Errorf("erasing cluster %s: %w", cluster, err)
		}
		for _, kv := range page.Kvs {
			if storage.ClusterOf(string(kv.Key)) == cluster {
				if _, err := client.Delete(ctx, string(kv.Key)); err != nil {
					return deleted, fmt.Errorf("erasing cluster %s: %w", cluster, err)
				}
				deleted++
			}
		}
		if !page.More {
			return deleted, nil
		}
		from = string(page.Kvs[len(page.Kvs)-1].Key) + "\x00"
	}
}
