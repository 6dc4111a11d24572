package registry

import (
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// referrersTTL is how long a repository whose registry answered the referrers API with 404 or
// 400 is read through the fallback tag only. After it the API is tried again, so a registry
// that gains OCI 1.1 support is noticed.
const referrersTTL = 10 * time.Minute

// maxReferrersMemo bounds the memo; when full it is emptied (the cost of forgetting is one
// request per repository).
const maxReferrersMemo = 8192

// referrersMemo remembers repositories whose registry has no referrers API. The OCI
// distribution spec forbids a registry that supports the API to answer it with 404 for an
// existing repository, so such an answer means "use the sha256-<hex> tag": for those
// registries every image's referrers lookup is then one request instead of two.
type referrersMemo struct {
	mu  sync.Mutex
	at  map[string]time.Time
	now func() time.Time
}

func newReferrersMemo() *referrersMemo {
	return &referrersMemo{at: map[string]time.Time{}, now: time.Now}
}

// observe records a response to a referrers API request (GET /v2/<repo>/referrers/<digest>).
func (m *referrersMemo) observe(req *http.Request, status int) {
	if req.Method != http.MethodGet || (status != http.StatusNotFound && status != http.StatusBadRequest) {
		return
	}
	repo, ok := strings.CutPrefix(req.URL.Path, "/v2/")
	if !ok {
		return
	}
	i := strings.LastIndex(repo, "/referrers/")
	if i <= 0 {
		return
	}
	key := strings.ToLower(req.URL.Host) + "/" + repo[:i]
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.at) >= maxReferrersMemo {
		clear(m.at)
	}
	m.at[key] = m.now()
}

func (m *referrersMemo) unsupported(repo name.Repository) bool {
	key := strings.ToLower(repo.RegistryStr()) + "/" + repo.RepositoryStr()
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.at[key]
	if !ok {
		return false
	}
	if m.now().Sub(t) >= referrersTTL {
		delete(m.at, key)
		return false
	}
	return true
}

// ReferrersAPIUnsupported reports whether repo's registry answered the OCI referrers API with
// 404 or 400 in the last 10 minutes: its referrers are then read from the fallback tag
// (sha256-<hex>) directly.
func (c *Client) ReferrersAPIUnsupported(repo name.Repository) bool {
	return c.referrers.unsupported(repo)
}
