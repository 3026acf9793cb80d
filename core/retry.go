package core

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy decides whether and when to retry. The zero value never
// waits. Its methods are pure functions of their inputs, so tests pass in
// times and random numbers.
type RetryPolicy struct {
	MaxRetries int
	Multiplier time.Duration // delay of the first retry before jitter
	Jitter     float64       // 0..1: the delay varies by plus or minus this fraction
	MaxDelay   time.Duration // cap on any delay, Retry-After included; 0 = none
}

// RetryableStatus reports whether a status is retried: 429 and the 5xx
// statuses that signal a passing condition (not 501 Not Implemented).
func RetryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// RetryableKind reports whether a failure of this kind is worth another
// attempt. Validation, configuration, TLS, redirect-limit, body-size,
// cancellation and local I/O failures would fail the same way again.
func RetryableKind(k ErrorKind) bool {
	switch k {
	case KindTimeout, KindConnect, KindTransport, KindProxy, KindHTTPStatus:
		return true
	}
	return false
}

// Backoff returns the delay before retry number attempt (0-based):
// Multiplier*2^attempt, moved by up to plus or minus Jitter of itself
// (rnd in [0,1) picks where), capped at MaxDelay.
func (p RetryPolicy) Backoff(attempt int, rnd float64) time.Duration {
	base := float64(p.Multiplier) * math.Pow(2, float64(attempt))
	d := base + base*p.Jitter*(2*rnd-1)
	if p.MaxDelay > 0 && d > float64(p.MaxDelay) {
		d = float64(p.MaxDelay)
	}
	if d < 0 || math.IsNaN(d) {
		d = 0
	}
	if d > float64(math.MaxInt64) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(d)
}

// Delay is the wait before the next attempt: the server's Retry-After when
// it sent one (capped at MaxDelay), else Backoff.
func (p RetryPolicy) Delay(attempt int, retryAfter time.Duration, hasRetryAfter bool, rnd float64) time.Duration {
	if hasRetryAfter {
		if p.MaxDelay > 0 && retryAfter > p.MaxDelay {
			return p.MaxDelay
		}
		return retryAfter
	}
	return p.Backoff(attempt, rnd)
}

// ParseRetryAfter reads a Retry-After value in either form: delay seconds
// or an HTTP date (relative to now). A date in the past means no wait.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs < 0 || math.IsNaN(secs) || math.IsInf(secs, 0) {
			return 0, false
		}
		if secs > float64(math.MaxInt64/int64(time.Second)) {
			return time.Duration(math.MaxInt64), true
		}
		return time.Duration(secs * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}
