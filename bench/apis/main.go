// Command apis measures what API bindings cost warren. One provider workspace
// exports two resources; N consumer workspaces each bind the export and make
// one object of each. At checkpoints of N it samples the server's resident
// memory, Go heap and goroutines (against the same figures before the first
// consumer), the bind → Bound latency of the bindings made since the last
// checkpoint, and what the provider's controller sees through the export's
// virtual workspace: the time of its initial list of every consumer's objects
// (paged as informers page), and the latency of its wildcard watch's events
// for writes in random consumers, one write at a time.
//
// With -bind=false the consumers are bare workspaces: the same run's figures
// without bindings, so that the difference is what bindings cost.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/kcp-dev/logicalcluster/v3"
	apisv1alpha1 "github.com/kcp-dev/sdk/apis/apis/v1alpha1"
	apisv1alpha2 "github.com/kcp-dev/sdk/apis/apis/v1alpha2"
	kcpclientset "github.com/kcp-dev/sdk/client/clientset/versioned/cluster"

	"github.com/warren-dev/warren/bench/report"
	"github.com/warren-dev/warren/test/pgtest"
	"github.com/warren-dev/warren/test/warrentest"
)

// group is the exported resources' group; each has an integer spec.size.
const group = "bench.warren.dev"

var resources = []string{"widgets", "gadgets"}

// gvr is the exported resource r.
func gvr(r string) schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: group, Version: "v1", Resource: r}
}

// kind is the kind of the exported resource r.
func kind(r string) string { return strings.ToUpper(r[:1]) + strings.TrimSuffix(r[1:], "s") }

// checkpoint is what the benchmark measured once n consumers were bound.
type checkpoint struct {
	Consumers  int     `json:"consumers"`
	RSSMiB     float64 `json:"rss_mib"`
	HeapMiB    float64 `json:"heap_inuse_mib"`
	Goroutines int     `json:"goroutines"`
	// BindP50Ms and BindP99Ms are of the bindings made since the last
	// checkpoint, from the create's answer to the first read seeing Bound.
	BindP50Ms float64 `json:"bind_p50_ms"`
	BindP99Ms float64 `json:"bind_p99_ms"`
	// ListMs is the virtual workspace's list of every consumer's widgets,
	// Listed how many it listed.
	ListMs float64 `json:"list_ms"`
	Listed int     `json:"listed"`
	// EventP50Ms and EventP99Ms are from the start of a write in a random
	// consumer to its event on the virtual workspace's wildcard watch.
	EventP50Ms float64 `json:"event_p50_ms"`
	EventP99Ms float64 `json:"event_p99_ms"`
	// EventAfterAckP50Ms and EventAfterAckP99Ms are from the write's answer
	// to its event (0 when the event came first).
	EventAfterAckP50Ms float64 `json:"event_after_ack_p50_ms"`
	EventAfterAckP99Ms float64 `json:"event_after_ack_p99_ms"`
	ElapsedS           float64 `json:"elapsed_s"`
}

// results are a run's checkpoints and the cost of a consumer they imply.
type results struct {
	Storage     string       `json:"storage"`
	Bound       bool         `json:"bound"`
	Baseline    checkpoint   `json:"baseline"`
	Checkpoints []checkpoint `json:"checkpoints"`
	// RSSPerConsumerKiB, HeapPerConsumerKiB and GoroutinesPerConsumer are
	// the growth from the baseline to the last checkpoint, per consumer: a
	// workspace, its binding and its two objects.
	RSSPerConsumerKiB     float64 `json:"rss_per_consumer_kib"`
	HeapPerConsumerKiB    float64 `json:"heap_per_consumer_kib"`
	GoroutinesPerConsumer float64 `json:"goroutines_per_consumer"`
}

func main() {
	var (
		counts, storage, pgURL, out string
		workers, writes             int
		bind                        bool
	)
	flag.StringVar(&counts, "counts", "1000", "checkpoints: numbers of consumers, comma-separated, rising")
	flag.StringVar(&storage, "storage", "postgres", "sqlite or postgres")
	flag.StringVar(&pgURL, "postgres", pgtest.URL(), "PostgreSQL to run on")
	flag.IntVar(&workers, "concurrency", 8, "consumers set up at once")
	flag.IntVar(&writes, "writes", 200, "writes whose watch events are timed at each checkpoint")
	flag.BoolVar(&bind, "bind", true, "bind the export in each consumer and make its objects (false: bare workspaces)")
	flag.StringVar(&out, "out", "bench/results", "directory of apis-<storage>[-unbound].{json,svg,png}")
	flag.Parse()
	var steps []int
	for _, c := range strings.Split(counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n <= 0 || len(steps) > 0 && n <= steps[len(steps)-1] {
			fmt.Fprintf(os.Stderr, "bench: -counts %q: want rising positive numbers\n", counts)
			os.Exit(2)
		}
		steps = append(steps, n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := run(ctx, storage, pgURL, steps, workers, writes, bind)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	printSummary(res)
	base := filepath.Join(out, "apis-"+storage)
	if !bind {
		base += "-unbound"
	}
	if err := report.WriteJSON(base+".json", res); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if err := chart(base, res); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// bench is a running warren with its provider.
type bench struct {
	server   *warrentest.Process
	http     *http.Client
	kcp      kcpclientset.ClusterInterface
	provider logicalcluster.Name
	start    time.Time
}

func run(ctx context.Context, storage, pgURL string, steps []int, workers, writes int, bind bool) (*results, error) {
	s, stop, err := report.StartWarren(ctx, "apis", storage, pgURL)
	if err != nil {
		return nil, err
	}
	defer stop()
	b, err := newBench(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("%w\nwarren's log:\n%s", err, s.Log())
	}
	res := &results{Storage: storage, Bound: bind}
	if res.Baseline, err = b.sample(ctx, 0); err != nil {
		return nil, err
	}
	done := 0
	for _, n := range steps {
		progress := report.StartProgress(storage, fmt.Sprintf("consumers %d–%d", done, n))
		bindings := make([]time.Duration, n-done)
		_, _, err := report.Parallel(ctx, n-done, workers, progress, func(ctx context.Context, i int) error {
			name := fmt.Sprintf("consumer-%06d", done+i)
			if _, err := b.server.CreateWorkspace(ctx, name); err != nil || !bind {
				return err
			}
			d, err := b.consumer(ctx, name)
			bindings[i] = d
			return err
		})
		progress.Stop()
		if err != nil {
			return nil, fmt.Errorf("%w\nwarren's log:\n%s", err, s.Log())
		}
		done = n
		c, err := b.sample(ctx, n)
		if err != nil {
			return nil, err
		}
		if bind {
			bound := report.Summarize(storage, "bind", bindings, 0)
			c.BindP50Ms, c.BindP99Ms = bound.P50Ms, bound.P99Ms
			if err := b.virtualWorkspace(ctx, &c, n, writes); err != nil {
				return nil, fmt.Errorf("%w\nwarren's log:\n%s", err, s.Log())
			}
		}
		res.Checkpoints = append(res.Checkpoints, c)
	}
	last := res.Checkpoints[len(res.Checkpoints)-1]
	res.RSSPerConsumerKiB = (last.RSSMiB - res.Baseline.RSSMiB) * 1024 / float64(last.Consumers)
	res.HeapPerConsumerKiB = (last.HeapMiB - res.Baseline.HeapMiB) * 1024 / float64(last.Consumers)
	res.GoroutinesPerConsumer = float64(last.Goroutines-res.Baseline.Goroutines) / float64(last.Consumers)
	return res, nil
}

// newBench makes the provider workspace: its schemas and the export, with its
// identity.
func newBench(ctx context.Context, s *warrentest.Process) (*bench, error) {
	cfg, err := s.AdminConfig("root")
	if err != nil {
		return nil, err
	}
	cfg.Host = s.URL("")
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	kcp, err := kcpclientset.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	name, err := s.CreateWorkspace(ctx, "provider")
	if err != nil {
		return nil, err
	}
	b := &bench{server: s, http: client, kcp: kcp, provider: logicalcluster.Name(name), start: time.Now()}
	export := &apisv1alpha2.APIExport{ObjectMeta: metav1.ObjectMeta{Name: "things"}}
	for _, r := range resources {
		schemaName := "v1." + r + "." + group
		if _, err := kcp.ApisV1alpha1().APIResourceSchemas().Cluster(b.provider.Path()).Create(ctx, resourceSchema(schemaName, r), metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("schema %s: %w", schemaName, err)
		}
		export.Spec.Resources = append(export.Spec.Resources, apisv1alpha2.ResourceSchema{Name: r, Group: group, Schema: schemaName, Storage: apisv1alpha2.ResourceSchemaStorage{CRD: &apisv1alpha2.ResourceSchemaStorageCRD{}}})
	}
	exports := kcp.ApisV1alpha2().APIExports().Cluster(b.provider.Path())
	if _, err := exports.Create(ctx, export, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("the export: %w", err)
	}
	return b, poll(ctx, func() (bool, error) {
		e, err := exports.Get(ctx, export.Name, metav1.GetOptions{})
		return err == nil && e.Status.IdentityHash != "", err
	})
}

// resourceSchema is the schema of r, namespaced, with a spec.size.
func resourceSchema(name, r string) *apisv1alpha1.APIResourceSchema {
	return &apisv1alpha1.APIResourceSchema{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: apisv1alpha1.APIResourceSchemaSpec{
			Group: group,
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Plural: r, Singular: strings.TrimSuffix(r, "s"), Kind: kind(r), ListKind: kind(r) + "List",
			},
			Scope: "Namespaced",
			Versions: []apisv1alpha1.APIResourceVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: runtime.RawExtension{Raw: []byte(`{"type":"object","properties":{"spec":{"type":"object","properties":{"size":{"type":"integer"}}}}}`)},
			}},
		},
	}
}

// consumer binds the export in the consumer workspace name and makes one
// object of each resource; it returns how long the binding took to be Bound.
func (b *bench) consumer(ctx context.Context, name string) (time.Duration, error) {
	path := logicalcluster.NewPath("root:" + name)
	bindings := b.kcp.ApisV1alpha2().APIBindings().Cluster(path)
	if _, err := bindings.Create(ctx, &apisv1alpha2.APIBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "things"},
		Spec: apisv1alpha2.APIBindingSpec{Reference: apisv1alpha2.BindingReference{
			Export: &apisv1alpha2.ExportBindingReference{Path: b.provider.String(), Name: "things"},
		}},
	}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return 0, fmt.Errorf("binding in %s: %w", name, err)
	}
	created := time.Now()
	if err := poll(ctx, func() (bool, error) {
		binding, err := bindings.Get(ctx, "things", metav1.GetOptions{})
		return err == nil && binding.Status.Phase == apisv1alpha2.APIBindingPhaseBound, err
	}); err != nil {
		return 0, fmt.Errorf("binding in %s: %w", name, err)
	}
	bound := time.Since(created)
	client, err := b.dynamic(b.server.URL("/clusters/" + path.String()))
	if err != nil {
		return 0, err
	}
	for _, r := range resources {
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": group + "/v1", "kind": kind(r),
			"metadata": map[string]any{"name": "one", "namespace": "default"},
			"spec":     map[string]any{"size": int64(0)},
		}}
		_, err := client.Resource(gvr(r)).Namespace("default").Create(ctx, obj, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return 0, fmt.Errorf("%s in %s: %w", r, name, err)
		}
	}
	return bound, nil
}

// sample reads the server's memory and goroutines.
func (b *bench) sample(ctx context.Context, n int) (checkpoint, error) {
	m, err := report.Metrics(ctx, b.http, b.server.URL("/metrics"), "process_resident_memory_bytes", "go_memstats_heap_inuse_bytes", "go_goroutines")
	if err != nil {
		return checkpoint{}, err
	}
	return checkpoint{
		Consumers:  n,
		RSSMiB:     m["process_resident_memory_bytes"] / (1 << 20),
		HeapMiB:    m["go_memstats_heap_inuse_bytes"] / (1 << 20),
		Goroutines: int(m["go_goroutines"]),
		ElapsedS:   time.Since(b.start).Seconds(),
	}, nil
}

// virtualWorkspace lists the widgets of all n consumers through the export's
// virtual workspace, 500 at a time, then watches them from the list and times
// the events of writes in random consumers.
func (b *bench) virtualWorkspace(ctx context.Context, c *checkpoint, n, writes int) error {
	vw, err := b.dynamic(b.server.URL("/services/apiexport/" + b.provider.String() + "/things/clusters/*"))
	if err != nil {
		return err
	}
	widgets := vw.Resource(gvr("widgets"))
	start := time.Now()
	opts := metav1.ListOptions{Limit: 500}
	var rv string
	for {
		page, err := widgets.List(ctx, opts)
		if err != nil {
			return fmt.Errorf("listing through the virtual workspace: %w", err)
		}
		c.Listed += len(page.Items)
		if rv == "" {
			rv = page.GetResourceVersion()
		}
		if opts.Continue = page.GetContinue(); opts.Continue == "" {
			break
		}
	}
	c.ListMs = float64(time.Since(start).Microseconds()) / 1000
	if c.Listed != n {
		return fmt.Errorf("the virtual workspace lists %d widgets, want %d", c.Listed, n)
	}
	w, err := widgets.Watch(ctx, metav1.ListOptions{ResourceVersion: rv})
	if err != nil {
		return fmt.Errorf("watching through the virtual workspace: %w", err)
	}
	defer w.Stop()
	arrivals := make(chan arrival, 16)
	go follow(w, arrivals)
	fromStart := make([]time.Duration, 0, writes)
	fromAck := make([]time.Duration, 0, writes)
	for i := range writes {
		consumer := fmt.Sprintf("consumer-%06d", rand.IntN(n))
		client, err := b.dynamic(b.server.URL("/clusters/root:" + consumer))
		if err != nil {
			return err
		}
		size := int64(c.Consumers*writes + i + 1)
		start := time.Now()
		patch := fmt.Sprintf(`{"spec":{"size":%d}}`, size)
		if _, err := client.Resource(gvr("widgets")).Namespace("default").Patch(ctx, "one", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("writing in %s: %w", consumer, err)
		}
		acked := time.Now()
		at, err := awaitSize(ctx, arrivals, size)
		if err != nil {
			return err
		}
		fromStart = append(fromStart, at.Sub(start))
		fromAck = append(fromAck, max(0, at.Sub(acked)))
	}
	events := report.Summarize("", "event", fromStart, 0)
	c.EventP50Ms, c.EventP99Ms = events.P50Ms, events.P99Ms
	afterAck := report.Summarize("", "event", fromAck, 0)
	c.EventAfterAckP50Ms, c.EventAfterAckP99Ms = afterAck.P50Ms, afterAck.P99Ms
	return nil
}

// arrival is a widget's event on the watch: its spec.size and when it came,
// or the watch's end.
type arrival struct {
	size int64
	at   time.Time
	err  error
}

// follow sends what w delivers to arrivals, until it ends.
func follow(w watch.Interface, arrivals chan<- arrival) {
	defer close(arrivals)
	for ev := range w.ResultChan() {
		at := time.Now()
		if ev.Type == watch.Error {
			arrivals <- arrival{err: fmt.Errorf("the virtual workspace's watch: %v", apierrors.FromObject(ev.Object))}
			return
		}
		if u, ok := ev.Object.(*unstructured.Unstructured); ok {
			size, _, _ := unstructured.NestedInt64(u.Object, "spec", "size")
			arrivals <- arrival{size: size, at: at}
		}
	}
}

// awaitSize waits for the event of a widget of spec.size size and returns
// when it came.
func awaitSize(ctx context.Context, arrivals <-chan arrival, size int64) (time.Time, error) {
	timeout := time.After(30 * time.Second)
	for {
		select {
		case a, ok := <-arrivals:
			switch {
			case !ok:
				return time.Time{}, errors.New("the virtual workspace's watch ended")
			case a.err != nil:
				return time.Time{}, a.err
			case a.size == size:
				return a.at, nil
			}
		case <-timeout:
			return time.Time{}, fmt.Errorf("no event of the write of size %d in 30 s", size)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// dynamic is a dynamic client of the admin at url, sharing the connections.
func (b *bench) dynamic(url string) (*dynamic.DynamicClient, error) {
	cfg, err := b.server.AdminConfig("root")
	if err != nil {
		return nil, err
	}
	cfg.Host = url
	cfg.ContentType, cfg.AcceptContentTypes = runtime.ContentTypeJSON, runtime.ContentTypeJSON
	return dynamic.NewForConfigAndClient(cfg, b.http)
}

// poll calls f every 5 ms until it is done or fails, for at most a minute.
func poll(ctx context.Context, f func() (bool, error)) error {
	deadline := time.Now().Add(time.Minute)
	for {
		done, err := f()
		if done || err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		if time.Now().After(deadline) {
			return errors.New("not done within a minute")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func printSummary(res *results) {
	fmt.Printf("\n%s, baseline: RSS %.1f MiB, heap %.1f MiB, %d goroutines\n\n", res.Storage, res.Baseline.RSSMiB, res.Baseline.HeapMiB, res.Baseline.Goroutines)
	fmt.Println("| consumers | RSS MiB | heap MiB | goroutines | bind→Bound p50 / p99 ms | VW list ms | VW event from write p50 / p99 ms | from its answer p50 / p99 ms |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, c := range res.Checkpoints {
		fmt.Printf("| %d | %.1f | %.1f | %d | %.1f / %.1f | %.0f | %.2f / %.2f | %.2f / %.2f |\n", c.Consumers, c.RSSMiB, c.HeapMiB, c.Goroutines,
			c.BindP50Ms, c.BindP99Ms, c.ListMs, c.EventP50Ms, c.EventP99Ms, c.EventAfterAckP50Ms, c.EventAfterAckP99Ms)
	}
	what := "workspace, binding, two objects"
	if !res.Bound {
		what = "a bare workspace"
	}
	fmt.Printf("\nper consumer (%s): RSS %.2f KiB, Go heap %.2f KiB, goroutines %.4f\n", what, res.RSSPerConsumerKiB, res.HeapPerConsumerKiB, res.GoroutinesPerConsumer)
}

// chart draws memory, goroutines and latencies against consumers.
func chart(base string, res *results) error {
	series := func(value func(checkpoint) float64) plotter.XYs {
		xys := plotter.XYs{{X: 0, Y: value(res.Baseline)}}
		for _, c := range res.Checkpoints {
			xys = append(xys, plotter.XY{X: float64(c.Consumers), Y: value(c)})
		}
		return xys
	}
	checkpoints := func(value func(checkpoint) float64) plotter.XYs {
		var xys plotter.XYs
		for _, c := range res.Checkpoints {
			xys = append(xys, plotter.XY{X: float64(c.Consumers), Y: value(c)})
		}
		return xys
	}
	panels := []report.Panel{
		{Title: "server memory (MiB)", Lines: []any{"RSS", series(func(c checkpoint) float64 { return c.RSSMiB }), "Go heap", series(func(c checkpoint) float64 { return c.HeapMiB })}},
		{Title: "server goroutines", Lines: []any{"goroutines", series(func(c checkpoint) float64 { return float64(c.Goroutines) })}},
		{Title: "latency (ms)", Lines: []any{
			"bind→Bound p99", checkpoints(func(c checkpoint) float64 { return c.BindP99Ms }),
			"VW event p99, from the write", checkpoints(func(c checkpoint) float64 { return c.EventP99Ms }),
			"VW event p99, from its answer", checkpoints(func(c checkpoint) float64 { return c.EventAfterAckP99Ms }),
		}},
		{Title: "virtual workspace initial list (ms)", Lines: []any{"list", checkpoints(func(c checkpoint) float64 { return c.ListMs })}},
	}
	return report.LinePanels(base, "consumers binding the export", panels, 7*vg.Inch, 12*vg.Inch)
}
