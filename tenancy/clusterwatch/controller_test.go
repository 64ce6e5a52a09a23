package clusterwatch

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/warren-dev/warren/tenancy/logicalcluster"
)

// switchable is a Leader the test turns on and off; Leading polls it.
type switchable struct {
	mu   sync.Mutex
	term context.Context
	end  context.CancelFunc
}

func (s *switchable) Leading(ctx context.Context) (context.Context, context.CancelFunc, bool) {
	for {
		s.mu.Lock()
		term := s.term
		s.mu.Unlock()
		if term != nil && term.Err() == nil {
			lead, cancel := context.WithCancel(term)
			return lead, cancel, true
		}
		select {
		case <-ctx.Done():
			return nil, nil, false
		case <-time.After(time.Millisecond):
		}
	}
}

// set begins a term (on) or ends the current one.
func (s *switchable) set(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.end != nil {
		s.end()
	}
	s.term, s.end = nil, nil
	if on {
		s.term, s.end = context.WithCancel(context.Background())
	}
}

// TestControllerReconcilesOnlyWhileLeading: under a leader, a controller
// reconciles nothing while this process follows — what changes meanwhile waits,
// and what is deleted meanwhile is forgotten — and everything that waits once
// a term begins; a term's end stops it again.
func TestControllerReconcilesOnlyWhileLeading(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := &restartable{opened: make(chan struct{}, 10)}
	var mu sync.Mutex
	var synced []string
	c := &Controller{Name: "test", Source: src, Sync: func(_ context.Context, r Ref) error {
		mu.Lock()
		defer mu.Unlock()
		synced = append(synced, r.Name)
		return nil
	}}
	leader := &switchable{}
	go c.Run(WithLeader(ctx, leader))
	<-src.opened
	w := src.watches[0]
	object := func(name string) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: "1", Annotations: map[string]string{logicalcluster.Annotation: "c"}}}
	}
	reconciled := func() []string {
		mu.Lock()
		defer mu.Unlock()
		out := slices.Clone(synced)
		slices.Sort(out)
		return out
	}
	expect := func(what string, want ...string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !slices.Equal(reconciled(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: reconciled %v, want %v", what, reconciled(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	w.Add(object("a"))
	w.Add(object("b"))
	w.Delete(object("b"))
	c.Enqueue(Ref{Cluster: "c", Name: "x"})
	time.Sleep(100 * time.Millisecond)
	expect("while following")
	leader.set(true)
	expect("once leading", "a", "x")
	leader.set(false)
	w.Add(object("d"))
	time.Sleep(100 * time.Millisecond)
	expect("after the term ended", "a", "x")
	leader.set(true)
	expect("in the next term", "a", "d", "x")
}

// TestSyncSeesTheNewestRevisionOfItsEvents: a reconcile learns the newest
// resource version of the events that queued its object, and none for an
// object queued by Enqueue.
func TestSyncSeesTheNewestRevisionOfItsEvents(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := &restartable{opened: make(chan struct{}, 10)}
	seen := make(chan [2]string, 10)
	c := &Controller{Name: "test", Source: src, Sync: func(ctx context.Context, r Ref) error {
		seen <- [2]string{r.Name, SeenRevision(ctx)}
		return nil
	}}
	leader := &switchable{}
	go c.Run(WithLeader(ctx, leader))
	<-src.opened
	w := src.watches[0]
	object := func(rv string) *metav1.PartialObjectMetadata {
		return &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: "a", ResourceVersion: rv, Annotations: map[string]string{logicalcluster.Annotation: "c"}}}
	}
	// While following, the changes wait: both events of a queue it once.
	w.Add(object("5"))
	w.Modify(object("7"))
	c.Enqueue(Ref{Cluster: "c", Name: "x"})
	time.Sleep(100 * time.Millisecond)
	leader.set(true)
	got := map[string]string{}
	for range 2 {
		select {
		case s := <-seen:
			got[s[0]] = s[1]
		case <-time.After(5 * time.Second):
			t.Fatalf("reconciled %v, want a and x", got)
		}
	}
	if got["a"] != "7" || got["x"] != "" {
		t.Fatalf("seen revisions %v, want a at 7 and x at none", got)
	}
}
