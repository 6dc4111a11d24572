package lookup_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/cache"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/lookup"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// parts are the shared parts the provider builds once (internal/app), here on a loopback
// registry.
type parts struct {
	reg  *registrytest.Registry
	cli  *registry.Client
	pool *batch.Pool
	refs *imageref.Memo
}

func newParts(t *testing.T) *parts {
	t.Helper()
	reg := registrytest.New()
	t.Cleanup(reg.Close)
	cli, err := registry.New(context.Background(), registry.Options{Registries: []config.Registry{{Host: reg.Host, Insecure: true}}, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cli.CloseIdleConnections)
	pool, err := batch.NewPool(4, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &parts{reg: reg, cli: cli, pool: pool, refs: imageref.NewMemo(64)}
}

func (p *parts) push(t *testing.T, repoTag string) string {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(p.reg.Host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatalf("remote.Write(%s) = %v", tag, err)
	}
	d, _ := img.Digest()
	return d.String()
}

// headDigest is a loader: the digest a HEAD of the reference answers, each call counted.
func (p *parts) headDigest(loads *atomic.Int32) func(ctx context.Context, ref imageref.Ref) (string, error) {
	return func(ctx context.Context, ref imageref.Ref) (string, error) {
		loads.Add(1)
		d, err := p.cli.Head(ctx, ref)
		if err != nil {
			return "", err
		}
		return d.Digest.String(), nil
	}
}

// TestSmallestEndpoint is the whole of a new endpoint: a loader (load one parsed, allowed
// reference) and a renderer (answer → value). Everything else — parsing, the allow-list, the
// cache, the pool, the deadline, de-duplication and the error classes — is the pipeline's.
func TestSmallestEndpoint(t *testing.T) {
	p := newParts(t)
	digest := p.push(t, "team/app:v1")
	p.reg.ResetCounts()
	c, err := cache.New[string](cache.Options{Name: "digest", MaxEntries: 100, TTL: time.Minute, NotFoundTTL: time.Minute, Negative: registry.IsNegative})
	if err != nil {
		t.Fatal(err)
	}
	var loads atomic.Int32
	digestOf, err := lookup.New(lookup.Options[string]{
		Name: "digest", Refs: p.refs, Registries: p.cli, Pool: p.pool, Cache: c,
		Deadline: 30 * time.Second, LoadTimeout: 30 * time.Second,
		// The endpoint: a loader and a renderer.
		Load:   p.headDigest(&loads),
		Render: func(_ imageref.Ref, _ any, d string, _ bool) (any, error) { return d, nil },
	})
	if err != nil {
		t.Fatal(err)
	}

	h := p.reg.Host
	keys := []string{
		h + "/team/app:v1",
		h + "/team/app:v1",             // the same key again
		h + "/team/app:v1@sha256:0123", // malformed digest
		"docker.io/library/nginx:1.25", // not in the provider's registries
		h + "/team/app:missing",
		h + "/Team/App:v1", // upper case in the path
	}
	items, classes := digestOf.Lookup(context.Background(), keys)
	want := []struct {
		value string
		class wire.Class
	}{
		{digest, ""},
		{digest, ""},
		{"", wire.ClassInvalidReference},
		{"", wire.ClassNotAllowed},
		{"", wire.ClassNotFound},
		{"", wire.ClassInvalidReference},
	}
	if len(items) != len(keys) || len(classes) != len(keys) {
		t.Fatalf("Lookup() = %d items, %d classes, want %d", len(items), len(classes), len(keys))
	}
	for i, w := range want {
		it := items[i]
		if it.Key != keys[i] {
			t.Errorf("item %d key = %q, want %q", i, it.Key, keys[i])
		}
		if w.class == "" {
			if it.Value != w.value || it.Error != "" || classes[i] != "" {
				t.Errorf("Lookup(%q) = %v, %q (%q), want %s", keys[i], it.Value, it.Error, classes[i], w.value)
			}
			continue
		}
		if classes[i] != w.class || !strings.HasPrefix(it.Error, w.class.Prefix()) || it.Value != nil {
			t.Errorf("Lookup(%q) = %v, %q (%q), want an error of class %q", keys[i], it.Value, it.Error, classes[i], w.class)
		}
	}
	// One load per distinct image: the duplicate shares it; the invalid and the not-allowed
	// keys reach neither the cache nor the registry.
	if n := loads.Load(); n != 2 {
		t.Errorf("loads = %d, want 2 (app:v1 once, app:missing once)", n)
	}
	if n := p.reg.Count(http.MethodHead, "manifests"); n != 2 {
		t.Errorf("HEAD manifests = %d, want 2", n)
	}

	// Warm: answered from the cache, the not-found answer too.
	p.reg.ResetCounts()
	again := digestOf.Items(context.Background(), keys)
	for i := range again {
		if again[i] != items[i] {
			t.Errorf("warm Lookup(%q) = %+v, want %+v", keys[i], again[i], items[i])
		}
	}
	if n := p.reg.Total(); n != 0 {
		t.Errorf("registry requests when warm = %d, want 0", n)
	}
}

// TestQueries: on an endpoint that takes queries, "<reference>#<query>" is loaded and cached
// as the reference alone (one load for every query of an image, and for the image without
// one), Render gets the parsed query, the keys of a batch that carry one query parse it once,
// and a query the endpoint refuses, or a second '#', is the key's "invalid query" error naming
// the key. An
// endpoint without Query takes '#' as part of the reference, which makes it invalid.
func TestQueries(t *testing.T) {
	p := newParts(t)
	digest := p.push(t, "team/app:v1")
	c, err := cache.New[string](cache.Options{Name: "q", MaxEntries: 100, TTL: time.Minute, NotFoundTTL: time.Minute, Negative: registry.IsNegative})
	if err != nil {
		t.Fatal(err)
	}
	var loads, parses atomic.Int32
	o := lookup.Options[string]{
		Name: "q", Refs: p.refs, Registries: p.cli, Pool: p.pool, Cache: c,
		Deadline: 30 * time.Second, LoadTimeout: 30 * time.Second,
		Load:   p.headDigest(&loads),
		Render: func(_ imageref.Ref, q any, d string, _ bool) (any, error) { return fmt.Sprintf("%s %v", d, q), nil },
		Query: func(q string) (any, error) {
			parses.Add(1)
			if q == "bad" {
				return nil, errors.New("not a query I take")
			}
			return strings.ToUpper(q), nil
		},
	}
	pl, err := lookup.New(o)
	if err != nil {
		t.Fatal(err)
	}
	h := p.reg.Host
	keys := []string{h + "/team/app:v1#a", h + "/team/app:v1#a", h + "/team/app:v1", h + "/team/app:v1#b", h + "/team/app:v1#bad", h + "/team/app:missing#b", "#b", h + "/team/app:v1#", h + "/team/app:v1#x#b"}
	items, classes := pl.Lookup(context.Background(), keys)
	want := []struct {
		value string
		class wire.Class
		msg   string
	}{
		{value: digest + " A"},
		{value: digest + " A"},
		{value: digest + " <nil>"},
		{value: digest + " B"},
		{class: wire.ClassInvalidQuery, msg: `invalid query: "` + h + `/team/app:v1#bad": not a query I take`},
		{class: wire.ClassNotFound},
		{class: wire.ClassInvalidReference},
		{value: digest + " "},
		// An image that carried a query of its own before the endpoint's.
		{class: wire.ClassInvalidQuery, msg: `invalid query: "` + h + `/team/app:v1#x#b": more than one '#'`},
	}
	for i, w := range want {
		it := items[i]
		if w.class == "" {
			if it.Value != w.value || it.Error != "" {
				t.Errorf("Lookup(%q) = %v, %q, want %q", keys[i], it.Value, it.Error, w.value)
			}
			continue
		}
		if classes[i] != w.class || it.Value != nil || !strings.HasPrefix(it.Error, w.msg) || !strings.HasPrefix(it.Error, w.class.Prefix()) {
			t.Errorf("Lookup(%q) = %v, %q (%q), want an error of class %q starting %q", keys[i], it.Value, it.Error, classes[i], w.class, w.msg)
		}
	}
	if n := loads.Load(); n != 2 {
		t.Errorf("loads = %d, want 2 (app:v1 once for every query, app:missing once)", n)
	}
	// a (twice in a row: once), b, bad, b twice more (still remembered: a refused query is
	// not), and the empty one.
	if n := parses.Load(); n != 4 {
		t.Errorf("queries parsed = %d, want 4", n)
	}

	o.Query = nil
	plain, err := lookup.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if it := plain.Items(context.Background(), []string{h + "/team/app:v1#a"}); !strings.HasPrefix(it[0].Error, wire.ClassInvalidReference.Prefix()) {
		t.Errorf("an endpoint without queries answered %q with %+v, want an invalid reference", h+"/team/app:v1#a", it[0])
	}
}

// TestDeadlineAndClasses: a key whose load hangs gets a "timed out" error by the endpoint
// deadline while the others are answered; a loader's unclassified error becomes "unavailable";
// a renderer's failure becomes "unavailable" naming the reference.
func TestDeadlineAndClasses(t *testing.T) {
	p := newParts(t)
	h := p.reg.Host
	release := make(chan struct{})
	defer close(release)
	pl, err := lookup.New(lookup.Options[string]{
		Name: "test", Refs: p.refs, Registries: p.cli, Pool: p.pool,
		Deadline: 300 * time.Millisecond, LoadTimeout: time.Minute,
		Load: func(ctx context.Context, ref imageref.Ref) (string, error) {
			switch ref.Path {
			case "team/hang":
				select {
				case <-release:
				case <-ctx.Done():
				}
				return "", ctx.Err()
			case "team/broken":
				return "", errors.New("disk on fire")
			}
			return ref.Path, nil
		},
		Render: func(_ imageref.Ref, _ any, v string, _ bool) (any, error) {
			if v == "team/unrenderable" {
				return nil, errors.New("no encoding")
			}
			return v, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{h + "/team/ok:v1", h + "/team/hang:v1", h + "/team/broken:v1", h + "/team/unrenderable:v1"}
	items, classes := pl.Lookup(context.Background(), keys)
	for i, w := range []wire.Class{"", wire.ClassTimedOut, wire.ClassUnavailable, wire.ClassUnavailable} {
		if classes[i] != w || (w != "" && !strings.HasPrefix(items[i].Error, w.Prefix())) {
			t.Errorf("Lookup(%q) = %v, %q (%q), want class %q", keys[i], items[i].Value, items[i].Error, classes[i], w)
		}
	}
	if !strings.Contains(items[2].Error, "disk on fire") || !strings.Contains(items[3].Error, "encoding the answer") {
		t.Errorf("errors = %q, %q, want the loader's and the renderer's reasons", items[2].Error, items[3].Error)
	}
}

func TestNewNamesMissingOptions(t *testing.T) {
	_, err := lookup.New(lookup.Options[string]{Name: "x"})
	var oe *lookup.OptionsError
	if !errors.As(err, &oe) || !strings.Contains(err.Error(), "Refs, Registries, Pool, Deadline, LoadTimeout, Load, Render") {
		t.Errorf("New(no options) = %v, want an *OptionsError naming every required option", err)
	}
}
