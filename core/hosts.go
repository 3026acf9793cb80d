package core

import (
	"log/slog"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// hostGates holds the per-host limits (ConcurrencyPerHost,
// RateLimitPerHost) of a client. The dispatcher asks admit before a task
// takes its client-wide token and slot: a task whose host is at its limit
// is parked -- in its host's queue for a slot, or in its batch's retry
// heap until its host token is due -- and the dispatcher goes on with the
// next task, so a busy host never holds up the others. A parked task holds
// no slot. Hosts are scheme://host:port, as for the circuit breaker.
//
// Memory stays bounded by the hosts of recent traffic, not by every host
// ever asked: a gate is forgotten once forgetting it changes nothing (see
// idle) -- at once when its last attempt ends, else by a sweep that runs
// each time the number of gates has doubled since the last one.
type hostGates struct {
	limit int     // most in flight per host; 0: none
	rate  float64 // per host per second; 0: none
	burst int
	auto  bool // auto-throttle (throttle.go) adapts each host's rate
	log   *slog.Logger

	mu      sync.Mutex
	hosts   map[string]*hostGate
	sweepAt int // sweep when len(hosts) reaches it
}

type hostGate struct {
	inflight int
	bucket   *rate.Limiter // nil: no per-host rate
	parked   []*task       // waiting for a slot of this host, in order
	throttle hostThrottle  // with auto-throttle
	// idleSince: when its last attempt ended with nothing of the host in
	// flight or parked.
	idleSince time.Time
}

// minSweep is the fewest gates worth a sweep.
const minSweep = 1024

// throttleForget is how long an idle host keeps the rate auto-throttle
// gave it, as Scrapy forgets a download slot idle for a minute.
const throttleForget = time.Minute

// idle reports whether forgetting h changes nothing a request could see:
// nothing of its host is in flight or parked, its token bucket is full
// (so no token is reserved), and it is not throttled, or was left alone
// for throttleForget. The caller holds g.mu.
func (g *hostGates) idle(h *hostGate, now time.Time) bool {
	return h.inflight == 0 && len(h.parked) == 0 &&
		(h.bucket == nil || h.bucket.TokensAt(now) >= float64(g.burst)) &&
		(h.throttle.rate == 0 || now.Sub(h.idleSince) >= throttleForget)
}

// sweep forgets every idle gate; the caller holds g.mu.
func (g *hostGates) sweep(now time.Time) {
	for key, h := range g.hosts {
		if g.idle(h, now) {
			delete(g.hosts, key)
		}
	}
	g.sweepAt = max(2*len(g.hosts), minSweep)
}

// newHostGates returns nil when no per-host limit is set and auto is
// off: then no request pays for them.
func newHostGates(limit int, perSecond float64, burst int, auto bool, log *slog.Logger) *hostGates {
	if math.IsInf(perSecond, 1) {
		perSecond = 0
	}
	if limit <= 0 && perSecond <= 0 && !auto {
		return nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &hostGates{limit: limit, rate: perSecond, burst: max(burst, 1), auto: auto, log: log,
		hosts: map[string]*hostGate{}, sweepAt: minSweep}
}

// admit decides whether t may go on to its client-wide token and slot now.
// false: t was parked (for a slot of its host, or queued in its batch until
// its host token is due) and the dispatcher moves on.
func (g *hostGates) admit(t *task, now time.Time) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.hosts) >= g.sweepAt {
		g.sweep(now)
	}
	h := g.gate(hostKeyOf(t))
	if g.limit > 0 && h.inflight >= g.limit {
		h.parked = append(h.parked, t)
		return false
	}
	if !t.hostToken {
		t.round = h.throttle.round // paced at the rate of this round
	}
	if h.bucket != nil && !t.hostToken {
		if d := h.bucket.ReserveN(now, 1).DelayFrom(now); d > 0 {
			t.hostToken = true // reserved: due at now+d
			if t.b.queueRetry(t, now.Add(d)) {
				return false
			}
			// The batch was cancelled: t goes on, and the dispatcher,
			// finding the batch done, ends it and gives the slot back.
		}
	}
	t.hostToken = false
	h.inflight++
	if g.auto {
		h.throttle.sent(now)
	}
	return true
}

// done gives t's host slot back after an attempt, unparking the next task
// waiting for one.
func (g *hostGates) done(t *task) {
	g.mu.Lock()
	h := g.hosts[t.host]
	h.inflight--
	var next *task
	if len(h.parked) > 0 {
		next = h.parked[0]
		h.parked[0] = nil
		h.parked = h.parked[1:]
	}
	if h.inflight == 0 && len(h.parked) == 0 {
		h.idleSince = time.Now()
		if g.idle(h, h.idleSince) {
			delete(g.hosts, t.host)
		}
	}
	g.mu.Unlock()
	if next != nil {
		if !next.b.queueRetry(next, time.Time{}) {
			next.b.cancelParked(next)
		}
	}
}

// unpark takes b's parked tasks out of every host queue, for b's abort.
func (g *hostGates) unpark(b *Batch) []*task {
	g.mu.Lock()
	defer g.mu.Unlock()
	var mine []*task
	for _, h := range g.hosts {
		kept := h.parked[:0]
		for _, t := range h.parked {
			if t.b == b {
				mine = append(mine, t)
			} else {
				kept = append(kept, t)
			}
		}
		clear(h.parked[len(kept):])
		h.parked = kept
	}
	return mine
}

// gate returns the host's gate, making it; the caller holds g.mu.
func (g *hostGates) gate(key string) *hostGate {
	h := g.hosts[key]
	if h == nil {
		h = &hostGate{}
		if g.rate > 0 {
			h.bucket = rate.NewLimiter(rate.Limit(g.rate), g.burst)
		}
		g.hosts[key] = h
	}
	return h
}

// hostKeyOf is t's host key, computed once per task.
func hostKeyOf(t *task) string {
	if t.host == "" {
		t.host = hostKey(t.p.urlString)
	}
	return t.host
}
