package scan

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// TestEncodedValue: a value encoded in parts (findings interned) is byte for byte what
// json.Marshal writes, for every sample report, with strings that look like the findings key,
// HTML characters and invalid UTF-8, platforms and rejected scans; and two values listing the
// same findings share their bytes.
func TestEncodedValue(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var values []*Value
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		r, err := DecodeReport(b, Limits{})
		if err != nil {
			continue
		}
		img := `example.com/a"findings":[]/<b>&` + "\xff@sha256:" + strings.Repeat("0", 64)
		v := Choose(img, Subject{Repository: "example.com/a", Digest: "sha256:" + strings.Repeat("0", 64)},
			[]Candidate{{Source: SourceAttestation, Authority: `ci"findings":[`, Trusted: true, Signed: true, Report: r}}, nil,
			Choice{Now: time.Now(), Limits: Limits{Findings: 3}})
		v.reject("vex", `reason with "findings":[] in it`)
		values = append(values, v)
	}
	if len(values) < 5 {
		t.Fatalf("%d sample reports decoded", len(values))
	}
	values = append(values, notScanned("example.com/x@sha256:"+strings.Repeat("1", 64), "sha256:"+strings.Repeat("1", 64), ReasonNoScan),
		&Value{Image: "nil findings"},
		CombinePlatforms("example.com/a@sha256:"+strings.Repeat("2", 64), "sha256:"+strings.Repeat("2", 64),
			[]PlatformScan{{Platform: "linux/amd64", Value: values[0]}, {Platform: "linux/arm64", Value: values[1]}}, Limits{}))
	in := &interner{}
	for i, v := range values {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		e, err := encodeValue(v, in)
		if err != nil {
			t.Fatalf("value %d: %v", i, err)
		}
		if got := e.AppendJSON(nil); string(got) != string(want) {
			t.Errorf("value %d:\n got %s\nwant %s", i, got, want)
		}
		if e.size != len(want) && len(v.Findings) > 0 {
			t.Errorf("value %d: size %d, encoded %d bytes", i, e.size, len(want))
		}
	}
	shared := &interner{}
	if _, err := encodeValue(values[0], shared); err != nil {
		t.Fatal(err)
	}
	held := len(shared.m)
	w := *values[0]
	w.Image, w.Digest = "other.example/b@sha256:"+strings.Repeat("3", 64), "sha256:"+strings.Repeat("3", 64)
	if _, err := encodeValue(&w, shared); err != nil {
		t.Fatal(err)
	}
	if held == 0 || len(shared.m) != held {
		t.Errorf("a second image listing the same findings added %d interned findings to %d, want none", len(shared.m)-held, held)
	}
}

// TestRenderAppendsEncodingJSON: what render hands the response encoder for a cached answer
// (fresh and served stale; scanned with findings, truncated, without findings, an index's
// combined answer) appends, marshals and measures exactly the bytes encoding/json writes for
// the answer, the stale one with "stale":true as its last field; and each answer is counted
// under its outcome.
func TestRenderAppendsEncodingJSON(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "trivy-image-centos-7-statuses.json"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := DecodeReport(b, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	digest := "sha256:" + strings.Repeat("4", 64)
	choose := func(limit int) *Value {
		return Choose("example.com/<app>@"+digest, Subject{Repository: "example.com/<app>", Digest: digest},
			[]Candidate{{Source: SourceAttestation, Authority: "ci", Trusted: true, Signed: true, Report: r}}, nil,
			Choice{Now: time.Now(), Limits: Limits{Findings: limit}})
	}
	full, truncated := choose(1000), choose(2)
	if len(full.Findings) < 3 || full.FindingsTruncated || !truncated.FindingsTruncated || len(truncated.Findings) != 2 {
		t.Fatalf("sample: %d findings (truncated %v), truncated answer %d (truncated %v)", len(full.Findings), full.FindingsTruncated, len(truncated.Findings), truncated.FindingsTruncated)
	}
	values := map[string]*Value{
		"findings":     full,
		"truncated":    truncated,
		"no scan":      notScanned("example.com/x@"+digest, digest, ReasonNoScan),
		"untrusted":    notScanned("example.com/y@"+digest, digest, ReasonNoTrustedScan),
		"nil findings": {Image: "example.com/z@" + digest, Digest: digest, Reason: ReasonUnverifiable},
		"index": CombinePlatforms("example.com/i@"+digest, digest,
			[]PlatformScan{{Platform: "linux/amd64", Value: full}, {Platform: "linux/arm64", Value: truncated}}, Limits{}),
	}
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "results"}, []string{"outcome"})
	s := &Service{results: newResultCounters(vec)}
	in := &interner{}
	wantCounts := map[string]float64{}
	// A LOW finding's id (lower-cased: ids match whatever their case) and any finding's alias.
	var lowID, alias string
	for _, f := range full.Findings {
		if f.Severity == Low && lowID == "" {
			lowID = strings.ToLower(f.ID)
		}
		if len(f.Aliases) > 0 && alias == "" {
			alias = f.Aliases[0]
		}
	}
	if lowID == "" || alias == "" {
		t.Fatalf("sample: no LOW finding (%q) or no finding with an alias (%q)", lowID, alias)
	}
	if n := len(listedBy(t, full, "above=HIGH;ids="+lowID).Findings); n < 1 || n >= len(full.Findings) {
		t.Fatalf("sample: above=HIGH;ids=%s lists %d of %d findings; the test needs some listed and some not", lowID, n, len(full.Findings))
	}
	queries := []string{"", "above=MEDIUM", "above=UNKNOWN", "above=CRITICAL", "above=HIGH;ids=" + lowID, "above=CRITICAL;ids=" + alias + ",CVE-0000-0000"}
	for name, v := range values {
		for _, query := range queries {
			var f *Filter
			if query != "" {
				if f, err = ParseFilter(query); err != nil {
					t.Fatal(err)
				}
			}
			renderAndCompare(t, s, in, fmt.Sprintf("%s %q", name, query), v, f, query, wantCounts)
		}
	}
	for outcome, n := range wantCounts {
		if got := testutil.ToFloat64(vec.WithLabelValues(outcome)); got != n {
			t.Errorf("results{outcome=%q} = %v, want %v", outcome, got, n)
		}
	}
	if _, err := s.render(imageref.Ref{}, nil, &Value{Scanned: true, enc: &encoded{head: []byte(`[]`), size: 2}}, true); err == nil {
		t.Errorf("render(stale, cached answer not an object) = nil error, want an error")
	}
	for _, stale := range []bool{false, true} {
		if out, err := s.render(imageref.Ref{}, nil, &Value{Scanned: true}, stale); err == nil || !strings.Contains(err.Error(), "no encoded form") {
			t.Errorf("render(stale=%v, value without its encoding) = %v, %v; want the error that it has no encoded form", stale, out, err)
		}
	}
}

// listedBy is v with only the findings query lists, worked out from the findings themselves:
// a severity above the query's, or an id or alias among its ids (any case).
func listedBy(t *testing.T, v *Value, query string) *Value {
	t.Helper()
	if query == "" || v.Findings == nil {
		return v
	}
	params := map[string]string{}
	for p := range strings.SplitSeq(query, ";") {
		name, val, _ := strings.Cut(p, "=")
		params[name] = val
	}
	above := Severity(params["above"]).Rank()
	var ids []string
	if s := params["ids"]; s != "" {
		ids = strings.Split(strings.ToUpper(s), ",")
	}
	w := *v
	w.Findings = []Finding{}
	for _, f := range v.Findings {
		listed := f.Severity.Rank() > above
		for _, id := range append([]string{f.ID}, f.Aliases...) {
			listed = listed || slices.Contains(ids, strings.ToUpper(id))
		}
		if listed {
			w.Findings = append(w.Findings, f)
		}
	}
	return &w
}

// renderAndCompare renders v's cached answer under filter f (query written out) fresh and
// stale and compares it with encoding/json's bytes for listedBy(v, query).
func renderAndCompare(t *testing.T, s *Service, in *interner, name string, v *Value, f *Filter, query string, wantCounts map[string]float64) {
	t.Helper()
	for _, stale := range []bool{false, true} {
		var want []byte
		var err error
		lv := listedBy(t, v, query)
		if stale {
			want, err = json.Marshal(struct {
				*Value
				Stale bool `json:"stale"`
			}{lv, true})
		} else {
			want, err = json.Marshal(lv)
		}
		if err != nil {
			t.Fatal(err)
		}
		enc, err := encodeValue(v, in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cached := &Value{Scanned: v.Scanned, Reason: v.Reason, enc: enc}
		var q any
		if f != nil {
			q = f
		}
		out, err := s.render(imageref.Ref{}, q, cached, stale)
		if err != nil {
			t.Fatalf("%s stale=%v: render: %v", name, stale, err)
		}
		a, ok := out.(wire.Appender)
		if !ok {
			t.Fatalf("%s stale=%v: render gave %T, want a wire.Appender", name, stale, out)
		}
		if got := a.AppendJSON([]byte("prefix")); string(got) != "prefix"+string(want) {
			t.Errorf("%s stale=%v: AppendJSON\n got %s\nwant prefix%s", name, stale, got, want)
		}
		if a.Len() != len(want) {
			t.Errorf("%s stale=%v: Len() = %d, encoding/json wrote %d bytes", name, stale, a.Len(), len(want))
		}
		if got, err := json.Marshal(out); err != nil || string(got) != string(want) {
			t.Errorf("%s stale=%v: json.Marshal(rendered) = %s, %v\nwant %s", name, stale, got, err, want)
		}
		// Appending it again gives the same bytes: nothing in the cached answer changed.
		if got := a.AppendJSON(nil); string(got) != string(want) {
			t.Errorf("%s stale=%v: second AppendJSON\n got %s\nwant %s", name, stale, got, want)
		}
		outcome := v.Reason
		if v.Scanned {
			outcome = "scanned"
		}
		wantCounts[outcome]++
	}
}

// TestCountsJSON: Counts encodes exactly as encoding/json encodes the map of every severity to
// its count, and reads back the same.
func TestCountsJSON(t *testing.T) {
	for _, c := range []Counts{{}, {1, 22, 0, 333, -4}, {0, 0, 0, 0, 7}, {5, 0, 0, 0, 0}} {
		m := map[string]int{}
		for _, s := range Severities {
			m[string(s)] = c.Of(s)
		}
		want, err := json.Marshal(struct {
			C map[string]int `json:"c"`
		}{C: m})
		if err != nil {
			t.Fatal(err)
		}
		type value struct {
			C Counts `json:"c"`
		}
		got, err := json.Marshal(value{C: c})
		if err != nil || string(got) != string(want) {
			t.Errorf("Counts %v = %s, %v; encoding/json: %s", c, got, err, want)
		}
		var back value
		if err := json.Unmarshal(got, &back); err != nil || back.C != c {
			t.Errorf("read back %s: %v, %v", got, back.C, err)
		}
	}
	var c Counts
	for _, bad := range []string{`{"SEVERE":1}`, `{"HIGH":"1"}`, `[1]`} {
		if err := json.Unmarshal([]byte(bad), &c); err == nil {
			t.Errorf("read %s as counts %v", bad, c)
		}
	}
}
