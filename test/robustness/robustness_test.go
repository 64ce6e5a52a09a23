package robustness

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/anishathalye/porcupine"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/warren-dev/warren/test/pgtest"
	"github.com/warren-dev/warren/test/warrentest"
)

// binary is the warren binary under test, built once by TestMain.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "warren-robustness-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary, err = warrentest.Build(context.Background(), dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const (
	defaultClients = 4
	// faultEvery is the pause between faults.
	faultEvery = 2 * time.Second
)

// duration is how long each scenario runs: WARREN_ROBUSTNESS_DURATION, or a
// few faults' worth for `make test`.
func duration(t *testing.T) time.Duration {
	if v := os.Getenv("WARREN_ROBUSTNESS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("WARREN_ROBUSTNESS_DURATION: %v", err)
		}
		return d
	}
	return 7 * time.Second
}

// summary is one row of the report.
type summary struct {
	scenario, dialect   string
	ops, events, faults int
	violations          int
}

// TestRobustness runs every scenario on every dialect it applies to.
func TestRobustness(t *testing.T) {
	d := duration(t)
	var rows []summary
	for _, sc := range scenarios {
		for _, dialect := range sc.dialects {
			t.Run(sc.name+"/"+dialect, func(t *testing.T) {
				rows = append(rows, run(t, sc, dialect, d))
			})
		}
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tdialect\toperations\twatch events\tfaults\tviolations\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t\n", r.scenario, r.dialect, r.ops, r.events, r.faults, r.violations)
	}
	tw.Flush()
}

// roundLength bounds a round: the history checked at once. Between rounds the
// clients stop and every key is read, so the next round starts from a known
// state and long runs stay checkable.
const roundLength = 30 * time.Second

func run(t *testing.T, sc scenario, dialect string, d time.Duration) summary {
	args := warrentest.Storage(t, dialect)
	var pair *pgtest.Pair
	if sc.replicated {
		pair = pgtest.NewReplicatedPair(t)
		if err := pgtest.CreateSchema(context.Background(), pair.URL(), "robust"); err != nil {
			t.Fatal(err)
		}
		args = []string{"--storage", pair.URL(), "--shard", "robust"}
	}
	if sc.processes > 1 {
		// Processes of one shard share its PKI.
		args = append(args, "--pki-dir", filepath.Join(t.TempDir(), "pki"))
	}
	s := warrentest.Start(t, binary, args...)
	tg := target{server: s, servers: []*warrentest.Server{s}, dialect: dialect, shard: shardOf(s.Args), pair: pair}
	for range sc.processes - 1 {
		tg.servers = append(tg.servers, warrentest.Start(t, binary, args...))
	}
	cfg := s.Config("robust")
	cfg.Timeout = 10 * time.Second
	// client-go resends a request answered with Retry-After, writes included: a
	// write whose first attempt timed out but committed would be recorded with
	// the outcome of the second. The history must hold what each attempt did.
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return noRetryAfter{rt} }
	var clients []kubernetes.Interface
	for _, server := range tg.servers {
		per := rest.CopyConfig(cfg)
		per.Host = strings.Replace(cfg.Host, s.URL(""), server.URL(""), 1)
		c, err := kubernetes.NewForConfig(per)
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	c := clients[0]
	w := &watcher{}
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watching := make(chan struct{})
	go func() { defer close(watching); w.run(watchCtx, c) }()

	row := summary{scenario: sc.name, dialect: dialect}
	var acked []ackedWrite
	violations := 0
	var state []porcupine.Operation // the keys as the last round left them
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		rec := &recorder{start: time.Now(), history: state}
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		n := sc.clients
		if n == 0 {
			n = defaultClients
		}
		wg.Add(n)
		for id := range n {
			go func() { defer wg.Done(); rec.client(ctx, id, clients[id%len(clients)]) }()
		}
		end := time.Now().Add(roundLength)
		if deadline.Before(end) {
			end = deadline
		}
		for time.Now().Before(end) {
			time.Sleep(faultEvery)
			if err := sc.inject(ctx, tg); err != nil {
				cancel()
				wg.Wait()
				stopWatch()
				t.Fatalf("injecting %s: %v", sc.name, err)
			}
			row.faults++
		}
		time.Sleep(time.Second) // let the clients see the last fault through
		cancel()
		wg.Wait()
		if time.Now().Before(deadline) {
			// The next round starts from the keys as read now: a write of unknown
			// outcome still in flight in the server must land first.
			time.Sleep(time.Until(rec.start.Add(rec.settled)))
		}
		state = rec.finalReads(t, c)
		row.ops += rec.ops
		acked = append(acked, rec.acked...)
		result, info := porcupine.CheckOperationsVerbose(model, rec.history, time.Minute)
		var found []string
		switch result {
		case porcupine.Illegal:
			violations++
			found = append(found, "the key/value history is not linearizable (see linearizability.html)")
			found = append(found, shortestIllegal(rec.history)...)
		case porcupine.Unknown:
			violations++
			found = append(found, "porcupine could not decide linearizability within a minute")
		}
		violations += len(rec.listViolations)
		found = append(found, rec.listViolations...)
		if len(found) > 0 {
			dir := writeResults(t, sc.name, dialect, rec, w, info, found)
			t.Errorf("%s on %s: violations, written to %s:\n%s", sc.name, dialect, dir, strings.Join(found, "\n"))
		}
	}
	time.Sleep(time.Second) // the last writes' events
	stopWatch()
	<-watching
	row.events = len(w.events)
	watchViolations := w.check(acked)
	if len(acked) == 0 {
		watchViolations = append(watchViolations, "no write was acknowledged: the run proves nothing")
	}
	if len(watchViolations) > 0 {
		t.Errorf("%s on %s: watch violations:\n%s", sc.name, dialect, strings.Join(watchViolations, "\n"))
	}
	row.violations = violations + len(watchViolations)
	return row
}

// shortestIllegal explains a non-linearizable history: for each key whose
// operations are not linearizable, the operations up to the shortest prefix (by
// call time) that already is not.
func shortestIllegal(history []porcupine.Operation) []string {
	var lines []string
	for _, ops := range registers.Partition(history) {
		if porcupine.CheckOperationsTimeout(model, ops, 10*time.Second) != porcupine.Illegal {
			continue
		}
		sort.Slice(ops, func(i, j int) bool { return ops[i].Call < ops[j].Call })
		lo, hi := 1, len(ops)
		for lo < hi {
			mid := (lo + hi) / 2
			if porcupine.CheckOperationsTimeout(model, ops[:mid], 10*time.Second) == porcupine.Illegal {
				hi = mid
			} else {
				lo = mid + 1
			}
		}
		lines = append(lines, fmt.Sprintf("key %s: the first %d operations are not linearizable; the last of them:", ops[0].Input.(input).Key, lo))
		for _, op := range ops[max(0, lo-15):lo] {
			lines = append(lines, fmt.Sprintf("  client %d, %.3fs..%.3fs: %s", op.ClientId, float64(op.Call)/1e9, float64(op.Return)/1e9, registers.DescribeOperation(op.Input, op.Output)))
		}
	}
	return lines
}

// noRetryAfter drops Retry-After from responses, so that client-go reports
// every answer instead of retrying.
type noRetryAfter struct{ http.RoundTripper }

// WrappedRoundTripper lets client-go reach the transport underneath.
func (n noRetryAfter) WrappedRoundTripper() http.RoundTripper { return n.RoundTripper }

func (n noRetryAfter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := n.RoundTripper.RoundTrip(req)
	if resp != nil {
		resp.Header.Del("Retry-After")
	}
	return resp, err
}

// finalReader is the client id of the reads between rounds.
const finalReader = -1

// finalReads reads every key once the clients stopped, so that the history ends
// with what the server durably holds, and returns that state as operations the
// next round's history starts with.
func (r *recorder) finalReads(t *testing.T, c kubernetes.Interface) []porcupine.Operation {
	var state []porcupine.Operation
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, key := range keys {
		for {
			call := r.now()
			cm, err := c.CoreV1().ConfigMaps("default").Get(ctx, key, metav1.GetOptions{})
			outcome, sent := classify(err)
			if sent && outcome != "unknown" {
				out := output{Outcome: outcome}
				if err == nil {
					out.Value, out.RV = cm.Data["v"], cm.ResourceVersion
				}
				r.record(finalReader, input{Kind: "get", Key: key}, out, call, r.now())
				if err == nil {
					state = append(state, porcupine.Operation{ClientId: finalReader, Call: -2, Return: -1,
						Input: input{Kind: "create", Key: key, Value: out.Value}, Output: output{Outcome: "ok", RV: out.RV}})
				}
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("the server did not answer the final reads: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return state
}

// writeResults keeps a failed run's history for replay and returns its folder.
func writeResults(t *testing.T, scenario, dialect string, rec *recorder, w *watcher, info porcupine.LinearizationInfo, explanation []string) string {
	dir := filepath.Join("results", fmt.Sprintf("%s-%s-%d", scenario, dialect, time.Now().Unix()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, v any) {
		data, err := json.MarshalIndent(v, "", "  ")
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, name), data, 0o644)
		}
		if err != nil {
			t.Errorf("writing %s: %v", name, err)
		}
	}
	write("history.json", rec.history)
	write("acknowledged.json", rec.acked)
	write("watch.json", w.events)
	if err := os.WriteFile(filepath.Join(dir, "explanation.txt"), []byte(strings.Join(explanation, "\n")+"\n"), 0o644); err != nil {
		t.Error(err)
	}
	if err := porcupine.VisualizePath(model, info, filepath.Join(dir, "linearizability.html")); err != nil {
		t.Errorf("visualizing: %v", err)
	}
	abs, _ := filepath.Abs(dir)
	return abs
}
