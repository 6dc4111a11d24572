package scan

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
	"github.com/imagetrust/imagetrust/provider/internal/scan/scantest"
)

// TestValuesOutliveReleasedPayloads: the verifier decodes attestation payloads into buffers it
// reuses once a lookup releases them, so a value must keep nothing of them. Each image gets its
// own report (different versions and times at the same offsets: Trivy reports the statement's
// one-pass read takes, and Grype ones it leaves to encoding/json) and some a VEX statement. A
// released payload is zeroed, so a value that kept a string of one shows NULs at once; and
// every value encodes the same after the later lookups reused the buffers as when it was made.
func TestValuesOutliveReleasedPayloads(t *testing.T) {
	e := newScanEnv(t, envOptions{})
	trivy, grype := sample(t, "trivy-image-alpine-310.json"), sample(t, "grype-image.json")
	type made struct {
		v    *Value
		json []byte
	}
	var got []made
	for i := range 24 {
		d := e.push(t, "release/app", fmt.Sprintf("v%d", i))
		report := bytes.ReplaceAll(trivy, []byte("1.1.1c-r0"), fmt.Appendf(nil, "1.1.1c-r%d", i))
		switch i % 3 {
		case 1:
			report = bytes.ReplaceAll(grype, []byte(`"version"`), fmt.Appendf(nil, `"version%d"`, i%2))
		case 2: // make bench's report
			report = bytes.ReplaceAll(scantest.Report(), []byte(".0-r0"), fmt.Appendf(nil, ".%d-r0", i))
		}
		e.attest(t, d, e.ci, PredicateCosignVuln, cosignVulnPredicate(t, report, time.Now().Add(-time.Duration(i)*time.Minute)))
		if i%2 == 0 {
			e.attest(t, d, e.vendor, PredicateOpenVEXV020, vexFor(d, "not_affected", fmt.Sprintf("2026-01-%02dT00:00:00Z", i+1)))
		}
		ref, err := imageref.Parse(d.String())
		if err != nil {
			t.Fatal(err)
		}
		v, err := e.svc.Lookup(context.Background(), ref)
		if err != nil {
			t.Fatalf("Lookup(%s): %v", d, err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if !v.Scanned || v.FindingsTotal == 0 {
			t.Fatalf("Lookup(%s) = %s, want a scanned value with findings", d, b)
		}
		// Release zeroes the payloads: a string still in one reads NULs.
		if bytes.Contains(b, []byte(`\u0000`)) {
			t.Fatalf("Lookup(%s) = %s: the value reads a released payload", d, b)
		}
		got = append(got, made{v, b})
	}
	for i, m := range got {
		b, err := json.Marshal(m.v)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, m.json) {
			t.Errorf("value %d changed after later lookups:\n got %s\nwant %s", i, b, m.json)
		}
	}
}
