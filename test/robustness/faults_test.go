package robustness

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite" // the stall fault takes SQLite's write lock

	"github.com/warren-dev/warren/test/pgtest"
	"github.com/warren-dev/warren/test/warrentest"
)

// target is what a fault acts on.
type target struct {
	server  *warrentest.Server
	dialect string
	shard   string // Postgres schema
}

// scenario injects one kind of fault, again and again.
type scenario struct {
	name     string
	dialects []string
	// clients is how many clients run; 0 means defaultClients.
	clients int
	inject  func(ctx context.Context, t target) error
}

var scenarios = []scenario{
	{"kill-9", []string{"sqlite", "postgres"}, 0, kill},
	// Many writers keep SQLite's group commit full, so the kill lands inside a
	// burst of batched writes; the file must reopen with every acknowledged one.
	{"kill-9-burst", []string{"sqlite"}, 24, func(ctx context.Context, t target) error {
		time.Sleep(time.Duration(rand.IntN(500)) * time.Millisecond)
		return kill(ctx, t)
	}},
	{"pg-restart-fast", []string{"postgres"}, 0, func(ctx context.Context, _ target) error { return pgtest.Restart(ctx, "fast") }},
	{"pg-restart-immediate", []string{"postgres"}, 0, func(ctx context.Context, _ target) error { return pgtest.Restart(ctx, "immediate") }},
	{"pg-terminate", []string{"postgres"}, 0, terminateSessions},
	{"stall", []string{"sqlite", "postgres"}, 0, stall},
}

// kill ends warren with SIGKILL and starts it again on the same data.
func kill(_ context.Context, t target) error {
	t.server.Kill()
	return t.server.Process.Launch()
}

// terminateSessions ends every session warren holds on its shard, server side.
func terminateSessions(ctx context.Context, t target) error {
	conn, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", "warren/"+t.shard)
	return err
}

// stallFor is how long a stall holds the database.
const stallFor = 2 * time.Second

// stall holds the shard's write lock from another session (Postgres: the
// revision row; SQLite: the database's write lock) while the clients go on.
func stall(ctx context.Context, t target) error {
	if t.dialect == "postgres" {
		conn, err := pgx.Connect(ctx, pgtest.URL())
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, "SELECT current FROM "+pgx.Identifier{t.shard, "revision"}.Sanitize()+" FOR UPDATE"); err != nil {
			return fmt.Errorf("locking the revision row: %w", err)
		}
		time.Sleep(stallFor)
		return nil
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.server.DataDir, "warren.db")+"?_txlock=immediate&_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("taking SQLite's write lock: %w", err)
	}
	defer tx.Rollback()
	time.Sleep(stallFor)
	return nil
}

// shardOf returns the --shard of a server's arguments.
func shardOf(args []string) string {
	for i, a := range args {
		if a == "--shard" && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--shard="); ok {
			return v
		}
	}
	return ""
}
