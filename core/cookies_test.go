package core

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
)

func cookieMap(cs []*http.Cookie) map[string]string {
	m := map[string]string{}
	for _, c := range cs {
		if _, dup := m[c.Name]; dup {
			m[c.Name] += "|" + c.Value
			continue
		}
		m[c.Name] = c.Value
	}
	return m
}

func TestSessionJarUnit(t *testing.T) {
	u1, _ := url.Parse("http://one.example/path")
	u2, _ := url.Parse("https://two.example/")
	j := newSessionJar(map[string]string{"init": "1", "shared": "fixed"})

	// Caller cookies go to every host.
	for _, u := range []*url.URL{u1, u2} {
		if got := cookieMap(j.Cookies(u)); !reflect.DeepEqual(got, map[string]string{"init": "1", "shared": "fixed"}) {
			t.Errorf("%s: %v", u, got)
		}
	}
	// Server cookies stay with their host and win over a caller cookie of
	// the same name.
	j.SetCookies(u1, []*http.Cookie{{Name: "shared", Value: "server"}, {Name: "srv", Value: "x"}})
	if got := cookieMap(j.Cookies(u1)); !reflect.DeepEqual(got, map[string]string{"init": "1", "shared": "server", "srv": "x"}) {
		t.Errorf("one.example after Set-Cookie: %v", got)
	}
	if got := cookieMap(j.Cookies(u2)); !reflect.DeepEqual(got, map[string]string{"init": "1", "shared": "fixed"}) {
		t.Errorf("two.example must not see one.example's cookies: %v", got)
	}
	// set adds and updates.
	j.set(map[string]string{"init": "2", "new": "n"})
	if got := cookieMap(j.Cookies(u2)); !reflect.DeepEqual(got, map[string]string{"init": "2", "shared": "fixed", "new": "n"}) {
		t.Errorf("after set: %v", got)
	}
	j.set(nil) // no-op
	// reset forgets everything.
	j.reset()
	if got := j.Cookies(u1); len(got) != 0 {
		t.Errorf("after reset: %v", cookieMap(got))
	}
}

func TestSessionJarConcurrent(t *testing.T) {
	u, _ := url.Parse("http://h.example/")
	j := newSessionJar(nil)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for k := range 200 {
				switch (i + k) % 4 {
				case 0:
					j.set(map[string]string{"a": "1"})
				case 1:
					j.SetCookies(u, []*http.Cookie{{Name: "b", Value: "2"}})
				case 2:
					for _, c := range j.Cookies(u) {
						if c.Name == "" {
							t.Error("empty cookie")
						}
					}
				case 3:
					if k%50 == 3 {
						j.reset()
					}
				}
			}
		})
	}
	wg.Wait()
}

// ---- against the server ----

// serverCookies asks /x/cookies which cookies arrived.
func serverCookies(t *testing.T, c *Client, req RequestConfig) map[string]string {
	t.Helper()
	req.URL = ts.HTTPURL + "/x/cookies"
	res := doReq(t, c, req)
	mustOK(t, res)
	var doc struct {
		Cookies map[string]string `json:"cookies"`
	}
	if err := json.Unmarshal(res.Content, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Cookies
}

// rawCookieHeader returns the Cookie header lines /x/echo saw.
func rawCookieHeader(t *testing.T, c *Client, req RequestConfig) []string {
	t.Helper()
	req.URL = ts.HTTPURL + "/x/echo"
	return decodeEcho(t, doReq(t, c, req)).Headers["cookie"]
}

func TestCookiesInitialAndPerRequest(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.Cookies = map[string]string{"init": "yes"} })
	if got := serverCookies(t, c, RequestConfig{}); !reflect.DeepEqual(got, map[string]string{"init": "yes"}) {
		t.Errorf("initial cookies: %v", got)
	}
	got := serverCookies(t, c, RequestConfig{Cookies: map[string]string{"once": "1", "two": "2"}})
	if !reflect.DeepEqual(got, map[string]string{"init": "yes", "once": "1", "two": "2"}) {
		t.Errorf("with per-request cookies: %v", got)
	}
	if got := serverCookies(t, c, RequestConfig{}); !reflect.DeepEqual(got, map[string]string{"init": "yes"}) {
		t.Errorf("per-request cookies persisted: %v", got)
	}
}

func TestCookiesServerSetPersist(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, nil)
	res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/set-cookie?session=abc&theme=dark"})
	mustOK(t, res)
	if !strings.Contains(res.Headers["set-cookie"], "session=abc") {
		t.Errorf("set-cookie header %q", res.Headers["set-cookie"])
	}
	want := map[string]string{"session": "abc", "theme": "dark"}
	if got := serverCookies(t, c, RequestConfig{}); !reflect.DeepEqual(got, want) {
		t.Errorf("later request sent %v, want %v", got, want)
	}
	// Concurrent requests of a batch all see the session.
	b, err := c.Submit(testCtx(t), reqs(10, ts.HTTPURL+"/x/cookies"), BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range b.Wait() {
		mustOK(t, r)
		if !strings.Contains(string(r.Content), `"session":"abc"`) {
			t.Errorf("batch request %d: %s", r.Index, r.Content)
		}
	}
	// Another client has its own session.
	other := newTestClient(t, nil)
	if got := serverCookies(t, other, RequestConfig{}); len(got) != 0 {
		t.Errorf("a second client sent %v", got)
	}
}

func TestCookiesSetOnRedirectKept(t *testing.T) {
	t.Parallel()
	// A cookie set by a response in the middle of a redirect chain is sent
	// on the next hop and kept for later requests.
	login := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.SetCookie(w, &http.Cookie{Name: "auth", Value: "tok", Path: "/"})
		http.Redirect(w, r, ts.HTTPURL+"/x/cookies", http.StatusFound)
	}))
	defer login.Close()
	c := newTestClient(t, nil)
	res := doReq(t, c, RequestConfig{URL: login.URL + "/login"})
	mustOK(t, res)
	if res.URL != ts.HTTPURL+"/x/cookies" || !strings.Contains(string(res.Content), `"auth":"tok"`) {
		t.Errorf("final %s: %s; want the cookie set by the redirect", res.URL, res.Content)
	}
	if got := serverCookies(t, c, RequestConfig{}); got["auth"] != "tok" {
		t.Errorf("later request sent %v", got)
	}
}

func TestCookiesSetAndReset(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.Cookies = map[string]string{"init": "1"} })
	if err := c.SetCookies(map[string]string{"added": "a", "init": "updated"}); err != nil {
		t.Fatal(err)
	}
	mustOK(t, doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/set-cookie?srv=s"}))
	want := map[string]string{"added": "a", "init": "updated", "srv": "s"}
	if got := serverCookies(t, c, RequestConfig{}); !reflect.DeepEqual(got, want) {
		t.Errorf("after SetCookies: %v, want %v", got, want)
	}
	c.ResetCookies()
	if got := serverCookies(t, c, RequestConfig{}); len(got) != 0 {
		t.Errorf("after ResetCookies the client still sent %v", got)
	}
	// Invalid cookies are refused and change nothing.
	err := c.SetCookies(map[string]string{"bad": "a;b"})
	var fe *Error
	if !errors.As(err, &fe) || fe.Kind != KindValidation || fe.Field != "cookies" {
		t.Errorf("SetCookies(bad): %v", err)
	}
	if got := serverCookies(t, c, RequestConfig{}); len(got) != 0 {
		t.Errorf("a refused SetCookies sent %v", got)
	}
}

// TestCookiesPerRequestOverridesSession: as in the Python API (requests
// merges a call's cookies over the session's), a request's own cookie
// replaces a session cookie of the same name instead of being sent
// alongside it.
func TestCookiesPerRequestOverridesSession(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.Cookies = map[string]string{"fixed": "session"} })
	mustOK(t, doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/set-cookie?srv=session"}))
	lines := rawCookieHeader(t, c, RequestConfig{Cookies: map[string]string{"srv": "request", "fixed": "request"}})
	var pairs []string
	for _, l := range lines {
		for p := range strings.SplitSeq(l, ";") {
			pairs = append(pairs, strings.TrimSpace(p))
		}
	}
	sort.Strings(pairs)
	if want := []string{"fixed=request", "srv=request"}; !reflect.DeepEqual(pairs, want) {
		t.Errorf("Cookie header %q, want exactly %v", lines, want)
	}
	// The session itself is unchanged.
	want := map[string]string{"fixed": "session", "srv": "session"}
	if got := serverCookies(t, c, RequestConfig{}); !reflect.DeepEqual(got, want) {
		t.Errorf("session after the override: %v", got)
	}
}
