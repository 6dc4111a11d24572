package config

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// maxKeyFileBytes bounds a PEM public key file.
const maxKeyFileBytes = 64 << 10

// validateAuthorities checks the trust authorities: unique names, valid image globs, exactly
// one of key/keyless, a key with exactly one of file/kms (a PEM public key that parses, or a
// supported KMS scheme) and a hashAlgorithm that agrees with an ECDSA key file's curve, a
// keyless identity with an issuer and a subject (exact or regexp) and a trusted root file that
// parses. Errors name the field: authorities[1].keyless.subjectRegExp.
func (c *Config) validateAuthorities() error {
	seen := make(map[string]int, len(c.Authorities))
	for i := range c.Authorities {
		a := &c.Authorities[i]
		p := fmt.Sprintf("authorities[%d]", i)
		if err := validateAuthorityName(a.Name); err != nil {
			return fieldErr(p+".name", "%v", err)
		}
		if j, dup := seen[a.Name]; dup {
			return fieldErr(p+".name", "duplicate authority name %q (also authorities[%d])", a.Name, j)
		}
		seen[a.Name] = i
		for j, g := range a.Images {
			if _, err := CompileImageGlob(g); err != nil {
				return fieldErr(fmt.Sprintf("%s.images[%d]", p, j), "invalid glob: %v", err)
			}
		}
		fseen := map[string]bool{}
		for j, f := range a.Formats {
			if f != FormatCosign && f != FormatBundle {
				return fieldErr(fmt.Sprintf("%s.formats[%d]", p, j), "must be %q or %q, got %q", FormatCosign, FormatBundle, f)
			}
			if fseen[f] {
				return fieldErr(fmt.Sprintf("%s.formats[%d]", p, j), "duplicate format %q", f)
			}
			fseen[f] = true
		}
		switch {
		case a.Key == nil && a.Keyless == nil:
			return fieldErr(p, "exactly one of key and keyless is required, got neither")
		case a.Key != nil && a.Keyless != nil:
			return fieldErr(p, "exactly one of key and keyless is required, got both")
		case a.Key != nil:
			if err := validateKey(p+".key", a.Key); err != nil {
				return err
			}
		default:
			if err := validateKeyless(p+".keyless", a.Keyless); err != nil {
				return err
			}
		}
	}
	return nil
}

var authorityName = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9._-]{0,126}[a-zA-Z0-9])?$`)

func validateAuthorityName(n string) error {
	if n == "" {
		return fmt.Errorf("required")
	}
	if !authorityName.MatchString(n) {
		return fmt.Errorf("%q must be 1-128 letters, digits, '.', '_' or '-', starting and ending with a letter or digit", n)
	}
	return nil
}

func validateKey(p string, k *Key) error {
	switch k.HashAlgorithm {
	case "", "sha256", "sha384", "sha512":
	default:
		return fieldErr(p+".hashAlgorithm", "must be sha256, sha384 or sha512, got %q", k.HashAlgorithm)
	}
	switch {
	case k.File == "" && k.KMS == "":
		return fieldErr(p, "exactly one of file and kms is required, got neither")
	case k.File != "" && k.KMS != "":
		return fieldErr(p, "exactly one of file and kms is required, got both")
	case k.KMS != "":
		for _, s := range KMSSchemes {
			if strings.HasPrefix(k.KMS, s) && len(k.KMS) > len(s) {
				return nil
			}
		}
		return fieldErr(p+".kms", "%q is not a supported KMS reference; use one of %s followed by the key", k.KMS, strings.Join(KMSSchemes, ", "))
	}
	pub, err := LoadPublicKeyFile(k.File)
	if err != nil {
		return fieldErr(p+".file", "%v", err)
	}
	if _, err := KeyHash(pub, k.HashAlgorithm); err != nil {
		return fieldErr(p+".hashAlgorithm", "%v", err)
	}
	return nil
}

// LoadPublicKeyFile reads a PEM public key (ECDSA, Ed25519 or RSA of at least 2048 bits).
func LoadPublicKeyFile(path string) (any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read only: a close error changes nothing
	buf, err := io.ReadAll(io.LimitReader(f, maxKeyFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(buf) > maxKeyFileBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxKeyFileBytes)
	}
	pub, err := cryptoutils.UnmarshalPEMToPublicKey(buf)
	if err != nil {
		return nil, fmt.Errorf("%s: not a PEM public key: %w", path, err)
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey, ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("%s: RSA key of %d bits; at least 2048 required", path, k.N.BitLen())
		}
	default:
		return nil, fmt.Errorf("%s: unsupported public key type %T; use ECDSA, Ed25519 or RSA", path, pub)
	}
	return pub, nil
}

func validateKeyless(p string, k *Keyless) error {
	if err := exactlyOne(p, "issuer", k.Issuer, "issuerRegExp", k.IssuerRegExp); err != nil {
		return err
	}
	if err := exactlyOne(p, "subject", k.Subject, "subjectRegExp", k.SubjectRegExp); err != nil {
		return err
	}
	if k.IssuerRegExp != "" {
		if _, err := regexp.Compile(k.IssuerRegExp); err != nil {
			return fieldErr(p+".issuerRegExp", "invalid regexp %q: %v", k.IssuerRegExp, err)
		}
	}
	if k.SubjectRegExp != "" {
		if _, err := regexp.Compile(k.SubjectRegExp); err != nil {
			return fieldErr(p+".subjectRegExp", "invalid regexp %q: %v", k.SubjectRegExp, err)
		}
	}
	if k.TrustedRootFile == "" {
		return fieldErr(p+".trustedRootFile", "required: a Sigstore trusted_root.json (no TUF or network is used)")
	}
	tr, err := root.NewTrustedRootFromPath(k.TrustedRootFile)
	if err != nil {
		return fieldErr(p+".trustedRootFile", "%v", err)
	}
	if len(tr.FulcioCertificateAuthorities()) == 0 {
		return fieldErr(p+".trustedRootFile", "%s has no certificate authorities: keyless signatures could never verify", k.TrustedRootFile)
	}
	if k.RequireTlog == nil || *k.RequireTlog {
		if len(tr.RekorLogs()) == 0 {
			return fieldErr(p+".trustedRootFile", "%s has no transparency logs but requireTlog is true", k.TrustedRootFile)
		}
	}
	if k.RequireSCT == nil || *k.RequireSCT {
		if len(tr.CTLogs()) == 0 {
			return fieldErr(p+".trustedRootFile", "%s has no CT logs but requireSCT is true", k.TrustedRootFile)
		}
	}
	return nil
}

func exactlyOne(p, a, av, b, bv string) error {
	switch {
	case av == "" && bv == "":
		return fieldErr(p, "exactly one of %s and %s is required, got neither", a, b)
	case av != "" && bv != "":
		return fieldErr(p, "exactly one of %s and %s is required, got both", a, b)
	}
	return nil
}
