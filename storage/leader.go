package storage

import (
	"context"
	"sync"
)

// Leadership tells whether this process leads its shard. Of all the
// processes serving one shard, at most one leads at a time (on PostgreSQL, the
// holder of an advisory lock of the shard; on SQLite, the one process), and
// after the leader dies another takes over within seconds: what must happen
// once per shard — its controllers — runs in the leader.
//
// A term can end before its holder notices (a leader hung or cut off from the
// database for longer than the lock lasts), so whatever a leader does must be
// safe to do twice.
type Leadership struct {
	shard string

	mu sync.Mutex
	// term is the current term, nil while another process leads; changed is
	// closed, and replaced, whenever term changes.
	term    context.Context
	changed chan struct{}
}

func newLeadership(shard string) *Leadership {
	return &Leadership{shard: shard, changed: make(chan struct{})}
}

// begin starts a term, which ends when term does.
func (l *Leadership) begin(term context.Context) {
	l.set(term)
	context.AfterFunc(term, func() { l.end(term) })
}

// set makes term the current term.
func (l *Leadership) set(term context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.term = term
	close(l.changed)
	l.changed = make(chan struct{})
	leader.WithLabelValues(l.shard).Set(1)
}

// end ends term, unless a later term began.
func (l *Leadership) end(term context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.term != term {
		return
	}
	l.term = nil
	close(l.changed)
	l.changed = make(chan struct{})
	leader.WithLabelValues(l.shard).Set(0)
}

// Leading waits until this process leads its shard and returns a context that
// ends when it stops leading (at once: it derives from the term) or ctx ends,
// and its cancel function; false if ctx ended first.
func (l *Leadership) Leading(ctx context.Context) (context.Context, context.CancelFunc, bool) {
	for {
		l.mu.Lock()
		term, changed := l.term, l.changed
		l.mu.Unlock()
		if term != nil && term.Err() == nil {
			// Derived from the term, the context ends at once with it.
			lead, cancel := context.WithCancel(term)
			stop := context.AfterFunc(ctx, cancel)
			return lead, func() { stop(); cancel() }, true
		}
		select {
		case <-ctx.Done():
			return nil, nil, false
		case <-changed:
		}
	}
}
