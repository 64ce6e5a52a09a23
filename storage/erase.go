package storage

import (
	"context"
	"fmt"
)

// eraseChunk is how many keys EraseCluster reads, then deletes, at a time.
const eraseChunk = 500

// EraseCluster deletes every object of a logical cluster, in every resource of the
// shard: each live object whose cluster is exactly cluster ("ab" never matches
// "abc"). It returns how many it deleted.
//
// Every deletion is an ordinary compare-and-swap delete through the writer, as a
// client's would be: it gets a revision of its own and a log entry, and watchers,
// including wildcard watches of a whole resource, see a DELETED event with the
// previous object. An object changed by a concurrent write is read again and
// deleted at its new revision, and objects created in the cluster meanwhile are
// deleted too: it returns once a read finds the cluster empty. The empty name
// names no cluster (unclustered resources store it), so erasing it deletes nothing.
//
// The cluster is recorded as erased first, and for good: from then on no write,
// of this process or any other serving the shard, creates an object in it (the
// client hears 404), so none is left behind by a request that raced the erase.
//
// If ctx ends or a write fails, it returns the deletions it saw commit and the
// error; deletes already handed to the writer may still commit.
func (b *Backend) EraseCluster(ctx context.Context, cluster string) (int, error) {
	if cluster == "" {
		return 0, nil
	}
	// First the fence, through the writer: every write committed after it
	// fails to create an object in the cluster, and every one committed
	// before it is there for the reads below to delete.
	if res := b.submit(ctx, &write{fence: cluster}); res.err != nil {
		return 0, fmt.Errorf("erasing cluster %q: recording it erased: %w", cluster, res.err)
	}
	deleted := 0
	for {
		rows, err := b.db.clusterRows(ctx, cluster, eraseChunk)
		if err != nil {
			return deleted, fmt.Errorf("erasing cluster %q: %w", cluster, err)
		}
		if len(rows) == 0 {
			return deleted, nil
		}
		// Queue the chunk before waiting for any, so it commits in few batches.
		deletes := make([]*write, 0, len(rows))
		for _, r := range rows {
			w := &write{key: r.key, expect: r.revision}
			if err := b.enqueue(ctx, w); err != nil {
				return deleted, fmt.Errorf("erasing cluster %q: %w", cluster, err)
			}
			deletes = append(deletes, w)
		}
		for _, w := range deletes {
			res := b.await(ctx, w)
			if res.err != nil {
				return deleted, fmt.Errorf("erasing cluster %q: deleting %q: %w", cluster, w.key, res.err)
			}
			// A failed compare-and-swap leaves the key to the next read.
			if res.ok() {
				deleted++
			}
		}
	}
}

// ReviveCluster lifts the fence of an erased cluster, for a logical cluster
// made again under the same name (a user's home is named after the user).
// Writes committed after it create objects in the cluster again.
func (b *Backend) ReviveCluster(ctx context.Context, cluster string) error {
	if res := b.submit(ctx, &write{revive: cluster}); res.err != nil {
		return fmt.Errorf("reviving cluster %q: %w", cluster, res.err)
	}
	return nil
}
