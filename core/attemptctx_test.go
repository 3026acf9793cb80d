package core

import (
	"context"
	"errors"
	"net"
	"runtime"
	"testing"
	"time"
)

func TestAttemptCtxCancel(t *testing.T) {
	a := &attemptCtx{parent: context.WithValue(context.Background(), traceKey{}, "shadowed")}
	if a.Err() != nil {
		t.Fatal("a new attempt context is cancelled")
	}
	if got := a.Value(traceKey{}); got != &a.trace {
		t.Fatalf("Value(traceKey) = %v, want the attempt's own trace", got)
	}
	done := a.Done()
	child, cancelChild := context.WithTimeout(a, time.Hour)
	defer cancelChild()
	stopped := make(chan struct{})
	stop := context.AfterFunc(a, func() { close(stopped) })
	if !stop() {
		t.Fatal("stopping an AfterFunc of a live context reported it ran")
	}
	ran := make(chan struct{})
	context.AfterFunc(a, func() { close(ran) })

	why := &attemptTimeout{"timeout: test"}
	a.cancel(context.DeadlineExceeded, why)
	a.cancel(context.Canceled, nil) // the first cancel stands
	<-done
	<-child.Done()
	<-ran
	select {
	case <-stopped:
		t.Fatal("a stopped AfterFunc ran")
	default:
	}
	if a.Err() != context.DeadlineExceeded || a.timeoutCause() != why {
		t.Fatalf("Err %v, cause %v", a.Err(), a.timeoutCause())
	}
	if !errors.Is(child.Err(), context.Canceled) && !errors.Is(child.Err(), context.DeadlineExceeded) {
		t.Fatalf("derived context: %v", child.Err())
	}
	// A context cancelled before anybody asked for Done answers a closed one.
	b := &attemptCtx{parent: context.Background()}
	b.cancel(context.Canceled, nil)
	<-b.Done()
	if b.timeoutCause() != nil {
		t.Fatal("a plain cancel has a timeout cause")
	}
	late := make(chan struct{})
	if context.AfterFunc(b, func() { close(late) })() {
		t.Fatal("stop of an AfterFunc of a cancelled context reported it stopped it")
	}
	<-late
}

// Contexts derived from an attempt's (dial timeouts, net/http's own) are
// cancelled through its AfterFunc method, not by a goroutine each that
// waits on its Done.
func TestAttemptCtxDerivedContextsStartNoGoroutine(t *testing.T) {
	batch, cancelBatch := context.WithCancel(context.Background()) // as a batch's is
	defer cancelBatch()
	a := &attemptCtx{parent: batch}
	before := runtime.NumGoroutine()
	var cancels []context.CancelFunc
	for range 50 {
		_, cancel := context.WithCancel(a)
		cancels = append(cancels, cancel)
	}
	alt := withValue(a, altAddrKey{}, "127.0.0.1:1") // the engine's own values keep the method
	for range 50 {
		_, cancel := context.WithTimeout(alt, time.Hour)
		cancels = append(cancels, cancel)
	}
	if n := runtime.NumGoroutine() - before; n > 5 {
		t.Fatalf("%d goroutines started for 100 derived contexts", n)
	}
	for _, cancel := range cancels {
		cancel()
	}
	a.mu.Lock()
	left := len(a.funcs)
	a.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d AfterFuncs left after their contexts were cancelled", left)
	}
}

func TestAttemptCtxWatchConn(t *testing.T) {
	a := &attemptCtx{parent: context.Background()}
	c1, s1 := net.Pipe()
	defer c1.Close()
	defer s1.Close()
	c2, s2 := net.Pipe()
	defer c2.Close()
	defer s2.Close()

	// Ended before the cancel: the connection is untouched and reusable.
	w2 := watchConn(a, c2)
	if !w2.end() {
		t.Fatal("end before any cancel reported the connection interrupted")
	}
	w1 := watchConn(a, c1)
	// A second connection at once is watched too (by a context.AfterFunc).
	c4, s4 := net.Pipe()
	defer c4.Close()
	defer s4.Close()
	w4 := watchConn(a, c4)
	read := make(chan error, 2)
	for _, c := range []net.Conn{c1, c4} {
		go func() {
			_, err := c.Read(make([]byte, 1))
			read <- err
		}()
	}
	time.Sleep(10 * time.Millisecond)
	a.cancel(context.Canceled, nil)
	for range 2 {
		select {
		case err := <-read:
			if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
				t.Fatalf("blocked read ended with %v, want a timeout", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("cancel did not interrupt an attached connection")
		}
	}
	if w1.end() || w4.end() {
		t.Fatal("end after the cancel reported a connection untouched")
	}
	go s2.Write([]byte("x"))
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c2.Read(make([]byte, 1)); err != nil {
		t.Fatalf("a connection detached before the cancel was interrupted: %v", err)
	}
	// Attached after the cancel: interrupted at once.
	c3, s3 := net.Pipe()
	defer c3.Close()
	defer s3.Close()
	if watchConn(a, c3).end() {
		t.Fatal("a connection attached to a cancelled context reported untouched")
	}
	if _, err := c3.Read(make([]byte, 1)); err == nil {
		t.Fatal("read on a connection attached to a cancelled context succeeded")
	}
}

func TestRunningAttemptsCancelAll(t *testing.T) {
	var r runningAttempts
	as := make([]*attemptCtx, 4)
	for i := range as {
		as[i] = &attemptCtx{parent: context.Background()}
		r.add(as[i])
	}
	r.remove(as[1]) // from the middle
	r.remove(as[3]) // the head
	r.remove(as[3]) // twice is harmless
	r.cancelAll(context.Canceled)
	for i, a := range as {
		removed := i == 1 || i == 3
		if (a.Err() == nil) != removed {
			t.Errorf("attempt %d: Err %v (removed %v)", i, a.Err(), removed)
		}
	}
	late := &attemptCtx{parent: context.Background()}
	r.add(late)
	if late.Err() != context.Canceled {
		t.Fatalf("an attempt added after the cancel: Err %v", late.Err())
	}
	r.remove(as[0])
	r.remove(as[2])
	if r.head != nil {
		t.Fatal("the list is not empty after every attempt left")
	}
}
