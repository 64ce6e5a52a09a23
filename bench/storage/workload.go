package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/apiserver/pkg/apis/example"
	"k8s.io/apiserver/pkg/storage"

	"github.com/warren-dev/warren/bench/report"
)

// workload is the work every target does, the same for each.
type workload struct {
	creates, clusters, writers int
	updates, gets, lists       int
	readers                    int
	pageSize                   int64
	watchWrites                int
	payload                    string // makes an object about 1 KiB
}

func (w *workload) key(cluster, i int) string {
	return fmt.Sprintf("/pods/cluster-%04d/default/pod-%03d", cluster, i)
}

func (w *workload) perCluster() int { return w.creates / w.clusters }

// run does every phase on t and returns its results.
func (w *workload) run(ctx context.Context, t *target) ([]report.Result, error) {
	var results []report.Result
	phases := []struct {
		op  string
		run func(context.Context, *target, *report.Progress) ([]time.Duration, time.Duration, error)
	}{
		{"create", w.create},
		{"update", w.update},
		{"get", w.get},
		{"list-cluster", w.listCluster},
		{"list-all", w.listAll},
		{"watch", func(ctx context.Context, t *target, p *report.Progress) ([]time.Duration, time.Duration, error) {
			return w.watchLatency(ctx, "watch", t.store, t.store, p)
		}},
	}
	if t.openRemote != nil {
		phases = append(phases, struct {
			op  string
			run func(context.Context, *target, *report.Progress) ([]time.Duration, time.Duration, error)
		}{"watch-remote", func(ctx context.Context, t *target, p *report.Progress) ([]time.Duration, time.Duration, error) {
			remote, err := t.openRemote()
			if err != nil {
				return nil, 0, fmt.Errorf("starting a second process: %w", err)
			}
			return w.watchLatency(ctx, "watch-remote", t.store, remote, p)
		}})
	}
	for _, ph := range phases {
		p := report.StartProgress(t.name, ph.op)
		latencies, total, err := ph.run(ctx, t, p)
		p.Stop()
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", t.name, ph.op, err)
		}
		results = append(results, report.Summarize(t.name, ph.op, latencies, total))
	}
	return results, nil
}

func (w *workload) pod(cluster, i int, generation int) *example.Pod {
	return &example.Pod{ObjectMeta: metav1.ObjectMeta{
		Name:        fmt.Sprintf("pod-%03d", i),
		Namespace:   "default",
		Labels:      map[string]string{"cluster": fmt.Sprintf("cluster-%04d", cluster)},
		Annotations: map[string]string{"payload": w.payload, "generation": fmt.Sprint(generation)},
	}}
}

func (w *workload) create(ctx context.Context, t *target, p *report.Progress) ([]time.Duration, time.Duration, error) {
	per := w.perCluster()
	return report.Parallel(ctx, w.creates, w.writers, p, func(ctx context.Context, i int) error {
		// Spread consecutive creates over clusters, as many tenants writing at once do.
		cluster, j := i%w.clusters, i/w.clusters%per
		return t.store.Create(ctx, w.key(cluster, j), w.pod(cluster, j, 0), &example.Pod{}, 0)
	})
}

func (w *workload) update(ctx context.Context, t *target, p *report.Progress) ([]time.Duration, time.Duration, error) {
	per := w.perCluster()
	return report.Parallel(ctx, w.updates, w.writers, p, func(ctx context.Context, i int) error {
		cluster, j := rand.IntN(w.clusters), rand.IntN(per)
		return t.store.GuaranteedUpdate(ctx, w.key(cluster, j), &example.Pod{}, false, nil,
			storage.SimpleUpdate(func(obj runtime.Object) (runtime.Object, error) {
				pod := obj.(*example.Pod)
				pod.Annotations["generation"] = fmt.Sprint(i + 1)
				return pod, nil
			}), nil)
	})
}

func (w *workload) get(ctx context.Context, t *target, p *report.Progress) ([]time.Duration, time.Duration, error) {
	per := w.perCluster()
	return report.Parallel(ctx, w.gets, w.readers, p, func(ctx context.Context, _ int) error {
		return t.store.Get(ctx, w.key(rand.IntN(w.clusters), rand.IntN(per)), storage.GetOptions{}, &example.Pod{})
	})
}

func (w *workload) listCluster(ctx context.Context, t *target, p *report.Progress) ([]time.Duration, time.Duration, error) {
	per := w.perCluster()
	return report.Parallel(ctx, w.lists, w.readers, p, func(ctx context.Context, _ int) error {
		list := &example.PodList{}
		prefix := fmt.Sprintf("/pods/cluster-%04d/", rand.IntN(w.clusters))
		if err := t.store.GetList(ctx, prefix, storage.ListOptions{Recursive: true, Predicate: storage.Everything}, list); err != nil {
			return err
		}
		if len(list.Items) != per {
			return fmt.Errorf("listing %s: %d objects, want %d", prefix, len(list.Items), per)
		}
		return nil
	})
}

// listAll reads every object in pages; its latencies are per page.
func (w *workload) listAll(ctx context.Context, t *target, p *report.Progress) ([]time.Duration, time.Duration, error) {
	var latencies []time.Duration
	pages := (w.creates + int(w.pageSize) - 1) / int(w.pageSize)
	start := time.Now()
	var items int
	var token string
	for {
		pred := storage.Everything
		pred.Limit, pred.Continue = w.pageSize, token
		list := &example.PodList{}
		t0 := time.Now()
		if err := t.store.GetList(ctx, resourcePrefix, storage.ListOptions{Recursive: true, Predicate: pred}, list); err != nil {
			return nil, 0, err
		}
		latencies = append(latencies, time.Since(t0))
		p.Add(1, pages)
		items += len(list.Items)
		if token = list.Continue; token == "" {
			break
		}
	}
	if items != w.creates {
		return nil, 0, fmt.Errorf("listed %d objects, want %d", items, w.creates)
	}
	return latencies, time.Since(start), nil
}

// watchLatency writes through one store and watches through another: each
// latency is the time from a write's return to its event's arrival (zero when the
// event came first).
func (w *workload) watchLatency(ctx context.Context, cluster string, writer, watcher storage.Interface, p *report.Progress) ([]time.Duration, time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rv, err := writer.GetCurrentResourceVersion(ctx)
	if err != nil {
		return nil, 0, err
	}
	wi, err := watcher.Watch(ctx, "/pods/"+cluster+"/", storage.ListOptions{
		ResourceVersion: fmt.Sprint(rv), Recursive: true, Predicate: storage.Everything,
	})
	if err != nil {
		return nil, 0, err
	}
	defer wi.Stop()
	var mu sync.Mutex
	arrived := map[string]time.Time{}
	received := make(chan struct{}, w.watchWrites+100)
	go func() {
		for ev := range wi.ResultChan() {
			if ev.Type == watch.Error {
				fmt.Fprintf(os.Stderr, "watch error: %v\n", ev.Object)
				return
			}
			pod, ok := ev.Object.(*example.Pod)
			if !ok {
				continue
			}
			mu.Lock()
			arrived[pod.Name] = time.Now()
			mu.Unlock()
			received <- struct{}{}
		}
	}()
	// A few writes first, unmeasured, so that connections and cached plans of a
	// just-started process are warm, as in a long-running one.
	const warmUp = 20
	write := func(i int) (string, error) {
		pod := w.pod(0, i, 0)
		pod.Name = fmt.Sprintf("watched-%04d", i)
		return pod.Name, writer.Create(ctx, "/pods/"+cluster+"/default/"+pod.Name, pod, &example.Pod{}, 0)
	}
	await := func(n int) error {
		for range n {
			select {
			case <-received:
			case <-time.After(30 * time.Second):
				return fmt.Errorf("watch events missing after 30 s")
			}
		}
		return nil
	}
	for i := range warmUp {
		if _, err := write(w.watchWrites + i); err != nil {
			return nil, 0, err
		}
	}
	if err := await(warmUp); err != nil {
		return nil, 0, err
	}
	returned := make(map[string]time.Time, w.watchWrites)
	start := time.Now()
	for i := range w.watchWrites {
		name, err := write(i)
		if err != nil {
			return nil, 0, err
		}
		returned[name] = time.Now()
		p.Add(1, w.watchWrites)
	}
	if err := await(w.watchWrites); err != nil {
		return nil, 0, err
	}
	total := time.Since(start)
	mu.Lock()
	defer mu.Unlock()
	latencies := make([]time.Duration, 0, len(returned))
	for name, t := range returned {
		latencies = append(latencies, max(0, arrived[name].Sub(t)))
	}
	return latencies, total, nil
}
