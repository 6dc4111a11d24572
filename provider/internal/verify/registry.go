package verify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
)

// Registry is what verification reads from registries. Implementations contact only allowed
// registries and return the registry package's typed errors (NotFoundError, DeniedError,
// UnavailableError, NotAllowedError).
type Registry interface {
	// Head resolves ref with one HEAD request (by tag, or by digest when ref has one).
	Head(ctx context.Context, ref imageref.Ref) (*v1.Descriptor, error)
	// Manifest GETs the manifest reference (a tag such as sha256-<hex>.sig, or a digest) in
	// ref's repository. A manifest larger than limit is an error.
	Manifest(ctx context.Context, ref imageref.Ref, reference string, limit int64) (*Manifest, error)
	// Blob GETs a blob of ref's repository, at most limit bytes, checked against its digest.
	Blob(ctx context.Context, ref imageref.Ref, digest v1.Hash, limit int64) ([]byte, error)
	// Referrers lists the OCI referrers of digest (the referrers API, or its tag fallback).
	Referrers(ctx context.Context, ref imageref.Ref, digest v1.Hash) (*v1.IndexManifest, error)
}

// Manifest is a fetched manifest.
type Manifest = registry.Manifest

// NewRegistry adapts the provider's registry client (allow-list, SSRF guard, auth, mirrors,
// per-registry limits, metrics) to Registry. It uses the client's per-repository transports, so a
// repository is pinged and authenticated once for resolving and verifying together.
func NewRegistry(c *registry.Client) Registry {
	return &clientRegistry{c: c}
}

type clientRegistry struct {
	c *registry.Client
}

func (r *clientRegistry) Head(ctx context.Context, ref imageref.Ref) (*v1.Descriptor, error) {
	return r.c.Head(ctx, ref)
}

// each runs op on the content targets of ref (mirrors in order, then the origin) until one
// succeeds; a not-found at a mirror falls through to the next target.
func (r *clientRegistry) each(ctx context.Context, ref imageref.Ref, operation string, op func(ctx context.Context, repo name.Repository) error) error {
	targets, err := r.c.ContentTargets(ref)
	if err != nil {
		return err
	}
	var last error
	for _, t := range targets {
		err := r.c.Do(ctx, t.Repo, operation, ref.Original, func(ctx context.Context) error {
			return op(ctx, t.Repo)
		})
		if err == nil {
			return nil
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	return last
}

func (r *clientRegistry) Manifest(ctx context.Context, ref imageref.Ref, reference string, limit int64) (*Manifest, error) {
	var m *Manifest
	err := r.each(ctx, ref, "verify_manifest", func(ctx context.Context, repo name.Repository) error {
		var err error
		m, err = r.c.GetManifest(ctx, repo, reference, limit)
		return err
	})
	return m, err
}

func (r *clientRegistry) Blob(ctx context.Context, ref imageref.Ref, digest v1.Hash, limit int64) ([]byte, error) {
	var out []byte
	err := r.each(ctx, ref, "verify_blob", func(ctx context.Context, repo name.Repository) error {
		opts, err := r.c.Remote(ctx, repo)
		if err != nil {
			return err
		}
		l, err := remote.Layer(repo.Digest(digest.String()), opts...)
		if err != nil {
			return err
		}
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		defer rc.Close()
		b, err := readCapped(rc, limit, "blob "+digest.String())
		if err != nil {
			return err
		}
		out = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := checkDigest(out, digest); err != nil {
		return nil, err
	}
	return out, nil
}

func (r *clientRegistry) Referrers(ctx context.Context, ref imageref.Ref, digest v1.Hash) (*v1.IndexManifest, error) {
	var out *v1.IndexManifest
	err := r.each(ctx, ref, "verify_referrers", func(ctx context.Context, repo name.Repository) error {
		if r.c.ReferrersAPIUnsupported(repo) {
			idx, err := r.fallbackReferrers(ctx, repo, digest)
			out = idx
			return err
		}
		opts, err := r.c.Remote(ctx, repo)
		if err != nil {
			return err
		}
		idx, err := remote.Referrers(repo.Digest(digest.String()), opts...)
		if err != nil {
			return err
		}
		out, err = idx.IndexManifest()
		return err
	})
	return out, err
}

// maxReferrersIndex caps a referrers fallback index (an OCI index of descriptors).
const maxReferrersIndex = 4 << 20

// fallbackReferrers reads the referrers of digest from the OCI referrers tag schema
// (sha256-<hex>) without first asking the referrers API, for a registry known not to have
// it; no such tag means no referrers, as go-containerregistry's remote.Referrers treats it.
func (r *clientRegistry) fallbackReferrers(ctx context.Context, repo name.Repository, digest v1.Hash) (*v1.IndexManifest, error) {
	m, err := r.c.GetManifest(ctx, repo, digest.Algorithm+"-"+digest.Hex, maxReferrersIndex)
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
			return &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}, nil
		}
		return nil, err
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(m.Raw, &idx); err != nil {
		return nil, fmt.Errorf("malformed referrers index for %s: %w", digest, err)
	}
	return &idx, nil
}

// tooLargeError: something read from a registry exceeded its cap. It makes that signature or
// attestation fail; it is not a registry outage.
type tooLargeError = registry.TooLargeError

func readCapped(r io.Reader, limit int64, what string) ([]byte, error) {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, &tooLargeError{What: what, Max: limit}
	}
	return buf.Bytes(), nil
}

// checkDigest verifies that b hashes to d (sha256 only).
func checkDigest(b []byte, d v1.Hash) error {
	if d.Algorithm != "sha256" {
		return fmt.Errorf("unsupported digest algorithm %q", d.Algorithm)
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != d.Hex {
		return fmt.Errorf("content does not match its digest %s", d)
	}
	return nil
}
