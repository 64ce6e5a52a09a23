package main

import (
	"fmt"
	"os"
	"text/tabwriter"

	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/warren-dev/warren/bench/report"
)

const mib = 1 << 20

// latency is the checkpoint's figures of op, if it sampled op.
func (c checkpoint) latency(op string) (p50, p99 float64, ok bool) {
	for _, r := range c.Latency {
		if r.Op == op {
			return r.P50Ms, r.P99Ms, true
		}
	}
	return 0, 0, false
}

// printSummary prints the checkpoints as a Markdown table and the run's
// figures per workspace.
func printSummary(res *results) {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "| workspaces\t| Ready/s\t| RSS MiB\t| heap MiB\t| goroutines\t| DB MiB\t| get p50 / p99 ms\t| list p50 / p99 ms\t| watch p50 / p99 ms\t|")
	fmt.Fprintln(tw, "| ---\t| ---\t| ---\t| ---\t| ---\t| ---\t| ---\t| ---\t| ---\t|")
	for _, c := range res.Checkpoints {
		fmt.Fprintf(tw, "| %d\t| %.0f\t| %.1f\t| %.1f\t| %d\t| %.1f\t", c.Workspaces, c.ReadyPerSec,
			float64(c.RSSBytes)/mib, float64(c.HeapInuseBytes)/mib, c.Goroutines, float64(c.DatabaseBytes)/mib)
		for _, op := range []string{"get", "list", "watch"} {
			if p50, p99, ok := c.latency(op); ok {
				fmt.Fprintf(tw, "| %.2f / %.2f\t", p50, p99)
			} else {
				fmt.Fprint(tw, "| –\t")
			}
		}
		fmt.Fprintln(tw, "|")
	}
	tw.Flush()
	fmt.Printf("\ncreated %d workspaces (%d existed) in %.1f s: %.0f Ready/s, create→Ready p50 %.1f ms, p99 %.1f ms\n",
		res.Created, res.Existing, res.CreateMs/1000, res.ReadyPerSec, res.Ready.P50Ms, res.Ready.P99Ms)
	fmt.Printf("per workspace: RSS %.1f KiB, database %.1f KiB, server CPU %.2f ms\n",
		res.RSSPerWorkspace/1024, res.DatabasePerWorkspace/1024, res.CPUMsPerWorkspace)
	if c := res.Creation; c != nil {
		fmt.Printf("creating, per workspace: warren CPU %.2f ms", c.WarrenCPUMs)
		if c.PostgresCPUMs > 0 {
			fmt.Printf(", PostgreSQL CPU %.2f ms", c.PostgresCPUMs)
		}
		fmt.Printf(", %.1f database transactions (%.1f writes in %.1f batches)\n", c.Transactions, c.Writes, c.WriteBatches)
	}
}

// chart draws the creation rate, the p99 latencies and the server's memory and
// database against the number of workspaces into base.svg and base.png.
func chart(base string, res *results) error {
	series := func(value func(checkpoint) (float64, bool)) plotter.XYs {
		var xys plotter.XYs
		for _, c := range res.Checkpoints {
			if y, ok := value(c); ok {
				xys = append(xys, plotter.XY{X: float64(c.Workspaces), Y: y})
			}
		}
		return xys
	}
	p99 := func(op string) plotter.XYs {
		return series(func(c checkpoint) (float64, bool) {
			_, p99, ok := c.latency(op)
			return p99, ok
		})
	}
	panels := []report.Panel{
		{Title: "workspaces Ready per second", Lines: []any{"Ready/s", series(func(c checkpoint) (float64, bool) {
			return c.ReadyPerSec, c.ReadyPerSec > 0
		})}},
		{Title: "p99 latency (ms)", Lines: []any{"get", p99("get"), "list", p99("list"), "watch", p99("watch")}},
		{Title: "server (MiB)", Lines: []any{
			"RSS", series(func(c checkpoint) (float64, bool) { return float64(c.RSSBytes) / mib, true }),
			"database", series(func(c checkpoint) (float64, bool) { return float64(c.DatabaseBytes) / mib, true }),
		}},
	}
	return report.LinePanels(base, "workspaces", panels, 7*vg.Inch, 10*vg.Inch)
}
