package storage

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
)

// A watcher whose client stops reading holds resultBuffer events waiting for the
// client, up to maxQueue taken from its queue and maxQueue more queued; past that
// the hub drops it and it must read the rest from the log when its client reads
// again.
func TestSlowWatcherGetsEveryEventAfterOverflow(t *testing.T) {
	const writers, creates = 30, 100
	if writers*creates <= 2*maxQueue+resultBuffer+1 {
		t.Fatalf("%d writes do not overflow a watcher", writers*creates)
	}
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			b := newBackend(t, dialect, Config{})
			s := podStore(t, b, nil)
			ctx := context.Background()
			from, err := b.CurrentRevision(ctx)
			if err != nil {
				t.Fatal(err)
			}
			w := watchFrom(t, s, "/pods/", from)
			waitRegistered(t, b.hub, 1)

			// Concurrent writers make batches, which keeps the test fast.
			want := make([][]change, writers)
			errs := make([]error, writers)
			var wg sync.WaitGroup
			for i := range writers {
				wg.Go(func() {
					for j := range creates {
						name := fmt.Sprintf("p%d-%d", i, j)
						out := &example.Pod{}
						if errs[i] = s.Create(ctx, podKey("slow", name), newPod("slow", name), out, 0); errs[i] != nil {
							return
						}
						rv, err := storage.APIObjectVersioner{}.ObjectResourceVersion(out)
						if errs[i] = err; err != nil {
							return
						}
						want[i] = append(want[i], change{watch.Added, "slow/" + name, int64(rv)})
					}
				})
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			// Writes are dispatched before they are acknowledged, so by now the
			// hub has given up on the watcher: the rest is the slow path's.
			waitRegistered(t, b.hub, 0)

			all := slices.Concat(want...)
			slices.SortFunc(all, func(x, y change) int { return cmp.Compare(x.revision, y.revision) })
			sentinel := createPod(ctx, t, s, "slow", "sentinel")
			all = append(all, change{watch.Added, "slow/sentinel", revisionOf(t, sentinel)})
			expectChanges(t, w, all)
		})
	}
}
