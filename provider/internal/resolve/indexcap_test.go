package resolve_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
	"github.com/imagetrust/imagetrust/provider/internal/verify"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// TestIndexOverCapIsLimitExceeded: a legal 3.8 MB index of 20,000 platforms is over the
// default 256 KiB lookup.maxIndexBytes: /v1/resolve and /v1/verify answer "limit exceeded:"
// naming the cap and its size, after reading at most the cap. Configured to 4 MiB, the same
// index is answered, its platform list truncated.
func TestIndexOverCapIsLimitExceeded(t *testing.T) {
	big := registrytest.BigIndex(20000)
	sum := sha256.Sum256(big)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	want := "limit exceeded: index " + digest + " (lookup.maxIndexBytes) is larger than 262144 bytes"

	f := newFixture(t, nil)
	f.reg.Hostile(registrytest.PathContains("/team/big/manifests/"), registrytest.Content(ociIndex, big))
	key := f.host + "/team/big:v1"
	it := f.svc.Resolve(context.Background(), []string{key})[0]
	if c, _ := wire.ClassOf(it.Error); it.Error != want || c != wire.ClassLimitExceeded {
		t.Errorf("Resolve(%s) error = %q, want %q", key, it.Error, want)
	}

	x, rc := newIndexesClient(t, f)
	pool, err := batch.NewPool(8, nil)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := verify.New(context.Background(), verify.Options{Registry: rc, Refs: imageref.NewMemo(64), Pool: pool, Deadline: time.Minute, Indexes: x})
	if err != nil {
		t.Fatal(err)
	}
	_, err = vs.Lookup(context.Background(), mustParse(t, key))
	if err == nil || !strings.Contains(err.Error(), "(lookup.maxIndexBytes) is larger than 262144 bytes") {
		t.Errorf("verify Lookup(%s) = %v, want limit exceeded naming lookup.maxIndexBytes", key, err)
	}

	f = newFixture(t, func(c *config.Config) { c.Lookup.MaxIndexBytes = config.MaxIndexBytesLimit })
	f.reg.Hostile(registrytest.PathContains("/team/big/manifests/"), registrytest.Content(ociIndex, big))
	it = f.svc.Resolve(context.Background(), []string{f.host + "/team/big:v1"})[0]
	if v := decodeValue(t, it); *v.PlatformsTotal != 20000 || !*v.PlatformsTruncated {
		t.Errorf("Resolve with lookup.maxIndexBytes 4 MiB: platformsTotal %d, truncated %v; want 20000, true", *v.PlatformsTotal, *v.PlatformsTruncated)
	}
	if got := f.reg.Count(http.MethodGet, "manifests"); got != 1 {
		t.Errorf("index GETs = %d, want 1", got)
	}
}

// TestMaxIndexBytesValidated: lookup.maxIndexBytes outside 4 KiB..4 MiB is a configuration
// error naming the field.
func TestMaxIndexBytesValidated(t *testing.T) {
	for _, n := range []int64{1, 4<<10 - 1, 4<<20 + 1} {
		c := config.Config{Registries: []config.Registry{{Host: "r.example"}}, Lookup: config.Lookup{MaxIndexBytes: n}}
		c.ApplyDefaults()
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "lookup.maxIndexBytes") {
			t.Errorf("lookup.maxIndexBytes %d: Validate() = %v, want an error naming lookup.maxIndexBytes", n, err)
		}
	}
	c := config.Config{Registries: []config.Registry{{Host: "r.example"}}}
	c.ApplyDefaults()
	if c.Lookup.MaxIndexBytes != config.DefaultMaxIndexBytes {
		t.Errorf("default lookup.maxIndexBytes = %d, want %d", c.Lookup.MaxIndexBytes, config.DefaultMaxIndexBytes)
	}
}
