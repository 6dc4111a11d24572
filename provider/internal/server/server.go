// Package server is the provider's HTTP edge: Gatekeeper's external-data protocol on an mTLS
// listener (POST /v1/resolve, /v1/mutate, /v1/verify), and /healthz, /readyz and /metrics on a
// separate plain-HTTP listener. It decodes and bounds requests, de-duplicates keys, runs the
// endpoint's Lookup under the endpoint deadline, makes sure every key gets exactly one item, and
// logs one JSON line per batch.
package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// Lookup answers one batch: it is called with de-duplicated keys and a context carrying the
// endpoint deadline, and must return exactly one item per key (per-key errors inside the items,
// as strings starting with a class word: "invalid reference: …", "timed out: …") before the
// deadline.
type Lookup func(ctx context.Context, keys []string) []wire.Item

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
	Scan    Endpoint
	// MaxRequestBytes caps a request body; MaxKeys caps the keys of one request (before
	// de-duplication).
	MaxRequestBytes int64
	MaxKeys         int
	// LateGrace is how long after the deadline the handler still waits for a Lookup that has not
	// returned before answering every key with "timed out" (default 50ms, at most a tenth of the
	// deadline).
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
	inFlight                      prometheus.Gauge
	duration, batchSize           prometheus.Observer
	ok                            prometheus.Counter
	keyValue, keyError, keyTimout prometheus.Counter
}

func newEndpoint(name string, ep Endpoint, d Deps) http.Handler {
	if ep.Lookup == nil {
		ep.Lookup = func(_ context.Context, keys []string) []wire.Item {
			items := make([]wire.Item, len(keys))
			for i, k := range keys {
				items[i] = wire.Item{Key: k, Error: "unavailable: endpoint " + name + " is not configured"}
			}
			return items
		}
	}
	if ep.Deadline <= 0 {
		ep.Deadline = time.Second
	}
	m := d.Metrics
	return &endpointHandler{
		name: name, ep: ep, d: d, lg: d.Logger,
		inFlight:  m.inFlight.WithLabelValues(name),
		duration:  m.duration.WithLabelValues(name),
		batchSize: m.batchSize.WithLabelValues(name),
		ok:        m.requests.WithLabelValues(name, "200"),
		keyValue:  m.keys.WithLabelValues(name, "value"),
		keyError:  m.keys.WithLabelValues(name, "error"),
		keyTimout: m.keys.WithLabelValues(name, "timeout"),
	}
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

	unique := Dedupe(keys)
	items, late := h.lookup(ctx, unique)

	var nErr, nTimeout int
	var firstErr string
	for i := range items {
		if e := items[i].Error; e != "" {
			nErr++
			if strings.HasPrefix(e, "timed out") {
				nTimeout++
			}
			if firstErr == "" {
				firstErr = e
			}
		}
	}
	body, err := EncodeResponse(items, h.ep.Idempotent, "")
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
	_, werr := w.Write(body)

	d := time.Since(start)
	h.ok.Inc()
	h.duration.Observe(d.Seconds())
	h.keyValue.Add(float64(len(items) - nErr))
	h.keyError.Add(float64(nErr - nTimeout))
	h.keyTimout.Add(float64(nTimeout))

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

// readKeys reads the bounded body and decodes it.
func (h *endpointHandler) readKeys(w http.ResponseWriter, r *http.Request) ([]string, error) {
	limit := h.d.MaxRequestBytes
	if limit <= 0 {
		limit = 1 << 20
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
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

// lookup runs the endpoint's Lookup and guarantees one item per key, in key order, by the
// deadline (plus a short grace): missing, duplicated or foreign items are repaired, a panic
// becomes a per-key error, and a Lookup that overruns its deadline is abandoned with every key
// "timed out". late reports that the Lookup did not return in time.
func (h *endpointHandler) lookup(ctx context.Context, keys []string) (items []wire.Item, late bool) {
	if len(keys) == 0 {
		return []wire.Item{}, false
	}
	done := make(chan []wire.Item, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				h.d.Metrics.panics.Inc()
				h.lg.LogAttrs(context.Background(), slog.LevelError, "panic in lookup",
					slog.String("endpoint", h.name), slog.Any("panic", v))
				done <- nil
			}
		}()
		done <- h.ep.Lookup(ctx, keys)
	}()
	var got []wire.Item
	select {
	case got = <-done:
	case <-ctx.Done():
		grace := h.d.LateGrace
		if grace <= 0 {
			grace = min(50*time.Millisecond, h.ep.Deadline/10)
		}
		t := time.NewTimer(grace)
		select {
		case got = <-done:
			t.Stop()
		case <-t.C:
			late = true
			got = nil
		}
	}
	if got == nil && !late {
		return fill(keys, nil, "unavailable: internal error in the "+h.name+" lookup"), false
	}
	if late {
		return fill(keys, nil, fmt.Sprintf("timed out: no answer within the %v deadline of /v1/%s", h.ep.Deadline, h.name)), true
	}
	return fill(keys, got, "unavailable: internal error: the "+h.name+" lookup gave no answer for this key"), false
}

// fill returns one item per key, in key order, taking the first item returned for each key and
// giving missing keys the error missing.
func fill(keys []string, got []wire.Item, missing string) []wire.Item {
	if len(got) == len(keys) {
		same := true
		for i := range got {
			if got[i].Key != keys[i] {
				same = false
				break
			}
		}
		if same {
			for i := range got {
				if got[i].Error == "" && got[i].Value == nil {
					got[i].Error = missing
				}
			}
			return got
		}
	}
	byKey := make(map[string]int, len(got))
	for i := range got {
		if _, dup := byKey[got[i].Key]; !dup {
			byKey[got[i].Key] = i
		}
	}
	out := make([]wire.Item, len(keys))
	for i, k := range keys {
		if j, ok := byKey[k]; ok {
			out[i] = got[j]
			if out[i].Error == "" && out[i].Value == nil {
				out[i].Error = missing
			}
			continue
		}
		out[i] = wire.Item{Key: k, Error: missing}
	}
	return out
}

func clientName(r *http.Request) string {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		return r.TLS.PeerCertificates[0].Subject.CommonName
	}
	return ""
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
