package gcpace

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, MaxPercent},
		{1, MaxPercent},
		{16 * mib / 100, MaxPercent}, // exactly 10,000 %
		{8 * mib, 200},
		{12 * mib, 134}, // ceil(133.3)
		{16 * mib, 100},
		{32 * mib, 50}, // base and floor agree
		{33 * mib, 50}, // base gives more than the floor
		{1 << 40, 50},
	} {
		if got := Percent(50, 16*mib, tc.live); got != tc.want {
			t.Errorf("Percent(50, 16 MiB, %d) = %d, want %d", tc.live, got, tc.want)
		}
	}
	// No floor: always the base.
	for _, live := range []uint64{0, 1, 1 << 40} {
		if got := Percent(50, 0, live); got != 50 {
			t.Errorf("Percent(50, 0, %d) = %d, want 50", live, got)
		}
	}
}

// gogc is the runtime's current GOGC, as runtime/metrics reports it.
func gogc(t *testing.T) int {
	t.Helper()
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		t.Fatalf("runtime/metrics has no /gc/gogc:percent")
	}
	return int(s[0].Value.Uint64())
}

// TestStartFollowsTheLiveHeap runs the pacer in the real runtime: a small live heap raises
// GOGC after a collection, a live heap past the floor returns it to the base, and stop leaves
// the base.
func TestStartFollowsTheLiveHeap(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	const floor = 64 << 20 // far above this test binary's live heap
	stop := Start(50, floor)
	defer stop()
	if got := gogc(t); got != 50 {
		t.Fatalf("GOGC right after Start(50, …) = %d, want 50 until a collection has run", got)
	}
	wait := func(what string, ok func(int) bool) int {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			runtime.GC()
			if g := gogc(t); ok(g) {
				return g
			}
			if time.Now().After(deadline) {
				t.Fatalf("GOGC = %d after collections for 10s, want %s", gogc(t), what)
			}
			time.Sleep(time.Millisecond)
		}
	}
	small := wait("above 50 with a small live heap", func(g int) bool { return g > 50 })
	if small > MaxPercent {
		t.Errorf("GOGC = %d, above MaxPercent %d", small, MaxPercent)
	}

	// Keep 160 MiB live: the floor's 64 MiB is less than half of it, so the base holds.
	live := make([][]byte, 160)
	for i := range live {
		live[i] = make([]byte, 1<<20)
	}
	wait("the base 50 with a large live heap", func(g int) bool { return g == 50 })
	runtime.KeepAlive(live)
	clear(live) // the 160 MiB is garbage from here

	stop()
	if got := gogc(t); got != 50 {
		t.Errorf("GOGC after stop = %d, want the base 50", got)
	}
	// Stopped: collections of a small heap no longer raise it.
	for range 3 {
		runtime.GC()
	}
	time.Sleep(10 * time.Millisecond)
	if got := gogc(t); got != 50 {
		t.Errorf("GOGC after stop and three collections = %d, want 50", got)
	}
}
