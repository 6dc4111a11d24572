package registry

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
)

// listingRegistry is a go-containerregistry registry on loopback whose tags/list answers can
// be replaced (answer: nil serves the real one), counting the listings it receives.
type listingRegistry struct {
	host   string
	mu     sync.Mutex
	answer func(w http.ResponseWriter, r *http.Request) bool // true: answered
	lists  int
}

func newListingRegistry(t *testing.T) *listingRegistry {
	t.Helper()
	lr := &listingRegistry{}
	inner := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/tags/list") {
			lr.mu.Lock()
			lr.lists++
			answer := lr.answer
			lr.mu.Unlock()
			if answer != nil && answer(w, r) {
				return
			}
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	lr.host = strings.TrimPrefix(srv.URL, "http://")
	return lr
}

func (lr *listingRegistry) set(answer func(w http.ResponseWriter, r *http.Request) bool) {
	lr.mu.Lock()
	lr.answer, lr.lists = answer, 0
	lr.mu.Unlock()
}

func (lr *listingRegistry) listings() int {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return lr.lists
}

// pushTag writes a small random image to repo:tag.
func (lr *listingRegistry) pushTag(t *testing.T, repo, tag string) v1.Hash {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.NewTag(lr.host + "/" + repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func digestTagsClient(t *testing.T, regs ...config.Registry) *Client {
	t.Helper()
	c, err := New(context.Background(), Options{Registries: regs, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func TestDigestTags(t *testing.T) {
	lr := newListingRegistry(t)
	c := digestTagsClient(t, config.Registry{Host: lr.host, Insecure: true})
	memo := newHostMemo(listTTL, maxListMemo)
	c.lists = memo
	ctx := context.Background()
	parse := func(repo string) imageref.Ref {
		r, err := imageref.Parse(lr.host + "/" + repo + ":v1")
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	// A digest with .sig and .att, a neighbour whose hex differs in the last digit, other tags.
	d := lr.pushTag(t, "app", "v1")
	tag := d.Algorithm + "-" + d.Hex
	next := "0"
	if d.Hex[63] == '0' {
		next = "1"
	}
	for _, x := range []string{tag + ".sig", tag + ".att", tag[:len(tag)-1] + next + ".sig", "latest", "zz"} {
		lr.pushTag(t, "app", x)
	}
	got := c.DigestTags(ctx, parse("app"), d)
	if !got.Known() || got.Absent(tag+".sig") || got.Absent(tag+".att") || !got.Absent(tag+".sbom") || !got.Absent(tag) {
		t.Fatalf("DigestTags = %+v, want .sig and .att listed, .sbom and the fallback tag absent", got)
	}
	if got.NoReferrers() {
		t.Errorf("NoReferrers() = true on a registry not known to lack the referrers API")
	}

	// go-containerregistry's registry answers a last after every tag with its whole list: a
	// short last page is still the whole truth.
	d2 := lr.pushTag(t, "short", "latest")
	if got := c.DigestTags(ctx, parse("short"), d2); !got.Known() || !got.Absent(d2.Algorithm+"-"+d2.Hex+".sig") {
		t.Errorf("DigestTags(short list) = %+v, want known, nothing listed", got)
	}

	// A page crowded with other tags of the digest that ends before .sig: unknown, not
	// remembered.
	for i := range digestTagsPage {
		lr.pushTag(t, "crowded", fmt.Sprintf("%s.a%02d", tag, i))
	}
	lr.pushTag(t, "crowded", tag+".sig")
	lr.set(nil)
	if got := c.DigestTags(ctx, parse("crowded"), d); got.Known() {
		t.Errorf("DigestTags(crowded) = %+v, want unknown", got)
	}
	if got := c.DigestTags(ctx, parse("crowded"), d); got.Known() || lr.listings() != 2 {
		t.Errorf("DigestTags(crowded) again = %+v after %d listings, want unknown after 2 (not remembered)", got, lr.listings())
	}

	page := func(tags ...string) func(http.ResponseWriter, *http.Request) bool {
		return func(w http.ResponseWriter, _ *http.Request) bool {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"name":"app","tags":["%s"]}`, strings.Join(tags, `","`))
			return true
		}
	}
	status := func(code int) func(http.ResponseWriter, *http.Request) bool {
		return func(w http.ResponseWriter, _ *http.Request) bool {
			w.WriteHeader(code)
			return true
		}
	}
	full := make([]string, digestTagsPage)
	for i := range full {
		full[i] = fmt.Sprintf("a%02d", i)
	}
	for _, tc := range []struct {
		name   string
		answer func(http.ResponseWriter, *http.Request) bool
		memo   bool
	}{
		{"403 (a pull-only credential)", status(http.StatusForbidden), true},
		{"404 (no such endpoint)", status(http.StatusNotFound), true},
		{"500", status(http.StatusInternalServerError), false},
		{"429", status(http.StatusTooManyRequests), false},
		{"a full page from before last (last ignored)", page(full...), true},
		{"unsorted", page(tag+".sig", tag+".att"), true},
		{"not JSON", func(w http.ResponseWriter, _ *http.Request) bool { fmt.Fprint(w, "<html>"); return true }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.lists = newHostMemo(listTTL, maxListMemo)
			lr.set(tc.answer)
			if got := c.DigestTags(ctx, parse("app"), d); got.Known() {
				t.Errorf("DigestTags = %+v, want unknown", got)
			}
			c.DigestTags(ctx, parse("app"), d)
			want := 2
			if tc.memo {
				want = 1
			}
			if n := lr.listings(); n != want {
				t.Errorf("%d listings for two lookups, want %d (remembered: %v)", n, want, tc.memo)
			}
		})
	}
	lr.set(nil)

	// A registry with a mirror: a tag missing at one place may be at the other; never listed.
	cm := digestTagsClient(t, config.Registry{Host: lr.host, Insecure: true, Mirrors: []config.Mirror{{Host: "mirror.example", TrustTags: true}}})
	if got := cm.DigestTags(ctx, parse("app"), d); got.Known() || lr.listings() != 0 {
		t.Errorf("DigestTags with a mirror = %+v after %d listings, want unknown, none", got, lr.listings())
	}

	// A registry known to lack the referrers API: no fallback tag listed means no referrers.
	c.lists = newHostMemo(listTTL, maxListMemo)
	c.referrers.observe(&http.Request{Method: http.MethodGet, URL: mustURL(t, "http://"+lr.host+"/v2/app/referrers/sha256:00")}, http.StatusNotFound)
	if !c.ReferrersFromTag(parse("app")) {
		t.Fatalf("ReferrersFromTag = false after the API's 404")
	}
	if got := c.DigestTags(ctx, parse("app"), d); !got.NoReferrers() {
		t.Errorf("NoReferrers() = false, want true (no API, no fallback tag)")
	}
	lr.pushTag(t, "app", tag)
	if got := c.DigestTags(ctx, parse("app"), d); got.NoReferrers() {
		t.Errorf("NoReferrers() = true with the fallback tag listed, want false")
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
