package registry_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
)

// getManifest runs GetManifest for ref's origin inside Do, as callers must.
func getManifest(t *testing.T, c *registry.Client, ref, reference string, limit int64) (*registry.Manifest, error) {
	t.Helper()
	r := mustParse(t, ref)
	targets, err := c.ContentTargets(r)
	if err != nil {
		t.Fatalf("ContentTargets(%s) = %v", ref, err)
	}
	repo := targets[len(targets)-1].Repo
	var m *registry.Manifest
	err = c.Do(context.Background(), repo, "test", ref, func(ctx context.Context) error {
		var err error
		m, err = c.GetManifest(ctx, repo, reference, limit)
		return err
	})
	return m, err
}

func TestGetManifest(t *testing.T) {
	reg := startRegistry(t)
	want := push(t, reg.Host, "team/app:v1", nil...)
	c := newClient(t, registry.Options{Registries: []config.Registry{{Host: reg.Host, Insecure: true}}})
	ref := reg.Host + "/team/app:v1"

	for _, reference := range []string{"v1", want.String()} {
		m, err := getManifest(t, c, ref, reference, 1<<20)
		if err != nil {
			t.Fatalf("GetManifest(%s) = %v", reference, err)
		}
		if m.Digest != want || m.MediaType != types.DockerManifestSchema2 || !json.Valid(m.Raw) {
			t.Errorf("GetManifest(%s) = digest %s, media type %s, want %s, %s and the manifest", reference, m.Digest, m.MediaType, want, types.DockerManifestSchema2)
		}
	}

	_, err := getManifest(t, c, ref, "nope", 1<<20)
	var nf *registry.NotFoundError
	if !errors.As(err, &nf) {
		t.Errorf("GetManifest(unknown tag) = %v (%T), want *registry.NotFoundError", err, err)
	}

	sha512 := "sha512:" + strings.Repeat("ab", 64)
	if _, err := getManifest(t, c, ref, sha512, 1<<20); err == nil || !strings.Contains(err.Error(), "only sha256 digests") {
		t.Errorf("GetManifest(%s) = %v, want an error saying only sha256 digests can be checked", sha512, err)
	}

	_, err = getManifest(t, c, ref, "v1", 64)
	var tl *registry.TooLargeError
	if !errors.As(err, &tl) || tl.Max != 64 {
		t.Errorf("GetManifest(limit 64) = %v, want *registry.TooLargeError with Max 64", err)
	}
}

// TestGetManifestDigestMismatch: a registry (here the real one behind a tampering proxy) that
// serves other content for a digest is an error, never that content.
func TestGetManifestDigestMismatch(t *testing.T) {
	reg := startRegistry(t)
	d := push(t, reg.Host, "team/app:v1", nil...)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		reg.Server.Config.Handler.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/manifests/"+d.String()) {
			body = append(bytes.Clone(body), '\n') // valid JSON, other bytes
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	}))
	t.Cleanup(proxy.Close)
	host := strings.TrimPrefix(proxy.URL, "http://")
	c := newClient(t, registry.Options{Registries: []config.Registry{{Host: host, Insecure: true}}})
	if _, err := getManifest(t, c, host+"/team/app:v1", d.String(), 1<<20); err == nil || !strings.Contains(err.Error(), "content digest is") {
		t.Errorf("GetManifest(tampered %s) = %v, want a digest mismatch error", d, err)
	}
}

func TestGetManifestAuth(t *testing.T) {
	reg := startRegistry(t, registrytest.WithBasicAuth("alice", "s3cret"))
	push(t, reg.Host, "team/private:v1", remote.WithAuth(&basic{"alice", "s3cret"}))
	cfg, _ := json.Marshal(map[string]any{"auths": map[string]any{reg.Host: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))}}})
	good := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(good, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	ref := reg.Host + "/team/private:v1"

	anon := newClient(t, registry.Options{Registries: []config.Registry{{Host: reg.Host, Insecure: true}}})
	_, err := getManifest(t, anon, ref, "v1", 1<<20)
	var de *registry.DeniedError
	if !errors.As(err, &de) {
		t.Errorf("GetManifest(anonymous) = %v (%T), want *registry.DeniedError", err, err)
	}

	c := newClient(t, registry.Options{Registries: []config.Registry{{Host: reg.Host, Insecure: true}}, Auth: config.Auth{DockerConfigFile: good}})
	reg.ResetCounts()
	for range 3 {
		if _, err := getManifest(t, c, ref, "v1", 1<<20); err != nil {
			t.Fatalf("GetManifest(with credentials) = %v", err)
		}
	}
	if got := reg.Count(http.MethodGet, "manifests"); got != 3 {
		t.Errorf("manifest GETs for 3 reads = %d, want 3 (the repository's transport is reused, no retries)", got)
	}
}

// TestGetManifestToken: behind token auth (a Bearer front on the real registry, like Docker
// Hub's), the repository's transport fetches one token and reuses it for every read: manifest
// GETs, HEADs and go-containerregistry's remote functions (Remote) alike.
func TestGetManifestToken(t *testing.T) {
	reg := startRegistry(t)
	d := push(t, reg.Host, "team/app:v1")
	var tokens int
	var mu sync.Mutex
	var front *httptest.Server
	front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/token" {
			tokens++
			if got := r.URL.Query().Get("scope"); got != "repository:team/app:pull" {
				http.Error(w, "bad scope "+got, http.StatusBadRequest)
				return
			}
			_, _ = w.Write([]byte(`{"token":"t0k3n"}`))
			return
		}
		if r.Header.Get("Authorization") != "Bearer t0k3n" {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm=%q,service="front"`, front.URL+"/token"))
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}`, http.StatusUnauthorized)
			return
		}
		reg.Server.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	host := strings.TrimPrefix(front.URL, "http://")
	c := newClient(t, registry.Options{Registries: []config.Registry{{Host: host, Insecure: true}}})
	for range 3 {
		if _, err := getManifest(t, c, host+"/team/app:v1", "v1", 1<<20); err != nil {
			t.Fatalf("GetManifest(behind token auth) = %v", err)
		}
	}
	ref := mustParse(t, host+"/team/app:v1")
	if desc, err := c.Head(context.Background(), ref); err != nil || desc.Digest != d {
		t.Fatalf("Head(behind token auth) = %v, %v, want digest %s", desc, err, d)
	}
	if _, err := c.Manifest(context.Background(), ref, d.String(), 1<<20); err != nil {
		t.Fatalf("Manifest(behind token auth) = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if tokens != 1 {
		t.Errorf("token requests for 5 reads (3 GetManifest, Head, Manifest) = %d, want 1", tokens)
	}
}
