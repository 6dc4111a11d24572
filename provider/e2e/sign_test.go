//go:build e2e

package e2e

import (
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/imagetrust/imagetrust/provider/internal/signing"
)

// signImage signs the sample image ref (repo:tag, by its digest) with a fresh ECDSA key in
// cosign's tag scheme (sha256-<hex>.sig) and returns the path of the public key (PEM), which
// the provider config names as authority e2e-key.
func (s *stack) signImage(ref string) string {
	t := s.t
	path := filepath.Join(s.dir, "e2e-key.pub")
	sv := newSigner(t, path)
	d, err := name.NewDigest(s.pinnedNoTag(ref))
	if err != nil {
		t.Fatal(err)
	}
	s.signer = sv // also signs the dogfood image (dogfood_e2e_test.go)
	if err := signing.Sign(d, sv); err != nil {
		t.Fatal(err)
	}
	return path
}

// pinnedNoTag returns the loopback reference repo@digest of a sample image.
func (s *stack) pinnedNoTag(ref string) string {
	d, ok := s.digests[ref]
	if !ok {
		s.t.Fatalf("no sample image %s", ref)
	}
	repo, _, _ := strings.Cut(ref, ":")
	return s.regHost + "/" + repo + "@" + d.String()
}
