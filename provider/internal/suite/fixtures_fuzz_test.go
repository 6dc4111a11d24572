package suite

import (
	"errors"
	"testing"
	"testing/fstest"
)

// FuzzReadFixtureFile: any file content gives a fixture set, "not a fixture file" or a
// *FixtureError naming the file; never a panic.
func FuzzReadFixtureFile(f *testing.F) {
	f.Add([]byte("apiVersion: test.imagetrust.dev/v1alpha1\nkind: ProviderFixtures\nproviders:\n  p:\n    keys:\n      \"a:1\": {value: {x: 1}}\n      b: {error: \"unavailable: x\"}\n      c: {omit: true}\n"))
	f.Add([]byte("apiVersion: test.imagetrust.dev/v1alpha1\nkind: ProviderFixtures\nproviders:\n  p: {systemError: x, statusCode: 503}\n"))
	f.Add([]byte("kind: ProviderFixtures\n---\nkind: ProviderFixtures\n"))
	f.Add([]byte("apiVersion: test.gatekeeper.sh/v1alpha1\nkind: Suite\n"))
	f.Add([]byte("kind: ProviderFixtures\nproviders: [1, 2]\n\t- bad"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{"d/f.yaml": {Data: data}}
		pf, err := readFixtureFile(fsys, "d/f.yaml")
		if err != nil {
			var fe *FixtureError
			if !errors.As(err, &fe) || fe.File != "d/f.yaml" {
				t.Fatalf("readFixtureFile() = %v, want a *FixtureError for d/f.yaml", err)
			}
			return
		}
		if pf == nil {
			return
		}
		if err := pf.validate(); err != nil {
			t.Fatalf("readFixtureFile() accepted a file that does not validate: %v", err)
		}
		set := &providerSet{providers: map[string]*providerAnswers{}}
		if err := set.merge("d/f.yaml", pf); err != nil {
			t.Fatalf("merge of a single file = %v", err)
		}
	})
}
