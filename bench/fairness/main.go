// Command fairness measures what one tenant flooding warren does to another:
// a quiet client gets one config map in its workspace at a steady pace, first
// alone, then while flooding clients list config maps in another workspace as
// fast as they can. It runs warren (on PostgreSQL by default) once per
// setting — API priority and fairness off (kube-apiserver's max-in-flight
// limits), on with its default concurrency, and on with concurrencies sized to
// the server's CPU — and reports the quiet client's latency alone and under
// the flood, the flood's throughput, and how busy the tenants' seats were.
// After each of its phases a third, sporadic client gets one config map in a
// workspace of its own every quarter of a second for as long, as most tenants
// of a large installation ask: fair queuing may owe a flood that is served
// alone credit, which a tenant coming back after a pause waits out. Tenants
// are users with bearer tokens (the admin is exempt from fairness); where the
// concurrency is sized, all of it is the tenants' priority level's
// (ownSeats). The server runs on CPU 0
// with GOMAXPROCS=1, the clients on CPU 1 (taskset), or with -shared all of
// them on all CPUs. The flooders read their answers without decoding them and
// the quiet client is a process of its own, so that, unless -shared, the
// clients' CPU does not weigh on the quiet client's latency.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/warren-dev/warren/bench/report"
	"github.com/warren-dev/warren/tenancy"
	"github.com/warren-dev/warren/test/pgtest"
	"github.com/warren-dev/warren/test/warrentest"
)

// tokens are the tenants' users.
const tokens = "flood-token,flooder,flooder-uid\nquiet-token,quiet,quiet-uid\nsporadic-token,sporadic,sporadic-uid\n"

// setting is one way of running the server.
type setting struct {
	Name string   `json:"setting"`
	Args []string `json:"args"`
	// Sized is whether the setting sizes the server's concurrency to its
	// CPU; the tenants' priority level then lends none of it (ownSeats).
	Sized bool `json:"sized,omitempty"`
	// Unfair is whether priority and fairness is off.
	Unfair bool `json:"unfair,omitempty"`
}

// result is what one setting gave.
type result struct {
	setting
	Alone   report.Result `json:"quiet_alone"`
	Flooded report.Result `json:"quiet_flooded"`
	// SporadicAlone and SporadicFlooded are the sporadic client's, each
	// after the quiet client's phase.
	SporadicAlone   report.Result `json:"sporadic_alone"`
	SporadicFlooded report.Result `json:"sporadic_flooded"`
	FloodPerSec     float64       `json:"flood_per_sec"`
	// SeatsBusy is the fraction of the tenants' priority level's seats in
	// use while the quiet and sporadic clients ran under the flood, averaged
	// over time (upstream's seat utilization); nil with fairness off.
	SeatsBusy *float64 `json:"seats_busy,omitempty"`
	// Rejected counts flood requests answered 429.
	Rejected int64 `json:"flood_rejected"`
	// Shared is whether the server shared all CPUs with the clients.
	Shared bool `json:"shared_cpus"`
	// SharedQueue is whether the quiet tenant's flow and the flood's were
	// found in one queue of priority and fairness (sharedQueue).
	SharedQueue bool `json:"shared_queue,omitempty"`
	// Run numbers the setting's runs from 1.
	Run int `json:"run"`
	// ServerArgs are the arguments every setting's server was given too.
	ServerArgs []string `json:"server_args,omitempty"`
}

type workload struct {
	flooders, quietRequests, objects int
	interval                         time.Duration
	// sporadic is the sporadic client's pause between gets.
	sporadic time.Duration
	postgres string
	// traces, if set, is where each setting's server execution trace of
	// the flood goes.
	traces string
	// profiles, if set, is where each setting's server CPU profile of the
	// flood goes.
	profiles string
	// shared runs the server, PostgreSQL and the clients on all the
	// machine's CPUs instead of the server alone on CPU 0.
	shared bool
	// serverArgs are more arguments of every setting's warren start.
	serverArgs []string
}

func main() {
	var (
		w         workload
		inflight  string
		baselines bool
		out       string
		runs      int
	)
	flag.IntVar(&w.flooders, "flooders", 50, "clients flooding the server from one workspace")
	flag.IntVar(&w.quietRequests, "quiet-requests", 1000, "gets of the quiet client, alone and again under the flood")
	flag.DurationVar(&w.interval, "quiet-interval", 5*time.Millisecond, "pause of the quiet client between gets")
	flag.DurationVar(&w.sporadic, "sporadic-interval", 250*time.Millisecond, "pause of the sporadic client between gets, which it makes for as long as the quiet client after it, alone and under the flood")
	flag.IntVar(&w.objects, "objects", 200, "config maps in each workspace (a flooder lists them all)")
	flag.StringVar(&inflight, "inflight", "1,2", "concurrencies sized to the server's CPU, comma-separated: requests served at once with priority and fairness, all of them the tenants' priority level's")
	flag.BoolVar(&baselines, "baselines", true, "run fairness off and with its default 600 seats too")
	flag.IntVar(&runs, "runs", 1, "runs of each setting, the settings taking turns; the table gives each figure's median over a setting's runs and the range of its p99 ratios, the JSON every run")
	flag.StringVar(&out, "out", "bench/results", "directory of fairness.json (fairness-shared.json with -shared)")
	flag.BoolVar(&w.shared, "shared", false, "run the server, PostgreSQL and the clients on all CPUs, the server with a P per CPU (default: the server alone on CPU 0 with GOMAXPROCS=1, the clients on CPU 1)")
	flag.StringVar(&w.traces, "trace", "", "save 2 s of the server's execution trace under the flood of each setting, as DIR/<setting number>.trace (go tool trace)")
	flag.StringVar(&w.profiles, "profile", "", "save a CPU profile of 2 s of the server under the flood of each setting, as DIR/<setting number>.profile (go tool pprof)")
	flag.StringVar(&w.postgres, "postgres", pgtest.URL(), "the PostgreSQL to serve from, a schema per setting; empty serves from SQLite, whose reads run in warren's CPU without yielding it")
	serverArgs := flag.String("server-args", "", "more arguments of every setting's warren start, space-separated (--gc-percent=-1: collect only near --memory-limit)")
	quietHost := flag.String("quiet-client", "", "run as the quiet client of this workspace URL (the benchmark runs itself so)")
	flag.Parse()
	if *quietHost != "" {
		if err := quietClient(context.Background(), *quietHost, w.quietRequests, w.interval); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	w.serverArgs = strings.Fields(*serverArgs)
	if runs < 1 || w.sporadic <= 0 {
		fmt.Fprintln(os.Stderr, "bench: -runs must be at least 1, -sporadic-interval more than 0")
		os.Exit(2)
	}

	var settings []setting
	if baselines {
		settings = []setting{
			{Name: "fairness off (max-in-flight 400/200)", Args: []string{"--enable-priority-and-fairness=false"}, Unfair: true},
			{Name: "fairness on, 600 seats (default)"},
		}
	}
	for _, n := range strings.Split(inflight, ",") {
		settings = append(settings, setting{Name: "fairness on, " + n + " seats", Args: []string{"--max-requests-inflight", n, "--max-mutating-requests-inflight", "0"}, Sized: true})
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	results, err := run(ctx, &w, settings, runs)
	if err == nil {
		name := "fairness.json"
		if w.shared {
			name = "fairness-shared.json"
		}
		err = report.WriteJSON(filepath.Join(out, name), results)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	printMedians(settings, results)
}

// printMedians prints, for each setting, the median over its runs of each
// figure, and the range of the p99 ratios.
func printMedians(settings []setting, results []result) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "setting\truns\tquiet p50 ms\tquiet p99 ms\tflooded p50 ms\tflooded p99 ms\tp99 ratio\tratios\tsporadic p50 / p99 ms\tflooded\tflood req/s\tseats busy\tflood 429s\tshared queue\t")
	for _, s := range settings {
		var runs []result
		for _, r := range results {
			if r.Name == s.Name {
				runs = append(runs, r)
			}
		}
		// sorted is a figure of each run, in ascending order.
		sorted := func(f func(result) float64) []float64 {
			v := make([]float64, len(runs))
			for i, r := range runs {
				v[i] = f(r)
			}
			slices.Sort(v)
			return v
		}
		median := func(f func(result) float64) float64 {
			v := sorted(f)
			if n := len(v); n%2 == 0 {
				return (v[n/2-1] + v[n/2]) / 2
			}
			return v[len(v)/2]
		}
		shared := 0
		for _, r := range runs {
			if r.SharedQueue {
				shared++
			}
		}
		sharedRuns := fmt.Sprintf("%d of %d", shared, len(runs))
		busy := "–"
		if s.Unfair {
			sharedRuns = "–"
		} else {
			busy = fmt.Sprintf("%.1f%%", 100*median(func(r result) float64 { return *r.SeatsBusy }))
		}
		ratio := func(r result) float64 { return r.Flooded.P99Ms / r.Alone.P99Ms }
		ratios := sorted(ratio)
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f×\t%.2f–%.2f×\t%.2f / %.2f\t%.2f / %.2f\t%.0f\t%s\t%.0f\t%s\t\n", s.Name, len(runs),
			median(func(r result) float64 { return r.Alone.P50Ms }), median(func(r result) float64 { return r.Alone.P99Ms }),
			median(func(r result) float64 { return r.Flooded.P50Ms }), median(func(r result) float64 { return r.Flooded.P99Ms }),
			median(ratio), ratios[0], ratios[len(ratios)-1],
			median(func(r result) float64 { return r.SporadicAlone.P50Ms }), median(func(r result) float64 { return r.SporadicAlone.P99Ms }),
			median(func(r result) float64 { return r.SporadicFlooded.P50Ms }), median(func(r result) float64 { return r.SporadicFlooded.P99Ms }),
			median(func(r result) float64 { return r.FloodPerSec }), busy, median(func(r result) float64 { return float64(r.Rejected) }), sharedRuns)
	}
	tw.Flush()
}

func run(ctx context.Context, w *workload, settings []setting, runs int) ([]result, error) {
	dir, err := os.MkdirTemp("", "warren-bench-fairness-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	binary, err := warrentest.Build(ctx, dir)
	if err != nil {
		return nil, err
	}
	tokenFile := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokenFile, []byte(tokens), 0o600); err != nil {
		return nil, err
	}
	// The clients run on CPU 1, the server (pinned once started) on CPU 0,
	// with one P for its one CPU.
	if !w.shared {
		if err := pin(os.Getpid(), "1"); err != nil {
			return nil, err
		}
		if err := os.Setenv("GOMAXPROCS", "1"); err != nil {
			return nil, err
		}
	}
	var results []result
	for run := range runs {
		for i, s := range settings {
			number := strconv.Itoa(i)
			args := slices.Concat([]string{"--token-auth-file", tokenFile}, s.Args, w.serverArgs)
			r, err := runSetting(ctx, w, s, number, binary, filepath.Join(dir, fmt.Sprintf("%d-%d", i, run)), args)
			if err != nil {
				return nil, err
			}
			r.Run = run + 1
			results = append(results, r)
		}
	}
	return results, nil
}

// runSetting starts a server of setting s, the number'th, with its data in
// dataDir, measures it, and stops it.
func runSetting(ctx context.Context, w *workload, s setting, number, binary, dataDir string, args []string) (result, error) {
	if w.postgres != "" {
		shard := "bench_fairness_" + number
		if err := pgtest.DropSchema(ctx, w.postgres, shard); err != nil {
			return result{}, err
		}
		args = append(args, "--storage", w.postgres, "--shard", shard)
	}
	p, err := warrentest.StartProcess(binary, dataDir, args...)
	if err != nil {
		return result{}, err
	}
	r, err := runOne(ctx, w, p, s, number)
	_ = p.Stop() // a slow stop changes nothing measured
	if err != nil {
		return r, fmt.Errorf("%s: %w\nwarren's log:\n%s", s.Name, err, p.Log())
	}
	return r, nil
}

// pin puts every thread of process pid on the CPUs listed.
func pin(pid int, cpus string) error {
	if out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(pid)).CombinedOutput(); err != nil {
		return fmt.Errorf("taskset: %v: %s", err, out)
	}
	return nil
}

func runOne(ctx context.Context, w *workload, p *warrentest.Process, s setting, number string) (result, error) {
	r := result{setting: s, Shared: w.shared, ServerArgs: w.serverArgs}
	if !w.shared {
		if err := pin(p.Pid(), "0"); err != nil {
			return r, err
		}
	}
	if s.Sized {
		if err := ownSeats(ctx, p); err != nil {
			return r, err
		}
	}
	flood, err := tenant(ctx, p, "flood", "flooder", "flood-token", w.objects)
	if err != nil {
		return r, err
	}
	quiet, err := tenant(ctx, p, "quiet", "quiet", "quiet-token", w.objects)
	if err != nil {
		return r, err
	}
	sporadic, err := tenant(ctx, p, "sporadic", "sporadic", "sporadic-token", 1)
	if err != nil {
		return r, err
	}
	if r.Alone, r.SporadicAlone, err = w.quiet(ctx, quiet, sporadic, s.Name, "alone"); err != nil {
		return r, err
	}

	floodCtx, stopFlood := context.WithCancel(ctx)
	var (
		wg             sync.WaitGroup
		done, rejected atomic.Int64
		floodErr       error
		once           sync.Once
	)
	for range w.flooders {
		// Each flooder is a client of its own, with its own connection, that
		// reads its answers without decoding them: the flood costs this
		// process little, so the quiet client's latency is the server's.
		c, err := rest.HTTPClientFor(flood)
		if err != nil {
			stopFlood()
			return r, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for floodCtx.Err() == nil {
				status, err := list(floodCtx, c, flood)
				switch {
				case err == nil && status == http.StatusOK:
					done.Add(1)
				case err == nil && status == http.StatusTooManyRequests:
					rejected.Add(1)
				case err == nil:
					once.Do(func() { floodErr = fmt.Errorf("a flooder's list: %s", http.StatusText(status)) })
				case floodCtx.Err() == nil:
					once.Do(func() { floodErr = err })
				}
			}
		}()
	}
	time.Sleep(time.Second) // the flood reaches its pace
	before, start := done.Load(), time.Now()
	var busy seatsBusy
	if !s.Unfair {
		if busy, err = readSeatsBusy(ctx, p); err != nil {
			stopFlood()
			return r, err
		}
	}
	traced, profiled := make(chan error, 1), make(chan error, 1)
	go func() { traced <- profile(ctx, p, w.traces, "trace", number) }()
	go func() { profiled <- profile(ctx, p, w.profiles, "profile", number) }()
	r.Flooded, r.SporadicFlooded, err = w.quiet(ctx, quiet, sporadic, s.Name, "flooded")
	err = errors.Join(err, <-traced, <-profiled)
	r.FloodPerSec = float64(done.Load()-before) / time.Since(start).Seconds()
	if err == nil && !s.Unfair {
		var after seatsBusy
		if after, err = readSeatsBusy(ctx, p); err == nil {
			r.SeatsBusy = ptr.To(after.since(busy))
			r.SharedQueue, err = sharedQueue(ctx, p, quiet)
		}
	}
	stopFlood()
	wg.Wait()
	r.Rejected = rejected.Load()
	return r, errors.Join(err, floodErr)
}

// seatsBusy is upstream's record of global-default's seats in use: a
// histogram of the fraction of its seats in use, each observation weighted by
// the nanoseconds it lasted, so its sum over its count is the mean fraction.
type seatsBusy struct{ sum, nanoseconds float64 }

// The series of global-default's seat utilization.
const (
	seatsBusySum   = `apiserver_flowcontrol_priority_level_seat_utilization_sum{phase="executing",priority_level="global-default"}`
	seatsBusyCount = `apiserver_flowcontrol_priority_level_seat_utilization_count{phase="executing",priority_level="global-default"}`
)

func readSeatsBusy(ctx context.Context, p *warrentest.Process) (seatsBusy, error) {
	c, err := adminHTTP(p)
	if err != nil {
		return seatsBusy{}, err
	}
	m, err := report.Metrics(ctx, c, p.URL("/metrics"), seatsBusySum, seatsBusyCount)
	if err != nil {
		return seatsBusy{}, err
	}
	return seatsBusy{sum: m[seatsBusySum], nanoseconds: m[seatsBusyCount]}, nil
}

// since is the mean fraction of the seats in use from b's reading to a's.
func (a seatsBusy) since(b seatsBusy) float64 {
	if a.nanoseconds <= b.nanoseconds {
		return 0
	}
	return (a.sum - b.sum) / (a.nanoseconds - b.nanoseconds)
}

// ownSeats makes root's global-default priority level, the tenants', lend
// none of its seats and waits until the server keeps them all for it.
// Upstream's suggested global-default lends half its seats to the levels that
// borrow, and the exempt level (the admin, the installation's controllers)
// borrows what it used in the last ten seconds: with a server of one seat
// that is all of global-default's, whose requests then wait in their queues
// for the next ten seconds.
func ownSeats(ctx context.Context, p *warrentest.Process) error {
	cfg, err := p.AdminConfig("root")
	if err != nil {
		return err
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	pls := c.FlowcontrolV1().PriorityLevelConfigurations()
	pl, err := pls.Get(ctx, "global-default", metav1.GetOptions{})
	if err != nil {
		return err
	}
	pl.Spec.Limited.LendablePercent = ptr.To[int32](0)
	if _, err := pls.Update(ctx, pl, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("global-default lending none: %w", err)
	}
	// The gauges of global-default's seats: nominal, and the lower bound
	// of what it keeps when the others borrow.
	seats := []string{
		`apiserver_flowcontrol_nominal_limit_seats{priority_level="global-default"}`,
		`apiserver_flowcontrol_lower_limit_seats{priority_level="global-default"}`,
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		m, err := report.Metrics(ctx, hc, p.URL("/metrics"), seats...)
		if err == nil && m[seats[0]] == m[seats[1]] {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("global-default still lends seats 10 s after it was told not to (%v)", err)
		}
	}
}

// sharedQueue tells whether the quiet tenant's requests wait in the flood's
// queue of priority and fairness: names of logical clusters are random, and
// two workspaces' flows may hash to one queue of their priority level (1 in
// its number of queues), which is then served in order of arrival. While the
// flood goes on it gets a config map as the quiet tenant a few times and reads
// the server's dump of the requests in its queues meanwhile: in a queue of its
// own a get waits for a flood list at most, in the flood's for about fifty.
func sharedQueue(ctx context.Context, p *warrentest.Process, quiet *rest.Config) (bool, error) {
	admin, err := adminHTTP(p)
	if err != nil {
		return false, err
	}
	c, err := kubernetes.NewForConfig(quiet)
	if err != nil {
		return false, err
	}
	for range 5 {
		got := make(chan error, 1)
		go func() {
			_, err := c.CoreV1().ConfigMaps(metav1.NamespaceDefault).Get(ctx, "cm-0", metav1.GetOptions{})
			got <- err
		}()
		time.Sleep(5 * time.Millisecond)
		shared, err := queuesShared(ctx, admin, p.URL("/debug/api_priority_and_fairness/dump_requests?includeRequestDetails=1"))
		if err := errors.Join(err, <-got); err != nil || shared {
			return shared, err
		}
	}
	return false, nil
}

// queuesShared reads priority and fairness's dump of the requests in its
// queues (a row per request, columns separated by commas: priority level,
// flow schema, queue, place in it, flow, …, user, verb, …) and tells whether a
// get of the tenants' level is in a queue with a list.
func queuesShared(ctx context.Context, c *http.Client, url string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return false, fmt.Errorf("priority and fairness's requests: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("priority and fairness's requests: %s %v", resp.Status, err)
	}
	const level, queue, verb = 0, 2, 11
	verbs := map[string]map[string]bool{} // queue → verbs of its requests
	for _, line := range strings.Split(string(body), "\n")[1:] {
		columns := strings.Split(line, ",")
		if len(columns) <= verb || strings.TrimSpace(columns[level]) != "global-default" {
			continue
		}
		q := strings.TrimSpace(columns[queue])
		if verbs[q] == nil {
			verbs[q] = map[string]bool{}
		}
		verbs[q][strings.TrimSpace(columns[verb])] = true
	}
	for _, v := range verbs {
		if v["get"] && v["list"] {
			return true, nil
		}
	}
	return false, nil
}

// adminHTTP is an HTTP client of p's installation admin, for the server's own
// endpoints.
func adminHTTP(p *warrentest.Process) (*http.Client, error) {
	cfg, err := p.AdminConfig("root")
	if err != nil {
		return nil, err
	}
	return rest.HTTPClientFor(cfg)
}

// profile saves what the server's /debug/pprof/<what> gives under the flood
// as <number>.<what> under dir, if dir is set.
func profile(ctx context.Context, p *warrentest.Process, dir, what, number string) error {
	if dir == "" {
		return nil
	}
	c, err := adminHTTP(p)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.URL("/debug/pprof/"+what+"?seconds=2"), nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("the server's %s: %w", what, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the server's %s: %s", what, resp.Status)
	}
	f, err := os.Create(filepath.Join(dir, number+"."+what))
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("the server's %s: %w", what, err)
	}
	return f.Close()
}

// list lists the config maps of cfg's workspace as protobuf and returns the
// status of the answer, whose body it reads and drops.
func list(ctx context.Context, c *http.Client, cfg *rest.Config) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Host+"/api/v1/namespaces/default/configmaps", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", runtime.ContentTypeProtobuf)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// quiet runs the quiet client, then the sporadic one for as long, each in a
// process of its own, so that their latencies are the server's and the
// kernel's, not those of the flooders' share of this process's scheduler, and
// summarises their latencies.
func (w *workload) quiet(ctx context.Context, quiet, sporadic *rest.Config, backend, op string) (q, s report.Result, err error) {
	if q, err = client(ctx, "the quiet client", quiet, w.quietRequests, w.interval, backend, op); err != nil {
		return q, s, err
	}
	n := max(1, int(time.Duration(w.quietRequests)*w.interval/w.sporadic))
	s, err = client(ctx, "the sporadic client", sporadic, n, w.sporadic, backend, op)
	return q, s, err
}

// client runs this program as a client of cfg's workspace getting n times,
// pausing between gets, and summarises its latencies.
func client(ctx context.Context, who string, cfg *rest.Config, n int, interval time.Duration, backend, op string) (report.Result, error) {
	self, err := os.Executable()
	if err != nil {
		return report.Result{}, err
	}
	cmd := exec.CommandContext(ctx, self, "-quiet-client", cfg.Host, "-quiet-requests", strconv.Itoa(n), "-quiet-interval", interval.String())
	cmd.Env = append(os.Environ(), quietTokenVar+"="+cfg.BearerToken)
	cmd.Stderr = os.Stderr
	start := time.Now()
	out, err := cmd.Output()
	if err != nil {
		return report.Result{}, fmt.Errorf("%s: %w", who, err)
	}
	var latencies []time.Duration
	if err := json.Unmarshal(out, &latencies); err != nil {
		return report.Result{}, fmt.Errorf("%s's latencies: %w", who, err)
	}
	return report.Summarize(backend, op, latencies, time.Since(start)), nil
}

// quietTokenVar passes a client's token to its process.
const quietTokenVar = "WARREN_BENCH_QUIET_TOKEN"

// quietClient gets one config map at host n times, pausing between gets, and
// writes the latencies to stdout as JSON.
func quietClient(ctx context.Context, host string, n int, interval time.Duration) error {
	c, err := kubernetes.NewForConfig(userConfig(host, os.Getenv(quietTokenVar)))
	if err != nil {
		return err
	}
	latencies := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		if _, err := c.CoreV1().ConfigMaps(metav1.NamespaceDefault).Get(ctx, "cm-0", metav1.GetOptions{}); err != nil {
			return fmt.Errorf("the quiet client's get: %w", err)
		}
		latencies = append(latencies, time.Since(t0))
		time.Sleep(interval)
	}
	return json.NewEncoder(os.Stdout).Encode(latencies)
}

// tenant makes workspace name, lets user edit its default namespace, fills it
// with config maps, and returns the user's client configuration for it.
func tenant(ctx context.Context, p *warrentest.Process, name, user, token string, objects int) (*rest.Config, error) {
	if _, err := p.CreateWorkspace(ctx, name); err != nil {
		return nil, err
	}
	path := string(tenancy.RootPath.Join(name))
	admin, err := p.AdminConfig(path)
	if err != nil {
		return nil, err
	}
	c, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return nil, err
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user + "-edits"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "edit"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	}
	if _, err := c.RbacV1().RoleBindings(metav1.NamespaceDefault).Create(ctx, binding, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("letting %s into workspace %s: %w", user, name, err)
	}
	access := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user + "-enters"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:kcp:workspace:access"},
		Subjects:   binding.Subjects,
	}
	if _, err := c.RbacV1().ClusterRoleBindings().Create(ctx, access, metav1.CreateOptions{}); err != nil {
		return nil, fmt.Errorf("letting %s into workspace %s: %w", user, name, err)
	}
	for i := range objects {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm-%d", i)}, Data: map[string]string{"v": fmt.Sprint(i)}}
		if _, err := c.CoreV1().ConfigMaps(metav1.NamespaceDefault).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("filling workspace %s: %w", name, err)
		}
	}
	cfg := userConfig(admin.Host, token)
	// The grants reach the server's RBAC view within the watch's lag.
	as, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, err := as.CoreV1().ConfigMaps(metav1.NamespaceDefault).Get(ctx, "cm-0", metav1.GetOptions{})
		if err == nil {
			return cfg, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s in workspace %s: %w", user, name, err)
		}
	}
}

// userConfig is the configuration of a tenant's client of the workspace at
// host: a bearer token, protobuf, unthrottled, as a controller's.
func userConfig(host, token string) *rest.Config {
	return &rest.Config{
		Host:            host,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		QPS:             -1,
		ContentConfig:   rest.ContentConfig{ContentType: runtime.ContentTypeProtobuf},
	}
}
