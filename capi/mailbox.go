package main

/*
#cgo CFLAGS: -I${SRCDIR}/../include -DFASTREQ_TYPES_ONLY
#include <stdlib.h>
#include "mailbox.h"
*/
import "C"

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/fastreq/fastreq/core"
)

// mailbox serves a client's fastreq_mailbox_t: one goroutine, parked in
// the network poller on the intake eventfd, submits what the host posted
// and queues each result, tagged, in the mailbox's C queue.
//
// Why: a host thread that calls into the library keeps a Go scheduler
// slot "in a system call" after it returns (slots.go). An event loop does
// so between every two calls, and the runtime's monitor, finding the
// engine busy meanwhile, hands the held slot to another thread: on one CPU
// that churn ran one-at-a-time requests under asyncio at 5 to 10 context
// switches each, sometimes settling into a cheap mode and sometimes not.
// Through the mailbox the host never enters Go between requests, so the
// engine keeps its one slot and each request costs two switches.
type mailbox struct {
	m        *C.fastreq_mailbox_t
	bell     *doorbell // rung by fastreq_mailbox_post and _cancel
	c        *client
	stopping atomic.Bool
	mu       sync.Mutex
	live     map[int64]*core.Batch // by tag, for cancels
	done     chan struct{}         // serve returned
}

// mailboxOf returns the client's mailbox, starting it on first use.
func (c *client) mailboxOf() (*mailbox, error) {
	c.mboxOnce.Do(func() {
		bell, err := newDoorbell()
		if err != nil {
			c.mboxErr = err
			return
		}
		ready, err := newEventFD()
		if err != nil {
			bell.close()
			c.mboxErr = err
			return
		}
		m := C.mbox_new(C.int(bell.fd), C.int(ready))
		if m == nil {
			bell.close()
			syscall.Close(ready)
			c.mboxErr = syscall.ENOMEM
			return
		}
		mb := &mailbox{m: m, bell: bell, c: c, live: make(map[int64]*core.Batch), done: make(chan struct{})}
		c.mbox = mb
		go mb.serve()
	})
	return c.mbox, c.mboxErr
}

func (mb *mailbox) serve() {
	defer close(mb.done)
	for {
		err := mb.bell.wait()
		mb.releaseReturned()
		if err != nil || mb.stopping.Load() {
			return
		}
		var posts *C.mbox_post
		n := int(C.mbox_take_posts(mb.m, &posts))
		for _, p := range unsafe.Slice(posts, n) {
			if p.json == nil {
				mb.cancel(int64(p.tag))
				continue
			}
			mb.submit(int64(p.tag), goBytes(p.json, p.len)) // decoded before the free: no copy
			C.free(unsafe.Pointer(p.json))
		}
		C.free(unsafe.Pointer(posts))
	}
}

// submit starts one posted request (a JSON array of one); a request that
// cannot start gets its failure record at once, as a strict submit would
// have refused it.
func (mb *mailbox) submit(tag int64, data []byte) {
	req, err := oneRequest(data)
	var b *core.Batch
	if err == nil {
		mb.mu.Lock() // held across Submit: a result must not beat the entry in live
		b, err = mb.c.Submit(context.Background(), []core.RequestConfig{*req}, core.BatchOptions{
			StrictValidation: true,
			OnResult:         func(r *core.NormalizedResponse) { mb.complete(tag, r) },
			BodyAllocator:    bodyAllocator{},
			// Start stays nil: this goroutine already runs on the engine's
			// side, woken through the poller; the intake would add a hop.
		})
		if err == nil {
			mb.live[tag] = b
		}
		mb.mu.Unlock()
	}
	if err != nil {
		_, ce := codeOf(err)
		mb.refuse(tag, &core.NormalizedResponse{Error: ce})
	}
}

// oneRequest decodes a post, a JSON array of exactly one request, as
// fastreq_batch_submit decodes its arrays.
func oneRequest(data []byte) (*core.RequestConfig, error) {
	var req *core.RequestConfig
	n := 0
	for cfg, err := range decodeRequests(data) {
		if err != nil {
			return nil, err
		}
		req, n = cfg, n+1
	}
	if n != 1 {
		return nil, errInvalid("requests", "a mailbox post is an array of exactly one request, not %d", n)
	}
	return req, nil
}

func (mb *mailbox) complete(tag int64, r *core.NormalizedResponse) { mb.queue(tag, r, false) }
func (mb *mailbox) refuse(tag int64, r *core.NormalizedResponse)   { mb.queue(tag, r, true) }

// queue puts the result of tag into the mailbox; refused marks a request
// that never started (the record's reserved field is 1).
func (mb *mailbox) queue(tag int64, r *core.NormalizedResponse, refused bool) {
	mb.mu.Lock()
	delete(mb.live, tag)
	mb.mu.Unlock()
	rec := resultRecord(C.int64_t(tag), r, r.Error != nil) // meta only for failures, as with META_ON_FAILURE
	if refused {
		rec.reserved = 1
	}
	if C.mbox_complete(mb.m, &rec) != 0 { // the host left
		releaseRecord(&rec)
	}
}

func (mb *mailbox) cancel(tag int64) {
	mb.mu.Lock()
	b := mb.live[tag]
	mb.mu.Unlock()
	if b != nil {
		b.Cancel()
	}
}

// releaseReturned frees the records the host gave back.
func (mb *mailbox) releaseReturned() {
	var recs *C.fastreq_record_t
	n := int(C.mbox_take_returned(mb.m, &recs))
	releaseAll(recs, n)
}

func releaseAll(recs *C.fastreq_record_t, n int) {
	s := unsafe.Slice(recs, n)
	for i := range s {
		releaseRecord(&s[i])
	}
	C.free(unsafe.Pointer(recs))
}

// close ends the mailbox's engine side once the client has closed (every
// request ended): the serving goroutine stops, and records nobody took are
// released.
func (mb *mailbox) close() {
	mb.stopping.Store(true)
	mb.bell.ring()
	<-mb.done
	var recs *C.fastreq_record_t
	n := int(C.mbox_engine_done(mb.m, &recs)) // no post rings the bell after this
	mb.bell.close()
	releaseAll(recs, n)
}
