//go:build interop

package interop

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// predicate is one `cosign attest --type` and the predicate file it signs.
type predicate struct {
	// typ is the --type value, file the predicate in testdata ("" for vuln: made per run).
	typ, file string
	// predicateType is what cosign writes in the statement.
	predicateType string
}

var predicates = []predicate{
	{"slsaprovenance02", "slsa-v0.2.json", "https://slsa.dev/provenance/v0.2"},
	{"slsaprovenance1", "slsa-v1.json", "https://slsa.dev/provenance/v1"},
	{"spdxjson", "sbom.spdx.json", "https://spdx.dev/Document"},
	{"cyclonedx", "sbom.cdx.json", "https://cyclonedx.org/bom"},
	{"vuln", "", "https://cosign.sigstore.dev/attestation/vuln/v1"},
}

func attestationRow(p predicate, format string) string {
	return "`" + p.typ + "`, " + formatLabel(format)
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
			// A second provider, with its own empty cache, reads the same referrers again (the
			// registry lists them in no fixed order): the answer must be the same bytes.
			if again := s.p2.verify(t, d.String()); string(again.raw) != string(a.raw) {
				ch.errorf("a second provider answered differently:\n%s", again.raw)
			}
			ch.await(fixLists)
			ch.rejected(a.Rejected)
			ch.done()
			for _, p := range predicates {
				out := "**not verified**"
				for _, at := range a.Attestations {
					if at.PredicateType == p.predicateType {
						out = fmt.Sprintf("verified, `%s` (%s)", at.PredicateType, at.Format)
					}
				}
				s.m.record(t, tableAttestations, attestationRow(p, f), c, r, out)
			}
		})
	}
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
			ch.await(fixSBOMs)
			ch.done()
			out := "**not listed**"
			if len(a.SBOM.Unverified) > 0 {
				out = fmt.Sprintf("listed under `sbom.unverified` as `%s`; verified SBOM formats: %v", a.SBOM.Unverified[0].Format, a.SBOM.Formats)
			}
			s.m.record(t, tableOther, x.row, c, r, out)
			ch.skipIfAwaiting()
		})
	}
}
