package scan

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/imagetrust/imagetrust/provider/internal/imageref"
)

// TestDecodedPredicateMatchesRaw: a cosign vuln predicate decoded in its statement's own
// decode (verify's PredicateTargets) gives the candidate — report or error — that decoding
// the raw predicate gives, for every report format and the malformed ones, signed and read
// back through a real registry.
func TestDecodedPredicateMatchesRaw(t *testing.T) {
	e := newScanEnv(t, envOptions{})
	finished := time.Now().Add(-time.Hour)
	preds := map[string]json.RawMessage{
		"trivy":               cosignVulnPredicate(t, sample(t, "trivy-image-alpine-310.json"), finished),
		"grype":               cosignVulnPredicate(t, sample(t, "grype-image.json"), finished),
		"sarif":               cosignVulnPredicate(t, sample(t, "trivy-image-alpine-310.sarif.json"), finished),
		"clean trivy":         cosignVulnPredicate(t, []byte(cleanTrivy), finished),
		"null result":         sample(t, "cosign-vuln-predicate-minimal.json"),
		"null Results":        cosignVulnPredicate(t, []byte(`{"SchemaVersion":2,"ArtifactName":"a","Results":null}`), finished),
		"unknown format":      cosignVulnPredicate(t, []byte(`{"foo":1}`), finished),
		"result not a report": cosignVulnPredicate(t, []byte(`[1,2,3]`), finished),
		"bad severity type":   cosignVulnPredicate(t, []byte(`{"SchemaVersion":2,"ArtifactName":"a","Results":[{"Target":"t","Vulnerabilities":[{"VulnerabilityID":"CVE-1","Severity":7}]}]}`), finished),
	}
	ctx := context.Background()
	for name, pred := range preds {
		t.Run(name, func(t *testing.T) {
			d := e.push(t, "app/"+fmt.Sprint(len(name)), "v1")
			e.attest(t, d, e.ci, PredicateCosignVuln, pred)
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
			if _, ok := into.Statements[0].Decoded.(*cosignVuln); !ok && name != "result not a report" && name != "bad severity type" {
				t.Fatalf("predicate was not decoded in its statement's decode (Decoded = %T)", into.Statements[0].Decoded)
			}
			if raw.Statements[0].Decoded != nil {
				t.Fatalf("raw statement has a decoded predicate %T", raw.Statements[0].Decoded)
			}
			got, want := e.svc.attestationCandidate(into.Statements[0]), e.svc.attestationCandidate(raw.Statements[0])
			if fmt.Sprint(got.Err) != fmt.Sprint(want.Err) {
				t.Fatalf("error = %v, raw predicate gives %v", got.Err, want.Err)
			}
			got.Err, want.Err = nil, nil
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("candidate = %+v, raw predicate gives %+v", got, want)
			}
			if string(into.Statements[0].RawPredicate()) != string(raw.Statements[0].Predicate) {
				t.Fatal("RawPredicate() is not the predicate as signed")
			}
		})
	}
}
