// Package flowgate lets one request of a client at a time into API priority
// and fairness's queues: the client's next request waits here, in order of
// arrival, until the one before it has left them (dispatched, or rejected).
// A client is a user in a logical cluster.
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
// at the median, against 2 ms for a tenant getting one every 5 ms. With one
// request of a client in the queues, which joined them when the one before it
// was dispatched, the lag stays under one request's service.
//
// Guarantees: a client's requests go on in the order they came; a request
// waits here only while a request of its client waits in the queues or here
// before it, and no longer than its context allows; of one client at most
// MaxWaiting wait here, and a request that finds them or whose wait runs out
// is turned back (the caller lets upstream reject it). A client with no
// request here holds no memory.
package flowgate

import (
	"context"
	"errors"
	"sync"

	"golang.org/x/sync/semaphore"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// MaxWaiting is how many requests of one client wait here at most: as many
// as upstream's default queue length limit lets wait in one queue before it
// rejects more.
const MaxWaiting = 50

// Client is whose requests go into the queues one at a time: a user in a
// logical cluster ("" outside one). Finer than priority and fairness's flows,
// which are workspaces, so that an installation identity working in a
// workspace never waits here behind the workspace's tenants.
type Client struct{ Cluster, User string }

// Gates holds each client's gate; the zero value is not ready, use New.
type Gates struct {
	mu      sync.Mutex
	clients map[Client]*gate
}

// gate is one client's: next is held by the request of the client that is
// in the queues; users counts it and the requests waiting for it.
type gate struct {
	next  *semaphore.Weighted
	users int
}

// New makes gates for every client.
func New() *Gates {
	return &Gates{clients: map[Client]*gate{}}
}

// ErrFull turns back a request that finds MaxWaiting of its client's waiting.
var ErrFull = errors.New("too many requests of this user in this workspace wait for priority and fairness")

// Enter returns once no other request of c is in priority and fairness's
// queues or waiting here before this one. The request then goes on to the
// queues; leave, called once it has left them (dispatched, rejected or timed
// out), lets the next one in, and does nothing called again. If ctx ends
// first, Enter returns its error, and ErrFull at once if MaxWaiting of c's
// requests wait already; leave then does nothing.
func (g *Gates) Enter(ctx context.Context, c Client) (leave func(), err error) {
	g.mu.Lock()
	e := g.clients[c]
	if e == nil {
		e = &gate{next: semaphore.NewWeighted(1)}
		g.clients[c] = e
	}
	if e.users > MaxWaiting {
		g.mu.Unlock()
		return func() {}, ErrFull
	}
	e.users++
	g.mu.Unlock()

	if !e.next.TryAcquire(1) {
		waiting.Inc()
		err := e.next.Acquire(ctx, 1)
		waiting.Dec()
		if err != nil {
			g.done(c, e)
			return func() {}, err
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			e.next.Release(1)
			g.done(c, e)
		})
	}, nil
}

// done counts off one user of c's gate, and forgets the gate with its last.
func (g *Gates) done(c Client, e *gate) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e.users--; e.users == 0 {
		delete(g.clients, c)
	}
}

var waiting = metrics.NewGauge(&metrics.GaugeOpts{
	Namespace: "warren", Subsystem: "fairness", Name: "gate_waiting_requests", StabilityLevel: metrics.ALPHA,
	Help: "Requests waiting to join API priority and fairness's queues while a request of the same user in the same workspace waits in them.",
})

func init() {
	legacyregistry.MustRegister(waiting)
}
