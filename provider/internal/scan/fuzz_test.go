package scan

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// seedSamples adds every sample report to f's corpus.
func seedSamples(f *testing.F, suffix string) {
	files, err := filepath.Glob(filepath.Join("testdata", "*"+suffix))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// checkReport holds what every decoded report must satisfy.
func checkReport(t *testing.T, r *Report, lim Limits) {
	if r == nil {
		t.Fatal("nil report without an error")
	}
	if len(r.Findings) > lim.withDefaults().ReportFindings {
		t.Fatalf("%d findings beyond the limit", len(r.Findings))
	}
	for _, f := range r.Findings {
		if f.ID == "" {
			t.Fatal("finding without an id")
		}
		switch f.Severity {
		case Critical, High, Medium, Low, Unknown:
		default:
			t.Fatalf("severity %q not normalised", f.Severity)
		}
	}
	v := Choose("img", subject, []Candidate{signedCand("ci", time.Time{}, r)}, nil, Choice{Now: time.Now().Add(100 * 365 * 24 * time.Hour), Limits: Limits{Findings: 10}})
	if _, err := v.Encode(); err != nil {
		t.Fatalf("encoding: %v", err)
	}
	if len(v.Findings) > 10 || (v.FindingsTotal > 10) != v.FindingsTruncated {
		t.Fatalf("cap: %d listed of %d, truncated %v", len(v.Findings), v.FindingsTotal, v.FindingsTruncated)
	}
}

func FuzzDecodeReport(f *testing.F) {
	seedSamples(f, ".json")
	lim := Limits{ReportFindings: 500}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := DecodeReport(raw, lim)
		if err == nil {
			checkReport(t, r, lim)
		}
	})
}

func FuzzDecodePredicate(f *testing.F) {
	seedSamples(f, "predicate.json")
	f.Add([]byte(`{"scanner":{"uri":"x","result":[{"id":"CVE-1","severity":[{"method":"nvd","score":"9.9"}]}]}}`))
	lim := Limits{ReportFindings: 500}
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, pt := range []string{PredicateCosignVuln, PredicateInTotoV01, PredicateInTotoV02} {
			r, err := DecodePredicate(pt, raw, lim)
			if err == nil {
				checkReport(t, r, lim)
			}
		}
	})
}

func FuzzDecodeOpenVEX(f *testing.F) {
	seedSamples(f, ".json")
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := DecodeOpenVEX(raw, "a", time.Time{}, Limits{})
		if err != nil {
			return
		}
		fs := []Finding{high, critical, low}
		ApplyVEX(fs, subject, []*VEXDocument{d})
		for _, x := range fs {
			if x.Suppressed() && x.VEX.Status != "not_affected" && x.VEX.Status != "fixed" {
				t.Fatalf("suppressed by %q", x.VEX.Status)
			}
		}
	})
}

func FuzzDecodeOperatorReport(f *testing.F) {
	raw, err := os.ReadFile(filepath.Join("testdata", "trivy-operator-vulnerabilityreport.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(raw)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(j)
	f.Add([]byte(strings.Replace(string(j), `"tag":"v1.8.0"`, `"tag":"v1.8.0","digest":"sha256:`+strings.Repeat("0", 64)+`"`, 1)))
	f.Fuzz(func(t *testing.T, raw []byte) {
		key, r, ok, err := DecodeOperatorReport(raw, Limits{})
		if err != nil || !ok {
			return
		}
		if !strings.Contains(string(key), "@sha256:") && !strings.Contains(string(key), "@") {
			t.Fatalf("key %q has no digest", key)
		}
		checkReport(t, r, Limits{})
		if _, err := json.Marshal(r); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzCosignVulnOnePass: the one-pass decode of a cosign vuln predicate gives exactly what
// reading it with the result kept raw and DecodeReport gives (report or error).
func FuzzCosignVulnOnePass(f *testing.F) {
	seedSamples(f, ".json")
	for _, s := range cosignVulnEdgeCases() {
		f.Add([]byte(s))
	}
	lim := Limits{ReportFindings: 500}
	f.Fuzz(func(t *testing.T, raw []byte) {
		sameAsRaw(t, raw, lim)
	})
}
