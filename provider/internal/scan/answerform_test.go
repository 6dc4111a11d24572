package scan

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"sigs.k8s.io/yaml"
)

// TestAnswerForm: an answer's findings carry their purl without qualifiers and subpath (two
// findings that differed only there are one), no status "fixed" beside a fixed version, and
// every other field as the report said; a platform of an index is listed without findings
// (the index lists their union) but with its counts; an empty scanner database is left out.
func TestAnswerForm(t *testing.T) {
	amdHigh := high
	amdHigh.PURL = "pkg:deb/debian/openssl@3.0.1?arch=amd64&distro=debian-12"
	armHigh := high
	armHigh.PURL = "pkg:deb/debian/openssl@3.0.1?arch=arm64#sub/path"
	crit := critical
	crit.PURL = "pkg:deb/debian/bash@5.1?arch=amd64"
	statusOnly := Finding{ID: "CVE-2024-0009", Severity: Medium, Package: "tar", InstalledVersion: "1.34", Status: "fixed"}
	v := choose([]Candidate{signedCand("ci", time.Time{}, report(t0, amdHigh, armHigh, crit, statusOnly, low))}, nil)
	if v.FindingsTotal != 4 || v.Counts.Of("HIGH") != 1 || v.FixableCounts.Of("HIGH") != 1 || v.FixableCounts.Of("MEDIUM") != 1 {
		t.Fatalf("total %d counts %v fixable %v, want the arch variants counted once", v.FindingsTotal, v.Counts, v.FixableCounts)
	}
	want := map[string]Finding{
		"CVE-2024-0001": {ID: "CVE-2024-0001", Severity: High, Package: "openssl", PURL: "pkg:deb/debian/openssl@3.0.1", InstalledVersion: "3.0.1", FixedVersion: "3.0.2"},
		"CVE-2024-0002": {ID: "CVE-2024-0002", Severity: Critical, Package: "bash", PURL: "pkg:deb/debian/bash@5.1", InstalledVersion: "5.1", Status: "affected"},
		"CVE-2024-0009": statusOnly,
		"CVE-2024-0003": low,
	}
	for _, f := range v.Findings {
		w, ok := want[f.ID]
		if !ok || f.ID != w.ID || f.Severity != w.Severity || f.Package != w.Package || f.PURL != w.PURL ||
			f.InstalledVersion != w.InstalledVersion || f.FixedVersion != w.FixedVersion || f.Status != w.Status || f.VEX != nil {
			t.Errorf("finding %+v, want %+v", f, w)
		}
		delete(want, f.ID)
	}
	if len(want) != 0 {
		t.Errorf("findings missing: %v", want)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(raw); strings.Contains(s, `"db"`) || strings.Contains(s, "arch=") || !strings.Contains(s, `"findings":[[`) ||
		!strings.HasPrefix(s, `{"form":2,`) || strings.Contains(s, `"id"`) {
		t.Errorf("answer %s", s)
	}
	var back Value
	if err := json.Unmarshal(raw, &back); err != nil || !reflect.DeepEqual(back.Findings, v.Findings) {
		t.Errorf("answer read back: %v\n got %+v\nwant %+v", err, back.Findings, v.Findings)
	}

	arm := choose([]Candidate{signedCand("ci", time.Time{}, report(t0, armHigh, crit))}, nil)
	amd := choose([]Candidate{signedCand("ci", time.Time{}, report(t0, amdHigh))}, nil)
	idx := CombinePlatforms("img", digestB, []PlatformScan{{"linux/amd64", amd}, {"linux/arm64", arm}}, Limits{})
	if len(idx.Findings) != 2 || idx.FindingsTotal != 2 || idx.Counts.Of("HIGH") != 1 || idx.Counts.Of("CRITICAL") != 1 {
		t.Errorf("index findings %+v total %d counts %v, want the union of 2", idx.Findings, idx.FindingsTotal, idx.Counts)
	}
	for _, p := range idx.Platforms {
		if p.Findings != nil || p.FindingsTotal == 0 || p.Counts.Of("HIGH") != 1 {
			t.Errorf("platform %s: findings %v total %d counts %v", p.Platform, p.Findings, p.FindingsTotal, p.Counts)
		}
	}
	if len(arm.Findings) != 2 || len(amd.Findings) != 1 {
		t.Error("combining platforms changed the platforms' own values")
	}
	raw, err = json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(raw), `"findings"`); n != 1 {
		t.Errorf("index answer lists findings %d times, want once: %s", n, raw)
	}
	if e, err := encodeValue(idx, &interner{}); err != nil || string(e.AppendJSON(nil)) != string(raw) {
		t.Errorf("encoded index answer %v:\n got %s\nwant %s", err, e.AppendJSON(nil), raw)
	}
}

// rowCases are findings in the answer's form (answerForm applied) with the rows they are
// written as: the purl shortened by the package and version the row already says, or not
// when it does not end in them; empty columns at the end left out, empty ones before a filled
// one written empty.
var rowCases = []struct {
	f   Finding
	row string
}{
	{Finding{ID: "CVE-1", Severity: High}, `["CVE-1","HIGH"]`},
	{Finding{ID: "CVE-1", Severity: High, Package: "openssl", PURL: "pkg:apk/alpine/openssl@3.1.4-r0", InstalledVersion: "3.1.4-r0", FixedVersion: "3.1.5-r0"},
		`["CVE-1","HIGH","openssl","3.1.4-r0","3.1.5-r0","pkg:apk/alpine/"]`},
	{Finding{ID: "CVE-1", Severity: Low, Package: "libssl3", PURL: "pkg:deb/debian/openssl@3.0.11", InstalledVersion: "3.0.11", Status: "affected"},
		`["CVE-1","LOW","libssl3","3.0.11","","pkg:deb/debian/openssl@",[],"affected"]`},
	{Finding{ID: "CVE-2021-44228", Severity: Critical, Package: "org.apache.logging.log4j:log4j-core", PURL: "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1", InstalledVersion: "2.14.1", FixedVersion: "2.15.0"},
		`["CVE-2021-44228","CRITICAL","org.apache.logging.log4j:log4j-core","2.14.1","2.15.0","pkg:maven/org.apache.logging.log4j/log4j-core@"]`},
	{Finding{ID: "GO-1", Severity: Medium, Package: "github.com/a/b", PURL: "pkg:golang/github.com/a/b@v1.2.3", InstalledVersion: "v1.2.3"},
		`["GO-1","MEDIUM","github.com/a/b","v1.2.3","","pkg:golang/"]`},
	{Finding{ID: "CVE-1", Severity: High, Package: "@babel/core", PURL: "pkg:npm/%40babel/core@7.0.0", InstalledVersion: "7.0.0"},
		`["CVE-1","HIGH","@babel/core","7.0.0","","pkg:npm/%40babel/core@"]`},
	{Finding{ID: "CVE-1", Severity: High, Package: "bash", PURL: "pkg:deb/debian/bash@5.1", InstalledVersion: "1:5.1"},
		`["CVE-1","HIGH","bash","1:5.1","","pkg:deb/debian/bash@5.1"]`},
	{Finding{ID: "CVE-1", Severity: High, Package: "abash", PURL: "pkg:deb/debian/bash@5.1", InstalledVersion: "5.1"},
		`["CVE-1","HIGH","abash","5.1","","pkg:deb/debian/bash@"]`},
	{Finding{ID: "CVE-1", Severity: High, Package: "bash", PURL: "pkg:deb/debian/bash", InstalledVersion: "5.1"},
		`["CVE-1","HIGH","bash","5.1","","pkg:deb/debian/bash"]`},
	{Finding{ID: "CVE-1", Severity: Unknown, PURL: "pkg:generic/x@1"}, `["CVE-1","UNKNOWN","","","","pkg:generic/x@1"]`},
	{Finding{ID: "CVE-1", Severity: High, Aliases: []string{"GHSA-1", "ALPINE-2"}}, `["CVE-1","HIGH","","","","",["GHSA-1","ALPINE-2"]]`},
	{Finding{ID: "CVE-1", Severity: High, Package: "p", InstalledVersion: "1", Status: "fixed"}, `["CVE-1","HIGH","p","1","","",[],"fixed"]`},
	{Finding{ID: "CVE-1", Severity: High, VEX: &VEXNote{Status: "not_affected", Authority: "vendor"}},
		`["CVE-1","HIGH","","","","",[],"",{"status":"not_affected","authority":"vendor"}]`},
	{Finding{ID: `a"<b>&\` + "\x00\n\u2028\xff", Severity: "SEVERE", Package: "é"}, `["a\"\u003cb\u003e\u0026\\\u0000\n\u2028\ufffd","SEVERE","é"]`},
}

// TestFindingRows: each finding is written as its row, exactly as encoding/json would write
// the same values, and read back to the same finding (Finding.UnmarshalJSON); a purl that
// ends in "/" or "@" is left out, since in a row those endings mean the package and version
// follow; rows of the wrong shape are refused, naming the column.
func TestFindingRows(t *testing.T) {
	for _, c := range rowCases {
		f := c.f
		f.answerForm()
		got, err := json.Marshal(f)
		if err != nil || string(got) != c.row {
			t.Errorf("json.Marshal(%+v) = %s, %v, want %s", c.f, got, err, c.row)
			continue
		}
		aliases := f.Aliases
		if aliases == nil {
			aliases = []string{}
		}
		cols := []any{f.ID, f.Severity, f.Package, f.InstalledVersion, f.FixedVersion, rowPURL(f.PURL, f.Package, f.InstalledVersion), aliases, f.Status, f.VEX}
		if want, _ := json.Marshal(cols[:f.lastColumn()+1]); string(want) != string(got) {
			t.Errorf("row %s is not as encoding/json writes its columns: %s", got, want)
		}
		var back Finding
		if err := json.Unmarshal(got, &back); err != nil {
			t.Errorf("json.Unmarshal(%s) = %v", got, err)
		} else if c.f.ID == rowCases[len(rowCases)-1].f.ID {
			continue // invalid UTF-8 is written as U+FFFD
		} else if !reflect.DeepEqual(back, f) {
			t.Errorf("json.Unmarshal(%s) = %+v, want %+v", got, back, f)
		}
	}
	for _, purl := range []string{"pkg:deb/debian/", "pkg:deb/debian/bash@"} {
		f := Finding{ID: "CVE-1", Severity: High, Package: "bash", PURL: purl + "?arch=amd64", InstalledVersion: "5.1"}
		f.answerForm()
		if row, _ := json.Marshal(f); f.PURL != "" || string(row) != `["CVE-1","HIGH","bash","5.1"]` {
			t.Errorf("purl %q: answer form %q, row %s; want it left out", purl, f.PURL, row)
		}
		if got := rowPURL(purl, "bash", "5.1"); got != "" {
			t.Errorf("rowPURL(%q) = %q, want it left out", purl, got)
		}
	}
	for _, bad := range []string{`{"id":"CVE-1","severity":"HIGH"}`, `["CVE-1"]`, `["CVE-1","HIGH","p","1","2","u",[],"s",{},"extra"]`, `["CVE-1",4]`, `["CVE-1","HIGH","p","1","2","u","GHSA-1"]`} {
		var f Finding
		if err := json.Unmarshal([]byte(bad), &f); err == nil {
			t.Errorf("json.Unmarshal(%s) = %+v, want an error", bad, f)
		}
	}
	var v Value
	if err := json.Unmarshal([]byte(`{"form":1,"image":"x"}`), &v); err == nil || !strings.Contains(err.Error(), "form 1, want 2") {
		t.Errorf("reading an answer of form 1: %v, want an error naming the form", err)
	}
}

// securityModules are library/security and library/lib of the library directory lib, with
// its capabilities file (external_data declared).
func securityModules(tb testing.TB, lib string) []func(*rego.Rego) {
	tb.Helper()
	caps, err := ast.LoadCapabilitiesFile(filepath.Join(lib, "capabilities.json"))
	if err != nil {
		tb.Fatal(err)
	}
	opts := []func(*rego.Rego){rego.Capabilities(caps)}
	mods, err := filepath.Glob(filepath.Join(lib, "*", "*.rego"))
	if err != nil {
		tb.Fatal(err)
	}
	for _, m := range mods {
		if dir := filepath.Base(filepath.Dir(m)); strings.HasSuffix(m, "_test.rego") || (dir != "lib" && dir != "security") {
			continue
		}
		src, err := os.ReadFile(m)
		if err != nil {
			tb.Fatal(err)
		}
		opts = append(opts, rego.Module(m, string(src)))
	}
	return opts
}

// TestRowsReadByTheTemplate holds the template to the rows the provider writes: the form
// library/security reads is AnswerForm, and its readers of a row, evaluated by the OPA
// engine over the rows of rowCases and of every sample report's answer, give back each
// finding's id, severity, package, versions, full purl (what ignore entries' packages match),
// ids with aliases (what blockedIds and ignore entries match), whether it is fixable, status
// and VEX statement.
func TestRowsReadByTheTemplate(t *testing.T) {
	var findings []Finding
	for _, c := range rowCases[:len(rowCases)-1] {
		f := c.f
		f.answerForm()
		findings = append(findings, f)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		if r, err := DecodeReport(sample(t, file[len("testdata/"):]), Limits{}); err == nil {
			v := choose([]Candidate{signedCand("ci", time.Time{}, r)}, nil)
			findings = append(findings, v.Findings...)
		}
	}
	if len(findings) < 50 {
		t.Fatalf("%d findings from the samples", len(findings))
	}
	raw, err := json.Marshal(findings)
	if err != nil {
		t.Fatal(err)
	}
	var rows []any
	if err := json.Unmarshal(raw, &rows); err != nil {
		t.Fatal(err)
	}
	const p = "data.k8simagevulnerabilities."
	query := "form := " + p + "answer_form\nread := [["
	for i := range 5 {
		query += fmt.Sprintf("%s_column(r, %d), ", p, i)
	}
	query += p + "_purl(r), sort(" + p + "_ids(r)), count({true | " + p + "_fixable(r)}) > 0, " + p + "_column(r, 7), " + p + "_column(r, 8)"
	query += "] | some r in input.rows]"
	opts := append(securityModules(t, filepath.Join("..", "..", "..", "library")), rego.Query(query))
	rs, err := rego.New(append(opts, rego.Input(map[string]any{"rows": rows}))...).Eval(context.Background())
	if err != nil || len(rs) != 1 {
		t.Fatalf("evaluating the template's row readers: %v (%d results)", err, len(rs))
	}
	if form, _ := rs[0].Bindings["form"].(json.Number); form.String() != itoa(AnswerForm) {
		t.Errorf("library/security reads form %v, the provider writes %d", rs[0].Bindings["form"], AnswerForm)
	}
	read, _ := rs[0].Bindings["read"].([]any)
	if len(read) != len(findings) {
		t.Fatalf("the template read %d rows of %d", len(read), len(findings))
	}
	for i, f := range findings {
		ids := []string{strings.ToUpper(f.ID)}
		for _, a := range f.Aliases {
			ids = append(ids, strings.ToUpper(a))
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
		idList := []any{}
		for _, id := range ids {
			idList = append(idList, id)
		}
		var vex any = ""
		if f.VEX != nil {
			b, _ := json.Marshal(f.VEX)
			_ = json.Unmarshal(b, &vex)
		}
		want := []any{f.ID, string(f.Severity), f.Package, f.InstalledVersion, f.FixedVersion, f.PURL, idList, f.Fixable(), f.Status, vex}
		if !reflect.DeepEqual(read[i], want) {
			t.Errorf("row %s read by the template as %v, want %v", rows[i], read[i], want)
		}
	}
}

// TestFixturesInAnswerForm: the provider fixtures of gator-tests/security are answers in the
// form the provider writes: each value reads into a Value (form, finding rows) and writes
// back as the same JSON.
func TestFixturesInAnswerForm(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "gator-tests", "security", "fixtures.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Providers map[string]struct {
			Keys map[string]struct {
				Value json.RawMessage `json:"value"`
			} `json:"keys"`
		} `json:"providers"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	n := 0
	for key, a := range doc.Providers["imagetrust-scan"].Keys {
		if len(a.Value) == 0 {
			continue
		}
		var v Value
		if err := json.Unmarshal(a.Value, &v); err != nil {
			t.Errorf("%s: %v", key, err)
			continue
		}
		again, err := json.Marshal(&v)
		if err != nil {
			t.Fatal(err)
		}
		var want, got any
		if err := json.Unmarshal(a.Value, &want); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(again, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: fixture\n %s\nis written by the provider as\n %s", key, a.Value, again)
		}
		n++
	}
	if n < 5 {
		t.Errorf("%d scan fixtures read", n)
	}
}

// objectFinding is a finding as an object, the form before rows (form 1), for
// BenchmarkScanAnswerDecode's comparison.
type objectFinding struct {
	ID               string   `json:"id"`
	Aliases          []string `json:"aliases,omitempty"`
	Severity         Severity `json:"severity"`
	Package          string   `json:"package,omitempty"`
	PURL             string   `json:"purl,omitempty"`
	InstalledVersion string   `json:"installedVersion,omitempty"`
	FixedVersion     string   `json:"fixedVersion,omitempty"`
	Status           string   `json:"status,omitempty"`
	VEX              *VEXNote `json:"vex,omitempty"`
}

// answerJSON is v's answer: as the provider writes it (findings as rows), or with objects in
// form 1's shape (findings as objects, no "form").
func answerJSON(tb testing.TB, v *Value, objects bool) []byte {
	tb.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	if !objects {
		return raw
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		tb.Fatal(err)
	}
	delete(m, "form")
	obj := make([]objectFinding, len(v.Findings))
	for j, f := range v.Findings {
		obj[j] = objectFinding(f)
	}
	if m["findings"], err = json.Marshal(obj); err != nil {
		tb.Fatal(err)
	}
	if raw, err = json.Marshal(m); err != nil {
		tb.Fatal(err)
	}
	return raw
}

// benchResponse is the /v1/scan response body to 100 keys of make bench's report shape, its
// findings as rows (objects false) or as objects (form 1, objects true); with shared false
// every finding's version is unique to its image (benchValue).
func benchResponse(tb testing.TB, objects, shared bool) []byte {
	tb.Helper()
	resp := externaldata.ProviderResponse{APIVersion: "externaldata.gatekeeper.sh/v1beta1", Kind: externaldata.ProviderResponseKind}
	resp.Response.Idempotent = true
	for i := range 100 {
		v := benchValue(i, shared)
		resp.Response.Items = append(resp.Response.Items, externaldata.Item{Key: v.Image, Value: json.RawMessage(answerJSON(tb, v, objects))})
	}
	b, err := json.Marshal(resp)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkScanAnswerDecode: what Gatekeeper does with a /v1/scan response to 100 keys of make
// bench's report shape (34 findings each) before Rego reads it, per batch: decode the body
// (frameworks' DefaultSendRequestToProvider) and turn it into the Rego value external_data
// returns (NewRegoResponse, PrepareRegoResponse), findings as rows (form=rows) or as objects
// (form=objects, form 1); and gzip's cost on the same body, compressing (provider) and
// decompressing (Gatekeeper's client, which asks for gzip), for answers that list the same
// findings (findings=shared, as make bench's images do) and answers whose findings' versions
// are their own (findings=distinct).
func BenchmarkScanAnswerDecode(b *testing.B) {
	decode := func(b *testing.B, body []byte) {
		var pr externaldata.ProviderResponse
		if err := json.Unmarshal(body, &pr); err != nil {
			b.Fatal(err)
		}
		if _, err := externaldata.PrepareRegoResponse(externaldata.NewRegoResponse(200, &pr)); err != nil {
			b.Fatal(err)
		}
	}
	// The two forms alternate, each timed by the process's CPU (garbage collection included),
	// so that load from other work falls on both alike.
	b.Run("gatekeeper/interleaved", func(b *testing.B) {
		bodies := [2][]byte{benchResponse(b, false, true), benchResponse(b, true, true)}
		var cpu [2]time.Duration
		var n [2]int
		for i := 0; b.Loop(); i++ {
			t0 := cpuTime()
			decode(b, bodies[i%2])
			cpu[i%2] += cpuTime() - t0
			n[i%2]++
		}
		if n[1] == 0 {
			return
		}
		rows, objects := float64(cpu[0].Microseconds())/float64(n[0])/1000, float64(cpu[1].Microseconds())/float64(n[1])/1000
		b.ReportMetric(rows, "rows-cpu-ms/batch")
		b.ReportMetric(objects, "objects-cpu-ms/batch")
		b.ReportMetric(rows/objects, "rows/objects")
		b.ReportMetric(float64(len(bodies[0]))/100, "rows-B/key")
		b.ReportMetric(float64(len(bodies[1]))/100, "objects-B/key")
	})
	for _, form := range []string{"rows", "objects"} {
		body := benchResponse(b, form == "objects", true)
		for _, c := range []struct {
			findings string
			level    int
		}{{"shared", gzip.BestSpeed}, {"shared", gzip.DefaultCompression}, {"distinct", gzip.BestSpeed}, {"distinct", gzip.DefaultCompression}} {
			body, level := body, c.level
			if c.findings == "distinct" {
				body = benchResponse(b, form == "objects", false)
			}
			var z bytes.Buffer
			b.Run(fmt.Sprintf("form=%s/findings=%s/gzip=%d", form, c.findings, level), func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				w, _ := gzip.NewWriterLevel(&z, level)
				for b.Loop() {
					z.Reset()
					w.Reset(&z)
					if _, err := w.Write(body); err != nil {
						b.Fatal(err)
					}
					if err := w.Close(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(z.Len())/100, "gzip-B/key")
			})
			b.Run(fmt.Sprintf("form=%s/findings=%s/gunzip=%d", form, c.findings, level), func(b *testing.B) {
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					r, err := gzip.NewReader(bytes.NewReader(z.Bytes()))
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.Copy(io.Discard, io.LimitReader(r, int64(2*len(body)))); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// regoBenchModule reviews a Pod of seven containers whose images are all answered with
// data.scanbench.answer, under a constraint that denies (maxSeverity MEDIUM, one ignore entry
// scoped to a package: 13 violations per container) or one that admits (maxSeverity CRITICAL).
const regoBenchModule = `package scanbench

import data.k8simagevulnerabilities

mock(req) := {"responses": [[k, answer] | some k in req.keys], "errors": [], "status_code": 200, "system_error": ""}

pod := {"review": {"kind": {"kind": "Pod"}, "object": {"kind": "Pod", "spec": {"containers": [{"name": sprintf("c%d", [i]), "image": sprintf("r.io/app%d:1", [i])} | some i in numbers.range(0, 6)]}}}}

params := {
	"deny": {"scannerAuthorities": ["bench-trivy"], "maxSeverity": "MEDIUM", "ignore": [{"id": "CVE-2024-1001", "reason": "r", "expires": "2099-12-31", "packages": ["pkg:apk/alpine/pkg1"]}]},
	"admit": {"scannerAuthorities": ["bench-trivy"], "maxSeverity": "CRITICAL", "maxScanAge": "168h"},
}

violations(name) := msgs if {
	msgs := {v.msg | some v in k8simagevulnerabilities.violation} with input as object.union(pod, {"parameters": params[name]})
		with external_data as mock
}
`

// BenchmarkScanRowsRego: library/security's Rego CPU per Pod review (seven containers, each
// image answered with make bench's 34-finding answer) under a denying and an admitting
// constraint. With IMAGETRUST_SCAN_FORM1_LIBRARY naming the library/ directory of a tree that
// reads findings as objects (form 1, e.g. a worktree of an older commit), that library is
// evaluated over the same answer as objects, alternating with this one; both must give the
// same messages.
func BenchmarkScanRowsRego(b *testing.B) {
	answer := func(objects bool) string { return string(answerJSON(b, benchValue(0, true), objects)) }
	libs := []string{filepath.Join("..", "..", "..", "library")}
	if old := os.Getenv("IMAGETRUST_SCAN_FORM1_LIBRARY"); old != "" {
		libs = append(libs, old)
	}
	for _, constraint := range []string{"deny", "admit"} {
		b.Run("constraint="+constraint, func(b *testing.B) {
			pqs := make([]rego.PreparedEvalQuery, len(libs))
			var want any
			for i, lib := range libs {
				opts := append(securityModules(b, lib), rego.Query(`data.scanbench.violations("`+constraint+`")`),
					rego.Module("scanbench.rego", regoBenchModule+"\nanswer := "+answer(i == 1)+"\n"))
				var err error
				if pqs[i], err = rego.New(opts...).PrepareForEval(context.Background()); err != nil {
					b.Fatal(err)
				}
				rs, err := pqs[i].Eval(context.Background())
				if err != nil || len(rs) != 1 {
					b.Fatalf("%s: %v", lib, err)
				}
				got := rs[0].Expressions[0].Value
				if i == 0 {
					want = got
				} else if !reflect.DeepEqual(got, want) {
					b.Fatalf("%s decides otherwise:\n got %v\nwant %v", lib, got, want)
				}
			}
			cpu, n := make([]time.Duration, len(libs)), make([]int, len(libs))
			for i := 0; b.Loop(); i++ {
				k := i % len(libs)
				t0 := cpuTime()
				if _, err := pqs[k].Eval(context.Background()); err != nil {
					b.Fatal(err)
				}
				cpu[k] += cpuTime() - t0
				n[k]++
			}
			per := func(k int) float64 { return float64(cpu[k].Microseconds()) / float64(max(n[k], 1)) }
			b.ReportMetric(per(0), "rows-cpu-µs/pod")
			if len(libs) > 1 {
				b.ReportMetric(per(1), "objects-cpu-µs/pod")
				b.ReportMetric(per(0)/per(1), "rows/objects")
			}
		})
	}
}
