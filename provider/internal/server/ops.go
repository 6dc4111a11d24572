package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// OpsDeps are what the plain-HTTP operations handler needs.
type OpsDeps struct {
	// Gatherer is the provider's own registry (never the global default one).
	Gatherer prometheus.Gatherer
	// Ready reports whether the provider should receive traffic; nil error means ready.
	Ready func() error
}

// NewOpsHandler returns the handler of the operations listener: GET /healthz, /readyz, /metrics.
func NewOpsHandler(d OpsDeps) http.Handler {
	mux := http.NewServeMux()
	addOpsRoutes(mux, d)
	return mux
}

func healthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
}

func readyz(ready func() error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if ready != nil {
			if err := ready(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
				return
			}
		}
		_, _ = w.Write([]byte("ok\n"))
	})
}

func metricsHandler(d OpsDeps) http.Handler {
	g := d.Gatherer
	if g == nil {
		g = prometheus.NewRegistry()
	}
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
