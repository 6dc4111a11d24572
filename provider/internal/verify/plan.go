package verify

import (
	"context"
	"errors"
	"fmt"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
)

// fatal reports whether a registry error must fail the whole key (the registry gave no final
// answer, or refused access) rather than reject one signature.
func fatal(err error) bool {
	var tl *registry.TooLargeError
	if errors.As(err, &tl) {
		return false
	}
	var ue *registry.UnavailableError
	var de *registry.DeniedError
	var na *registry.NotAllowedError
	var be *registry.BudgetError
	return errors.As(err, &ue) || errors.As(err, &be) || errors.As(err, &de) || errors.As(err, &na) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

func isNotFound(err error) bool {
	var nf *registry.NotFoundError
	return errors.As(err, &nf)
}

// partial collects what one branch of a lookup found.
type partial struct {
	sigs     []Signature
	stmts    []*verifiedStatement
	stmtFmt  []string
	rejected []Rejection
	sboms    []UnverifiedSBOM
	others   []v1.Descriptor
	err      error
	// targets, when set, decode predicates in the statement's own json.Unmarshal.
	targets PredicateTargets
	// payloads are the pooled buffers stmts keep their payloads in (see Attested.Release).
	payloads []*[]byte
}

// lookupState is what the branches of one lookup find.
type lookupState struct {
	sigP, attP, refP partial
	sbomP            partial // cosign's .sbom tag (unsigned SBOMs)
	platErr, tagErr  error
	platforms        []v1.Descriptor
	headMediaType    types.MediaType
	tagDigest        string
}

func (p *partial) reject(kind, format string, args ...any) {
	p.rejected = append(p.rejected, Rejection{Kind: kind, Reason: fmt.Sprintf(format, args...)})
}

// MaxKeyRequests is the default registry request budget of one key: far above what an image with
// dozens of platforms and authorities needs, far below what an index with thousands of
// platforms would cost. A key over it is answered "limit exceeded:".
const MaxKeyRequests = 1024

// plan says what one lookup reads.
type plan struct {
	// attestations: read cosign's .att and .sbom tags and the in-toto and SBOM referrers, and
	// report attestations, SBOMs and provenance. Without it only signatures are read (the .sig
	// tag, Sigstore bundles, cosign's OCI 1.1 signature referrers), platforms and tag drift as
	// always, and the answer says so with reads "signatures".
	attestations bool
}

var (
	// readAll is the plan of /v1/verify.
	readAll = plan{attestations: true}
	// readSignatures is the plan of /v1/verify/signatures.
	readSignatures = plan{}
)

// ReadsSignatures is Answer.Reads of an answer that read signatures only: its attestation,
// SBOM and provenance fields are empty because they were not read, not because they are absent.
const ReadsSignatures = "signatures"

// Lookup verifies one parsed reference, reading everything the authorities can publish.
func (s *Service) Lookup(ctx context.Context, ref imageref.Ref) (*Value, error) {
	return s.lookup(ctx, ref, readAll, nil)
}

// LookupSignatures verifies one parsed reference reading its signatures only (see plan).
func (s *Service) LookupSignatures(ctx context.Context, ref imageref.Ref) (*Value, error) {
	return s.lookup(ctx, ref, readSignatures, nil)
}

// lookup verifies ref under pl; head, when not nil, is the answer to the HEAD of ref's tag
// (a name:tag key), already sent.
func (s *Service) lookup(ctx context.Context, ref imageref.Ref, pl plan, head *v1.Descriptor) (*Value, error) {
	ctx = registry.WithRequestBudget(ctx, s.lim.Requests)
	v := &Value{Answer: &Answer{Image: ref.Normalized(), Signatures: []Signature{}, Attestations: []Attestation{}, Platforms: []Platform{}}}
	if !pl.attestations {
		v.Reads = ReadsSignatures
	}
	auths := s.applicable(ref)

	var digest string
	var mediaType types.MediaType
	if ref.Digest == "" {
		d := head
		if d == nil {
			var err error
			if d, err = s.reg.Head(ctx, ref); err != nil {
				return nil, err
			}
		}
		digest, mediaType = d.Digest.Algorithm+":"+d.Digest.Hex, d.MediaType // d.Digest.String(), without fmt
		v.TagDigest = digest
	} else {
		digest = ref.Digest
	}
	v.Digest = digest
	h, err := v1.NewHash(digest)
	if err != nil {
		return nil, &imageref.InvalidError{Ref: ref.Original, Reason: err.Error()}
	}

	// What the branches find, in one allocation (the branches' closures share it).
	st := &lookupState{}
	// Read only what the applicable authorities can publish.
	sigAuths := filter(auths, func(a *authority) bool { return a.cosign })
	var attAuths []*authority
	if pl.attestations {
		attAuths = filter(sigAuths, func(a *authority) bool { return a.attestations })
	}
	refAuths := filter(auths, func(a *authority) bool { return a.bundle })
	var branches []func()
	if len(sigAuths) > 0 {
		branches = append(branches, func() { s.signatures(ctx, ref, h, sigAuths, &st.sigP) })
	}
	readRefs := func() { s.referrers(ctx, ref, h, refAuths, pl, &st.refP) }
	if len(attAuths) > 0 {
		// .att, .sbom and, on a registry without the referrers API, the referrers fallback
		// tag are usually absent: one listing of the digest's tags says which exist, and only
		// those are read (see registry.Client.DigestTags; unknown: all are read). The .sig read
		// does not wait for it (a signed image has one), nor does the referrers API.
		afterList := len(refAuths) > 0 && s.reg.ReferrersFromTag(ref)
		branches = append(branches, func() {
			tags := s.reg.DigestTags(ctx, ref, h)
			var reads []func()
			if !tags.Absent(sigTag(h, "att")) {
				reads = append(reads, func() { s.attestations(ctx, ref, h, attAuths, &st.attP) })
			}
			if !tags.Absent(sigTag(h, "sbom")) {
				reads = append(reads, func() { s.sbomTag(ctx, ref, h, &st.sbomP) })
			}
			if afterList && !tags.NoReferrers() {
				reads = append(reads, readRefs)
			}
			s.helpers.parallel(reads)
		})
		if len(refAuths) > 0 && !afterList {
			branches = append(branches, readRefs)
		}
	} else if len(refAuths) > 0 {
		branches = append(branches, readRefs)
	}
	switch {
	case ref.Digest != "" && ref.Tag != "":
		// name:tag@digest (what the mutator writes): one HEAD of the tag gives tagDigest and,
		// when the tag still points at the digest (the usual case), the media type too, so the
		// HEAD by digest is needed only after drift or when the tag is gone.
		branches = append(branches, func() {
			t := ref
			t.Digest = ""
			mt := types.MediaType("")
			if d, err := s.reg.Head(ctx, t); err != nil {
				st.tagErr = err
				if fatal(err) {
					return // the key fails with the tag's error; no second HEAD into an outage
				}
			} else if st.tagDigest = d.Digest.String(); st.tagDigest == digest {
				mt = d.MediaType
			}
			s.platformsOf(ctx, ref, digest, mt, &st.headMediaType, &st.platforms, &st.platErr)
		})
	case mediaType == "" || mediaType.IsIndex():
		branches = append(branches, func() {
			s.platformsOf(ctx, ref, digest, mediaType, &st.headMediaType, &st.platforms, &st.platErr)
		})
	default:
		st.headMediaType = mediaType
	}
	s.helpers.parallel(branches)

	if st.platErr != nil {
		return nil, st.platErr
	}
	for _, p := range []*partial{&st.sigP, &st.attP, &st.sbomP, &st.refP} {
		if p.err != nil {
			return nil, p.err
		}
	}
	v.MediaType = string(st.headMediaType)
	if ref.Digest != "" && ref.Tag != "" {
		switch {
		case st.tagErr == nil:
			v.TagDigest = st.tagDigest
		case fatal(st.tagErr):
			return nil, st.tagErr
		default:
			v.TagError = st.tagErr.Error()
		}
	}

	s.merge(v, pl, &st.sigP, &st.attP, &st.sbomP, &st.refP)

	for _, d := range st.platforms {
		p := Platform{Digest: d.Digest.String()}
		if d.Platform != nil {
			p.OS, p.Architecture, p.Variant = d.Platform.OS, d.Platform.Architecture, d.Platform.Variant
		}
		v.Platforms = append(v.Platforms, p)
	}
	if len(st.platforms) > 0 {
		if err := s.verifyPlatforms(ctx, ref, auths, v); err != nil {
			return nil, err
		}
	}
	v.finish()
	v.Signed = len(v.Signatures) > 0
	v.loadedAt = s.now()
	return v, nil
}

func filter(in []*authority, keep func(*authority) bool) []*authority {
	var out []*authority
	for _, a := range in {
		if keep(a) {
			out = append(out, a)
		}
	}
	return out
}
