package verify

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	cstatic "github.com/sigstore/cosign/v2/pkg/oci/static"
	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore-go/pkg/tlog"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/imagetrust/imagetrust/provider/internal/config"
)

// sigstore is an in-test Fulcio CA, Rekor log and TSA, and its trusted_root.json.
type sigstore struct {
	vs       *ca.VirtualSigstore
	rootFile string
}

func newSigstore(t testing.TB) *sigstore {
	t.Helper()
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(), rawLogIDs(t, vs.CTLogs()), vs.TimestampingAuthorities(), rawLogIDs(t, vs.RekorLogs()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		t.Fatalf("TrustedRoot.MarshalJSON() = %v", err)
	}
	f := filepath.Join(t.TempDir(), "trusted_root.json")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return &sigstore{vs: vs, rootFile: f}
}

func (s *sigstore) authority(n, issuer, subject string, requireTlog bool) config.Authority {
	f := false
	return config.Authority{Name: n, Keyless: &config.Keyless{Issuer: issuer, Subject: subject, TrustedRootFile: s.rootFile, RequireTlog: &requireTlog, RequireSCT: &f}}
}

// rawLogIDs fixes VirtualSigstore's log IDs (hex text, not the raw key ID bytes a
// trusted_root.json carries) and widens their validity to a day.
func rawLogIDs(t testing.TB, logs map[string]*root.TransparencyLog) map[string]*root.TransparencyLog {
	t.Helper()
	out := map[string]*root.TransparencyLog{}
	for id, l := range logs {
		raw, err := hex.DecodeString(id)
		if err != nil {
			t.Fatal(err)
		}
		c := *l
		c.ID = raw
		c.ValidityPeriodStart = time.Now().Add(-24 * time.Hour)
		c.ValidityPeriodEnd = time.Now().Add(24 * time.Hour)
		out[id] = &c
	}
	return out
}

// set recreates the Rekor signed entry timestamp of a tlog entry.
func (s *sigstore) set(t testing.TB, e *tlog.Entry) (*protorekor.TransparencyLogEntry, []byte) {
	t.Helper()
	tle := e.TransparencyLogEntry()
	set, err := s.vs.RekorSignPayload(tlog.RekorPayload{
		Body:           base64.StdEncoding.EncodeToString(tle.GetCanonicalizedBody()),
		IntegratedTime: tle.GetIntegratedTime(),
		LogIndex:       tle.GetLogIndex(),
		LogID:          hex.EncodeToString(tle.GetLogId().GetKeyId()),
	})
	if err != nil {
		t.Fatal(err)
	}
	return tle, set
}

// signKeyless signs d's simple-signing payload with a Fulcio certificate for identity/issuer,
// logged at integratedTime (zero: default), attached in cosign's tag scheme with certificate
// and Rekor bundle annotations (withTlog false: certificate only).
func (s *sigstore) signKeyless(t testing.TB, d name.Digest, identity, issuer string, integratedTime time.Time, withTlog bool) {
	t.Helper()
	payload := cosignPayload(t, d)
	var te *ca.TestEntity
	var err error
	if integratedTime.IsZero() {
		te, err = s.vs.Sign(identity, issuer, payload)
	} else {
		te, err = s.vs.SignAtTime(identity, issuer, payload, integratedTime)
	}
	if err != nil {
		t.Fatal(err)
	}
	vc, _ := te.VerificationContent()
	certPEM, err := cryptoutils.MarshalCertificateToPEM(vc.Certificate())
	if err != nil {
		t.Fatal(err)
	}
	sc, _ := te.SignatureContent()
	opts := []cstatic.Option{cstatic.WithCertChain(certPEM, nil)}
	if withTlog {
		entries, _ := te.TlogEntries()
		tle, set := s.set(t, entries[0])
		opts = append(opts, cstatic.WithBundle(&cbundle.RekorBundle{SignedEntryTimestamp: set, Payload: cbundle.RekorPayload{
			Body:           base64.StdEncoding.EncodeToString(tle.GetCanonicalizedBody()),
			IntegratedTime: tle.GetIntegratedTime(),
			LogIndex:       tle.GetLogIndex(),
			LogID:          hex.EncodeToString(tle.GetLogId().GetKeyId()),
		}}))
	}
	attachSig(t, d, payload, sc.Signature(), opts...)
}

// attestKeyless attests stmt with a Fulcio certificate in cosign's tag scheme (.att layer with
// certificate and Rekor bundle annotations).
func (s *sigstore) attestKeyless(t testing.TB, d name.Digest, identity, issuer string, stmt []byte) {
	t.Helper()
	te, err := s.vs.Attest(identity, issuer, stmt)
	if err != nil {
		t.Fatal(err)
	}
	vc, _ := te.VerificationContent()
	sc, _ := te.SignatureContent()
	envJSON, err := json.Marshal(sc.EnvelopeContent().RawEnvelope())
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := cryptoutils.MarshalCertificateToPEM(vc.Certificate())
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := te.TlogEntries()
	tle, set := s.set(t, entries[0])
	attachAtt(t, d, envJSON, cstatic.WithCertChain(certPEM, nil), cstatic.WithBundle(&cbundle.RekorBundle{SignedEntryTimestamp: set, Payload: cbundle.RekorPayload{
		Body:           base64.StdEncoding.EncodeToString(tle.GetCanonicalizedBody()),
		IntegratedTime: tle.GetIntegratedTime(),
		LogIndex:       tle.GetLogIndex(),
		LogID:          hex.EncodeToString(tle.GetLogId().GetKeyId()),
	}}))
}

// bundleKeyless attests stmt with a Fulcio certificate and attaches the Sigstore bundle
// (v0.3, DSSE, tlog entry with inclusion proof and promise) as a referrer of d.
func (s *sigstore) bundleKeyless(t testing.TB, d name.Digest, identity, issuer string, stmt []byte, predicateType string) {
	t.Helper()
	te, err := s.vs.AttestAtTime(identity, issuer, stmt, time.Now().Add(5*time.Minute), true)
	if err != nil {
		t.Fatal(err)
	}
	vc, _ := te.VerificationContent()
	sc, _ := te.SignatureContent()
	env := sc.EnvelopeContent().RawEnvelope()
	entries, _ := te.TlogEntries()
	tle, set := s.set(t, entries[0])
	tle.InclusionPromise = &protorekor.InclusionPromise{SignedEntryTimestamp: set}
	tle.KindVersion = &protorekor.KindVersion{Kind: "dsse", Version: "0.0.1"}
	sig, err := base64.StdEncoding.DecodeString(env.Signatures[0].Sig)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := base64.StdEncoding.DecodeString(env.Payload)
	if err != nil {
		t.Fatal(err)
	}
	b := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:     &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: vc.Certificate().Raw}},
			TlogEntries: []*protorekor.TransparencyLogEntry{tle},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: payload, PayloadType: env.PayloadType, Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	}
	raw, err := protojson.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := ociremote.WriteAttestationNewBundleFormat(d, raw, predicateType); err != nil {
		t.Fatalf("WriteAttestationNewBundleFormat() = %v", err)
	}
}
