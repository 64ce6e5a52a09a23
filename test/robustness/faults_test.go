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
	// server is the process the watcher uses; servers are all of them, each
	// serving the shard to its share of the clients.
	server  *warrentest.Server
	servers []*warrentest.Server
	dialect string
	shard   string // Postgres schema
	// pair, if set, is the replicated PostgreSQL the shard is on, instead of
	// the machine's server.
	pair *pgtest.Pair
}

// scenario injects one kind of fault, again and again.
type scenario struct {
	name     string
	dialects []string
	// clients is how many clients run; 0 means defaultClients.
	clients int
	// processes is how many warren processes serve the shard; 0 means 1.
	processes int
	// replicated puts the shard on a primary with a synchronous standby of
	// its own.
	replicated bool
	inject     func(ctx context.Context, t target) error
}

var scenarios = []scenario{
	{name: "kill-9", dialects: []string{"sqlite", "postgres"}, inject: kill},
	// Many writers keep SQLite's group commit full, so the kill lands inside a
	// burst of batched writes; the file must reopen with every acknowledged one.
	{name: "kill-9-burst", dialects: []string{"sqlite"}, clients: 24, inject: func(ctx context.Context, t target) error {
		time.Sleep(time.Duration(rand.IntN(500)) * time.Millisecond)
		return kill(ctx, t)
	}},
	// Two processes serve the shard, the clients split between them; the one
	// leading the shard is killed and started again, so the lead moves.
	{name: "kill-9-leader", dialects: []string{"postgres"}, processes: 2, inject: killLeader},
	// The primary crashes and the standby is promoted; the old primary
	// becomes its synchronous standby for the next failover.
	{name: "pg-failover", dialects: []string{"postgres"}, replicated: true, inject: func(ctx context.Context, t target) error { return t.pair.Failover(ctx) }},
	{name: "pg-restart-fast", dialects: []string{"postgres"}, inject: func(ctx context.Context, _ target) error { return pgtest.Restart(ctx, "fast") }},
	{name: "pg-restart-immediate", dialects: []string{"postgres"}, inject: func(ctx context.Context, _ target) error { return pgtest.Restart(ctx, "immediate") }},
	{name: "pg-terminate", dialects: []string{"postgres"}, inject: terminateSessions},
	{name: "stall", dialects: []string{"sqlite", "postgres"}, inject: stall},
}

// kill ends warren with SIGKILL and starts it again on the same data.
func kill(_ context.Context, t target) error {
	t.server.Kill()
	return t.server.Process.Launch()
}

// killLeader kills, with SIGKILL, the process that leads the shard (as its
// /metrics says) and starts it again. Right after a kill the lead may be
// vacant for a second: it waits for a leader.
func killLeader(_ context.Context, t target) error {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, s := range t.servers {
			leads, err := s.Leads()
			if err != nil {
				return err
			}
			if leads {
				s.Kill()
				return s.Process.Launch()
			}
		}
	}
	return fmt.Errorf("none of %d processes leads the shard", len(t.servers))
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
