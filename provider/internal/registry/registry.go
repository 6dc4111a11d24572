// Package registry is the provider's only way to a container registry. It contacts only the
// registries (and their mirrors) named in the configuration, resolves tags with HEAD (never GET:
// registries count manifest GETs as pulls), fetches content by digest from mirrors in order,
// authenticates per registry from a docker config file and Kubernetes pull secrets, limits
// concurrency per registry, shares one tuned HTTP transport, and returns typed errors:
// NotAllowedError, NotFoundError, DeniedError (final answers) and UnavailableError (transient).
package registry

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	kauth "github.com/google/go-containerregistry/pkg/authn/kubernetes"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
)

// Options configures a Client. Registries is required.
type Options struct {
	Registries []config.Registry
	Auth       config.Auth
	// Kubernetes is the client used when Auth.Kubernetes is set (required then).
	Kubernetes kubernetes.Interface
	// PerRegistryConcurrency caps in-flight operations per contacted host (optional; default
	// config.DefaultPerRegistryConcurrency).
	PerRegistryConcurrency int
	// MaxReferrersBytes caps one referrers list, the referrers API's answer or its fallback tag
	// (optional; default config.DefaultMaxReferrersBytes; the provider's is
	// lookup.maxReferrersBytes).
	MaxReferrersBytes int64
	// Timeout bounds one registry operation (optional; default config.DefaultRegistryTimeout).
	Timeout time.Duration
	// TLSConfig for registry connections (optional: extra root CAs; tests use it).
	TLSConfig *tls.Config
	// UserAgent (default "imagetrust-provider").
	UserAgent string
	// Registerer receives the registry metrics (nil: not registered).
	Registerer prometheus.Registerer
	// TransportMaxAge rotates the cached per-repository authenticated transports (default 10m),
	// so credentials are re-resolved.
	TransportMaxAge time.Duration
	// CredentialRefresh is how often pull secrets and the docker config file are re-read
	// (default 5m). A refresh that fails keeps the previous credentials.
	CredentialRefresh time.Duration
	// Keychain is consulted after pull secrets and the docker config file (optional; the CLIs
	// pass authn.DefaultKeychain so docker credential helpers and credsStore work).
	Keychain authn.Keychain
}

// Client is safe for concurrent use.
type Client struct {
	regs      map[string]config.Registry // by lower-case host
	policy    *hostPolicy
	transport http.RoundTripper // guard → ping cache → counting → shared http.Transport
	base      *http.Transport
	keychain  authn.Keychain
	timeout   time.Duration
	ua        string
	maxAge    time.Duration
	// maxReferrers caps a referrers list (Options.MaxReferrersBytes).
	maxReferrers int64

	lim  sync.Map // lower-case host → chan struct{}, its concurrency limit
	limN int

	opDur *prometheus.HistogramVec
	// opChildren keeps opDur's observers by label, operation and outcome.
	opChildren metricChildren[prometheus.Observer]
	resps      *prometheus.CounterVec

	referrers *referrersMemo
	// lists remembers registries whose tags/list cannot answer DigestTags.
	lists *hostMemo

	// tgMu guards tg, the targets of recently used repositories (see targets).
	tgMu sync.Mutex
	tg   map[tgKey][]Target

	rtMu    sync.Mutex
	rts     map[name.Repository]*repoRT // authenticated transport per repository (request)
	rtGroup singleflight.Group
}

// maxRepoTransports bounds the cached per-repository transports.
const maxRepoTransports = 4096

// New validates the options, reads the credentials and returns a Client.
func New(ctx context.Context, o Options) (*Client, error) {
	if len(o.Registries) == 0 {
		return nil, errors.New("registry: no registries configured: nothing could be contacted")
	}
	if o.PerRegistryConcurrency <= 0 {
		o.PerRegistryConcurrency = config.DefaultPerRegistryConcurrency
	}
	if o.Timeout <= 0 {
		o.Timeout = config.DefaultRegistryTimeout
	}
	if o.MaxReferrersBytes <= 0 {
		o.MaxReferrersBytes = config.DefaultMaxReferrersBytes
	}
	if o.UserAgent == "" {
		o.UserAgent = "imagetrust-provider"
	}
	if o.TransportMaxAge <= 0 {
		o.TransportMaxAge = 10 * time.Minute
	}
	c := &Client{
		regs:         map[string]config.Registry{},
		policy:       newHostPolicy(),
		timeout:      o.Timeout,
		ua:           o.UserAgent,
		maxAge:       o.TransportMaxAge,
		maxReferrers: o.MaxReferrersBytes,
		limN:         o.PerRegistryConcurrency,
		rts:          map[name.Repository]*repoRT{},
		tg:           map[tgKey][]Target{},
	}
	for i, r := range o.Registries {
		h := strings.ToLower(r.Host)
		if h == "" {
			return nil, fmt.Errorf("registry: registries[%d].host is empty", i)
		}
		if _, err := name.NewRegistry(h, name.StrictValidation); err != nil {
			return nil, fmt.Errorf("registry: registries[%d].host %q: %w", i, r.Host, err)
		}
		if _, dup := c.regs[h]; dup {
			return nil, fmt.Errorf("registry: registries[%d].host %q is listed twice", i, r.Host)
		}
		c.regs[h] = r
		c.policy.add(h, r.Insecure, h)
		for j, m := range r.Mirrors {
			if _, err := name.NewRegistry(strings.ToLower(m.Host), name.StrictValidation); err != nil {
				return nil, fmt.Errorf("registry: registries[%d].mirrors[%d].host %q: %w", i, j, m.Host, err)
			}
			c.policy.add(m.Host, m.Insecure, strings.ToLower(m.Host))
		}
	}

	kc, err := keychain(ctx, o)
	if err != nil {
		return nil, err
	}
	if o.CredentialRefresh <= 0 {
		o.CredentialRefresh = 5 * time.Minute
	}
	rk := &refreshingKeychain{every: o.CredentialRefresh, build: func(ctx context.Context) (authn.Keychain, error) { return keychain(ctx, o) }}
	rk.cur.Store(&kcGen{kc: kc, at: time.Now()})
	c.keychain = rk

	c.opDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "imagetrust_registry_operation_duration_seconds",
		Help:    "Registry operations (head, manifest, blob, referrers, tags, get) by registry and outcome.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"registry", "operation", "outcome"})
	c.resps = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "imagetrust_registry_responses_total",
		Help: "HTTP responses from registries by registry, method and status code (\"error\": no response).",
	}, []string{"registry", "method", "code"})
	if o.Registerer != nil {
		for _, col := range []prometheus.Collector{c.opDur, c.resps} {
			if err := o.Registerer.Register(col); err != nil {
				return nil, fmt.Errorf("registry: registering metrics: %w", err)
			}
		}
	}

	c.base = newBaseTransport(c.policy, o.PerRegistryConcurrency, o.Timeout, o.TLSConfig)
	c.referrers = newReferrersMemo()
	c.lists = newHostMemo(listTTL, maxListMemo)
	c.transport = newGuard(c.policy, newPingCache(c.policy, &counting{p: c.policy, next: c.base, resps: c.resps, referrers: c.referrers}))
	return c, nil
}

// keychain builds the credentials: pull secrets from Kubernetes first, then the docker config
// file; anonymous for everything else. The docker config file is read with the same keyring
// code as pull secrets (it has the same "auths" format), so host matching is identical.
func keychain(ctx context.Context, o Options) (authn.Keychain, error) {
	var kcs []authn.Keychain
	if k := o.Auth.Kubernetes; k != nil {
		if o.Kubernetes == nil {
			return nil, errors.New("registry: auth.kubernetes is set but no Kubernetes client was given")
		}
		sa := k.ServiceAccountName
		if sa == "" {
			sa = kauth.NoServiceAccount
		}
		kc, err := kauth.New(ctx, o.Kubernetes, kauth.Options{Namespace: k.Namespace, ServiceAccountName: sa, ImagePullSecrets: k.ImagePullSecrets})
		if err != nil {
			return nil, fmt.Errorf("registry: auth.kubernetes: reading pull secrets in namespace %q: %w", k.Namespace, err)
		}
		kcs = append(kcs, kc)
	}
	if f := o.Auth.DockerConfigFile; f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("registry: auth.dockerConfigFile: %w", err)
		}
		sec := corev1.Secret{Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: b}}
		kc, err := kauth.NewFromPullSecrets(ctx, []corev1.Secret{sec})
		if err != nil {
			return nil, fmt.Errorf("registry: auth.dockerConfigFile %s: %w", f, err)
		}
		kcs = append(kcs, kc)
	}
	if o.Keychain != nil {
		kcs = append(kcs, o.Keychain)
	}
	if len(kcs) == 0 {
		return authn.NewMultiKeychain(), nil // anonymous
	}
	return authn.NewMultiKeychain(kcs...), nil
}

// refreshingKeychain re-reads the credentials in the background once they are older than every;
// lookups never wait for it, and a failed refresh keeps the previous credentials.
type refreshingKeychain struct {
	every   time.Duration
	build   func(context.Context) (authn.Keychain, error)
	cur     atomic.Pointer[kcGen]
	running atomic.Bool
}

type kcGen struct {
	kc authn.Keychain
	at time.Time
}

func (r *refreshingKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	g := r.cur.Load()
	if time.Since(g.at) > r.every && r.running.CompareAndSwap(false, true) {
		go func() {
			defer r.running.Store(false)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if kc, err := r.build(ctx); err == nil {
				r.cur.Store(&kcGen{kc: kc, at: time.Now()})
			} else {
				r.cur.Store(&kcGen{kc: g.kc, at: time.Now()}) // retry after another period
			}
		}()
	}
	return g.kc.Resolve(res)
}

// Allowed returns the configuration of the registry ref names, or a NotAllowedError.
func (c *Client) Allowed(ref imageref.Ref) (config.Registry, error) {
	r, ok := c.regs[ref.Host()]
	if !ok {
		return config.Registry{}, &NotAllowedError{Host: ref.Domain, Reason: "not in the provider's registries"}
	}
	return r, nil
}

// Target is one place a repository can be read from: the origin or a mirror.
type Target struct {
	Repo   name.Repository
	Mirror bool
}

// ContentTargets are the places to read content by digest from: the mirrors in order, then the
// origin.
func (c *Client) ContentTargets(ref imageref.Ref) ([]Target, error) { return c.targets(ref, false) }

// TagTargets are the places to resolve a tag at: mirrors trusted for tags in order, then the
// origin.
func (c *Client) TagTargets(ref imageref.Ref) ([]Target, error) { return c.targets(ref, true) }

// tgKey names the targets of one repository path on one configured host.
type tgKey struct {
	host, path string
	tags       bool
}

// maxTargets bounds the memo of targets; when full it is emptied (forgetting costs one parse
// of the repository name per target).
const maxTargets = 4096

// targets returns the places to read ref's repository from. They depend only on the host, the
// path and the configuration, which never changes, so they are parsed once per repository and
// kept: a verification reads one repository three to five times, and parsing its name
// (go-containerregistry's validation) was 3 % of the CPU of a cold verification. Callers only
// read the returned slice.
func (c *Client) targets(ref imageref.Ref, tags bool) ([]Target, error) {
	r, err := c.Allowed(ref)
	if err != nil {
		return nil, err
	}
	k := tgKey{host: ref.Host(), path: ref.Path, tags: tags}
	c.tgMu.Lock()
	out, ok := c.tg[k]
	c.tgMu.Unlock()
	if ok {
		return out, nil
	}
	if out, err = c.parseTargets(ref, r, tags); err != nil {
		return nil, err
	}
	c.tgMu.Lock()
	if len(c.tg) >= maxTargets {
		clear(c.tg)
	}
	c.tg[k] = out
	c.tgMu.Unlock()
	return out, nil
}

func (c *Client) parseTargets(ref imageref.Ref, r config.Registry, tags bool) ([]Target, error) {
	out := make([]Target, 0, len(r.Mirrors)+1)
	for _, m := range r.Mirrors {
		if tags && !m.TrustTags {
			continue
		}
		repo, err := ref.GGCRRepository(strings.ToLower(m.Host), m.Insecure)
		if err != nil {
			return nil, err
		}
		out = append(out, Target{Repo: repo, Mirror: true})
	}
	repo, err := ref.GGCRRepository(ref.Host(), r.Insecure)
	if err != nil {
		return nil, err
	}
	return append(out, Target{Repo: repo}), nil
}

// Remote returns the go-containerregistry options for one operation on repo (a repository from
// ContentTargets or TagTargets; use them inside Do): repo's authenticated transport (see
// repoTransport), which go-containerregistry then uses as it is — no retries (callers have
// deadlines and caches), no second authentication — and ctx.
func (c *Client) Remote(ctx context.Context, repo name.Repository) ([]remote.Option, error) {
	rt, err := c.repoTransport(ctx, repo)
	if err != nil {
		return nil, err
	}
	return []remote.Option{remote.WithTransport(rt), remote.WithContext(ctx)}, nil
}

// Do runs op against the registry host of repo under the per-registry concurrency limit and
// the operation timeout, records its latency and classifies its error. ref names the image in
// errors.
func (c *Client) Do(ctx context.Context, repo name.Repository, operation, ref string, op func(ctx context.Context) error) error {
	host := strings.ToLower(repo.RegistryStr())
	label := c.policy.label[host]
	if label == "" {
		label = host
	}
	sem := c.limiter(host)
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return &UnavailableError{Ref: ref, Err: fmt.Errorf("waiting for a connection slot to %s: %w", label, context.Cause(ctx))}
	}
	defer func() { <-sem }()
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	err := Classify(ref, op(ctx))
	outcome := "ok"
	if err != nil {
		outcome = outcomeOf(err)
	}
	c.opChildren.get(c.opDur, label, operation, outcome).Observe(time.Since(start).Seconds())
	return err
}

// outcomeOf is the outcome label of a failed operation. (Its own function: the targets of
// errors.As escape, and declared in Do they were allocated for every operation, failed or not.)
func outcomeOf(err error) string {
	var nf *NotFoundError
	var de *DeniedError
	var na *NotAllowedError
	switch {
	case errors.As(err, &nf):
		return "not_found"
	case errors.As(err, &de):
		return "denied"
	case errors.As(err, &na):
		return "not_allowed"
	}
	return "unavailable"
}

// limiter is the per-registry concurrency limit of host, made on first use.
func (c *Client) limiter(host string) chan struct{} {
	if l, ok := c.lim.Load(host); ok {
		return l.(chan struct{})
	}
	l, _ := c.lim.LoadOrStore(host, make(chan struct{}, c.limN))
	return l.(chan struct{})
}

// CloseIdleConnections closes idle connections of the shared transport.
func (c *Client) CloseIdleConnections() { c.base.CloseIdleConnections() }
