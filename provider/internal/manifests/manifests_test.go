package manifests

import (
	"errors"
	"strings"
	"testing"
)

func parseString(t *testing.T, name, s string) []Object {
	t.Helper()
	objs, err := Parse(Source{Name: name, Data: []byte(s)})
	if err != nil {
		t.Fatalf("Parse(%s) error: %v", name, err)
	}
	return objs
}

// imageAt returns the bytes of data at im's offset, as long as the written scalar.
func scalarAt(data string, im Image) string {
	q := Quote(im.Value, im.Style)
	if im.Offset < 0 || im.Offset+len(q) > len(data) {
		return ""
	}
	return data[im.Offset : im.Offset+len(q)]
}

func TestParsePositions(t *testing.T) {
	data := "# ünïcödé comment\r\napiVersion: apps/v1\r\nkind: Deployment\r\nmetadata: {name: web, namespace: prod}\r\nspec:\r\n  template:\r\n    spec:\r\n      initContainers:\r\n        - {name: ïnit, image: \"reg.example/init:1\"}\r\n      containers:\r\n        - name: app\r\n          image: 'reg.example/app:2' # çomment\r\n        - name: side\r\n          image: reg.example/side:3\r\n      volumes:\r\n        - name: data\r\n          image: {reference: reg.example/data:4}\r\n"
	objs := parseString(t, "d.yaml", data)
	if len(objs) != 1 {
		t.Fatalf("got %d objects, want 1", len(objs))
	}
	o := objs[0]
	if got, want := o.Ref(), "Deployment prod/web"; got != want {
		t.Errorf("Ref() = %q, want %q", got, want)
	}
	want := []struct {
		path, value string
		line, col   int
	}{
		{"spec.template.spec.containers[0].image", "reg.example/app:2", 12, 18},
		{"spec.template.spec.containers[1].image", "reg.example/side:3", 14, 18},
		{"spec.template.spec.initContainers[0].image", "reg.example/init:1", 9, 31},
		{"spec.template.spec.volumes[0].image.reference", "reg.example/data:4", 17, 30},
	}
	if len(o.Images) != len(want) {
		t.Fatalf("got %d images, want %d: %+v", len(o.Images), len(want), o.Images)
	}
	for i, w := range want {
		im := o.Images[i]
		if im.Path != w.path || im.Value != w.value || im.Line != w.line || im.Column != w.col {
			t.Errorf("image %d = %s %q at %d:%d, want %s %q at %d:%d", i, im.Path, im.Value, im.Line, im.Column, w.path, w.value, w.line, w.col)
		}
		if got := scalarAt(data, im); got != Quote(w.value, im.Style) {
			t.Errorf("image %d: bytes at offset %d = %q, want %q", i, im.Offset, got, Quote(w.value, im.Style))
		}
	}
}

func TestParseListJSONMultiDoc(t *testing.T) {
	data := `{"apiVersion": "v1", "kind": "List", "items": [
  {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}},
  {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "b"}, "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "j", "image": "busybox"}]}}}}}}
]}
---
# only a comment
---
apiVersion: v1
kind: Namespace
metadata:
  name: prod
  labels: {team: pay}
`
	objs := parseString(t, "l.json", data)
	if len(objs) != 3 {
		t.Fatalf("got %d objects, want 3", len(objs))
	}
	if objs[0].Item != 0 || objs[1].Item != 1 || objs[2].Item != -1 || objs[2].Doc != 3 {
		t.Errorf("items/docs = %d/%d %d/%d %d/%d", objs[0].Doc, objs[0].Item, objs[1].Doc, objs[1].Item, objs[2].Doc, objs[2].Item)
	}
	if im := objs[1].Images; len(im) != 1 || im[0].Path != "spec.jobTemplate.spec.template.spec.containers[0].image" || im[0].Line != 3 {
		t.Errorf("CronJob images = %+v", im)
	}
	if got := objs[2].Object.GetLabels()["team"]; got != "pay" {
		t.Errorf("Namespace label team = %q, want pay", got)
	}
}

func TestParseAnchorsAndMerge(t *testing.T) {
	data := `base: &img registry.example/app:1
---
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
    - &c {name: a, image: &i2 registry.example/a:1}
    - <<: *c
      name: b
    - {name: c, image: *i2}
`
	_, err := Parse(Source{Name: "a.yaml", Data: []byte(data)})
	var e *Error
	if !errors.As(err, &e) || e.Line != 1 || !strings.Contains(e.Error(), "no apiVersion") {
		t.Fatalf("Parse = %v, want an error at line 1 about apiVersion", err)
	}
	objs := parseString(t, "a.yaml", data[strings.Index(data, "---")+4:])
	ims := objs[0].Images
	if len(ims) != 3 {
		t.Fatalf("images = %+v", ims)
	}
	for _, im := range ims {
		if im.Value != "registry.example/a:1" || im.Line != 6 {
			t.Errorf("image %s = %q at line %d, want the anchored scalar at line 6", im.Path, im.Value, im.Line)
		}
	}
	if !ims[2].Alias || ims[0].Alias {
		t.Errorf("Alias flags = %v %v %v", ims[0].Alias, ims[1].Alias, ims[2].Alias)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
		line             int
	}{
		{"unparseable", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: [a\n", "not valid YAML", 3},
		{"not kubernetes", "apiVersion: v1\nkind: Pod\n---\n- a\n- b\n", "not a Kubernetes object", 4},
		{"no kind", "apiVersion: v1\nmetadata: {name: x}\n", "no kind", 1},
		{"unknown kind", "apiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: x}\n", `unknown kind "Deploymnet" in apps/v1`, 2},
		{"unknown version", "apiVersion: apps/v9\nkind: Deployment\n", "has no version", 2},
		{"image not string", "apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: a\n    image: {x: 1}\n", "must be a string", 6},
		{"duplicate key", "apiVersion: v1\nkind: Pod\nkind: Pod\n", `key "kind" appears twice`, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(Source{Name: "bad.yaml", Data: []byte(tc.data)})
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse = %v, want *Error", err)
			}
			if e.File != "bad.yaml" || e.Line != tc.line || !strings.Contains(e.Error(), tc.want) {
				t.Errorf("Parse error = %q (line %d), want bad.yaml line %d containing %q", e.Error(), e.Line, tc.line, tc.want)
			}
		})
	}
}

func TestCustomResourceAccepted(t *testing.T) {
	objs := parseString(t, "c.yaml", "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: x}\n")
	if len(objs) != 1 || len(objs[0].Images) != 0 {
		t.Errorf("objects = %+v", objs)
	}
}
