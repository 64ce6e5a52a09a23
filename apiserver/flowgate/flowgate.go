// Package flowgate lets a client's requests into API priority and fairness's
// queues only while fewer of them wait there than are being served, and one
// when none is: the client's next request waits here, in order of arrival,
// until one of its requests in the queues is dispatched (or rejected). A
// client is a user in a logical cluster.
//
// Why: upstream's fair queuing (k8s.io/apiserver's queueset) advances its
// virtual clock with wall time while a queue is served alone, but charges the
// queue only its requests' service times, so a queue that never empties falls
// behind the clock by the queue set's own bookkeeping between one request's
// end and the next one's dispatch (15–30 ms a second under a flood of lists
// on this project's benchmark machine). Its anti-windup bounds that lag only
// by the arrival of the queue's oldest waiting request: a client flooding
// from 50 connections keeps 49 waiting, so the lag grows to ~49 requests'
// service, and a workspace whose first request in a while arrives then waits
// while the flood's queue uses it up — at one seat, a tenant getting one
// object every half second under a flood of 50 listing clients waited 17 ms
// at the median, against 2 ms for a tenant getting one every 5 ms. With no
// more of a client's requests in the queues than it has in seats, each joined
// them at most as many dispatches ago as the client has seats, which is about
// one request's service, and the lag stays under that. (One at a time, the
// client's next request would join only once the one before is dispatched,
// and a client filling many seats alone would leave some idle meanwhile.)
//
// Guarantees: a client's requests go on in the order they came; a request
// waits here only while as many of its client's requests wait in the queues
// as are served (one if none is), or others wait here before it, and no
// longer than its context allows; of one client at most
// MaxWaiting wait here, and a request that finds them or whose wait runs out
// is turned back (the caller lets upstream reject it). A client with no
// request here holds no memory.
package flowgate

import (
	"context"
	"errors"
	"slices"
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// MaxWaiting is how many requests of one client wait here at most: as many
// as upstream's default queue length limit lets wait in one queue before it
// rejects more.
const MaxWaiting = 50

// Client is whose requests are let into the queues: a user in a logical
// cluster ("" outside one). Finer than priority and fairness's flows, which
// are workspaces, so that an installation identity working in a workspace
// never waits here behind the workspace's tenants. A client's requests share
// its gate whichever priority level they are classified into: where FlowSchemas
// put one user's requests into two limited levels, a backlog in one holds back
// its requests for the other (warren's bootstrap puts all of a tenant's in
// global-default).
type Client struct{ Cluster, User string }

// Gates holds each client's gate; the zero value is not ready, use New.
type Gates struct {
	mu      sync.Mutex
	clients map[Client]*gate
}

// gate is one client's, guarded by Gates.mu.
type gate struct {
	// queued are the client's requests let in and not yet dispatched,
	// serving those dispatched and not yet done.
	queued, serving int
	// waiting are the requests waiting here, in order of arrival; a
	// request is let in by closing its channel.
	waiting []chan struct{}
}

// room tells whether the gate lets one more request into the queues.
func (e *gate) room() bool {
	return e.queued < max(1, e.serving)
}

// New makes gates for every client.
func New() *Gates {
	return &Gates{clients: map[Client]*gate{}}
}

// ErrFull turns back a request that finds MaxWaiting of its client's waiting.
var ErrFull = errors.New("too many requests of this user in this workspace wait for priority and fairness")

// Ticket is a request's passage through a gate.
type Ticket struct {
	g          *Gates
	c          Client
	e          *gate
	dispatched bool
	done       bool
}

// Enter returns once the request may join priority and fairness's queues:
// when fewer of c's requests are in them than are being served (one if
// none is) and none of c's waits here before it. If ctx ends first, Enter
// returns its error, and ErrFull at once if MaxWaiting of c's requests wait
// already. The request then goes on to the queues; call Dispatched when it
// leaves them to be served, and Done when it is over, served or not.
func (g *Gates) Enter(ctx context.Context, c Client) (*Ticket, error) {
	g.mu.Lock()
	e := g.clients[c]
	if e == nil {
		e = &gate{}
		g.clients[c] = e
	}
	t := &Ticket{g: g, c: c, e: e}
	if len(e.waiting) == 0 && e.room() {
		e.queued++
		g.mu.Unlock()
		return t, nil
	}
	if len(e.waiting) >= MaxWaiting {
		g.mu.Unlock()
		return nil, ErrFull
	}
	in := make(chan struct{})
	e.waiting = append(e.waiting, in)
	g.mu.Unlock()

	waiting.Inc()
	defer waiting.Dec()
	select {
	case <-in:
		return t, nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if i := slices.Index(e.waiting, in); i >= 0 {
		e.waiting = slices.Delete(e.waiting, i, i+1)
		g.forget(c, e)
		return nil, ctx.Err()
	}
	// Let in as its wait ran out: it goes on.
	return t, nil
}

// Dispatched counts the request as served from now on, which lets the next
// of its client's in. A nil Ticket does nothing.
func (t *Ticket) Dispatched() {
	if t == nil {
		return
	}
	t.g.mu.Lock()
	defer t.g.mu.Unlock()
	if t.dispatched || t.done {
		return
	}
	t.dispatched = true
	t.e.queued--
	t.e.serving++
	t.e.letIn()
}

// Done counts the request off its client's, whether it was served or not;
// calling it again does nothing, nor does a nil Ticket.
func (t *Ticket) Done() {
	if t == nil {
		return
	}
	t.g.mu.Lock()
	defer t.g.mu.Unlock()
	if t.done {
		return
	}
	t.done = true
	if t.dispatched {
		t.e.serving--
	} else {
		t.e.queued--
	}
	t.e.letIn()
	t.g.forget(t.c, t.e)
}

// letIn lets waiting requests in, in order, while there is room. Gates.mu is
// held.
func (e *gate) letIn() {
	for len(e.waiting) > 0 && e.room() {
		close(e.waiting[0])
		e.waiting = e.waiting[1:]
		e.queued++
	}
}

// forget drops c's gate once nothing of c's is in it. g.mu is held.
func (g *Gates) forget(c Client, e *gate) {
	if e.queued == 0 && e.serving == 0 && len(e.waiting) == 0 {
		delete(g.clients, c)
	}
}

var waiting = metrics.NewGauge(&metrics.GaugeOpts{
	Namespace: "warren", Subsystem: "fairness", Name: "gate_waiting_requests", StabilityLevel: metrics.ALPHA,
	Help: "Requests waiting to join API priority and fairness's queues while as many of the same user's in the same workspace wait in them as are served.",
})

func init() {
	legacyregistry.MustRegister(waiting)
}
