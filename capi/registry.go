package main

import "sync"

// registry maps the integer handles C holds to Go objects. Handles count up
// and are never reused, so a closed handle can be told from one that never
// existed, and 0 is never valid. The low bit says what a handle was issued
// for, so a closed client is known to have been a client without keeping
// anything per closed handle.
type registry struct {
	mu    sync.Mutex
	last  uint64 // sequence number of the newest handle
	items map[uint64]any
}

// handleKind is the low bit of a handle.
type handleKind uint64

const (
	kindBatch  handleKind = 0
	kindClient handleKind = 1
)

var handles = &registry{items: make(map[uint64]any)}

func (r *registry) add(v any, kind handleKind) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last++
	h := r.last<<1 | uint64(kind)
	r.items[h] = v
	return h
}

// lookup returns the object of handle h, and whether h was ever issued.
func (r *registry) lookup(h uint64) (v any, issued bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.items[h]
	return v, ok || (h>>1 != 0 && h>>1 <= r.last)
}

// wasClosed reports whether h was issued for kind and is no longer live.
func (r *registry) wasClosed(h uint64, kind handleKind) bool {
	v, issued := r.lookup(h)
	return v == nil && issued && handleKind(h&1) == kind
}

// remove forgets h and reports whether it was live.
func (r *registry) remove(h uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.items[h]
	delete(r.items, h)
	return ok
}

func (r *registry) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.items)
}

// lookupAs returns the handle's object if it is a live T.
func lookupAs[T any](h uint64) (T, error) {
	var zero T
	v, issued := handles.lookup(h)
	if t, ok := v.(T); ok {
		return t, nil
	}
	if v == nil && issued {
		return zero, errBadHandle("handle %d is closed", h)
	}
	return zero, errBadHandle("handle %d is not a valid handle of this kind", h)
}
