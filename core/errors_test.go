package core

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

var allKinds = map[ErrorKind]*Error{
	KindValidation:       ErrValidation,
	KindConfiguration:    ErrConfiguration,
	KindTimeout:          ErrTimeout,
	KindConnect:          ErrConnect,
	KindTLS:              ErrTLS,
	KindProxy:            ErrProxy,
	KindTooManyRedirects: ErrTooManyRedirects,
	KindBodyTooLarge:     ErrBodyTooLarge,
	KindCancelled:        ErrCancelled,
	KindRetriesExhausted: ErrRetriesExhausted,
	KindTransport:        ErrTransport,
	KindHTTPStatus:       ErrHTTPStatus,
	KindIO:               ErrIO,
}

func TestErrorsIsSentinels(t *testing.T) {
	for kind := range allKinds {
		err := &Error{Kind: kind, Message: string(kind) + ": something", URL: "http://h/"}
		wrapped := fmt.Errorf("batch: %w", err)
		for other, sentinel := range allKinds {
			want := other == kind
			if got := errors.Is(err, sentinel); got != want {
				t.Errorf("errors.Is(%s error, Err%s) = %v", kind, other, got)
			}
			if got := errors.Is(wrapped, sentinel); got != want {
				t.Errorf("errors.Is(wrapped %s error, Err%s) = %v", kind, other, got)
			}
		}
		// Only message-less sentinels match by kind.
		if errors.Is(err, &Error{Kind: kind, Message: "other"}) {
			t.Errorf("%s: matched a non-sentinel target", kind)
		}
		var fe *Error
		if !errors.As(wrapped, &fe) || fe != err {
			t.Errorf("%s: errors.As did not find the *Error", kind)
		}
	}
	if (&Error{Kind: KindIO}).Error() != "io" {
		t.Error("Error() of an error without message is not its kind")
	}
}

func TestErrorsExhaustedSeesLastKind(t *testing.T) {
	last := &Error{Kind: KindTimeout, Message: "timeout: slow", cause: context.DeadlineExceeded}
	err := error(&Error{Kind: KindRetriesExhausted, Message: "retries exhausted: giving up after 3 attempt(s)", Attempts: 3, Last: last})
	if !errors.Is(err, ErrRetriesExhausted) {
		t.Error("not a retries_exhausted error")
	}
	if !errors.Is(err, ErrTimeout) {
		t.Error("errors.Is(exhausted, ErrTimeout) is false: callers cannot see why the retries failed")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Error("the last attempt's Go error is not reachable")
	}
	if errors.Is(err, ErrConnect) {
		t.Error("matched an unrelated kind")
	}
}

func TestErrorJSON(t *testing.T) {
	e := &Error{Kind: KindRetriesExhausted, Message: "m", URL: "http://h/", Attempts: 2,
		Last: &Error{Kind: KindHTTPStatus, Message: "503", Status: 503, RetryAfter: 1.5, Proxy: "http://p:1"}}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	want := map[string]any{
		"kind": "retries_exhausted", "message": "m", "url": "http://h/", "attempts": 2.0,
		"last_error": map[string]any{"kind": "http_status", "message": "503", "status": 503.0, "retry_after": 1.5, "proxy": "http://p:1"},
	}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("JSON %s", b)
	}
	b, _ = json.Marshal(&Error{Kind: KindValidation, Message: "x", Field: "url"})
	if string(b) != `{"kind":"validation","message":"x","field":"url"}` {
		t.Errorf("empty fields not omitted: %s", b)
	}
}

func TestClassify(t *testing.T) {
	live := context.Background()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithTimeout(context.Background(), -1)
	defer cancel2()
	given := &Error{Kind: KindIO, Message: "io: given"}
	// An attempt of a batch whose context is parent.
	attempt := func(parent context.Context, err error, why *attemptTimeout) *attemptCtx {
		a := &attemptCtx{parent: parent}
		if err != nil {
			a.cancel(err, why)
		}
		return a
	}
	liveA := attempt(live, nil, nil)
	tests := []struct {
		name    string
		err     error
		attempt *attemptCtx
		proxy   string
		kind    ErrorKind
	}{
		{"already classified", fmt.Errorf("wrapped: %w", given), liveA, "", KindIO},
		{"batch cancelled wins", io.ErrUnexpectedEOF, attempt(cancelled, context.Canceled, nil), "", KindCancelled},
		{"caller's deadline is a timeout", context.DeadlineExceeded, attempt(expired, context.DeadlineExceeded, nil), "", KindTimeout},
		{"attempt timeout", &url.Error{Op: "Get", URL: "http://h/", Err: context.DeadlineExceeded},
			attempt(live, context.DeadlineExceeded, &attemptTimeout{"timeout: the attempt took longer than 1s (timeout)"}), "", KindTimeout},
		{"net timeout", &net.OpError{Op: "read", Err: timeoutErr{}}, liveA, "", KindTimeout},
		{"body too large", bodyTooLargeError{10}, liveA, "", KindBodyTooLarge},
		{"redirect limit", &url.Error{Op: "Get", URL: "http://h/", Err: &redirectLimitError{3}}, liveA, "", KindTooManyRedirects},
		{"CONNECT refused", &proxyConnectError{"407 Proxy Authentication Required"}, liveA, "http://p:1", KindProxy},
		{"proxy unreachable", &net.OpError{Op: "proxyconnect", Net: "tcp", Err: errors.New("refused")}, liveA, "http://p:1", KindProxy},
		{"unknown CA", x509.UnknownAuthorityError{}, liveA, "", KindTLS},
		{"certificate verification", &tls.CertificateVerificationError{Err: errors.New("bad")}, liveA, "", KindTLS},
		{"wrong host", x509.HostnameError{Certificate: &x509.Certificate{}, Host: "h"}, liveA, "", KindTLS},
		{"not TLS", tls.RecordHeaderError{Msg: "first record does not look like a TLS handshake"}, liveA, "", KindTLS},
		{"TLS alert", tls.AlertError(40), liveA, "", KindTLS},
		{"dial refused", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, liveA, "", KindConnect},
		{"dial via SOCKS5 is the proxy's fault", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("refused")}, liveA, "socks5://p:1", KindProxy},
		{"connection reset", &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}, liveA, "", KindTransport},
		{"truncated", io.ErrUnexpectedEOF, liveA, "", KindTransport},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := classify(tt.err, tt.attempt, "http://h/", tt.proxy)
			if e.Kind != tt.kind {
				t.Fatalf("kind %s (%q), want %s", e.Kind, e.Message, tt.kind)
			}
			if tt.kind == KindProxy && e.Proxy == "" {
				t.Error("proxy error without its proxy")
			}
			if e != given && !strings.HasPrefix(e.Message, string(tt.kind)+": ") {
				t.Errorf("message %q does not start with the kind", e.Message)
			}
			if e != given && !errors.Is(e, tt.err) {
				t.Error("the Go error is not wrapped")
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestClassifyRedactsPasswords(t *testing.T) {
	raw := "http://user:UrlPassw0rd@h.example/p"
	proxy := "http://puser:ProxyPassw0rd@p.example:8080"
	err := &url.Error{Op: "Get", URL: raw, Err: &net.OpError{Op: "proxyconnect", Net: "tcp",
		Err: errors.New("failed for " + raw + " via " + proxy)}}
	e := classify(err, &attemptCtx{parent: context.Background()}, raw, proxy)
	blob, _ := json.Marshal(e)
	for _, secret := range []string{"UrlPassw0rd", "ProxyPassw0rd"} {
		if strings.Contains(e.Error(), secret) || strings.Contains(string(blob), secret) {
			t.Errorf("%s leaks into %s", secret, blob)
		}
	}
	if !strings.Contains(e.URL, "user:xxxxx@h.example") {
		t.Errorf("URL %q", e.URL)
	}
}

func TestRedactURL(t *testing.T) {
	tests := map[string]string{
		"":                             "",
		"http://h/p?q=1":               "http://h/p?q=1",
		"http://u:secret@h/p":          "http://u:xxxxx@h/p",
		"http://u@h/p":                 "http://u@h/p",
		"http://h/p?email=a@b.example": "http://h/p?email=a@b.example",
		"http://u:p@h:%zz/":            "<unparseable URL>",
		"u:secret@h/p":                 "u:xxxxx@h/p",
		"ftp:u:secret@h":               "ftp:xxxxx@h",
	}
	for in, want := range tests {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConnectErrorAgainstClosedPort(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c := newTestClient(t, func(c *ClientConfig) { c.MaxRetries = 1 })
	res := doReq(t, c, RequestConfig{URL: "http://" + addr + "/"})
	e := wantKind(t, res, KindRetriesExhausted)
	if e.Last == nil || e.Last.Kind != KindConnect || res.Attempts != 2 {
		t.Errorf("last %+v attempts %d; want a connect error, retried once", e.Last, res.Attempts)
	}
	if !errors.Is(res.Err(), ErrConnect) {
		t.Error("errors.Is(err, ErrConnect) false")
	}
}

// redactedURL answers as url.URL.Redacted, whether it takes the raw URL
// or prints the parsed one.
func TestRedactedURL(t *testing.T) {
	for _, raw := range []string{
		"http://a.test", "http://a.test/", "https://a.test:8443/x/y?q=1&r=2", "http://127.0.0.1:8080/json",
		"http://[::1]:80/x", "HTTP://a.test/x", "http://A.Test/x", "http://a.test:/x", "http://a.test/x?",
		"http://a.test/a%2Fb", "http://a.test/a%7eb", "http://a.test/a b", "http://a.test/é", "http://a.test/x#frag",
		"http://u:p@a.test/x", "http://u@a.test/x", "http://a.test/x?q=a%20b", "http://a.test/x?q=é",
		"http://a.test/%zz", "http://a.test//x", "http://a.test/./x", "http://a.test/x/../y", "http://xn--bcher-kva.test/",
		"http://a%2etest/", "http://a.test?x", "https://a.test/x;p=1", "http://a.test/x:y",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			continue
		}
		if got, want := redactedURL(u, raw), u.Redacted(); got != want {
			t.Errorf("redactedURL(%q) = %q, want %q", raw, got, want)
		}
		// A raw string that is not u's.
		if got, want := redactedURL(u, raw+"z"), u.Redacted(); got != want {
			t.Errorf("redactedURL(%q, other) = %q, want %q", raw, got, want)
		}
	}
}

func FuzzRedactedURL(f *testing.F) {
	for _, s := range []string{"http://a.test/x?q=1", "https://[::1]:8/a%2Fb?", "http://u:p@h/", "http://h/x#f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := url.Parse(raw)
		if err != nil {
			return
		}
		if got, want := redactedURL(u, raw), u.Redacted(); got != want {
			t.Errorf("redactedURL(%q) = %q, want %q", raw, got, want)
		}
	})
}
