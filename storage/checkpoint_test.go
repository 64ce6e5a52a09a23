package storage

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"
)

// TestCompactionDoesNotStallWrites: on SQLite, a compaction's checkpoint
// waits for no reader: with a long read holding an old snapshot (a list
// paging through a large workspace), the compaction returns, and writes go on,
// while the read still holds its snapshot.
func TestCompactionDoesNotStallWrites(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, "sqlite", Config{CompactionInterval: -1})
	s := podStore(t, b, nil)
	for i := range 20 {
		createPod(ctx, t, s, "c", fmt.Sprint("before-", i))
	}
	db, err := sql.Open("sqlite", "file:"+b.cfg.Storage+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	read, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer read.Rollback()
	var n int
	if err := read.QueryRowContext(ctx, `SELECT count(*) FROM objects`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	// Changes after the reader's snapshot: the WAL cannot be reset under it.
	var last int64
	for i := range 20 {
		last = revisionOf(t, createPod(ctx, t, s, "c", fmt.Sprint("after-", i)))
	}

	compacted := make(chan error, 1)
	go func() { compacted <- b.Compact(ctx, last) }()
	select {
	case err := <-compacted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the compaction waits for the long read")
	}
	createPod(ctx, t, s, "c", "during")
	if err := read.QueryRowContext(ctx, `SELECT count(*) FROM objects`).Scan(&n); err != nil || n != 20 {
		t.Errorf("the long read's snapshot: %d objects, %v; want the 20 it began with", n, err)
	}
}
