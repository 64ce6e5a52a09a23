// Package storage implements k8s.io/apiserver's storage.Interface on SQL: SQLite
// for one process on a laptop, PostgreSQL for production, where each shard is a
// schema that several processes may serve.
//
// A shard (Backend) holds the live objects in one table keyed by their etcd-style
// key, a log of every change (with the value each change replaced, so every
// version is stored once), and a revision counter. Keys compare byte by byte, so a
// list is a range scan, as in etcd. Any number of Stores (one per resource) share a
// Backend. The package guarantees, on both databases:
//
//  1. One revision sequence per shard; every committed change gets a unique
//     revision and revision order is commit order: nobody observes revision N+1
//     and later N. One writer per process commits changes in batches (group
//     commit) while holding the shard's revision row.
//  2. A watch from revision R delivers every change after R exactly once, in
//     order, with the previous object on updates and deletes, across restarts and
//     processes; from a compacted revision it gets 410 Gone. Progress requests and
//     notifications become bookmarks.
//  3. Lists are consistent: all pages of a paginated list come from the revision
//     of the first; lists at an older revision inside the compaction window work,
//     and fail outside it with etcd3's errors.
//  4. Writes are compare-and-swap on the key's revision, so concurrent
//     preconditioned updates never lose one.
//  5. An acknowledged write is committed durably (synchronous commit in Postgres,
//     synchronous=FULL in SQLite).
//  6. Reading or listing a key range costs O(objects in the range), whatever else
//     the shard holds.
package storage
