package report

import (
	"fmt"
	"io"
	"math"
	"os"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Chart draws throughput and p99 latency per operation, one bar per back end,
// on logarithmic axes (the back ends differ by orders of magnitude), into
// base.svg and base.png.
func Chart(base string, results []Result) error {
	var ops, backends []string
	for _, r := range results {
		if !slices.Contains(ops, r.Op) {
			ops = append(ops, r.Op)
		}
		if !slices.Contains(backends, r.Backend) {
			backends = append(backends, r.Backend)
		}
	}
	panels := []struct {
		title string
		value func(Result) float64
	}{
		{"throughput (operations/s, log scale)", func(r Result) float64 { return r.OpsPerSec }},
		{"p99 latency (ms, log scale)", func(r Result) float64 { return r.P99Ms }},
	}
	plots := make([][]*plot.Plot, len(panels))
	barWidth := vg.Points(12)
	for i, panel := range panels {
		p := plot.New()
		p.Title.Text = panel.title
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		p.Legend.Top = true
		// A log axis has no zero: bars start at a floor below the smallest value,
		// and an operation a back end did not run, or ran in no measurable time,
		// sits on it.
		floor, top := math.Inf(1), 0.0
		for _, r := range results {
			if v := panel.value(r); v > 0 {
				floor, top = min(floor, v/2), max(top, v*2)
			}
		}
		floors := make(plotter.Values, len(ops))
		for k := range floors {
			floors[k] = floor
		}
		base, err := plotter.NewBarChart(floors, barWidth)
		if err != nil {
			return err
		}
		for j, backend := range backends {
			// Each bar stands on the floor and reaches up to its value.
			values := make(plotter.Values, len(ops))
			for _, r := range results {
				if k := slices.Index(ops, r.Op); r.Backend == backend && panel.value(r) > 0 {
					values[k] = panel.value(r) - floor
				}
			}
			bars, err := plotter.NewBarChart(values, barWidth)
			if err != nil {
				return fmt.Errorf("charting %s: %w", backend, err)
			}
			bars.StackOn(base)
			bars.LineStyle.Width = 0
			bars.Color = plotutil.Color(j)
			bars.Offset = vg.Length(j-len(backends)/2) * barWidth
			p.Add(bars)
			p.Legend.Add(backend, bars)
		}
		p.NominalX(ops...)
		p.Y.Min, p.Y.Max = floor, top
		plots[i] = []*plot.Plot{p}
	}
	width, height := vg.Length(len(ops)*len(backends))*barWidth+3*vg.Inch, 9*vg.Inch
	return WritePanels(base, plots, width, height)
}

// WritePanels draws plots, one panel per row, on a page of width × height and
// writes it to base.svg and base.png.
func WritePanels(base string, plots [][]*plot.Plot, width, height vg.Length) error {
	for _, format := range []struct {
		ext    string
		canvas vg.CanvasWriterTo
	}{
		{".svg", vgsvg.New(width, height)},
		{".png", vgimg.PngCanvas{Canvas: vgimg.New(width, height)}},
	} {
		tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadY: vg.Inch / 4, PadTop: vg.Inch / 8, PadBottom: vg.Inch / 8}
		canvases := plot.Align(plots, tiles, draw.New(format.canvas))
		for i := range plots {
			plots[i][0].Draw(canvases[i][0])
		}
		if err := writeTo(base+format.ext, format.canvas); err != nil {
			return err
		}
	}
	return nil
}

func writeTo(path string, w io.WriterTo) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := w.WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}

// Panel is one chart of line series against a common x axis: names and
// plotter.XYs alternating, as plotutil.AddLinePoints takes them.
type Panel struct {
	Title string
	Lines []any
}

// LinePanels draws panels, one per row, with xLabel under each, on a page of
// width × height, into base.svg and base.png.
func LinePanels(base, xLabel string, panels []Panel, width, height vg.Length) error {
	plots := make([][]*plot.Plot, len(panels))
	for i, panel := range panels {
		p := plot.New()
		p.Title.Text = panel.Title
		p.X.Label.Text = xLabel
		p.X.Min, p.Y.Min = 0, 0
		p.Legend.Top, p.Legend.Left = true, true
		if err := plotutil.AddLinePoints(p, panel.Lines...); err != nil {
			return fmt.Errorf("charting %s: %w", panel.Title, err)
		}
		plots[i] = []*plot.Plot{p}
	}
	return WritePanels(base, plots, width, height)
}
