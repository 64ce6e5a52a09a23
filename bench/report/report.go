// Package report holds what warren's benchmark programs share: running timed
// operations in parallel, summarising latencies, the progress line, the results
// table, and the charts.
package report

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// Result is one operation's figures on one target.
type Result struct {
	Backend   string  `json:"backend"`
	Op        string  `json:"op"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
	TotalMs   float64 `json:"total_ms"`
	// ServerCPUMs is the server's processor time per operation (user and
	// system), where the benchmark measures it.
	ServerCPUMs float64 `json:"server_cpu_ms_per_op,omitempty"`
}

// Parallel runs n operations on `workers` goroutines and returns each one's latency
// and the time for all.
func Parallel(ctx context.Context, n, workers int, p *Progress, op func(ctx context.Context, i int) error) ([]time.Duration, time.Duration, error) {
	latencies := make([]time.Duration, n)
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				if err := op(ctx, i); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				latencies[i] = time.Since(t0)
				p.Add(1, n)
			}
		}()
	}
	wg.Wait()
	return latencies, time.Since(start), firstErr
}

// Summarize turns the latencies of one operation, which took total in all, into a
// Result.
func Summarize(backend, op string, latencies []time.Duration, total time.Duration) Result {
	sorted := slices.Clone(latencies)
	slices.Sort(sorted)
	pct := func(q float64) float64 {
		if len(sorted) == 0 {
			return 0
		}
		return ms(sorted[min(len(sorted)-1, int(q*float64(len(sorted))))])
	}
	return Result{
		Backend:   backend,
		Op:        op,
		OpsPerSec: float64(len(latencies)) / total.Seconds(),
		P50Ms:     pct(0.50),
		P99Ms:     pct(0.99),
		TotalMs:   ms(total),
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Progress shows how far a phase is, on one line of the terminal.
type Progress struct {
	label string
	done  atomic.Int64
	total atomic.Int64
	quit  chan struct{}
	wg    sync.WaitGroup
}

// StartProgress shows the progress of op on backend until Stop.
func StartProgress(backend, op string) *Progress {
	p := &Progress{label: fmt.Sprintf("%-16s %-13s", backend, op), quit: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.quit:
				p.print()
				fmt.Fprintln(os.Stderr)
				return
			case <-tick.C:
				p.print()
			}
		}
	}()
	return p
}

// Add counts n more operations done out of total; a nil p counts nothing.
func (p *Progress) Add(n, total int) {
	if p == nil {
		return
	}
	p.done.Add(int64(n))
	p.total.Store(int64(total))
}

func (p *Progress) print() {
	done, total := p.done.Load(), max(1, p.total.Load())
	width := 30
	filled := int(done * int64(width) / total)
	fmt.Fprintf(os.Stderr, "\r%s [%s%s] %d/%d", p.label, strings.Repeat("#", filled), strings.Repeat(".", width-filled), done, total)
}

// Stop ends the progress line.
func (p *Progress) Stop() {
	close(p.quit)
	p.wg.Wait()
}

// PrintTable prints results as a table on stdout.
func PrintTable(results []Result) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "backend\top\tops/s\tp50 ms\tp99 ms\ttotal ms\tserver CPU ms/op\t")
	for _, r := range results {
		cpu := "-"
		if r.ServerCPUMs > 0 {
			cpu = fmt.Sprintf("%.3f", r.ServerCPUMs)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%.2f\t%.2f\t%.0f\t%s\t\n", r.Backend, r.Op, r.OpsPerSec, r.P50Ms, r.P99Ms, r.TotalMs, cpu)
	}
	tw.Flush()
}
