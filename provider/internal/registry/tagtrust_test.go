package registry_test

import (
	"context"
	"testing"

	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
)

// TestSignatureTagsFromTheOrigin reads a tag (a cosign signature tag) with Manifest: a mirror
// not trusted for tags serves a different manifest under the same tag, which must not be read
// (it could hide or replace signatures); a mirror trusted for tags is read first.
func TestSignatureTagsFromTheOrigin(t *testing.T) {
	origin := startRegistry(t)
	mirror := startRegistry(t)
	want := push(t, origin.Host, "team/app:sha256-abc.sig")
	decoy := push(t, mirror.Host, "team/app:sha256-abc.sig")
	ref := mustParse(t, origin.Host+"/team/app:v1")

	for _, tt := range []struct {
		name  string
		trust bool
		want  string
	}{
		{"mirror not trusted for tags", false, want.String()},
		{"mirror trusted for tags", true, decoy.String()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newClient(t, registry.Options{Registries: []config.Registry{{
				Host: origin.Host, Insecure: true,
				Mirrors: []config.Mirror{{Host: mirror.Host, Insecure: true, TrustTags: tt.trust}},
			}}})
			m, err := c.Manifest(context.Background(), ref, "sha256-abc.sig", 1<<20)
			if err != nil {
				t.Fatalf("Manifest(sha256-abc.sig) = %v", err)
			}
			if m.Digest.String() != tt.want {
				t.Errorf("Manifest(sha256-abc.sig) digest = %s, want %s", m.Digest, tt.want)
			}
		})
	}
}
