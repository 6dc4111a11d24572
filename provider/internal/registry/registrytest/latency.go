package registrytest

import (
	"net/http"
	"time"
)

// SetLatency makes the registry wait d before serving every request (0: off), as a registry
// d of round trip away would: with it a loopback registry shows what concurrency buys against
// a real one (the load generator's latency scenario uses 20 ms). Requests whose client gives up
// stop waiting.
func (r *Registry) SetLatency(d time.Duration) { r.latency.Store(int64(d)) }

// delay waits the configured latency, or until req's context ends.
func (r *Registry) delay(req *http.Request) {
	d := time.Duration(r.latency.Load())
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-req.Context().Done():
	}
}
