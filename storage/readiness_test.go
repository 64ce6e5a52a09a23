package storage

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"k8s.io/apiserver/pkg/storage"

	"github.com/warren-dev/warren/test/pgtest"
)

// TestReadinessFollowsTheDatabase makes the shard's tables unreachable (its schema
// renamed away) and back: the store turns unready within a few polls, then ready
// again, and a closed backend is never ready.
func TestReadinessFollowsTheDatabase(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, "postgres", Config{PollInterval: 50 * time.Millisecond})
	s := podStore(t, b, nil)
	waitFor := func(what string, ready bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for (s.ReadinessCheck() == nil) != ready {
			if time.Now().After(deadline) {
				t.Fatalf("store not %s after 10 s: %v", what, s.ReadinessCheck())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("ready", true)

	conn, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rename := func(from, to string) {
		t.Helper()
		if _, err := conn.Exec(ctx, "ALTER SCHEMA "+pgx.Identifier{from}.Sanitize()+" RENAME TO "+pgx.Identifier{to}.Sanitize()); err != nil {
			t.Fatal(err)
		}
	}
	away := b.cfg.Shard + "_away"
	rename(b.cfg.Shard, away)
	waitFor("unready", false)
	if err := s.ReadinessCheck(); !errors.Is(err, storage.ErrStorageNotReady) {
		t.Errorf("unready store says %v, want storage.ErrStorageNotReady", err)
	}
	rename(away, b.cfg.Shard)
	waitFor("ready again", true)

	b.Close()
	if err := s.ReadinessCheck(); !errors.Is(err, storage.ErrStorageNotReady) {
		t.Errorf("closed store says %v, want storage.ErrStorageNotReady", err)
	}
}
