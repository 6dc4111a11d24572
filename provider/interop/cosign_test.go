//go:build interop

package interop

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cosignPassword encrypts every private key the CLIs write.
const cosignPassword = "interop-password"

// cli is one cosign binary.
type cli struct {
	// name is the version the Makefile pins ("v2.6.5"); major is 2 or 3.
	name  string
	major int
	bin   string
	// home is the CLI's HOME, DOCKER_CONFIG and TUF_ROOT parent: empty, made for the run.
	home string
}

// newCLI reads the binary path from env (required) and checks that the binary reports version.
func newCLI(t *testing.T, env, version string, major int) *cli {
	t.Helper()
	bin := os.Getenv(env)
	if bin == "" {
		t.Fatalf("%s is not set: it names the cosign %s binary (make test-interop builds it and sets it)", env, version)
	}
	c := &cli{name: version, major: major, bin: bin, home: t.TempDir()}
	out := c.run(t, "version")
	if !strings.Contains(out, strings.TrimPrefix(version, "v")) {
		t.Fatalf("%s %s: `cosign version` does not report %s:\n%s", env, bin, version, out)
	}
	return c
}

// run runs the CLI with args and fails the test, with its output, unless it succeeds.
func (c *cli) run(t *testing.T, args ...string) string {
	t.Helper()
	return c.runEnv(t, nil, args...)
}

// runEnv is run with extra environment variables ("COSIGN_EXPERIMENTAL=1").
func (c *cli) runEnv(t *testing.T, env []string, args ...string) string {
	t.Helper()
	out, err := c.try(env, args...)
	if err != nil {
		t.Fatalf("cosign %s %s: %v\n%s", c.name, strings.Join(args, " "), err, out)
	}
	return out
}

// try runs the CLI with args and returns its combined output. The environment is minimal: a
// fresh HOME (no docker credentials, no TUF cache), the key password, and a proxy that refuses
// every connection, which Go's HTTP client bypasses only for loopback: nothing reaches beyond
// the loopback registry.
func (c *cli) try(env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = []string{
		"HOME=" + c.home,
		"DOCKER_CONFIG=" + filepath.Join(c.home, "docker"),
		"TUF_ROOT=" + filepath.Join(c.home, "tuf"),
		"PATH=/usr/bin:/bin",
		"COSIGN_PASSWORD=" + cosignPassword,
		"HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9", "NO_PROXY=",
		"SIGSTORE_NO_CACHE=true",
	}
	cmd.Env = append(cmd.Env, env...)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.String(), err
}

// Key kinds, in matrix order.
var keyKinds = []string{"p256", "p384", "p521", "rsa", "ed25519"}

// key is a cosign key pair written by the CLI (generate-key-pair or import-key-pair).
type key struct {
	kind string
	// how the CLI made it: "generate-key-pair" or "import-key-pair".
	how string
	// priv is the encrypted cosign private key, pub the PEM public key.
	priv, pub string
	// keyID and algorithm are what the provider reports for a signature by this key.
	keyID, algorithm string
}

// makeKey has the CLI create a key of kind in dir: P-256 with generate-key-pair, the others
// generated here and imported with import-key-pair (PKCS#8 PEM).
func (c *cli) makeKey(t *testing.T, kind, dir string) *key {
	t.Helper()
	prefix := filepath.Join(dir, c.name+"-"+kind)
	k := &key{kind: kind, priv: prefix + ".key", pub: prefix + ".pub"}
	if kind == "p256" {
		k.how = "generate-key-pair"
		c.run(t, "generate-key-pair", "--output-key-prefix", prefix)
	} else {
		k.how = "import-key-pair"
		src := prefix + ".pkcs8.pem"
		writePKCS8(t, src, generateKey(t, kind))
		c.run(t, "import-key-pair", "--key", src, "--output-key-prefix", prefix)
	}
	pub := readPublicKey(t, k.pub)
	k.keyID = keyID(t, pub)
	k.algorithm = algorithmOf(t, pub)
	return k
}

func generateKey(t *testing.T, kind string) crypto.Signer {
	t.Helper()
	var (
		s   crypto.Signer
		err error
	)
	switch kind {
	case "p256":
		s, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "p384":
		s, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "p521":
		s, err = ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "rsa":
		s, err = rsa.GenerateKey(rand.Reader, 3072)
	case "ed25519":
		_, s, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writePKCS8(t *testing.T, path string, s crypto.Signer) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writePublicKey writes s's public key as a PEM file (a key no CLI signs with).
func writePublicKey(t *testing.T, path string, s crypto.Signer) {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readPublicKey(t *testing.T, path string) crypto.PublicKey {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return pub
}

// keyID is "sha256:<hex>" of the public key's DER, as the provider reports it.
func keyID(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// algorithmOf is the algorithm the provider reports for a key authority without hashAlgorithm:
// the hash follows the curve as cosign signs (P-256 sha256, P-384 sha384, P-521 sha512); RSA
// PKCS#1 v1.5 with sha256.
func algorithmOf(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256():
			return "ecdsa-p256-sha256"
		case elliptic.P384():
			return "ecdsa-p384-sha384"
		case elliptic.P521():
			return "ecdsa-p521-sha512"
		}
	case *rsa.PublicKey:
		return fmt.Sprintf("rsa-%d-pkcs1v15-sha256", p.N.BitLen())
	case ed25519.PublicKey:
		return "ed25519"
	}
	t.Fatalf("unexpected public key %T", pub)
	return ""
}

// Signature formats, in matrix order: cosign's tag scheme (simple-signing payload in
// sha256-<hex>.sig), a Sigstore bundle attached as an OCI referrer (--new-bundle-format), and
// the simple-signing signature attached as an OCI 1.1 referrer (--registry-referrers-mode=oci-1-1).
const (
	formatLegacy = "legacy"
	formatBundle = "bundle"
	formatOCI11  = "oci-1-1"
)

var signFormats = []string{formatLegacy, formatBundle, formatOCI11}

// keyFlags are the flags of a key-based signature without a transparency log. v3 signs by
// default with a signing configuration fetched from Sigstore's TUF repository; without it
// (--use-signing-config=false) --tlog-upload=false applies as in v2.
func (c *cli) keyFlags(k *key) []string {
	args := []string{"--key", k.priv, "--tlog-upload=false", "--yes"}
	if c.major >= 3 {
		args = append(args, "--use-signing-config=false")
	}
	return args
}

// formatFlags selects format: the bundle format is v3's default and v2's opt-in.
func (c *cli) formatFlags(format string) (args, env []string) {
	switch format {
	case formatBundle:
		return []string{"--new-bundle-format=true"}, nil
	case formatOCI11:
		args = []string{"--registry-referrers-mode=oci-1-1"}
		env = []string{"COSIGN_EXPERIMENTAL=1"} // both versions gate the mode behind it
	}
	if c.major >= 3 {
		args = append(args, "--new-bundle-format=false")
	}
	return args, env
}

// sign runs `cosign sign` on ref with k in format; extra flags (--recursive) go before ref.
func (c *cli) sign(t *testing.T, k *key, ref, format string, extra ...string) {
	t.Helper()
	fargs, env := c.formatFlags(format)
	args := append(append(append([]string{"sign"}, c.keyFlags(k)...), fargs...), extra...)
	c.runEnv(t, env, append(args, ref)...)
}

// attest runs `cosign attest --type typ --predicate file` on ref with k in format (legacy:
// sha256-<hex>.att; bundle: a Sigstore bundle referrer).
func (c *cli) attest(t *testing.T, k *key, ref, format, typ, predicate string) {
	t.Helper()
	fargs, env := c.formatFlags(format)
	args := append(append([]string{"attest"}, c.keyFlags(k)...), fargs...)
	c.runEnv(t, env, append(args, "--type", typ, "--predicate", predicate, ref)...)
}

// attachSBOM runs `cosign attach sbom` (unsigned): legacy writes the sha256-<hex>.sbom tag,
// oci-1-1 an OCI 1.1 referrer.
func (c *cli) attachSBOM(t *testing.T, ref, format, typ, file string) {
	t.Helper()
	args := []string{"attach", "sbom", "--sbom", file, "--type", typ}
	var env []string
	if format == formatOCI11 {
		args = append(args, "--registry-referrers-mode=oci-1-1")
		env = []string{"COSIGN_EXPERIMENTAL=1"}
	}
	c.runEnv(t, env, append(args, ref)...)
}
