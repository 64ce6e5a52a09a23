package storage

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
)

// burst is writers creating pods in "ns" until stopped, while a fault is injected:
// it records which creates were acknowledged and how many failed.
type burst struct {
	stop    chan struct{}
	writers sync.WaitGroup

	mu           sync.Mutex
	acknowledged map[string]bool
	failed       int
}

// startBurst starts writers; each create may take up to timeout, and a writer
// whose create failed pauses before the next.
func startBurst(s *Store, writers int, timeout, pause time.Duration) *burst {
	b := &burst{stop: make(chan struct{}), acknowledged: map[string]bool{}}
	for i := range writers {
		b.writers.Add(1)
		go func() {
			defer b.writers.Done()
			for n := 0; ; n++ {
				select {
				case <-b.stop:
					return
				default:
				}
				name := fmt.Sprintf("w%d-%05d", i, n)
				pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}}
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				err := s.Create(ctx, "/pods/ns/"+name, pod, nil, 0)
				cancel()
				b.mu.Lock()
				if err == nil {
					b.acknowledged[name] = true
				} else {
					b.failed++
				}
				b.mu.Unlock()
				if err != nil {
					time.Sleep(pause)
				}
			}
		}()
	}
	return b
}

func (b *burst) acknowledgedCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.acknowledged)
}

// finish stops the writers and checks the outcome: every acknowledged create is
// stored, and w (a watch of /pods/ from before the burst) sees each stored pod
// created exactly once, in revision order. It returns how many pods are stored.
func (b *burst) finish(t *testing.T, s *Store, w watch.Interface) int {
	t.Helper()
	close(b.stop)
	b.writers.Wait()
	list := &example.PodList{}
	if err := s.GetList(context.Background(), "/pods/", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, list); err != nil {
		t.Fatalf("listing after the fault: %v", err)
	}
	stored := map[string]bool{}
	for _, pod := range list.Items {
		stored[pod.Name] = true
	}
	for name := range b.acknowledged {
		if !stored[name] {
			t.Errorf("acknowledged write %s is not stored", name)
		}
	}
	seen := map[string]bool{}
	var last uint64
	for len(seen) < len(stored) {
		ev := nextEvent(t, w)
		if ev.Type != watch.Added {
			t.Fatalf("unexpected %s event: %v", ev.Type, ev.Object)
		}
		pod := ev.Object.(*example.Pod)
		rv, _ := strconv.ParseUint(pod.ResourceVersion, 10, 64)
		if rv <= last || seen[pod.Name] || !stored[pod.Name] {
			t.Fatalf("event for %s at %d after %d (seen before: %v, stored: %v)", pod.Name, rv, last, seen[pod.Name], stored[pod.Name])
		}
		seen[pod.Name], last = true, rv
	}
	return len(stored)
}
