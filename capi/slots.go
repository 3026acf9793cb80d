package main

import (
	"os"
	"runtime"
	"sync/atomic"
	"time"
)

// Scheduler slots (GOMAXPROCS) for a host confined to one CPU.
//
// A host thread that returns from a call into the library keeps its Go
// scheduler slot until the runtime's monitor takes it back, 20 us to 10 ms
// later (cgo's callback return leaves it "in a system call"). With a single
// slot the engine then cannot run while the host does anything but wait in
// the library: an event loop, an as-completed consumer, another host
// thread. Yet while the host only waits, one slot is what a one-CPU process
// wants: with two, every goroutine the engine wakes starts a second thread
// that competes for the same CPU (measured: a third more CPU and ~11
// context switches per one-at-a-time request instead of ~4).
//
// So on one CPU the library starts with one slot and takes a second, for
// good, the first time the host gets control back while a batch still has
// results to come: a wait that returns records early, a poll (a zero
// timeout, a drain, fastreq_batch_done), or an eventfd asked for. A timed
// wait that ran out does not count: its caller was blocked all along and
// goes straight back (the slices that keep Ctrl-C working). One-at-a-time
// blocking requests never do any of it and keep one slot.
// GOMAXPROCS set in the environment wins; with two or more CPUs nothing
// changes. With two slots on one CPU, batches start through the intake
// (intake.go).
var oneSlot atomic.Bool

// unfinished counts live batches whose last result has not been pushed.
var unfinished atomic.Int64

func init() {
	oneCPU := runtime.NumCPU() < 2 // the CPUs the process may use
	oneSlot.Store(os.Getenv("GOMAXPROCS") == "" && runtime.GOMAXPROCS(0) < 2)
	intakeOn.Store(oneCPU && runtime.GOMAXPROCS(0) >= 2) // GOMAXPROCS set in the environment
}

// hostWillRun is called before control returns to the host from a call
// that lets it do other work while requests are in flight: eventfd means
// an event loop, always; a wait or drain only while batches are unfinished.
func hostWillRun(always bool) {
	if !oneSlot.Load() || (!always && unfinished.Load() == 0) {
		return
	}
	if oneSlot.CompareAndSwap(true, false) {
		runtime.GOMAXPROCS(2) // a short stop-the-world, once per process
		intakeOn.Store(true)  // see intake.go
		engineLogs.add(logRecord{
			TimeNS:  time.Now().UnixNano(),
			Level:   "debug",
			Message: "engine: a second scheduler slot (the host runs while requests are in flight)",
		})
	}
}

// afterWait is hostWillRun for a wait that returned n records after
// waiting up to timeoutMS: one that ran out of time is a slice of a longer
// wait (the Ctrl-C slices) and does not count.
func afterWait(n int, timeoutMS int32) {
	if n > 0 || timeoutMS == 0 {
		hostWillRun(false)
	}
}
