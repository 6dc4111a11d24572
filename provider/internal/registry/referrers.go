package registry

import (
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// referrersTTL is how long a registry that answered the referrers API with 404 or 400 is read
// through the fallback tag only. After it the API is tried again, so a registry that gains OCI
// 1.1 support is noticed.
const referrersTTL = 10 * time.Minute

// maxReferrersMemo bounds the memo; when full it is emptied (the cost of forgetting is one
// request per registry).
const maxReferrersMemo = 8192

// referrersMemo remembers registries (hosts: an origin or a mirror) that have no referrers API.
// The OCI distribution spec forbids a registry that supports the API to answer it with 404, so
// such an answer is a fact about the registry, not the repository: every later referrers
// lookup on that registry, in any repository, is then one request (the sha256-<hex> fallback
// tag) instead of two. The lookup asks only after the image itself was found, so a 404 does not
// stand for a missing repository. A host that fronts several backends, some with the API and
// some without, is read through the fallback tag for referrersTTL after a 404: a referrer that
// only the API lists is then not seen (an answer without it, never a wrong signature).
type referrersMemo struct {
	hostMemo // lower-cased host → when its 404/400 was seen
}

func newReferrersMemo() *referrersMemo {
	return &referrersMemo{hostMemo{at: map[string]time.Time{}, ttl: referrersTTL, max: maxReferrersMemo, now: time.Now}}
}

// observe records a response to a referrers API request (GET /v2/<repo>/referrers/<digest>).
func (m *referrersMemo) observe(req *http.Request, status int) {
	if req.Method != http.MethodGet || (status != http.StatusNotFound && status != http.StatusBadRequest) {
		return
	}
	repo, ok := strings.CutPrefix(req.URL.Path, "/v2/")
	if !ok || strings.LastIndex(repo, "/referrers/") <= 0 {
		return
	}
	m.markKey(strings.ToLower(req.URL.Host))
}

// ReferrersAPIUnsupported reports whether repo's registry answered the OCI referrers API with
// 404 or 400, for any of its repositories, in the last 10 minutes: its referrers are then read
// from the fallback tag (sha256-<hex>) directly.
func (c *Client) ReferrersAPIUnsupported(repo name.Repository) bool {
	return c.referrers.unsupported(repo)
}
