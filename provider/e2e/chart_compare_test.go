package e2e

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/imagetrust/imagetrust/provider/internal/config"
)

// Comparing rendered objects (chart against kustomize and the repository's files) and the
// provider configuration's field paths, for the chart tests.

// helmOnlyLabels are the labels the chart adds to what the kustomize base sets.
var helmOnlyLabels = []string{"app.kubernetes.io/instance", "app.kubernetes.io/managed-by", "app.kubernetes.io/version", "helm.sh/chart"}

func normalise(t *testing.T, o *unstructured.Unstructured) map[string]any {
	t.Helper()
	o = o.DeepCopy()
	strip := func(fields ...string) {
		m, found, _ := unstructured.NestedStringMap(o.Object, fields...)
		if !found {
			return
		}
		for _, l := range helmOnlyLabels {
			delete(m, l)
		}
		if err := unstructured.SetNestedStringMap(o.Object, m, fields...); err != nil {
			t.Fatal(err)
		}
	}
	strip("metadata", "labels")
	strip("spec", "template", "metadata", "labels")
	// The chart labels its pods app.kubernetes.io/part-of too (kustomize's labels transformer
	// leaves pod templates alone with includeSelectors: false); not a selector.
	if m, found, _ := unstructured.NestedStringMap(o.Object, "spec", "template", "metadata", "labels"); found {
		delete(m, "app.kubernetes.io/part-of")
		if err := unstructured.SetNestedStringMap(o.Object, m, "spec", "template", "metadata", "labels"); err != nil {
			t.Fatal(err)
		}
	}
	if ann, found, _ := unstructured.NestedStringMap(o.Object, "spec", "template", "metadata", "annotations"); found {
		delete(ann, "checksum/config")
		if len(ann) == 0 {
			unstructured.RemoveNestedField(o.Object, "spec", "template", "metadata", "annotations")
		} else if err := unstructured.SetNestedStringMap(o.Object, ann, "spec", "template", "metadata", "annotations"); err != nil {
			t.Fatal(err)
		}
	}
	if o.GetKind() == "ConfigMap" {
		s, _, _ := unstructured.NestedString(o.Object, "data", "config.yaml")
		var cfg map[string]any
		if err := yaml.Unmarshal([]byte(s), &cfg); err != nil {
			t.Fatalf("%s config.yaml: %v", objectKey(o), err)
		}
		if err := unstructured.SetNestedField(o.Object, cfg, "data", "config.yaml"); err != nil {
			t.Fatal(err)
		}
	}
	return o.Object
}

// compareObjects reports objects present on one side only and every differing field.
func compareObjects(t *testing.T, aName string, a []*unstructured.Unstructured, bName string, b []*unstructured.Unstructured) {
	t.Helper()
	index := func(objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
		m := map[string]*unstructured.Unstructured{}
		for _, o := range objs {
			m[objectKey(o)] = o
		}
		return m
	}
	am, bm := index(a), index(b)
	if len(bm) == 0 {
		t.Fatalf("%s: no objects to compare", bName)
	}
	var keys []string
	for k := range bm {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ao, ok := am[k]
		if !ok {
			t.Errorf("%s renders %s, %s does not", bName, k, aName)
			continue
		}
		for _, d := range diffValues("", normalise(t, ao), normalise(t, bm[k])) {
			t.Errorf("%s: %s (%s vs %s)", k, d, aName, bName)
		}
	}
	for k := range am {
		if _, ok := bm[k]; !ok {
			t.Errorf("%s renders %s, %s does not", aName, k, bName)
		}
	}
}

// diffValues lists the paths where two decoded YAML values differ.
func diffValues(path string, a, b any) []string {
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %v vs %v", path, a, b)}
		}
		var out []string
		seen := map[string]bool{}
		for k := range av {
			seen[k] = true
			out = append(out, diffValues(path+"."+k, av[k], bv[k])...)
		}
		for k := range bv {
			if !seen[k] {
				out = append(out, diffValues(path+"."+k, nil, bv[k])...)
			}
		}
		sort.Strings(out)
		return out
	case []any:
		bv, ok := b.([]any)
		if !ok || len(av) != len(bv) {
			return []string{fmt.Sprintf("%s: %v vs %v", path, a, b)}
		}
		var out []string
		for i := range av {
			out = append(out, diffValues(fmt.Sprintf("%s[%d]", path, i), av[i], bv[i])...)
		}
		return out
	default:
		if fmt.Sprint(a) != fmt.Sprint(b) {
			return []string{fmt.Sprintf("%s: %v vs %v", path, a, b)}
		}
		return nil
	}
}

func configType() reflect.Type { return reflect.TypeFor[config.Config]() }

// configFieldPaths lists the JSON field paths of a configuration type ("cache.ttl",
// "registries[].mirrors[].host").
func configFieldPaths(prefix string, t reflect.Type) []string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		out = append(out, prefix+name)
		ft, sub := f.Type, prefix+name
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if ft.Kind() == reflect.Slice {
			ft, sub = ft.Elem(), sub+"[]"
		}
		out = append(out, configFieldPaths(sub+".", ft)...)
	}
	return out
}
