package scan

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/imagetrust/imagetrust/provider/internal/jsonpass"
	"github.com/imagetrust/imagetrust/provider/internal/scan/scantest"
	"github.com/imagetrust/imagetrust/provider/internal/verify"
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

// coldValue is the cold path of one cosign vuln attestation once its signature verified: the
// predicate read in the statement's one pass (make bench's report: 34 findings), the candidate
// the service makes of it, and the value chosen.
type coldValue struct {
	svc *Service
	raw []byte
}

func newColdValue(t testing.TB) *coldValue {
	return &coldValue{
		svc: &Service{o: Options{Limits: Limits{}.withDefaults()}, scanners: map[string]bool{"ci": true}},
		raw: cosignVulnPredicate(t, scantest.Report(), t0),
	}
}

func (c *coldValue) value(t testing.TB) *Value {
	p, ok := scanCosignVuln(c.raw)
	if !ok {
		t.Fatal("make bench's predicate is not read in one pass")
	}
	cd := c.svc.attestationCandidate(verify.Statement{PredicateType: PredicateCosignVuln, Decoded: p, Signers: []verify.Signer{{Authority: "ci", SignedAt: t0.Add(time.Minute)}}})
	if cd.Err != nil {
		t.Fatal(cd.Err)
	}
	v := Choose("img", subject, []Candidate{cd}, nil, Choice{Now: t0.Add(time.Hour), Limits: c.svc.o.Limits})
	if !v.Scanned || v.FindingsTotal != 34 {
		t.Fatalf("value scanned %v with %d findings, want 34", v.Scanned, v.FindingsTotal)
	}
	return v
}

// keptStrings is the length of the strings a one-pass read of p keeps.
func keptStrings(p *cosignVuln) int {
	n := 0
	var add func(v reflect.Value)
	add = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.String:
			n += v.Len()
		case reflect.Pointer:
			if !v.IsNil() {
				add(v.Elem())
			}
		case reflect.Struct:
			for i := range v.NumField() {
				add(v.Field(i))
			}
		case reflect.Slice:
			for i := range v.Len() {
				add(v.Index(i))
			}
		case reflect.Map:
			for _, k := range v.MapKeys() {
				add(k)
			}
		}
	}
	add(reflect.ValueOf(p))
	return n
}

// perRun is the median, over runs, of the heap allocations and bytes one call of f costs: the
// median leaves out a run that found a sync.Pool empty (a collection empties pools; under the
// race detector a quarter of what is put in one is dropped).
func perRun(runs int, f func()) (allocs, bytes uint64) {
	as, bs := make([]uint64, runs), make([]uint64, runs)
	var m0, m1 runtime.MemStats
	for i := range runs {
		runtime.ReadMemStats(&m0)
		f()
		runtime.ReadMemStats(&m1)
		as[i], bs[i] = m1.Mallocs-m0.Mallocs, m1.TotalAlloc-m0.TotalAlloc
	}
	slices.Sort(as)
	slices.Sort(bs)
	return as[runs/2], bs[runs/2]
}

// TestColdValueCopiesOnce: reading make bench's predicate to its value copies each string of
// the text once. A copy per string would add an allocation per string (over 300 here); a
// second copy into a buffer, or a buffer grown by append (which copies the strings already out
// into an array none of them uses), at least their length again (4 KB) — more than the bytes
// bound leaves. The bound is the findings' two arrays (the predicate's vulnerabilities and the
// report's findings), twice the strings' length (each buffer is twice the size of the last)
// and 4 KB for the rest; it measured 21.2 KB of 22.4 KB, in 23 allocations.
func TestColdValueCopiesOnce(t *testing.T) {
	c := newColdValue(t)
	p, ok := scanCosignVuln(c.raw)
	if !ok {
		t.Fatal("not read")
	}
	const findings = 34
	structs := findings * int(unsafe.Sizeof(trivyVuln{})+unsafe.Sizeof(Finding{}))
	maxBytes := structs + 2*keptStrings(p) + 4<<10
	c.value(t) // warm: the scratch pool, encoding/json's type cache
	allocs, bytes := perRun(51, func() { c.value(t) })
	if allocs > 26 || bytes > uint64(maxBytes) {
		t.Errorf("predicate to value: %d allocations of %d bytes, want at most 26 of %d (%d of them the findings' arrays, %d the strings kept)",
			allocs, bytes, maxBytes, structs, keptStrings(p))
	}
}

// BenchmarkColdValue: make bench's predicate (34 findings) read in one pass and chosen into
// its value (ColdValueCopiesOnce's path); B/op and allocs/op show a copy of the strings
// reintroduced anywhere between the text and the value.
func BenchmarkColdValue(b *testing.B) {
	c := newColdValue(b)
	b.ReportAllocs()
	for b.Loop() {
		c.value(b)
	}
}
