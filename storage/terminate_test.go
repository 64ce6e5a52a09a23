package storage

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
)

// TestStoreRecoversWhenPostgresTerminatesItsConnections terminates every session
// of the shard (pg_terminate_backend) again and again while writers and a watcher
// run: writes in flight may fail, but the store reconnects, every acknowledged
// write is stored, and the watcher sees each stored object created exactly once,
// in revision order, even though its LISTEN connection was cut.
func TestStoreRecoversWhenPostgresTerminatesItsConnections(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, "postgres", Config{PollInterval: 200 * time.Millisecond})
	s := podStore(t, b, nil)
	start, err := b.CurrentRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w := watchFrom(t, s, "/pods/", start)

	admin, err := pgx.Connect(ctx, postgresURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	terminate := func() int {
		var n int
		err := admin.QueryRow(ctx,
			`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1`,
			"warren/"+b.cfg.Shard).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	var mu sync.Mutex
	acknowledged := map[string]bool{}
	failed := 0
	stop := make(chan struct{})
	var writers sync.WaitGroup
	for i := range 8 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("w%d-%05d", i, n)
				pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}}
				err := s.Create(ctx, "/pods/ns/"+name, pod, nil, 0)
				mu.Lock()
				if err == nil {
					acknowledged[name] = true
				} else {
					failed++
				}
				mu.Unlock()
			}
		}()
	}
	terminated := 0
	for range 5 {
		time.Sleep(150 * time.Millisecond)
		terminated += terminate()
	}
	time.Sleep(150 * time.Millisecond)
	close(stop)
	writers.Wait()
	if terminated == 0 {
		t.Fatal("no session of the shard was terminated")
	}

	// The store is usable again, and stores every acknowledged write.
	list := &example.PodList{}
	if err := s.GetList(ctx, "/pods/", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, list); err != nil {
		t.Fatalf("listing after the terminations: %v", err)
	}
	stored := map[string]bool{}
	for _, pod := range list.Items {
		stored[pod.Name] = true
	}
	for name := range acknowledged {
		if !stored[name] {
			t.Errorf("acknowledged write %s is not stored", name)
		}
	}

	// The watcher sees exactly the stored objects, in order, once each.
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
	t.Logf("%d sessions terminated; %d writes acknowledged, %d failed, %d stored; the watcher saw all of them",
		terminated, len(acknowledged), failed, len(stored))
}
