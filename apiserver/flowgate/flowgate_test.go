package flowgate

import (
	"context"
	"sync"
	"testing"
	"time"
)

// entered runs Enter in a goroutine and hands its leave on once it returns.
func entered(ctx context.Context, g *Gates, c Client) <-chan func() {
	ch := make(chan func(), 1)
	go func() {
		leave, _ := g.Enter(ctx, c)
		ch <- leave
	}()
	return ch
}

// enter lets a request of c in, failing the test if it is turned back.
func enter(t *testing.T, g *Gates, c Client) func() {
	t.Helper()
	leave, err := g.Enter(context.Background(), c)
	if err != nil {
		t.Fatalf("a request of %+v turned back: %v", c, err)
	}
	return leave
}

// waits requires that ch yields nothing while the gate holds its request:
// long enough that a wrongly open gate would have let it through.
func waits(t *testing.T, ch <-chan func(), what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s went on while its client had a request in the queues", what)
	case <-time.After(50 * time.Millisecond):
	}
}

func goesOn(t *testing.T, ch <-chan func(), what string) func() {
	t.Helper()
	select {
	case leave := <-ch:
		return leave
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still waits", what)
		return nil
	}
}

func TestOneRequestOfAClientAtATimeInArrivalOrder(t *testing.T) {
	g := New()
	ctx := context.Background()
	alice := Client{Cluster: "a", User: "alice"}
	first := enter(t, g, alice)

	// Others go on: alice elsewhere, another user in her workspace, and
	// the same name outside any workspace.
	for _, c := range []Client{{Cluster: "b", User: "alice"}, {Cluster: "a", User: "bob"}, {User: "alice"}} {
		enter(t, g, c)()
	}

	// Alice's next three wait, and go on one at a time in the order they came.
	var order []int
	var mu sync.Mutex
	var lefts []chan func()
	for i := range 3 {
		ch := make(chan func(), 1)
		go func() {
			leave, _ := g.Enter(ctx, alice)
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
			ch <- leave
		}()
		lefts = append(lefts, ch)
		// Let it queue before the next one arrives.
		for deadline := time.Now().Add(10 * time.Second); waitingFor(g, alice) < i+2; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("request %d never waited", i)
			}
		}
	}
	waits(t, lefts[0], "alice's second request")
	first()
	first() // a second call lets nobody else in
	second := goesOn(t, lefts[0], "alice's second request")
	waits(t, lefts[1], "alice's third request")
	second()
	goesOn(t, lefts[1], "alice's third request")()
	goesOn(t, lefts[2], "alice's fourth request")()
	if len(order) != 3 || order[0] != 0 || order[1] != 1 || order[2] != 2 {
		t.Errorf("alice's requests went on in the order %v, want 0 1 2", order)
	}
	if n := len(g.clients); n != 0 {
		t.Errorf("%d gates kept after every request left", n)
	}
}

func TestARequestWaitsNoLongerThanItsContext(t *testing.T) {
	g := New()
	alice := Client{Cluster: "a", User: "alice"}
	first := enter(t, g, alice)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	leave, err := g.Enter(ctx, alice)
	if err != context.DeadlineExceeded {
		t.Errorf("a request whose wait ran out got %v, want %v", err, context.DeadlineExceeded)
	}
	leave() // lets nobody in: it never held the gate

	// The next waits for the first still.
	next := entered(context.Background(), g, alice)
	waits(t, next, "alice's next request")
	first()
	goesOn(t, next, "alice's next request")()
	if n := len(g.clients); n != 0 {
		t.Errorf("%d gates kept after every request left", n)
	}
}

func TestBeyondMaxWaitingRequestsAreTurnedBack(t *testing.T) {
	g := New()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	alice := Client{Cluster: "a", User: "alice"}
	first := enter(t, g, alice)
	var held []<-chan func()
	for range MaxWaiting {
		held = append(held, entered(ctx, g, alice))
	}
	for deadline := time.Now().Add(10 * time.Second); waitingFor(g, alice) < MaxWaiting+1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of alice's requests wait, want %d", waitingFor(g, alice)-1, MaxWaiting)
		}
	}
	if leave, err := g.Enter(ctx, alice); err != ErrFull {
		t.Errorf("a request beyond MaxWaiting got %v, want ErrFull", err)
	} else {
		leave()
	}
	// Bob, in the same workspace, still goes on.
	enter(t, g, Client{Cluster: "a", User: "bob"})()
	first()
	cancel()
	for _, ch := range held {
		goesOn(t, ch, "a waiting request, let in or its context ended")()
	}
	if n := len(g.clients); n != 0 {
		t.Errorf("%d gates kept after every request left", n)
	}
}

// waitingFor is how many requests of c are in the queues or waiting here.
func waitingFor(g *Gates, c Client) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e := g.clients[c]; e != nil {
		return e.users
	}
	return 0
}
