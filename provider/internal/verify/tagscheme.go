package verify

import (
	"context"
	"encoding/json"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
)

func sigTag(h v1.Hash, suffix string) string { return h.Algorithm + "-" + h.Hex + "." + suffix }

// signatures reads sha256-<hex>.sig and verifies each layer.
func (s *Service) signatures(ctx context.Context, ref imageref.Ref, h v1.Hash, auths []*authority, p *partial) {
	m, ok := s.tagManifest(ctx, ref, sigTag(h, "sig"), "signature", p)
	if !ok {
		return
	}
	digest := h.Algorithm + ":" + h.Hex // h.String(), without fmt
	s.eachLayer(ctx, ref, m.Layers, "signature", "payload", s.lim.PayloadBytes, p, payloadGuess(ref, h), false, func(l v1.Descriptor, payload []byte) error {
		sigs, err := checkSimpleSigning(auths, l.Annotations, payload, digest)
		if err != nil {
			return err
		}
		p.sigs = append(p.sigs, sigs...)
		return nil
	})
}

// attestations reads sha256-<hex>.att and verifies each DSSE layer.
func (s *Service) attestations(ctx context.Context, ref imageref.Ref, h v1.Hash, auths []*authority, p *partial) {
	m, ok := s.tagManifest(ctx, ref, sigTag(h, "att"), "attestation", p)
	if !ok {
		return
	}
	s.dsseLayers(ctx, ref, h, auths, m.Layers, "cosign", p)
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

// eachLayer reads the layers of a signature or attestation manifest (at most lim.Layers, each
// at most sizeCap bytes) and hands each to check. A layer that cannot be read or does not
// check is rejected with its reason and the rest go on; a registry outage ends the lookup.
//
// guess, when not nil, may return a layer's content without reading it: bytes whose sha256 is
// the layer's digest (see payloadGuess). With reuse, layers are read into a pooled buffer
// (Service.layerBufs): check must not keep the bytes it is given.
func (s *Service) eachLayer(ctx context.Context, ref imageref.Ref, layers []v1.Descriptor, kind, what string, sizeCap int64, p *partial, guess func(v1.Descriptor) []byte, reuse bool, check func(v1.Descriptor, []byte) error) {
	var buf *[]byte
	if reuse {
		buf = s.layerBufs.get()
		defer s.layerBufs.put(buf)
	}
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
			var dst []byte
			if buf != nil {
				dst = *buf
			}
			var err error
			b, err = s.reg.BlobInto(ctx, ref, l.Digest, sizeCap, dst)
			if buf != nil && cap(b) > cap(*buf) {
				*buf = b[:0] // grown: the larger buffer is the one kept
			}
			if err != nil {
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

func (s *Service) dsseLayers(ctx context.Context, ref imageref.Ref, h v1.Hash, auths []*authority, layers []v1.Descriptor, format string, p *partial) {
	s.eachLayer(ctx, ref, layers, "attestation", "envelope", s.lim.AttestationBytes, p, nil, true, func(l v1.Descriptor, raw []byte) error {
		buf := s.payloadBufs.get()
		vs, err := checkDSSE(auths, l.Annotations, raw, h.String(), p.targets, *buf)
		if err != nil {
			s.payloadBufs.put(buf)
			return err
		}
		// The statement keeps its payload in this buffer until Attested.Release (which zeroes
		// the payload's bytes: the buffer's length).
		*buf = vs.st.payload
		p.payloads = append(p.payloads, buf)
		p.stmts = append(p.stmts, vs)
		p.stmtFmt = append(p.stmtFmt, format)
		return nil
	})
}

// sbomTag reads cosign's sha256-<hex>.sbom tag (`cosign attach sbom`): SBOMs stored without a
// signature, listed under sbom.unverified with the format their layer's media type names.
// Absent is not an error.
func (s *Service) sbomTag(ctx context.Context, ref imageref.Ref, h v1.Hash, p *partial) {
	tag := sigTag(h, "sbom")
	m, err := s.reg.Manifest(ctx, ref, tag, s.lim.ManifestBytes)
	if err != nil {
		if isNotFound(err) {
			return
		}
		if fatal(err) {
			p.err = err
			return
		}
		p.reject("attestation", "%s (unsigned SBOM): %v", tag, err)
		return
	}
	var man v1.Manifest
	if err := json.Unmarshal(m.Raw, &man); err != nil {
		p.reject("attestation", "%s (unsigned SBOM): malformed manifest: %v", tag, err)
		return
	}
	p.sboms = append(p.sboms, unverifiedSBOMs(man.Layers, s.lim.Layers, UnverifiedSBOM{Digest: m.Digest.String(), Tag: tag})...)
}

// unverifiedSBOMs lists the SBOM layers of an unsigned SBOM manifest (at most limit), each as
// base with its format and media type; a format the media type does not name is "unknown".
func unverifiedSBOMs(layers []v1.Descriptor, limit int, base UnverifiedSBOM) []UnverifiedSBOM {
	var out []UnverifiedSBOM
	for i, l := range layers {
		if i >= limit {
			break
		}
		u := base
		u.MediaType = string(l.MediaType)
		if u.Format = sbomArtifactFormat(u.MediaType); u.Format == "" {
			u.Format = "unknown"
		}
		out = append(out, u)
	}
	return out
}

// buffers is a pool of byte buffers (*[]byte) that keeps none larger than maxPooledLayer.
type buffers struct{ pool sync.Pool }

// get is an empty buffer, reused when one is free.
func (bs *buffers) get() *[]byte {
	if b, ok := bs.pool.Get().(*[]byte); ok {
		return b
	}
	return new([]byte)
}

// put gives b back for reuse, unless it grew past maxPooledLayer.
func (bs *buffers) put(b *[]byte) {
	if cap(*b) <= maxPooledLayer {
		*b = (*b)[:0]
		bs.pool.Put(b)
	}
}
