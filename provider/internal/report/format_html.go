package report

import (
	_ "embed"
	"html/template"
	"io"
	"strings"
)

//go:embed report.html.tmpl
var htmlTemplate string

// bar is one bar of an inline SVG chart.
type bar struct {
	Key         string
	Label       string
	Value       int
	Y, W, TextY int
	ValueX      int
	Title       string
}

// chart is a horizontal bar chart drawn as inline SVG.
type chart struct {
	ID, Title string
	Height    int
	Bars      []bar
	More      int // bars left out
}

const (
	chartBars  = 15
	chartWidth = 360 // pixels for the longest bar
	barHeight  = 22
)

func newChart(id, title string, cs []Count) chart {
	c := chart{ID: id, Title: title}
	maxV := 1
	for _, x := range cs {
		maxV = max(maxV, x.Violations)
	}
	for i, x := range cs {
		if i == chartBars {
			c.More = len(cs) - chartBars
			break
		}
		w := x.Violations * chartWidth / maxV
		if x.Violations > 0 {
			w = max(w, 2)
		}
		y := i * barHeight
		c.Bars = append(c.Bars, bar{Key: x.Key, Label: ellipsis(x.Key, 36), Value: x.Violations, Y: y + 3, W: w, TextY: y + 16, ValueX: 250 + w + 6, Title: x.Key})
	}
	c.Height = max(len(c.Bars)*barHeight, barHeight)
	return c
}

func writeHTML(w io.Writer, r *Report) error {
	t, err := template.New("report").Funcs(template.FuncMap{
		"join":   strings.Join,
		"facts":  factsText,
		"status": constraintStatus,
		"never":  orNever,
		"listed": func(c Constraint) int { return c.Stored + c.Reevaluated },
	}).Parse(htmlTemplate)
	if err != nil {
		return err
	}
	byCon := make([]Count, len(r.Rollups.ByConstraint))
	for i, c := range r.Rollups.ByConstraint {
		byCon[i] = c
		// Chart Gatekeeper's count: it is exact even where fewer rows are listed.
		byCon[i].Violations = int(max(c.Total, int64(c.Violations)))
	}
	sortCounts(byCon)
	data := struct {
		R                  *Report
		Evidence           [][2]string
		ByConstraint, ByNS chart
	}{
		R: r, Evidence: evidenceLines(r),
		ByConstraint: newChart("chart-constraints", "Violations by constraint (Gatekeeper's totalViolations)", byCon),
		ByNS:         newChart("chart-namespaces", "Violations by namespace (listed rows)", r.Rollups.ByNamespace),
	}
	return t.Execute(w, data)
}

// ellipsis shortens s to n runes for a chart label (the full key is in the bar's title).
func ellipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
