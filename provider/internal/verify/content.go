package verify

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
)

// Formats of a verified statement as Contents names them: how it was signed, wherever it was
// found (the cosign .att tag or an OCI referrer).
const (
	// ContentDSSE is a DSSE envelope: a cosign .att layer or an in-toto referrer layer.
	ContentDSSE = "dsse"
	// ContentBundle is a Sigstore bundle referrer (cosign v3's default).
	ContentBundle = "bundle"
)

// Subject is one subject of an in-toto statement: a name and its digests by algorithm.
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// subjects copies the statement's subjects (never nil).
func (st *statement) subjects() []Subject {
	out := make([]Subject, 0, len(st.Subject))
	for _, s := range st.Subject {
		out = append(out, Subject(s))
	}
	return out
}

// Content is one verified in-toto statement about a digest, in full, as one authority
// verified it.
type Content struct {
	// Authority is the configured authority whose signature over the statement verified.
	Authority string
	// Format is ContentDSSE or ContentBundle.
	Format string
	// Type is the statement's _type (in-toto Statement v0.1 or v1).
	Type          string
	PredicateType string
	// Subjects are all the statement's subjects; one of them is the digest asked about.
	Subjects []Subject
	// Predicate is the predicate as signed, compacted (nil when the statement has none).
	Predicate json.RawMessage
}

// Contents is what Service.Contents found for one digest.
type Contents struct {
	// Statements are the verified statements, one per authority that verified each, in a
	// stable order (predicate type, authority, format, _type, predicate, subjects), duplicates
	// removed.
	Statements []Content
	// Rejected lists attestations found that did not verify, with why.
	Rejected []Rejection
}

// Contents reads and verifies the attestations of digest h of ref's repository exactly as
// Statements does (the cosign .att tag and the OCI referrers, with the authorities that apply
// to ref) and returns every statement that verified and names h as a subject, in full.
// Statements of cosign's sign predicate are signatures (/v1/verify reports them) and are left
// out. The order does not depend on the order the registry lists referrers or layers in. A
// registry outage is an error.
func (s *Service) Contents(ctx context.Context, ref imageref.Ref, h v1.Hash) (*Contents, error) {
	att, err := s.Statements(ctx, ref, h)
	if err != nil {
		return nil, err
	}
	type keyed struct {
		c Content
		// subjects is the subjects' JSON: with the predicate, what orders statements with
		// equal types and authorities, and what tells a duplicate.
		subjects []byte
	}
	var all []keyed
	for _, st := range att.Statements {
		if st.PredicateType == cosignSignPredicate {
			continue
		}
		pred, err := compactJSON(st.Predicate)
		if err != nil {
			return nil, fmt.Errorf("verified statement of %s: %w", h, err)
		}
		subjects, err := json.Marshal(st.Subjects)
		if err != nil {
			return nil, fmt.Errorf("verified statement of %s: %w", h, err)
		}
		format := ContentDSSE
		if st.Format == "bundle" {
			format = ContentBundle
		}
		for _, sg := range st.Signers {
			all = append(all, keyed{c: Content{
				Authority: sg.Authority, Format: format, Type: st.Type, PredicateType: st.PredicateType,
				Subjects: st.Subjects, Predicate: pred,
			}, subjects: subjects})
		}
	}
	order := func(a, b keyed) int {
		return cmp.Or(
			cmp.Compare(a.c.PredicateType, b.c.PredicateType),
			cmp.Compare(a.c.Authority, b.c.Authority),
			cmp.Compare(a.c.Format, b.c.Format),
			cmp.Compare(a.c.Type, b.c.Type),
			bytes.Compare(a.c.Predicate, b.c.Predicate),
			bytes.Compare(a.subjects, b.subjects),
		)
	}
	slices.SortFunc(all, order)
	all = slices.CompactFunc(all, func(a, b keyed) bool { return order(a, b) == 0 })
	out := &Contents{Statements: make([]Content, len(all)), Rejected: att.Rejected}
	for i, k := range all {
		out.Statements[i] = k.c
	}
	return out, nil
}

// compactJSON is raw without insignificant space (nil stays nil).
func compactJSON(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return nil, fmt.Errorf("predicate: %w", err)
	}
	return b.Bytes(), nil
}
