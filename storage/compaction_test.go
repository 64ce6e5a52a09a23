package storage

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
)

// compactedHistory writes five changes and compacts the log up to the third. It
// returns the revisions of the changes.
func compactedHistory(t *testing.T, b *Backend, s *Store) []int64 {
	t.Helper()
	ctx := context.Background()
	revisions := []int64{
		revisionOf(t, createPod(ctx, t, s, "c", "a")),
		revisionOf(t, createPod(ctx, t, s, "c", "b")),
		revisionOf(t, createPod(ctx, t, s, "c", "c")),
		revisionOf(t, relabel(ctx, t, s, "c", "a", "new")),
		revisionOf(t, createPod(ctx, t, s, "c", "d")),
	}
	if err := b.Compact(ctx, revisions[2]); err != nil {
		t.Fatal(err)
	}
	return revisions
}

func TestWatchFromCompactedRevisionFailsWithGone(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			b := newBackend(t, dialect, Config{CompactionInterval: -1})
			s := podStore(t, b, nil)
			revisions := compactedHistory(t, b, s)
			compacted := revisions[2]
			for _, c := range []struct {
				name      string
				key       string
				recursive bool
				later     []change
			}{
				{"prefix", "/pods/c/", true, []change{{watch.Modified, "c/a", revisions[3]}, {watch.Added, "c/d", revisions[4]}}},
				{"key", podKey("c", "a"), false, []change{{watch.Modified, "c/a", revisions[3]}}},
			} {
				t.Run(c.name, func(t *testing.T) {
					watchAt := func(from int64) watch.Interface {
						w, err := s.Watch(t.Context(), c.key, storage.ListOptions{
							ResourceVersion: strconv.FormatInt(from, 10),
							Recursive:       c.recursive,
							Predicate:       storage.Everything,
						})
						if err != nil {
							t.Fatal(err)
						}
						t.Cleanup(w.Stop)
						return w
					}
					for _, from := range []int64{revisions[0], compacted - 1} {
						ev := nextEvent(t, watchAt(from))
						status, ok := ev.Object.(*metav1.Status)
						if ev.Type != watch.Error || !ok {
							t.Fatalf("watch from %d, compacted at %d: got %s %T, want an error", from, compacted, ev.Type, ev.Object)
						}
						if status.Code != http.StatusGone || status.Reason != metav1.StatusReasonExpired {
							t.Errorf("watch from %d, compacted at %d: got status %d %s, want 410 Expired", from, compacted, status.Code, status.Reason)
						}
					}
					// The compacted revision itself is the oldest one can watch from:
					// every change after it is still in the log.
					expectChanges(t, watchAt(compacted), c.later)
				})
			}
		})
	}
}

func TestListAtCompactedRevisionIsTooOld(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			b := newBackend(t, dialect, Config{CompactionInterval: -1})
			s := podStore(t, b, nil)
			revisions := compactedHistory(t, b, s)
			list := func(revision int64) (*example.PodList, error) {
				out := &example.PodList{}
				return out, s.GetList(context.Background(), "/pods/c/", storage.ListOptions{
					ResourceVersion:      strconv.FormatInt(revision, 10),
					ResourceVersionMatch: metav1.ResourceVersionMatchExact,
					Recursive:            true,
					Predicate:            storage.Everything,
				}, out)
			}
			for _, revision := range []int64{revisions[0], revisions[2] - 1} {
				_, err := list(revision)
				if !apierrors.IsResourceExpired(err) || !strings.Contains(err.Error(), "too old") {
					t.Errorf("list at %d, compacted at %d: got %v, want 410 too old", revision, revisions[2], err)
				}
			}
			// At the compacted revision the list is still whole, with pod a as it
			// was before its update.
			got, err := list(revisions[2])
			if err != nil {
				t.Fatalf("list at the compacted revision %d: %v", revisions[2], err)
			}
			var items []string
			for _, pod := range got.Items {
				items = append(items, pod.Name+"@"+pod.ResourceVersion)
			}
			want := []string{"a@" + strconv.FormatInt(revisions[0], 10), "b@" + strconv.FormatInt(revisions[1], 10), "c@" + strconv.FormatInt(revisions[2], 10)}
			if strings.Join(items, " ") != strings.Join(want, " ") {
				t.Errorf("list at the compacted revision: got %v, want %v", items, want)
			}
		})
	}
}

func TestBackgroundCompactionAdvancesCompactRevision(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			b := newBackend(t, dialect, Config{CompactionInterval: 200 * time.Millisecond})
			s := podStore(t, b, nil)
			ctx := context.Background()
			// Each write must be compacted away without any call of Compact: the
			// loop compacts again and again, to revisions it saw itself.
			for _, name := range []string{"first", "second"} {
				written := revisionOf(t, createPod(ctx, t, s, "bg", name))
				deadline := time.Now().Add(eventTimeout)
				for s.CompactRevision() < written {
					if time.Now().After(deadline) {
						t.Fatalf("compact revision is %d after %v, want at least %d", s.CompactRevision(), eventTimeout, written)
					}
					time.Sleep(20 * time.Millisecond)
				}
				if _, compacted, err := b.db.revisions(ctx); err != nil || compacted < written {
					t.Fatalf("the database is compacted to %d (%v), want at least %d", compacted, err, written)
				}
			}
		})
	}
}
