package storage

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
)

// tables reads and compacts a shard's three tables — objects (the live rows),
// log (every change since the compacted revision) and revision — with SQL
// written once: PostgreSQL and SQLite both run every statement below as it is
// ($1 binds the first argument on both). Each read is one statement, so it sees
// one snapshot on either database, and the revisions it checks come from the
// same statement as the rows — except a page at an older revision, a few
// statements in one snapshot (dialect.snapshot), which both planners serve from
// the key indexes without copying or sorting a page.
//
// Writes are the dialect's own (dialect.writeBatch): PostgreSQL pipelines a
// batch as column arrays, SQLite steps prepared statements in process.
type tables struct {
	dialect
	// rows keeps arrays of rows that pages at the current revision were
	// read into, emptied, for the next pages to be read into
	// (*[]row; see recycle).
	rows sync.Pool
}

// pooledRows bounds the arrays kept for reuse (56 bytes a row), so that a
// long page's array is not kept for short ones.
const pooledRows = 1024

// query, snapshot, exec and writeBatch are the dialect's, each counted as a
// transaction in warren_storage_transactions_total.
func (t *tables) query(ctx context.Context, sql string, args ...any) (cursor, error) {
	transactions.Inc()
	return t.dialect.query(ctx, sql, args...)
}

func (t *tables) snapshot(ctx context.Context, fn func(read queryFunc) error) error {
	transactions.Inc()
	return t.dialect.snapshot(ctx, fn)
}

func (t *tables) exec(ctx context.Context, sql string, args ...any) (int64, error) {
	transactions.Inc()
	return t.dialect.exec(ctx, sql, args...)
}

func (t *tables) writeBatch(ctx context.Context, keys, clusters []string, decide func(current int64, live map[string]row, erased map[string]bool) batchWrite) error {
	transactions.Inc()
	return t.dialect.writeBatch(ctx, keys, clusters, decide)
}

// noLimit is a LIMIT that limits nothing, on both databases.
const noLimit = math.MaxInt64

// compactChunk bounds how many log rows one DELETE removes, so that compacting a
// long log never holds locks or builds WAL for long.
const compactChunk = 10000

const sqlRevisions = `SELECT current, compacted FROM revision WHERE id = 1`

const sqlGet = `
	SELECT r.current, o.revision, o.value
	  FROM revision r LEFT JOIN objects o ON o.key = $1
	 WHERE r.id = 1`

// get returns the live row under key (nil if there is none) and the shard's
// current revision.
func (t *tables) get(ctx context.Context, key string) (*row, int64, error) {
	var current int64
	var revision *int64
	var value []byte
	if err := one(ctx, t.query, []any{&current, &revision, &value}, sqlGet, key); err != nil {
		return nil, 0, fmt.Errorf("reading %q: %w", key, err)
	}
	if revision == nil {
		return nil, current, nil
	}
	return &row{key: key, revision: *revision, value: value}, current, nil
}

// sqlPage reads live rows of [$1, $2) in key order, at most $3, beside the
// revisions (one row with an empty key when there are none), so that the
// revision checks read the same snapshot as the rows; $4 asks for the count of
// the range, up to $5 (-1 when not asked). Only the value is ever NULL, so that
// no column is scanned through a pointer the driver allocates for each row.
const sqlPage = `
	WITH rev AS (` + sqlRevisions + `)
	SELECT rev.current, rev.compacted,
	       CASE WHEN $4 THEN (SELECT count(*) FROM
	            (SELECT 1 FROM objects WHERE key >= $1 AND key < $2 LIMIT $5) c) ELSE -1 END,
	       COALESCE(page.key, ''), COALESCE(page.revision, 0), page.value
	  FROM rev LEFT JOIN (
	       SELECT key, revision, value FROM objects
	        WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3) page ON true
	 ORDER BY page.key`

// A row was live at revision R if it is in objects and unchanged since R, or if
// the first change after R (the one whose previous revision is at or before R)
// replaced or deleted it: the rows of sqlUnchangedAt and sqlChangedAt, which
// share no key.

// sqlUnchangedAt reads the rows of [$1, $2) unchanged since R ($3), at most $4.
const sqlUnchangedAt = `
	SELECT key, revision, value FROM objects
	 WHERE key >= $1 AND key < $2 AND revision <= $3 ORDER BY key LIMIT $4`

// sqlChangedAt reads the rows of [$1, $2) that changes after R ($3) replaced or
// deleted, as they were at R.
const sqlChangedAt = `
	SELECT key, prev_revision, prev_value FROM log
	 WHERE key >= $1 AND key < $2 AND revision > $3 AND prev_revision BETWEEN 1 AND $3
	 ORDER BY key`

const (
	sqlCountUnchangedAt = `SELECT count(*) FROM (
	       SELECT 1 FROM objects WHERE key >= $1 AND key < $2 AND revision <= $3 LIMIT $4) c`
	sqlCountChangedAt = `SELECT count(*) FROM log
	 WHERE key >= $1 AND key < $2 AND revision > $3 AND prev_revision BETWEEN 1 AND $3`
)

// list reads a page of live rows in key order, at the current revision or, if
// q.revision is set, at that revision. It returns errCompacted if that revision
// was compacted and a futureRevisionError if it is newer than the current one.
func (t *tables) list(ctx context.Context, q listQuery) (page, error) {
	var pg page
	var err error
	if q.revision == 0 {
		pg, err = t.currentPage(ctx, q)
	} else {
		err = t.snapshot(ctx, func(read queryFunc) error {
			pg, err = pageAt(ctx, read, q)
			return err
		})
	}
	if err != nil {
		return page{}, fmt.Errorf("listing [%q, %q): %w", q.r.start, q.r.end, err)
	}
	if q.limit > 0 && int64(len(pg.rows)) > q.limit {
		pg.rows, pg.more = pg.rows[:q.limit], true
	}
	return pg, nil
}

// pageLimit is the LIMIT of a page of q: one row more than asked tells whether
// the range holds more.
func pageLimit(q listQuery) int64 {
	if q.limit > 0 {
		return q.limit + 1
	}
	return noLimit
}

// currentPage reads a page at the current revision, in one statement, into
// an array of rows a recycled page left, if there is one.
func (t *tables) currentPage(ctx context.Context, q listQuery) (page, error) {
	var pg page
	pg.appended, _ = t.rows.Get().(*[]row)
	if pg.appended == nil {
		pg.appended = new([]row)
	}
	var compacted, count, revision int64
	var key string
	var value borrowed
	err := each(ctx, t.query, []any{&pg.revision, &compacted, &count, &key, &revision, &value}, func() error {
		if key != "" {
			*pg.appended = append(*pg.appended, q.row(key, revision, value))
		}
		return nil
	}, sqlPage, q.r.start, q.r.end, pageLimit(q), q.count > 0, q.count)
	pg.rows = *pg.appended
	pg.count = max(count, 0)
	return pg, err
}

// recycle takes back the array of a page read by list, for the next pages,
// once its reader is done with every row of it: it keeps no key or value.
func (t *tables) recycle(pg page) {
	if pg.appended == nil || cap(*pg.appended) > pooledRows {
		return
	}
	clear(*pg.appended)
	*pg.appended = (*pg.appended)[:0]
	t.rows.Put(pg.appended)
}

// pageAt reads a page at q.revision through read, which must read one snapshot.
// The changes are read only up to the last key the page can reach: the limit-th
// unchanged row bounds it. So a page costs O(page + the history of its keys), not
// the history of the whole rest of the range.
func pageAt(ctx context.Context, read queryFunc, q listQuery) (page, error) {
	pg := page{revision: q.revision}
	var current, compacted int64
	if err := one(ctx, read, []any{&current, &compacted}, sqlRevisions); err != nil {
		return page{}, err
	}
	if q.revision > current {
		return page{}, &futureRevisionError{current: current}
	}
	if q.revision < compacted {
		return page{}, errCompacted
	}
	limit := pageLimit(q)
	unchanged, err := readRows(ctx, read, q, sqlUnchangedAt, q.r.start, q.r.end, q.revision, limit)
	if err != nil {
		return page{}, err
	}
	// Keys hold no NUL, so "at most key K" is "before K+\x01".
	until := q.r.end
	if int64(len(unchanged)) >= limit {
		until = unchanged[len(unchanged)-1].key + "\x01"
	}
	changed, err := readRows(ctx, read, q, sqlChangedAt, q.r.start, until, q.revision)
	if err != nil {
		return page{}, err
	}
	pg.rows = mergeByKey(unchanged, changed)
	if int64(len(pg.rows)) > limit {
		pg.rows = pg.rows[:limit]
	}
	if q.count == 0 || int64(len(pg.rows)) <= q.limit {
		return pg, nil
	}
	// The count stops at the cap, and the caller then knows only "at least".
	if err := one(ctx, read, []any{&pg.count}, sqlCountUnchangedAt, q.r.start, q.r.end, q.revision, q.count); err != nil || pg.count >= q.count {
		return pg, err
	}
	var n int64
	err = one(ctx, read, []any{&n}, sqlCountChangedAt, q.r.start, q.r.end, q.revision)
	pg.count += n
	return pg, err
}

// mergeByKey merges two lists sorted by key; no key is in both.
func mergeByKey(a, b []row) []row {
	out := make([]row, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if a[0].key < b[0].key {
			out, a = append(out, a[0]), a[1:]
		} else {
			out, b = append(out, b[0]), b[1:]
		}
	}
	return append(append(out, a...), b...)
}

// stats counts the live rows in r and sums the sizes of their values.
func (t *tables) stats(ctx context.Context, r keyRange) (count, bytes int64, err error) {
	err = one(ctx, t.query, []any{&count, &bytes},
		`SELECT count(*), coalesce(sum(length(value)), 0) FROM objects WHERE key >= $1 AND key < $2`,
		r.start, r.end)
	if err != nil {
		return 0, 0, fmt.Errorf("counting [%q, %q): %w", r.start, r.end, err)
	}
	return count, bytes, nil
}

// sqlEvents reads changes with the value each wrote: the objects row if that
// version is current, else the previous value kept by the key's next change.
const sqlEvents = `
	WITH rev AS (SELECT compacted FROM revision WHERE id = 1)
	SELECT rev.compacted, e.revision, e.key, e.value, e.prev_revision, e.prev_value
	  FROM rev LEFT JOIN (
	       SELECT l.revision, l.key, l.prev_revision, l.prev_value,
	              CASE WHEN NOT l.deleted THEN coalesce(
	                   (SELECT o.value FROM objects o WHERE o.key = l.key AND o.revision = l.revision),
	                   (SELECT n.prev_value FROM log n WHERE n.key = l.key AND n.revision > l.revision
	                     ORDER BY n.revision LIMIT 1)) END AS value
	         FROM log l
	        WHERE l.revision > $1 AND l.key >= $2 AND l.key < $3 ORDER BY l.revision LIMIT $4) e ON true
	 ORDER BY e.revision`

// events returns up to limit changes of keys in r with revisions after `after`, in
// revision order; errCompacted if changes after `after` have been compacted.
func (t *tables) events(ctx context.Context, after int64, r keyRange, limit int) ([]event, error) {
	var events []event
	var compacted int64
	var revision, prevRevision *int64
	var key *string
	var value, prevValue []byte
	err := each(ctx, t.query, []any{&compacted, &revision, &key, &value, &prevRevision, &prevValue}, func() error {
		if revision != nil {
			events = append(events, event{revision: *revision, key: *key, value: value, prevRevision: *prevRevision, prevValue: prevValue})
		}
		return nil
	}, sqlEvents, after, r.start, r.end, limit)
	if err != nil {
		return nil, fmt.Errorf("reading changes after revision %d: %w", after, err)
	}
	if after < compacted {
		return nil, errCompacted
	}
	return events, nil
}

// rowCounts counts the rows of the objects and the log table.
func (t *tables) rowCounts(ctx context.Context) (objects, log int64, err error) {
	if err := one(ctx, t.query, []any{&objects, &log}, `SELECT (SELECT count(*) FROM objects), (SELECT count(*) FROM log)`); err != nil {
		return 0, 0, fmt.Errorf("counting rows: %w", err)
	}
	return objects, log, nil
}

// revisions returns the current and the compacted revision.
func (t *tables) revisions(ctx context.Context) (current, compacted int64, err error) {
	if err := one(ctx, t.query, []any{&current, &compacted}, sqlRevisions); err != nil {
		return 0, 0, fmt.Errorf("reading revisions: %w", err)
	}
	return current, compacted, nil
}

// compact forgets the changes up to and including revision, in chunks, each its
// own transaction, so that writes interleave with them.
func (t *tables) compact(ctx context.Context, revision int64) error {
	// Readers check the compacted revision in the snapshot they read the log in, so
	// once it moves no reader asks for the rows deleted below, whichever commits first.
	n, err := t.exec(ctx,
		`UPDATE revision SET compacted = $1 WHERE id = 1 AND compacted < $1 AND current >= $1`, revision)
	if err != nil {
		return fmt.Errorf("compacting to revision %d: %w", revision, err)
	}
	if n == 0 {
		return nil
	}
	for {
		n, err := t.exec(ctx,
			`DELETE FROM log WHERE revision IN
			   (SELECT revision FROM log WHERE revision <= $1 ORDER BY revision LIMIT $2)`,
			revision, compactChunk)
		if err != nil {
			return fmt.Errorf("deleting changes up to revision %d: %w", revision, err)
		}
		if n < compactChunk {
			return t.reclaim(ctx)
		}
	}
}

const sqlExpired = `SELECT key, revision FROM objects WHERE expires_at <= $1 ORDER BY expires_at LIMIT $2`

// expired returns up to limit live rows (keys and revisions) whose TTL ran out at
// or before now (Unix milliseconds), soonest first.
func (t *tables) expired(ctx context.Context, now int64, limit int) ([]row, error) {
	keys, err := keys(ctx, t.query, sqlExpired, now, limit)
	if err != nil {
		return nil, fmt.Errorf("finding expired objects: %w", err)
	}
	return keys, nil
}

const sqlClusterRows = `SELECT key, revision FROM objects WHERE cluster = $1 LIMIT $2`

// clusterRows returns the keys and revisions (no values) of up to limit live
// rows whose cluster column is exactly cluster, read through the cluster's index.
func (t *tables) clusterRows(ctx context.Context, cluster string, limit int) ([]row, error) {
	keys, err := keys(ctx, t.query, sqlClusterRows, cluster, limit)
	if err != nil {
		return nil, fmt.Errorf("reading the cluster's keys: %w", err)
	}
	return keys, nil
}

// keys reads rows of a key and a revision.
func keys(ctx context.Context, read queryFunc, sql string, args ...any) ([]row, error) {
	var out []row
	var x row
	err := each(ctx, read, []any{&x.key, &x.revision}, func() error {
		out = append(out, x)
		return nil
	}, sql, args...)
	return out, err
}

// readRows reads rows of a key, a revision and a value, keeping of each value
// what q keeps.
func readRows(ctx context.Context, read queryFunc, q listQuery, sql string, args ...any) ([]row, error) {
	var out []row
	var key string
	var revision int64
	var value borrowed
	err := each(ctx, read, []any{&key, &revision, &value}, func() error {
		out = append(out, q.row(key, revision, value))
		return nil
	}, sql, args...)
	return out, err
}

// borrowed receives a value without a copy: the bytes are the driver's, valid
// only until the cursor moves to its next row. pgx hands them over through
// ScanBytes (pgtype.BytesScanner), database/sql through Scan (sql.Scanner).
type borrowed []byte

func (b *borrowed) ScanBytes(v []byte) error {
	*b = v
	return nil
}

func (b *borrowed) Scan(src any) error {
	switch v := src.(type) {
	case []byte:
		*b = v
	case nil:
		*b = nil
	default:
		return fmt.Errorf("reading a value: the database gave a %T", src)
	}
	return nil
}

// one reads the single row of a statement into dest.
func one(ctx context.Context, read queryFunc, dest []any, sql string, args ...any) error {
	found := false
	if err := each(ctx, read, dest, func() error { found = true; return nil }, sql, args...); err != nil {
		return err
	}
	if !found {
		return errors.New("the statement returned no row")
	}
	return nil
}

// each scans every row of a statement into dest and calls fn after each.
func each(ctx context.Context, read queryFunc, dest []any, fn func() error, sql string, args ...any) error {
	rs, err := read(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rs.Close()
	for rs.Next() {
		if err := rs.Scan(dest...); err != nil {
			return err
		}
		if err := fn(); err != nil {
			return err
		}
	}
	return rs.Err()
}
