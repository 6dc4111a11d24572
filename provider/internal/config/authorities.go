package config

// Authority is a named source of trust that constraints refer to (K8sImageSignature
// parameters `authorities`, `anyOf`). Exactly one of Key and Keyless is set.
type Authority struct {
	Name string `json:"name"`
	// Images are globs over normalised references ("registry.bank.internal/**"); `*` stays in
	// one path segment, `**` crosses segments. Empty means every image.
	Images  []string `json:"images,omitempty"`
	Key     *Key     `json:"key,omitempty"`
	Keyless *Keyless `json:"keyless,omitempty"`
}

// Key is a public key: a PEM file or a sigstore KMS reference.
type Key struct {
	// File is a PEM public key (ECDSA, Ed25519 or RSA).
	File string `json:"file,omitempty"`
	// KMS is a sigstore KMS reference: awskms://, gcpkms://, azurekms://, hashivault://.
	KMS string `json:"kms,omitempty"`
	// HashAlgorithm is sha256 (default), sha384 or sha512.
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
