package core

import (
	"context"
	"encoding/json"
	"net/http/httptrace"
	"reflect"
	"sync/atomic"
	"testing"
)

// checkTimings asserts what every response's timings hold: a total, a
// first byte within it, and (fresh) a connect but no reuse, or (reused)
// no connection setup at all.
func checkTimings(t *testing.T, what string, res *NormalizedResponse, fresh, tls bool) {
	t.Helper()
	mustOK(t, res)
	tm := res.Timings
	t.Logf("%s: %+v", what, tm)
	if tm.Total <= 0 || tm.TTFB <= 0 || tm.TTFB > tm.Total {
		t.Errorf("%s: ttfb %v, total %v: want 0 < ttfb <= total", what, tm.TTFB, tm.Total)
	}
	if tm.Total > res.Elapsed {
		t.Errorf("%s: total %v > elapsed %v", what, tm.Total, res.Elapsed)
	}
	if fresh {
		if tm.Reused || tm.Connect <= 0 {
			t.Errorf("%s on a new connection: %+v, want reused=false and connect > 0", what, tm)
		}
		if tls != (tm.TLS > 0) {
			t.Errorf("%s: tls %v, want it > 0: %v", what, tm.TLS, tls)
		}
		if setup := tm.DNS + tm.Connect + tm.TLS; setup > tm.TTFB {
			t.Errorf("%s: dns+connect+tls %v > ttfb %v", what, setup, tm.TTFB)
		}
		return
	}
	if !tm.Reused || tm.DNS != 0 || tm.Connect != 0 || tm.TLS != 0 {
		t.Errorf("%s on a kept connection: %+v, want reused=true and no dns, connect or tls", what, tm)
	}
}

func TestTimingsFreshThenReused(t *testing.T) {
	for _, tt := range []struct {
		name, backend, url string
		tls                bool
	}{
		{"http1", "http1", ts.HTTPURL, false},
		{"h2c", "http2", ts.HTTPURL, false},
		{"https-h1", "http1", ts.TLSH1URL, true},
		{"https-auto-h2", "auto", ts.TLSURL, true},
		{"https-http2", "http2", ts.TLSURL, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, func(c *ClientConfig) { c.Backend = tt.backend })
			first := doReq(t, c, RequestConfig{URL: tt.url + "/x/json"})
			checkTimings(t, "first request", first, true, tt.tls)
			if first.Timings.DNS != 0 {
				t.Errorf("dns %v for an IP address, want 0", first.Timings.DNS)
			}
			second := doReq(t, c, RequestConfig{URL: tt.url + "/x/json"})
			checkTimings(t, "second request", second, false, false)
		})
	}
}

func TestTimingsThroughProxies(t *testing.T) {
	for _, proxy := range []string{ts.ProxyURL, ts.SOCKS5URL} {
		for _, target := range []string{ts.HTTPURL, ts.TLSURL} {
			c := newTestClient(t, nil)
			res := doReq(t, c, RequestConfig{URL: target + "/x/json", Proxy: proxy})
			checkTimings(t, redactURL(proxy)+" to "+target, res, true, target == ts.TLSURL)
		}
	}
}

func TestTimingsOfAFailedAttempt(t *testing.T) {
	c := newTestClient(t, func(c *ClientConfig) { c.ReadTimeout = 0.2 })
	res := doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/stall?seconds=5"})
	wantKind(t, res, KindTimeout)
	tm := res.Timings
	if tm.Total < 200e6 || tm.TTFB != 0 || tm.Connect <= 0 {
		t.Errorf("timings %+v: want total >= 0.2 s, no first byte, a connect", tm)
	}
	// A request that never ran has none.
	res = doReq(t, c, RequestConfig{URL: "ftp://x/"})
	if res.Timings != (Timings{}) {
		t.Errorf("invalid request: timings %+v, want zero", res.Timings)
	}
}

func TestTimingsJSONNames(t *testing.T) {
	b, err := json.Marshal(&NormalizedResponse{Timings: Timings{DNS: 1, Connect: 2, TLS: 3, TTFB: 4, Total: 5, Reused: true}})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"dns_ns": 1.0, "connect_ns": 2.0, "tls_ns": 3.0, "ttfb_ns": 4.0, "total_ns": 5.0, "reused": true}
	if !reflect.DeepEqual(m["timings"], want) {
		t.Errorf("timings JSON %v, want %v", m["timings"], want)
	}
}

// A caller's own httptrace hooks, in the context it submits with, still
// run, beside the engine's.
func TestTimingsKeepTheCallersTrace(t *testing.T) {
	var got, first, connect atomic.Int32
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn:              func(httptrace.GotConnInfo) { got.Add(1) },
		GotFirstResponseByte: func() { first.Add(1) },
		ConnectStart:         func(string, string) { connect.Add(1) }, // the net package's hook
	})
	c := newTestClient(t, nil)
	b, err := c.Submit(ctx, reqs(3, ts.HTTPURL+"/x/json"), BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range b.Wait() {
		mustOK(t, res)
		if res.Timings.TTFB <= 0 {
			t.Errorf("request %d: no ttfb: %+v", res.Index, res.Timings)
		}
	}
	if got.Load() != 3 || first.Load() != 3 {
		t.Errorf("the caller's hooks ran %d and %d times, want 3", got.Load(), first.Load())
	}
	if connect.Load() == 0 {
		t.Error("the caller's ConnectStart never ran")
	}
	if clientTraceKey == nil {
		t.Error("httptrace's context key was not caught: every attempt allocates a context value")
	}
}
