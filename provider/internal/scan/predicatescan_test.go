package scan

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/imagetrust/imagetrust/provider/internal/jsonpass"
)

// scanCosignVuln reads raw with ScanPredicate as a statement's pass would: the predicate
// object and nothing after it.
func scanCosignVuln(raw []byte) (*cosignVuln, bool) {
	var p cosignVuln
	s := jsonpass.New(raw)
	if !p.ScanPredicate(s) || !s.End() {
		return nil, false
	}
	return &p, true
}

// checkCosignVulnScan: a predicate ScanPredicate reads is exactly what json.Unmarshal reads.
func checkCosignVulnScan(t *testing.T, raw []byte) bool {
	t.Helper()
	got, ok := scanCosignVuln(raw)
	if !ok {
		return false
	}
	var want cosignVuln
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatalf("ScanPredicate read %q, which json.Unmarshal rejects: %v", raw, err)
	}
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("ScanPredicate(%q) = %+v, json.Unmarshal = %+v", raw, *got, want)
	}
	return true
}

// cosignVulnSeeds are cosign vuln predicates of every Trivy JSON sample, as written and
// indented, and near misses ScanPredicate must leave to encoding/json.
func cosignVulnSeeds(t testing.TB) (read, left [][]byte) {
	files, err := filepath.Glob(filepath.Join("testdata", "trivy-*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range files {
		if strings.HasSuffix(p, ".sarif.json") || strings.Contains(p, "cosign-vuln") {
			continue
		}
		pred := cosignVulnPredicate(t, sample(t, filepath.Base(p)), time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC))
		read = append(read, pred)
		var ind bytes.Buffer
		if err := json.Indent(&ind, pred, "", "  "); err != nil {
			t.Fatal(err)
		}
		read = append(read, ind.Bytes())
	}
	read = append(read, sample(t, "trivy-cosign-vuln-predicate.json"),
		[]byte(`{"scanner":{"result":{"SchemaVersion":2,"Results":[{"Vulnerabilities":[{"VulnerabilityID":"CVE-1","PkgName":"caf\u00e9","VendorSeverity":{"nvd":3,"nvd":2}}]}]}},"metadata":null}`),
		[]byte(`{"scanner":{"result":{"SchemaVersion":2,"Results":[],"Trivy":null,"CreatedAt":null}}}`),
		[]byte(`{"scanner":null}`),
	)
	left = [][]byte{
		cosignVulnPredicate(t, sample(t, "grype-image.json"), time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)),
		cosignVulnPredicate(t, sample(t, "trivy-image-alpine-310.sarif.json"), time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)),
		[]byte(`{"Scanner":{"result":{"SchemaVersion":2,"Results":[]}}}`),
		[]byte(`{"scanner":{"result":{"SchemaVersion":2,"Results":[],"results":[]}}}`),
		[]byte(`{"scanner":{"result":{"SchemaVersion":2,"Results":[],"matches":[]}}}`),
		[]byte(`{"scanner":{"result":{"SchemaVersion":2.0,"Results":[]}}}`),
		[]byte(`{"scanner":{"result":{"SchemaVersion":2,"Results":[null]}}}`),
		[]byte(`{"scanner":{"result":{"SchemaVersion":2,"Results":[{"Vulnerabilities":[{"VendorSeverity":{"nvd":3.0}}]}]}}}`),
		[]byte(`{"scanner":{"result":{"SchemaVersion":2,"Results":[{"Vulnerabilities":[{"VendorIDs":[null]}]}]}}}`),
		[]byte(`{"scanner":{"uri":"a","uri":"b"}}`),
		[]byte(`{"scanner":{"version":1}}`),
		[]byte(`{"metadata":{"scanFinishedOn":"yesterday"}}`),
		[]byte(`{"metadata":{"scanFinishedOn":{}}}`),
		[]byte(`{"scanner":{"result":{"SchemaVersion":2,"Results":[]}}} x`),
		[]byte(`{"scanner":{"result":{"SchemaVersion":2,"Results":[],}}}`),
		[]byte(`{"scanner":{"result":{"Sch\u0065maVersion":2,"Results":[]}}}`),
		[]byte(`{"scanner":{"result":{"SchemaVersion":2,"Results":[]},"x":[1,2,}}`),
		[]byte(`null`),
	}
	return read, left
}

func TestCosignVulnScanMatchesJSON(t *testing.T) {
	read, left := cosignVulnSeeds(t)
	if len(read) < 8 {
		t.Fatalf("only %d Trivy samples", len(read))
	}
	for _, raw := range read {
		if !checkCosignVulnScan(t, raw) {
			t.Errorf("ScanPredicate left %.200q to encoding/json", raw)
		}
	}
	for _, raw := range left {
		if checkCosignVulnScan(t, raw) {
			t.Errorf("ScanPredicate read %.200q, which is not in its form", raw)
		}
	}
}

// TestCosignVulnScanSameReport: the report of a predicate read in one pass is the report
// DecodePredicate gives from the raw predicate.
func TestCosignVulnScanSameReport(t *testing.T) {
	read, _ := cosignVulnSeeds(t)
	for _, raw := range read {
		p, ok := scanCosignVuln(raw)
		if !ok {
			t.Fatalf("not read: %.200q", raw)
		}
		got, gotErr := decodedCosignVuln(p, func() json.RawMessage { return raw }, Limits{}.withDefaults())
		want, wantErr := DecodePredicate(PredicateCosignVuln, raw, Limits{})
		if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
			t.Fatalf("errors differ: %v and %v", gotErr, wantErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("reports differ:\n%+v\n%+v", got, want)
		}
	}
}

// FuzzCosignVulnScan: whatever the input, a predicate ScanPredicate reads is exactly what
// json.Unmarshal reads.
func FuzzCosignVulnScan(f *testing.F) {
	read, left := cosignVulnSeeds(f)
	for _, b := range append(read, left...) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkCosignVulnScan(t, raw)
	})
}

// BenchmarkCosignVulnDecode: the cosign vuln predicate of the alpine sample read by
// ScanPredicate (one pass) and by json.Unmarshal (what a statement outside its form gets).
func BenchmarkCosignVulnDecode(b *testing.B) {
	raw := cosignVulnPredicate(b, sample(b, "trivy-image-alpine-310.json"), time.Now())
	b.Run("one-pass", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		for b.Loop() {
			if _, ok := scanCosignVuln(raw); !ok {
				b.Fatal("not read")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		b.ReportAllocs()
		for b.Loop() {
			var p cosignVuln
			if err := json.Unmarshal(raw, &p); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestCosignVulnScanOwnsStrings: what ScanPredicate reads keeps no byte of the text, whose
// buffer its reader may reuse once the statement is read.
func TestCosignVulnScanOwnsStrings(t *testing.T) {
	read, _ := cosignVulnSeeds(t)
	for _, raw := range read {
		text := bytes.Clone(raw)
		got, ok := scanCosignVuln(text)
		if !ok {
			t.Fatalf("not read: %.200q", raw)
		}
		for i := range text {
			text[i] = 'x'
		}
		var want cosignVuln
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("after its text was overwritten, ScanPredicate(%.200q) = %+v, want %+v", raw, *got, want)
		}
	}
}

// TestCosignVulnScanListsApart: the lists of strings a read keeps share a backing array, yet
// appending to one never changes another.
func TestCosignVulnScanListsApart(t *testing.T) {
	raw := []byte(`{"scanner":{"result":{"SchemaVersion":2,"Metadata":{"RepoDigests":["r@sha256:1"]},"Results":[{"Vulnerabilities":[` +
		`{"VulnerabilityID":"CVE-1","VendorIDs":["A-1","B-1"]},{"VulnerabilityID":"CVE-2","VendorIDs":[]},{"VulnerabilityID":"CVE-3","VendorIDs":["A-3"]}]}]}}}`)
	p, ok := scanCosignVuln(raw)
	if !ok {
		t.Fatal("not read")
	}
	r := p.Scanner.Result
	vs := r.Results[0].Vulnerabilities
	r.Metadata.RepoDigests = append(r.Metadata.RepoDigests, "x")
	vs[0].VendorIDs = append(vs[0].VendorIDs, "x")
	vs[1].VendorIDs = append(vs[1].VendorIDs, "y")
	want := [][]string{{"A-1", "B-1", "x"}, {"y"}, {"A-3"}}
	for i, v := range vs {
		if !reflect.DeepEqual(v.VendorIDs, want[i]) {
			t.Errorf("Vulnerabilities[%d].VendorIDs = %q, want %q", i, v.VendorIDs, want[i])
		}
	}
	if !reflect.DeepEqual(r.Metadata.RepoDigests, []string{"r@sha256:1", "x"}) {
		t.Errorf("RepoDigests = %q", r.Metadata.RepoDigests)
	}
}

// TestPredicateReaderStrings: strings of every size read into the buffer — ones that fill it,
// ones longer than a whole buffer, escaped and beyond ASCII — are what encoding/json reads, and
// stay so while later strings are read and after the text is overwritten.
func TestPredicateReaderStrings(t *testing.T) {
	var want []string
	for i, n := range []int{0, 1, 7, 1000, 23, 2, 1500, 0, 5000, 3, 40, 9000, 1, 600} {
		s := strings.Repeat(string(rune('a'+i)), n)
		switch i % 4 {
		case 1:
			s += "&<é\n"
		case 2:
			s = "\U0001F600" + s
		}
		want = append(want, s)
	}
	text, err := json.Marshal(want) // & < as \u0026 \u003c
	if err != nil {
		t.Fatal(err)
	}
	r := predicateReader{s: jsonpass.New(text)}
	var lists [][]string
	for range 3 { // the same list again: later strings go to the buffers after the first's
		r.s = jsonpass.New(text)
		var got []string
		if !r.scanStrings(&got) || !r.s.End() {
			t.Fatal("not read")
		}
		lists = append(lists, got)
	}
	for i := range text {
		text[i] = 0
	}
	for _, got := range lists {
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("read %q, want %q", got, want)
		}
	}
}
