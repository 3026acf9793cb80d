package core

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// attemptCtx is the context of one attempt: its batch's context with the
// attempt's trace in it (Value), cancelled by the attempt's watchdog, by
// the batch's cancellation, and when the attempt ends. One allocation
// holds the context, the trace and the watchdog.
//
// It costs less than a context.WithCancelCause per attempt: it joins its
// batch's list of running attempts rather than a cancel context's
// children map, makes its Done channel only when asked for it, and the
// connection that must be interrupted when it is cancelled is attached
// to it (watchConn) rather than watched by a context.AfterFunc. Contexts
// derived from it (a dial's timeout, net/http's own) are cancelled with
// it without a goroutine each: it has the AfterFunc method that the
// context package's propagation uses (withValue keeps that method for the
// engine's own context values).
//
// Err is context.Canceled once the attempt ended, DeadlineExceeded when
// its watchdog ended it (timeoutCause says why; context.Cause does not
// know it), and the batch's error when the batch was cancelled -- which
// reaches the attempt from a goroutine of the batch's, a moment after the
// batch's own context.
type attemptCtx struct {
	parent context.Context // the batch's
	trace  attemptTrace
	wd     watchdog

	mu    sync.Mutex
	done  atomic.Value // chan struct{}, made by the first Done
	err   error        // nil until cancelled
	why   *attemptTimeout
	conn  net.Conn     // attached by watchConn: interrupted on cancel
	funcs []*afterFunc // of AfterFunc, started on cancel

	// In the batch's running list (runningAttempts), under its lock.
	prev, next *attemptCtx
}

type afterFunc struct{ f func() }

// closedDone is the Done channel of an attempt cancelled before anybody
// asked for it.
var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (a *attemptCtx) Deadline() (time.Time, bool) { return a.parent.Deadline() }

// Value answers the attempt's trace for traceKey, its hooks for
// httptrace (when it holds them), and the rest from the parent.
func (a *attemptCtx) Value(key any) any {
	if key == (traceKey{}) {
		return &a.trace
	}
	if a.trace.holdsHooks && key == clientTraceKey {
		return &a.trace.hooks
	}
	return a.parent.Value(key)
}

func (a *attemptCtx) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

func (a *attemptCtx) Done() <-chan struct{} {
	if d := a.done.Load(); d != nil {
		return d.(chan struct{})
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if d := a.done.Load(); d != nil {
		return d.(chan struct{})
	}
	d := make(chan struct{})
	a.done.Store(d)
	return d
}

// AfterFunc is context.AfterFunc for this context; the context package
// calls it for the contexts derived from this one.
func (a *attemptCtx) AfterFunc(f func()) (stop func() bool) {
	a.mu.Lock()
	if a.err != nil {
		a.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	af := &afterFunc{f}
	a.funcs = append(a.funcs, af)
	a.mu.Unlock()
	return func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		for i, g := range a.funcs {
			if g == af {
				a.funcs = append(a.funcs[:i], a.funcs[i+1:]...)
				return true
			}
		}
		return false // started, or stopped before
	}
}

// cancel cancels a with err (why: the watchdog's reason, for
// timeoutCause), once: it closes Done, interrupts the attached connection
// and starts the AfterFunc functions.
func (a *attemptCtx) cancel(err error, why *attemptTimeout) {
	a.mu.Lock()
	if a.err != nil {
		a.mu.Unlock()
		return
	}
	a.err, a.why = err, why
	if d := a.done.Load(); d != nil {
		close(d.(chan struct{}))
	} else {
		a.done.Store(closedDone)
	}
	if a.conn != nil {
		a.conn.SetDeadline(time.Unix(1, 0))
		a.conn = nil
	}
	funcs := a.funcs
	a.funcs = nil
	a.mu.Unlock()
	for _, af := range funcs {
		go af.f()
	}
}

// timeoutCause is why the watchdog ended the attempt, or nil.
func (a *attemptCtx) timeoutCause() *attemptTimeout {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.why
}

// connWatch interrupts a connection's blocked reads and writes when a
// context is cancelled (its deadline goes to the past), until end.
type connWatch struct {
	a    *attemptCtx // the attempt's context that watches conn, or nil
	conn net.Conn
	stop func() bool // context.AfterFunc's, for any other context
}

// watchConn watches conn for ctx; at once when ctx is already cancelled.
// An attempt's context holds one connection at a time (the HTTP/1.1
// transport detaches one before it sends on the next, and http.Client
// closes a redirect's body before it follows it); another context, or a
// second connection at once, is watched by a context.AfterFunc.
func watchConn(ctx context.Context, conn net.Conn) connWatch {
	if a, ok := ctx.(*attemptCtx); ok {
		a.mu.Lock()
		attached := a.err != nil || a.conn == nil
		if a.err != nil {
			conn.SetDeadline(time.Unix(1, 0))
		} else if a.conn == nil {
			a.conn = conn
		}
		a.mu.Unlock()
		if attached {
			return connWatch{a: a, conn: conn}
		}
	}
	return connWatch{stop: context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })}
}

// end stops the watch. It reports whether the cancellation had not
// reached the connection: false means its deadline may be in the past,
// so it must not be used again.
func (w connWatch) end() bool {
	if w.a == nil {
		return w.stop()
	}
	a := w.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.conn == w.conn {
		a.conn = nil
	}
	return a.err == nil
}

// runningAttempts is a batch's attempts in flight, which its
// cancellation cancels. Lock order: the list's, then an attempt's.
type runningAttempts struct {
	mu   sync.Mutex
	head *attemptCtx
	err  error // the batch's, once it is cancelled
}

// add lists a, or cancels it at once when the batch was cancelled.
func (r *runningAttempts) add(a *attemptCtx) {
	r.mu.Lock()
	if err := r.err; err != nil {
		r.mu.Unlock()
		a.cancel(err, nil)
		return
	}
	a.next = r.head
	if r.head != nil {
		r.head.prev = a
	}
	r.head = a
	r.mu.Unlock()
}

// remove unlists a; a no-op when a is not listed (it was added after the
// batch's cancel).
func (r *runningAttempts) remove(a *attemptCtx) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case a.prev != nil:
		a.prev.next = a.next
	case r.head == a:
		r.head = a.next
	default:
		return
	}
	if a.next != nil {
		a.next.prev = a.prev
	}
	a.prev, a.next = nil, nil
}

// cancelAll cancels the listed attempts and every one added from now on.
func (r *runningAttempts) cancelAll(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
	for a := r.head; a != nil; a = a.next {
		a.cancel(err, nil)
	}
}

// watchdog ends an attempt that runs past its total timeout, or in which
// no byte arrives for its idle timeout (ReadTimeout): one timer per
// attempt, re-armed when it fires rather than on every read.
type watchdog struct {
	a     *attemptCtx
	timer *time.Timer
	begin time.Time
	total time.Duration // 0: none
	idle  time.Duration // 0: none
	last  atomic.Int64  // time of the last progress, as nanoseconds since begin
	body  progressBody
}

// attemptTimeout is the cancel cause of an attempt its watchdog ended.
type attemptTimeout struct{ msg string }

func (e *attemptTimeout) Error() string { return e.msg }

// start arms a zero watchdog of a, begun at begin.
func (w *watchdog) start(a *attemptCtx, begin time.Time, total, idle time.Duration) {
	w.a, w.begin, w.total, w.idle = a, begin, total, idle
	w.body.w = w
	first := total
	if idle > 0 && (first == 0 || idle < first) {
		first = idle
	}
	w.timer = time.AfterFunc(first, w.fire)
}

func (w *watchdog) fire() {
	if w.a.Err() != nil {
		return
	}
	now := time.Since(w.begin)
	if w.total > 0 && now >= w.total {
		w.a.cancel(context.DeadlineExceeded, &attemptTimeout{fmt.Sprintf("timeout: the attempt took longer than %v (timeout)", w.total)})
		return
	}
	next := w.total - now
	if w.idle > 0 {
		quiet := now - time.Duration(w.last.Load())
		if quiet >= w.idle {
			w.a.cancel(context.DeadlineExceeded, &attemptTimeout{fmt.Sprintf("timeout: no data received for %v (read_timeout)", w.idle)})
			return
		}
		if w.total == 0 || w.idle-quiet < next {
			next = w.idle - quiet
		}
	}
	w.a.mu.Lock()
	if w.a.err == nil { // else the attempt ended (end stops the timer after its cancel)
		w.timer.Reset(next)
	}
	w.a.mu.Unlock()
}

// progress notes that bytes arrived.
func (w *watchdog) progress() { w.last.Store(int64(time.Since(w.begin))) }

// watchBody has resp's body note its progress, when the watchdog runs:
// the idle timeout then counts from the last byte read.
func (w *watchdog) watchBody(resp *http.Response) {
	if w.timer == nil || resp.Body == http.NoBody {
		return
	}
	w.body.ReadCloser = resp.Body
	resp.Body = &w.body
	w.progress()
}

func (w *watchdog) stop() {
	if w.timer != nil {
		w.timer.Stop()
	}
}

// progressBody is a response body that tells its watchdog when bytes
// arrive.
type progressBody struct {
	io.ReadCloser
	w *watchdog
}

func (b *progressBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.w.progress()
	}
	return n, err
}

// startAttempt starts an attempt of batch b, begun at begin: its context,
// trace and, with a total or idle timeout, watchdog. ctx is the context
// of the attempt's requests: a itself (see attemptTrace.start for the one
// exception). The attempt must end (end).
func startAttempt(b *Batch, begin time.Time, total, idle time.Duration, withSent bool) (a *attemptCtx, ctx context.Context) {
	a = &attemptCtx{parent: b.ctx}
	ctx = a.trace.start(a, begin, withSent)
	b.running.add(a)
	if total > 0 || idle > 0 {
		a.wd.start(a, begin, total, idle)
	}
	return a, ctx
}

// end ends the attempt: its watchdog stops, it is cancelled and it
// leaves b's running list.
func (a *attemptCtx) end(b *Batch) {
	a.cancel(context.Canceled, nil)
	a.wd.stop() // after the cancel: a firing timer re-arms only before it
	b.running.remove(a)
}

// afterFuncer is a context with its own AfterFunc, which the context
// package's propagation uses instead of a goroutine.
type afterFuncer interface {
	context.Context
	AfterFunc(func()) func() bool
}

// withValue is context.WithValue whose result keeps the AfterFunc method
// of an attempt's context (see attemptCtx).
func withValue(parent context.Context, key, val any) context.Context {
	if p, ok := parent.(afterFuncer); ok {
		return &valueCtx{p, key, val}
	}
	return context.WithValue(parent, key, val)
}

type valueCtx struct {
	afterFuncer
	key, val any
}

func (c *valueCtx) Value(key any) any {
	if key == c.key {
		return c.val
	}
	return c.afterFuncer.Value(key)
}
