package scan

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
)

// TestDecodedPredicateMatchesRaw: a cosign vuln, in-toto vulns or OpenVEX predicate decoded
// in its statement's own decode (verify's PredicateTargets) gives the candidate or VEX
// document — or the error — that decoding the raw predicate gives, for every report format
// and the malformed ones, signed and read back through a real registry.
func TestDecodedPredicateMatchesRaw(t *testing.T) {
	e := newScanEnv(t, envOptions{})
	finished := time.Now().Add(-time.Hour)
	inToto02 := `{"scanner":{"uri":"pkg:github/aquasecurity/trivy@244fd47","version":"0.19.2",
	  "db":{"uri":"pkg:github/aquasecurity/trivy-db/commit/4c76","version":"v1-2021080612","lastUpdate":"2021-08-06T12:00:00Z"},
	  "result":[{"id":"CVE-2021-0001","severity":[{"method":"nvd","score":"7.5"},{"method":"vendor","score":"critical"}]},
	            {"id":"GHSA-aaaa-bbbb-cccc","severity":[{"method":"ghsa","score":"low"}],"annotations":[{"package":"openssl"},{"fixedVersion":"3.0.9"}]}]},
	  "metadata":{"scanStartedOn":"2021-08-06T17:45:50Z","scanFinishedOn":"2021-08-06T17:50:50Z"}}`
	inToto01 := `{"scanner":{"uri":"https://example.com/scanner","result":[{"vulnerability":{"id":"CVE-2020-1","severity":[{"method":"nvd","score":"5.0"}]}}]},"metadata":{}}`
	type pred struct {
		predicateType string
		raw           json.RawMessage
		// raw: the statement's decode fails with the predicate in its target, so it is read raw.
		raw2 bool
	}
	preds := map[string]pred{
		"trivy":               {PredicateCosignVuln, cosignVulnPredicate(t, sample(t, "trivy-image-alpine-310.json"), finished), false},
		"grype":               {PredicateCosignVuln, cosignVulnPredicate(t, sample(t, "grype-image.json"), finished), false},
		"sarif":               {PredicateCosignVuln, cosignVulnPredicate(t, sample(t, "trivy-image-alpine-310.sarif.json"), finished), false},
		"clean trivy":         {PredicateCosignVuln, cosignVulnPredicate(t, []byte(cleanTrivy), finished), false},
		"null result":         {PredicateCosignVuln, sample(t, "cosign-vuln-predicate-minimal.json"), false},
		"null Results":        {PredicateCosignVuln, cosignVulnPredicate(t, []byte(`{"SchemaVersion":2,"ArtifactName":"a","Results":null}`), finished), false},
		"unknown format":      {PredicateCosignVuln, cosignVulnPredicate(t, []byte(`{"foo":1}`), finished), false},
		"result not a report": {PredicateCosignVuln, cosignVulnPredicate(t, []byte(`[1,2,3]`), finished), true},
		"bad severity type":   {PredicateCosignVuln, cosignVulnPredicate(t, []byte(`{"SchemaVersion":2,"ArtifactName":"a","Results":[{"Target":"t","Vulnerabilities":[{"VulnerabilityID":"CVE-1","Severity":7}]}]}`), finished), true},
		"in-toto v0.2":        {PredicateInTotoV02, json.RawMessage(inToto02), false},
		"in-toto v0.1":        {PredicateInTotoV01, json.RawMessage(inToto01), false},
		"in-toto no uri":      {PredicateInTotoV02, json.RawMessage(`{"scanner":{"result":[]}}`), false},
		"in-toto empty id":    {PredicateInTotoV01, json.RawMessage(`{"scanner":{"uri":"x","result":[{"id":""}]}}`), false},
		"in-toto bad result":  {PredicateInTotoV02, json.RawMessage(`{"scanner":{"uri":"x","result":{"id":"CVE-1"}}}`), true},
		"openvex oci":         {PredicateOpenVEXV020, sample(t, "openvex-oci-product.json"), false},
		"openvex purl":        {PredicateOpenVEX, sample(t, "openvex-purl-product.json"), false},
		"openvex bad context": {PredicateOpenVEX, json.RawMessage(`{"@context":"https://example.com","statements":[]}`), false},
		"openvex bad status":  {PredicateOpenVEXV020, json.RawMessage(`{"@context":"https://openvex.dev/ns/v0.2.0","statements":[{"vulnerability":{"name":"CVE-1"},"products":[{"@id":"x"}],"status":"maybe"}]}`), false},
		"openvex bad types":   {PredicateOpenVEXV020, json.RawMessage(`{"@context":"https://openvex.dev/ns/v0.2.0","statements":{"status":1}}`), true},
	}
	ctx := context.Background()
	n := 0
	for name, p := range preds {
		n++
		t.Run(name, func(t *testing.T) {
			d := e.push(t, "app/"+fmt.Sprint(n), "v1")
			// The vendor key is a VEX authority; ci is a scanner.
			signer := e.ci
			if IsVEXPredicate(p.predicateType) {
				signer = e.vendor
			}
			e.attest(t, d, signer, p.predicateType, p.raw)
			ref, err := imageref.Parse(d.String())
			if err != nil {
				t.Fatal(err)
			}
			h, err := v1.NewHash(d.DigestStr())
			if err != nil {
				t.Fatal(err)
			}
			into, err := e.svc.o.Verifier.StatementsInto(ctx, ref, h, e.svc.predicateTarget)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := e.svc.o.Verifier.StatementsInto(ctx, ref, h, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(into.Statements) != 1 || len(raw.Statements) != 1 {
				t.Fatalf("statements: %d with targets, %d raw, want 1 each", len(into.Statements), len(raw.Statements))
			}
			if decoded := into.Statements[0].Decoded != nil; decoded == p.raw2 {
				t.Fatalf("predicate decoded in its statement's decode: %v (Decoded = %T), want %v", decoded, into.Statements[0].Decoded, !p.raw2)
			}
			if raw.Statements[0].Decoded != nil {
				t.Fatalf("raw statement has a decoded predicate %T", raw.Statements[0].Decoded)
			}
			if IsVEXPredicate(p.predicateType) {
				got, gotRej := e.svc.vexDocument(into.Statements[0])
				want, wantRej := e.svc.vexDocument(raw.Statements[0])
				if !reflect.DeepEqual(got, want) || gotRej != wantRej {
					t.Fatalf("VEX document = %+v %+v, raw predicate gives %+v %+v", got, gotRej, want, wantRej)
				}
				if valid := !strings.Contains(name, "bad"); valid != (got != nil) {
					t.Fatalf("VEX document = %+v, rejected %+v", got, gotRej)
				}
			} else {
				got, want := e.svc.attestationCandidate(into.Statements[0]), e.svc.attestationCandidate(raw.Statements[0])
				if fmt.Sprint(got.Err) != fmt.Sprint(want.Err) {
					t.Fatalf("error = %v, raw predicate gives %v", got.Err, want.Err)
				}
				if valid := !strings.Contains(name, "bad") && !strings.Contains(name, "no ") && !strings.Contains(name, "empty") &&
					!strings.Contains(name, "unknown") && !strings.Contains(name, "not a report") && !strings.Contains(name, "null result"); valid != (got.Err == nil) {
					t.Fatalf("candidate error = %v", got.Err)
				}
				got.Err, want.Err = nil, nil
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("candidate = %+v, raw predicate gives %+v", got, want)
				}
			}
			if string(into.Statements[0].RawPredicate()) != string(raw.Statements[0].Predicate) {
				t.Fatal("RawPredicate() is not the predicate as signed")
			}
		})
	}
}
