package registrytest

import (
	"net/http"
	"testing"
	"time"
)

// TestSetLatency: every request is served no sooner than the configured latency after it
// arrived, and not delayed once the latency is off.
func TestSetLatency(t *testing.T) {
	r := New()
	t.Cleanup(r.Close)
	get := func() time.Duration {
		t.Helper()
		t0 := time.Now()
		resp, err := http.Get(r.Server.URL + "/v2/")
		if err != nil {
			t.Fatalf("GET /v2/: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v2/ = %d, want 200", resp.StatusCode)
		}
		return time.Since(t0)
	}
	const d = 40 * time.Millisecond
	r.SetLatency(d)
	for range 3 {
		if got := get(); got < d {
			t.Errorf("GET /v2/ with latency %s answered after %s", d, got)
		}
	}
	r.SetLatency(0)
	get()
	if n := r.Count(http.MethodGet, "ping"); n != 4 {
		t.Errorf("pings counted = %d, want 4", n)
	}
}
