package attest

import (
	"strings"
	"testing"
	"time"
)

// The byte-bounded cache sees an answer's encoded size: a large predicate must not count as a
// few bytes (an answer may hold up to maxImageBytes).
func TestCacheBytesCountsTheEncodedAnswer(t *testing.T) {
	v := &Value{Image: "registry.example/app:v1", Digest: "sha256:" + strings.Repeat("a", 64),
		Statements: []Statement{{Authority: "ci", PredicateType: slsaV1, Predicate: []byte(`{"blob":"` + strings.Repeat("x", 100<<10) + `"}`)}}}
	c, err := v.compact(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if got := c.CacheBytes(); got < 100<<10 {
		t.Errorf("CacheBytes() = %d, want at least the 100 KiB predicate", got)
	}
	var none *Value
	if got := none.CacheBytes(); got != 0 {
		t.Errorf("nil CacheBytes() = %d, want 0", got)
	}
}
