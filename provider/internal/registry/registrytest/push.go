package registrytest

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// PushIndex writes a two-platform OCI index (linux/amd64, linux/arm64/v8) of random images to
// host/repo:tag and returns the index digest and the platform manifest digests.
func PushIndex(t testing.TB, host, repo, tag string) (name.Digest, []name.Digest) {
	t.Helper()
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	tr, err := name.NewTag(host + "/" + repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	var kids []name.Digest
	for _, p := range []v1.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}} {
		img, err := random.Image(128, 1)
		if err != nil {
			t.Fatal(err)
		}
		pl := p
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &pl}})
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		kids = append(kids, tr.Context().Digest(d.String()))
	}
	if err := remote.WriteIndex(tr, idx); err != nil {
		t.Fatalf("remote.WriteIndex(%s) = %v", tr, err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return tr.Context().Digest(d.String()), kids
}

// PushImage writes a random one-layer image to host/repoTag ("team/app:v1") and returns its
// digest reference.
func PushImage(t testing.TB, host, repoTag string) name.Digest {
	t.Helper()
	tag, err := name.NewTag(host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatalf("remote.Write(%s) = %v", tag, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return tag.Context().Digest(d.String())
}
