package registrytest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// Shuffler wraps a registry handler (the real go-containerregistry registry) and answers every
// listing in a new random order on each call, as a registry is free to: the OCI referrers API's
// index, the index under the referrers fallback tag (sha256-<hex>), tag lists and the catalog.
// The entries themselves are never changed, added or dropped, and nothing addressed by digest
// is touched; a client whose answer depends on listing order gives different answers through
// it. The fallback tag's index is re-encoded, with Docker-Content-Digest and Content-Length of
// the bytes served, as after a registry rewrote the tag.
type Shuffler struct {
	next http.Handler

	mu  sync.Mutex
	rnd *rand.Rand
	// orders holds, per request path, the distinct orders served (entries joined).
	orders map[string]map[string]bool
}

// Shuffle wraps next; seed makes a run's sequence of orders repeatable.
func Shuffle(next http.Handler, seed uint64) *Shuffler {
	return &Shuffler{
		next:   next,
		rnd:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), //nolint:gosec // listing order for tests, not a secret
		orders: map[string]map[string]bool{},
	}
}

// fallbackTag is the OCI referrers tag schema: <alg>-<hex>.
var fallbackTag = regexp.MustCompile(`/manifests/sha256-[0-9a-f]{64}$`)

// listField is the JSON array a listing response holds at path p ("" when p is not a listing).
func listField(method, p string) string {
	if method != http.MethodGet {
		return ""
	}
	switch {
	case strings.Contains(p, "/referrers/"), fallbackTag.MatchString(p):
		return "manifests"
	case strings.HasSuffix(p, "/tags/list"):
		return "tags"
	case p == "/v2/_catalog":
		return "repositories"
	}
	return ""
}

// ServeHTTP serves req from the wrapped registry, shuffling the listing it answers.
func (s *Shuffler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	field := listField(req.Method, req.URL.Path)
	if field == "" {
		s.next.ServeHTTP(w, req)
		return
	}
	rec := httptest.NewRecorder()
	s.next.ServeHTTP(rec, req)
	body := rec.Body.Bytes()
	if rec.Code == http.StatusOK {
		if out, order, err := s.shuffle(body, field); err == nil {
			body = out
			s.mu.Lock()
			if s.orders[req.URL.Path] == nil {
				s.orders[req.URL.Path] = map[string]bool{}
			}
			s.orders[req.URL.Path][order] = true
			s.mu.Unlock()
		}
	}
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if fallbackTag.MatchString(req.URL.Path) && rec.Code == http.StatusOK {
		sum := sha256.Sum256(body)
		w.Header().Set("Docker-Content-Digest", "sha256:"+hex.EncodeToString(sum[:]))
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body) //nolint:gosec // G705: the registry's own JSON answer, reordered; a failed write means the client went away
}

// shuffle reorders the array at field of the JSON object body, keeping every other field. It
// returns the new body and the new order (the entries joined by newlines).
func (s *Shuffler) shuffle(body []byte, field string) ([]byte, string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, "", err
	}
	raw, ok := obj[field]
	if !ok {
		return nil, "", fmt.Errorf("no %q field", field)
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, "", err
	}
	s.mu.Lock()
	s.rnd.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
	s.mu.Unlock()
	parts := make([]string, len(list))
	for i, e := range list {
		var c bytes.Buffer
		if err := json.Compact(&c, e); err != nil {
			return nil, "", err
		}
		parts[i] = c.String()
	}
	nl, err := json.Marshal(list)
	if err != nil {
		return nil, "", err
	}
	obj[field] = nl
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, "", err
	}
	return out, strings.Join(parts, "\n"), nil
}

// Orders is the number of distinct orders served so far for the listing at path (e.g.
// "/v2/app/referrers/sha256:…"): above one proves the shuffling reached the client.
func (s *Shuffler) Orders(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.orders[path])
}
