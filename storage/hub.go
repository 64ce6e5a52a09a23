package storage

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
)

// allKeys is the range of every key: storage.PrepareKey makes every key start with
// the resource prefix, which starts with "/".
var allKeys = keyRange{start: "/", end: "0"}

// tailBatch is how many changes the hub reads from the log at a time.
const tailBatch = 1000

// maxQueue is how many changes may wait for one watcher. A watcher that falls
// further behind leaves the hub and reads the log itself until it catches up, so a
// slow client costs database reads, not memory, and never loses an event.
const maxQueue = 1024

// hub dispatches the shard's changes, in revision order, to this process's
// watchers. The log is the truth: the hub reads it after every wake-up (a local
// commit, a Postgres notification, a poll), and the local writer hands its batches
// over directly when they continue where the hub is.
//
// Watchers are indexed by the key they watch and by every directory prefix, so a
// change costs one map lookup per "/" in its key plus the watchers it concerns,
// whatever the number of watchers of other clusters.
type hub struct {
	b *Backend

	// tailMu makes one catch-up read of the log at a time.
	tailMu sync.Mutex
	wake   chan struct{}

	mu       sync.Mutex
	position int64 // newest revision dispatched
	known    int64 // newest revision known to be committed
	// own is the newest revision of the batch this process's writer is
	// committing, which the writer delivers: its announcement needs no read.
	// Atomic, not under mu: the writer sets it while its transaction holds
	// the shard's revision lock.
	own    atomic.Int64
	exact  map[string]map[*watcher]struct{}
	prefix map[string]map[*watcher]struct{}
	all    map[*watcher]struct{}
	closed bool
}

func newHub(b *Backend, position int64) *hub {
	return &hub{
		b:        b,
		wake:     make(chan struct{}, 1),
		position: position,
		exact:    map[string]map[*watcher]struct{}{},
		prefix:   map[string]map[*watcher]struct{}{},
		all:      map[*watcher]struct{}{},
	}
}

func (h *hub) kick() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// deliver takes a batch the local writer committed. If it continues where the
// hub is, it goes out at once; otherwise the hub reads the log to fill the gap.
func (h *hub) deliver(events []event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.known = max(h.known, events[len(events)-1].revision)
	switch {
	case events[0].revision == h.position+1:
		h.dispatchLocked(events)
	case events[len(events)-1].revision > h.position:
		h.kick()
	}
}

// committing says the writer is committing a batch up to revision, which it
// will deliver (0: a batch that writes nothing).
func (h *hub) committing(revision int64) { h.own.Store(revision) }

// abandon says the writer's batch failed: its commit may have happened, so the
// log is read.
func (h *hub) abandon() {
	h.own.Store(0)
	h.kick()
}

// announce takes another process's commit up to revision (0: unknown). This
// process's own commits come back too; those the writer delivered or is about
// to deliver cost nothing (if another process committed before them, deliver
// finds the gap).
func (h *hub) announce(revision int64) {
	h.mu.Lock()
	h.known = max(h.known, revision)
	behind := revision == 0 || (revision > h.position && revision > h.own.Load())
	watchLag.Set(float64(h.known - h.position))
	h.mu.Unlock()
	if behind {
		h.kick()
	}
}

// tail reads the log whenever something may have been written, and at least every
// poll interval; the outcome of each read is the backend's health.
func (h *hub) tail(ctx context.Context) {
	ticker := time.NewTicker(h.b.cfg.PollInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		case <-ticker.C:
		}
		err := h.catchUp(ctx)
		if ctx.Err() != nil {
			return
		}
		h.b.health.Store(&err)
		if err != nil {
			klog.FromContext(ctx).Error(err, "Reading the log for watchers failed")
		}
	}
}

// catchUp dispatches every change committed after the hub's position.
func (h *hub) catchUp(ctx context.Context) error {
	h.tailMu.Lock()
	defer h.tailMu.Unlock()
	for {
		h.mu.Lock()
		position := h.position
		h.mu.Unlock()
		events, err := h.b.db.events(ctx, position, allKeys, tailBatch)
		if errors.Is(err, errCompacted) {
			// The hub fell behind compaction (a long outage). Its watchers read
			// the log themselves and learn that their revision is gone.
			return h.skipTo(ctx)
		}
		if err != nil {
			return err
		}
		h.mu.Lock()
		for len(events) > 0 && events[0].revision <= h.position {
			events = events[1:]
		}
		if len(events) > 0 {
			h.dispatchLocked(events)
		}
		h.mu.Unlock()
		if len(events) < tailBatch {
			return nil
		}
	}
}

func (h *hub) skipTo(ctx context.Context) error {
	current, err := h.b.CurrentRevision(ctx)
	if err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.all {
		h.dropLocked(w)
	}
	h.position = current
	return nil
}

// dispatchLocked queues events, which continue the hub's position, to the
// watchers they concern.
func (h *hub) dispatchLocked(events []event) {
	for _, e := range events {
		if h.closed {
			return
		}
		for w := range h.exact[e.key] {
			h.queueLocked(w, item{event: e})
		}
		for i := 0; i < len(e.key); i++ {
			if e.key[i] != '/' {
				continue
			}
			for w := range h.prefix[e.key[:i+1]] {
				h.queueLocked(w, item{event: e})
			}
		}
		h.position = e.revision
	}
	h.known = max(h.known, h.position)
	dispatchedRevision.Set(float64(h.position))
	watchLag.Set(float64(h.known - h.position))
}

func (h *hub) queueLocked(w *watcher, it item) {
	if !w.push(it) {
		h.dropLocked(w)
	}
}

// register adds w and returns the revision from which the hub queues changes to it.
func (h *hub) register(w *watcher) (int64, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return 0, false
	}
	index := h.exact
	if w.recursive {
		index = h.prefix
	}
	if index[w.key] == nil {
		index[w.key] = map[*watcher]struct{}{}
	}
	index[w.key][w] = struct{}{}
	h.all[w] = struct{}{}
	watchers.Inc()
	return h.position, true
}

func (h *hub) unregister(w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.all[w]; ok {
		h.removeLocked(w)
	}
}

// dropLocked removes a watcher that fell behind; it will read the log itself.
func (h *hub) dropLocked(w *watcher) {
	h.removeLocked(w)
	w.overflow()
}

func (h *hub) removeLocked(w *watcher) {
	index := h.exact
	if w.recursive {
		index = h.prefix
	}
	delete(index[w.key], w)
	if len(index[w.key]) == 0 {
		delete(index, w.key)
	}
	delete(h.all, w)
	watchers.Dec()
}

// requestProgress catches up with the log, then gives every watcher a progress
// notification at the hub's position: all changes committed before the request
// are queued before it.
func (h *hub) requestProgress(ctx context.Context) error {
	if err := h.catchUp(ctx); err != nil {
		return err
	}
	h.progress(func(*watcher) bool { return true })
	return nil
}

// notifyProgress periodically sends progress notifications to the watchers that
// asked for them.
func (h *hub) notifyProgress(ctx context.Context) {
	every(ctx, h.b.cfg.ProgressNotifyInterval, func() {
		h.progress(func(w *watcher) bool { return w.progressNotify })
	})
}

func (h *hub) progress(to func(*watcher) bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.all {
		if to(w) {
			h.queueLocked(w, item{progress: h.position})
		}
	}
}

// close ends every watch.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for w := range h.all {
		h.removeLocked(w)
		w.cancel()
	}
}
