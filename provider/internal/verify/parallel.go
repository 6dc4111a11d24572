package verify

import (
	"sync"
	"time"
)

// helperIdle is how long a helper goroutine waits for more work before it exits.
const helperIdle = 10 * time.Second

// helpers runs the extra branches of a lookup (the referrers read beside the attestation
// read, the platforms beside the signatures) on goroutines that outlive the lookup. A new
// goroutine per lookup starts with a small stack and grows and copies it on every registry
// read (net/http and the transports are deep): 4 % of a cold /v1/scan key's CPU. A helper
// keeps the stack it grew until the collector shrinks it. The zero value is usable: with no
// channel every branch gets a goroutine of its own, as before.
type helpers struct {
	work chan func()
}

func newHelpers() helpers { return helpers{work: make(chan func())} }

// parallel runs fs concurrently and returns when all are done. The first runs on the calling
// goroutine (one goroutine fewer per lookup), the others on idle helpers, or new ones when
// none is idle.
func (h *helpers) parallel(fs []func()) {
	if len(fs) == 0 {
		return
	}
	var wg sync.WaitGroup
	for _, f := range fs[1:] {
		wg.Add(1)
		job := func() { defer wg.Done(); f() }
		select {
		case h.work <- job:
		default:
			go h.helper(job)
		}
	}
	fs[0]()
	wg.Wait()
}

// helper runs job, then the jobs parallel hands it, until it has been idle for helperIdle.
func (h *helpers) helper(job func()) {
	t := time.NewTimer(helperIdle)
	defer t.Stop()
	for {
		job()
		t.Reset(helperIdle)
		select {
		case job = <-h.work:
		case <-t.C:
			return
		}
	}
}
