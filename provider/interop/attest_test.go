//go:build interop

package interop

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// predicate is one `cosign attest --type` and the predicate file it signs.
type predicate struct {
	// typ is the --type value, file the predicate in testdata ("" for vuln: made per run).
	typ, file string
	// predicateType is what cosign writes in the statement.
	predicateType string
	// field (a dotted path into the predicate) holds value: what a user-written policy over
	// /v1/attestations reads.
	field, value string
}

var predicates = []predicate{
	{"slsaprovenance02", "slsa-v0.2.json", "https://slsa.dev/provenance/v0.2", "builder.id",
		"https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v2.1.0"},
	{"slsaprovenance1", "slsa-v1.json", "https://slsa.dev/provenance/v1", "buildDefinition.externalParameters.workflow.repository",
		"https://github.com/bank/payments"},
	{"spdxjson", "sbom.spdx.json", "https://spdx.dev/Document", "spdxVersion", "SPDX-2.3"},
	{"cyclonedx", "sbom.cdx.json", "https://cyclonedx.org/bom", "bomFormat", "CycloneDX"},
	{"vuln", "", "https://cosign.sigstore.dev/attestation/vuln/v1", "scanner.version", "0.62.1"},
}

func attestationRow(p predicate, format string) string {
	return "`" + p.typ + "`, " + attFormatLabel(format)
}

func attFormatLabel(format string) string {
	if format == formatLegacy {
		return "tag scheme `.att`"
	}
	return formatLabel(format)
}

// summaryRow is the row of an attestation image's SBOM and provenance summary.
func summaryRow(format string) string {
	return "all five on one image, " + attFormatLabel(format) + ": `sbom.formats`, `provenance`"
}

// wantAttFormat is the attestation format the provider reports for what the CLI wrote.
var wantAttFormat = map[string]string{formatLegacy: "cosign", formatBundle: "bundle"}

func testdata(t *testing.T, file string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// vulnPredicate writes cosign's vuln predicate around testdata/trivy-report.json, scanned a
// minute ago (the provider refuses scans from the future beyond its clock skew).
func vulnPredicate(t *testing.T) string {
	t.Helper()
	report, err := os.ReadFile(testdata(t, "trivy-report.json"))
	if err != nil {
		t.Fatal(err)
	}
	finished := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	pred := map[string]any{
		"invocation": map[string]any{"parameters": nil, "uri": "https://github.com/bank/payments/actions/runs/9182736450",
			"event_id": "9182736450", "builder.id": "github-actions"},
		"scanner": map[string]any{"uri": "pkg:github/aquasecurity/trivy@v0.62.1", "version": "0.62.1",
			"db": map[string]any{"uri": "", "version": "2"}, "result": json.RawMessage(report)},
		"metadata": map[string]any{"scanStartedOn": finished.Add(-30 * time.Second), "scanFinishedOn": finished},
	}
	b, err := json.Marshal(pred)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "vuln.json")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func (p predicate) path(t *testing.T) string {
	if p.file == "" {
		return vulnPredicate(t)
	}
	return testdata(t, p.file)
}

// attestations: one signed image carrying every predicate, per format.
func (s *suite) attestations(t *testing.T, c *cli, r *registry) {
	for _, f := range []string{formatLegacy, formatBundle} {
		t.Run("attest/"+f, func(t *testing.T) {
			k := s.keys[c]["p256"]
			auth := keyAuthority(c, "p256")
			d := r.push(t, prefix(c)+"/p256/attest-"+f, "v1")
			c.sign(t, k, d.String(), f)
			var want []attestation
			for _, p := range predicates {
				c.attest(t, k, d.String(), f, p.typ, p.path(t))
				want = append(want, attestation{Authority: auth, PredicateType: p.predicateType, Format: wantAttFormat[f]})
			}
			a := s.p.verify(t, d.String())
			ch := newCheck(t, fmt.Sprintf("cosign %s attest, %s format, %s", c.name, f, r.mode), a.raw)
			ch.eq("signed", a.Signed, true)
			ch.signatures(a.Signatures, signature{Authority: auth, KeyID: k.keyID, Algorithm: k.algorithm, Verified: true, Format: wantFormat[f]})
			ch.attestations(a.Attestations, want...)
			ch.eq("sbom.formats", a.SBOM.Formats, []string{"cyclonedx", "spdx"})
			ch.eq("sbom.unverified", len(a.SBOM.Unverified), 0)
			ch.provenance(a.Provenance, provenance{
				BuilderID:     "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v2.1.0",
				SourceURI:     "git+https://github.com/bank/payments@refs/tags/v1.4.2",
				BuildType:     "https://github.com/slsa-framework/slsa-github-generator/generic@v1",
				PredicateType: "https://slsa.dev/provenance/v0.2", Authority: auth,
			}, provenance{
				BuilderID:     "https://github.com/actions/runner/github-hosted",
				SourceURI:     "https://github.com/bank/payments",
				BuildType:     "https://actions.github.io/buildtypes/workflow/v1",
				PredicateType: "https://slsa.dev/provenance/v1", Authority: auth,
			})
			// A second provider, with its own empty cache, reads the same referrers again, which
			// the registry lists in another order: the answer must be the same bytes.
			if again := s.p2.verify(t, d.String()); string(again.raw) != string(a.raw) {
				ch.errorf("a second provider answered differently:\n%s", again.raw)
			}
			if n := r.referrerOrders(d); f == formatBundle && n < 2 {
				ch.errorf("the registry served the referrers of %s in %d order(s), want several: the comparison proves nothing", d.DigestStr(), n)
			}
			ch.rejected(a.Rejected)
			ch.done()
			s.statements(t, c, r, d.DigestStr(), d.String(), auth, f)
			for _, p := range predicates {
				out := "**not verified**"
				for _, at := range a.Attestations {
					if at.PredicateType == p.predicateType {
						out = fmt.Sprintf("verified, `%s` (%s)", at.PredicateType, at.Format)
					}
				}
				s.m.record(t, tableAttestations, attestationRow(p, f), c, r, out)
			}
			var provs []provenance
			_ = json.Unmarshal(a.Provenance, &provs)
			var types []string
			for _, p := range provs {
				types = append(types, "`"+p.PredicateType+"`")
			}
			s.m.record(t, tableAttestations, summaryRow(f), c, r, fmt.Sprintf("`sbom.formats` %v; provenance from %s; same bytes from a second provider",
				a.SBOM.Formats, strings.Join(types, " and ")))
		})
	}
}

// statements: /v1/attestations returns every verified statement of the image with its decoded
// predicate, as user-written templates read it.
func (s *suite) statements(t *testing.T, c *cli, r *registry, digest, ref, auth, f string) {
	t.Helper()
	it := s.p.lookup(t, "/v1/attestations", ref)[ref]
	if it.Error != "" {
		t.Fatalf("/v1/attestations %s: error %q", ref, it.Error)
	}
	var v struct {
		Digest     string `json:"digest"`
		Statements []struct {
			Authority     string `json:"authority"`
			Format        string `json:"format"`
			Type          string `json:"_type"`
			PredicateType string `json:"predicateType"`
			Subjects      []struct {
				Digest map[string]string `json:"digest"`
			} `json:"subjects"`
			Predicate map[string]any `json:"predicate"`
			Truncated bool           `json:"truncated"`
		} `json:"statements"`
		StatementsTotal int         `json:"statementsTotal"`
		Truncated       bool        `json:"truncated"`
		Rejected        []rejection `json:"rejected"`
	}
	if err := json.Unmarshal(it.Value, &v); err != nil {
		t.Fatalf("/v1/attestations %s: decoding %s: %v", ref, it.Value, err)
	}
	ch := newCheck(t, fmt.Sprintf("cosign %s attest, %s format, %s: /v1/attestations", c.name, f, r.mode), it.Value)
	ch.eq("digest", v.Digest, digest)
	ch.eq("truncated", v.Truncated, false)
	ch.eq("statementsTotal", v.StatementsTotal, len(v.Statements))
	ch.rejected(v.Rejected)
	wantFormat := map[string]string{formatLegacy: "dsse", formatBundle: "bundle"}[f]
	hex := strings.TrimPrefix(digest, "sha256:")
	found := 0
	for _, p := range predicates {
		n := 0
		for i, st := range v.Statements {
			if st.PredicateType != p.predicateType {
				continue
			}
			n++
			at := fmt.Sprintf("statements[%d] (%s)", i, p.typ)
			ch.eq(at+".authority", st.Authority, auth)
			ch.eq(at+".format", st.Format, wantFormat)
			ch.eq(at+".truncated", st.Truncated, false)
			if !strings.HasPrefix(st.Type, "https://in-toto.io/Statement/") {
				ch.errorf("%s._type = %q, want an in-toto statement type", at, st.Type)
			}
			if len(st.Subjects) != 1 || st.Subjects[0].Digest["sha256"] != hex {
				ch.errorf("%s.subjects = %+v, want this digest", at, st.Subjects)
			}
			ch.eq(at+".predicate."+p.field, lookupPath(st.Predicate, p.field), p.value)
		}
		if n != 1 {
			ch.errorf("%d statements of predicate type %s, want 1", n, p.predicateType)
		}
		found += n
	}
	if found != len(v.Statements) {
		ch.errorf("%d statements, want the %d attested", len(v.Statements), found)
	}
	ch.done()
	s.m.record(t, tableAttestations, statementsRow(f), c, r, fmt.Sprintf("%d statements, predicates decoded (format `%s`)", len(v.Statements), wantFormat))
}

// statementsRow is the row of an attestation image's /v1/attestations answer.
func statementsRow(format string) string {
	return "all five on one image, " + attFormatLabel(format) + ": `/v1/attestations`"
}

// lookupPath follows a dotted path of object keys ("builder.id": builder, then id).
func lookupPath(m map[string]any, path string) any {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		o, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = o[k]
	}
	return cur
}

// scan: a vuln attestation of a Trivy report, signed by a scanner authority, read by /v1/scan.
func (s *suite) scan(t *testing.T, c *cli, r *registry) {
	for _, f := range []string{formatLegacy, formatBundle} {
		t.Run("scan/"+f, func(t *testing.T) {
			d := r.push(t, prefix(c)+"/scan/"+f, "v1")
			c.attest(t, s.keys[c]["p256"], d.String(), f, "vuln", vulnPredicate(t))
			a := s.p.scan(t, d.String())
			ch := newCheck(t, fmt.Sprintf("cosign %s attest --type vuln, %s format, %s: /v1/scan", c.name, f, r.mode), a.raw)
			ch.eq("digest", a.Digest, d.DigestStr())
			ch.eq("scanned", a.Scanned, true)
			ch.eq("source", a.Source, "attestation")
			ch.eq("format", a.Format, "cosign-vuln/trivy")
			ch.eq("authority", a.Authority, prefix(c)+"-scanner")
			ch.eq("signed", a.Signed, true)
			ch.eq("counts", a.Counts, map[string]int{"CRITICAL": 1, "HIGH": 1, "MEDIUM": 1, "LOW": 0, "UNKNOWN": 0})
			ch.eq("fixableCounts", a.Fixable, map[string]int{"CRITICAL": 1, "HIGH": 1, "MEDIUM": 0, "LOW": 0, "UNKNOWN": 0})
			ch.eq("findingsTotal", a.FindingsTotal, 3)
			if a.Scanner == nil {
				ch.errorf("scanner is missing")
			} else {
				ch.eq("scanner.name", a.Scanner.Name, "trivy")
				ch.eq("scanner.version", a.Scanner.Version, "0.62.1")
			}
			ch.eq("rejected", len(a.Rejected), 0)
			ch.done()
			row := rowScanLegacy
			if f == formatBundle {
				row = rowScanBundle
			}
			out := "**not scanned**"
			if a.Scanned {
				out = fmt.Sprintf("scanned, `%s`, signed by the scanner authority, %d findings", a.Format, a.FindingsTotal)
			}
			s.m.record(t, tableOther, row, c, r, out)
		})
	}
}

// attachedSBOMs: `cosign attach sbom` uploads an SBOM without signing it: listed under
// sbom.unverified with its format, never counted as present.
func (s *suite) attachedSBOMs(t *testing.T, c *cli, r *registry) {
	for _, x := range []struct{ format, typ, file, row string }{
		{formatLegacy, "spdx", "sbom.spdx.json", rowSBOMTag},
		{formatOCI11, "cyclonedx", "sbom.cdx.json", rowSBOMReferrer},
	} {
		t.Run("attach-sbom/"+x.format, func(t *testing.T) {
			d := r.push(t, prefix(c)+"/p256/sbom-"+x.format, "v1")
			c.attachSBOM(t, d.String(), x.format, x.typ, testdata(t, x.file))
			a := s.p.verify(t, d.String())
			ch := newCheck(t, fmt.Sprintf("cosign %s attach sbom, %s, %s", c.name, x.format, r.mode), a.raw)
			ch.eq("signed", a.Signed, false)
			ch.eq("sbom.formats", a.SBOM.Formats, []string{})
			if len(a.SBOM.Unverified) != 1 {
				ch.errorf("sbom.unverified has %d entries, want 1", len(a.SBOM.Unverified))
			} else {
				u := a.SBOM.Unverified[0]
				ch.eq("sbom.unverified[0].format", u.Format, x.typ)
				ch.eq("sbom.unverified[0].verified", u.Verified, false)
				if u.Digest == "" {
					ch.errorf("sbom.unverified[0].digest is empty")
				}
				if x.format == formatOCI11 {
					ch.eq("sbom.unverified[0].artifactType", u.ArtifactType, "application/vnd.dev.cosign.artifact.sbom.v1+json")
				} else {
					ch.eq("sbom.unverified[0].tag", u.Tag, tagFor(d, ".sbom").TagStr())
				}
			}
			ch.rejected(a.Rejected)
			ch.done()
			out := "**not listed**"
			if len(a.SBOM.Unverified) > 0 {
				out = fmt.Sprintf("listed under `sbom.unverified` as `%s`, not verified; `sbom.formats` %v", a.SBOM.Unverified[0].Format, a.SBOM.Formats)
			}
			s.m.record(t, tableOther, x.row, c, r, out)
		})
	}
}
