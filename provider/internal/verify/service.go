// Package verify answers POST /v1/verify: for each image it proves, with cryptography and
// against the configured authorities, which signatures, attestations, SBOMs and provenance
// belong to the image's digest. After at most one HEAD for a tag everything is read by digest:
// cosign's tag scheme (sha256-<hex>.sig / .att) and OCI referrers (Sigstore bundles, in-toto
// attestations, SBOM artifacts). Multi-arch indexes report their platforms and, for authorities
// with verifyPlatforms, every platform manifest's own signature is checked too.
package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/cache"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// memoEntries bounds the parsed-reference memo when Options.Refs is nil.
const memoEntries = 8192

// Limits cap what one verification reads. Zero fields take the defaults.
type Limits struct {
	// Layers: signature / attestation layers examined per manifest (default 32).
	Layers int
	// Referrers examined per digest (default 64).
	Referrers int
	// ManifestBytes: a signature, attestation or referrer manifest (default 256 KiB).
	ManifestBytes int64
	// PayloadBytes: a simple-signing payload (default 64 KiB).
	PayloadBytes int64
	// AttestationBytes: a DSSE envelope or Sigstore bundle (default 4 MiB).
	AttestationBytes int64
}

func (l Limits) withDefaults() Limits {
	if l.Layers <= 0 {
		l.Layers = 32
	}
	if l.Referrers <= 0 {
		l.Referrers = 64
	}
	if l.ManifestBytes <= 0 {
		l.ManifestBytes = 256 << 10
	}
	if l.PayloadBytes <= 0 {
		l.PayloadBytes = 64 << 10
	}
	if l.AttestationBytes <= 0 {
		l.AttestationBytes = 4 << 20
	}
	return l
}

// Options configures a Service. Registry and Pool are required.
type Options struct {
	// Authorities, validated (config.Validate). Keys are parsed and KMS public keys fetched
	// once, in New.
	Authorities []config.Authority
	Registry    Registry
	Pool        *batch.Pool
	// Cache of answers by normalised reference (nil: none).
	Cache *cache.Cache[*Value]
	// UnsignedTTL: a cached answer with signed=false is looked up again after this long
	// (default 30s), so a newly signed image is admitted soon; signed answers keep the
	// cache's TTL.
	UnsignedTTL time.Duration
	// Deadline for a whole batch (default 2.5s).
	Deadline time.Duration
	Limits   Limits
	// Registerer receives the verify metrics (nil: not registered).
	Registerer prometheus.Registerer
	// Refs remembers parsed references (nil: a memo of its own); the provider shares the
	// resolve service's, so a key seen by /v1/resolve is not parsed again.
	Refs *imageref.Memo
}

// Service verifies images. Safe for concurrent use.
type Service struct {
	auths    []*authority
	reg      Registry
	pool     *batch.Pool
	cache    *cache.Cache[*Value]
	deadline time.Duration
	unsigned time.Duration
	now      func() time.Time
	refresh  singleflight.Group
	lim      Limits
	refs     *imageref.Memo
	results  *prometheus.CounterVec
	checks   *prometheus.CounterVec
	// blobsSaved counts signature payloads not read from the registry (see payloadGuess).
	blobsSaved prometheus.Counter
}

// New compiles the authorities (reading key files, trusted roots and KMS public keys).
func New(ctx context.Context, o Options) (*Service, error) {
	if o.Registry == nil || o.Pool == nil {
		return nil, errors.New("verify: Registry and Pool are required")
	}
	auths, err := compileAuthorities(ctx, o.Authorities)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	if o.Deadline <= 0 {
		o.Deadline = 2500 * time.Millisecond
	}
	if o.UnsignedTTL <= 0 {
		o.UnsignedTTL = 30 * time.Second
	}
	s := &Service{
		auths: auths, reg: o.Registry, pool: o.Pool, cache: o.Cache, deadline: o.Deadline,
		unsigned: o.UnsignedTTL, now: time.Now,
		lim: o.Limits.withDefaults(), refs: o.Refs,
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagetrust_verify_results_total",
			Help: "Verify lookups by outcome (signed, unsigned, error).",
		}, []string{"outcome"}),
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagetrust_verify_checks_total",
			Help: "Signatures, attestations and bundles examined, by kind and result (verified, rejected).",
		}, []string{"kind", "result"}),
		blobsSaved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "imagetrust_verify_payload_reads_saved_total",
			Help: "Simple-signing payloads known from their layer digest, so not read from the registry.",
		}),
	}
	if s.refs == nil {
		s.refs = imageref.NewMemo(memoEntries)
	}
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{s.results, s.checks, s.blobsSaved} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("verify: registering metrics: %w", err)
			}
		}
	}
	return s, nil
}

// Verify answers one /v1/verify batch: one item per key, in order. Per-key errors start with
// a class word (invalid reference, registry not allowed, not found, denied, unavailable,
// timed out); an image that is merely unsigned is a value with signed=false, not an error.
func (s *Service) Verify(ctx context.Context, keys []string) []wire.Item {
	items := make([]wire.Item, len(keys))
	// Warm path: answers already cached are served without goroutines.
	var missKeys []string
	var missIdx []int
	for i, k := range keys {
		items[i].Key = k
		if s.cache != nil {
			if ref, err := s.refs.Parse(k); err == nil {
				if v, err, ok := s.cache.Fresh(cacheKey(ref)); ok && !s.expiredUnsigned(v) {
					s.fill(&items[i], v, err)
					continue
				}
			}
		}
		missKeys = append(missKeys, k)
		missIdx = append(missIdx, i)
	}
	if len(missKeys) == 0 {
		return items
	}
	ctx, cancel := context.WithTimeout(ctx, s.deadline)
	defer cancel()
	res := batch.Run(ctx, missKeys, s.lookupKey)
	for j, r := range res {
		s.fill(&items[missIdx[j]], r.Value, r.Err)
	}
	return items
}

func (s *Service) fill(it *wire.Item, v *Value, err error) {
	if err != nil {
		it.Error = err.Error()
		s.results.WithLabelValues("error").Inc()
		return
	}
	raw, err := v.encoded()
	if err != nil {
		it.Error = (&registry.UnavailableError{Ref: it.Key, Err: fmt.Errorf("encoding the answer: %w", err)}).Error()
		s.results.WithLabelValues("error").Inc()
		return
	}
	it.Value = wire.Encoded(raw)
	if v.IsSigned() {
		s.results.WithLabelValues("signed").Inc()
	} else {
		s.results.WithLabelValues("unsigned").Inc()
	}
}

func cacheKey(ref imageref.Ref) string { return "verify\x00" + ref.Normalized() }

func (s *Service) lookupKey(ctx context.Context, key string) (*Value, error) {
	ref, err := s.refs.Parse(key)
	if err != nil {
		return nil, err
	}
	if s.cache == nil {
		return s.load(ctx, ref)
	}
	r, err := s.cache.Get(ctx, cacheKey(ref), func(ctx context.Context) (*Value, error) {
		// Detached from the batch (other batches may share this load); bounded here.
		ctx, cancel := context.WithTimeout(ctx, s.deadline)
		defer cancel()
		return s.load(ctx, ref)
	})
	if err != nil {
		return nil, err
	}
	if r.Stale {
		v := *r.Value
		v.Stale = true
		return &v, nil
	}
	if r.Hit && s.expiredUnsigned(r.Value) {
		return s.refreshUnsigned(ctx, ref, r.Value)
	}
	return r.Value, nil
}

// expiredUnsigned reports whether v is an unsigned answer older than UnsignedTTL.
func (s *Service) expiredUnsigned(v *Value) bool {
	return v != nil && !v.IsSigned() && s.now().Sub(v.loadedAt) >= s.unsigned
}

// refreshUnsigned looks an unsigned image up again (once at a time per image) and replaces the
// cached answer. If the registry gives no answer, the old unsigned answer is served as stale:
// an outage must not turn "unsigned" into an error that failOpen would admit.
func (s *Service) refreshUnsigned(ctx context.Context, ref imageref.Ref, old *Value) (*Value, error) {
	key := cacheKey(ref)
	ch := s.refresh.DoChan(key, func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.deadline)
		defer cancel()
		v, err := s.load(ctx, ref)
		if err == nil {
			s.cache.Put(key, v)
		}
		return v, err
	})
	select {
	case r := <-ch:
		if r.Err == nil {
			return r.Val.(*Value), nil
		}
		if registry.IsNegative(r.Err) {
			return nil, r.Err
		}
	case <-ctx.Done():
	}
	v := *old
	v.Stale = true
	return &v, nil
}

// load runs Lookup on a worker of the shared pool and returns the answer in its cached form:
// encoded once, here, and served from those bytes afterwards (see Value.compact).
func (s *Service) load(ctx context.Context, ref imageref.Ref) (*Value, error) {
	var v *Value
	err := s.pool.Do(ctx, func() error {
		var err error
		v, err = s.Lookup(ctx, ref)
		return err
	})
	if err != nil {
		var ie *imageref.InvalidError
		if errors.As(err, &ie) {
			return nil, err
		}
		return nil, registry.Classify(ref.Original, err)
	}
	return v.compact()
}

// fatal reports whether a registry error must fail the whole key (the registry gave no final
// answer, or refused access) rather than reject one signature.
func fatal(err error) bool {
	var tl *tooLargeError
	if errors.As(err, &tl) {
		return false
	}
	var ue *registry.UnavailableError
	var de *registry.DeniedError
	var na *registry.NotAllowedError
	return errors.As(err, &ue) || errors.As(err, &de) || errors.As(err, &na) ||
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
}

func (p *partial) reject(kind, format string, args ...any) {
	p.rejected = append(p.rejected, Rejection{Kind: kind, Reason: fmt.Sprintf(format, args...)})
}

func (s *Service) applicable(ref imageref.Ref) []*authority {
	var out []*authority
	for _, a := range s.auths {
		if a.applies(ref) {
			out = append(out, a)
		}
	}
	return out
}

// Lookup verifies one parsed reference.
func (s *Service) Lookup(ctx context.Context, ref imageref.Ref) (*Value, error) {
	v := &Value{Answer: &Answer{Image: ref.Normalized(), Signatures: []Signature{}, Attestations: []Attestation{}, Platforms: []Platform{}}}
	auths := s.applicable(ref)

	var digest string
	var mediaType types.MediaType
	if ref.Digest == "" {
		d, err := s.reg.Head(ctx, ref)
		if err != nil {
			return nil, err
		}
		digest, mediaType = d.Digest.String(), d.MediaType
		v.TagDigest = digest
	} else {
		digest = ref.Digest
	}
	v.Digest = digest
	h, err := v1.NewHash(digest)
	if err != nil {
		return nil, &imageref.InvalidError{Ref: ref.Original, Reason: err.Error()}
	}

	var (
		sigP, attP, refP partial
		platErr, tagErr  error
		platforms        []v1.Descriptor
		headMediaType    types.MediaType
		tagDigest        string
	)
	// Read only what the applicable authorities can publish.
	sigAuths := filter(auths, func(a *authority) bool { return a.cosign })
	attAuths := filter(sigAuths, func(a *authority) bool { return a.attestations })
	refAuths := filter(auths, func(a *authority) bool { return a.bundle })
	var branches []func()
	if len(sigAuths) > 0 {
		branches = append(branches, func() { s.signatures(ctx, ref, h, sigAuths, &sigP) })
	}
	if len(attAuths) > 0 {
		branches = append(branches, func() { s.attestations(ctx, ref, h, attAuths, &attP) })
	}
	if len(refAuths) > 0 {
		branches = append(branches, func() { s.referrers(ctx, ref, h, refAuths, &refP) })
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
				tagErr = err
				if fatal(err) {
					return // the key fails with the tag's error; no second HEAD into an outage
				}
			} else if tagDigest = d.Digest.String(); tagDigest == digest {
				mt = d.MediaType
			}
			s.platformsOf(ctx, ref, digest, mt, &headMediaType, &platforms, &platErr)
		})
	case mediaType == "" || mediaType.IsIndex():
		branches = append(branches, func() {
			s.platformsOf(ctx, ref, digest, mediaType, &headMediaType, &platforms, &platErr)
		})
	default:
		headMediaType = mediaType
	}
	parallel(branches)

	if platErr != nil {
		return nil, platErr
	}
	for _, p := range []*partial{&sigP, &attP, &refP} {
		if p.err != nil {
			return nil, p.err
		}
	}
	v.MediaType = string(headMediaType)
	if ref.Digest != "" && ref.Tag != "" {
		switch {
		case tagErr == nil:
			v.TagDigest = tagDigest
		case fatal(tagErr):
			return nil, tagErr
		default:
			v.TagError = tagErr.Error()
		}
	}

	// Merge.
	for _, p := range []*partial{&sigP, &attP, &refP} {
		v.Signatures = appendUniqueSigs(v.Signatures, p.sigs)
		for i, st := range p.stmts {
			s.addStatement(v, st, p.stmtFmt[i])
		}
		for _, r := range p.rejected {
			v.reject(r.Kind, "%s", r.Reason)
		}
		v.SBOM.Unverified = append(v.SBOM.Unverified, p.sboms...)
	}

	for _, d := range platforms {
		p := Platform{Digest: d.Digest.String()}
		if d.Platform != nil {
			p.OS, p.Architecture, p.Variant = d.Platform.OS, d.Platform.Architecture, d.Platform.Variant
		}
		v.Platforms = append(v.Platforms, p)
	}
	if len(platforms) > 0 {
		if err := s.verifyPlatforms(ctx, ref, auths, v); err != nil {
			return nil, err
		}
	}
	v.Signed = len(v.Signatures) > 0
	v.loadedAt = s.now()
	return v, nil
}

// platformsOf learns the media type (one HEAD by digest when the reference had a digest) and,
// for an index, its platform manifests.
func (s *Service) platformsOf(ctx context.Context, ref imageref.Ref, digest string, mt types.MediaType, outMT *types.MediaType, out *[]v1.Descriptor, outErr *error) {
	if mt == "" {
		d, err := s.reg.Head(ctx, ref)
		if err != nil {
			*outErr = err
			return
		}
		mt = d.MediaType
	}
	*outMT = mt
	if !mt.IsIndex() {
		return
	}
	m, err := s.reg.Manifest(ctx, ref, digest, 4<<20)
	if err != nil {
		*outErr = err
		return
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(m.Raw, &idx); err != nil {
		*outErr = &registry.UnavailableError{Ref: ref.Original, Err: fmt.Errorf("malformed index %s: %w", digest, err)}
		return
	}
	*out = idx.Manifests
}

// parallel runs fs concurrently and returns when all are done; the first runs on the calling
// goroutine (one goroutine and its stack growth fewer per lookup).
func parallel(fs []func()) {
	if len(fs) == 0 {
		return
	}
	var wg sync.WaitGroup
	for _, f := range fs[1:] {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	fs[0]()
	wg.Wait()
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

func appendUniqueSigs(dst, src []Signature) []Signature {
outer:
	for _, s := range src {
		for _, d := range dst {
			if d.Authority == s.Authority && d.KeyID == s.KeyID && d.Format == s.Format {
				continue outer
			}
		}
		dst = append(dst, s)
	}
	return dst
}

// addStatement records a verified statement: a cosign sign predicate (bundle format) is a
// signature; everything else an attestation, summarised as SBOM or provenance when it is one.
func (s *Service) addStatement(v *Value, vs *verifiedStatement, format string) {
	pt := vs.st.PredicateType
	if pt == cosignSignPredicate {
		v.Signatures = appendUniqueSigs(v.Signatures, vs.sigs)
		return
	}
	for _, sig := range vs.sigs {
		a := Attestation{Authority: sig.Authority, PredicateType: pt, Format: format}
		dup := false
		for _, e := range v.Attestations {
			if e == a {
				dup = true
				break
			}
		}
		if !dup {
			v.Attestations = append(v.Attestations, a)
		}
	}
	if f := sbomFormat(pt); f != "" && !v.SBOM.Present {
		v.SBOM.Present, v.SBOM.Format, v.SBOM.Authority = true, f, vs.sigs[0].Authority
	}
	if !v.Provenance.Present {
		if p, ok := summariseProvenance(pt, vs.st.Predicate); ok {
			p.Authority = vs.sigs[0].Authority
			v.Provenance = p
		}
	}
}

func sigTag(h v1.Hash, suffix string) string { return h.Algorithm + "-" + h.Hex + "." + suffix }

// signatures reads sha256-<hex>.sig and verifies each layer.
func (s *Service) signatures(ctx context.Context, ref imageref.Ref, h v1.Hash, auths []*authority, p *partial) {
	m, ok := s.tagManifest(ctx, ref, sigTag(h, "sig"), "signature", p)
	if !ok {
		return
	}
	s.eachLayer(ctx, ref, m.Layers, "signature", "payload", s.lim.PayloadBytes, p, payloadGuess(ref, h), func(l v1.Descriptor, payload []byte) error {
		sigs, err := checkSimpleSigning(auths, l.Annotations, payload, h.String())
		if err != nil {
			return err
		}
		p.sigs = append(p.sigs, sigs...)
		return nil
	})
}

// eachLayer reads the layers of a signature or attestation manifest (at most lim.Layers, each
// at most sizeCap bytes) and hands each to check. A layer that cannot be read or does not
// check is rejected with its reason and the rest go on; a registry outage ends the lookup.
//
// guess, when not nil, may return a layer's content without reading it: bytes whose sha256 is
// the layer's digest (see payloadGuess).
func (s *Service) eachLayer(ctx context.Context, ref imageref.Ref, layers []v1.Descriptor, kind, what string, sizeCap int64, p *partial, guess func(v1.Descriptor) []byte, check func(v1.Descriptor, []byte) error) {
	for i, l := range layers {
		if i >= s.lim.Layers {
			p.reject(kind, "more than %d %s layers; the rest were ignored", s.lim.Layers, kind)
			break
		}
		if l.Size > sizeCap {
			s.checks.WithLabelValues(kind, "rejected").Inc()
			p.reject(kind, "layer %s: %s of %d bytes exceeds the %d-byte cap", l.Digest, what, l.Size, sizeCap)
			continue
		}
		var b []byte
		if guess != nil {
			b = guess(l)
		}
		if b == nil {
			var err error
			if b, err = s.reg.Blob(ctx, ref, l.Digest, sizeCap); err != nil {
				if fatal(err) {
					p.err = err
					return
				}
				s.checks.WithLabelValues(kind, "rejected").Inc()
				p.reject(kind, "layer %s: %v", l.Digest, err)
				continue
			}
		} else {
			s.blobsSaved.Inc()
		}
		if err := check(l, b); err != nil {
			s.checks.WithLabelValues(kind, "rejected").Inc()
			p.reject(kind, "layer %s: %v", l.Digest, err)
			continue
		}
		s.checks.WithLabelValues(kind, "verified").Inc()
	}
}

// tagManifest fetches a cosign tag-scheme manifest; absent is not an error.
func (s *Service) tagManifest(ctx context.Context, ref imageref.Ref, tag, kind string, p *partial) (*v1.Manifest, bool) {
	m, err := s.reg.Manifest(ctx, ref, tag, s.lim.ManifestBytes)
	if err != nil {
		if isNotFound(err) {
			return nil, false
		}
		if fatal(err) {
			p.err = err
			return nil, false
		}
		p.reject(kind, "%s: %v", tag, err)
		return nil, false
	}
	var man v1.Manifest
	if err := json.Unmarshal(m.Raw, &man); err != nil {
		p.reject(kind, "%s: malformed manifest: %v", tag, err)
		return nil, false
	}
	return &man, true
}

// attestations reads sha256-<hex>.att and verifies each DSSE layer.
func (s *Service) attestations(ctx context.Context, ref imageref.Ref, h v1.Hash, auths []*authority, p *partial) {
	m, ok := s.tagManifest(ctx, ref, sigTag(h, "att"), "attestation", p)
	if !ok {
		return
	}
	s.dsseLayers(ctx, ref, h, auths, m.Layers, "cosign", p)
}

func (s *Service) dsseLayers(ctx context.Context, ref imageref.Ref, h v1.Hash, auths []*authority, layers []v1.Descriptor, format string, p *partial) {
	s.eachLayer(ctx, ref, layers, "attestation", "envelope", s.lim.AttestationBytes, p, nil, func(l v1.Descriptor, raw []byte) error {
		vs, err := checkDSSE(auths, l.Annotations, raw, h.String())
		if err != nil {
			return err
		}
		p.stmts = append(p.stmts, vs)
		p.stmtFmt = append(p.stmtFmt, format)
		return nil
	})
}

// referrers lists the OCI referrers of the digest: Sigstore bundles and in-toto referrers are
// verified; SBOM artifacts are reported as unverified.
func (s *Service) referrers(ctx context.Context, ref imageref.Ref, h v1.Hash, auths []*authority, p *partial) {
	idx, err := s.reg.Referrers(ctx, ref, h)
	if err != nil {
		if isNotFound(err) {
			return
		}
		if fatal(err) {
			p.err = err
			return
		}
		p.reject("bundle", "referrers of %s: %v", h, err)
		return
	}
	for i, d := range idx.Manifests {
		if i >= s.lim.Referrers {
			p.reject("bundle", "more than %d referrers; the rest were ignored", s.lim.Referrers)
			break
		}
		at := d.ArtifactType
		if f := sbomArtifactFormat(at); f != "" {
			p.sboms = append(p.sboms, UnverifiedSBOM{Format: f, ArtifactType: at, Digest: d.Digest.String()})
			continue
		}
		_, isBundle := d.Annotations["dev.sigstore.bundle.content"]
		if !isBundle && !strings.HasPrefix(at, bundleMediaPrefix) && at != intotoPayloadType && at != "" && at != emptyJSON {
			p.others = append(p.others, d) // some other artifact: nothing to verify here
			continue
		}
		// Registries disagree on where the artifact type comes from (the manifest's
		// artifactType or its config media type), so the manifest decides.
		m, ok := s.referrerManifest(ctx, ref, d, "bundle", p)
		if !ok {
			continue
		}
		if m.Subject == nil || m.Subject.Digest != h {
			s.checks.WithLabelValues("bundle", "rejected").Inc()
			p.reject("bundle", "referrer %s: subject is not %s", d.Digest, h)
			continue
		}
		mat := m.ArtifactType
		if mat == "" {
			mat = at
		}
		switch {
		case strings.HasPrefix(mat, bundleMediaPrefix) || isBundle:
			s.bundleLayers(ctx, ref, h, auths, d, m.Layers, p)
		case mat == intotoPayloadType:
			s.dsseLayers(ctx, ref, h, auths, m.Layers, "referrer", p)
		default:
			if f := sbomArtifactFormat(mat); f != "" {
				p.sboms = append(p.sboms, UnverifiedSBOM{Format: f, ArtifactType: mat, Digest: d.Digest.String()})
			}
		}
	}
}

// emptyJSON is the OCI empty config media type; some registries report it as the artifact type.
const emptyJSON = "application/vnd.oci.empty.v1+json"

// ociManifest is an image manifest with the OCI 1.1 artifactType field ggcr's type lacks.
type ociManifest struct {
	v1.Manifest
	ArtifactType string `json:"artifactType,omitempty"`
}

func (s *Service) referrerManifest(ctx context.Context, ref imageref.Ref, d v1.Descriptor, kind string, p *partial) (*ociManifest, bool) {
	if d.Size > s.lim.ManifestBytes {
		p.reject(kind, "referrer %s: manifest of %d bytes exceeds the %d-byte cap", d.Digest, d.Size, s.lim.ManifestBytes)
		return nil, false
	}
	m, err := s.reg.Manifest(ctx, ref, d.Digest.String(), s.lim.ManifestBytes)
	if err != nil {
		if fatal(err) {
			p.err = err
		} else {
			p.reject(kind, "referrer %s: %v", d.Digest, err)
		}
		return nil, false
	}
	var man ociManifest
	if err := json.Unmarshal(m.Raw, &man); err != nil {
		p.reject(kind, "referrer %s: malformed manifest: %v", d.Digest, err)
		return nil, false
	}
	return &man, true
}

func (s *Service) bundleLayers(ctx context.Context, ref imageref.Ref, h v1.Hash, auths []*authority, d v1.Descriptor, layers []v1.Descriptor, p *partial) {
	for i, l := range layers {
		if i >= s.lim.Layers {
			break
		}
		if !strings.HasPrefix(string(l.MediaType), bundleMediaPrefix) {
			continue
		}
		if l.Size > s.lim.AttestationBytes {
			s.checks.WithLabelValues("bundle", "rejected").Inc()
			p.reject("bundle", "referrer %s: bundle of %d bytes exceeds the %d-byte cap", d.Digest, l.Size, s.lim.AttestationBytes)
			continue
		}
		raw, err := s.reg.Blob(ctx, ref, l.Digest, s.lim.AttestationBytes)
		if err != nil {
			if fatal(err) {
				p.err = err
				return
			}
			s.checks.WithLabelValues("bundle", "rejected").Inc()
			p.reject("bundle", "referrer %s: %v", d.Digest, err)
			continue
		}
		vs, err := checkBundle(auths, raw, h.String())
		if err != nil {
			s.checks.WithLabelValues("bundle", "rejected").Inc()
			p.reject("bundle", "referrer %s: %v", d.Digest, err)
			continue
		}
		s.checks.WithLabelValues("bundle", "verified").Inc()
		p.stmts = append(p.stmts, vs)
		p.stmtFmt = append(p.stmtFmt, "bundle")
	}
}

// verifyPlatforms checks, for authorities with verifyPlatforms, that every platform manifest
// of the index carries the authority's own signature; an authority that misses one is removed
// from the index's signatures.
func (s *Service) verifyPlatforms(ctx context.Context, ref imageref.Ref, auths []*authority, v *Value) error {
	var vp []*authority
	for _, a := range auths {
		if a.verifyPlatforms {
			vp = append(vp, a)
		}
	}
	if len(vp) == 0 {
		return nil
	}
	type res struct {
		names map[string]bool
		err   error
	}
	out := make([]res, len(v.Platforms))
	var wg sync.WaitGroup
	for i := range v.Platforms {
		pl := v.Platforms[i]
		if pl.OS == "unknown" && pl.Architecture == "unknown" {
			continue // build attestation manifests, not runnable platforms
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := v1.NewHash(pl.Digest)
			if err != nil {
				out[i].err = err
				return
			}
			var sp, rp partial
			var iwg sync.WaitGroup
			if sa := filter(vp, func(a *authority) bool { return a.cosign }); len(sa) > 0 {
				iwg.Add(1)
				go func() { defer iwg.Done(); s.signatures(ctx, ref, h, sa, &sp) }()
			}
			if ra := filter(vp, func(a *authority) bool { return a.bundle }); len(ra) > 0 {
				iwg.Add(1)
				go func() { defer iwg.Done(); s.referrers(ctx, ref, h, ra, &rp) }()
			}
			iwg.Wait()
			if sp.err != nil {
				out[i].err = sp.err
				return
			}
			if rp.err != nil {
				out[i].err = rp.err
				return
			}
			names := map[string]bool{}
			for _, sig := range sp.sigs {
				names[sig.Authority] = true
			}
			for _, st := range rp.stmts {
				if st.st.PredicateType == cosignSignPredicate {
					for _, sig := range st.sigs {
						names[sig.Authority] = true
					}
				}
			}
			out[i].names = names
		}()
	}
	wg.Wait()
	missing := map[string]string{}
	for i := range v.Platforms {
		pl := &v.Platforms[i]
		if pl.OS == "unknown" && pl.Architecture == "unknown" {
			continue
		}
		if out[i].err != nil {
			return out[i].err
		}
		for _, a := range vp {
			if out[i].names[a.name] {
				pl.VerifiedBy = append(pl.VerifiedBy, a.name)
			} else if _, ok := missing[a.name]; !ok {
				missing[a.name] = platformString(*pl) + " (" + pl.Digest + ")"
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	kept := v.Signatures[:0]
	for _, sig := range v.Signatures {
		if m, ok := missing[sig.Authority]; ok {
			v.reject("platform", "authority %s signed the index but not platform %s", sig.Authority, m)
			continue
		}
		kept = append(kept, sig)
	}
	v.Signatures = kept
	return nil
}

func platformString(p Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
