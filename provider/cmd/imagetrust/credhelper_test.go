package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
	"github.com/imagetrust/imagetrust/provider/internal/signing"
)

// The registry's credentials: only the credential helper knows them.
const (
	helperUser   = "alice"
	helperSecret = "s3cret-from-helper"
)

// helperScript is a docker credential helper (docker-credential-helpers protocol: `get` reads
// the server URL on standard input and prints {ServerURL, Username, Secret}). It logs every
// server it is asked about and knows only HOST.
const helperScript = `#!/bin/sh
[ "$1" = get ] || { echo "unsupported: $1" >&2; exit 1; }
read -r server
echo "$server" >> "$HELPER_LOG"
if [ "$server" = "HOST" ]; then
  printf '{"ServerURL":"%s","Username":"USER","Secret":"SECRET"}\n' "$server"
  exit 0
fi
echo "credentials not found in native keychain"
exit 1
`

// credEnv is a loopback registry that answers 401 with a Basic challenge unless the
// credentials are right, and a docker config directory whose config.json names the
// docker-credential-test helper (a real executable on PATH).
type credEnv struct {
	reg       *registrytest.Registry
	dir       string
	dockerDir string
	helperLog string
}

func newCredEnv(t *testing.T) *credEnv {
	t.Helper()
	e := &credEnv{reg: registrytest.New(registrytest.WithBasicAuth(helperUser, helperSecret)), dir: t.TempDir()}
	t.Cleanup(e.reg.Close)
	bin := filepath.Join(e.dir, "bin")
	e.dockerDir = filepath.Join(e.dir, "docker")
	e.helperLog = filepath.Join(e.dir, "helper.log")
	for _, d := range []string{bin, e.dockerDir, filepath.Join(e.dir, "home")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := strings.NewReplacer("HOST", e.reg.Host, "USER", helperUser, "SECRET", helperSecret).Replace(helperScript)
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-test"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("HOME", filepath.Join(e.dir, "home")) // no ~/.docker/config.json: $DOCKER_CONFIG is read
	t.Setenv("DOCKER_CONFIG", e.dockerDir)
	t.Setenv("REGISTRY_AUTH_FILE", "")
	t.Setenv("XDG_RUNTIME_DIR", "")
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(e.dir, "xdg"))
	t.Setenv("HELPER_LOG", e.helperLog)
	return e
}

// dockerConfig writes $DOCKER_CONFIG/config.json.
func (e *credEnv) dockerConfig(t *testing.T, data string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(e.dockerDir, "config.json"), []byte(strings.ReplaceAll(data, "HOST", e.reg.Host)), 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(e.helperLog)
}

// push writes a random image to repo:tag with the registry's credentials and returns its digest.
func (e *credEnv) push(t *testing.T, ref string) name.Digest {
	t.Helper()
	tag, err := name.NewTag(e.reg.Host + "/" + ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img, remote.WithAuth(&authn.Basic{Username: helperUser, Password: helperSecret})); err != nil {
		t.Fatal(err)
	}
	h, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return tag.Context().Digest(h.String())
}

func (e *credEnv) askedFor(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(e.helperLog)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// TestPinCredentialHelper: pin resolves a tag on a registry that demands basic auth with
// credentials only a docker credential helper has, named per registry (credHelpers) or for
// every registry (credsStore); without the helper the registry's challenge is not met.
func TestPinCredentialHelper(t *testing.T) {
	e := newCredEnv(t)
	d := e.push(t, "shop/app:1.0")
	manifest := filepath.Join(e.dir, "app.yaml")
	in := strings.ReplaceAll(checkDeployment, "%IMAGE%", e.reg.Host+"/shop/app:1.0")
	pinned := strings.ReplaceAll(checkDeployment, "%IMAGE%", e.reg.Host+"/shop/app:1.0@"+d.DigestStr())

	for _, tc := range []struct {
		name, config string
		ok           bool
	}{
		{"credHelpers", `{"credHelpers": {"HOST": "test"}}`, true},
		{"credsStore", `{"credsStore": "test"}`, true},
		{"no helper", `{"auths": {}}`, false},
		{"helper for another registry", `{"credHelpers": {"registry.example": "test"}}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.dockerConfig(t, tc.config)
			if err := os.WriteFile(manifest, []byte(in), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr strings.Builder
			err := pinCmd{stdin: strings.NewReader("")}.run(context.Background(), []string{"-f", manifest, "--insecure-registry", e.reg.Host}, os.Getenv, &stdout, &stderr)
			got, rerr := os.ReadFile(manifest)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if !tc.ok {
				if err == nil || string(got) != in || !strings.Contains(stderr.String()+err.Error(), "shop/app:1.0") {
					t.Fatalf("pin without the helper's credentials = %v, file changed: %v\nstderr:\n%s", err, string(got) != in, stderr.String())
				}
				if !strings.Contains(strings.ToLower(stderr.String()), "unauthorized") && !strings.Contains(strings.ToLower(stderr.String()), "denied") {
					t.Errorf("pin without credentials: stderr does not say the registry refused:\n%s", stderr.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("pin = %v\nstderr:\n%s", err, stderr.String())
			}
			if string(got) != pinned {
				t.Errorf("pinned file:\n%s\nwant:\n%s", got, pinned)
			}
			if asked := e.askedFor(t); !strings.Contains(asked, e.reg.Host+"\n") {
				t.Errorf("the helper was asked for %q, want %s", asked, e.reg.Host)
			}
		})
	}
}

// TestCheckInProcessCredentialHelper: check's in-process provider verifies a signed image on
// a registry whose credentials come from a credential helper (credsStore), as it would
// verify it with auth.dockerConfigFile; without the helper the registry refuses and the
// image is denied with the refusal in the message.
func TestCheckInProcessCredentialHelper(t *testing.T) {
	e := newCredEnv(t)
	d := e.push(t, "bank/app:1.0")
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sv, err := signature.LoadECDSASignerVerifier(k, crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	regAuth := ociremote.WithRemoteOptions(remote.WithAuth(&authn.Basic{Username: helperUser, Password: helperSecret}))
	if err := signing.Sign(d, sv, regAuth); err != nil {
		t.Fatal(err)
	}
	pub, err := cryptoutils.MarshalPublicKeyToPEM(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(e.dir, "release.pub")
	cfgFile := filepath.Join(e.dir, "provider.yaml")
	pol := filepath.Join(e.dir, "constraint.yaml")
	app := filepath.Join(e.dir, "app.yaml")
	for f, data := range map[string]string{
		keyFile: string(pub),
		cfgFile: fmt.Sprintf(`server:
  tls: {certFile: /etc/tls/tls.crt, keyFile: /etc/tls/tls.key, clientCAFile: /etc/tls/ca.crt}
registries:
  - {host: %q, insecure: true}
authorities:
  - {name: release, images: [%q], key: {file: %q}}
`, e.reg.Host, e.reg.Host+"/**", keyFile),
		pol: `apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sImageSignature
metadata: {name: signed}
spec:
  enforcementAction: deny
  match:
    kinds: [{apiGroups: [apps], kinds: [Deployment]}]
  parameters:
    authorities: [release]
`,
		app: strings.ReplaceAll(checkDeployment, "%IMAGE%", e.reg.Host+"/bank/app:1.0"),
	} {
		if err := os.WriteFile(f, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"-f", app, "--policy", "../../../templates/verification.yaml", "--policy", pol, "--provider-config", cfgFile}

	e.dockerConfig(t, `{"credsStore": "test"}`)
	out, errOut, code := runCheckCLI("", args...)
	if code != 0 || !strings.Contains(out, "1 object(s) checked: 0 deny") {
		t.Fatalf("check with the helper's credentials = exit %d\n%s\nstderr:\n%s", code, out, errOut)
	}
	if asked := e.askedFor(t); !strings.Contains(asked, e.reg.Host+"\n") {
		t.Errorf("the helper was asked for %q, want %s", asked, e.reg.Host)
	}

	e.dockerConfig(t, `{"auths": {}}`)
	out, errOut, code = runCheckCLI("", args...)
	if code != 1 || !strings.Contains(out, "deny K8sImageSignature/signed") || !strings.Contains(out, "denied: registry refused access") || !strings.Contains(out, "HTTP 401") {
		t.Errorf("check without credentials = exit %d, want 1 and the registry's 401 in the message\n%s\nstderr:\n%s", code, out, errOut)
	}
}
