package check

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

func sampleReport() *Report {
	fs := []Finding{
		{File: "./k8s/app.yaml", Line: 12, Column: 18, Object: "Deployment prod/api", Kind: "Deployment", Namespace: "prod", Name: "api",
			Container: "api", Field: "containers", Image: "nginx:latest", Constraint: "K8sTrustedImageSource/bank", Action: ActionDeny,
			Message: "container <api> image <docker.io/library/nginx:latest> uses banned tag <latest>; pin a version or digest"},
		{File: "./k8s/app.yaml", Line: 12, Column: 18, Object: "Deployment prod/api", Kind: "Deployment", Namespace: "prod", Name: "api",
			Container: "api", Field: "containers", Image: "nginx:latest", Constraint: "K8sImageSignature/sbom", Action: ActionWarn,
			Message: "container <api> image <nginx:latest> has no SBOM, a: b, 100%"},
		{File: manifests0Stdin, Line: 3, Column: 1, Object: "Pod default/p", Kind: "Pod", Namespace: "default", Name: "p",
			Constraint: "K8sImageDigest/prod", Action: ActionDryRun, Message: "constraint is misconfigured\nsecond line"},
	}
	return NewReport(3, fs, map[string][]string{"nginx:latest": {"Deployment prod/api", "Deployment prod/web"}})
}

const manifests0Stdin = "<stdin>"

// TestSARIFValidatesAgainstSchema checks the SARIF output against the OASIS SARIF 2.1.0 JSON
// schema (testdata/sarif-schema-2.1.0.json, from github.com/oasis-tcs/sarif-spec
// sarif-2.1/schema/, commit e0583813964ec43cea53b6b531b402866095ed1f).
func TestSARIFValidatesAgainstSchema(t *testing.T) {
	var out bytes.Buffer
	if err := WriteReport(&out, sampleReport(), WriteOptions{Format: "sarif", Version: "test"}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("testdata/sarif-schema-2.1.0.json")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	schemaDoc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	const url = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
	if err := c.AddResource(url, schemaDoc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(out.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if err := sch.Validate(inst); err != nil {
		t.Fatalf("SARIF output does not validate: %v\n%s", err, out.String())
	}
	// And the parts GitHub code scanning reads.
	var log sarifLog
	if err := json.Unmarshal(out.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	run := log.Runs[0]
	if len(run.Tool.Driver.Rules) != 3 || len(run.Results) != 3 {
		t.Fatalf("rules %d results %d, want 3 and 3", len(run.Tool.Driver.Rules), len(run.Results))
	}
	r := run.Results[0]
	loc := r.Locations[0].PhysicalLocation
	if r.RuleID != "K8sTrustedImageSource/bank" || r.Level != "error" || loc.ArtifactLocation.URI != "k8s/app.yaml" || loc.Region.StartLine != 12 || loc.Region.StartColumn != 18 {
		t.Errorf("result 0 = %+v at %+v", r, loc)
	}
	if run.Tool.Driver.Rules[r.RuleIndex].ID != r.RuleID {
		t.Errorf("ruleIndex %d names %s, want %s", r.RuleIndex, run.Tool.Driver.Rules[r.RuleIndex].ID, r.RuleID)
	}
	if sev := run.Tool.Driver.Rules[r.RuleIndex].Properties["security-severity"]; sev != "7.5" {
		t.Errorf("deny rule security-severity = %v, want 7.5", sev)
	}
}

// TestFingerprintStable: the fingerprint ignores the line (edits above the finding keep the
// alert) and changes with the image.
func TestFingerprintStable(t *testing.T) {
	f := sampleReport().Findings[0]
	moved := f
	moved.Line += 10
	if Fingerprint(f) != Fingerprint(moved) {
		t.Error("fingerprint changed with the line")
	}
	other := f
	other.Image = "nginx:1.27"
	if Fingerprint(f) == Fingerprint(other) {
		t.Error("fingerprint did not change with the image")
	}
	if got, want := Fingerprint(f), Fingerprint(sampleReport().Findings[0]); got != want {
		t.Errorf("fingerprint not deterministic: %s vs %s", got, want)
	}
}

func TestJUnitParsesBack(t *testing.T) {
	rep := sampleReport()
	rep.Incomplete = []string{"provider imagetrust-verify key \"x\": unavailable: registry returned 503"}
	var out bytes.Buffer
	if err := WriteReport(&out, rep, WriteOptions{Format: "junit"}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Errors   int `xml:"errors,attr"`
		Suites   []struct {
			Name  string `xml:"name,attr"`
			Cases []struct {
				Name      string `xml:"name,attr"`
				ClassName string `xml:"classname,attr"`
				Failures  []struct {
					Message string `xml:"message,attr"`
					Text    string `xml:",chardata"`
				} `xml:"failure"`
				SystemOut string `xml:"system-out"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("JUnit output does not parse: %v\n%s", err, out.String())
	}
	if got.Tests != 3 || got.Failures != 1 || got.Errors != 1 || len(got.Suites) != 3 {
		t.Fatalf("tests/failures/errors/suites = %d/%d/%d/%d, want 3/1/1/3\n%s", got.Tests, got.Failures, got.Errors, len(got.Suites), out.String())
	}
	c := got.Suites[0].Cases[0] // ./k8s/app.yaml sorts before <stdin>
	if got.Suites[0].Name != "./k8s/app.yaml" || c.Name != "Deployment prod/api" || len(c.Failures) != 1 ||
		!strings.HasPrefix(c.Failures[0].Text, "./k8s/app.yaml:12:18: ") || !strings.Contains(c.SystemOut, "warn K8sImageSignature/sbom") {
		t.Errorf("case = %+v", c)
	}
}

func TestGitHubAnnotations(t *testing.T) {
	var out bytes.Buffer
	if err := WriteReport(&out, sampleReport(), WriteOptions{Format: "github"}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{
		"::error file=./k8s/app.yaml,line=12,col=18,title=deny K8sTrustedImageSource/bank::Deployment prod/api container api: container <api> image <docker.io/library/nginx:latest> uses banned tag <latest>; pin a version or digest",
		"::warning file=./k8s/app.yaml,line=12,col=18,title=warn K8sImageSignature/sbom::Deployment prod/api container api: container <api> image <nginx:latest> has no SBOM, a: b, 100%25",
		"::notice file=<stdin>,line=3,col=1,title=dryrun K8sImageDigest/prod::Pod default/p: constraint is misconfigured%0Asecond line",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("github output:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestTextAndRollup(t *testing.T) {
	var out bytes.Buffer
	if err := WriteReport(&out, sampleReport(), WriteOptions{Format: "text", Rollup: true}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"./k8s/app.yaml:12:18: deny K8sTrustedImageSource/bank: Deployment prod/api container api: container <api>",
		"  nginx:latest: 2 finding(s), 1 deny [K8sImageSignature/sbom, K8sTrustedImageSource/bank]\n    used by Deployment prod/api\n    used by Deployment prod/web\n",
		"3 object(s) checked: 1 deny, 1 warn, 1 dryrun\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestIncompleteResultOutput: an undecided constraint result (ActionIncomplete) is counted on
// its own and shows as an error in every format that has levels.
func TestIncompleteResultOutput(t *testing.T) {
	f := Finding{File: "app.yaml", Line: 9, Column: 18, Object: "Deployment default/web", Kind: "Deployment", Namespace: "default", Name: "web",
		Container: "web", Field: "containers", Image: "registry.example/web:1.0", Constraint: "K8sImageSignature/signed", Action: ActionIncomplete,
		Message: "no fixture for provider imagetrust-verify-signatures in fx"}
	rep := NewReport(1, []Finding{f}, map[string][]string{f.Image: {f.Object}})
	if rep.Summary != (Summary{Incomplete: 1}) || rep.Images[0].Deny != 0 || rep.Images[0].Findings != 1 {
		t.Fatalf("summary %+v, rollup %+v: want one incomplete result and no deny", rep.Summary, rep.Images)
	}
	for format, want := range map[string]string{
		"text":   "app.yaml:9:18: incomplete K8sImageSignature/signed: Deployment default/web container web: no fixture for provider imagetrust-verify-signatures in fx\n1 object(s) checked: 0 deny, 0 warn, 0 dryrun, 1 incomplete\n",
		"github": "::error file=app.yaml,line=9,col=18,title=incomplete K8sImageSignature/signed::Deployment default/web container web: no fixture for provider imagetrust-verify-signatures in fx\n",
		"json":   `"incomplete": 1`,
		"sarif":  `"level": "error"`,
		"junit":  `<error message="K8sImageSignature/signed: incomplete: no fixture for provider imagetrust-verify-signatures in fx" type="incomplete">app.yaml:9:18: no fixture`,
	} {
		var out bytes.Buffer
		if err := WriteReport(&out, rep, WriteOptions{Format: format}); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), want) {
			t.Errorf("%s output lacks %q:\n%s", format, want, out.String())
		}
	}
}
