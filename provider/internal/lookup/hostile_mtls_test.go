package lookup_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imagetrust/imagetrust/provider/internal/app"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

const ociIndexType = "application/vnd.oci.image.index.v1+json"

// hostileItem is one item of a provider response.
type hostileItem struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
	Error string          `json:"error"`
}

// postKeys sends keys to the provider over mTLS as Gatekeeper does and returns the items by key
// and how long the answer took.
func postKeys(t *testing.T, lb *app.Loopback, path string, keys []string) (map[string]hostileItem, time.Duration) {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest",
		"request": map[string]any{"keys": keys},
	})
	if err != nil {
		t.Fatal(err)
	}
	cli := &http.Client{Transport: &http.Transport{TLSClientConfig: lb.ClientTLS}, Timeout: time.Minute}
	defer cli.CloseIdleConnections()
	start := time.Now()
	resp, err := cli.Post(lb.URL+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	took := time.Since(start)
	var pr struct {
		Response struct {
			Items       []hostileItem `json:"items"`
			SystemError string        `json:"systemError"`
		} `json:"response"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&pr); err != nil || resp.StatusCode != http.StatusOK || pr.Response.SystemError != "" {
		t.Fatalf("POST %s: HTTP %d, systemError %q, decode error %v", path, resp.StatusCode, pr.Response.SystemError, err)
	}
	out := map[string]hostileItem{}
	for _, it := range pr.Response.Items {
		out[it.Key] = it
	}
	return out, took
}

// TestHostileRegistriesOverMTLS runs the provider as Gatekeeper calls it (mTLS, the app's
// wiring, config file) against a healthy registry and hostile ones at once: 2 MB response
// headers, a 2 MB header set, an index that is not JSON, a legal 20,000-platform index, a
// referrer bomb of 100,000 entries, referrers nested 100,000 deep, and a registry that hangs.
// Every batch is answered within the endpoint deadline; each hostile key gets its clear,
// non-transient class (or, for a referrer bomb, an unsigned answer naming the cap), the
// platform list is capped, and the healthy keys are answered.
func TestHostileRegistriesOverMTLS(t *testing.T) {
	regs := map[string]*registrytest.Registry{}
	for _, n := range []string{"healthy", "headers", "headerset", "notjson", "platforms", "bomb", "nested", "hang"} {
		r := registrytest.New()
		t.Cleanup(r.Close)
		regs[n] = r
	}
	// An image on every registry (the hostile behaviours sit in front of the real registry).
	for n, r := range regs {
		img, err := random.Image(64, 1)
		if err != nil {
			t.Fatal(err)
		}
		tag, err := name.NewTag(r.Host + "/team/app:v1")
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(tag, img); err != nil {
			t.Fatalf("pushing to %s: %v", n, err)
		}
	}
	healthyIndex, _ := registrytest.PushIndex(t, regs["healthy"].Host, "team/multi", "v1")

	regs["headers"].Hostile(registrytest.PathContains("/manifests/"), registrytest.HugeHeader("Content-Type", 2<<20, regs["headers"].Next()))
	regs["headerset"].Hostile(nil, registrytest.ManyHeaders(2000, 1024, regs["headerset"].Next()))
	regs["notjson"].Hostile(registrytest.PathContains("/manifests/"), registrytest.Content(ociIndexType, []byte(`{"schemaVersion":2,"manifests":[`)))
	// A tenant's legal index: the tag and the index's digest serve it, nothing else does.
	big := registrytest.BigIndex(20000)
	bigSum := sha256.Sum256(big)
	bigDigest := "sha256:" + hex.EncodeToString(bigSum[:])
	regs["platforms"].Hostile(func(req *http.Request) bool {
		return strings.HasSuffix(req.URL.Path, "/manifests/v1") || strings.HasSuffix(req.URL.Path, "/manifests/"+bigDigest)
	}, registrytest.Content(ociIndexType, big))
	regs["bomb"].Hostile(registrytest.PathContains("/referrers/"), registrytest.Content(ociIndexType, registrytest.ReferrerBomb(100000)))
	regs["nested"].Hostile(registrytest.PathContains("/referrers/"), registrytest.Content(ociIndexType, registrytest.NestedJSON(100000)))
	regs["hang"].Hang(nil)

	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(dir, "release.pub")
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	var registries []map[string]any
	for _, r := range regs {
		registries = append(registries, map[string]any{"host": r.Host, "insecure": true})
	}
	const deadline = 8 * time.Second
	cfg := map[string]any{
		"registries":  registries,
		"authorities": []map[string]any{{"name": "release", "key": map[string]any{"file": pub}}},
		"lookup":      map[string]any{"registryTimeout": "3s", "maxPlatforms": 64, "maxIndexBytes": 4 << 20},
		"endpoints": map[string]any{
			"resolve": map[string]any{"deadline": deadline.String()},
			"verify":  map[string]any{"deadline": deadline.String()},
		},
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	lb, err := app.StartLoopback(context.Background(), app.LoopbackOptions{
		ConfigFile: cfgFile, Dir: filepath.Join(dir, "tls"), ClientName: "hostile-test", Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lb.Stop() })

	k := func(n string) string { return regs[n].Host + "/team/app:v1" }
	multi := regs["healthy"].Host + "/team/multi:v1"

	// /v1/resolve: every hostile registry at once, next to the healthy one.
	got, took := postKeys(t, lb, "/v1/resolve", []string{k("healthy"), multi, k("headers"), k("headerset"), k("notjson"), k("platforms"), k("hang")})
	t.Logf("POST /v1/resolve answered in %v", took)
	if took > deadline+time.Second {
		t.Errorf("POST /v1/resolve answered in %v, want within the %v deadline", took, deadline)
	}
	for key, want := range map[string]string{
		k("headers"):   "limit exceeded: registry response headers",
		k("headerset"): "limit exceeded: registry response headers",
		k("notjson"):   "invalid manifest: " + k("notjson") + ": index sha256:",
	} {
		if it := got[key]; !strings.HasPrefix(it.Error, want) {
			t.Errorf("resolve %s = %+v, want an error starting %q", key, it, want)
		}
	}
	if it := got[k("hang")]; !strings.HasPrefix(it.Error, "timed out: ") && !strings.HasPrefix(it.Error, "unavailable: ") {
		t.Errorf("resolve %s (hanging registry) = %+v, want timed out or unavailable", k("hang"), it)
	}
	if it := got[k("healthy")]; it.Error != "" || !strings.Contains(string(it.Value), `"digest":"sha256:`) {
		t.Errorf("resolve %s (healthy) = %+v, want its digest", k("healthy"), it)
	}
	if it := got[multi]; it.Error != "" || !strings.Contains(string(it.Value), `"digest":"`+healthyIndex.DigestStr()+`"`) ||
		!strings.Contains(string(it.Value), `"platformsTotal":2,"platformsTruncated":false`) {
		t.Errorf("resolve %s (healthy index) = %+v, want its two platforms, not truncated", multi, it)
	}
	var pv struct {
		Platforms          []json.RawMessage `json:"platforms"`
		PlatformsTotal     int               `json:"platformsTotal"`
		PlatformsTruncated bool              `json:"platformsTruncated"`
	}
	if it := got[k("platforms")]; it.Error != "" || json.Unmarshal(it.Value, &pv) != nil || len(pv.Platforms) != 64 || pv.PlatformsTotal != 20000 || !pv.PlatformsTruncated {
		t.Errorf("resolve %s (20,000 platforms) = %d platforms, total %d, truncated %v (error %q); want 64 of 20000, truncated",
			k("platforms"), len(pv.Platforms), pv.PlatformsTotal, pv.PlatformsTruncated, it.Error)
	}

	// /v1/verify: referrer bombs, oversized headers, a 20,000-platform index.
	missing := regs["healthy"].Host + "/team/app:missing"
	got, took = postKeys(t, lb, "/v1/verify", []string{k("healthy"), k("bomb"), k("nested"), k("headers"), k("platforms"), missing})
	t.Logf("POST /v1/verify answered in %v", took)
	if took > deadline+time.Second {
		t.Errorf("POST /v1/verify answered in %v, want within the %v deadline", took, deadline)
	}
	for key, want := range map[string]string{
		k("bomb"):   fmt.Sprintf("(lookup.maxReferrersBytes) is larger than %d bytes", config.DefaultMaxReferrersBytes),
		k("nested"): "invalid manifest: ",
	} {
		it := got[key]
		if it.Error != "" || !strings.Contains(string(it.Value), `"signed":false`) || !strings.Contains(string(it.Value), want) {
			t.Errorf("verify %s = %+v, want an unsigned answer whose rejections name %q", key, it, want)
		}
	}
	if it := got[k("headers")]; !strings.HasPrefix(it.Error, "limit exceeded: registry response headers") {
		t.Errorf("verify %s = %+v, want limit exceeded naming the response headers", k("headers"), it)
	}
	if it := got[missing]; !strings.HasPrefix(it.Error, "not found: ") {
		t.Errorf("verify %s = %+v, want not found", missing, it)
	}
	// Final answers (not found, limit exceeded, invalid manifest) are cached: asked again, the
	// provider answers them without a crash and the same way.
	again, _ := postKeys(t, lb, "/v1/verify", []string{missing, k("headers"), k("nested")})
	for key, it := range again {
		if it.Error != got[key].Error {
			t.Errorf("verify %s again = %q, want %q", key, it.Error, got[key].Error)
		}
	}
	if it := got[k("platforms")]; it.Error != "" || json.Unmarshal(it.Value, &pv) != nil || len(pv.Platforms) != 64 || pv.PlatformsTotal != 20000 || !pv.PlatformsTruncated {
		t.Errorf("verify %s (20,000 platforms) = %d platforms, total %d, truncated %v (error %q); want 64 of 20000, truncated",
			k("platforms"), len(pv.Platforms), pv.PlatformsTotal, pv.PlatformsTruncated, it.Error)
	}
	if it := got[k("healthy")]; it.Error != "" || !strings.Contains(string(it.Value), `"signed":false`) {
		t.Errorf("verify %s (healthy, unsigned) = %+v, want an unsigned answer", k("healthy"), it)
	}
	for key, it := range got {
		if c, ok := wire.ClassOf(it.Error); ok && c.Transient() {
			t.Errorf("verify %s = %q: a hostile registry's content must not turn into a transient class", key, it.Error)
		}
	}
}
