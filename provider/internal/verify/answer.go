package verify

import (
	"cmp"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// merge adds what the branches of a lookup found to v, in any order: finish puts every list in
// its stable order afterwards. Under a plan without attestations only signatures count: a
// verified bundle statement other than cosign's sign predicate, and any SBOM listing, are left
// out, so the attestation fields stay empty.
func (s *Service) merge(v *Value, pl plan, parts ...*partial) {
	for _, p := range parts {
		v.Signatures = appendUniqueSigs(v.Signatures, p.sigs)
		for i, st := range p.stmts {
			if !pl.attestations && st.st.PredicateType != cosignSignPredicate {
				continue
			}
			s.addStatement(v, st, p.stmtFmt[i])
		}
		v.Rejected = append(v.Rejected, p.rejected...)
		if pl.attestations {
			v.SBOM.Unverified = append(v.SBOM.Unverified, p.sboms...)
		}
	}
}

// appendUniqueSigs adds the signatures of src not yet in dst (one per authority, key or
// certificate, and format). Of two equal ones the earliest verified time is kept, so the
// result does not depend on which was found first.
func appendUniqueSigs(dst, src []Signature) []Signature {
outer:
	for _, s := range src {
		for i := range dst {
			d := &dst[i]
			if d.Authority == s.Authority && d.KeyID == s.KeyID && d.Format == s.Format {
				if !s.signedAt.IsZero() && (d.signedAt.IsZero() || s.signedAt.Before(d.signedAt)) {
					d.signedAt = s.signedAt
				}
				continue outer
			}
		}
		dst = append(dst, s)
	}
	return dst
}

// addStatement records a verified statement: a cosign sign predicate (bundle format) is a
// signature; everything else an attestation, per authority that signed it, and every SPDX or
// CycloneDX statement adds its format to sbom.formats, every SLSA provenance statement an entry
// to provenance.
func (s *Service) addStatement(v *Value, vs *verifiedStatement, format string) {
	pt := vs.st.PredicateType
	if pt == cosignSignPredicate {
		v.Signatures = appendUniqueSigs(v.Signatures, vs.sigs)
		return
	}
	for _, sig := range vs.sigs {
		v.Attestations = append(v.Attestations, Attestation{Authority: sig.Authority, PredicateType: pt, Format: format})
	}
	if f := sbomFormat(pt); f != "" {
		v.SBOM.Formats = append(v.SBOM.Formats, f)
	}
	if p, ok := summariseProvenance(pt, vs.st.Predicate); ok {
		for _, sig := range vs.sigs {
			p.Authority = sig.Authority
			v.Provenance = append(v.Provenance, p)
		}
	}
}

// finish puts every list of the answer in one stable order, without duplicates, so that the
// answer (and its bytes) depend only on what was found, never on the order in which registries
// listed referrers or the branches of the lookup finished: signatures by authority, format, key;
// attestations by predicate type, authority, format; SBOM formats, provenance entries,
// unverified SBOMs and rejections sorted by their fields. Rejections are capped at maxRejected
// after sorting. Absent lists are empty, not null.
func (v *Value) finish() {
	slices.SortFunc(v.Signatures, func(a, b Signature) int {
		return cmp.Or(cmp.Compare(a.Authority, b.Authority), cmp.Compare(a.Format, b.Format), cmp.Compare(a.KeyID, b.KeyID),
			cmp.Compare(a.Algorithm, b.Algorithm), cmp.Compare(a.Issuer, b.Issuer), cmp.Compare(a.Subject, b.Subject))
	})
	v.Attestations = sortedUnique(v.Attestations, func(a, b Attestation) int {
		return cmp.Or(cmp.Compare(a.PredicateType, b.PredicateType), cmp.Compare(a.Authority, b.Authority), cmp.Compare(a.Format, b.Format))
	})
	v.SBOM.Formats = sortedUnique(v.SBOM.Formats, strings.Compare)
	v.Provenance = sortedUnique(v.Provenance, func(a, b Provenance) int {
		return cmp.Or(cmp.Compare(a.BuilderID, b.BuilderID), cmp.Compare(a.SourceURI, b.SourceURI), cmp.Compare(a.BuildType, b.BuildType),
			cmp.Compare(a.PredicateType, b.PredicateType), cmp.Compare(a.Authority, b.Authority))
	})
	if len(v.SBOM.Unverified) > 0 {
		v.SBOM.Unverified = sortedUnique(v.SBOM.Unverified, func(a, b UnverifiedSBOM) int {
			return cmp.Or(cmp.Compare(a.Digest, b.Digest), cmp.Compare(a.Format, b.Format), cmp.Compare(a.MediaType, b.MediaType),
				cmp.Compare(a.ArtifactType, b.ArtifactType), cmp.Compare(a.Tag, b.Tag))
		})
	}
	if len(v.Rejected) > 0 {
		v.Rejected = sortedUnique(v.Rejected, func(a, b Rejection) int {
			return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Reason, b.Reason))
		})
		if len(v.Rejected) > maxRejected {
			v.Rejected = v.Rejected[:maxRejected:maxRejected]
		}
	}
	if v.Signatures == nil {
		v.Signatures = []Signature{}
	}
	if v.Platforms == nil {
		v.Platforms = []Platform{}
	}
}

// sortedUnique sorts s by compare and drops repeated elements; nil becomes empty.
func sortedUnique[T comparable](s []T, compare func(a, b T) int) []T {
	if s == nil {
		return []T{}
	}
	slices.SortFunc(s, compare)
	return slices.Compact(s)
}

// sortStatements puts the statements of an Attested in a stable order (predicate type, format,
// predicate bytes, or statement bytes when the predicate was decoded; signers by authority)
// and sorts its rejections, so that Statements does not depend on the order in which the
// registry listed referrers either.
func sortStatements(a *Attested) {
	for i := range a.Statements {
		slices.SortFunc(a.Statements[i].Signers, func(x, y Signer) int {
			return cmp.Or(cmp.Compare(x.Authority, y.Authority), x.SignedAt.Compare(y.SignedAt))
		})
	}
	slices.SortStableFunc(a.Statements, func(x, y Statement) int {
		return cmp.Or(cmp.Compare(x.PredicateType, y.PredicateType), cmp.Compare(x.Format, y.Format), cmp.Compare(string(x.Predicate), string(y.Predicate)),
			// A predicate decoded into a target is ordered by its whole statement.
			cmp.Compare(string(x.payload), string(y.payload)))
	})
	slices.SortFunc(a.Rejected, func(x, y Rejection) int {
		return cmp.Or(cmp.Compare(x.Kind, y.Kind), cmp.Compare(x.Reason, y.Reason))
	})
	slices.SortFunc(a.Artifacts, func(x, y v1.Descriptor) int { return cmp.Compare(x.Digest.String(), y.Digest.String()) })
}
