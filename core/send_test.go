package core

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// send answers as http.Client does, on its direct path and on the paths
// it hands to a client: the same response (final URL, status, body, the
// headers each hop carried) or the same error, and the same cookies in
// the jar.
func TestSendAsClient(t *testing.T) {
	type hop struct {
		url, cookie, auth, referer string
	}
	cases := []struct {
		name string
		url  string
		host string // Host override
		// jar holds a cookie for the URL's host before the request
		jarCookie bool
		rt        func(r *http.Request) (*http.Response, error)
	}{
		{name: "ok", url: "http://a.test/x", rt: func(r *http.Request) (*http.Response, error) {
			return fakeResponse(r, 200, nil, "hello"), nil
		}},
		{name: "sets a cookie", url: "http://a.test/x", rt: func(r *http.Request) (*http.Response, error) {
			return fakeResponse(r, 200, http.Header{"Set-Cookie": {"s=1; Path=/"}}, "hello"), nil
		}},
		{name: "sends the jar's cookie", url: "http://a.test/x", jarCookie: true, rt: func(r *http.Request) (*http.Response, error) {
			return fakeResponse(r, 200, nil, r.Header.Get("Cookie")), nil
		}},
		{name: "host override", url: "http://a.test/x", host: "b.test", rt: func(r *http.Request) (*http.Response, error) {
			return fakeResponse(r, 200, http.Header{"Set-Cookie": {"h=1"}}, "x"), nil
		}},
		{name: "credentials in the URL", url: "http://u:p@a.test/x", rt: func(r *http.Request) (*http.Response, error) {
			return fakeResponse(r, 200, nil, r.Header.Get("Authorization")), nil
		}},
		{name: "redirect with a cookie", url: "http://a.test/x", rt: func(r *http.Request) (*http.Response, error) {
			if r.URL.Path == "/x" {
				return fakeResponse(r, 302, http.Header{"Location": {"/y"}, "Set-Cookie": {"r=1; Path=/"}}, "moved"), nil
			}
			return fakeResponse(r, 200, nil, r.Header.Get("Cookie")), nil
		}},
		{name: "redirect to another host", url: "http://a.test/x", rt: func(r *http.Request) (*http.Response, error) {
			if r.URL.Host == "a.test" {
				return fakeResponse(r, 301, http.Header{"Location": {"http://c.test/z"}}, ""), nil
			}
			return fakeResponse(r, 200, nil, "there"), nil
		}},
		{name: "3xx without a location", url: "http://a.test/x", rt: func(r *http.Request) (*http.Response, error) {
			return fakeResponse(r, 302, nil, "stay"), nil
		}},
		{name: "bad location", url: "http://a.test/x", rt: func(r *http.Request) (*http.Response, error) {
			return fakeResponse(r, 302, http.Header{"Location": {"http://%zz"}}, ""), nil
		}},
		{name: "error", url: "http://a.test/x", rt: func(r *http.Request) (*http.Response, error) {
			return nil, errors.New("boom")
		}},
		{name: "plain HTTP answer to TLS", url: "https://a.test/x", rt: func(r *http.Request) (*http.Response, error) {
			return nil, tls.RecordHeaderError{Msg: "bad", RecordHeader: [5]byte{'H', 'T', 'T', 'P', '/'}}
		}},
		{name: "nil response", url: "http://a.test/x", rt: func(r *http.Request) (*http.Response, error) {
			return nil, nil
		}},
		{name: "nil body with a length", url: "http://a.test/x", rt: func(r *http.Request) (*http.Response, error) {
			resp := fakeResponse(r, 200, nil, "")
			resp.Body, resp.ContentLength = nil, 5
			return resp, nil
		}},
		{name: "nil body", url: "http://a.test/x", rt: func(r *http.Request) (*http.Response, error) {
			resp := fakeResponse(r, 200, nil, "")
			resp.Body, resp.ContentLength = nil, 0
			return resp, nil
		}},
	}
	redirects := limitRedirects(10)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			type outcome struct {
				status     int
				url, body  string
				err        string
				hops       []hop
				jarA, jarB string
				jarC       string
			}
			run := func(viaSend bool) outcome {
				jar := newSessionJar(nil)
				if tc.jarCookie {
					u, _ := url.Parse("http://a.test/")
					jar.SetCookies(u, []*http.Cookie{{Name: "j", Value: "1"}})
				}
				var hops []hop
				rt := rtFunc(func(r *http.Request) (*http.Response, error) {
					hops = append(hops, hop{r.URL.String(), r.Header.Get("Cookie"), r.Header.Get("Authorization"), r.Header.Get("Referer")})
					return tc.rt(r)
				})
				req, err := http.NewRequest("GET", tc.url, nil)
				if err != nil {
					t.Fatal(err)
				}
				if tc.host != "" {
					req.Host = tc.host
				}
				var resp *http.Response
				if viaSend {
					// As a shared header, which must come back as it went.
					shared := req.Header
					shared["X-Shared"] = []string{"1"}
					resp, err = send(req, true, rt, jar, redirects)
					if len(shared) != 1 || shared.Get("X-Shared") != "1" {
						t.Errorf("send wrote the shared header: %v", shared)
					}
				} else {
					req.Header["X-Shared"] = []string{"1"}
					resp, err = (&http.Client{Transport: rt, Jar: jar, CheckRedirect: redirects}).Do(req)
				}
				var o outcome
				if err != nil {
					o.err = err.Error()
					var ue *url.Error
					if !errors.As(err, &ue) {
						o.err += " (not a *url.Error)"
					}
					if errors.Is(err, http.ErrSchemeMismatch) {
						o.err += " (ErrSchemeMismatch)"
					}
				}
				if resp != nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					o.status, o.url, o.body = resp.StatusCode, resp.Request.URL.String(), string(b)
				}
				o.hops = hops
				for _, h := range []struct {
					dst *string
					u   string
				}{{&o.jarA, "http://a.test/y"}, {&o.jarB, "http://b.test/"}, {&o.jarC, "http://c.test/"}} {
					u, _ := url.Parse(h.u)
					var names []string
					for _, c := range jar.Cookies(u) {
						names = append(names, c.String())
					}
					*h.dst = strings.Join(names, ";")
				}
				return o
			}
			want, got := run(false), run(true)
			if got.status != want.status || got.url != want.url || got.body != want.body || got.err != want.err ||
				got.jarA != want.jarA || got.jarB != want.jarB || got.jarC != want.jarC || len(got.hops) != len(want.hops) {
				t.Fatalf("send:\n %+v\nhttp.Client:\n %+v", got, want)
			}
			for i := range got.hops {
				if got.hops[i] != want.hops[i] {
					t.Fatalf("hop %d: send %+v, http.Client %+v", i, got.hops[i], want.hops[i])
				}
			}
		})
	}
}
