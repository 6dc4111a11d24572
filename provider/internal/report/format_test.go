package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
)

func rendered(t *testing.T, r *Report, format string) string {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, r, format); err != nil {
		t.Fatalf("Write(%s): %v", format, err)
	}
	return b.String()
}

func TestFormatsCarryTheNumbers(t *testing.T) {
	r := smallReport()
	r.Violations = append(r.Violations, row("K8sImageDigest/prod", "b", "Pod", "evil", `container <x> image <nginx:1> is "bad" | <script>alert(1)</script>`, SourceReevaluated))
	r.Constraints[0].TotalViolations = 4
	Finish(r, HealthOptions{})
	for _, f := range []string{FormatTable, FormatMarkdown, FormatHTML} {
		out := rendered(t, r, f)
		for _, want := range []string{"K8sImageDigest/prod", "docker.io/library/nginx:1.25", "Pod b/p1"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s output lacks %q", f, want)
			}
		}
		if f != FormatTable && strings.Contains(out, "<script>alert") {
			t.Errorf("%s output does not escape cluster data: %q found", f, "<script>alert")
		}
	}
	md := rendered(t, r, FormatMarkdown)
	if !strings.Contains(md, `is "bad" \| &lt;script&gt;`) {
		t.Errorf("markdown does not escape | and <: %s", md)
	}

	var back Report
	if err := json.Unmarshal([]byte(rendered(t, r, FormatJSON)), &back); err != nil {
		t.Fatalf("JSON: %v", err)
	}
	if back.Summary != r.Summary || len(back.Violations) != len(r.Violations) {
		t.Errorf("JSON round trip: summary %+v rows %d, want %+v rows %d", back.Summary, len(back.Violations), r.Summary, len(r.Violations))
	}

	recs, err := csv.NewReader(strings.NewReader(rendered(t, r, FormatCSV))).ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v", err)
	}
	if len(recs) != len(r.Violations)+1 || strings.Join(recs[0], ",") != strings.Join(csvHeader, ",") {
		t.Fatalf("CSV: %d records, header %v; want %d and %v", len(recs), recs[0], len(r.Violations)+1, csvHeader)
	}
	var sources []string
	for _, rec := range recs[1:] {
		sources = append(sources, rec[9])
	}
	if !strings.Contains(strings.Join(sources, ","), SourceReevaluated) {
		t.Errorf("CSV source column %v lacks %s", sources, SourceReevaluated)
	}

	if err := Write(&bytes.Buffer{}, r, "pdf"); !errors.As(err, new(*UnknownFormatError)) {
		t.Errorf("Write(pdf) = %v, want UnknownFormatError", err)
	}
}

func TestCSVNeutralisesFormulas(t *testing.T) {
	r := smallReport()
	r.Violations[0].Name = "=HYPERLINK(\"x\")"
	out := rendered(t, r, FormatCSV)
	if !strings.Contains(out, `'=HYPERLINK`) {
		t.Errorf("CSV keeps a formula as the first character: %s", out)
	}
}

// TestHTMLSelfContained: no external asset can load (CSP default-src 'none', no src/href),
// the summary numbers and both charts are in the page.
func TestHTMLSelfContained(t *testing.T) {
	r := synthetic(12, 300)
	Finish(r, HealthOptions{})
	out := rendered(t, r, FormatHTML)
	if m := regexp.MustCompile(`(?i)\b(src|href)\s*=|@import|url\(`).FindString(out); m != "" {
		t.Errorf("HTML references an external asset: %q", m)
	}
	if !strings.Contains(out, `content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"`) {
		t.Error("HTML lacks its Content-Security-Policy")
	}
	for _, want := range []string{`id="sum-total">300<`, `id="sum-listed">300<`, `id="sum-reevaluated">60<`, `id="sum-namespaces">40<`, `<svg id="chart-constraints"`, `<svg id="chart-namespaces"`} {
		if !strings.Contains(out, want) {
			t.Errorf("HTML lacks %q", want)
		}
	}
	bars := regexp.MustCompile(`<rect class="bar" data-key="([^"]*)" data-value="(\d+)"`).FindAllStringSubmatch(out, -1)
	if len(bars) != 12+chartBars { // 12 constraints, 40 namespaces cut to 15
		t.Errorf("HTML has %d bars, want %d", len(bars), 12+chartBars)
	}
	if bars[0][2] != "25" {
		t.Errorf("first constraint bar value = %s, want 25", bars[0][2])
	}
}

func TestPolicyReports(t *testing.T) {
	r := synthetic(3, 2600) // 40 namespaces: 65 each
	r.Violations = append(r.Violations, row("K8sImageDigest/c000", "", "Namespace", "n", "constraint is misconfigured: x", SourceStatus))
	r.Violations[0].EnforcementAction = "warn"
	for range 1100 { // one namespace over the 1,000-result split
		v := r.Violations[1]
		v.Namespace = "big"
		r.Violations = append(r.Violations, v)
	}
	Finish(r, HealthOptions{})
	for _, f := range []Flavour{OpenReports, WGPolicy} {
		objs, err := PolicyReports(r, f)
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]int{}
		total := 0
		for _, u := range objs {
			names[u.GetKind()+" "+u.GetNamespace()+"/"+u.GetName()]++
			res, _ := u.Object["results"].([]any)
			total += len(res)
			sum := u.Object["summary"].(map[string]any)
			if sum["fail"].(int64)+sum["warn"].(int64) != int64(len(res)) {
				t.Errorf("%s %s: summary %v does not count %d results", f.Group, u.GetName(), sum, len(res))
			}
			if u.GetLabels()[ManagedByLabel] != ManagedBy {
				t.Errorf("%s lacks label %s", u.GetName(), ManagedByLabel)
			}
			if _, ok := u.Object["source"]; ok != f.TopLevelSource {
				t.Errorf("%s: top-level source present = %v, want %v", f.Group, ok, f.TopLevelSource)
			}
		}
		if total != len(r.Violations) {
			t.Errorf("%s: %d results, want %d", f.Group, total, len(r.Violations))
		}
		for _, want := range []string{f.ClusterKind + " /" + ReportName, f.Kind + " big/" + ReportName, f.Kind + " big/" + ReportName + "-2", f.Kind + " ns-00/" + ReportName} {
			if names[want] != 1 {
				t.Errorf("%s: no %s among %d objects", f.Group, want, len(objs))
			}
		}
	}
	out := rendered(t, r, FormatOpenReports)
	if !strings.Contains(out, "apiVersion: openreports.io/v1alpha1") || !strings.Contains(out, "result: warn") || !strings.Contains(out, "severity: high") {
		t.Errorf("openreports YAML lacks apiVersion/result/severity")
	}
}
