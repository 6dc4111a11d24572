package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
)

// The soak group: a healthy registry and hostile ones at once against one provider, in three
// phases — healthy load only ("before"), healthy and hostile load ("attack"), healthy load only
// again ("after") — reporting per phase and endpoint the provider's RSS and goroutines (at the
// end and at their peak), the answers later than the endpoint deadline, and the per-key errors
// of the healthy keys (which a hostile registry must not cause).
//
// The hostile registries: one that accepts connections and never answers (hang), one that
// answers a byte every 100 ms forever (slow drip), one serving a 20,000-platform index for
// every manifest (3.8 MB: legal under the 4 MiB lookup.maxIndexBytes limit, over its 256 KiB
// default), one serving a 1,300-platform index (247 KB, under the default) for every manifest,
// one answering with 2 MB Content-Type headers, and one with an endless body. Every hostile key
// is distinct (a new tag in one of 50 repositories), so none is answered from the answer cache.
const (
	// soakImages healthy images are pushed; healthy keys are fresh until they run out.
	soakImages  = 3000
	soakClients = 8
	// soakMemLimit is the GOMEMLIMIT the provider sets itself in the Deployment: 85 % of its
	// 256 Mi memory limit (given to the soak's provider unless -provider-env sets GOMEMLIMIT).
	soakMemLimit = "GOMEMLIMIT=217MiB"
)

// soakPhases are the lengths of the soak's phases (flags -soak-before, -soak-attack,
// -soak-after; 0 skips a phase).
type soakPhases struct {
	before, attack, after time.Duration
}

func (p *soakPhases) flags(fs *flag.FlagSet) {
	fs.DurationVar(&p.before, "soak-before", 5*time.Second, "soak group: length of the healthy-only phase before the attack (0: skip)")
	fs.DurationVar(&p.attack, "soak-attack", 15*time.Second, "soak group: length of the attack phase (0: skip)")
	fs.DurationVar(&p.after, "soak-after", 5*time.Second, "soak group: length of the healthy-only phase after the attack (0: skip)")
}

// soakLine is one phase and endpoint of the soak.
type soakLine struct {
	Line
	// Goroutines and PeakGoroutines are the provider's go_goroutines at the end of the phase
	// and the most seen during it (sampled every 250 ms); PeakRSSMB likewise for RSS.
	Goroutines     int     `json:"goroutines"`
	PeakGoroutines int     `json:"peak_goroutines"`
	PeakRSSMB      float64 `json:"peak_rss_mb"`
	// HealthyKeys and HealthyErrors: keys of the healthy registry sent, and those answered
	// with an error; HealthyLate: healthy batches answered after the endpoint deadline.
	HealthyKeys   int `json:"healthy_keys"`
	HealthyErrors int `json:"healthy_errors"`
	HealthyLate   int `json:"healthy_late"`
	// HealthyErrorClasses counts the healthy keys' errors by class ("timed out", …).
	HealthyErrorClasses map[string]int `json:"healthy_error_classes,omitempty"`
	// HealthyErrorSamples: up to three of the healthy keys' error messages, one per class.
	HealthyErrorSamples []string `json:"healthy_error_samples,omitempty"`
	// HostileKeys: keys of the hostile registries sent (their errors are in errors), and
	// HostileErrorClasses their errors by class.
	HostileKeys         int            `json:"hostile_keys"`
	HostileErrorClasses map[string]int `json:"hostile_error_classes,omitempty"`
}

// runSoak runs the soak group on registries of its own and writes one soakLine per phase and
// endpoint to stdout.
func runSoak(ctx context.Context, f flags, e *env, stdout, stderr io.Writer, logf func(string, ...any)) error {
	healthy := registrytest.New()
	defer closeRegistry(healthy)
	logf("soak: pushing %d images to %s", soakImages, healthy.Host)
	keys, err := pushImages(ctx, healthy.Host, soakImages, 30)
	if err != nil {
		return err
	}
	hostile := map[string]*registrytest.Registry{}
	for _, n := range []string{"hang", "drip", "bigindex", "index", "headers", "endless"} {
		r := registrytest.New()
		defer closeRegistry(r)
		hostile[n] = r
	}
	const ociIndex = "application/vnd.oci.image.index.v1+json"
	hostile["hang"].Hang(nil)
	hostile["drip"].Hostile(registrytest.PathContains("/manifests/"), registrytest.SlowDrip(ociIndex, 100*time.Millisecond))
	hostile["bigindex"].Hostile(registrytest.PathContains("/manifests/"), registrytest.Content(ociIndex, registrytest.BigIndex(20000)))
	hostile["index"].Hostile(registrytest.PathContains("/manifests/"), registrytest.Content(ociIndex, registrytest.BigIndex(1300)))
	hostile["headers"].Hostile(nil, registrytest.HugeHeader("Content-Type", 2<<20, hostile["headers"].Next()))
	hostile["endless"].Hostile(registrytest.PathContains("/manifests/"), registrytest.EndlessBody(ociIndex, nil))

	// An authority whose key signed nothing here: /v1/verify reads every image's signature
	// tags and referrers, as it does for an unsigned image in production.
	_, pub, err := newSigner(e.dir, "soak.pub")
	if err != nil {
		return err
	}
	p, err := e.startSoak(ctx, f.provider, stderr, healthy, hostile, pub)
	if err != nil {
		return err
	}
	defer p.stop()

	var hostileSeq atomic.Int64
	hostileBatch := func(n int) []string {
		out := make([]string, 0, n)
		names := []string{"hang", "drip", "bigindex", "index", "headers", "endless"}
		for len(out) < n {
			i := hostileSeq.Add(1)
			r := hostile[names[int(i)%len(names)]]
			out = append(out, fmt.Sprintf("%s/tenant/app%d:v%d", r.Host, i%50, i))
		}
		return out
	}
	var healthySeq atomic.Int64
	healthyBatch := func(n int) []string {
		out := make([]string, n)
		for j := range out {
			out[j] = keys[int(healthySeq.Add(1)-1)%len(keys)]
		}
		return out
	}
	enc := json.NewEncoder(stdout)
	for _, ph := range []struct {
		name    string
		d       time.Duration
		hostile bool
	}{{"before", f.soak.before, false}, {"attack", f.soak.attack, true}, {"after", f.soak.after, false}} {
		if ph.d <= 0 {
			continue
		}
		lines, err := p.soakPhase(ctx, ph.name, ph.d, ph.hostile, healthyBatch, hostileBatch)
		if err != nil {
			return err
		}
		for _, l := range lines {
			l.Pinned = e.pin.String()
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
		logf("soak %s: RSS %.1f MB (peak %.1f), goroutines %d (peak %d)", ph.name, lines[0].RSSMB, lines[0].PeakRSSMB, lines[0].Goroutines, lines[0].PeakGoroutines)
	}
	return nil
}

// closeRegistry stops r without waiting for the handlers still running (a dripping answer
// would keep httptest's Close waiting); the process ends right after.
func closeRegistry(r *registrytest.Registry) {
	r.Unhang()
	r.Server.CloseClientConnections()
	_ = r.Server.Listener.Close() // best effort: the bench exits next
}

// startSoak starts the provider with the healthy and hostile registries configured and pub as
// its one authority.
func (e *env) startSoak(ctx context.Context, bin string, stderr io.Writer, healthy *registrytest.Registry, hostile map[string]*registrytest.Registry, pub string) (*provider, error) {
	api, err := freeAddr()
	if err != nil {
		return nil, err
	}
	met, err := freeAddr()
	if err != nil {
		return nil, err
	}
	regs := []config.Registry{{Host: healthy.Host, Insecure: true}}
	for _, r := range hostile {
		regs = append(regs, config.Registry{Host: r.Host, Insecure: true})
	}
	cfg := config.Config{
		Server: config.Server{Address: api, MetricsAddress: met,
			TLS: config.TLS{CertFile: e.files.Cert, KeyFile: e.files.Key, ClientCAFile: e.files.CA}},
		Registries:  regs,
		Authorities: []config.Authority{{Name: "bench", Key: &config.Key{File: pub}}},
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(e.dir, "soak.yaml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	if !slices.ContainsFunc(e.procEnv, func(v string) bool { return strings.HasPrefix(v, "GOMEMLIMIT=") }) {
		e.procEnv = append(slices.Clip(e.procEnv), soakMemLimit)
	}
	args := []string{"-config", path, "-log-level", "error"}
	for _, a := range e.procArgs {
		args = append(args, strings.ReplaceAll(a, "{run}", "soak"))
	}
	return e.launch(ctx, bin, args, api, met, stderr)
}

// soakPhase sends batches for d from soakClients clients, each alternating /v1/resolve and
// /v1/verify: a batch of 20 healthy keys and, when hostile, a batch of 40 hostile keys.
func (p *provider) soakPhase(ctx context.Context, phase string, d time.Duration, hostile bool, healthyBatch, hostileBatch func(int) []string) ([]soakLine, error) {
	type stats struct {
		mu                                sync.Mutex
		lat                               []time.Duration
		keys, errs, hKeys, hErrs, hLate   int
		hostileKeys, late, transportFails int
		hClasses, xClasses                map[string]int
		hSamples                          []string
	}
	by := map[string]*stats{"resolve": {hClasses: map[string]int{}, xClasses: map[string]int{}}, "verify": {hClasses: map[string]int{}, xClasses: map[string]int{}}}
	deadline := map[string]time.Duration{"resolve": config.DefaultResolveDeadline, "verify": config.DefaultVerifyDeadline}

	var peakG atomic.Int64
	var peakRSS atomic.Int64 // KB
	stopSample := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			if g := int64(p.goroutines()); g > peakG.Load() {
				peakG.Store(g)
			}
			if r := int64(p.rssMB() * 1024); r > peakRSS.Load() {
				peakRSS.Store(r)
			}
			select {
			case <-stopSample:
				return
			case <-t.C:
			}
		}
	})

	send := func(ep string, keys []string, isHealthy bool) {
		t0 := time.Now()
		classes, samples, err := p.soakPost(ctx, ep, keys)
		el := time.Since(t0)
		n := 0
		for _, c := range classes {
			n += c
		}
		if err != nil {
			n = len(keys) // no answer at all: every key failed
			classes = map[string]int{"no answer": len(keys)}
		}
		s := by[ep]
		s.mu.Lock()
		defer s.mu.Unlock()
		into := s.xClasses
		if isHealthy {
			into = s.hClasses
			for c, m := range samples {
				if s.hClasses[c] == 0 && len(s.hSamples) < 3 {
					s.hSamples = append(s.hSamples, m)
				}
			}
		}
		for c, k := range classes {
			into[c] += k
		}
		s.lat = append(s.lat, el)
		s.keys += len(keys)
		s.errs += n
		late := el > deadline[ep]
		if late {
			s.late++
		}
		if err != nil {
			s.transportFails++
		}
		if isHealthy {
			s.hKeys += len(keys)
			s.hErrs += n
			if late {
				s.hLate++
			}
		} else {
			s.hostileKeys += len(keys)
		}
	}
	stopAt := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for c := range soakClients {
		wg.Go(func() {
			for i := c; time.Now().Before(stopAt) && ctx.Err() == nil; i++ {
				ep := []string{"resolve", "verify"}[i%2]
				send(ep, healthyBatch(20), true)
				if hostile {
					send(ep, hostileBatch(40), false)
				}
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	close(stopSample)
	sampler.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	rss, g, heap := p.rssMB(), p.goroutines(), p.heapMB()
	var out []soakLine
	for _, ep := range []string{"resolve", "verify"} {
		s := by[ep]
		slices.Sort(s.lat)
		over := s.late
		out = append(out, soakLine{
			Line: Line{
				Endpoint: ep, Phase: "soak-" + phase, Batch: 20, Concurrency: soakClients, Keys: s.keys,
				KeysPerS: round(float64(s.keys) / wall.Seconds()), P50ms: ms(pct(s.lat, 50)), P99ms: ms(pct(s.lat, 99)),
				MaxMs: ms(pct(s.lat, 100)), Errors: s.errs, RSSMB: round(rss), HeapMB: heap,
				DeadlineMs: ms(deadline[ep]), GatekeeperMs: ms(gatekeeperTimeout(ep)), OverDeadline: &over,
				Label: fmt.Sprintf("%d requests failed without an answer", s.transportFails),
			},
			Goroutines: g, PeakGoroutines: int(peakG.Load()), PeakRSSMB: round(float64(peakRSS.Load()) / 1024),
			HealthyKeys: s.hKeys, HealthyErrors: s.hErrs, HealthyLate: s.hLate, HostileKeys: s.hostileKeys,
			HealthyErrorClasses: s.hClasses, HostileErrorClasses: s.xClasses, HealthyErrorSamples: s.hSamples,
		})
	}
	return out, nil
}

// soakPost sends one ProviderRequest with Gatekeeper's timeout and counts the per-key errors
// by class (the words before the first ": "), with one message of each class.
func (p *provider) soakPost(ctx context.Context, endpoint string, keys []string) (classes map[string]int, samples map[string]string, err error) {
	ctx, cancel := context.WithTimeout(ctx, gatekeeperTimeout(endpoint))
	defer cancel()
	body, err := json.Marshal(map[string]any{
		"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest",
		"request": map[string]any{"keys": keys},
	})
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+p.api+"/v1/"+endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.clients[endpoint].Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	var pr struct {
		Response struct {
			Items []struct {
				Error string `json:"error"`
			} `json:"items"`
			SystemError string `json:"systemError"`
		} `json:"response"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&pr); err != nil {
		return nil, nil, fmt.Errorf("decoding response (HTTP %d): %w", resp.StatusCode, err)
	}
	if pr.Response.SystemError != "" || len(pr.Response.Items) != len(keys) {
		return nil, nil, fmt.Errorf("systemError %q, %d items for %d keys", pr.Response.SystemError, len(pr.Response.Items), len(keys))
	}
	classes, samples = map[string]int{}, map[string]string{}
	for _, it := range pr.Response.Items {
		if it.Error != "" {
			c, _, _ := strings.Cut(it.Error, ": ")
			classes[c]++
			samples[c] = it.Error
		}
	}
	return classes, samples, nil
}

// goroutines is the provider's go_goroutines from its /metrics listener.
func (p *provider) goroutines() int {
	resp, err := http.Get("http://" + p.metrics + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return 0
	}
	for l := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(l, "go_goroutines "); ok {
			n, _ := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return int(n)
		}
	}
	return 0
}
