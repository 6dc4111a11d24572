package verify

import (
	"cmp"
	"context"
	"encoding/json"
	"regexp"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
)

// cosign's OCI 1.1 artifact types (`--registry-referrers-mode=oci-1-1`): signatures (a
// manifest of simple-signing layers, as under the .sig tag) and unsigned SBOMs (`cosign attach
// sbom`, the format in the layer's media type).
const (
	cosignArtifactPrefix = "application/vnd.dev.cosign.artifact."
	cosignSigArtifact    = "application/vnd.dev.cosign.artifact.sig.v1+json"
	cosignSBOMArtifact   = "application/vnd.dev.cosign.artifact.sbom.v1+json"
)

// referrers lists the OCI referrers of the digest, in digest order (the registry's listing
// order never matters, also under the referrers cap): Sigstore bundles, in-toto referrers and
// cosign's OCI 1.1 signatures are verified; SBOM artifacts are reported as unverified; any other
// artifact type that looks like a signature or attestation is rejected as not understood. Under
// a plan without attestations, in-toto referrers and SBOM artifacts are not read (bundles are:
// a bundle may hold a signature).
func (s *Service) referrers(ctx context.Context, ref imageref.Ref, h v1.Hash, auths []*authority, pl plan, p *partial) {
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
	listed := slices.Clone(idx.Manifests)
	// By algorithm, then hex: the digest's string without building it (a hostile listing of
	// 20,000 referrers built 89 MB of strings per soak in the comparisons).
	slices.SortStableFunc(listed, func(a, b v1.Descriptor) int {
		return cmp.Or(strings.Compare(a.Digest.Algorithm, b.Digest.Algorithm), strings.Compare(a.Digest.Hex, b.Digest.Hex))
	})
	for i, d := range listed {
		if i >= s.lim.Referrers {
			p.reject("bundle", "more than %d referrers; the rest were ignored", s.lim.Referrers)
			break
		}
		at := d.ArtifactType
		if !pl.attestations && (at == intotoPayloadType || at == cosignSBOMArtifact || sbomArtifactFormat(at) != "") {
			continue // listed as an attestation or SBOM: not read for signatures
		}
		if f := sbomArtifactFormat(at); f != "" {
			p.sboms = append(p.sboms, UnverifiedSBOM{Format: f, ArtifactType: at, Digest: d.Digest.String()})
			continue
		}
		_, isBundle := d.Annotations["dev.sigstore.bundle.content"]
		if !isBundle && !readReferrer(at) {
			if kind := unknownSignatureKind(at); kind != "" {
				s.checks.WithLabelValues(kind, "rejected").Inc()
				p.reject(kind, "referrer %s: artifact type %s looks like a signature or attestation, but is not a format the provider verifies", d.Digest, at)
				continue
			}
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
		if mat == "" && strings.HasPrefix(string(m.Config.MediaType), cosignArtifactPrefix) {
			mat = string(m.Config.MediaType) // ggcr-written manifests carry it only there
		}
		if mat == "" {
			mat = at
		}
		switch {
		case strings.HasPrefix(mat, bundleMediaPrefix) || isBundle:
			s.bundleLayers(ctx, ref, h, auths, d, m.Layers, p)
		case mat == intotoPayloadType && !pl.attestations:
			// an attestation: not verified for signatures
		case mat == intotoPayloadType:
			s.dsseLayers(ctx, ref, h, auths, m.Layers, "referrer", p)
		case mat == cosignSigArtifact:
			s.signatureLayers(ctx, ref, h, auths, d, m.Layers, p)
		case mat == cosignSBOMArtifact:
			p.sboms = append(p.sboms, unverifiedSBOMs(m.Layers, s.lim.Layers, UnverifiedSBOM{ArtifactType: mat, Digest: d.Digest.String()})...)
		case sbomArtifactFormat(mat) != "":
			p.sboms = append(p.sboms, UnverifiedSBOM{Format: sbomArtifactFormat(mat), ArtifactType: mat, Digest: d.Digest.String()})
		default:
			if kind := unknownSignatureKind(mat); kind != "" {
				s.checks.WithLabelValues(kind, "rejected").Inc()
				p.reject(kind, "referrer %s: artifact type %s looks like a signature or attestation, but is not a format the provider verifies", d.Digest, mat)
			}
		}
	}
}

// readReferrer reports whether a referrer listed with artifact type at is read: the types the
// provider verifies or reports, and the empty or OCI-empty type some registries list for
// manifests whose artifact type sits in the manifest.
func readReferrer(at string) bool {
	return strings.HasPrefix(at, bundleMediaPrefix) || at == intotoPayloadType || at == cosignSigArtifact ||
		at == cosignSBOMArtifact || at == "" || at == emptyJSON
}

// signatureWord matches artifact types that name a signature or attestation format.
var signatureWord = regexp.MustCompile(`(^|[./+_-])(sig|signature|signatures|sigstore|cosign|notary|notation|in-?toto|dsse|jws|pgp|gpg|att|attestation|attestations|provenance|slsa)([./+_-]|$)`)

// unknownSignatureKind classifies an artifact type the provider does not verify: "attestation"
// or "signature" when it looks like one (a Notary signature, another cosign artifact, an
// unknown attestation format), "" for other artifacts (SARIF reports, images, …).
func unknownSignatureKind(at string) string {
	a := strings.ToLower(at)
	m := signatureWord.FindAllStringSubmatch(a, -1)
	if len(m) == 0 {
		return ""
	}
	for _, x := range m {
		switch x[2] {
		case "in-toto", "intoto", "dsse", "att", "attestation", "attestations", "provenance", "slsa":
			return "attestation"
		}
	}
	return "signature"
}

// signatureLayers verifies the simple-signing layers of one of cosign's OCI 1.1 signature
// referrers d exactly as the layers of the .sig tag, reporting its signatures with format
// "referrer" and its rejections under the referrer's digest.
func (s *Service) signatureLayers(ctx context.Context, ref imageref.Ref, h v1.Hash, auths []*authority, d v1.Descriptor, layers []v1.Descriptor, p *partial) {
	var q partial
	s.eachLayer(ctx, ref, layers, "signature", "payload", s.lim.PayloadBytes, &q, payloadGuess(ref, h), false, func(l v1.Descriptor, payload []byte) error {
		sigs, err := checkSimpleSigning(auths, l.Annotations, payload, h.String())
		if err != nil {
			return err
		}
		for i := range sigs {
			sigs[i].Format = "referrer"
		}
		q.sigs = append(q.sigs, sigs...)
		return nil
	})
	if q.err != nil {
		p.err = q.err
		return
	}
	p.sigs = append(p.sigs, q.sigs...)
	for _, r := range q.rejected {
		p.reject(r.Kind, "referrer %s: %s", d.Digest, r.Reason)
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
	buf := s.layerBufs.get()
	defer s.layerBufs.put(buf)
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
		// The bundle is decoded into its own messages (protojson copies what it keeps), so
		// the buffer is free again once checkBundle returns.
		raw, err := s.reg.BlobInto(ctx, ref, l.Digest, s.lim.AttestationBytes, *buf)
		if cap(raw) > cap(*buf) {
			*buf = raw[:0]
		}
		if err != nil {
			if fatal(err) {
				p.err = err
				return
			}
			s.checks.WithLabelValues("bundle", "rejected").Inc()
			p.reject("bundle", "referrer %s: %v", d.Digest, err)
			continue
		}
		vs, err := checkBundle(auths, raw, h.String(), p.targets)
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
