//go:build interop

package interop

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/imagetrust/imagetrust/provider/internal/config"
)

// suite is one run: both CLIs, both registries, each CLI's keys, and one provider whose
// authorities cover them.
type suite struct {
	clis []*cli
	regs []*registry
	keys map[*cli]map[string]*key
	p    *provider
	// p2 is a second provider on the same configuration, with its own cache: what both
	// answer for one image must be the same bytes.
	p2 *provider
	m  *matrix
}

// prefix is the repository prefix of c's images ("cosign2"); every authority name starts with
// it too.
func prefix(c *cli) string { return fmt.Sprintf("cosign%d", c.major) }

// keyAuthority is the authority of c's key of kind: images under <prefix>/<kind>/.
func keyAuthority(c *cli, kind string) string { return prefix(c) + "-" + kind }

// TestCosignInterop signs and attests with both CLIs, in both registries, and asserts what the
// provider answers; then it checks the matrix in docs/cosign-interop.md.
func TestCosignInterop(t *testing.T) {
	s := &suite{
		clis: []*cli{newCLI(t, "COSIGN_V2", "v2.6.5", 2), newCLI(t, "COSIGN_V3", "v3.1.3", 3)},
		regs: []*registry{newRegistry(t, true, 1), newRegistry(t, false, 2)},
		keys: map[*cli]map[string]*key{},
	}
	s.m = newMatrix(s.clis, s.regs)
	s.declareTables()
	dir := t.TempDir()
	stranger := filepath.Join(dir, "stranger.pub")
	writePublicKey(t, stranger, generateKey(t, "p256"))

	var authorities, scanners []config.Authority
	for _, c := range s.clis {
		s.keys[c] = map[string]*key{}
		for _, kind := range keyKinds {
			k := c.makeKey(t, kind, dir)
			s.keys[c][kind] = k
			authorities = append(authorities, authority(keyAuthority(c, kind), prefix(c)+"/"+kind, k.pub, s.regs))
		}
		p256 := s.keys[c]["p256"].pub
		rec := authority(prefix(c)+"-recursive", prefix(c)+"/recursive", p256, s.regs)
		rec.VerifyPlatforms = true
		authorities = append(authorities, rec,
			// A key the CLIs never saw: everything under wrong-key/ is signed with another.
			authority(prefix(c)+"-stranger", prefix(c)+"/wrong-key", stranger, s.regs))
		scanners = append(scanners, authority(prefix(c)+"-scanner", prefix(c)+"/scan", p256, s.regs))
	}
	s.p = startProvider(t, s.regs, authorities, scanners)
	s.p2 = startProvider(t, s.regs, authorities, scanners)

	t.Run("cases", func(t *testing.T) {
		for _, c := range s.clis {
			for _, r := range s.regs {
				t.Run(column(c, r), func(t *testing.T) {
					t.Parallel()
					s.signatures(t, c, r)
					s.recursive(t, c, r)
					s.attestations(t, c, r)
					s.scan(t, c, r)
					s.attachedSBOMs(t, c, r)
					s.transplants(t, c, r)
					s.wrongKey(t, c, r)
					s.unsigned(t, c, r)
				})
			}
		}
	})
	if t.Failed() && !writeDoc() {
		t.Log("the matrix in " + docFile + " is not checked: cases failed")
		return
	}
	s.m.checkDoc(t)
}

// Matrix tables.
const (
	tableSignatures   = "Signatures"
	tableAttestations = "Attestations"
	tableOther        = "Multi-arch, SBOM attachments, scans and attacks"
)

func keyLabel(kind string) string {
	return map[string]string{
		"p256":    "ECDSA P-256 (generate-key-pair)",
		"p384":    "ECDSA P-384 (import-key-pair)",
		"p521":    "ECDSA P-521 (import-key-pair)",
		"rsa":     "RSA 3072 (import-key-pair)",
		"ed25519": "Ed25519 (import-key-pair)",
	}[kind]
}

func formatLabel(format string) string {
	return map[string]string{
		formatLegacy: "tag scheme `.sig`",
		formatBundle: "bundle (`--new-bundle-format`)",
		formatOCI11:  "OCI 1.1 referrer (`--registry-referrers-mode=oci-1-1`)",
	}[format]
}

func signatureRow(kind, format string) string { return keyLabel(kind) + ", " + formatLabel(format) }

func (s *suite) declareTables() {
	var rows []string
	for _, kind := range keyKinds {
		for _, f := range signFormats {
			rows = append(rows, signatureRow(kind, f))
		}
	}
	s.m.section(tableSignatures, "key, format", rows...)
	rows = nil
	for _, f := range []string{formatLegacy, formatBundle} {
		for _, p := range predicates {
			rows = append(rows, attestationRow(p, f))
		}
		rows = append(rows, summaryRow(f), statementsRow(f))
	}
	s.m.section(tableAttestations, "`cosign attest --type`, format (ECDSA P-256 key)", rows...)
	s.m.section(tableOther, "case", otherRows...)
}
