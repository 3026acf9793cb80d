package testserver

import (
	"net/http"
	"strconv"
	"sync"

	"golang.org/x/time/rate"
)

// rateLimits are the token buckets of /x/ratelimit, one per key.
type rateLimits struct {
	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// rateLimited answers /x/json's body while the requests for ?key stay
// within ?rate per second (default 10; a token bucket of ?burst, default
// 1), and 429 above it, as a rate-limited API does. Hits (and /x/count)
// report the answers per key: "ratelimit-ok:K" and "ratelimit-429:K".
func (h *handler) rateLimited(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	key := q.Get("key")
	perSecond, err := strconv.ParseFloat(q.Get("rate"), 64)
	if err != nil || perSecond <= 0 {
		perSecond = 10
	}
	burst, err := strconv.Atoi(q.Get("burst"))
	if err != nil || burst < 1 {
		burst = 1
	}
	h.limits.mu.Lock()
	if h.limits.m == nil {
		h.limits.m = map[string]*rate.Limiter{}
	}
	l := h.limits.m[key]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(perSecond), burst)
		h.limits.m[key] = l
	}
	h.limits.mu.Unlock()
	if !l.Allow() {
		h.hit("ratelimit-429:" + key)
		http.Error(w, "too many requests", http.StatusTooManyRequests)
		return
	}
	h.hit("ratelimit-ok:" + key)
	w.Header().Set("Content-Type", "application/json")
	w.Write(JSONBody)
}
