package templategen

import (
	"strings"
	"testing"
	"testing/fstest"
)

const pageSrc = `package k8sthing

import data.lib.b

provider := "imagetrust-thing"

violation contains {"msg": msg} if {
	some c in input.review.object.spec.containers
	msg := sprintf("container <%s> image <%v> is not a thing; found %d", [c.name, c.image, b.y])
}

config_problems contains sprintf("names[%d] must be a string, got <%v>", [i, n]) if {
	some i, n in input.parameters.names
	not is_string(n)
}
`

const pageLib = `package lib.b

transient_classes := {"unavailable", "timed out"}

y := 1

problems contains sprintf("exemptImages[%d] is wrong", [i]) if some i, _ in input.parameters.exemptImages
`

// pageMeta is goodMeta with an array of objects (nested rows, required, a "|" to escape).
const pageMeta = goodMeta + `  exemptImages:
    type: array
    description: Exempt | or not.
    items:
      type: object
      required: [image]
      properties:
        image:
          type: string
          description: Glob.
`

// TestPage renders a page from a small library and checks each section is drawn from its
// source: metadata, the schema (nested rows, required), the Rego's message formats, the
// provider and transient classes, and the example constraints of the kind only.
func TestPage(t *testing.T) {
	lib, err := Load(fsWith(map[string]string{
		"thing/src.rego":      pageSrc,
		"thing/template.yaml": pageMeta,
		"lib/b.rego":          pageLib,
	}))
	if err != nil {
		t.Fatal(err)
	}
	examples, err := Examples(fstest.MapFS{
		"thing/one.yaml":   {Data: []byte("kind: K8sThing\nmetadata:\n  name: one\n")},
		"other/two.yaml":   {Data: []byte("kind: K8sThing\nmetadata:\n  name: two\n")},
		"other/three.yaml": {Data: []byte("kind: K8sOther\n")},
	}, "constraints", "K8sThing", "thing")
	if err != nil {
		t.Fatal(err)
	}
	if len(examples) != 2 || examples[0].Path != "constraints/thing/one.yaml" || examples[1].Path != "constraints/other/two.yaml" {
		t.Fatalf("Examples() = %+v, want thing/one.yaml then other/two.yaml", examples)
	}
	b, err := lib.Page(lib.Templates[0], examples)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{
		"# Thing (`K8sThing`)",
		"version 1.2.3 · asks the provider `imagetrust-thing`",
		"Denies things.",
		"| `names` | array of string | Names. |",
		"| `exemptImages` | array of object | Exempt \\| or not. |",
		"| `exemptImages[].image` | string, required | Glob. |",
		"- `container <…> image <…> is not a thing; found …`",
		"- `names[…] must be a string, got <…>`",
		"- `exemptImages[…] is wrong`",
		"(`timed out:`, `unavailable:`)",
		"`constraints/thing/one.yaml`\n\n```yaml\nkind: K8sThing\nmetadata:\n  name: one\n```",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("Page() lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "K8sOther") {
		t.Errorf("Page() shows a constraint of another kind:\n%s", page)
	}
}
