package registry_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

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

func TestLoopbackWithoutInsecureUsesHTTPS(t *testing.T) {
	plain := startRegistry(t)
	push(t, plain.Host, "team/app:v1")
	secure := registrytest.NewTLS()
	t.Cleanup(secure.Close)
	secureTag, err := name.NewTag(secure.Host + "/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(secureTag, mustImage(t), remote.WithTransport(secure.Server.Client().Transport)); err != nil {
		t.Fatalf("remote.Write() = %v", err)
	}
	pool := secure.Server.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c := newClient(t, registry.Options{
		Registries: []config.Registry{{Host: plain.Host}, {Host: secure.Host}},
		TLSConfig:  tlsWithRoots(pool),
	})
	plain.ResetCounts()
	// go-containerregistry would use plain HTTP for 127.0.0.1 by itself; configuration wins.
	if _, err := c.Head(context.Background(), mustParse(t, plain.Host+"/team/app:v1")); err == nil {
		t.Errorf("Head(plain HTTP registry not marked insecure) = nil error, want an error")
	}
	if got := plain.Count(http.MethodHead, "manifests"); got != 0 {
		t.Errorf("plain HTTP manifest requests = %d, want 0", got)
	}
	if _, err := c.Head(context.Background(), mustParse(t, secure.Host+"/team/app:v1")); err != nil {
		t.Errorf("Head(HTTPS registry) = %v, want nil", err)
	}
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

func TestAuth(t *testing.T) {
	reg := startRegistry(t, registrytest.WithBasicAuth("alice", "s3cret"))
	authOpt := remote.WithAuth(&basic{"alice", "s3cret"})
	want := push(t, reg.Host, "team/private:v1", authOpt)
	cfgJSON := func(user, pass string) []byte {
		b, _ := json.Marshal(map[string]any{"auths": map[string]any{reg.Host: map[string]string{
			"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))}}})
		return b
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(good, cfgJSON("alice", "s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, cfgJSON("alice", "wrong"), 0o600); err != nil {
		t.Fatal(err)
	}
	secret := func(ns, n string, b []byte) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: n}, Type: corev1.SecretTypeDockerConfigJson,
			Data: map[string][]byte{corev1.DockerConfigJsonKey: b}}
	}
	cs := fake.NewClientset(
		secret("imagetrust", "pull", cfgJSON("alice", "s3cret")),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "imagetrust", Name: "provider"},
			ImagePullSecrets: []corev1.LocalObjectReference{{Name: "pull"}}},
	)

	tests := []struct {
		name     string
		auth     config.Auth
		wantErr  bool
		isDenied bool
	}{
		{"anonymous is denied", config.Auth{}, true, true},
		{"docker config file", config.Auth{DockerConfigFile: good}, false, false},
		{"docker config file with wrong password", config.Auth{DockerConfigFile: bad}, true, true},
		{"pull secret by name", config.Auth{Kubernetes: &config.KubernetesAuth{Namespace: "imagetrust", ImagePullSecrets: []string{"pull"}}}, false, false},
		{"pull secret of service account", config.Auth{Kubernetes: &config.KubernetesAuth{Namespace: "imagetrust", ServiceAccountName: "provider"}}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, registry.Options{Registries: []config.Registry{{Host: reg.Host, Insecure: true}}, Auth: tt.auth, Kubernetes: cs})
			desc, err := c.Head(context.Background(), mustParse(t, reg.Host+"/team/private:v1"))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Head() = %v, want error %v", err, tt.wantErr)
			}
			var de *registry.DeniedError
			if tt.isDenied && !errors.As(err, &de) {
				t.Errorf("Head() = %v (%T), want *registry.DeniedError", err, err)
			}
			if err == nil && desc.Digest != want {
				t.Errorf("Head().Digest = %v, want %v", desc.Digest, want)
			}
		})
	}
	if _, err := registry.New(context.Background(), registry.Options{Registries: []config.Registry{{Host: reg.Host}},
		Auth: config.Auth{DockerConfigFile: filepath.Join(dir, "missing.json")}}); err == nil || !strings.Contains(err.Error(), "auth.dockerConfigFile") {
		t.Errorf("registry.New(missing docker config) = %v, want error naming auth.dockerConfigFile", err)
	}
}

func TestCredentialRefresh(t *testing.T) {
	reg := startRegistry(t, registrytest.WithBasicAuth("alice", "s3cret"))
	push(t, reg.Host, "team/private:v1", remote.WithAuth(&basic{"alice", "s3cret"}))
	file := filepath.Join(t.TempDir(), "config.json")
	write := func(pass string) {
		b, _ := json.Marshal(map[string]any{"auths": map[string]any{reg.Host: map[string]string{
			"auth": base64.StdEncoding.EncodeToString([]byte("alice:" + pass))}}})
		if err := os.WriteFile(file, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("wrong")
	c := newClient(t, registry.Options{Registries: []config.Registry{{Host: reg.Host, Insecure: true}},
		Auth: config.Auth{DockerConfigFile: file}, CredentialRefresh: time.Millisecond, TransportMaxAge: time.Millisecond})
	ref := mustParse(t, reg.Host+"/team/private:v1")
	if _, err := c.Head(context.Background(), ref); err == nil {
		t.Fatalf("Head() with the wrong password = nil error")
	}
	write("s3cret") // the rotated secret
	var err error
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if _, err = c.Head(context.Background(), ref); err == nil {
			break
		}
	}
	if err != nil {
		t.Errorf("Head() after the docker config file changed = %v, want nil (credentials re-read)", err)
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

// TestInsecureRegistryPings: go-containerregistry pings every new repository, HTTPS first even
// for a registry that allows plain HTTP. For a configured insecure registry that answered HTTPS
// with plain HTTP, the guard sends later HTTPS requests as plain HTTP (one failed handshake in
// all, not one per repository), and ping answers are reused across repositories (one GET /v2/).
// A loopback registry that is not marked insecure is still reached over HTTPS only
// (TestLoopbackWithoutInsecureUsesHTTPS).
func TestInsecureRegistryPings(t *testing.T) {
	reg := startRegistry(t)
	const repos = 5
	for i := range repos {
		push(t, reg.Host, fmt.Sprintf("team/app%d:v1", i))
	}
	pr := prometheus.NewRegistry()
	c := newClient(t, registry.Options{Registries: []config.Registry{{Host: reg.Host, Insecure: true}}, Registerer: pr})
	reg.ResetCounts()
	for i := range repos {
		key := fmt.Sprintf("%s/team/app%d:v1", reg.Host, i)
		if _, err := c.Head(context.Background(), mustParse(t, key)); err != nil {
			t.Fatalf("Head(%s) = %v", key, err)
		}
	}
	if got := reg.Count(http.MethodGet, "ping"); got != 1 {
		t.Errorf("GET /v2/ for %d repositories = %d, want 1 (ping answer reused)", repos, got)
	}
	if got := reg.Count(http.MethodHead, "manifests"); got != repos {
		t.Errorf("HEAD manifests = %d, want %d", got, repos)
	}
	failed := 0.0
	mfs, err := pr.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "imagetrust_registry_responses_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" && l.GetValue() == "error" {
					failed += m.GetCounter().GetValue()
				}
			}
		}
	}
	if failed > 1 {
		t.Errorf("requests without a response (HTTPS handshakes with a plain-HTTP registry) = %v, want at most 1", failed)
	}
}

// TestPingCacheKeepsScopedTokens: with a token-protected registry, the ping is shared but every
// repository still gets a token for its own scope.
func TestPingCacheKeepsScopedTokens(t *testing.T) {
	var mu sync.Mutex
	var pings int
	scopes := map[string]int{}
	backend := startRegistry(t)
	for i := range 3 {
		push(t, backend.Host, fmt.Sprintf("team/app%d:v1", i))
	}
	var realm string // the token endpoint is on the registry itself (go-containerregistry allows that on loopback)
	front := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/token":
			scope := r.URL.Query().Get("scope")
			mu.Lock()
			scopes[scope]++
			mu.Unlock()
			_ = json.NewEncoder(w).Encode(map[string]string{"token": "tok-" + scope})
			return
		case "/v2/":
			mu.Lock()
			pings++
			mu.Unlock()
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="front"`, realm))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		// The token must be the one for this repository's scope.
		repo := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/v2/"), "/manifests/", 2)[0]
		if r.Header.Get("Authorization") != "Bearer tok-repository:"+repo+":pull" {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="front",scope="repository:%s:pull"`, realm, repo))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		u := *r.URL
		u.Host, u.Scheme = backend.Host, "http"
		resp, err := http.DefaultTransport.RoundTrip(&http.Request{Method: r.Method, URL: &u, Header: http.Header{"Accept": r.Header["Accept"]}})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
	}))
	t.Cleanup(front.Close)
	realm = front.URL + "/token"
	regHost := strings.TrimPrefix(front.URL, "https://")
	pool := front.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c := newClient(t, registry.Options{
		Registries: []config.Registry{{Host: regHost}},
		TLSConfig:  tlsWithRoots(pool),
	})
	for i := range 3 {
		key := fmt.Sprintf("%s/team/app%d:v1", regHost, i)
		if _, err := c.Head(context.Background(), mustParse(t, key)); err != nil {
			t.Fatalf("Head(%s) = %v", key, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if pings != 1 {
		t.Errorf("GET /v2/ = %d, want 1 (ping answer reused across repositories)", pings)
	}
	for i := range 3 {
		s := fmt.Sprintf("repository:team/app%d:pull", i)
		if scopes[s] != 1 {
			t.Errorf("token requests for scope %q = %d, want 1 (scopes: %v)", s, scopes[s], scopes)
		}
	}
}

// TestInsecureTLSRegistryStaysHTTPS: a registry marked insecure that does speak TLS is used over
// HTTPS; nothing is downgraded.
func TestInsecureTLSRegistryStaysHTTPS(t *testing.T) {
	secure := registrytest.NewTLS()
	t.Cleanup(secure.Close)
	for i := range 2 {
		tag, err := name.NewTag(fmt.Sprintf("%s/team/app%d:v1", secure.Host, i))
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(tag, mustImage(t), remote.WithTransport(secure.Server.Client().Transport)); err != nil {
			t.Fatalf("remote.Write() = %v", err)
		}
	}
	pool := secure.Server.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c := newClient(t, registry.Options{Registries: []config.Registry{{Host: secure.Host, Insecure: true}}, TLSConfig: tlsWithRoots(pool)})
	for i := range 2 {
		key := fmt.Sprintf("%s/team/app%d:v1", secure.Host, i)
		if _, err := c.Head(context.Background(), mustParse(t, key)); err != nil {
			t.Errorf("Head(%s) = %v, want nil", key, err)
		}
	}
}
