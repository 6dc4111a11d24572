package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/testing/ca"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateAuthorities(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pemKey, err := cryptoutils.MarshalPublicKeyToPEM(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	keyFile := writeFile(t, "key.pub", pemKey)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallPEM, _ := cryptoutils.MarshalPublicKeyToPEM(small.Public())
	smallFile := writeFile(t, "small.pub", smallPEM)
	garbage := writeFile(t, "garbage.pub", []byte("not a key"))
	badRoot := writeFile(t, "trusted_root.json", []byte(`{"mediaType":"nope"}`))
	f := false

	tests := []struct {
		name string
		auth []Authority
		want string // "" = valid
	}{
		{"key file", []Authority{{Name: "release", Key: &Key{File: keyFile}}}, ""},
		{"kms", []Authority{{Name: "release", Key: &Key{KMS: "hashivault://release"}}}, ""},
		{"missing name", []Authority{{Key: &Key{File: keyFile}}}, "authorities[0].name: required"},
		{"bad name", []Authority{{Name: "a b", Key: &Key{File: keyFile}}}, "authorities[0].name: \"a b\" must be"},
		{"duplicate name", []Authority{{Name: "a", Key: &Key{File: keyFile}}, {Name: "a", Key: &Key{File: keyFile}}}, "authorities[1].name: duplicate authority name \"a\" (also authorities[0])"},
		{"neither", []Authority{{Name: "a"}}, "authorities[0]: exactly one of key and keyless is required, got neither"},
		{"both", []Authority{{Name: "a", Key: &Key{File: keyFile}, Keyless: &Keyless{}}}, "authorities[0]: exactly one of key and keyless is required, got both"},
		{"key neither", []Authority{{Name: "a", Key: &Key{}}}, "authorities[0].key: exactly one of file and kms is required, got neither"},
		{"key both", []Authority{{Name: "a", Key: &Key{File: keyFile, KMS: "awskms:///alias/x"}}}, "authorities[0].key: exactly one of file and kms is required, got both"},
		{"kms scheme", []Authority{{Name: "a", Key: &Key{KMS: "file:///etc/key"}}}, "authorities[0].key.kms: \"file:///etc/key\" is not a supported KMS reference"},
		{"kms empty key", []Authority{{Name: "a", Key: &Key{KMS: "gcpkms://"}}}, "authorities[0].key.kms:"},
		{"hash", []Authority{{Name: "a", Key: &Key{File: keyFile, HashAlgorithm: "md5"}}}, "authorities[0].key.hashAlgorithm: must be sha256, sha384 or sha512, got \"md5\""},
		{"missing file", []Authority{{Name: "a", Key: &Key{File: "/nonexistent/key.pub"}}}, "authorities[0].key.file: open /nonexistent/key.pub"},
		{"garbage file", []Authority{{Name: "a", Key: &Key{File: garbage}}}, "authorities[0].key.file: " + garbage + ": not a PEM public key"},
		{"small rsa", []Authority{{Name: "a", Key: &Key{File: smallFile}}}, "RSA key of 1024 bits; at least 2048 required"},
		{"formats", []Authority{{Name: "a", Formats: []string{"cosign"}, Key: &Key{File: keyFile}}}, ""},
		{"bad format", []Authority{{Name: "a", Formats: []string{"notation"}, Key: &Key{File: keyFile}}}, "authorities[0].formats[0]: must be \"cosign\" or \"bundle\", got \"notation\""},
		{"duplicate format", []Authority{{Name: "a", Formats: []string{"bundle", "bundle"}, Key: &Key{File: keyFile}}}, "authorities[0].formats[1]: duplicate format \"bundle\""},
		{"bad glob", []Authority{{Name: "a", Images: []string{"ghcr.io/ org/*"}, Key: &Key{File: keyFile}}}, "authorities[0].images[0]: invalid glob"},
		{"keyless no issuer", []Authority{{Name: "a", Keyless: &Keyless{Subject: "x", TrustedRootFile: badRoot}}}, "authorities[0].keyless: exactly one of issuer and issuerRegExp is required, got neither"},
		{"keyless both subjects", []Authority{{Name: "a", Keyless: &Keyless{Issuer: "i", Subject: "x", SubjectRegExp: "y", TrustedRootFile: badRoot}}}, "authorities[0].keyless: exactly one of subject and subjectRegExp is required, got both"},
		{"keyless bad regexp", []Authority{{Name: "a", Keyless: &Keyless{Issuer: "i", SubjectRegExp: "(", TrustedRootFile: badRoot}}}, "authorities[0].keyless.subjectRegExp: invalid regexp \"(\""},
		{"keyless no root", []Authority{{Name: "a", Keyless: &Keyless{Issuer: "i", Subject: "s", RequireSCT: &f}}}, "authorities[0].keyless.trustedRootFile: required"},
		{"keyless bad root", []Authority{{Name: "a", Keyless: &Keyless{Issuer: "i", Subject: "s", TrustedRootFile: badRoot}}}, "authorities[0].keyless.trustedRootFile: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Config{Authorities: tc.auth}
			err := c.validateAuthorities()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("validateAuthorities() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("validateAuthorities() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestCompileImageGlob(t *testing.T) {
	tests := []struct {
		glob, in string
		want     bool
	}{
		{"registry.bank.internal/**", "registry.bank.internal/team/app:v1", true},
		{"registry.bank.internal/**", "registry.bank.internal.evil.com/app:v1", false},
		{"ghcr.io/org/*", "ghcr.io/org/app", true},
		{"ghcr.io/org/*", "ghcr.io/org/team/app", false},
		{"ghcr.io/org/app", "ghcr.io/org/app", true},
		{"ghcr.io/org/app", "ghcr.io/org/apps", false},
		{"docker.io/library/*", "docker.io/library/nginx:1.27", true},
	}
	for _, tc := range tests {
		re, err := CompileImageGlob(tc.glob)
		if err != nil {
			t.Fatalf("CompileImageGlob(%q) = %v", tc.glob, err)
		}
		if got := re.MatchString(tc.in); got != tc.want {
			t.Errorf("CompileImageGlob(%q).MatchString(%q) = %v, want %v", tc.glob, tc.in, got, tc.want)
		}
	}
}

func TestValidateKeylessWithTrustedRoot(t *testing.T) {
	vs, err := ca.NewVirtualSigstore()
	if err != nil {
		t.Fatal(err)
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(), vs.CTLogs(), vs.TimestampingAuthorities(), vs.RekorLogs())
	if err != nil {
		t.Fatal(err)
	}
	b, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	rootFile := writeFile(t, "trusted_root.json", b)
	noLogs, err := root.NewTrustedRoot(root.TrustedRootMediaType01, vs.FulcioCertificateAuthorities(), nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = noLogs.MarshalJSON()
	noLogsFile := writeFile(t, "nologs.json", b)
	f := false
	tests := []struct {
		name string
		k    Keyless
		want string
	}{
		{"exact identity", Keyless{Issuer: "https://token.actions.githubusercontent.com", Subject: "ci@bank.example", TrustedRootFile: rootFile}, ""},
		{"regexp identity", Keyless{IssuerRegExp: `^https://token\.actions\.githubusercontent\.com$`, SubjectRegExp: `^https://github\.com/bank/`, TrustedRootFile: rootFile}, ""},
		{"no logs but tlog required", Keyless{Issuer: "i", Subject: "s", TrustedRootFile: noLogsFile, RequireSCT: &f}, "authorities[0].keyless.trustedRootFile: " + noLogsFile + " has no transparency logs but requireTlog is true"},
		{"no CT logs but SCT required", Keyless{Issuer: "i", Subject: "s", TrustedRootFile: noLogsFile, RequireTlog: &f}, "has no CT logs but requireSCT is true"},
		{"no logs, nothing required", Keyless{Issuer: "i", Subject: "s", TrustedRootFile: noLogsFile, RequireTlog: &f, RequireSCT: &f}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := tc.k
			c := &Config{Authorities: []Authority{{Name: "ci", Keyless: &k}}}
			err := c.validateAuthorities()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("validateAuthorities() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("validateAuthorities() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestKeyHashFollowsCurve: an ECDSA key's hash defaults to its curve's, as cosign signs (P-256
// sha256, P-384 sha384, P-521 sha512); an explicit hashAlgorithm that contradicts the curve is
// an error naming the field. RSA takes any of the three; Ed25519 has no choice to make.
func TestKeyHashFollowsCurve(t *testing.T) {
	pemFile := func(name string, pub any) string {
		b, err := cryptoutils.MarshalPublicKeyToPEM(pub)
		if err != nil {
			t.Fatal(err)
		}
		return writeFile(t, name, b)
	}
	ec := func(c elliptic.Curve) string {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return pemFile(c.Params().Name+".pub", k.Public())
	}
	r, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p256, p384, p521, rsaFile := ec(elliptic.P256()), ec(elliptic.P384()), ec(elliptic.P521()), pemFile("rsa.pub", r.Public())
	tests := []struct {
		file, hash string
		want       string // effective hash, or the error's start
	}{
		{p256, "", "sha256"},
		{p384, "", "sha384"},
		{p521, "", "sha512"},
		{p384, "sha384", "sha384"},
		{p256, "sha384", "authorities[0].key.hashAlgorithm: a P-256 key signs with sha256 (as cosign does), got \"sha384\""},
		{p384, "sha256", "authorities[0].key.hashAlgorithm: a P-384 key signs with sha384 (as cosign does), got \"sha256\""},
		{p521, "sha256", "authorities[0].key.hashAlgorithm: a P-521 key signs with sha512 (as cosign does), got \"sha256\""},
		{rsaFile, "", "sha256"},
		{rsaFile, "sha512", "sha512"},
	}
	for _, tc := range tests {
		c := &Config{Authorities: []Authority{{Name: "a", Key: &Key{File: tc.file, HashAlgorithm: tc.hash}}}}
		err := c.validateAuthorities()
		if strings.HasPrefix(tc.want, "authorities") {
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("validateAuthorities(%s, hashAlgorithm %q) = %v, want %q", filepath.Base(tc.file), tc.hash, err, tc.want)
			}
			continue
		}
		if err != nil {
			t.Errorf("validateAuthorities(%s, hashAlgorithm %q) = %v, want valid", filepath.Base(tc.file), tc.hash, err)
			continue
		}
		pub, err := LoadPublicKeyFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := KeyHash(pub, tc.hash); err != nil || got != tc.want {
			t.Errorf("KeyHash(%s, %q) = %q, %v; want %q", filepath.Base(tc.file), tc.hash, got, err, tc.want)
		}
	}
}
