package suite

// The Rego-cost workload: 2,000 Pods of 7 images each in namespace production, 70 % compliant
// bank images and 30 % real references from the two corpora, with the external-data answers
// of every image taken from the provider fixtures of gator-tests/verification and
// gator-tests/security and served from Gatekeeper's provider response cache (in process, no
// HTTP), so that a review measures Rego.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/frameworks/constraint/pkg/externaldata"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/imagetrust/imagetrust/provider/internal/scan"
	"github.com/imagetrust/imagetrust/provider/internal/scan/scantest"
)

const (
	regoCostPods          = 2000
	regoCostImagesPerPod  = 7 // six containers and one init container
	regoCostRealPerTenths = 3 // 3 in 10 images are real references
	regoCostNamespace     = "production"
)

// regoCostCorpora are the real-reference corpora, relative to this package.
var regoCostCorpora = []string{
	filepath.Join("..", "policy", "testdata", "real-image-refs.txt"),
	filepath.Join("..", "policy", "testdata", "real-refs-2.txt"),
}

// regoCostImage is one image of the workload: the reference as written and, for a bank image,
// the digest it pins (the provider answers for that digest).
type regoCostImage struct {
	ref    string
	bank   bool
	digest string
}

// regoCostWorkload is the Pods and every distinct image they use.
type regoCostWorkload struct {
	pods   []*unstructured.Unstructured
	images map[string]regoCostImage
}

// readRealRefs reads both corpora (comment lines skipped), de-duplicated, in a fixed
// pseudo-random order.
func readRealRefs(tb testing.TB) []string {
	tb.Helper()
	seen := map[string]bool{}
	var refs []string
	for _, p := range regoCostCorpora {
		f, err := os.Open(p)
		if err != nil {
			tb.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			if line == "" || strings.HasPrefix(line, "#") || seen[line] {
				continue
			}
			seen[line] = true
			refs = append(refs, line)
		}
		err = sc.Err()
		_ = f.Close()
		if err != nil {
			tb.Fatalf("reading %s: %v", p, err)
		}
	}
	if len(refs) < 1000 {
		tb.Fatalf("only %d real references in %v", len(refs), regoCostCorpora)
	}
	r := rand.New(rand.NewPCG(16, 2000)) //nolint:gosec // a fixed order, not a secret
	r.Shuffle(len(refs), func(i, j int) { refs[i], refs[j] = refs[j], refs[i] })
	return refs
}

// bankImage returns the n-th compliant bank image: an allowed registry, a version tag and a
// sha256 digest (what the seed constraints of base, digest, verification and security accept).
func bankImage(n int) regoCostImage {
	teams := []string{"payments", "cards", "ledger", "risk", "treasury", "kyc", "fraud", "loans"}
	apps := []string{"api", "worker", "batch", "gateway", "ui", "scheduler", "exporter", "migrate"}
	name := fmt.Sprintf("registry.bank.internal/%s/%s", teams[n%len(teams)], apps[(n/len(teams))%len(apps)])
	if n%10 == 9 {
		name = fmt.Sprintf("quay.io/redhat-openshift-approved/%s", apps[n%len(apps)])
	}
	tag := fmt.Sprintf("%d.%d.%d", 1+n%4, (n/4)%12, n%17)
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s:%s#%d", name, tag, n)))
	digest := "sha256:" + hex.EncodeToString(sum[:])
	return regoCostImage{ref: name + ":" + tag + "@" + digest, bank: true, digest: digest}
}

// newRegoCostWorkload builds the 2,000 Pods. Bank images come from a pool of 600 (a cluster
// runs many Pods of few images); real references are used in the corpus order.
func newRegoCostWorkload(tb testing.TB) *regoCostWorkload {
	tb.Helper()
	refs := readRealRefs(tb)
	w := &regoCostWorkload{images: map[string]regoCostImage{}}
	r := rand.New(rand.NewPCG(16, 7)) //nolint:gosec // a fixed workload, not a secret
	next := 0
	for p := range regoCostPods {
		var containers, inits []any
		for i := range regoCostImagesPerPod {
			var img regoCostImage
			if (p*regoCostImagesPerPod+i)%10 < regoCostRealPerTenths {
				ref := refs[next%len(refs)]
				next++
				_, digest, _ := strings.Cut(ref, "@")
				img = regoCostImage{ref: ref, digest: digest}
			} else {
				img = bankImage(r.IntN(600))
			}
			w.images[img.ref] = img
			if i == regoCostImagesPerPod-1 {
				inits = append(inits, map[string]any{"name": "init", "image": img.ref})
			} else {
				containers = append(containers, map[string]any{"name": fmt.Sprintf("c%d", i), "image": img.ref})
			}
		}
		w.pods = append(w.pods, &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1",
			"kind":       "Pod",
			"metadata": map[string]any{
				"name":      fmt.Sprintf("pod-%04d", p),
				"namespace": regoCostNamespace,
				"labels":    map[string]any{"app": fmt.Sprintf("app-%d", p%50)},
			},
			"spec": map[string]any{"containers": containers, "initContainers": inits},
		}})
	}
	return w
}

// The fixture answers the workload's images get: a bank image is answered as the fixture's
// signed (verification) and clean (security) image, for its own digest; a real reference as
// the unsigned and the vulnerable one.
const (
	regoCostVerifyProvider = "imagetrust-verify"
	// regoCostVerifySigsProvider answers constraints without attestation parameters.
	regoCostVerifySigsProvider = "imagetrust-verify-signatures"
	regoCostScanProvider       = "imagetrust-scan"
	// regoCostScanQuery is the query of the scan keys constraints/security/bank.yaml sends.
	// An answer cached under any other key would miss, and TestRegoCostWorkload would say so.
	regoCostScanQuery     = scantest.BankQuery
	regoCostSignedKey     = "registry.bank.internal/payments/api:1.0"
	regoCostUnsignedKey   = "registry.bank.internal/payments/unsigned:1.0"
	regoCostCleanKey      = "registry.bank.internal/payments/clean:1.0"
	regoCostVulnerableKey = "registry.bank.internal/payments/vulnerable:1.0"
)

// fixtureValue decodes the fixture value of key from provider in the fixtures of dir.
func fixtureValue(tb testing.TB, dir, provider, key string) map[string]any {
	tb.Helper()
	set, err := loadFixtures(os.DirFS(repoRoot), dir)
	if err != nil {
		tb.Fatal(err)
	}
	pa, ok := set.providers[provider]
	if !ok {
		tb.Fatalf("%s: no fixtures for provider %s", dir, provider)
	}
	a, ok := pa.keys[key]
	if !ok || len(a.Value) == 0 {
		tb.Fatalf("%s: no fixture value for %s key %s", dir, provider, key)
	}
	var v map[string]any
	if err := json.Unmarshal(a.Value, &v); err != nil {
		tb.Fatalf("%s: fixture value of %s: %v", dir, key, err)
	}
	return v
}

// answerFor copies the fixture value v for image img: its image, digest and (verification)
// tag digest are those of img.
func answerFor(v map[string]any, img regoCostImage, withTagDigest bool) map[string]any {
	out := make(map[string]any, len(v))
	for k, x := range v {
		out[k] = x
	}
	out["image"] = img.ref
	if img.digest != "" {
		out["digest"] = img.digest
		if withTagDigest {
			out["tagDigest"] = img.digest
		}
	}
	return out
}

// responseCache returns Gatekeeper's provider response cache holding the answer of both
// providers for every image of w, valid for the whole run.
func (w *regoCostWorkload) responseCache(tb testing.TB) *externaldata.ProviderResponseCache {
	tb.Helper()
	signed := fixtureValue(tb, "gator-tests/verification", regoCostVerifyProvider, regoCostSignedKey)
	unsigned := fixtureValue(tb, "gator-tests/verification", regoCostVerifyProvider, regoCostUnsignedKey)
	signedSigs := fixtureValue(tb, "gator-tests/verification", regoCostVerifySigsProvider, regoCostSignedKey)
	unsignedSigs := fixtureValue(tb, "gator-tests/verification", regoCostVerifySigsProvider, regoCostUnsignedKey)
	clean := fixtureValue(tb, "gator-tests/security", regoCostScanProvider, regoCostCleanKey)
	vulnerable := fixtureValue(tb, "gator-tests/security", regoCostScanProvider, regoCostVulnerableKey)
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	rc := externaldata.NewProviderResponseCache(ctx, 24*time.Hour)
	now := time.Now().Unix()
	put := func(provider, key string, v map[string]any) {
		rc.Upsert(externaldata.CacheKey{ProviderName: provider, Key: key},
			externaldata.CacheValue{Received: now, Value: v, Idempotent: true})
	}
	// The scan answers as the provider gives them to the bank's query (scan.FilterAnswer).
	putScan := func(ref string, v map[string]any) {
		raw, err := json.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		if raw, err = scan.FilterAnswer(regoCostScanQuery, raw); err != nil {
			tb.Fatal(err)
		}
		var filtered map[string]any
		if err := json.Unmarshal(raw, &filtered); err != nil {
			tb.Fatal(err)
		}
		put(regoCostScanProvider, ref+"#"+regoCostScanQuery, filtered)
	}
	for ref, img := range w.images {
		if img.bank {
			put(regoCostVerifyProvider, ref, answerFor(signed, img, true))
			put(regoCostVerifySigsProvider, ref, answerFor(signedSigs, img, true))
			putScan(ref, answerFor(clean, img, false))
		} else {
			put(regoCostVerifyProvider, ref, answerFor(unsigned, img, false))
			put(regoCostVerifySigsProvider, ref, answerFor(unsignedSigs, img, false))
			putScan(ref, answerFor(vulnerable, img, false))
		}
	}
	return rc
}
