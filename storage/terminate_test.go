package storage

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warren-dev/warren/test/pgtest"
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

	admin, err := pgx.Connect(ctx, pgtest.URL())
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

	writes := startBurst(s, 8, time.Minute, 0)
	terminated := 0
	for range 5 {
		time.Sleep(150 * time.Millisecond)
		terminated += terminate()
	}
	time.Sleep(150 * time.Millisecond)
	stored := writes.finish(t, s, w)
	if terminated == 0 {
		t.Fatal("no session of the shard was terminated")
	}
	t.Logf("%d sessions terminated; %d writes acknowledged, %d failed, %d stored; the watcher saw all of them",
		terminated, len(writes.acknowledged), writes.failed, stored)
}
