package flowgate

import (
	"context"
	"testing"
	"time"
)

var alice = Client{Cluster: "a", User: "alice"}

// entered runs Enter in a goroutine and hands its ticket on once it returns.
func entered(ctx context.Context, g *Gates, c Client) <-chan *Ticket {
	ch := make(chan *Ticket, 1)
	go func() {
		t, _ := g.Enter(ctx, c)
		ch <- t
	}()
	return ch
}

// enter lets a request of c in at once, failing the test if it waits or is
// turned back.
func enter(t *testing.T, g *Gates, c Client) *Ticket {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // a request that must wait returns at once
	ticket, err := g.Enter(ctx, c)
	if err != nil {
		t.Fatalf("a request of %+v did not go on at once: %v", c, err)
	}
	return ticket
}

// queue starts n requests of c that must wait, one after the other so that
// their order of arrival is known.
func queue(t *testing.T, g *Gates, c Client, n int) []<-chan *Ticket {
	t.Helper()
	var chs []<-chan *Ticket
	for range n {
		before := waitingFor(g, c)
		chs = append(chs, entered(context.Background(), g, c))
		for deadline := time.Now().Add(10 * time.Second); waitingFor(g, c) == before; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("request %d of %+v never waited", len(chs), c)
			}
		}
	}
	return chs
}

// waits requires that ch yields nothing: long enough that a wrongly open
// gate would have let its request through.
func waits(t *testing.T, ch <-chan *Ticket, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s went on, want it to wait", what)
	case <-time.After(50 * time.Millisecond):
	}
}

func goesOn(t *testing.T, ch <-chan *Ticket, what string) *Ticket {
	t.Helper()
	select {
	case ticket := <-ch:
		return ticket
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still waits", what)
		return nil
	}
}

// waitingFor is how many requests of c wait here.
func waitingFor(g *Gates, c Client) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e := g.clients[c]; e != nil {
		return len(e.waiting)
	}
	return 0
}

func forgotten(t *testing.T, g *Gates) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	if n := len(g.clients); n != 0 {
		t.Errorf("%d gates kept after every request was done", n)
	}
	if n := len(g.ready); n != 0 {
		t.Errorf("%d gates still ready after every request was done", n)
	}
	if g.inQueues != 0 || g.claimed != 0 {
		t.Errorf("%d requests counted in the queues, %d seats claimed, after every request was done", g.inQueues, g.claimed)
	}
}

func TestOneRequestInTheQueuesAtATime(t *testing.T) {
	g := New()
	first := enter(t, g, alice)

	// Others go on: alice elsewhere, another user in her workspace, and
	// the same name outside any workspace.
	for _, c := range []Client{{Cluster: "b", User: "alice"}, {Cluster: "a", User: "bob"}, {User: "alice"}} {
		enter(t, g, c).Done()
	}

	next := queue(t, g, alice, 2)
	waits(t, next[0], "alice's second request")
	first.Finishing() // not dispatched: nothing
	waits(t, next[0], "alice's second request")
	first.Done() // rejected in the queues, never served
	first.Done() // a second call changes nothing
	second := goesOn(t, next[0], "alice's second request")
	waits(t, next[1], "alice's third request")
	second.Done()
	goesOn(t, next[1], "alice's third request").Done()
	forgotten(t, g)
}

// TestTheNextJoinsAtOnceWhileSeatsAreFree: a request dispatched with no seat
// given back since it joined the queues found one free, and the next of its
// client's joins at once, in order of arrival.
func TestTheNextJoinsAtOnceWhileSeatsAreFree(t *testing.T) {
	g := New()
	r1 := enter(t, g, alice)
	next := queue(t, g, alice, 2)
	waits(t, next[0], "r2")
	r1.Dispatched(false)
	r2 := goesOn(t, next[0], "r2")
	waits(t, next[1], "r3")
	r2.Dispatched(false)
	r3 := goesOn(t, next[1], "r3")
	r3.Dispatched(false)
	for _, r := range []*Ticket{r1, r2, r3} {
		r.Done()
	}
	forgotten(t, g)
}

// TestAnUnlimitedDispatchLetsTheNextInAtOnce: a request of an exempt
// priority level never waits for a seat, so its client's next joins the queues
// at once, whatever seats were given back meanwhile.
func TestAnUnlimitedDispatchLetsTheNextInAtOnce(t *testing.T) {
	g := New()
	bob := Client{Cluster: "b", User: "bob"}
	b1 := enter(t, g, bob)
	b1.Dispatched(false)
	r1 := enter(t, g, alice)
	next := queue(t, g, alice, 1)
	b1.Finishing()
	b1.Ended() // a seat given back since r1 joined
	b1.Done()
	r1.Dispatched(true)
	goesOn(t, next[0], "r2").Done()
	r1.Done()
	forgotten(t, g)
}

// TestASeatFreeBeforeTheOneAboutToBeGivenBackIsFilled: a request let in as a
// seat is about to be given back and dispatched before it is (another seat
// was free) found a seat free, and its client's next joins at once.
func TestASeatFreeBeforeTheOneAboutToBeGivenBackIsFilled(t *testing.T) {
	g := New()
	r1 := enter(t, g, alice)
	next := queue(t, g, alice, 2)
	r1.Dispatched(false)
	r2 := goesOn(t, next[0], "r2")
	r2.Dispatched(false)
	r3 := goesOn(t, next[1], "r3")
	more := queue(t, g, alice, 2)
	r1.Finishing()
	r1.Ended()
	r3.Dispatched(false) // at r1's seat
	waits(t, more[0], "r4")
	r2.Finishing() // r4 joins …
	r4 := goesOn(t, more[0], "r4")
	r4.Dispatched(false) // … and finds another seat free before r2's is given back
	r5 := goesOn(t, more[1], "r5")
	r2.Ended()
	for _, r := range []*Ticket{r1, r2, r3, r4, r5} {
		r.Done()
	}
	forgotten(t, g)
}

// TestTheNextJoinsWhenASeatIsAboutToBeGivenBack: once a request of the
// client was dispatched at a seat given back, its next joins the queues only
// when a seat — its own or another client's — is about to be given back.
func TestTheNextJoinsWhenASeatIsAboutToBeGivenBack(t *testing.T) {
	g := New()
	bob := Client{Cluster: "b", User: "bob"}
	b1 := enter(t, g, bob)
	b1.Dispatched(false)
	r1 := enter(t, g, alice)
	next := queue(t, g, alice, 3)
	b1.Finishing() // a seat about to be given back, r1 still in the queues
	waits(t, next[0], "r2")
	b1.Ended()
	b1.Done()
	r1.Dispatched(false) // at the seat given back: r2 waits for the next
	waits(t, next[0], "r2")

	b2 := enter(t, g, bob)
	b2.Dispatched(false)
	b2.Finishing() // another client's seat: r2 joins
	r2 := goesOn(t, next[0], "r2")
	waits(t, next[1], "r3")
	b2.Ended()
	b2.Done()
	r2.Dispatched(false)
	waits(t, next[1], "r3")

	r1.Finishing() // alice's own seat: r3 joins
	r1.Finishing() // a second call changes nothing
	r3 := goesOn(t, next[1], "r3")
	waits(t, next[2], "r4")
	r1.Done()
	r3.Done() // rejected in the queues; r2 is served
	waits(t, next[2], "r4")
	r2.Done() // nothing served, nothing in the queues: r4 joins
	goesOn(t, next[2], "r4").Done()
	forgotten(t, g)
}

func TestARequestWaitsNoLongerThanItsContext(t *testing.T) {
	g := New()
	first := enter(t, g, alice)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	late, err := g.Enter(ctx, alice)
	if err != context.DeadlineExceeded || late != nil {
		t.Errorf("a request whose wait ran out got %v, %v; want no ticket and %v", late, err, context.DeadlineExceeded)
	}
	late.Dispatched(false) // a nil ticket does nothing
	late.Finishing()
	late.Ended()
	late.Done()

	// The next waits for the first still.
	next := queue(t, g, alice, 1)
	waits(t, next[0], "alice's next request")
	first.Done()
	goesOn(t, next[0], "alice's next request").Done()
	forgotten(t, g)
}

func TestBeyondMaxWaitingRequestsAreTurnedBack(t *testing.T) {
	g := New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := enter(t, g, alice)
	var held []<-chan *Ticket
	for range MaxWaiting {
		held = append(held, entered(ctx, g, alice))
	}
	for deadline := time.Now().Add(10 * time.Second); waitingFor(g, alice) < MaxWaiting; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of alice's requests wait, want %d", waitingFor(g, alice), MaxWaiting)
		}
	}
	if ticket, err := g.Enter(ctx, alice); err != ErrFull || ticket != nil {
		t.Errorf("a request beyond MaxWaiting got %v, %v; want no ticket and ErrFull", ticket, err)
	}
	// Bob, in the same workspace, still goes on.
	enter(t, g, Client{Cluster: "a", User: "bob"}).Done()
	cancel()
	first.Done()
	for _, ch := range held {
		goesOn(t, ch, "a waiting request, let in or its context ended").Done()
	}
	forgotten(t, g)
}

// TestASeatGivenBackWithNoneInTheQueuesIsFilled: a seat given back while
// no request let in waits in the queues to take it is spare, and a client
// whose requests are served lets its next in to take it — at once if it has
// none in the queues, else once its request there is dispatched — where it
// would otherwise wait for the next seat's end. The request let in to take
// the spare seat did not find one free: its client's next waits for a seat's
// end again.
func TestASeatGivenBackWithNoneInTheQueuesIsFilled(t *testing.T) {
	for _, dispatchFirst := range []bool{true, false} {
		g := New()
		r1 := enter(t, g, alice)
		next := queue(t, g, alice, 3)
		r1.Dispatched(false) // found a seat free: r2 joins at once …
		r2 := goesOn(t, next[0], "r2")
		r2.Dispatched(false) // … and r3
		r3 := goesOn(t, next[1], "r3")
		r1.Finishing()
		r2.Finishing() // r3 still in the queues: r4 waits
		r1.Ended()     // r3 will take r1's seat
		if dispatchFirst {
			r3.Dispatched(false)
			waits(t, next[2], "r4")
			r2.Ended() // none in the queues to take r2's seat: r4 joins
		} else {
			r2.Ended() // r2's seat is spare, but r3 is still in the queues
			waits(t, next[2], "r4")
			r3.Dispatched(false) // r4 joins
		}
		r4 := goesOn(t, next[2], "r4")
		more := queue(t, g, alice, 1)
		r4.Dispatched(false)
		waits(t, more[0], "r5")
		r3.Finishing()
		r5 := goesOn(t, more[0], "r5")
		for _, r := range []*Ticket{r1, r2, r3, r4, r5} {
			r.Done()
		}
		forgotten(t, g)
	}
}

// TestAnExemptRequestLeavesASpareSeatSpare: a request let in while a seat
// was spare and dispatched by an exempt level took no seat, and the spare one
// still lets the next client in that has room for it.
func TestAnExemptRequestLeavesASpareSeatSpare(t *testing.T) {
	g := New()
	r1 := enter(t, g, alice)
	next := queue(t, g, alice, 2)
	r1.Dispatched(false)
	r2 := goesOn(t, next[0], "r2") // r1 found a seat free
	b1 := enter(t, g, Client{Cluster: "b", User: "bob"})
	b1.Dispatched(false)
	r1.Finishing()
	b1.Finishing() // r2 in the queues: r3 waits
	r1.Ended()     // r2 will take r1's seat …
	b1.Ended()     // … and bob's is spare
	b1.Done()
	admin := enter(t, g, Client{User: "admin"})
	admin.Dispatched(true) // exempt: the seat is spare still
	r2.Dispatched(false)   // at r1's seat: r3 joins for the spare one
	r3 := goesOn(t, next[1], "r3")
	for _, r := range []*Ticket{admin, r1, r2, r3} {
		r.Done()
	}
	forgotten(t, g)
}
