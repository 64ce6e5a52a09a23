package storage

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/watch"
)

// twoProcesses opens two backends on one new Postgres shard, as two apiserver
// processes serving the same shard would. Neither polls the log: each learns
// of the other's writes from its notifications alone.
func twoProcesses(t *testing.T) (a, b *Backend) {
	t.Helper()
	a = newBackend(t, "postgres", Config{PollInterval: time.Hour})
	b, err := Open(context.Background(), Config{Storage: a.cfg.Storage, Shard: a.cfg.Shard, PollInterval: time.Hour})
	if err != nil {
		t.Fatalf("opening the second backend: %v", err)
	}
	t.Cleanup(b.Close)
	return a, b
}

func TestWatchersOfTwoProcessesSeeEveryWriteOfBothExactlyOnce(t *testing.T) {
	const writers, creates = 4, 15
	a, b := twoProcesses(t)
	ctx := context.Background()
	stores := []*Store{podStore(t, a, nil), podStore(t, b, nil)}
	from, err := a.CurrentRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	watchers := []watch.Interface{watchFrom(t, stores[0], "/pods/", from), watchFrom(t, stores[1], "/pods/", from)}

	// Writers alternate between the processes, and each creates, updates and
	// sometimes deletes, so the two writers' batches interleave in the log.
	changes := make([][]change, writers)
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		s := stores[i%2]
		wg.Go(func() {
			for j := range creates {
				var c []change
				c, errs[i] = writeMix(ctx, s, "mp", fmt.Sprintf("w%d-%d", i, j), j%3 == 0)
				changes[i] = append(changes[i], c...)
				if errs[i] != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := slices.Concat(changes...)
	slices.SortFunc(want, func(x, y change) int { return cmp.Compare(x.revision, y.revision) })
	// A sentinel written after everything else must be the next event: anything a
	// watcher still held back (a duplicate, a late event) would come before it.
	sentinel := createPod(ctx, t, stores[0], "mp", "sentinel")
	want = append(want, change{watch.Added, "mp/sentinel", revisionOf(t, sentinel)})
	for i, w := range watchers {
		t.Run(fmt.Sprintf("watcher of process %d", i), func(t *testing.T) {
			expectChanges(t, w, want)
		})
	}
}

func TestWatchInOtherProcessFromReturnedRevisionDeliversOnlyLaterChanges(t *testing.T) {
	a, b := twoProcesses(t)
	ctx := context.Background()
	sa, sb := podStore(t, a, nil), podStore(t, b, nil)
	from := revisionOf(t, createPod(ctx, t, sa, "mp", "x1"))
	want := []change{
		{watch.Added, "mp/x2", revisionOf(t, createPod(ctx, t, sa, "mp", "x2"))},
		{watch.Modified, "mp/x1", revisionOf(t, relabel(ctx, t, sa, "mp", "x1", "y"))},
	}
	w := watchFrom(t, sb, "/pods/", from)
	want = append(want, change{watch.Added, "mp/x3", revisionOf(t, createPod(ctx, t, sb, "mp", "x3"))})
	expectChanges(t, w, want)
}

// A client may learn a revision from one process and watch from it in another
// before that process has heard of the revision: the notification of the other
// process is late. Holding the second process's log reader back makes that
// deterministic.
func TestWatchFromRevisionAheadOfLaggingProcessDeliversOnlyLaterChanges(t *testing.T) {
	a, b := twoProcesses(t)
	ctx := context.Background()
	sa, sb := podStore(t, a, nil), podStore(t, b, nil)

	b.hub.tailMu.Lock()
	release := sync.OnceFunc(b.hub.tailMu.Unlock)
	t.Cleanup(release) // before b.Close, which waits for the reader
	from := revisionOf(t, createPod(ctx, t, sa, "mp", "x1"))
	want := []change{
		{watch.Added, "mp/x2", revisionOf(t, createPod(ctx, t, sa, "mp", "x2"))},
		{watch.Added, "mp/x3", revisionOf(t, createPod(ctx, t, sa, "mp", "x3"))},
	}
	w := watchFrom(t, sb, "/pods/", from)
	waitRegistered(t, b.hub, 1)
	release()
	want = append(want, change{watch.Added, "mp/x4", revisionOf(t, createPod(ctx, t, sa, "mp", "x4"))})
	expectChanges(t, w, want)
}

func TestConcurrentUpdatesFromTwoProcessesLoseNoIncrement(t *testing.T) {
	const goroutines, updates = 8, 25
	a, b := twoProcesses(t)
	stores := []*Store{podStore(t, a, nil), podStore(t, b, nil)}
	key := podKey("counters", "c")
	counterPod(t, stores[0], key)
	_, created := readCounter(t, stores[1], key)

	incrementConcurrently(t, stores, key, goroutines, updates)

	n, revision := readCounter(t, stores[1], key)
	if n != goroutines*updates {
		t.Errorf("counter is %d, want %d", n, goroutines*updates)
	}
	if revision != created+goroutines*updates {
		t.Errorf("pod at revision %d, want %d", revision, created+goroutines*updates)
	}
}

// leading tells, without waiting, whether l leads now.
func leading(l *Leadership) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.term != nil && l.term.Err() == nil
}

// TestOneOfTwoProcessesLeads: of two processes on one shard exactly one leads;
// when it goes, the other leads within seconds, and a term's context ends
// when its leader stops.
func TestOneOfTwoProcessesLeads(t *testing.T) {
	a, b := twoProcesses(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first, _, ok := a.Leadership().Leading(ctx)
	other := b
	if !ok {
		t.Fatal("nobody led")
	}
	if leading(b.Leadership()) {
		// b won the race; the roles are swapped.
		a, other = b, a
		first, _, _ = a.Leadership().Leading(ctx)
	}
	for range 3 {
		time.Sleep(time.Second)
		if leading(a.Leadership()) == leading(other.Leadership()) {
			t.Fatalf("leading: %v and %v, want exactly one", leading(a.Leadership()), leading(other.Leadership()))
		}
	}
	start := time.Now()
	a.Close()
	if first.Err() == nil {
		t.Error("the term of a closed backend did not end")
	}
	if _, _, ok := other.Leadership().Leading(ctx); !ok {
		t.Fatal("the other process never led")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the other process took over after %s", took)
	}
}

func TestTheOneSQLiteProcessLeads(t *testing.T) {
	b := newBackend(t, "sqlite", Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, ok := b.Leadership().Leading(ctx); !ok {
		t.Fatal("the process serving a SQLite file does not lead")
	}
}

// TestOwnNotificationsCostNoLogRead: a process learns of its own commits from
// its writer, whatever the order in which their notifications come back, so
// writing reads nothing of the log.
func TestOwnNotificationsCostNoLogRead(t *testing.T) {
	ctx := context.Background()
	b, counting := newCountingBackend(t, "postgres", Config{PollInterval: time.Hour})
	s := podStore(t, b, nil)
	// The listener's first read, once it listens, catches up with what it may
	// have missed.
	deadline := time.Now().Add(10 * time.Second)
	for counting.logReads.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the listener did not read the log after it started listening")
		}
		time.Sleep(10 * time.Millisecond)
	}
	reads := counting.logReads.Load()
	const creates = 30
	for i := range creates {
		createPod(ctx, t, s, "ns", fmt.Sprintf("p%d", i))
	}
	time.Sleep(200 * time.Millisecond) // the last notifications come back
	if n := counting.logReads.Load() - reads; n != 0 {
		t.Fatalf("%d creates read the log %d times, want 0", creates, n)
	}
}
