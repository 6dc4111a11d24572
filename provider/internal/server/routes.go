package server

import (
	"fmt"
	"net/http"
)

// addRoutes lists every route of the HTTPS API (Go 1.22 patterns).
func addRoutes(mux *http.ServeMux, d Deps) {
	mux.Handle("POST /v1/resolve", newEndpoint("resolve", d.Resolve, d))
	mux.Handle("POST /v1/mutate", newEndpoint("mutate", d.Mutate, d))
	// POST /v1/verify is served when the verify service is wired (Deps.Verify.Lookup != nil).
	if d.Verify.Lookup != nil {
		mux.Handle("POST /v1/verify", newEndpoint("verify", d.Verify, d))
		mux.Handle("/v1/verify", methodNotAllowed())
	} else {
		mux.Handle("/v1/verify", notEnabled())
	}
	// POST /v1/verify/signatures likewise (Deps.VerifySignatures.Lookup != nil).
	if d.VerifySignatures.Lookup != nil {
		mux.Handle("POST /v1/verify/signatures", newEndpoint("verify-signatures", d.VerifySignatures, d))
		mux.Handle("/v1/verify/signatures", methodNotAllowed())
	} else {
		mux.Handle("/v1/verify/signatures", notEnabled())
	}
	// POST /v1/scan likewise (Deps.Scan.Lookup != nil).
	if d.Scan.Lookup != nil {
		mux.Handle("POST /v1/scan", newEndpoint("scan", d.Scan, d))
		mux.Handle("/v1/scan", methodNotAllowed())
	} else {
		mux.Handle("/v1/scan", notEnabled())
	}
	// POST /v1/attestations likewise (Deps.Attestations.Lookup != nil).
	if d.Attestations.Lookup != nil {
		mux.Handle("POST /v1/attestations", newEndpoint("attestations", d.Attestations, d))
		mux.Handle("/v1/attestations", methodNotAllowed())
	} else {
		mux.Handle("/v1/attestations", notEnabled())
	}
	for _, p := range []string{"/v1/resolve", "/v1/mutate"} {
		mux.Handle(p, methodNotAllowed())
	}
	mux.Handle("/", notFound())
}

// addOpsRoutes lists the routes of the plain-HTTP operations listener.
func addOpsRoutes(mux *http.ServeMux, d OpsDeps) {
	mux.Handle("GET /healthz", healthz())
	mux.Handle("GET /readyz", readyz(d.Ready))
	mux.Handle("GET /metrics", metricsHandler(d))
}

func notEnabled() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeSystemError(w, http.StatusNotFound, fmt.Sprintf("endpoint %s is not enabled in this provider", r.URL.Path), false)
	})
}

func methodNotAllowed() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		writeSystemError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s; use POST", r.Method, r.URL.Path), false)
	})
}
