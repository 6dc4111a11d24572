//go:build interop

package interop

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// transplants: a valid signature or attestation of one image, presented for another image in
// the same repository, as an attacker with push access would. The source image still verifies;
// the target never does, and the provider says what it rejected.
func (s *suite) transplants(t *testing.T, c *cli, r *registry) {
	k := s.keys[c]["p256"]
	repo := prefix(c) + "/p256/transplant"
	auth := keyAuthority(c, "p256")
	type tc struct {
		name, row, format string
		// attach signs or attests src with the CLI.
		attach func(t *testing.T, src name.Digest)
		// move presents src's artifact for dst.
		move func(t *testing.T, src, dst name.Digest)
		want rejection
	}
	for _, x := range []tc{
		{name: "sig", row: rowTransplantSig, format: formatLegacy,
			attach: func(t *testing.T, src name.Digest) { c.sign(t, k, src.String(), formatLegacy) },
			move:   func(t *testing.T, src, dst name.Digest) { copyTag(t, src, dst, ".sig") },
			want:   rejection{Kind: "signature", Reason: "not this image"}},
		{name: "bundle", row: rowTransplantBundle, format: formatBundle,
			attach: func(t *testing.T, src name.Digest) { c.sign(t, k, src.String(), formatBundle) },
			move:   repointReferrer,
			want:   rejection{Kind: "bundle", Reason: "not this image"}},
		{name: "att", row: rowTransplantAtt, format: formatLegacy,
			attach: func(t *testing.T, src name.Digest) {
				c.attest(t, k, src.String(), formatLegacy, "slsaprovenance1", testdata(t, "slsa-v1.json"))
			},
			move: func(t *testing.T, src, dst name.Digest) { copyTag(t, src, dst, ".att") },
			want: rejection{Kind: "attestation", Reason: "not this image"}},
	} {
		t.Run("transplant/"+x.name, func(t *testing.T) {
			src := r.push(t, repo, "src-"+x.name)
			dst := r.push(t, repo, "dst-"+x.name)
			x.attach(t, src)
			x.move(t, src, dst)
			got := s.p.lookup(t, "/v1/verify", src.String(), dst.String())
			sa, da := decodeAnswer(t, got[src.String()]), decodeAnswer(t, got[dst.String()])

			ch := newCheck(t, fmt.Sprintf("cosign %s, %s source image, %s", c.name, x.name, r.mode), sa.raw)
			if x.name == "att" {
				ch.eq("attestations", len(sa.Attestations), 1)
			} else {
				ch.signatures(sa.Signatures, signature{Authority: auth, KeyID: k.keyID, Algorithm: k.algorithm, Verified: true, Format: wantFormat[x.format]})
			}
			ch.done()

			ch = newCheck(t, fmt.Sprintf("cosign %s, %s transplanted to another image, %s", c.name, x.name, r.mode), da.raw)
			ch.eq("digest", da.Digest, dst.DigestStr())
			ch.eq("signed", da.Signed, false)
			ch.signatures(da.Signatures)
			ch.attestations(da.Attestations)
			ch.provenance(da.Provenance)
			ch.rejected(da.Rejected, x.want)
			ch.done()
			out := signatureOutcome(da)
			if x.name == "att" {
				out = strings.Replace(out, "**not verified**", "**no attestation verified**", 1)
			}
			s.m.record(t, tableOther, x.row, c, r, out)
		})
	}
}

func decodeAnswer(t *testing.T, it item) *answer {
	t.Helper()
	if it.Error != "" {
		t.Fatalf("/v1/verify %s: error %q", it.Key, it.Error)
	}
	a := &answer{raw: it.Value}
	if err := json.Unmarshal(it.Value, a); err != nil {
		t.Fatalf("/v1/verify %s: decoding %s: %v", it.Key, it.Value, err)
	}
	return a
}

// tagFor is cosign's tag for digest d with suffix (".sig", ".att"): sha256-<hex><suffix>.
func tagFor(d name.Digest, suffix string) name.Tag {
	return d.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1) + suffix)
}

// copyTag writes the manifest of src's cosign tag, byte for byte, as dst's.
func copyTag(t *testing.T, src, dst name.Digest, suffix string) {
	t.Helper()
	desc, err := remote.Get(tagFor(src, suffix))
	if err != nil {
		t.Fatalf("remote.Get(%s) = %v", tagFor(src, suffix), err)
	}
	if err := remote.Put(tagFor(dst, suffix), desc); err != nil {
		t.Fatalf("remote.Put(%s) = %v", tagFor(dst, suffix), err)
	}
}

// rawManifest is a manifest to write as is.
type rawManifest struct {
	raw []byte
	mt  types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.raw, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mt, nil }

// repointReferrer writes src's only referrer, its Sigstore bundle, again with dst as its subject (same
// layers, same bundle); without the referrers API go-containerregistry adds it to dst's
// fallback tag.
func repointReferrer(t *testing.T, src, dst name.Digest) {
	t.Helper()
	idx, err := remote.Referrers(src)
	if err != nil {
		t.Fatalf("remote.Referrers(%s) = %v", src, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("%s referrers = %+v, want the one signature bundle", src, im.Manifests)
	}
	desc, err := remote.Get(src.Context().Digest(im.Manifests[0].Digest.String()))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	head, err := remote.Head(dst)
	if err != nil {
		t.Fatal(err)
	}
	m["subject"] = map[string]any{"mediaType": head.MediaType, "digest": head.Digest.String(), "size": head.Size}
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := v1.SHA256(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(dst.Context().Digest(h.String()), rawManifest{raw: raw, mt: desc.MediaType}); err != nil {
		t.Fatalf("remote.Put(re-pointed referrer) = %v", err)
	}
	after, err := remote.Referrers(dst)
	if err != nil {
		t.Fatal(err)
	}
	am, err := after.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(am.Manifests) != 1 || am.Manifests[0].Digest != h {
		t.Fatalf("%s referrers after re-pointing = %+v, want only %s", dst, am.Manifests, h)
	}
}
