package storage

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/features"
	"k8s.io/apiserver/pkg/storage"
	utilfeature "k8s.io/apiserver/pkg/util/feature"
	utilflowcontrol "k8s.io/apiserver/pkg/util/flowcontrol"
)

// resultBuffer is how many decoded events wait for the client, as in etcd3's store.
const resultBuffer = 100

// Watch implements storage.Interface. It follows etcd3's store: a watch from
// revision R delivers every change after R; a watch from 0 (or with initial events)
// first lists the current state as ADDED events; progress notifications become
// bookmarks.
func (s *Store) Watch(ctx context.Context, key string, opts storage.ListOptions) (watch.Interface, error) {
	k, err := s.prepareKey(key, opts.Recursive)
	if err != nil {
		return nil, err
	}
	rev, err := s.versioner.ParseResourceVersion(opts.ResourceVersion)
	if err != nil {
		return nil, err
	}
	start := int64(rev)
	watchList := utilfeature.DefaultFeatureGate.Enabled(features.WatchList)
	initialEvents := (opts.SendInitialEvents == nil && start == 0) ||
		(watchList && opts.SendInitialEvents != nil && *opts.SendInitialEvents)
	endBookmark := watchList && opts.SendInitialEvents != nil && *opts.SendInitialEvents && opts.Predicate.AllowWatchBookmarks
	if start == 0 && watchList && opts.SendInitialEvents != nil && !*opts.SendInitialEvents {
		// Only changes from now on.
		current, err := s.b.CurrentRevision(ctx)
		if err != nil {
			return nil, storage.NewInternalError(err)
		}
		start = current
	}
	w := &watcher{
		s:                s,
		h:                s.b.hub,
		key:              k,
		recursive:        opts.Recursive,
		pred:             opts.Predicate,
		progressNotify:   opts.ProgressNotify,
		recordTimestamps: opts.RecordTimestamps,
		signal:           make(chan struct{}, 1),
		result:           make(chan watch.Event, resultBuffer),
	}
	if w.pred.Empty() {
		w.pred = storage.Everything
	}
	w.r = keyRange{start: k, end: k + "\x01"}
	if opts.Recursive {
		w.r = prefixRange(k)
	}
	w.ctx, w.cancel = context.WithCancel(ctx)
	go w.run(start, initialEvents, endBookmark)
	// Like etcd3's store, tell priority and fairness at once that the watch is set up.
	utilflowcontrol.WatchInitialized(ctx)
	return w, nil
}

// item is what the hub queues for a watcher: a change, or a progress notification
// at a revision.
type item struct {
	event    event
	progress int64
}

// watcher is one watch. Its goroutine reads changes from the hub's queue or, when
// starting or after falling behind, from the log.
type watcher struct {
	s                *Store
	h                *hub
	key              string
	recursive        bool
	r                keyRange
	pred             storage.SelectionPredicate
	progressNotify   bool
	recordTimestamps bool

	ctx    context.Context
	cancel context.CancelFunc
	result chan watch.Event

	mu         sync.Mutex
	queue      []item
	overflowed bool
	signal     chan struct{}
}

var _ watch.Interface = (*watcher)(nil)

func (w *watcher) Stop()                          { w.cancel() }
func (w *watcher) ResultChan() <-chan watch.Event { return w.result }

// push queues it; false means the queue is full and the watcher must leave the hub.
func (w *watcher) push(it item) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.queue) >= maxQueue {
		return false
	}
	w.queue = append(w.queue, it)
	w.notify()
	return true
}

func (w *watcher) overflow() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.overflowed = true
	w.notify()
	watchOverflows.Inc()
}

func (w *watcher) notify() {
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

// take waits for queued items. overflowed tells that the hub dropped the watcher
// after these items.
func (w *watcher) take(buf []item) (items []item, overflowed bool, ok bool) {
	for {
		w.mu.Lock()
		items, overflowed = append(buf[:0], w.queue...), w.overflowed
		w.queue, w.overflowed = w.queue[:0], false
		w.mu.Unlock()
		if len(items) > 0 || overflowed {
			return items, overflowed, true
		}
		select {
		case <-w.ctx.Done():
			return nil, false, false
		case <-w.signal:
		}
	}
}

func (w *watcher) run(start int64, initialEvents, endBookmark bool) {
	defer close(w.result)
	defer w.cancel()
	last := start
	if initialEvents {
		var err error
		if last, err = w.sendInitial(start); err != nil {
			w.sendError(err)
			return
		}
	}
	if endBookmark && !w.sendBookmark(last, true) {
		return
	}
	var buf []item
	for first := true; ; first = false {
		position, ok := w.h.register(w)
		if !ok {
			return
		}
		// Changes up to the hub's position come from the log. The first read also
		// tells whether the start revision was compacted.
		var err error
		if last, err = w.readLog(last, position, first && start > 0); err != nil {
			w.h.unregister(w)
			w.sendError(err)
			return
		}
		for {
			var items []item
			var overflowed bool
			if items, overflowed, ok = w.take(buf); !ok {
				w.h.unregister(w)
				return
			}
			buf = items
			for _, it := range items {
				switch {
				case it.progress > 0:
					if it.progress < last {
						continue
					}
					if !w.sendBookmark(it.progress, false) {
						w.h.unregister(w)
						return
					}
					last = it.progress
				case it.event.revision > last:
					if !w.sendChange(it.event, false) {
						w.h.unregister(w)
						return
					}
					last = it.event.revision
				}
			}
			if overflowed {
				break
			}
		}
	}
}

// readLog sends the watched changes in (last, upTo] from the log and returns the
// revision it has sent up to.
func (w *watcher) readLog(last, upTo int64, check bool) (int64, error) {
	for last < upTo || check {
		check = false
		events, err := w.s.b.db.events(w.ctx, last, w.r, tailBatch)
		if err != nil {
			if errors.Is(err, errCompacted) {
				return last, apierrors.NewResourceExpired("The resourceVersion for the provided watch is too old.")
			}
			return last, err
		}
		for _, e := range events {
			if e.revision > upTo {
				// The hub queues these; the watch may already be past upTo (it
				// started ahead of a lagging hub).
				return max(last, upTo), nil
			}
			if !w.sendChange(e, false) {
				return last, w.ctx.Err()
			}
			last = e.revision
		}
		if len(events) < tailBatch {
			return max(last, upTo), nil
		}
	}
	return last, nil
}

// sendInitial sends the current state as ADDED events and returns its revision. A
// start revision newer than the store is refused, as by etcd3's store.
func (w *watcher) sendInitial(start int64) (int64, error) {
	q := listQuery{r: w.r, limit: maxPage}
	for {
		pg, err := w.s.b.db.list(w.ctx, q)
		if err != nil {
			return 0, err
		}
		if q.revision == 0 {
			if start > pg.revision {
				return 0, storage.NewTooLargeResourceVersionError(uint64(start), uint64(pg.revision), int(wait.Jitter(time.Second, 3).Seconds()))
			}
			q.revision = pg.revision
		}
		for _, r := range pg.rows {
			if !w.sendChange(event{revision: r.revision, key: r.key, value: r.value}, true) {
				return 0, w.ctx.Err()
			}
		}
		if !pg.more {
			return q.revision, nil
		}
		q.r.start = pg.rows[len(pg.rows)-1].key + "\x01"
	}
}

// sendChange decodes a change and sends it if it concerns the predicate: an update
// that makes an object match is ADDED, one that makes it stop matching is DELETED.
func (w *watcher) sendChange(e event, initial bool) bool {
	var cur, old runtime.Object
	var err error
	if e.value != nil {
		if cur, err = w.decode(e.key, e.value, e.revision, formWatch); err != nil {
			return w.sendError(err)
		}
	}
	// The previous object is needed for deletes, and to filter updates.
	everything := w.pred.Empty()
	if e.prevValue != nil && (e.value == nil || !everything) {
		// A deleted object carries the revision of its deletion.
		if old, err = w.decode(e.key, e.prevValue, e.revision, formWatchPrev); err != nil {
			if e.value == nil {
				err = &apierrors.StatusError{ErrStatus: metav1.Status{
					Status: metav1.StatusFailure, Code: 500, Reason: metav1.StatusReasonStoreReadError,
					Message: fmt.Sprintf("saw a DELETED event, but object data is corrupt - %v", err),
				}}
			}
			return w.sendError(err)
		}
	}
	var ev watch.Event
	switch {
	case e.value == nil:
		if !w.matches(old) {
			return true
		}
		ev = watch.Event{Type: watch.Deleted, Object: old}
	case e.prevValue == nil:
		if !w.matches(cur) {
			return true
		}
		ev = watch.Event{Type: watch.Added, Object: cur}
	case everything:
		ev = watch.Event{Type: watch.Modified, Object: cur}
	default:
		now, before := w.matches(cur), w.matches(old)
		switch {
		case now && before:
			ev = watch.Event{Type: watch.Modified, Object: cur}
		case now:
			ev = watch.Event{Type: watch.Added, Object: cur}
		case before:
			ev = watch.Event{Type: watch.Deleted, Object: old}
		default:
			return true
		}
	}
	if w.recordTimestamps && !initial {
		ev.Object = &timedObject{Object: ev.Object, recordTime: time.Now()}
	}
	return w.send(ev)
}

func (w *watcher) matches(obj runtime.Object) bool {
	if w.pred.Empty() {
		return true
	}
	ok, err := w.pred.Matches(obj)
	return err == nil && ok
}

// decode decodes a value of a change, or copies it from the backend's cache of
// decoded objects, which every watcher of the change shares.
func (w *watcher) decode(key string, value []byte, revision int64, form decodedForm) (runtime.Object, error) {
	data, _, err := w.s.transformer.TransformFromStorage(w.ctx, value, authenticatedData(key))
	if err != nil {
		return nil, err
	}
	k := decodedKey{store: w.s.id, key: key, revision: revision, form: form}
	// The write (or a read) of the change may have decoded it first.
	tries := [2]decodedTry{{k, nil}, {decodedKey{store: w.s.id, key: key, revision: revision, form: formInto}, w.s.typed}}
	n := 1
	if form == formWatch && w.s.typed != nil {
		n = 2
	}
	if obj, hit := w.s.b.decoded.getEither(data, tries[:n]...); hit >= 0 {
		if hit > 0 {
			// Decoded without a target, a typed object comes out of the
			// codec's conversion to its decoding version with its kind
			// cleared, where one decoded into an object of its type keeps
			// the kind it was stored with: a watcher gets what its own
			// decoding would give.
			obj.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
		}
		return obj, nil
	}
	obj, err := runtime.Decode(w.s.codec, data)
	if err != nil {
		return nil, err
	}
	if err := w.s.versioner.UpdateObject(obj, uint64(revision)); err != nil {
		return nil, fmt.Errorf("setting the resource version of %q: %w", key, err)
	}
	if err := w.s.markCluster(key, obj); err != nil {
		return nil, err
	}
	w.s.b.decoded.put(k, data, obj, nil)
	return obj, nil
}

func (w *watcher) sendBookmark(revision int64, initialEventsEnd bool) bool {
	obj := w.s.newFunc()
	if err := w.s.versioner.UpdateObject(obj, uint64(revision)); err != nil {
		return w.sendError(err)
	}
	if initialEventsEnd {
		if err := storage.AnnotateInitialEventsEndBookmark(obj); err != nil {
			return w.sendError(err)
		}
	}
	return w.send(watch.Event{Type: watch.Bookmark, Object: obj})
}

func (w *watcher) send(ev watch.Event) bool {
	select {
	case w.result <- ev:
		return true
	case <-w.ctx.Done():
		return false
	}
}

// sendError ends the watch with an error event, unless the client has gone.
// It returns false: nothing follows an error.
func (w *watcher) sendError(err error) bool {
	if w.ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return false
	}
	select {
	case <-w.s.b.closed:
		// The backend is shutting down: the watch ends without an error.
		return false
	default:
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		status = apierrors.NewInternalError(err)
	}
	st := status.Status()
	w.send(watch.Event{Type: watch.Error, Object: &st})
	w.cancel()
	return false
}

// timedObject carries the time an event was decoded to the watch cache.
type timedObject struct {
	runtime.Object
	recordTime time.Time
}

var _ storage.WatchEventWithRecordTime = (*timedObject)(nil)

func (t *timedObject) RecordTime() time.Time  { return t.recordTime }
func (t *timedObject) Unwrap() runtime.Object { return t.Object }
func (t *timedObject) GetObjectMeta() metav1.Object {
	m, _ := meta.Accessor(t.Object)
	return m
}
func (t *timedObject) DeepCopyObject() runtime.Object {
	return &timedObject{Object: t.Object.DeepCopyObject(), recordTime: t.recordTime}
}
