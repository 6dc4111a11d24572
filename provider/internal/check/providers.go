package check

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/frameworks/constraint/pkg/apis/externaldata/unversioned"
	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"

	"github.com/imagetrust/imagetrust/provider/internal/suite"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// ProviderNames are the Gatekeeper Provider objects imagetrust ships (manifests/components/
// providers): imagetrust-<endpoint> calls POST /v1/<endpoint> (imagetrust-verify-signatures:
// POST /v1/verify/signatures).
var ProviderNames = []string{"imagetrust-resolve", "imagetrust-mutate", "imagetrust-verify", "imagetrust-verify-signatures", "imagetrust-scan", "imagetrust-attestations"}

// ProviderPath is the endpoint path the Provider object name calls ("imagetrust-verify" ->
// "/v1/verify", "imagetrust-verify-signatures" -> "/v1/verify/signatures").
func ProviderPath(name string) string {
	if name == "imagetrust-verify-signatures" {
		return "/v1/verify/signatures"
	}
	return "/v1/" + strings.TrimPrefix(name, "imagetrust-")
}

// Providers answers the templates' external_data calls for one check.
type Providers struct {
	// Cache holds the Provider objects the engine calls.
	Cache *externaldata.ProviderCache

	fixtures  *suite.FixtureServer
	noFixture *noFixture
	proxy     *proxy
	stop      func() error
}

// Failures returns why the check could not be completed (nil: every answer was known): keys no
// fixture answers, providers the fixtures have no section for, provider calls that failed,
// system errors and transient per-key errors.
func (p *Providers) Failures() error {
	if p.fixtures != nil {
		var out []string
		if err := p.fixtures.EndReview(); err != nil {
			out = append(out, err.Error())
		}
		out = append(out, p.noFixture.failures()...)
		if len(out) > 0 {
			return &FailureError{Failures: out}
		}
		return nil
	}
	if p.proxy != nil {
		return p.proxy.failures()
	}
	return nil
}

// Requests counts the external-data requests answered.
func (p *Providers) Requests() int {
	switch {
	case p.fixtures != nil:
		return p.fixtures.Requests()
	case p.proxy != nil:
		p.proxy.mu.Lock()
		defer p.proxy.mu.Unlock()
		return p.proxy.requests
	}
	return 0
}

// Undecided returns fs with the findings that come from a provider without fixtures turned
// into ActionIncomplete results (Run calls it).
func (p *Providers) Undecided(fs []Finding) []Finding {
	if p.noFixture == nil {
		return fs
	}
	return p.noFixture.undecided(fs)
}

// Record writes the answers seen as a ProviderFixtures file in dir (live providers only).
func (p *Providers) Record(dir string) (string, error) {
	if p.proxy == nil {
		return "", errors.New("--record needs a live provider (--provider-config or --provider-url)")
	}
	return p.proxy.record(dir)
}

// Close stops everything the providers started.
func (p *Providers) Close() error {
	var errs []error
	if p.fixtures != nil {
		p.fixtures.Close()
	}
	if p.noFixture != nil {
		errs = append(errs, p.noFixture.shutdown())
	}
	if p.proxy != nil {
		errs = append(errs, p.proxy.close())
	}
	if p.stop != nil {
		errs = append(errs, p.stop())
	}
	return errors.Join(errs...)
}

// FixtureProviders answers from the ProviderFixtures files in dir, over HTTPS, as
// `imagetrust verify` does. A provider of ProviderNames the files have no section for answers
// every call with a system error naming it and dir: the check is incomplete, and the findings
// it caused are ActionIncomplete results (see Undecided).
func FixtureProviders(dir string) (*Providers, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("--provider-fixtures: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("--provider-fixtures %s: not a directory", dir)
	}
	fs, err := suite.ServeFixtures(os.DirFS(dir), ".")
	if err != nil {
		return nil, fmt.Errorf("--provider-fixtures %s: %w", dir, err)
	}
	if len(fs.Files()) == 0 {
		fs.Close()
		return nil, fmt.Errorf("--provider-fixtures %s: no ProviderFixtures files (kind: %s)", dir, suite.FixturesKind)
	}
	nf, err := newNoFixture(dir)
	if err != nil {
		fs.Close()
		return nil, err
	}
	p := &Providers{Cache: externaldata.NewCache(), fixtures: fs, noFixture: nf}
	have := map[string]bool{}
	upsert := func(pr *unversioned.Provider) error {
		have[pr.Name] = true
		if err := p.Cache.Upsert(pr); err != nil {
			return fmt.Errorf("provider %s: %w", pr.Name, err)
		}
		return nil
	}
	for _, pr := range fs.Providers() {
		if err := upsert(pr); err != nil {
			_ = p.Close()
			return nil, err
		}
	}
	for _, name := range ProviderNames {
		if have[name] {
			continue
		}
		if err := upsert(nf.provider(name, 10*time.Second)); err != nil {
			_ = p.Close()
			return nil, err
		}
	}
	fs.BeginReview()
	return p, nil
}

// ClientTLS names the files of a client certificate for a provider that requires mTLS (as
// Gatekeeper's), and the CA that signed the provider's serving certificate.
type ClientTLS struct {
	CertFile, KeyFile, CAFile string
}

func (c ClientTLS) config() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13}
	if c.CAFile != "" {
		b, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--provider-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("--provider-ca %s: no PEM certificate", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("--provider-cert and --provider-key go together")
	}
	if c.CertFile != "" {
		kp, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("--provider-cert/--provider-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{kp}
	}
	return cfg, nil
}

// URLProviders answers from a running provider at base (https://host:port), calling
// base/v1/<endpoint> with the client certificate, as Gatekeeper does.
func URLProviders(base string, ct ClientTLS, timeout time.Duration) (*Providers, error) {
	if !strings.HasPrefix(base, "https://") {
		return nil, fmt.Errorf("--provider-url %q: must be https:// (the provider serves only TLS)", base)
	}
	cfg, err := ct.config()
	if err != nil {
		return nil, err
	}
	return liveProviders(strings.TrimSuffix(base, "/"), cfg, timeout, nil)
}

func liveProviders(base string, cfg *tls.Config, timeout time.Duration, stop func() error) (*Providers, error) {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	px, err := newProxy(base, cfg, timeout)
	if err != nil {
		return nil, err
	}
	pc := externaldata.NewCache()
	for _, n := range ProviderNames {
		if err := pc.Upsert(px.provider(n, timeout)); err != nil {
			_ = px.close()
			return nil, fmt.Errorf("provider %s: %w", n, err)
		}
	}
	return &Providers{Cache: pc, proxy: px, stop: stop}, nil
}

// proxy stands between the frameworks client and a live provider: the engine calls it over
// TLS 1.3 with its caBundle (as it would call the provider), and it forwards each request
// unchanged over mTLS, keeping the answers (for --record) and every failure (exit code 3).
type proxy struct {
	*loopbackServer
	upstream string
	client   *http.Client

	mu       sync.Mutex
	requests int
	answers  map[string]map[string]externaldata.Item // provider → key → item
	failed   []string
}

func newProxy(upstream string, clientTLS *tls.Config, timeout time.Duration) (*proxy, error) {
	p := &proxy{
		upstream: upstream,
		client: &http.Client{Timeout: timeout, Transport: &http.Transport{
			TLSClientConfig: clientTLS, MaxIdleConnsPerHost: 64, ForceAttemptHTTP2: false,
		}},
		answers: map[string]map[string]externaldata.Item{},
	}
	ls, err := serveProviders(p.serve)
	if err != nil {
		return nil, err
	}
	p.loopbackServer = ls
	return p, nil
}

func (p *proxy) close() error {
	p.client.CloseIdleConnections()
	return p.shutdown()
}

// maxBody bounds a request or response body.
const maxBody = 32 << 20

func (p *proxy) serve(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if !slices.Contains(ProviderNames, name) {
		p.fail(w, name, "unknown provider")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		p.fail(w, name, "reading the request: "+err.Error())
		return
	}
	var req externaldata.ProviderRequest
	if err := json.Unmarshal(body, &req); err != nil {
		p.fail(w, name, "decoding the request: "+err.Error())
		return
	}
	endpoint := p.upstream + ProviderPath(name)
	// The upstream is the provider the user named; the path is one of ProviderNames.
	up, err := http.NewRequestWithContext(r.Context(), http.MethodPost, endpoint, bytes.NewReader(body)) //nolint:gosec // see above
	if err != nil {
		p.fail(w, name, err.Error())
		return
	}
	up.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(up) //nolint:gosec // the provider the user named
	if err != nil {
		p.fail(w, name, fmt.Sprintf("calling %s: %v", endpoint, err))
		return
	}
	defer func() { _ = resp.Body.Close() }()
	rb, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		p.fail(w, name, fmt.Sprintf("reading the answer of %s: %v", endpoint, err))
		return
	}
	var pr externaldata.ProviderResponse
	if err := json.Unmarshal(rb, &pr); err != nil {
		p.fail(w, name, fmt.Sprintf("%s answered HTTP %d that is not a ProviderResponse: %v", endpoint, resp.StatusCode, err))
		return
	}
	p.keep(name, req.Request.Keys, resp.StatusCode, &pr)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(rb)
}

func (p *proxy) keep(name string, keys []string, status int, pr *externaldata.ProviderResponse) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.requests++
	if status != http.StatusOK {
		p.failed = append(p.failed, fmt.Sprintf("provider %s answered HTTP %d", name, status))
	}
	if pr.Response.SystemError != "" {
		p.failed = append(p.failed, fmt.Sprintf("provider %s: system error: %s", name, pr.Response.SystemError))
		return
	}
	m := p.answers[name]
	if m == nil {
		m = map[string]externaldata.Item{}
		p.answers[name] = m
	}
	seen := map[string]bool{}
	for _, it := range pr.Response.Items {
		seen[it.Key] = true
		m[it.Key] = it
		if it.Error != "" {
			if c, ok := wire.ClassOf(it.Error); ok && c.Transient() {
				p.failed = append(p.failed, fmt.Sprintf("provider %s key %q: %s", name, it.Key, it.Error))
			}
		}
	}
	for _, k := range keys {
		if !seen[k] {
			p.failed = append(p.failed, fmt.Sprintf("provider %s gave no answer for key %q", name, k))
		}
	}
}

func (p *proxy) fail(w http.ResponseWriter, name, msg string) {
	p.mu.Lock()
	p.requests++
	p.failed = append(p.failed, fmt.Sprintf("provider %s: %s", name, msg))
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadGateway)
	_ = json.NewEncoder(w).Encode(externaldata.ProviderResponse{
		APIVersion: "externaldata.gatekeeper.sh/v1beta1",
		Kind:       externaldata.ProviderResponseKind,
		Response:   externaldata.Response{SystemError: "imagetrust check: " + msg},
	})
}

// FailureError lists what made a check incomplete.
type FailureError struct {
	Failures []string
}

func (e *FailureError) Error() string {
	const show = 10
	list := e.Failures
	more := ""
	if len(list) > show {
		more = fmt.Sprintf("; and %d more", len(list)-show)
		list = list[:show]
	}
	return fmt.Sprintf("%d provider failure(s): %s%s", len(e.Failures), strings.Join(list, "; "), more)
}

// Is makes every FailureError match ErrIncomplete.
func (e *FailureError) Is(target error) bool { return target == ErrIncomplete }

func (p *proxy) failures() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.failed) == 0 {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, f := range p.failed {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	sort.Strings(out)
	return &FailureError{Failures: out}
}
