package core

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

func TestBackendNames(t *testing.T) {
	tests := []struct {
		name, canonical string
		protocol        Protocol
		h2              bool
	}{
		{"auto", "auto", ProtocolAuto, true},
		{"", "auto", ProtocolAuto, true},
		{"http1", "http1", ProtocolHTTP1, false},
		{"http2", "http2", ProtocolHTTP2, true},
		{"HTTP2", "http2", ProtocolHTTP2, true},
		{"Http1", "http1", ProtocolHTTP1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Backend = tt.name
			c, err := NewClient(cfg)
			if err != nil {
				t.Fatalf("NewClient(backend %q): %v", tt.name, err)
			}
			defer c.Close()
			b := c.Backend()
			if b.Name() != tt.canonical || b.SupportsHTTP2() != tt.h2 || c.protocol != tt.protocol {
				t.Errorf("backend %q: name %q h2 %v protocol %v; want %q %v %v",
					tt.name, b.Name(), b.SupportsHTTP2(), c.protocol, tt.canonical, tt.h2, tt.protocol)
			}
		})
	}
	if names := BackendNames(); !slices.Equal(names, []string{"auto", "http1", "http2", "http3"}) {
		t.Errorf("BackendNames() = %v, want auto, http1, http2, http3", names)
	}
	// The original Python library's client names are the Python package's
	// aliases, not the engine's.
	for _, alias := range []string{"niquests", "requests", "h2"} {
		cfg := testConfig()
		cfg.Backend = alias
		if c, err := NewClient(cfg); err == nil {
			c.Close()
			t.Errorf("NewClient(backend %q) succeeded; the engine has no aliases", alias)
		}
	}
}

func TestUnknownBackendListsValidNames(t *testing.T) {
	cfg := testConfig()
	cfg.Backend = "urllib3"
	_, err := NewClient(cfg)
	var fe *Error
	if !errors.As(err, &fe) || fe.Kind != KindConfiguration || fe.Field != "backend" {
		t.Fatalf("error %v, want a configuration error on backend", err)
	}
	if !errors.Is(err, ErrConfiguration) {
		t.Error("errors.Is(ErrConfiguration) false")
	}
	for _, name := range BackendNames() {
		if !strings.Contains(fe.Message, name) {
			t.Errorf("message %q does not list %q", fe.Message, name)
		}
	}
	if !strings.Contains(fe.Message, "urllib3") {
		t.Errorf("message %q does not repeat the bad name", fe.Message)
	}
}

// TestBackendProtocols asserts which protocol each backend speaks to each
// server, as both sides see it (/x/proto echoes the server's view).
func TestBackendProtocols(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		backend string
		http2   bool
		reqH2   *bool
		url     string
		want    string
	}{
		{"http1 to TLS h2 server", "http1", true, nil, ts.TLSURL, "HTTP/1.1"},
		{"auto to TLS h2 server: ALPN h2", "auto", true, nil, ts.TLSURL, "HTTP/2.0"},
		{"auto with http2=false", "auto", false, nil, ts.TLSURL, "HTTP/1.1"},
		{"auto to TLS h1-only server", "auto", true, nil, ts.TLSH1URL, "HTTP/1.1"},
		{"auto over plain http stays HTTP/1.1", "auto", true, nil, ts.HTTPURL, "HTTP/1.1"},
		{"http2 over plain http: h2c", "http2", true, nil, ts.HTTPURL, "HTTP/2.0"},
		{"http2 over TLS", "http2", true, nil, ts.TLSURL, "HTTP/2.0"},
		{"per-request http2=false on auto", "auto", true, ptr(false), ts.TLSURL, "HTTP/1.1"},
		{"per-request http2=false on http2", "http2", true, ptr(false), ts.HTTPURL, "HTTP/1.1"},
		{"per-request http2=true on auto with http2=false", "auto", false, ptr(true), ts.TLSURL, "HTTP/2.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, func(c *ClientConfig) { c.Backend = tt.backend; c.HTTP2 = ptr(tt.http2) })
			res := doReq(t, c, RequestConfig{URL: tt.url + "/x/proto", HTTP2: tt.reqH2})
			mustOK(t, res)
			if string(res.Content) != tt.want || res.HTTPVersion != tt.want {
				t.Errorf("server saw %q, client reports %q; want %q", res.Content, res.HTTPVersion, tt.want)
			}
		})
	}
}

func TestBackendHTTP2ToHTTP1OnlyServerFails(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.Backend = "http2" })
	res := doReq(t, c, RequestConfig{URL: ts.TLSH1URL + "/x/proto"})
	if res.Error == nil {
		t.Fatalf("HTTP/2-only backend got %d %q from an HTTP/1.1-only server", res.StatusCode, res.Content)
	}
	if res.StatusCode != 0 {
		t.Errorf("status %d", res.StatusCode)
	}
	// The failure must say what went wrong: no HTTP/2 on offer.
	msg := res.Error.Error()
	if !strings.Contains(msg, "protocol") && !strings.Contains(msg, "ALPN") && !strings.Contains(msg, "h2") {
		t.Errorf("error %q does not say that the server does not speak HTTP/2", msg)
	}
}

func TestBackendVerifySSL(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"auto", "http1", "http2"} {
		t.Run(backend, func(t *testing.T) {
			// verify_ssl=false accepts the test CA's certificate.
			insecure := newTestClient(t, func(c *ClientConfig) { c.Backend = backend })
			mustOK(t, doReq(t, insecure, RequestConfig{URL: ts.TLSURL + "/x/json"}))

			// verify_ssl=true rejects it (the client does not trust the
			// test CA), is a TLS error, and is not retried.
			strict := newTestClient(t, func(c *ClientConfig) { c.Backend = backend; c.VerifySSL = ptr(true); c.MaxRetries = 3 })
			res := doReq(t, strict, RequestConfig{URL: ts.TLSURL + "/x/json"})
			e := wantKind(t, res, KindTLS)
			if res.Attempts != 1 || e.Attempts != 1 {
				t.Errorf("attempts %d/%d: a certificate error must not be retried", res.Attempts, e.Attempts)
			}
			if !errors.Is(res.Err(), ErrTLS) || !strings.Contains(e.Message, "certificate") {
				t.Errorf("error %q", e.Message)
			}
			// Per request, both ways.
			mustOK(t, doReq(t, strict, RequestConfig{URL: ts.TLSURL + "/x/json", VerifySSL: ptr(false)}))
			res = doReq(t, insecure, RequestConfig{URL: ts.TLSURL + "/x/json", VerifySSL: ptr(true)})
			wantKind(t, res, KindTLS)
		})
	}
}

func TestBackendOneTransportPerRoute(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, nil)
	b := c.Backend()
	routes := []Route{
		{VerifySSL: true, Protocol: ProtocolAuto},
		{VerifySSL: false, Protocol: ProtocolAuto},
		{VerifySSL: true, Protocol: ProtocolHTTP1},
		{VerifySSL: true, Protocol: ProtocolHTTP2},
		{VerifySSL: true, Protocol: ProtocolHTTP2, Plain: true},
		{VerifySSL: true, Protocol: ProtocolAuto, Proxy: "http://127.0.0.1:9"},
		{VerifySSL: true, Protocol: ProtocolAuto, Proxy: "http://u:p@127.0.0.1:9"},
	}
	seen := map[any]Route{}
	for _, r := range routes {
		rt := b.RoundTripper(r)
		if rt == nil {
			t.Fatalf("no transport for %+v", r)
		}
		if again := b.RoundTripper(r); again != rt {
			t.Errorf("route %+v: a second call returned another transport", r)
		}
		if prev, dup := seen[rt]; dup {
			t.Errorf("routes %+v and %+v share a transport", prev, r)
		}
		seen[rt] = r
	}

	// Requests reuse the pooled transport of their route.
	mustOK(t, doReq(t, c, RequestConfig{URL: ts.TLSURL + "/x/json"}))
	mustOK(t, doReq(t, c, RequestConfig{URL: ts.TLSURL + "/x/json"}))
	mustOK(t, doReq(t, c, RequestConfig{URL: ts.HTTPURL + "/x/json"}))
	tb := c.backend
	tb.mu.Lock()
	n := len(tb.pool)
	tb.mu.Unlock()
	// The client's TLS route is routes[1]; its plain route is new.
	if want := len(routes) + 1; n != want {
		t.Errorf("%d pooled transports, want %d", n, want)
	}
	if b.RoundTripper(Route{VerifySSL: false, Protocol: ProtocolAuto, Plain: false}) == nil {
		t.Error("no transport for the client's TLS route")
	}
}

// TestBackendReusesConnections checks the pool keeps connections alive: a
// run of sequential requests (bodies read in full, as the engine does) goes
// over one connection, not one per request.
func TestBackendReusesConnections(t *testing.T) {
	t.Parallel()
	var conns, busy atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/busy" && busy.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(strings.Repeat("busy ", 1000)))
			return
		}
		w.Write([]byte(`{"ok":true}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c := newTestClient(t, func(c *ClientConfig) { c.MaxRetries = 3 })
	for range 5 {
		mustOK(t, doReq(t, c, RequestConfig{URL: srv.URL}))
	}
	// A retried status drains the old body, so its connection is reused too.
	res := doReq(t, c, RequestConfig{URL: srv.URL + "/busy"})
	mustOK(t, res)
	if res.Attempts != 3 {
		t.Errorf("attempts %d", res.Attempts)
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("8 sequential attempts opened %d connections, want 1", n)
	}
}

func TestBackendHTTP2ToHTTP1OnlyServerIsNotRetried(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.Backend = "http2"; c.MaxRetries = 3 })
	res := doReq(t, c, RequestConfig{URL: ts.TLSH1URL + "/x/proto"})
	e := wantKind(t, res, KindTLS)
	if res.Attempts != 1 || !strings.Contains(e.Message, "ALPN") {
		t.Errorf("attempts %d, message %q; want 1 attempt and an ALPN explanation", res.Attempts, e.Message)
	}
}

func TestCAFileTrustsPrivateCA(t *testing.T) {
	t.Parallel()
	c := newTestClient(t, func(c *ClientConfig) { c.VerifySSL = ptr(true); c.CAFile = ts.CAFile })
	res := doReq(t, c, RequestConfig{URL: ts.TLSURL + "/x/proto"})
	mustOK(t, res)
	if res.HTTPVersion != "HTTP/2.0" {
		t.Errorf("proto %q, want HTTP/2.0", res.HTTPVersion)
	}
	bad := filepath.Join(t.TempDir(), "none.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	for _, f := range []string{bad, filepath.Join(t.TempDir(), "missing.pem")} {
		cfg := testConfig()
		cfg.CAFile = f
		_, err := NewClient(cfg)
		var fe *Error
		if !errors.As(err, &fe) || fe.Kind != KindConfiguration || fe.Field != "ca_file" {
			t.Errorf("ca_file %s: err %v, want a configuration error on ca_file", f, err)
		}
	}
}
