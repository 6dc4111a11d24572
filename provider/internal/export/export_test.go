package export

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

func readKey(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "keys", name+".pub"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sample is the export of testdata/constraints (the seed's bank and edge constraints, a warn
// constraint and other kinds) with a bank key authority, a vendor key authority and a keyless
// one, plus the OpenShift release registry.
func sample(t *testing.T) (*Policy, []string) {
	t.Helper()
	sources, skipped, err := LoadConstraints([]string{filepath.Join("testdata", "constraints")})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compute(Options{
		Sources: sources,
		Authorities: []Authority{
			{Name: "bank-release", Images: []string{"registry.bank.internal/**"}, PublicKeyPEM: readKey(t, "bank-release")},
			{Name: "vendor", Images: []string{"quay.io/vendor-gateway/**"}, PublicKeyPEM: readKey(t, "vendor")},
			{Name: "ci-keyless", Images: []string{"registry.bank.internal/**"}},
		},
		ExtraRegistries: []string{"quay.io/openshift-release-dev"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return p, skipped
}

func TestComputeSample(t *testing.T) {
	p, skipped := sample(t)
	if len(skipped) != 1 || !strings.Contains(skipped[0], "docker-hub-warn (enforcementAction warn)") {
		t.Errorf("skipped = %q, want the warn constraint", skipped)
	}
	want := "quay.io/openshift-release-dev quay.io/redhat-openshift-approved quay.io/vendor-gateway registry.bank.internal registry.edge.local:5000 registry.k8s.io/pause"
	if got := strings.Join(p.Allowed, " "); got != want {
		t.Errorf("Allowed = %s\nwant      %s", got, want)
	}
	signers := map[string]string{}
	for _, s := range p.Scopes {
		signers[s.Scope] = strings.Join(s.Authorities, ",")
	}
	for scope, want := range map[string]string{
		"registry.bank.internal": "bank-release", "quay.io/vendor-gateway": "vendor",
		"registry.edge.local:5000": "", "quay.io/redhat-openshift-approved": "",
	} {
		if signers[scope] != want {
			t.Errorf("scope %s signed by %q, want %q", scope, signers[scope], want)
		}
	}
	warnings := strings.Join(p.Warnings, "\n")
	for _, w := range []string{"authority ci-keyless is keyless", "scope registry.edge.local:5000: no key authority covers it"} {
		if !strings.Contains(warnings, w) {
			t.Errorf("warnings lack %q:\n%s", w, warnings)
		}
	}
}

// Golden files: every format of the sample, byte for byte (go test -update rewrites them).
func TestGolden(t *testing.T) {
	p, _ := sample(t)
	for name, render := range map[string]func() ([]byte, error){
		"image.config.openshift.io.yaml": p.OpenShiftImage,
		"policy.json":                    p.PolicyJSON,
		"registries.d.yaml":              p.RegistriesD,
		"clusterimagepolicies.yaml":      p.ClusterImagePolicies,
	} {
		got, err := render()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		path := filepath.Join("testdata", "golden", name)
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from %s (go test -update rewrites it):\n%s", name, path, got)
		}
	}
}

// containers-policy.json(5), decoded strictly into types that mirror containers/image's
// (go.podman.io/image/v5 signature/policy_types.go) and checked with its rules:
// go.podman.io/image/v5 itself does not fit this module graph (it needs newer golang.org/x
// modules, docker/cli and C libraries), so the schema is restated here.
type ciPolicy struct {
	Default    []ciRequirement                       `json:"default"`
	Transports map[string]map[string][]ciRequirement `json:"transports"`
}

type ciRequirement struct {
	Type                string            `json:"type"`
	KeyType             string            `json:"keyType,omitempty"`
	KeyPath             string            `json:"keyPath,omitempty"`
	KeyPaths            []string          `json:"keyPaths,omitempty"`
	KeyData             []byte            `json:"keyData,omitempty"`
	KeyDatas            [][]byte          `json:"keyDatas,omitempty"`
	Fulcio              json.RawMessage   `json:"fulcio,omitempty"`
	PKI                 json.RawMessage   `json:"pki,omitempty"`
	RekorPublicKeyPath  string            `json:"rekorPublicKeyPath,omitempty"`
	RekorPublicKeyData  []byte            `json:"rekorPublicKeyData,omitempty"`
	SignedIdentity      *ciSignedIdentity `json:"signedIdentity,omitempty"`
	SignedPrefix        string            `json:"signedPrefix,omitempty"`
	RekorPublicKeyPaths []string          `json:"rekorPublicKeyPaths,omitempty"`
	RekorPublicKeyDatas [][]byte          `json:"rekorPublicKeyDatas,omitempty"`
}

type ciSignedIdentity struct {
	Type             string `json:"type"`
	DockerReference  string `json:"dockerReference,omitempty"`
	DockerRepository string `json:"dockerRepository,omitempty"`
	Prefix           string `json:"prefix,omitempty"`
	SignedPrefix     string `json:"signedPrefix,omitempty"`
}

func checkRequirement(r ciRequirement) error {
	switch r.Type {
	case "reject", "insecureAcceptAnything":
		if r.KeyData != nil || r.KeyDatas != nil || r.SignedIdentity != nil {
			return fmt.Errorf("%s takes no other fields", r.Type)
		}
		return nil
	case "sigstoreSigned":
		n := 0
		for _, set := range []bool{r.KeyPath != "", r.KeyPaths != nil, r.KeyData != nil, r.KeyDatas != nil, r.Fulcio != nil, r.PKI != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return fmt.Errorf("sigstoreSigned needs exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio, pki; has %d", n)
		}
		if r.KeyDatas != nil && len(r.KeyDatas) == 0 {
			return errors.New("keyDatas is empty")
		}
		for _, k := range append([][]byte{r.KeyData}, r.KeyDatas...) {
			if k != nil && checkPublicKey(k) != nil {
				return fmt.Errorf("key data is not a PEM public key: %w", checkPublicKey(k))
			}
		}
		if r.SignedIdentity != nil {
			switch r.SignedIdentity.Type {
			case "matchExact", "matchRepoDigestOrExact", "matchRepository":
			default:
				return fmt.Errorf("signedIdentity type %q not checked here", r.SignedIdentity.Type)
			}
		}
		return nil
	}
	return fmt.Errorf("unknown requirement type %q", r.Type)
}

// checkDockerScope applies containers/image's rules for docker transport scopes: a host
// (with port), or a repository or namespace that parses as a normalised name.
func checkDockerScope(s string) error {
	if s == "" {
		return nil // the transport default
	}
	if strings.HasPrefix(s, "*.") {
		return nil
	}
	if !strings.Contains(s, "/") {
		if strings.ContainsAny(s, "@*") {
			return fmt.Errorf("invalid host scope %q", s)
		}
		return nil
	}
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return fmt.Errorf("scope %q: %w", s, err)
	}
	if named.String() != s || !reference.IsNameOnly(named) {
		return fmt.Errorf("scope %q is not a fully expanded repository or namespace (%s)", s, named)
	}
	return nil
}

func TestPolicyJSONIsAValidContainersPolicy(t *testing.T) {
	p, _ := sample(t)
	raw, err := p.PolicyJSON()
	if err != nil {
		t.Fatal(err)
	}
	var pol ciPolicy
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pol); err != nil {
		t.Fatalf("policy.json does not decode strictly: %v", err)
	}
	if len(pol.Default) != 1 || pol.Default[0].Type != "reject" {
		t.Errorf("default = %+v, want [reject]", pol.Default)
	}
	for tr, scopes := range pol.Transports {
		if tr != "docker" {
			t.Errorf("transport %s, want only docker", tr)
		}
		for s, reqs := range scopes {
			if err := checkDockerScope(s); err != nil {
				t.Error(err)
			}
			if len(reqs) == 0 {
				t.Errorf("scope %s: no requirements (containers/image refuses an empty list)", s)
			}
			for _, r := range reqs {
				if err := checkRequirement(r); err != nil {
					t.Errorf("scope %s: %v", s, err)
				}
			}
		}
	}
	bank := pol.Transports["docker"]["registry.bank.internal"]
	if len(bank) != 1 || bank[0].Type != "sigstoreSigned" || !bytes.Equal(bank[0].KeyData, readKey(t, "bank-release")) {
		t.Errorf("registry.bank.internal = %+v, want sigstoreSigned with the bank-release key", bank)
	}
	if edge := pol.Transports["docker"]["registry.edge.local:5000"]; len(edge) != 1 || edge[0].Type != "insecureAcceptAnything" {
		t.Errorf("registry.edge.local:5000 = %+v, want insecureAcceptAnything (no key authority)", edge)
	}
	if _, ok := pol.Transports["docker"]["docker.io"]; ok {
		t.Error("docker.io (only in a warn constraint) is allowed")
	}
}

// ClusterImagePolicy and Image decode strictly into the OpenShift config/v1 shapes.
func TestOpenShiftObjects(t *testing.T) {
	p, _ := sample(t)
	raw, err := p.ClusterImagePolicies()
	if err != nil {
		t.Fatal(err)
	}
	type cip struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec struct {
			Scopes []string `json:"scopes"`
			Policy struct {
				RootOfTrust struct {
					PolicyType string `json:"policyType"`
					PublicKey  struct {
						KeyData string `json:"keyData"`
					} `json:"publicKey"`
				} `json:"rootOfTrust"`
				SignedIdentity struct {
					MatchPolicy string `json:"matchPolicy"`
				} `json:"signedIdentity"`
			} `json:"policy"`
		} `json:"spec"`
	}
	var got []string
	for _, doc := range strings.Split(string(raw), "\n---\n")[1:] {
		var c cip
		if err := yaml.UnmarshalStrict([]byte(doc), &c); err != nil {
			t.Fatalf("ClusterImagePolicy: %v\n%s", err, doc)
		}
		key, err := base64.StdEncoding.DecodeString(c.Spec.Policy.RootOfTrust.PublicKey.KeyData)
		if err != nil || checkPublicKey(key) != nil {
			t.Errorf("%s: keyData is not a base64 PEM public key", c.Metadata.Name)
		}
		if c.APIVersion != "config.openshift.io/v1" || c.Kind != "ClusterImagePolicy" || c.Spec.Policy.RootOfTrust.PolicyType != "PublicKey" ||
			c.Spec.Policy.SignedIdentity.MatchPolicy != "MatchRepoDigestOrExact" {
			t.Errorf("ClusterImagePolicy %+v", c)
		}
		for _, s := range c.Spec.Scopes {
			if err := checkDockerScope(s); err != nil {
				t.Error(err)
			}
		}
		got = append(got, c.Metadata.Name+"="+strings.Join(c.Spec.Scopes, ","))
	}
	if g := strings.Join(got, " "); g != "imagetrust-bank-release=registry.bank.internal imagetrust-vendor=quay.io/vendor-gateway" {
		t.Errorf("ClusterImagePolicies = %s", g)
	}

	raw, err = p.OpenShiftImage()
	if err != nil {
		t.Fatal(err)
	}
	var img struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
		Spec struct {
			RegistrySources struct {
				AllowedRegistries []string `json:"allowedRegistries"`
			} `json:"registrySources"`
		} `json:"spec"`
	}
	if err := yaml.UnmarshalStrict(raw, &img); err != nil {
		t.Fatal(err)
	}
	if img.Kind != "Image" || img.Metadata.Name != "cluster" || strings.Join(img.Spec.RegistrySources.AllowedRegistries, " ") != strings.Join(p.Allowed, " ") {
		t.Errorf("Image = %+v", img)
	}
}

// Inputs node policy cannot express exactly fail, naming the file, constraint or authority.
func TestExportRejects(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	open := write("open.yaml", "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sTrustedImageSource\nmetadata: {name: open}\nspec:\n  parameters: {bannedTags: [latest]}\n")
	if _, _, err := LoadConstraints([]string{open}); err == nil || !strings.Contains(err.Error(), "open.yaml: document 1 (K8sTrustedImageSource open): spec.parameters.allowedRegistries is not set") {
		t.Errorf("LoadConstraints(no allowedRegistries) = %v", err)
	}
	scheme := write("scheme.yaml", "kind: K8sTrustedImageSource\nmetadata: {name: s}\nspec:\n  parameters: {allowedRegistries: [\"https://quay.io\"]}\n")
	if _, _, err := LoadConstraints([]string{scheme}); err == nil || !strings.Contains(err.Error(), `allowedRegistries[0] "https://quay.io": has a scheme`) {
		t.Errorf("LoadConstraints(scheme) = %v", err)
	}
	bad := write("bad.yaml", "kind: K8sTrustedImageSource\n  metadata: [\n")
	if _, _, err := LoadConstraints([]string{bad}); err == nil || !strings.Contains(err.Error(), "bad.yaml: document 1: parsing YAML") {
		t.Errorf("LoadConstraints(bad YAML) = %v", err)
	}
	none := write("none.yaml", "kind: Namespace\nmetadata: {name: x}\n")
	if _, _, err := LoadConstraints([]string{none}); err == nil || !strings.Contains(err.Error(), "no enforced K8sTrustedImageSource constraint") {
		t.Errorf("LoadConstraints(no constraint) = %v", err)
	}

	src := []TrustedSource{{File: "f.yaml", Name: "c", AllowedRegistries: []string{"registry.bank.internal"}}}
	for _, tt := range []struct {
		name string
		o    Options
		want string
	}{
		{"glob inside a path", Options{Sources: src, Authorities: []Authority{{Name: "a", Images: []string{"registry.bank.internal/*/app"}, PublicKeyPEM: readKey(t, "vendor")}}},
			`authority a: images[0] "registry.bank.internal/*/app": node policy scopes are whole repositories or namespaces`},
		{"wildcard host", Options{Sources: src, Authorities: []Authority{{Name: "a", Images: []string{"*.bank.internal/**"}, PublicKeyPEM: readKey(t, "vendor")}}},
			"the registry host has a wildcard"},
		{"not a key", Options{Sources: src, Authorities: []Authority{{Name: "a", PublicKeyPEM: []byte("nope")}}}, "authority a: public key is not PEM"},
		{"exempt wildcard host", Options{Sources: []TrustedSource{{File: "f.yaml", Name: "c", Exempt: []string{"*/pause:*"}}}}, "f.yaml: K8sTrustedImageSource c: exemptImages"},
		{"no sources", Options{}, "no K8sTrustedImageSource constraint given"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Compute(tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Compute() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestGlobPrefix(t *testing.T) {
	for _, tt := range []struct {
		glob, prefix string
		whole        bool
	}{
		{"registry.bank.internal/**", "registry.bank.internal", true},
		{"Registry.Bank.Internal/team/**", "registry.bank.internal/team", true},
		{"registry.k8s.io/pause:3.*", "registry.k8s.io/pause", false},
		{"quay.io/org/*", "quay.io/org", false},
		{"quay.io/org/app", "quay.io/org/app", false},
		{"localhost:5000/**", "localhost:5000", true},
		{"quay.io/org/**@sha256:*", "quay.io/org", false},
	} {
		p, w, err := globPrefix(tt.glob)
		if err != nil || p != tt.prefix || w != tt.whole {
			t.Errorf("globPrefix(%q) = %q, %v, %v, want %q, %v", tt.glob, p, w, err, tt.prefix, tt.whole)
		}
	}
}

// The repository's own seed constraints export.
func TestRepositoryConstraintsExport(t *testing.T) {
	sources, _, err := LoadConstraints([]string{filepath.Join("..", "..", "..", "constraints", "base")})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compute(Options{Sources: sources})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(p.Allowed, " "), "registry.bank.internal") {
		t.Errorf("Allowed = %v, want registry.bank.internal", p.Allowed)
	}
}
