package storage

import (
	"context"
	"errors"
	neturl "net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-migrate/migrate/v4"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/warren-dev/warren/test/pgtest"
)

// withSettings opens a Postgres shard whose --storage URL sets server settings
// as README's "Production settings" shows (statement_timeout=30s): pgx sends
// what it does not know itself to every session it opens.
func withSettings(t *testing.T, settings map[string]string) *Backend {
	t.Helper()
	u, err := neturl.Parse(pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for name, value := range settings {
		q.Set(name, value)
	}
	u.RawQuery = q.Encode()
	cfg := Config{Shard: pgtest.Schema(t, "test_"), Storage: u.String()}
	b, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("opening %s: %v", cfg.Storage, err)
	}
	t.Cleanup(b.Close)
	return b
}

// locking runs statement in a transaction of an admin session of its own and
// returns the transaction, which holds the locks the statement took until it
// is rolled back.
func locking(ctx context.Context, t *testing.T, statement string) pgx.Tx {
	t.Helper()
	admin, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(ctx) })
	tx, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, statement); err != nil {
		t.Fatal(err)
	}
	return tx
}

// TestMigrationOutlastsTheURLsTimeouts opens a shard whose URL sets a
// statement_timeout and a lock_timeout of 100 ms while another session holds
// the shard's migration table for longer: serving statements are bounded by
// them, but the migration that Open runs first waits, as DDL rewriting a large
// table or another process migrating the shard would make it wait.
func TestMigrationOutlastsTheURLsTimeouts(t *testing.T) {
	ctx := context.Background()
	shard := pgtest.Schema(t, "test_")
	if err := Migrate(ctx, pgtest.URL(), shard, func(m *migrate.Migrate) error { return m.Up() }); err != nil {
		t.Fatal(err)
	}
	tx := locking(ctx, t, "LOCK TABLE "+pgx.Identifier{shard, "schema_migrations"}.Sanitize()+" IN ACCESS EXCLUSIVE MODE")
	const held = time.Second
	released := make(chan error, 1)
	go func() {
		time.Sleep(held)
		released <- tx.Rollback(ctx)
	}()

	u, err := neturl.Parse(pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("statement_timeout", "100ms")
	q.Set("lock_timeout", "100ms")
	u.RawQuery = q.Encode()
	start := time.Now()
	b, err := Open(ctx, Config{Shard: shard, Storage: u.String()})
	if err := <-released; err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatalf("opening the shard while its migration table was locked for %v: %v", held, err)
	}
	defer b.Close()
	if waited := time.Since(start); waited < held {
		t.Errorf("Open returned after %v, before the migration table was released after %v", waited, held)
	}
	var timeout string
	if err := one(ctx, b.db.query, []any{&timeout}, "SHOW statement_timeout"); err != nil {
		t.Fatal(err)
	}
	if timeout != "100ms" {
		t.Errorf("statement_timeout of the serving sessions is %q, want the URL's 100ms", timeout)
	}
}

// TestStatementTimeoutInTheURLBoundsStatements sets statement_timeout in the
// URL: the pool's sessions have it, a longer statement fails with 57014 and is
// not run again, and a write stuck behind another session's lock on the shard's
// revision fails instead of hanging, and succeeds once the lock is gone.
func TestStatementTimeoutInTheURLBoundsStatements(t *testing.T) {
	ctx := context.Background()
	b := withSettings(t, map[string]string{"statement_timeout": "500ms"})
	s := podStore(t, b, nil)

	var timeout string
	if err := one(ctx, b.db.query, []any{&timeout}, "SHOW statement_timeout"); err != nil {
		t.Fatal(err)
	}
	if timeout != "500ms" {
		t.Errorf("statement_timeout of the pool's sessions is %q, want 500ms", timeout)
	}

	start := time.Now()
	err := one(ctx, b.db.query, []any{new(string)}, "SELECT pg_sleep(5)::text")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
		t.Errorf("a 5 s statement: %v, want SQLSTATE 57014", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("a 5 s statement failed after %v, want one timeout of 500ms: it was run again", elapsed)
	}

	tx := locking(ctx, t, "SELECT current FROM "+pgx.Identifier{b.cfg.Shard, "revision"}.Sanitize()+" FOR UPDATE")
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	start = time.Now()
	err = s.Create(wait, podKey("ns", "a"), newPod("ns", "a"), nil, 0)
	if err == nil || !strings.Contains(err.Error(), "SQLSTATE 57014") {
		t.Errorf("a create waiting for the revision lock: %v, want a failure with SQLSTATE 57014", err)
	}
	t.Logf("a create waiting for the revision lock failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	createPod(ctx, t, s, "ns", "a")
}

// TestLeaderKeepsLeadingUnderShortTimeoutsInTheURL sets a statement_timeout
// and an idle_in_transaction_session_timeout far shorter than the leader's
// renewal interval in the URL. The leader's transaction stays open across
// renewals, but each of its statements is short and its session sets its own
// idle timeout, so one session keeps the lock and the term goes on.
func TestLeaderKeepsLeadingUnderShortTimeoutsInTheURL(t *testing.T) {
	ctx := context.Background()
	b := withSettings(t, map[string]string{
		"statement_timeout":                   "100ms",
		"idle_in_transaction_session_timeout": "300ms",
	})
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	term, end, ok := b.Leadership().Leading(wait)
	if !ok {
		t.Fatal("not leading 10 s after opening")
	}
	defer end()

	admin, err := pgx.Connect(ctx, pgtest.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	// holder is the session that holds the shard's advisory lock.
	holder := func() int32 {
		t.Helper()
		var pid int32
		err := admin.QueryRow(ctx, `SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid)
			 WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1`, "warren/"+b.cfg.Shard).Scan(&pid)
		if err != nil {
			t.Fatalf("finding the session holding the shard's lock: %v", err)
		}
		return pid
	}
	first := holder()
	time.Sleep(3*leaderRenewal + leaderRenewal/2)
	if err := term.Err(); err != nil {
		t.Fatalf("the term ended: %v", err)
	}
	if last := holder(); last != first {
		t.Errorf("the lock moved from session %d to %d: the leader's session ended", first, last)
	}
}
