package storage

import (
	"context"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
)

func TestRestartKeepsTheLogAndTheRevisionSequence(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			cfg := Config{}
			cfg.Storage, cfg.Shard = newShard(t, dialect)
			first, err := Open(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			closeFirst := sync.OnceFunc(first.Close)
			t.Cleanup(closeFirst)
			s := podStore(t, first, nil)

			var history []change
			for _, c := range []struct {
				name string
				del  bool
			}{{"a", false}, {"b", true}, {"c", false}, {"d", true}} {
				changes, err := writeMix(ctx, s, "restart", c.name, c.del)
				if err != nil {
					t.Fatal(err)
				}
				history = append(history, changes...)
			}
			last := history[len(history)-1].revision
			closeFirst()

			second, err := Open(ctx, cfg)
			if err != nil {
				t.Fatalf("reopening: %v", err)
			}
			t.Cleanup(second.Close)
			s = podStore(t, second, nil)
			if current, err := second.CurrentRevision(ctx); err != nil || current != last {
				t.Fatalf("current revision after restart is %d (%v), want %d", current, err, last)
			}
			out := &example.Pod{}
			if err := s.Get(ctx, podKey("restart", "c"), storage.GetOptions{}, out); err != nil {
				t.Fatalf("reading a pod written before the restart: %v", err)
			}

			// Watches from before, inside and at the end of the old history get the
			// rest of it, then the writes of the new process, which continue the
			// sequence.
			starts := []int64{1, history[2].revision, last}
			watchers := make([]watch.Interface, len(starts))
			for i, from := range starts {
				watchers[i] = watchFrom(t, s, "/pods/", from)
			}
			created := createPod(ctx, t, s, "restart", "after")
			if rv := revisionOf(t, created); rv != last+1 {
				t.Errorf("first write after the restart got revision %d, want %d", rv, last+1)
			}
			for i, from := range starts {
				var want []change
				for _, c := range history {
					if c.revision > from {
						want = append(want, c)
					}
				}
				want = append(want, change{watch.Added, "restart/after", revisionOf(t, created)})
				expectChanges(t, watchers[i], want)
			}
		})
	}
}
