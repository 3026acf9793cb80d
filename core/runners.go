package core

import (
	"sync/atomic"
	"time"
)

// runners keeps the goroutines that ran requests for the next ones. A
// fresh goroutine starts on a small stack that net/http's call depth then
// grows -- by copying it -- two or three times per request. A runner left
// idle for runnerIdle, or whose client closed, exits.
type runners struct {
	work chan job
	done <-chan struct{}
	idle time.Duration
	live atomic.Int64 // runners alive
}

const runnerIdle = 5 * time.Second

func newRunners(done <-chan struct{}) *runners {
	return &runners{work: make(chan job), done: done, idle: runnerIdle}
}

// job is work for a runner. A pointer that implements it (a *task) goes
// to a runner without an allocation, where a closure would need one.
type job interface{ run() }

// startJob runs j on an idle runner, or on a new one when none waits.
func (r *runners) startJob(j job) {
	select {
	case r.work <- j: // unbuffered: taken only by a runner waiting for work
	default:
		go r.loop(j)
	}
}

func (r *runners) loop(j job) {
	r.live.Add(1)
	defer r.live.Add(-1)
	idle := time.NewTimer(r.idle)
	defer idle.Stop()
	for {
		j.run()
		j = nil // let a finished task's memory go while the runner waits
		idle.Reset(r.idle)
		select {
		case j = <-r.work:
		case <-idle.C:
			return
		case <-r.done:
			return
		}
	}
}
