package testserver

import (
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/mccutchen/go-httpbin/v2/httpbin"
)

// maxBody bounds request and response bodies the shared handler accepts or
// produces, large enough for the 64 MiB benchmark payloads.
const maxBody = 64 << 20

// handler is the one http.Handler every server shares: go-httpbin at "/"
// and the misbehaving endpoints under "/x/". Sharing it means per-key
// counters see retries whichever server or proxy they came through.
type handler struct {
	mux *http.ServeMux

	// done is closed by Close so that stalled handlers give up at once.
	done chan struct{}

	// mu guards closing; inflight counts running handlers so Close can
	// wait for them. Add only happens under mu while not closing, so it
	// never races with Wait.
	mu       sync.RWMutex
	closing  bool
	inflight sync.WaitGroup
	active   atomic.Int64

	hitsMu sync.Mutex
	hits   map[string]int

	// many counts the connections of the many-hosts listener.
	many connCounter

	// busy counts, per key, the /x/busy requests running and their most.
	busyMu sync.Mutex
	busy   map[string]*[2]int

	limits rateLimits // of /x/ratelimit
}

func newHandler() *handler {
	h := &handler{
		mux:  http.NewServeMux(),
		done: make(chan struct{}),
		hits: make(map[string]int),
	}
	h.mux.Handle("/", httpbin.New(httpbin.WithMaxBodySize(maxBody)))
	h.registerMisbehaving()
	h.registerHostile()
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.RLock()
	if h.closing {
		h.mu.RUnlock()
		http.Error(w, "server closing", http.StatusServiceUnavailable)
		return
	}
	h.inflight.Add(1)
	h.mu.RUnlock()
	h.active.Add(1)
	defer func() {
		h.active.Add(-1)
		h.inflight.Done()
	}()
	h.mux.ServeHTTP(w, r)
}

// shutdown wakes stalled handlers and stops new ones from starting.
func (h *handler) shutdown() {
	h.mu.Lock()
	if !h.closing {
		h.closing = true
		close(h.done)
	}
	h.mu.Unlock()
}

// running reports how many handlers are executing right now.
func (h *handler) running() int { return int(h.active.Load()) }

// wait blocks until every running handler has returned.
func (h *handler) wait() { h.inflight.Wait() }

// hit counts one more request for key and returns the new count.
func (h *handler) hit(key string) int {
	h.hitsMu.Lock()
	defer h.hitsMu.Unlock()
	h.hits[key]++
	return h.hits[key]
}

func (h *handler) count(key string) int {
	h.hitsMu.Lock()
	defer h.hitsMu.Unlock()
	return h.hits[key]
}
