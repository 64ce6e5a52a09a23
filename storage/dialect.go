package storage

import (
	"bytes"
	"context"
	"errors"

	"github.com/golang-migrate/migrate/v4/database"
)

// dialect is what one database adds to the shard's tables (tables.go): a way to
// run a statement, the write path, and what only that database has. It is
// narrow on purpose: what a read means — which rows are live at a revision, how
// a page ends, what a compacted revision refuses — is decided once, in tables.go,
// in SQL that both databases run as written.
type dialect interface {
	// name is the database's name in golang-migrate ("postgres", "sqlite").
	name() string
	// query runs one read statement. A statement reads one snapshot, on either
	// database.
	query(ctx context.Context, sql string, args ...any) (cursor, error)
	// snapshot runs fn in a read-only transaction: every statement fn runs
	// through read sees one snapshot.
	snapshot(ctx context.Context, fn func(read queryFunc) error) error
	// exec runs one statement that writes, as a transaction of its own, and
	// returns how many rows it changed.
	exec(ctx context.Context, sql string, args ...any) (int64, error)
	// writeBatch commits one batch of writes in one transaction. Holding the
	// shard's write lock, it reads the current revision, the live rows under
	// keys and which of clusters are erased, asks decide what to write, writes
	// it and commits. If decide returns no log entries, fences or revived
	// clusters, nothing is written. decide may change erased.
	writeBatch(ctx context.Context, keys, clusters []string, decide func(current int64, live map[string]row, erased map[string]bool) batchWrite) error
	// reclaim is called after a compaction deleted log rows, to give their
	// space back where the database does not do so by itself.
	reclaim(ctx context.Context) error
	// databaseBytes is the space the shard's database takes on disk.
	databaseBytes(ctx context.Context) (int64, error)
	// listen announces the revisions other processes commit until ctx ends;
	// 0 announces an unknown revision. Databases that only one process writes
	// announce nothing and return at once.
	listen(ctx context.Context, announce func(revision int64))
	// elect makes this process the shard's leader whenever no other process
	// of the shard is, until ctx ends: it calls lead with a context that ends
	// when this process stops leading, and tries again after. Databases that
	// only one process serves make it the leader at once, for good.
	elect(ctx context.Context, lead func(term context.Context))
	// migrationDriver returns golang-migrate's driver for the shard, on a
	// connection of its own that closing the driver closes.
	migrationDriver() (database.Driver, error)
	close()
}

// queryFunc runs one read statement.
type queryFunc func(ctx context.Context, sql string, args ...any) (cursor, error)

// cursor is a statement's result, read row by row: what pgx.Rows and
// database/sql's Rows both are.
type cursor interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// row is one live object as stored.
type row struct {
	key      string
	revision int64
	value    []byte
	// decoded is the entry of the cache of decoded objects that holds value
	// as stored, if the page's reader found one (listQuery.keep).
	decoded *decodedObject
}

// event is one change: value is what it wrote, nil for a delete; prevRevision is
// 0 and prevValue nil for a create.
type event struct {
	revision     int64
	key          string
	value        []byte
	prevRevision int64
	prevValue    []byte
}

// keyRange is the half-open key range [start, end).
type keyRange struct {
	start, end string
}

// listQuery asks for live rows of r in key order.
type listQuery struct {
	r keyRange
	// revision to read at; 0 reads the current state.
	revision int64
	// limit on rows returned; 0 returns all.
	limit int64
	// count asks for the number of keys in r, counting at most this many, when
	// the page does not hold them all; 0 asks for none.
	count int64
	// keep returns what the page holds of a row's value, which the cursor
	// reuses once it moves on: a copy, or equal bytes the caller holds
	// already, with the cache's entry that holds them. nil copies.
	keep func(key string, revision int64, value []byte) ([]byte, *decodedObject)
}

// row is what q's page holds of a row read.
func (q listQuery) row(key string, revision int64, value []byte) row {
	if q.keep == nil {
		return row{key: key, revision: revision, value: bytes.Clone(value)}
	}
	kept, decoded := q.keep(key, revision, value)
	return row{key: key, revision: revision, value: kept, decoded: decoded}
}

// page is the answer to a listQuery.
type page struct {
	rows []row
	// revision is the revision the page was read at.
	revision int64
	// more tells that r holds keys after the last row.
	more bool
	// count is the number of keys in r, if asked for and more is set; a count
	// that reached the query's cap only says "at least".
	count int64
	// appended holds every row read into the page's array, for
	// tables.recycle; nil if the array is not to be reused.
	appended *[]row
}

// batchWrite is what one batch changes.
type batchWrite struct {
	log     []event
	upserts []upsert
	deletes []string
	// fences are clusters to record as erased, revived clusters not to.
	fences, revived []string
	// revision is the current revision after the batch.
	revision int64
}

// upsert is the new state of a live key.
type upsert struct {
	// stored tells that the key has a row already, which the write updates.
	stored                   bool
	key                      string
	cluster, namespace, name string
	revision                 int64
	// expiresAt is in Unix milliseconds; 0 means the object never expires.
	expiresAt int64
	value     []byte
}

// errCompacted tells that a revision was compacted.
var errCompacted = errors.New("required revision has been compacted")

// futureRevisionError tells that a revision is newer than the current one.
type futureRevisionError struct {
	current int64
}

func (e *futureRevisionError) Error() string {
	return "required revision is a future revision"
}
