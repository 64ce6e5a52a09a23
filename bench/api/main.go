// Command api benchmarks warren through its API: a fresh server per back end,
// clusters × objects configmaps created by concurrent clients, then get, list
// and watch latency, start-up time and resident memory. Back ends: warren on
// SQLite, on PostgreSQL, and on upstream's etcd3 store over an embedded etcd
// (`--storage etcd://`), so warren's storage is compared with etcd under the
// same apiserver. etcd is embedded here, never in the warren binary.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/warren-dev/warren/bench/etcdserver"
	"github.com/warren-dev/warren/bench/report"
	"github.com/warren-dev/warren/test/pgtest"
	"github.com/warren-dev/warren/test/warrentest"
)

var allBackends = []string{"warren-sqlite", "warren-postgres", "warren-etcd"}

// serverFigures are a back end's start-up time and memory.
type serverFigures struct {
	Backend      string  `json:"backend"`
	ReadyMs      float64 `json:"ready_ms"`
	IdleRSSBytes int64   `json:"idle_rss_bytes"`
	LoadRSSBytes int64   `json:"loaded_rss_bytes"`
}

func main() {
	var (
		w        workload
		backends string
		pgURL    string
		out      string
	)
	flag.IntVar(&w.clusters, "clusters", 100, "logical clusters")
	flag.IntVar(&w.objects, "objects", 20, "configmaps per cluster (about 1 KiB each)")
	flag.IntVar(&w.clients, "clients", 32, "concurrent clients")
	flag.IntVar(&w.gets, "gets", 4000, "gets of random configmaps")
	flag.IntVar(&w.lists, "lists", 1000, "lists of a random cluster's configmaps")
	flag.IntVar(&w.watchWrites, "watch-writes", 500, "updates whose watch latency is measured")
	flag.IntVar(&w.alone, "alone", 500, "creates, then lists of one cluster's configmaps, by one client alone (create-1, list-1)")
	flag.StringVar(&backends, "backends", strings.Join(allBackends, ","), "back ends to run, comma-separated")
	flag.StringVar(&pgURL, "postgres", pgtest.URL(), "PostgreSQL to run on")
	flag.StringVar(&w.profiles, "profiles", "", "directory for the server's CPU profile of each phase (<backend>-<op>.pprof)")
	flag.IntVar(&w.profileSeconds, "profile-seconds", 1, "seconds of each phase profiled (make the phase last longer)")
	flag.StringVar(&w.serverArgs, "server-args", "", "more arguments of warren start, space-separated (--gc-percent 400 --memory-limit 1Gi)")
	flag.StringVar(&out, "out", "bench/results", "directory of api.json, api-server.json and the charts api.svg and api.png")
	flag.Parse()
	w.payload = payload(800)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, &w, strings.Split(backends, ","), pgURL, out); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w *workload, backends []string, pgURL, out string) error {
	dir, err := os.MkdirTemp("", "warren-bench-api-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	binary, err := warrentest.Build(ctx, dir)
	if err != nil {
		return err
	}
	var results []report.Result
	var figures []serverFigures
	for _, backend := range backends {
		rs, f, err := runOne(ctx, w, backend, binary, filepath.Join(dir, backend), pgURL)
		if err != nil {
			return err
		}
		results = append(results, rs...)
		figures = append(figures, f)
	}
	report.PrintTable(results)
	fmt.Println()
	for _, f := range figures {
		fmt.Printf("%-16s ready %6.0f ms   RSS idle %6.1f MiB, loaded %6.1f MiB\n", f.Backend, f.ReadyMs, mib(f.IdleRSSBytes), mib(f.LoadRSSBytes))
	}
	return write(out, results, figures)
}

func runOne(ctx context.Context, w *workload, backend, binary, dir, pgURL string) ([]report.Result, serverFigures, error) {
	var args []string
	switch backend {
	case "warren-sqlite":
	case "warren-postgres":
		const shard = "bench_api"
		if err := pgtest.DropSchema(ctx, pgURL, shard); err != nil {
			return nil, serverFigures{}, err
		}
		args = []string{"--storage", pgURL, "--shard", shard}
	case "warren-etcd":
		e, err := etcdserver.Start(dir)
		if err != nil {
			return nil, serverFigures{}, err
		}
		defer e.Close()
		args = []string{"--storage", "etcd://" + strings.TrimPrefix(e.Endpoint, "http://")}
	default:
		return nil, serverFigures{}, fmt.Errorf("unknown back end %q (want one of %s)", backend, strings.Join(allBackends, ", "))
	}
	s, err := warrentest.StartProcess(binary, filepath.Join(dir, "data"), append(args, strings.Fields(w.serverArgs)...)...)
	if err != nil {
		return nil, serverFigures{}, err
	}
	defer func() { _ = s.Stop() }() // a slow stop changes nothing measured
	f := serverFigures{Backend: backend, ReadyMs: float64(s.ReadyIn.Microseconds()) / 1000}
	if f.IdleRSSBytes, err = s.RSS(); err != nil {
		return nil, f, err
	}
	results, err := w.run(ctx, backend, s)
	if err != nil {
		return nil, f, fmt.Errorf("%w\nwarren's log:\n%s", err, s.Log())
	}
	f.LoadRSSBytes, err = s.RSS()
	return results, f, err
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func write(out string, results []report.Result, figures []serverFigures) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for name, v := range map[string]any{"api.json": results, "api-server.json": figures} {
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(out, name), append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	return report.Chart(filepath.Join(out, "api"), results)
}
