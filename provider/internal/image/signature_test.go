package image

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/secure-systems-lab/go-securesystemslib/encrypted"

	"github.com/imagetrust/imagetrust/provider/internal/app"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/pki"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// verifyAnswer is the part of the provider's /v1/verify value this test reads.
type verifyAnswer struct {
	Signed     bool `json:"signed"`
	Signatures []struct {
		Authority string `json:"authority"`
	} `json:"signatures"`
	Attestations []struct {
		Authority     string `json:"authority"`
		PredicateType string `json:"predicateType"`
	} `json:"attestations"`
	SBOM struct {
		Formats []string `json:"formats"`
	} `json:"sbom"`
	Provenance []struct {
		BuilderID string `json:"builderId"`
		SourceURI string `json:"sourceUri"`
		BuildType string `json:"buildType"`
	} `json:"provenance"`
	Platforms []struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platforms"`
}

// provider is the real provider (app.New) over mTLS, trusting one key as authority "release".
type provider struct {
	url    string
	client *http.Client
}

const providerConfig = `server:
  address: %q
  metricsAddress: %q
  tls: {certFile: %q, keyFile: %q, clientCAFile: %q}
registries:
  - host: %q
    insecure: true
authorities:
  - name: release
    verifyPlatforms: true
    key: {file: %q}
`

func startProvider(t *testing.T, regHost string, pubPEM []byte) *provider {
	t.Helper()
	dir := t.TempDir()
	provCA, err := pki.NewCA("test provider CA")
	if err != nil {
		t.Fatal(err)
	}
	gkCA, err := pki.NewCA("test gatekeeper CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := provCA.ServerCert("imagetrust-provider", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	gk, err := gkCA.ClientCert("gatekeeper")
	if err != nil {
		t.Fatal(err)
	}
	srvFiles, err := pki.WriteDir(filepath.Join(dir, "srv"), provCA, srv)
	if err != nil {
		t.Fatal(err)
	}
	gkFiles, err := pki.WriteDir(filepath.Join(dir, "gk"), gkCA, gk)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "release.pub")
	if err := os.WriteFile(keyFile, pubPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	var lc net.ListenConfig
	ctx, cancel := context.WithCancel(context.Background())
	apiLn, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opsLn, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "provider.yaml")
	text := fmt.Sprintf(providerConfig, apiLn.Addr().String(), opsLn.Addr().String(),
		srvFiles.Cert, srvFiles.Key, gkFiles.CA, regHost, keyFile)
	if err := os.WriteFile(cfgFile, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	prov, err := app.New(ctx, cfg, apiLn, opsLn, app.Options{
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- prov.Runner.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("provider: %v", err)
		}
	})
	tc, err := pki.ClientTLSConfig(provCA, gk)
	if err != nil {
		t.Fatal(err)
	}
	p := &provider{url: "https://" + apiLn.Addr().String(), client: &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tc}}}
	deadline := time.Now().Add(10 * time.Second)
	for prov.Runner.Ready() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("provider not ready: %v", prov.Runner.Ready())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

// verify posts one key to /v1/verify and returns the item.
func (p *provider) verify(t *testing.T, key string) (verifyAnswer, string) {
	t.Helper()
	body, err := json.Marshal(wire.ProviderRequest{APIVersion: wire.APIVersion, Kind: wire.ProviderRequestKind, Request: wire.Request{Keys: []string{key}}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.client.Post(p.url+"/v1/verify", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var pr struct {
		Response struct {
			Items []struct {
				Key   string          `json:"key"`
				Value json.RawMessage `json:"value"`
				Error string          `json:"error"`
			} `json:"items"`
			SystemError string `json:"systemError"`
		} `json:"response"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&pr); err != nil {
		t.Fatalf("/v1/verify: %v", err)
	}
	if resp.StatusCode != http.StatusOK || pr.Response.SystemError != "" || len(pr.Response.Items) != 1 {
		t.Fatalf("/v1/verify: status %d, system error %q, %d items", resp.StatusCode, pr.Response.SystemError, len(pr.Response.Items))
	}
	it := pr.Response.Items[0]
	var a verifyAnswer
	if len(it.Value) > 0 && string(it.Value) != "null" {
		if err := json.Unmarshal(it.Value, &a); err != nil {
			t.Fatalf("/v1/verify value: %v\n%s", err, it.Value)
		}
	}
	return a, it.Error
}

// `make image-sign` end to end against the real provider: the built index is pushed to a real
// registry, signed (index and platform manifests) and attested (SPDX SBOM, SLSA v1 provenance)
// with a cosign-format encrypted key; the provider's /v1/verify proves all of it. The same
// index pushed to another repository, unsigned, is reported unsigned.
func TestSignedImageVerifiesThroughProvider(t *testing.T) {
	ctx := context.Background()
	o := testOptions(t)
	res, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	sbom, err := SBOM(o)
	if err != nil {
		t.Fatal(err)
	}
	const builder = "https://github.com/imagetrust/imagetrust/.github/workflows/release.yml@refs/tags/v0.1.0"
	prov, err := ProvenanceFor(o, builder)
	if err != nil {
		t.Fatal(err)
	}
	reg := registrytest.New()
	t.Cleanup(reg.Close)
	repo, err := name.NewRepository(reg.Host + "/imagetrust/provider")
	if err != nil {
		t.Fatal(err)
	}
	d, err := Push(ctx, res.Index, repo.Tag(o.Version))
	if err != nil {
		t.Fatal(err)
	}
	if d.DigestStr() != res.Digest.String() {
		t.Fatalf("pushed digest %s, built %s", d.DigestStr(), res.Digest)
	}
	unsignedRepo, err := name.NewRepository(reg.Host + "/imagetrust/provider-unsigned")
	if err != nil {
		t.Fatal(err)
	}
	unsigned, err := Push(ctx, res.Index, unsignedRepo.Tag(o.Version))
	if err != nil {
		t.Fatal(err)
	}

	keyFile, pubPEM := cosignKey(t, []byte("s3cret"))
	if _, err := LoadSigner(ctx, keyFile, []byte("wrong")); err == nil || !strings.Contains(err.Error(), "COSIGN_PASSWORD") {
		t.Errorf("LoadSigner with the wrong password = %v, want a decryption error naming COSIGN_PASSWORD", err)
	}
	sv, err := LoadSigner(ctx, keyFile, []byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	err = Sign(ctx, SignOptions{Image: d, Signer: sv, Attestations: []Attestation{
		{PredicateType: SBOMPredicateType, Predicate: sbom},
		{PredicateType: ProvenancePredicateType, Predicate: prov},
	}})
	if err != nil {
		t.Fatal(err)
	}

	p := startProvider(t, reg.Host, pubPEM)
	got, errMsg := p.verify(t, d.String())
	if errMsg != "" {
		t.Fatalf("/v1/verify %s: error %q", d, errMsg)
	}
	if !got.Signed || len(got.Signatures) == 0 || got.Signatures[0].Authority != "release" {
		t.Errorf("signed = %v, signatures %+v; want signed by authority release (index and every platform: verifyPlatforms)", got.Signed, got.Signatures)
	}
	if len(got.SBOM.Formats) != 1 || got.SBOM.Formats[0] != "spdx" {
		t.Errorf("sbom = %+v, want formats [spdx]", got.SBOM)
	}
	if len(got.Provenance) != 1 || got.Provenance[0].BuilderID != builder || got.Provenance[0].SourceURI != o.Source || got.Provenance[0].BuildType != BuildType {
		t.Errorf("provenance = %+v, want builder %s, source %s, build type %s", got.Provenance, builder, o.Source, BuildType)
	}
	if len(got.Platforms) != 2 || got.Platforms[0].Architecture != "amd64" || got.Platforms[1].Architecture != "arm64" {
		t.Errorf("platforms = %+v, want linux/amd64 and linux/arm64", got.Platforms)
	}

	cp, errMsg := p.verify(t, unsigned.String())
	if errMsg == "" && cp.Signed {
		t.Errorf("/v1/verify of the unsigned copy %s: signed, want unsigned", unsigned)
	}
	if len(cp.SBOM.Formats) != 0 || len(cp.Provenance) != 0 {
		t.Errorf("unsigned copy: sbom %+v provenance %+v, want none", cp.SBOM, cp.Provenance)
	}
}

// Signing an index that was never pushed says so.
func TestSignNeedsPushedIndex(t *testing.T) {
	reg := registrytest.New()
	t.Cleanup(reg.Close)
	keyFile, _ := cosignKey(t, nil)
	sv, err := LoadSigner(context.Background(), keyFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := name.NewDigest(reg.Host + "/imagetrust/provider@sha256:" + strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	err = Sign(context.Background(), SignOptions{Image: d, Signer: sv, Remote: []remote.Option{}})
	if err == nil || !strings.Contains(err.Error(), "push it first") {
		t.Errorf("Sign(unpushed) = %v, want an error saying to push first", err)
	}
}

// LoadSigner reads unencrypted PKCS#8 keys and refuses what is not a key.
func TestLoadSigner(t *testing.T) {
	dir := t.TempDir()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain.pem")
	if err := os.WriteFile(plain, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSigner(context.Background(), plain, nil); err != nil {
		t.Errorf("LoadSigner(PKCS#8) = %v", err)
	}
	junk := filepath.Join(dir, "junk")
	if err := os.WriteFile(junk, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{junk: "no PEM block", filepath.Join(dir, "missing"): "no such file"} {
		if _, err := LoadSigner(context.Background(), path, nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadSigner(%s) = %v, want an error containing %q", path, err, want)
		}
	}
}

// cosignKey writes an ECDSA key in cosign's encrypted format (`cosign generate-key-pair`) and
// returns its path and the public key PEM.
func cosignKey(t *testing.T, password []byte) (string, []byte) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := encrypted.Encrypt(der, password)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "cosign.key")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED SIGSTORE PRIVATE KEY", Bytes: enc}), 0o600); err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})
}
