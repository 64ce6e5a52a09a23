package storage

import (
	"context"
	"errors"
	"fmt"
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
	channel string // NOTIFY channel of the shard
}

func openPostgres(ctx context.Context, url, shard string) (*postgres, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parsing postgres URL: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = shard
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
	return &postgres{pool: pool, channel: "warren_" + shard}, nil
}

// migrationDriver returns golang-migrate's driver for the shard's schema; closing it
// leaves the pool open.
func (p *postgres) migrationDriver(shard string) (database.Driver, error) {
	return migratepgx.WithInstance(stdlib.OpenDBFromPool(p.pool), &migratepgx.Config{SchemaName: shard})
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

// readOnly runs fn in a read-only transaction over one snapshot.
func (p *postgres) readOnly(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, p.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

// Rows live at revision R if they are in objects and unchanged since R, or if the
// first change after R (the one whose previous revision is at or before R) replaced
// or deleted them.
const postgresRowsAt = `
	SELECT key, revision, value FROM objects
	 WHERE key >= $1 AND key < $2 AND revision <= $3
	UNION ALL
	SELECT key, prev_revision, prev_value FROM log
	 WHERE key >= $1 AND key < $2 AND revision > $3 AND prev_revision BETWEEN 1 AND $3`

func (p *postgres) list(ctx context.Context, q listQuery) (page, error) {
	var pg page
	err := p.readOnly(ctx, func(tx pgx.Tx) error {
		var current, compacted int64
		if err := tx.QueryRow(ctx, `SELECT current, compacted FROM revision WHERE id = 1`).Scan(&current, &compacted); err != nil {
			return err
		}
		if q.revision > current {
			return &futureRevisionError{current: current}
		}
		if q.revision > 0 && q.revision < compacted {
			return errCompacted
		}
		var limit *int64
		if q.limit > 0 {
			l := q.limit + 1
			limit = &l
		}
		var rows pgx.Rows
		var err error
		if q.revision == 0 {
			pg.revision = current
			rows, err = tx.Query(ctx,
				`SELECT key, revision, value FROM objects
				  WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3`, q.r.start, q.r.end, limit)
		} else {
			pg.revision = q.revision
			rows, err = tx.Query(ctx,
				`SELECT key, revision, value FROM (`+postgresRowsAt+`) AS s ORDER BY key LIMIT $4`,
				q.r.start, q.r.end, q.revision, limit)
		}
		if err != nil {
			return err
		}
		pg.rows, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
			var x row
			return x, r.Scan(&x.key, &x.revision, &x.value)
		})
		if err != nil {
			return err
		}
		if q.limit > 0 && int64(len(pg.rows)) > q.limit {
			pg.rows, pg.more = pg.rows[:q.limit], true
		}
		if !pg.more || !q.count {
			return nil
		}
		if q.revision == 0 {
			return tx.QueryRow(ctx, `SELECT count(*) FROM objects WHERE key >= $1 AND key < $2`,
				q.r.start, q.r.end).Scan(&pg.count)
		}
		return tx.QueryRow(ctx, `SELECT count(*) FROM (`+postgresRowsAt+`) AS s`,
			q.r.start, q.r.end, q.revision).Scan(&pg.count)
	})
	if err != nil {
		return page{}, fmt.Errorf("listing [%q, %q): %w", q.r.start, q.r.end, err)
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

func (p *postgres) events(ctx context.Context, after int64, r keyRange, limit int) ([]event, error) {
	var events []event
	err := p.readOnly(ctx, func(tx pgx.Tx) error {
		var compacted int64
		if err := tx.QueryRow(ctx, `SELECT compacted FROM revision WHERE id = 1`).Scan(&compacted); err != nil {
			return err
		}
		if after < compacted {
			return errCompacted
		}
		rows, err := tx.Query(ctx,
			`SELECT revision, key, value, prev_revision, prev_value FROM log
			  WHERE revision > $1 AND key >= $2 AND key < $3 ORDER BY revision LIMIT $4`,
			after, r.start, r.end, limit)
		if err != nil {
			return err
		}
		events, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (event, error) {
			var e event
			return e, r.Scan(&e.revision, &e.key, &e.value, &e.prevRevision, &e.prevValue)
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("reading changes after revision %d: %w", after, err)
	}
	return events, nil
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

// wakeups listens on the shard's channel on a connection of its own. Every batch
// notifies in its transaction, so a notification arrives after the commit. When the
// connection breaks, notifications may have been missed: it reconnects and reports a
// wake-up so the reader catches up.
func (p *postgres) wakeups(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	wake := func() {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	go func() {
		logger := klog.FromContext(ctx)
		backoff := 100 * time.Millisecond
		for ctx.Err() == nil {
			err := p.listen(ctx, wake)
			if ctx.Err() != nil {
				return
			}
			logger.Error(err, "Listening for writes of other processes failed; retrying", "channel", p.channel, "backoff", backoff)
			wake()
			select {
			case <-ctx.Done():
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}()
	return ch
}

func (p *postgres) listen(ctx context.Context, wake func()) error {
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
	wake()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return err
		}
		wake()
	}
}

func (p *postgres) begin(ctx context.Context) (batchTx, error) {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("starting a write transaction: %w", err)
	}
	return &postgresBatch{tx: tx, channel: p.channel}, nil
}

type postgresBatch struct {
	tx      pgx.Tx
	channel string
}

func (b *postgresBatch) lock(ctx context.Context) (int64, error) {
	var current int64
	err := b.tx.QueryRow(ctx, `SELECT current FROM revision WHERE id = 1 FOR UPDATE`).Scan(&current)
	if err != nil {
		return 0, fmt.Errorf("locking the revision: %w", err)
	}
	return current, nil
}

func (b *postgresBatch) rows(ctx context.Context, keys []string) (map[string]row, error) {
	rows, err := b.tx.Query(ctx, `SELECT key, revision, value FROM objects WHERE key = ANY($1)`, keys)
	if err != nil {
		return nil, fmt.Errorf("reading the batch's keys: %w", err)
	}
	found := make(map[string]row, len(keys))
	var x row
	_, err = pgx.ForEachRow(rows, []any{&x.key, &x.revision, &x.value}, func() error {
		found[x.key] = x
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the batch's keys: %w", err)
	}
	return found, nil
}

func (b *postgresBatch) apply(ctx context.Context, w batchWrite) error {
	var batch pgx.Batch
	if len(w.log) > 0 {
		revisions := make([]int64, len(w.log))
		keys := make([]string, len(w.log))
		values := make([][]byte, len(w.log))
		prevRevisions := make([]int64, len(w.log))
		prevValues := make([][]byte, len(w.log))
		for i, e := range w.log {
			revisions[i], keys[i], values[i], prevRevisions[i], prevValues[i] = e.revision, e.key, e.value, e.prevRevision, e.prevValue
		}
		batch.Queue(`INSERT INTO log (revision, key, value, prev_revision, prev_value)
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::bigint[], $5::bytea[])`,
			revisions, keys, values, prevRevisions, prevValues)
	}
	if len(w.upserts) > 0 {
		n := len(w.upserts)
		keys, clusters, namespaces, names := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		revisions, expiresAt, values := make([]int64, n), make([]*int64, n), make([][]byte, n)
		for i, u := range w.upserts {
			keys[i], clusters[i], namespaces[i], names[i] = u.key, u.cluster, u.namespace, u.name
			revisions[i], values[i] = u.revision, u.value
			if u.expiresAt != 0 {
				expiresAt[i] = &w.upserts[i].expiresAt
			}
		}
		batch.Queue(`INSERT INTO objects (key, cluster, namespace, name, revision, expires_at, value)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::bytea[])
			ON CONFLICT (key) DO UPDATE
			   SET revision = excluded.revision, expires_at = excluded.expires_at, value = excluded.value`,
			keys, clusters, namespaces, names, revisions, expiresAt, values)
	}
	if len(w.deletes) > 0 {
		batch.Queue(`DELETE FROM objects WHERE key = ANY($1)`, w.deletes)
	}
	batch.Queue(`UPDATE revision SET current = $1 WHERE id = 1`, w.revision)
	batch.Queue(`SELECT pg_notify($1, $2)`, b.channel, fmt.Sprint(w.revision))
	if err := b.tx.SendBatch(ctx, &batch).Close(); err != nil {
		return fmt.Errorf("writing revisions up to %d: %w", w.revision, err)
	}
	return nil
}

func (b *postgresBatch) commit(ctx context.Context) error {
	if err := b.tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}

func (b *postgresBatch) rollback(ctx context.Context) {
	// The transaction failed already; rolling back only returns the connection.
	if err := b.tx.Rollback(context.WithoutCancel(ctx)); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		klog.FromContext(ctx).V(4).Info("Rolling back a write batch failed", "err", err)
	}
}
