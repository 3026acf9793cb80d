package core

import (
	"net/http"
	"time"

	"golang.org/x/time/rate"
)

// Auto-throttle (ClientConfig.AutoThrottle) adapts each host's request
// rate to how the host answers, as TCP adapts its window (additive
// increase, multiplicative decrease): a 429 or 503 answer, or an attempt
// that timed out, halves the host's rate, and each success raises it by
// a step sized so that it regains a tenth of the rate it was cut from
// per second. Like Scrapy's AutoThrottle, a host that answers with errors
// is never sped up; unlike it, the rate follows the answers, not the
// latency, so a fast server that rejects requests still slows the client
// down.
//
// One cut answers one round of requests: those paced before the last
// cut (in flight or waiting for their host's token when it happened) do
// not cut again when they come back refused, so that a burst of
// refusals halves the rate once; a cut starts the host's bucket empty,
// so the next request waits its turn at the new rate. The rate
// stays between a floor (one request per second, or RateLimitPerHost
// when that is lower) and RateLimitPerHost (when set; else the host goes
// unthrottled again once its rate doubles the one it was last cut from
// without a refusal). The host's per-host token bucket (hostGates)
// carries the rate, with RateLimitPerHostBurst.
const (
	throttleFloor  = 1.0 // requests per second
	throttleCut    = 0.5 // what a refusal keeps of the rate
	throttleGrowth = 0.1 // of the rate cut from, regained per second
	// throttleWindow is how long a host's sending is counted, for the
	// first cut of a host that had no rate.
	throttleWindow = time.Second
)

// hostThrottle is a host's adaptive rate; hostGates.mu guards it.
type hostThrottle struct {
	rate  float64 // requests per second; 0: not throttled
	from  float64 // the rate the last cut was cut from
	round uint32  // counts the cuts: tasks paced before the last one are of an older round

	// Dispatches counted over throttleWindow: the rate the host was
	// sent at, for its first cut.
	windowStart time.Time
	windowSent  int
	lastRate    float64 // of the previous window
}

// sent counts a dispatch to the host.
func (h *hostThrottle) sent(now time.Time) {
	if d := now.Sub(h.windowStart); d >= throttleWindow {
		h.lastRate = float64(h.windowSent) / d.Seconds()
		h.windowStart, h.windowSent = now, 0
	}
	h.windowSent++
}

// sendRate is about how fast requests went to the host lately.
func (h *hostThrottle) sendRate(now time.Time) float64 {
	d := max(now.Sub(h.windowStart), throttleWindow/10)
	return max(h.lastRate, float64(h.windowSent)/d.Seconds())
}

// throttleCause is why an attempt's outcome slows its host down, or "".
func throttleCause(out *outcome) string {
	if out.err == nil {
		return ""
	}
	switch {
	case out.err.Kind == KindHTTPStatus && out.err.Status == http.StatusTooManyRequests:
		return "429"
	case out.err.Kind == KindHTTPStatus && out.err.Status == http.StatusServiceUnavailable:
		return "503"
	case out.err.Kind == KindTimeout:
		return "timeout"
	}
	return ""
}

// feedback adapts the rate of t's host to the outcome of t's attempt: a
// cut for a refusal or a timeout, a step up for a success; other
// failures change nothing. Called before t's host slot is given back, so
// the host's gate exists.
func (g *hostGates) feedback(t *task, out *outcome, now time.Time) {
	cause := throttleCause(out)
	if cause == "" && out.err != nil {
		return
	}
	g.mu.Lock()
	h := g.hosts[t.host]
	if h == nil {
		g.mu.Unlock()
		return
	}
	th := &h.throttle
	if cause != "" {
		if t.round != th.round { // paced before the last cut, which answered it
			g.mu.Unlock()
			return
		}
		from := th.rate
		switch {
		case from == 0 && g.rate > 0:
			from = g.rate
		case from == 0:
			from = th.sendRate(now)
		}
		next := max(from*throttleCut, g.floor())
		th.rate, th.from = next, from
		th.round++
		g.setRate(h, next, now)
		if n := int(h.bucket.TokensAt(now)); n > 0 {
			h.bucket.AllowN(now, n) // empty: the next request waits its turn
		}
		g.mu.Unlock()
		if next < from {
			g.log.Info("auto_throttle: slowing down a host", "host", t.host, "cause", cause,
				"rate", roundRate(next), "was", roundRate(from))
		}
		return
	}
	if th.rate == 0 {
		g.mu.Unlock()
		return
	}
	// Each success adds growth*from/rate: at rate successes per second,
	// growth*from per second.
	th.rate += throttleGrowth * th.from / th.rate
	restored := g.rate > 0 && th.rate >= g.rate || g.rate == 0 && th.rate >= 2*th.from
	if restored {
		th.rate = 0
		g.setRate(h, g.rate, now)
	} else {
		g.setRate(h, th.rate, now)
	}
	g.mu.Unlock()
	if restored {
		g.log.Info("auto_throttle: a host is back to its full rate", "host", t.host)
	}
}

// setRate sets h's bucket to perSecond requests per second, 0 meaning no
// limit (no bucket); the caller holds g.mu.
func (g *hostGates) setRate(h *hostGate, perSecond float64, now time.Time) {
	switch {
	case perSecond <= 0:
		h.bucket = nil
	case h.bucket == nil:
		h.bucket = rate.NewLimiter(rate.Limit(perSecond), g.burst)
	default:
		h.bucket.SetLimitAt(now, rate.Limit(perSecond))
	}
}

// floor is the lowest rate auto-throttle sets.
func (g *hostGates) floor() float64 {
	if g.rate > 0 {
		return min(throttleFloor, g.rate)
	}
	return throttleFloor
}

// roundRate rounds a rate for the log.
func roundRate(r float64) float64 { return float64(int64(r*100+0.5)) / 100 }
