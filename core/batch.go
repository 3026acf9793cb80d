package core

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"time"
)

// BatchOptions tune one batch.
type BatchOptions struct {
	// OnResult, when set, receives each result as it completes, from the
	// engine's goroutines (concurrently: it must be safe for that). The
	// batch then keeps no results: Wait returns nil and Results is nil.
	OnResult func(*NormalizedResponse)
	// OnChunk receives the body of streaming requests that have no
	// OnChunk of their own. The slice is only valid during the call.
	OnChunk func(index int, chunk []byte) error
	// StrictValidation makes Submit fail, running nothing, when any
	// request is invalid. Otherwise an invalid request just fails alone.
	StrictValidation bool
	// BodyAllocator, with OnResult, supplies the memory whole bodies are
	// read into (those of a known length, and those of an unknown length
	// once they outgrow small sizes), so a caller that hands bodies to
	// another allocator (a C library) needs no copy and no Go garbage per
	// body.
	BodyAllocator BodyAllocator
	// HeadersOnFailure: a result without an error carries no Headers, for
	// a caller that reads them only from failures; the response's header
	// is then never copied into one.
	HeadersOnFailure bool
}

// BodyAllocator supplies body buffers from outside the Go heap. Alloc
// returns a slice of exactly n bytes, all about to be written, or nil to
// read into Go memory; ctx is the request's (an allocator that waits for
// memory gives up when it is done). Grow returns a slice of exactly n
// bytes (n > len(buf)) that starts with buf's bytes, buf being no longer
// valid, or nil when there is no memory (buf is then still valid). Free
// takes back a buffer the engine does not use after all (its read failed,
// or it could not grow). A buffer that was filled becomes the result's
// Content (a prefix of it: Content's capacity may be larger), and
// OnResult owns it from then on.
type BodyAllocator interface {
	Alloc(ctx context.Context, n int) []byte
	Grow(buf []byte, n int) []byte
	Free(buf []byte)
}

// Batch is a set of requests submitted together. Results arrive as they
// complete on Results, and all together, in order, from Wait.
type Batch struct {
	client  *Client
	ctx     context.Context
	cancel  context.CancelCauseFunc
	stop    func() bool // detaches the batch from the client's context
	unwatch func() bool // detaches cancelled from the batch's context
	running runningAttempts
	opts    BatchOptions
	preps   []*prepared                 // nil once finished, or when invalid
	invalid map[int]*NormalizedResponse // the results of invalid requests

	results []*NormalizedResponse
	ch      chan *NormalizedResponse
	done    chan struct{}

	mu        sync.Mutex
	remaining int

	rmu         sync.Mutex
	retries     retryHeap     // retries waiting for their delay, earliest first
	aborted     bool          // cancelled: retries are ended, not queued
	dispatching bool          // a dispatcher runs
	wake        chan struct{} // a retry was queued (capacity 1)
	next        int           // the next new request; the running dispatcher's

	abandoned atomic.Bool // see Abandon
}

// Submit validates reqs and starts them. With StrictValidation, the first
// invalid request's *Error is returned (its Field names the field, and
// the message the request's index). Otherwise every request gets exactly
// one result. The batch keeps the requests' maps and byte slices (read,
// never written), not reqs itself.
func (c *Client) Submit(ctx context.Context, reqs []RequestConfig, opts BatchOptions) (*Batch, error) {
	return c.SubmitSeq(ctx, func(yield func(*RequestConfig, error) bool) {
		for i := range reqs {
			if !yield(&reqs[i], nil) {
				return
			}
		}
	}, opts)
}

// Check validates reqs as a submit with StrictValidation does, and runs
// nothing: nil when every request is valid for this client (a closed
// client included), else the first invalid request's *Error or the
// sequence's error.
func (c *Client) Check(reqs iter.Seq2[*RequestConfig, error]) error {
	_, _, err := c.prepareAll(reqs, true)
	return err
}

// prepareAll prepares every request of reqs, in order. An invalid one
// fails the whole with strict (the sequence is still read to its end,
// whose error wins), else gets its result in invalid (its prep is nil).
func (c *Client) prepareAll(reqs iter.Seq2[*RequestConfig, error], strict bool) (preps []*prepared, invalid map[int]*NormalizedResponse, err error) {
	var refused *Error
	for cfg, err := range reqs {
		if err != nil {
			return nil, nil, err
		}
		if refused != nil {
			continue
		}
		i := len(preps)
		p, err := prepare(i, cfg)
		if err == nil {
			if err = c.checkProtocol(p); err != nil {
				p = nil
			}
		}
		if err != nil {
			fe := err.(*Error)
			if strict {
				e := *fe
				e.Message = fmt.Sprintf("request %d: %s", i, fe.Message)
				refused = &e
				continue
			}
			if invalid == nil {
				invalid = make(map[int]*NormalizedResponse)
			}
			invalid[i] = &NormalizedResponse{Index: i, ID: cfg.ID, Error: fe}
		}
		preps = append(preps, p)
	}
	if refused != nil {
		return nil, nil, refused
	}
	return preps, invalid, nil
}

// SubmitSeq is Submit for requests that come one at a time, as a decoder
// produces them: each *RequestConfig is only read during its step (the
// producer may reuse the struct, not its maps and slices), so a large
// batch never holds every RequestConfig at once, only what its attempts
// need. An error from reqs fails the submit, and nothing runs.
func (c *Client) SubmitSeq(ctx context.Context, reqs iter.Seq2[*RequestConfig, error], opts BatchOptions) (*Batch, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	b := &Batch{client: c, opts: opts, done: make(chan struct{}), wake: make(chan struct{}, 1)}
	var err error
	if b.preps, b.invalid, err = c.prepareAll(reqs, opts.StrictValidation); err != nil {
		return nil, err
	}
	n := len(b.preps)
	b.remaining = n
	if opts.OnResult == nil {
		b.results = make([]*NormalizedResponse, n)
		b.ch = make(chan *NormalizedResponse, n)
		b.opts.BodyAllocator = nil // the batch keeps the bodies: they must be Go memory
	}

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, &Error{Kind: KindCancelled, Message: "cancelled: the client is closed"}
	}
	c.batches.Add(1)
	c.mu.Unlock()

	b.ctx, b.cancel = context.WithCancelCause(ctx)
	b.stop = context.AfterFunc(c.ctx, func() { b.cancel(errClientClosed) })
	b.unwatch = context.AfterFunc(b.ctx, b.cancelled)
	if n == 0 {
		b.finishBatch()
		return b, nil
	}
	b.dispatching = true
	go b.dispatch()
	return b, nil
}

// cancelled passes the batch's cancellation on: to its running attempts
// and, with per-host limits, to its tasks parked for their host, whose
// abort needs the dispatcher even when it is not running.
func (b *Batch) cancelled() {
	b.running.cancelAll(b.ctx.Err())
	if b.client.hosts != nil {
		b.queueRetry(nil, time.Time{})
	}
}

// Len is the number of requests in the batch.
func (b *Batch) Len() int { return len(b.preps) }

// Results delivers each result as it completes and is closed after the
// last one, once Done is closed. It is buffered for the whole batch, so
// nobody has to read it. nil when BatchOptions.OnResult is set.
func (b *Batch) Results() <-chan *NormalizedResponse { return b.ch }

// Done is closed when every request of the batch has its result.
func (b *Batch) Done() <-chan struct{} { return b.done }

// Wait blocks until the batch is done and returns the results in request
// order (nil when BatchOptions.OnResult is set).
func (b *Batch) Wait() []*NormalizedResponse {
	<-b.done
	return b.results
}

// Cancel stops the batch: requests not yet finished fail with
// KindCancelled. It returns at once; Wait or Done tell when all ended.
func (b *Batch) Cancel() { b.cancel(context.Canceled) }

// Abandon is Cancel for a caller that will read no more results: requests
// that had not started, and retries waiting for their delay, end without
// a result (OnResult is not called for them, and their Wait slots stay
// nil), so abandoning a batch of a million queued requests costs no more
// than one of ten. Requests in flight still end with KindCancelled.
func (b *Batch) Abandon() {
	b.abandoned.Store(true)
	b.cancel(context.Canceled)
}

// dispatch starts the batch's work in order -- a retry whose delay has
// passed before the next new request -- each after its rate token and then
// its concurrency slot, so that waiting for the rate never holds a slot.
// It is the one place attempts start. It runs while there is work to
// start: once every request has started and no retry waits, it returns,
// and queueRetry starts it again for the next retry. At most one runs at a
// time (Batch.dispatching).
func (b *Batch) dispatch() {
	c := b.client
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if c.hosts != nil && b.ctx.Err() != nil { // parked tasks wait on no channel of the batch
			b.abort()
			return
		}
		t, wait, idle := b.nextRetry()
		if idle {
			return
		}
		if t == nil && b.next < len(b.preps) {
			i := b.next
			b.next++
			p := b.preps[i]
			if p == nil {
				b.finish(b.invalid[i])
				continue
			}
			t = &task{p: p, b: b}
			t.res.Index, t.res.ID = p.index, p.id
		}
		if t == nil { // only retries are left: wait for one
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case <-b.wake:
			case <-timer.C:
			case <-b.ctx.Done():
				b.abort()
				return
			}
			continue
		}
		if err := c.breaker.admit(t); err != nil {
			t.res.Error = err
			b.end(t)
			continue
		}
		if c.hosts != nil && !c.hosts.admit(t, time.Now()) {
			continue // parked until its host has room
		}
		if c.limiter.waitToken(b.ctx) != nil || c.limiter.acquire(b.ctx) != nil {
			c.releaseHost(t)
			b.cancelParked(t)
			b.abort()
			return
		}
		if err := c.breaker.admit(t); err != nil { // the circuit opened while t waited
			c.release(t)
			t.res.Error = err
			b.end(t)
			continue
		}
		c.runners.startJob(t)
	}
}

// task is one request from its first dispatch to its result; its
// attempts share it, and a waiting retry is nothing more than a task in
// the batch's retry heap.
type task struct {
	res     NormalizedResponse // delivered as &res
	p       *prepared
	start   time.Time // the first attempt's start
	attempt int       // attempts made
	due     time.Time // when a waiting retry may run
	b       *Batch
	host    string // its host (scheme://host:port), computed when needed
	probe   bool   // admitted as its host's probe (see breaker)
	// hostToken: a token of its host's rate limit is reserved for its
	// next dispatch (see hostGates).
	hostToken bool
	// round is its host's auto-throttle round when its rate token was
	// taken (see hostThrottle).
	round uint32
}

// run makes t's next attempt; a runner calls it (see Batch.dispatch).
func (t *task) run() { t.b.client.run(t.b, t) }

// retryHeap orders waiting retries by due time.
type retryHeap []*task

func (h retryHeap) Len() int           { return len(h) }
func (h retryHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h retryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *retryHeap) Push(x any)        { *h = append(*h, x.(*task)) }
func (h *retryHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return t
}

// queueRetry puts t in the retry heap until due, starting the dispatcher
// when it is not running. It returns false once the batch is cancelled,
// when the caller ends t itself.
func (b *Batch) queueRetry(t *task, due time.Time) bool {
	b.rmu.Lock()
	if b.aborted {
		b.rmu.Unlock()
		return false
	}
	if t != nil { // nil: only start or wake the dispatcher
		t.due = due
		heap.Push(&b.retries, t)
	}
	start := !b.dispatching
	b.dispatching = true
	b.rmu.Unlock()
	if start {
		go b.dispatch()
		return true
	}
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return true
}

// nextRetry takes the earliest retry whose time has come, or returns nil
// and how long until the earliest one is due. idle: nothing is left to
// start (every request started, no retry waits), and the dispatcher stops.
func (b *Batch) nextRetry() (t *task, wait time.Duration, idle bool) {
	b.rmu.Lock()
	defer b.rmu.Unlock()
	if len(b.retries) == 0 {
		if b.next >= len(b.preps) {
			b.dispatching = false
			return nil, 0, true
		}
		return nil, 0, false
	}
	if d := time.Until(b.retries[0].due); d > 0 {
		return nil, d, false
	}
	return heap.Pop(&b.retries).(*task), 0, false
}

// abort ends, cancelled, every request not started and every waiting
// retry; no retry can be queued after it.
func (b *Batch) abort() {
	b.rmu.Lock()
	b.aborted = true
	waiting := b.retries
	b.retries = nil
	b.dispatching = false
	b.rmu.Unlock()
	if c := b.client; c.hosts != nil {
		waiting = append(waiting, c.hosts.unpark(b)...)
	}
	next := min(b.next, len(b.preps))
	if b.abandoned.Load() {
		b.drop(len(waiting) + len(b.preps) - next)
		return
	}
	for _, t := range waiting {
		t.res.Error = b.cancelledError(t.p)
		b.end(t)
	}
	for i := next; i < len(b.preps); i++ {
		if b.abandoned.Load() { // abandoned meanwhile: the rest go without results
			b.drop(len(b.preps) - i)
			return
		}
		if p := b.preps[i]; p != nil {
			b.finish(&NormalizedResponse{Index: i, ID: p.id, Error: b.cancelledError(p)})
		} else {
			b.finish(b.invalid[i])
		}
	}
}

func (b *Batch) cancelledError(p *prepared) *Error {
	msg := "cancelled: the batch was cancelled"
	if errors.Is(context.Cause(b.ctx), errClientClosed) {
		msg = "cancelled: the client was closed"
	} else if errors.Is(context.Cause(b.ctx), context.DeadlineExceeded) {
		return &Error{Kind: KindTimeout, Message: "timeout: the caller's deadline passed", URL: redactURL(p.urlString)}
	}
	return &Error{Kind: KindCancelled, Message: msg, URL: redactURL(p.urlString)}
}

// end records t's result: its attempts, its time, and the result itself.
func (b *Batch) end(t *task) {
	t.res.Attempts = t.attempt
	if t.attempt > 0 {
		t.res.Elapsed = time.Since(t.start)
	}
	b.preps[t.p.index] = nil // let a finished request's memory go before the batch ends
	b.finish(&t.res)
}

// finish records one result; the last one closes the batch.
func (b *Batch) finish(r *NormalizedResponse) {
	if b.opts.OnResult != nil {
		b.deliver(r)
	} else {
		b.results[r.Index] = r
		b.ch <- r
	}
	b.mu.Lock()
	b.remaining--
	last := b.remaining == 0
	b.mu.Unlock()
	if last {
		b.finishBatch()
	}
}

// cancelParked ends a task that was taken for dispatch but will not run
// (its batch was cancelled): cancelled, or without a result when
// abandoned.
func (b *Batch) cancelParked(t *task) {
	if b.abandoned.Load() {
		b.drop(1)
		return
	}
	t.res.Error = b.cancelledError(t.p)
	b.end(t)
}

// drop ends n requests without results (see Abandon).
func (b *Batch) drop(n int) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.remaining -= n
	last := b.remaining == 0
	b.mu.Unlock()
	if last {
		b.finishBatch()
	}
}

// deliver hands r to OnResult; a panic there is the caller's bug, but it
// must not kill the process or leave the batch unfinished.
func (b *Batch) deliver(r *NormalizedResponse) {
	defer func() {
		if p := recover(); p != nil {
			b.client.log.Error("OnResult panicked", "index", r.Index, "panic", p)
		}
	}()
	b.opts.OnResult(r)
}

func (b *Batch) finishBatch() {
	b.stop()
	b.unwatch() // done: no attempt runs, nothing is left to abort
	b.cancel(nil)
	// done before ch: a reader that saw Results closed finds Done closed.
	close(b.done)
	if b.ch != nil {
		close(b.ch)
	}
	b.client.batches.Done()
}
