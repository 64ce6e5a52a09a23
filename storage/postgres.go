package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"syscall"
	"time"

	"github.com/golang-migrate/migrate/v4/database"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"k8s.io/klog/v2"
)

// postgres stores a shard in one PostgreSQL schema. Every connection of the pool has
// the schema as its search_path, so the SQL below names tables without a schema.
type postgres struct {
	pool    *pgxpool.Pool
	schema  string // the shard's
	channel string // NOTIFY channel of the shard
	// attempts bounds how often a statement is sent when its session turns out
	// to have ended: once for every session the pool holds, as all may have
	// ended together (the server restarted, or terminated them), and once more
	// on a new one.
	attempts int
}

// openPostgres opens a pool of sessions on the shard's schema; settings, if
// any, override the server settings the URL gives.
func openPostgres(ctx context.Context, url, shard string, settings map[string]string) (*postgres, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parsing postgres URL: %w", err)
	}
	maps.Copy(cfg.ConnConfig.RuntimeParams, settings)
	cfg.ConnConfig.RuntimeParams["search_path"] = shard
	// Operators find a shard's sessions in pg_stat_activity by this name.
	cfg.ConnConfig.RuntimeParams["application_name"] = "warren/" + shard
	// Every statement is a point lookup or a key- or revision-ordered range that an
	// index serves. Left to itself, the planner chose otherwise whenever statistics
	// lagged behind a growing table, and kept the choice in the connection's cached
	// generic plan: a sequential scan planned on the empty table made each write
	// batch's key lookup O(table) (2 ms and growing at 20k rows), and a bitmap scan,
	// which loses key order, made a 500-row page sort its whole range (65 ms
	// instead of 1 ms). With both off, plans stay index scans whatever the stats.
	cfg.ConnConfig.RuntimeParams["enable_seqscan"] = "off"
	cfg.ConnConfig.RuntimeParams["enable_bitmapscan"] = "off"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to postgres: %w", err)
	}
	// Two processes starting at once may both try to create the schema; the loser's
	// error is a unique violation and the schema exists, which is what it wanted.
	create := "CREATE SCHEMA IF NOT EXISTS " + pgx.Identifier{shard}.Sanitize()
	if _, err := pool.Exec(ctx, create); err != nil {
		if _, err := pool.Exec(ctx, create); err != nil {
			pool.Close()
			return nil, fmt.Errorf("creating schema %q: %w", shard, err)
		}
	}
	return &postgres{pool: pool, schema: shard, channel: "warren_" + shard, attempts: int(cfg.MaxConns) + 1}, nil
}

// migrationDriver returns golang-migrate's driver for the shard's schema; closing it
// leaves the pool open.
func (p *postgres) migrationDriver() (database.Driver, error) {
	return migratepgx.WithInstance(stdlib.OpenDBFromPool(p.pool), &migratepgx.Config{SchemaName: p.schema})
}

func (p *postgres) close() { p.pool.Close() }

func (p *postgres) name() string { return "postgres" }

// query runs a read. The pool hands out an idle session without asking the
// server whether it still lives (it pings only those idle for over a second),
// so a read that finds its session ended before its first row runs again on
// another: reading twice is harmless, and failing would only make the client
// ask again.
func (p *postgres) query(ctx context.Context, sql string, args ...any) (cursor, error) {
	var rows cursor
	err := p.retry(ctx, sessionLost, func() error {
		rs, err := p.pool.Query(ctx, sql, args...)
		if err != nil {
			return err
		}
		// A statement sent on an ended session fails at the first row.
		if rs.Next() {
			rows = &started{cursor: rs}
			return nil
		}
		rows = rs
		return rs.Err()
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// started is a cursor whose first row Next has reached already.
type started struct {
	cursor
	read bool
}

func (c *started) Next() bool {
	if !c.read {
		c.read = true
		return true
	}
	return c.cursor.Next()
}

// snapshot runs fn in a read-only REPEATABLE READ transaction, whose statements
// all read the snapshot its first one took. A BEGIN that finds its session
// ended runs again on another, as a read does.
func (p *postgres) snapshot(ctx context.Context, fn func(read queryFunc) error) error {
	var tx pgx.Tx
	err := p.retry(ctx, sessionLost, func() (err error) {
		tx, err = p.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		return err
	})
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	return fn(func(ctx context.Context, sql string, args ...any) (cursor, error) {
		return tx.Query(ctx, sql, args...)
	})
}

// exec runs a write again only if it never reached the server: once sent, it
// may have committed however its session ended.
func (p *postgres) exec(ctx context.Context, sql string, args ...any) (int64, error) {
	var tag pgconn.CommandTag
	err := p.retry(ctx, pgconn.SafeToRetry, func() (err error) {
		tag, err = p.pool.Exec(ctx, sql, args...)
		return err
	})
	return tag.RowsAffected(), err
}

// retry runs fn until it succeeds, fails in a way retryable does not take, ctx
// ends, or it has run p.attempts times.
func (p *postgres) retry(ctx context.Context, retryable func(error) bool, fn func() error) error {
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt >= p.attempts || ctx.Err() != nil || !retryable(err) {
			return err
		}
	}
}

// sessionLost tells whether err is the end of the session a statement was sent
// on, not a failure of the statement itself (which would fail again): the
// session was terminated (57P01: pg_terminate_backend, a server shutdown), ended
// by a crash of another session (57P02) or by idle_session_timeout (57P05), or its
// connection dropped. A new session the server refused (a ConnectError, such as
// 57P03 "the database system is starting up") is not: the next would be refused
// too, at once.
func sessionLost(err error) bool {
	var connect *pgconn.ConnectError
	if errors.As(err, &connect) {
		return false
	}
	if pgconn.SafeToRetry(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P05"
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// reclaim leaves the space of compacted log rows to autovacuum.
func (p *postgres) reclaim(context.Context) error { return nil }

// databaseBytes sums the sizes of the shard schema's tables with their indexes
// and TOAST. It reads the catalog and takes no lock that a write waits for.
func (p *postgres) databaseBytes(ctx context.Context) (int64, error) {
	var n int64
	err := one(ctx, p.query, []any{&n},
		`SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
		   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		  WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'm')`)
	if err != nil {
		return 0, fmt.Errorf("reading the size of the shard's tables: %w", err)
	}
	return n, nil
}

// listen announces the commits of other processes until ctx ends: every batch
// notifies on the shard's channel in its transaction, with its last revision,
// so an announcement arrives after the commit. It listens on a connection of
// its own; when that breaks, notifications may have been lost, so after
// reconnecting it announces revision 0 (unknown) and the reader catches up.
func (p *postgres) listen(ctx context.Context, announce func(revision int64)) {
	logger := klog.FromContext(ctx)
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := p.listenOnce(ctx, announce)
		if ctx.Err() != nil {
			return
		}
		logger.Error(err, "Listening for writes of other processes failed; retrying", "channel", p.channel, "backoff", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (p *postgres) listenOnce(ctx context.Context, announce func(int64)) error {
	pooled, err := p.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// A connection that has LISTENed must not go back to the pool.
	conn := pooled.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{p.channel}.Sanitize()); err != nil {
		return err
	}
	// Writes may have committed before LISTEN took effect.
	announce(0)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		revision, err := strconv.ParseInt(n.Payload, 10, 64)
		if err != nil {
			revision = 0
		}
		announce(revision)
	}
}

// The leader of a shard holds a transaction-level advisory lock, named after
// the shard's schema, in a transaction it keeps open on a session of its own,
// which it renews every leaderRenewal. PostgreSQL ends the session, and so
// the lock, when the process dies (at once: its socket closes) or stops
// renewing for leaderTimeout (hung, stopped or cut off), so another process
// takes over within seconds; the old leader, when it can tell, stops leading
// first. Others try for the lock every leaderRenewal.
const (
	leaderRenewal = time.Second
	leaderTimeout = 5 * time.Second
)

func (p *postgres) elect(ctx context.Context, lead func(context.Context)) {
	logger := klog.FromContext(ctx)
	for ctx.Err() == nil {
		err := p.electOnce(ctx, lead)
		if ctx.Err() != nil {
			return
		}
		logger.Error(err, "Taking part in the election of the shard's leader failed; retrying", "shard", p.schema)
		sleepFor(ctx, leaderRenewal)
	}
}

// electOnce tries for the lock on a session of its own and, once it holds
// it, leads until the session fails or ctx ends.
func (p *postgres) electOnce(ctx context.Context, lead func(context.Context)) error {
	pooled, err := p.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// The session holds the lock: it must not go back to the pool.
	conn := pooled.Hijack()
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, fmt.Sprintf("SET idle_in_transaction_session_timeout = %d", leaderTimeout.Milliseconds())); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
		return err
	}
	lock := "warren/" + p.schema
	for {
		var held bool
		if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))", lock).Scan(&held); err != nil {
			return err
		}
		if held {
			break
		}
		if !sleepFor(ctx, leaderRenewal) {
			return nil
		}
	}
	term, end := context.WithCancel(ctx)
	defer end()
	lead(term)
	for sleepFor(ctx, leaderRenewal) {
		renew, cancel := context.WithTimeout(ctx, leaderTimeout/2)
		_, err := conn.Exec(renew, "SELECT 1")
		cancel()
		if err != nil {
			return fmt.Errorf("renewing the leadership of shard %s: %w", p.schema, err)
		}
	}
	return nil
}

// sleepFor waits d, and tells whether ctx is still alive.
func sleepFor(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// writeBatch takes two round trips: one pipeline begins, locks the revision row
// and reads the keys; the other writes and commits.
//
// A batch whose session turns out to have ended before its writes were sent
// runs again on another: until then it has only read and locked, and the end of
// the session undid that. Once they were sent, the commit may have happened
// whatever the error, so the batch fails and no write of it is acknowledged —
// unless pgconn tells that nothing reached the server.
func (p *postgres) writeBatch(ctx context.Context, keys, clusters []string, decide func(int64, map[string]row, map[string]bool) batchWrite) error {
	sent := false
	return p.retry(ctx, func(err error) bool { return !sent && sessionLost(err) || pgconn.SafeToRetry(err) }, func() (err error) {
		sent, err = p.writeBatchOnce(ctx, keys, clusters, decide)
		return err
	})
}

// writeBatchOnce writes a batch on one session; sent tells whether the writes
// were sent.
func (p *postgres) writeBatchOnce(ctx context.Context, keys, clusters []string, decide func(int64, map[string]row, map[string]bool) batchWrite) (sent bool, err error) {
	pooled, err := p.pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("acquiring a connection: %w", err)
	}
	conn := pooled.Conn()
	open := false
	defer func() {
		if open {
			// A failed pipeline leaves the transaction open or aborted. If the
			// connection cannot even roll back, it must not serve again.
			if _, rbErr := conn.Exec(context.WithoutCancel(ctx), "ROLLBACK"); rbErr != nil {
				conn.Close(context.WithoutCancel(ctx))
			}
		}
		pooled.Release()
	}()

	var read pgx.Batch
	read.Queue("BEGIN")
	var current int64
	read.Queue(`SELECT current FROM revision WHERE id = 1 FOR UPDATE`).QueryRow(func(r pgx.Row) error {
		return r.Scan(&current)
	})
	live := make(map[string]row, len(keys))
	read.Queue(`SELECT key, revision, value FROM objects WHERE key = ANY($1)`, keys).Query(func(rows pgx.Rows) error {
		var x row
		_, err := pgx.ForEachRow(rows, []any{&x.key, &x.revision, &x.value}, func() error {
			live[x.key] = x
			return nil
		})
		return err
	})
	erased := map[string]bool{}
	if len(clusters) > 0 {
		read.Queue(`SELECT cluster FROM erased WHERE cluster = ANY($1)`, clusters).Query(func(rows pgx.Rows) error {
			var c string
			_, err := pgx.ForEachRow(rows, []any{&c}, func() error {
				erased[c] = true
				return nil
			})
			return err
		})
	}
	open = true
	if err := conn.SendBatch(ctx, &read).Close(); err != nil {
		return false, fmt.Errorf("locking the revision and reading the batch's keys: %w", err)
	}

	w := decide(current, live, erased)
	if len(w.log) == 0 && len(w.fences) == 0 && len(w.revived) == 0 {
		return false, nil
	}
	write := postgresWrites(w, p.channel)
	write.Queue("COMMIT")
	if err := conn.SendBatch(ctx, write).Close(); err != nil {
		return true, fmt.Errorf("writing and committing: %w", err)
	}
	open = false
	return true, nil
}

// upsertColumns turns rows into the column arrays that unnest takes.
func upsertColumns(us []upsert) (keys, clusters, namespaces, names []string, revisions []int64, expiresAt []*int64, values [][]byte) {
	n := len(us)
	keys, clusters, namespaces, names = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	revisions, expiresAt, values = make([]int64, n), make([]*int64, n), make([][]byte, n)
	for i, u := range us {
		keys[i], clusters[i], namespaces[i], names[i] = u.key, u.cluster, u.namespace, u.name
		revisions[i], values[i] = u.revision, u.value
		if u.expiresAt != 0 {
			expiresAt[i] = &us[i].expiresAt
		}
	}
	return keys, clusters, namespaces, names, revisions, expiresAt, values
}

// postgresWrites queues the statements that store w, each for all rows at once.
func postgresWrites(w batchWrite, channel string) *pgx.Batch {
	var batch pgx.Batch
	if len(w.fences) > 0 {
		batch.Queue(`INSERT INTO erased (cluster) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING`, w.fences)
	}
	if len(w.revived) > 0 {
		batch.Queue(`DELETE FROM erased WHERE cluster = ANY($1)`, w.revived)
	}
	if len(w.log) == 0 {
		return &batch
	}
	n := len(w.log)
	revisions, keys, deleted := make([]int64, n), make([]string, n), make([]bool, n)
	prevRevisions, prevValues := make([]int64, n), make([][]byte, n)
	for i, e := range w.log {
		revisions[i], keys[i], deleted[i], prevRevisions[i], prevValues[i] = e.revision, e.key, e.value == nil, e.prevRevision, e.prevValue
	}
	batch.Queue(`INSERT INTO log (revision, key, deleted, prev_revision, prev_value)
		SELECT * FROM unnest($1::bigint[], $2::text[], $3::boolean[], $4::bigint[], $5::bytea[])`,
		revisions, keys, deleted, prevRevisions, prevValues)
	// New keys are inserted and stored ones updated, each kind in one statement:
	// a plain insert is cheaper than an insert that may turn into an update.
	var inserts, updates []upsert
	for _, u := range w.upserts {
		if u.stored {
			updates = append(updates, u)
		} else {
			inserts = append(inserts, u)
		}
	}
	if len(inserts) > 0 {
		keys, clusters, namespaces, names, revisions, expiresAt, values := upsertColumns(inserts)
		batch.Queue(`INSERT INTO objects (key, cluster, namespace, name, revision, expires_at, value)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bytea[])`,
			keys, clusters, namespaces, names, revisions, expiresAt, values)
	}
	if len(updates) > 0 {
		keys, _, _, _, revisions, expiresAt, values := upsertColumns(updates)
		batch.Queue(`UPDATE objects o SET revision = u.revision, expires_at = u.expires_at, value = u.value
			  FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bytea[]) AS u (key, revision, expires_at, value)
			 WHERE o.key = u.key`,
			keys, revisions, expiresAt, values)
	}
	if len(w.deletes) > 0 {
		batch.Queue(`DELETE FROM objects WHERE key = ANY($1)`, w.deletes)
	}
	batch.Queue(`UPDATE revision SET current = $1 WHERE id = 1`, w.revision)
	// The notification is delivered at commit, in commit order, to every process
	// listening on the shard.
	batch.Queue(`SELECT pg_notify($1, $2)`, channel, fmt.Sprint(w.revision))
	return &batch
}
