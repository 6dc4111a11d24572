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
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
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
	// soakImages healthy images are pushed; healthy keys are fresh until their phase's part of
	// them runs out.
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
	// inProcess serves the hostile registries in this process (-soak-hostile-inprocess), as
	// the healthy one; hostileNice is the niceness of their own process otherwise.
	inProcess   bool
	hostileNice int
}

func (p *soakPhases) flags(fs *flag.FlagSet) {
	fs.DurationVar(&p.before, "soak-before", 5*time.Second, "soak group: length of the healthy-only phase before the attack (0: skip)")
	fs.DurationVar(&p.attack, "soak-attack", 15*time.Second, "soak group: length of the attack phase (0: skip)")
	fs.DurationVar(&p.after, "soak-after", 5*time.Second, "soak group: length of the healthy-only phase after the attack (0: skip)")
	fs.BoolVar(&p.inProcess, "soak-hostile-inprocess", false, "soak group: serve the hostile registries in this process, next to the healthy registry and the load generator, whose goroutines they then delay (default: a process of their own on this process's CPUs)")
	fs.IntVar(&p.hostileNice, "soak-hostile-nice", 0, "soak group: niceness of the hostile registries' process (0..19; 0: the same share of the CPU as this process)")
}

// soakHostileCommand, as the first argument, makes this binary serve the soak's hostile
// registries (see serveSoakHostile).
const soakHostileCommand = "soak-hostile"

// soakHostileNames are the hostile registries of the soak.
var soakHostileNames = []string{"hang", "drip", "bigindex", "index", "headers", "endless"}

// startHostile starts the soak's hostile registries and returns their hosts by name.
func startHostile() (map[string]string, func()) {
	const ociIndex = "application/vnd.oci.image.index.v1+json"
	hostile := map[string]*registrytest.Registry{}
	for _, n := range soakHostileNames {
		hostile[n] = registrytest.New()
	}
	hostile["hang"].Hang(nil)
	hostile["drip"].Hostile(registrytest.PathContains("/manifests/"), registrytest.SlowDrip(ociIndex, 100*time.Millisecond))
	hostile["bigindex"].Hostile(registrytest.PathContains("/manifests/"), registrytest.Content(ociIndex, registrytest.BigIndex(20000)))
	hostile["index"].Hostile(registrytest.PathContains("/manifests/"), registrytest.Content(ociIndex, registrytest.BigIndex(1300)))
	hostile["headers"].Hostile(nil, registrytest.HugeHeader("Content-Type", 2<<20, hostile["headers"].Next()))
	hostile["endless"].Hostile(registrytest.PathContains("/manifests/"), registrytest.EndlessBody(ociIndex, nil))
	hosts := map[string]string{}
	for n, r := range hostile {
		hosts[n] = r.Host
	}
	return hosts, func() {
		for _, r := range hostile {
			closeRegistry(r)
		}
	}
}

// serveSoakHostile serves the soak's hostile registries in this process until stdin closes
// (arguments: niceness, then "pin" or "nopin" as -pin): pinned, it moves itself to all but the
// last allowed CPU (the provider's, as pin does for the bench),
// takes niceness nice, and writes the registries' hosts as one JSON line to stdout. In a
// process of their own, the hostile registries' goroutines (endless and dripping bodies, 3.8 MB
// indexes) cannot queue ahead of the healthy registry's and the load generator's in the bench's
// Go scheduler; the kernel shares the CPU between the two processes.
func serveSoakHostile(args []string, stdin io.Reader, stdout io.Writer) error {
	nice := 0
	if len(args) > 0 {
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 0 || n > 19 {
			return fmt.Errorf("%s: niceness %q: want 0..19", soakHostileCommand, args[0])
		}
		nice = n
	}
	if len(args) < 2 || args[1] != "nopin" {
		_ = pin() // best effort: unpinned, the figures say so in "pinned"
	}
	if tasks, err := os.ReadDir("/proc/self/task"); err == nil {
		for _, t := range tasks { // niceness is per thread on Linux; new threads inherit it
			if tid, err := strconv.Atoi(t.Name()); err == nil {
				_ = unix.Setpriority(unix.PRIO_PROCESS, tid, nice) // best effort, as above
			}
		}
	}
	hosts, stop := startHostile()
	defer stop()
	if err := json.NewEncoder(stdout).Encode(hosts); err != nil {
		return err
	}
	_, err := io.Copy(io.Discard, stdin)
	return err
}

// spawnHostile starts serveSoakHostile in a child process of this binary and returns the
// hosts it serves and how to stop it.
func spawnHostile(ctx context.Context, nice int, pinned bool, stderr io.Writer) (map[string]string, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	placement := "pin"
	if !pinned {
		placement = "nopin"
	}
	cmd := exec.CommandContext(ctx, self, soakHostileCommand, strconv.Itoa(nice), placement) //nolint:gosec // G204: this binary itself, with fixed arguments
	cmd.Stderr = stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	stop := func() {
		_ = in.Close() // ends the child
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	var hosts map[string]string
	if err := json.NewDecoder(out).Decode(&hosts); err != nil {
		stop()
		return nil, nil, fmt.Errorf("soak: hostile registries process: %w", err)
	}
	return hosts, stop, nil
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
	// Where late answers wait: HealthyRegistryRequests, HealthyRegistryP99Ms and
	// HealthyRegistryMaxMs are the healthy registry's own time per request (its handler, in
	// this process); BenchLagP99Ms and BenchLagMaxMs how late this process's 10 ms timer woke
	// (its goroutines' wait for CPU); ProviderOver3s the requests of this endpoint the provider
	// itself took over 3 s to answer (imagetrust_request_duration_seconds, body read to answer
	// written), against the batches this process saw answered late or not at all.
	HealthyRegistryRequests int     `json:"healthy_registry_requests"`
	HealthyRegistryP99Ms    float64 `json:"healthy_registry_p99_ms"`
	HealthyRegistryMaxMs    float64 `json:"healthy_registry_max_ms"`
	BenchLagP99Ms           float64 `json:"bench_lag_p99_ms"`
	BenchLagMaxMs           float64 `json:"bench_lag_max_ms"`
	ProviderOver3s          int     `json:"provider_over_3s"`
}

// soakProbe times the healthy registry's requests in this process.
type soakProbe struct {
	mu  sync.Mutex
	reg []time.Duration
}

// wrap times next's requests.
func (pr *soakProbe) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		t0 := time.Now()
		next.ServeHTTP(w, req)
		el := time.Since(t0)
		pr.mu.Lock()
		pr.reg = append(pr.reg, el)
		pr.mu.Unlock()
	})
}

// take returns the request times recorded since the last take, sorted.
func (pr *soakProbe) take() []time.Duration {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	out := pr.reg
	pr.reg = nil
	slices.Sort(out)
	return out
}

// providerSlow is the provider's count of endpoint requests and of those answered within 3 s
// (imagetrust_request_duration_seconds).
func (p *provider) providerSlow(endpoint string) (total, within3s float64) {
	pre := `imagetrust_request_duration_seconds_bucket{endpoint="` + endpoint + `",le=`
	for l := range strings.Lines(p.metricsText()) {
		rest, ok := strings.CutPrefix(l, pre)
		if !ok {
			continue
		}
		le, v, _ := strings.Cut(rest, "} ")
		n, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
		switch le {
		case `"3"`:
			within3s = n
		case `"+Inf"`:
			total = n
		}
	}
	return total, within3s
}

// runSoak runs the soak group on registries of its own and writes one soakLine per phase and
// endpoint to stdout.
func runSoak(ctx context.Context, f flags, e *env, stdout, stderr io.Writer, logf func(string, ...any)) error {
	healthy := registrytest.New()
	defer closeRegistry(healthy)
	probe := &soakProbe{}
	healthy.Hostile(nil, probe.wrap(healthy.Next()))
	logf("soak: pushing %d images to %s", soakImages, healthy.Host)
	keys, err := pushImages(ctx, healthy.Host, soakImages, 30)
	if err != nil {
		return err
	}
	var hostile map[string]string
	if f.soak.inProcess {
		var stop func()
		hostile, stop = startHostile()
		defer stop()
		logf("soak: hostile registries in this process")
	} else {
		var stop func()
		hostile, stop, err = spawnHostile(ctx, f.soak.hostileNice, f.pin, stderr)
		if err != nil {
			return err
		}
		defer stop()
		logf("soak: hostile registries in a process of their own, niceness %d", f.soak.hostileNice)
	}

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
		for len(out) < n {
			i := hostileSeq.Add(1)
			host := hostile[soakHostileNames[int(i)%len(soakHostileNames)]]
			out = append(out, fmt.Sprintf("%s/tenant/app%d:v%d", host, i%50, i))
		}
		return out
	}
	// Each phase draws healthy keys from its own part of the pushed images (before: the first
	// fifth, attack: the next three fifths, after: the last fifth), so the attack's healthy keys
	// are fresh (registry reads, not cached answers) however many keys the phase before sent.
	var healthySeq atomic.Int64
	healthyPart := keys
	healthyBatch := func(n int) []string {
		out := make([]string, n)
		for j := range out {
			out[j] = healthyPart[int(healthySeq.Add(1)-1)%len(healthyPart)]
		}
		return out
	}
	parts := map[string][]string{"before": keys[:len(keys)/5], "attack": keys[len(keys)/5 : len(keys)*4/5], "after": keys[len(keys)*4/5:]}
	enc := json.NewEncoder(stdout)
	for _, ph := range []struct {
		name    string
		d       time.Duration
		hostile bool
	}{{"before", f.soak.before, false}, {"attack", f.soak.attack, true}, {"after", f.soak.after, false}} {
		if ph.d <= 0 {
			continue
		}
		healthyPart = parts[ph.name]
		healthySeq.Store(0)
		lines, err := p.soakPhase(ctx, ph.name, ph.d, ph.hostile, probe, healthyBatch, hostileBatch)
		if err != nil {
			return err
		}
		for _, l := range lines {
			l.Pinned = e.pin.String()
			if err := enc.Encode(l); err != nil {
				return err
			}
		}
		logf("soak %s: RSS %.1f MB (peak %.1f), goroutines %d (peak %d); healthy registry p99 %.2f ms (max %.2f) over %d requests; bench timer lag p99 %.0f ms (max %.0f); provider answers over 3 s: resolve %d, verify %d",
			ph.name, lines[0].RSSMB, lines[0].PeakRSSMB, lines[0].Goroutines, lines[0].PeakGoroutines, lines[0].HealthyRegistryP99Ms, lines[0].HealthyRegistryMaxMs,
			lines[0].HealthyRegistryRequests, lines[0].BenchLagP99Ms, lines[0].BenchLagMaxMs, lines[0].ProviderOver3s, lines[1].ProviderOver3s)
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
func (e *env) startSoak(ctx context.Context, bin string, stderr io.Writer, healthy *registrytest.Registry, hostile map[string]string, pub string) (*provider, error) {
	api, met, err := freeAddrs()
	if err != nil {
		return nil, err
	}
	regs := []config.Registry{{Host: healthy.Host, Insecure: true}}
	for _, h := range hostile {
		regs = append(regs, config.Registry{Host: h, Insecure: true})
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
func (p *provider) soakPhase(ctx context.Context, phase string, d time.Duration, hostile bool, probe *soakProbe, healthyBatch, hostileBatch func(int) []string) ([]soakLine, error) {
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

	probe.take()
	slowBefore := map[string][2]float64{}
	for _, ep := range []string{"resolve", "verify"} {
		t, w := p.providerSlow(ep)
		slowBefore[ep] = [2]float64{t, w}
	}
	var lags []time.Duration // this process's timer lateness, by the sampler below
	var peakG atomic.Int64
	var peakRSS atomic.Int64 // KB
	stopSample := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			t0 := time.Now()
			select {
			case <-stopSample:
				return
			case <-time.After(10 * time.Millisecond):
			}
			lags = append(lags, time.Since(t0)-10*time.Millisecond)
		}
	})
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
	regTimes := probe.take()
	slices.Sort(lags)
	var out []soakLine
	for _, ep := range []string{"resolve", "verify"} {
		s := by[ep]
		total, within := p.providerSlow(ep)
		over3s := int((total - slowBefore[ep][0]) - (within - slowBefore[ep][1]))
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
			HealthyRegistryRequests: len(regTimes), HealthyRegistryP99Ms: ms(pct(regTimes, 99)), HealthyRegistryMaxMs: ms(pct(regTimes, 100)),
			BenchLagP99Ms: ms(pct(lags, 99)), BenchLagMaxMs: ms(pct(lags, 100)), ProviderOver3s: over3s,
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
	n, _ := p.metric("go_goroutines ")
	return int(n)
}
