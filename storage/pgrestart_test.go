package storage

import (
	"context"
	"testing"
	"time"

	"github.com/warren-dev/warren/test/pgtest"
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

			writes := startBurst(s, 4, 5*time.Second, 50*time.Millisecond)
			time.Sleep(300 * time.Millisecond)
			if err := pgtest.Restart(ctx, mode); err != nil {
				t.Fatal(err)
			}
			// Writes go through again once the pool has reconnected.
			deadline := time.Now().Add(30 * time.Second)
			for {
				before := writes.acknowledgedCount()
				time.Sleep(300 * time.Millisecond)
				if writes.acknowledgedCount() > before {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no write succeeded within 30 s of the restart")
				}
			}
			stored := writes.finish(t, s, w)
			if writes.failed == 0 {
				t.Error("no write failed: the server did not go down under the writers")
			}
			t.Logf("%d writes acknowledged, %d failed during the restart, %d stored; the watcher saw all of them",
				len(writes.acknowledged), writes.failed, stored)
		})
	}
}
