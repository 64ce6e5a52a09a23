package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiruntime "k8s.io/apimachinery/pkg/runtime"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"

	"github.com/warren-dev/warren/bench/report"
	"github.com/warren-dev/warren/tenancy"
	"github.com/warren-dev/warren/tenancy/client"
)

const (
	// perOrg is the most workspaces one organization holds.
	perOrg = 1000
	// resumeMargin is how far before the first missing workspace a resumed run
	// starts again, making sure of the workspaces a killed run had in flight (at
	// most its concurrency).
	resumeMargin = 1024
	// readyTimeout bounds the wait for one workspace to become Ready.
	readyTimeout = time.Minute
)

// params are what a run was asked to do.
type params struct {
	Count       int `json:"count"`
	Objects     int `json:"objects"`
	Concurrency int `json:"concurrency"`
	// Storage is the storage of the warren the benchmark started; empty when it
	// ran against a kubeconfig's server.
	Storage string `json:"storage,omitempty"`
	// Server is the server's URL.
	Server string `json:"server"`
}

// results are a run's figures, as written to workspaces-<name>.json.
type results struct {
	Params  params    `json:"params"`
	Machine machine   `json:"machine"`
	Started time.Time `json:"started"`
	// ResumedAt is the first missing workspace the run found; 0 for a fresh run.
	ResumedAt int `json:"resumed_at"`
	// Created and Existing count the workspaces this run created and those it
	// found already there (from a run before).
	Created  int `json:"created"`
	Existing int `json:"existing"`
	// CreateMs is the time this run spent creating, checkpoints' samples not
	// included; ReadyPerSec is Created over it.
	CreateMs    float64 `json:"create_ms"`
	ReadyPerSec float64 `json:"ready_per_sec"`
	// Ready is the latency from create to Ready of the workspaces created.
	Ready report.Result `json:"ready"`
	// RSSPerWorkspace and DatabasePerWorkspace are the growth of the server's
	// resident memory and database from this run's start to its last
	// checkpoint, divided by the workspaces added in between.
	RSSPerWorkspace      float64 `json:"rss_bytes_per_workspace"`
	DatabasePerWorkspace float64 `json:"database_bytes_per_workspace"`
	// CPUMsPerWorkspace is the server's CPU time over the same span, the
	// checkpoints' samples included, divided by the workspaces added.
	CPUMsPerWorkspace float64 `json:"cpu_ms_per_workspace"`
	// Creation is what the workspaces this run made cost.
	Creation *creationCost `json:"creation,omitempty"`
	// Checkpoints include those of earlier runs of the same workload on the
	// same server that this run resumed.
	Checkpoints []checkpoint `json:"checkpoints"`
}

type machine struct {
	NumCPU int    `json:"num_cpu"`
	GOOS   string `json:"goos"`
	GOARCH string `json:"goarch"`
}

// checkpoint is the server's state once Workspaces workspaces were Ready.
type checkpoint struct {
	Workspaces int `json:"workspaces"`
	// ReadyPerSec is the rate of workspaces created since the previous
	// checkpoint of the same run; 0 at the start.
	ReadyPerSec float64 `json:"ready_per_sec"`
	serverSample
	// Latency holds get, list and watch in random workspaces; empty at 0.
	Latency []report.Result `json:"latency,omitempty"`
}

// bench is one run's clients and counters.
type bench struct {
	p         params
	workspace *client.Client
	http      *http.Client
	ready     *readiness
	rng       *rand.Rand
	// orgs is how many organizations this run made sure of.
	orgs int

	created, existing atomic.Int64
	mu                sync.Mutex
	readyLatencies    []time.Duration
}

// run creates p.Count workspaces on the server of cfg, resuming a run before,
// samples it at checkpoints, and writes the results to path after each. With
// localPostgres, the server's storage is this machine's PostgreSQL, whose CPU
// time creation is charged with.
func run(ctx context.Context, cfg *rest.Config, p params, path string, localPostgres bool) (*results, error) {
	if p.Count < 1 || p.Objects < 0 || p.Concurrency < 1 || p.Concurrency > resumeMargin {
		return nil, fmt.Errorf("want -count ≥ 1, -objects ≥ 0 and -concurrency in 1..%d", resumeMargin)
	}
	b, err := newBench(cfg, p)
	if err != nil {
		return nil, err
	}
	b.p.Server = b.workspace.Base
	res := &results{
		Params:  b.p,
		Machine: machine{NumCPU: runtime.NumCPU(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH},
		Started: time.Now().UTC(),
	}
	if res.ResumedAt, err = b.firstMissing(ctx); err != nil {
		return nil, err
	}
	// The figures per workspace are this run's: from here to its last checkpoint.
	baseline := checkpoint{Workspaces: res.ResumedAt}
	if baseline.serverSample, err = b.sampleServer(ctx); err != nil {
		return nil, err
	}
	if res.ResumedAt > 0 {
		if res.Checkpoints, err = earlierCheckpoints(path, b.p, res.ResumedAt); err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "resuming: workspace %d is the first missing, %d checkpoints from before\n", res.ResumedAt, len(res.Checkpoints))
	} else {
		res.Checkpoints = []checkpoint{baseline}
	}

	var total time.Duration
	m := &meter{b: b, postgres: localPostgres}
	lo := max(0, res.ResumedAt-resumeMargin)
	for _, cp := range checkpoints(p.Count) {
		if cp < res.ResumedAt {
			continue
		}
		createdBefore := b.created.Load()
		used, err := m.read(ctx)
		if err != nil {
			return nil, err
		}
		took, err := b.createRange(ctx, lo, cp)
		if err != nil {
			return nil, err
		}
		total += took
		now, err := m.read(ctx)
		if err != nil {
			return nil, err
		}
		m.add(used, now, int(b.created.Load()-createdBefore))
		res.Creation = m.cost()
		c, err := b.sample(ctx, cp)
		if err != nil {
			return nil, err
		}
		c.ReadyPerSec = float64(b.created.Load()-createdBefore) / took.Seconds()
		res.Checkpoints = append(res.Checkpoints, c)
		b.summarize(res, baseline, total)
		if err := report.WriteJSON(path, res); err != nil {
			return nil, err
		}
		lo = cp
	}
	return res, nil
}

func newBench(cfg *rest.Config, p params) (*bench, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = -1, 0
	// Workspaces are JSON only; configmaps go as protobuf (see core).
	cfg.ContentType, cfg.AcceptContentTypes = apiruntime.ContentTypeJSON, apiruntime.ContentTypeJSON
	workspaces, err := client.New(cfg)
	if err != nil {
		return nil, err
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("HTTP client for %s: %w", cfg.Host, err)
	}
	return &bench{
		p:         p,
		workspace: workspaces,
		http:      hc,
		ready:     newReadiness(workspaces, hc),
		rng:       rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0)),
	}, nil
}

// org is the organization of workspace i, name its name there.
func org(i int) tenancy.Path { return tenancy.RootPath.Join(fmt.Sprintf("bench-%04d", i/perOrg)) }
func name(i int) string      { return fmt.Sprintf("w-%06d", i) }
func path(i int) string      { return string(org(i).Join(name(i))) }

// checkpoints are the workspace counts to sample at: every tenth of n and the
// powers of ten from 1,000 to 1,000,000 up to n.
func checkpoints(n int) []int {
	var cps []int
	for k := 1; k <= 10; k++ {
		if c := n * k / 10; c > 0 {
			cps = append(cps, c)
		}
	}
	for c := 1000; c <= min(n, 1_000_000); c *= 10 {
		cps = append(cps, c)
	}
	slices.Sort(cps)
	return slices.Compact(cps)
}

// firstMissing finds the first workspace index that does not exist, by
// bisection: a run creates them in order, so all before it exist, and of those
// after it at most a killed run's in-flight ones.
func (b *bench) firstMissing(ctx context.Context) (int, error) {
	var err error
	i := sort.Search(b.p.Count, func(i int) bool {
		if err != nil {
			return true
		}
		var exists bool
		exists, err = b.exists(ctx, i)
		return !exists
	})
	return i, err
}

func (b *bench) exists(ctx context.Context, i int) (bool, error) {
	_, err := b.workspace.Get(ctx, string(org(i)), name(i))
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsNotFound(err):
		return false, nil
	}
	return false, err
}

// earlierCheckpoints are the checkpoints before resumedAt in the results of an
// earlier run at path of the same workload on the same server.
func earlierCheckpoints(path string, p params, resumedAt int) ([]checkpoint, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var earlier results
	if err := json.Unmarshal(data, &earlier); err != nil {
		return nil, fmt.Errorf("reading the earlier run's %s: %w", path, err)
	}
	if earlier.Params.Server != p.Server || earlier.Params.Objects != p.Objects {
		return nil, nil
	}
	return slices.DeleteFunc(earlier.Checkpoints, func(c checkpoint) bool { return c.Workspaces >= resumedAt }), nil
}

// createRange makes workspaces lo to hi-1 Ready, with their organizations, and
// returns the time it took.
func (b *bench) createRange(ctx context.Context, lo, hi int) (time.Duration, error) {
	start := time.Now()
	if firstOrg, lastOrg := max(b.orgs, lo/perOrg), (hi-1)/perOrg; firstOrg <= lastOrg {
		progress := report.StartProgress("organizations", fmt.Sprintf("%d-%d", firstOrg, lastOrg))
		_, _, err := report.Parallel(ctx, lastOrg-firstOrg+1, b.p.Concurrency, progress, func(ctx context.Context, o int) error {
			return b.ensureOrg(ctx, (firstOrg+o)*perOrg)
		})
		progress.Stop()
		if err != nil {
			return 0, err
		}
		b.orgs = lastOrg + 1
	}
	progress := report.StartProgress("workspaces", fmt.Sprintf("%d-%d", lo, hi))
	_, _, err := report.Parallel(ctx, hi-lo, b.p.Concurrency, progress, func(ctx context.Context, j int) error {
		return b.create(ctx, lo+j)
	})
	progress.Stop()
	// No watch stays open into the checkpoint's sample.
	b.ready.stop()
	return time.Since(start), err
}

// ensureOrg makes the organization of workspace i Ready.
func (b *bench) ensureOrg(ctx context.Context, i int) error {
	o := org(i)
	parent, _ := o.Parent()
	if _, err := b.workspace.Create(ctx, string(parent), o.Base(), nil); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	_, err := b.workspace.WaitReady(ctx, string(parent), o.Base(), 10*time.Millisecond)
	return err
}

// create makes workspace i Ready, or waits for it if it exists, and creates its
// configmaps.
func (b *bench) create(ctx context.Context, i int) error {
	start := time.Now()
	created := true
	err := b.ready.await(ctx, org(i), name(i), func() error {
		_, err := b.workspace.Create(ctx, string(org(i)), name(i), nil)
		if apierrors.IsAlreadyExists(err) {
			created, err = false, nil
		}
		return err
	})
	if err != nil {
		return err
	}
	if created {
		b.created.Add(1)
		b.mu.Lock()
		b.readyLatencies = append(b.readyLatencies, time.Since(start))
		b.mu.Unlock()
	} else {
		b.existing.Add(1)
	}
	cms, err := b.core(path(i))
	if err != nil {
		return err
	}
	for k := range b.p.Objects {
		_, err := cms.Create(ctx, configMap(k), metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating configmap %d in %s: %w", k, path(i), err)
		}
	}
	return nil
}

func configMap(k int) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", k)},
		Data:       map[string]string{"key": "value"},
	}
}

// core is a client of the configmaps in namespace default of the workspace at
// path, talking protobuf as controllers do.
func (b *bench) core(path string) (corev1client.ConfigMapInterface, error) {
	cfg := b.workspace.Config(path)
	cfg.ContentType = apiruntime.ContentTypeProtobuf
	cfg.AcceptContentTypes = apiruntime.ContentTypeProtobuf + "," + apiruntime.ContentTypeJSON
	c, err := corev1client.NewForConfigAndClient(cfg, b.http)
	if err != nil {
		return nil, fmt.Errorf("client of %s: %w", path, err)
	}
	return c.ConfigMaps(metav1.NamespaceDefault), nil
}

// summarize fills in res's figures of the run so far, which started at
// baseline and spent total creating.
func (b *bench) summarize(res *results, baseline checkpoint, total time.Duration) {
	res.Created, res.Existing = int(b.created.Load()), int(b.existing.Load())
	res.CreateMs = float64(total.Milliseconds())
	res.ReadyPerSec = float64(res.Created) / total.Seconds()
	b.mu.Lock()
	res.Ready = report.Summarize("workspaces", "ready", b.readyLatencies, total)
	b.mu.Unlock()
	last := res.Checkpoints[len(res.Checkpoints)-1]
	if added := last.Workspaces - baseline.Workspaces; added > 0 {
		res.RSSPerWorkspace = float64(last.RSSBytes-baseline.RSSBytes) / float64(added)
		res.DatabasePerWorkspace = float64(last.DatabaseBytes-baseline.DatabaseBytes) / float64(added)
		res.CPUMsPerWorkspace = 1000 * (last.CPUSeconds - baseline.CPUSeconds) / float64(added)
	}
}
