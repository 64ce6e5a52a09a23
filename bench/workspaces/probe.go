package main

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/warren-dev/warren/bench/report"
)

// How many latency samples a checkpoint takes, one request at a time.
const (
	getSamples   = 200
	listSamples  = 200
	watchSamples = 50
)

// serverSample is what the server's /metrics tells of its size.
type serverSample struct {
	RSSBytes       int64 `json:"rss_bytes"`
	HeapInuseBytes int64 `json:"heap_inuse_bytes"`
	Goroutines     int64 `json:"goroutines"`
	DatabaseBytes  int64 `json:"database_bytes"`
	// CPUSeconds is the CPU time the server used since it started.
	CPUSeconds float64 `json:"cpu_seconds"`
}

// sampleServer reads the server's /metrics.
func (b *bench) sampleServer(ctx context.Context) (serverSample, error) {
	m, err := report.Metrics(ctx, b.http, b.workspace.Base+"/metrics", "process_resident_memory_bytes",
		"go_memstats_heap_inuse_bytes", "go_goroutines", "warren_storage_database_bytes", "process_cpu_seconds_total")
	if err != nil {
		return serverSample{}, err
	}
	return serverSample{
		RSSBytes:       int64(m["process_resident_memory_bytes"]),
		HeapInuseBytes: int64(m["go_memstats_heap_inuse_bytes"]),
		Goroutines:     int64(m["go_goroutines"]),
		DatabaseBytes:  int64(m["warren_storage_database_bytes"]),
		CPUSeconds:     m["process_cpu_seconds_total"],
	}, nil
}

// sample is the checkpoint at n workspaces: the server's size, and the latency
// of gets, lists and watches in random workspaces of the first n. Gets and
// watches need a configmap, so -objects 0 samples lists only.
func (b *bench) sample(ctx context.Context, n int) (checkpoint, error) {
	c := checkpoint{Workspaces: n}
	var err error
	if c.serverSample, err = b.sampleServer(ctx); err != nil {
		return c, err
	}
	probes := []struct {
		op      string
		samples int
		probe   func(ctx context.Context, path string) (time.Duration, error)
	}{
		{"get", getSamples, b.get},
		{"list", listSamples, b.list},
		{"watch", watchSamples, b.watch},
	}
	for _, p := range probes {
		if p.op != "list" && b.p.Objects == 0 {
			continue
		}
		latencies := make([]time.Duration, p.samples)
		start := time.Now()
		for s := range latencies {
			if latencies[s], err = p.probe(ctx, path(b.rng.IntN(n))); err != nil {
				return c, fmt.Errorf("%s at %d workspaces: %w", p.op, n, err)
			}
		}
		c.Latency = append(c.Latency, report.Summarize("workspaces", p.op, latencies, time.Since(start)))
	}
	return c, nil
}

// get reads the first configmap of the workspace at path.
func (b *bench) get(ctx context.Context, path string) (time.Duration, error) {
	cms, err := b.core(path)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	_, err = cms.Get(ctx, configMap(0).Name, metav1.GetOptions{})
	return time.Since(start), err
}

// list lists the configmaps of namespace default of the workspace at path.
func (b *bench) list(ctx context.Context, path string) (time.Duration, error) {
	cms, err := b.core(path)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	list, err := cms.List(ctx, metav1.ListOptions{})
	if err == nil && len(list.Items) < b.p.Objects {
		err = fmt.Errorf("%s lists %d configmaps, want %d", path, len(list.Items), b.p.Objects)
	}
	return time.Since(start), err
}

// watch opens a watch of the configmaps of the workspace at path, updates the
// first, and returns the time from sending the update to its event arriving.
func (b *bench) watch(ctx context.Context, path string) (time.Duration, error) {
	cms, err := b.core(path)
	if err != nil {
		return 0, err
	}
	list, err := cms.List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return 0, err
	}
	w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		return 0, err
	}
	defer w.Stop()
	arrived := make(chan time.Time, 1)
	go func() {
		for ev := range w.ResultChan() {
			if ev.Type == watch.Modified {
				arrived <- time.Now()
				return
			}
		}
	}()
	patch := fmt.Sprintf(`{"metadata":{"labels":{"probe":"%d"}}}`, time.Now().UnixNano())
	sent := time.Now()
	if _, err := cms.Patch(ctx, configMap(0).Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		return 0, err
	}
	select {
	case t := <-arrived:
		return t.Sub(sent), nil
	case <-time.After(10 * time.Second):
		return 0, fmt.Errorf("no event in %s within 10 s of an update", path)
	}
}
