package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"
)

// naiveCommand is the first argument that makes this binary the naive mutation provider.
const naiveCommand = "naive-provider"

// The naive mutation provider is the baseline of the /v1/mutate scenarios: what a provider
// written in an afternoon does. For every key of a request, one after another, one manifest HEAD
// (HTTP/1.1 keep-alive over a transport with the provider's settings: idle connections, timeouts),
// then the answer; no cache, no concurrency within a request, no deadline of its own. It speaks
// the same protocol over the same mTLS as the provider and runs pinned on the provider's CPU, so
// the ratio provider / naive is measured in one run on equal terms.
//
//	imagetrust-bench naive-provider -api ADDR -metrics ADDR -cert F -key F -ca F -registry HOST
func runNaive(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet(naiveCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := fs.String("api", "", "mTLS listen address (required)")
	met := fs.String("metrics", "", "plain-HTTP listen address of /readyz (required)")
	certFile := fs.String("cert", "", "server certificate (PEM, required)")
	keyFile := fs.String("key", "", "server key (PEM, required)")
	caFile := fs.String("ca", "", "CA of client certificates (PEM, required)")
	regHost := fs.String("registry", "", "the one plain-HTTP registry host (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *api == "" || *met == "" || *certFile == "" || *keyFile == "" || *caFile == "" || *regHost == "" {
		return errors.New(naiveCommand + ": -api, -metrics, -cert, -key, -ca and -registry are required")
	}
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		return fmt.Errorf("%s: %w", naiveCommand, err)
	}
	caPEM, err := os.ReadFile(*caFile)
	if err != nil {
		return fmt.Errorf("%s: %w", naiveCommand, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("%s: no certificate in %s", naiveCommand, *caFile)
	}
	n := &naive{host: *regHost, client: &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		Proxy: nil, MaxIdleConns: 1024, MaxIdleConnsPerHost: 32, IdleConnTimeout: 90 * time.Second,
		ResponseHeaderTimeout: 2 * time.Second,
	}}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/mutate", n.mutate)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, TLSConfig: &tls.Config{
		MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
	}}
	ln, err := net.Listen("tcp", *api)
	if err != nil {
		return err
	}
	ops := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusOK)
	})}
	opsLn, err := net.Listen("tcp", *met)
	if err != nil {
		return err
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	go func() { errc <- ops.Serve(opsLn) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = ops.Shutdown(sctx) // best effort: the process exits next
	return srv.Shutdown(sctx)
}

type naive struct {
	host   string
	client *http.Client
}

func (n *naive) mutate(w http.ResponseWriter, r *http.Request) {
	var req externaldata.ProviderRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	items := make([]externaldata.Item, len(req.Request.Keys))
	for i, k := range req.Request.Keys {
		items[i].Key = k
		v, err := n.head(r.Context(), k)
		if err != nil {
			items[i].Error = err.Error()
			continue
		}
		items[i].Value = v
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(externaldata.ProviderResponse{ // an error reaches the client as a short answer
		APIVersion: "externaldata.gatekeeper.sh/v1beta1", Kind: externaldata.ProviderResponseKind,
		Response: externaldata.Response{Idempotent: true, Items: items},
	})
}

// head resolves key with one manifest HEAD and returns repo@digest.
func (n *naive) head(ctx context.Context, key string) (string, error) {
	ref, err := name.ParseReference(key)
	if err != nil {
		return "", err
	}
	if _, ok := ref.(name.Digest); ok {
		return key, nil
	}
	if !strings.EqualFold(ref.Context().RegistryStr(), n.host) {
		return "", fmt.Errorf("registry %s not allowed", ref.Context().RegistryStr())
	}
	u := "http://" + n.host + "/v2/" + ref.Context().RepositoryStr() + "/manifests/" + ref.Identifier()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", strings.Join([]string{
		"application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json",
		"application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json",
	}, ","))
	resp, err := n.client.Do(req)
	if err != nil {
		return "", err
	}
	_ = resp.Body.Close() // a HEAD has no body
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("HEAD %s: %s", u, resp.Status)
	}
	d := resp.Header.Get("Docker-Content-Digest")
	if d == "" {
		return "", fmt.Errorf("HEAD %s: no Docker-Content-Digest", u)
	}
	return ref.Context().Name() + "@" + d, nil
}

// startNaive runs this binary as the naive mutation provider, pinned like the provider.
func (e *env) startNaive(ctx context.Context, stderr io.Writer) (*provider, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	api, met, err := freeAddrs()
	if err != nil {
		return nil, err
	}
	args := []string{naiveCommand, "-api", api, "-metrics", met, "-cert", e.files.Cert, "-key", e.files.Key,
		"-ca", e.files.CA, "-registry", e.regHost}
	return e.launch(ctx, self, args, api, met, stderr)
}
