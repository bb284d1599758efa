package loadgen

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// A small line-chart writer: panels stacked in one SVG document, each with
// its own y axis from zero, a shared x axis in seconds, and a legend. No
// dependency: the document is plain text any browser shows.

type chartSeries struct {
	name string
	x    []float64
	y    []float64 // NaN: no point (the line breaks)
}

type chartPanel struct {
	title string
	unit  string
	scale float64 // y values are divided by it (1<<20 for MiB)
	lines []chartSeries
}

var chartColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

const (
	chartWidth  = 960
	panelHeight = 230
	marginLeft  = 80
	marginRight = 180
	marginTop   = 34
	plotHeight  = 160
)

func writeSVG(w io.Writer, title string, panels []chartPanel) error {
	bw := bufio.NewWriter(w)
	height := 40 + len(panels)*panelHeight
	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartWidth, height, chartWidth, height)
	fmt.Fprintf(bw, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(bw, `<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", marginLeft, html.EscapeString(title))
	maxX := 0.0
	for _, p := range panels {
		for _, l := range p.lines {
			for _, x := range l.x {
				maxX = math.Max(maxX, x)
			}
		}
	}
	if maxX == 0 {
		maxX = 1
	}
	for i, p := range panels {
		writePanel(bw, p, 40+i*panelHeight, maxX)
	}
	fmt.Fprintln(bw, "</svg>")
	return bw.Flush()
}

func writePanel(w *bufio.Writer, p chartPanel, top int, maxX float64) {
	plotW := float64(chartWidth - marginLeft - marginRight)
	y0 := float64(top + marginTop + plotHeight)
	maxY := 0.0
	for _, l := range p.lines {
		for _, y := range l.y {
			if !math.IsNaN(y) {
				maxY = math.Max(maxY, y/p.scale)
			}
		}
	}
	maxY = niceCeil(maxY)
	fmt.Fprintf(w, `<text x="%d" y="%d" font-weight="bold">%s</text>`+"\n", marginLeft, top+20, html.EscapeString(p.title+" ("+p.unit+")"))
	fmt.Fprintf(w, `<rect x="%d" y="%d" width="%.0f" height="%d" fill="none" stroke="#999"/>`+"\n", marginLeft, top+marginTop, plotW, plotHeight)
	for i := 0; i <= 4; i++ {
		v := maxY * float64(i) / 4
		y := y0 - float64(plotHeight)*float64(i)/4
		fmt.Fprintf(w, `<line x1="%d" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#eee"/>`+"\n", marginLeft, y, float64(marginLeft)+plotW, y)
		fmt.Fprintf(w, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", marginLeft-6, y+4, formatTick(v))
	}
	for i := 0; i <= 6; i++ {
		v := maxX * float64(i) / 6
		x := float64(marginLeft) + plotW*float64(i)/6
		fmt.Fprintf(w, `<text x="%.1f" y="%.0f" text-anchor="middle">%ss</text>`+"\n", x, y0+16, formatTick(v))
	}
	for i, l := range p.lines {
		color := chartColors[i%len(chartColors)]
		var pts []string
		flush := func() {
			if len(pts) > 1 {
				fmt.Fprintf(w, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", color, strings.Join(pts, " "))
			}
			pts = pts[:0]
		}
		for j := range l.x {
			if j >= len(l.y) || math.IsNaN(l.y[j]) {
				flush()
				continue
			}
			x := float64(marginLeft) + plotW*l.x[j]/maxX
			y := y0 - float64(plotHeight)*(l.y[j]/p.scale)/maxY
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		}
		flush()
		ly := top + marginTop + 14 + 18*i
		fmt.Fprintf(w, `<line x1="%.0f" y1="%d" x2="%.0f" y2="%d" stroke="%s" stroke-width="3"/>`+"\n",
			float64(marginLeft)+plotW+12, ly-4, float64(marginLeft)+plotW+32, ly-4, color)
		fmt.Fprintf(w, `<text x="%.0f" y="%d">%s</text>`+"\n", float64(marginLeft)+plotW+38, ly, html.EscapeString(l.name))
	}
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func formatTick(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.3gk", v/1e3)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// WriteSVG charts the run's memory: live heap, RSS and snapshot size per
// node, and what the state holds.
func (mem *Memory) WriteSVG(w io.Writer, title string) error {
	floats := func(v []nullFloat) []float64 {
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = float64(x)
		}
		return out
	}
	perNode := func(title, unit string, scale float64, pick func(*NodeMemory) []nullFloat) chartPanel {
		p := chartPanel{title: title, unit: unit, scale: scale}
		for i := range mem.Nodes {
			n := &mem.Nodes[i]
			p.lines = append(p.lines, chartSeries{name: n.Target, x: mem.Seconds, y: floats(pick(n))})
		}
		return p
	}
	panels := []chartPanel{
		perNode("live heap", "MiB", 1<<20, func(n *NodeMemory) []nullFloat { return n.HeapLive }),
		perNode("RSS", "MiB", 1<<20, func(n *NodeMemory) []nullFloat { return n.RSS }),
		perNode("last snapshot", "MiB", 1<<20, func(n *NodeMemory) []nullFloat { return n.SnapshotBytes }),
	}
	if len(mem.Nodes) > 0 {
		n := &mem.Nodes[0]
		completed := make([]float64, len(mem.Completed))
		for i, c := range mem.Completed {
			completed[i] = float64(c)
		}
		panels = append(panels,
			chartPanel{title: "state of " + n.Target, unit: "count", scale: 1, lines: []chartSeries{
				{name: "conversations", x: mem.Seconds, y: floats(n.Conversations)},
				{name: "ended, kept", x: mem.Seconds, y: floats(n.Ended)},
				{name: "events", x: mem.Seconds, y: floats(n.Events)},
				{name: "idempotency records", x: mem.Seconds, y: floats(n.Keys)},
			}},
			chartPanel{title: "conversations completed by the tool", unit: "count", scale: 1, lines: []chartSeries{
				{name: "completed", x: mem.Seconds, y: completed},
			}})
	}
	return writeSVG(w, title, panels)
}
