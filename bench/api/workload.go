package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/warren-dev/warren/bench/report"
	"github.com/warren-dev/warren/tenancy"
	"github.com/warren-dev/warren/test/warrentest"
)

// workload is what every back end serves, the same for each.
type workload struct {
	clusters, objects, clients int
	gets, lists, watchWrites   int
	// serverArgs are more arguments of warren start.
	serverArgs string
	// alone is how many creates, then lists, one client makes by itself.
	alone   int
	payload string
	// profiles, if set, is a directory that gets the server's CPU profile of
	// each phase, as <backend>-<op>.pprof, the first profileSeconds of it.
	profiles       string
	profileSeconds int
}

// clients hands out one clientset per cluster, all sharing one HTTP transport.
type clients struct {
	s    *warrentest.Process
	http *http.Client
	mu   sync.Mutex
	byCl map[string]kubernetes.Interface
}

func newClients(s *warrentest.Process) (*clients, error) {
	cfg, err := protobufConfig(s, string(tenancy.RootPath))
	if err != nil {
		return nil, err
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	return &clients{s: s, http: hc, byCl: map[string]kubernetes.Interface{}}, nil
}

func (c *clients) in(cluster string) (kubernetes.Interface, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs, ok := c.byCl[cluster]; ok {
		return cs, nil
	}
	cfg, err := protobufConfig(c.s, string(tenancy.RootPath.Join(cluster)))
	if err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfigAndClient(cfg, c.http)
	if err != nil {
		return nil, err
	}
	c.byCl[cluster] = cs
	return cs, nil
}

// protobufConfig is the admin's configuration for cluster, talking protobuf to
// built-in APIs as controllers do.
func protobufConfig(s *warrentest.Process, cluster string) (*rest.Config, error) {
	cfg, err := s.AdminConfig(cluster)
	if err != nil {
		return nil, err
	}
	cfg.ContentType = runtime.ContentTypeProtobuf
	cfg.AcceptContentTypes = runtime.ContentTypeProtobuf + "," + runtime.ContentTypeJSON
	return cfg, nil
}

func clusterName(i int) string { return fmt.Sprintf("bench-%05d", i) }

func (w *workload) configMap(i int) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%04d", i), Labels: map[string]string{"bench": "api"}},
		Data:       map[string]string{"payload": w.payload},
	}
}

// run measures every operation on one server.
func (w *workload) run(ctx context.Context, backend string, s *warrentest.Process) ([]report.Result, error) {
	c, err := newClients(s)
	if err != nil {
		return nil, err
	}
	// Every cluster is a workspace, made before anything is measured.
	if _, _, err := report.Parallel(ctx, w.clusters, w.clients, nil, func(ctx context.Context, i int) error {
		_, err := s.CreateWorkspace(ctx, clusterName(i))
		return err
	}); err != nil {
		return nil, fmt.Errorf("workspaces on %s: %w", backend, err)
	}
	var results []report.Result
	phase := func(op string, n, workers int, f func(ctx context.Context, i int) error) error {
		profiled := w.profile(ctx, c, backend+"-"+op)
		before, err := s.CPU()
		if err != nil {
			return err
		}
		p := report.StartProgress(backend, op)
		latencies, total, err := report.Parallel(ctx, n, workers, p, f)
		p.Stop()
		if perr := <-profiled; perr != nil {
			return perr
		}
		if err != nil {
			return fmt.Errorf("%s on %s: %w", op, backend, err)
		}
		after, err := s.CPU()
		if err != nil {
			return err
		}
		r := report.Summarize(backend, op, latencies, total)
		r.ServerCPUMs = float64((after - before).Microseconds()) / 1000 / float64(n)
		results = append(results, r)
		return nil
	}
	if err := phase("create", w.clusters*w.objects, w.clients, func(ctx context.Context, i int) error {
		cs, err := c.in(clusterName(i % w.clusters))
		if err != nil {
			return err
		}
		_, err = cs.CoreV1().ConfigMaps("default").Create(ctx, w.configMap(i/w.clusters), metav1.CreateOptions{})
		return err
	}); err != nil {
		return nil, err
	}
	if err := phase("get", w.gets, w.clients, func(ctx context.Context, _ int) error {
		cs, err := c.in(clusterName(rand.IntN(w.clusters)))
		if err != nil {
			return err
		}
		_, err = cs.CoreV1().ConfigMaps("default").Get(ctx, w.configMap(rand.IntN(w.objects)).Name, metav1.GetOptions{})
		return err
	}); err != nil {
		return nil, err
	}
	if err := phase("list-cluster", w.lists, w.clients, func(ctx context.Context, _ int) error {
		cs, err := c.in(clusterName(rand.IntN(w.clusters)))
		if err != nil {
			return err
		}
		list, err := cs.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
		if err == nil && len(list.Items) != w.objects {
			err = fmt.Errorf("listed %d configmaps, want %d", len(list.Items), w.objects)
		}
		return err
	}); err != nil {
		return nil, err
	}
	// One client alone: the latency of a request on an idle server, as a
	// person with kubectl sees it. kubectl's small short-lived heap meets no
	// collection; this process's collector is held off likewise, so that
	// the latency measured is the server's.
	goruntime.GC()
	gcPercent := debug.SetGCPercent(-1)
	if err := phase("create-1", w.alone, 1, func(ctx context.Context, i int) error {
		cs, err := c.in(clusterName(0))
		if err != nil {
			return err
		}
		cm := w.configMap(i)
		cm.Name = fmt.Sprintf("alone-%06d", i)
		_, err = cs.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{})
		return err
	}); err != nil {
		return nil, err
	}
	if err := phase("list-1", w.alone, 1, func(ctx context.Context, _ int) error {
		cs, err := c.in(clusterName(min(1, w.clusters-1)))
		if err != nil {
			return err
		}
		_, err = cs.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{})
		return err
	}); err != nil {
		return nil, err
	}
	debug.SetGCPercent(gcPercent)
	r, err := w.watchLatency(ctx, backend, c)
	if err != nil {
		return nil, err
	}
	return append(results, r), nil
}

// watchLatency updates objects of one cluster one at a time and measures how
// long after each update returned its event arrived at a watcher of the
// cluster's configmaps.
func (w *workload) watchLatency(ctx context.Context, backend string, c *clients) (report.Result, error) {
	cs, err := c.in(clusterName(0))
	if err != nil {
		return report.Result{}, err
	}
	list, err := cs.CoreV1().ConfigMaps("default").List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return report.Result{}, err
	}
	wi, err := cs.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		return report.Result{}, err
	}
	defer wi.Stop()
	arrived := make(chan time.Time, w.watchWrites)
	go func() {
		for ev := range wi.ResultChan() {
			if ev.Type == watch.Modified {
				arrived <- time.Now()
			}
		}
	}()
	p := report.StartProgress(backend, "watch")
	defer p.Stop()
	latencies := make([]time.Duration, 0, w.watchWrites)
	start := time.Now()
	for i := range w.watchWrites {
		patch := fmt.Sprintf(`{"metadata":{"labels":{"round":"r%d"}}}`, i)
		_, err := cs.CoreV1().ConfigMaps("default").Patch(ctx, w.configMap(i%w.objects).Name, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{})
		if err != nil {
			return report.Result{}, fmt.Errorf("watch on %s: %w", backend, err)
		}
		written := time.Now()
		select {
		case t := <-arrived:
			latencies = append(latencies, max(0, t.Sub(written)))
		case <-time.After(10 * time.Second):
			return report.Result{}, fmt.Errorf("watch on %s: no event within 10s of update %d", backend, i)
		}
		p.Add(1, w.watchWrites)
	}
	return report.Summarize(backend, "watch", latencies, time.Since(start)), nil
}

func payload(n int) string { return strings.Repeat("x", n) }

// profile fetches a CPU profile of the server's next w.profileSeconds into
// name.pprof, if profiles were asked for; the channel says when it is written.
func (w *workload) profile(ctx context.Context, c *clients, name string) <-chan error {
	done := make(chan error, 1)
	if w.profiles == "" {
		done <- nil
		return done
	}
	go func() {
		url := fmt.Sprintf("https://127.0.0.1:%d/debug/pprof/profile?seconds=%d", c.s.Port, w.profileSeconds)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			done <- err
			return
		}
		resp, err := c.http.Do(req)
		if err != nil {
			done <- fmt.Errorf("profiling %s: %w", name, err)
			return
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("profiling %s: %s: %s", name, resp.Status, data)
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(w.profiles, name+".pprof"), data, 0o644)
		}
		done <- err
	}()
	return done
}
