package registrytest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestShuffle: through Shuffle, the referrers API, the fallback tag, tag lists and the catalog
// of the real registry come back in changing orders with the same entries; the fallback tag's
// Docker-Content-Digest is that of the bytes served; other responses are untouched.
func TestShuffle(t *testing.T) {
	for _, api := range []bool{true, false} {
		sh := Shuffle(registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithReferrersSupport(api)), 1)
		srv := httptest.NewServer(sh)
		host := strings.TrimPrefix(srv.URL, "http://")
		img, err := random.Image(64, 1)
		if err != nil {
			t.Fatal(err)
		}
		tag, err := name.NewTag(host + "/shuffle/app:v1")
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(tag, img); err != nil {
			t.Fatal(err)
		}
		desc, err := remote.Head(tag)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 8 {
			art := mutate.MediaType(mutate.ConfigMediaType(empty.Image, types.MediaType("application/vnd.example."+string(rune('a'+i)))), types.OCIManifestSchema1)
			ref, ok := mutate.Subject(art, *desc).(v1.Image)
			if !ok {
				t.Fatal("mutate.Subject did not return an image")
			}
			dg, err := ref.Digest()
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(tag.Context().Digest(dg.String()), ref); err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(tag.Context().Tag("t"+string(rune('a'+i))), img); err != nil {
				t.Fatal(err)
			}
		}
		path := "/v2/shuffle/app/referrers/" + desc.Digest.String()
		if !api {
			path = "/v2/shuffle/app/manifests/sha256-" + desc.Digest.Hex
		}
		var first []string
		for range 10 {
			resp, err := http.Get(srv.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("GET %s = %d, %v", path, resp.StatusCode, err)
			}
			if !api {
				sum := sha256.Sum256(body)
				if got := resp.Header.Get("Docker-Content-Digest"); got != "sha256:"+hex.EncodeToString(sum[:]) {
					t.Errorf("fallback tag Docker-Content-Digest = %s, want the digest of the body served", got)
				}
			}
			var idx v1.IndexManifest
			if err := json.Unmarshal(body, &idx); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range idx.Manifests {
				got = append(got, m.Digest.String())
			}
			slices.Sort(got)
			if first == nil {
				first = got
			} else if !slices.Equal(got, first) {
				t.Errorf("referrers = %v, want the same entries %v", got, first)
			}
		}
		if len(first) != 8 || sh.Orders(path) < 2 {
			t.Errorf("api %v: %d referrers in %d orders, want 8 in several", api, len(first), sh.Orders(path))
		}
		for range 6 {
			resp, err := http.Get(srv.URL + "/v2/shuffle/app/tags/list")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		if n := sh.Orders("/v2/shuffle/app/tags/list"); n < 2 {
			t.Errorf("tag list served in %d order(s), want several", n)
		}
		if _, err := remote.Image(tag); err != nil {
			t.Errorf("remote.Image(%s) through Shuffle = %v", tag, err)
		}
		srv.Close()
	}
}
