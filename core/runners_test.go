package core

import (
	"sync"
	"testing"
	"time"
)

// liveRunners waits up to two seconds for r to have want runners.
func liveRunners(t *testing.T, r *runners, want int64) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for r.live.Load() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d runners, want %d", r.live.Load(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// One request after another runs on one runner; a burst gets as many as
// it needs; idle runners exit after their idle time, and all of them when
// the client closes.
func TestRunners(t *testing.T) {
	done := make(chan struct{})
	r := newRunners(done)
	r.idle = time.Minute
	for i := 0; i < 100; i++ {
		ran := make(chan struct{})
		r.start(func() { close(ran) })
		<-ran
		time.Sleep(time.Millisecond) // the runner goes back to waiting
	}
	if n := r.live.Load(); n < 1 || n > 3 { // 1, unless the machine stalled a runner on its way back
		t.Errorf("%d runners after 100 requests one at a time, want 1", n)
	}

	var wg sync.WaitGroup
	release := make(chan struct{})
	for i := 0; i < 20; i++ {
		wg.Add(1)
		r.start(func() { wg.Done(); <-release })
	}
	wg.Wait() // all 20 run at once
	if n := r.live.Load(); n < 20 {
		t.Errorf("%d runners for 20 concurrent requests", n)
	}
	close(release)
	close(done)
	liveRunners(t, r, 0)

	r = newRunners(make(chan struct{}))
	r.idle = 20 * time.Millisecond
	ran := make(chan struct{})
	r.start(func() { close(ran) })
	<-ran
	liveRunners(t, r, 0) // exits once idle
}

// jobFunc is a function as a job.
type jobFunc func()

func (f jobFunc) run() { f() }

// start runs f on an idle runner, or on a new one when none waits.
func (r *runners) start(f func()) { r.startJob(jobFunc(f)) }
