package core

import (
	"context"
	"math"
	"time"

	"golang.org/x/time/rate"
)

// limiter is the client's token bucket and concurrency gate, shared by all
// its batches. A request takes its rate token before its slot, so waiting
// for the rate never holds a slot.
type limiter struct {
	bucket *rate.Limiter // nil: unlimited
	slots  chan struct{}
}

func newLimiter(perSecond float64, burst, concurrency int) *limiter {
	l := &limiter{slots: make(chan struct{}, concurrency)}
	if perSecond > 0 && !math.IsInf(perSecond, 1) {
		l.bucket = rate.NewLimiter(rate.Limit(perSecond), burst)
	}
	return l
}

// delay reserves one token at time now and returns how long to wait for
// it. The reservation is returned so a caller that gives up can cancel it.
func (l *limiter) delay(now time.Time) (time.Duration, *rate.Reservation) {
	if l.bucket == nil {
		return 0, nil
	}
	r := l.bucket.ReserveN(now, 1)
	return r.DelayFrom(now), r
}

// waitToken blocks until a rate token is available or ctx ends.
func (l *limiter) waitToken(ctx context.Context) error {
	if l.bucket == nil {
		return ctx.Err()
	}
	d, r := l.delay(time.Now())
	if d == 0 {
		return nil
	}
	if err := sleepCtx(ctx, d); err != nil {
		r.Cancel() // give the token back
		return err
	}
	return nil
}

// acquire takes a concurrency slot; release gives it back.
func (l *limiter) acquire(ctx context.Context) error {
	select {
	case l.slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case l.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *limiter) release() { <-l.slots }

// sleepCtx waits for d or until ctx ends, with a timer that is stopped
// either way.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
