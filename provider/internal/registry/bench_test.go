package registry_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
)

// benchClient starts a TLS registry on loopback (as the provider reaches registries), pushes
// one image to each of repos repositories and returns a client with metrics registered, as the
// provider builds it, and the image references.
func benchClient(b *testing.B, repos int) (*registry.Client, []string) {
	b.Helper()
	reg := registrytest.NewTLS()
	b.Cleanup(reg.Close)
	tr := reg.Server.Client().Transport
	refs := make([]string, repos)
	for i := range refs {
		refs[i] = fmt.Sprintf("%s/bench/app%d:v1", reg.Host, i)
		tag, err := name.NewTag(refs[i])
		if err != nil {
			b.Fatal(err)
		}
		img, err := random.Image(64, 1)
		if err != nil {
			b.Fatal(err)
		}
		if err := remote.Write(tag, img, remote.WithTransport(tr)); err != nil {
			b.Fatalf("remote.Write(%s) = %v", tag, err)
		}
	}
	pool := tr.(*http.Transport).TLSClientConfig.RootCAs
	c, err := registry.New(context.Background(), registry.Options{
		Registries: []config.Registry{{Host: reg.Host}},
		TLSConfig:  tlsWithRoots(pool),
		Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		b.Fatal(err)
	}
	return c, refs
}

// BenchmarkHead is one manifest HEAD by tag (what a cold /v1/mutate or /v1/resolve key costs
// the registry client), over HTTPS with keep-alive on loopback; the in-process registry's CPU
// and allocations are included.
func BenchmarkHead(b *testing.B) {
	c, refs := benchClient(b, 16)
	ctx := context.Background()
	parsed := parseAll(b, refs)
	for _, r := range parsed { // warm: ping, transports, connections
		if _, err := c.Head(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Head(ctx, parsed[i%len(parsed)]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkManifest is one manifest GET by tag, read and hashed (what a cosign .sig read
// costs the registry client).
func BenchmarkManifest(b *testing.B) {
	c, refs := benchClient(b, 16)
	ctx := context.Background()
	parsed := parseAll(b, refs)
	for _, r := range parsed {
		if _, err := c.Manifest(ctx, r, "v1", 1<<20); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Manifest(ctx, parsed[i%len(parsed)], "v1", 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}

func parseAll(b *testing.B, refs []string) []imageref.Ref {
	b.Helper()
	out := make([]imageref.Ref, len(refs))
	for i, s := range refs {
		r, err := imageref.Parse(s)
		if err != nil {
			b.Fatal(err)
		}
		out[i] = r
	}
	return out
}
