package check

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imagetrust/imagetrust/provider/internal/manifests"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
	"github.com/imagetrust/imagetrust/provider/internal/signing"
)

// templatesDir is the repository's generated templates.
const templatesDir = "../../../templates"

// world is a loopback registry holding a signed and an unsigned image, and a provider
// configuration that trusts the signing key.
type world struct {
	reg        *registrytest.Registry
	host       string
	dir        string
	configFile string
	digests    map[string]string // repo:tag → digest
}

func newWorld(t *testing.T) *world {
	t.Helper()
	return newWorldImages(t, []signedRef{{"bank/signed:1.0", true}, {"bank/unsigned:1.0", false}})
}

// newWorldN holds n signed images bank/img-<i>:1.0.
func newWorldN(t testing.TB, n int) *world {
	t.Helper()
	refs := make([]signedRef, n)
	for i := range refs {
		refs[i] = signedRef{fmt.Sprintf("bank/img-%d:1.0", i), true}
	}
	return newWorldImages(t, refs)
}

type signedRef struct {
	ref    string
	signed bool
}

func newWorldImages(t testing.TB, refs []signedRef) *world {
	t.Helper()
	w := &world{reg: registrytest.New(), dir: t.TempDir(), digests: map[string]string{}}
	t.Cleanup(w.reg.Close)
	w.host = w.reg.Host
	key, err := signing.NewKey(w.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range refs {
		d := registrytest.PushImage(t, w.host, s.ref)
		w.digests[s.ref] = d.DigestStr()
		if s.signed {
			if err := signing.Sign(d, key.Signer); err != nil {
				t.Fatal(err)
			}
		}
	}
	w.configFile = filepath.Join(w.dir, "provider.yaml")
	// server.tls names files that do not exist: check replaces them with the run's own.
	writeFile(t, w.configFile, fmt.Sprintf(`server:
  tls: {certFile: /etc/tls/tls.crt, keyFile: /etc/tls/tls.key, clientCAFile: /etc/tls/ca.crt}
registries:
  - host: %q
    insecure: true
authorities:
  - name: test-kms
    images: [%q]
    key: {file: %q}
`, w.host, w.host+"/**", key.PublicFile))
	return w
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// policy writes constraints (YAML) beside a copy-free reference to the templates and loads both.
func loadPolicy(t *testing.T, constraints string) *Policy {
	t.Helper()
	f := filepath.Join(t.TempDir(), "constraints.yaml")
	writeFile(t, f, constraints)
	p, err := LoadPolicy([]string{templatesDir, f})
	if err != nil {
		t.Fatalf("LoadPolicy: %v", err)
	}
	return p
}

func parseObjects(t *testing.T, name, data string) []manifests.Object {
	t.Helper()
	objs, err := manifests.Parse(manifests.Source{Name: name, Data: []byte(data)})
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return objs
}

func run(t *testing.T, p *Policy, objs []manifests.Object, prov *Providers) (*Report, error) {
	t.Helper()
	return Run(context.Background(), Options{Policy: p, Objects: objs, Providers: prov, Review: ReviewOptions{Workers: 2}})
}

// summary renders findings as "line:col action constraint container: message-prefix" lines.
func summary(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		msg := f.Message
		if len(msg) > 60 {
			msg = msg[:60]
		}
		fmt.Fprintf(&b, "%d:%d %s %s %s: %s\n", f.Line, f.Column, f.Action, f.Constraint, f.Container, msg)
	}
	return b.String()
}
