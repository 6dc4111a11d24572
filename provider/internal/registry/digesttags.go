package registry

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
)

// DigestTags is what one tags/list request says about the tags of one digest: which of
// "sha256-<hex>" (the OCI referrers fallback tag) and "sha256-<hex>.<suffix>" (cosign's .sig,
// .att, .sbom) exist in the repository. A nil *DigestTags knows nothing: every tag must be read.
type DigestTags struct {
	tags []string
	// fallbackOnly: when listed, the registry was known to lack the referrers API
	// (ReferrersAPIUnsupported), so its referrers are exactly the fallback tag's.
	fallbackOnly bool
	fallback     string
}

// Known reports whether t answers for the digest's tags.
func (t *DigestTags) Known() bool { return t != nil }

// Absent reports whether tag is known not to exist: t is known and does not list it.
func (t *DigestTags) Absent(tag string) bool { return t != nil && !slices.Contains(t.tags, tag) }

// NoReferrers reports whether the digest is known to have no referrers: its registry has no
// referrers API and the listing has no fallback tag.
func (t *DigestTags) NoReferrers() bool { return t != nil && t.fallbackOnly && t.Absent(t.fallback) }

// digestTagsPage is the page size asked for: the four tags of a digest and room for others
// that sort among them ("sha256-<hex>.<anything>").
const digestTagsPage = 10

// maxTagList caps a tags/list answer read for DigestTags: a page of ten tags is a few hundred
// bytes; a registry that ignores n and sends its whole list is not worth reading.
const maxTagList = 64 << 10

// DigestTags lists, with one request, the tags of ref's repository that belong to digest h
// (GET /v2/<repo>/tags/list?n=10&last=sha256-<first 63 hex digits>: the OCI distribution
// spec's pagination returns, in lexical order, the tags after last, among them the digest's
// "sha256-<hex>", ".att", ".sbom", ".sig"). So a lookup that would read three or four such tags,
// most of which do not exist, reads only those listed.
//
// It answers nil — read every tag as before — unless the answer is certain: only a registry
// without mirrors (with mirrors a tag may exist at one place and not another), only a 200
// answer whose tags are sorted, and only when it reaches past "sha256-<hex>.sig" or is the
// last page (fewer than n tags and no Link header). A registry that answers tags/list with
// an error status, with tags not after last on a full page (it ignores last), unsorted or too
// large is not asked again for listTTL; a network error or 5xx is not remembered. Nothing is
// cached: every lookup lists afresh, so a tag pushed a moment ago is seen as a GET would see it.
func (c *Client) DigestTags(ctx context.Context, ref imageref.Ref, h v1.Hash) *DigestTags {
	targets, err := c.TagTargets(ref)
	if err != nil || len(targets) != 1 || h.Algorithm != "sha256" || len(h.Hex) != 64 {
		return nil
	}
	if r, err := c.Allowed(ref); err != nil || len(r.Mirrors) > 0 {
		return nil
	}
	repo := targets[0].Repo
	if c.lists.unsupported(repo) {
		return nil
	}
	fallbackOnly := c.ReferrersAPIUnsupported(repo)
	var t *DigestTags
	// A failed listing is recorded in the operation metrics ("tags") under its outcome; for the
	// lookup it is no error: the tags are then read one by one.
	_ = c.Do(ctx, repo, "tags", ref.Original, func(ctx context.Context) error {
		var memo bool
		var err error
		t, memo, err = c.listDigestTags(ctx, repo, h)
		if memo {
			c.lists.mark(repo)
		}
		return err
	})
	if t != nil {
		t.fallbackOnly = fallbackOnly
	}
	return t
}

// listDigestTags sends the listing and decides whether its answer is certain; memo says the
// registry's tags/list is not usable this way; err is the request's failure.
func (c *Client) listDigestTags(ctx context.Context, repo name.Repository, h v1.Hash) (_ *DigestTags, memo bool, _ error) {
	last := h.Algorithm + "-" + h.Hex[:len(h.Hex)-1]
	resp, _, err := c.request(withBodyCap(ctx, maxTagList+1), repo, http.MethodGet, "/tags/list",
		"n="+strconv.Itoa(digestTagsPage)+"&last="+last, "application/json", http.StatusOK)
	if err != nil {
		return nil, permanent(err), err
	}
	defer resp.Body.Close()
	b, err := readBody(resp, maxTagList, "tag list")
	if err != nil {
		var tl *TooLargeError
		return nil, errors.As(err, &tl), err
	}
	var l struct {
		Tags []string `json:"tags"`
	}
	if json.Unmarshal(b, &l) != nil {
		return nil, true, nil
	}
	fallback := h.Algorithm + "-" + h.Hex
	sig := fallback + ".sig"
	for i := 1; i < len(l.Tags); i++ {
		if l.Tags[i-1] >= l.Tags[i] {
			return nil, true, nil // not the spec's lexical order: nothing can be concluded
		}
	}
	lastPage := len(l.Tags) < digestTagsPage && resp.Header.Get("Link") == ""
	if len(l.Tags) > 0 && l.Tags[0] <= last && !lastPage {
		return nil, true, nil // a full page from the start: last is ignored
	}
	if !lastPage && (len(l.Tags) == 0 || l.Tags[len(l.Tags)-1] < sig) {
		return nil, false, nil // crowded: the page ends before the digest's tags do
	}
	t := &DigestTags{fallback: fallback}
	for _, tag := range l.Tags {
		if tag == fallback || strings.HasPrefix(tag, fallback+".") {
			t.tags = append(t.tags, tag)
		}
	}
	return t, false, nil
}

// permanent reports whether a failed listing says that the registry does not list tags this
// way (a 4xx other than 408 and 429, e.g. 401/403 for a pull-only credential, 404 for no such
// endpoint), rather than that it failed this once. A 404 that names the repository unknown is
// about the repository, not the registry.
func permanent(err error) bool {
	var te *transport.Error
	if !errors.As(err, &te) {
		return false
	}
	for _, d := range te.Errors {
		if d.Code == transport.NameUnknownErrorCode {
			return false
		}
	}
	code := te.StatusCode
	return code >= 400 && code < 500 && code != http.StatusTooManyRequests && code != http.StatusRequestTimeout
}

// listTTL is how long a registry whose tags/list cannot answer DigestTags is not asked.
const listTTL = 10 * time.Minute

// maxListMemo bounds the memo; when full it is emptied.
const maxListMemo = 8192

// hostMemo remembers registries (hosts) for a while.
type hostMemo struct {
	mu  sync.Mutex
	at  map[string]time.Time
	ttl time.Duration
	max int
	now func() time.Time
}

func newHostMemo(ttl time.Duration, maxN int) *hostMemo {
	return &hostMemo{at: map[string]time.Time{}, ttl: ttl, max: maxN, now: time.Now}
}

func (m *hostMemo) mark(repo name.Repository) { m.markKey(strings.ToLower(repo.RegistryStr())) }

// markKey remembers a lower-cased host[:port].
func (m *hostMemo) markKey(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.at) >= m.max {
		clear(m.at)
	}
	m.at[key] = m.now()
}

func (m *hostMemo) unsupported(repo name.Repository) bool {
	key := strings.ToLower(repo.RegistryStr())
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.at[key]
	if !ok {
		return false
	}
	if m.now().Sub(t) >= m.ttl {
		delete(m.at, key)
		return false
	}
	return true
}

// ReferrersFromTag reports whether the referrers of ref are read from the fallback tag alone:
// its registry has no mirrors and is known to lack the referrers API (ReferrersAPIUnsupported).
// A lookup that lists the digest's tags (DigestTags) then knows from the listing whether there
// are any.
func (c *Client) ReferrersFromTag(ref imageref.Ref) bool {
	r, err := c.Allowed(ref)
	if err != nil || len(r.Mirrors) > 0 {
		return false
	}
	targets, err := c.ContentTargets(ref)
	if err != nil || len(targets) != 1 {
		return false
	}
	return c.ReferrersAPIUnsupported(targets[0].Repo)
}
