package registry_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
)

func startRegistry(t *testing.T, opts ...registrytest.Option) *registrytest.Registry {
	t.Helper()
	r := registrytest.New(opts...)
	t.Cleanup(r.Close)
	return r
}

// push writes a small random image to host/repo:tag and returns its digest.
func push(t *testing.T, host, repoTag string, opts ...remote.Option) v1.Hash {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatalf("random.Image() = %v", err)
	}
	tag, err := name.NewTag(host + "/" + repoTag)
	if err != nil {
		t.Fatalf("name.NewTag() = %v", err)
	}
	if err := remote.Write(tag, img, opts...); err != nil {
		t.Fatalf("remote.Write(%s) = %v", tag, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatalf("Digest() = %v", err)
	}
	return d
}

// newClient defaults to a generous registry timeout: requests to a live registry must succeed
// even on a loaded machine. Tests with a hanging registry set a short one.
func newClient(t *testing.T, o registry.Options) *registry.Client {
	t.Helper()
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	c, err := registry.New(context.Background(), o)
	if err != nil {
		t.Fatalf("registry.New() = %v", err)
	}
	return c
}

func mustParse(t *testing.T, s string) imageref.Ref {
	t.Helper()
	r, err := imageref.Parse(s)
	if err != nil {
		t.Fatalf("imageref.Parse(%q) = %v", s, err)
	}
	return r
}

func TestHeadOnlyForTags(t *testing.T) {
	reg := startRegistry(t)
	want := push(t, reg.Host, "team/app:v1")
	c := newClient(t, registry.Options{Registries: []config.Registry{{Host: reg.Host, Insecure: true}}})
	reg.ResetCounts()

	for _, key := range []string{reg.Host + "/team/app:v1", reg.Host + "/team/app@" + want.String(), reg.Host + "/team/app:v1@" + want.String()} {
		desc, err := c.Head(context.Background(), mustParse(t, key))
		if err != nil {
			t.Fatalf("Head(%s) = %v", key, err)
		}
		if desc.Digest != want {
			t.Errorf("Head(%s).Digest = %v, want %v", key, desc.Digest, want)
		}
	}
	if got := reg.Count(http.MethodGet, "manifests"); got != 0 {
		t.Errorf("GET manifests = %d, want 0 (tags are resolved with HEAD)", got)
	}
	if got := reg.Count(http.MethodHead, "manifests"); got != 3 {
		t.Errorf("HEAD manifests = %d, want 3", got)
	}
	// One authenticated transport per repository: one ping for three lookups.
	if got := reg.Count(http.MethodGet, "ping"); got > 2 {
		t.Errorf("GET /v2/ = %d, want at most 2 (puller reuse)", got)
	}
}

func TestTypedErrors(t *testing.T) {
	reg := startRegistry(t)
	push(t, reg.Host, "team/app:v1")
	// Answering registries get the generous default timeout; only the hanging one runs into
	// the short timeout of its own client.
	c := newClient(t, registry.Options{Registries: []config.Registry{{Host: reg.Host, Insecure: true}}})
	short := newClient(t, registry.Options{
		Registries: []config.Registry{{Host: reg.Host, Insecure: true}},
		Timeout:    300 * time.Millisecond,
	})
	tests := []struct {
		name  string
		key   string
		setup func()
		check func(error) bool
		want  string
		hangs bool // the registry never answers: use the client with the short timeout
	}{
		{"missing tag", reg.Host + "/team/app:nope", func() {}, func(err error) bool { var e *registry.NotFoundError; return errors.As(err, &e) }, "not found: ", false},
		{"missing repo", reg.Host + "/team/other:v1", func() {}, func(err error) bool { var e *registry.NotFoundError; return errors.As(err, &e) }, "not found: ", false},
		{"registry 503", reg.Host + "/team/app:v1", func() { reg.Fail(http.StatusServiceUnavailable) }, func(err error) bool { var e *registry.UnavailableError; return errors.As(err, &e) }, "unavailable: ", false},
		{"registry hangs", reg.Host + "/team/app:v1", func() { reg.Fail(0); reg.Hang(nil) }, func(err error) bool { var e *registry.UnavailableError; return errors.As(err, &e) }, "unavailable: ", true},
		{"not configured", "ghcr.io/team/app:v1", func() { reg.Unhang() }, func(err error) bool { var e *registry.NotAllowedError; return errors.As(err, &e) }, "registry not allowed: ghcr.io", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.setup()
			cl := c
			if tt.hangs {
				cl = short
			}
			_, err := cl.Head(context.Background(), mustParse(t, tt.key))
			if err == nil || !tt.check(err) || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Head(%s) = %v (%T), want error starting %q", tt.key, err, err, tt.want)
			}
			if registry.IsNegative(err) != strings.HasPrefix(tt.want, "not found") && !strings.HasPrefix(tt.want, "registry not allowed") {
				t.Errorf("IsNegative(%v) = %v, want %v", err, registry.IsNegative(err), !registry.IsNegative(err))
			}
		})
	}
}

func TestSSRFGuard(t *testing.T) {
	// internal is a loopback service the provider must never reach.
	var internalHits sync.Map
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internalHits.Store(r.URL.Path, true)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(internal.Close)
	internalTLS := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internalHits.Store("tls"+r.URL.Path, true)
		_, _ = w.Write([]byte(`{"token":"x"}`))
	}))
	t.Cleanup(internalTLS.Close)
	internalHost := strings.TrimPrefix(internal.URL, "http://")

	// A configured registry that redirects manifests to the internal service.
	redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			w.WriteHeader(http.StatusOK)
			return
		}
		http.Redirect(w, r, internal.URL+"/latest/meta-data"+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirecting.Close)
	// A configured registry whose token realm is the internal service (over HTTPS).
	realm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="x"`, internalTLS.URL+"/token"))
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(realm.Close)
	// Same, with a DNS name for the internal service (go-containerregistry checks only IP literals).
	realmDNS := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="x"`, strings.Replace(internalTLS.URL, "127.0.0.1", "localhost", 1)+"/token"))
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(realmDNS.Close)
	redirectingDNS := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			w.WriteHeader(http.StatusOK)
			return
		}
		http.Redirect(w, r, strings.Replace(internalTLS.URL, "127.0.0.1", "localhost", 1)+"/latest/meta-data"+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirectingDNS.Close)
	// A configured registry whose token realm is plain HTTP.
	plainRealm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="x"`, "http://metadata.internal.example/token"))
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(plainRealm.Close)

	redirHost := strings.TrimPrefix(redirecting.URL, "http://")
	realmHost := strings.TrimPrefix(realm.URL, "http://")
	plainRealmHost := strings.TrimPrefix(plainRealm.URL, "http://")
	realmDNSHost := strings.TrimPrefix(realmDNS.URL, "http://")
	redirDNSHost := strings.TrimPrefix(redirectingDNS.URL, "http://")
	c := newClient(t, registry.Options{Registries: []config.Registry{
		{Host: redirHost, Insecure: true},
		{Host: realmHost, Insecure: true},
		{Host: plainRealmHost, Insecure: true},
		{Host: realmDNSHost, Insecure: true},
		{Host: redirDNSHost, Insecure: true},
	}})

	tests := []struct {
		name string
		key  string
	}{
		{"unlisted loopback registry", internalHost + "/x/y:v1"},
		{"unlisted metadata address", "169.254.169.254/latest/meta-data:v1"},
		{"unlisted public registry", "ghcr.io/x/y:v1"},
		{"implicit docker.io not listed", "nginx:1.25"},
		{"redirect to loopback", redirHost + "/x/y:v1"},
		{"token realm on loopback", realmHost + "/x/y:v1"},
		{"token realm over plain HTTP", plainRealmHost + "/x/y:v1"},
		{"token realm by DNS name resolving to loopback", realmDNSHost + "/x/y:v1"},
		{"redirect by DNS name resolving to loopback", redirDNSHost + "/x/y:v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Head(context.Background(), mustParse(t, tt.key))
			var na *registry.NotAllowedError
			if !errors.As(err, &na) && !strings.Contains(fmt.Sprint(err), "registry not allowed") {
				t.Errorf("Head(%s) = %v, want a \"registry not allowed\" error", tt.key, err)
			}
		})
	}
	internalHits.Range(func(k, _ any) bool {
		t.Errorf("internal service was contacted: %v", k)
		return true
	})
}

func TestMirrors(t *testing.T) {
	origin := startRegistry(t)
	mirror := startRegistry(t)
	dOrigin := push(t, origin.Host, "team/app:v1")
	dMirror := push(t, mirror.Host, "team/app:v1")     // mirror's tag points elsewhere
	dOnlyMirror := push(t, mirror.Host, "team/app:v2") // content only at the mirror

	tests := []struct {
		name        string
		trustTags   bool
		key         string
		want        v1.Hash
		wantMirror  int
		wantOrigins int
	}{
		{"tag at origin", false, "/team/app:v1", dOrigin, 0, 1},
		{"tag at trusted mirror", true, "/team/app:v1", dMirror, 1, 0},
		{"digest from mirror", false, "/team/app@" + dOnlyMirror.String(), dOnlyMirror, 1, 0},
		{"digest falls back to origin", false, "/team/app@" + dOrigin.String(), dOrigin, 1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, registry.Options{Registries: []config.Registry{{
				Host: origin.Host, Insecure: true,
				Mirrors: []config.Mirror{{Host: mirror.Host, Insecure: true, TrustTags: tt.trustTags}},
			}}})
			origin.ResetCounts()
			mirror.ResetCounts()
			desc, err := c.Head(context.Background(), mustParse(t, origin.Host+tt.key))
			if err != nil {
				t.Fatalf("Head() = %v", err)
			}
			if desc.Digest != tt.want {
				t.Errorf("Head().Digest = %v, want %v", desc.Digest, tt.want)
			}
			if got := mirror.Count(http.MethodHead, "manifests"); got != tt.wantMirror {
				t.Errorf("mirror HEAD manifests = %d, want %d", got, tt.wantMirror)
			}
			if got := origin.Count(http.MethodHead, "manifests"); got != tt.wantOrigins {
				t.Errorf("origin HEAD manifests = %d, want %d", got, tt.wantOrigins)
			}
		})
	}
}

func TestPerRegistryConcurrency(t *testing.T) {
	reg := startRegistry(t)
	for i := range 12 {
		push(t, reg.Host, fmt.Sprintf("team/app:v%d", i))
	}
	c := newClient(t, registry.Options{Registries: []config.Registry{{Host: reg.Host, Insecure: true}}, PerRegistryConcurrency: 2})
	// Warm the per-repository transport, then hold each manifest request briefly so requests overlap.
	if _, err := c.Head(context.Background(), mustParse(t, reg.Host+"/team/app:v0")); err != nil {
		t.Fatal(err)
	}
	reg.ResetCounts()
	reg.Gate(func(*http.Request) { time.Sleep(20 * time.Millisecond) })
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Go(func() {
			if _, err := c.Head(context.Background(), mustParse(t, fmt.Sprintf("%s/team/app:v%d", reg.Host, i))); err != nil {
				t.Errorf("Head(v%d) = %v", i, err)
			}
		})
	}
	wg.Wait()
	if got := reg.Peak(); got > 2 {
		t.Errorf("peak concurrent requests at the registry = %d, want <= 2", got)
	}
}

func TestMetrics(t *testing.T) {
	reg := startRegistry(t)
	push(t, reg.Host, "team/app:v1")
	pr := prometheus.NewRegistry()
	c := newClient(t, registry.Options{Registries: []config.Registry{{Host: reg.Host, Insecure: true}}, Registerer: pr})
	if _, err := c.Head(context.Background(), mustParse(t, reg.Host+"/team/app:v1")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Head(context.Background(), mustParse(t, reg.Host+"/team/app:nope")); err == nil {
		t.Fatal("Head(missing) = nil error")
	}
	if n := testutil.CollectAndCount(pr, "imagetrust_registry_operation_duration_seconds"); n != 2 {
		t.Errorf("operation histogram series = %d, want 2 (ok, not_found)", n)
	}
	if n := testutil.CollectAndCount(pr, "imagetrust_registry_responses_total"); n < 2 {
		t.Errorf("response counter series = %d, want >= 2 (200 and 404)", n)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		regs []config.Registry
		want string
	}{
		{"none", nil, "no registries"},
		{"empty host", []config.Registry{{Host: ""}}, "registries[0].host"},
		{"duplicate", []config.Registry{{Host: "ghcr.io"}, {Host: "GHCR.io"}}, "listed twice"},
		{"bad mirror", []config.Registry{{Host: "ghcr.io", Mirrors: []config.Mirror{{Host: "bad host"}}}}, "registries[0].mirrors[0].host"},
		{"kubernetes without client", []config.Registry{{Host: "ghcr.io"}}, "auth.kubernetes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := registry.Options{Registries: tt.regs}
			if tt.name == "kubernetes without client" {
				o.Auth.Kubernetes = &config.KubernetesAuth{Namespace: "x"}
			}
			_, err := registry.New(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("registry.New() = %v, want error containing %q", err, tt.want)
			}
		})
	}
}
