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
	"sync"
	"syscall"

	"github.com/golang-migrate/migrate/v4/database"
	migratesqlite "github.com/golang-migrate/migrate/v4/database/sqlite"
	sqlitedriver "modernc.org/sqlite" // also registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// sqlite stores a shard in one SQLite file in WAL mode. One process owns the file:
// its writer is the file's only writing connection, so it needs no notifications,
// and readers read snapshots beside it.
type sqlite struct {
	path string
	// owner holds an exclusive lock on the file for as long as it is open,
	// so that a second process refuses to open it.
	owner  *os.File
	writer *sql.DB // one connection; BEGIN IMMEDIATE takes the write lock at once
	reader *sql.DB // several read-only connections
	// checkpointer is one connection that gives the WAL back to the file
	// system after compactions. It waits for nobody: a checkpoint that would
	// wait for readers of old snapshots (a long list) gives up and is tried
	// again at the next compaction, so writes never queue behind it.
	checkpointer *sql.DB
	// statements holds the prepared read statements by their text.
	statements sync.Map
}

func openSQLite(ctx context.Context, path string) (_ *sqlite, err error) {
	owner, err := own(path)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			owner.Close()
		}
	}()
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
	return &sqlite{path: path, owner: owner, writer: writer, reader: reader, checkpointer: checkpointer}, nil
}

// own locks the database file path (creating it empty if missing, which
// SQLite takes for an empty database) for this process, or says which process
// holds it. SQLite's own locks let several processes share a file, but warren
// tells its watchers of writes within the process: a second process's writes
// would reach neither its watchers nor its caches.
func own(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is in use by another warren process: a SQLite file serves one process (run several on PostgreSQL)", path)
		}
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return f, nil
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
	s.statements.Range(func(_, stmt any) bool {
		stmt.(*sql.Stmt).Close()
		return true
	})
	s.checkpointer.Close()
	s.reader.Close()
	s.writer.Close()
	s.owner.Close()
}

func (s *sqlite) name() string { return "sqlite" }

// elect leads for as long as the process has the file, which own gave it
// alone.
func (s *sqlite) elect(ctx context.Context, lead func(context.Context)) {
	lead(ctx)
	<-ctx.Done()
}

// query reads on one of the read-only connections; in WAL mode a statement
// reads one snapshot, beside the writer.
func (s *sqlite) query(ctx context.Context, query string, args ...any) (cursor, error) {
	stmt, err := s.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	rs, err := stmt.QueryContext(ctx, args...)
	if err != nil {
		return nil, err
	}
	return sqlRows{rs}, nil
}

// prepared returns the read statement of query, prepared once: SQLite compiles
// a statement on every use otherwise, which cost a one-cluster list a fifth of
// its time. The callers' statements are a fixed set of constants (tables.go).
func (s *sqlite) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if stmt, ok := s.statements.Load(query); ok {
		return stmt.(*sql.Stmt), nil
	}
	stmt, err := s.reader.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prior, loaded := s.statements.LoadOrStore(query, stmt); loaded {
		stmt.Close()
		return prior.(*sql.Stmt), nil
	}
	return stmt, nil
}

// snapshot runs fn in a transaction on a read-only connection: in WAL mode it
// reads one snapshot throughout. A statement not prepared yet runs unprepared
// and is prepared after the transaction: preparing takes a connection of the
// pool, and waiting for one while holding one would deadlock once every
// connection is held so.
func (s *sqlite) snapshot(ctx context.Context, fn func(read queryFunc) error) error {
	var unprepared []string
	err := s.inSnapshot(ctx, func(tx *sql.Tx) error {
		return fn(func(ctx context.Context, query string, args ...any) (cursor, error) {
			var rs *sql.Rows
			var err error
			if stmt, ok := s.statements.Load(query); ok {
				rs, err = tx.StmtContext(ctx, stmt.(*sql.Stmt)).QueryContext(ctx, args...)
			} else {
				unprepared = append(unprepared, query)
				rs, err = tx.QueryContext(ctx, query, args...)
			}
			if err != nil {
				return nil, err
			}
			return sqlRows{rs}, nil
		})
	})
	if err != nil {
		return err
	}
	for _, query := range unprepared {
		if _, err := s.prepared(ctx, query); err != nil {
			return err
		}
	}
	return nil
}

func (s *sqlite) inSnapshot(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.reader.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	return fn(tx)
}

// sqlRows is database/sql's Rows as a cursor.
type sqlRows struct{ *sql.Rows }

// Close ends the statement; an error of the statement is in Err.
func (r sqlRows) Close() { r.Rows.Close() }

// exec runs on the writer connection, the file's only writing one, so it
// queues behind write batches, and they behind it, each statement short.
func (s *sqlite) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := s.writer.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// reclaim checkpoints the WAL, which compaction's deletions grew.
func (s *sqlite) reclaim(ctx context.Context) error { return s.checkpoint(ctx) }

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
func (s *sqlite) writeBatch(ctx context.Context, keys, clusters []string, decide func(int64, map[string]row, map[string]bool) batchWrite) error {
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
	erased, err := sqliteErased(ctx, tx, clusters)
	if err != nil {
		return err
	}
	w := decide(current, live, erased)
	if len(w.log) == 0 && len(w.fences) == 0 && len(w.revived) == 0 {
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
	stmt, err := tx.PrepareContext(ctx, `SELECT revision, value FROM objects WHERE key = $1`)
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

// sqliteErased tells which of clusters are erased.
func sqliteErased(ctx context.Context, tx *sql.Tx, clusters []string) (map[string]bool, error) {
	erased := map[string]bool{}
	for _, c := range clusters {
		var found string
		err := tx.QueryRowContext(ctx, `SELECT cluster FROM erased WHERE cluster = $1`, c).Scan(&found)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return nil, fmt.Errorf("reading whether cluster %q is erased: %w", c, err)
		default:
			erased[c] = true
		}
	}
	return erased, nil
}

func sqliteApply(ctx context.Context, tx *sql.Tx, w batchWrite) error {
	for _, c := range w.fences {
		if _, err := tx.ExecContext(ctx, `INSERT INTO erased (cluster) VALUES ($1) ON CONFLICT DO NOTHING`, c); err != nil {
			return fmt.Errorf("recording cluster %q erased: %w", c, err)
		}
	}
	for _, c := range w.revived {
		if _, err := tx.ExecContext(ctx, `DELETE FROM erased WHERE cluster = $1`, c); err != nil {
			return fmt.Errorf("reviving cluster %q: %w", c, err)
		}
	}
	insertLog, err := tx.PrepareContext(ctx,
		`INSERT INTO log (revision, key, deleted, prev_revision, prev_value) VALUES ($1, $2, $3, $4, $5)`)
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
		 VALUES ($1, $2, $3, $4, $5, $6, $7)
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
		if _, err := tx.ExecContext(ctx, `DELETE FROM objects WHERE key = $1`, k); err != nil {
			return fmt.Errorf("deleting %q: %w", k, err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE revision SET current = $1 WHERE id = 1`, w.revision); err != nil {
		return fmt.Errorf("moving the revision to %d: %w", w.revision, err)
	}
	return nil
}
