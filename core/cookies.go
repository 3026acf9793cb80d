package core

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
)

// sessionJar is the client's cookie session: cookies that servers set are
// kept per domain (net/http/cookiejar), and cookies the caller sets with
// SetCookies go to every host. Safe for concurrent use.
type sessionJar struct {
	mu    sync.RWMutex
	jar   *cookiejar.Jar
	fixed []*http.Cookie
	// filled: a cookie may be in jar or fixed. While it is false the jar
	// holds none, and Cookies answers without asking it (or locking).
	// Set with mu held (read-held for SetCookies, before it writes into
	// the jar it read), cleared with mu write-held by reset.
	filled atomic.Bool
}

var _ http.CookieJar = (*sessionJar)(nil)

func newSessionJar(initial map[string]string) *sessionJar {
	j, _ := cookiejar.New(nil) // never fails without options
	s := &sessionJar{jar: j}
	s.set(initial)
	return s
}

func (s *sessionJar) SetCookies(u *url.URL, cookies []*http.Cookie) {
	if len(cookies) == 0 {
		return
	}
	s.mu.RLock()
	j := s.jar
	s.filled.Store(true)
	s.mu.RUnlock()
	j.SetCookies(u, cookies)
}

// Cookies returns the server-set cookies for u, then the caller's session
// cookies whose names the server has not set.
func (s *sessionJar) Cookies(u *url.URL) []*http.Cookie {
	if !s.filled.Load() {
		return nil
	}
	s.mu.RLock()
	j, fixed := s.jar, s.fixed
	s.mu.RUnlock()
	got := j.Cookies(u)
	if len(fixed) == 0 {
		return got
	}
	out := got
outer:
	for _, f := range fixed {
		for _, g := range got {
			if g.Name == f.Name {
				continue outer
			}
		}
		out = append(out, f)
	}
	return out
}

// set adds or updates session cookies sent to every host.
func (s *sessionJar) set(m map[string]string) {
	if len(m) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fixed := make([]*http.Cookie, 0, len(s.fixed)+len(m))
	for _, c := range s.fixed {
		if _, replaced := m[c.Name]; !replaced {
			fixed = append(fixed, c)
		}
	}
	for k, v := range m {
		fixed = append(fixed, &http.Cookie{Name: k, Value: v})
	}
	s.fixed = fixed // copy on write: readers keep their snapshot
	s.filled.Store(true)
}

// reset forgets every cookie, server-set or not.
func (s *sessionJar) reset() {
	j, _ := cookiejar.New(nil)
	s.mu.Lock()
	s.jar, s.fixed = j, nil
	s.filled.Store(false)
	s.mu.Unlock()
}

// overrideJar is the session as seen by a request with cookies of its own:
// session cookies of the same names are left out, so that the request's
// values replace them (as in the Python API) instead of being sent too.
type overrideJar struct {
	*sessionJar
	own map[string]string
}

func (j overrideJar) Cookies(u *url.URL) []*http.Cookie {
	return slices.DeleteFunc(j.sessionJar.Cookies(u), func(c *http.Cookie) bool {
		_, mine := j.own[c.Name]
		return mine
	})
}
