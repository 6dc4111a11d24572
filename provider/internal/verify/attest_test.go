package verify

import (
	"slices"
	"strings"
	"testing"

	cmutate "github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	cstatic "github.com/sigstore/cosign/v2/pkg/oci/static"
)

var (
	slsa02Predicate = map[string]any{
		"builder":    map[string]any{"id": "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/builder_go_slsa3.yml@refs/tags/v1.9.0"},
		"buildType":  "https://github.com/slsa-framework/slsa-github-generator/go@v1",
		"invocation": map[string]any{"configSource": map[string]any{"uri": "git+https://github.com/bank/app@refs/heads/main"}},
	}
	slsa1Predicate = map[string]any{
		"buildDefinition": map[string]any{
			"buildType":          "https://actions.github.io/buildtypes/workflow/v1",
			"externalParameters": map[string]any{"workflow": map[string]any{"repository": "https://github.com/bank/app", "path": ".github/workflows/release.yml"}},
		},
		"runDetails": map[string]any{"builder": map[string]any{"id": "https://github.com/actions/runner/github-hosted"}},
	}
)

func TestAttestationKinds(t *testing.T) {
	e := newEnv(t)
	k := newKey(t, "ecdsa")
	s := newService(t, e, keyAuthorityCfg("ci", k))

	tests := []struct {
		name          string
		version       string
		predicateType string
		predicate     any
		bundle        bool
		check         func(t *testing.T, v *Value)
	}{{
		name: "SLSA v0.2", version: "v0.1", predicateType: slsaV02, predicate: slsa02Predicate,
		check: func(t *testing.T, v *Value) {
			want := Provenance{BuilderID: "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/builder_go_slsa3.yml@refs/tags/v1.9.0",
				SourceURI: "git+https://github.com/bank/app@refs/heads/main", BuildType: "https://github.com/slsa-framework/slsa-github-generator/go@v1", PredicateType: slsaV02, Authority: "ci"}
			if len(v.Provenance) != 1 || v.Provenance[0] != want {
				t.Errorf("provenance = %+v, want [%+v]", v.Provenance, want)
			}
		},
	}, {
		name: "SLSA v1", version: "v1", predicateType: slsaV1, predicate: slsa1Predicate,
		check: func(t *testing.T, v *Value) {
			want := Provenance{BuilderID: "https://github.com/actions/runner/github-hosted", SourceURI: "https://github.com/bank/app",
				BuildType: "https://actions.github.io/buildtypes/workflow/v1", PredicateType: slsaV1, Authority: "ci"}
			if len(v.Provenance) != 1 || v.Provenance[0] != want {
				t.Errorf("provenance = %+v, want [%+v]", v.Provenance, want)
			}
		},
	}, {
		name: "SPDX", version: "v0.1", predicateType: "https://spdx.dev/Document", predicate: map[string]any{"spdxVersion": "SPDX-2.3", "name": "app"},
		check: func(t *testing.T, v *Value) {
			if !slices.Equal(v.SBOM.Formats, []string{"spdx"}) {
				t.Errorf("sbom = %+v, want formats [spdx]", v.SBOM)
			}
		},
	}, {
		name: "CycloneDX as bundle", version: "v1", predicateType: "https://cyclonedx.org/bom", predicate: map[string]any{"bomFormat": "CycloneDX", "specVersion": "1.5"}, bundle: true,
		check: func(t *testing.T, v *Value) {
			if !slices.Equal(v.SBOM.Formats, []string{"cyclonedx"}) {
				t.Errorf("sbom = %+v, want formats [cyclonedx]", v.SBOM)
			}
		},
	}, {
		name: "custom predicate", version: "v1", predicateType: "https://bank.example/attestations/pentest/v1", predicate: map[string]any{"passed": true},
		check: func(t *testing.T, v *Value) {
			if len(v.SBOM.Formats) != 0 || len(v.Provenance) != 0 {
				t.Errorf("sbom/provenance = %+v / %+v, want neither for a custom predicate", v.SBOM, v.Provenance)
			}
		},
	}}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			repo := "att" + string(rune('a'+i))
			d := e.push(t, repo, "v1")
			stmt := statementJSON(t, tc.version, d.Context().String(), d.DigestStr(), tc.predicateType, tc.predicate)
			format := "cosign"
			if tc.bundle {
				attachKeyBundle(t, d, k, stmt, tc.predicateType)
				format = "bundle"
			} else {
				attachAtt(t, d, dsseSign(t, k, stmt))
			}
			v := verifyOne(t, s, d.String())
			want := Attestation{Authority: "ci", PredicateType: tc.predicateType, Format: format}
			if len(v.Attestations) != 1 || v.Attestations[0] != want {
				t.Fatalf("attestations = %+v, want [%+v] (value %s)", v.Attestations, want, dump(v))
			}
			if v.Signed {
				t.Errorf("signed = true, want false: an attestation is not a signature")
			}
			tc.check(t, v)
		})
	}
}

func TestAttestationAttacks(t *testing.T) {
	e := newEnv(t)
	k, other := newKey(t, "ecdsa"), newKey(t, "ed25519")
	s := newService(t, e, keyAuthorityCfg("ci", k))

	t.Run("subject is another image", func(t *testing.T) {
		a, b := e.push(t, "subj-a", "v1"), e.push(t, "subj-b", "v1")
		attachAtt(t, a, dsseSign(t, k, statementJSON(t, "v1", "b", b.DigestStr(), slsaV1, slsa1Predicate)))
		attachKeyBundle(t, a, k, statementJSON(t, "v1", "b", b.DigestStr(), cosignSignPredicate, map[string]any{}), cosignSignPredicate)
		v := verifyOne(t, s, a.String())
		if len(v.Attestations) != 0 || len(v.Provenance) != 0 || v.Signed {
			t.Fatalf("Verify() = %s, want no attestation, no provenance, unsigned", dump(v))
		}
		n := 0
		for _, r := range v.Rejected {
			if strings.Contains(r.Reason, "is not this image") {
				n++
			}
		}
		if n != 2 {
			t.Errorf("rejected = %+v, want 2 'is not this image' reasons", v.Rejected)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		d := e.push(t, "att-wrongkey", "v1")
		attachAtt(t, d, dsseSign(t, other, statementJSON(t, "v1", "x", d.DigestStr(), "https://spdx.dev/Document", map[string]any{})))
		v := verifyOne(t, s, d.String())
		if len(v.Attestations) != 0 || len(v.SBOM.Formats) != 0 {
			t.Errorf("Verify() = %s, want no attestation and no SBOM", dump(v))
		}
	})
	t.Run("unsigned SBOM referrer is reported, not verified", func(t *testing.T) {
		d := e.push(t, "sbom-referrer", "v1")
		attachReferrer(t, d, "application/spdx+json", []byte(`{"spdxVersion":"SPDX-2.3"}`))
		v := verifyOne(t, s, d.String())
		if len(v.SBOM.Formats) != 0 {
			t.Errorf("sbom = %+v, want no verified format for an unsigned referrer", v.SBOM)
		}
		if len(v.SBOM.Unverified) != 1 || v.SBOM.Unverified[0].Format != "spdx" || v.SBOM.Unverified[0].Verified {
			t.Errorf("sbom.unverified = %+v, want one unverified spdx", v.SBOM.Unverified)
		}
	})
	t.Run("malformed and oversized envelopes", func(t *testing.T) {
		d := e.push(t, "att-malformed", "v1")
		attachAtt(t, d, []byte(`{"payloadType":"application/vnd.in-toto+json","payload":"!!!","signatures":[]}`))
		big := make([]byte, 5<<20)
		for i := range big {
			big[i] = 'a'
		}
		attachAtt(t, d, append(append([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"`), big...), []byte(`","signatures":[]}`)...))
		v := verifyOne(t, s, d.String())
		if len(v.Attestations) != 0 {
			t.Fatalf("attestations = %+v, want none", v.Attestations)
		}
		var malformed, oversized bool
		for _, r := range v.Rejected {
			malformed = malformed || strings.Contains(r.Reason, "malformed DSSE payload")
			oversized = oversized || strings.Contains(r.Reason, "exceeds the 4194304-byte cap")
		}
		if !malformed || !oversized {
			t.Errorf("rejected = %+v, want a malformed and an oversized reason", v.Rejected)
		}
	})
}

// TestInTotoReferrer: an attestation published as an in-toto OCI referrer (cosign's
// WriteAttestationsReferrer) verifies like a tag-scheme one; its format is "referrer".
func TestInTotoReferrer(t *testing.T) {
	e := newEnv(t)
	k := newKey(t, "ecdsa")
	s := newService(t, e, keyAuthorityCfg("ci", k))
	d := e.push(t, "intoto-referrer", "v1")
	att, err := cstatic.NewAttestation(dsseSign(t, k, statementJSON(t, "v1", "x", d.DigestStr(), slsaV02, slsa02Predicate)))
	if err != nil {
		t.Fatal(err)
	}
	se, err := ociremote.SignedEntity(d)
	if err != nil {
		t.Fatal(err)
	}
	se, err = cmutate.AttachAttestationToEntity(se, att)
	if err != nil {
		t.Fatal(err)
	}
	if err := ociremote.WriteAttestationsReferrer(d, se); err != nil {
		t.Fatalf("WriteAttestationsReferrer() = %v", err)
	}
	v := verifyOne(t, s, d.String())
	want := Attestation{Authority: "ci", PredicateType: slsaV02, Format: "referrer"}
	if len(v.Attestations) != 1 || v.Attestations[0] != want || len(v.Provenance) != 1 {
		t.Errorf("Verify() = %s, want the SLSA v0.2 attestation as a referrer", dump(v))
	}
}
