package suite

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"

	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// TestFixtureServerQueries: a scan key with a query and no fixture of its own is answered from
// its image's fixture as the provider answers it (the findings the query lists, everything
// else unchanged); a query the provider refuses is its "invalid query" error; an image's error
// fixture answers its query keys too; a provider that takes no queries, or an image without a
// fixture, is a missing fixture.
func TestFixtureServerQueries(t *testing.T) {
	const fixtures = `apiVersion: test.imagetrust.dev/v1alpha1
kind: ProviderFixtures
providers:
  imagetrust-scan:
    keys:
      r.io/app:1:
        value:
          form: 2
          scanned: true
          counts: {CRITICAL: 1, HIGH: 0, MEDIUM: 1, LOW: 1, UNKNOWN: 0}
          findings:
          - [CVE-1, CRITICAL, a, "1", "2"]
          - [CVE-2, MEDIUM, b, "1", "2"]
          - [GHSA-3, LOW, c, "1", "", "", [CVE-3]]
          findingsTotal: 3
      r.io/down:1:
        error: "unavailable: registry r.io returned 503"
  echo:
    keys:
      r.io/app:1: {value: ok}
`
	set, err := loadFixtures(fstest.MapFS{"s/fixtures.yaml": {Data: []byte(fixtures)}}, "s")
	if err != nil {
		t.Fatal(err)
	}
	srv := newFixtureServer()
	defer srv.Close()
	srv.use(set)
	ask := func(provider string, keys ...string) map[string]externaldata.Item {
		t.Helper()
		body, _ := json.Marshal(externaldata.ProviderRequest{APIVersion: "externaldata.gatekeeper.sh/v1beta1", Kind: "ProviderRequest",
			Request: externaldata.Request{Keys: keys}})
		resp, err := srv.srv.Client().Post(srv.srv.URL+"/providers/"+provider, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var pr externaldata.ProviderResponse
		if err := json.NewDecoder(resp.Body).Decode(&pr); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d, %v", provider, resp.StatusCode, err)
		}
		items := map[string]externaldata.Item{}
		for _, it := range pr.Response.Items {
			items[it.Key] = it
		}
		return items
	}
	ids := func(it externaldata.Item) string {
		t.Helper()
		v, ok := it.Value.(map[string]any)
		if !ok {
			t.Fatalf("%s: value %v, want an object", it.Key, it.Value)
		}
		if v["findingsTotal"] != float64(3) || v["counts"] == nil || v["scanned"] != true {
			t.Errorf("%s: %v, want every field but the findings as in the fixture", it.Key, v)
		}
		var out []string
		for _, f := range v["findings"].([]any) {
			out = append(out, f.([]any)[0].(string))
		}
		return strings.Join(out, " ")
	}
	items := ask("imagetrust-scan", "r.io/app:1", "r.io/app:1#above=MEDIUM", "r.io/app:1#above=HIGH;ids=cve-3", "r.io/app:1#above=UNKNOWN",
		"r.io/app:1#below=LOW", "r.io/down:1#above=MEDIUM", "r.io/other:1#above=MEDIUM")
	for key, want := range map[string]string{
		"r.io/app:1":                      "CVE-1 CVE-2 GHSA-3",
		"r.io/app:1#above=MEDIUM":         "CVE-1",
		"r.io/app:1#above=HIGH;ids=cve-3": "CVE-1 GHSA-3",
		"r.io/app:1#above=UNKNOWN":        "CVE-1 CVE-2 GHSA-3",
	} {
		if got := ids(items[key]); got != want {
			t.Errorf("%s lists %q, want %q", key, got, want)
		}
	}
	if e := items["r.io/app:1#below=LOW"].Error; !strings.HasPrefix(e, wire.ClassInvalidQuery.Prefix()) || !strings.Contains(e, `unknown parameter "below"`) {
		t.Errorf("a refused query answered %q, want an invalid query error naming the parameter", e)
	}
	if e := items["r.io/down:1#above=MEDIUM"].Error; e != "unavailable: registry r.io returned 503" {
		t.Errorf("an image's error fixture answered its query key with %q", e)
	}
	if e := items["r.io/other:1#above=MEDIUM"].Error; !strings.Contains(e, "no fixture for key") {
		t.Errorf("a query key of an image without a fixture answered %q, want a missing fixture", e)
	}
	if e := ask("echo", "r.io/app:1#above=MEDIUM")["r.io/app:1#above=MEDIUM"].Error; !strings.Contains(e, "no fixture for key") {
		t.Errorf("a provider that takes no queries answered a query key with %q, want a missing fixture", e)
	}
}
