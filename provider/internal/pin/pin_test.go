package pin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/manifests"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// image is a deterministic single-platform image (its digest is the same in every run, so
// golden files can hold it).
func image(t *testing.T, label, arch string) v1.Image {
	t.Helper()
	img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{OS: "linux", Architecture: arch, Config: v1.Config{Labels: map[string]string{"name": label}}})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

type fixture struct {
	reg    *registrytest.Registry
	client *registry.Client
}

// newFixture pushes the images the testdata names to a loopback registry; shop/web:1.0 is a
// two-platform index.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	reg := registrytest.New()
	t.Cleanup(reg.Close)
	push := func(ref string, img v1.Image) {
		tag, err := name.NewTag(reg.Host + "/" + ref)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(tag, img); err != nil {
			t.Fatal(err)
		}
	}
	for _, ref := range []string{"shop/sidecar:2.1", "shop/worker:3", "shop/db:latest", "shop/models:7"} {
		push(ref, image(t, ref, "amd64"))
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: image(t, "web", "amd64"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: image(t, "web", "arm64"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	tag, err := name.NewTag(reg.Host + "/shop/web:1.0")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}
	client, err := registry.New(context.Background(), registry.Options{Registries: []config.Registry{{Host: reg.Host, Insecure: true}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.CloseIdleConnections)
	reg.ResetCounts()
	return &fixture{reg: reg, client: client}
}

func (f *fixture) source(t *testing.T, file string) manifests.Source {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	return manifests.Source{Name: file, Data: []byte(strings.ReplaceAll(string(b), "REGISTRY", f.reg.Host))}
}

// TestPinGolden pins every testdata file and compares the result byte for byte with its
// golden file: only the image scalars change.
func TestPinGolden(t *testing.T) {
	f := newFixture(t)
	files := []string{"comments.yaml", "anchors.yaml", "crlf.yaml", "list.json", "multidoc.yaml"}
	var srcs []manifests.Source
	for _, file := range files {
		srcs = append(srcs, f.source(t, file))
	}
	res, err := Plan(context.Background(), srcs, Options{Registry: f.client, Resolve: true})
	if err != nil {
		t.Fatalf("Plan: %v", err)
	}
	for _, s := range srcs {
		got, ok := res.Output[s.Name]
		if !ok {
			t.Errorf("%s: nothing rewritten", s.Name)
			continue
		}
		got = []byte(strings.ReplaceAll(string(got), f.reg.Host, "REGISTRY"))
		golden := filepath.Join("testdata", s.Name+".golden")
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run with -update to create it)", err)
		}
		if string(got) != string(want) {
			d, _ := Diff(s.Name, want, got)
			t.Errorf("%s differs from %s:\n%s", s.Name, golden, d)
		}
	}
	// Five distinct tags across all files: one HEAD each, nothing else.
	if got := f.reg.Count("HEAD", "manifests"); got != 5 || res.Lookups != 5 {
		t.Errorf("manifest HEADs = %d, lookups = %d, want 5 and 5 (one per distinct tag)", got, res.Lookups)
	}
	if got := f.reg.Count("GET", "manifests"); got != 0 {
		t.Errorf("manifest GETs = %d, want 0", got)
	}
	var warned []string
	for _, w := range res.Warnings {
		warned = append(warned, w.String())
	}
	want := []string{
		`comments.yaml:21: spec.template.spec.containers[3].image: skipping templated image reference "{{ .Values.image }}"`,
		`comments.yaml:23: spec.template.spec.containers[4].image: skipping templated image reference "$IMAGE"`,
	}
	if strings.Join(warned, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(warned, "\n"), strings.Join(want, "\n"))
	}
	// The output is pinned: --check finds nothing left (templated references aside).
	var pinned []manifests.Source
	for _, s := range srcs {
		pinned = append(pinned, manifests.Source{Name: s.Name, Data: res.Output[s.Name]})
	}
	again, err := Plan(context.Background(), pinned, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Unpinned) != 0 {
		t.Errorf("after pinning, unpinned = %v", again.Unpinned)
	}
}

func TestPinCheckAndDigestForm(t *testing.T) {
	f := newFixture(t)
	src := f.source(t, "crlf.yaml")
	res, err := Plan(context.Background(), []manifests.Source{src}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Unpinned) != 2 || res.Unpinned[0].Line != 8 || f.reg.Total() != 0 {
		t.Errorf("check: unpinned = %v, registry requests = %d; want 2 (line 8 first) and no request", res.Unpinned, f.reg.Total())
	}
	res, err = Plan(context.Background(), []manifests.Source{src}, Options{Registry: f.client, Resolve: true, Form: FormDigest})
	if err != nil {
		t.Fatal(err)
	}
	out := string(res.Output[src.Name])
	if !strings.Contains(out, "image: \""+f.reg.Host+"/shop/web@sha256:") || strings.Contains(out, "web:1.0") {
		t.Errorf("digest form output:\n%s", out)
	}
}

func TestPinPlatform(t *testing.T) {
	f := newFixture(t)
	src := manifests.Source{Name: "p.yaml", Data: []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: " + f.reg.Host + "/shop/web:1.0}\n")}
	arm := image(t, "web", "arm64")
	armDigest, err := arm.Digest()
	if err != nil {
		t.Fatal(err)
	}
	res, err := Plan(context.Background(), []manifests.Source{src}, Options{Registry: f.client, Resolve: true, Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := f.reg.Host + "/shop/web:1.0@" + armDigest.String(); len(res.Edits) != 1 || res.Edits[0].New != want {
		t.Fatalf("edits = %+v, want the arm64 manifest %s", res.Edits, want)
	}
	res, err = Plan(context.Background(), []manifests.Source{src}, Options{Registry: f.client, Resolve: true, Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) != 1 || !strings.Contains(res.Problems[0].Msg, "no manifest for platform linux/s390x (it has: linux/amd64, linux/arm64/v8)") {
		t.Errorf("problems = %v, want no manifest for linux/s390x", res.Problems)
	}
}

// TestPinVerify: a pinned digest that exists and whose tag still points at it passes; a tag
// pushed again is reported as moved; a digest that does not exist is reported.
func TestPinVerify(t *testing.T) {
	f := newFixture(t)
	wref, err := name.ParseReference(f.reg.Host + "/shop/worker:3")
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(wref)
	if err != nil {
		t.Fatal(err)
	}
	ok := f.reg.Host + "/shop/worker:3@" + desc.Digest.String()
	missing := f.reg.Host + "/shop/db@sha256:" + strings.Repeat("ab", 32)
	src := manifests.Source{Name: "v.yaml", Data: []byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: a, image: " + ok + "}\n  - {name: b, image: " + missing + "}\n")}
	res, err := Plan(context.Background(), []manifests.Source{src}, Options{Registry: f.client, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Problems) != 1 || res.Problems[0].Image != missing || !strings.Contains(res.Problems[0].Msg, "not found") {
		t.Fatalf("problems = %v, want only the missing digest", res.Problems)
	}
	// Push a new image to worker:3: the pin is now stale.
	tag, _ := name.NewTag(f.reg.Host + "/shop/worker:3")
	if err := remote.Write(tag, image(t, "worker v2", "amd64")); err != nil {
		t.Fatal(err)
	}
	res, err = Plan(context.Background(), []manifests.Source{src}, Options{Registry: f.client, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	var moved bool
	for _, p := range res.Problems {
		if p.Image == ok && strings.Contains(p.Msg, "tag <3> moved") && p.Line == 6 {
			moved = true
		}
	}
	if !moved {
		t.Errorf("problems = %v, want tag <3> moved at line 6", res.Problems)
	}
}

func TestPinErrors(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
		line             int
	}{
		{"block scalar", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    image: >-\n      registry.example/a:1\n", "cannot rewrite", 7},
		{"invalid reference", "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: a\n    image: Registry.Example/UPPER:1\n", "invalid reference", 7},
		{"not yaml", "apiVersion: v1\nkind: Pod\n  bad: [\n", "not valid YAML", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, err := registry.New(context.Background(), registry.Options{Registries: []config.Registry{{Host: "registry.example"}}})
			if err != nil {
				t.Fatal(err)
			}
			// The block scalar is found before any lookup: the registry is never needed.
			_, err = Plan(context.Background(), []manifests.Source{{Name: "bad.yaml", Data: []byte(tc.data)}}, Options{Registry: client, Resolve: true})
			var me *manifests.Error
			if !errors.As(err, &me) || me.File != "bad.yaml" || me.Line != tc.line || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Plan = %v, want bad.yaml:%d … %q", err, tc.line, tc.want)
			}
		})
	}
}

// TestPinRequestsAtScale: 1,000 Deployments with 3 containers each over 200 distinct tags cost
// exactly 200 HEAD requests (the floor: one per distinct tag) and no GET.
func TestPinRequestsAtScale(t *testing.T) {
	reg := registrytest.New()
	defer reg.Close()
	for i := range 200 {
		tag, err := name.NewTag(fmt.Sprintf("%s/bank/img-%d:1.0", reg.Host, i))
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(tag, image(t, tag.String(), "amd64")); err != nil {
			t.Fatal(err)
		}
	}
	client, err := registry.New(context.Background(), registry.Options{Registries: []config.Registry{{Host: reg.Host, Insecure: true}}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseIdleConnections()
	var b strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&b, "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app-%d}\nspec:\n  template:\n    spec:\n      initContainers: [{name: init, image: %s/bank/img-%d:1.0}]\n      containers:\n      - {name: app, image: %s/bank/img-%d:1.0}\n      - {name: side, image: %s/bank/img-%d:1.0}\n",
			i, reg.Host, i%200, reg.Host, (i+67)%200, reg.Host, (i+133)%200)
	}
	reg.ResetCounts()
	res, err := Plan(context.Background(), []manifests.Source{{Name: "big.yaml", Data: []byte(b.String())}}, Options{Registry: client, Resolve: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Edits) != 3000 || len(res.Problems) != 0 {
		t.Fatalf("edits %d problems %v, want 3000 and none", len(res.Edits), res.Problems)
	}
	heads, gets := reg.Count("HEAD", "manifests"), reg.Count("GET", "manifests")
	t.Logf("pin 1,000 Deployments (3,000 references, 200 distinct tags): %d manifest HEADs, %d manifest GETs, %d registry requests in all", heads, gets, reg.Total())
	if heads != 200 || gets != 0 {
		t.Errorf("manifest HEADs = %d, GETs = %d; want 200 and 0", heads, gets)
	}
}
