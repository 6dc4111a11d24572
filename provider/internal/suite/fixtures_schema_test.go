package suite

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/imagetrust/imagetrust/provider/internal/verify"
)

// TestVerificationFixturesHaveTheProviderShape decodes every object value in the
// verification fixtures strictly into the provider's own /v1/verify value type, so the
// hand-written fixtures cannot drift from what the provider really answers.
func TestVerificationFixturesHaveTheProviderShape(t *testing.T) {
	dirs, err := filepath.Glob(filepath.Join(repoRoot, "gator-tests", "verification", "*", "fixtures.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dirs = append(dirs, filepath.Join(repoRoot, "gator-tests", "verification", "fixtures.yaml"))
	checked := 0
	for _, f := range dirs {
		rel, _ := filepath.Rel(repoRoot, filepath.Dir(f))
		set, err := loadFixtures(os.DirFS(repoRoot), filepath.ToSlash(rel))
		if err != nil {
			t.Fatalf("loadFixtures(%s) = %v", rel, err)
		}
		pa := set.providers["imagetrust-verify"]
		if pa == nil {
			t.Fatalf("%s: no imagetrust-verify fixtures", rel)
		}
		for key, a := range pa.keys {
			if len(a.Value) == 0 || a.Value[0] != '{' {
				continue // errors, omitted keys and the deliberately malformed value
			}
			dec := json.NewDecoder(bytes.NewReader(a.Value))
			dec.DisallowUnknownFields()
			var v verify.Value
			if err := dec.Decode(&v); err != nil {
				t.Errorf("%s: key %q: value does not decode into verify.Value: %v", a.file, key, err)
				continue
			}
			if v.Image == "" || v.Digest == "" {
				t.Errorf("%s: key %q: value has no image or digest", a.file, key)
			}
			checked++
		}
	}
	if checked < 20 {
		t.Errorf("checked %d fixture values, want at least 20", checked)
	}
}
