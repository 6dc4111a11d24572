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
		for _, name := range []string{"imagetrust-verify", "imagetrust-verify-signatures"} {
			checked += checkVerifyFixtures(t, rel, name, set.providers[name])
		}
	}
	if checked < 20 {
		t.Errorf("checked %d fixture values, want at least 20", checked)
	}
}

// checkVerifyFixtures checks the values of one verify Provider's fixtures; those of
// imagetrust-verify-signatures must say they read signatures only and carry no attestation
// facts, as /v1/verify/signatures answers.
func checkVerifyFixtures(t *testing.T, rel, name string, pa *providerAnswers) int {
	t.Helper()
	if pa == nil {
		t.Fatalf("%s: no %s fixtures", rel, name)
	}
	checked := 0
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
		sigsOnly := name == "imagetrust-verify-signatures"
		if got := v.Reads == verify.ReadsSignatures; got != sigsOnly {
			t.Errorf("%s: %s key %q: reads %q, want %q only for imagetrust-verify-signatures", a.file, name, key, v.Reads, verify.ReadsSignatures)
		}
		if sigsOnly && (len(v.Attestations) > 0 || len(v.Provenance) > 0 || len(v.SBOM.Formats) > 0 || len(v.SBOM.Unverified) > 0) {
			t.Errorf("%s: %s key %q: attestation facts in a signatures-only answer", a.file, name, key)
		}
		checked++
	}
	return checked
}
