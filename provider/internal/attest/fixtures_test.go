package attest

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite gator-tests/attestations/fixtures.yaml from the recorded answers")

// fixtureHost replaces the loopback registry's host in recorded keys and answers.
const fixtureHost = "registry.bank.internal"

var fixturesFile = filepath.Join(repoRoot, "gator-tests", "attestations", "fixtures.yaml")

const fixturesHeader = `# Provider fixtures for the attestations suite in this directory (imagetrust verify).
# Recorded, not written: TestRecordedFixtures (provider/internal/attest) signs these statements
# with real keys, pushes them to a loopback registry, answers the keys with the real
# /v1/attestations service and compares the answers with this file, the loopback host
# replaced by registry.bank.internal. Regenerate with
#   go test ./provider/internal/attest -run TestRecordedFixtures -update
`

// TestRecordedFixtures holds the fixtures of the gator-format attestations suite to what the
// provider really answers for really signed statements: the same images, keys and statements
// looked up again must give the recorded values (layer digests of signatures in rejection
// reasons aside: a signature is different each time it is made).
func TestRecordedFixtures(t *testing.T) {
	e := newEnv(t)
	payments := "git+https://github.com/bank/payments@refs/heads/main"
	app := e.push(t, "payments/app", "1.0")
	attest(t, app, e.release, slsaV1, provenance(payments))
	attestBundle(t, app, e.release, reviewType, review("approved", "alice", "bob"))
	forked := e.push(t, "payments/forked", "1.0")
	attest(t, forked, e.release, slsaV1, provenance("git+https://github.com/bank/payments-fork@refs/heads/main"))
	attest(t, forked, e.release, reviewType, review("approved", "alice"))
	unreviewed := e.push(t, "payments/unreviewed", "1.0")
	attest(t, unreviewed, e.release, slsaV1, provenance(payments))
	attest(t, unreviewed, e.release, reviewType, review("pending"))
	ciOnly := e.push(t, "payments/ci-only", "1.0")
	attest(t, ciOnly, e.ci, slsaV1, provenance(payments))
	attest(t, ciOnly, e.release, reviewType, review("approved", "carol"))
	rogue := e.push(t, "payments/rogue", "1.0")
	attest(t, rogue, e.rogue, slsaV1, provenance(payments))
	attest(t, rogue, e.release, reviewType, review("approved", "dave"))
	e.push(t, "payments/unattested", "1.0")
	big := e.push(t, "payments/big", "1.0")
	attest(t, big, e.release, slsaV1, provenance(payments))
	reviewers := make([]string, 4000)
	for i := range reviewers {
		reviewers[i] = "reviewer-with-a-long-name"
	}
	attest(t, big, e.release, reviewType, review("approved", reviewers...))

	s := e.service(t, Limits{}, nil, nil)
	keys := []string{
		"payments/app:1.0", "payments/app@" + app.DigestStr(), "payments/forked:1.0", "payments/unreviewed:1.0",
		"payments/ci-only:1.0", "payments/rogue:1.0", "payments/unattested:1.0", "payments/big:1.0",
		"payments/missing:1.0",
	}
	got := map[string]map[string]any{}
	record := func(keys []string) {
		for _, k := range keys {
			items := s.Attestations(t.Context(), []string{e.host + "/" + k})
			entry := map[string]any{}
			if items[0].Error != "" {
				entry["error"] = strings.ReplaceAll(items[0].Error, e.host, fixtureHost)
			} else {
				raw, err := json.Marshal(items[0].Value)
				if err != nil {
					t.Fatal(err)
				}
				var v any
				if err := json.Unmarshal(bytes.ReplaceAll(raw, []byte(e.host), []byte(fixtureHost)), &v); err != nil {
					t.Fatal(err)
				}
				entry["value"] = v
			}
			got[fixtureHost+"/"+k] = entry
		}
	}
	record(keys)
	e.reg.Fail(503) // the registry is down for the last key
	record([]string{"payments/down:1.0"})

	if *update {
		writeFixtures(t, got)
		return
	}
	want := readFixtures(t)
	if !reflect.DeepEqual(normalised(t, got), normalised(t, want)) {
		g, _ := json.MarshalIndent(normalised(t, got), "", " ")
		w, _ := json.MarshalIndent(normalised(t, want), "", " ")
		t.Errorf("%s is not what the provider answers (go test -run TestRecordedFixtures -update rewrites it)\ngot:\n%s\nwant:\n%s", fixturesFile, g, w)
	}
}

type fixtureFile struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Providers map[string]struct {
		Keys map[string]map[string]any `json:"keys"`
	} `json:"providers"`
}

func writeFixtures(t *testing.T, keys map[string]map[string]any) {
	t.Helper()
	f := fixtureFile{APIVersion: "test.imagetrust.dev/v1alpha1", Kind: "ProviderFixtures"}
	f.Metadata.Name = "attestations"
	f.Providers = map[string]struct {
		Keys map[string]map[string]any `json:"keys"`
	}{"imagetrust-attestations": {Keys: keys}}
	b, err := yaml.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(fixturesFile, append([]byte(fixturesHeader), b...), 0o600); err != nil {
		t.Fatal(err)
	}
}

func readFixtures(t *testing.T) map[string]map[string]any {
	t.Helper()
	b, err := os.ReadFile(fixturesFile)
	if err != nil {
		t.Fatal(err)
	}
	var f fixtureFile
	if err := yaml.UnmarshalStrict(b, &f); err != nil {
		t.Fatalf("%s: %v", fixturesFile, err)
	}
	return f.Providers["imagetrust-attestations"].Keys
}

var layerDigest = regexp.MustCompile(`layer sha256:[0-9a-f]{64}`)

// normalised is the fixtures as JSON-decoded values, with the digests of signature layers in
// rejection reasons replaced (each signing makes a new signature, so a new layer).
func normalised(t *testing.T, keys map[string]map[string]any) map[string]any {
	t.Helper()
	raw, err := json.Marshal(keys)
	if err != nil {
		t.Fatal(err)
	}
	raw = layerDigest.ReplaceAll(raw, []byte("layer sha256:…"))
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	return out
}
