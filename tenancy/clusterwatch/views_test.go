package clusterwatch

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// counting is a view source whose cluster "a" is at a given revision; it
// counts its loads.
type counting struct {
	revision uint64
	loads    int
}

func (c *counting) load(_ context.Context, _ logicalcluster.Name) (uint64, uint64, error) {
	c.loads++
	return c.revision, c.revision, nil
}

func TestViewsKeepWhatTheyHold(t *testing.T) {
	eachKind(t, func(t *testing.T, newViews newUint64Views) {
		ctx := context.Background()
		src := &counting{revision: 5}
		v := newViews(8, src.load)
		get := func(want uint64, loads int) {
			t.Helper()
			got, err := v.Get(ctx, "a")
			if err != nil {
				t.Fatal(err)
			}
			if got != want || src.loads != loads {
				t.Fatalf("Get = view %d after %d loads; want view %d after %d", got, src.loads, want, loads)
			}
		}
		get(5, 1)
		get(5, 1) // cached
		v.Changed("a", 5)
		get(5, 1) // the view already holds the change at 5
		src.revision = 7
		v.Changed("a", 7)
		get(7, 2) // a newer change drops it

		v.Stored("a", 9, 9) // the writer's own change at 9
		get(9, 2)           // served without a load
		v.Changed("a", 9)   // the watch sees that change later: nothing is lost
		get(9, 2)

		v.Changed("a", 12) // a change seen before an older writer's result arrives
		v.Stored("a", 10, 10)
		src.revision = 12
		get(12, 3) // the stale view was not cached

		v.Changed("a", 12)
		get(12, 3) // nor does the watch's report of a change the view holds

		src.revision = 11 // a load racing with a change at 13 reads an older state
		v.Changed("a", 13)
		get(11, 4)
		get(11, 5) // and is not cached
	})
}

// TestViewsMissNoChangeForRoom: a view read before a change of its cluster is
// not cached even when more clusters than the cache remembers change between
// that change and the end of the read (1,100 here, beyond the 1,024 clusters
// the RBAC authorizer holds views of: a revoked binding stops authorizing).
func TestViewsMissNoChangeForRoom(t *testing.T) {
	eachKind(t, func(t *testing.T, newViews newUint64Views) {
		ctx := context.Background()
		const size = 1024
		var v *Views[uint64]
		loads := 0
		v = newViews(size, func(_ context.Context, cluster logicalcluster.Name) (uint64, uint64, error) {
			loads++
			if loads == 1 {
				// While "a" is read at 5, it changes at 7 (a revoked binding),
				// then many other clusters change.
				v.Changed("a", 7)
				for i := range 1100 {
					v.Changed(logicalcluster.Name(fmt.Sprint("other-", i)), uint64(8+i))
				}
				return 5, 5, nil
			}
			return 100, 100, nil
		})
		if got, _ := v.Get(ctx, "a"); got != 5 {
			t.Fatalf("first Get = %d", got)
		}
		if got, _ := v.Get(ctx, "a"); got != 100 || loads != 2 {
			t.Fatalf("second Get = %d after %d loads: the view read before the change was cached", got, loads)
		}
		if got, _ := v.Get(ctx, "a"); got != 100 || loads != 2 {
			t.Fatalf("third Get = %d after %d loads: a current view was not cached", got, loads)
		}
	})
}

// restartable is a watch source whose watches the test ends at will.
type restartable struct {
	mu      sync.Mutex
	watches []*watch.FakeWatcher
	opened  chan struct{}
}

func (r *restartable) Watch(context.Context, *metainternalversion.ListOptions) (watch.Interface, error) {
	w := watch.NewFake()
	r.mu.Lock()
	r.watches = append(r.watches, w)
	r.mu.Unlock()
	r.opened <- struct{}{}
	return w, nil
}

// end ends the watch opened last.
func (r *restartable) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.watches[len(r.watches)-1].Stop()
}

// TestViewsAcrossWatchRestarts: no view is cached before the watch runs or
// while it is down, a restart drops every view, and a view read across a
// restart is not cached: changes made while no watch ran are never missed.
func TestViewsAcrossWatchRestarts(t *testing.T) {
	eachKind(t, func(t *testing.T, newViews newUint64Views) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		src := &restartable{opened: make(chan struct{})}
		revision := uint64(1)
		loads := 0
		var during func()
		v := newViews(8, func(context.Context, logicalcluster.Name) (uint64, uint64, error) {
			loads++
			if during != nil {
				during()
			}
			return revision, revision, nil
		}, src)
		get := func(what string, wantLoads int) {
			t.Helper()
			if _, err := v.Get(ctx, "a"); err != nil {
				t.Fatal(err)
			}
			if loads != wantLoads {
				t.Fatalf("%s: %d loads, want %d", what, loads, wantLoads)
			}
		}
		get("before the watch runs", 1)
		get("before the watch runs, again", 2)

		go v.Run(ctx)
		<-src.opened
		waitCached(ctx, t, v, &loads)

		// The watch ends (the server restarts it); a change made meanwhile is
		// seen by no watch, so nothing may be kept until it runs again.
		src.end()
		revision = 2
		eventually(t, func() bool { n := loads; _, _ = v.Get(ctx, "a"); return loads > n })
		n := loads
		get("while the watch is down", n+1)
		get("while the watch is down, again", n+2)
		<-src.opened
		waitCached(ctx, t, v, &loads)

		// A read that a restart overtakes is not cached.
		v.Changed("a", 3)
		revision = 3
		during = func() {
			during = nil
			src.end()
			<-src.opened
		}
		n = loads
		get("read across a restart", n+1)
		get("after a read across a restart", n+2)
	})
}

// TestViewsKeptAmidOthersChanges: other clusters' changes, more than the views
// held, push no view out, and after a watch restart a view read at a revision
// older than other clusters' changes seen before it is cached again (the
// index reads a LogicalCluster at its own revision, often old).
func TestViewsKeptAmidOthersChanges(t *testing.T) {
	eachKind(t, func(t *testing.T, newViews newUint64Views) {
		const size = 8
		start := func(t *testing.T) (*Views[uint64], *restartable, func(), *int) {
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			src := &restartable{opened: make(chan struct{})}
			loads := 0
			v := newViews(size, func(context.Context, logicalcluster.Name) (uint64, uint64, error) {
				loads++
				return 1, 1, nil
			}, src)
			cached := func() {
				t.Helper()
				waitCached(ctx, t, v, &loads)
			}
			go v.Run(ctx)
			<-src.opened
			cached()
			return v, src, cached, &loads
		}
		others := func(v *Views[uint64], n int) {
			for i := range n {
				v.Changed(logicalcluster.Name(fmt.Sprint("other-", i)), uint64(100+i))
			}
		}
		t.Run("many changes", func(t *testing.T) {
			v, _, _, loads := start(t)
			others(v, 3*size)
			n := *loads
			if _, err := v.Get(context.Background(), "a"); err != nil || *loads != n {
				t.Fatalf("Get after %d other clusters changed: %v, %d loads, want none: the view was pushed out", 3*size, err, *loads-n)
			}
		})
		t.Run("restart", func(t *testing.T) {
			v, src, cached, _ := start(t)
			others(v, size/2)
			src.end()
			<-src.opened
			cached()
		})
	})
}

// waitCached waits until a Get of "a" from v loads nothing (loads counts v's
// loads): its watches run and the view is cached.
func waitCached(ctx context.Context, t *testing.T, v *Views[uint64], loads *int) {
	t.Helper()
	eventually(t, func() bool {
		_, _ = v.Get(ctx, "a")
		n := *loads
		_, _ = v.Get(ctx, "a")
		return *loads == n
	})
}

// newUint64Views makes Views of numbers, held as they are or flat.
type newUint64Views func(size int, load Load[uint64], sources ...rest.Watcher) *Views[uint64]

// eachKind runs test on views held as they are and on flat ones.
func eachKind(t *testing.T, test func(*testing.T, newUint64Views)) {
	t.Run("held", func(t *testing.T) { test(t, NewViews[uint64]) })
	t.Run("flat", func(t *testing.T) {
		test(t, func(size int, load Load[uint64], sources ...rest.Watcher) *Views[uint64] {
			return NewFlatViews(size, uint64Codec{}, load, sources...)
		})
	})
}

type uint64Codec struct{}

func (uint64Codec) Append(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }
func (uint64Codec) Decode(_ logicalcluster.Name, b []byte) uint64 {
	v, _ := uvarint(b)
	return v
}

// eventually waits for cond, or fails after a few seconds.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met")
		}
		time.Sleep(time.Millisecond)
	}
}

type stringCodec struct{}

func (stringCodec) Append(b []byte, v string) []byte { return append(b, v...) }
func (stringCodec) Decode(_ logicalcluster.Name, b []byte) string {
	return string(b)
}

// TestFlatViewTooLongToHold: a view too long for a flat entry is not held,
// but the change its writer recorded is: a view read before that change is
// not cached in its place.
func TestFlatViewTooLongToHold(t *testing.T) {
	ctx := context.Background()
	loads := 0
	v := NewFlatViews(8, stringCodec{}, func(context.Context, logicalcluster.Name) (string, uint64, error) {
		loads++
		return "older", 8, nil // a read older than the writer's change at 9
	})
	v.Stored("a", strings.Repeat("x", 70_000), 9)
	for want := 1; want <= 2; want++ {
		if got, err := v.Get(ctx, "a"); err != nil || got != "older" || loads != want {
			t.Fatalf("Get = %.10q, %v after %d loads, want the load's view after %d: a view older than a change seen was cached", got, err, loads, want)
		}
	}
}
