package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Authority is a named source of trust that constraints refer to (K8sImageSignature
// parameters `authorities`, `anyOf`). Exactly one of Key and Keyless is set.
type Authority struct {
	Name string `json:"name"`
	// Images are globs over normalised references ("registry.bank.internal/**"); `*` stays in
	// one path segment, `**` crosses segments. Empty means every image.
	Images  []string `json:"images,omitempty"`
	Key     *Key     `json:"key,omitempty"`
	Keyless *Keyless `json:"keyless,omitempty"`
	// VerifyPlatforms: for a multi-arch index, this authority counts only when the index AND
	// every platform manifest in it carry a valid signature of this authority (attestation
	// manifests of platform "unknown/unknown" excluded). Default false: the index alone.
	VerifyPlatforms bool `json:"verifyPlatforms,omitempty"`
	// Formats this authority publishes: "cosign" (cosign's tag scheme, sha256-<hex>.sig and
	// .att) and/or "bundle" (OCI referrers: Sigstore bundles, in-toto referrers). Default
	// both. An image's registry reads are limited to what its authorities can publish.
	Formats []string `json:"formats,omitempty"`
	// Attestations: look for this authority's attestations (default true). With false (and
	// formats [cosign]) an image costs one HEAD and two GETs.
	Attestations *bool `json:"attestations,omitempty"`
}

// Authority formats.
const (
	FormatCosign = "cosign"
	FormatBundle = "bundle"
)

// HasFormat reports whether the authority publishes format (no Formats: every format).
func (a *Authority) HasFormat(f string) bool {
	if len(a.Formats) == 0 {
		return true
	}
	for _, x := range a.Formats {
		if x == f {
			return true
		}
	}
	return false
}

// WantsAttestations reports whether the authority's attestations are read (default true).
func (a *Authority) WantsAttestations() bool { return a.Attestations == nil || *a.Attestations }

// Key is a public key: a PEM file or a sigstore KMS reference.
type Key struct {
	// File is a PEM public key (ECDSA, Ed25519 or RSA).
	File string `json:"file,omitempty"`
	// KMS is a sigstore KMS reference: awskms://, gcpkms://, azurekms://, hashivault://.
	KMS string `json:"kms,omitempty"`
	// HashAlgorithm is sha256, sha384 or sha512. Default: the key's own, as cosign signs (ECDSA
	// P-256 sha256, P-384 sha384, P-521 sha512; RSA sha256); for an ECDSA key a value that
	// contradicts the curve is an error (see KeyHash). A KMS key's curve is checked when its
	// public key is fetched at start.
	HashAlgorithm string `json:"hashAlgorithm,omitempty"`
}

// Keyless trusts Fulcio certificates for an OIDC identity.
type Keyless struct {
	Issuer        string `json:"issuer,omitempty"`
	IssuerRegExp  string `json:"issuerRegExp,omitempty"`
	Subject       string `json:"subject,omitempty"`
	SubjectRegExp string `json:"subjectRegExp,omitempty"`
	// TrustedRootFile is a Sigstore trusted_root.json (no TUF, no network).
	TrustedRootFile string `json:"trustedRootFile"`
	// RequireTlog requires a transparency-log proof (default true).
	RequireTlog *bool `json:"requireTlog,omitempty"`
	// RequireSCT requires a certificate transparency SCT (default true).
	RequireSCT *bool `json:"requireSCT,omitempty"`
}

// KMSSchemes are the sigstore KMS reference schemes a Key.KMS may use.
var KMSSchemes = []string{"awskms://", "gcpkms://", "azurekms://", "hashivault://"}

// CompileImageGlob turns an authority image glob into an anchored regular expression over
// normalised references and repositories: `**` matches any characters (across path
// segments), `*` any characters except '/', everything else literally.
func CompileImageGlob(glob string) (*regexp.Regexp, error) {
	if glob == "" {
		return nil, errors.New("empty glob")
	}
	if strings.ContainsAny(glob, " \t\r\n") {
		return nil, fmt.Errorf("glob %q contains whitespace", glob)
	}
	var b strings.Builder
	b.WriteString(`^`)
	for i := 0; i < len(glob); i++ {
		switch {
		case strings.HasPrefix(glob[i:], "**"):
			b.WriteString(`.*`)
			i++
		case glob[i] == '*':
			b.WriteString(`[^/]*`)
		default:
			b.WriteString(regexp.QuoteMeta(glob[i : i+1]))
		}
	}
	b.WriteString(`$`)
	return regexp.Compile(b.String())
}
