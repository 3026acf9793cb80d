package main

import (
	"sync"
	"sync/atomic"
)

// The intake starts batches from the engine's side of the scheduler. It is
// used when the process runs on one CPU with two scheduler slots (slots.go),
// which is when a host thread returns to run other work -- an event loop --
// while requests are in flight.
//
// A host thread returning from a call keeps its slot "in a system call"
// until the runtime's monitor takes it back. A batch started with a plain
// `go` statement lands in that held slot's run queue: another thread has to
// steal it (and stealing a busy-looking slot's next goroutine first sleeps
// 3 us), and the monitor, seeing the engine busy, hands the held slot to a
// third thread, so every goroutine the engine wakes then wakes a thread
// too. On one CPU each hop is a context switch: ~8 per one-at-a-time
// request under asyncio, against ~3 for the engine alone.
//
// Through the intake, submit queues the start and rings a doorbell: the
// thread parked in the poller wakes with the free slot and starts the
// batch there, and the batch's goroutines stay on that slot.
type intake struct {
	mu      sync.Mutex
	pending []func()
	bell    *doorbell
	broken  bool // the bell failed: batches start with `go` again
}

// intakeOn: batches start through the intake (set with the second slot on
// one CPU; tests set it directly).
var intakeOn atomic.Bool

var theIntake struct {
	once sync.Once
	in   *intake // nil when no doorbell could be made
}

// startBatch is core.BatchOptions.Start of submitted batches: through the
// intake when it is on, else a plain goroutine.
func startBatch(dispatch func()) {
	if intakeOn.Load() {
		theIntake.once.Do(func() {
			bell, err := newDoorbell()
			if err != nil {
				return
			}
			theIntake.in = &intake{bell: bell}
			go theIntake.in.loop()
		})
		if theIntake.in != nil {
			theIntake.in.start(dispatch)
			return
		}
	}
	go dispatch()
}

func (in *intake) start(dispatch func()) {
	in.mu.Lock()
	if in.broken {
		in.mu.Unlock()
		go dispatch()
		return
	}
	in.pending = append(in.pending, dispatch)
	first := len(in.pending) == 1
	in.mu.Unlock()
	if first { // later ones are taken with the first: the loop quiets the bell before taking
		in.bell.ring()
	}
}

// loop runs for the life of the process: one goroutine, parked in the
// poller between submits.
func (in *intake) loop() {
	for {
		err := in.bell.wait()
		in.mu.Lock()
		list := in.pending
		in.pending = nil
		in.broken = err != nil
		in.mu.Unlock()
		for _, dispatch := range list {
			go dispatch()
		}
		if err != nil {
			return
		}
	}
}
