package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/imagetrust/imagetrust/provider/internal/config"
)

// Gatekeeper's Provider timeouts (manifests/components/providers): what the latency
// scenario's p99 is held against.
const (
	gatekeeperValidationTimeout = 3 * time.Second
	gatekeeperMutationTimeout   = time.Second
)

// runLatency measures the provider against a registry -latency away (every request waits that
// long before it is served): cold batch-1 and batch-100 p50/p99 of resolve, mutate and verify
// (the authority's default reads) on fresh providers, the naive mutation provider beside them,
// then cold mutate batches of 100 from 8 clients at several lookup.perRegistryConcurrency
// values: what concurrency buys against a registry that is not on loopback.
func runLatency(ctx context.Context, f flags, e *env, keys, signed []string, pub string, emit func(Line) error, logf func(string, ...any), stderr io.Writer) error {
	e.reg.SetLatency(f.latency)
	defer e.reg.SetLatency(0)
	label := fmt.Sprintf("registry+%s", f.latency)
	logf("latency: the registry waits %s before every request", f.latency)
	deadline := func(ep string) float64 {
		if ep == "mutate" {
			return ms(gatekeeperMutationTimeout)
		}
		return ms(gatekeeperValidationTimeout)
	}
	shapes := []struct{ b, n int }{{1, f.latencyN / 6}, {100, f.latencyN}}
	one := func(p *provider, ep, lbl string, ks []string) error {
		for _, s := range shapes {
			l, err := p.scenario(ctx, ep, "cold", s.b, 1, ks[:s.n], 1)
			if err != nil {
				return err
			}
			l.Label, l.GatekeeperMs = lbl, deadline(ep)
			if err := emit(l); err != nil {
				return err
			}
		}
		return nil
	}
	auth := []config.Authority{{Name: "bench", Key: &config.Key{File: pub}}}
	for _, ep := range []string{"resolve", "mutate", "verify"} {
		var auths []config.Authority
		ks := keys
		if ep == "verify" {
			auths, ks = auth, signed
		}
		p, err := e.start(ctx, f.provider, stderr, auths) // fresh: every key cold
		if err != nil {
			return err
		}
		err = one(p, ep, label, ks)
		p.stop()
		if err != nil {
			return err
		}
	}
	naive, err := e.startNaive(ctx, stderr)
	if err != nil {
		return err
	}
	err = one(naive, "mutate", label+", naive provider", keys)
	if err == nil {
		err = naive.concurrent(ctx, keys, f.latencyN*8, label+", naive provider", emit)
	}
	naive.stop()
	if err != nil {
		return err
	}

	defer func() { e.lookup = config.Lookup{} }()
	for _, c := range f.latencyC {
		// The pool lets one registry hold a quarter of its workers (batch.Pool.HostShare): the
		// workers are raised with the limit so that the limit is what is measured.
		w := max(config.DefaultWorkers, 4*c)
		e.lookup = config.Lookup{PerRegistryConcurrency: c, Workers: w}
		p, err := e.start(ctx, f.provider, stderr, nil)
		if err != nil {
			return err
		}
		err = p.concurrent(ctx, keys, f.latencyN*8, fmt.Sprintf("%s, perRegistryConcurrency=%d, workers=%d", label, c, w), emit)
		p.stop()
		if err != nil {
			return err
		}
	}
	return nil
}

// concurrent is one cold mutate scenario, batches of 100 from 8 clients over n keys.
func (p *provider) concurrent(ctx context.Context, keys []string, n int, label string, emit func(Line) error) error {
	l, err := p.scenario(ctx, "mutate", "cold", 100, 8, keys[:min(n, len(keys))], 1)
	if err != nil {
		return err
	}
	l.Label, l.GatekeeperMs = label, ms(gatekeeperMutationTimeout)
	return emit(l)
}

// runNaiveMatrix measures the naive mutation provider on the loopback registry without added
// latency, in the matrix's cold mutate shapes: the baseline of the matrix's cold mutate lines.
func runNaiveMatrix(ctx context.Context, f flags, e *env, keys []string, emit func(Line) error, stderr io.Writer) error {
	p, err := e.startNaive(ctx, stderr)
	if err != nil {
		return err
	}
	defer p.stop()
	for _, s := range []struct{ b, c, n int }{{1, 1, f.coldKeys / 4}, {10, 8, f.coldKeys}, {100, 1, f.coldKeys}, {100, 8, f.coldKeys}} {
		l, err := p.scenario(ctx, "mutate", "cold", s.b, s.c, keys[:s.n], 1)
		if err != nil {
			return err
		}
		l.Label = "naive provider"
		if err := emit(l); err != nil {
			return err
		}
	}
	return nil
}
