package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/scan"
	"github.com/imagetrust/imagetrust/provider/internal/scan/scantest"
	"github.com/imagetrust/imagetrust/provider/internal/signing"
)

// runScan pushes f.scanN images, each with one cosign vuln attestation (the ~20 KB Trivy
// report) signed by the scanner authority bench-trivy, and measures /v1/scan on a provider
// with that scanner: cold batch 100 from 1 and 8 clients, warm (the same keys again), then a
// growth run to f.scanGrow distinct images on a fresh provider.
func runScan(ctx context.Context, f flags, e *env, host string, emit func(Line) error, logf func(string, ...any), stderr io.Writer) error {
	sv, pub, err := newSigner(e.dir, "trivy.pub")
	if err != nil {
		return err
	}
	report := scantest.Report()
	pred, err := json.Marshal(map[string]any{
		"invocation": map[string]any{"parameters": nil, "uri": "", "event_id": "", "builder.id": ""},
		"scanner": map[string]any{"uri": "pkg:github/aquasecurity/trivy@v0.58.1", "version": "0.58.1",
			"db": map[string]any{"uri": "", "version": ""}, "result": json.RawMessage(report)},
		"metadata": map[string]any{"scanStartedOn": time.Now().Add(-2 * time.Hour).UTC().Format(time.RFC3339),
			"scanFinishedOn": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)},
	})
	if err != nil {
		return err
	}
	logf("pushing %d images over %d repositories, each with a signed cosign vuln attestation (Trivy report %d bytes)", f.scanN, f.verifyRepo, len(report))
	start := time.Now()
	keys, digests, err := pushAttested(ctx, host, f.scanN, f.verifyRepo, sv, pred)
	if err != nil {
		return err
	}
	var reads []string
	if f.scanKeys == "digest" {
		keys, reads = digests, append(reads, "digest keys")
	}
	if f.scanQuery != "" {
		queried := make([]string, len(keys))
		for i, k := range keys {
			queried[i] = k + "#" + f.scanQuery
		}
		keys, reads = queried, append(reads, "query "+f.scanQuery)
	} else {
		reads = append(reads, "whole answers")
	}
	decorate := func(l *Line) { l.Reads = strings.Join(reads, ", ") }
	logf("pushed and attested %d images in %s", len(keys), time.Since(start).Round(time.Millisecond))

	e.scan = config.Scan{Scanners: []config.Authority{{Name: "bench-trivy", Key: &config.Key{File: pub}}}}
	defer func() { e.scan = config.Scan{} }()
	p, err := e.start(ctx, f.provider, stderr, nil)
	if err != nil {
		return err
	}
	if err := p.coldWarm(ctx, "scan", []shape{{100, 1, f.coldKeys}, {100, 8, f.coldKeys}}, keys, f.warmRounds, emit, decorate); err != nil {
		p.stop()
		return err
	}
	if n, err := answerBytes(ctx, p, keys[:100]); err != nil {
		logf("measuring the answer size: %v", err)
	} else {
		logf("a /v1/scan response to 100 keys: %d bytes, %d per key", n, n/100)
	}
	p.stop()
	if f.scanGrow <= 0 {
		return nil
	}
	p, err = e.start(ctx, f.provider, stderr, nil)
	if err != nil {
		return err
	}
	defer p.stop()
	// One client, not the 8 of the other growth runs: a cold scan key costs a pinned provider
	// about 1 ms of CPU, so 8 batches of 100 at once queue 0.8 s of work on its one CPU and, on
	// a shared machine, reach the 2.5 s scan deadline; timed-out keys are not cached and would
	// leave the cache short of the step's size.
	return p.growth(ctx, "scan", keys[:f.scanGrow], 1, emit, decorate)
}

// answerBytes is the size of the provider's whole response to one /v1/scan request for keys,
// as the client reads it.
func answerBytes(ctx context.Context, p *provider, keys []string) (int, error) {
	body, err := json.Marshal(map[string]any{"apiVersion": "externaldata.gatekeeper.sh/v1beta1", "kind": "ProviderRequest",
		"request": map[string]any{"keys": keys}})
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+p.api+"/v1/scan", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.clients["scan"].Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return len(raw), err
}

// pushAttested writes n images over repos repositories (bench/scan/rNNN:tNNNNNN) sharing one
// config and layer, each with predicate attested by sv in cosign's tag scheme (.att), and
// returns their tag and digest references.
func pushAttested(ctx context.Context, host string, n, repos int, sv signature.Signer, predicate json.RawMessage) (tags, digests []string, err error) {
	base, err := random.Image(256, 1)
	if err != nil {
		return nil, nil, err
	}
	pusher, err := remote.NewPusher()
	if err != nil {
		return nil, nil, err
	}
	tags, digests = make([]string, n), make([]string, n)
	err = parallel(n, func(i int) error {
		tag, d, err := pushNumbered(ctx, pusher, fmt.Sprintf("%s/bench/scan/r%03d:t%06d", host, i%max(repos, 1), i), base, i)
		if err != nil {
			return err
		}
		if err := signing.Attest(d, sv, scan.PredicateCosignVuln, predicate); err != nil {
			return fmt.Errorf("attesting %s: %w", tag, err)
		}
		tags[i], digests[i] = tag.String(), d.String()
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return tags, digests, nil
}
