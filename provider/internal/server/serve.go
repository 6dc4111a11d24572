package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// Runner serves the API (mTLS) and operations (plain HTTP) listeners until its context ends,
// then shuts both down gracefully: readiness fails first, requests in flight are answered,
// then the listeners close.
type Runner struct {
	API             http.Handler
	Ops             http.Handler
	APIListener     net.Listener // plain TCP; Runner wraps it in TLS
	OpsListener     net.Listener
	TLS             *tls.Config
	Logger          *slog.Logger
	ShutdownTimeout time.Duration
	// WriteTimeout bounds writing one response (set above the longest endpoint deadline).
	WriteTimeout time.Duration

	ready atomic.Bool
}

// Ready reports whether the runner accepts traffic (for /readyz).
func (r *Runner) Ready() error {
	if !r.ready.Load() {
		return errors.New("not serving (starting or shutting down)")
	}
	return nil
}

// Run serves until ctx is done or a listener fails. It returns nil after a clean shutdown.
func (r *Runner) Run(ctx context.Context) error {
	lg := r.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	wt := r.WriteTimeout
	if wt <= 0 {
		wt = 10 * time.Second
	}
	api := &http.Server{
		Handler:           r.API,
		TLSConfig:         r.TLS,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      wt,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(lg.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ConnContext:       withHeldConn,
	}
	ops := &http.Server{
		Handler:           r.Ops,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(lg.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 2)
	go func() { errc <- serveErr("API", api.ServeTLS(heldListener{r.APIListener}, "", "")) }()
	go func() { errc <- serveErr("operations", ops.Serve(r.OpsListener)) }()
	r.ready.Store(true)
	lg.LogAttrs(ctx, slog.LevelInfo, "serving",
		slog.String("api_address", r.APIListener.Addr().String()),
		slog.String("metrics_address", r.OpsListener.Addr().String()))

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	r.ready.Store(false)
	st := r.ShutdownTimeout
	if st <= 0 {
		st = 10 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), st)
	defer cancel()
	lg.LogAttrs(sctx, slog.LevelInfo, "shutting down", slog.Duration("timeout", st))
	// The API goes first (Gatekeeper's in-flight calls finish); metrics stay up meanwhile.
	if err := api.Shutdown(sctx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("shutting down the API listener: %w", err))
	}
	if err := ops.Shutdown(sctx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("shutting down the operations listener: %w", err))
	}
	return runErr
}

func serveErr(name string, err error) error {
	if err == nil || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("%s listener: %w", name, err)
}
