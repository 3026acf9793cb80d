package main

import (
	"sync"
	"syscall"

	"github.com/fastreq/fastreq/core"
)

// client is the C view of a core client: the engine client and the
// client's ready list.
type client struct {
	*core.Client
	ready readyList

	mboxOnce sync.Once
	mbox     *mailbox // fastreq_client_mailbox
	mboxErr  error
}

// readyList is a client's completion descriptor (fastreq_client_fd): one
// eventfd for all the batches submitted with FASTREQ_SUBMIT_NOTIFY_CLIENT,
// and the handles of those that became ready -- reached their wake
// threshold, or finished -- since the caller last asked
// (fastreq_client_ready). An event loop registers one descriptor per
// client, not one per batch: for one-at-a-time requests that saves making,
// registering, unregistering and closing an eventfd per request, and
// thousands of concurrent single requests wake the loop once per burst.
type readyList struct {
	mu      sync.Mutex
	batches []uint64 // ready from head on
	head    int
	efd     int // -1 until fd() is first called
	closed  bool
}

func wrapClient(c *core.Client) *client {
	return &client{Client: c, ready: readyList{efd: -1}}
}

// fd returns the client's eventfd, making it on first use (readable at once
// when batches are already ready).
func (r *readyList) fd() (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return -1, syscall.EBADF
	}
	if r.efd < 0 {
		efd, err := newEventFD()
		if err != nil {
			return -1, err
		}
		r.efd = efd
		if r.head < len(r.batches) {
			signalEventFD(efd)
		}
	}
	return r.efd, nil
}

// add lists batch h as ready; the eventfd is written when the list goes
// from empty to non-empty.
func (r *readyList) add(h uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.batches = append(r.batches, h)
	if len(r.batches)-r.head == 1 && r.efd >= 0 {
		signalEventFD(r.efd)
	}
}

// take moves up to len(dst) ready handles into dst. Handing out the last
// one resets the eventfd, so the descriptor is readable exactly while
// handles wait and the caller never reads it itself.
func (r *readyList) take(dst []uint64) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := copy(dst, r.batches[r.head:])
	r.head += n
	if r.head == len(r.batches) {
		if cap(r.batches) > 4096 { // a burst is over: do not pin its array
			r.batches = nil
		} else {
			r.batches = r.batches[:0]
		}
		r.head = 0
		if r.efd >= 0 {
			var counter [8]byte
			syscall.Read(r.efd, counter[:]) // non-blocking; EAGAIN when already reset
		}
	}
	return n
}

// close drops the list and closes the eventfd; batches that become ready
// later are not listed.
func (r *readyList) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	r.batches, r.head = nil, 0
	if r.efd >= 0 {
		syscall.Close(r.efd)
		r.efd = -1
	}
}
