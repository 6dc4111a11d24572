// Package server is the provider's HTTP edge: Gatekeeper's external-data protocol on an mTLS
// listener (POST /v1/resolve, /v1/mutate, /v1/verify), and /healthz, /readyz and /metrics on a
// separate plain-HTTP listener. It decodes and bounds requests, de-duplicates keys, owns the
// request deadline (from the moment the request arrived) and runs the endpoint's Lookup under
// it, makes sure every key gets exactly one item, counts keys by result and error class, and
// logs one JSON line per batch.
package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// Lookup answers one batch: it is called with de-duplicated keys and a context carrying the
// endpoint deadline, and must return exactly one item per key before the deadline, with the
// class of each item's error aligned with the items ("" for a value; nil when no item has an
// error). Per-key error messages start with their class (wire.Class.Prefix). A lookup.Pipeline
// is one.
type Lookup func(ctx context.Context, keys []string) ([]wire.Item, []wire.Class)

// Endpoint is one external-data endpoint.
type Endpoint struct {
	Lookup Lookup
	// Deadline for a whole batch (required, > 0).
	Deadline time.Duration
	// Idempotent is reported in every response (true for mutation: Gatekeeper requires it).
	Idempotent bool
}

// Deps are what the API handler needs. Logger and Metrics are required; an Endpoint with a nil
// Lookup is not served (Resolve and Mutate are required).
type Deps struct {
	Logger  *slog.Logger
	Metrics *Metrics
	Resolve Endpoint
	Mutate  Endpoint
	Verify  Endpoint
	// VerifySignatures serves POST /v1/verify/signatures (optional).
	VerifySignatures Endpoint
	Scan             Endpoint
	// Attestations serves POST /v1/attestations (optional).
	Attestations Endpoint
	// MaxRequestBytes caps a request body; MaxKeys caps the keys of one request (before
	// de-duplication).
	MaxRequestBytes int64
	MaxKeys         int
	// LateGrace is how long after the deadline the handler still waits for a Lookup that has not
	// returned before answering every key with "timed out" (optional; default
	// batch.Margin(Deadline)).
	LateGrace time.Duration
}

// NewServer returns the HTTPS API handler.
func NewServer(d Deps) http.Handler {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics, _ = NewMetrics(nil)
	}
	mux := http.NewServeMux()
	addRoutes(mux, d)
	var h http.Handler = mux
	h = securityHeaders(h)
	h = recoverPanics(d.Logger, d.Metrics)(h)
	return h
}

type endpointHandler struct {
	name string
	ep   Endpoint
	d    Deps
	lg   *slog.Logger

	// this endpoint's series, resolved once
	inFlight                       prometheus.Gauge
	duration, batchSize            prometheus.Observer
	ok                             prometheus.Counter
	keyValue, keyError, keyTimeout prometheus.Counter
	// errClass counts per-key errors by class.
	errClass map[wire.Class]prometheus.Counter
	// noAnswer is the error of a key the lookup gave no item for.
	noAnswer string
	// bodies are response buffers for reuse (*[]byte); requests are request body buffers
	// (*bytes.Buffer).
	bodies, requests sync.Pool
}

// maxPooledBody is the largest response (or request) buffer kept for reuse. It covers a full
// batch of the default server.maxKeys (1000) answers of /v1/scan, the largest answers (about
// 3.8 KB for a 34-finding scan: 3.8 MB), and of every other endpoint, so a batch of the sizes
// the provider is configured for reuses its buffer rather than allocating it and its growth
// afresh. A larger buffer (a maxKeys raised past the default, or answers of hundreds of
// findings) is left to the GC, so what the pool keeps stays bounded by 4 MiB per batch in
// flight.
const maxPooledBody = 4 << 20

func newEndpoint(name string, ep Endpoint, d Deps) http.Handler {
	if ep.Lookup == nil {
		ep.Lookup = func(_ context.Context, keys []string) ([]wire.Item, []wire.Class) {
			return fill(keys, nil, nil, wire.ClassUnavailable, wire.ClassUnavailable.Message("endpoint "+name+" is not configured"))
		}
	}
	if ep.Deadline <= 0 {
		ep.Deadline = time.Second
	}
	m := d.Metrics
	h := &endpointHandler{
		name: name, ep: ep, d: d, lg: d.Logger,
		inFlight:   m.inFlight.WithLabelValues(name),
		duration:   m.duration.WithLabelValues(name),
		batchSize:  m.batchSize.WithLabelValues(name),
		ok:         m.requests.WithLabelValues(name, "200"),
		keyValue:   m.keys.WithLabelValues(name, "value"),
		keyError:   m.keys.WithLabelValues(name, "error"),
		keyTimeout: m.keys.WithLabelValues(name, "timeout"),
		errClass:   make(map[wire.Class]prometheus.Counter, len(wire.Classes)),
		noAnswer:   wire.ClassUnavailable.Message("internal error: the " + name + " lookup gave no answer for this key"),
	}
	for _, c := range wire.Classes {
		h.errClass[c] = m.keyErrors.WithLabelValues(name, string(c))
	}
	return h
}

func (h *endpointHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	m := h.d.Metrics
	h.inFlight.Inc()
	defer h.inFlight.Dec()

	// The deadline runs from the moment the request arrived: body reading counts.
	ctx, cancel := context.WithTimeout(r.Context(), h.ep.Deadline)
	defer cancel()

	keys, err := h.readKeys(w, r)
	if err != nil {
		var re *RequestError
		if !errors.As(err, &re) {
			re = &RequestError{Status: http.StatusBadRequest, Msg: err.Error()}
		}
		writeSystemError(w, re.Status, re.Msg, h.ep.Idempotent)
		m.requests.WithLabelValues(h.name, strconv.Itoa(re.Status)).Inc()
		h.duration.Observe(time.Since(start).Seconds())
		h.lg.LogAttrs(ctx, slog.LevelWarn, "batch",
			slog.String("endpoint", h.name), slog.Int("keys", len(keys)), slog.Int("status", re.Status),
			slog.String("system_error", re.Msg), slog.Float64("duration_ms", ms(time.Since(start))),
			slog.String("client", clientName(r)))
		return
	}
	h.batchSize.Observe(float64(len(keys)))

	unique, _ := batch.Dedupe(keys)
	items, classes, late := h.lookup(ctx, unique)

	var nErr, nTimeout int
	var firstErr string
	for i, c := range classes {
		if c == "" {
			continue
		}
		nErr++
		if c == wire.ClassTimedOut {
			nTimeout++
		}
		if ctr := h.errClass[c]; ctr != nil {
			ctr.Inc()
		}
		if firstErr == "" {
			firstErr = items[i].Error
		}
	}
	buf, _ := h.bodies.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
	}
	body, err := appendResponse(*buf, items, h.ep.Idempotent, "")
	defer func() {
		if cap(body) <= maxPooledBody {
			*buf = body[:0]
			h.bodies.Put(buf)
		}
	}()
	if err != nil {
		// A value the lookup produced cannot be encoded: a bug, reported loudly, never an allow.
		writeSystemError(w, http.StatusInternalServerError, "encoding response: "+err.Error(), h.ep.Idempotent)
		m.requests.WithLabelValues(h.name, "500").Inc()
		h.lg.LogAttrs(ctx, slog.LevelError, "batch", slog.String("endpoint", h.name),
			slog.Int("keys", len(keys)), slog.String("system_error", err.Error()))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	hc := heldConnOf(r) // the body's TLS records in one write to the socket
	if hc != nil {
		hc.hold()
	}
	_, werr := w.Write(body)
	if hc != nil {
		if err := hc.release(); err != nil && werr == nil {
			werr = err
		}
	}

	d := time.Since(start)
	h.ok.Inc()
	h.duration.Observe(d.Seconds())
	h.keyValue.Add(float64(len(items) - nErr))
	h.keyError.Add(float64(nErr - nTimeout))
	h.keyTimeout.Add(float64(nTimeout))

	level := slog.LevelInfo
	attrs := []slog.Attr{
		slog.String("endpoint", h.name),
		slog.Int("keys", len(keys)),
		slog.Int("unique", len(unique)),
		slog.Int("errors", nErr),
		slog.Int("timed_out", nTimeout),
		slog.Float64("duration_ms", ms(d)),
		slog.String("client", clientName(r)),
	}
	if firstErr != "" {
		attrs = append(attrs, slog.String("first_error", firstErr))
	}
	if late {
		level = slog.LevelWarn
		attrs = append(attrs, slog.Bool("lookup_late", true))
	}
	if werr != nil {
		level = slog.LevelWarn
		attrs = append(attrs, slog.String("write_error", werr.Error()))
	}
	h.lg.LogAttrs(ctx, level, "batch", attrs...)
}

// readKeys reads the bounded body into a reused buffer and decodes it (the keys are copies).
func (h *endpointHandler) readKeys(w http.ResponseWriter, r *http.Request) ([]string, error) {
	limit := h.d.MaxRequestBytes
	if limit <= 0 {
		limit = 1 << 20
	}
	buf, _ := h.requests.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	defer func() {
		if buf.Cap() <= maxPooledBody {
			buf.Reset()
			h.requests.Put(buf)
		}
	}()
	buf.Reset()
	if r.ContentLength > 0 {
		buf.Grow(int(min(r.ContentLength, limit)) + bytes.MinRead) // read to EOF without growing
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	body := buf.Bytes()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &RequestError{
				Status: http.StatusRequestEntityTooLarge,
				Msg:    fmt.Sprintf("request body exceeds %d bytes (server.maxRequestBytes)", mbe.Limit),
			}
		}
		return nil, badRequest("reading request body: %v", err)
	}
	return DecodeRequest(body, h.d.MaxKeys)
}

// lookup runs the endpoint's Lookup and guarantees one item per key, in key order, with its
// class, by the deadline (plus a short grace): missing, duplicated or foreign items are
// repaired, a panic becomes a per-key error, and a Lookup that overruns its deadline is
// abandoned with every key "timed out". late reports that the Lookup did not return in time.
func (h *endpointHandler) lookup(ctx context.Context, keys []string) (items []wire.Item, classes []wire.Class, late bool) {
	if len(keys) == 0 {
		return []wire.Item{}, nil, false
	}
	type answer struct {
		items   []wire.Item
		classes []wire.Class
	}
	done := make(chan *answer, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				h.d.Metrics.panics.Inc()
				h.lg.LogAttrs(context.Background(), slog.LevelError, "panic in lookup",
					slog.String("endpoint", h.name), slog.Any("panic", v))
				done <- nil
			}
		}()
		it, cl := h.ep.Lookup(ctx, keys)
		done <- &answer{it, cl}
	}()
	var got *answer
	select {
	case got = <-done:
	case <-ctx.Done():
		grace := h.d.LateGrace
		if grace <= 0 {
			grace = batch.Margin(h.ep.Deadline)
		}
		t := time.NewTimer(grace)
		select {
		case got = <-done:
			t.Stop()
		case <-t.C:
			late = true
		}
	}
	if late {
		items, classes = fill(keys, nil, nil, wire.ClassTimedOut, wire.ClassTimedOut.Message(fmt.Sprintf("no answer within the %v deadline of /v1/%s", h.ep.Deadline, h.name)))
		return items, classes, true
	}
	if got == nil {
		items, classes = fill(keys, nil, nil, wire.ClassUnavailable, wire.ClassUnavailable.Message("internal error in the "+h.name+" lookup"))
		return items, classes, false
	}
	items, classes = fill(keys, got.items, got.classes, wire.ClassUnavailable, h.noAnswer)
	return items, classes, false
}

// fill returns one item per key, in key order, with the class of each item's error, taking the
// first item returned for each key and giving missing keys (and items with neither a value
// nor an error) the error missing, of class missingClass. An error item whose class the lookup
// did not give is of class unavailable.
func fill(keys []string, got []wire.Item, gotClasses []wire.Class, missingClass wire.Class, missing string) ([]wire.Item, []wire.Class) {
	classOf := func(j int) wire.Class {
		if j < len(gotClasses) && gotClasses[j] != "" {
			return gotClasses[j]
		}
		return wire.ClassUnavailable
	}
	if len(got) == len(keys) {
		same := true
		for i := range got {
			if got[i].Key != keys[i] {
				same = false
				break
			}
		}
		if same {
			classes := make([]wire.Class, len(got))
			for i := range got {
				switch {
				case got[i].Error != "":
					classes[i] = classOf(i)
				case got[i].Value == nil:
					got[i].Error, classes[i] = missing, missingClass
				}
			}
			return got, classes
		}
	}
	byKey := make(map[string]int, len(got))
	for i := range got {
		if _, dup := byKey[got[i].Key]; !dup {
			byKey[got[i].Key] = i
		}
	}
	out := make([]wire.Item, len(keys))
	classes := make([]wire.Class, len(keys))
	for i, k := range keys {
		j, ok := byKey[k]
		switch {
		case !ok:
			out[i], classes[i] = wire.Item{Key: k, Error: missing}, missingClass
		case got[j].Error != "":
			out[i], classes[i] = got[j], classOf(j)
		case got[j].Value == nil:
			out[i] = got[j]
			out[i].Error, classes[i] = missing, missingClass
		default:
			out[i] = got[j]
		}
	}
	return out, classes
}

func clientName(r *http.Request) string {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return r.TLS.PeerCertificates[0].Subject.CommonName
	}
	return ""
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
