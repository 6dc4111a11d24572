package templategen

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"sigs.k8s.io/yaml"
)

// repoDirs are the repository's folders, as `make generate` uses them.
var repoDirs = Dirs{
	Library:     "../../../library",
	Templates:   "../../../templates",
	Docs:        "../../../docs/templates",
	Constraints: "../../../constraints",
}

// TestTemplatesUpToDate fails when templates/ or docs/templates/ was not regenerated after a
// change in library/ or constraints/.
func TestTemplatesUpToDate(t *testing.T) {
	stale, err := Stale(repoDirs)
	if err != nil {
		t.Fatalf("Stale(%+v): %v", repoDirs, err)
	}
	if len(stale) > 0 {
		t.Errorf("templates are stale, run 'make generate' and commit: %s", strings.Join(stale, ", "))
	}
}

const goodMeta = `kind: K8sThing
title: Thing
version: 1.2.3
description: Denies things.
parameters:
  names:
    type: array
    description: Names.
    items:
      type: string
`

const goodSrc = "package k8sthing\n\nimport data.lib.b\n\nviolation contains {\"msg\": b.y} if {\n\tinput.review.object.kind == \"Pod\"\n}\n"

func fsWith(files map[string]string) fstest.MapFS {
	m := fstest.MapFS{
		"lib/a.rego":          {Data: []byte("package lib.a\n\nx := 1\n")},
		"lib/b.rego":          {Data: []byte("package lib.b\n\ny := data.lib.a.x + 1\n")},
		"lib/c.rego":          {Data: []byte("package lib.c\n\nz := external_data({})\n")},
		"lib/b_test.rego":     {Data: []byte("package lib.b_test\n")},
		"thing/src.rego":      {Data: []byte(goodSrc)},
		"thing/template.yaml": {Data: []byte(goodMeta)},
	}
	for k, v := range files {
		if v == "" {
			delete(m, k)
			continue
		}
		m[k] = &fstest.MapFile{Data: []byte(v)}
	}
	return m
}

func TestRender(t *testing.T) {
	lib, err := Load(fsWith(nil))
	if err != nil {
		t.Fatal(err)
	}
	files, err := lib.Files()
	if err != nil {
		t.Fatal(err)
	}
	b, ok := files["thing.yaml"]
	if !ok {
		t.Fatalf("Files() = %v, want thing.yaml", files)
	}
	var ct struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name        string            `json:"name"`
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
		Spec struct {
			CRD struct {
				Spec struct {
					Names struct {
						Kind string `json:"kind"`
					} `json:"names"`
					Validation struct {
						OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
					} `json:"validation"`
				} `json:"spec"`
			} `json:"crd"`
			Targets []struct {
				Target string `json:"target"`
				Code   []struct {
					Engine string `json:"engine"`
					Source struct {
						Version string   `json:"version"`
						Rego    string   `json:"rego"`
						Libs    []string `json:"libs"`
					} `json:"source"`
				} `json:"code"`
			} `json:"targets"`
		} `json:"spec"`
	}
	if err := yaml.UnmarshalStrict(b, &ct); err != nil {
		t.Fatalf("rendered template is not valid YAML: %v\n%s", err, b)
	}
	if ct.APIVersion != "templates.gatekeeper.sh/v1" || ct.Kind != "ConstraintTemplate" || ct.Metadata.Name != "k8sthing" || ct.Spec.CRD.Spec.Names.Kind != "K8sThing" {
		t.Errorf("kind/name = %q/%q/%q, want ConstraintTemplate/k8sthing/K8sThing", ct.Kind, ct.Metadata.Name, ct.Spec.CRD.Spec.Names.Kind)
	}
	for k, want := range map[string]string{
		"metadata.gatekeeper.sh/title":   "Thing",
		"metadata.gatekeeper.sh/version": "1.2.3",
		"description":                    "Denies things.",
	} {
		if got := ct.Metadata.Annotations[k]; got != want {
			t.Errorf("annotation %s = %q, want %q", k, got, want)
		}
	}
	if len(ct.Spec.Targets) != 1 || len(ct.Spec.Targets[0].Code) != 1 {
		t.Fatalf("targets = %+v, want one target with one code block", ct.Spec.Targets)
	}
	src := ct.Spec.Targets[0].Code[0].Source
	if ct.Spec.Targets[0].Code[0].Engine != "Rego" || src.Version != "v1" {
		t.Errorf("engine/version = %q/%q, want Rego/v1", ct.Spec.Targets[0].Code[0].Engine, src.Version)
	}
	if src.Rego != goodSrc {
		t.Errorf("rego = %q, want %q", src.Rego, goodSrc)
	}
	wantLibs := []string{"package lib.a\n\nx := 1\n", "package lib.b\n\ny := data.lib.a.x + 1\n"}
	if strings.Join(src.Libs, "|") != strings.Join(wantLibs, "|") {
		t.Errorf("libs = %q, want %q (the libs the template reaches, each once, sorted; no test files, no unused lib)", src.Libs, wantLibs)
	}
	if _, ok := ct.Spec.CRD.Spec.Validation.OpenAPIV3Schema["properties"].(map[string]any)["names"]; !ok {
		t.Errorf("openAPIV3Schema = %v, want property names", ct.Spec.CRD.Spec.Validation.OpenAPIV3Schema)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"missing metadata", map[string]string{"thing/template.yaml": ""}, "thing/template.yaml"},
		{"missing source", map[string]string{"thing/src.rego": ""}, "thing/src.rego"},
		{"unknown field", map[string]string{"thing/template.yaml": goodMeta + "extra: 1\n"}, `unknown field "extra"`},
		{"kind not PascalCase", map[string]string{"thing/template.yaml": strings.Replace(goodMeta, "K8sThing", "k8s-thing", 1)}, "must be PascalCase"},
		{"bad version", map[string]string{"thing/template.yaml": strings.Replace(goodMeta, "1.2.3", "v1", 1)}, "must be semver"},
		{"no description", map[string]string{"thing/template.yaml": strings.Replace(goodMeta, "description: Denies things.\n", "", 1)}, "description is required"},
		{"parameter without description", map[string]string{"thing/template.yaml": strings.Replace(goodMeta, "    description: Names.\n", "", 1)}, "parameters.names: description is required"},
		{"parameter without type", map[string]string{"thing/template.yaml": strings.Replace(goodMeta, "    type: array\n", "", 1)}, "parameters.names: type is required"},
		{"parameter not camelCase", map[string]string{"thing/template.yaml": strings.Replace(goodMeta, "  names:", "  Names:", 1)}, "camelCase"},
		{"package mismatch", map[string]string{"thing/src.rego": strings.Replace(goodSrc, "k8sthing", "other", 1)}, `package "other", want "k8sthing"`},
		{"lib outside package lib", map[string]string{"lib/a.rego": "package util\n"}, "must be in package lib"},
		{"lib does not parse", map[string]string{"lib/a.rego": "package lib.a\n\nx := \n"}, "lib/a.rego"},
		{"template refers to a missing lib", map[string]string{"thing/src.rego": strings.Replace(goodSrc, "data.lib.b", "data.lib.nope", 1)}, "thing/src.rego: refers to data.lib.nope"},
		{"lib refers to a missing lib", map[string]string{"lib/b.rego": "package lib.b\n\ny := data.lib.gone.x\n"}, "lib/b.rego: refers to data.lib.gone.x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(fsWith(tc.files))
			if err == nil {
				t.Fatalf("Load() = nil error, want %q", tc.want)
			}
			var le *Error
			if !errors.As(err, &le) {
				t.Errorf("Load() error %T, want *Error", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Load() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestEveryFolderButLibIsATemplate(t *testing.T) {
	fs := fsWith(map[string]string{
		"other/src.rego":      strings.Replace(goodSrc, "k8sthing", "k8sother", 1),
		"other/template.yaml": strings.Replace(goodMeta, "K8sThing", "K8sOther", 1),
	})
	lib, err := Load(fs)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, tm := range lib.Templates {
		dirs = append(dirs, tm.Dir)
	}
	if got, want := strings.Join(dirs, ","), "other,thing"; got != want {
		t.Errorf("templates = %s, want %s", got, want)
	}
}

func TestGenerateAndStale(t *testing.T) {
	out := t.TempDir()
	dir := t.TempDir()
	for name, f := range fsWith(nil) {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := mkdirWrite(p, f.Data); err != nil {
			t.Fatal(err)
		}
	}
	d := Dirs{Library: dir, Templates: out, Docs: filepath.Join(out, "docs")}
	stale, err := Stale(d)
	if err != nil || len(stale) != 2 {
		t.Fatalf("Stale(empty out) = %v, %v, want the template and its page", stale, err)
	}
	written, err := Generate(d)
	if err != nil || len(written) != 2 {
		t.Fatalf("Generate() = %v, %v", written, err)
	}
	if stale, err := Stale(d); err != nil || len(stale) != 0 {
		t.Errorf("Stale(after Generate) = %v, %v, want none", stale, err)
	}
	if err := mkdirWrite(filepath.Join(dir, "thing", "src.rego"), []byte(goodSrc+"\n# changed\n")); err != nil {
		t.Fatal(err)
	}
	if stale, err := Stale(d); err != nil || len(stale) != 1 {
		t.Errorf("Stale(after edit) = %v, %v, want the template", stale, err)
	}
	if err := mkdirWrite(filepath.Join(out, "docs", "thing.md"), []byte("edited by hand\n")); err != nil {
		t.Fatal(err)
	}
	if stale, err := Stale(d); err != nil || len(stale) != 2 {
		t.Errorf("Stale(after a page edit) = %v, %v, want the template and the page", stale, err)
	}
}
