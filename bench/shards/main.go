// Command shards benchmarks a sharded warren, each shard and the front proxy a
// process of its own, in one run: a ConfigMap GET asked of a shard directly
// and through the proxy (the proxy's added latency, and its processor time
// per request); workspace creation under parents on one shard and on two; and
// the proxy's resident memory as the installation's workspaces grow.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	kcplogicalcluster "github.com/kcp-dev/logicalcluster/v3"
	tenancyv1alpha1 "github.com/kcp-dev/sdk/apis/tenancy/v1alpha1"

	"github.com/warren-dev/warren/bench/report"
	"github.com/warren-dev/warren/tenancy/client"
	"github.com/warren-dev/warren/test/pgtest"
	"github.com/warren-dev/warren/test/warrentest"
)

// params are the sizes of a run.
type params struct {
	Requests    int `json:"requests"`
	Clients     int `json:"clients"`
	Workspaces  int `json:"workspaces"`
	Concurrency int `json:"concurrency"`
	Memory      int `json:"memory_workspaces"`
}

// results are a run's figures.
type results struct {
	Storage string          `json:"storage"`
	Params  params          `json:"params"`
	Gets    []report.Result `json:"gets"`
	// ProxyCPUPerGetMs is the proxy's processor time per GET it passed on.
	ProxyCPUPerGetMs float64    `json:"proxy_cpu_per_get_ms"`
	Creation         []creation `json:"creation"`
	Memory           []memory   `json:"memory"`
}

// creation is how fast workspaces became Ready under parents on so many shards.
type creation struct {
	Shards     int     `json:"shards"`
	Workspaces int     `json:"workspaces"`
	Seconds    float64 `json:"seconds"`
	PerSecond  float64 `json:"per_second"`
}

// memory is the proxy's resident memory with so many workspaces.
type memory struct {
	Workspaces    int   `json:"workspaces"`
	ProxyRSSBytes int64 `json:"proxy_rss_bytes"`
}

func main() {
	var (
		p       params
		storage string
		pgURL   string
		out     string
	)
	flag.IntVar(&p.Requests, "requests", 4000, "GETs of one ConfigMap per target and client count")
	flag.IntVar(&p.Clients, "clients", 16, "concurrent clients of the concurrent GETs")
	flag.IntVar(&p.Workspaces, "workspaces", 400, "workspaces created per case of the creation phase")
	flag.IntVar(&p.Concurrency, "concurrency", 16, "workspaces created at once")
	flag.IntVar(&p.Memory, "memory", 10000, "workspaces of the installation when the proxy's memory is last read")
	flag.StringVar(&storage, "storage", "postgres", "sqlite (a file per shard) or postgres (a schema per shard)")
	flag.StringVar(&pgURL, "postgres", pgtest.URL(), "PostgreSQL for -storage postgres")
	flag.StringVar(&out, "out", "bench/results", "directory of shards-<storage>.json")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := run(ctx, p, storage, pgURL)
	if err == nil {
		report.PrintTable(res.Gets)
		fmt.Printf("proxy CPU per GET: %.3f ms\n", res.ProxyCPUPerGetMs)
		for _, c := range res.Creation {
			fmt.Printf("creation under parents on %d shard(s): %d workspaces in %.1f s, %.0f/s\n", c.Shards, c.Workspaces, c.Seconds, c.PerSecond)
		}
		for _, m := range res.Memory {
			fmt.Printf("proxy RSS with %d workspaces: %.1f MiB\n", m.Workspaces, float64(m.ProxyRSSBytes)/(1<<20))
		}
		err = report.WriteJSON(filepath.Join(out, "shards-"+storage+".json"), res)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// installation is a root shard, shard s1 and a proxy, processes of their own.
type installation struct {
	root, s1, proxy *warrentest.Process
	stops           []func()
	// kcp reaches every workspace through the proxy, as the admin.
	kcp *client.Client
}

func (in *installation) stop() {
	for i := len(in.stops) - 1; i >= 0; i-- {
		in.stops[i]()
	}
}

// start starts the installation in dir on storage.
func start(ctx context.Context, binary, dir, storage, pgURL string) (*installation, error) {
	in := &installation{}
	port, err := warrentest.FreePort()
	if err != nil {
		return nil, err
	}
	external := "https://127.0.0.1:" + strconv.Itoa(port)
	pki := filepath.Join(dir, "pki")
	shard := func(name string, extra ...string) (*warrentest.Process, error) {
		args := append([]string{"--pki-dir", pki, "--external-url", external, "--shard-labels", "shard=" + name}, extra...)
		if storage == "postgres" {
			schema := "bench_shards_" + name + "_" + strconv.FormatInt(time.Now().UnixNano(), 36)
			args = append(args, "--storage", pgURL, "--shard", schema)
			in.stops = append(in.stops, func() { _ = pgtest.DropSchema(context.Background(), pgURL, schema) })
		} else {
			args = append(args, "--shard", name)
		}
		p, err := warrentest.StartProcess(binary, filepath.Join(dir, name), args...)
		if err != nil {
			return nil, err
		}
		in.stops = append(in.stops, func() { _ = p.Stop() })
		return p, nil
	}
	if in.root, err = shard("root"); err != nil {
		return in, err
	}
	if in.s1, err = shard("s1", "--root-shard", in.root.Kubeconfig); err != nil {
		return in, err
	}
	if in.proxy, err = warrentest.StartCommand(binary, "proxy", filepath.Join(dir, "proxy"), port, "--pki-dir", pki, "--root-shard", in.root.Kubeconfig); err != nil {
		return in, err
	}
	in.stops = append(in.stops, func() { _ = in.proxy.Stop() })
	cfg, err := in.proxy.AdminConfig("root")
	if err != nil {
		return in, err
	}
	in.kcp, err = client.New(cfg)
	return in, err
}

func run(ctx context.Context, p params, storage, pgURL string) (*results, error) {
	dir, err := os.MkdirTemp("", "warren-bench-shards-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	binary, err := warrentest.Build(ctx, dir)
	if err != nil {
		return nil, err
	}
	in, err := start(ctx, binary, dir, storage, pgURL)
	defer in.stop()
	if err != nil {
		return nil, err
	}
	res := &results{Storage: storage, Params: p}
	if err := gets(ctx, in, p, res); err != nil {
		return nil, err
	}
	if err := creations(ctx, in, p, res); err != nil {
		return nil, err
	}
	return res, grow(ctx, in, p, res)
}

// workspace makes the workspace name in parent on the shard labelled shard,
// waits until it is Ready, and returns it.
func workspace(ctx context.Context, in *installation, parent, name, shard string) (*tenancyv1alpha1.Workspace, error) {
	ws := &tenancyv1alpha1.Workspace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if shard != "" {
		ws.Spec.Location = &tenancyv1alpha1.WorkspaceLocation{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"shard": shard}}}
	}
	if _, err := in.kcp.KCP().Cluster(kcplogicalcluster.NewPath(parent)).TenancyV1alpha1().Workspaces().Create(ctx, ws, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("creating workspace %s in %s: %w", name, parent, err)
	}
	return in.kcp.WaitReady(ctx, parent, name, 5*time.Millisecond)
}

// gets times GETs of one ConfigMap, in a workspace on s1, asked of s1
// directly and through the proxy, by one client and by p.Clients.
func gets(ctx context.Context, in *installation, p params, res *results) error {
	ws, err := workspace(ctx, in, "root", "requests", "s1")
	if err != nil {
		return err
	}
	direct, err := in.s1.AdminConfig(ws.Spec.Cluster)
	if err != nil {
		return err
	}
	proxied := in.kcp.Config("root:requests")
	targets := []struct {
		name string
		cfg  *rest.Config
	}{{"shard", direct}, {"proxy", proxied}}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "hello", Namespace: "default"}, Data: map[string]string{"k": "v"}}
	var proxyCPU time.Duration
	var passed int
	for _, clients := range []int{1, p.Clients} {
		for _, t := range targets {
			c, err := kubernetes.NewForConfig(t.cfg)
			if err != nil {
				return err
			}
			if _, err := c.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{}); err != nil && clients == 1 && t.name == "shard" {
				return fmt.Errorf("creating a configmap: %w", err)
			}
			before, err := in.proxy.CPU()
			if err != nil {
				return err
			}
			op := fmt.Sprintf("get, %d client(s)", clients)
			progress := report.StartProgress(t.name, op)
			latencies, total, err := report.Parallel(ctx, p.Requests, clients, progress, func(ctx context.Context, _ int) error {
				_, err := c.CoreV1().ConfigMaps("default").Get(ctx, "hello", metav1.GetOptions{})
				return err
			})
			progress.Stop()
			if err != nil {
				return fmt.Errorf("GET through %s: %w", t.name, err)
			}
			after, err := in.proxy.CPU()
			if err != nil {
				return err
			}
			if t.name == "proxy" {
				proxyCPU += after - before
				passed += p.Requests
			}
			res.Gets = append(res.Gets, report.Summarize(t.name, op, latencies, total))
		}
	}
	res.ProxyCPUPerGetMs = float64(proxyCPU.Microseconds()) / 1000 / float64(passed)
	return nil
}

// creations times p.Workspaces workspaces made under one parent on the root
// shard, then under two parents, one on each shard, each child on its
// parent's shard: nothing of the second case passes through the root shard.
func creations(ctx context.Context, in *installation, p params, res *results) error {
	for _, parents := range [][]string{{"root"}, {"root", "s1"}} {
		var paths []string
		for _, shard := range parents {
			name := fmt.Sprintf("parent-%d-%s", len(parents), shard)
			if _, err := workspace(ctx, in, "root", name, shard); err != nil {
				return err
			}
			paths = append(paths, "root:"+name)
		}
		progress := report.StartProgress(fmt.Sprintf("%d shard(s)", len(parents)), "create workspace")
		_, total, err := report.Parallel(ctx, p.Workspaces, p.Concurrency, progress, func(ctx context.Context, i int) error {
			parent := i % len(parents)
			_, err := workspace(ctx, in, paths[parent], "w"+strconv.Itoa(i), parents[parent])
			return err
		})
		progress.Stop()
		if err != nil {
			return err
		}
		res.Creation = append(res.Creation, creation{Shards: len(parents), Workspaces: p.Workspaces, Seconds: total.Seconds(), PerSecond: float64(p.Workspaces) / total.Seconds()})
	}
	return nil
}

// grow makes workspaces, spread over both shards, until the installation
// has p.Memory of them, reading the proxy's memory at each tenfold.
func grow(ctx context.Context, in *installation, p params, res *results) error {
	rss, err := in.proxy.RSS()
	if err != nil {
		return err
	}
	have := 2*p.Workspaces + 4
	res.Memory = append(res.Memory, memory{Workspaces: have, ProxyRSSBytes: rss})
	for target := 1000; have < p.Memory; target *= 10 {
		target = min(max(target, have), p.Memory)
		parent := fmt.Sprintf("grow-%d", target)
		if _, err := workspace(ctx, in, "root", parent, ""); err != nil {
			return err
		}
		n := target - have - 1
		progress := report.StartProgress("proxy", fmt.Sprintf("grow to %d", target))
		_, _, err := report.Parallel(ctx, n, p.Concurrency, progress, func(ctx context.Context, i int) error {
			ws := &tenancyv1alpha1.Workspace{ObjectMeta: metav1.ObjectMeta{Name: "w" + strconv.Itoa(i)}}
			_, err := in.kcp.KCP().Cluster(kcplogicalcluster.NewPath("root:"+parent)).TenancyV1alpha1().Workspaces().Create(ctx, ws, metav1.CreateOptions{})
			return err
		})
		progress.Stop()
		if err != nil {
			return err
		}
		have = target
		// The proxy knows a workspace once its shard has made its logical
		// cluster: wait until the last is Ready.
		if _, err := in.kcp.WaitReady(ctx, "root:"+parent, "w"+strconv.Itoa(n-1), 20*time.Millisecond); err != nil {
			return err
		}
		rss, err := in.proxy.RSS()
		if err != nil {
			return err
		}
		res.Memory = append(res.Memory, memory{Workspaces: have, ProxyRSSBytes: rss})
	}
	return nil
}
