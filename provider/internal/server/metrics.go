package server

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the server's collectors. Build them once per Registerer with NewMetrics.
type Metrics struct {
	requests  *prometheus.CounterVec   // endpoint, code
	keys      *prometheus.CounterVec   // endpoint, result (value|error|timeout)
	keyErrors *prometheus.CounterVec   // endpoint, class (wire.Class)
	duration  *prometheus.HistogramVec // endpoint
	batchSize *prometheus.HistogramVec // endpoint
	inFlight  *prometheus.GaugeVec     // endpoint
	panics    prometheus.Counter
	tlsReload *prometheus.CounterVec // result (ok|error)
	certNotAf prometheus.Gauge
}

// NewMetrics creates the server's collectors and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagetrust_requests_total",
			Help: "External-data requests by endpoint and HTTP status code.",
		}, []string{"endpoint", "code"}),
		keys: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagetrust_keys_total",
			Help: "Unique keys answered by endpoint and result (value, error, timeout).",
		}, []string{"endpoint", "result"}),
		keyErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagetrust_key_errors_total",
			Help: "Per-key errors answered by endpoint and class (invalid reference, registry not allowed, not found, denied, unavailable, timed out).",
		}, []string{"endpoint", "class"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "imagetrust_request_duration_seconds",
			Help:    "Time to answer an external-data request, from body read to response written.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, .8, 1, 1.5, 2, 2.5, 3, 5},
		}, []string{"endpoint"}),
		batchSize: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "imagetrust_request_keys",
			Help:    "Keys per external-data request, before de-duplication.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000},
		}, []string{"endpoint"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "imagetrust_requests_in_flight",
			Help: "External-data requests being answered.",
		}, []string{"endpoint"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "imagetrust_handler_panics_total",
			Help: "Panics recovered in HTTP handlers or lookups (each is a bug).",
		}),
		tlsReload: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "imagetrust_tls_reloads_total",
			Help: "Reloads of the serving certificate, key and client CA after a file change, by result.",
		}, []string{"result"}),
		certNotAf: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "imagetrust_tls_certificate_expiry_timestamp_seconds",
			Help: "NotAfter of the serving certificate in use (Unix seconds).",
		}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.keys, m.keyErrors, m.duration, m.batchSize, m.inFlight, m.panics, m.tlsReload, m.certNotAf} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("server: registering metrics: %w", err)
			}
		}
	}
	return m, nil
}
