package cache

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
)

func answer(i int) []byte {
	d := fmt.Sprintf("sha256:%064x", i*7919+1)
	return fmt.Appendf(nil, `{"image":"registry.example/team/app%d:v%d","digest":%q,"mediaType":"application/vnd.oci.image.manifest.v1+json","signed":true,"signatures":[{"authority":"release","keyId":"sha256:5f1e0a9f6b2a4c3d8e7f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5","algorithm":"ecdsa-p256-sha256","verified":true,"format":"cosign"}],"attestations":[],"sbom":{"present":false,"format":""},"provenance":{"present":false,"builderId":"","sourceUri":"","buildType":""},"platforms":[],"tagDigest":%q}`,
		i%50, i, d, d)
}

// TestPackRoundTrip: Unpack gives back exactly what was packed, for answers and for arbitrary
// bytes (quotes, escapes, empty pieces, invalid JSON).
func TestPackRoundTrip(t *testing.T) {
	p := NewPacker(0)
	rng := rand.New(rand.NewPCG(1, 2)) //nolint:gosec // reproducible test input, not a secret
	inputs := [][]byte{nil, {}, []byte(`"`), []byte(`""""`), []byte(`{"a":"\"quoted\"","b":""}`), []byte("no quotes at all"),
		[]byte(`"sha256:` + strings.Repeat("0a", 32) + `"`), []byte(`"sha256:` + strings.Repeat("0A", 32) + `"`), // upper case stays literal
		[]byte(`"sha256:` + strings.Repeat("0a", 31) + `"`), []byte(`"sha512:` + strings.Repeat("0a", 32) + `"`),
		[]byte(`"a/b/c/"`), []byte(`"/x"`), []byte(`"x/"`), []byte(`"a/b/c/d","a/b/c/e","a/b/c/f"`)}
	for i := range 200 {
		inputs = append(inputs, answer(i))
	}
	for range 300 {
		b := make([]byte, rng.IntN(300))
		for j := range b {
			b[j] = `"abcd\{}:,0123/`[rng.IntN(15)]
		}
		inputs = append(inputs, b)
	}
	for _, in := range inputs {
		k := p.Pack(in)
		got, err := k.Unpack()
		if err != nil {
			t.Fatalf("Unpack(Pack(%q)) error: %v", in, err)
		}
		if !bytes.Equal(got, in) {
			t.Fatalf("Unpack(Pack(%q)) = %q", in, got)
		}
		if k.Len() != len(in) {
			t.Errorf("Len() = %d, want %d", k.Len(), len(in))
		}
	}
}

// TestPackShares: after a few answers, an answer keeps only what is its own (image name,
// digest once) and the shared table holds only pieces seen in two answers.
func TestPackShares(t *testing.T) {
	p := NewPacker(0)
	for i := range 10 {
		p.Pack(answer(i))
	}
	in := answer(1000)
	k := p.Pack(in)
	if k.Size() > 160 {
		t.Errorf("packed answer of %d bytes holds %d bytes, want at most 160", len(in), k.Size())
	}
	for _, s := range p.shared {
		if bytes.Contains([]byte(s), []byte("sha256:000")) {
			t.Errorf("a digest seen in one answer only was shared: %q", s)
		}
	}
}

// TestPackBounded: the shared table never exceeds its bound, and answers still round-trip
// once it is full.
func TestPackBounded(t *testing.T) {
	p := NewPacker(8)
	for i := range 500 {
		in := fmt.Appendf(nil, `{"k%d":"v%d","k%d":"v%d"}`, i%40, i%40, (i+1)%40, (i+1)%40)
		got, err := p.Pack(in).Unpack()
		if err != nil || !bytes.Equal(got, in) {
			t.Fatalf("round trip of %q = %q, %v", in, got, err)
		}
	}
	if len(p.shared) > 8 {
		t.Errorf("shared table holds %d pieces, bound 8", len(p.shared))
	}
	if len(p.seen) > maxSeen {
		t.Errorf("seen holds %d pieces, bound %d", len(p.seen), maxSeen)
	}
}

// TestPackConcurrent: packing and unpacking from many goroutines (run with -race).
func TestPackConcurrent(t *testing.T) {
	p := NewPacker(0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				in := answer(g*1000 + i)
				got, err := p.Pack(in).Unpack()
				if err != nil || !bytes.Equal(got, in) {
					t.Errorf("round trip of %q = %q, %v", in, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkUnpack(b *testing.B) {
	p := NewPacker(0)
	for i := range 100 {
		p.Pack(answer(i))
	}
	k := p.Pack(answer(5000))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Unpack(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestPackNil: a nil Packer packs without sharing, and the zero Packed is empty.
func TestPackNil(t *testing.T) {
	var p *Packer
	in := answer(3)
	k := p.Pack(in)
	got, err := k.Unpack()
	if err != nil || !bytes.Equal(got, in) {
		t.Fatalf("round trip with a nil Packer = %q, %v", got, err)
	}
	if k.IsZero() {
		t.Error("IsZero() of a packed answer = true")
	}
	if !(Packed{}).IsZero() {
		t.Error("IsZero() of the zero Packed = false")
	}
	if b, err := (Packed{}).Unpack(); b != nil || err != nil {
		t.Errorf("Unpack() of the zero Packed = %q, %v", b, err)
	}
	if e := p.Pack(nil); e.IsZero() || e.Len() != 0 {
		t.Errorf("Pack(nil) = zero %v, length %d; want a non-zero empty answer", e.IsZero(), e.Len())
	}
}

// TestAppendUnpacked: the answer appended after other bytes is the answer (back references
// count from the answer's own start), and the bytes before it are kept.
func TestAppendUnpacked(t *testing.T) {
	p := NewPacker(0)
	for i := range 3 {
		want := answer(i) // the digest repeats as tagDigest: a back reference
		k := p.Pack(want)
		got, err := k.AppendUnpacked([]byte(`{"image":"x",`))
		if err != nil {
			t.Fatal(err)
		}
		if prefix := `{"image":"x",`; string(got) != prefix+string(want) {
			t.Errorf("AppendUnpacked =\n%s\nwant\n%s%s", got, prefix, want)
		}
	}
}
