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
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
)

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
