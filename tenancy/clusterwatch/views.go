package clusterwatch

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/klog/v2"

	"github.com/hashicorp/golang-lru/v2/simplelru"

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
	slots   *simplelru.LRU[logicalcluster.Name, slot[V]]
	changed *simplelru.LRU[logicalcluster.Name, uint64]
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

// NewViews returns a cache of views built by load from the objects of sources.
func NewViews[V any](size int, load Load[V], sources ...rest.Watcher) *Views[V] {
	v := &Views[V]{load: load, sources: sources, down: len(sources)}
	// The eviction functions run inside the LRUs' Add and Remove, which are
	// called with mu held.
	var err error
	v.changed, err = simplelru.NewLRU(size, func(_ logicalcluster.Name, revision uint64) {
		v.forgotten = max(v.forgotten, revision)
	})
	if err == nil {
		v.slots, err = simplelru.NewLRU(size, func(cluster logicalcluster.Name, s slot[V]) {
			if s.changed > 0 {
				v.noteChanged(cluster, s.changed)
			}
		})
	}
	if err != nil {
		panic(fmt.Sprintf("clusterwatch: views of size %d: %v", size, err))
	}
	return v
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
