// Command imagetrust-bench is the project's load generator. It starts an in-memory registry
// (go-containerregistry registry.New) on loopback holding thousands of images, starts the real
// provider binary against it with a generated configuration and test PKI (mTLS), and acts as
// Gatekeeper: an mTLS client posting ProviderRequests to /v1/resolve and /v1/mutate.
//
// Scenarios: both endpoints, cold (never seen keys) and warm (the same keys again), batch
// 1/10/100, concurrency 1/8; a growth run feeding 1k → 50k distinct images into a fresh
// provider; and a registry outage (the registry stops answering) in which every batch must
// return before its deadline. One JSON line per scenario on stdout:
// endpoint, phase, batch, concurrency, keys, keys_per_s, p50_ms, p99_ms, errors, rss_mb
// (the provider process's resident memory after the scenario; heap_inuse_mb from its /metrics;
// provider_cpu_s and bench_cpu_s: CPU seconds the provider and this process, registry and
// client, used during the scenario; for /v1/verify, reads and unsigned: answers not signed).
//
// The verify group (/v1/verify) pushes -verify-images more images over -verify-repos
// repositories, each signed at setup with an ECDSA P-256 key in cosign's tag scheme
// (sha256-<hex>.sig), and configures the provider with that key as its one authority. It runs
// three times, each time on a fresh provider: with the authority's defaults (formats cosign and
// bundle, attestations read: "reads":"all"), with formats [cosign] and attestations false
// ("reads":"signatures"), and with the defaults through /v1/verify/signatures, the lookup plan
// that reads signatures only ("reads":"plan-signatures", endpoint "verify/signatures"); then a
// growth run to -verify-growth distinct images. The test registry
// has no referrers API (go-containerregistry's, when enabled, answers it by scanning every
// manifest of the repository, which would make the registry the bottleneck), as a registry
// without OCI 1.1 support: its first referrers read costs the provider the API's 404, later ones
// the fallback tag, or nothing when the listing of the digest's tags ("reads":"all") shows none. -verify-repos 0 puts every image in a repository of its own: each image then
// also costs the provider a new repository (its /v2/ ping; for a plain-HTTP registry
// go-containerregistry first tries HTTPS, a TLS handshake that fails).
//
// The scan group (/v1/scan) pushes -scan-images more images over -verify-repos repositories,
// each with one cosign vuln attestation (a ~20 KB Trivy report) signed by a fresh ECDSA key,
// configures that key as the provider's one scanner authority and measures cold and warm
// batches of 100 from 1 and 8 clients, then a growth run to -scan-growth distinct images.
//
// The latency group makes the registry wait -latency (20 ms) before every request and measures
// cold batch-1 and batch-100 p50/p99 of resolve, mutate and verify against Gatekeeper's 1 s / 3 s
// timeouts, then cold mutate batches of 100 from 8 clients at each -latency-concurrency value of
// lookup.perRegistryConcurrency. The matrix and latency groups also run the naive mutation
// provider (naive.go: one HEAD per key, serially per request) as the baseline of /v1/mutate.
//
// The client is set up as Gatekeeper's external-data client (gatekeeper.go): HTTP/1.1 with
// keep-alive, TLS 1.3, a client certificate, one client per Provider with its timeout. Every
// line gives the provider's CPU per key in µs and in ECDSA P-256 verifications
// (cpu_per_key_us, cpu_per_key_ecdsa), the HTTP version answered (proto) and the keys answered
// without an error per second (answered_keys_per_s).
//
// With -pin (the default) the provider runs on a CPU of its own (taskset) and this process on
// the others, as in production, where the registry and Gatekeeper do not share the provider's
// CPU; every line says the placement in "pinned". p50_ms and p99_ms run from sending the
// request to reading the last byte of the answer; p50_decoded_ms adds the client's decoding of
// the whole answer (Gatekeeper's work). registry_requests_per_key and registry_conns count what
// the registry served and accepted during the scenario.
package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"
	cempty "github.com/sigstore/cosign/v2/pkg/oci/empty"
	cmutate "github.com/sigstore/cosign/v2/pkg/oci/mutate"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
	"sigs.k8s.io/yaml"

	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/pki"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
	"github.com/imagetrust/imagetrust/provider/internal/scan/scantest"
	"github.com/imagetrust/imagetrust/provider/internal/signing"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	run := run
	if len(os.Args) > 1 && os.Args[1] == soakHostileCommand {
		run = func(_ context.Context, args []string, _ func(string) string, stdout, _ io.Writer) error {
			return serveSoakHostile(args[2:], os.Stdin, stdout)
		}
	}
	if len(os.Args) > 1 && os.Args[1] == naiveCommand {
		run = func(ctx context.Context, args []string, _ func(string) string, _, stderr io.Writer) error {
			return runNaive(ctx, args[2:], stderr)
		}
	}
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "imagetrust-bench:", err)
		}
		os.Exit(1)
	}
}

type flags struct {
	provider   string
	images     int
	repos      int
	coldKeys   int
	warmRounds int
	growth     int
	outage     time.Duration
	verifyN    int
	verifyGrow int
	verifyRepo int
	scanN      int
	scanGrow   int
	scanKeys   string
	scanQuery  string
	cacheBytes int64
	cacheTTL   time.Duration
	latency    time.Duration
	latencyN   int
	latencyC   []int
	matrixEPs  []string
	matrixPRC  int
	soak       soakPhases
	pin        bool
	only       string
	workDir    string
	env        []string
	args       []string
}

func parseFlags(args []string, stderr io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.provider, "provider", "", "path to the imagetrust-provider binary (required; `make bench` builds it)")
	fs.IntVar(&f.images, "images", 50000, "distinct images in the registry (≥ growth)")
	fs.IntVar(&f.repos, "repos", 200, "repositories the images are spread over")
	fs.IntVar(&f.coldKeys, "cold-keys", 2000, "distinct keys per cold scenario")
	fs.IntVar(&f.warmRounds, "warm-rounds", 3, "times the keys of a cold scenario are sent again in its warm scenario")
	fs.IntVar(&f.growth, "growth", 50000, "distinct images of the growth run (0: skip)")
	fs.DurationVar(&f.outage, "outage", 3*time.Second, "how long the registry-outage scenario sends batches (0: skip)")
	fs.IntVar(&f.verifyN, "verify-images", 50000, "signed images for the verify group (0: skip it)")
	fs.IntVar(&f.verifyGrow, "verify-growth", 50000, "distinct images of the verify growth run (≤ verify-images; 0: skip)")
	fs.IntVar(&f.verifyRepo, "verify-repos", 200, "repositories the verify group's images are spread over (0: one repository per image, so every image costs the provider a new repository: /v2/ ping, token)")
	fs.IntVar(&f.scanN, "scan-images", 50000, "images with a signed ~20 KB Trivy vuln attestation for the scan group (0: skip it)")
	fs.IntVar(&f.scanGrow, "scan-growth", 50000, "distinct images of the scan growth run (≤ scan-images; 0: skip)")
	fs.StringVar(&f.scanQuery, "scan-query", scantest.BankQuery, "scan group: the query each key carries (\"<image>#<query>\"), the findings the constraint asks for; the default is what the seed constraint constraints/security/bank.yaml sends; empty: whole answers, the only keys a provider before queries takes")
	fs.StringVar(&f.scanKeys, "scan-keys", "tag", "scan group: the keys sent, tag (repo:tag: the provider resolves each with a HEAD first) or digest (repo@sha256:…, as Pods whose images a mutator pinned send)")
	fs.Int64Var(&f.cacheBytes, "cache-max-bytes", 0, "cache.maxBytes of every provider started, the bound of each endpoint's answer cache (0: the provider's default, 32 MiB), e.g. 268435456 to keep all 50,000 scan answers of the scan growth run")
	fs.DurationVar(&f.cacheTTL, "cache-ttl", 0, "cache.ttl of every provider started (0: the provider's default, 5m); longer than a growth run keeps its first answers fresh to the end")
	fs.DurationVar(&f.latency, "latency", 20*time.Millisecond, "latency group: time the registry waits before serving each request")
	fs.IntVar(&f.latencyN, "latency-keys", 300, "latency group: keys of a cold batch-100 scenario (batch 1: a sixth; the concurrency runs: 8 times as many)")
	f.latencyC = []int{4, 16, 32, 64, 128}
	fs.Func("latency-concurrency", "latency group: comma list of lookup.perRegistryConcurrency values to compare (default 4,16,32,64,128)", func(v string) error {
		f.latencyC = nil
		for _, c := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(c))
			if err != nil || n <= 0 {
				return fmt.Errorf("want positive integers, got %q", c)
			}
			f.latencyC = append(f.latencyC, n)
		}
		return nil
	})
	f.matrixEPs = []string{"resolve", "mutate"}
	fs.Func("matrix-endpoints", "matrix group: comma list of the endpoints measured, resolve and/or mutate (default resolve,mutate; the naive provider runs whenever mutate is in it)", func(v string) error {
		f.matrixEPs = nil
		for _, ep := range strings.Split(v, ",") {
			ep = strings.TrimSpace(ep)
			if ep != "resolve" && ep != "mutate" {
				return fmt.Errorf("want resolve or mutate, got %q", ep)
			}
			f.matrixEPs = append(f.matrixEPs, ep)
		}
		return nil
	})
	fs.IntVar(&f.matrixPRC, "matrix-concurrency", 0, "matrix group: lookup.perRegistryConcurrency of the provider (0: its default; the pool's workers are raised to 4× it when that is more than the default)")
	f.soak.flags(fs)
	fs.BoolVar(&f.pin, "pin", true, "run the provider on a CPU of its own (the last one, via taskset) and this process — load generator and registry — on the others; false: all share every CPU")
	fs.StringVar(&f.only, "only", "", "run only scenarios whose group is in this comma list: matrix, growth, outage, verify, scan, latency, soak")
	fs.StringVar(&f.workDir, "workdir", "", "directory for the generated config and PKI (default: a temporary directory)")
	fs.Func("provider-env", "NAME=value added to the provider's environment (repeatable), e.g. GOMEMLIMIT=80MiB", func(v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("want NAME=value, got %q", v)
		}
		f.env = append(f.env, v)
		return nil
	})
	fs.Func("provider-arg", "argument added to the provider's command line (repeatable); {run} is replaced by the provider's start number, e.g. -provider-arg=-cpuprofile=/tmp/cpu-{run}.pprof", func(v string) error {
		f.args = append(f.args, v)
		return nil
	})
	if err := fs.Parse(args[1:]); err != nil {
		return f, err
	}
	if f.cacheBytes < 0 || f.cacheTTL < 0 {
		return f, fmt.Errorf("-cache-max-bytes %d and -cache-ttl %s must not be negative", f.cacheBytes, f.cacheTTL)
	}
	if f.provider == "" {
		return f, errors.New("-provider is required (go build -o /tmp/imagetrust-provider ./provider/cmd/imagetrust-provider)")
	}
	need := 0
	if f.want("matrix") {
		need = 6 * len(f.matrixEPs) * f.coldKeys
	}
	if f.want("growth") {
		need = max(need, f.growth)
	}
	if f.want("latency") {
		need = max(need, 8*f.latencyN)
	}
	if f.images < need {
		return f, fmt.Errorf("-images %d is too small: the scenarios need %d distinct images", f.images, need)
	}
	if f.want("verify") && f.verifyN > 0 {
		if vneed := f.coldKeys/4 + 2*f.coldKeys; f.verifyN < vneed {
			return f, fmt.Errorf("-verify-images %d is too small: the verify scenarios need %d", f.verifyN, vneed)
		}
		if f.verifyGrow > f.verifyN {
			return f, fmt.Errorf("-verify-growth %d is larger than -verify-images %d", f.verifyGrow, f.verifyN)
		}
	}
	if f.want("scan") && f.scanN > 0 {
		if sneed := 2 * f.coldKeys; f.scanN < sneed {
			return f, fmt.Errorf("-scan-images %d is too small: the scan scenarios need %d", f.scanN, sneed)
		}
		if f.scanKeys != "tag" && f.scanKeys != "digest" {
			return f, fmt.Errorf("-scan-keys %q: want tag or digest", f.scanKeys)
		}
		if f.scanGrow > f.scanN {
			return f, fmt.Errorf("-scan-growth %d is larger than -scan-images %d", f.scanGrow, f.scanN)
		}
	}
	return f, nil
}

func (f flags) want(group string) bool {
	return f.only == "" || slices.Contains(strings.Split(f.only, ","), group)
}

// Line is one scenario's result.
type Line struct {
	Endpoint    string  `json:"endpoint"`
	Phase       string  `json:"phase"`
	Batch       int     `json:"batch"`
	Concurrency int     `json:"concurrency"`
	Keys        int     `json:"keys"`
	KeysPerS    float64 `json:"keys_per_s"`
	P50ms       float64 `json:"p50_ms"`
	P99ms       float64 `json:"p99_ms"`
	Errors      int     `json:"errors"`
	Unsigned    *int    `json:"unsigned,omitempty"`
	Reads       string  `json:"reads,omitempty"`
	RSSMB       float64 `json:"rss_mb"`
	HeapMB      float64 `json:"heap_inuse_mb,omitempty"`
	Distinct    int     `json:"distinct_cached,omitempty"`
	// The endpoint's answer cache after the scenario (imagetrust_cache_entries, _bytes and
	// _evictions_total of the provider's metrics): what it holds, and whether it evicted.
	CacheEntries   int     `json:"cache_entries,omitempty"`
	CacheMB        float64 `json:"cache_mb,omitempty"`
	CacheEvictions *int    `json:"cache_evictions,omitempty"`
	MaxMs          float64 `json:"max_ms,omitempty"`
	DeadlineMs     float64 `json:"deadline_ms,omitempty"`
	GatekeeperMs   float64 `json:"gatekeeper_timeout_ms,omitempty"`
	OverDeadline   *int    `json:"over_deadline,omitempty"`
	// CPU seconds used during the scenario by the provider process and by this process (the
	// in-memory registry and the client): on a shared machine, where the time went.
	// Pinned says how the provider and this process were placed on CPUs (see -pin).
	Pinned      string  `json:"pinned"`
	ProviderCPU float64 `json:"provider_cpu_s,omitempty"`
	BenchCPU    float64 `json:"bench_cpu_s,omitempty"`
	// P50Decoded is p50 with the client's decoding of the whole answer (as Gatekeeper does)
	// included; p50_ms and p99_ms end when the last byte of the answer is read.
	P50Decoded float64 `json:"p50_decoded_ms,omitempty"`
	// Registry requests per key, and connections the registry accepted, during the scenario.
	RegReqsPerKey float64 `json:"registry_requests_per_key,omitempty"`
	RegConns      int     `json:"registry_conns,omitempty"`
	// ECDSAus is one ECDSA P-256 verification on the provider's CPU just before the scenario
	// (machine speed; see pinning.calibrate).
	ECDSAus float64 `json:"ecdsa_verify_us,omitempty"`
	// CPUPerKeyUS is provider_cpu_s per key in µs; CPUPerKeyECDSA the same in ECDSA P-256
	// verifications (ecdsa_verify_us), the figure that compares across runs and machines.
	CPUPerKeyUS    float64 `json:"cpu_per_key_us,omitempty"`
	CPUPerKeyECDSA float64 `json:"cpu_per_key_ecdsa,omitempty"`
	// Proto is the HTTP version the provider answered with (Gatekeeper's client: HTTP/1.1).
	Proto string `json:"proto,omitempty"`
	// Label names a variant of a scenario (latency and concurrency scenarios, baselines).
	Label string `json:"label,omitempty"`
	// AnsweredPerS is keys answered without an error per second of wall-clock time.
	AnsweredPerS float64 `json:"answered_keys_per_s"`
	// FirstError is the scenario's first failed batch or, failing that, first per-key error.
	FirstError string `json:"first_error,omitempty"`
}

// perKey fills the CPU-per-key fields from ProviderCPU, Keys and ECDSAus.
func (l *Line) perKey() {
	if l.Keys == 0 || l.ProviderCPU == 0 {
		return
	}
	us := l.ProviderCPU * 1e6 / float64(l.Keys)
	l.CPUPerKeyUS = round(us)
	if l.ECDSAus > 0 {
		l.CPUPerKeyECDSA = round(us / l.ECDSAus)
	}
}

func run(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	f, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", a...) }

	reg := registrytest.New()
	defer reg.Close()
	var keys []string
	if f.want("matrix") || f.want("growth") || f.want("outage") || f.want("latency") {
		logf("registry on %s; pushing %d images over %d repositories", reg.Host, f.images, f.repos)
		start := time.Now()
		if keys, err = pushImages(ctx, reg.Host, f.images, f.repos); err != nil {
			return err
		}
		logf("pushed %d images in %s", len(keys), time.Since(start).Round(time.Millisecond))
	}

	dir := f.workDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "imagetrust-bench-"); err != nil {
			return err
		}
		defer func() { _ = os.RemoveAll(dir) }() // best effort: a temporary directory
	}
	env, err := newEnv(dir, reg, f.env, f.args)
	if err != nil {
		return err
	}
	env.pinWanted, env.logf = f.pin, logf
	env.cache = config.Cache{MaxBytes: f.cacheBytes, TTL: config.Duration(f.cacheTTL)}
	enc := json.NewEncoder(stdout)
	emit := func(l Line) error { l.Pinned = env.pin.String(); return enc.Encode(l) }

	if f.want("matrix") {
		if c := f.matrixPRC; c > 0 {
			env.lookup = config.Lookup{PerRegistryConcurrency: c, Workers: max(config.DefaultWorkers, 4*c)}
		}
		p, err := env.start(ctx, f.provider, stderr, nil)
		env.lookup = config.Lookup{}
		if err != nil {
			return err
		}
		var shapes []shape
		for _, b := range []int{1, 10, 100} {
			for _, c := range []int{1, 8} {
				n := f.coldKeys
				if b == 1 && c == 1 {
					n = f.coldKeys / 4 // one key at a time: enough samples, less waiting
				}
				shapes = append(shapes, shape{b, c, n})
			}
		}
		next := 0
		for _, ep := range f.matrixEPs {
			if err := p.coldWarm(ctx, ep, shapes, keys[next:], f.warmRounds, emit, nil); err != nil {
				p.stop()
				return err
			}
			next += shapeKeys(shapes)
		}
		p.stop()
		if slices.Contains(f.matrixEPs, "mutate") {
			if err := runNaiveMatrix(ctx, f, env, keys, emit, stderr); err != nil {
				return err
			}
		}
	}

	if f.want("growth") && f.growth > 0 {
		p, err := env.start(ctx, f.provider, stderr, nil) // fresh provider: empty cache
		if err != nil {
			return err
		}
		// Contact every repository once first (its "base" tag), so the steps compare cache
		// sizes, not the first step's per-repository handshakes.
		warmup := make([]string, f.repos)
		for r := range warmup {
			warmup[r] = fmt.Sprintf("%s/bench/app%03d:base", reg.Host, r)
		}
		if _, err := p.scenario(ctx, "resolve", "growth-handshakes", 100, 8, warmup, 1); err != nil {
			p.stop()
			return err
		}
		err = p.growth(ctx, "resolve", keys[:min(f.growth, len(keys))], 8, emit, nil)
		p.stop()
		if err != nil {
			return err
		}
	}

	if f.want("verify") && f.verifyN > 0 {
		if err := runVerify(ctx, f, env, reg.Host, emit, logf, stderr); err != nil {
			return err
		}
	}

	if f.want("scan") && f.scanN > 0 {
		if err := runScan(ctx, f, env, reg.Host, emit, logf, stderr); err != nil {
			return err
		}
	}

	if f.want("latency") && f.latencyN > 0 {
		sv, pub, err := newSigner(env.dir, "latency.pub")
		if err != nil {
			return err
		}
		signed, err := pushSigned(ctx, reg.Host, f.latencyN, f.verifyRepo, "bench/latency", sv)
		if err != nil {
			return err
		}
		if err := runLatency(ctx, f, env, keys, signed, pub, emit, logf, stderr); err != nil {
			return err
		}
	}

	if f.want("outage") && f.outage > 0 {
		p, err := env.start(ctx, f.provider, stderr, nil)
		if err != nil {
			return err
		}
		reg.Hang(nil) // the registry stops answering: connections accepted, nothing returned
		for _, ep := range []string{"resolve", "mutate"} {
			l, err := p.outage(ctx, ep, keys, f.outage)
			if err != nil {
				p.stop()
				return err
			}
			if err := emit(l); err != nil {
				return err
			}
		}
		reg.Unhang()
		p.stop()
	}

	if f.want("soak") {
		return runSoak(ctx, f, env, stdout, stderr, logf)
	}
	return nil
}

// pushImages writes n distinct images: one random image (config + one small layer) per
// repository, then n manifests that differ only in an annotation (distinct digests, shared
// blobs), each with one PUT.
func pushImages(ctx context.Context, host string, n, repos int) ([]string, error) {
	keys := make([]string, n)
	bases := make([]v1.Image, repos)
	for r := range repos {
		img, err := random.Image(256, 1)
		if err != nil {
			return nil, err
		}
		tag, err := name.NewTag(fmt.Sprintf("%s/bench/app%03d:base", host, r))
		if err != nil {
			return nil, err
		}
		if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
			return nil, fmt.Errorf("pushing %s: %w", tag, err)
		}
		bases[r] = img
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 32}
	defer tr.CloseIdleConnections()
	// One pusher: one authenticated writer per repository instead of a ping per manifest.
	pusher, err := remote.NewPusher(remote.WithTransport(tr))
	if err != nil {
		return nil, err
	}
	err = parallel(n, func(i int) error {
		r := i % repos
		ref := fmt.Sprintf("%s/bench/app%03d:t%06d", host, r, i)
		tag, err := name.NewTag(ref)
		if err != nil {
			return err
		}
		img := mutate.Annotations(bases[r], map[string]string{"dev.imagetrust.bench": strconv.Itoa(i)}).(v1.Image)
		if err := pusher.Put(ctx, tag, img); err != nil {
			return fmt.Errorf("pushing %s: %w", ref, err)
		}
		keys[i] = ref
		return nil
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

type env struct {
	dir      string
	regHost  string
	reg      *registrytest.Registry
	ca       *pki.CA
	files    pki.Files
	clients  map[string]*http.Client // by endpoint
	deadline map[string]time.Duration
	procEnv  []string
	procArgs []string
	starts   int
	// pin is the CPU placement, decided when the first provider starts (after the images are
	// pushed, which uses every CPU); pinWanted is -pin.
	pin        pinning
	pinWanted  bool
	pinDecided bool
	logf       func(string, ...any)
	// scan is the provider configuration's scan section (the scan group sets it).
	scan config.Scan
	// lookup is the provider configuration's lookup section (zero: the defaults; the latency
	// group sets perRegistryConcurrency).
	lookup config.Lookup
	// cache is the provider configuration's cache section (-cache-max-bytes, -cache-ttl; zero:
	// the defaults).
	cache config.Cache
}

func newEnv(dir string, reg *registrytest.Registry, procEnv, procArgs []string) (*env, error) {
	ca, err := pki.NewCA("imagetrust-bench CA")
	if err != nil {
		return nil, err
	}
	srv, err := ca.ServerCert("imagetrust-provider")
	if err != nil {
		return nil, err
	}
	files, err := pki.WriteDir(dir, ca, srv)
	if err != nil {
		return nil, err
	}
	gk, err := ca.ClientCert("gatekeeper-webhook")
	if err != nil {
		return nil, err
	}
	// One client per Provider object, as Gatekeeper keeps one per Provider (see gatekeeper.go).
	clients := map[string]*http.Client{}
	for _, ep := range []string{"resolve", "mutate", "verify", "verify/signatures", "scan"} {
		if clients[ep], err = gatekeeperClient(ca, gk, gatekeeperTimeout(ep)); err != nil {
			return nil, err
		}
	}
	return &env{dir: dir, regHost: reg.Host, reg: reg, ca: ca, files: files, clients: clients, procEnv: procEnv, procArgs: procArgs,
		deadline: map[string]time.Duration{"resolve": config.DefaultResolveDeadline, "mutate": config.DefaultMutateDeadline}}, nil
}

type provider struct {
	cmd     *exec.Cmd
	api     string
	metrics string
	clients map[string]*http.Client // by endpoint
	reg     *registrytest.Registry
	pin     pinning
	done    chan error
	stderr  io.Writer
	// reported: the first unsigned /v1/verify answer has been written to stderr.
	reported atomic.Bool
	// proto is the HTTP version of the first answer ("HTTP/1.1").
	proto atomic.Value
	// keyErr is the first per-key error of the running scenario (reset by scenario).
	keyErr atomic.Pointer[string]
}

// freeAddrs are two free loopback addresses: a provider's API and metrics listeners.
func freeAddrs() (api, metrics string, err error) {
	if api, err = freeAddr(); err != nil {
		return "", "", err
	}
	metrics, err = freeAddr()
	return api, metrics, err
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// start writes a configuration and runs the provider binary with it, waiting for /readyz.
func (e *env) start(ctx context.Context, bin string, stderr io.Writer, auths []config.Authority) (*provider, error) {
	api, met, err := freeAddrs()
	if err != nil {
		return nil, err
	}
	cfg := config.Config{
		Server: config.Server{Address: api, MetricsAddress: met,
			TLS: config.TLS{CertFile: e.files.Cert, KeyFile: e.files.Key, ClientCAFile: e.files.CA}},
		Registries:  []config.Registry{{Host: e.regHost, Insecure: true}},
		Authorities: auths,
		Scan:        e.scan,
		Lookup:      e.lookup,
		Cache:       e.cache,
	}
	b, err := configYAML(cfg)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(e.dir, "config.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	e.starts++
	args := []string{"-config", path, "-log-level", "warn"}
	for _, a := range e.procArgs {
		args = append(args, strings.ReplaceAll(a, "{run}", strconv.Itoa(e.starts)))
	}
	return e.launch(ctx, bin, args, api, met, stderr)
}

// launch runs bin with args on the provider's CPU (see pinning) and waits until
// http://met/readyz answers 200; api is the mTLS listener the clients post to.
func (e *env) launch(ctx context.Context, bin string, args []string, api, met string, stderr io.Writer) (*provider, error) {
	if !e.pinDecided {
		e.pinDecided = true
		e.pin = pinning{provider: -1, why: "-pin=false"}
		if e.pinWanted {
			e.pin = pin()
		}
		e.logf("pinned: %s", e.pin)
	}
	name, args := e.pin.command(bin, args)
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), e.procEnv...)
	cmd.Stdout = io.Discard
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &provider{cmd: cmd, api: api, metrics: met, clients: e.clients, reg: e.reg, pin: e.pin, done: make(chan error, 1), stderr: stderr}
	go func() { p.done <- cmd.Wait() }()
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get("http://" + met + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-p.done:
			if err == nil {
				err = errors.New("exit status 0")
			}
			return nil, fmt.Errorf("provider exited before it was ready: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, errors.New("provider not ready after 30s")
		}
	}
	return p, nil
}

func (p *provider) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done: //nolint:errcheck // the exit status after SIGTERM is an error by design
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done //nolint:errcheck // the exit status after SIGKILL is an error by design
	}
	for _, c := range p.clients {
		c.CloseIdleConnections()
	}
}

// rssMB is the provider process's resident set size.
func (p *provider) rssMB() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for l := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// cpuSeconds is the provider process's user+system CPU time (/proc/<pid>/stat).
func (p *provider) cpuSeconds() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name (which may contain spaces) start at ") ".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64) // utime, field 14
	st, _ := strconv.ParseFloat(f[12], 64) // stime, field 15
	return (ut + st) / 100                 // USER_HZ
}

// selfCPUSeconds is this process's user+system CPU time.
func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// heapMB is the provider's go_memstats_heap_inuse_bytes from its /metrics listener.
func (p *provider) heapMB() float64 {
	v, _ := p.metric("go_memstats_heap_inuse_bytes ")
	return round(v / (1 << 20))
}

// metricsText is the provider's /metrics page ("" if it cannot be read).
func (p *provider) metricsText() string {
	resp, err := http.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return ""
	}
	return string(b)
}

// metric is the value of the first line of the provider's /metrics that starts with prefix
// (a metric name and its labels, up to the space before the value); false if there is none.
func (p *provider) metric(prefix string) (float64, bool) {
	for l := range strings.Lines(p.metricsText()) {
		if rest, ok := strings.CutPrefix(l, prefix); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// cacheStats fills l's cache fields from the metrics of the answer cache that serves endpoint
// (/v1/mutate shares /v1/resolve's); a provider without the metrics leaves them empty.
func (p *provider) cacheStats(l *Line) {
	name := strings.ReplaceAll(l.Endpoint, "/", "-")
	if name == "mutate" {
		name = "resolve"
	}
	label := `{cache="` + name + `"} `
	if n, ok := p.metric("imagetrust_cache_entries" + label); ok {
		l.CacheEntries = int(n)
	}
	if b, ok := p.metric("imagetrust_cache_bytes" + label); ok {
		l.CacheMB = round(b / (1 << 20))
	}
	if ev, ok := p.metric("imagetrust_cache_evictions_total" + label); ok {
		n := int(ev)
		l.CacheEvictions = &n
	}
}

// post sends one ProviderRequest and returns the number of per-key errors and, for
// /v1/verify, of values with signed=false.
//
// read is how long the exchange took up to the last byte of the answer (the answer's decoding
// comes after it).
func (p *provider) post(ctx context.Context, endpoint string, keys []string) (errs, unsigned int, read time.Duration, err error) {
	t0 := time.Now()
	// Like Gatekeeper: a deadline of the Provider's timeout on every request.
	ctx, cancel := context.WithTimeout(ctx, gatekeeperTimeout(endpoint))
	defer cancel()
	body, err := json.Marshal(externaldata.ProviderRequest{
		APIVersion: "externaldata.gatekeeper.sh/v1beta1", Kind: externaldata.ProviderRequestKind,
		Request: externaldata.Request{Keys: keys},
	})
	if err != nil {
		return 0, 0, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+p.api+"/v1/"+endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.clients[endpoint].Do(req)
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	p.proto.CompareAndSwap(nil, resp.Proto)
	raw, err := io.ReadAll(resp.Body)
	read = time.Since(t0)
	if err != nil {
		return 0, 0, read, fmt.Errorf("reading response (HTTP %d): %w", resp.StatusCode, err)
	}
	// Like Gatekeeper, the whole answer is decoded; values are kept raw (Gatekeeper hands them
	// to Rego as parsed JSON, which this client does not need) except /v1/verify's "signed".
	var pr struct {
		Response struct {
			Items []struct {
				Key   string          `json:"key"`
				Value json.RawMessage `json:"value"`
				Error string          `json:"error"`
			} `json:"items"`
			SystemError string `json:"systemError"`
		} `json:"response"`
	}
	if err := json.Unmarshal(raw, &pr); err != nil {
		return 0, 0, read, fmt.Errorf("decoding response (HTTP %d): %w", resp.StatusCode, err)
	}
	if pr.Response.SystemError != "" {
		return 0, 0, read, fmt.Errorf("systemError: %s", pr.Response.SystemError)
	}
	if len(pr.Response.Items) != len(keys) {
		return 0, 0, read, fmt.Errorf("%d items for %d keys", len(pr.Response.Items), len(keys))
	}
	for _, it := range pr.Response.Items {
		switch {
		case it.Error != "":
			errs++
			msg := it.Key + ": " + it.Error
			p.keyErr.CompareAndSwap(nil, &msg)
		case isVerify(endpoint):
			// The provider writes the field exactly so (encoding/json of verify.Value); the
			// whole answer was already checked to be JSON by the decoder above.
			if !bytes.Contains(it.Value, []byte(`"signed":true`)) {
				unsigned++
				if p.reported.CompareAndSwap(false, true) {
					fmt.Fprintf(p.stderr, "bench: first unsigned /v1/verify answer for %s: %s\n", it.Key, it.Value)
				}
			}
		}
	}
	return errs, unsigned, read, nil
}

// scenario sends keys (rounds times) in batches of size b from c concurrent clients.
func (p *provider) scenario(ctx context.Context, endpoint, phase string, b, c int, keys []string, rounds int) (Line, error) {
	var batches [][]string
	for range rounds {
		for i := 0; i < len(keys); i += b {
			batches = append(batches, keys[i:min(i+b, len(keys))])
		}
	}
	lat := make([]time.Duration, len(batches))
	latDecoded := make([]time.Duration, len(batches))
	pcpu0, bcpu0 := p.cpuSeconds(), selfCPUSeconds()
	ecdsaUS := p.pin.calibrate()
	reqs0, conns0 := p.reg.Total(), p.reg.Conns()
	p.keyErr.Store(nil)
	var next atomic.Int64
	var errs, unsigned atomic.Int64
	// firstErr keeps the first failure; errors of different types fail atomic.Value.
	var (
		firstErr error
		errOnce  sync.Once
	)
	var wg sync.WaitGroup
	start := time.Now()
	for range c {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(batches) {
					return
				}
				t0 := time.Now()
				n, u, read, err := p.post(ctx, endpoint, batches[i])
				lat[i], latDecoded[i] = read, time.Since(t0)
				if err != nil {
					// A failed batch (e.g. the client's timeout) counts with the time it took.
					lat[i] = latDecoded[i]
					errOnce.Do(func() { firstErr = err })
					n = len(batches[i])
				}
				errs.Add(int64(n))
				unsigned.Add(int64(u))
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	// CPU first: reading /metrics for the heap and cache figures below costs the provider CPU.
	pcpu, bcpu := p.cpuSeconds()-pcpu0, selfCPUSeconds()-bcpu0
	if firstErr != nil && ctx.Err() != nil {
		return Line{}, firstErr
	}
	total := len(keys) * rounds
	slices.Sort(lat)
	slices.Sort(latDecoded)
	l := Line{
		Endpoint: endpoint, Phase: phase, Batch: b, Concurrency: c, Keys: total,
		KeysPerS: round(float64(total) / wall.Seconds()), P50ms: ms(pct(lat, 50)), P99ms: ms(pct(lat, 99)),
		Errors: int(errs.Load()), RSSMB: round(p.rssMB()), HeapMB: p.heapMB(),
		ProviderCPU: round(pcpu), BenchCPU: round(bcpu),
		P50Decoded:    ms(pct(latDecoded, 50)),
		RegReqsPerKey: round(float64(p.reg.Total()-reqs0) / float64(total)),
		RegConns:      p.reg.Conns() - conns0,
		ECDSAus:       ecdsaUS,
		AnsweredPerS:  round(float64(total-int(errs.Load())) / wall.Seconds()),
	}
	if isVerify(endpoint) {
		u := int(unsigned.Load())
		l.Unsigned = &u
	}
	if pr, ok := p.proto.Load().(string); ok {
		l.Proto = pr
	}
	switch ke := p.keyErr.Load(); {
	case firstErr != nil:
		l.FirstError = firstErr.Error()
	case ke != nil:
		l.FirstError = *ke
	}
	l.perKey()
	p.cacheStats(&l)
	return l, nil
}

// outage sends cold batches of 100 from 8 clients for d while the registry hangs; every batch
// must come back (with per-key "timed out" errors) before the configured endpoint deadline
// (over_deadline counts those that did not), itself below Gatekeeper's timeout.
func (p *provider) outage(ctx context.Context, endpoint string, keys []string, d time.Duration) (Line, error) {
	deadline := map[string]time.Duration{"resolve": config.DefaultResolveDeadline, "mutate": config.DefaultMutateDeadline}[endpoint]
	var mu sync.Mutex
	var lat []time.Duration
	var errs, sent atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	stopAt := time.Now().Add(d)
	start := time.Now()
	for range 8 {
		wg.Go(func() {
			for time.Now().Before(stopAt) {
				i := int(next.Add(1)) - 1
				batch := keys[(i*100)%len(keys) : min((i*100)%len(keys)+100, len(keys))]
				t0 := time.Now()
				n, _, _, err := p.post(ctx, endpoint, batch)
				el := time.Since(t0)
				if err != nil {
					n = len(batch)
				}
				errs.Add(int64(n))
				sent.Add(int64(len(batch)))
				mu.Lock()
				lat = append(lat, el)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	slices.Sort(lat)
	over := 0
	for _, l := range lat {
		if l >= deadline {
			over++
		}
	}
	return Line{
		Endpoint: endpoint, Phase: "outage", Batch: 100, Concurrency: 8, Keys: int(sent.Load()),
		KeysPerS: round(float64(sent.Load()) / wall.Seconds()), P50ms: ms(pct(lat, 50)), P99ms: ms(pct(lat, 99)),
		Errors: int(errs.Load()), RSSMB: round(p.rssMB()), MaxMs: ms(pct(lat, 100)),
		DeadlineMs: ms(deadline), GatekeeperMs: ms(map[string]time.Duration{"resolve": 3 * time.Second, "mutate": time.Second}[endpoint]),
		OverDeadline: &over,
	}, nil
}

func pct(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	return sorted[min(max(i-1, 0), len(sorted)-1)]
}

// isVerify reports whether endpoint answers verify values ("verify", "verify/signatures").
func isVerify(endpoint string) bool {
	return endpoint == "verify" || strings.HasPrefix(endpoint, "verify/")
}

func ms(d time.Duration) float64 { return round(float64(d.Microseconds()) / 1000) }
func round(f float64) float64    { return float64(int64(f*100+0.5)) / 100 }

// runVerify pushes f.verifyN signed images and measures /v1/verify with the authority's
// default reads and with signature reads only, each on a fresh provider: cold (never seen
// images) and warm (the same images again), batch 1 and 100, then a growth run.
func runVerify(ctx context.Context, f flags, e *env, host string, emit func(Line) error, logf func(string, ...any), stderr io.Writer) error {
	sv, pub, err := newSigner(e.dir, "cosign.pub")
	if err != nil {
		return err
	}
	logf("pushing %d images over %d repositories (0: one each), each signed in cosign's tag scheme", f.verifyN, f.verifyRepo)
	start := time.Now()
	keys, err := pushSigned(ctx, host, f.verifyN, f.verifyRepo, "bench/verify", sv)
	if err != nil {
		return err
	}
	logf("pushed and signed %d images in %s", len(keys), time.Since(start).Round(time.Millisecond))

	no := false
	// reads "all": the default authority through /v1/verify; "plan-signatures": the same
	// authority through /v1/verify/signatures (the lookup plan reads signatures only);
	// "signatures": an authority configured for cosign signatures only, through /v1/verify.
	configs := []struct {
		reads    string
		endpoint string
		auth     config.Authority
	}{
		{"all", "verify", config.Authority{Name: "bench", Key: &config.Key{File: pub}}},
		{"signatures", "verify", config.Authority{Name: "bench", Key: &config.Key{File: pub},
			Formats: []string{config.FormatCosign}, Attestations: &no}},
		{"plan-signatures", "verify/signatures", config.Authority{Name: "bench", Key: &config.Key{File: pub}}},
	}
	for _, c := range configs {
		p, err := e.start(ctx, f.provider, stderr, []config.Authority{c.auth})
		if err != nil {
			return err
		}
		shapes := []shape{{1, 1, f.coldKeys / 4}, {100, 1, f.coldKeys}, {100, 8, f.coldKeys}}
		err = p.coldWarm(ctx, c.endpoint, shapes, keys, f.warmRounds, emit, func(l *Line) { l.Reads = c.reads })
		p.stop()
		if err != nil {
			return err
		}
	}

	if f.verifyGrow <= 0 {
		return nil
	}
	// Growth: a fresh provider (signature reads only) fed ever more distinct images.
	p, err := e.start(ctx, f.provider, stderr, []config.Authority{configs[1].auth})
	if err != nil {
		return err
	}
	defer p.stop()
	return p.growth(ctx, "verify", keys[:f.verifyGrow], 8, emit, func(l *Line) { l.Reads = configs[1].reads })
}

// shape is one cold scenario and its warm repeat: batches of b keys from c clients over n keys.
type shape struct{ b, c, n int }

// shapeKeys is the number of distinct keys shapes take.
func shapeKeys(shapes []shape) int {
	n := 0
	for _, s := range shapes {
		n += s.n
	}
	return n
}

// coldWarm runs, for each shape in turn, a cold scenario over the next s.n of keys (never
// sent before) and a warm one (the same keys again, warmRounds times), emitting one line each;
// decorate (optional) adds the caller's fields.
func (p *provider) coldWarm(ctx context.Context, endpoint string, shapes []shape, keys []string, warmRounds int, emit func(Line) error, decorate func(*Line)) error {
	next := 0
	for _, s := range shapes {
		cold := keys[next : next+s.n]
		next += s.n
		for _, phase := range []string{"cold", "warm"} {
			rounds := 1
			if phase == "warm" {
				rounds = warmRounds
			}
			l, err := p.scenario(ctx, endpoint, phase, s.b, s.c, cold, rounds)
			if err != nil {
				return err
			}
			if decorate != nil {
				decorate(&l)
			}
			if err := emit(l); err != nil {
				return err
			}
		}
	}
	return nil
}

// growth feeds keys to a fresh provider in steps of 1k, 5k, 10k, 25k and 50k distinct keys
// (cold, batch 100, from clients clients), then sends them all again (warm), emitting one line
// per step with the number of distinct keys cached so far; decorate (optional) adds the
// caller's fields.
func (p *provider) growth(ctx context.Context, endpoint string, keys []string, clients int, emit func(Line) error, decorate func(*Line)) error {
	done := 0
	line := func(phase string, keys []string) error {
		l, err := p.scenario(ctx, endpoint, phase, 100, clients, keys, 1)
		if err != nil {
			return err
		}
		l.Distinct = done
		if decorate != nil {
			decorate(&l)
		}
		return emit(l)
	}
	for _, step := range []int{1000, 5000, 10000, 25000, 50000} {
		step = min(step, len(keys))
		if step <= done {
			continue
		}
		from := done
		done = step
		if err := line("growth-cold", keys[from:step]); err != nil {
			return err
		}
	}
	return line("growth-warm", keys[:done])
}

// pushSigned writes n images, each in its own repository (bench/verify/sNNNNNN:v1), and signs
// each like `cosign sign --key --tlog-upload=false`: a simple-signing payload for the digest,
// signed with sv, pushed as the signature manifest sha256-<hex>.sig. All images share one
// config and layer (distinct digests through an annotation), so a push is mostly manifests.
func pushSigned(ctx context.Context, host string, n, repos int, prefix string, sv signature.Signer) ([]string, error) {
	base, err := random.Image(256, 1)
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 32}
	defer tr.CloseIdleConnections()
	pusher, err := remote.NewPusher(remote.WithTransport(tr))
	if err != nil {
		return nil, err
	}
	keys := make([]string, n)
	if err := parallel(n, func(i int) error { return pushSignedOne(ctx, pusher, host, prefix, i, repos, base, sv, keys) }); err != nil {
		return nil, err
	}
	return keys, nil
}

// parallel calls do(i) for every i in [0, n) from 16 goroutines and returns the first error;
// a goroutine whose call fails takes no further i.
func parallel(n int, do func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := do(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// pushNumbered pushes base, annotated dev.imagetrust.bench=i so that its digest is its own, to
// ref and returns the tag and the image's digest reference.
func pushNumbered(ctx context.Context, pusher *remote.Pusher, ref string, base v1.Image, i int) (name.Tag, name.Digest, error) {
	tag, err := name.NewTag(ref)
	if err != nil {
		return name.Tag{}, name.Digest{}, err
	}
	img := mutate.Annotations(base, map[string]string{"dev.imagetrust.bench": strconv.Itoa(i)}).(v1.Image)
	if err := pusher.Push(ctx, tag, img); err != nil {
		return name.Tag{}, name.Digest{}, fmt.Errorf("pushing %s: %w", tag, err)
	}
	h, err := img.Digest()
	if err != nil {
		return name.Tag{}, name.Digest{}, err
	}
	return tag, tag.Context().Digest(h.String()), nil
}

func pushSignedOne(ctx context.Context, pusher *remote.Pusher, host, prefix string, i, repos int, base v1.Image, sv signature.Signer, keys []string) error {
	ref := fmt.Sprintf("%s/%s/s%06d:v1", host, prefix, i)
	if repos > 0 {
		ref = fmt.Sprintf("%s/%s/r%03d:t%06d", host, prefix, i%repos, i)
	}
	tag, d, err := pushNumbered(ctx, pusher, ref, base, i)
	if err != nil {
		return err
	}
	sig, err := signing.Signature(d, sv)
	if err != nil {
		return err
	}
	sigs, err := cmutate.AppendSignatures(cempty.Signatures(), false, sig)
	if err != nil {
		return err
	}
	sigTag := tag.Context().Tag(strings.Replace(d.DigestStr(), ":", "-", 1) + ".sig")
	if err := pusher.Push(ctx, sigTag, sigs); err != nil {
		return fmt.Errorf("pushing %s: %w", sigTag, err)
	}
	keys[i] = tag.String()
	return nil
}

// newSigner makes an ECDSA P-256 signing key and writes its public key (PEM) to dir/file.
func newSigner(dir, file string) (signature.SignerVerifier, string, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, "", err
	}
	sv, err := signature.LoadECDSASignerVerifier(k, crypto.SHA256)
	if err != nil {
		return nil, "", err
	}
	pemBytes, err := cryptoutils.MarshalPublicKeyToPEM(k.Public())
	if err != nil {
		return nil, "", err
	}
	pub := filepath.Join(dir, file)
	if err := os.WriteFile(pub, pemBytes, 0o600); err != nil {
		return nil, "", err
	}
	return sv, pub, nil
}

// configYAML writes cfg without its zero fields: the provider fills them with its defaults, and
// a provider binary built before a field existed (a baseline) still reads the file.
func configYAML(cfg config.Config) ([]byte, error) {
	j, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	var m any
	if err := json.Unmarshal(j, &m); err != nil {
		return nil, err
	}
	return yaml.Marshal(pruneZero(m))
}

// pruneZero drops JSON zero values (0, "", "0s", null, empty objects and lists) from objects,
// recursively; false stays (attestations: false differs from its default).
func pruneZero(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			x = pruneZero(x)
			if isZeroJSON(x) {
				delete(t, k)
				continue
			}
			t[k] = x
		}
	case []any:
		for i, x := range t {
			t[i] = pruneZero(x)
		}
	}
	return v
}

func isZeroJSON(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case float64:
		return t == 0
	case string:
		return t == "" || t == "0s" // config.Duration's zero
	case map[string]any:
		return len(t) == 0
	case []any:
		return len(t) == 0
	}
	return false
}
