package scan

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagetrust/imagetrust/provider/internal/cache"
	"github.com/imagetrust/imagetrust/provider/internal/pki"
	"github.com/imagetrust/imagetrust/provider/internal/scan/scantest"
	"github.com/imagetrust/imagetrust/provider/internal/server"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// benchImages pushes n images, each with one signed cosign vuln attestation carrying the
// ~20 KB Trivy report of the alpine sample, and returns their digest references.
func benchImages(b *testing.B, e *scanEnv, n int) []string {
	b.Helper()
	pred := cosignVulnPredicate(b, sample(b, "trivy-image-alpine-310.json"), time.Now().Add(-time.Hour))
	keys := make([]string, n)
	for i := range n {
		d := e.push(b, "bench/app", "v"+itoa(i))
		e.attest(b, d, e.ci, PredicateCosignVuln, pred)
		keys[i] = d.String()
	}
	return keys
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var buf [20]byte
	p := len(buf)
	for ; i > 0; i /= 10 {
		p--
		buf[p] = byte('0' + i%10)
	}
	return string(buf[p:])
}

// BenchmarkScanCold: batches of 100 keys, no cache: every key is a full lookup (statements
// read and verified, predicate decoded, value chosen and encoded) against the loopback registry.
func BenchmarkScanCold(b *testing.B) {
	e := newScanEnv(b, envOptions{})
	keys := benchImages(b, e, 200)
	ctx := context.Background()
	// One pass first so connections and the registry client are warm, as in a running
	// provider (no answer cache: the timed passes do every lookup again).
	e.svc.Scan(ctx, keys)
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	n := 0
	for i := 0; b.Loop(); i++ {
		off := (i * 100) % len(keys)
		items := e.svc.Scan(ctx, keys[off:off+100])
		for _, it := range items {
			if it.Error != "" {
				b.Fatal(it.Error)
			}
		}
		n += len(items)
	}
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "images/s")
	// CPU of the whole process (provider side and the loopback registry) per key: what the
	// machine's load does not change.
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(n), "cpu-µs/key")
}

// cpuTime is the user+system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkScanWarm: batches of 100 keys, every answer cached; reports the median batch.
func BenchmarkScanWarm(b *testing.B) {
	c, err := cache.New[*Value](cache.Options{Name: "scan-bench", MaxEntries: 1000, TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	e := newScanEnv(b, envOptions{cache: c})
	keys := benchImages(b, e, 100)
	ctx := context.Background()
	for _, it := range e.svc.Scan(ctx, keys) {
		if it.Error != "" {
			b.Fatal(it.Error)
		}
	}
	var durs []time.Duration
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		t0 := time.Now()
		e.svc.Scan(ctx, keys)
		durs = append(durs, time.Since(t0))
	}
	slices.Sort(durs)
	b.ReportMetric(float64(durs[len(durs)/2].Microseconds()), "p50-µs/batch")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(len(durs)*len(keys)), "cpu-µs/key")
}

// BenchmarkScanCachedValue: heap bytes per cached answer for 20,000 answers of the
// 34-finding report shape make bench uses: shared, every image listing the same findings (one
// base image), and distinct, every finding's installed version unique to its image; form=parts
// is what load keeps (findings interned), form=json the whole answer as one byte slice, and
// form=packer the answer packed by cache.Packer (as /v1/verify keeps its answers), with its
// packing time.
func BenchmarkScanCachedValue(b *testing.B) {
	for _, shared := range []bool{true, false} {
		for _, form := range []string{"parts", "json", "packer"} {
			name := "findings=distinct/form=" + form
			if shared {
				name = "findings=shared/form=" + form
			}
			b.Run(name, func(b *testing.B) {
				n := 20000
				if form == "packer" {
					n = 2000 // packing is slow; the figure is per value
				}
				for b.Loop() {
					kept := make([]*Value, n)
					in, p := &interner{}, cache.NewPacker(1<<16)
					runtime.GC()
					var m0, m1 runtime.MemStats
					runtime.ReadMemStats(&m0)
					var encode time.Duration
					for i := range kept {
						v := benchValue(i, shared)
						t0 := time.Now()
						switch form {
						case "parts":
							enc, err := encodeValue(v, in)
							if err != nil {
								b.Fatal(err)
							}
							kept[i] = &Value{Scanned: true, enc: enc}
						case "json":
							raw, _ := json.Marshal(v)
							kept[i] = &Value{Scanned: true, enc: &encoded{head: raw, size: len(raw)}}
						case "packer":
							raw, _ := json.Marshal(v)
							packs = append(packs, p.Pack(raw))
							kept[i] = &Value{Scanned: true}
						}
						encode += time.Since(t0)
					}
					runtime.GC()
					runtime.ReadMemStats(&m1)
					b.ReportMetric(float64(m1.HeapAlloc-m0.HeapAlloc)/float64(n), "heap-B/value")
					b.ReportMetric(float64(encode.Microseconds())/float64(n), "encode-µs/value")
					runtime.KeepAlive(kept)
					runtime.KeepAlive(p)
					packs = nil
				}
			})
		}
	}
}

// packs keeps the packed answers of BenchmarkScanCachedValue's form=packer alive.
var packs []cache.Packed

// BenchmarkScanRenderPacked: rendering one cached 34-finding answer, per key: form=parts
// (what render does) against unpacking the same answer packed by cache.Packer.
func BenchmarkScanRenderPacked(b *testing.B) {
	p, in := cache.NewPacker(1<<16), &interner{}
	var pks []cache.Packed
	var encs []*encoded
	for i := range 100 {
		v := benchValue(i, true)
		raw, err := json.Marshal(v)
		if err != nil {
			b.Fatal(err)
		}
		pks = append(pks, p.Pack(raw))
		e, err := encodeValue(v, in)
		if err != nil {
			b.Fatal(err)
		}
		encs = append(encs, e)
	}
	b.Run("form=parts", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			e := encs[i%len(encs)]
			_ = e.AppendJSON(make([]byte, 0, e.size))
		}
	})
	b.Run("form=packer", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := pks[i%len(pks)].Unpack(); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchValue is the answer for image i of make bench's report shape (34 findings); with shared
// false every finding's installed version is unique to the image.
func benchValue(i int, shared bool) *Value {
	fs := make([]Finding, 34)
	for j := range fs {
		ver := "1." + itoa(j) + ".0-r0"
		if !shared {
			ver += "-" + itoa(i)
		}
		fs[j] = Finding{ID: "CVE-2024-" + itoa(1000+j), Aliases: []string{"ALPINE-" + itoa(5000+j)}, Severity: Severities[j%5],
			Package: "pkg" + itoa(j%17), PURL: "pkg:apk/alpine/pkg" + itoa(j%17) + "@" + ver + "?arch=x86_64&distro=3.20.3",
			InstalledVersion: ver, FixedVersion: "1." + itoa(j) + ".1-r0", Status: "fixed"}
	}
	d := "sha256:" + strings.Repeat("0", 58) + fmt.Sprintf("%06d", i)
	repo := "registry.example/bench/scan/r" + itoa(i%200)
	r := &Report{Format: "trivy", Scanner: Scanner{Name: "trivy", Version: "0.58.1"}, ScannedAt: time.Now().Add(-time.Hour), Findings: fs}
	return Choose(repo+"@"+d, Subject{Repository: repo, Digest: d},
		[]Candidate{{Source: SourceAttestation, Authority: "bench-trivy", Trusted: true, Signed: true, Report: r}}, nil, Choice{Now: time.Now()})
}

// BenchmarkScanWarmHandler: a warm batch of 100 keys through the server's /v1/scan handler
// (decode, dedupe, the cached lookup, render, the response encoder, metrics and the batch
// log line to io.Discard), written to a ResponseWriter that discards the body as a
// connection's writer would after copying it; every answer cached. The figures per batch are
// the provider's own cost of the warm path, without TLS and the socket.
//
// query=whole asks for the whole answers, query=bank for the findings the seed constraint
// constraints/security/bank.yaml can deny (scantest.BankQuery): 14 of the report's 34.
func BenchmarkScanWarmHandler(b *testing.B) {
	h, keys := warmScanHandler(b)
	for _, q := range benchQueries {
		b.Run("query="+q.name, func(b *testing.B) { benchWarmHandler(b, h, requestBody(b, keys, q.query), len(keys)) })
	}
}

// benchQueries are the queries the warm benchmarks' keys carry.
var benchQueries = []struct{ name, query string }{{"whole", ""}, {"bank", scantest.BankQuery}}

// requestBody is the /v1/scan request for keys, each with query (none when empty).
func requestBody(b *testing.B, keys []string, query string) []byte {
	b.Helper()
	if query != "" {
		keys = slices.Clone(keys)
		for i := range keys {
			keys[i] += "#" + query
		}
	}
	body, err := json.Marshal(wire.ProviderRequest{APIVersion: wire.APIVersion, Kind: wire.ProviderRequestKind, Request: wire.Request{Keys: keys}})
	if err != nil {
		b.Fatal(err)
	}
	return body
}

func benchWarmHandler(b *testing.B, h http.Handler, body []byte, keys int) {
	w := &discardWriter{header: http.Header{}}
	var durs []time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		clear(w.header)
		w.status, w.n = 0, 0
		t0 := time.Now()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/scan", bytes.NewReader(body)))
		durs = append(durs, time.Since(t0))
		if w.status != http.StatusOK || w.n == 0 {
			b.Fatalf("status %d, %d bytes", w.status, w.n)
		}
	}
	slices.Sort(durs)
	b.ReportMetric(float64(w.n), "body-B")
	b.ReportMetric(float64(durs[len(durs)/2].Microseconds()), "p50-µs/batch")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(len(durs)*keys), "cpu-µs/key")
}

// BenchmarkScanWarmMTLS: the warm 100-key /v1/scan batch over mTLS HTTP/1.1 on loopback, the
// provider's own server (server.Runner, its certificate reloader and TLS settings) and a
// client like Gatekeeper's (one kept-alive connection, the whole answer read); p50 is to the
// answer's last byte. Client and server share the process, so allocs/op and cpu-µs/key
// include the client's reading.
//
// handler=static is the floor the answer's size sets: the same server and client, and a
// handler that writes the same response's bytes, built once, with one Write.
//
// query=whole and query=bank are BenchmarkScanWarmHandler's.
func BenchmarkScanWarmMTLS(b *testing.B) {
	h, keys := warmScanHandler(b)
	for _, q := range benchQueries {
		b.Run("query="+q.name, func(b *testing.B) { benchWarmMTLS(b, h, requestBody(b, keys, q.query), len(keys)) })
	}
}

func benchWarmMTLS(b *testing.B, h http.Handler, body []byte, keys int) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/scan", bytes.NewReader(body)))
	if rec.Code != http.StatusOK {
		b.Fatalf("/v1/scan = %d: %.200s", rec.Code, rec.Body.Bytes())
	}
	answer := rec.Body.Bytes()
	static := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
		_, _ = w.Write(answer)
	})
	b.Run("handler=scan", func(b *testing.B) { benchMTLS(b, h, body, keys) })
	b.Run("handler=static", func(b *testing.B) { benchMTLS(b, static, body, keys) })
}

// benchMTLS posts body to h's /v1/scan through server.Runner over mTLS HTTP/1.1 (see
// BenchmarkScanWarmMTLS) and reports the median time to the answer's last byte.
func benchMTLS(b *testing.B, h http.Handler, body []byte, keys int) {
	ca, err := pki.NewCA("imagetrust bench CA")
	if err != nil {
		b.Fatal(err)
	}
	srvKP, err := ca.ServerCert("imagetrust-provider")
	if err != nil {
		b.Fatal(err)
	}
	cliKP, err := ca.ClientCert("gatekeeper")
	if err != nil {
		b.Fatal(err)
	}
	files, err := pki.WriteDir(b.TempDir(), ca, srvKP)
	if err != nil {
		b.Fatal(err)
	}
	metrics, err := server.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	reloader, err := server.NewCertReloader(server.TLSFiles{CertFile: files.Cert, KeyFile: files.Key, ClientCAFile: files.CA}, metrics, nil)
	if err != nil {
		b.Fatal(err)
	}
	apiLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	opsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	lg := slog.New(slog.DiscardHandler)
	runner := &server.Runner{API: h, APIListener: apiLn, OpsListener: opsLn, TLS: reloader.TLSConfig(), Logger: lg,
		ShutdownTimeout: 10 * time.Second, WriteTimeout: time.Minute}
	runner.Ops = server.NewOpsHandler(server.OpsDeps{Ready: runner.Ready})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runner.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Runner.Run() = %v", err)
		}
	})
	cfg, err := pki.ClientTLSConfig(ca, cliKP)
	if err != nil {
		b.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: cfg} // HTTP/1.1, as Gatekeeper's external-data client
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	url := "https://" + apiLn.Addr().String() + "/v1/scan"
	post := func() int {
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(resp.Body)
		if err != nil || resp.StatusCode != http.StatusOK || resp.Proto != "HTTP/1.1" {
			b.Fatalf("%s %d, %v: %.200s", resp.Proto, resp.StatusCode, err, raw)
		}
		return len(raw)
	}
	var n int
	for range 5 { // the connection up and its TLS records at full size
		n = post()
	}
	var durs []time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		t0 := time.Now()
		post()
		durs = append(durs, time.Since(t0))
	}
	slices.Sort(durs)
	b.ReportMetric(float64(n), "body-B")
	b.ReportMetric(float64(durs[len(durs)/2].Microseconds()), "p50-µs/batch")
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(len(durs)*keys), "cpu-µs/key")
}

// warmScanHandler is the API handler serving /v1/scan on a scan service whose cache holds the
// answers of 100 images, each with a signed cosign vuln attestation of benchReport, and those
// images' keys.
func warmScanHandler(b *testing.B) (http.Handler, []string) {
	c, err := cache.New[*Value](cache.Options{Name: "scan-bench", MaxEntries: 1000, TTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	e := newScanEnv(b, envOptions{cache: c})
	pred := cosignVulnPredicate(b, scantest.Report(), time.Now().Add(-time.Hour))
	keys := make([]string, 100)
	for i := range keys {
		d := e.push(b, "bench/app", "v"+itoa(i))
		e.attest(b, d, e.ci, PredicateCosignVuln, pred)
		keys[i] = d.String()
	}
	for _, it := range e.svc.Scan(context.Background(), keys) {
		if it.Error != "" {
			b.Fatal(it.Error)
		}
	}
	metrics, err := server.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	return server.NewServer(server.Deps{
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), Metrics: metrics,
		Scan:    server.Endpoint{Lookup: e.svc.ScanLookup, Deadline: 30 * time.Second},
		MaxKeys: 1000,
	}), keys
}

// discardWriter is an http.ResponseWriter that counts the body's bytes and keeps none.
type discardWriter struct {
	header http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header { return w.header }
func (w *discardWriter) WriteHeader(s int)   { w.status = s }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}
