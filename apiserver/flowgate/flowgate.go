// Package flowgate lets a client's requests into API priority and fairness's
// queues one at a time, and each as late as it can: while one of the client's
// requests waits in the queues the next waits here, and once it is dispatched
// the next joins the queues when a seat is about to be given back — any
// request's, in any workspace — unless the one before found a seat free, in
// which case it joins at once. A client is a user in a logical cluster.
//
// Why: upstream's fair queuing (k8s.io/apiserver's queueset) orders requests
// by their queues' places in a virtual time that advances with the seats'
// use, and a request waiting in a queue holds the place its queue had when it
// arrived. A flood whose next request waits in the queues while its list is
// served holds a place one list old, so a tenant arriving late in that list
// found it ahead and waited for two lists ~1/4 of the time; a flood from 50
// connections, each request waiting in the queues, held places ~49 lists old
// (fair queuing's anti-windup bounds the lag only by the oldest waiting
// request's arrival), and a workspace whose first request in a while arrived
// then waited while the flood used them up — at one seat, 17 ms at the median
// for a tenant getting one object every half second, against 2 ms. A client's
// request that joins as a seat is about to be given back holds the place of
// that moment, which a request that arrived during the seat's use precedes.
// A request dispatched with no seat given back since it joined the queues,
// and not let in for a spare one (below), found a seat free (as does one of
// an exempt level, whose seats are not limited), so the client's next joins
// at once, and a client alone fills the free seats; under contention each
// seat about to be given back lets every waiting client's next in, and fair
// queuing chooses among them, so each client grows to its share. A seat given
// back while no request let in waits in the queues to take it is spare, and
// lets every waiting client's next in too: without it, seats given back at
// nearly the same moment, the first taking the one request waiting, left the
// others idle until another seat's end (under a flood at 2 seats, 13% of the
// seats' time). The price: a seat given back before the next request has
// joined the queues waits for it (its classification, tens of microseconds)
// instead of finding it there.
//
// Guarantees: a client's requests go on in the order they came; of a client,
// at most one request waits in the queues at a time; a request waits here
// while one of its client's does in the queues, or while others wait here
// before it, or while its client has requests being served, the last one
// dispatched found no seat free, no seat has been about to be given back
// since, and none given back is spare — and no longer than its context
// allows; of one client at most MaxWaiting wait here, and a request that
// finds them or whose wait runs out is turned back (the caller lets upstream
// reject it). A client with no request here holds no memory.
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
	// ready are the gates with requests waiting here and none in the
	// queues: the next seat about to be given back lets one of each in.
	ready map[*gate]struct{}
	// ends counts the seats given back.
	ends uint64
	// inQueues counts the requests let in and not yet dispatched; claimed
	// are the seats given back while some of them were, which they will
	// take (a dispatch takes one); spare are the seats given back while
	// none was, until a request is let in to take each.
	inQueues, claimed, spare int
}

// gate is one client's, guarded by Gates.mu.
type gate struct {
	// queued is 1 while a request of the client let in waits in the
	// queues, serving the client's requests dispatched and not yet done
	// (nor about to give their seats back).
	queued, serving int
	// free tells that the client's last request dispatched found a seat
	// free: it was dispatched with no seat given back since it was let in,
	// or by an exempt level.
	free bool
	// waiting are the requests waiting here, in order of arrival.
	waiting []*Ticket
}

// room tells whether e lets its next request in now. g.mu is held.
func (g *Gates) room(e *gate) bool {
	return e.queued == 0 && (e.serving == 0 || e.free || g.spare > 0)
}

// New makes gates for every client.
func New() *Gates {
	return &Gates{clients: map[Client]*gate{}, ready: map[*gate]struct{}{}}
}

// ErrFull turns back a request that finds MaxWaiting of its client's waiting.
var ErrFull = errors.New("too many requests of this user in this workspace wait for priority and fairness")

// Ticket is a request's passage through a gate.
type Ticket struct {
	g *Gates
	c Client
	e *gate
	// in is closed when the request, waiting here, is let in.
	in chan struct{}
	// entered is Gates.ends when the request was let in.
	entered uint64
	// spare tells that the request was let in to take a spare seat.
	spare bool

	dispatched, unlimited, finishing, done bool
}

// Enter returns once the request may join priority and fairness's queues:
// when none of c's waits in them, and either none of c's is being served or
// the last one dispatched found a seat free, or a seat is about to be given
// back or was given back spare; and none of c's waits here before it. If ctx
// ends first, Enter returns its error, and ErrFull at once if MaxWaiting of
// c's requests wait already. The request then goes on to the queues; call
// Dispatched when it leaves them to be served, Finishing when it is about to
// give its seat back, Ended when its execution is over, and Done when it is
// over, served or not.
func (g *Gates) Enter(ctx context.Context, c Client) (*Ticket, error) {
	g.mu.Lock()
	e := g.clients[c]
	if e == nil {
		e = &gate{}
		g.clients[c] = e
	}
	t := &Ticket{g: g, c: c, e: e}
	if len(e.waiting) == 0 && g.room(e) {
		g.letIn(e, t)
		g.mu.Unlock()
		return t, nil
	}
	if len(e.waiting) >= MaxWaiting {
		g.mu.Unlock()
		return nil, ErrFull
	}
	t.in = make(chan struct{})
	e.waiting = append(e.waiting, t)
	g.update(e)
	g.mu.Unlock()

	waiting.Inc()
	defer waiting.Dec()
	select {
	case <-t.in:
		return t, nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if i := slices.Index(e.waiting, t); i >= 0 {
		e.waiting = slices.Delete(e.waiting, i, i+1)
		g.update(e)
		g.forget(c, e)
		return nil, ctx.Err()
	}
	// Let in as its wait ran out: it goes on.
	return t, nil
}

// Dispatched counts the request as served from now on; if it found a seat
// free — no seat was given back (Ended) since it joined the queues, nor was
// it let in to take a spare one, or unlimited tells that its priority level
// limits no seats (exempt) — the next of its client's joins the queues at
// once; an exempt request let in to take a spare seat leaves it spare. A nil
// Ticket does nothing.
func (t *Ticket) Dispatched(unlimited bool) {
	if t == nil {
		return
	}
	t.g.mu.Lock()
	defer t.g.mu.Unlock()
	if t.dispatched || t.done {
		return
	}
	t.dispatched, t.unlimited = true, unlimited
	t.e.queued--
	t.e.serving++
	t.g.inQueues--
	t.g.claimed = max(0, t.g.claimed-1)
	t.e.free = unlimited || !t.spare && t.g.ends == t.entered
	t.g.next(t.e)
	if unlimited && t.spare {
		// It took no limited seat: the spare one is spare still.
		t.g.spared()
	}
}

// Finishing tells that the request, served, is about to give its seat back:
// every client with requests waiting here and none in the queues lets its
// next in, to join them before the seat is given back. A nil Ticket, or one
// not dispatched, does nothing.
func (t *Ticket) Finishing() {
	if t == nil {
		return
	}
	g := t.g
	g.mu.Lock()
	defer g.mu.Unlock()
	if !t.dispatched || t.finishing || t.done {
		return
	}
	t.finishing = true
	t.e.serving--
	for e := range g.ready {
		g.letIn(e, nil)
	}
}

// Ended tells that the request's execution is over and its seat is being
// given back: a request of any client dispatched from now on did not find a
// seat free. A seat given back while no request let in waits in the queues
// to take it (beyond those that seats given back before will serve) is spare:
// every client with requests waiting here and none in the queues lets its
// next in at once, and, until one has been let in, so does any client whose
// request is dispatched or arrives. Call it after Dispatched; a nil Ticket,
// or one dispatched by an exempt level, does nothing.
func (t *Ticket) Ended() {
	if t == nil || t.unlimited {
		return
	}
	g := t.g
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ends++
	if g.inQueues > g.claimed {
		g.claimed++
		return
	}
	g.spared()
}

// spared counts a spare seat and lets every ready gate's next in to take it.
// g.mu is held.
func (g *Gates) spared() {
	g.spare++
	for e := range g.ready {
		g.letIn(e, nil)
	}
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
	switch {
	case !t.dispatched:
		t.e.queued--
		t.g.inQueues--
		t.g.claimed = min(t.g.claimed, t.g.inQueues)
	case !t.finishing:
		t.e.serving--
	}
	t.g.next(t.e)
	t.g.forget(t.c, t.e)
}

// next lets e's first waiting request in if e has room. g.mu is held.
func (g *Gates) next(e *gate) {
	if len(e.waiting) > 0 && g.room(e) {
		g.letIn(e, nil)
	} else {
		g.update(e)
	}
}

// letIn lets a request of e into the queues: t, arriving, or else the first
// waiting here. g.mu is held.
func (g *Gates) letIn(e *gate, t *Ticket) {
	if t == nil {
		t = e.waiting[0]
		e.waiting = e.waiting[1:]
		close(t.in)
	}
	t.entered, t.spare = g.ends, g.spare > 0
	e.queued++
	g.inQueues++
	g.spare = max(0, g.spare-1)
	g.update(e)
}

// update keeps e among the ready gates while it has requests waiting here and
// none in the queues. g.mu is held.
func (g *Gates) update(e *gate) {
	if len(e.waiting) > 0 && e.queued == 0 {
		g.ready[e] = struct{}{}
	} else {
		delete(g.ready, e)
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
	Help: "Requests waiting to join API priority and fairness's queues behind a request of the same user in the same workspace, or for a seat to be about to be given back.",
})

func init() {
	legacyregistry.MustRegister(waiting)
}
