package scan

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
		if got := e.appendTo(nil); string(got) != string(want) {
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

// TestCountsJSON: Counts encodes exactly as encoding/json encodes the same map, whatever its
// keys.
func TestCountsJSON(t *testing.T) {
	for _, m := range []map[string]int{
		nil, {}, {"CRITICAL": 1, "HIGH": 22, "MEDIUM": 0, "LOW": 333, "UNKNOWN": -4},
		{"CRITICAL": 0, "HIGH": 0, "MEDIUM": 0, "LOW": 0, "UNKNOWN": 0},
		{"CRITICAL": 1, "HIGH": 1, "MEDIUM": 1, "LOW": 1, "other": 1},
		{"CRITICAL": 1, "HIGH": 1, "MEDIUM": 1, "LOW": 1, "UNKNOWN": 1, "<&>": 2},
		{"HIGH": 9},
	} {
		want, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(Counts(m))
		if err != nil || string(got) != string(want) {
			t.Errorf("Counts(%v) = %s, %v; encoding/json: %s", m, got, err, want)
		}
		type value struct {
			C Counts `json:"c"`
		}
		gotV, _ := json.Marshal(value{C: m})
		wantV, _ := json.Marshal(struct {
			C map[string]int `json:"c"`
		}{C: m})
		if string(gotV) != string(wantV) {
			t.Errorf("in a struct: %s, want %s", gotV, wantV)
		}
	}
}
