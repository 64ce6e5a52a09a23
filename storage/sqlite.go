package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"runtime"

	"github.com/golang-migrate/migrate/v4/database"
	migratesqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	sqlitedriver "modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// sqlite stores a shard in one SQLite file in WAL mode. One process owns the file:
// its writer is the file's only writing connection, so it needs no notifications,
// and readers read snapshots beside it.
type sqlite struct {
	path   string
	writer *sql.DB // one connection; BEGIN IMMEDIATE takes the write lock at once
	reader *sql.DB // several read-only connections
	// checkpointer is one connection that gives the WAL back to the file
	// system after compactions. It waits for nobody: a checkpoint that would
	// wait for readers of old snapshots (a long list) gives up and is tried
	// again at the next compaction, so writes never queue behind it.
	checkpointer *sql.DB
}

func openSQLite(ctx context.Context, path string) (*sqlite, error) {
	// FULL makes every commit durable across a power loss; batching makes that
	// nearly free (notes/dependencies.md). journal_size_limit truncates the WAL
	// after checkpoints so it stays bounded under sustained writes. Reads go
	// through a memory map: with each connection's small page cache, a read of a
	// large file was mostly pread system calls.
	params := url.Values{
		"_busy_timeout": {"10000"},
		"_journal_mode": {"WAL"},
		"_synchronous":  {"FULL"},
		"_pragma":       {"journal_size_limit(67108864)", "mmap_size(17179869184)"},
	}
	dsn := func(extra url.Values) string {
		q := url.Values{}
		for k, v := range params {
			q[k] = v
		}
		for k, v := range extra {
			q[k] = v
		}
		return "file:" + path + "?" + q.Encode()
	}
	writer, err := sql.Open("sqlite", dsn(url.Values{"_txlock": {"immediate"}}))
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	writer.SetMaxOpenConns(1)
	// The first connection sets WAL mode on the file before any reader opens it.
	if err := writer.PingContext(ctx); err != nil {
		writer.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	reader, err := sql.Open("sqlite", dsn(url.Values{"_query_only": {"1"}}))
	if err != nil {
		writer.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	// SQLite runs on this process's CPUs: more readers than CPUs only contend for
	// SQLite's locks (measured on 2 CPUs with 8 readers: p99 of a list 50 ms
	// instead of 3 ms, at the same throughput). Waiting for a connection is fair.
	readers := max(2, runtime.GOMAXPROCS(0))
	reader.SetMaxOpenConns(readers)
	reader.SetMaxIdleConns(readers)
	checkpointer, err := sql.Open("sqlite", dsn(url.Values{"_busy_timeout": {"0"}}))
	if err != nil {
		writer.Close()
		reader.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	checkpointer.SetMaxOpenConns(1)
	return &sqlite{path: path, writer: writer, reader: reader, checkpointer: checkpointer}, nil
}

// migrationDriver returns golang-migrate's driver on a connection of its own to
// the file; closing the driver closes it.
func (s *sqlite) migrationDriver() (database.Driver, error) {
	path := s.path
	db, err := sql.Open("sqlite", "file:"+path+"?_busy_timeout=10000&_journal_mode=WAL")
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	driver, err := migratesqlite.WithInstance(db, &migratesqlite.Config{})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("preparing migrations of %s: %w", path, err)
	}
	return driver, nil
}

func (s *sqlite) close() {
	s.checkpointer.Close()
	s.reader.Close()
	s.writer.Close()
}

func (s *sqlite) get(ctx context.Context, key string) (*row, int64, error) {
	var current int64
	var revision sql.NullInt64
	var value []byte
	err := s.reader.QueryRowContext(ctx,
		`SELECT r.current, o.revision, o.value
		   FROM revision r LEFT JOIN objects o ON o.key = ?1
		  WHERE r.id = 1`, key).Scan(&current, &revision, &value)
	if err != nil {
		return nil, 0, fmt.Errorf("reading %q: %w", key, err)
	}
	if !revision.Valid {
		return nil, current, nil
	}
	return &row{key: key, revision: revision.Int64, value: value}, current, nil
}

// readOnly runs fn in a transaction: in WAL mode it reads one snapshot throughout.
func (s *sqlite) readOnly(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.reader.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(tx)
}

func (s *sqlite) list(ctx context.Context, q listQuery) (page, error) {
	var pg page
	err := s.readOnly(ctx, func(tx *sql.Tx) error {
		var current, compacted int64
		if err := tx.QueryRowContext(ctx, `SELECT current, compacted FROM revision WHERE id = 1`).Scan(&current, &compacted); err != nil {
			return err
		}
		if q.revision > current {
			return &futureRevisionError{current: current}
		}
		if q.revision > 0 && q.revision < compacted {
			return errCompacted
		}
		limit := int64(-1) // SQLite reads a negative limit as none
		if q.limit > 0 {
			limit = q.limit + 1
		}
		var err error
		if q.revision == 0 {
			pg.revision = current
			pg.rows, err = scanRows(tx.QueryContext(ctx,
				`SELECT key, revision, value FROM objects
				  WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3`, q.r.start, q.r.end, limit))
		} else {
			pg.revision = q.revision
			pg.rows, err = sqliteRowsAt(ctx, tx, q.r, q.revision, limit)
		}
		if err != nil {
			return err
		}
		if q.limit > 0 && int64(len(pg.rows)) > q.limit {
			pg.rows, pg.more = pg.rows[:q.limit], true
		}
		if !pg.more || q.count == 0 {
			return nil
		}
		if q.revision == 0 {
			return tx.QueryRowContext(ctx,
				`SELECT count(*) FROM (SELECT 1 FROM objects WHERE key >= ?1 AND key < ?2 LIMIT ?3)`,
				q.r.start, q.r.end, q.count).Scan(&pg.count)
		}
		pg.count, err = sqliteCountAt(ctx, tx, q.r, q.revision, q.count)
		return err
	})
	if err != nil {
		return page{}, fmt.Errorf("listing [%q, %q): %w", q.r.start, q.r.end, err)
	}
	return pg, nil
}

// sqliteRowsAt reads the first rows live at revision R in r: those in objects and
// unchanged since R, and those the first change after R (the one whose previous
// revision is at or before R) replaced or deleted. Changes are read only up to the
// last key the page can reach, so a page costs O(page + the history of its keys).
func sqliteRowsAt(ctx context.Context, tx *sql.Tx, r keyRange, revision, limit int64) ([]row, error) {
	unchanged, err := scanRows(tx.QueryContext(ctx,
		`SELECT key, revision, value FROM objects
		  WHERE key >= ?1 AND key < ?2 AND revision <= ?3 ORDER BY key LIMIT ?4`, r.start, r.end, revision, limit))
	if err != nil {
		return nil, err
	}
	// Keys hold no NUL, so "at most key K" is "before K+\x01", one bound the
	// index can use.
	until := r.end
	if limit > 0 && int64(len(unchanged)) >= limit {
		until = unchanged[len(unchanged)-1].key + "\x01"
	}
	changed, err := scanRows(tx.QueryContext(ctx,
		`SELECT key, prev_revision, prev_value FROM log
		  WHERE key >= ?1 AND key < ?2 AND revision > ?3 AND prev_revision BETWEEN 1 AND ?3
		  ORDER BY key`, r.start, until, revision))
	if err != nil {
		return nil, err
	}
	rows := mergeByKey(unchanged, changed)
	if limit > 0 && int64(len(rows)) > limit {
		rows = rows[:limit]
	}
	return rows, nil
}

// sqliteCountAt counts the rows live at revision R in r, exactly below limit; at
// the limit it stops (and the caller knows only "at least").
func sqliteCountAt(ctx context.Context, tx *sql.Tx, r keyRange, revision, limit int64) (int64, error) {
	var unchanged, changed int64
	if err := tx.QueryRowContext(ctx,
		`SELECT count(*) FROM (SELECT 1 FROM objects WHERE key >= ?1 AND key < ?2 AND revision <= ?3 LIMIT ?4)`,
		r.start, r.end, revision, limit).Scan(&unchanged); err != nil || unchanged >= limit {
		return unchanged, err
	}
	err := tx.QueryRowContext(ctx,
		`SELECT count(*) FROM log WHERE key >= ?1 AND key < ?2 AND revision > ?3 AND prev_revision BETWEEN 1 AND ?3`,
		r.start, r.end, revision).Scan(&changed)
	return unchanged + changed, err
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

func scanRows(rows *sql.Rows, err error) ([]row, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []row
	for rows.Next() {
		var x row
		if err := rows.Scan(&x.key, &x.revision, &x.value); err != nil {
			return nil, err
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

func (s *sqlite) stats(ctx context.Context, r keyRange) (count, bytes int64, err error) {
	err = s.reader.QueryRowContext(ctx,
		`SELECT count(*), coalesce(sum(length(value)), 0) FROM objects WHERE key >= ?1 AND key < ?2`,
		r.start, r.end).Scan(&count, &bytes)
	if err != nil {
		return 0, 0, fmt.Errorf("counting [%q, %q): %w", r.start, r.end, err)
	}
	return count, bytes, nil
}

func (s *sqlite) events(ctx context.Context, after int64, r keyRange, limit int) ([]event, error) {
	var events []event
	err := s.readOnly(ctx, func(tx *sql.Tx) error {
		var compacted int64
		if err := tx.QueryRowContext(ctx, `SELECT compacted FROM revision WHERE id = 1`).Scan(&compacted); err != nil {
			return err
		}
		if after < compacted {
			return errCompacted
		}
		// Each change comes with the value it wrote: the objects row if that
		// version is current, else the previous value kept by the key's next change.
		rows, err := tx.QueryContext(ctx,
			`SELECT l.revision, l.key,
			        CASE WHEN NOT l.deleted THEN coalesce(
			             (SELECT o.value FROM objects o WHERE o.key = l.key AND o.revision = l.revision),
			             (SELECT n.prev_value FROM log n WHERE n.key = l.key AND n.revision > l.revision
			               ORDER BY n.revision LIMIT 1)) END,
			        l.prev_revision, l.prev_value
			   FROM log l
			  WHERE l.revision > ?1 AND l.key >= ?2 AND l.key < ?3 ORDER BY l.revision LIMIT ?4`,
			after, r.start, r.end, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e event
			if err := rows.Scan(&e.revision, &e.key, &e.value, &e.prevRevision, &e.prevValue); err != nil {
				return err
			}
			events = append(events, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("reading changes after revision %d: %w", after, err)
	}
	return events, nil
}

func (s *sqlite) rowCounts(ctx context.Context) (objects, log int64, err error) {
	err = s.reader.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM objects), (SELECT count(*) FROM log)`).Scan(&objects, &log)
	if err != nil {
		return 0, 0, fmt.Errorf("counting rows: %w", err)
	}
	return objects, log, nil
}

func (s *sqlite) revisions(ctx context.Context) (current, compacted int64, err error) {
	err = s.reader.QueryRowContext(ctx, `SELECT current, compacted FROM revision WHERE id = 1`).Scan(&current, &compacted)
	if err != nil {
		return 0, 0, fmt.Errorf("reading revisions: %w", err)
	}
	return current, compacted, nil
}

func (s *sqlite) compact(ctx context.Context, revision int64) error {
	// The writer connection is shared with write batches; each statement is its own
	// short transaction, so batches interleave with the chunks.
	res, err := s.writer.ExecContext(ctx,
		`UPDATE revision SET compacted = ?1 WHERE id = 1 AND compacted < ?1 AND current >= ?1`, revision)
	if err != nil {
		return fmt.Errorf("compacting to revision %d: %w", revision, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err
	}
	for {
		res, err := s.writer.ExecContext(ctx,
			`DELETE FROM log WHERE revision IN
			   (SELECT revision FROM log WHERE revision <= ?1 ORDER BY revision LIMIT ?2)`,
			revision, compactChunk)
		if err != nil {
			return fmt.Errorf("deleting changes up to revision %d: %w", revision, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("deleting changes up to revision %d: %w", revision, err)
		}
		if n < compactChunk {
			break
		}
	}
	return s.checkpoint(ctx)
}

// checkpoint gives the WAL back to the file system once the compaction's
// deletions are in the database. PASSIVE copies what it can without taking the
// write lock; TRUNCATE then only resets the emptied log, and, waiting for
// nobody, gives up at once (busy) while a reader still needs the log.
func (s *sqlite) checkpoint(ctx context.Context) error {
	for _, mode := range []string{"PASSIVE", "TRUNCATE"} {
		var busy, frames, copied int
		err := s.checkpointer.QueryRowContext(ctx, `PRAGMA wal_checkpoint(`+mode+`)`).Scan(&busy, &frames, &copied)
		if err != nil && !isBusy(err) {
			return fmt.Errorf("checkpointing the WAL (%s): %w", mode, err)
		}
		if err != nil || busy != 0 {
			return nil
		}
	}
	return nil
}

// isBusy reports whether err is SQLite's SQLITE_BUSY: another connection holds
// a lock the statement would have had to wait for.
func isBusy(err error) bool {
	var e *sqlitedriver.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

func (s *sqlite) expired(ctx context.Context, now int64, limit int) ([]row, error) {
	rows, err := s.reader.QueryContext(ctx,
		`SELECT key, revision FROM objects WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2`, now, limit)
	if err != nil {
		return nil, fmt.Errorf("finding expired objects: %w", err)
	}
	defer rows.Close()
	var out []row
	for rows.Next() {
		var x row
		if err := rows.Scan(&x.key, &x.revision); err != nil {
			return nil, fmt.Errorf("finding expired objects: %w", err)
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

func (s *sqlite) clusterRows(ctx context.Context, cluster string, limit int) ([]row, error) {
	rows, err := s.reader.QueryContext(ctx,
		`SELECT key, revision FROM objects INDEXED BY objects_cluster WHERE cluster = ?1 LIMIT ?2`, cluster, limit)
	if err != nil {
		return nil, fmt.Errorf("reading the cluster's keys: %w", err)
	}
	defer rows.Close()
	var out []row
	for rows.Next() {
		var x row
		if err := rows.Scan(&x.key, &x.revision); err != nil {
			return nil, fmt.Errorf("reading the cluster's keys: %w", err)
		}
		out = append(out, x)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the cluster's keys: %w", err)
	}
	return out, nil
}

// databaseBytes is the main file's pages, as a reader's snapshot sees them,
// plus the WAL file. Readers run beside the writer, so this never waits for a
// write.
func (s *sqlite) databaseBytes(ctx context.Context) (int64, error) {
	var main int64
	if err := s.reader.QueryRowContext(ctx,
		`SELECT p.page_count * s.page_size FROM pragma_page_count() p, pragma_page_size() s`).Scan(&main); err != nil {
		return 0, fmt.Errorf("reading the size of %s: %w", s.path, err)
	}
	wal, err := os.Stat(s.path + "-wal")
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return main, nil
	case err != nil:
		return 0, fmt.Errorf("reading the size of the WAL: %w", err)
	}
	return main + wal.Size(), nil
}

// listen has nothing to announce: this process's writer is the file's only one.
func (s *sqlite) listen(context.Context, func(int64)) {}

// writeBatch runs in one transaction on the writer connection; BEGIN IMMEDIATE
// takes the file's write lock at once.
func (s *sqlite) writeBatch(ctx context.Context, keys []string, decide func(int64, map[string]row) batchWrite) error {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("starting a write transaction: %w", err)
	}
	defer tx.Rollback()
	var current int64
	if err := tx.QueryRowContext(ctx, `SELECT current FROM revision WHERE id = 1`).Scan(&current); err != nil {
		return fmt.Errorf("reading the revision: %w", err)
	}
	live, err := sqliteRows(ctx, tx, keys)
	if err != nil {
		return err
	}
	w := decide(current, live)
	if len(w.log) == 0 {
		return nil
	}
	if err := sqliteApply(ctx, tx, w); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	return nil
}

func sqliteRows(ctx context.Context, tx *sql.Tx, keys []string) (map[string]row, error) {
	stmt, err := tx.PrepareContext(ctx, `SELECT revision, value FROM objects WHERE key = ?1`)
	if err != nil {
		return nil, fmt.Errorf("reading the batch's keys: %w", err)
	}
	defer stmt.Close()
	found := make(map[string]row, len(keys))
	for _, k := range keys {
		x := row{key: k}
		err := stmt.QueryRowContext(ctx, k).Scan(&x.revision, &x.value)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, fmt.Errorf("reading %q: %w", k, err)
		default:
			found[k] = x
		}
	}
	return found, nil
}

func sqliteApply(ctx context.Context, tx *sql.Tx, w batchWrite) error {
	insertLog, err := tx.PrepareContext(ctx,
		`INSERT INTO log (revision, key, deleted, prev_revision, prev_value) VALUES (?1, ?2, ?3, ?4, ?5)`)
	if err != nil {
		return fmt.Errorf("writing the log: %w", err)
	}
	defer insertLog.Close()
	for _, e := range w.log {
		if _, err := insertLog.ExecContext(ctx, e.revision, e.key, e.value == nil, e.prevRevision, e.prevValue); err != nil {
			return fmt.Errorf("logging revision %d: %w", e.revision, err)
		}
	}
	upsert, err := tx.PrepareContext(ctx,
		`INSERT INTO objects (key, cluster, namespace, name, revision, expires_at, value)
		 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
		 ON CONFLICT (key) DO UPDATE
		    SET revision = excluded.revision, expires_at = excluded.expires_at, value = excluded.value`)
	if err != nil {
		return fmt.Errorf("writing objects: %w", err)
	}
	defer upsert.Close()
	for _, u := range w.upserts {
		expiresAt := sql.NullInt64{Int64: u.expiresAt, Valid: u.expiresAt != 0}
		if _, err := upsert.ExecContext(ctx, u.key, u.cluster, u.namespace, u.name, u.revision, expiresAt, u.value); err != nil {
			return fmt.Errorf("writing %q: %w", u.key, err)
		}
	}
	for _, k := range w.deletes {
		if _, err := tx.ExecContext(ctx, `DELETE FROM objects WHERE key = ?1`, k); err != nil {
			return fmt.Errorf("deleting %q: %w", k, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE revision SET current = ?1 WHERE id = 1`, w.revision); err != nil {
		return fmt.Errorf("moving the revision to %d: %w", w.revision, err)
	}
	return nil
}
