package core

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	utls "github.com/bogdanfinn/utls"
	"golang.org/x/net/http2"
	"golang.org/x/net/proxy"
)

// impersonateRandom is the target that picks one of the others per client.
const impersonateRandom = "random"

// ImpersonateTargets lists the values of ClientConfig.Impersonate: the
// browsers a client can pass for, then "random".
func ImpersonateTargets() []string {
	names := make([]string, 0, len(profiles)+1)
	for _, p := range profiles {
		names = append(names, p.name)
	}
	return append(names, impersonateRandom)
}

func findProfile(name string) *profile {
	for _, p := range profiles {
		if p.name == name {
			return p
		}
	}
	return nil
}

// normalizeImpersonate lower-cases a target name, resolves an alias
// ("chrome": the newest Chrome target) and checks it.
func normalizeImpersonate(name *string) error {
	if *name == "" {
		return nil
	}
	n := strings.ToLower(strings.TrimSpace(*name))
	if target, ok := impersonateAliases[n]; ok {
		n = target
	}
	if n != impersonateRandom && findProfile(n) == nil {
		return configError("impersonate", "unknown impersonate target %q; known targets: %s (or chrome, safari, firefox: the newest of each)",
			*name, strings.Join(ImpersonateTargets(), ", "))
	}
	*name = n
	return nil
}

// pickProfile is the profile of a checked target name: nil for "", one
// of the targets at random for "random".
func pickProfile(name string) *profile {
	if name == impersonateRandom {
		return profiles[rand.IntN(len(profiles))]
	}
	return findProfile(name)
}

// Impersonating returns the browser target the client passes for (the
// one picked when the setting was "random"), or "" when it does not.
func (c *Client) Impersonating() string {
	if p := c.backend.profile; p != nil {
		return p.name
	}
	return ""
}

// transportFor builds the pooled transport of a route: the ordinary one,
// or for an impersonating client one that sends the profile's
// ClientHello. The latter takes http:// routes too: their requests go to
// the route's ordinary transport, and a redirect to https out of them
// still impersonates.
func (b *transportBackend) transportFor(r Route) http.RoundTripper {
	if b.profile == nil {
		return b.newTransport(r)
	}
	return b.newImpersonatingTransport(r)
}

// Protocols as ALPN names them.
const (
	alpnH2    = "h2"
	alpnHTTP1 = "http/1.1"
)

// errALPNChanged is a dial that found the server picking the other
// protocol than the one it picked before: the connection is kept for the
// other transport and the request is sent there (it was not sent).
var errALPNChanged = errors.New("the server changed its ALPN protocol")

// spareMaxAge is how long a handshaken connection waits for the
// transport of its protocol; a server may close a connection that sends
// nothing.
const spareMaxAge = 5 * time.Second

// impersonatingTransport is the round tripper of a route of an
// impersonating client. An https request goes over a utls connection
// that sends the profile's ClientHello, directly or through the route's
// proxy (an HTTP CONNECT or SOCKS5 tunnel dialled here, TLS on top). A
// server that picks h2 by ALPN is spoken to by an x/net/http2 transport
// with the profile's settings; one that picks http/1.1 (or nothing) by a
// net/http transport; both dial through this type. With the auto
// protocol, the first handshake with a server finds out which one it
// picks: the connection goes to that protocol's transport for the
// request, and the answer is kept for the server's later requests. An
// http:// request has no TLS to imitate and takes the route's ordinary
// transport.
type impersonatingTransport struct {
	b     *transportBackend
	prof  *profile
	route Route
	proxy *url.URL // nil: direct
	// mode is ProtocolHTTP1 (ALPN offers http/1.1 alone), ProtocolHTTP2
	// (h2 required) or ProtocolAuto.
	mode  Protocol
	h1    *http.Transport
	h2    *http2.Transport
	plain http.RoundTripper

	mu     sync.Mutex
	alpn   map[string]*alpnChoice // by host:port
	spares map[spareKey][]spareConn
}

// alpnChoice is the protocol a server picked, or the handshake finding
// out (done is open until it ends).
type alpnChoice struct {
	done  chan struct{}
	proto string
	err   error // the handshake failed (the choice is then dropped)
	// abandoned: it failed because its own request's context ended, which
	// says nothing about the server; the waiters try again.
	abandoned bool
}

type spareKey struct{ proto, addr string }

type spareConn struct {
	net.Conn
	at time.Time
}

func (b *transportBackend) newImpersonatingTransport(r Route) http.RoundTripper {
	t := &impersonatingTransport{
		b: b, prof: b.profile, route: r, mode: r.Protocol,
		plain:  b.newTransport(r),
		alpn:   make(map[string]*alpnChoice),
		spares: make(map[spareKey][]spareConn),
	}
	if r.Proxy != "" {
		t.proxy, _ = url.Parse(r.Proxy) // validated by ParseProxy
		if t.mode == ProtocolHTTP2 {
			t.mode = ProtocolAuto // as the ordinary transport: h2 through a proxy when offered
		}
	}
	t.h1 = &http.Transport{
		DialContext: b.dialContext,
		DialTLSContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return t.dial(ctx, alpnHTTP1, addr)
		},
		MaxIdleConns:          0,
		MaxIdleConnsPerHost:   b.idle,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		TLSNextProto:          map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
	t.h2 = newH2Transport(t.prof.h2)
	t.h2.DialTLSContext = func(ctx context.Context, _, addr string, _ *tls.Config) (net.Conn, error) {
		c, err := t.dial(ctx, alpnH2, addr)
		if err != nil {
			return nil, err
		}
		return newH2Wire(c, t.prof), nil
	}
	return t
}

// newH2Transport is an x/net/http2 transport that acts on the values
// of the profile's SETTINGS (h2Wire sends the frame itself) and sends its
// WINDOW_UPDATE. The receive windows (INITIAL_WINDOW_SIZE and the first
// WINDOW_UPDATE) are set only through the net/http Transport an
// x/net/http2 transport is configured for: one is made for that alone,
// and the pool that ConfigureTransports installs (fed by that
// Transport's connections) is replaced by the dialling default, so that
// the transport dials through DialTLSContext itself.
func newH2Transport(s *h2Profile) *http2.Transport {
	t1 := &http.Transport{
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		HTTP2: &http.HTTP2Config{
			MaxReceiveBufferPerConnection: int(s.connWindowUpdate),
			MaxReceiveBufferPerStream:     int(s.setting(http2.SettingInitialWindowSize, 65535)),
		},
	}
	t2, err := http2.ConfigureTransports(t1)
	if err != nil { // only on a Transport already configured for h2: not this one
		t2 = &http2.Transport{}
	}
	t2.ConnPool = nil
	t2.DisableCompression = true
	t2.ReadIdleTimeout = 30 * time.Second
	t2.MaxDecoderHeaderTableSize = s.setting(http2.SettingHeaderTableSize, 4096)
	t2.MaxEncoderHeaderTableSize = xnetHeaderTable
	t2.MaxReadFrameSize = s.setting(http2.SettingMaxFrameSize, 16384)
	t2.MaxHeaderListSize = s.setting(http2.SettingMaxHeaderListSize, 0)
	return t2
}

func (t *impersonatingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		return t.plain.RoundTrip(req)
	}
	addr := tlsAddr(req.URL.Host)
	for retried := false; ; retried = true {
		rt := http.RoundTripper(t.h1)
		switch t.mode {
		case ProtocolHTTP2:
			rt = t.h2
		case ProtocolAuto:
			proto, err := t.protocol(req.Context(), addr)
			if err != nil {
				if req.Body != nil {
					req.Body.Close()
				}
				return nil, err
			}
			if proto == alpnH2 {
				rt = t.h2
			}
		}
		resp, err := rt.RoundTrip(req)
		if err == nil || retried || !errors.Is(err, errALPNChanged) {
			return resp, err
		}
		// The request was not sent: send it again on the other protocol.
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, err
			}
			body, berr := req.GetBody()
			if berr != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
	}
}

// CloseIdleConnections closes the idle connections of the three
// transports and the handshaken connections no transport took.
func (t *impersonatingTransport) CloseIdleConnections() {
	t.h1.CloseIdleConnections()
	t.h2.CloseIdleConnections()
	if c, ok := t.plain.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
	t.mu.Lock()
	spares := t.spares
	t.spares = make(map[spareKey][]spareConn)
	t.mu.Unlock()
	for _, list := range spares {
		for _, c := range list {
			c.Close()
		}
	}
}

// protocol returns the protocol the server at addr picks: the one it
// picked before, else what a handshake finds, whose connection is then
// kept for that protocol's transport. Concurrent first requests to a
// server wait for one handshake.
func (t *impersonatingTransport) protocol(ctx context.Context, addr string) (string, error) {
	for {
		t.mu.Lock()
		ch := t.alpn[addr]
		if ch == nil {
			ch = &alpnChoice{done: make(chan struct{})}
			t.setALPNLocked(addr, ch)
			t.mu.Unlock()
			conn, proto, err := t.handshake(ctx, addr)
			t.mu.Lock()
			if err != nil {
				delete(t.alpn, addr)
				ch.err, ch.abandoned = err, ctx.Err() != nil
			} else {
				ch.proto = proto
				t.putSpareLocked(proto, addr, conn)
			}
			close(ch.done)
			t.mu.Unlock()
			return proto, err
		}
		t.mu.Unlock()
		select {
		case <-ch.done:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		if ch.err == nil {
			return ch.proto, nil
		}
		if !ch.abandoned {
			return "", ch.err
		}
	}
}

// dial is the DialTLSContext of the transport of protocol want: a
// handshaken connection left by protocol, else a new one. A new one on
// which the server picks the other protocol fails the dial with
// errALPNChanged (and goes to the other transport), or with the http2
// backend, as x/net/http2 fails it.
func (t *impersonatingTransport) dial(ctx context.Context, want, addr string) (net.Conn, error) {
	addr = tlsAddr(addr)
	if c := t.takeSpare(want, addr); c != nil {
		return c, nil
	}
	conn, got, err := t.handshake(ctx, addr)
	if err != nil {
		return nil, err
	}
	if got == want {
		return conn, nil
	}
	if t.mode == ProtocolHTTP2 {
		conn.Close()
		return nil, fmt.Errorf("tls: unexpected ALPN protocol %q; want %q", got, want)
	}
	t.mu.Lock()
	done := make(chan struct{})
	close(done)
	t.setALPNLocked(addr, &alpnChoice{done: done, proto: got})
	t.putSpareLocked(got, addr, conn)
	t.mu.Unlock()
	return nil, errALPNChanged
}

// alpnMaxEntries bounds the servers whose protocol a transport
// remembers; past it, one it learnt is forgotten (and learnt again by its
// next request's handshake).
const alpnMaxEntries = 10_000

// setALPNLocked records ch for addr; the caller holds t.mu.
func (t *impersonatingTransport) setALPNLocked(addr string, ch *alpnChoice) {
	if len(t.alpn) >= alpnMaxEntries {
		for k, old := range t.alpn {
			if old.proto != "" { // learnt: a handshake in progress stays
				delete(t.alpn, k)
				break
			}
		}
	}
	t.alpn[addr] = ch
}

func (t *impersonatingTransport) putSpareLocked(proto, addr string, c net.Conn) {
	k := spareKey{proto, addr}
	t.spares[k] = append(t.spares[k], spareConn{Conn: c, at: time.Now()})
}

// takeSpare returns a handshaken connection of protocol proto to addr
// that is not too old, or nil.
func (t *impersonatingTransport) takeSpare(proto, addr string) net.Conn {
	k := spareKey{proto, addr}
	var stale []spareConn
	defer func() {
		for _, c := range stale {
			c.Close()
		}
	}()
	t.mu.Lock()
	defer t.mu.Unlock()
	for list := t.spares[k]; len(list) > 0; list = t.spares[k] {
		c := list[len(list)-1]
		if len(list) == 1 {
			delete(t.spares, k)
		} else {
			t.spares[k] = list[:len(list)-1]
		}
		if time.Since(c.at) < spareMaxAge {
			return c.Conn
		}
		stale = append(stale, c)
	}
	return nil
}

// handshake connects to addr (host:port), directly or through the
// route's proxy, and runs the TLS handshake with the profile's
// ClientHello. It returns the connection and the protocol the server
// picked by ALPN (http/1.1 when it picked none).
func (t *impersonatingTransport) handshake(ctx context.Context, addr string) (net.Conn, string, error) {
	var raw net.Conn
	var err error
	if t.proxy == nil {
		raw, err = t.b.dialContext(ctx, "tcp", addr)
	} else {
		raw, err = t.tunnel(ctx, addr)
	}
	if err != nil {
		return nil, "", err
	}
	host, _, _ := net.SplitHostPort(addr)
	cfg := &utls.Config{
		ServerName:         host, // no SNI is sent for an IP address; the certificate is still checked for it
		RootCAs:            t.b.roots,
		InsecureSkipVerify: !t.route.VerifySSL, //nolint:gosec // the caller asked for verify_ssl=false
	}
	// ALPN: the browser's list, or http/1.1 alone when HTTP/2 is off.
	uc := utls.UClient(raw, cfg, t.prof.hello, false, t.mode == ProtocolHTTP1, true)
	hctx, cancel := t.step(ctx)
	defer cancel()
	if err := uc.HandshakeContext(hctx); err != nil {
		raw.Close()
		if ctx.Err() == nil && hctx.Err() != nil {
			return nil, "", fmt.Errorf("tls: the TLS handshake took longer than connect_timeout (%v): %w", t.b.connect, hctx.Err())
		}
		return nil, "", tlsError(err)
	}
	proto := uc.ConnectionState().NegotiatedProtocol
	if proto == "" {
		proto = alpnHTTP1
	}
	return uc, proto, nil
}

// step bounds one step of making a connection by connect_timeout.
func (t *impersonatingTransport) step(ctx context.Context) (context.Context, context.CancelFunc) {
	if t.b.connect > 0 {
		return context.WithTimeout(ctx, t.b.connect)
	}
	return context.WithCancel(ctx)
}

// tlsError gives utls's handshake errors the crypto/tls types that
// classify knows.
func tlsError(err error) error {
	var (
		certErr *utls.CertificateVerificationError
		alert   utls.AlertError
		rec     utls.RecordHeaderError
	)
	switch {
	case errors.As(err, &certErr):
		return &tls.CertificateVerificationError{UnverifiedCertificates: certErr.UnverifiedCertificates, Err: certErr.Err}
	case errors.As(err, &alert):
		return tls.AlertError(alert)
	case errors.As(err, &rec):
		return tls.RecordHeaderError{Msg: rec.Msg, RecordHeader: rec.RecordHeader, Conn: rec.Conn}
	}
	return err
}

// tunnel connects to addr through the route's proxy: a SOCKS5 proxy, or
// an HTTP CONNECT to an http:// proxy (or, over TLS, an https:// one).
// Failures are KindProxy (a refused CONNECT is a proxyConnectError,
// others are "proxyconnect" or SOCKS "socks connect" errors, as net/http
// reports them).
func (t *impersonatingTransport) tunnel(ctx context.Context, addr string) (net.Conn, error) {
	p := t.proxy
	raw, err := t.b.dialContext(ctx, "tcp", p.Host)
	if err != nil {
		return nil, &net.OpError{Op: "proxyconnect", Net: "tcp", Err: err}
	}
	sctx, cancel := t.step(ctx)
	defer cancel()
	if p.Scheme == "socks5" || p.Scheme == "socks5h" {
		var auth *proxy.Auth
		if p.User != nil {
			pass, _ := p.User.Password()
			auth = &proxy.Auth{User: p.User.Username(), Password: pass}
		}
		d, _ := proxy.SOCKS5("tcp", p.Host, auth, dialed{raw}) // never fails
		conn, err := d.(proxy.ContextDialer).DialContext(sctx, "tcp", addr)
		if err != nil {
			raw.Close()
			return nil, err
		}
		return conn, nil
	}
	conn := raw
	if p.Scheme == "https" {
		tc := tls.Client(raw, &tls.Config{ServerName: p.Hostname(), RootCAs: t.b.roots, InsecureSkipVerify: !t.route.VerifySSL}) //nolint:gosec // verify_ssl=false
		if err := tc.HandshakeContext(sctx); err != nil {
			raw.Close()
			return nil, &net.OpError{Op: "proxyconnect", Net: "tcp", Err: err}
		}
		conn = tc
	}
	if err := connect(sctx, conn, p, addr); err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var refused *proxyConnectError
		if errors.As(err, &refused) {
			return nil, err
		}
		return nil, &net.OpError{Op: "proxyconnect", Net: "tcp", Err: err}
	}
	return conn, nil
}

// connect asks an HTTP proxy on conn for a tunnel to addr.
func connect(ctx context.Context, conn net.Conn, p *url.URL, addr string) error {
	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: addr},
		Host:   addr,
		Header: make(http.Header),
	}
	if u := p.User; u != nil {
		pass, _ := u.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pass)))
	}
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := req.Write(conn); err != nil {
		return err
	}
	// The proxy sends nothing past its response before the TLS server,
	// which speaks only when spoken to, so a buffered reader loses nothing.
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &proxyConnectError{status: resp.Status}
	}
	if br.Buffered() > 0 {
		return errors.New("the proxy sent data after its CONNECT response")
	}
	if !stop() {
		return ctx.Err()
	}
	return conn.SetDeadline(time.Time{})
}

// dialed is a proxy.ContextDialer that hands out a connection already
// made (to the SOCKS5 proxy), so that connecting and the SOCKS
// handshake are bounded separately.
type dialed struct{ c net.Conn }

func (d dialed) Dial(string, string) (net.Conn, error) { return d.c, nil }
func (d dialed) DialContext(context.Context, string, string) (net.Conn, error) {
	return d.c, nil
}

// tlsAddr is the host:port of an https authority, the key under which
// the transports dial: the port 443 when there is none, an
// internationalized host in its ASCII form (as net/http dials it).
func tlsAddr(authority string) string {
	host, port, err := net.SplitHostPort(authority)
	if err != nil {
		host, port = authority, ""
	}
	if port == "" {
		port = "443"
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	return net.JoinHostPort(asciiHost(host), port)
}
