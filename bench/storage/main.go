// Command storage benchmarks warren's storage against kine and etcd: one workload,
// run through k8s.io/apiserver's storage.Interface on every back end in one run, so
// that every figure can be read as a ratio. kine and etcd are embedded here, in a
// main package of their own, so that they never link into the warren binary.
//
// Back ends: warren-sqlite and warren-postgres (warren's store), kine-sqlite and
// kine-postgres (kine as a library on the same databases, with upstream's etcd3
// store on top, as an apiserver uses kine) and etcd (embedded, etcd3 store on top).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/k3s-io/kine/pkg/drivers/generic"
	_ "github.com/k3s-io/kine/pkg/drivers/pgsql" // kine's postgres driver
	kinesqlite "github.com/k3s-io/kine/pkg/drivers/sqlite"
	"github.com/sirupsen/logrus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apiserver/pkg/apis/example"
	examplev1 "k8s.io/apiserver/pkg/apis/example/v1"
	"k8s.io/klog/v2"

	"github.com/warren-dev/warren/bench/report"
	"github.com/warren-dev/warren/test/pgtest"
)

var (
	scheme = runtime.NewScheme()
	codec  runtime.Codec
)

func init() {
	metav1.AddToGroupVersion(scheme, metav1.SchemeGroupVersion)
	utilruntime.Must(example.AddToScheme(scheme))
	utilruntime.Must(examplev1.AddToScheme(scheme))
	codec = serializer.NewCodecFactory(scheme).LegacyCodec(examplev1.SchemeGroupVersion)
}

// kinePool is kine's command-line default connection pool.
var kinePool = generic.ConnectionPoolConfig{MaxIdle: 20, MaxIdleTime: 2 * time.Minute}

var allBackends = []string{"warren-sqlite", "warren-postgres", "kine-sqlite", "kine-postgres", "etcd"}

func main() {
	var (
		w        workload
		backends string
		pgURL    string
		out      string
		dir      string
		profile  string
		replot   bool
	)
	flag.IntVar(&w.creates, "creates", 20000, "objects created (about 1 KiB each)")
	flag.IntVar(&w.clusters, "clusters", 1000, "logical clusters the objects spread over")
	flag.IntVar(&w.writers, "writers", 32, "concurrent writers")
	flag.IntVar(&w.updates, "updates", 5000, "GuaranteedUpdates of random objects")
	flag.IntVar(&w.gets, "gets", 2000, "gets of random objects")
	flag.IntVar(&w.lists, "lists", 1000, "lists of one random cluster")
	flag.IntVar(&w.readers, "readers", 8, "concurrent readers")
	flag.Int64Var(&w.pageSize, "page-size", 500, "page size of the list of everything")
	flag.IntVar(&w.watchWrites, "watch-writes", 1000, "writes whose watch latency is measured")
	flag.StringVar(&backends, "backends", strings.Join(allBackends, ","), "back ends to run, comma-separated")
	flag.StringVar(&pgURL, "postgres", pgtest.URL(), "PostgreSQL to run on")
	flag.StringVar(&out, "out", "bench/results", "directory of storage.json, storage-disk.json and the charts storage.svg and storage.png")
	flag.StringVar(&dir, "dir", "", "directory for SQLite files and etcd data (default: a new temporary one)")
	flag.StringVar(&profile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.BoolVar(&replot, "replot", false, "only redraw the charts from the storage.json in -out")
	flag.Parse()
	w.payload = strings.Repeat("x", 800)

	if replot {
		if err := redraw(out); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(ctx, &w, strings.Split(backends, ","), pgURL, out, dir); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(ctx context.Context, w *workload, backends []string, pgURL, out, dir string) error {
	// kine and the etcd client log every connection; the table is the output.
	logrus.SetLevel(logrus.ErrorLevel)
	klog.SetOutput(os.Stderr)
	if dir == "" {
		tmp, err := os.MkdirTemp("", "warren-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	const warrenSchema, kineDB = "bench_warren", "bench_kine"
	if err := resetPostgres(ctx, pgURL, warrenSchema, kineDB); err != nil {
		return err
	}
	kineURL, err := withDatabase(pgURL, kineDB)
	if err != nil {
		return err
	}
	var results []report.Result
	var disk []diskUsage
	for _, name := range backends {
		t, err := open(ctx, name, dir, pgURL, warrenSchema, kineURL)
		if err != nil {
			return err
		}
		rs, err := w.run(ctx, t)
		for _, f := range t.files {
			db, wal := fileSize(f)
			disk = append(disk, diskUsage{Backend: t.name, File: filepath.Base(f), Bytes: db, WALBytes: wal})
		}
		t.close()
		if err != nil {
			return err
		}
		results = append(results, rs...)
	}
	printTable(results, disk)
	return write(out, results, disk)
}

func open(ctx context.Context, name, dir, pgURL, warrenSchema, kineURL string) (*target, error) {
	switch name {
	case "warren-sqlite":
		path := filepath.Join(dir, "warren.db")
		return openWarren(ctx, name, path, "", []string{path})
	case "warren-postgres":
		return openWarren(ctx, name, pgURL, warrenSchema, nil)
	case "kine-sqlite":
		path := filepath.Join(dir, "kine.db")
		// kine's own defaults for a SQLite file (WAL, busy timeout, NORMAL sync).
		return openKine(ctx, name, "sqlite://"+path+"?"+kinesqlite.DefaultParams, dir, []string{path}, false)
	case "kine-postgres":
		return openKine(ctx, name, kineURL, dir, nil, true)
	case "etcd":
		return openEtcd(dir)
	default:
		return nil, fmt.Errorf("unknown back end %q (want one of %s)", name, strings.Join(allBackends, ", "))
	}
}

// diskUsage is the size of a back end's database file after its run.
type diskUsage struct {
	Backend  string `json:"backend"`
	File     string `json:"file"`
	Bytes    int64  `json:"bytes"`
	WALBytes int64  `json:"wal_bytes"`
}

func printTable(results []report.Result, disk []diskUsage) {
	report.PrintTable(results)
	fmt.Println()
	for _, d := range disk {
		fmt.Printf("%-16s %-10s %8.1f MiB, WAL %6.1f MiB\n", d.Backend, d.File, float64(d.Bytes)/(1<<20), float64(d.WALBytes)/(1<<20))
	}
}

func write(out string, results []report.Result, disk []diskUsage) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "storage.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	if data, err = json.MarshalIndent(disk, "", "  "); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, "storage-disk.json"), append(data, '\n'), 0o644); err != nil {
		return err
	}
	return report.Chart(filepath.Join(out, "storage"), results)
}

// redraw draws the charts of the results in out again.
func redraw(out string) error {
	data, err := os.ReadFile(filepath.Join(out, "storage.json"))
	if err != nil {
		return err
	}
	var results []report.Result
	if err := json.Unmarshal(data, &results); err != nil {
		return fmt.Errorf("reading %s: %w", filepath.Join(out, "storage.json"), err)
	}
	return report.Chart(filepath.Join(out, "storage"), results)
}
