package storage

import (
	"context"
	"errors"

	"github.com/golang-migrate/migrate/v4/database"
)

// dialect is everything the store needs from a database. The store's logic (revisions,
// preconditions, watch, compaction) is written once against it; each database is one
// small file of SQL behind it.
//
// Every method that reads more than one thing reads it from one snapshot.
type dialect interface {
	// get returns the live row under key (nil if there is none) and the shard's
	// current revision.
	get(ctx context.Context, key string) (*row, int64, error)
	// list reads a page of live rows in key order, at the current revision or, if
	// q.revision is set, at that revision. It returns errCompacted if that revision
	// was compacted and a futureRevisionError if it is newer than the current one.
	list(ctx context.Context, q listQuery) (page, error)
	// stats counts the live rows in r and sums the sizes of their values.
	stats(ctx context.Context, r keyRange) (count, bytes int64, err error)
	// events returns up to limit changes of keys in r with revisions after `after`, in
	// revision order; errCompacted if changes after `after` have been compacted.
	events(ctx context.Context, after int64, r keyRange, limit int) ([]event, error)
	// rowCounts counts the rows of the objects and the log table.
	rowCounts(ctx context.Context) (objects, log int64, err error)
	// revisions returns the current and the compacted revision.
	revisions(ctx context.Context) (current, compacted int64, err error)
	// writeBatch commits one batch of writes in one transaction. Holding the
	// shard's write lock, it reads the current revision and the live rows under
	// keys, asks decide what to write, writes it and commits. If decide returns
	// no log entries, nothing is written.
	writeBatch(ctx context.Context, keys []string, decide func(current int64, live map[string]row) batchWrite) error
	// compact forgets the changes up to and including revision.
	compact(ctx context.Context, revision int64) error
	// expired returns up to limit live rows whose TTL ran out at or before now
	// (Unix milliseconds), soonest first.
	expired(ctx context.Context, now int64, limit int) ([]row, error)
	// clusterRows returns the keys and revisions (no values) of up to limit live
	// rows whose cluster column is exactly cluster, read through the cluster's index.
	clusterRows(ctx context.Context, cluster string, limit int) ([]row, error)
	// databaseBytes is the space the shard's database takes on disk.
	databaseBytes(ctx context.Context) (int64, error)
	// listen announces the revisions other processes commit until ctx ends;
	// 0 announces an unknown revision. Databases that only one process writes
	// announce nothing and return at once.
	listen(ctx context.Context, announce func(revision int64))
	// migrationDriver returns golang-migrate's driver for the shard, on a
	// connection of its own that closing the driver closes.
	migrationDriver() (database.Driver, error)
	close()
}

// row is one live object as stored.
type row struct {
	key      string
	revision int64
	value    []byte
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
}

// batchWrite is what one batch changes.
type batchWrite struct {
	log     []event
	upserts []upsert
	deletes []string
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
