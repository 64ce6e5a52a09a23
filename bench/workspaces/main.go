// Command workspaces measures how warren scales with the number of workspaces.
// It creates N workspaces, grouped under organizations of at most 1,000
// (root:bench-0000:w-000000, …), each with K configmaps, C at a time, and
// records how long each took from create to Ready and how many became Ready per
// second. At checkpoints (every N/10, and at 1k, 10k, 100k and 1M) it pauses to
// sample the server: resident memory, Go heap and goroutines, the size of its
// database (warren_storage_database_bytes), and the latency of gets, lists and
// watches in random workspaces. Creation is resumable: a run started again on
// the same server continues where the last one stopped.
//
// It runs against any warren (-kubeconfig, the admin's kubeconfig) or builds and
// starts its own (-start sqlite|postgres). Results: workspaces-<name>.json,
// written at every checkpoint, and the charts workspaces-<name>.svg and .png.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/warren-dev/warren/test/pgtest"
	"github.com/warren-dev/warren/test/warrentest"
)

func main() {
	var (
		p                                   params
		kubeconfig, start, pgURL, out, name string
		serverArgs                          string
	)
	flag.StringVar(&kubeconfig, "kubeconfig", "", "admin kubeconfig of a running warren (or -start)")
	flag.StringVar(&start, "start", "", "build and start a warren of its own on sqlite or postgres, gone after the run")
	flag.StringVar(&pgURL, "postgres", pgtest.URL(), "PostgreSQL for -start postgres (a fresh schema, dropped after the run)")
	flag.IntVar(&p.Count, "count", 1000, "workspaces, N")
	flag.IntVar(&p.Objects, "objects", 1, "configmaps per workspace, K")
	flag.IntVar(&p.Concurrency, "concurrency", 16, fmt.Sprintf("workspaces created at once, C (at most %d)", resumeMargin))
	flag.StringVar(&out, "out", "bench/results", "directory of the results")
	flag.StringVar(&serverArgs, "server-args", "", "more arguments of the warren -start starts, space-separated (--gc-percent 100)")
	flag.StringVar(&name, "name", "", "label of the run, in the results' file names (default: the -start storage, else \"run\")")
	flag.Parse()
	if name == "" {
		name = start
	}
	if name == "" {
		name = "run"
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := benchmark(ctx, kubeconfig, start, pgURL, out, name, strings.Fields(serverArgs), p); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// benchmark runs the benchmark against the warren of kubeconfig or one it
// starts, prints the summary and writes the results and charts.
func benchmark(ctx context.Context, kubeconfig, start, pgURL, out, name string, serverArgs []string, p params) error {
	var serverLog func() string
	switch {
	case start != "" && kubeconfig != "":
		return errors.New("give -kubeconfig or -start, not both")
	case start != "":
		dir, err := os.MkdirTemp("", "warren-bench-workspaces-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		binary, err := warrentest.Build(ctx, dir)
		if err != nil {
			return err
		}
		w, err := startWarren(ctx, binary, dir, start, pgURL, serverArgs)
		if err != nil {
			return err
		}
		defer w.stop()
		kubeconfig, serverLog, p.Storage = w.Kubeconfig, w.Log, start
	case kubeconfig == "":
		return errors.New("give -kubeconfig of a running warren, or -start sqlite|postgres")
	}
	base := filepath.Join(out, "workspaces-"+name)
	res, err := runFromKubeconfig(ctx, kubeconfig, p, base, start == "postgres" && onThisMachine(pgURL))
	if err != nil && serverLog != nil {
		return fmt.Errorf("%w\nwarren's log:\n%s", err, serverLog())
	}
	if err != nil {
		return err
	}
	printSummary(res)
	return chart(base, res)
}

// runFromKubeconfig runs the benchmark as the user of kubeconfig, writing the
// results to base.json; localPostgres says the server stores in this machine's
// PostgreSQL.
func runFromKubeconfig(ctx context.Context, kubeconfig string, p params, base string, localPostgres bool) (*results, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", kubeconfig, err)
	}
	return run(ctx, cfg, p, base+".json", localPostgres)
}

// warren is a server the benchmark started.
type warren struct {
	*warrentest.Process
	dropSchema func()
}

// startWarren starts binary on a data directory under dir, on a SQLite file or
// a fresh schema of the PostgreSQL at pgURL, with the extra arguments.
func startWarren(ctx context.Context, binary, dir, storage, pgURL string, extra []string) (*warren, error) {
	w := &warren{dropSchema: func() {}}
	var args []string
	switch storage {
	case "sqlite":
	case "postgres":
		shard := "bench_workspaces_" + strconv.FormatInt(time.Now().UnixNano(), 36)
		args = []string{"--storage", pgURL, "--shard", shard}
		w.dropSchema = func() {
			if err := pgtest.DropSchema(context.WithoutCancel(ctx), pgURL, shard); err != nil {
				fmt.Fprintf(os.Stderr, "bench: dropping schema %s: %v\n", shard, err)
			}
		}
	default:
		return nil, fmt.Errorf("-start %q: want sqlite or postgres", storage)
	}
	var err error
	if w.Process, err = warrentest.StartProcess(binary, filepath.Join(dir, "data-"+storage), append(args, extra...)...); err != nil {
		w.dropSchema()
		return nil, err
	}
	return w, nil
}

// stop stops the server and drops its schema.
func (w *warren) stop() {
	if err := w.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
	}
	w.dropSchema()
}

// onThisMachine tells whether the PostgreSQL at pgURL runs on this machine.
func onThisMachine(pgURL string) bool {
	u, err := url.Parse(pgURL)
	if err != nil {
		return false
	}
	switch u.Hostname() {
	case "", "localhost", "127.0.0.1", "::1":
		return true
	}
	return false
}
