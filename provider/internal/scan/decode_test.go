package scan

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func countBy(fs []Finding) map[Severity]int {
	m := map[Severity]int{}
	for _, f := range fs {
		m[f.Severity]++
	}
	return m
}

func findingOf(t *testing.T, r *Report, id, pkg string) Finding {
	t.Helper()
	for _, f := range r.Findings {
		if f.ID == id && (pkg == "" || f.Package == pkg) {
			return f
		}
	}
	t.Fatalf("no finding %s in %s (%d findings)", id, pkg, len(r.Findings))
	return Finding{}
}

func TestDecodeReportSamples(t *testing.T) {
	for _, tc := range []struct {
		file      string
		format    string
		scanner   string
		total     int
		counts    map[Severity]int
		scannedAt string
	}{
		{"trivy-image-alpine-310.json", "trivy", "trivy", 4, map[Severity]int{Medium: 4}, "2021-08-25T12:20:30Z"},
		{"trivy-image-centos-7-statuses.json", "trivy", "trivy", 3, map[Severity]int{Low: 2, Medium: 1}, "2021-08-25T12:20:30Z"},
		// The VEX-suppressed finding is counted again: only a trusted VEX authority suppresses.
		{"trivy-npm-with-vex-suppressed.json", "trivy", "trivy", 2, map[Severity]int{High: 1, Low: 1}, "2024-09-09T07:21:09Z"},
		{"grype-image.json", "grype", "grype", 2, map[Severity]int{Low: 1, Critical: 1}, ""},
		{"trivy-image-alpine-310.sarif.json", "sarif/trivy", "trivy", 4, map[Severity]int{Medium: 4}, ""},
		{"trivy-image-real.sarif.json", "sarif/trivy", "trivy", 45, map[Severity]int{Critical: 4, High: 29, Medium: 10, Low: 2}, ""},
		{"grype-image.sarif.json", "sarif/grype", "grype", 2, map[Severity]int{Low: 1, Critical: 1}, ""},
	} {
		t.Run(tc.file, func(t *testing.T) {
			r, err := DecodeReport(sample(t, tc.file), Limits{})
			if err != nil {
				t.Fatalf("DecodeReport(%s) = %v", tc.file, err)
			}
			if r.Format != tc.format || r.Scanner.Name != tc.scanner {
				t.Errorf("format, scanner = %q, %q, want %q, %q", r.Format, r.Scanner.Name, tc.format, tc.scanner)
			}
			if len(r.Findings) != tc.total {
				t.Errorf("findings = %d, want %d", len(r.Findings), tc.total)
			}
			got := countBy(r.Findings)
			for s, n := range tc.counts {
				if got[s] != n {
					t.Errorf("%s findings = %d, want %d (all: %v)", s, got[s], n, got)
				}
			}
			if g := formatTime(r.ScannedAt); g != tc.scannedAt {
				t.Errorf("scannedAt = %q, want %q", g, tc.scannedAt)
			}
		})
	}
}

func TestDecodeFindingFields(t *testing.T) {
	r, err := DecodeReport(sample(t, "trivy-image-alpine-310.json"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	f := findingOf(t, r, "CVE-2019-1549", "libcrypto1.1")
	want := Finding{ID: "CVE-2019-1549", Severity: Medium, Package: "libcrypto1.1",
		PURL: "pkg:apk/alpine/libcrypto1.1@1.1.1c-r0?arch=x86_64&distro=3.10.2", InstalledVersion: "1.1.1c-r0",
		FixedVersion: "1.1.1d-r0", Status: "fixed"}
	if f.ID != want.ID || f.Severity != want.Severity || f.PURL != want.PURL || f.FixedVersion != want.FixedVersion || f.Status != want.Status || !f.Fixable() {
		t.Errorf("finding = %+v, want %+v", f, want)
	}

	r, err = DecodeReport(sample(t, "trivy-image-centos-7-statuses.json"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	f = findingOf(t, r, "CVE-2019-18276", "bash")
	if f.Status != "will_not_fix" || f.Fixable() {
		t.Errorf("bash finding status %q fixable %v, want will_not_fix, not fixable", f.Status, f.Fixable())
	}

	r, err = DecodeReport(sample(t, "grype-image.json"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	f = findingOf(t, r, "CVE-1999-0001", "package-1")
	if f.FixedVersion != "1.2.1, 2.1.3, 3.4.0" || f.Status != "fixed" || f.Severity != Low {
		t.Errorf("grype finding = %+v", f)
	}
	if f := findingOf(t, r, "CVE-1999-0002", "package-2"); f.Fixable() || f.Severity != Critical {
		t.Errorf("grype unfixed finding = %+v, want CRITICAL not fixable", f)
	}
	if len(r.Digests) != 1 || r.Digests[0] != "sha256:ca738abb87a8d58f112d3400ebb079b61ceae7dc290beb34bda735be4b1941d5" {
		t.Errorf("grype digests = %v", r.Digests)
	}

	// Grype SARIF: rule ids are <id>-<package>; the id comes from the help text.
	r, err = DecodeReport(sample(t, "grype-image.sarif.json"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	f = findingOf(t, r, "CVE-1999-0001", "package-1")
	if f.InstalledVersion != "1.1.1" || f.FixedVersion != "1.2.1,2.1.3,3.4.0" || f.Severity != Low {
		t.Errorf("grype sarif finding = %+v", f)
	}

	// Old Trivy report without Severity: the severity source's vendor severity.
	r, err = DecodeReport(sample(t, "trivy-json-with-repodigests.json"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if f := findingOf(t, r, "CVE-2019-1549", "openssl"); f.Severity != Medium {
		t.Errorf("vendor severity = %s, want MEDIUM", f.Severity)
	}
	if f := findingOf(t, r, "CVE-2019-1547", "openssl"); f.Severity != Low {
		t.Errorf("vendor severity = %s, want LOW", f.Severity)
	}
	if len(r.Digests) != 1 || r.Digests[0] != "sha256:72c42ed48c3a2db31b7dafe17d275b634664a708d901ec9fd57b1529280f01fb" {
		t.Errorf("repo digests = %v", r.Digests)
	}
}

func TestDecodePredicates(t *testing.T) {
	r, err := DecodePredicate(PredicateCosignVuln, sample(t, "trivy-cosign-vuln-predicate.json"), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Format != "cosign-vuln/trivy" || r.Scanner.Name != "trivy" || r.Scanner.Version != "v0.30.1-8-gf9cb8a28" {
		t.Errorf("predicate = %q %+v", r.Format, r.Scanner)
	}
	if got := formatTime(r.ScannedAt); got != "2022-07-24T08:14:04Z" {
		t.Errorf("scannedAt = %s, want scanFinishedOn in UTC", got)
	}
	if f := findingOf(t, r, "CVE-2021-36159", ""); f.Severity != Critical {
		t.Errorf("finding = %+v", f)
	}

	// result null: a clean scan is a report with no findings, not nothing.
	_, err = DecodePredicate(PredicateCosignVuln, sample(t, "cosign-vuln-predicate-minimal.json"), Limits{})
	var me *MalformedError
	if !errors.As(err, &me) || me.Field != "scanner.result" {
		t.Errorf("minimal predicate: err = %v, want MalformedError on scanner.result", err)
	}

	// The DSSE envelope sample: zero timestamps are no timestamps; result is empty.
	var env struct{ Payload string }
	if err := json.Unmarshal(sample(t, "cosign-vuln-dsse-envelope.json"), &env); err != nil {
		t.Fatal(err)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		PredicateType string          `json:"predicateType"`
		Predicate     json.RawMessage `json:"predicate"`
	}
	if err := json.Unmarshal(payload, &st); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodePredicate(st.PredicateType, st.Predicate, Limits{}); !errors.As(err, &me) {
		t.Errorf("envelope predicate: err = %v, want MalformedError", err)
	}

	// Grype JSON inside a cosign vuln predicate.
	pred := `{"scanner":{"uri":"pkg:github/anchore/grype@v0.80.0","version":"0.80.0","result":` + string(sample(t, "grype-image.json")) +
		`},"metadata":{"scanStartedOn":"2026-01-02T03:04:05Z","scanFinishedOn":"2026-01-02T03:05:05Z"}}`
	r, err = DecodePredicate(PredicateCosignVuln, []byte(pred), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Format != "cosign-vuln/grype" || r.Scanner.Name != "grype" || r.Scanner.Version != "0.80.0" || formatTime(r.ScannedAt) != "2026-01-02T03:05:05Z" || len(r.Findings) != 2 {
		t.Errorf("grype predicate = %q %+v %v %d", r.Format, r.Scanner, r.ScannedAt, len(r.Findings))
	}
}

func TestDecodeInTotoVulns(t *testing.T) {
	v02 := `{"scanner":{"uri":"pkg:github/aquasecurity/trivy@244fd47","version":"0.19.2",
	  "db":{"uri":"pkg:github/aquasecurity/trivy-db/commit/4c76","version":"v1-2021080612","lastUpdate":"2021-08-06T12:00:00Z"},
	  "result":[{"id":"CVE-2021-0001","severity":[{"method":"nvd","score":"7.5"},{"method":"vendor","score":"critical"}]},
	            {"id":"GHSA-aaaa-bbbb-cccc","severity":[{"method":"ghsa","score":"low"}],"annotations":[{"package":"openssl"},{"fixedVersion":"3.0.9"}]}]},
	  "metadata":{"scanStartedOn":"2021-08-06T17:45:50Z","scanFinishedOn":"2021-08-06T17:50:50Z"}}`
	r, err := DecodePredicate(PredicateInTotoV02, []byte(v02), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Format != "in-toto-vulns/v0.2" || r.Scanner.DB.UpdatedAt == nil || formatTime(*r.Scanner.DB.UpdatedAt) != "2021-08-06T12:00:00Z" {
		t.Errorf("in-toto v0.2 = %q %+v", r.Format, r.Scanner)
	}
	if f := findingOf(t, r, "CVE-2021-0001", ""); f.Severity != Critical {
		t.Errorf("worst of the methods = %s, want CRITICAL", f.Severity)
	}
	if f := findingOf(t, r, "GHSA-aaaa-bbbb-cccc", "openssl"); f.FixedVersion != "3.0.9" || !f.Fixable() {
		t.Errorf("annotated finding = %+v", f)
	}
	v01 := `{"scanner":{"uri":"https://example.com/scanner","result":[{"vulnerability":{"id":"CVE-2020-1","severity":[{"method":"nvd","score":"5.0"}]}}]},"metadata":{}}`
	r, err = DecodePredicate(PredicateInTotoV01, []byte(v01), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if f := findingOf(t, r, "CVE-2020-1", ""); f.Severity != Medium || !r.ScannedAt.IsZero() {
		t.Errorf("v0.1 = %+v at %v", f, r.ScannedAt)
	}
	for _, bad := range []struct{ name, doc, field string }{
		{"no uri", `{"scanner":{"result":[]}}`, "scanner.uri"},
		{"no result", `{"scanner":{"uri":"x"}}`, "scanner.result"},
		{"empty id", `{"scanner":{"uri":"x","result":[{"id":""}]}}`, "scanner.result[0].id"},
	} {
		_, err := DecodePredicate(PredicateInTotoV02, []byte(bad.doc), Limits{})
		var me *MalformedError
		if !errors.As(err, &me) || me.Field != bad.field {
			t.Errorf("%s: err = %v, want MalformedError on %s", bad.name, err, bad.field)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	trivy := sample(t, "trivy-image-alpine-310.json")
	for _, tc := range []struct {
		name string
		doc  []byte
		lim  Limits
		want string
	}{
		{"not json", []byte(`{"SchemaVersion":2,`), Limits{}, "malformed scan report"},
		{"trailing", append(append([]byte{}, trivy...), []byte(`{}`)...), Limits{}, "malformed"},
		{"unknown", []byte(`{"hello":"world"}`), Limits{}, "not a Trivy, Grype, SARIF"},
		{"schema 1", []byte(`{"SchemaVersion":1,"Results":[]}`), Limits{}, "SchemaVersion: is 1"},
		{"oversized", trivy, Limits{ReportBytes: 1024}, "scan report is too large: 20632, limit 1024"},
		{"too many findings", trivy, Limits{ReportFindings: 3}, "trivy report findings is too large: 4, limit 3"},
		{"empty id", []byte(`{"SchemaVersion":2,"Results":[{"Vulnerabilities":[{"PkgName":"x"}]}]}`), Limits{}, "Results[0].Vulnerabilities[0].VulnerabilityID: is empty"},
		{"bad time", []byte(`{"SchemaVersion":2,"CreatedAt":"yesterday","Results":[]}`), Limits{}, `time "yesterday" is not RFC 3339`},
		{"sarif other tool", []byte(`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"Snyk"}}}]}`), Limits{}, `runs[0].tool.driver.name: is "Snyk"`},
		{"sarif dangling rule", []byte(`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"Trivy"}},"results":[{"ruleId":"CVE-1"}]}]}`), Limits{}, `runs[0].results[0].ruleId: "CVE-1" names no rule`},
		{"grype without matches", []byte(`{"matches":null}`), Limits{}, "matches: is missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeReport(tc.doc, tc.lim)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("DecodeReport = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestDecodeOperatorReport(t *testing.T) {
	raw, err := yaml.YAMLToJSON(sample(t, "trivy-operator-vulnerabilityreport.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// As shipped the sample has no artifact.digest (as many real reports): ignored.
	if _, _, ok, err := DecodeOperatorReport(raw, Limits{}); ok || err != nil {
		t.Errorf("report without a digest: ok %v err %v, want ignored", ok, err)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	obj["report"].(map[string]any)["artifact"].(map[string]any)["digest"] = "sha256:" + strings.Repeat("ab", 32)
	raw, _ = json.Marshal(obj)
	key, r, ok, err := DecodeOperatorReport(raw, Limits{})
	if err != nil || !ok {
		t.Fatalf("DecodeOperatorReport = %v %v", ok, err)
	}
	if want := OperatorKey("k8s.gcr.io/coredns/coredns@sha256:" + strings.Repeat("ab", 32)); key != want {
		t.Errorf("key = %s, want %s", key, want)
	}
	if r.Format != "trivy-operator" || r.Scanner.Name != "trivy" || formatTime(r.ScannedAt) != "2022-12-08T15:50:37Z" {
		t.Errorf("report = %q %+v %v", r.Format, r.Scanner, r.ScannedAt)
	}
	if f := findingOf(t, r, "CVE-2021-3121", "github.com/gogo/protobuf"); f.Severity != High || f.FixedVersion != "1.3.2" {
		t.Errorf("finding = %+v", f)
	}

	// Docker Hub short names normalise as the runtime does.
	doc := `{"kind":"ClusterVulnerabilityReport","report":{"artifact":{"repository":"nginx","digest":"sha256:` + strings.Repeat("cd", 32) + `"},"vulnerabilities":[]}}`
	key, _, ok, err = DecodeOperatorReport([]byte(doc), Limits{})
	if err != nil || !ok || key != OperatorKey("docker.io/library/nginx@sha256:"+strings.Repeat("cd", 32)) {
		t.Errorf("short name key = %s %v %v", key, ok, err)
	}
	if _, _, _, err := DecodeOperatorReport([]byte(`{"kind":"Pod"}`), Limits{}); err == nil {
		t.Error("a Pod decoded as a report")
	}

	x := NewOperatorIndex()
	x.Set("ns/a", key, &Report{Format: "trivy-operator"})
	x.Set("ns/b", key, &Report{Format: "trivy-operator"})
	if n := len(x.Reports(key)); n != 2 {
		t.Errorf("reports = %d, want 2", n)
	}
	x.Set("ns/a", "", nil)
	if n := len(x.Reports(key)); n != 1 || x.Len() != 1 {
		t.Errorf("after delete: reports = %d, len %d, want 1, 1", n, x.Len())
	}
}

func TestParseSeverity(t *testing.T) {
	for in, want := range map[string]Severity{
		"CRITICAL": Critical, "critical": Critical, "High": High, "moderate": Medium, "Negligible": Low,
		"UNKNOWN": Unknown, "": Unknown, "9.8": Critical, "7.0": High, "6.9": Medium, "0.1": Low, "0.0": Unknown, "11": Unknown, "bogus": Unknown,
		" 7.5 ": High, "+9.1": Critical, ".5": Low, "-1": Unknown, "Inf": Unknown, "-inf": Unknown, "NaN": Unknown, "1e1": Critical,
		"h\u0131gh": High, "\u0131mportant": High,
	} {
		if got := ParseSeverity(in); got != want {
			t.Errorf("ParseSeverity(%q) = %s, want %s", in, got, want)
		}
	}
	// A word is no number: reading one costs no allocation (Trivy writes UNKNOWN per finding).
	for _, in := range []string{"UNKNOWN", "Unknown", "bogus", "Inf"} {
		if n := testing.AllocsPerRun(10, func() { ParseSeverity(in) }); n != 0 {
			t.Errorf("ParseSeverity(%q): %.0f allocations, want 0", in, n)
		}
	}
}

func TestFlexTime(t *testing.T) {
	for in, want := range map[string]time.Time{
		`1629894030`:                  time.Unix(1629894030, 0).UTC(),
		`"2021-08-25T12:20:30+09:00"`: time.Date(2021, 8, 25, 3, 20, 30, 0, time.UTC),
		`"0001-01-01T00:00:00Z"`:      {},
		`""`:                          {},
		`null`:                        {},
	} {
		var ft flexTime
		if err := json.Unmarshal([]byte(in), &ft); err != nil || !ft.Equal(want) {
			t.Errorf("flexTime(%s) = %v, %v, want %v", in, ft.Time, err, want)
		}
	}
	// A string is read exactly as time.Parse(time.RFC3339Nano) reads it (the same instant and
	// location), whether the strict RFC 3339 read takes it or time.Parse does.
	for _, in := range []string{"2021-08-25T12:20:30Z", "2021-08-25T12:20:30.123456789+09:00", "2021-08-25T12:20:30.5-00:30",
		"2021-08-25t12:20:30z", "2021-08-25T12:20:30,5Z", "2021-08-25T24:00:00Z", "2021-02-30T00:00:00Z", "0000-01-01T00:00:00Z",
		"2021-08-25 12:20:30Z", "2021-08-25T12:20:30+24:00", "2021-08-25T12:20:30+0900"} {
		want, wantErr := time.Parse(time.RFC3339Nano, in)
		if want.Year() <= 1 {
			want = time.Time{}
		}
		var ft flexTime
		err := ft.UnmarshalJSON([]byte(`"` + in + `"`))
		if (err == nil) != (wantErr == nil) || !ft.Equal(want) || ft.Format(time.RFC3339Nano) != want.Format(time.RFC3339Nano) {
			t.Errorf("flexTime(%q) = %v, %v; time.Parse: %v, %v", in, ft.Time, err, want, wantErr)
		}
	}
}

// TestVendorSeverityAsMap: a VendorSeverity kept as its text decodes, and fails, exactly as a
// map[string]int field does: null clears it, a repeated vendor's last value wins, a repeated
// VendorSeverity key merges, anything but ints is an error.
func TestVendorSeverityAsMap(t *testing.T) {
	for _, in := range []string{
		`{}`, `{"VendorSeverity":null}`, `{"VendorSeverity":{}}`, `{"VendorSeverity":{"nvd":3,"redhat":2}}`,
		`{"VendorSeverity": { "nvd" : 3 , "x" : -0 } }`, `{"VendorSeverity":{"nvd":3,"nvd":1}}`, `{"VendorSeverity":{"n\u0076d":3}}`,
		`{"VendorSeverity":{"nvd":3},"VendorSeverity":{"redhat":2}}`, `{"VendorSeverity":{"nvd":3},"VendorSeverity":{"nvd":1,"ghsa":2}}`,
		`{"VendorSeverity":{"nvd":3},"VendorSeverity":null}`, `{"VendorSeverity":null,"VendorSeverity":{"nvd":3}}`,
		`{"VendorSeverity":{"nvd":null}}`, `{"VendorSeverity":{"nvd":3.5}}`, `{"VendorSeverity":{"nvd":"3"}}`, `{"VendorSeverity":{"nvd":1e2}}`,
		`{"VendorSeverity":[1]}`, `{"VendorSeverity":3}`, `{"VendorSeverity":{"nvd":99999999999999999999}}`,
	} {
		var kept struct {
			V vendorSeverity `json:"VendorSeverity"`
		}
		var asMap struct {
			V map[string]int `json:"VendorSeverity"`
		}
		keptErr, mapErr := json.Unmarshal([]byte(in), &kept), json.Unmarshal([]byte(in), &asMap)
		if (keptErr == nil) != (mapErr == nil) {
			t.Errorf("%s: kept as text: %v; as a map: %v", in, keptErr, mapErr)
			continue
		}
		if keptErr != nil {
			continue
		}
		if (kept.V == nil) != (asMap.V == nil) {
			t.Errorf("%s: kept %q, map %v", in, kept.V, asMap.V)
			continue
		}
		if kept.V == nil {
			continue
		}
		m, err := kept.V.decode()
		if err != nil || !reflect.DeepEqual(m, asMap.V) {
			t.Errorf("%s: kept %q decodes to %v (%v), map %v", in, kept.V, m, err, asMap.V)
		}
		for vendor, want := range asMap.V {
			if n, ok := kept.V.of(vendor); !ok || n != want {
				t.Errorf("%s: of(%q) = %d, %v, want %d", in, vendor, n, ok, want)
			}
		}
		if _, ok := kept.V.of("absent"); ok {
			t.Errorf("%s: of an absent vendor answers ok", in)
		}
	}
	// A finding without a Severity takes its severity source's.
	v := trivyVuln{VulnerabilityID: "CVE-1", SeveritySource: "redhat", VendorSeverity: vendorSeverity(`{"nvd":4,"redhat":1}`)}
	if f := v.finding(); f.Severity != Low {
		t.Errorf("severity from VendorSeverity = %s, want LOW", f.Severity)
	}
}
