package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// pinning gives the provider a CPU of its own: the provider is started under taskset on the
// last CPU this process may use, and this process (the load generator and the in-memory
// registry) keeps the others. Unpinned on a small machine, the three share every core: the
// provider's figures then measure the scheduler's placement of the load generator's own threads
// (on 2 cores, cold batch-1 p50 0.70 ms unpinned against 0.42 ms pinned, in one run each), and
// in production the registry and Gatekeeper do not run on the provider's CPU.
type pinning struct {
	provider int    // CPU for the provider (-1: unpinned)
	bench    []int  // CPUs of this process
	taskset  string // path of taskset
	why      string // why unpinned, when it is
}

// pin moves this process's threads to all but the last allowed CPU and returns how to start
// the provider on that last one. With fewer than 2 CPUs or without taskset it changes nothing
// and says why.
func pin() pinning {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return pinning{provider: -1, why: "sched_getaffinity: " + err.Error()}
	}
	var cpus []int
	for c := 0; c < 1024; c++ {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	if len(cpus) < 2 {
		return pinning{provider: -1, why: fmt.Sprintf("%d CPU: nothing to split", len(cpus))}
	}
	ts, err := exec.LookPath("taskset")
	if err != nil {
		return pinning{provider: -1, why: "taskset (util-linux) not found"}
	}
	var mine unix.CPUSet
	for _, c := range cpus[:len(cpus)-1] {
		mine.Set(c)
	}
	// Every thread that exists now; threads created later inherit from a pinned creator.
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return pinning{provider: -1, why: err.Error()}
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &mine); err != nil {
			return pinning{provider: -1, why: "sched_setaffinity: " + err.Error()}
		}
	}
	runtime.GOMAXPROCS(len(cpus) - 1)
	return pinning{provider: cpus[len(cpus)-1], bench: cpus[:len(cpus)-1], taskset: ts}
}

// command is the provider's command line under this pinning.
func (p pinning) command(bin string, args []string) (string, []string) {
	if p.provider < 0 {
		return bin, args
	}
	return p.taskset, append([]string{"-c", strconv.Itoa(p.provider), bin}, args...)
}

// String is the "pinned" field of every line.
func (p pinning) String() string {
	if p.provider < 0 {
		return "no (" + p.why + ")"
	}
	b := make([]string, len(p.bench))
	for i, c := range p.bench {
		b[i] = strconv.Itoa(c)
	}
	return fmt.Sprintf("provider cpu %d, bench cpus %s", p.provider, strings.Join(b, ","))
}

// calibrate is the median time of one ECDSA P-256 signature verification (the provider's own
// fixed cost per key-signed image) on the provider's CPU, measured just before a scenario while
// the provider is idle: on a shared virtual machine that time moves by a third between runs, and
// with it every rate and CPU figure, so each line carries it.
func (p pinning) calibrate() float64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if p.provider >= 0 {
		var one, back unix.CPUSet
		one.Set(p.provider)
		for _, c := range p.bench {
			back.Set(c)
		}
		if unix.SchedSetaffinity(0, &one) == nil {
			defer func() { _ = unix.SchedSetaffinity(0, &back) }() // best effort: the thread is the bench's again
		}
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return 0
	}
	h := sha256.Sum256([]byte("imagetrust-bench"))
	sig, err := ecdsa.SignASN1(rand.Reader, k, h[:])
	if err != nil {
		return 0
	}
	d := make([]time.Duration, 101)
	for i := range d {
		t0 := time.Now()
		ecdsa.VerifyASN1(&k.PublicKey, h[:], sig)
		d[i] = time.Since(t0)
	}
	slices.Sort(d)
	return round(float64(d[len(d)/2].Nanoseconds()) / 1000)
}
