package scan

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/imagetrust/imagetrust/provider/internal/batch"
	"github.com/imagetrust/imagetrust/provider/internal/cache"
	"github.com/imagetrust/imagetrust/provider/internal/config"
	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
	"github.com/imagetrust/imagetrust/provider/internal/signing"
	"github.com/imagetrust/imagetrust/provider/internal/signing/signingtest"
	"github.com/imagetrust/imagetrust/provider/internal/verify"
	"github.com/imagetrust/imagetrust/provider/internal/wire"
)

// scanEnv is a real registry on loopback, the provider's registry client, a verify service
// with the scanner and VEX authorities, and the scan service on them.
type scanEnv struct {
	reg    *registrytest.Registry
	host   string
	ci     *signingtest.Key // scanner authority "ci"
	vendor *signingtest.Key // VEX authority "vendor"
	rogue  *signingtest.Key // configured nowhere
	svc    *Service
	op     *OperatorIndex
}

type envOptions struct {
	limits   Limits
	cache    *cache.Cache[*Value]
	operator bool
	now      time.Time
	// maxPlatforms is Options.MaxPlatforms (0: the default).
	maxPlatforms int
}

func newScanEnv(t testing.TB, eo envOptions) *scanEnv {
	t.Helper()
	e := &scanEnv{reg: registrytest.New(), ci: signingtest.NewKey(t), vendor: signingtest.NewKey(t), rogue: signingtest.NewKey(t)}
	t.Cleanup(e.reg.Close)
	e.host = e.reg.Host
	// A generous registry timeout: nothing here hangs, and a loaded machine is slow, not broken.
	c, err := registry.New(context.Background(), registry.Options{Registries: []config.Registry{{Host: e.host, Insecure: true}}, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	pool, err := batch.NewPool(16, nil)
	if err != nil {
		t.Fatal(err)
	}
	refs := imageref.NewMemo(1024)
	vs, err := verify.New(context.Background(), verify.Options{
		Authorities: []config.Authority{e.ci.Authority("ci"), e.vendor.Authority("vendor")},
		Registry:    c, Refs: refs, Pool: pool, Deadline: 30 * time.Second,
		Limits: verify.Limits{AttestationBytes: 16 << 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Verifier: vs, Registry: c, Pool: pool, Refs: refs, Scanners: []string{"ci"}, VEXAuthorities: []string{"vendor"},
		SARIF: true, Deadline: 30 * time.Second, Limits: eo.limits, Cache: eo.cache, MaxPlatforms: eo.maxPlatforms}
	if eo.operator {
		e.op = NewOperatorIndex()
		o.Operator = e.op
	}
	if !eo.now.IsZero() {
		o.Now = func() time.Time { return eo.now }
	}
	if e.svc, err = New(o); err != nil {
		t.Fatal(err)
	}
	return e
}

// push writes a random image to repo:tag and returns its digest reference.
func (e *scanEnv) push(t testing.TB, repo, tag string) name.Digest {
	t.Helper()
	return registrytest.PushImage(t, e.host, repo+":"+tag)
}

// pushIndex writes a two-platform index and returns its digest and the platforms' digests.
func (e *scanEnv) pushIndex(t testing.TB, repo, tag string) (name.Digest, []name.Digest) {
	t.Helper()
	return registrytest.PushIndex(t, e.host, repo, tag)
}

// cosignVulnPredicate wraps a scanner report into cosign's vuln predicate finished at t.
func cosignVulnPredicate(t testing.TB, report []byte, finished time.Time) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"invocation": map[string]any{"parameters": nil, "uri": "", "event_id": "", "builder.id": ""},
		"scanner": map[string]any{"uri": "pkg:github/aquasecurity/trivy@v0.74.0", "version": "0.74.0",
			"db": map[string]any{"uri": "", "version": ""}, "result": json.RawMessage(report)},
		"metadata": map[string]any{"scanStartedOn": finished.Add(-time.Minute).Format(time.RFC3339), "scanFinishedOn": finished.Format(time.RFC3339)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// cleanTrivy is a Trivy report with no findings.
const cleanTrivy = `{"SchemaVersion":2,"ArtifactName":"app","ArtifactType":"container_image","Results":[{"Target":"app (alpine 3.20)","Class":"os-pkgs","Type":"alpine"}]}`

func (e *scanEnv) attest(t testing.TB, d name.Digest, k *signingtest.Key, predicateType string, predicate json.RawMessage) {
	t.Helper()
	if err := signing.Attest(d, k.Signer, predicateType, predicate); err != nil {
		t.Fatal(err)
	}
}

// scanOne runs Scan for one key and decodes the value; a per-key error fails the test.
func (e *scanEnv) scanOne(t testing.TB, key string) *Value {
	t.Helper()
	items := e.svc.Scan(context.Background(), []string{key})
	if items[0].Error != "" {
		t.Fatalf("Scan(%q) error = %s", key, items[0].Error)
	}
	return decodeItem(t, items[0])
}

func decodeItem(t testing.TB, it wire.Item) *Value {
	t.Helper()
	var raw []byte
	switch x := it.Value.(type) {
	case wire.Encoded:
		raw = x
	case wire.Appender:
		raw = x.AppendJSON(nil)
	default:
		t.Fatalf("item value is %T, want wire.Encoded or a wire.Appender", it.Value)
	}
	var v Value
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	return &v
}
