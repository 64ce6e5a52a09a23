package storage

import (
	"context"
	"fmt"
	"os"
	"os/exec"
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

// TestWritesAndWatchesSurvivePostgresRestart restarts the PostgreSQL server under
// writers and a watcher, once with a fast shutdown and once with an immediate one
// (a crash: the server recovers from its WAL). Writes fail while it is down and
// succeed again after; every acknowledged write is stored, and the watcher sees
// each stored object created exactly once, in revision order.
//
// It restarts the machine's test server with pg_ctlcluster, so the Makefile runs
// test packages one at a time.
func TestWritesAndWatchesSurvivePostgresRestart(t *testing.T) {
	for _, mode := range []string{"fast", "immediate"} {
		t.Run(mode, func(t *testing.T) {
			ctx := context.Background()
			b := newBackend(t, "postgres", Config{PollInterval: 200 * time.Millisecond})
			s := podStore(t, b, nil)
			start, err := b.CurrentRevision(ctx)
			if err != nil {
				t.Fatal(err)
			}
			w := watchFrom(t, s, "/pods/", start)

			var mu sync.Mutex
			acknowledged := map[string]bool{}
			failed := 0
			stop := make(chan struct{})
			var writers sync.WaitGroup
			for i := range 4 {
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
						wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
						err := s.Create(wctx, "/pods/ns/"+name, pod, nil, 0)
						cancel()
						mu.Lock()
						if err == nil {
							acknowledged[name] = true
						} else {
							failed++
						}
						mu.Unlock()
						if err != nil {
							time.Sleep(50 * time.Millisecond)
						}
					}
				}()
			}
			time.Sleep(300 * time.Millisecond)
			restartPostgres(t, mode)
			// Writes go through again once the pool has reconnected.
			deadline := time.Now().Add(30 * time.Second)
			for {
				mu.Lock()
				before := len(acknowledged)
				mu.Unlock()
				time.Sleep(300 * time.Millisecond)
				mu.Lock()
				after := len(acknowledged)
				mu.Unlock()
				if after > before {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no write succeeded within 30 s of the restart")
				}
			}
			close(stop)
			writers.Wait()

			list := &example.PodList{}
			if err := s.GetList(ctx, "/pods/", storage.ListOptions{Recursive: true, Predicate: storage.Everything}, list); err != nil {
				t.Fatal(err)
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
			if failed == 0 {
				t.Error("no write failed: the server did not go down under the writers")
			}
			t.Logf("%d writes acknowledged, %d failed during the restart, %d stored; the watcher saw all of them",
				len(acknowledged), failed, len(stored))
		})
	}
}

// restartPostgres restarts the machine's PostgreSQL cluster and waits until it
// accepts connections again.
func restartPostgres(t *testing.T, mode string) {
	t.Helper()
	versions, err := os.ReadDir("/etc/postgresql")
	if err != nil || len(versions) == 0 {
		t.Fatalf("finding the PostgreSQL cluster under /etc/postgresql: %v", err)
	}
	version := versions[len(versions)-1].Name()
	out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", mode).CombinedOutput()
	if err != nil {
		t.Fatalf("restarting PostgreSQL (%s): %v\n%s", mode, err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgx.Connect(context.Background(), postgresURL())
		if err == nil {
			conn.Close(context.Background())
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("PostgreSQL did not come back within 30 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
