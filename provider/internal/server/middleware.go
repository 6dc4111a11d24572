package server

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
)

// recoverPanics turns a handler panic into a 500 with a systemError (never a dropped connection),
// logs it with its stack and counts it.
func recoverPanics(log *slog.Logger, m *Metrics) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				v := recover()
				if v == nil {
					return
				}
				if v == http.ErrAbortHandler { //nolint:errorlint // a sentinel value, compared as net/http does
					panic(v)
				}
				m.panics.Inc()
				log.LogAttrs(r.Context(), slog.LevelError, "panic in handler",
					slog.String("path", r.URL.Path), slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
				writeSystemError(w, http.StatusInternalServerError, fmt.Sprintf("internal error answering %s", r.URL.Path), false)
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// securityHeaders marks every API answer as uncacheable JSON.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

func notFound() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeSystemError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s %s; use POST /v1/resolve, /v1/mutate or /v1/verify", r.Method, r.URL.Path), false)
	})
}

func writeSystemError(w http.ResponseWriter, status int, msg string, idempotent bool) {
	b, err := EncodeResponse(nil, idempotent, msg)
	if err != nil {
		http.Error(w, msg, status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b) //nolint:gosec // G705: a JSON document served as application/json, never HTML
}
