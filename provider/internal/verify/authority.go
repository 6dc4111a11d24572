package verify

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"

	"github.com/sigstore/sigstore-go/pkg/root"
	sgverify "github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/sigstore/sigstore/pkg/signature/kms"
	"github.com/sigstore/sigstore/pkg/signature/options"

	// KMS providers register themselves with the kms package.
	_ "github.com/sigstore/sigstore/pkg/signature/kms/aws"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/azure"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/gcp"
	_ "github.com/sigstore/sigstore/pkg/signature/kms/hashivault"

	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
)

// authority is a configured authority, compiled once at start: keys parsed (KMS public keys
// fetched), trusted roots loaded, identities and globs compiled.
type authority struct {
	name            string
	globs           []*regexp.Regexp
	verifyPlatforms bool
	// cosign, bundle: the formats it publishes; attestations: whether its attestations are read.
	cosign, bundle, attestations bool

	key     *keyAuthority
	keyless *keylessAuthority
}

type keyAuthority struct {
	// verifiers: one, or for Ed25519 the pure and the pre-hashed (ed25519ph) variants.
	verifiers []signature.Verifier
	keyID     string
	algorithm string
}

type keylessAuthority struct {
	// verifiers are tried in order: observer-timestamp based (tlog or TSA), then — only when
	// requireTlog is false — the current time.
	verifiers []*sgverify.Verifier
	identity  sgverify.CertificateIdentity
}

// applies reports whether the authority covers ref (no globs: every image).
func (a *authority) applies(ref imageref.Ref) bool {
	if len(a.globs) == 0 {
		return true
	}
	repo, norm := ref.Repository(), ref.Normalized()
	for _, g := range a.globs {
		if g.MatchString(repo) || g.MatchString(norm) {
			return true
		}
	}
	return false
}

// compileAuthorities turns validated configuration into authorities. KMS public keys are
// fetched here, once.
func compileAuthorities(ctx context.Context, cfg []config.Authority) ([]*authority, error) {
	out := make([]*authority, 0, len(cfg))
	for i, c := range cfg {
		p := fmt.Sprintf("authorities[%d]", i)
		a := &authority{name: c.Name, verifyPlatforms: c.VerifyPlatforms,
			cosign: c.HasFormat(config.FormatCosign), bundle: c.HasFormat(config.FormatBundle), attestations: c.WantsAttestations()}
		for j, g := range c.Images {
			re, err := config.CompileImageGlob(g)
			if err != nil {
				return nil, fmt.Errorf("%s.images[%d]: %w", p, j, err)
			}
			a.globs = append(a.globs, re)
		}
		switch {
		case c.Key != nil:
			k, err := compileKey(ctx, c.Key)
			var he *hashError
			if errors.As(err, &he) {
				return nil, fmt.Errorf("%s.key.hashAlgorithm: %w", p, he.err)
			}
			if err != nil {
				return nil, fmt.Errorf("%s.key: %w", p, err)
			}
			a.key = k
		case c.Keyless != nil:
			k, err := compileKeyless(c.Keyless)
			if err != nil {
				return nil, fmt.Errorf("%s.keyless: %w", p, err)
			}
			a.keyless = k
		default:
			return nil, fmt.Errorf("%s: exactly one of key and keyless is required", p)
		}
		out = append(out, a)
	}
	return out, nil
}

// hashError is a key's hashAlgorithm that does not fit the key (reported at
// authorities[i].key.hashAlgorithm).
type hashError struct{ err error }

func (e *hashError) Error() string { return "hashAlgorithm: " + e.err.Error() }

func (e *hashError) Unwrap() error { return e.err }

func hashOf(name string) (crypto.Hash, error) {
	switch name {
	case config.HashSHA256:
		return crypto.SHA256, nil
	case config.HashSHA384:
		return crypto.SHA384, nil
	case config.HashSHA512:
		return crypto.SHA512, nil
	}
	return 0, fmt.Errorf("hashAlgorithm %q: must be sha256, sha384 or sha512", name)
}

// compileKey loads the key and verifies with the hash config.KeyHash chooses: the explicit
// hashAlgorithm, else the key's own (an ECDSA key's curve decides, as cosign signs). A KMS key's
// curve is known only here, so a contradicting hashAlgorithm is reported here for it.
func compileKey(ctx context.Context, k *config.Key) (*keyAuthority, error) {
	var pub crypto.PublicKey
	switch {
	case k.File != "":
		var err error
		if pub, err = config.LoadPublicKeyFile(k.File); err != nil {
			return nil, fmt.Errorf("file: %w", err)
		}
	case k.KMS != "":
		// The hash given here only selects how the KMS would sign; the public key is all
		// that is used.
		sv, err := kms.Get(ctx, k.KMS, crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("kms %q: %w", k.KMS, err)
		}
		if pub, err = sv.PublicKey(options.WithContext(ctx)); err != nil {
			return nil, fmt.Errorf("kms %q: fetching the public key: %w", k.KMS, err)
		}
	default:
		return nil, fmt.Errorf("exactly one of file and kms is required")
	}
	name, err := config.KeyHash(pub, k.HashAlgorithm)
	if err != nil {
		return nil, &hashError{err: err}
	}
	h, err := hashOf(name)
	if err != nil {
		return nil, err
	}
	return newKeyAuthority(pub, h)
}

func newKeyAuthority(pub crypto.PublicKey, h crypto.Hash) (*keyAuthority, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding public key: %w", err)
	}
	sum := sha256.Sum256(der)
	ka := &keyAuthority{keyID: "sha256:" + hex.EncodeToString(sum[:])}
	hname := map[crypto.Hash]string{crypto.SHA256: "sha256", crypto.SHA384: "sha384", crypto.SHA512: "sha512"}[h]
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		v, err := signature.LoadECDSAVerifier(p, h)
		if err != nil {
			return nil, err
		}
		ka.verifiers = []signature.Verifier{v}
		ka.algorithm = fmt.Sprintf("ecdsa-%s-%s", curveName(p), hname)
	case ed25519.PublicKey:
		v, err := signature.LoadED25519Verifier(p)
		if err != nil {
			return nil, err
		}
		ph, err := signature.LoadED25519phVerifier(p)
		if err != nil {
			return nil, err
		}
		ka.verifiers = []signature.Verifier{v, ph}
		ka.algorithm = "ed25519"
	case *rsa.PublicKey:
		v, err := signature.LoadRSAPKCS1v15Verifier(p, h)
		if err != nil {
			return nil, err
		}
		ka.verifiers = []signature.Verifier{v}
		ka.algorithm = fmt.Sprintf("rsa-%d-pkcs1v15-%s", p.N.BitLen(), hname)
	default:
		return nil, fmt.Errorf("unsupported public key type %T", pub)
	}
	return ka, nil
}

func curveName(p *ecdsa.PublicKey) string {
	switch p.Curve.Params().BitSize {
	case 256:
		return "p256"
	case 384:
		return "p384"
	case 521:
		return "p521"
	}
	return p.Curve.Params().Name
}

func compileKeyless(k *config.Keyless) (*keylessAuthority, error) {
	tr, err := root.NewTrustedRootFromPath(k.TrustedRootFile)
	if err != nil {
		return nil, fmt.Errorf("trustedRootFile: %w", err)
	}
	id, err := sgverify.NewShortCertificateIdentity(k.Issuer, k.IssuerRegExp, k.Subject, k.SubjectRegExp)
	if err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	requireTlog := k.RequireTlog == nil || *k.RequireTlog
	requireSCT := k.RequireSCT == nil || *k.RequireSCT
	var common []sgverify.VerifierOption
	if requireSCT {
		common = append(common, sgverify.WithSignedCertificateTimestamps(1))
	}
	ka := &keylessAuthority{identity: id}
	var first []sgverify.VerifierOption
	if requireTlog {
		// The certificate must have been valid when the log integrated the entry.
		first = append(append(first, common...), sgverify.WithTransparencyLog(1), sgverify.WithIntegratedTimestamps(1))
	} else {
		first = append(append(first, common...), sgverify.WithObserverTimestamps(1))
	}
	v, err := sgverify.NewVerifier(tr, first...)
	if err != nil {
		return nil, fmt.Errorf("building verifier: %w", err)
	}
	ka.verifiers = append(ka.verifiers, v)
	if !requireTlog {
		// No log proof: the certificate must be valid now.
		v, err := sgverify.NewVerifier(tr, append(append([]sgverify.VerifierOption{}, common...), sgverify.WithCurrentTime())...)
		if err != nil {
			return nil, fmt.Errorf("building verifier: %w", err)
		}
		ka.verifiers = append(ka.verifiers, v)
	}
	return ka, nil
}
