package clusterwatch

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/klog/v2"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/warren-dev/warren/tenancy/flatlru"
	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// Load builds the view of a cluster and returns the revision it was read at
// (the oldest of the lists it made; see Revision).
type Load[V any] func(ctx context.Context, cluster logicalcluster.Name) (V, uint64, error)

// Views caches a view per cluster, at most size of them, least recently used
// first out. Run keeps them fresh.
//
// A view read at revision R is cached only if it cannot have missed a change:
// no change of its cluster after R has been seen, no record of a change newer
// than R was dropped for room, and every source's watch ran throughout the
// load. So a cached view is never older than the last change seen, however
// many clusters change meanwhile and whenever a watch restarts.
type Views[V any] struct {
	load    Load[V]
	sources []rest.Watcher
	mu      sync.Mutex
	// slots holds the clusters' views, each with the revision of its
	// cluster's last change seen (one entry for both: a shard's index holds
	// one for each of its clusters); changed holds that revision for the
	// clusters changed lately that have no view, so that a view read before
	// it is not cached. A view's record moves to changed when the view goes.
	slots   table[slot[V]]
	changed table[uint64]
	// forgotten is the newest revision among the records of changes dropped
	// for room: a view read before it may have missed one of them.
	forgotten uint64
	// down is how many sources' watches are not running; epoch counts the
	// watches started and ended. A view is cached only if down was 0 and
	// epoch stayed the same while it was read, and is served only in the
	// epoch it was cached in.
	down  int
	epoch uint64
}

// slot is a cluster's view, built in epoch and current at revision (it holds
// every change of its cluster up to there), and the revision of the
// cluster's last change seen.
type slot[V any] struct {
	view     V
	epoch    uint64
	revision uint64
	changed  uint64
}

// table is what Views needs of an LRU of clusters: one of simplelru's, or a
// flat one (flatTable). Both tell their eviction function of every entry
// that leaves, removed or dropped for room.
type table[T any] interface {
	Get(logicalcluster.Name) (T, bool)
	Peek(logicalcluster.Name) (T, bool)
	Add(logicalcluster.Name, T) bool
	Remove(logicalcluster.Name) bool
}

// NewViews returns a cache of views built by load from the objects of sources,
// held as they are.
func NewViews[V any](size int, load Load[V], sources ...rest.Watcher) *Views[V] {
	v := &Views[V]{load: load, sources: sources, down: len(sources)}
	// The eviction functions run inside the LRUs' Add and Remove, which are
	// called with mu held.
	changed, err := simplelru.NewLRU(size, v.forget)
	if err != nil {
		panic(fmt.Sprintf("clusterwatch: views of size %d: %v", size, err))
	}
	slots, err := simplelru.NewLRU(size, v.evicted)
	if err != nil {
		panic(fmt.Sprintf("clusterwatch: views of size %d: %v", size, err))
	}
	v.changed, v.slots = changed, slots
	return v
}

// Codec writes a view as bytes and reads it back.
type Codec[V any] interface {
	// Append appends the encoding of view to b.
	Append(b []byte, view V) []byte
	// Decode returns the view of cluster that Append encoded in b.
	Decode(cluster logicalcluster.Name, b []byte) V
}

// NewFlatViews returns a cache of views built by load from the objects of
// sources, held encoded by codec in memory the collector does not scan
// (package flatlru), and decoded anew by every Get: for views of every
// cluster of a shard.
func NewFlatViews[V any](size int, codec Codec[V], load Load[V], sources ...rest.Watcher) *Views[V] {
	v := &Views[V]{load: load, sources: sources, down: len(sources)}
	v.changed = newFlatTable(size, binary.AppendUvarint, func(_ logicalcluster.Name, b []byte) uint64 {
		r, _ := uvarint(b)
		return r
	}, v.forget)
	v.slots = newFlatTable(size, func(b []byte, s slot[V]) []byte {
		b = binary.AppendUvarint(b, s.epoch)
		b = binary.AppendUvarint(b, s.revision)
		b = binary.AppendUvarint(b, s.changed)
		return codec.Append(b, s.view)
	}, func(cluster logicalcluster.Name, b []byte) slot[V] {
		var s slot[V]
		var n int
		s.epoch, n = uvarint(b)
		b = b[n:]
		s.revision, n = uvarint(b)
		b = b[n:]
		s.changed, n = uvarint(b)
		s.view = codec.Decode(cluster, b[n:])
		return s
	}, v.evicted)
	return v
}

// uvarint reads what binary.AppendUvarint wrote.
func uvarint(b []byte) (uint64, int) {
	x, n := binary.Uvarint(b)
	if n <= 0 {
		panic("clusterwatch: a flat entry's header is corrupt")
	}
	return x, n
}

// forget is told of a change record that leaves: a view read before it may
// have missed the change.
func (v *Views[V]) forget(_ logicalcluster.Name, revision uint64) {
	v.forgotten = max(v.forgotten, revision)
}

// evicted is told of a view that leaves: its cluster's record of its last
// change moves to changed.
func (v *Views[V]) evicted(cluster logicalcluster.Name, s slot[V]) {
	if s.changed > 0 {
		v.noteChanged(cluster, s.changed)
	}
}

// flatTable is a table held by a flatlru.LRU, its entries encoded by
// encode and decoded by decode.
type flatTable[T any] struct {
	lru    *flatlru.LRU
	encode func([]byte, T) []byte
	decode func(logicalcluster.Name, []byte) T
	// onEvict is told of each entry that leaves, as simplelru tells it.
	onEvict func(logicalcluster.Name, T)
	buf     []byte
}

func newFlatTable[T any](size int, encode func([]byte, T) []byte, decode func(logicalcluster.Name, []byte) T, onEvict func(logicalcluster.Name, T)) *flatTable[T] {
	t := &flatTable[T]{encode: encode, decode: decode, onEvict: onEvict}
	t.lru = flatlru.New(size, func(key string, b []byte) {
		cluster := logicalcluster.Name(key)
		onEvict(cluster, decode(cluster, b))
	})
	return t
}

func (t *flatTable[T]) Get(cluster logicalcluster.Name) (T, bool) {
	b, ok := t.lru.Get(string(cluster))
	return t.decoded(cluster, b, ok)
}

func (t *flatTable[T]) Peek(cluster logicalcluster.Name) (T, bool) {
	b, ok := t.lru.Peek(string(cluster))
	return t.decoded(cluster, b, ok)
}

func (t *flatTable[T]) decoded(cluster logicalcluster.Name, b []byte, ok bool) (T, bool) {
	if !ok {
		var zero T
		return zero, false
	}
	return t.decode(cluster, b), true
}

// Add holds value as the entry of cluster. One too long to hold (a view of
// a path thousands of workspaces deep) leaves at once, as if evicted, so
// that what it records is not lost.
func (t *flatTable[T]) Add(cluster logicalcluster.Name, value T) bool {
	t.buf = t.encode(t.buf[:0], value)
	if len(cluster)+len(t.buf) > flatlru.MaxEntry {
		t.lru.Remove(string(cluster))
		t.onEvict(cluster, value)
		return false
	}
	return t.lru.Add(string(cluster), t.buf)
}

func (t *flatTable[T]) Remove(cluster logicalcluster.Name) bool {
	return t.lru.Remove(string(cluster))
}

// Get returns the view of cluster, building it if none is cached.
func (v *Views[V]) Get(ctx context.Context, cluster logicalcluster.Name) (V, error) {
	v.mu.Lock()
	if s, ok := v.slots.Get(cluster); ok && s.epoch == v.epoch {
		v.mu.Unlock()
		return s.view, nil
	}
	epoch := v.epoch
	v.mu.Unlock()
	view, revision, err := v.load(ctx, cluster)
	if err != nil {
		return view, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.epoch == epoch {
		v.keep(cluster, view, revision, false)
	}
	return view, nil
}

// keep caches view, read at revision, as the view of cluster if it can hold
// every change of it seen so far, and drops an older one otherwise; a
// writer's own change (own) is recorded as seen. mu must be held.
func (v *Views[V]) keep(cluster logicalcluster.Name, view V, revision uint64, own bool) {
	last := v.lastChange(cluster)
	if v.down > 0 || revision < v.forgotten || last > revision {
		v.slots.Remove(cluster)
		return
	}
	if own {
		last = revision
	}
	v.slots.Add(cluster, slot[V]{view: view, epoch: v.epoch, revision: revision, changed: last})
}

// lastChange is the revision of the last change of cluster seen, 0 if none
// is recorded. mu must be held.
func (v *Views[V]) lastChange(cluster logicalcluster.Name) uint64 {
	s, _ := v.slots.Peek(cluster)
	r, _ := v.changed.Peek(cluster)
	return max(s.changed, r)
}

// noteChanged records that cluster, which has no view, changed at revision.
// mu must be held.
func (v *Views[V]) noteChanged(cluster logicalcluster.Name, revision uint64) {
	if r, ok := v.changed.Peek(cluster); !ok || r < revision {
		v.changed.Add(cluster, revision)
	}
}

// Stored caches view as the view of cluster after a change its caller made at
// revision, so the next Get needs no load; a later change already seen wins.
func (v *Views[V]) Stored(cluster logicalcluster.Name, view V, revision uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.keep(cluster, view, revision, true)
}

// Run drops a cluster's view whenever one of its objects in sources changes,
// until ctx ends.
func (v *Views[V]) Run(ctx context.Context) {
	for _, s := range v.sources {
		go v.follow(ctx, s)
	}
	<-ctx.Done()
}

// follow watches s from now on. Views built before a (re)started watch may have
// missed changes, so each start and end begins an epoch, which serves none of
// the views built before it; while the watch is down, no view is cached. The
// records of changes seen stay.
func (v *Views[V]) follow(ctx context.Context, s rest.Watcher) {
	wildcard := logicalcluster.WithName(ctx, logicalcluster.Wildcard)
	fromNow := false
	for ctx.Err() == nil {
		stream, err := s.Watch(wildcard, &metainternalversion.ListOptions{SendInitialEvents: &fromNow})
		if err != nil {
			klog.FromContext(ctx).Error(err, "Watching across clusters failed; retrying")
			sleep(ctx, retryAfter)
			continue
		}
		v.mu.Lock()
		v.down--
		v.epoch++
		v.mu.Unlock()
		consume(ctx, stream, "", func(ev Event) {
			m, err := meta.Accessor(ev.Object)
			if err != nil {
				return
			}
			rv, _ := strconv.ParseUint(m.GetResourceVersion(), 10, 64)
			v.Changed(ev.Cluster, rv)
		})
		// Nothing invalidates views until the watch runs again.
		v.mu.Lock()
		v.down++
		v.epoch++
		v.mu.Unlock()
	}
}

// Changed drops the view of cluster, which changed at revision, unless the view
// already holds that change; views read before it are not cached. Run calls it
// for every change it sees; a writer may call it sooner for its own changes.
func (v *Views[V]) Changed(cluster logicalcluster.Name, revision uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s, ok := v.slots.Peek(cluster)
	switch {
	case !ok:
		v.noteChanged(cluster, revision)
	case s.revision < revision:
		v.slots.Remove(cluster) // its record moves to changed
		v.noteChanged(cluster, revision)
	case s.changed < revision:
		s.changed = revision
		v.slots.Add(cluster, s)
	}
}

// Revision returns the revision a list was read at.
func Revision(list runtime.Object) (uint64, error) {
	l, err := meta.ListAccessor(list)
	if err != nil {
		return 0, err
	}
	rv, err := strconv.ParseUint(l.GetResourceVersion(), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("list revision %q: %w", l.GetResourceVersion(), err)
	}
	return rv, nil
}
