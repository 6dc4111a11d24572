//go:build interop

package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/imagetrust/imagetrust/provider/internal/app"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
)

// registry is go-containerregistry's registry on loopback (plain HTTP: the CLIs and the
// provider both use HTTP for 127.0.0.1), with the OCI referrers API on or off. Off, referrers
// live in the sha256-<hex> fallback tag, which the CLIs write and the provider reads. Every
// listing (referrers, fallback tag index) comes in a new order on each read, as a registry is
// free to answer (registrytest.Shuffle).
type registry struct {
	// mode is the matrix label: "referrers API" or "fallback tag".
	mode     string
	api      bool
	host     string
	shuffler *registrytest.Shuffler
}

func newRegistry(t *testing.T, api bool, seed uint64) *registry {
	t.Helper()
	sh := registrytest.Shuffle(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)), ggcrregistry.WithReferrersSupport(api)), seed)
	srv := httptest.NewServer(sh)
	t.Cleanup(srv.Close)
	r := &registry{mode: "fallback tag", api: api, host: strings.TrimPrefix(srv.URL, "http://"), shuffler: sh}
	if api {
		r.mode = "referrers API"
	}
	return r
}

// push writes a random single-platform image to repo:tag and returns its digest reference.
func (r *registry) push(t *testing.T, repo, tag string) name.Digest {
	t.Helper()
	return registrytest.PushImage(t, r.host, repo+":"+tag)
}

// referrerOrders is the number of distinct orders the registry served for the referrers of d.
func (r *registry) referrerOrders(d name.Digest) int {
	if r.api {
		return r.shuffler.Orders("/v2/" + d.Context().RepositoryStr() + "/referrers/" + d.DigestStr())
	}
	return r.shuffler.Orders("/v2/" + d.Context().RepositoryStr() + "/manifests/" + strings.Replace(d.DigestStr(), ":", "-", 1))
}

// pushIndex writes a two-platform index to repo:v1.
func (r *registry) pushIndex(t *testing.T, repo string) (name.Digest, []name.Digest) {
	t.Helper()
	return registrytest.PushIndex(t, r.host, repo, "v1")
}

// provider is the real provider (app.StartLoopback: imagetrust-provider's wiring) over mTLS.
type provider struct {
	url    string
	client *http.Client
}

// startProvider writes cfg (registries, authorities, scanners) as the provider's config file
// and starts the provider. Deadlines are generous: the suite checks answers, on a shared
// machine, not speed.
func startProvider(t *testing.T, regs []*registry, authorities, scanners []config.Authority) *provider {
	t.Helper()
	cfg := config.Config{
		Endpoints: config.Endpoints{Verify: config.Endpoint{Deadline: config.Duration(30 * time.Second)},
			Resolve: config.Endpoint{Deadline: config.Duration(30 * time.Second)}},
		Lookup:      config.Lookup{RegistryTimeout: config.Duration(20 * time.Second)},
		Authorities: authorities,
		Scan:        config.Scan{Scanners: scanners, Deadline: config.Duration(30 * time.Second)},
	}
	for _, r := range regs {
		cfg.Registries = append(cfg.Registries, config.Registry{Host: r.host, Insecure: true})
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "provider.yaml")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "provider.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = logf.Close() })
	l, err := app.StartLoopback(context.Background(), app.LoopbackOptions{
		ConfigFile: file, Dir: dir, ClientName: "imagetrust-interop",
		Logger: slog.New(slog.NewJSONHandler(logf, nil)),
	})
	if err != nil {
		t.Fatalf("StartLoopback(%s) = %v\n%s", file, err, data)
	}
	t.Cleanup(func() {
		if err := l.Stop(); err != nil {
			t.Errorf("provider stop: %v", err)
		}
	})
	return &provider{url: l.URL, client: &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: l.ClientTLS}}}
}

// item is one item of a ProviderResponse.
type item struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
	Error string          `json:"error"`
}

// lookup posts keys to path (Gatekeeper's ProviderRequest) and returns the items by key.
func (p *provider) lookup(t *testing.T, path string, keys ...string) map[string]item {
	t.Helper()
	body, err := json.Marshal(map[string]any{"apiVersion": "externaldata.gatekeeper.sh/v1beta1",
		"kind": "ProviderRequest", "request": map[string]any{"keys": keys}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.client.Post(p.url+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s\n%s", path, resp.Status, raw)
	}
	var pr struct {
		Kind     string `json:"kind"`
		Response struct {
			Items       []item `json:"items"`
			SystemError string `json:"systemError"`
		} `json:"response"`
	}
	if err := json.Unmarshal(raw, &pr); err != nil {
		t.Fatalf("POST %s: decoding %s: %v", path, raw, err)
	}
	if pr.Kind != "ProviderResponse" || pr.Response.SystemError != "" {
		t.Fatalf("POST %s: kind %q, systemError %q", path, pr.Kind, pr.Response.SystemError)
	}
	out := map[string]item{}
	for _, it := range pr.Response.Items {
		out[it.Key] = it
		t.Logf("%s %s: %s %s", path, it.Key, it.Value, it.Error)
	}
	for _, k := range keys {
		if _, ok := out[k]; !ok {
			t.Fatalf("POST %s: no item for key %s in %s", path, k, raw)
		}
	}
	return out
}

// verify is the /v1/verify answer for ref, decoded; a per-key error fails the test.
func (p *provider) verify(t *testing.T, ref string) *answer {
	t.Helper()
	it := p.lookup(t, "/v1/verify", ref)[ref]
	if it.Error != "" {
		t.Fatalf("/v1/verify %s: error %q", ref, it.Error)
	}
	a := &answer{raw: it.Value}
	if err := json.Unmarshal(it.Value, a); err != nil {
		t.Fatalf("/v1/verify %s: decoding %s: %v", ref, it.Value, err)
	}
	return a
}

// scan is the /v1/scan answer for ref, decoded.
func (p *provider) scan(t *testing.T, ref string) *scanAnswer {
	t.Helper()
	it := p.lookup(t, "/v1/scan", ref)[ref]
	if it.Error != "" {
		t.Fatalf("/v1/scan %s: error %q", ref, it.Error)
	}
	a := &scanAnswer{raw: it.Value}
	if err := json.Unmarshal(it.Value, a); err != nil {
		t.Fatalf("/v1/scan %s: decoding %s: %v", ref, it.Value, err)
	}
	return a
}

// authority is a key authority over the repositories under prefix in every registry.
func authority(name, prefix, pubFile string, regs []*registry) config.Authority {
	a := config.Authority{Name: name, Key: &config.Key{File: pubFile}}
	for _, r := range regs {
		a.Images = append(a.Images, fmt.Sprintf("%s/%s/**", r.host, prefix))
	}
	return a
}
