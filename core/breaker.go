package core

import (
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// breaker is the client's per-host circuit breaker. A host (scheme, host
// and port) reached directly that fails to connect threshold times in a
// row has its circuit opened: its queued requests and retries then fail
// at once, without a connection attempt, instead of each waiting through
// its own retries. Once cooldown has passed, the next request goes
// through as a probe (the others keep failing fast for another
// cooldown); a connection made to the host closes the circuit.
type breaker struct {
	threshold int // <= 0: off
	cooldown  time.Duration
	log       *slog.Logger
	watched   atomic.Int64 // hosts with a failure count: while 0 the breaker costs nothing

	mu      sync.Mutex
	hosts   map[string]*circuit
	sweepAt int // forget when len(hosts) reaches it
}

type circuit struct {
	fails     int       // connection failures in a row
	openUntil time.Time // zero: closed
}

// maxCircuits is when the breaker starts forgetting the circuits that hold
// nothing back: closed ones (hosts with some failures) and open ones whose
// cooldown ended with no probe since. It forgets again each time the
// circuits left have doubled, so circuits still open cost no rescan per
// failure.
const maxCircuits = 1 << 16

func newBreaker(threshold int, cooldown time.Duration, log *slog.Logger) *breaker {
	return &breaker{threshold: threshold, cooldown: cooldown, log: log, hosts: map[string]*circuit{}, sweepAt: maxCircuits}
}

// admit returns the error t fails with when its host's circuit is open,
// else nil. A task admitted as its host's probe stays admitted.
func (br *breaker) admit(t *task) *Error {
	if br.threshold <= 0 || br.watched.Load() == 0 || t.p.proxy != nil || t.probe {
		return nil
	}
	key := hostKeyOf(t)
	br.mu.Lock()
	c := br.hosts[key]
	if c == nil || c.openUntil.IsZero() {
		br.mu.Unlock()
		return nil
	}
	now := time.Now()
	if now.Before(c.openUntil) {
		fails := c.fails
		br.mu.Unlock()
		return &Error{
			Kind: KindConnect,
			Message: fmt.Sprintf("connect: circuit open for %s after %d connection failures in a row; failing fast for up to %v (circuit_breaker_threshold)",
				key, fails, br.cooldown),
			URL: redactURL(t.p.urlString),
		}
	}
	c.openUntil = now.Add(br.cooldown) // t is the probe; the others wait for its outcome
	t.probe = true
	br.mu.Unlock()
	br.log.Info("circuit half-open: probing the host", "host", key)
	return nil
}

// record notes the outcome of a direct attempt: a connection made closes
// the host's circuit, a failure counts towards opening it.
func (br *breaker) record(t *task, connFailed bool, now time.Time) {
	if br.threshold <= 0 || (!connFailed && br.watched.Load() == 0) || t.p.proxy != nil {
		return
	}
	key := hostKeyOf(t)
	br.mu.Lock()
	defer br.mu.Unlock()
	c := br.hosts[key]
	if !connFailed {
		if c != nil {
			delete(br.hosts, key)
			br.watched.Add(-1)
			if !c.openUntil.IsZero() {
				br.log.Info("circuit closed: the host answers again", "host", key)
			}
		}
		return
	}
	if c == nil {
		if len(br.hosts) >= br.sweepAt {
			br.forget(now)
		}
		c = &circuit{}
		br.hosts[key] = c
		br.watched.Add(1)
	}
	c.fails++
	if c.fails >= br.threshold {
		if c.openUntil.IsZero() {
			br.log.Warn("circuit open: the host refuses connections; its requests fail fast",
				"host", key, "failures", c.fails, "cooldown", br.cooldown)
		}
		c.openUntil = now.Add(br.cooldown)
	}
}

// forget drops the circuits that hold no request back at now; the
// caller holds mu.
func (br *breaker) forget(now time.Time) {
	for k, c := range br.hosts {
		if !now.Before(c.openUntil) {
			delete(br.hosts, k)
			br.watched.Add(-1)
		}
	}
	br.sweepAt = max(2*len(br.hosts), maxCircuits)
}

// hostKey is a URL's host as scheme://host:port.
func hostKey(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return strings.ToLower(u.Scheme) + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), originPort(u))
}
