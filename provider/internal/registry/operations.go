package registry

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
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
)

// The whole operations the lookups use: each reads from ref's mirrors and origin in order
// (Head by tag: the mirrors trusted for tags, then the origin), under the per-registry limit
// and the operation timeout, and returns the typed errors of this package.

// Descriptor is what a manifest lookup returns.
type Descriptor = v1.Descriptor

// each runs op on targets in order until one succeeds; any failure (a not-found at a mirror
// included) falls through to the next target, and the last error is returned.
func (c *Client) each(ctx context.Context, ref imageref.Ref, targets []Target, operation string, op func(ctx context.Context, repo name.Repository) error) error {
	var last error
	for _, t := range targets {
		err := c.Do(ctx, t.Repo, operation, ref.Original, func(ctx context.Context) error {
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

// Head resolves ref with HEAD requests only: by digest when the reference has one (content: the
// mirrors in order, then the origin), else by tag (trusted mirrors, then the origin). The
// returned descriptor's digest is checked against a written digest.
func (c *Client) Head(ctx context.Context, ref imageref.Ref) (*Descriptor, error) {
	reference := ref.Digest
	targets, err := c.ContentTargets(ref)
	if reference == "" {
		reference = ref.EffectiveTag()
		targets, err = c.TagTargets(ref)
	}
	if err != nil {
		return nil, err
	}
	var desc *v1.Descriptor
	err = c.each(ctx, ref, targets, "head", func(ctx context.Context, repo name.Repository) error {
		var err error
		desc, err = c.HeadManifest(ctx, repo, reference)
		return err
	})
	return desc, err
}

// Manifest GETs the manifest reference (a tag such as sha256-<hex>.sig, or a digest) in ref's
// repository: by digest from the mirrors in order, then the origin; by tag from the mirrors
// trusted for tags, then the origin (a mirror could otherwise hide or replace signature tags).
// A manifest larger than limit is a *TooLargeError; by digest, the content must hash to it.
func (c *Client) Manifest(ctx context.Context, ref imageref.Ref, reference string, limit int64) (*Manifest, error) {
	targets, err := c.ContentTargets(ref)
	if !strings.Contains(reference, ":") {
		targets, err = c.TagTargets(ref)
	}
	if err != nil {
		return nil, err
	}
	var m *Manifest
	err = c.each(ctx, ref, targets, "manifest", func(ctx context.Context, repo name.Repository) error {
		var err error
		m, err = c.GetManifest(ctx, repo, reference, limit)
		return err
	})
	return m, err
}

// Get fetches the manifest ref@digest (mirrors in order, then the origin) as
// go-containerregistry's remote.Get does, for callers that need a *remote.Descriptor (an image
// or index to walk). The lookups read manifests with Manifest, which is capped and cheaper.
func (c *Client) Get(ctx context.Context, ref imageref.Ref, digest string) (*remote.Descriptor, error) {
	targets, err := c.ContentTargets(ref)
	if err != nil {
		return nil, err
	}
	var d *remote.Descriptor
	err = c.each(ctx, ref, targets, "get", func(ctx context.Context, repo name.Repository) error {
		opts, err := c.Remote(ctx, repo)
		if err != nil {
			return err
		}
		d, err = remote.Get(repo.Digest(digest), opts...)
		return err
	})
	return d, err
}

// Blob GETs a blob of ref's repository (mirrors in order, then the origin), at most limit bytes
// (more is a *TooLargeError), checked against its digest. One request (and the redirects the
// registry sends, to a CDN for example), like GetManifest.
func (c *Client) Blob(ctx context.Context, ref imageref.Ref, digest v1.Hash, limit int64) ([]byte, error) {
	return c.BlobInto(ctx, ref, digest, limit, nil)
}

// BlobInto is Blob reading into dst's memory when the blob fits in cap(dst) (a new slice
// otherwise): a caller that reads many blobs one after another reuses one buffer. The result
// aliases dst; dst is overwritten even when an error is returned.
func (c *Client) BlobInto(ctx context.Context, ref imageref.Ref, digest v1.Hash, limit int64, dst []byte) ([]byte, error) {
	targets, err := c.ContentTargets(ref)
	if err != nil {
		return nil, err
	}
	if digest.Algorithm != "sha256" {
		return nil, fmt.Errorf("blob %s: only sha256 digests can be checked", digest)
	}
	var out []byte
	err = c.each(ctx, ref, targets, "blob", func(ctx context.Context, repo name.Repository) error {
		resp, _, err := c.request(withBodyCap(ctx, limit+1), repo, http.MethodGet, "/blobs/"+digest.String(), "", "", http.StatusOK)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		out, err = readBodyInto(resp, limit, "blob "+digest.String(), dst)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := checkDigest(out, digest); err != nil {
		return nil, err
	}
	return out, nil
}

// Referrers lists the OCI referrers of digest in ref's repository (mirrors in order, then the
// origin), a list of at most Options.MaxReferrersBytes (lookup.maxReferrersBytes; a longer one
// is a *TooLargeError naming it, read no further than the cap): the referrers API, or its fallback tag (sha256-<hex>) when the registry answers the
// API with 404, 400 or 406 or with something that is not an OCI index (as go-containerregistry's
// remote.Referrers does), or is known not to have the API (ReferrersAPIUnsupported: then the
// fallback tag directly).
func (c *Client) Referrers(ctx context.Context, ref imageref.Ref, digest v1.Hash) (*v1.IndexManifest, error) {
	targets, err := c.ContentTargets(ref)
	if err != nil {
		return nil, err
	}
	var out *v1.IndexManifest
	err = c.each(ctx, ref, targets, "referrers", func(ctx context.Context, repo name.Repository) error {
		if c.ReferrersAPIUnsupported(repo) {
			idx, err := c.fallbackReferrers(ctx, repo, digest)
			out = idx
			return err
		}
		idx, err := c.referrersAPI(ctx, repo, digest)
		out = idx
		return err
	})
	return out, err
}

// referrersAPI asks repo's referrers API (GET /v2/<repo>/referrers/<digest>, one request) and,
// when the registry does not answer it with an OCI index, reads the fallback tag.
func (c *Client) referrersAPI(ctx context.Context, repo name.Repository, digest v1.Hash) (*v1.IndexManifest, error) {
	resp, _, err := c.request(withBodyCap(ctx, c.maxReferrers+1), repo, http.MethodGet, "/referrers/"+digest.String(), "",
		string(types.OCIImageIndex), http.StatusOK, http.StatusNotFound, http.StatusBadRequest, http.StatusNotAcceptable)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != string(types.OCIImageIndex) {
		resp.Body.Close() // drained by the transport for reuse
		return c.fallbackReferrers(ctx, repo, digest)
	}
	defer resp.Body.Close()
	b, err := readBody(resp, c.maxReferrers, "referrers of "+digest.String()+" ("+referrersCapField+")")
	if err != nil {
		return nil, err
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, &InvalidManifestError{Ref: repo.String(), What: "referrers of " + digest.String(), Err: err}
	}
	return &idx, nil
}

// fallbackReferrers reads the referrers of digest from the OCI referrers tag schema
// (sha256-<hex>) without first asking the referrers API, for a registry known not to have
// it; no such tag means no referrers, as go-containerregistry's remote.Referrers treats it.
func (c *Client) fallbackReferrers(ctx context.Context, repo name.Repository, digest v1.Hash) (*v1.IndexManifest, error) {
	m, err := c.GetManifest(ctx, repo, digest.Algorithm+"-"+digest.Hex, c.maxReferrers)
	if err != nil {
		var tl *TooLargeError
		if errors.As(err, &tl) {
			return nil, &TooLargeError{What: "referrers index " + digest.Algorithm + "-" + digest.Hex + " of " + repo.String() + " (" + referrersCapField + ")", Max: tl.Max}
		}
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
			return &v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}, nil
		}
		return nil, err
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(m.Raw, &idx); err != nil {
		return nil, &InvalidManifestError{Ref: repo.String(), What: "referrers index of " + digest.String(), Err: err}
	}
	return &idx, nil
}

// referrersCapField names the cap of a referrers list in its "limit exceeded:" error.
const referrersCapField = "lookup.maxReferrersBytes"

// readBody reads resp's body, at most limit bytes (more is a *TooLargeError naming what, and the
// rest is not read). With a Content-Length, into one buffer of exactly that size, read once
// (net/http delivers no more than Content-Length bytes, and a shorter body is its error).
func readBody(resp *http.Response, limit int64, what string) ([]byte, error) {
	return readBodyInto(resp, limit, what, nil)
}

// readBodyInto is readBody into dst's memory when a Content-Length body fits in cap(dst).
func readBodyInto(resp *http.Response, limit int64, what string, dst []byte) ([]byte, error) {
	if resp.ContentLength > limit {
		return nil, &TooLargeError{What: what, Max: limit}
	}
	if resp.ContentLength >= 0 {
		var b []byte
		if resp.ContentLength <= int64(cap(dst)) {
			b = dst[:resp.ContentLength]
		} else {
			b = make([]byte, resp.ContentLength)
		}
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	buf := bytes.NewBuffer(dst[:0])
	n, err := io.Copy(buf, io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, &TooLargeError{What: what, Max: limit}
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
