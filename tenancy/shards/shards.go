// Package shards is what one process of a sharded installation knows of the
// installation's shards: the Shard objects registered in root, and the logical
// clusters and workspace types each shard holds. It learns them the way any
// client would, through each shard's API — a wildcard list and watch per
// shard, resumed after failures with client-go's reflector — never through SQL
// across shards, so shards may live on any PostgreSQL servers.
//
// A shard uses it to place new workspaces (by location selector, else on the
// shard with the fewest logical clusters), to resolve paths and workspace types
// held elsewhere, to make and delete logical clusters on other shards, and to
// bind APIs other shards export: it follows their APIExports,
// APIResourceSchemas and APIExportEndpointSlices too. The front proxy uses it
// to route requests. What it holds is as fresh as each
// shard's watch: a change reaches it within the watch's lag, and nothing it
// answers pretends to be one snapshot across shards.
package shards

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	kcplogicalcluster "github.com/kcp-dev/logicalcluster/v3"
	apisv1alpha1 "github.com/kcp-dev/sdk/apis/apis/v1alpha1"
	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"
	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"
	kcpclientset "github.com/kcp-dev/sdk/client/clientset/versioned/cluster"

	"github.com/warren-dev/warren/tenancy"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// Installation follows the shards of an installation and what they hold.
type Installation struct {
	// self is the shard this process serves; "" for a front proxy, which
	// follows every shard. holdsRoot says whether self is the root shard.
	self      string
	holdsRoot bool
	// config has credentials every shard accepts (the installation's admin);
	// its host is the root shard's.
	config *rest.Config
	// observe is told of changes on the shards followed.
	observe Observer

	mu       sync.RWMutex
	shards   map[string]*shard
	clusters map[logicalcluster.Name]*tenancy.Cluster
	paths    map[tenancy.Path]logicalcluster.Name
	synced   bool
}

// shard is a shard and what is followed of it.
type shard struct {
	tenancy.Shard
	baseURL string
	client  kcpclientset.ClusterInterface
	// reviews posts subject access reviews.
	reviews rest.Interface
	// stop ends its followers; followed says whether they run.
	stop     context.CancelFunc
	followed bool
	// clusters counts its logical clusters; types are its workspace types
	// by the cluster holding them and their name.
	clusters int
	types    map[logicalcluster.Name]map[string]*tenancyv1alpha1.WorkspaceType
	// synced tells whether each follower has listed once; since is when
	// following began.
	clustersSynced, typesSynced bool
	since                       time.Time
	// exports, schemas and slices are its clusters' APIExports,
	// APIResourceSchemas and APIExportEndpointSlices, which a shard follows
	// of every other shard; exported holds the snapshots Exported made of
	// them, until they change.
	exports                      byCluster[*apisv1alpha2.APIExport]
	schemas                      byCluster[*apisv1alpha1.APIResourceSchema]
	slices                       byCluster[*apisv1alpha1.APIExportEndpointSlice]
	exported                     map[logicalcluster.Name]*tenancy.Exported
	exportsSynced, schemasSynced bool
}

// Observer is told of the changes on other shards a shard acts on; any of its
// functions may be nil.
type Observer struct {
	// Cluster sees each change of a followed LogicalCluster, as it is
	// stored after the change (without a phase once it is gone).
	Cluster func(*tenancy.Cluster)
	// Export sees the name of each APIExport of another shard that changed,
	// was deleted, or whose cluster's APIResourceSchemas changed.
	Export func(cluster logicalcluster.Name, name string)
	// Slice sees each change of an APIExportEndpointSlice of another
	// shard, as stored after it; gone says it was deleted.
	Slice func(cluster logicalcluster.Name, slice *apisv1alpha1.APIExportEndpointSlice, gone bool)
}

// New returns the installation whose root shard config reaches with
// credentials every shard accepts, as seen from shard self ("" for a front
// proxy), which holdsRoot if it is the root shard; observe is told of changes.
// Run follows it.
func New(config *rest.Config, self string, holdsRoot bool, observe Observer) *Installation {
	c := rest.CopyConfig(config)
	// kcp's types have no protobuf form.
	c.ContentType, c.AcceptContentTypes = runtime.ContentTypeJSON, runtime.ContentTypeJSON
	// Shards call each other on behalf of their own clients' requests (a
	// subject access review per workspace created, a LogicalCluster made):
	// client-go's default of 5 requests per second would make every shard
	// wait on every other; the called shard's priority and fairness decide.
	c.QPS, c.Burst = -1, 0
	return &Installation{
		self: self, holdsRoot: holdsRoot, config: c, observe: observe,
		shards:   map[string]*shard{},
		clusters: map[logicalcluster.Name]*tenancy.Cluster{},
		paths:    map[tenancy.Path]logicalcluster.Name{},
	}
}

// clientFor returns a client of the shard at baseURL.
func (in *Installation) clientFor(baseURL string) (kcpclientset.ClusterInterface, error) {
	c := rest.CopyConfig(in.config)
	c.Host = baseURL
	return kcpclientset.NewForConfig(c)
}

// Run follows the installation until ctx ends: the Shard objects in root, and
// for each shard its logical clusters and workspace types. A shard follows
// itself only once it has company, for the counts that scheduling compares.
func (in *Installation) Run(ctx context.Context) {
	root, err := in.clientFor(in.config.Host)
	if err != nil {
		klog.FromContext(ctx).Error(err, "Following the shards of the installation failed")
		return
	}
	shards := root.Cluster(kcplogicalcluster.NewPath(string(logicalcluster.Root))).CoreV1alpha1().Shards()
	lw := listWatch(shards.List, shards.Watch)
	sink := &sink{
		set: func(obj any) { in.setShard(ctx, obj.(*corev1alpha1.Shard)) },
		del: func(obj any) { in.dropShard(objectName(obj)) },
		replace: func(objs []any) {
			keep := map[string]bool{}
			for _, obj := range objs {
				s := obj.(*corev1alpha1.Shard)
				keep[s.Name] = true
				in.setShard(ctx, s)
			}
			in.mu.RLock()
			var gone []string
			for name := range in.shards {
				if !keep[name] {
					gone = append(gone, name)
				}
			}
			in.mu.RUnlock()
			for _, name := range gone {
				in.dropShard(name)
			}
			in.mu.Lock()
			in.synced = true
			in.mu.Unlock()
		},
	}
	cache.NewReflectorWithOptions(lw, &corev1alpha1.Shard{}, sink, cache.ReflectorOptions{Name: "shards"}).RunWithContext(ctx)
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, s := range in.shards {
		if s.stop != nil {
			s.stop()
		}
	}
}

// objectName is the name of obj, or of the object a deletion seen late names.
func objectName(obj any) string {
	if m, ok := deleted(obj); ok {
		return m.GetName()
	}
	return ""
}

// deleted returns the object a reflector says was deleted: obj, or the one a
// deletion seen late names.
func deleted(obj any) (metav1.Object, bool) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, ok := obj.(metav1.Object)
	return m, ok
}

// setShard records the Shard s and follows the shards as they now should be.
func (in *Installation) setShard(ctx context.Context, s *corev1alpha1.Shard) {
	in.mu.Lock()
	defer in.mu.Unlock()
	old := in.shards[s.Name]
	if old != nil && old.baseURL != s.Spec.BaseURL {
		in.unfollow(old)
		old = nil
	}
	if old == nil {
		client, err := in.clientFor(s.Spec.BaseURL)
		var core *kubernetes.Clientset
		if err == nil {
			c := rest.CopyConfig(in.config)
			c.Host = s.Spec.BaseURL
			core, err = kubernetes.NewForConfig(c)
		}
		if err != nil {
			klog.FromContext(ctx).Error(err, "A shard cannot be reached", "shard", s.Name, "url", s.Spec.BaseURL)
			return
		}
		old = &shard{baseURL: s.Spec.BaseURL, client: client, reviews: core.AuthorizationV1().RESTClient()}
		old.forget()
		in.shards[s.Name] = old
	}
	_, unschedulable := s.Annotations[tenancy.UnschedulableAnnotation]
	old.Shard = tenancy.Shard{Name: s.Name, ExternalURL: s.Spec.ExternalURL, Labels: s.Labels, Unschedulable: unschedulable}
	in.followAll(ctx)
}

// dropShard forgets the shard name and what it holds.
func (in *Installation) dropShard(name string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if s, ok := in.shards[name]; ok {
		in.unfollow(s)
		delete(in.shards, name)
	}
}

// followAll starts the followers of every shard that should be followed and
// is not: every shard but this process's own while it is alone.
func (in *Installation) followAll(ctx context.Context) {
	for name, s := range in.shards {
		if s.followed || name == in.self && len(in.shards) < 2 {
			continue
		}
		fctx, stop := context.WithCancel(ctx)
		s.stop, s.followed, s.since = stop, true, time.Now()
		go in.follow(fctx, name, s)
	}
}

// unfollow stops following s and forgets what it holds. in.mu is held.
func (in *Installation) unfollow(s *shard) {
	if s.stop != nil {
		s.stop()
	}
	for name, c := range in.clusters {
		if c.Shard == s.Name {
			delete(in.clusters, name)
			in.forgetPath(c)
		}
	}
	s.followed, s.clusters = false, 0
	s.forget()
}

// forget empties what is followed of s.
func (s *shard) forget() {
	s.types = map[logicalcluster.Name]map[string]*tenancyv1alpha1.WorkspaceType{}
	s.exports, s.schemas, s.slices = byCluster[*apisv1alpha2.APIExport]{}, byCluster[*apisv1alpha1.APIResourceSchema]{}, byCluster[*apisv1alpha1.APIExportEndpointSlice]{}
	s.exported = map[logicalcluster.Name]*tenancy.Exported{}
	s.exportsSynced, s.schemasSynced = false, false
}

// forgetPath drops the path of c unless another cluster took it. in.mu is held.
func (in *Installation) forgetPath(c *tenancy.Cluster) {
	if in.paths[c.Path] == c.Name {
		delete(in.paths, c.Path)
	}
}

// follow lists and watches the logical clusters and workspace types of the
// shard name until ctx ends.
func (in *Installation) follow(ctx context.Context, name string, s *shard) {
	clusters, types := s.client.CoreV1alpha1().LogicalClusters(), s.client.TenancyV1alpha1().WorkspaceTypes()
	clustersLW, typesLW := listWatch(clusters.List, clusters.Watch), listWatch(types.List, types.Watch)
	clustersSink := &sink{
		set:     func(obj any) { in.setCluster(s, obj.(*corev1alpha1.LogicalCluster), true) },
		del:     func(obj any) { in.dropCluster(s, obj) },
		replace: func(objs []any) { in.replaceClusters(s, objs) },
	}
	typesSink := &sink{
		set:     func(obj any) { in.setType(s, obj.(*tenancyv1alpha1.WorkspaceType)) },
		del:     func(obj any) { in.dropType(s, obj) },
		replace: func(objs []any) { in.replaceTypes(s, objs) },
	}
	go cache.NewReflectorWithOptions(typesLW, &tenancyv1alpha1.WorkspaceType{}, typesSink, cache.ReflectorOptions{Name: "workspacetypes of shard " + name}).RunWithContext(ctx)
	if in.self != "" && name != in.self {
		in.followAPIs(ctx, name, s)
	}
	cache.NewReflectorWithOptions(clustersLW, &corev1alpha1.LogicalCluster{}, clustersSink, cache.ReflectorOptions{Name: "logicalclusters of shard " + name}).RunWithContext(ctx)
}

// followAPIs lists and watches the APIExports, APIResourceSchemas and
// APIExportEndpointSlices of the shard name until ctx ends.
func (in *Installation) followAPIs(ctx context.Context, name string, s *shard) {
	exports, schemas, slices := s.client.ApisV1alpha2().APIExports(), s.client.ApisV1alpha1().APIResourceSchemas(), s.client.ApisV1alpha1().APIExportEndpointSlices()
	exportChanged := func(cluster logicalcluster.Name, name string, _ *apisv1alpha2.APIExport, _ bool) {
		if in.observe.Export != nil {
			in.observe.Export(cluster, name)
		}
	}
	schemaChanged := func(cluster logicalcluster.Name, _ string, _ *apisv1alpha1.APIResourceSchema, _ bool) {
		if in.observe.Export == nil {
			return
		}
		in.mu.RLock()
		var names []string
		for name := range s.exports[cluster] {
			names = append(names, name)
		}
		in.mu.RUnlock()
		for _, name := range names {
			in.observe.Export(cluster, name)
		}
	}
	sliceChanged := func(cluster logicalcluster.Name, _ string, slice *apisv1alpha1.APIExportEndpointSlice, gone bool) {
		if in.observe.Slice != nil {
			in.observe.Slice(cluster, slice, gone)
		}
	}
	go followObjects(ctx, in, s, "apiexports of shard "+name, listWatch(exports.List, exports.Watch), &apisv1alpha2.APIExport{}, func(s *shard) byCluster[*apisv1alpha2.APIExport] { return s.exports },
		func(s *shard, b byCluster[*apisv1alpha2.APIExport]) { s.exports, s.exportsSynced = b, true }, exportChanged)
	go followObjects(ctx, in, s, "apiresourceschemas of shard "+name, listWatch(schemas.List, schemas.Watch), &apisv1alpha1.APIResourceSchema{}, func(s *shard) byCluster[*apisv1alpha1.APIResourceSchema] { return s.schemas },
		func(s *shard, b byCluster[*apisv1alpha1.APIResourceSchema]) { s.schemas, s.schemasSynced = b, true }, schemaChanged)
	go followObjects(ctx, in, s, "apiexportendpointslices of shard "+name, listWatch(slices.List, slices.Watch), &apisv1alpha1.APIExportEndpointSlice{}, func(s *shard) byCluster[*apisv1alpha1.APIExportEndpointSlice] { return s.slices },
		func(s *shard, b byCluster[*apisv1alpha1.APIExportEndpointSlice]) { s.slices = b }, sliceChanged)
}

// byCluster holds objects of one resource by logical cluster and name.
type byCluster[T metav1.Object] map[logicalcluster.Name]map[string]T

// followObjects keeps, with a reflector, the objects of one resource of s in
// the map get returns (set replaces it whole, after each full list) until ctx
// ends, telling changed
// of each change once it is recorded, with the object as it is now or, gone,
// as it was last seen. Any change of a cluster's objects drops
// its snapshot in s.exported.
func followObjects[T interface {
	metav1.Object
	runtime.Object
}](ctx context.Context, in *Installation, s *shard, name string, lw *acrossClusters, example T, get func(*shard) byCluster[T], set func(*shard, byCluster[T]), changed func(cluster logicalcluster.Name, name string, obj T, gone bool)) {
	sink := &sink{
		set: func(obj any) {
			o := obj.(T)
			cluster := clusterName(o)
			in.mu.Lock()
			if in.shards[s.Name] != s {
				in.mu.Unlock()
				return
			}
			objs := get(s)
			if objs[cluster] == nil {
				objs[cluster] = map[string]T{}
			}
			objs[cluster][o.GetName()] = o
			delete(s.exported, cluster)
			in.mu.Unlock()
			changed(cluster, o.GetName(), o, false)
		},
		del: func(obj any) {
			m, ok := deleted(obj)
			if !ok {
				return
			}
			cluster := clusterName(m)
			in.mu.Lock()
			if in.shards[s.Name] != s {
				in.mu.Unlock()
				return
			}
			objs := get(s)
			delete(objs[cluster], m.GetName())
			if len(objs[cluster]) == 0 {
				delete(objs, cluster)
			}
			delete(s.exported, cluster)
			in.mu.Unlock()
			if o, ok := m.(T); ok {
				changed(cluster, m.GetName(), o, true)
			}
		},
		replace: func(list []any) {
			next := byCluster[T]{}
			for _, obj := range list {
				o := obj.(T)
				cluster := clusterName(o)
				if next[cluster] == nil {
					next[cluster] = map[string]T{}
				}
				next[cluster][o.GetName()] = o
			}
			in.mu.Lock()
			if in.shards[s.Name] != s {
				in.mu.Unlock()
				return
			}
			prev := get(s)
			set(s, next)
			s.exported = map[logicalcluster.Name]*tenancy.Exported{}
			in.mu.Unlock()
			for cluster, objs := range prev {
				for name, o := range objs {
					if _, kept := next[cluster][name]; !kept {
						changed(cluster, name, o, true)
					}
				}
			}
			for cluster, objs := range next {
				for name, o := range objs {
					if old, had := prev[cluster][name]; !had || old.GetResourceVersion() != o.GetResourceVersion() {
						changed(cluster, name, o, false)
					}
				}
			}
		},
	}
	cache.NewReflectorWithOptions(lw, example, sink, cache.ReflectorOptions{Name: name}).RunWithContext(ctx)
}

// clusterName is the logical cluster an object of a wildcard list is in.
func clusterName(m metav1.Object) logicalcluster.Name {
	return logicalcluster.Name(m.GetAnnotations()[logicalcluster.Annotation])
}

// setCluster records lc, a LogicalCluster of s, and shows it to observe if
// notify.
func (in *Installation) setCluster(s *shard, lc *corev1alpha1.LogicalCluster, notify bool) {
	if lc.Name != corev1alpha1.LogicalClusterName {
		return
	}
	c, err := tenancy.ClusterOf(clusterName(lc), lc)
	if err != nil {
		return
	}
	c.Shard = s.Name
	in.mu.Lock()
	if in.shards[s.Name] != s {
		in.mu.Unlock()
		return
	}
	old, existed := in.clusters[c.Name]
	if !existed {
		s.clusters++
	} else if old.Path != c.Path {
		in.forgetPath(old)
	}
	in.clusters[c.Name] = c
	in.paths[c.Path] = c.Name
	in.mu.Unlock()
	if notify && in.observe.Cluster != nil {
		in.observe.Cluster(c)
	}
}

// dropCluster forgets the LogicalCluster obj of s.
func (in *Installation) dropCluster(s *shard, obj any) {
	m, ok := deleted(obj)
	if !ok {
		return
	}
	in.mu.Lock()
	c, existed := in.clusters[clusterName(m)]
	if !existed || c.Shard != s.Name || in.shards[s.Name] != s {
		in.mu.Unlock()
		return
	}
	delete(in.clusters, c.Name)
	in.forgetPath(c)
	s.clusters--
	in.mu.Unlock()
	if in.observe.Cluster != nil {
		gone := *c
		gone.Phase = ""
		in.observe.Cluster(&gone)
	}
}

// replaceClusters records objs as every LogicalCluster of s: what changed is
// set, what is gone dropped. Only changes are observed, and clusters first
// seen Ready are none: nothing waits for them.
func (in *Installation) replaceClusters(s *shard, objs []any) {
	keep := make(map[logicalcluster.Name]bool, len(objs))
	for _, obj := range objs {
		lc := obj.(*corev1alpha1.LogicalCluster)
		keep[clusterName(lc)] = true
		in.mu.RLock()
		old := in.clusters[clusterName(lc)]
		in.mu.RUnlock()
		switch {
		case old == nil:
			in.setCluster(s, lc, lc.Status.Phase != corev1alpha1.LogicalClusterPhaseReady)
		case old.Phase != lc.Status.Phase:
			in.setCluster(s, lc, true)
		}
	}
	in.mu.RLock()
	var gone []*corev1alpha1.LogicalCluster
	for name, c := range in.clusters {
		if c.Shard == s.Name && !keep[name] {
			gone = append(gone, &corev1alpha1.LogicalCluster{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{logicalcluster.Annotation: string(name)}}})
		}
	}
	in.mu.RUnlock()
	for _, lc := range gone {
		in.dropCluster(s, lc)
	}
	in.mu.Lock()
	s.clustersSynced = true
	in.mu.Unlock()
}

// setType records wt, a WorkspaceType of s.
func (in *Installation) setType(s *shard, wt *tenancyv1alpha1.WorkspaceType) {
	in.mu.Lock()
	defer in.mu.Unlock()
	holder := clusterName(wt)
	if s.types[holder] == nil {
		s.types[holder] = map[string]*tenancyv1alpha1.WorkspaceType{}
	}
	s.types[holder][wt.Name] = wt
}

// dropType forgets the WorkspaceType obj of s.
func (in *Installation) dropType(s *shard, obj any) {
	m, ok := deleted(obj)
	if !ok {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	delete(s.types[clusterName(m)], m.GetName())
}

// replaceTypes records objs as every WorkspaceType of s.
func (in *Installation) replaceTypes(s *shard, objs []any) {
	types := map[logicalcluster.Name]map[string]*tenancyv1alpha1.WorkspaceType{}
	for _, obj := range objs {
		wt := obj.(*tenancyv1alpha1.WorkspaceType)
		holder := clusterName(wt)
		if types[holder] == nil {
			types[holder] = map[string]*tenancyv1alpha1.WorkspaceType{}
		}
		types[holder][wt.Name] = wt
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	s.types, s.typesSynced = types, true
}

// unreachableAfter is how long a front proxy waits for a shard to be listed
// before it is ready without it.
const unreachableAfter = 10 * time.Second

// Ready says why this process cannot place and find workspaces yet, or nil:
// it must have listed the Shards in root and everything the root shard holds
// (root's workspace types among it); a front proxy, every shard it can reach
// (one it has not reached for unreachableAfter is down). Other shards being
// down never makes it unready for long; their workspaces are unavailable, and
// only theirs.
func (in *Installation) Ready() error {
	in.mu.RLock()
	defer in.mu.RUnlock()
	if !in.synced {
		return errors.New("the shards in root are not listed yet")
	}
	if in.self == "" {
		for _, s := range in.shards {
			if !s.clustersSynced && time.Since(s.since) < unreachableAfter {
				return fmt.Errorf("the logical clusters of shard %s are not listed yet", s.Name)
			}
		}
	}
	if in.holdsRoot {
		return nil
	}
	root, ok := in.clusters[logicalcluster.Root]
	if !ok {
		return errors.New("no shard is known to hold root yet")
	}
	if s, ok := in.shards[root.Shard]; !ok || !s.typesSynced {
		return fmt.Errorf("the workspace types of shard %s, which holds root, are not listed yet", root.Shard)
	}
	return nil
}

var _ tenancy.Shards = (*Installation)(nil)

// Schedule implements tenancy.Shards.
func (in *Installation) Schedule(selector labels.Selector) (tenancy.Shard, bool) {
	in.mu.RLock()
	defer in.mu.RUnlock()
	var best *shard
	for _, s := range in.shards {
		// A shard not listed yet counts no clusters, which says nothing.
		listed := s.clustersSynced || s.Name == in.self
		if !listed || s.Unschedulable || selector != nil && !selector.Matches(labels.Set(s.Labels)) {
			continue
		}
		if best == nil || s.clusters < best.clusters || s.clusters == best.clusters && s.Name < best.Name {
			best = s
		}
	}
	if best == nil {
		return tenancy.Shard{}, false
	}
	return best.Shard, true
}

// Elsewhere implements tenancy.Shards.
func (in *Installation) Elsewhere(name logicalcluster.Name) (*tenancy.Cluster, bool) {
	in.mu.RLock()
	defer in.mu.RUnlock()
	c, ok := in.clusters[name]
	if !ok || c.Shard == in.self {
		return nil, false
	}
	return c, true
}

// ElsewhereAt implements tenancy.Shards.
func (in *Installation) ElsewhereAt(p tenancy.Path) (*tenancy.Cluster, bool) {
	in.mu.RLock()
	name, ok := in.paths[p]
	in.mu.RUnlock()
	if !ok {
		return nil, false
	}
	return in.Elsewhere(name)
}

// TypesElsewhere implements tenancy.Shards.
func (in *Installation) TypesElsewhere(name logicalcluster.Name) (map[string]*tenancyv1alpha1.WorkspaceType, bool) {
	c, ok := in.Elsewhere(name)
	if !ok {
		return nil, false
	}
	in.mu.RLock()
	defer in.mu.RUnlock()
	s, ok := in.shards[c.Shard]
	if !ok {
		return nil, false
	}
	types, ok := s.types[name]
	return types, ok
}

// LogicalClusters implements tenancy.Shards.
func (in *Installation) LogicalClusters(name string) (tenancy.ShardClusters, error) {
	in.mu.RLock()
	defer in.mu.RUnlock()
	s, ok := in.shards[name]
	if !ok {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("shard %s is not registered", name))
	}
	return remoteClusters{s.client}, nil
}

// Exported implements tenancy.Shards.
func (in *Installation) Exported(name logicalcluster.Name) (*tenancy.Exported, bool) {
	c, ok := in.Elsewhere(name)
	if !ok {
		return nil, false
	}
	in.mu.RLock()
	s, ok := in.shards[c.Shard]
	var e *tenancy.Exported
	if ok {
		e = s.exported[name]
	}
	in.mu.RUnlock()
	if !ok || e != nil {
		return e, ok
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.shards[c.Shard] != s || !s.exportsSynced || !s.schemasSynced {
		return nil, true
	}
	if e = s.exported[name]; e == nil {
		e = &tenancy.Exported{Exports: maps.Clone(s.exports[name]), Schemas: maps.Clone(s.schemas[name])}
		s.exported[name] = e
	}
	return e, true
}

// EndpointSlices implements tenancy.Shards.
func (in *Installation) EndpointSlices(c *tenancy.Cluster) (tenancy.EndpointSlices, error) {
	in.mu.RLock()
	defer in.mu.RUnlock()
	s, ok := in.shards[c.Shard]
	if !ok {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("shard %s is not registered", c.Shard))
	}
	return s.client.Cluster(kcplogicalcluster.NewPath(string(c.Name))).ApisV1alpha1().APIExportEndpointSlices(), nil
}

// Route returns the shard holding the logical cluster name and its base URL.
func (in *Installation) Route(name logicalcluster.Name) (shardName, baseURL string, ok bool) {
	in.mu.RLock()
	defer in.mu.RUnlock()
	c, ok := in.clusters[name]
	if !ok {
		return "", "", false
	}
	s, ok := in.shards[c.Shard]
	if !ok {
		return "", "", false
	}
	return s.Name, s.baseURL, true
}

// At returns the logical cluster at canonical path p, on any shard.
func (in *Installation) At(p tenancy.Path) (*tenancy.Cluster, bool) {
	in.mu.RLock()
	defer in.mu.RUnlock()
	name, ok := in.paths[p]
	if !ok {
		return nil, false
	}
	return in.clusters[name], true
}

// Cluster returns the logical cluster name, on any shard.
func (in *Installation) Cluster(name logicalcluster.Name) (*tenancy.Cluster, bool) {
	in.mu.RLock()
	defer in.mu.RUnlock()
	c, ok := in.clusters[name]
	return c, ok
}

// Shard returns the base URL of the shard name.
func (in *Installation) Shard(name string) (baseURL string, ok bool) {
	in.mu.RLock()
	defer in.mu.RUnlock()
	s, ok := in.shards[name]
	if !ok {
		return "", false
	}
	return s.baseURL, true
}

// remoteClusters are the LogicalClusters of a shard, through its API.
type remoteClusters struct {
	client kcpclientset.ClusterInterface
}

func (r remoteClusters) Create(ctx context.Context, lc *corev1alpha1.LogicalCluster, name logicalcluster.Name) (*corev1alpha1.LogicalCluster, error) {
	return r.client.Cluster(kcplogicalcluster.NewPath(string(name))).CoreV1alpha1().LogicalClusters().Create(ctx, lc, metav1.CreateOptions{})
}

func (r remoteClusters) Get(ctx context.Context, name logicalcluster.Name) (*corev1alpha1.LogicalCluster, error) {
	return r.client.Cluster(kcplogicalcluster.NewPath(string(name))).CoreV1alpha1().LogicalClusters().Get(ctx, corev1alpha1.LogicalClusterName, metav1.GetOptions{})
}

func (r remoteClusters) Delete(ctx context.Context, name logicalcluster.Name) error {
	return r.client.Cluster(kcplogicalcluster.NewPath(string(name))).CoreV1alpha1().LogicalClusters().Delete(ctx, corev1alpha1.LogicalClusterName, metav1.DeleteOptions{})
}

// listWatch is a reflector's source made of a typed client's list and watch
// across clusters.
func listWatch[L runtime.Object](list func(context.Context, metav1.ListOptions) (L, error), watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error)) *acrossClusters {
	return &acrossClusters{cache.ListWatch{
		ListWithContextFunc:  func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) { return list(ctx, opts) },
		WatchFuncWithContext: watchFn,
	}}
}

// acrossClusters lists and watches objects of every logical cluster, whose
// namespace and name alone do not tell them apart (every LogicalCluster is
// named "cluster"): the reflector must list them, not stream its initial list
// through a store keyed by namespace and name, which would keep one of them.
type acrossClusters struct {
	cache.ListWatch
}

// IsWatchListSemanticsUnSupported tells client-go's reflector to list.
func (*acrossClusters) IsWatchListSemanticsUnSupported() bool { return true }

// sink is a reflector's store that hands each change to functions instead of
// keeping objects.
type sink struct {
	set, del func(obj any)
	replace  func(objs []any)
}

func (s *sink) Add(obj any) error                  { s.set(obj); return nil }
func (s *sink) Update(obj any) error               { s.set(obj); return nil }
func (s *sink) Delete(obj any) error               { s.del(obj); return nil }
func (s *sink) Replace(objs []any, _ string) error { s.replace(objs); return nil }
func (s *sink) Resync() error                      { return nil }

// Register makes or updates, in root, the Shard object of shard self, through
// the root shard's API (config reaches it as the installation's admin). Its
// spec and labels are brought up to date; annotations others set stay.
func Register(ctx context.Context, config *rest.Config, self *corev1alpha1.Shard) error {
	client, err := kcpclientset.NewForConfig(config)
	if err != nil {
		return err
	}
	shards := client.Cluster(kcplogicalcluster.NewPath(string(logicalcluster.Root))).CoreV1alpha1().Shards()
	_, err = shards.Create(ctx, self, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		var old *corev1alpha1.Shard
		if old, err = shards.Get(ctx, self.Name, metav1.GetOptions{}); err == nil {
			old.Spec, old.Labels = self.Spec, self.Labels
			_, err = shards.Update(ctx, old, metav1.UpdateOptions{})
		}
	}
	if err != nil {
		return fmt.Errorf("registering shard %s with the root shard at %s: %w", self.Name, config.Host, err)
	}
	return nil
}

// Workspace reads the workspace name in parent from parent's shard.
func (in *Installation) Workspace(ctx context.Context, parent *tenancy.Cluster, name string) (*tenancyv1alpha1.Workspace, error) {
	in.mu.RLock()
	s, ok := in.shards[parent.Shard]
	in.mu.RUnlock()
	if !ok {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("shard %s is not registered", parent.Shard))
	}
	return s.client.Cluster(kcplogicalcluster.NewPath(string(parent.Name))).TenancyV1alpha1().Workspaces().Get(ctx, name, metav1.GetOptions{})
}

// Authorizer decides requests in logical clusters other shards hold by asking
// the shard holding each, with a SubjectAccessReview that shard answers as it
// decides "use" and "bind": by the cluster's RBAC alone. It has no opinion on
// this shard's clusters, whose RBAC is here.
func (in *Installation) Authorizer(index *tenancy.Index) authorizer.Authorizer {
	return authorizer.AuthorizerFunc(func(ctx context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
		name, ok := logicalcluster.From(ctx)
		if !ok {
			return authorizer.DecisionNoOpinion, "", nil
		}
		c, err := index.Cluster(ctx, name)
		if err != nil || index.Local(c) {
			return authorizer.DecisionNoOpinion, "", nil
		}
		status, err := in.review(ctx, c, attrs)
		switch {
		case err != nil:
			return authorizer.DecisionNoOpinion, "", fmt.Errorf("asking shard %s: %w", c.Shard, err)
		case status.Allowed:
			return authorizer.DecisionAllow, status.Reason, nil
		}
		return authorizer.DecisionDeny, status.Reason, nil
	})
}

// review asks the shard holding c whether attrs are allowed in c.
func (in *Installation) review(ctx context.Context, c *tenancy.Cluster, attrs authorizer.Attributes) (*authorizationv1.SubjectAccessReviewStatus, error) {
	in.mu.RLock()
	s, ok := in.shards[c.Shard]
	in.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("shard %s is not registered", c.Shard)
	}
	u := attrs.GetUser()
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups()}}
	for k, v := range u.GetExtra() {
		if sar.Spec.Extra == nil {
			sar.Spec.Extra = map[string]authorizationv1.ExtraValue{}
		}
		sar.Spec.Extra[k] = v
	}
	if attrs.IsResourceRequest() {
		sar.Spec.ResourceAttributes = &authorizationv1.ResourceAttributes{
			Namespace: attrs.GetNamespace(), Verb: attrs.GetVerb(), Group: attrs.GetAPIGroup(), Version: attrs.GetAPIVersion(),
			Resource: attrs.GetResource(), Subresource: attrs.GetSubresource(), Name: attrs.GetName(),
		}
	} else {
		sar.Spec.NonResourceAttributes = &authorizationv1.NonResourceAttributes{Path: attrs.GetPath(), Verb: attrs.GetVerb()}
	}
	out := &authorizationv1.SubjectAccessReview{}
	err := s.reviews.Post().AbsPath("/clusters", string(c.Name), "/apis/authorization.k8s.io/v1/subjectaccessreviews").Body(sar).Do(ctx).Into(out)
	if err != nil {
		return nil, err
	}
	return &out.Status, nil
}
