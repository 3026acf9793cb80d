package core

import (
	"math/rand/v2"
	"os"
	"strings"
)

// DefaultUserAgents is the built-in rotation list: current (late 2026)
// desktop and mobile browsers in the exact form they send, so that requests
// blend in with ordinary traffic. Chrome and Edge send a reduced UA (minor
// versions 0.0.0, frozen OS versions); iOS Safari freezes the OS at 18_7.
// Keep the versions current: a stale major version stands out.
var DefaultUserAgents = []string{
	// Chrome: Windows, macOS, Linux, Android.
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/155.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Mobile Safari/537.36",
	// Edge on Windows.
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36 Edg/156.0.0.0",
	// Firefox: Windows, macOS, Linux, Android.
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:158.0) Gecko/20100101 Firefox/158.0",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:158.0) Gecko/20100101 Firefox/158.0",
	"Mozilla/5.0 (X11; Linux x86_64; rv:157.0) Gecko/20100101 Firefox/157.0",
	"Mozilla/5.0 (Android 16; Mobile; rv:158.0) Gecko/158.0 Firefox/158.0",
	// Safari: macOS and iPhone.
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.6 Safari/605.1.15",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/27.0 Safari/605.1.15",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 18_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.6 Mobile/15E148 Safari/604.1",
}

// userAgents is a client's User-Agent rotation list. It is immutable after
// construction, so pick needs no lock.
type userAgents struct {
	list []string
}

// newUserAgents returns the rotation list: override if it has any
// non-blank entry, else USER_AGENTS (comma-separated) read through getenv
// (nil means os.Getenv), else DefaultUserAgents. Entries are trimmed and
// blanks dropped, since a blank User-Agent would be worse than none. The
// list is copied so that later changes to the caller's slice or to
// DefaultUserAgents cannot race with pick.
func newUserAgents(override []string, getenv func(string) string) *userAgents {
	if list := cleanUserAgents(override); len(list) > 0 {
		return &userAgents{list: list}
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	if env := getenv("USER_AGENTS"); env != "" {
		if list := cleanUserAgents(strings.Split(env, ",")); len(list) > 0 {
			return &userAgents{list: list}
		}
	}
	return &userAgents{list: cleanUserAgents(DefaultUserAgents)}
}

// cleanUserAgents returns a trimmed copy of in without blank entries.
func cleanUserAgents(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// pick returns a random User-Agent from the list, or "" for a nil or empty
// list (only possible if DefaultUserAgents was emptied). It uses the
// global math/rand/v2 generator, which is goroutine-safe without a shared
// lock, because pick runs once per request.
func (u *userAgents) pick() string {
	if i := u.pickIndex(); i >= 0 {
		return u.list[i]
	}
	return ""
}

// pickIndex is pick's choice as an index into list: -1 for a nil or
// empty list.
func (u *userAgents) pickIndex() int {
	if u == nil {
		return -1
	}
	switch len(u.list) {
	case 0:
		return -1
	case 1:
		return 0
	}
	return rand.IntN(len(u.list))
}
