// Command crds measures what CRDs cost warren per logical cluster: it makes N
// clusters, each with its own CRD and a few custom resources served (so each
// CRD's handler is built), and samples the server's resident memory and Go heap
// as the count grows. It runs twice: every cluster's CRD distinct (a handler
// each, up to the cache's bound) and every CRD identical (one shared handler).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/warren-dev/warren/bench/report"
	"github.com/warren-dev/warren/tenancy"
	"github.com/warren-dev/warren/test/pgtest"
	"github.com/warren-dev/warren/test/warrentest"
)

var (
	crds   = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	things = schema.GroupVersionResource{Group: "bench.warren.dev", Version: "v1", Resource: "things"}
)

// sample is the server's memory after some clusters got their CRD.
type sample struct {
	Mode      string  `json:"mode"`
	Clusters  int     `json:"clusters"`
	RSSMiB    float64 `json:"rss_mib"`
	HeapMiB   float64 `json:"heap_inuse_mib"`
	ElapsedMs float64 `json:"elapsed_ms"`
}

func main() {
	var (
		clusters, objects, workers, every int
		storage, pgURL, out               string
	)
	flag.IntVar(&clusters, "clusters", 1000, "logical clusters, each with its own CRD")
	flag.IntVar(&objects, "objects", 2, "custom resources per cluster")
	flag.IntVar(&workers, "concurrency", 8, "clusters set up at once")
	flag.IntVar(&every, "every", 100, "clusters between memory samples")
	flag.StringVar(&storage, "storage", "sqlite", "sqlite or postgres")
	flag.StringVar(&pgURL, "postgres", pgtest.URL(), "PostgreSQL to run on")
	flag.StringVar(&out, "out", "bench/results", "directory of crds-<storage>.json")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var samples []sample
	for _, mode := range []string{"distinct", "identical"} {
		s, err := run(ctx, mode, clusters, objects, workers, every, storage, pgURL)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		samples = append(samples, s...)
	}
	fmt.Printf("\n| mode | clusters | RSS MiB | Go heap in use MiB | elapsed s |\n| --- | --- | --- | --- | --- |\n")
	for _, s := range samples {
		fmt.Printf("| %s | %d | %.1f | %.1f | %.1f |\n", s.Mode, s.Clusters, s.RSSMiB, s.HeapMiB, s.ElapsedMs/1000)
	}
	if err := report.WriteJSON(filepath.Join(out, "crds-"+storage+".json"), samples); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, mode string, clusters, objects, workers, every int, storage, pgURL string) ([]sample, error) {
	s, stop, err := report.StartWarren(ctx, "crds", storage, pgURL)
	if err != nil {
		return nil, err
	}
	defer stop()

	measure := func(n int, start time.Time) (sample, error) {
		rss, err := s.RSS()
		if err != nil {
			return sample{}, err
		}
		heap, err := heapInUse(s)
		if err != nil {
			return sample{}, err
		}
		return sample{Mode: mode, Clusters: n, RSSMiB: mib(rss), HeapMiB: mib(heap), ElapsedMs: float64(time.Since(start).Milliseconds())}, nil
	}
	start := time.Now()
	first, err := measure(0, start)
	if err != nil {
		return nil, err
	}
	samples := []sample{first}
	for done := 0; done < clusters; done += every {
		batch := min(every, clusters-done)
		progress := report.StartProgress(mode, fmt.Sprintf("clusters %d+", done))
		_, _, err := report.Parallel(ctx, batch, workers, progress, func(ctx context.Context, i int) error {
			return setUp(ctx, s, mode, done+i, objects)
		})
		progress.Stop()
		if err != nil {
			return nil, fmt.Errorf("%w\nwarren's log:\n%s", err, s.Log())
		}
		m, err := measure(done+batch, start)
		if err != nil {
			return nil, err
		}
		samples = append(samples, m)
	}
	return samples, nil
}

// setUp gives cluster i its CRD, waits until it is served, and creates and
// lists custom resources, which builds the CRD's handler.
func setUp(ctx context.Context, s *warrentest.Process, mode string, i, objects int) error {
	name := fmt.Sprintf("crds-%05d", i)
	if _, err := s.CreateWorkspace(ctx, name); err != nil {
		return err
	}
	cfg, err := s.AdminConfig(string(tenancy.RootPath.Join(name)))
	if err != nil {
		return err
	}
	// Custom resources are JSON only.
	cfg = rest.CopyConfig(cfg)
	cfg.ContentType, cfg.AcceptContentTypes = "application/json", "application/json"
	client, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	field := "size"
	if mode == "distinct" {
		field = fmt.Sprintf("size%05d", i)
	}
	if _, err := client.Resource(crds).Create(ctx, crd(field), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating the CRD of cluster %d: %w", i, err)
	}
	for j := 0; j < objects; j++ {
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": things.GroupVersion().String(), "kind": "Thing",
			"metadata": map[string]any{"name": fmt.Sprintf("thing-%d", j), "namespace": "default"},
			"spec":     map[string]any{field: int64(j)},
		}}
		if err := retryUntilServed(ctx, func() error {
			_, err := client.Resource(things).Namespace("default").Create(ctx, obj, metav1.CreateOptions{})
			return err
		}); err != nil {
			return fmt.Errorf("creating a custom resource in cluster %d: %w", i, err)
		}
	}
	list, err := client.Resource(things).Namespace("default").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	if len(list.Items) != objects {
		return fmt.Errorf("cluster %d lists %d custom resources, want %d", i, len(list.Items), objects)
	}
	return nil
}

// retryUntilServed retries f while the CRD is not served yet (404).
func retryUntilServed(ctx context.Context, f func() error) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if !apierrors.IsNotFound(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func crd(field string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": things.Resource + "." + things.Group},
		"spec": map[string]any{
			"group": things.Group, "scope": "Namespaced",
			"names": map[string]any{"kind": "Thing", "plural": things.Resource},
			"versions": []any{map[string]any{
				"name": things.Version, "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type": "object",
					"properties": map[string]any{"spec": map[string]any{
						"type":       "object",
						"properties": map[string]any{field: map[string]any{"type": "integer", "minimum": int64(0)}},
					}},
				}},
			}},
		},
	}}
}

// heapInUse reads the Go heap in use from the server's /metrics.
func heapInUse(s *warrentest.Process) (int64, error) {
	cfg, err := s.AdminConfig("root")
	if err != nil {
		return 0, err
	}
	cfg.Host = s.URL("")
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return 0, err
	}
	m, err := report.Metrics(context.Background(), client, cfg.Host+"/metrics", "go_memstats_heap_inuse_bytes")
	return int64(m["go_memstats_heap_inuse_bytes"]), err
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
