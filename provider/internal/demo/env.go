package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/prometheus/client_golang/prometheus"
	cmutate "github.com/sigstore/cosign/v2/pkg/oci/mutate"
	ociremote "github.com/sigstore/cosign/v2/pkg/oci/remote"
	cstatic "github.com/sigstore/cosign/v2/pkg/oci/static"
	ctypes "github.com/sigstore/cosign/v2/pkg/types"
	"github.com/sigstore/sigstore/pkg/signature"
	sigdsse "github.com/sigstore/sigstore/pkg/signature/dsse"

	"github.com/imagetrust/imagetrust/provider/internal/app"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/pki"
	"github.com/imagetrust/imagetrust/provider/internal/signing"
)

// BankRegistry is the registry host the samples and the seed constraints name. The demo's
// in-memory registry plays it: the host is replaced by the registry's loopback address in the
// samples and constraints before review, and replaced back for display.
const BankRegistry = "registry.bank.internal"

// Signer names who signed a sample image.
type Signer int

// Signers of sample images.
const (
	Unsigned  Signer = iota
	BankKMS          // the key of authority bank-kms in the provider configuration
	Untrusted        // a key the provider does not know
)

// sampleImages are pushed to the in-memory registry (repository:tag → signer). Tags the
// samples use that are not here do not exist. Every image has a Trivy scan signed by the CI
// scanner (cosign attest --type vuln): clean unless Scan names its findings.
var sampleImages = []struct {
	Ref    string
	Signer Signer
	SBOM   bool // an SPDX SBOM attestation signed by the same key (cosign attest)
	Scan   []scanFinding
}{
	{"payments/api:2.4.1", BankKMS, false, nil},
	{"platform/envoy:1.30.2", BankKMS, false, nil},
	{"payments/migrate:1.8.0", Unsigned, false, nil},
	{"reporting/report:3.0.1", BankKMS, false, nil},
	{"reporting/exporter:1.2.0", BankKMS, true, nil},
	{"payments/ledger:5.2.0", BankKMS, false, nil},
	{"platform/debug:0.9.0", Untrusted, false, nil},
	{"payments/fx-rates:3.1.0", BankKMS, false, []scanFinding{
		{"CVE-2023-5363", "HIGH", "libcrypto3", "3.1.3-r0", "3.1.4-r0"},
		{"CVE-2023-5678", "MEDIUM", "libcrypto3", "3.1.3-r0", "3.1.4-r1"},
	}},
	{"reporting/pdf-render:2.0.0", BankKMS, true, []scanFinding{
		{"CVE-2024-0727", "MEDIUM", "libcrypto3", "3.1.4-r2", "3.1.4-r5"},
	}},
}

// scanFinding is one vulnerability in a sample image's Trivy report.
type scanFinding struct {
	ID, Severity, Package, Installed, Fixed string
}

// env is what runs behind the review: the registry, the provider and its PKI.
type env struct {
	dir      string
	regSrv   *httptest.Server
	regHost  string            // 127.0.0.1:port
	digests  map[string]string // "repo:tag" → sha256:…
	apiAddr  string
	opsAddr  string
	caBundle string // base64 PEM of the CA that issued the provider's serving certificate
	certFile string // Gatekeeper's client certificate and key
	keyFile  string
	cfgFile  string
	metrics  prometheus.Gatherer // the provider's own registry
	stop     func() error
}

// requests counts the provider's answered external-data requests by endpoint (from its
// imagetrust_requests_total metric).
func (e *env) requests() (map[string]int, error) {
	mfs, err := e.metrics.Gather()
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, mf := range mfs {
		if mf.GetName() != "imagetrust_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "endpoint" {
					out[l.GetValue()] += int(m.GetCounter().GetValue())
				}
			}
		}
	}
	return out, nil
}

// startRegistry runs go-containerregistry's registry on loopback and pushes the sample
// images, signed like `cosign sign --key … --tlog-upload=false`.
func (e *env) startRegistry(ctx context.Context, bankKey, otherKey, scanKey signature.SignerVerifier) error {
	e.regSrv = httptest.NewServer(ggcrregistry.New(
		ggcrregistry.Logger(log.New(io.Discard, "", 0)), ggcrregistry.WithReferrersSupport(true)))
	e.regHost = strings.TrimPrefix(e.regSrv.URL, "http://")
	e.digests = map[string]string{}
	for _, s := range sampleImages {
		img, err := random.Image(512, 1)
		if err != nil {
			return err
		}
		tag, err := name.NewTag(e.regHost+"/"+s.Ref, name.StrictValidation)
		if err != nil {
			return fmt.Errorf("sample image %s: %w", s.Ref, err)
		}
		if err := remote.Write(tag, img, remote.WithContext(ctx)); err != nil {
			return fmt.Errorf("pushing %s: %w", tag, err)
		}
		h, err := img.Digest()
		if err != nil {
			return err
		}
		e.digests[s.Ref] = h.String()
		d := tag.Context().Digest(h.String())
		pred, err := vulnPredicate(BankRegistry+"/"+s.Ref, s.Scan, time.Now().Add(-3*time.Hour))
		if err != nil {
			return err
		}
		if err := signing.Attest(d, scanKey, predicateCosignVuln, pred); err != nil {
			return fmt.Errorf("attesting a scan of %s: %w", tag, err)
		}
		var sv signature.SignerVerifier
		switch s.Signer {
		case BankKMS:
			sv = bankKey
		case Untrusted:
			sv = otherKey
		default:
			continue
		}
		if err := signing.Sign(d, sv); err != nil {
			return fmt.Errorf("signing %s: %w", tag, err)
		}
		if s.SBOM {
			if err := attestSBOM(d, sv); err != nil {
				return fmt.Errorf("attesting an SBOM for %s: %w", tag, err)
			}
		}
	}
	return nil
}

// attestSBOM attaches a signed in-toto statement with a (minimal) SPDX document about d, like
// `cosign attest --type spdxjson --key … --tlog-upload=false`.
func attestSBOM(d name.Digest, sv signature.SignerVerifier) error {
	h, err := v1.NewHash(d.DigestStr())
	if err != nil {
		return err
	}
	stmt, err := json.Marshal(map[string]any{
		"_type":         "https://in-toto.io/Statement/v1",
		"subject":       []any{map[string]any{"name": d.Context().String(), "digest": map[string]string{"sha256": h.Hex}}},
		"predicateType": "https://spdx.dev/Document",
		"predicate": map[string]any{
			"spdxVersion": "SPDX-2.3", "SPDXID": "SPDXRef-DOCUMENT", "dataLicense": "CC0-1.0",
			"name": d.Context().RepositoryStr(), "documentNamespace": "https://bank.example/spdx/" + h.Hex,
			"creationInfo": map[string]any{"created": "2026-01-01T00:00:00Z", "creators": []string{"Tool: imagetrust-demo"}},
			"packages":     []any{},
		},
	})
	if err != nil {
		return err
	}
	env, err := sigdsse.WrapSigner(sv, ctypes.IntotoPayloadType).SignMessage(bytes.NewReader(stmt))
	if err != nil {
		return err
	}
	att, err := cstatic.NewAttestation(env)
	if err != nil {
		return err
	}
	se, err := ociremote.SignedEntity(d)
	if err != nil {
		return err
	}
	se, err = cmutate.AttachAttestationToEntity(se, att)
	if err != nil {
		return err
	}
	return ociremote.WriteAttestations(d.Repository, se)
}

// predicateCosignVuln is cosign's vuln predicate type (cosign attest --type vuln).
const predicateCosignVuln = "https://cosign.sigstore.dev/attestation/vuln/v1"

// vulnPredicate is a cosign vuln predicate carrying the Trivy JSON report (SchemaVersion 2)
// of a scan of image that found fs, finished at scanned, as `trivy image --format json` and
// `cosign attest --type vuln` write them.
func vulnPredicate(image string, fs []scanFinding, scanned time.Time) (json.RawMessage, error) {
	var vulns []map[string]any
	for _, f := range fs {
		vulns = append(vulns, map[string]any{
			"VulnerabilityID": f.ID, "PkgName": f.Package,
			"PkgIdentifier":    map[string]any{"PURL": "pkg:apk/alpine/" + f.Package + "@" + f.Installed + "?arch=x86_64&distro=3.19.1"},
			"InstalledVersion": f.Installed, "FixedVersion": f.Fixed, "Status": "fixed",
			"Severity": f.Severity, "SeveritySource": "nvd",
			"PrimaryURL": "https://avd.aquasec.com/nvd/" + strings.ToLower(f.ID),
		})
	}
	res := map[string]any{"Target": image + " (alpine 3.19.1)", "Class": "os-pkgs", "Type": "alpine"}
	if len(vulns) > 0 {
		res["Vulnerabilities"] = vulns
	}
	report, err := json.Marshal(map[string]any{
		"SchemaVersion": 2, "CreatedAt": scanned.UTC().Format(time.RFC3339), "ArtifactName": image,
		"ArtifactType": "container_image", "Results": []any{res},
	})
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"invocation": map[string]any{"parameters": nil, "uri": "", "event_id": "", "builder.id": ""},
		"scanner": map[string]any{"uri": "pkg:github/aquasecurity/trivy@v0.58.1", "version": "0.58.1",
			"db": map[string]any{"uri": "", "version": ""}, "result": json.RawMessage(report)},
		"metadata": map[string]any{"scanStartedOn": scanned.Add(-time.Minute).UTC().Format(time.RFC3339),
			"scanFinishedOn": scanned.UTC().Format(time.RFC3339)},
	})
}

// providerConfig is the provider configuration the demo writes and loads with config.Load,
// exactly as imagetrust-provider -config does.
const providerConfig = `# imagetrust provider configuration written by imagetrust-demo.
server:
  address: %q
  metricsAddress: %q
  tls:
    certFile: %q
    keyFile: %q
    clientCAFile: %q          # Gatekeeper's CA: client certificates must chain to it
registries:                   # the only registry the provider may contact
  - host: %q                  # the in-memory registry standing in for registry.bank.internal
    insecure: true            # plain HTTP on loopback
authorities:
  - name: bank-kms            # in production a KMS key (awskms://…); here a key made in-process
    images: [%q]
    key:
      file: %q
scan:
  scanners:                   # whose signed scans K8sImageVulnerabilities constraints may name
  - name: ci-trivy            # the CI's Trivy job (cosign attest --type vuln)
    key:
      file: %q
`

// startProvider generates the PKI (one CA for the provider's serving certificate, one for
// Gatekeeper's client certificate), writes the configuration and starts the provider: the
// same config, services, handler, mTLS reloader and runner that imagetrust-provider wires.
// bankKeyFile and scanKeyFile are the public key files of authority bank-kms and scanner
// ci-trivy.
func (e *env) startProvider(ctx context.Context, bankKeyFile, scanKeyFile string, providerLog io.Writer) error {
	provCA, err := pki.NewCA("imagetrust-demo provider CA")
	if err != nil {
		return err
	}
	gkCA, err := pki.NewCA("imagetrust-demo gatekeeper CA")
	if err != nil {
		return err
	}
	srvKP, err := provCA.ServerCert("imagetrust-provider")
	if err != nil {
		return err
	}
	gkKP, err := gkCA.ClientCert("gatekeeper-webhook")
	if err != nil {
		return err
	}
	tlsDir, gkDir := filepath.Join(e.dir, "provider-tls"), filepath.Join(e.dir, "gatekeeper-tls")
	for _, d := range []string{tlsDir, gkDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	srvFiles, err := pki.WriteDir(tlsDir, provCA, srvKP)
	if err != nil {
		return err
	}
	gkFiles, err := pki.WriteDir(gkDir, gkCA, gkKP)
	if err != nil {
		return err
	}
	e.certFile, e.keyFile = gkFiles.Cert, gkFiles.Key
	e.caBundle = provCA.CABundle()

	var lc net.ListenConfig
	apiLn, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	opsLn, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		_ = apiLn.Close()
		return err
	}
	e.apiAddr, e.opsAddr = apiLn.Addr().String(), opsLn.Addr().String()

	e.cfgFile = filepath.Join(e.dir, "provider.yaml")
	cfgText := fmt.Sprintf(providerConfig, e.apiAddr, e.opsAddr, srvFiles.Cert, srvFiles.Key, gkFiles.CA,
		e.regHost, e.regHost+"/**", bankKeyFile, scanKeyFile)
	if err := os.WriteFile(e.cfgFile, []byte(cfgText), 0o600); err != nil {
		return err
	}
	cfg, err := config.Load(e.cfgFile)
	if err != nil {
		_, _ = apiLn.Close(), opsLn.Close()
		return err
	}

	lg := slog.New(slog.NewJSONHandler(providerLog, nil))
	reg := prometheus.NewRegistry()
	e.metrics = reg
	prov, err := app.New(ctx, cfg, apiLn, opsLn, app.Options{Logger: lg, Metrics: reg})
	if err != nil {
		_, _ = apiLn.Close(), opsLn.Close()
		return err
	}
	runner, rc := prov.Runner, prov.Registry
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- runner.Run(runCtx) }()
	e.stop = func() error {
		cancel()
		err := <-done
		rc.CloseIdleConnections()
		return err
	}
	return e.waitReady(ctx, done)
}

// waitReady polls /readyz on the plain-HTTP port (what the kubelet's readiness probe does).
func (e *env) waitReady(ctx context.Context, done <-chan error) error {
	cl := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+e.opsAddr+"/readyz", nil)
		if err != nil {
			return err
		}
		resp, err := cl.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-done:
			return fmt.Errorf("provider stopped while starting: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("provider not ready after 10s (GET /readyz)")
		}
	}
}

func (e *env) close() error {
	var errs []error
	if e.stop != nil {
		errs = append(errs, e.stop())
	}
	if e.regSrv != nil {
		e.regSrv.Close()
	}
	return errors.Join(errs...)
}
