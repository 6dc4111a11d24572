package verify

import (
	"context"
	"encoding/json"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
)

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
