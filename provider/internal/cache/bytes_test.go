package cache_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/imagetrust/imagetrust/provider/internal/cache"
)

// blob is a cached value that reports its size.
type blob []byte

func (b blob) CacheBytes() int { return cap(b) }

// TestMaxBytes: the cache evicts the least recently used entries once their estimated bytes
// exceed MaxBytes, keeps the newest entry even when it alone is larger, and reports the bytes.
func TestMaxBytes(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, err := cache.New[blob](cache.Options{Name: "bytes", MaxEntries: 1000, MaxBytes: 10_000, TTL: time.Hour, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		c.Put(fmt.Sprintf("k%03d", i), make(blob, 1000))
	}
	if got := c.Bytes(); got > 10_000 {
		t.Errorf("Bytes() = %d after 100 puts of 1000 bytes, want at most MaxBytes 10000", got)
	}
	n := c.Len()
	if n < 5 || n > 9 {
		t.Errorf("Len() = %d, want the 5-9 most recent entries of about 1100 bytes", n)
	}
	for i := range 100 {
		_, _, ok := c.Fresh(fmt.Sprintf("k%03d", i))
		if want := i >= 100-n; ok != want {
			t.Errorf("k%03d cached = %v, want %v (least recently used evicted first)", i, ok, want)
		}
	}
	if got := testutil.ToFloat64(mustGauge(t, reg, "imagetrust_cache_bytes")); int64(got) != c.Bytes() {
		t.Errorf("imagetrust_cache_bytes = %v, want %d", got, c.Bytes())
	}

	c.Put("huge", make(blob, 50_000))
	if _, _, ok := c.Fresh("huge"); !ok || c.Len() != 1 {
		t.Errorf("after an entry larger than MaxBytes: cached %v, Len() = %d; want it alone in the cache", ok, c.Len())
	}
	c.Put("huge", make(blob, 10))
	if got := c.Bytes(); got > 1000 {
		t.Errorf("Bytes() = %d after the entry was replaced by a small one, want its new size", got)
	}
}

func TestMaxBytesInvalid(t *testing.T) {
	if _, err := cache.New[blob](cache.Options{Name: "x", MaxEntries: 1, MaxBytes: -1, TTL: time.Second}); err == nil {
		t.Error("cache.New with MaxBytes -1 = nil error, want one naming MaxBytes")
	}
}

func mustGauge(t *testing.T, g prometheus.Gatherer, name string) prometheus.Collector {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name}, func() float64 { return mf.GetMetric()[0].GetGauge().GetValue() })
		}
	}
	t.Fatalf("metric %s not found", name)
	return nil
}
