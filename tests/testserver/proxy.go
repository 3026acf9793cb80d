package testserver

import (
	"bufio"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/elazarl/goproxy"
)

// httpProxy is a forward proxy: absolute-URI requests are forwarded by
// goproxy's transport and CONNECT requests become raw TCP tunnels (never
// MITM, so clients see the real servers' certificate).
type httpProxy struct {
	gp         *goproxy.ProxyHttpServer
	tr         *http.Transport
	user, pass string

	requests     atomic.Int64
	authFailures atomic.Int64
}

func newHTTPProxy(user, pass string, pool *x509.CertPool, t *connTracker) *httpProxy {
	tr := &http.Transport{
		Proxy:               nil, // never chain to a proxy from the environment
		DialContext:         t.dial,
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		DisableCompression:  true, // pass Content-Encoding through untouched
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	}
	gp := goproxy.NewProxyHttpServer()
	gp.Logger = log.New(io.Discard, "", 0)
	gp.Tr = tr
	gp.KeepAcceptEncoding = true
	gp.ConnectDial = func(network, addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return t.dial(ctx, network, addr)
	}
	return &httpProxy{gp: gp, tr: tr, user: user, pass: pass}
}

// ServeHTTP checks Basic proxy credentials (when configured) before handing
// the request to goproxy, so a missing or wrong Proxy-Authorization gets a
// proper 407 for both plain requests and CONNECT.
func (p *httpProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.user != "" && !p.authorized(r) {
		p.authFailures.Add(1)
		w.Header().Set("Proxy-Authenticate", `Basic realm="fastreq-testserver"`)
		http.Error(w, "proxy authentication required", http.StatusProxyAuthRequired)
		return
	}
	if r.Method == http.MethodConnect {
		p.requests.Add(1)
		p.gp.ServeHTTP(w, r)
		return
	}
	if r.URL.IsAbs() {
		p.requests.Add(1)
	}
	// goproxy only flushes for bodies it knows are streamed; flushing every
	// write keeps slow streams flowing through the proxy chunk by chunk.
	p.gp.ServeHTTP(flushWriter{w}, r)
}

func (p *httpProxy) authorized(r *http.Request) bool {
	// Reuse the Authorization parser on the proxy header.
	hr := http.Request{Header: http.Header{"Authorization": r.Header.Values("Proxy-Authorization")}}
	user, pass, ok := hr.BasicAuth()
	if !ok {
		return false
	}
	u := subtle.ConstantTimeCompare([]byte(user), []byte(p.user))
	s := subtle.ConstantTimeCompare([]byte(pass), []byte(p.pass))
	return u&s == 1
}

func (p *httpProxy) close() { p.tr.CloseIdleConnections() }

type flushWriter struct{ http.ResponseWriter }

func (f flushWriter) Write(b []byte) (int, error) {
	n, err := f.ResponseWriter.Write(b)
	if err == nil {
		err = http.NewResponseController(f.ResponseWriter).Flush()
	}
	return n, err
}

func (f flushWriter) Flush() { _ = http.NewResponseController(f.ResponseWriter).Flush() }

func (f flushWriter) Unwrap() http.ResponseWriter { return f.ResponseWriter }

// Hijack keeps goproxy's websocket passthrough working behind the wrapper.
func (f flushWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(f.ResponseWriter).Hijack()
}
