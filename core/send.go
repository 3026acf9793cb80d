package core

import (
	"fmt"
	"io"
	"net/http"
	"strings"
)

// send makes req's round trip as an http.Client{Transport: rt, Jar: jar,
// CheckRedirect: redirects} would, with the same result and the same
// errors. A request that needs nothing of the client -- no credentials
// in its URL, no cookie from the jar, an answer that is not a redirect
// -- goes straight to rt, which spares the client's per-request copies
// (of the headers, of the URL for the jar, of the redirect chain). Any
// other answer is handed to a client as the first hop's (see replayed),
// which carries on from there: redirects, cookies and errors go through
// net/http's own code.
//
// The client writes the request it is given (the jar's cookies go into
// its header). Once rt has had req, which rt may still be reading (an
// HTTP/2 stream writing it out), the client gets a copy with a header of
// its own; before that, req itself, with a header of its own when
// sharedHeader says req.Header is shared with other requests.
func send(req *http.Request, sharedHeader bool, rt http.RoundTripper, jar http.CookieJar, redirects func(*http.Request, []*http.Request) error) (*http.Response, error) {
	if req.URL != nil && req.URL.User == nil && req.Header != nil && req.RequestURI == "" {
		cookieURL := req.URL
		if req.Host != "" && req.Host != req.URL.Host {
			u := *req.URL
			u.Host = req.Host
			cookieURL = &u
		}
		if jar == nil || len(jar.Cookies(cookieURL)) == 0 {
			resp, err := rt.RoundTrip(req)
			if err == nil {
				resp, err = checkResponse(req, rt, resp)
			}
			if err == nil && !redirectStatus(resp.StatusCode) {
				if jar != nil {
					if rc := resp.Cookies(); len(rc) > 0 {
						jar.SetCookies(cookieURL, rc)
					}
				}
				return resp, nil
			}
			own := *req
			own.Header = req.Header.Clone()
			hc := http.Client{Transport: &replayed{rt: rt, resp: resp, err: err}, Jar: jar, CheckRedirect: redirects}
			return hc.Do(&own)
		}
	}
	if sharedHeader {
		req.Header = req.Header.Clone()
	}
	hc := http.Client{Transport: rt, Jar: jar, CheckRedirect: redirects}
	return hc.Do(req)
}

// checkResponse holds a round tripper's answer to what http.Client
// demands of it: a response, with a body (an empty one stands in for a
// nil body that a Content-Length allows). The errors are the client's.
func checkResponse(req *http.Request, rt http.RoundTripper, resp *http.Response) (*http.Response, error) {
	if resp == nil {
		return nil, fmt.Errorf("http: RoundTripper implementation (%T) returned a nil *Response with a nil error", rt)
	}
	if resp.Body == nil {
		if resp.ContentLength > 0 && req.Method != http.MethodHead {
			return nil, fmt.Errorf("http: RoundTripper implementation (%T) returned a *Response with content length %d but a nil Body", rt, resp.ContentLength)
		}
		resp.Body = io.NopCloser(strings.NewReader(""))
	}
	return resp, nil
}

// redirectStatus reports whether http.Client looks for a redirect in an
// answer with status code.
func redirectStatus(code int) bool {
	switch code {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		return true
	}
	return false
}

// replayed is a round tripper whose first round trip was already made:
// it answers the first request with that outcome, and sends the next ones
// (the redirects) through rt. For one http.Client.Do, which calls it from
// one goroutine.
type replayed struct {
	rt   http.RoundTripper
	resp *http.Response
	err  error
	used bool
}

func (r *replayed) RoundTrip(req *http.Request) (*http.Response, error) {
	if !r.used {
		r.used = true
		return r.resp, r.err
	}
	return r.rt.RoundTrip(req)
}
