package scan

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// cosignVulnEdgeCases are predicates whose result sits where the sniff and the one-pass
// decode could part: null lists, fields of several formats, wrong types, empty results.
func cosignVulnEdgeCases() []string {
	wrap := func(result string) string {
		return `{"scanner":{"uri":"pkg:github/aquasecurity/trivy@v0.50.0","version":"0.50.0","result":` + result +
			`},"metadata":{"scanFinishedOn":"2026-01-02T03:04:05Z"}}`
	}
	var out []string
	for _, r := range []string{
		`null`, `{}`, `[]`, `"x"`, `5`,
		`{"SchemaVersion":2,"Results":null}`,
		`{"SchemaVersion":2,"Results":null,"matches":[]}`,
		`{"SchemaVersion":2,"ArtifactName":"a"}`,
		`{"SchemaVersion":null,"ArtifactName":"a"}`,
		`{"SchemaVersion":"2","ArtifactName":"a"}`,
		`{"SchemaVersion":2.0,"ArtifactName":"a"}`,
		`{"SchemaVersion":2,"ArtifactName":5}`,
		`{"SchemaVersion":2,"Results":[],"matches":5}`,
		`{"SchemaVersion":1,"Results":[]}`,
		`{"matches":null}`,
		`{"matches":null,"version":"2.1.0","runs":[]}`,
		`{"matches":[],"version":"2.1.0","runs":[]}`,
		`{"version":"2.1.0","runs":null}`,
		`{"version":null,"runs":[{"tool":{"driver":{"name":"Trivy"}}}]}`,
		`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"Trivy"}}}]}`,
		`{"SchemaVersion":2,"Results":[{"Vulnerabilities":[{"VulnerabilityID":"CVE-1","Severity":"HIGH"}]}],"descriptor":{"timestamp":"yesterday"}}`,
	} {
		out = append(out, wrap(r))
	}
	return append(out, `{"scanner":{"result":{"SchemaVersion":2,"Results":[]}}}`, `{"scanner":{}}`, `{}`, `[]`, `{"scanner":{"result":{"SchemaVersion":2,"Results":[]}}`)
}

// sameAsRaw checks that decodeCosignVuln and decodeCosignVulnRaw agree on raw.
func sameAsRaw(t *testing.T, raw []byte, lim Limits) {
	t.Helper()
	got, gerr := decodeCosignVuln(raw, lim)
	want, werr := decodeCosignVulnRaw(raw, lim)
	if (gerr == nil) != (werr == nil) || (gerr != nil && gerr.Error() != werr.Error()) {
		t.Fatalf("one pass: err %v; raw: err %v\n%s", gerr, werr, raw)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("one pass:\n%+v\nraw:\n%+v", got, want)
	}
}

// TestCosignVulnOnePass: every sample report, wrapped in a cosign vuln predicate, and the edge
// cases decode in one pass to exactly what the raw path gives.
func TestCosignVulnOnePass(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	cases := cosignVulnEdgeCases()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(f, "predicate") {
			cases = append(cases, string(b))
			continue
		}
		cases = append(cases, `{"scanner":{"uri":"pkg:github/anchore/grype@v0.80.0","result":`+string(b)+`},"metadata":{"scanStartedOn":"`+time.Now().UTC().Format(time.RFC3339)+`"}}`)
	}
	decoded := 0
	for _, c := range cases {
		sameAsRaw(t, []byte(c), Limits{})
		if _, err := decodeCosignVuln([]byte(c), Limits{}); err == nil {
			decoded++
		}
	}
	// Trivy, Grype and SARIF reports among them (not only errors).
	if decoded < 6 {
		t.Errorf("%d of %d cases decoded, want the sample reports to", decoded, len(cases))
	}
	sameAsRaw(t, []byte(cases[len(cases)-1]), Limits{ReportFindings: 1})
}
