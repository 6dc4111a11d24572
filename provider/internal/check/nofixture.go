package check

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"
)

// ActionIncomplete is the result of a constraint that could not decide an object: it asked a
// provider no answer is known for (--provider-fixtures without that provider's section).
const ActionIncomplete = "incomplete"

// noFixture answers, for --provider-fixtures, the Provider objects the fixture files have no
// section for. Without it the engine would find no Provider object and the template would deny
// with Gatekeeper's "key is not found in provider cache"; with it, every call is recorded and
// answered with a system error naming the provider and the fixture directory, and the findings
// that system error caused become ActionIncomplete results.
type noFixture struct {
	*loopbackServer
	dir string

	mu    sync.Mutex
	asked map[string]map[string]bool // provider → keys
}

func newNoFixture(dir string) (*noFixture, error) {
	n := &noFixture{dir: dir, asked: map[string]map[string]bool{}}
	ls, err := serveProviders(n.serve)
	if err != nil {
		return nil, err
	}
	n.loopbackServer = ls
	return n, nil
}

// message is why a constraint that asked provider could not decide.
func (n *noFixture) message(provider string) string {
	return fmt.Sprintf("no fixture for provider %s in %s", provider, n.dir)
}

func (n *noFixture) serve(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	var req externaldata.ProviderRequest
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err == nil {
		err = json.Unmarshal(body, &req)
	}
	n.mu.Lock()
	m := n.asked[name]
	if m == nil {
		m = map[string]bool{}
		n.asked[name] = m
	}
	for _, k := range req.Request.Keys {
		m[k] = true
	}
	n.mu.Unlock()
	msg := n.message(name)
	if err != nil {
		msg += " (the request could not be read: " + err.Error() + ")"
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(externaldata.ProviderResponse{
		APIVersion: "externaldata.gatekeeper.sh/v1beta1",
		Kind:       externaldata.ProviderResponseKind,
		Response:   externaldata.Response{SystemError: msg},
	})
}

// failures lists, per provider asked, the keys that had no fixture section to answer them.
func (n *noFixture) failures() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for name, keys := range n.asked {
		ks := make([]string, 0, len(keys))
		for k := range keys {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		const show = 5
		more := ""
		if len(ks) > show {
			more = fmt.Sprintf(" and %d more", len(ks)-show)
			ks = ks[:show]
		}
		out = append(out, fmt.Sprintf("%s (asked for %s%s)", n.message(name), strings.Join(ks, ", "), more))
	}
	sort.Strings(out)
	return out
}

// undecided rewrites the findings the missing sections caused: a finding whose message carries
// the system error of a provider without fixtures did not come from a decision, so it becomes
// an ActionIncomplete result of its constraint, saying which provider has no fixture.
func (n *noFixture) undecided(fs []Finding) []Finding {
	n.mu.Lock()
	names := make([]string, 0, len(n.asked))
	for name := range n.asked {
		names = append(names, name)
	}
	n.mu.Unlock()
	if len(names) == 0 {
		return fs
	}
	slices.Sort(names)
	for i := range fs {
		for _, name := range names {
			if strings.Contains(fs[i].Message, "system error: "+n.message(name)) {
				fs[i].Action = ActionIncomplete
				fs[i].Message = n.message(name)
				break
			}
		}
	}
	return fs
}
