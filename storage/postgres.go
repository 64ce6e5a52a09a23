package storage

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-migrate/migrate/v4/database"
	migratepgx "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/jackc/pgx/v5"
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
}

func openPostgres(ctx context.Context, url, shard string) (*postgres, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parsing postgres URL: %w", err)
	}
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
	return &postgres{pool: pool, schema: shard, channel: "warren_" + shard}, nil
}

// migrationDriver returns golang-migrate's driver for the shard's schema; closing it
// leaves the pool open.
func (p *postgres) migrationDriver() (database.Driver, error) {
	return migratepgx.WithInstance(stdlib.OpenDBFromPool(p.pool), &migratepgx.Config{SchemaName: p.schema})
}

func (p *postgres) close() { p.pool.Close() }

func (p *postgres) get(ctx context.Context, key string) (*row, int64, error) {
	var current int64
	var revision *int64
	var value []byte
	err := p.pool.QueryRow(ctx,
		`SELECT r.current, o.revision, o.value
		   FROM revision r LEFT JOIN objects o ON o.key = $1
		  WHERE r.id = 1`, key).Scan(&current, &revision, &value)
	if err != nil {
		return nil, 0, fmt.Errorf("reading %q: %w", key, err)
	}
	if revision == nil {
		return nil, current, nil
	}
	return &row{key: key, revision: *revision, value: value}, current, nil
}

// A read is one statement, so it sees one snapshot without a transaction and costs
// one round trip. It returns the revisions beside the rows (a row of NULLs when
// there are none), so that the caller checks them against the same snapshot.

// postgresCurrentPage reads live rows in key order; $4 asks for the count of the
// range, up to $5.
const postgresCurrentPage = `
	WITH rev AS (SELECT current, compacted FROM revision WHERE id = 1)
	SELECT rev.current, rev.compacted,
	       CASE WHEN $4 THEN (SELECT count(*) FROM
	            (SELECT FROM objects WHERE key >= $1 AND key < $2 LIMIT $5) c) END,
	       o.key, o.revision, o.value
	  FROM rev LEFT JOIN LATERAL (
	       SELECT key, revision, value FROM objects
	        WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3) o ON true
	 ORDER BY o.key`

// A row was live at revision R ($3) if it is in objects and unchanged since R, or
// if the first change after R (the one whose previous revision is at or before R)
// replaced or deleted it. The changes are read only up to the last key the page
// can reach: the limit-th unchanged row bounds it. So a page costs O(page + the
// history of its keys), not the history of the whole rest of the range.
const postgresPageAt = `
	WITH rev AS (SELECT current, compacted FROM revision WHERE id = 1),
	cur AS MATERIALIZED (
	     SELECT key, revision, value FROM objects
	      WHERE key >= $1 AND key < $2 AND revision <= $3 ORDER BY key LIMIT $4),
	bound AS (SELECT CASE WHEN count(*) >= $4 THEN max(key) END AS last FROM cur),
	old AS (
	     SELECT l.key, l.prev_revision AS revision, l.prev_value AS value
	       FROM bound, LATERAL (
	            SELECT key, prev_revision, prev_value FROM log
	             WHERE key >= $1 AND key < $2 AND key <= coalesce(bound.last, $2)
	               AND revision > $3 AND prev_revision BETWEEN 1 AND $3) l),
	page AS (
	     SELECT key, revision, value FROM cur UNION ALL
	     SELECT key, revision, value FROM old ORDER BY key LIMIT $4)
	SELECT rev.current, rev.compacted,
	       CASE WHEN $5 THEN (` + postgresCountAt + `) END,
	       page.key, page.revision, page.value
	  FROM rev LEFT JOIN page ON true
	 ORDER BY page.key`

// postgresCountAt counts the rows live at R, exactly below the cap ($6); at the cap
// it stops (and the caller knows only "at least").
const postgresCountAt = `
	SELECT CASE WHEN n >= $6 THEN n ELSE n + (
	         SELECT count(*) FROM log
	          WHERE key >= $1 AND key < $2 AND revision > $3 AND prev_revision BETWEEN 1 AND $3) END
	  FROM (SELECT count(*) AS n FROM (
	          SELECT FROM objects WHERE key >= $1 AND key < $2 AND revision <= $3 LIMIT $6) o) c`

func (p *postgres) list(ctx context.Context, q listQuery) (page, error) {
	var limit *int64
	if q.limit > 0 {
		l := q.limit + 1
		limit = &l
	}
	var rows pgx.Rows
	var err error
	if q.revision == 0 {
		rows, err = p.pool.Query(ctx, postgresCurrentPage, q.r.start, q.r.end, limit, q.count > 0, q.count)
	} else {
		rows, err = p.pool.Query(ctx, postgresPageAt, q.r.start, q.r.end, q.revision, limit, q.count > 0, q.count)
	}
	if err != nil {
		return page{}, fmt.Errorf("listing [%q, %q): %w", q.r.start, q.r.end, err)
	}
	var pg page
	var current, compacted int64
	var count *int64
	var key *string
	var revision *int64
	var value []byte
	_, err = pgx.ForEachRow(rows, []any{&current, &compacted, &count, &key, &revision, &value}, func() error {
		if key != nil {
			pg.rows = append(pg.rows, row{key: *key, revision: *revision, value: value})
		}
		return nil
	})
	if err != nil {
		return page{}, fmt.Errorf("listing [%q, %q): %w", q.r.start, q.r.end, err)
	}
	if q.revision > current {
		return page{}, &futureRevisionError{current: current}
	}
	if q.revision > 0 && q.revision < compacted {
		return page{}, errCompacted
	}
	pg.revision = q.revision
	if pg.revision == 0 {
		pg.revision = current
	}
	if q.limit > 0 && int64(len(pg.rows)) > q.limit {
		pg.rows, pg.more = pg.rows[:q.limit], true
	}
	if count != nil {
		pg.count = *count
	}
	return pg, nil
}

func (p *postgres) stats(ctx context.Context, r keyRange) (count, bytes int64, err error) {
	err = p.pool.QueryRow(ctx,
		`SELECT count(*), coalesce(sum(octet_length(value)), 0)::bigint FROM objects
		  WHERE key >= $1 AND key < $2`, r.start, r.end).Scan(&count, &bytes)
	if err != nil {
		return 0, 0, fmt.Errorf("counting [%q, %q): %w", r.start, r.end, err)
	}
	return count, bytes, nil
}

// postgresEvents reads changes with the value each wrote: the objects row if that
// version is current, else the previous value kept by the key's next change.
const postgresEvents = `
	WITH rev AS (SELECT compacted FROM revision WHERE id = 1)
	SELECT rev.compacted, e.revision, e.key, e.value, e.prev_revision, e.prev_value
	  FROM rev LEFT JOIN LATERAL (
	       SELECT l.revision, l.key, l.prev_revision, l.prev_value,
	              CASE WHEN NOT l.deleted THEN coalesce(
	                   (SELECT o.value FROM objects o WHERE o.key = l.key AND o.revision = l.revision),
	                   (SELECT n.prev_value FROM log n WHERE n.key = l.key AND n.revision > l.revision
	                     ORDER BY n.revision LIMIT 1)) END AS value
	         FROM log l
	        WHERE l.revision > $1 AND l.key >= $2 AND l.key < $3 ORDER BY l.revision LIMIT $4) e ON true
	 ORDER BY e.revision`

func (p *postgres) events(ctx context.Context, after int64, r keyRange, limit int) ([]event, error) {
	rows, err := p.pool.Query(ctx, postgresEvents, after, r.start, r.end, limit)
	if err != nil {
		return nil, fmt.Errorf("reading changes after revision %d: %w", after, err)
	}
	var events []event
	var compacted int64
	var revision, prevRevision *int64
	var key *string
	var value, prevValue []byte
	_, err = pgx.ForEachRow(rows, []any{&compacted, &revision, &key, &value, &prevRevision, &prevValue}, func() error {
		if revision != nil {
			events = append(events, event{revision: *revision, key: *key, value: value, prevRevision: *prevRevision, prevValue: prevValue})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading changes after revision %d: %w", after, err)
	}
	if after < compacted {
		return nil, errCompacted
	}
	return events, nil
}

func (p *postgres) rowCounts(ctx context.Context) (objects, log int64, err error) {
	err = p.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM objects), (SELECT count(*) FROM log)`).Scan(&objects, &log)
	if err != nil {
		return 0, 0, fmt.Errorf("counting rows: %w", err)
	}
	return objects, log, nil
}

func (p *postgres) revisions(ctx context.Context) (current, compacted int64, err error) {
	err = p.pool.QueryRow(ctx, `SELECT current, compacted FROM revision WHERE id = 1`).Scan(&current, &compacted)
	if err != nil {
		return 0, 0, fmt.Errorf("reading revisions: %w", err)
	}
	return current, compacted, nil
}

// compactChunk bounds how many log rows one DELETE removes, so that compacting a
// long log never holds locks or builds WAL for long.
const compactChunk = 10000

func (p *postgres) compact(ctx context.Context, revision int64) error {
	// Readers check the compacted revision in the snapshot they read the log in, so
	// once it moves no reader asks for the rows deleted below, whichever commits first.
	tag, err := p.pool.Exec(ctx,
		`UPDATE revision SET compacted = $1 WHERE id = 1 AND compacted < $1 AND current >= $1`, revision)
	if err != nil {
		return fmt.Errorf("compacting to revision %d: %w", revision, err)
	}
	if tag.RowsAffected() == 0 {
		return nil
	}
	for {
		tag, err := p.pool.Exec(ctx,
			`DELETE FROM log WHERE revision IN
			   (SELECT revision FROM log WHERE revision <= $1 ORDER BY revision LIMIT $2)`,
			revision, compactChunk)
		if err != nil {
			return fmt.Errorf("deleting changes up to revision %d: %w", revision, err)
		}
		if tag.RowsAffected() < compactChunk {
			return nil
		}
	}
}

func (p *postgres) expired(ctx context.Context, now int64, limit int) ([]row, error) {
	rows, err := p.pool.Query(ctx,
		`SELECT key, revision FROM objects WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("finding expired objects: %w", err)
	}
	expired, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		return x, r.Scan(&x.key, &x.revision)
	})
	if err != nil {
		return nil, fmt.Errorf("finding expired objects: %w", err)
	}
	return expired, nil
}

func (p *postgres) clusterRows(ctx context.Context, cluster string, limit int) ([]row, error) {
	rows, err := p.pool.Query(ctx, `SELECT key, revision FROM objects WHERE cluster = $1 LIMIT $2`, cluster, limit)
	if err != nil {
		return nil, fmt.Errorf("reading the cluster's keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var x row
		return x, r.Scan(&x.key, &x.revision)
	})
	if err != nil {
		return nil, fmt.Errorf("reading the cluster's keys: %w", err)
	}
	return keys, nil
}

// databaseBytes sums the sizes of the shard schema's tables with their indexes
// and TOAST. It reads the catalog and takes no lock that a write waits for.
func (p *postgres) databaseBytes(ctx context.Context) (int64, error) {
	var n int64
	err := p.pool.QueryRow(ctx,
		`SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint
		   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		  WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'm')`).Scan(&n)
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

// writeBatch takes two round trips: one pipeline begins, locks the revision row
// and reads the keys; the other writes and commits.
func (p *postgres) writeBatch(ctx context.Context, keys []string, decide func(int64, map[string]row) batchWrite) (err error) {
	pooled, err := p.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquiring a connection: %w", err)
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
	open = true
	if err := conn.SendBatch(ctx, &read).Close(); err != nil {
		return fmt.Errorf("locking the revision and reading the batch's keys: %w", err)
	}

	w := decide(current, live)
	if len(w.log) == 0 {
		return nil
	}
	write := postgresWrites(w, p.channel)
	write.Queue("COMMIT")
	if err := conn.SendBatch(ctx, write).Close(); err != nil {
		return fmt.Errorf("writing and committing: %w", err)
	}
	open = false
	return nil
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
