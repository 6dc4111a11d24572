package verify

import (
	"fmt"
	"time"
	"unsafe"

	"github.com/imagetrust/imagetrust/provider/internal/cache"
)

// Value is the /v1/verify answer for one key: the Answer, and Stale. Only facts proven by
// cryptography against a configured authority, for this digest, appear in Signatures,
// Attestations, SBOM.Formats and Provenance; what was found but not verified is listed in
// SBOM.Unverified and Rejected. Every list is in a stable order that does not depend on the
// order in which the registry listed anything (see finish), so the same image gives the same
// bytes on every lookup.
//
// The answer's fields sit behind a pointer so that the form the cache keeps (see split) is a
// few words plus the encoded bytes; encoding/json writes the embedded fields in place, so the
// JSON is that of one flat object, "stale" last. The cached form holds only what verification
// found about the digest, once per digest, plan and applicable authorities; the image as
// written and the tag's digest are added when the answer is served (see shared.go).
type Value struct {
	*Answer
	// Stale: served from cache during a registry outage (see cache.maxStale).
	Stale bool `json:"stale,omitempty"`

	// signed is Answer.Signed, kept when the Answer is dropped (compact).
	signed bool
	// loadedAt is when the answer was computed (unsigned answers expire sooner).
	loadedAt time.Time
	// packed is the per-digest part of the answer (see split), set on the cached form; a Value
	// with packed set has no Answer.
	packed cache.Packed
	// key is set on the cached form of a name:tag@digest key, whose tag is looked up per key
	// (see keyPart). Tag-only and digest-only keys cache the per-digest part itself (their
	// tagDigest is the digest, or empty). A pointer keeps every cached Value at 80 bytes.
	key *keyPart
}

// keyPart is what a name:tag@digest key caches besides the per-digest part it shares with every
// key of that digest: what the tag points at now, or why it points at nothing.
type keyPart struct {
	part                *Value
	tagDigest, tagError string
}

// Answer holds the fields of a Value.
type Answer struct {
	// Image is the normalised reference.
	Image string `json:"image"`
	// Digest is what the reference resolves to (the written digest when there is one).
	Digest string `json:"digest"`
	// MediaType of the manifest or index at Digest.
	MediaType string `json:"mediaType,omitempty"`
	// Signed: at least one signature verified against an authority.
	Signed       bool          `json:"signed"`
	Signatures   []Signature   `json:"signatures"`
	Attestations []Attestation `json:"attestations"`
	SBOM         SBOM          `json:"sbom"`
	// Provenance lists every verified SLSA provenance statement (v0.2 or v1), one entry per
	// statement content and authority.
	Provenance []Provenance `json:"provenance"`
	// Platforms of a multi-arch index (empty for a single-platform manifest): the first
	// Limits.Platforms of them.
	Platforms []Platform `json:"platforms"`
	// PlatformsTotal is how many platforms the index lists, PlatformsTruncated whether
	// Platforms holds fewer (a policy must not take an unlisted platform as absent); both are
	// left out for a single-platform image, platformsTruncated unless it is true.
	PlatformsTotal     int  `json:"platformsTotal,omitempty"`
	PlatformsTruncated bool `json:"platformsTruncated,omitempty"`
	// TagDigest is what the written tag points at now ("" when the reference has no tag or the
	// tag no longer exists). For name:tag@digest, compare it with Digest to detect drift.
	TagDigest string `json:"tagDigest"`
	// TagError says why TagDigest is empty for a reference with a tag.
	TagError string `json:"tagError,omitempty"`
	// Rejected lists signatures and attestations that were found but did not verify, with why
	// (capped at maxRejected).
	Rejected []Rejection `json:"rejected,omitempty"`
	// Reads is what the lookup read when it did not read everything: ReadsSignatures for
	// /v1/verify/signatures (attestations, SBOM and provenance empty because they were not read;
	// a policy must never take them as absent). Left out for /v1/verify, which reads everything.
	Reads string `json:"reads,omitempty"`
}

// IsSigned reports whether at least one signature verified (also for the cached form).
func (v *Value) IsSigned() bool {
	if v.Answer != nil {
		return v.Signed
	}
	return v.signed
}

// CacheBytes is the memory a cached answer holds: the Value and its packed bytes (cache.Sizer);
// a per-key Value of a name:tag@digest key counts the per-digest part it points at too, so an
// entry shared by several keys is counted once per key (the estimate errs high). A cached error
// ("not found:", "limit exceeded:") has no Value: 0.
func (v *Value) CacheBytes() int {
	if v == nil {
		return 0
	}
	n := valueBytes + v.packed.Size()
	if k := v.key; k != nil {
		n += keyPartBytes + len(k.tagDigest) + len(k.tagError) + k.part.CacheBytes()
	}
	return n
}

// valueBytes is the size of a Value.
const (
	valueBytes   = int(unsafe.Sizeof(Value{}))
	keyPartBytes = int(unsafe.Sizeof(keyPart{}))
)

// Signature is one verified signature.
type Signature struct {
	Authority string `json:"authority"`
	// KeyID is "sha256:<hex>" of the public key (DER) for key authorities, of the certificate
	// (DER) for keyless ones.
	KeyID string `json:"keyId"`
	// Issuer and Subject are the OIDC issuer and certificate identity (keyless only).
	Issuer    string `json:"issuer,omitempty"`
	Subject   string `json:"subject,omitempty"`
	Algorithm string `json:"algorithm"`
	Verified  bool   `json:"verified"`
	// Format is "cosign" (tag scheme sha256-<hex>.sig), "referrer" (cosign's OCI 1.1 signature
	// referrer, `cosign sign --registry-referrers-mode=oci-1-1`) or "bundle" (Sigstore bundle
	// referrer).
	Format string `json:"format"`
	// signedAt is the earliest verified log or timestamp-authority time (keyless only).
	signedAt time.Time
}

// Attestation is one verified in-toto attestation whose subject is this digest.
type Attestation struct {
	Authority     string `json:"authority"`
	PredicateType string `json:"predicateType"`
	// Format is "cosign" (tag scheme sha256-<hex>.att), "referrer" (in-toto referrer) or
	// "bundle" (Sigstore bundle referrer).
	Format string `json:"format"`
}

// SBOM summarises the SBOMs.
type SBOM struct {
	// Formats of the verified SPDX / CycloneDX attestations ("spdx", "cyclonedx"): sorted, each
	// once, empty when there is none.
	Formats []string `json:"formats"`
	// Unverified lists SBOMs attached without a signature (plain OCI referrers, `cosign attach
	// sbom`): reported, never counted.
	Unverified []UnverifiedSBOM `json:"unverified,omitempty"`
}

// UnverifiedSBOM is an SBOM attached without a verified signature.
type UnverifiedSBOM struct {
	// Format is "spdx", "cyclonedx" or "syft".
	Format string `json:"format"`
	// ArtifactType of the referrer (absent for the .sbom tag).
	ArtifactType string `json:"artifactType,omitempty"`
	// MediaType of the SBOM itself when it was read from the manifest (cosign's artifacts name
	// the format only there).
	MediaType string `json:"mediaType,omitempty"`
	// Digest of the referrer or .sbom tag manifest.
	Digest string `json:"digest"`
	// Tag is cosign's sha256-<hex>.sbom tag when the SBOM was found there.
	Tag      string `json:"tag,omitempty"`
	Verified bool   `json:"verified"`
}

// Provenance is one verified SLSA provenance statement (v0.2 or v1) and the authority that
// signed it.
type Provenance struct {
	BuilderID     string `json:"builderId"`
	SourceURI     string `json:"sourceUri"`
	BuildType     string `json:"buildType"`
	PredicateType string `json:"predicateType"`
	Authority     string `json:"authority"`
}

// Platform is one manifest of an index.
type Platform struct {
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant,omitempty"`
	Digest       string `json:"digest"`
	// VerifiedBy names the verifyPlatforms authorities whose signature on this platform
	// manifest verified (only checked when such an authority applies).
	VerifiedBy []string `json:"verifiedBy,omitempty"`
}

// Rejection is something found that did not verify.
type Rejection struct {
	// Kind: "signature", "attestation", "bundle", "platform".
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
}

// maxRejected caps the rejections an answer lists (the first ones in sorted order; see finish).
const maxRejected = 16

func (v *Value) reject(kind, format string, args ...any) {
	v.Rejected = append(v.Rejected, Rejection{Kind: kind, Reason: fmt.Sprintf(format, args...)})
}
