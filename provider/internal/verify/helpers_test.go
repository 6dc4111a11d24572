package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/wire"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	cbundle "github.com/sigstore/cosign/v2/pkg/cosign/bundle"
	cmutate "github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	cstatic "github.com/sigstore/cosign/v2/pkg/oci/static"
	ctypes "github.com/sigstore/cosign/v2/pkg/types"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"
	sigpayload "github.com/sigstore/sigstore/pkg/signature/payload"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
)

// env is a loopback registry (referrers API on) and the provider's registry client for it.
type env struct {
	host string
	reg  Registry
	srv  *httptest.Server
	// requests counts registry requests by "METHOD kind" (kind: ping, manifests, blobs,
	// referrers, tags, other).
	mu       sync.Mutex
	requests map[string]int
}

func (e *env) count(r *http.Request) {
	kind := "other"
	switch {
	case r.URL.Path == "/v2/":
		kind = "ping"
	case strings.Contains(r.URL.Path, "/manifests/"):
		kind = "manifests"
	case strings.Contains(r.URL.Path, "/blobs/"):
		kind = "blobs"
	case strings.Contains(r.URL.Path, "/referrers/"):
		kind = "referrers"
	case strings.HasSuffix(r.URL.Path, "/tags/list"):
		kind = "tags"
	}
	e.mu.Lock()
	e.requests[r.Method+" "+kind]++
	e.mu.Unlock()
}

// resetRequests returns the counts so far and starts again.
func (e *env) resetRequests() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.requests
	e.requests = map[string]int{}
	return out
}

func newEnv(t testing.TB) *env {
	t.Helper()
	return newEnvReferrers(t, true)
}

// newEnvReferrers is newEnv with the registry's OCI referrers API on or off (off: referrers
// are pushed to and read from the sha256-<hex> fallback tag).
func newEnvReferrers(t testing.TB, api bool) *env {
	t.Helper()
	return newEnvWrapped(t, api, nil)
}

// newEnvWrapped is newEnvReferrers with the registry handler wrapped by wrap (nil: none), e.g.
// registrytest.Shuffle.
func newEnvWrapped(t testing.TB, api bool, wrap func(http.Handler) http.Handler) *env {
	t.Helper()
	e := &env{requests: map[string]int{}}
	reg := http.Handler(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)), ggcrregistry.WithReferrersSupport(api)))
	if wrap != nil {
		reg = wrap(reg)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.count(r)
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	// A generous registry timeout: nothing here hangs, and a loaded machine is slow, not broken.
	c, err := registry.New(context.Background(), registry.Options{Registries: []config.Registry{{Host: host, Insecure: true}}, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("registry.New() = %v", err)
	}
	t.Cleanup(c.CloseIdleConnections)
	e.host, e.reg, e.srv = host, c, srv
	return e
}

// push writes a random image to repo:tag and returns its digest reference.
func (e *env) push(t testing.TB, repo, tag string) name.Digest {
	t.Helper()
	return registrytest.PushImage(t, e.host, repo+":"+tag)
}

// pushIndex writes a two-platform index (linux/amd64, linux/arm64/v8) and returns the index
// digest and the platform manifest digests.
func (e *env) pushIndex(t testing.TB, repo, tag string) (name.Digest, []name.Digest) {
	t.Helper()
	return registrytest.PushIndex(t, e.host, repo, tag)
}

// keyPair is a signing key and its public key PEM file.
type keyPair struct {
	sv      signature.SignerVerifier
	pub     crypto.PublicKey
	pubFile string
}

func newKey(t testing.TB, kind string) *keyPair {
	t.Helper()
	var sv signature.SignerVerifier
	var pub crypto.PublicKey
	switch kind {
	case "ecdsa":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		sv, err = signature.LoadECDSASignerVerifier(k, crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		pub = k.Public()
	case "ed25519":
		p, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		sv, err = signature.LoadED25519SignerVerifier(k)
		if err != nil {
			t.Fatal(err)
		}
		pub = p
	case "rsa":
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		sv, err = signature.LoadRSAPKCS1v15SignerVerifier(k, crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		pub = k.Public()
	default:
		t.Fatalf("unknown key kind %q", kind)
	}
	return &keyPair{sv: sv, pub: pub, pubFile: writePub(t, pub)}
}

func writePub(t testing.TB, pub crypto.PublicKey) string {
	t.Helper()
	pemBytes, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "key.pub")
	if err := os.WriteFile(f, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func keyAuthorityCfg(n string, k *keyPair) config.Authority {
	return config.Authority{Name: n, Key: &config.Key{File: k.pubFile}}
}

// cosignPayload is cosign's simple-signing payload for d.
func cosignPayload(t testing.TB, d name.Digest) []byte {
	t.Helper()
	b, err := (&sigpayload.Cosign{Image: d}).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// attachSig attaches (payload, signature) to d's sha256-<hex>.sig, as cosign sign does.
func attachSig(t testing.TB, d name.Digest, payload, sig []byte, opts ...cstatic.Option) {
	t.Helper()
	s, err := cstatic.NewSignature(payload, base64.StdEncoding.EncodeToString(sig), opts...)
	if err != nil {
		t.Fatal(err)
	}
	se, err := ociremote.SignedEntity(d)
	if err != nil {
		t.Fatalf("SignedEntity(%s) = %v", d, err)
	}
	se, err = cmutate.AttachSignatureToEntity(se, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := ociremote.WriteSignatures(d.Repository, se); err != nil {
		t.Fatalf("WriteSignatures() = %v", err)
	}
}

// signImage signs d with k like `cosign sign --key k --tlog-upload=false`.
func signImage(t testing.TB, d name.Digest, k *keyPair) {
	t.Helper()
	payload := cosignPayload(t, d)
	sig, err := k.sv.SignMessage(bytes.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	attachSig(t, d, payload, sig)
}

// statementJSON is an in-toto statement (v0.1 or v1) about subjectDigest.
func statementJSON(t testing.TB, version, subjectName, subjectDigest, predicateType string, predicate any) []byte {
	t.Helper()
	typ := statementV1
	if version == "v0.1" {
		typ = statementV01
	}
	h, err := v1.NewHash(subjectDigest)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{
		"_type":         typ,
		"subject":       []any{map[string]any{"name": subjectName, "digest": map[string]string{"sha256": h.Hex}}},
		"predicateType": predicateType,
		"predicate":     predicate,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dsseSign wraps a statement in a DSSE envelope signed with k.
func dsseSign(t testing.TB, k *keyPair, stmt []byte) []byte {
	t.Helper()
	env, err := sigdsse.WrapSigner(k.sv, ctypes.IntotoPayloadType).SignMessage(bytes.NewReader(stmt))
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// attachAtt attaches a DSSE envelope to d's sha256-<hex>.att, as cosign attest does.
func attachAtt(t testing.TB, d name.Digest, envelope []byte, opts ...cstatic.Option) {
	t.Helper()
	att, err := cstatic.NewAttestation(envelope, opts...)
	if err != nil {
		t.Fatal(err)
	}
	se, err := ociremote.SignedEntity(d)
	if err != nil {
		t.Fatal(err)
	}
	se, err = cmutate.AttachAttestationToEntity(se, att)
	if err != nil {
		t.Fatal(err)
	}
	if err := ociremote.WriteAttestations(d.Repository, se); err != nil {
		t.Fatalf("WriteAttestations() = %v", err)
	}
}

// attachKeyBundle attaches a cosign v3 Sigstore bundle (DSSE, public-key hint) as a
// referrer of d.
func attachKeyBundle(t testing.TB, d name.Digest, k *keyPair, stmt []byte, predicateType string) {
	t.Helper()
	env := dsseSign(t, k, stmt)
	pubPEM, err := cryptoutils.MarshalPublicKeyToPEM(k.pub)
	if err != nil {
		t.Fatal(err)
	}
	b, err := cbundle.MakeNewBundle(k.pub, nil, stmt, env, pubPEM, nil)
	if err != nil {
		t.Fatalf("MakeNewBundle() = %v", err)
	}
	if err := ociremote.WriteAttestationNewBundleFormat(d, b, predicateType); err != nil {
		t.Fatalf("WriteAttestationNewBundleFormat() = %v", err)
	}
}

// attachReferrer attaches an arbitrary artifact (e.g. an unsigned SBOM) as a referrer of d.
func attachReferrer(t testing.TB, d name.Digest, artifactType string, content []byte) {
	t.Helper()
	l := static.NewLayer(content, types.MediaType(artifactType))
	if err := ociremote.WriteReferrer(d, artifactType, []v1.Layer{l}, nil); err != nil {
		t.Fatalf("WriteReferrer() = %v", err)
	}
}

// newService builds a Service over e with the given authorities (no cache).
func newService(t testing.TB, e *env, auths ...config.Authority) *Service {
	t.Helper()
	pool, err := batch.NewPool(64, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(context.Background(), Options{Authorities: auths, Registry: e.reg, Refs: imageref.NewMemo(1024), Pool: pool, Deadline: 30 * time.Second})
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	return s
}

// verifyOne runs Verify for one key and fails on a per-key error.
func verifyOne(t testing.TB, s *Service, key string) *Value {
	t.Helper()
	items := s.Verify(context.Background(), []string{key})
	if items[0].Error != "" {
		t.Fatalf("Verify(%q) error = %s", key, items[0].Error)
	}
	return valueOf(t, items[0])
}

// valueOf decodes an item's value: Verify answers with the pre-encoded JSON it serves.
func valueOf(t testing.TB, it wire.Item) *Value {
	t.Helper()
	raw, ok := it.Value.(wire.Encoded)
	if !ok {
		t.Fatalf("item %q: value is %T, want json.RawMessage (error %q)", it.Key, it.Value, it.Error)
	}
	var v Value
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("item %q: value %s does not decode: %v", it.Key, raw, err)
	}
	return &v
}

func sigAuthorities(v *Value) string {
	var out []string
	for _, s := range v.Signatures {
		out = append(out, s.Authority+"/"+s.Format)
	}
	return strings.Join(out, ",")
}

func dump(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

var _ = fmt.Sprintf

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
