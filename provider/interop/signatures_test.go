//go:build interop

package interop

import (
	"fmt"
	"strings"
	"testing"
)

// wantFormat is the signature format the provider reports for what the CLI wrote in format.
var wantFormat = map[string]string{formatLegacy: "cosign", formatBundle: "bundle", formatOCI11: "referrer"}

// signatures: every key type in every format, each on its own image.
func (s *suite) signatures(t *testing.T, c *cli, r *registry) {
	for _, kind := range keyKinds {
		for _, f := range signFormats {
			t.Run("sign/"+kind+"/"+f, func(t *testing.T) {
				k := s.keys[c][kind]
				d := r.push(t, prefix(c)+"/"+kind+"/sign-"+f, "v1")
				c.sign(t, k, d.String(), f)
				a := s.p.verify(t, d.String())
				ch := newCheck(t, fmt.Sprintf("cosign %s sign %s key, %s format, %s", c.name, kind, f, r.mode), a.raw)
				ch.eq("digest", a.Digest, d.DigestStr())
				ch.eq("signed", a.Signed, true)
				ch.signatures(a.Signatures, signature{Authority: keyAuthority(c, kind), KeyID: k.keyID,
					Algorithm: k.algorithm, Verified: true, Format: wantFormat[f]})
				ch.attestations(a.Attestations)
				ch.rejected(a.Rejected)
				ch.eq("sbom.formats", a.SBOM.Formats, []string{})
				ch.provenance(a.Provenance)
				ch.done()
				s.m.record(t, tableSignatures, signatureRow(kind, f), c, r, signatureOutcome(a))
			})
		}
	}
}

// signatureOutcome is the matrix cell of a signature case (nothing run-specific: the doc is
// compared byte for byte).
func signatureOutcome(a *answer) string {
	if a.Signed {
		var parts []string
		for _, sg := range a.Signatures {
			parts = append(parts, fmt.Sprintf("`%s` (%s)", sg.Algorithm, sg.Format))
		}
		return "verified " + strings.Join(parts, ", ")
	}
	return "**not verified**" + rejectedOutcome(a.Rejected)
}

func rejectedOutcome(rs []rejection) string {
	if len(rs) == 0 {
		return ", nothing rejected"
	}
	var kinds []string
	for _, r := range rs {
		kinds = append(kinds, "`"+r.Kind+"`")
	}
	return ", rejected: " + strings.Join(kinds, ", ")
}

// Rows of the "other" table.
const (
	rowRecursiveLegacy  = "`sign --recursive` on a two-platform index, tag scheme"
	rowRecursiveBundle  = "`sign --recursive` on a two-platform index, bundle"
	rowSBOMTag          = "`attach sbom --type spdx`, `.sbom` tag (unsigned)"
	rowSBOMReferrer     = "`attach sbom --type cyclonedx`, OCI 1.1 referrer (unsigned)"
	rowScanLegacy       = "`attest --type vuln` (Trivy report) read by `/v1/scan`, tag scheme"
	rowScanBundle       = "`attest --type vuln` (Trivy report) read by `/v1/scan`, bundle"
	rowTransplantSig    = "transplant: `.sig` copied to another image's tag"
	rowTransplantBundle = "transplant: signature bundle referrer re-pointed at another image"
	rowTransplantAtt    = "transplant: `.att` copied to another image's tag"
	rowWrongKeyLegacy   = "wrong key, tag scheme"
	rowWrongKeyBundle   = "wrong key, bundle"
	rowUnsigned         = "unsigned image"
)

var otherRows = []string{rowRecursiveLegacy, rowRecursiveBundle, rowSBOMTag, rowSBOMReferrer,
	rowScanLegacy, rowScanBundle, rowTransplantSig, rowTransplantBundle, rowTransplantAtt,
	rowWrongKeyLegacy, rowWrongKeyBundle, rowUnsigned}

// recursive: `cosign sign --recursive` on an index signs the index and each platform manifest;
// an authority with verifyPlatforms counts only when all of them verify.
func (s *suite) recursive(t *testing.T, c *cli, r *registry) {
	for _, f := range []string{formatLegacy, formatBundle} {
		t.Run("recursive/"+f, func(t *testing.T) {
			k := s.keys[c]["p256"]
			idx, kids := r.pushIndex(t, prefix(c)+"/recursive/"+f)
			c.sign(t, k, idx.String(), f, "--recursive")
			a := s.p.verify(t, idx.String())
			auth := prefix(c) + "-recursive"
			ch := newCheck(t, fmt.Sprintf("cosign %s sign --recursive, %s format, %s", c.name, f, r.mode), a.raw)
			ch.eq("digest", a.Digest, idx.DigestStr())
			ch.eq("signed", a.Signed, true)
			ch.signatures(a.Signatures, signature{Authority: auth, KeyID: k.keyID, Algorithm: k.algorithm, Verified: true, Format: wantFormat[f]})
			ch.rejected(a.Rejected)
			if len(a.Platforms) != len(kids) {
				ch.errorf("platforms has %d entries, want %d", len(a.Platforms), len(kids))
			} else {
				for i, p := range a.Platforms {
					ch.eq(fmt.Sprintf("platforms[%d].digest", i), p.Digest, kids[i].DigestStr())
					ch.eq(fmt.Sprintf("platforms[%d].verifiedBy", i), p.VerifiedBy, []string{auth})
				}
			}
			ch.done()
			row := rowRecursiveLegacy
			if f == formatBundle {
				row = rowRecursiveBundle
			}
			out := signatureOutcome(a)
			if a.Signed {
				n := 0
				for _, p := range a.Platforms {
					if len(p.VerifiedBy) > 0 {
						n++
					}
				}
				out += fmt.Sprintf("; %d of %d platforms verified (`verifyPlatforms`)", n, len(a.Platforms))
			}
			s.m.record(t, tableOther, row, c, r, out)
		})
	}
}

// wrongKey: signed by the CLI's key, but the image's authority holds another key.
func (s *suite) wrongKey(t *testing.T, c *cli, r *registry) {
	for _, f := range []string{formatLegacy, formatBundle} {
		t.Run("wrong-key/"+f, func(t *testing.T) {
			d := r.push(t, prefix(c)+"/wrong-key/"+f, "v1")
			c.sign(t, s.keys[c]["p256"], d.String(), f)
			a := s.p.verify(t, d.String())
			ch := newCheck(t, fmt.Sprintf("cosign %s, %s format signed with another key, %s", c.name, f, r.mode), a.raw)
			ch.eq("signed", a.Signed, false)
			ch.signatures(a.Signatures)
			ch.attestations(a.Attestations)
			want := rejection{Kind: "signature", Reason: "no configured authority verified it"}
			if f == formatBundle {
				want.Kind = "bundle"
			}
			ch.rejected(a.Rejected, want)
			ch.done()
			row := rowWrongKeyLegacy
			if f == formatBundle {
				row = rowWrongKeyBundle
			}
			s.m.record(t, tableOther, row, c, r, signatureOutcome(a))
		})
	}
}

// unsigned: nothing attached.
func (s *suite) unsigned(t *testing.T, c *cli, r *registry) {
	t.Run("unsigned", func(t *testing.T) {
		d := r.push(t, prefix(c)+"/p256/unsigned", "v1")
		a := s.p.verify(t, d.String())
		ch := newCheck(t, fmt.Sprintf("unsigned image, %s", r.mode), a.raw)
		ch.eq("digest", a.Digest, d.DigestStr())
		ch.eq("signed", a.Signed, false)
		ch.signatures(a.Signatures)
		ch.attestations(a.Attestations)
		ch.rejected(a.Rejected)
		ch.eq("sbom.formats", a.SBOM.Formats, []string{})
		ch.eq("sbom.unverified", len(a.SBOM.Unverified), 0)
		ch.provenance(a.Provenance)
		ch.done()
		s.m.record(t, tableOther, rowUnsigned, c, r, signatureOutcome(a))
	})
}
