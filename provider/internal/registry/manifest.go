package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// TooLargeError reports something read from a registry that exceeded its cap. It is the
// registry's content, not an outage: callers reject what it belonged to.
type TooLargeError struct {
	What string
	Max  int64
}

func (e *TooLargeError) Error() string {
	return e.Class().Message(fmt.Sprintf("%s is larger than %d bytes", e.What, e.Max))
}

// Class is wire.ClassLimitExceeded: a content-induced failure failOpen never admits.
func (e *TooLargeError) Class() wire.Class { return wire.ClassLimitExceeded }

// manifestAccept is every manifest and index media type, as go-containerregistry's remote.Head
// and remote.Get ask for them (so a registry answers with the same manifest, and digest, as
// before these reads stopped going through them).
var manifestAccept = strings.Join([]string{
	string(types.DockerManifestSchema1), string(types.DockerManifestSchema1Signed),
	string(types.DockerManifestSchema2), string(types.OCIManifestSchema1),
	string(types.DockerManifestList), string(types.OCIImageIndex),
}, ",")

// manifestAcceptHeader is the Accept header value of manifest requests.
var manifestAcceptHeader = []string{manifestAccept}

// mediaTypeOf is headerMediaType, without parsing the Content-Types registries send for
// manifests and indexes (taken as they are); anything else is parsed and checked.
func mediaTypeOf(h http.Header) (types.MediaType, error) {
	if v := h["Content-Type"]; len(v) == 1 {
		switch mt := types.MediaType(v[0]); mt {
		case types.DockerManifestSchema1, types.DockerManifestSchema1Signed, types.DockerManifestSchema2,
			types.OCIManifestSchema1, types.DockerManifestList, types.OCIImageIndex:
			return mt, nil
		}
	}
	return headerMediaType(h)
}

// Manifest is a manifest read by GetManifest.
type Manifest struct {
	Raw       []byte
	MediaType types.MediaType
	Digest    v1.Hash
}

// GetManifest GETs the manifest reference (a tag, or a digest "sha256:…") of repo, reading at
// most limit bytes (more is a *TooLargeError, and the rest is not read); by digest, the content
// must hash to it. Use it inside Do, with a repository from ContentTargets or TagTargets.
//
// It is one HTTP request through repo's authenticated transport (see repoTransport) and no more:
// go-containerregistry's remote.Get, which this replaces for the manifests verification reads,
// also parses every manifest it fetches, about a third of the CPU of a manifest read on
// loopback.
func (c *Client) GetManifest(ctx context.Context, repo name.Repository, reference string, limit int64) (*Manifest, error) {
	byDigest := strings.Contains(reference, ":")
	if byDigest && !strings.HasPrefix(reference, "sha256:") {
		return nil, fmt.Errorf("manifest %s: only sha256 digests can be checked", reference)
	}
	resp, _, err := c.manifestRequest(withBodyCap(ctx, limit+1), repo, http.MethodGet, reference)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := readBody(resp, limit, "manifest "+reference)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(raw)
	got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	if byDigest && got.String() != reference {
		return nil, fmt.Errorf("manifest %s: content digest is %s", reference, got)
	}
	mt, err := mediaTypeOf(resp.Header)
	if err != nil {
		return nil, err
	}
	return &Manifest{Raw: raw, MediaType: mt, Digest: got}, nil
}

// HeadManifest HEADs the manifest reference (a tag, or a digest "sha256:…") of repo and returns
// its descriptor from the response headers: Docker-Content-Digest (required; by digest it must
// be that digest), Content-Type and Content-Length. Use it inside Do, with a repository from
// ContentTargets or TagTargets. One request, like GetManifest.
func (c *Client) HeadManifest(ctx context.Context, repo name.Repository, reference string) (*v1.Descriptor, error) {
	resp, u, err := c.manifestRequest(ctx, repo, http.MethodHead, reference)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	mt, err := mediaTypeOf(resp.Header)
	if err != nil {
		return nil, err
	}
	if mt == "" {
		return nil, fmt.Errorf("HEAD %s: the registry sent no Content-Type", u)
	}
	dh := resp.Header.Get("Docker-Content-Digest")
	if dh == "" {
		return nil, fmt.Errorf("HEAD %s: the registry sent no Docker-Content-Digest", u)
	}
	d, err := v1.NewHash(dh)
	if err != nil {
		return nil, fmt.Errorf("HEAD %s: Docker-Content-Digest: %w", u, err)
	}
	if strings.Contains(reference, ":") && d.String() != reference {
		return nil, fmt.Errorf("HEAD %s: the registry answered with digest %s", u, d)
	}
	if resp.ContentLength < 0 {
		return nil, fmt.Errorf("HEAD %s: the registry sent no Content-Length", u)
	}
	return &v1.Descriptor{Digest: d, Size: resp.ContentLength, MediaType: mt}, nil
}

// manifestRequest sends method to /v2/<repo>/manifests/<reference> through repo's transport and
// returns the response if it is 200 (the caller closes its body), with the URL for messages;
// any other status is go-containerregistry's *transport.Error, which Classify understands.
func (c *Client) manifestRequest(ctx context.Context, repo name.Repository, method, reference string) (*http.Response, *url.URL, error) {
	return c.request(ctx, repo, method, "/manifests/"+reference, "", manifestAccept, http.StatusOK)
}

// request sends method to /v2/<repo><path>?<query> through repo's authenticated transport
// (see repoTransport) as one HTTP request — no per-call options, fetcher or transport wrappers
// as go-containerregistry's remote functions build them — and returns the response if its
// status is one of ok (the caller closes its body), with the URL for messages; any other status
// is go-containerregistry's *transport.Error, which Classify understands. The URL is built, not
// formatted and parsed again. Redirects are followed (blobs are often served from elsewhere),
// each through the same guarded transport.
func (c *Client) request(ctx context.Context, repo name.Repository, method, path, query, accept string, ok ...int) (*http.Response, *url.URL, error) {
	e, err := c.repoEntry(ctx, repo)
	if err != nil {
		return nil, &url.URL{Scheme: repo.Scheme(), Host: repo.RegistryStr(), Path: "/v2/" + repo.RepositoryStr() + path}, err
	}
	u := &url.URL{Scheme: e.scheme, Host: e.host, Path: e.path + path, RawQuery: query}
	req, err := http.NewRequestWithContext(ctx, method, "", nil)
	if err != nil {
		return nil, u, err
	}
	req.URL, req.Host = u, u.Host
	switch accept {
	case "":
	case manifestAccept:
		req.Header["Accept"] = manifestAcceptHeader // shared, never modified: one allocation fewer
	default:
		req.Header["Accept"] = []string{accept}
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, u, err
	}
	if err := transport.CheckError(resp, ok...); err != nil {
		resp.Body.Close()
		return nil, u, err
	}
	return resp, u, nil
}

// repoRT is one repository's authenticated transport, a client on it and the parts of its
// request URLs (go-containerregistry's Registry.Scheme matches three regular expressions per
// call for a registry that is not insecure).
type repoRT struct {
	rt      http.RoundTripper
	client  *http.Client
	created time.Time
	// scheme, host and path ("/v2/<repository>") of the repository's URLs.
	scheme, host, path string
}

// repoTransport returns repo's authenticated transport (credentials from the keychain; for
// token auth, the token, fetched once and renewed by go-containerregistry's bearer transport on
// a 401), built once per repository and rebuilt after maxAge, so re-read credentials are used.
// Every request to a registry goes through one: HEADs, manifest, blob, referrers and tag-list
// GETs here (request), index GETs through go-containerregistry's remote functions (Remote), so
// a repository is pinged and a token fetched once for all of them. It sits on the shared
// guarded transport.
func (c *Client) repoTransport(ctx context.Context, repo name.Repository) (http.RoundTripper, error) {
	e, err := c.repoEntry(ctx, repo)
	if err != nil {
		return nil, err
	}
	return e.rt, nil
}

func (c *Client) repoEntry(ctx context.Context, repo name.Repository) (*repoRT, error) {
	c.rtMu.Lock()
	e := c.rts[repo]
	c.rtMu.Unlock()
	if e != nil && time.Since(e.created) <= c.maxAge {
		return e, nil
	}
	v, err, _ := c.rtGroup.Do(repo.Scheme()+"://"+repo.String(), func() (any, error) {
		auth, err := c.keychain.Resolve(repo)
		if err != nil {
			return nil, fmt.Errorf("credentials for %s: %w", repo, err)
		}
		// A *transport.Wrapper: go-containerregistry's remote functions use it as it is.
		rt, err := transport.NewWithContext(ctx, repo.Registry, auth, transport.NewUserAgent(c.transport, c.ua), []string{repo.Scope(transport.PullScope)})
		if err != nil {
			return nil, err
		}
		e := &repoRT{rt: rt, client: &http.Client{Transport: rt}, created: time.Now(),
			scheme: repo.Scheme(), host: repo.RegistryStr(), path: "/v2/" + repo.RepositoryStr()}
		c.rtMu.Lock()
		if len(c.rts) >= maxRepoTransports {
			clear(c.rts) // bounded: forgetting costs one /v2/ ping (cached) and, with tokens, a token
		}
		c.rts[repo] = e
		c.rtMu.Unlock()
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*repoRT), nil
}
