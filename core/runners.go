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
	work chan func()
	done <-chan struct{}
	idle time.Duration
	live atomic.Int64 // runners alive
}

const runnerIdle = 5 * time.Second

func newRunners(done <-chan struct{}) *runners {
	return &runners{work: make(chan func()), done: done, idle: runnerIdle}
}

// start runs f on an idle runner, or on a new one when none waits.
func (r *runners) start(f func()) {
	select {
	case r.work <- f: // unbuffered: taken only by a runner waiting for work
	default:
		go r.loop(f)
	}
}

func (r *runners) loop(f func()) {
	r.live.Add(1)
	defer r.live.Add(-1)
	idle := time.NewTimer(r.idle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(r.idle)
		select {
		case f = <-r.work:
		case <-idle.C:
			return
		case <-r.done:
			return
		}
	}
}
