package attest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/imagetrust/imagetrust/provider/internal/cache"
	"github.com/imagetrust/imagetrust/provider/internal/registry"
	"github.com/imagetrust/imagetrust/provider/internal/registry/registrytest"
	"github.com/imagetrust/imagetrust/provider/internal/signing/signingtest"
	"github.com/imagetrust/imagetrust/provider/internal/verify"
)

// Every verified statement about the digest appears in full, once per authority; what did not
// verify (unknown key, another image's subject) appears only under rejected.
func TestVerifiedStatementsInFull(t *testing.T) {
	e := newEnv(t)
	d := e.push(t, "payments/app", "1.0")
	other := e.push(t, "payments/other", "1.0")
	attest(t, d, e.release, slsaV1, provenance("git+https://github.com/bank/payments@refs/heads/main"))
	attestBundle(t, d, e.ci, reviewType, review("approved", "alice", "bob"))
	attest(t, d, e.ci, reviewType, review("approved", "alice", "bob"))                // the same statement, signed by ci as DSSE too
	attest(t, d, e.rogue, slsaV1, provenance("git+https://github.com/evil/payments")) // key configured nowhere
	attestAbout(t, d, other, e.release, slsaV1, provenance("git+https://github.com/bank/other"))
	s := e.service(t, Limits{}, nil, nil)

	v, _ := answer(t, s, e.host+"/payments/app:1.0")
	if v.Digest != d.DigestStr() || v.Image != e.host+"/payments/app:1.0" {
		t.Errorf("image, digest = %s, %s; want %s, %s", v.Image, v.Digest, e.host+"/payments/app:1.0", d.DigestStr())
	}
	var got []string
	for _, st := range v.Statements {
		got = append(got, st.PredicateType+" "+st.Authority+" "+st.Format)
	}
	want := []string{reviewType + " ci bundle", reviewType + " ci dsse", slsaV1 + " release dsse"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("statements = %q, want %q", got, want)
	}
	if v.StatementsTotal != 3 || v.Truncated {
		t.Errorf("statementsTotal, truncated = %d, %v; want 3, false", v.StatementsTotal, v.Truncated)
	}
	prov := v.Statements[2]
	if prov.Type != "https://in-toto.io/Statement/v0.1" || prov.Truncated {
		t.Errorf("_type, truncated = %q, %v", prov.Type, prov.Truncated)
	}
	if len(prov.Subjects) != 1 || prov.Subjects[0].Name != d.Repository.Name() || "sha256:"+prov.Subjects[0].Digest["sha256"] != d.DigestStr() {
		t.Errorf("subjects = %+v, want %s@%s", prov.Subjects, d.Repository.Name(), d.DigestStr())
	}
	var p struct {
		BuildDefinition struct {
			ExternalParameters struct {
				Source struct {
					URI string `json:"uri"`
				} `json:"source"`
			} `json:"externalParameters"`
		} `json:"buildDefinition"`
	}
	if err := json.Unmarshal(prov.Predicate, &p); err != nil {
		t.Fatal(err)
	}
	if got := p.BuildDefinition.ExternalParameters.Source.URI; got != "git+https://github.com/bank/payments@refs/heads/main" {
		t.Errorf("predicate.buildDefinition.externalParameters.source.uri = %q", got)
	}
	var rejected []string
	for _, r := range v.Rejected {
		rejected = append(rejected, r.Reason)
	}
	all := strings.Join(rejected, "\n")
	if len(v.Rejected) != 2 || !strings.Contains(all, verify.ErrNoAuthority.Error()) || !strings.Contains(all, verify.ErrOtherImage.Error()) {
		t.Errorf("rejected = %q, want the rogue key and the other image's statement", rejected)
	}
}

// The order of the statements depends on their content, never on the order they were
// attached or listed in: the same statements attached in opposite orders give byte-identical
// statement lists, and a repeated lookup gives byte-identical answers.
func TestStableOrder(t *testing.T) {
	e := newEnv(t)
	a := e.push(t, "payments/a", "1")
	b := e.push(t, "payments/b", "1")
	preds := []map[string]any{review("approved", "alice"), review("approved", "bob"), review("rejected", "carol"), provenance("git+https://github.com/bank/payments")}
	types := []string{reviewType, reviewType, reviewType, slsaV1}
	for i := range preds {
		attest(t, a, e.release, types[i], preds[i])
		attestBundle(t, a, e.ci, types[i], preds[i])
	}
	for i := len(preds) - 1; i >= 0; i-- {
		attestBundle(t, b, e.ci, types[i], preds[i])
		attest(t, b, e.release, types[i], preds[i])
	}
	s := e.service(t, Limits{}, nil, nil)
	va, rawA := answer(t, s, a.String())
	vb, _ := answer(t, s, b.String())
	if len(va.Statements) != 8 {
		t.Fatalf("statements = %d, want 8", len(va.Statements))
	}
	// The subjects name each image's own repository and digest; the rest must be equal.
	strip := func(v *Value) []byte {
		var out []Statement
		for _, st := range v.Statements {
			st.Subjects = nil
			out = append(out, st)
		}
		return mustJSON(t, out)
	}
	if !bytes.Equal(strip(va), strip(vb)) {
		t.Errorf("statement order depends on attachment order:\n%s\n%s", strip(va), strip(vb))
	}
	for i := range 3 {
		if _, raw := answer(t, s, a.String()); !bytes.Equal(raw, rawA) {
			t.Fatalf("lookup %d differs:\n%s\n%s", i+2, raw, rawA)
		}
	}
}

// Caps: a statement over the per-statement cap loses its predicate; statements past the
// per-image cap lose theirs; statements past maxStatements are counted, not listed. Each sets
// truncated, and the answer stays within its bounds.
func TestCaps(t *testing.T) {
	e := newEnv(t)
	d := e.push(t, "payments/big", "1")
	big := review("approved", strings.Repeat("x", 4000))
	attest(t, d, e.release, reviewType, big)
	for i := range 5 {
		attest(t, d, e.ci, slsaV1, provenance("git+https://github.com/bank/payments@"+strings.Repeat("v", i+1)))
	}
	cases := []struct {
		name                string
		l                   Limits
		listed, predicates  int
		total               int
		truncatedStatements []string
	}{
		{"no cap reached", Limits{Statements: 32, StatementBytes: 64 << 10, ImageBytes: 1 << 20}, 6, 6, 6, nil},
		{"statement cap", Limits{Statements: 32, StatementBytes: 2048, ImageBytes: 1 << 20}, 6, 5, 6, []string{reviewType}},
		{"image cap", Limits{Statements: 32, StatementBytes: 64 << 10, ImageBytes: 3000}, 6, 3, 6, []string{reviewType, slsaV1, slsaV1}},
		{"statement count", Limits{Statements: 2, StatementBytes: 64 << 10, ImageBytes: 1 << 20}, 2, 2, 6, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := e.service(t, tc.l, nil, nil)
			v, raw := answer(t, s, d.String())
			preds := 0
			var truncated []string
			for _, st := range v.Statements {
				if st.Truncated {
					truncated = append(truncated, st.PredicateType)
					if st.Predicate != nil && string(st.Predicate) != "null" {
						t.Errorf("truncated statement has predicate %s", st.Predicate)
					}
					if len(st.Subjects) != 1 || "sha256:"+st.Subjects[0].Digest["sha256"] != d.DigestStr() {
						t.Errorf("truncated statement subjects = %+v, want this digest only", st.Subjects)
					}
					continue
				}
				preds++
			}
			if len(v.Statements) != tc.listed || preds != tc.predicates || v.StatementsTotal != tc.total {
				t.Errorf("listed, with predicate, total = %d, %d, %d; want %d, %d, %d", len(v.Statements), preds, v.StatementsTotal, tc.listed, tc.predicates, tc.total)
			}
			if strings.Join(truncated, ",") != strings.Join(tc.truncatedStatements, ",") {
				t.Errorf("truncated statements = %q, want %q", truncated, tc.truncatedStatements)
			}
			wantTrunc := tc.listed != tc.total || len(tc.truncatedStatements) > 0
			if v.Truncated != wantTrunc {
				t.Errorf("truncated = %v, want %v", v.Truncated, wantTrunc)
			}
			if n := int64(len(raw)); n > tc.l.ImageBytes+4096 {
				t.Errorf("answer of %d bytes exceeds the image cap %d by more than the envelope", n, tc.l.ImageBytes)
			}
		})
	}
}

// Keys go through the one pipeline: an image without attestations is a value with no
// statements, a missing tag is "not found:", an unlisted registry "registry not allowed:", a
// bad reference "invalid reference:".
func TestKeys(t *testing.T) {
	e := newEnv(t)
	e.push(t, "payments/plain", "1")
	s := e.service(t, Limits{}, nil, nil)
	v, raw := answer(t, s, e.host+"/payments/plain:1")
	if len(v.Statements) != 0 || v.StatementsTotal != 0 || v.Truncated || !bytes.Contains(raw, []byte(`"statements":[]`)) {
		t.Errorf("unattested image = %s, want an empty statements list", raw)
	}
	items := s.Attestations(context.Background(), []string{e.host + "/payments/none:1", "ghcr.io/x/y:1", e.host + "/Payments/App:1"})
	for i, want := range []string{"not found: ", "registry not allowed: ", "invalid reference: "} {
		if !strings.HasPrefix(items[i].Error, want) {
			t.Errorf("Attestations(%q) error = %q, want prefix %q", items[i].Key, items[i].Error, want)
		}
	}
}

// Answers are cached in the endpoint's own cache: a second batch sends no registry request; an
// answer without statements is looked up again after EmptyTTL, so a new attestation is seen.
func TestCache(t *testing.T) {
	e := newEnv(t)
	d := e.push(t, "payments/app", "1")
	attest(t, d, e.release, slsaV1, provenance("git+https://github.com/bank/payments"))
	e.push(t, "payments/late", "1")
	c, err := cache.New[*Value](cache.Options{Name: "attestations", MaxEntries: 100, TTL: time.Minute, NotFoundTTL: 10 * time.Second, Negative: registry.IsNegative, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	clock := func() time.Time { return now }
	s := e.service(t, Limits{}, c, clock)
	first, _ := answer(t, s, d.String())
	late, _ := answer(t, s, e.host+"/payments/late:1")
	e.reg.ResetCounts()
	again, _ := answer(t, s, d.String())
	if n := e.reg.Total(); n != 0 || len(again.Statements) != len(first.Statements) {
		t.Errorf("cached lookup sent %d registry requests and found %d statements, want 0 and %d", n, len(again.Statements), len(first.Statements))
	}
	if len(late.Statements) != 0 {
		t.Fatalf("late image has %d statements before it is attested", len(late.Statements))
	}
	ld := e.push(t, "payments/late", "1")
	attest(t, ld, e.release, slsaV1, provenance("git+https://github.com/bank/payments"))
	if v, _ := answer(t, s, e.host+"/payments/late:1"); len(v.Statements) != 0 {
		t.Errorf("empty answer looked up again before EmptyTTL")
	}
	now = now.Add(31 * time.Second)
	if v, _ := answer(t, s, e.host+"/payments/late:1"); len(v.Statements) != 1 {
		t.Errorf("after EmptyTTL: %d statements, want the new one", len(v.Statements))
	}
}

// A registry may list referrers (and the referrers fallback tag's index) in any order, and a
// different one on every call: the answers stay byte-identical.
func TestShuffledReferrersGiveIdenticalAnswers(t *testing.T) {
	for _, api := range []bool{true, false} {
		t.Run(map[bool]string{true: "referrers API", false: "fallback tag"}[api], func(t *testing.T) {
			sh := registrytest.Shuffle(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)), ggcrregistry.WithReferrersSupport(api)), 15)
			srv := httptest.NewServer(sh)
			t.Cleanup(srv.Close)
			e := newEnvAt(t, strings.TrimPrefix(srv.URL, "http://"))
			d := e.push(t, "payments/app", "1")
			for i, who := range []*signingtest.Key{e.release, e.ci, e.release, e.ci, e.release} {
				attestBundle(t, d, who, reviewType, review("approved", fmt.Sprintf("reviewer-%d", i)))
			}
			attestBundle(t, d, e.rogue, slsaV1, provenance("git+https://github.com/evil/payments"))
			s := e.service(t, Limits{}, nil, nil)
			_, first := answer(t, s, d.String())
			for range 5 {
				if _, raw := answer(t, s, d.String()); !bytes.Equal(raw, first) {
					t.Fatalf("answers differ between lookups:\n%s\n%s", raw, first)
				}
			}
			if n := sh.Orders(referrersPath(api, d)); n < 2 {
				t.Errorf("the registry served %d referrer orders, want several (the test proves nothing)", n)
			}
		})
	}
}

// referrersPath is the request path of the referrers listing of d.
func referrersPath(api bool, d name.Digest) string {
	h, _ := v1.NewHash(d.DigestStr())
	repo := d.Context().RepositoryStr()
	if api {
		return "/v2/" + repo + "/referrers/" + h.String()
	}
	return "/v2/" + repo + "/manifests/" + h.Algorithm + "-" + h.Hex
}
