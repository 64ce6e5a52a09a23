package storage

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
)

// ttlConfig checks for expired objects often, so a one-second TTL ends soon after
// the second.
var ttlConfig = Config{ExpiryInterval: 100 * time.Millisecond}

func createWithTTL(ctx context.Context, t *testing.T, s *Store, namespace, name string, ttl uint64) *example.Pod {
	t.Helper()
	out := &example.Pod{}
	if err := s.Create(ctx, podKey(namespace, name), newPod(namespace, name), out, ttl); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitGone waits until the key no longer exists.
func waitGone(t *testing.T, s *Store, key string) {
	t.Helper()
	deadline := time.Now().Add(eventTimeout)
	for {
		err := s.Get(context.Background(), key, storage.GetOptions{}, &example.Pod{})
		switch {
		case storage.IsNotFound(err):
			return
		case err != nil:
			t.Fatal(err)
		case time.Now().After(deadline):
			t.Fatalf("%s still exists after %v", key, eventTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestExpiredObjectIsDeletedAndWatchersSeeIt(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			b := newBackend(t, dialect, ttlConfig)
			s := podStore(t, b, nil)
			ctx := context.Background()
			from, err := b.CurrentRevision(ctx)
			if err != nil {
				t.Fatal(err)
			}
			w := watchFrom(t, s, "/pods/", from)
			start := time.Now()
			created := createWithTTL(ctx, t, s, "ttl", "short", 1)
			expectChanges(t, w, []change{{watch.Added, "ttl/short", revisionOf(t, created)}})

			// The deletion is a revision of its own, after the create.
			ev := nextEvent(t, w)
			got := changeOf(t, ev)
			if got.typ != watch.Deleted || got.key != "ttl/short" || got.revision <= revisionOf(t, created) {
				t.Fatalf("got %v, want the deletion of ttl/short after revision %d", got, revisionOf(t, created))
			}
			// Expiry times are whole milliseconds, which may cut a millisecond off.
			if lived := time.Since(start); lived < time.Second-time.Millisecond {
				t.Errorf("the pod was deleted after %v, before its TTL of 1s", lived)
			}
			err = s.Get(ctx, podKey("ttl", "short"), storage.GetOptions{}, &example.Pod{})
			if !storage.IsNotFound(err) {
				t.Errorf("reading the expired pod: got %v, want not found", err)
			}
		})
	}
}

func TestUpdateWithoutTTLRemovesTheExpiry(t *testing.T) {
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			b := newBackend(t, dialect, ttlConfig)
			s := podStore(t, b, nil)
			ctx := context.Background()
			createWithTTL(ctx, t, s, "ttl", "kept", 1)
			err := s.GuaranteedUpdate(ctx, podKey("ttl", "kept"), &example.Pod{}, false, nil,
				func(obj runtime.Object, _ storage.ResponseMeta) (runtime.Object, *uint64, error) {
					pod := obj.(*example.Pod)
					pod.Labels = map[string]string{"ttl": "none"}
					return pod, nil, nil
				}, nil)
			if err != nil {
				t.Fatal(err)
			}
			// A pod created later with the same TTL expires no earlier than the
			// first would have; once it is gone, the first would be too.
			createWithTTL(ctx, t, s, "ttl", "control", 1)
			waitGone(t, s, podKey("ttl", "control"))

			out := &example.Pod{}
			if err := s.Get(ctx, podKey("ttl", "kept"), storage.GetOptions{}, out); err != nil {
				t.Fatalf("the pod updated without a TTL is gone: %v", err)
			}
			if out.Labels["ttl"] != "none" {
				t.Errorf("labels are %v, want the update's", out.Labels)
			}
		})
	}
}
