package policy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/rego"
)

// settleModules are the library files base and digest are made of (no external_data).
var settleModules = []string{
	"lib/containers.rego", "lib/exempt.rego", "lib/expiry.rego", "lib/reference.rego",
	"lib/registries.rego", "lib/review.rego", "base/src.rego", "digest/src.rego",
}

// settleRefs are the hostile table and forms near the edges of the settle patterns.
func settleRefs(t *testing.T) []string {
	t.Helper()
	hex := strings.Repeat("0123456789abcdef", 8)
	refs := slices.Clone(hostile)
	for _, name := range []string{
		"registry.bank.internal/payments/api", "Registry.Bank.Internal/payments/api", "registry.bank.internal:5000/a",
		"registry.bank.internal.evil.io/a", "quay.io/redhat-openshift-approved/ubi9", "quay.io/redhat-openshift-approved",
		"quay.io/redhat-openshift-approved-evil/x", "quay.io/my.org/app", "quay.io/myxorg/app", "docker.io/library/nginx",
		"index.docker.io/nginx", "localhost:5000/app", "r.io/" + strings.Repeat("a", 120), "r.io/" + strings.Repeat("a/", 130) + "b",
	} {
		for _, tail := range []string{
			"", ":1.2.3", ":v1.0", ":V2", ":latest", ":Latest", ":stable", ":1.0-rc", ":" + strings.Repeat("1", 128),
			":" + strings.Repeat("1", 129), "@sha256:" + hex[:64], ":1.2.3@sha256:" + hex[:64], ":latest@sha256:" + hex[:64],
			"@sha512:" + hex, "@sha384:" + hex[:96], "@sha256:" + hex[:63], "@sha256:" + strings.ToUpper(hex[:64]),
			":" + strings.Repeat("x", 100) + "@sha256:" + hex[:64],
		} {
			refs = append(refs, name+tail)
		}
	}
	return refs
}

// TestSettledImagesKeepEveryDecision holds the settle patterns of base and digest to their
// rules: the violations are the same with the settled images as without any (every image the
// full way), for both real corpora and the edge forms under the seed constraints' shape and for
// the edge forms under constraints of several other shapes.
func TestSettledImagesKeepEveryDecision(t *testing.T) {
	ctx := context.Background()
	var mods []func(*rego.Rego)
	for _, m := range settleModules {
		src, err := os.ReadFile(filepath.Join(libraryDir, m))
		if err != nil {
			t.Fatal(err)
		}
		mods = append(mods, rego.Module(m, string(src)))
	}
	prepare := func(q string) rego.PreparedEvalQuery {
		pq, err := rego.New(append(slices.Clone(mods), rego.Query(q), rego.StrictBuiltinErrors(true))...).PrepareForEval(ctx)
		if err != nil {
			t.Fatalf("preparing %s: %v", q, err)
		}
		return pq
	}
	edges := settleRefs(t)
	all := append(append(readCorpus(t), readCorpusFile(t, secondCorpusFile)...), edges...)
	for _, tc := range []struct {
		pkg    string
		params []map[string]any
	}{
		{"k8strustedimagesource", []map[string]any{
			{"allowedRegistries": []any{"registry.bank.internal", "quay.io/redhat-openshift-approved"}, "bannedTags": []any{"latest", "stable", "main", "master", "dev", "develop"}},
			{"allowedRegistries": []any{"registry.bank.internal:5000", "quay.io/my.org", "docker.io", "localhost:5000", "index.docker.io/library"}},
			{"bannedTags": []any{"latest", "V1.0", "1.0-rc"}},
			{"allowedRegistries": []any{"registry.bank.internal"}, "tagPattern": `v?[0-9]+\.[0-9]+\.[0-9]+`},
			{"allowImplicitRegistry": true, "allowedRegistries": []any{}},
			{"exemptImages": []any{map[string]any{"image": "registry.bank.internal/**", "reason": "x", "expires": "2001-01-01"}}},
		}},
		{"k8simagedigest", []map[string]any{
			{},
			{"allowedAlgorithms": []any{"sha512", "sha384"}, "allowTagWithDigest": false},
			{"allowedAlgorithms": []any{"md5"}},
			{"allowedAlgorithms": []any{"sha256"}, "allowTagWithDigest": "no"},
		}},
	} {
		full := prepare(fmt.Sprintf("x := data.%s.violation with data.%s._settle_pattern as data.lib.imagetrust.containers.settle_nothing", tc.pkg, tc.pkg))
		settled := prepare(fmt.Sprintf("x := data.%s.violation; s := data.%s._settled", tc.pkg, tc.pkg))
		for pi, params := range tc.params {
			// Both corpora under the seed constraint's shape (the first), the edge forms under all.
			refs := edges
			if pi == 0 {
				refs = all
			}
			var nSettled int
			const perPod = 250
			for start := 0; start < len(refs); start += perPod {
				batch := refs[start:min(start+perPod, len(refs))]
				cs := make([]ctr, len(batch))
				for i, s := range batch {
					cs[i] = ctr{fmt.Sprintf("c%d", start+i), s}
				}
				pod := workload("Pod", "production", cs, nil, nil)
				input := map[string]any{
					"review":     map[string]any{"kind": map[string]any{"kind": "Pod"}, "object": pod.Object},
					"parameters": params,
				}
				want, err := full.Eval(ctx, rego.EvalInput(input))
				if err != nil || len(want) != 1 {
					t.Fatalf("%s params %d: full evaluation: %v %v", tc.pkg, pi, err, want)
				}
				got, err := settled.Eval(ctx, rego.EvalInput(input))
				if err != nil || len(got) != 1 {
					t.Fatalf("%s params %d: evaluation: %v %v", tc.pkg, pi, err, got)
				}
				nSettled += len(got[0].Bindings["s"].([]any))
				if w, g := fmt.Sprint(want[0].Bindings["x"]), fmt.Sprint(got[0].Bindings["x"]); w != g {
					t.Errorf("%s params %d, references %d-%d: settling changed the violations\nwithout: %s\nwith:    %s", tc.pkg, pi, start, start+len(batch)-1, w, g)
				}
			}
			t.Logf("%s params %d: %d references, %d settled", tc.pkg, pi, len(refs), nSettled)
		}
	}
}

// TestReferenceFastPathIsTheWalk holds reference.parse's fast path to the step-by-step walk
// (_parse_string) field for field, implicit_registry, repository and effective_tag included
// (the differential tests compare the walk's fields with distribution/reference): both real
// corpora, the hostile table and the edge forms of the settle patterns.
func TestReferenceFastPathIsTheWalk(t *testing.T) {
	ctx := context.Background()
	src, err := os.ReadFile(filepath.Join(libraryDir, "lib", "reference.rego"))
	if err != nil {
		t.Fatal(err)
	}
	pq, err := rego.New(rego.Module("reference.rego", string(src)), rego.StrictBuiltinErrors(true),
		rego.Query(`x := [[s, fast, walk] |
			some s in input
			fast := data.lib.imagetrust.reference.parse(s)
			walk := data.lib.imagetrust.reference._parse_string(s)
			fast != walk
		]`)).PrepareForEval(ctx)
	if err != nil {
		t.Fatal(err)
	}
	refs := append(append(readCorpus(t), readCorpusFile(t, secondCorpusFile)...), settleRefs(t)...)
	rs, err := pq.Eval(ctx, rego.EvalInput(refs))
	if err != nil || len(rs) != 1 {
		t.Fatalf("evaluation: %v %v", err, rs)
	}
	for _, d := range rs[0].Bindings["x"].([]any) {
		t.Errorf("parse and the walk differ: %v", d)
	}
	t.Logf("%d references, fast path and walk agree", len(refs))
}
