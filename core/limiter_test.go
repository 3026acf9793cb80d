package core

import (
	"context"
	"math"
	"net/http"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// near reports whether d is within a microsecond of want: x/time/rate
// converts between tokens and durations in floating point.
func near(d, want time.Duration) bool {
	diff := d - want
	return diff > -time.Microsecond && diff < time.Microsecond
}

func TestLimiterDelaySynthetic(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ms := time.Millisecond
	type step struct{ at, want time.Duration }
	tests := []struct {
		name        string
		rate        float64
		burst       int
		steps       []step
		unlimitedOK bool
	}{
		{"burst then 100ms apart", 10, 2, []step{{0, 0}, {0, 0}, {0, 100 * ms}, {0, 200 * ms}, {0, 300 * ms}}, false},
		{"refill after idle, up to the burst only", 10, 2, []step{{0, 0}, {0, 0}, {time.Second, 0}, {time.Second, 0}, {time.Second, 100 * ms}}, false},
		{"partial refill", 10, 2, []step{{0, 0}, {0, 0}, {50 * ms, 50 * ms}, {50 * ms, 150 * ms}}, false},
		{"waiting callers queue in order", 10, 1, []step{{0, 0}, {10 * ms, 90 * ms}, {20 * ms, 180 * ms}, {400 * ms, 0}}, false},
		{"burst of one", 4, 1, []step{{0, 0}, {0, 250 * ms}, {0, 500 * ms}}, false},
		{"rate 0 is unlimited", 0, 5, []step{{0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}}, true},
		{"infinite rate is unlimited", math.Inf(1), 1, []step{{0, 0}, {0, 0}, {0, 0}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLimiter(tt.rate, tt.burst, 1)
			if (l.bucket == nil) != tt.unlimitedOK {
				t.Fatalf("bucket %v for rate %v", l.bucket, tt.rate)
			}
			for i, s := range tt.steps {
				d, r := l.delay(base.Add(s.at))
				if !near(d, s.want) {
					t.Errorf("step %d at +%v: delay %v, want %v", i, s.at, d, s.want)
				}
				if (r == nil) != tt.unlimitedOK {
					t.Errorf("step %d: reservation %v", i, r)
				}
			}
		})
	}
}

func TestLimiterWaitTokenSynthetic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(10, 2, 1)
		start := time.Now()
		var got []time.Duration
		for range 5 {
			if err := l.waitToken(context.Background()); err != nil {
				t.Fatal(err)
			}
			got = append(got, time.Since(start))
		}
		want := []time.Duration{0, 0, 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}
		for i := range want {
			if !near(got[i], want[i]) {
				t.Fatalf("tokens granted at %v, want %v", got, want)
			}
		}
	})
}

func TestLimiterCancelledWaitReturnsToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLimiter(1, 1, 1)
		if err := l.waitToken(context.Background()); err != nil { // the burst token
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := l.waitToken(ctx); err == nil {
			t.Fatal("waitToken succeeded past its context's deadline")
		}
		// The abandoned reservation was given back: the next token comes 1s
		// after the first, not 2s.
		start := time.Now()
		if err := l.waitToken(context.Background()); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); !near(waited, 900*time.Millisecond) {
			t.Errorf("next token after %v, want 900ms (the cancelled token must be returned)", waited)
		}
	})
}

func TestLimiterAcquireRelease(t *testing.T) {
	l := newLimiter(0, 1, 2)
	ctx := context.Background()
	if l.acquire(ctx) != nil || l.acquire(ctx) != nil {
		t.Fatal("could not take the two slots")
	}
	done, cancel := context.WithCancel(ctx)
	cancel()
	if err := l.acquire(done); err == nil {
		t.Fatal("took a third slot of two")
	}
	got := make(chan error, 1)
	go func() { got <- l.acquire(ctx) }()
	select {
	case <-got:
		t.Fatal("acquire did not wait for a free slot")
	case <-time.After(20 * time.Millisecond):
	}
	l.release()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	l.release()
	l.release()
	if n := len(l.slots); n != 0 {
		t.Errorf("%d slots held after releasing all", n)
	}
	// An unlimited bucket still honours a cancelled context.
	if err := l.waitToken(done); err == nil {
		t.Error("waitToken ignored a cancelled context")
	}
}

func TestSleepCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := sleepCtx(context.Background(), 3*time.Second); err != nil || time.Since(start) != 3*time.Second {
			t.Errorf("sleepCtx: %v after %v", err, time.Since(start))
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start = time.Now()
		if err := sleepCtx(ctx, time.Hour); err == nil || time.Since(start) != time.Second {
			t.Errorf("sleepCtx with a 1s context: %v after %v", err, time.Since(start))
		}
		if err := sleepCtx(ctx, 0); err == nil {
			t.Error("sleepCtx(0) on a done context returned nil")
		}
	})
}

// TestTokenTakenBeforeSlot: a request waiting for its rate token must not
// hold a concurrency slot. With one slot and an empty bucket, the
// dispatcher blocks on the token; the slot must still be free.
func TestTokenTakenBeforeSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Concurrency = 1
		cfg.RateLimit = 0.1 // one token per 10s
		cfg.RateLimitBurst = 1
		c, err := NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var calls int
		injectTransport(c, rtFunc(func(r *http.Request) (*http.Response, error) {
			calls++
			return fakeResponse(r, 200, nil, "ok"), nil
		}))
		c.limiter.delay(time.Now()) // someone else took the only token

		b, err := c.Submit(context.Background(), reqs(1, "http://fake.test/"), BatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the dispatcher is now blocked
		if tokens := c.limiter.bucket.Tokens(); tokens > -0.5 {
			t.Fatalf("bucket holds %v tokens: the request has not reserved its token yet", tokens)
		}
		if n := slotsHeld(c); n != 0 {
			t.Fatalf("a request waiting for its rate token holds %d slot(s)", n)
		}
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if n := slotsHeld(c); n != 0 || calls != 0 {
			t.Fatalf("halfway through the token wait: %d slots held, %d calls", n, calls)
		}
		b.Cancel()
		res := b.Wait()[0]
		wantKind(t, res, KindCancelled)
		if calls != 0 {
			t.Errorf("%d calls made by a cancelled request", calls)
		}
		// The cancelled request gave its token back.
		if tokens := c.limiter.bucket.Tokens(); tokens < -0.6 {
			t.Errorf("bucket at %v tokens after cancel: the reservation was not returned", tokens)
		}
	})
}

// TestRateLimitSynthetic runs 25 requests through a client limited to 50
// requests per second with a burst of 5, on a fake clock: 5 start at once,
// then one every 20ms, the last at 400ms.
func TestRateLimitSynthetic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.RateLimit = 50
		cfg.RateLimitBurst = 5
		c, err := NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var mu sync.Mutex
		var starts []time.Duration
		begin := time.Now()
		injectTransport(c, rtFunc(func(r *http.Request) (*http.Response, error) {
			mu.Lock()
			starts = append(starts, time.Since(begin))
			mu.Unlock()
			return fakeResponse(r, 200, nil, "ok"), nil
		}))
		b, err := c.Submit(context.Background(), reqs(25, "http://fake.test/"), BatchOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range b.Wait() {
			if r.Error != nil {
				t.Fatal(r.Error)
			}
		}
		slices.Sort(starts)
		for i, s := range starts {
			want := time.Duration(0)
			if i >= 5 {
				want = time.Duration(i-4) * 20 * time.Millisecond
			}
			if !near(s, want) {
				t.Errorf("request %d started at %v, want %v", i, s, want)
			}
		}
		if total := time.Since(begin); !near(total, 400*time.Millisecond) {
			t.Errorf("25 requests took %v, want 400ms", total)
		}
	})
}

// TestRateLimitSharedAcrossBatches: two batches of one client draw from the
// same bucket.
func TestRateLimitSharedAcrossBatches(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.RateLimit = 10
		cfg.RateLimitBurst = 1
		c, err := NewClient(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		injectTransport(c, rtFunc(func(r *http.Request) (*http.Response, error) {
			return fakeResponse(r, 200, nil, "ok"), nil
		}))
		begin := time.Now()
		b1 := mustSubmit(t, c, reqs(10, "http://fake.test/a"))
		b2 := mustSubmit(t, c, reqs(10, "http://fake.test/b"))
		b1.Wait()
		b2.Wait()
		if total := time.Since(begin); !near(total, 1900*time.Millisecond) {
			t.Errorf("20 requests at 10/s (burst 1) over two batches took %v, want 1.9s", total)
		}
	})
}

// TestRateLimitRealClock is the one real-time check: the token bucket can
// only make things slower, so the lower bound is robust.
func TestRateLimitRealClock(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.RateLimit = 50; c.RateLimitBurst = 5 })
	start := time.Now()
	b, err := c.Submit(testCtx(t), reqs(25, ts.HTTPURL+"/x/json"), BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range b.Wait() {
		mustOK(t, r)
	}
	if d := time.Since(start); d < 380*time.Millisecond {
		t.Errorf("25 requests at 50/s with a burst of 5 took %v, want at least 400ms", d)
	}
}
