package storage

import (
	"context"
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
		"warren_storage_watchers",
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
