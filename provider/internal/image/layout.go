package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// refNameAnnotation names the index inside the layout (its version).
const refNameAnnotation = "org.opencontainers.image.ref.name"

// WriteLayout writes the index to dir as an OCI image layout holding exactly this index. dir
// must not exist, be empty, or already be an OCI layout (which is replaced); anything else is
// refused rather than deleted.
func WriteLayout(dir string, idx v1.ImageIndex, version string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("image layout %s: %w", dir, err)
	case len(ents) > 0:
		if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
			return fmt.Errorf("image layout %s: directory is not empty and not an OCI layout; refusing to replace it", dir)
		}
		for _, n := range []string{"oci-layout", "index.json", "blobs"} {
			if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
				return fmt.Errorf("image layout %s: %w", dir, err)
			}
		}
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("image layout %s: %w", dir, err)
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{refNameAnnotation: version})); err != nil {
		return fmt.Errorf("image layout %s: %w", dir, err)
	}
	return nil
}

// ReadLayout returns the one image index an OCI layout written by WriteLayout holds.
func ReadLayout(dir string) (v1.ImageIndex, error) {
	top, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("image layout %s: %w (build it with `make image`)", dir, err)
	}
	m, err := top.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("image layout %s: index.json: %w", dir, err)
	}
	if len(m.Manifests) != 1 || m.Manifests[0].MediaType != types.OCIImageIndex {
		return nil, fmt.Errorf("image layout %s: index.json must list exactly one OCI image index, found %d entries", dir, len(m.Manifests))
	}
	idx, err := top.ImageIndex(m.Manifests[0].Digest)
	if err != nil {
		return nil, fmt.Errorf("image layout %s: %w", dir, err)
	}
	return idx, nil
}

// Push writes the index (all platform images and blobs) to ref (a tag or a repository, which
// gets the tag "latest") and returns the pushed digest reference.
func Push(ctx context.Context, idx v1.ImageIndex, ref name.Reference, opts ...remote.Option) (name.Digest, error) {
	d, err := idx.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	opts = append([]remote.Option{remote.WithContext(ctx)}, opts...)
	if err := remote.WriteIndex(ref, idx, opts...); err != nil {
		return name.Digest{}, fmt.Errorf("pushing %s: %w", ref, err)
	}
	return ref.Context().Digest(d.String()), nil
}
