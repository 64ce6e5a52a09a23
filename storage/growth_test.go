package storage

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
)

// TestSQLiteFileStopsGrowingOnceCompacted rewrites the same objects round after
// round. While the log is compacted, the file stops growing (compaction frees the
// pages of old changes and later writes reuse them) and the WAL stays small
// (checkpoints truncate it); without compaction the same work keeps growing the
// file, which shows the workload would grow it.
func TestSQLiteFileStopsGrowingOnceCompacted(t *testing.T) {
	const objects, rounds = 100, 12
	payload := strings.Repeat("p", 2048)
	run := func(t *testing.T, compact bool) (sizes []int64, wal int64) {
		ctx := context.Background()
		b := newBackend(t, "sqlite", Config{CompactionInterval: -1})
		s := podStore(t, b, nil)
		key := func(i int) string { return fmt.Sprintf("/pods/ns/pod-%03d", i) }
		for i := range objects {
			pod := &example.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%03d", i), Namespace: "ns"}}
			if err := s.Create(ctx, key(i), pod, nil, 0); err != nil {
				t.Fatal(err)
			}
		}
		for round := range rounds {
			for i := range objects {
				err := s.GuaranteedUpdate(ctx, key(i), &example.Pod{}, false, nil,
					storage.SimpleUpdate(func(obj runtime.Object) (runtime.Object, error) {
						pod := obj.(*example.Pod)
						pod.Annotations = map[string]string{"round": fmt.Sprint(round), "payload": payload}
						return pod, nil
					}), nil)
				if err != nil {
					t.Fatal(err)
				}
			}
			if compact {
				current, err := b.CurrentRevision(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if err := b.Compact(ctx, current); err != nil {
					t.Fatal(err)
				}
			}
			sizes = append(sizes, fileSize(t, b.cfg.Storage))
		}
		return sizes, fileSize(t, b.cfg.Storage+"-wal")
	}

	compacted, wal := run(t, true)
	settled, last := compacted[rounds/3], compacted[rounds-1]
	if last > settled+settled/10 {
		t.Errorf("with compaction the file grew from %d bytes after round %d to %d after round %d", settled, rounds/3, last, rounds)
	}
	if wal > 1<<20 {
		t.Errorf("the WAL is %d bytes after a compaction's checkpoint, want at most 1 MiB", wal)
	}
	t.Logf("file sizes with compaction: %v; WAL %d", compacted, wal)
	uncompacted, _ := run(t, false)
	t.Logf("file sizes without compaction: %v", uncompacted)
	if grown := uncompacted[rounds-1]; grown < 2*last {
		t.Errorf("without compaction the file reached only %d bytes, against %d with it: the workload does not show growth", grown, last)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
