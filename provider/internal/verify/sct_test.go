package verify

import (
	"strings"
	"testing"

	ct "github.com/google/certificate-transparency-go"
	ctx509util "github.com/google/certificate-transparency-go/x509util"
)

// TestKeylessSCT runs keyless cosign signatures whose Fulcio certificates carry (or lack)
// RFC 6962 embedded SCTs through Service.Verify with requireSCT on, unset and off.
func TestKeylessSCT(t *testing.T) {
	e := newEnv(t)
	trusted := newCTLog(t)
	untrusted := newCTLog(t)
	// forged names the trusted log but signs with another key.
	forged := &ctLog{key: untrusted.key, id: trusted.id}
	ss := newSCTSigstore(t, trusted)

	on, off := true, false
	svc := map[string]*Service{
		"required": newService(t, e, ss.authority("ci", ghIssuer, ciIdentity, &on)),
		"default":  newService(t, e, ss.authority("ci", ghIssuer, ciIdentity, nil)),
		"optional": newService(t, e, ss.authority("ci", ghIssuer, ciIdentity, &off)),
	}

	from := func(l *ctLog) func([]byte) []*ct.SignedCertificateTimestamp {
		return func(pre []byte) []*ct.SignedCertificateTimestamp {
			return []*ct.SignedCertificateTimestamp{l.sct(t, pre, ss.interCert)}
		}
	}
	// transplanted: the trusted log's SCT for another certificate (same identity).
	other, _ := ss.issue(t, ciIdentity, ghIssuer, from(trusted))
	otherSCTs, err := ctx509util.ParseSCTsFromCertificate(other.Raw)
	if err != nil || len(otherSCTs) != 1 {
		t.Fatalf("ParseSCTsFromCertificate(other) = %d SCTs, %v, want 1, nil", len(otherSCTs), err)
	}
	transplanted := func([]byte) []*ct.SignedCertificateTimestamp { return otherSCTs }

	// sigstore-go skips SCTs it cannot verify (unknown log, bad signature, other certificate)
	// and then finds none left: every failure reads the same.
	const sctFailure = "failed to verify signed certificate timestamp: only able to verify 0 SCT entries"
	tests := []struct {
		name       string
		service    string
		scts       func([]byte) []*ct.SignedCertificateTimestamp
		wantSigned bool
		wantReason string // in a rejection when not signed
	}{{
		name:       "required, valid SCT from the trusted log",
		service:    "required",
		scts:       from(trusted),
		wantSigned: true,
	}, {
		name:    "required, valid SCTs from an untrusted and the trusted log",
		service: "required",
		scts: func(pre []byte) []*ct.SignedCertificateTimestamp {
			return append(from(untrusted)(pre), from(trusted)(pre)...)
		},
		wantSigned: true,
	}, {
		name:       "required, no SCT",
		service:    "required",
		wantReason: sctFailure,
	}, {
		name:       "required, SCT from an untrusted log",
		service:    "required",
		scts:       from(untrusted),
		wantReason: sctFailure,
	}, {
		name:       "required, SCT naming the trusted log signed with another key",
		service:    "required",
		scts:       from(forged),
		wantReason: sctFailure,
	}, {
		name:       "required, trusted log's SCT for another certificate",
		service:    "required",
		scts:       transplanted,
		wantReason: sctFailure,
	}, {
		name:       "unset (default required), no SCT",
		service:    "default",
		wantReason: sctFailure,
	}, {
		name:       "not required, no SCT",
		service:    "optional",
		wantSigned: true,
	}}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := e.push(t, "keyless-sct-"+string(rune('a'+i)), "v1")
			cert, key := ss.issue(t, ciIdentity, ghIssuer, tc.scts)
			ss.signWith(t, d, cert, key)
			v := verifyOne(t, svc[tc.service], d.String())
			if v.Signed != tc.wantSigned {
				t.Fatalf("Verify(%s).Signed = %v, want %v; value %s", tc.name, v.Signed, tc.wantSigned, dump(v))
			}
			if tc.wantSigned {
				if got := sigAuthorities(v); got != "ci/cosign" {
					t.Errorf("Verify(%s) signatures = %q, want %q", tc.name, got, "ci/cosign")
				}
				if got := v.Signatures[0]; got.Issuer != ghIssuer || got.Subject != ciIdentity {
					t.Errorf("Verify(%s) issuer/subject = %q/%q, want %q/%q", tc.name, got.Issuer, got.Subject, ghIssuer, ciIdentity)
				}
				return
			}
			if len(v.Signatures) != 0 {
				t.Errorf("Verify(%s) signatures = %q, want none", tc.name, sigAuthorities(v))
			}
			found := false
			for _, r := range v.Rejected {
				if r.Kind == "signature" && strings.Contains(r.Reason, "authority ci") && strings.Contains(r.Reason, tc.wantReason) {
					found = true
				}
			}
			if !found {
				t.Errorf("Verify(%s).Rejected = %+v, want a signature rejection by authority ci containing %q", tc.name, v.Rejected, tc.wantReason)
			}
		})
	}
}
