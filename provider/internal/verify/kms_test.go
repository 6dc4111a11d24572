package verify

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awskms "github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/sigstore/sigstore/pkg/signature/kms"

	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
)

// localKMSVersion must match LOCAL_KMS_VERSION in the Makefile (`make tools-kms` installs it).
const localKMSVersion = "v0.0.0-20260228092603-2a5e92d09ab6"

// localKMS finds the local-kms binary (an AWS KMS emulator): $IMAGETRUST_LOCAL_KMS, or where
// `make tools-kms` installs it.
func localKMS(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("IMAGETRUST_LOCAL_KMS"); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	p := filepath.Join(home, ".cache", "imagetrust", "tools", "local-kms-"+localKMSVersion, "local-kms")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("local-kms (AWS KMS emulator) not installed at %s: run `make tools-kms` (or set IMAGETRUST_LOCAL_KMS) to run the KMS end-to-end test", p)
	}
	return p
}

// startKMS runs local-kms on loopback behind a TLS proxy (sigstore's AWS client always speaks
// HTTPS to an endpoint) and points the AWS SDK at it: region, dummy credentials and the
// proxy's CA via AWS_CA_BUNDLE. It returns the endpoint host:port.
func startKMS(t *testing.T) string {
	t.Helper()
	bin := localKMS(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), fmt.Sprintf("PORT=%d", port), "KMS_DATA_PATH="+t.TempDir(), "KMS_SEED_PATH="+filepath.Join(t.TempDir(), "none.yaml"), "KMS_REGION=eu-west-2")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting local-kms: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("local-kms output:\n%s", logs.String())
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(time.Minute) // generous: a loaded machine starts it slowly
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("local-kms did not listen on %s: %v\n%s", addr, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	target, _ := url.Parse("http://" + addr)
	proxy := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(target))
	t.Cleanup(proxy.Close)
	caFile := filepath.Join(t.TempDir(), "kms-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: proxy.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CA_BUNDLE", caFile)
	t.Setenv("AWS_REGION", "eu-west-2")
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	return proxy.Listener.Addr().String()
}

// TestKMSEndToEnd: a P-256 key that never leaves the (emulated) AWS KMS signs an image through
// sigstore's KMS signer; the provider, configured with only the awskms:// reference, fetches
// the public key at start and verifies the signature.
func TestKMSEndToEnd(t *testing.T) {
	endpoint := startKMS(t)
	ctx := context.Background()

	// Create the key and an alias with the AWS SDK, as an operator would.
	cli := awskms.New(awskms.Options{Region: "eu-west-2", BaseEndpoint: aws.String("https://" + endpoint),
		Credentials: aws.AnonymousCredentials{}, HTTPClient: httpsClientFromEnv(t)})
	out, err := cli.CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: kmstypes.KeySpecEccNistP256, KeyUsage: kmstypes.KeyUsageTypeSignVerify})
	if err != nil {
		t.Fatalf("CreateKey() = %v", err)
	}
	if _, err := cli.CreateAlias(ctx, &awskms.CreateAliasInput{AliasName: aws.String("alias/imagetrust-release"), TargetKeyId: out.KeyMetadata.KeyId}); err != nil {
		t.Fatalf("CreateAlias() = %v", err)
	}
	ref := "awskms://" + endpoint + "/alias/imagetrust-release"

	e := newEnv(t)
	d := e.push(t, "kms-signed", "v1")
	sv, err := kms.Get(ctx, ref, crypto.SHA256)
	if err != nil {
		t.Fatalf("kms.Get(%s) = %v", ref, err)
	}
	payload := cosignPayload(t, d)
	sig, err := sv.SignMessage(bytes.NewReader(payload)) // KMS Sign API
	if err != nil {
		t.Fatalf("KMS SignMessage() = %v", err)
	}
	attachSig(t, d, payload, sig)
	other := e.push(t, "kms-other", "v1")
	signImage(t, other, newKey(t, "ecdsa"))

	auth := config.Authority{Name: "kms-release", Key: &config.Key{KMS: ref}}
	s := newService(t, e, auth)
	v := verifyOne(t, s, d.String())
	if !v.Signed || sigAuthorities(v) != "kms-release/cosign" {
		t.Fatalf("Verify(KMS-signed) = %s, want kms-release/cosign", dump(v))
	}
	pub, err := sv.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	ka, err := newKeyAuthority(pub, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if v.Signatures[0].KeyID != ka.keyID || v.Signatures[0].Algorithm != "ecdsa-p256-sha256" {
		t.Errorf("signature = %+v, want keyId %s and ecdsa-p256-sha256", v.Signatures[0], ka.keyID)
	}
	if v := verifyOne(t, s, other.String()); v.Signed {
		t.Errorf("Verify(signed by another key) = %s, want signed=false", dump(v))
	}

	// A P-384 KMS key signs with SHA-384 (sigstore's AWS signer, as cosign uses it): verified
	// with no hashAlgorithm; one that contradicts the curve fails at start, naming the field.
	out384, err := cli.CreateKey(ctx, &awskms.CreateKeyInput{KeySpec: kmstypes.KeySpecEccNistP384, KeyUsage: kmstypes.KeyUsageTypeSignVerify})
	if err != nil {
		t.Fatalf("CreateKey(P-384) = %v", err)
	}
	ref384 := "awskms://" + endpoint + "/" + aws.ToString(out384.KeyMetadata.KeyId)
	sv384, err := kms.Get(ctx, ref384, crypto.SHA384)
	if err != nil {
		t.Fatalf("kms.Get(%s) = %v", ref384, err)
	}
	d384 := e.push(t, "kms-p384", "v1")
	p384 := cosignPayload(t, d384)
	sig384, err := sv384.SignMessage(bytes.NewReader(p384))
	if err != nil {
		t.Fatalf("KMS SignMessage(P-384) = %v", err)
	}
	attachSig(t, d384, p384, sig384)
	s384 := newService(t, e, config.Authority{Name: "kms-p384", Key: &config.Key{KMS: ref384}})
	if v := verifyOne(t, s384, d384.String()); sigAuthorities(v) != "kms-p384/cosign" || v.Signatures[0].Algorithm != "ecdsa-p384-sha384" {
		t.Errorf("Verify(P-384 KMS-signed) = %s, want kms-p384/cosign with ecdsa-p384-sha384", dump(v))
	}
	_, err = New(ctx, Options{Authorities: []config.Authority{{Name: "p384", Key: &config.Key{KMS: ref384, HashAlgorithm: "sha256"}}}, Registry: e.reg, Refs: imageref.NewMemo(16), Deadline: time.Minute})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("authorities[0].key.hashAlgorithm: a P-384 key signs with sha384")) {
		t.Errorf("New(P-384 KMS key, hashAlgorithm sha256) = %v, want an error naming authorities[0].key.hashAlgorithm", err)
	}

	// A KMS key that does not exist fails at start, naming the field.
	_, err = New(ctx, Options{Authorities: []config.Authority{{Name: "missing", Key: &config.Key{KMS: "awskms://" + endpoint + "/alias/nope"}}}, Registry: e.reg, Refs: imageref.NewMemo(16), Deadline: time.Minute})
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("authorities[0].key: kms")) {
		t.Errorf("New(missing KMS key) = %v, want an error naming authorities[0].key", err)
	}
}

func httpsClientFromEnv(t *testing.T) *http.Client {
	t.Helper()
	pemBytes, err := os.ReadFile(os.Getenv("AWS_CA_BUNDLE"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
}
