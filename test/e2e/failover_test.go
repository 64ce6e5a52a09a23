package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/warren-dev/warren/test/pgtest"
)

// TestPostgresFailover runs warren on a PostgreSQL primary with a synchronous
// standby, both in its --storage URL (target_session_attrs=read-write), while
// four clients write and one watches. The primary is stopped (immediate) and
// the standby promoted (the old primary then becomes its standby): warren
// writes again at once, by itself; no
// acknowledged write is lost; the watch, resumed from its last revision as
// client-go does, sees every acknowledged write exactly once.
func TestPostgresFailover(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pair := pgtest.NewReplicatedPair(t)
	if err := pgtest.CreateSchema(ctx, pair.URL(), "failover"); err != nil {
		t.Fatal(err)
	}
	s := startServerWith(t, "--storage", pair.URL(), "--shard", "failover")
	configMaps := s.client("root").CoreV1().ConfigMaps("default")

	list, err := configMaps.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watcher, err := watchtools.NewRetryWatcherWithContext(watchCtx, list.ResourceVersion, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			return configMaps.Watch(ctx, opts)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen, acked := map[string]int{}, map[string]bool{}
	go func() {
		for ev := range watcher.ResultChan() {
			if cm, ok := ev.Object.(*corev1.ConfigMap); ok && ev.Type == watch.Added {
				mu.Lock()
				seen[cm.Name]++
				mu.Unlock()
			}
		}
	}()

	writeCtx, stopWriting := context.WithCancel(ctx)
	var writers sync.WaitGroup
	for w := range 4 {
		writers.Go(func() {
			for i := 0; writeCtx.Err() == nil; i++ {
				name := fmt.Sprintf("w%d-%d", w, i)
				wctx, cancel := context.WithTimeout(writeCtx, 5*time.Second)
				_, err := configMaps.Create(wctx, configMap(name), metav1.CreateOptions{})
				cancel()
				if err == nil {
					mu.Lock()
					acked[name] = true
					mu.Unlock()
				} else {
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(2 * time.Second)
	if err := pair.Failover(ctx); err != nil {
		t.Fatal(err)
	}
	promoted := time.Now()
	var serving time.Duration
	for deadline := promoted.Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := configMaps.Create(wctx, configMap(fmt.Sprintf("probe-%d", time.Now().UnixNano())), metav1.CreateOptions{})
		cancel()
		if err == nil {
			serving = time.Since(promoted)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("warren does not write 30 s after the failover: %v", err)
		}
	}
	t.Logf("warren wrote again %s after the failover", serving)
	if serving > 15*time.Second {
		t.Errorf("warren wrote again only %s after the failover", serving)
	}
	time.Sleep(time.Second)
	stopWriting()
	writers.Wait()

	mu.Lock()
	names := make([]string, 0, len(acked))
	for name := range acked {
		names = append(names, name)
	}
	mu.Unlock()
	if len(names) == 0 {
		t.Fatal("no write was acknowledged")
	}
	for _, name := range names {
		if _, err := configMaps.Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("acknowledged write %s lost: %v", name, err)
		}
	}
	eventually(t, "the watch sees every acknowledged write exactly once", func() error {
		mu.Lock()
		defer mu.Unlock()
		for _, name := range names {
			if seen[name] != 1 {
				return fmt.Errorf("the watch saw %s %d times (of %d acknowledged writes)", name, seen[name], len(names))
			}
		}
		for name, n := range seen {
			if n > 1 {
				return fmt.Errorf("the watch saw %s %d times", name, n)
			}
		}
		return nil
	})
	t.Logf("%d writes acknowledged, all kept and watched once", len(names))
}
