package core

import (
	"bytes"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer collects log text from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runAgainstRateLimit sends n GETs, without retries, to a server that
// answers 429 above perSecond requests per second, and returns how many
// were refused and how fast the rest were served.
func runAgainstRateLimit(t *testing.T, auto bool, n int, perSecond float64, logs *lockedBuffer) (refused int, served float64) {
	t.Helper()
	c := newTestClient(t, func(c *ClientConfig) {
		c.AutoThrottle = auto
		c.Concurrency = 8
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	key := uniqueKey(t)
	url := fmt.Sprintf("%s/x/ratelimit?key=%s&rate=%g&burst=2", ts.HTTPURL, key, perSecond)
	start := time.Now()
	var last time.Time
	ok := 0
	for _, res := range mustSubmit(t, c, reqs(n, url)).Wait() {
		switch res.StatusCode {
		case http.StatusOK:
			ok++
		case http.StatusTooManyRequests:
			refused++
		default:
			t.Fatalf("request %d: status %d, error %v", res.Index, res.StatusCode, res.Error)
		}
	}
	last = time.Now()
	if got := ts.Hits("ratelimit-429:" + key); got != refused {
		t.Errorf("the server refused %d, the client saw %d refusals", got, refused)
	}
	return refused, float64(ok) / last.Sub(start).Seconds()
}

// A host that answers 429 above its rate: with auto_throttle the client
// settles near that rate with few refusals; without it most requests are
// refused.
func TestAutoThrottleConvergesToTheHostsRate(t *testing.T) {
	const n, perSecond = 150, 50.0
	var logs lockedBuffer
	refused, served := runAgainstRateLimit(t, true, n, perSecond, &logs)
	t.Logf("auto_throttle: %d of %d refused, %.1f served per second (the host's limit: %g)", refused, n, served, perSecond)
	t.Logf("log:\n%s", logs.String())
	if refused > n/5 {
		t.Errorf("auto_throttle: %d of %d requests refused, want few", refused, n)
	}
	if served < 0.4*perSecond || served > 1.3*perSecond {
		t.Errorf("auto_throttle: %.1f requests served per second, want about %g", served, perSecond)
	}
	if log := logs.String(); !strings.Contains(log, "level=INFO") || !strings.Contains(log, "auto_throttle: slowing down a host") ||
		!strings.Contains(log, "cause=429") {
		t.Errorf("no info record of the slow-down in the log:\n%s", log)
	}

	var quiet lockedBuffer
	refusedWithout, _ := runAgainstRateLimit(t, false, n, perSecond, &quiet)
	t.Logf("without: %d of %d refused", refusedWithout, n)
	if refusedWithout < n/2 {
		t.Errorf("without auto_throttle: %d of %d requests refused, want most", refusedWithout, n)
	}
	if strings.Contains(quiet.String(), "auto_throttle") {
		t.Errorf("auto_throttle logged while off:\n%s", quiet.String())
	}
}

// throttleGates is a client's hostGates with auto-throttle and one
// admitted task of host "h".
func throttleGates(t *testing.T, perSecond float64) (*hostGates, *task, *lockedBuffer) {
	var logs lockedBuffer
	g := newHostGates(0, perSecond, 1, true, slog.New(slog.NewTextHandler(&logs, nil)))
	if g == nil {
		t.Fatal("no host gates with auto_throttle on")
	}
	tk := &task{host: "http://h:80"}
	if !g.admit(tk, time.Now()) {
		t.Fatal("the first task was not admitted")
	}
	return g, tk, &logs
}

func hostRate(g *hostGates) (float64, float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	h := g.hosts["http://h:80"]
	limit := math.Inf(1)
	if h.bucket != nil {
		limit = float64(h.bucket.Limit())
	}
	return h.throttle.rate, limit
}

func status(code int) *outcome {
	return &outcome{err: &Error{Kind: KindHTTPStatus, Status: code}}
}

// pace makes tk a task of its host's current round, as if it took its
// token now.
func pace(g *hostGates, tk *task) {
	g.mu.Lock()
	tk.round = g.hosts[tk.host].throttle.round
	g.mu.Unlock()
}

func TestAutoThrottleCutsOncePerRoundAndHasAFloor(t *testing.T) {
	g, tk, logs := throttleGates(t, 0)
	now := time.Now()
	g.feedback(tk, status(429), now)
	r, limit := hostRate(g)
	if r <= 0 || limit != r {
		t.Fatalf("after a 429: rate %v, bucket %v", r, limit)
	}
	// Refusals of requests paced before the cut do not cut again.
	g.feedback(tk, status(503), now)
	g.feedback(tk, &outcome{err: &Error{Kind: KindTimeout}}, now)
	if r2, _ := hostRate(g); r2 != r {
		t.Errorf("refusals from before the cut changed the rate: %v -> %v", r, r2)
	}
	// Each later one halves it, down to one request per second.
	pace(g, tk)
	g.feedback(tk, status(503), now)
	if r2, _ := hostRate(g); r2 != r/2 {
		t.Errorf("a 503 of the next round: rate %v -> %v, want it halved", r, r2)
	}
	for range 20 {
		pace(g, tk)
		g.feedback(tk, &outcome{err: &Error{Kind: KindTimeout}}, now)
	}
	if r, limit := hostRate(g); r != throttleFloor || limit != throttleFloor {
		t.Errorf("after many timeouts: rate %v, bucket %v, want the floor %v", r, limit, throttleFloor)
	}
	// Failures that are not the host asking for less change nothing.
	pace(g, tk)
	g.feedback(tk, status(500), now)
	g.feedback(tk, &outcome{err: &Error{Kind: KindConnect}}, now)
	if r, _ := hostRate(g); r != throttleFloor {
		t.Errorf("a 500 or a connect failure moved the rate to %v", r)
	}
	if !strings.Contains(logs.String(), "auto_throttle: slowing down a host") {
		t.Errorf("log:\n%s", logs.String())
	}
	// A throttled host is remembered while idle.
	g.done(tk)
	if _, limit := hostRate(g); limit != throttleFloor {
		t.Errorf("the idle throttled host was forgotten")
	}
}

func TestAutoThrottleRecoversUpToTheConfiguredRate(t *testing.T) {
	const ceiling = 20.0
	g, tk, logs := throttleGates(t, ceiling)
	now := time.Now()
	g.feedback(tk, status(429), now)
	if r, limit := hostRate(g); r != ceiling/2 || limit != ceiling/2 {
		t.Fatalf("after a 429: rate %v, bucket %v, want half the configured %v", r, limit, ceiling)
	}
	// About a tenth of the rate cut from per second of successes: 10 -> 20
	// takes about 5 s, some 75 successes.
	steps := 0
	for r, _ := hostRate(g); r != 0 && steps < 1000; r, _ = hostRate(g) {
		g.feedback(tk, &outcome{}, now)
		steps++
		if _, limit := hostRate(g); limit > ceiling {
			t.Fatalf("the rate went past the configured %v: %v", ceiling, limit)
		}
	}
	if steps < 50 || steps > 100 {
		t.Errorf("%d successes to get back to the configured rate, want about 75", steps)
	}
	if r, limit := hostRate(g); r != 0 || limit != ceiling {
		t.Errorf("recovered: rate %v, bucket %v, want the configured %v", r, limit, ceiling)
	}
	if !strings.Contains(logs.String(), "back to its full rate") {
		t.Errorf("log:\n%s", logs.String())
	}
	// Without a configured rate, a host is unthrottled once its rate
	// doubles the one it was cut from.
	g, tk, _ = throttleGates(t, 0)
	g.feedback(tk, status(429), now)
	steps = 0
	for r, _ := hostRate(g); r != 0 && steps < 10000; r, _ = hostRate(g) {
		g.feedback(tk, &outcome{}, now)
		steps++
	}
	if r, limit := hostRate(g); r != 0 || !math.IsInf(limit, 1) {
		t.Errorf("recovered: rate %v, bucket %v, want none", r, limit)
	}
	// Below one request per second, the configured rate is the floor.
	g, tk, _ = throttleGates(t, 0.5)
	g.feedback(tk, status(429), now)
	if r, _ := hostRate(g); r != 0.5 {
		t.Errorf("a 0.5/s host cut to %v", r)
	}
}

func TestAutoThrottleOffCostsNothing(t *testing.T) {
	if g := newHostGates(0, 0, 1, false, nil); g != nil {
		t.Error("host gates without per-host limits or auto_throttle")
	}
	c := newTestClient(t, nil)
	if c.hosts != nil {
		t.Error("a default client has host gates")
	}
}

// Gates of hosts gone quiet are forgotten: memory follows the hosts of
// recent traffic, not every host ever asked. A rate-limited host is kept
// until its bucket is full again, a throttled one for throttleForget.
func TestHostGatesForgetQuietHosts(t *testing.T) {
	g := newHostGates(0, 100, 1, false, nil) // a token per 10 ms
	const perPhase = 3000
	run := func(phase int) {
		for i := range perPhase {
			tk := &task{host: fmt.Sprintf("http://h%d-%d:80", phase, i)}
			if !g.admit(tk, time.Now()) {
				t.Fatalf("host %s was not admitted", tk.host)
			}
			g.done(tk)
		}
	}
	run(1)
	time.Sleep(30 * time.Millisecond) // every phase-1 bucket is full again
	run(2)
	if n := len(g.hosts); n > perPhase+minSweep {
		t.Errorf("%d gates after two phases of %d hosts, want at most %d", n, perPhase, perPhase+minSweep)
	}
	for key := range g.hosts {
		if strings.HasPrefix(key, "http://h1-") {
			t.Fatalf("gate %s of phase 1 kept", key)
		}
	}

	// A throttled host keeps its rate while idle, for throttleForget.
	tg, tk, _ := throttleGates(t, 0)
	tg.feedback(tk, status(429), time.Now())
	tg.done(tk)
	tg.mu.Lock()
	defer tg.mu.Unlock()
	if tg.sweep(time.Now().Add(throttleForget / 2)); len(tg.hosts) != 1 {
		t.Fatalf("the throttled host was forgotten after %v idle", throttleForget/2)
	}
	if tg.sweep(time.Now().Add(throttleForget + time.Second)); len(tg.hosts) != 0 {
		t.Fatalf("the throttled host was kept after %v idle", throttleForget+time.Second)
	}
}
