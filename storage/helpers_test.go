package storage

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
)

// eventTimeout bounds every wait for a watch event, so that a lost event fails the
// test instead of hanging it.
const eventTimeout = 30 * time.Second

// podKey is the key podStore keeps a pod under; an empty namespace makes a
// cluster-scoped key.
func podKey(namespace, name string) string {
	if namespace == "" {
		return "/pods/" + name
	}
	return "/pods/" + namespace + "/" + name
}

func newPod(namespace, name string) *example.Pod {
	return &example.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
}

// createPod stores a new pod and returns it as stored.
func createPod(ctx context.Context, t testing.TB, s *Store, namespace, name string) *example.Pod {
	t.Helper()
	out := &example.Pod{}
	if err := s.Create(ctx, podKey(namespace, name), newPod(namespace, name), out, 0); err != nil {
		t.Fatalf("creating %s: %v", podKey(namespace, name), err)
	}
	return out
}

// relabel sets a label of a stored pod, so that the update writes a new revision.
func relabel(ctx context.Context, t testing.TB, s *Store, namespace, name, value string) *example.Pod {
	t.Helper()
	out := &example.Pod{}
	err := s.GuaranteedUpdate(ctx, podKey(namespace, name), out, false, nil,
		func(obj runtime.Object, _ storage.ResponseMeta) (runtime.Object, *uint64, error) {
			pod := obj.(*example.Pod)
			pod.Labels = map[string]string{"value": value}
			return pod, nil, nil
		}, nil)
	if err != nil {
		t.Fatalf("updating %s: %v", podKey(namespace, name), err)
	}
	return out
}

// revisionOf is the revision an object was read or written at.
func revisionOf(t testing.TB, obj runtime.Object) int64 {
	t.Helper()
	rv, err := storage.APIObjectVersioner{}.ObjectResourceVersion(obj)
	if err != nil {
		t.Fatalf("reading the resource version: %v", err)
	}
	return int64(rv)
}

// watchFrom watches every key under the recursive key from a revision on.
func watchFrom(t testing.TB, s *Store, key string, revision int64) watch.Interface {
	t.Helper()
	w, err := s.Watch(t.Context(), key, storage.ListOptions{
		ResourceVersion: strconv.FormatInt(revision, 10),
		Recursive:       true,
		Predicate:       storage.Everything,
	})
	if err != nil {
		t.Fatalf("watching %s from %d: %v", key, revision, err)
	}
	t.Cleanup(w.Stop)
	return w
}

// nextEvent waits for the watch's next event.
func nextEvent(t testing.TB, w watch.Interface) watch.Event {
	t.Helper()
	select {
	case ev, ok := <-w.ResultChan():
		if !ok {
			t.Fatal("the watch ended")
		}
		return ev
	case <-time.After(eventTimeout):
		t.Fatalf("no watch event within %v", eventTimeout)
	}
	return watch.Event{}
}

// waitRegistered waits until the hub feeds n watchers.
func waitRegistered(t *testing.T, h *hub, n int) {
	t.Helper()
	deadline := time.Now().Add(eventTimeout)
	for {
		h.mu.Lock()
		registered := len(h.all)
		h.mu.Unlock()
		if registered == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d watchers registered after %v, want %d", registered, eventTimeout, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// change is what the tests compare of a watch event.
type change struct {
	typ      watch.EventType
	key      string // namespace/name
	revision int64
}

func (c change) String() string { return fmt.Sprintf("%s %s@%d", c.typ, c.key, c.revision) }

func changeOf(t testing.TB, ev watch.Event) change {
	t.Helper()
	if ev.Type == watch.Error {
		t.Fatalf("watch error: %v", ev.Object)
	}
	m, err := meta.Accessor(ev.Object)
	if err != nil {
		t.Fatalf("%s event of %T: %v", ev.Type, ev.Object, err)
	}
	return change{typ: ev.Type, key: m.GetNamespace() + "/" + m.GetName(), revision: revisionOf(t, ev.Object)}
}

// expectChanges reads as many events as want holds and fails at the first that
// differs.
func expectChanges(t testing.TB, w watch.Interface, want []change) {
	t.Helper()
	for i, c := range want {
		if got := changeOf(t, nextEvent(t, w)); got != c {
			t.Fatalf("event %d of %d: got %v, want %v", i+1, len(want), got, c)
		}
	}
}

// writeMix creates a pod, updates it and, if del, deletes it, and returns the
// changes a watcher sees. It reports errors instead of ending the test, so that
// goroutines may call it.
func writeMix(ctx context.Context, s *Store, namespace, name string, del bool) ([]change, error) {
	key := podKey(namespace, name)
	var changes []change
	add := func(typ watch.EventType, out runtime.Object) error {
		rv, err := storage.APIObjectVersioner{}.ObjectResourceVersion(out)
		changes = append(changes, change{typ, namespace + "/" + name, int64(rv)})
		return err
	}
	out := &example.Pod{}
	if err := s.Create(ctx, key, newPod(namespace, name), out, 0); err != nil {
		return changes, fmt.Errorf("creating %s: %w", key, err)
	}
	if err := add(watch.Added, out); err != nil {
		return changes, err
	}
	out = &example.Pod{}
	err := s.GuaranteedUpdate(ctx, key, out, false, nil,
		func(obj runtime.Object, _ storage.ResponseMeta) (runtime.Object, *uint64, error) {
			pod := obj.(*example.Pod)
			pod.Labels = map[string]string{"updated": "true"}
			return pod, nil, nil
		}, nil)
	if err != nil {
		return changes, fmt.Errorf("updating %s: %w", key, err)
	}
	if err := add(watch.Modified, out); err != nil || !del {
		return changes, err
	}
	out = &example.Pod{}
	if err := s.Delete(ctx, key, out, nil, storage.ValidateAllObjectFunc, nil, storage.DeleteOptions{}); err != nil {
		return changes, fmt.Errorf("deleting %s: %w", key, err)
	}
	return changes, add(watch.Deleted, out)
}
