package scan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/verify"
)

// SARIF referrers.
const (
	sarifArtifactType = "application/sarif+json"
	// annCreated on a signed SARIF referrer manifest is the scan time (SARIF has none).
	annCreated = "org.opencontainers.image.created"
)

// scanDigest gathers every scan and VEX document of one digest and chooses. subj is the
// digest h (as a string) in ref's repository, image the two as "repository@digest".
func (s *Service) scanDigest(ctx context.Context, ref imageref.Ref, h v1.Hash, subj Subject, image string) (*Value, error) {
	att, err := s.o.Verifier.StatementsInto(ctx, ref, h, s.predicateTarget)
	if err != nil {
		return nil, err
	}
	// Everything below copies what it keeps out of the statements (the value, its findings and
	// strings), so their payloads' memory goes back to the verifier when this returns.
	defer att.Release()
	var cands []Candidate
	var vex []*VEXDocument
	var vexRejected []Rejected
	for _, st := range att.Statements {
		switch {
		case IsScanPredicate(st.PredicateType):
			cands = append(cands, s.attestationCandidate(st))
		case IsVEXPredicate(st.PredicateType):
			d, rej := s.vexDocument(st)
			if d != nil {
				vex = append(vex, d)
				s.sources.WithLabelValues("vex", "used").Inc()
			} else {
				vexRejected = append(vexRejected, rej)
				s.sources.WithLabelValues("vex", "rejected").Inc()
			}
		}
	}
	// Attestations that did not verify may be scans: reported, never counted.
	for _, r := range att.Rejected {
		cands = append(cands, Candidate{Source: SourceAttestation, Err: errors.New(r.Reason)})
	}
	if s.o.SARIF {
		for _, d := range att.Artifacts {
			if d.ArtifactType != sarifArtifactType {
				continue
			}
			c, err := s.sarifCandidate(ctx, ref, d)
			if err != nil {
				return nil, err
			}
			cands = append(cands, c)
		}
	}
	if s.o.Operator != nil {
		for _, r := range s.o.Operator.Reports(OperatorKey(image)) {
			cands = append(cands, Candidate{Source: SourceTrivyOperator, Authority: AuthorityTrivyOperator, Trusted: true, Report: r})
		}
	}
	for _, c := range cands {
		result := "rejected"
		if c.Trusted && c.Err == nil {
			result = "used"
		}
		s.sources.WithLabelValues(c.Source, result).Inc()
	}
	v := Choose(image, subj, cands, vex, Choice{Now: s.o.Now(), ClockSkew: s.o.ClockSkew, Limits: s.o.Limits})
	for _, r := range vexRejected {
		v.reject(r.Kind, r.Reason)
	}
	return v, nil
}

// attestationCandidate turns a verified scan attestation into a candidate: trusted when a
// scanner authority signed it (the earliest such signature's log time is its SignedAt).
func (s *Service) attestationCandidate(st verify.Statement) Candidate {
	c := Candidate{Source: SourceAttestation, Signed: true}
	var others []string
	for _, sg := range st.Signers {
		if !s.scanners[sg.Authority] {
			others = append(others, sg.Authority)
			continue
		}
		if !c.Trusted || (!sg.SignedAt.IsZero() && (c.SignedAt.IsZero() || sg.SignedAt.Before(c.SignedAt))) {
			c.Authority, c.SignedAt = sg.Authority, sg.SignedAt
		}
		c.Trusted = true
	}
	if !c.Trusted {
		c.Err = fmt.Errorf("%s attestation signed by %s, not a scanner authority", st.PredicateType, strings.Join(others, ", "))
		return c
	}
	c.ownsReport = true // decoded here, for this lookup alone
	switch p := st.Decoded.(type) {
	case *cosignVuln:
		c.Report, c.Err = decodedCosignVuln(p, st.RawPredicate, s.o.Limits)
		return c
	case *inTotoVulns:
		c.Report, c.Err = inTotoReport(st.PredicateType, p, s.o.Limits)
		return c
	}
	c.Report, c.Err = DecodePredicate(st.PredicateType, st.Predicate, s.o.Limits)
	return c
}

// predicateTarget has the predicates /v1/scan reads — cosign vuln (with its report), in-toto
// vulns and OpenVEX — decoded in their statement's own decode when the whole statement is
// within the report cap, so the predicate is too and the size check of the raw decode would
// pass; everything else stays raw.
func (s *Service) predicateTarget(predicateType string, payloadSize int) any {
	if int64(payloadSize) > s.o.Limits.ReportBytes {
		return nil
	}
	switch {
	case predicateType == PredicateCosignVuln:
		return new(cosignVuln)
	case predicateType == PredicateInTotoV01 || predicateType == PredicateInTotoV02:
		return new(inTotoVulns)
	case IsVEXPredicate(predicateType):
		return new(vexDocJSON)
	}
	return nil
}

// vexDocument reads a verified OpenVEX attestation signed by a VEX authority.
func (s *Service) vexDocument(st verify.Statement) (*VEXDocument, Rejected) {
	var auth string
	var signedAt time.Time
	var others []string
	for _, sg := range st.Signers {
		if s.vex[sg.Authority] {
			auth, signedAt = sg.Authority, sg.SignedAt
			break
		}
		others = append(others, sg.Authority)
	}
	if auth == "" {
		return nil, Rejected{Kind: "vex", Reason: fmt.Sprintf("OpenVEX signed by %s, not a VEX authority", strings.Join(others, ", "))}
	}
	var d *VEXDocument
	var err error
	if p, ok := st.Decoded.(*vexDocJSON); ok {
		d, err = openVEXDocument(p, auth, signedAt, s.o.Limits)
	} else {
		d, err = DecodeOpenVEX(st.Predicate, auth, signedAt, s.o.Limits)
	}
	if err != nil {
		return nil, Rejected{Kind: "vex", Reason: fmt.Sprintf("authority %s: %v", auth, err)}
	}
	return d, Rejected{}
}

// sarifCandidate reads a SARIF referrer. It is trusted only when the referrer manifest itself
// carries a scanner authority's signature (cosign's tag scheme or a bundle referrer of the
// referrer, verified by the Verifier); its scan time is then the manifest's
// org.opencontainers.image.created annotation, which the signature covers.
func (s *Service) sarifCandidate(ctx context.Context, ref imageref.Ref, d v1.Descriptor) (Candidate, error) {
	c := Candidate{Source: SourceSARIF}
	rref := ref
	rref.Tag, rref.Digest = "", d.Digest.String()
	rref.Original = ref.Repository() + "@" + rref.Digest
	sv, err := s.o.Verifier.Lookup(ctx, rref)
	if err != nil {
		if isOutage(err) {
			return c, err
		}
		c.Err = fmt.Errorf("SARIF referrer %s: %w", d.Digest, err)
		return c, nil
	}
	var signers []string
	for _, sg := range sv.Signatures {
		if s.scanners[sg.Authority] {
			signers = append(signers, sg.Authority)
		}
	}
	if len(signers) == 0 {
		c.Err = fmt.Errorf("SARIF referrer %s is not signed by a scanner authority", d.Digest)
		return c, nil
	}
	c.Trusted, c.Signed, c.Authority = true, true, signers[0]
	m, err := s.o.Registry.Manifest(ctx, ref, d.Digest.String(), indexBytes)
	if err != nil {
		if isOutage(err) {
			return c, err
		}
		c.Err = fmt.Errorf("SARIF referrer %s: %w", d.Digest, err)
		return c, nil
	}
	var man struct {
		Layers      []v1.Descriptor   `json:"layers"`
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(m.Raw, &man); err != nil || len(man.Layers) == 0 {
		c.Err = fmt.Errorf("SARIF referrer %s: manifest has no report layer", d.Digest)
		return c, nil
	}
	l := man.Layers[0]
	if l.Size > s.o.Limits.ReportBytes {
		c.Err = &TooLargeError{What: "SARIF report " + l.Digest.String(), Size: l.Size, Limit: s.o.Limits.ReportBytes}
		return c, nil
	}
	raw, err := s.o.Registry.BlobInto(ctx, ref, l.Digest, s.o.Limits.ReportBytes, nil)
	if err != nil {
		if isOutage(err) {
			return c, err
		}
		c.Err = fmt.Errorf("SARIF referrer %s: %w", d.Digest, err)
		return c, nil
	}
	r, err := DecodeSARIF(raw, s.o.Limits)
	if err != nil {
		c.Err = err
		return c, nil
	}
	if t := man.Annotations[annCreated]; t != "" && r.ScannedAt.IsZero() {
		var ft flexTime
		if err := ft.UnmarshalJSON([]byte(`"` + strings.ReplaceAll(t, `"`, ``) + `"`)); err != nil {
			c.Err = fmt.Errorf("SARIF referrer %s: annotation %s: %w", d.Digest, annCreated, err)
			return c, nil
		}
		r.ScannedAt = ft.Time
	}
	c.Report, c.ownsReport = r, true
	return c, nil
}

// isOutage reports whether a registry error must fail the whole key.
func isOutage(err error) bool {
	var ue *registry.UnavailableError
	var de *registry.DeniedError
	var na *registry.NotAllowedError
	return errors.As(err, &ue) || errors.As(err, &de) || errors.As(err, &na) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
