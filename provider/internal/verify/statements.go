package verify

import (
	"context"
	"encoding/json"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
)

// Statement is an in-toto attestation of a digest whose signature verified.
type Statement struct {
	// Type is the statement's _type; Subjects its subjects (see content.go).
	Type          string
	Subjects      []Subject
	PredicateType string
	// Predicate is the predicate as signed; nil when it was decoded into Decoded (RawPredicate
	// reads it then).
	Predicate json.RawMessage
	// Decoded is the predicate decoded into the target PredicateTargets chose (nil: none).
	Decoded any
	// Format is "cosign" (sha256-<hex>.att), "referrer" (in-toto referrer) or "bundle".
	Format  string
	Signers []Signer
	// payload is the verified statement, kept when the predicate was decoded into Decoded.
	payload []byte
}

// Signer is an authority whose signature over a statement verified.
type Signer struct {
	Authority string
	// SignedAt is the earliest verified transparency-log or timestamp-authority time (zero
	// when none was verified: key-signed, or keyless without a log proof).
	SignedAt time.Time
}

// Attested is what Statements found for one digest.
type Attested struct {
	Statements []Statement
	// Rejected lists attestations found that did not verify.
	Rejected []Rejection
	// Artifacts are referrers of other artifact types (SARIF reports, …): found, not verified.
	Artifacts []v1.Descriptor

	// payloads are the pooled buffers the statements' payloads live in; svc takes them back.
	payloads []*[]byte
	svc      *Service
}

// Release gives the memory of the statements' payloads back for the next lookup. After it,
// no Statement's Predicate or RawPredicate may be read (Decoded values and every string in
// them are copies and stay valid). Calling it is optional (without it the memory is
// collected); calling it twice is harmless.
func (a *Attested) Release() {
	for _, b := range a.payloads {
		// Zeroed, so anything that kept a slice of a payload reads NULs at once (and tests
		// see it) instead of another image's bytes after the buffer is reused.
		clear(*b)
		a.svc.payloadBufs.put(b)
	}
	a.payloads = nil
	for i := range a.Statements {
		a.Statements[i].Predicate, a.Statements[i].payload = nil, nil
	}
}

// Statements reads and verifies the attestations of digest h of ref's repository — the
// cosign .att tag and the OCI referrers — with the authorities that apply to ref, exactly as
// Lookup does for /v1/verify. A registry outage is an error; anything that does not verify is
// listed under Rejected.
func (s *Service) Statements(ctx context.Context, ref imageref.Ref, h v1.Hash) (*Attested, error) {
	return s.StatementsInto(ctx, ref, h, nil)
}

// StatementsInto is Statements with each verified statement's predicate decoded, in the
// statement's own json.Unmarshal, into the target targets chooses for its type (Decoded),
// where that reads exactly what the raw decode reads; every other predicate stays raw. Every
// check (signature over the exact DSSE bytes first, payload type, subject digest, caps) is
// the same.
func (s *Service) StatementsInto(ctx context.Context, ref imageref.Ref, h v1.Hash, targets PredicateTargets) (*Attested, error) {
	auths := s.applicable(ref)
	attAuths := filter(auths, func(a *authority) bool { return a.cosign && a.attestations })
	refAuths := filter(auths, func(a *authority) bool { return a.bundle })
	attP, refP := partial{targets: targets}, partial{targets: targets}
	var branches []func()
	if len(attAuths) > 0 {
		branches = append(branches, func() { s.attestations(ctx, ref, h, attAuths, &attP) })
	}
	// Referrers are listed even without a bundle authority: other artifacts are reported.
	branches = append(branches, func() { s.referrers(ctx, ref, h, refAuths, readAll, &refP) })
	s.helpers.parallel(branches)
	out := &Attested{svc: s}
	for _, p := range []*partial{&attP, &refP} {
		out.payloads = append(out.payloads, p.payloads...)
	}
	for _, p := range []*partial{&attP, &refP} {
		if p.err != nil {
			out.Release()
			return nil, p.err
		}
		for i, vs := range p.stmts {
			st := Statement{PredicateType: vs.st.PredicateType, Predicate: vs.st.Predicate, Decoded: vs.st.decoded, payload: vs.st.payload,
				Format: p.stmtFmt[i], Type: vs.st.Type, Subjects: vs.st.subjects()}
			for _, sig := range vs.sigs {
				st.Signers = append(st.Signers, Signer{Authority: sig.Authority, SignedAt: sig.signedAt})
			}
			out.Statements = append(out.Statements, st)
		}
		out.Rejected = append(out.Rejected, p.rejected...)
		out.Artifacts = append(out.Artifacts, p.others...)
	}
	sortStatements(out)
	return out, nil
}

// earliestVerifiedTime is the earliest log or timestamp-authority time a verification proved.
func earliestVerifiedTime(res *sgverify.VerificationResult) time.Time {
	var t time.Time
	for _, ts := range res.VerifiedTimestamps {
		if !ts.Timestamp.IsZero() && (t.IsZero() || ts.Timestamp.Before(t)) {
			t = ts.Timestamp
		}
	}
	return t
}
