package storage

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/component-base/metrics/legacyregistry"
)

// TestMetricsAreExported writes through a store with a short compaction interval
// and finds the store's metrics, with values, in the registry the apiserver's
// /metrics serves.
func TestMetricsAreExported(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t, "sqlite", Config{CompactionInterval: 100 * time.Millisecond})
	s := podStore(t, b, nil)
	w := watchFrom(t, s, "/pods/", 1)
	for _, name := range []string{"a", "b", "c"} {
		pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}}
		if err := s.Create(ctx, "/pods/ns/"+name, pod, nil, 0); err != nil {
			t.Fatal(err)
		}
	}
	nextEvent(t, w)
	want := []string{
		"warren_storage_write_batch_size", "warren_storage_commit_duration_seconds",
		"warren_storage_compaction_duration_seconds", "warren_storage_rows",
		"warren_storage_watch_dispatched_revision", "warren_storage_watch_lag_revisions",
		"warren_storage_watchers", "warren_storage_transactions_total",
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		families, err := legacyregistry.DefaultGatherer.Gather()
		if err != nil {
			t.Fatal(err)
		}
		found := map[string]bool{}
		for _, f := range families {
			if len(f.GetMetric()) > 0 {
				found[f.GetName()] = true
			}
		}
		var missing []string
		for _, name := range want {
			if !found[name] {
				missing = append(missing, name)
			}
		}
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics without values after 10 s: %v", missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDatabaseBytes finds the database's size in warren_storage_database_bytes
// and sees it grow as objects are stored.
func TestDatabaseBytes(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			b := newBackend(t, dialect, Config{})
			s := podStore(t, b, nil)
			before, err := b.db.databaseBytes(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if before <= 0 {
				t.Fatalf("an empty shard takes %d bytes", before)
			}
			const objects, writers = 1000, 16
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := w; i < objects; i += writers {
						name := fmt.Sprintf("pod-%04d", i)
						if err := s.Create(ctx, podKey("ns", name), newPod("ns", name), &example.Pod{}, 0); err != nil {
							t.Errorf("creating %s: %v", name, err)
							return
						}
					}
				})
			}
			wg.Wait()
			after, err := b.db.databaseBytes(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("database: %d bytes empty, %d bytes with %d objects", before, after, objects)
			if after <= before {
				t.Errorf("%d objects later the database takes %d bytes, before %d", objects, after, before)
			}
			exported := gatheredValue(t, "warren_storage_database_bytes")
			if exported < float64(after) {
				t.Errorf("warren_storage_database_bytes is %.0f, want at least this backend's %d", exported, after)
			}
		})
	}
}

// gatheredValue is the value of the unlabelled metric name in the registry that
// /metrics serves.
func gatheredValue(t *testing.T, name string) float64 {
	t.Helper()
	families, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s not gathered", name)
	return 0
}
