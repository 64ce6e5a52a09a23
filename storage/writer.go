package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// write is one change handed to the writer: a put when value is set, a delete
// otherwise. It applies only if the key's live revision is expect (0: absent), the
// compare-and-swap every etcd3 write of the apiserver is.
type write struct {
	// fence, if set, is a write of no key that records the cluster fence as
	// erased: later writes creating objects in it fail. revive, if set, is
	// one that lifts the fence of the cluster revive.
	fence     string
	revive    string
	key       string
	columns   keyColumns
	value     []byte
	expect    int64
	expiresAt int64 // Unix milliseconds; 0: never
	// committed, if set, is called with the write's revision once it has
	// committed, before the change is delivered to watchers.
	committed func(revision int64)
	done      chan writeResult
}

// writeResult answers a write: the revision it committed at, or, if expect did not
// hold, the key's live row (nil if absent).
type writeResult struct {
	revision int64
	current  *row
	err      error
}

func (r writeResult) ok() bool { return r.err == nil && r.revision > 0 }

// errClosed answers writes to a closed backend.
var errClosed = errors.New("storage backend is closed")

// enqueue hands w to the writer.
func (b *Backend) enqueue(ctx context.Context, w *write) error {
	w.done = make(chan writeResult, 1)
	select {
	case b.writes <- w:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-b.closed:
		return errClosed
	}
}

// await waits for the answer to an enqueued write. If ctx ends first, the write
// may still commit, as a timed-out etcd request may.
func (b *Backend) await(ctx context.Context, w *write) writeResult {
	select {
	case r := <-w.done:
		return r
	case <-ctx.Done():
		return writeResult{err: ctx.Err()}
	case <-b.closed:
		return writeResult{err: errClosed}
	}
}

// submit hands w to the writer and waits for its answer.
func (b *Backend) submit(ctx context.Context, w *write) writeResult {
	if err := b.enqueue(ctx, w); err != nil {
		return writeResult{err: err}
	}
	return b.await(ctx, w)
}

// writeLoop is the shard's group commit: it takes every write waiting, commits them
// in one transaction and answers each. While a batch commits, the next one gathers,
// so batches grow with the load and one fsync serves many writes.
func (b *Backend) writeLoop(ctx context.Context) {
	batch := make([]*write, 0, b.cfg.MaxBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case w := <-b.writes:
			batch = append(batch[:0], w)
		}
	gather:
		for len(batch) < b.cfg.MaxBatch {
			select {
			case w := <-b.writes:
				batch = append(batch, w)
			default:
				break gather
			}
		}
		b.commit(ctx, batch)
	}
}

// commit writes one batch. It holds the shard's revision lock from its first read
// to its commit, so every precondition is checked against the state it changes.
func (b *Backend) commit(ctx context.Context, batch []*write) {
	start := time.Now()
	results := make([]writeResult, len(batch))
	log, err := b.commitBatch(ctx, batch, results)
	if err != nil {
		for i := range results {
			results[i] = writeResult{err: err}
		}
	}
	if len(log) > 0 && err == nil {
		for i, w := range batch {
			if w.committed != nil && results[i].ok() {
				w.committed(results[i].revision)
			}
		}
		b.hub.deliver(log)
		commitDuration.Observe(time.Since(start).Seconds())
		batchSize.Observe(float64(len(log)))
	}
	for i, w := range batch {
		w.done <- results[i]
	}
}

func (b *Backend) commitBatch(ctx context.Context, batch []*write, results []writeResult) ([]event, error) {
	keys := make([]string, 0, len(batch))
	seen := make(map[string]bool, len(batch))
	var clusters []string
	for _, w := range batch {
		if w.fence != "" || w.revive != "" {
			continue
		}
		if !seen[w.key] {
			seen[w.key] = true
			keys = append(keys, w.key)
		}
		if c := w.columns.cluster; creates(w) && c != "" && !slices.Contains(clusters, c) {
			clusters = append(clusters, c)
		}
	}
	var bw batchWrite
	err := b.db.writeBatch(ctx, keys, clusters, func(revision int64, live map[string]row, erased map[string]bool) batchWrite {
		bw = decide(batch, keys, revision, live, erased, results)
		if len(bw.log) > 0 {
			b.hub.committing(bw.revision)
		} else {
			b.hub.committing(0)
		}
		return bw
	})
	if err != nil {
		if len(bw.log) > 0 {
			// The commit may have happened; the log reader will find out.
			b.hub.abandon()
			return nil, fmt.Errorf("write batch of revisions %d-%d: %w", bw.log[0].revision, bw.revision, err)
		}
		return nil, err
	}
	return bw.log, nil
}

// creates tells a write that creates its key, if it is absent.
func creates(w *write) bool { return w.expect == 0 && w.value != nil }

// decide applies the writes of a batch in order to the live rows (a later write
// sees the earlier ones), fills in each write's result and returns what to store.
// A write that would create an object in an erased cluster fails.
func decide(batch []*write, keys []string, revision int64, live map[string]row, erased map[string]bool, results []writeResult) batchWrite {
	var bw batchWrite
	stored := make(map[string]bool, len(live))
	for k := range live {
		stored[k] = true
	}
	last := make(map[string]*write, len(keys))
	for i, w := range batch {
		results[i] = writeResult{}
		switch {
		case w.fence != "":
			bw.fences = append(bw.fences, w.fence)
			bw.revived = slices.DeleteFunc(bw.revived, func(c string) bool { return c == w.fence })
			erased[w.fence] = true
			results[i].revision = revision
			continue
		case w.revive != "":
			bw.revived = append(bw.revived, w.revive)
			bw.fences = slices.DeleteFunc(bw.fences, func(c string) bool { return c == w.revive })
			delete(erased, w.revive)
			results[i].revision = revision
			continue
		}
		cur, exists := live[w.key]
		if !exists && creates(w) && w.columns.cluster != "" && erased[w.columns.cluster] {
			results[i].err = &erasedError{cluster: w.columns.cluster}
			continue
		}
		if cur.revision != w.expect || (w.value == nil && !exists) {
			if exists {
				results[i].current = &row{key: cur.key, revision: cur.revision, value: cur.value}
			}
			continue
		}
		revision++
		bw.log = append(bw.log, event{
			revision:     revision,
			key:          w.key,
			value:        w.value,
			prevRevision: cur.revision,
			prevValue:    cur.value,
		})
		if w.value == nil {
			delete(live, w.key)
		} else {
			live[w.key] = row{key: w.key, revision: revision, value: w.value}
		}
		last[w.key] = w
		results[i].revision = revision
	}
	for _, k := range keys {
		w, changed := last[k]
		if !changed {
			continue
		}
		if r, exists := live[k]; exists {
			bw.upserts = append(bw.upserts, upsert{
				stored:    stored[k],
				key:       k,
				cluster:   w.columns.cluster,
				namespace: w.columns.namespace,
				name:      w.columns.name,
				revision:  r.revision,
				expiresAt: w.expiresAt,
				value:     r.value,
			})
		} else if stored[k] {
			bw.deletes = append(bw.deletes, k)
		}
	}
	bw.revision = revision
	return bw
}
