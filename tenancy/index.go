package tenancy

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/utils/lru"

	"github.com/kcp-dev/sdk/apis/core"
	corev1alpha1 "github.com/kcp-dev/sdk/apis/core/v1alpha1"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"

	"github.com/warren-dev/warren/tenancy/clusterwatch"
	"github.com/warren-dev/warren/tenancy/flatlru"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// DefaultIndexClusters is how many clusters (and as many parent-child links)
// an index holds unless told otherwise: every cluster of a shard of a million
// workspaces. Each takes about 175 bytes (BenchmarkIndexMemory; ~220 MB for a
// million in a running server), which the collector does not scan, and only
// once seen: a small shard's index is small. A cluster out of it costs a read
// or two on its next request.
const DefaultIndexClusters = 1 << 20

// Cluster is what the index knows of a logical cluster, from its
// LogicalCluster: only what routing, admission and the lifecycle ask, since the
// index may hold a million of them.
type Cluster struct {
	Name logicalcluster.Name
	Path Path
	// Parent is the cluster holding the workspace that owns it (whose name
	// ends Path), "" for root.
	Parent logicalcluster.Name
	Type   tenancyv1alpha1.WorkspaceTypeReference
	Phase  corev1alpha1.LogicalClusterPhaseType
	// Shard is the shard holding it.
	Shard string
}

// clusterOf returns the index's entry for lc, the LogicalCluster of name, and
// lc's revision.
func clusterOf(name logicalcluster.Name, lc *corev1alpha1.LogicalCluster) (*Cluster, uint64, error) {
	rv, err := strconv.ParseUint(lc.ResourceVersion, 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("revision of the logical cluster %s: %w", name, err)
	}
	c, err := ClusterOf(name, lc)
	return c, rv, err
}

// ClusterOf returns what the index knows of lc, the LogicalCluster of name.
// kcp keeps a logical cluster's path, type and shard in annotations of its
// LogicalCluster, and so does warren. The strings many clusters share (parent,
// type, phase, shard) are shared in memory too.
func ClusterOf(name logicalcluster.Name, lc *corev1alpha1.LogicalCluster) (*Cluster, error) {
	typ, err := ParseTypeName(lc.Annotations[tenancyv1alpha1.LogicalClusterTypeAnnotationKey])
	if err != nil {
		return nil, fmt.Errorf("the logical cluster %s: %w", name, err)
	}
	c := &Cluster{
		Name:  name,
		Path:  Path(lc.Annotations[core.LogicalClusterPathAnnotationKey]),
		Type:  tenancyv1alpha1.WorkspaceTypeReference{Name: tenancyv1alpha1.WorkspaceTypeName(shared(string(typ.Name))), Path: shared(typ.Path)},
		Phase: corev1alpha1.LogicalClusterPhaseType(shared(string(lc.Status.Phase))),
		Shard: shared(lc.Annotations[corev1alpha1.LogicalClusterShardAnnotationKey]),
	}
	if o := lc.Spec.Owner; o != nil {
		c.Parent = logicalcluster.Name(shared(o.Cluster))
	}
	return c, nil
}

// shared returns s, or an equal string already held: one copy of each of the
// few values that a million clusters repeat.
func shared(s string) string {
	id, ok := intern(s)
	if !ok {
		return s
	}
	interned.mu.RLock()
	defer interned.mu.RUnlock()
	return interned.strings[id]
}

// intern returns the number of s among the shared strings, adding it if there
// is room: at most maxShared strings are shared, for good; past that, ok is
// false.
func intern(s string) (id uint32, ok bool) {
	interned.mu.RLock()
	id, ok = interned.ids[s]
	interned.mu.RUnlock()
	if ok {
		return id, true
	}
	interned.mu.Lock()
	defer interned.mu.Unlock()
	if id, ok = interned.ids[s]; ok {
		return id, true
	}
	if len(interned.strings) >= maxShared {
		return 0, false
	}
	s = strings.Clone(s) // not a part of a bigger string kept alive
	id = uint32(len(interned.strings))
	interned.strings = append(interned.strings, s)
	interned.ids[s] = id
	return id, true
}

// maxShared bounds the strings shared: types, phases and shards are few, and
// parents as many as the workspaces that hold workspaces.
const maxShared = 1 << 14

// interned numbers the shared strings: strings[ids[s]] == s.
var interned = struct {
	mu      sync.RWMutex
	ids     map[string]uint32
	strings []string
}{ids: map[string]uint32{}}

// clusterCodec writes a Cluster as its path and its shared strings' numbers
// (or the strings, past maxShared), for the index's flat views; its name is
// the views' key.
type clusterCodec struct{}

func (clusterCodec) Append(b []byte, c *Cluster) []byte {
	b = appendString(b, string(c.Path))
	for _, s := range []string{string(c.Parent), string(c.Type.Name), c.Type.Path, string(c.Phase), c.Shard} {
		if id, ok := intern(s); ok {
			b = binary.AppendUvarint(b, uint64(id)+1)
		} else {
			b = appendString(binary.AppendUvarint(b, 0), s)
		}
	}
	return b
}

func appendString(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func (clusterCodec) Decode(name logicalcluster.Name, b []byte) *Cluster {
	r := flatReader{b: b}
	c := &Cluster{Name: name, Path: Path(r.string())}
	interned.mu.RLock()
	defer interned.mu.RUnlock()
	c.Parent = logicalcluster.Name(r.shared())
	c.Type.Name = tenancyv1alpha1.WorkspaceTypeName(r.shared())
	c.Type.Path = r.shared()
	c.Phase = corev1alpha1.LogicalClusterPhaseType(r.shared())
	c.Shard = r.shared()
	return c
}

// flatReader reads what clusterCodec wrote, which nothing else writes: it
// panics on anything else.
type flatReader struct{ b []byte }

func (r *flatReader) uvarint() uint64 {
	x, n := binary.Uvarint(r.b)
	if n <= 0 {
		panic("tenancy: a flat cluster entry is corrupt")
	}
	r.b = r.b[n:]
	return x
}

func (r *flatReader) string() string {
	n := r.uvarint()
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// shared reads a shared string; interned.mu must be read-locked.
func (r *flatReader) shared() string {
	if id := r.uvarint(); id > 0 {
		return interned.strings[id-1]
	}
	return r.string()
}

// Index resolves paths and names to logical clusters, of this shard and, as
// Shards tells them, of the others. It reads the
// LogicalCluster of a cluster once and keeps it until a change of it is seen
// (Run) or the cluster is dropped for room; a child workspace's cluster is kept
// for as long as that cluster exists, since a workspace's cluster never changes.
// That a cluster or a child does not exist is cached for a moment (missTTL), so
// a storm of requests to workspaces that are not there costs few reads.
type Index struct {
	workspaces rest.Getter
	clusters   *clusterwatch.Views[*Cluster]
	// children links a workspace (childKey: its parent's cluster and its
	// name) to its cluster, which never changes: at most as many links as
	// clusters, flat, the least recently used first out.
	mu       sync.Mutex
	children *flatlru.LRU
	// misses are the clusters (by name) and children not found lately: each
	// maps to the time until which it is taken for missing.
	misses *lru.Cache
	// types are the WorkspaceTypes of each cluster that holds any, by name.
	types      *clusterwatch.Views[map[string]*tenancyv1alpha1.WorkspaceType]
	typesStore rest.Getter
	// shard is the shard served; shards what it knows of the others.
	shard  string
	shards Shards
}

// cachedTypeHolders bounds how many clusters' workspace types the index holds.
const cachedTypeHolders = 1024

// cachedMisses bounds how many missing clusters and children the index
// remembers; missTTL is for how long. A cluster made meanwhile by this process
// is found at once (Stored forgets its misses); one made by another process
// within missTTL, as a change seen late.
const (
	cachedMisses = 4096
	missTTL      = time.Second
)

// child is a workspace: its parent's cluster and its name.
type child struct {
	parent logicalcluster.Name
	name   string
}

// key is the child's key in Index.children: no cluster name holds a NUL.
func (c child) key() string { return string(c.parent) + "\x00" + c.name }

// Source is a resource the index and controllers read and follow.
type Source interface {
	rest.Getter
	rest.Lister
	rest.Watcher
}

// NewIndex returns an index of at most size clusters over the workspaces,
// logical clusters and workspace types stores of shard, and over what shards
// tells of the others; Run keeps it fresh.
func NewIndex(size int, workspaces rest.Getter, clusters, types Source, shard string, shards Shards) *Index {
	x := &Index{
		workspaces: workspaces,
		children:   flatlru.New(size, nil),
		misses:     lru.New(cachedMisses),
		typesStore: types,
		shard:      shard,
		shards:     shards,
	}
	load := func(ctx context.Context, name logicalcluster.Name) (*Cluster, uint64, error) {
		obj, err := clusters.Get(in(ctx, name), corev1alpha1.LogicalClusterName, &metav1.GetOptions{})
		if err != nil {
			return nil, 0, err
		}
		// The object's revision is at most the one it was read at, so no
		// change after the read goes unseen.
		return clusterOf(name, obj.(*corev1alpha1.LogicalCluster))
	}
	loadTypes := func(ctx context.Context, name logicalcluster.Name) (map[string]*tenancyv1alpha1.WorkspaceType, uint64, error) {
		holder, err := x.Cluster(ctx, name)
		if err != nil {
			return nil, 0, err
		}
		list, err := types.List(in(ctx, name), &metainternalversion.ListOptions{})
		if err != nil {
			return nil, 0, err
		}
		rv, err := clusterwatch.Revision(list)
		if err != nil {
			return nil, 0, err
		}
		items := list.(*tenancyv1alpha1.WorkspaceTypeList).Items
		byName := make(map[string]*tenancyv1alpha1.WorkspaceType, len(items))
		for i := range items {
			byName[items[i].Name] = withPath(&items[i], holder.Path)
		}
		return byName, rv, nil
	}
	x.clusters = clusterwatch.NewFlatViews(size, clusterCodec{}, load, clusters)
	x.types = clusterwatch.NewViews(cachedTypeHolders, loadTypes, types)
	return x
}

// withPath returns wt annotated with the path of the workspace holding it,
// as admission annotates every type written through the API.
func withPath(wt *tenancyv1alpha1.WorkspaceType, p Path) *tenancyv1alpha1.WorkspaceType {
	if wt.Annotations[core.LogicalClusterPathAnnotationKey] == string(p) {
		return wt
	}
	wt = wt.DeepCopy()
	if wt.Annotations == nil {
		wt.Annotations = map[string]string{}
	}
	wt.Annotations[core.LogicalClusterPathAnnotationKey] = string(p)
	return wt
}

// Run drops what the index holds of a cluster whenever its LogicalCluster or
// one of its WorkspaceTypes changes, until ctx ends.
func (x *Index) Run(ctx context.Context) {
	go x.types.Run(ctx)
	x.clusters.Run(ctx)
}

// Type returns the WorkspaceType ref names, or NotFound. The index shares it:
// callers must not change it.
func (x *Index) Type(ctx context.Context, ref tenancyv1alpha1.WorkspaceTypeReference) (*tenancyv1alpha1.WorkspaceType, error) {
	holder, err := x.Resolve(ctx, typePath(ref))
	if err != nil {
		return nil, err
	}
	if !x.Local(holder) {
		types, _ := x.shards.TypesElsewhere(holder.Name)
		if wt, ok := types[string(ref.Name)]; ok {
			return wt, nil
		}
		return nil, apierrors.NewNotFound(tenancyv1alpha1.Resource("workspacetypes"), string(ref.Name))
	}
	types, err := x.types.Get(ctx, holder.Name)
	if err != nil {
		return nil, fmt.Errorf("reading the workspace types of %s: %w", holder.Path, err)
	}
	if wt, ok := types[string(ref.Name)]; ok {
		return wt, nil
	}
	// A type made a moment ago may not have reached the cached view yet.
	obj, err := x.typesStore.Get(in(ctx, holder.Name), string(ref.Name), &metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return withPath(obj.(*tenancyv1alpha1.WorkspaceType), holder.Path), nil
}

// Stored tells the index that lc, the LogicalCluster of name, was just stored,
// before the change is seen by Run: the lifecycle calls it for its own phase
// changes, so this process serves a Ready cluster, and stops serving a
// Terminating one, at once, and the cluster's first request reads nothing.
func (x *Index) Stored(name logicalcluster.Name, lc *corev1alpha1.LogicalCluster) error {
	c, rv, err := clusterOf(name, lc)
	if err != nil {
		return err
	}
	x.clusters.Stored(name, c, rv)
	x.misses.Remove(name)
	if o := lc.Spec.Owner; o != nil {
		link := child{c.Parent, o.Name}
		x.link(link, name)
		x.misses.Remove(link)
	}
	return nil
}

// missing reports whether key (a cluster name or a child) was not found within
// the last missTTL.
func (x *Index) missing(key any) bool {
	until, ok := x.misses.Get(key)
	return ok && time.Now().Before(until.(time.Time))
}

// Local reports whether this shard holds c.
func (x *Index) Local(c *Cluster) bool { return c.Shard == "" || c.Shard == x.shard }

// Cluster returns the logical cluster name, held by this shard or another, or
// NotFound.
func (x *Index) Cluster(ctx context.Context, name logicalcluster.Name) (*Cluster, error) {
	if x.missing(name) {
		return x.elsewhere(name)
	}
	c, err := x.clusters.Get(ctx, name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			x.misses.Add(name, time.Now().Add(missTTL))
			return x.elsewhere(name)
		}
		return nil, fmt.Errorf("reading logical cluster %s: %w", name, err)
	}
	return c, nil
}

// elsewhere returns the logical cluster name if another shard holds it, or
// NotFound.
func (x *Index) elsewhere(name logicalcluster.Name) (*Cluster, error) {
	if c, ok := x.shards.Elsewhere(name); ok {
		return c, nil
	}
	return nil, notFound(string(name))
}

// Served returns the logical cluster name if this shard holds it, or NotFound:
// a shard serves only its own.
func (x *Index) Served(ctx context.Context, name logicalcluster.Name) (*Cluster, error) {
	c, err := x.Cluster(ctx, name)
	if err == nil && !x.Local(c) {
		return nil, notFound(string(name))
	}
	return c, err
}

// ResolveServed returns the logical cluster of s, a path or a logical cluster
// name, if this shard holds it, or NotFound.
func (x *Index) ResolveServed(ctx context.Context, s string) (*Cluster, error) {
	c, err := x.Resolve(ctx, s)
	if err == nil && !x.Local(c) {
		return nil, notFound(s)
	}
	return c, err
}

// Resolve returns the logical cluster of s, a path or a logical cluster name,
// held by this shard or another, or NotFound.
func (x *Index) Resolve(ctx context.Context, s string) (*Cluster, error) {
	if !IsPath(s) {
		if err := logicalcluster.Validate(s); err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
		return x.Cluster(ctx, logicalcluster.Name(s))
	}
	p, err := ParsePath(s)
	if err != nil {
		return nil, apierrors.NewBadRequest(err.Error())
	}
	c, err := x.resolve(ctx, p, true)
	if apierrors.IsNotFound(err) {
		// A cached link may lead to a workspace deleted since (and perhaps
		// made again, with a new cluster): follow the stored ones.
		c, err = x.resolve(ctx, p, false)
	}
	return c, err
}

// resolve walks p from the cluster it starts at (root, a home, a cluster by
// name), through cached links if cached.
func (x *Index) resolve(ctx context.Context, p Path, cached bool) (*Cluster, error) {
	name, user, segments := p.split()
	canonical := user != "" || name == logicalcluster.Root
	// p[:walked] is the path walked so far, known without a read if p is
	// canonical.
	walked := len(p)
	for _, seg := range segments {
		walked -= len(separator) + len(seg)
	}
	var err error
	for _, seg := range segments {
		var at Path
		if canonical {
			at = p[:walked]
		}
		if name, err = x.child(ctx, name, at, seg, cached); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, notFound(string(p))
			}
			return nil, err
		}
		walked += len(separator) + len(seg)
	}
	c, err := x.Cluster(ctx, name)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, notFound(string(p))
		}
		return nil, err
	}
	// A cached link may have led elsewhere than p (a workspace deleted and
	// made again): the cluster's own path must end p.
	if canonical && c.Path != p || !canonical && !strings.HasSuffix(string(c.Path), separator+strings.Join(segments, separator)) {
		return nil, notFound(string(p))
	}
	return c, nil
}

// child returns the cluster of the workspace name in parent, which is at
// path at if that is known ("" if not).
func (x *Index) child(ctx context.Context, parent logicalcluster.Name, at Path, name string, cached bool) (logicalcluster.Name, error) {
	key := child{parent, name}
	if cached {
		x.mu.Lock()
		b, ok := x.children.Get(key.key())
		c := logicalcluster.Name(b)
		x.mu.Unlock()
		if ok {
			return c, nil
		}
	}
	if x.missing(key) {
		return x.childElsewhere(ctx, parent, at, name)
	}
	obj, err := x.workspaces.Get(in(ctx, parent), name, &metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		x.misses.Add(key, time.Now().Add(missTTL))
		return x.childElsewhere(ctx, parent, at, name)
	}
	if err != nil {
		return "", err
	}
	ws := obj.(*tenancyv1alpha1.Workspace)
	if ws.Spec.Cluster == "" {
		return "", notFound(name)
	}
	c := logicalcluster.Name(ws.Spec.Cluster)
	x.link(key, c)
	return c, nil
}

// link records that the workspace of key holds cluster c.
func (x *Index) link(key child, c logicalcluster.Name) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.children.Add(key.key(), []byte(c))
}

// childElsewhere returns the cluster of the workspace name in parent, at path
// at ("" if unknown), where another shard holds parent.
func (x *Index) childElsewhere(ctx context.Context, parent logicalcluster.Name, at Path, name string) (logicalcluster.Name, error) {
	// A child of this shard's cluster is a Workspace here: if it is not, the
	// child does not exist.
	if _, ok := x.shards.Elsewhere(parent); !ok {
		return "", notFound(name)
	}
	if at == "" {
		p, err := x.Cluster(ctx, parent)
		if err != nil {
			return "", err
		}
		at = p.Path
	}
	if c, ok := x.shards.ElsewhereAt(at.Join(name)); ok {
		return c.Name, nil
	}
	return "", notFound(name)
}

var workspacesResource = tenancyv1alpha1.SchemeGroupVersion.WithResource("workspaces").GroupResource()

func notFound(what string) error {
	return apierrors.NewNotFound(workspacesResource, what)
}
