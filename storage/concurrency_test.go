package storage

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"
)

// counterAnnotation holds the counter that concurrent updates increment.
const counterAnnotation = "warren.test/counter"

// increment is an update function adding one to the pod's counter.
func increment(obj runtime.Object, _ storage.ResponseMeta) (runtime.Object, *uint64, error) {
	pod := obj.(*example.Pod)
	n, err := strconv.Atoi(pod.Annotations[counterAnnotation])
	if err != nil {
		return nil, nil, err
	}
	pod.Annotations[counterAnnotation] = strconv.Itoa(n + 1)
	return pod, nil, nil
}

// incrementConcurrently runs goroutines × updates increments of the pod's counter
// through the stores, goroutine i using stores[i%len(stores)].
func incrementConcurrently(t *testing.T, stores []*Store, key string, goroutines, updates int) {
	t.Helper()
	ctx := context.Background()
	start := make(chan struct{})
	errs := make(chan error, goroutines)
	var wg sync.WaitGroup
	for i := range goroutines {
		s := stores[i%len(stores)]
		wg.Go(func() {
			<-start
			for range updates {
				if err := s.GuaranteedUpdate(ctx, key, &example.Pod{}, false, nil, increment, nil); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("increment failed: %v", err)
	}
}

// counterPod creates a pod whose counter is zero.
func counterPod(t *testing.T, s *Store, key string) {
	t.Helper()
	pod := newPod("counters", "c")
	pod.Annotations = map[string]string{counterAnnotation: "0"}
	if err := s.Create(context.Background(), key, pod, nil, 0); err != nil {
		t.Fatal(err)
	}
}

// readCounter returns the pod's counter and the revision it was read at.
func readCounter(t *testing.T, s *Store, key string) (int, int64) {
	t.Helper()
	out := &example.Pod{}
	if err := s.Get(context.Background(), key, storage.GetOptions{}, out); err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(out.Annotations[counterAnnotation])
	if err != nil {
		t.Fatal(err)
	}
	return n, revisionOf(t, out)
}

func TestConcurrentGuaranteedUpdatesLoseNoIncrement(t *testing.T) {
	const goroutines, updates = 16, 40
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			b := newBackend(t, dialect, Config{})
			s := podStore(t, b, nil)
			key := podKey("counters", "c")
			counterPod(t, s, key)
			_, created := readCounter(t, s, key)

			incrementConcurrently(t, []*Store{s}, key, goroutines, updates)

			n, revision := readCounter(t, s, key)
			if n != goroutines*updates {
				t.Errorf("counter is %d, want %d", n, goroutines*updates)
			}
			// Every increment is one write: a lost update would leave the count
			// short, a duplicated one would add a revision.
			if revision != created+goroutines*updates {
				t.Errorf("pod at revision %d, want %d", revision, created+goroutines*updates)
			}
		})
	}
}

func TestConcurrentCreatesOfOneKeyExactlyOneWins(t *testing.T) {
	const goroutines = 16
	for _, dialect := range dialects {
		t.Run(dialect, func(t *testing.T) {
			b := newBackend(t, dialect, Config{})
			s := podStore(t, b, nil)
			ctx := context.Background()
			key := podKey("race", "same")

			// A barrier lets the creates reach the writer together, so that many
			// share one batch and the batch itself must refuse all but the first.
			start := make(chan struct{})
			errs := make([]error, goroutines)
			var wg sync.WaitGroup
			for i := range goroutines {
				wg.Go(func() {
					pod := newPod("race", "same")
					pod.Labels = map[string]string{"creator": strconv.Itoa(i)}
					<-start
					errs[i] = s.Create(ctx, key, pod, &example.Pod{}, 0)
				})
			}
			close(start)
			wg.Wait()

			winner := -1
			for i, err := range errs {
				switch {
				case err == nil && winner >= 0:
					t.Errorf("creates %d and %d both succeeded", winner, i)
				case err == nil:
					winner = i
				case !storage.IsExist(err):
					t.Errorf("create %d: got %v, want a key-exists error", i, err)
				}
			}
			if winner < 0 {
				t.Fatal("no create succeeded")
			}
			out := &example.Pod{}
			if err := s.Get(ctx, key, storage.GetOptions{}, out); err != nil {
				t.Fatal(err)
			}
			if got := out.Labels["creator"]; got != strconv.Itoa(winner) {
				t.Errorf("stored pod was created by %s, but create %d succeeded", got, winner)
			}
		})
	}
}
