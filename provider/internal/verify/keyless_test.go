package verify

import (
	"strings"
	"testing"
	"time"
)

const (
	ghIssuer   = "https://token.actions.githubusercontent.com"
	ciIdentity = "ci@bank.example"
)

func TestKeyless(t *testing.T) {
	e := newEnv(t)
	ss := newSigstore(t)
	s := newService(t, e,
		ss.authority("ci", ghIssuer, ciIdentity, true),
	)

	t.Run("tag scheme with Rekor bundle", func(t *testing.T) {
		d := e.push(t, "keyless-tag", "v1")
		ss.signKeyless(t, d, ciIdentity, ghIssuer, time.Time{}, true)
		v := verifyOne(t, s, d.String())
		if !v.Signed || sigAuthorities(v) != "ci/cosign" {
			t.Fatalf("Verify() = %s, want ci/cosign", dump(v))
		}
		if got := v.Signatures[0]; got.Issuer != ghIssuer || got.Subject != ciIdentity {
			t.Errorf("signature issuer/subject = %q/%q, want %q/%q", got.Issuer, got.Subject, ghIssuer, ciIdentity)
		}
	})
	t.Run("bundle referrer", func(t *testing.T) {
		d := e.push(t, "keyless-bundle", "v1")
		ss.bundleKeyless(t, d, ciIdentity, ghIssuer, statementJSON(t, "v1", "x", d.DigestStr(), cosignSignPredicate, map[string]any{}), cosignSignPredicate)
		ss.bundleKeyless(t, d, ciIdentity, ghIssuer, statementJSON(t, "v1", "x", d.DigestStr(), slsaV1, slsa1Predicate), slsaV1)
		v := verifyOne(t, s, d.String())
		if !v.Signed || sigAuthorities(v) != "ci/bundle" {
			t.Fatalf("Verify() = %s, want ci/bundle", dump(v))
		}
		if len(v.Provenance) != 1 || v.Provenance[0].SourceURI != "https://github.com/bank/app" {
			t.Errorf("provenance = %+v, want present from github.com/bank/app", v.Provenance)
		}
	})

	t.Run("tag-scheme attestation", func(t *testing.T) {
		d := e.push(t, "keyless-att", "v1")
		ss.attestKeyless(t, d, ciIdentity, ghIssuer, statementJSON(t, "v0.1", "x", d.DigestStr(), "https://spdx.dev/Document", map[string]any{"spdxVersion": "SPDX-2.3"}))
		other := e.push(t, "keyless-att-other", "v1")
		ss.attestKeyless(t, d, ciIdentity, ghIssuer, statementJSON(t, "v1", "x", other.DigestStr(), slsaV1, slsa1Predicate))
		ss.attestKeyless(t, d, "mallory@evil.example", ghIssuer, statementJSON(t, "v1", "x", d.DigestStr(), slsaV1, slsa1Predicate))
		v := verifyOne(t, s, d.String())
		want := Attestation{Authority: "ci", PredicateType: "https://spdx.dev/Document", Format: "cosign"}
		if len(v.Attestations) != 1 || v.Attestations[0] != want || len(v.SBOM.Formats) != 1 || len(v.Provenance) != 0 {
			t.Fatalf("Verify() = %s, want only the SPDX attestation (other subject and other identity rejected)", dump(v))
		}
		if len(v.Rejected) != 2 {
			t.Errorf("rejected = %+v, want 2 (subject of another image, identity mismatch)", v.Rejected)
		}
	})

	attacks := []struct {
		name   string
		reason string
	}{{
		name:   "identity mismatch",
		reason: "expected SAN value",
	}, {
		name:   "issuer mismatch",
		reason: "expected issuer value",
	}, {
		name:   "certificate outside validity at log time",
		reason: "integrated time outside certificate validity",
	}, {
		name:   "no log entry while required",
		reason: "not enough verified log entries",
	}}
	for _, tc := range attacks {
		t.Run(tc.name, func(t *testing.T) {
			d := e.push(t, "keyless-attack-"+strings.ReplaceAll(tc.name, " ", "-"), "v1")
			switch tc.name {
			case "identity mismatch":
				ss.signKeyless(t, d, "mallory@evil.example", ghIssuer, time.Time{}, true)
			case "issuer mismatch":
				ss.signKeyless(t, d, ciIdentity, "https://accounts.evil.example", time.Time{}, true)
			case "certificate outside validity at log time":
				// Logged an hour after the 10-minute certificate expired.
				ss.signKeyless(t, d, ciIdentity, ghIssuer, time.Now().Add(70*time.Minute), true)
			case "no log entry while required":
				ss.signKeyless(t, d, ciIdentity, ghIssuer, time.Time{}, false)
			}
			v := verifyOne(t, s, d.String())
			if v.Signed {
				t.Fatalf("Verify(%s) = %s, want signed=false", tc.name, dump(v))
			}
			if len(v.Rejected) == 0 || !strings.Contains(v.Rejected[0].Reason, tc.reason) {
				t.Errorf("Verify(%s).rejected = %+v, want a reason containing %q", tc.name, v.Rejected, tc.reason)
			}
		})
	}

	t.Run("tlog optional: certificate valid now is enough", func(t *testing.T) {
		s2 := newService(t, e, ss.authority("ci-notlog", ghIssuer, ciIdentity, false))
		d := e.push(t, "keyless-notlog", "v1")
		ss.signKeyless(t, d, ciIdentity, ghIssuer, time.Time{}, false)
		v := verifyOne(t, s2, d.String())
		if !v.Signed {
			t.Fatalf("Verify() = %s, want signed with requireTlog=false and a currently valid certificate", dump(v))
		}
		// Outside validity at log time and no other proof: rejected even with tlog optional,
		// because the SET is checked whenever present.
		d2 := e.push(t, "keyless-notlog-expired", "v1")
		ss.signKeyless(t, d2, ciIdentity, ghIssuer, time.Now().Add(70*time.Minute), true)
		v = verifyOne(t, s2, d2.String())
		if v.Signed {
			t.Errorf("Verify(cert outside validity at log time, tlog optional) = %s, want signed=false", dump(v))
		}
	})
}
