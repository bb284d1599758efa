package sim

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

// Charts by interval, as plain SVG written here (no dependency): the
// service level of each channel with its confidence band, and the agents
// on shift with, after a staffing search, the agents needed.

var palette = [...]string{"#1b6ca8", "#c0392b", "#27ae60", "#8e44ad"}

// barSeries is drawn as bars, one per interval; lineSeries as a line
// through the interval's middles, broken where a value is NaN, with an
// optional band from lo to hi.
type chartSeries struct {
	name   string
	color  string
	y      []float64
	lo, hi []float64
	bars   bool
	dashed bool
}

type chart struct {
	title   string
	yLabel  string
	percent bool // y values are fractions, shown as percent
	x       []time.Time
	series  []chartSeries
	refY    float64 // a horizontal reference line (a target); NaN: none
	refName string
}

const (
	svgW, svgH                     = 960, 400
	padL, padR, padT, padB         = 70, 170, 40, 60
	plotW, plotH                   = svgW - padL - padR, svgH - padT - padB
	maxXLabels                     = 12
	fontAttr                       = `font-family="sans-serif" font-size="12"`
	titleAttr                      = `font-family="sans-serif" font-size="15" font-weight="bold"`
	bandOpacity, gridColor, axisCl = "0.18", "#dddddd", "#444444"
)

func (c *chart) write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	n := len(c.x)
	yMax := 1.0
	if !c.percent {
		yMax = 0
		for _, s := range c.series {
			for _, v := range append(append([]float64{}, s.y...), s.hi...) {
				if !math.IsNaN(v) {
					yMax = max(yMax, v)
				}
			}
		}
		yMax = niceCeil(max(yMax*1.1, 1))
	}
	xAt := func(k float64) float64 { return padL + (k+0.5)*plotW/float64(max(n, 1)) }
	yAt := func(v float64) float64 { return padT + plotH - min(max(v, 0), yMax)/yMax*plotH }

	fmt.Fprintf(bw, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">`+"\n", svgW, svgH, svgW, svgH)
	fmt.Fprintf(bw, `<rect width="%d" height="%d" fill="white"/>`+"\n", svgW, svgH)
	fmt.Fprintf(bw, `<text x="%d" y="24" %s>%s</text>`+"\n", padL, titleAttr, html.EscapeString(c.title))
	// y grid and labels
	for i := 0; i <= 5; i++ {
		v := yMax * float64(i) / 5
		y := yAt(v)
		fmt.Fprintf(bw, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>`+"\n", padL, y, padL+plotW, y, gridColor)
		label := trimFloat(v)
		if c.percent {
			label = trimFloat(v*100) + "%"
		}
		fmt.Fprintf(bw, `<text x="%d" y="%.1f" %s text-anchor="end">%s</text>`+"\n", padL-6, y+4, fontAttr, label)
	}
	fmt.Fprintf(bw, `<text transform="translate(16 %d) rotate(-90)" %s text-anchor="middle">%s</text>`+"\n", padT+plotH/2, fontAttr, html.EscapeString(c.yLabel))
	// x labels
	every := max(1, (n+maxXLabels-1)/maxXLabels)
	layout := "15:04"
	if n > 0 && c.x[n-1].Sub(c.x[0]) >= 24*time.Hour {
		layout = "01-02 15:04"
	}
	for k := 0; k < n; k += every {
		fmt.Fprintf(bw, `<text x="%.1f" y="%d" %s text-anchor="middle">%s</text>`+"\n", xAt(float64(k)), padT+plotH+18, fontAttr, c.x[k].Format(layout))
	}
	fmt.Fprintf(bw, `<text x="%d" y="%d" %s text-anchor="middle">interval start (UTC)</text>`+"\n", padL+plotW/2, svgH-14, fontAttr)
	fmt.Fprintf(bw, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`+"\n", padL, padT+plotH, padL+plotW, padT+plotH, axisCl)
	fmt.Fprintf(bw, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`+"\n", padL, padT, padL, padT+plotH, axisCl)

	// bars first, lines over them
	var barSeries []chartSeries
	for _, s := range c.series {
		if s.bars {
			barSeries = append(barSeries, s)
		}
	}
	slot := float64(plotW) / float64(max(n, 1))
	barW := slot * 0.8 / float64(max(len(barSeries), 1))
	for b, s := range barSeries {
		for k, v := range s.y {
			if math.IsNaN(v) || v <= 0 {
				continue
			}
			x := padL + float64(k)*slot + slot*0.1 + float64(b)*barW
			fmt.Fprintf(bw, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s" fill-opacity="0.55"/>`+"\n", x, yAt(v), barW, yAt(0)-yAt(v), s.color)
		}
	}
	for _, s := range c.series {
		if s.bars {
			continue
		}
		if s.lo != nil {
			for _, seg := range segments(s.lo, s.hi) {
				var pts []string
				for k := seg[0]; k < seg[1]; k++ {
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", xAt(float64(k)), yAt(s.hi[k])))
				}
				for k := seg[1] - 1; k >= seg[0]; k-- {
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", xAt(float64(k)), yAt(s.lo[k])))
				}
				fmt.Fprintf(bw, `<polygon points="%s" fill="%s" fill-opacity="%s"/>`+"\n", strings.Join(pts, " "), s.color, bandOpacity)
			}
		}
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		for _, seg := range segments(s.y, s.y) {
			var d strings.Builder
			for k := seg[0]; k < seg[1]; k++ {
				cmd := "L"
				if k == seg[0] {
					cmd = "M"
				}
				fmt.Fprintf(&d, "%s%.1f %.1f ", cmd, xAt(float64(k)), yAt(s.y[k]))
			}
			fmt.Fprintf(bw, `<path d="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.TrimSpace(d.String()), s.color, dash)
			if seg[1]-seg[0] == 1 {
				fmt.Fprintf(bw, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", xAt(float64(seg[0])), yAt(s.y[seg[0]]), s.color)
			}
		}
	}
	if !math.IsNaN(c.refY) {
		y := yAt(c.refY)
		fmt.Fprintf(bw, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e67e22" stroke-width="1.5" stroke-dasharray="3 3"/>`+"\n", padL, y, padL+plotW, y)
	}
	// legend
	ly := padT + 6
	for _, s := range c.series {
		if s.bars {
			fmt.Fprintf(bw, `<rect x="%d" y="%d" width="16" height="10" fill="%s" fill-opacity="0.55"/>`+"\n", padL+plotW+16, ly-4, s.color)
		} else {
			dash := ""
			if s.dashed {
				dash = ` stroke-dasharray="6 4"`
			}
			fmt.Fprintf(bw, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", padL+plotW+16, ly+1, padL+plotW+32, ly+1, s.color, dash)
		}
		fmt.Fprintf(bw, `<text x="%d" y="%d" %s>%s</text>`+"\n", padL+plotW+38, ly+5, fontAttr, html.EscapeString(s.name))
		ly += 20
	}
	if !math.IsNaN(c.refY) {
		fmt.Fprintf(bw, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#e67e22" stroke-width="1.5" stroke-dasharray="3 3"/>`+"\n", padL+plotW+16, ly+1, padL+plotW+32, ly+1)
		fmt.Fprintf(bw, `<text x="%d" y="%d" %s>%s</text>`+"\n", padL+plotW+38, ly+5, fontAttr, html.EscapeString(c.refName))
	}
	bw.WriteString("</svg>\n")
	return bw.Flush()
}

// segments are the runs [from, to) where both a and b are numbers.
func segments(a, b []float64) [][2]int {
	var out [][2]int
	from := -1
	for k := 0; k <= len(a); k++ {
		ok := k < len(a) && !math.IsNaN(a[k]) && !math.IsNaN(b[k])
		switch {
		case ok && from < 0:
			from = k
		case !ok && from >= 0:
			out = append(out, [2]int{from, k})
			from = -1
		}
	}
	return out
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v), "0"), ".")
}

// channelSeries collects a measure of each channel by interval.
func (r *Report) channelSeries(get func(*IntervalRow) float64) (names []string, ys [][]float64) {
	index := map[string]int{}
	for i := range r.Intervals {
		row := &r.Intervals[i]
		j, ok := index[row.Channel]
		if !ok {
			j = len(names)
			index[row.Channel] = j
			names = append(names, row.Channel)
			ys = append(ys, nil)
		}
		ys[j] = append(ys[j], get(row))
	}
	return names, ys
}

func bound(b *Bounds, i int) float64 {
	if b == nil {
		return math.NaN()
	}
	return float64(b[i])
}

// WriteServiceLevelSVG charts the service level of each channel by
// interval, with its 95% confidence band, and the staffing target if
// there is one.
func (r *Report) WriteServiceLevelSVG(w io.Writer) error {
	c := chart{title: fmt.Sprintf("Service level: answered within %ss (mean of %d replications, 95%% band)", trimFloat(float64(r.AnsweredWithinSeconds)), r.Replications),
		yLabel: "service level", percent: true, x: r.intervalStart, refY: math.NaN()}
	names, sl := r.channelSeries(func(row *IntervalRow) float64 { return float64(row.ServiceLevel) })
	_, lo := r.channelSeries(func(row *IntervalRow) float64 { return bound(row.CI95.ServiceLevel, 0) })
	_, hi := r.channelSeries(func(row *IntervalRow) float64 { return bound(row.CI95.ServiceLevel, 1) })
	for i, name := range names {
		c.series = append(c.series, chartSeries{name: name, color: palette[i%len(palette)], y: sl[i], lo: lo[i], hi: hi[i]})
	}
	if g := r.StaffingGoal; g != nil {
		c.refY = float64(g.ServiceLevel)
		c.refName = fmt.Sprintf("target %s%%", trimFloat(float64(g.ServiceLevel)*100))
	}
	return c.write(w)
}

// WriteStaffingSVG charts the agents on shift for each channel by
// interval, and the agents needed when the report has a staffing search.
func (r *Report) WriteStaffingSVG(w io.Writer) error {
	title := "Agents on shift by interval"
	if r.StaffingGoal != nil {
		title = fmt.Sprintf("Agents on shift, and needed for %s%%/%ss", trimFloat(float64(r.StaffingGoal.ServiceLevel)*100), trimFloat(float64(r.StaffingGoal.AnsweredWithinSeconds)))
	}
	c := chart{title: title, yLabel: "agents", x: r.intervalStart, refY: math.NaN()}
	names, on := r.channelSeries(func(row *IntervalRow) float64 { return float64(row.Agents) })
	need := map[string]float64{}
	for _, s := range r.Staffing {
		need[s.Start+"/"+s.Channel] = float64(s.Agents)
	}
	_, needed := r.channelSeries(func(row *IntervalRow) float64 {
		if v, ok := need[row.Start+"/"+row.Channel]; ok {
			return v
		}
		return math.NaN()
	})
	for i, name := range names {
		c.series = append(c.series, chartSeries{name: name + " on shift", color: palette[i%len(palette)], y: on[i], bars: true})
	}
	if r.Staffing != nil {
		for i, name := range names {
			c.series = append(c.series, chartSeries{name: name + " needed", color: palette[i%len(palette)], y: needed[i], dashed: true})
		}
	}
	return c.write(w)
}
