package core

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// HTTP/3 runs over QUIC, on a UDP socket that a client's backend opens on
// first use and shares among all its QUIC connections. Two ways lead
// there: the backend "http3" (every request over HTTP/3, https only, no
// proxies), and ClientConfig.HTTP3 with the backend "auto", which moves
// an origin to HTTP/3 once it advertised it in an Alt-Svc header and
// falls back to TCP when QUIC fails (see altSvcTransport).
const (
	// h3AutoHandshake bounds the QUIC handshake of an Alt-Svc upgrade
	// (or connect_timeout when shorter): past it the request goes over
	// TCP instead, and the origin is marked broken.
	h3AutoHandshake = 3 * time.Second
	// h3BrokenFirst is how long an origin whose QUIC handshake failed
	// stays on TCP; each further failure doubles it, up to h3BrokenMax
	// (Chromium's schedule).
	h3BrokenFirst = 5 * time.Minute
	h3BrokenMax   = 48 * time.Hour
	// altSvcDefaultMaxAge is an Alt-Svc entry's lifetime without ma=
	// (RFC 7838, section 3.1).
	altSvcDefaultMaxAge = 24 * time.Hour
	// altSvcMaxEntries bounds the origins a client remembers.
	altSvcMaxEntries = 10_000
	// alertNoApplicationProtocol is the QUIC transport error of the TLS
	// alert no_application_protocol (0x100 + 120): the server speaks QUIC
	// but not h3.
	alertNoApplicationProtocol quic.TransportErrorCode = 0x100 + 120
)

// udpBufferWant is the socket buffer size quic-go asks for (its
// desiredBufferSize); a variable so that tests can pretend the kernel
// allows less.
var udpBufferWant = 7 << 20

// quicEndpoint is a backend's UDP socket and the quic.Transport on it.
type quicEndpoint struct {
	mu     sync.Mutex
	udp    *net.UDPConn
	tr     *quic.Transport
	closed bool
}

// quicTransport returns the backend's quic.Transport, opening its socket
// on first use.
//
// quic-go raises the socket's buffers to 7 MiB and, when the kernel
// allows less (net.core.rmem_max and wmem_max), prints a warning through
// the standard log package -- to stderr, which the engine never writes
// to. The backend raises them first itself: when that reaches the size,
// quic-go gets the socket as is (with its GSO, ECN and batched reads);
// when it does not, quic-go gets the socket behind a plain
// net.PacketConn, which it cannot inspect and so does not warn about,
// and which it reads and writes one datagram per system call. The
// backend logs that at debug level.
func (b *transportBackend) quicTransport() (*quic.Transport, error) {
	e := &b.quic
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, errClientClosed
	}
	if e.tr != nil {
		return e.tr, nil
	}
	udp, err := net.ListenUDP("udp", nil)
	if err != nil {
		return nil, err
	}
	var pc net.PacketConn = udp
	if rcv, snd, ok := raiseUDPBuffers(udp, udpBufferWant); !ok {
		pc = plainPacketConn{udp}
		b.log.Debug("http3: the UDP socket buffers are smaller than QUIC wants; reading and writing one datagram per system call (raise net.core.rmem_max and net.core.wmem_max to change that)",
			"receive_buffer", rcv, "send_buffer", snd, "wanted", udpBufferWant)
	}
	e.udp, e.tr = udp, &quic.Transport{Conn: pc}
	return e.tr, nil
}

// close closes the transport and its socket; later dials fail.
func (e *quicEndpoint) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	if e.tr != nil {
		_ = e.tr.Close()
		_ = e.udp.Close()
	}
}

// plainPacketConn is a UDP socket as a bare net.PacketConn (see
// quicTransport): no SyscallConn, so quic-go neither inspects its buffers
// nor uses the socket's system calls directly. Setting a buffer size is
// passed on (the kernel caps it without an error).
type plainPacketConn struct{ c *net.UDPConn }

func (p plainPacketConn) ReadFrom(b []byte) (int, net.Addr, error)  { return p.c.ReadFrom(b) }
func (p plainPacketConn) WriteTo(b []byte, a net.Addr) (int, error) { return p.c.WriteTo(b, a) }
func (p plainPacketConn) Close() error                              { return p.c.Close() }
func (p plainPacketConn) LocalAddr() net.Addr                       { return p.c.LocalAddr() }
func (p plainPacketConn) SetDeadline(t time.Time) error             { return p.c.SetDeadline(t) }
func (p plainPacketConn) SetReadDeadline(t time.Time) error         { return p.c.SetReadDeadline(t) }
func (p plainPacketConn) SetWriteDeadline(t time.Time) error        { return p.c.SetWriteDeadline(t) }
func (p plainPacketConn) SetReadBuffer(n int) error                 { _ = p.c.SetReadBuffer(n); return nil }
func (p plainPacketConn) SetWriteBuffer(n int) error                { _ = p.c.SetWriteBuffer(n); return nil }

// h3DialError is a QUIC connection that could not be made (no answer
// within the handshake's time, a refusal, a failed TLS handshake): the
// request was not sent, and an Alt-Svc upgrade falls back to TCP.
type h3DialError struct{ err error }

func (e *h3DialError) Error() string { return e.err.Error() }
func (e *h3DialError) Unwrap() error { return e.err }

// Timeout tells net.Error's users (url.Error, classify) about a
// handshake that timed out.
func (e *h3DialError) Timeout() bool {
	var ne net.Error
	return errors.As(e.err, &ne) && ne.Timeout()
}

// altAddrKey is the context value that sends an Alt-Svc upgrade's dial to
// the advertised port (see altSvcTransport.RoundTrip).
type altAddrKey struct{}

// dialQUIC returns the dial of an http3.Transport: it takes a connection
// token from the backend's budget (given back when the QUIC connection
// closes), resolves the host through the client's DNS cache and makes
// the QUIC handshake within handshake (0: no limit). The attempt's
// Timings get the lookup as DNS and the whole handshake -- transport and
// TLS, one round trip -- as Connect; TLS stays 0.
//
// http3.Transport shares one dial among the requests to a host and runs
// it under the first one's context without its cancellation: the
// handshake bound and Close end it.
func (b *transportBackend) dialQUIC(handshake time.Duration) func(context.Context, string, *tls.Config, *quic.Config) (*quic.Conn, error) {
	return func(ctx context.Context, addr string, tlsConf *tls.Config, qconf *quic.Config) (*quic.Conn, error) {
		if alt, ok := ctx.Value(altAddrKey{}).(string); ok {
			addr = alt
		}
		if handshake > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, handshake)
			defer cancel()
		}
		tr, err := b.quicTransport()
		if err != nil {
			return nil, &net.OpError{Op: "dial", Net: "udp", Err: err}
		}
		if err := b.reserve(ctx); err != nil {
			return nil, &net.OpError{Op: "dial", Net: "udp", Err: err}
		}
		start := time.Now()
		raddrs, lookup, err := b.resolveUDP(ctx, addr)
		if err != nil {
			<-b.conns.budget
			return nil, &net.OpError{Op: "dial", Net: "udp", Err: err}
		}
		conn, err := dialAddrsQUIC(ctx, tr, raddrs, tlsConf, qconf)
		if err != nil {
			<-b.conns.budget
			return nil, err
		}
		ready := time.Now()
		if t := traceOf(ctx); t != nil {
			t.dialed.Store(&timedConn{dns: lookup, connect: ready.Sub(start) - lookup, ready: ready})
		}
		b.conns.addQUIC(conn)
		return conn, nil
	}
}

// dialAddrsQUIC makes a QUIC handshake with the first of addrs that
// answers, tried in turn as the DNS cache dials TCP addresses
// (dialInTurn).
func dialAddrsQUIC(ctx context.Context, tr *quic.Transport, addrs []*net.UDPAddr, tlsConf *tls.Config, qconf *quic.Config) (*quic.Conn, error) {
	return dialInTurn(ctx, len(addrs), func(ctx context.Context, i int) (*quic.Conn, error) {
		conn, err := tr.Dial(ctx, addrs[i], tlsConf, qconf)
		if err == nil {
			return conn, nil
		}
		var hte *quic.HandshakeTimeoutError
		if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &hte) {
			err = &quic.HandshakeTimeoutError{}
		}
		return nil, &h3DialError{&net.OpError{Op: "dial", Net: "udp", Addr: addrs[i], Err: err}}
	})
}

// resolveUDP resolves addr (host:port) through the client's DNS cache
// into the addresses to try, in the resolver's order.
func (b *transportBackend) resolveUDP(ctx context.Context, addr string) ([]*net.UDPAddr, time.Duration, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, 0, err
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, 0, fmt.Errorf("invalid port %q", portText)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return []*net.UDPAddr{net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(port)))}, 0, nil
	}
	start := time.Now()
	var ips []netip.Addr
	if b.dns != nil {
		ips, err = b.dns.lookup(ctx, host)
	} else {
		ips, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}
	lookup := time.Since(start)
	if err != nil {
		return nil, lookup, err
	}
	if len(ips) == 0 {
		return nil, lookup, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	addrs := make([]*net.UDPAddr, len(ips))
	for i, ip := range ips {
		addrs[i] = net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip.Unmap(), uint16(port)))
	}
	return addrs, lookup, nil
}

// h3Transport is the http3.Transport of a route, with the engine's
// checks: https only.
type h3Transport struct{ t *http3.Transport }

func (b *transportBackend) newH3Transport(r Route, handshake time.Duration) *h3Transport {
	tc := b.tlsConfig(r)
	// QUIC keeps sessions of its own (with transport parameters); a TCP
	// session in the same cache would not fit it.
	tc.ClientSessionCache = tls.NewLRUClientSessionCache(tlsSessionCacheSize)
	qc := &quic.Config{KeepAlivePeriod: 15 * time.Second}
	if handshake > 0 {
		qc.HandshakeIdleTimeout = handshake
	}
	return &h3Transport{t: &http3.Transport{
		TLSClientConfig:    tc,
		QUICConfig:         qc,
		Dial:               b.dialQUIC(handshake),
		DisableCompression: true, // the engine decodes bodies itself
		Logger:             b.log,
	}}
}

// errHTTP3Scheme: HTTP/3 needs TLS.
func errHTTP3Scheme(u string) *Error {
	return &Error{Kind: KindValidation, Field: "url", URL: redactURL(u),
		Message: "the http3 backend needs an https URL (HTTP/3 runs over QUIC, always with TLS); use backend \"auto\" for http:// URLs"}
}

func (t *h3Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errHTTP3Scheme(req.URL.String())
	}
	return t.roundTrip(req)
}

// roundTrip is the http3.Transport's round trip, made once more on a new
// connection when the server had closed the connection the request went
// out on (as net/http does over TCP) and the request may be replayed.
// http3.Transport itself replays only requests that never got a stream.
func (t *h3Transport) roundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.t.RoundTrip(req)
	var closed *quic.ApplicationError
	if err == nil || req.Context().Err() != nil || !errors.As(err, &closed) || !closed.Remote || !replayable(req) {
		return resp, err
	}
	if req.Body != nil && req.Body != http.NoBody {
		body, gerr := req.GetBody()
		if gerr != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		req.Body = body
	}
	return t.t.RoundTrip(req)
}

// replayable reports whether req may be sent again after a connection
// broke under it: an idempotent method (or an Idempotency-Key), and a
// body that can be made afresh.
func replayable(req *http.Request) bool {
	if !idempotentMethod(req.Method) && req.Header.Get("Idempotency-Key") == "" && req.Header.Get("X-Idempotency-Key") == "" {
		return false
	}
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

func (t *h3Transport) CloseIdleConnections() { t.t.CloseIdleConnections() }

func (t *h3Transport) Close() error { return t.t.Close() }

// altSvcTransport is the transport of a direct https route of the auto
// backend when the client allows HTTP/3 (ClientConfig.HTTP3): a request
// to an origin that advertised h3 in an Alt-Svc header (and not marked
// broken) goes over HTTP/3 to the advertised port; any other goes over
// TCP, whose answer may advertise h3. When the QUIC connection cannot be
// made, the request goes over TCP at once and the origin stays on TCP
// for h3BrokenFirst, doubling with each further failure.
type altSvcTransport struct {
	tcp http.RoundTripper
	h3  *h3Transport
	alt *altSvcCache
	b   *transportBackend
}

func (t *altSvcTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		return t.tcp.RoundTrip(req)
	}
	origin := originKey(req.URL.Hostname(), originPort(req.URL))
	if port, ok := t.alt.lookup(origin, time.Now()); ok {
		body, getBody := req.Body, req.GetBody
		h3req := req.WithContext(withValue(req.Context(), altAddrKey{}, net.JoinHostPort(req.URL.Hostname(), port)))
		if body != nil {
			h3req.Body = io.NopCloser(body) // kept open for a fallback
		}
		resp, err := t.h3.roundTrip(h3req)
		if err == nil {
			t.alt.learn(origin, req.URL.Hostname(), resp.Header, time.Now())
			return resp, nil
		}
		var de *h3DialError
		if !errors.As(err, &de) || req.Context().Err() != nil {
			if body != nil {
				body.Close()
			}
			return nil, err
		}
		until := t.alt.markBroken(origin, time.Now())
		t.b.log.Info("http3: QUIC failed; the origin stays on TCP for a while", "origin", origin, "until", until.Format(time.RFC3339), "error", err.Error())
		if body != nil && body != http.NoBody && getBody != nil {
			// The dial failed before the request was written, but start
			// its body afresh anyway.
			body.Close()
			nb, gerr := getBody()
			if gerr != nil {
				return nil, gerr
			}
			req = req.Clone(req.Context())
			req.Body = nb
		}
	}
	resp, err := t.tcp.RoundTrip(req)
	if err == nil {
		t.alt.learn(origin, req.URL.Hostname(), resp.Header, time.Now())
	}
	return resp, err
}

func (t *altSvcTransport) CloseIdleConnections() {
	if c, ok := t.tcp.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
	t.h3.CloseIdleConnections()
}

func (t *altSvcTransport) Close() error { return t.h3.Close() }

// altSvcCache remembers, per origin (host and port of an https URL), the
// port where it offers HTTP/3 until its Alt-Svc max-age passes, and the
// origins whose QUIC handshake failed.
type altSvcCache struct {
	mu     sync.Mutex
	alts   map[string]altSvcEntry
	broken map[string]brokenEntry
}

type altSvcEntry struct {
	port    string
	expires time.Time
}

type brokenEntry struct {
	until   time.Time
	backoff time.Duration
}

func newAltSvcCache() *altSvcCache {
	return &altSvcCache{alts: map[string]altSvcEntry{}, broken: map[string]brokenEntry{}}
}

func originKey(host, port string) string { return net.JoinHostPort(strings.ToLower(host), port) }

// lookup returns the h3 port of origin when it advertised one that is
// still fresh and is not marked broken.
func (c *altSvcCache) lookup(origin string, now time.Time) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.alts[origin]
	if !ok {
		return "", false
	}
	if !now.Before(e.expires) {
		delete(c.alts, origin)
		return "", false
	}
	if br, ok := c.broken[origin]; ok && now.Before(br.until) {
		return "", false
	}
	return e.port, true
}

// markBroken keeps origin on TCP for a while and returns until when.
func (c *altSvcCache) markBroken(origin string, now time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	br := c.broken[origin]
	if br.backoff == 0 {
		br.backoff = h3BrokenFirst
	} else {
		br.backoff = min(2*br.backoff, h3BrokenMax)
	}
	br.until = now.Add(br.backoff)
	if len(c.broken) >= altSvcMaxEntries {
		for k, v := range c.broken {
			if !now.Before(v.until) || len(c.broken) >= altSvcMaxEntries {
				delete(c.broken, k)
			}
		}
	}
	c.broken[origin] = br
	return br.until
}

// learn notes what the Alt-Svc header of a response from origin says:
// an h3 alternative on the same host (the authority's host empty or
// origin's host) replaces the entry, "clear" removes it, and a response
// without the header leaves it as it is.
func (c *altSvcCache) learn(origin, host string, h http.Header, now time.Time) {
	values := h.Values("Alt-Svc")
	if len(values) == 0 {
		return
	}
	port, maxAge, clear, ok := parseAltSvc(values, host)
	if !ok && !clear {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if clear || maxAge <= 0 {
		delete(c.alts, origin)
		return
	}
	if _, known := c.alts[origin]; !known && len(c.alts) >= altSvcMaxEntries {
		for k, v := range c.alts {
			if !now.Before(v.expires) || len(c.alts) >= altSvcMaxEntries {
				delete(c.alts, k)
			}
		}
	}
	c.alts[origin] = altSvcEntry{port: port, expires: now.Add(maxAge)}
}

// parseAltSvc reads Alt-Svc field values (RFC 7838): the first "h3"
// alternative whose host is empty or host, with its ma= (seconds;
// altSvcDefaultMaxAge without it), or clear when the value is "clear".
// Alternatives on other hosts and other protocols (h3-29, h2) are
// skipped.
func parseAltSvc(values []string, host string) (port string, maxAge time.Duration, clear, ok bool) {
	for _, v := range values {
		for _, alt := range splitOutsideQuotes(v, ',') {
			alt = strings.TrimSpace(alt)
			if strings.EqualFold(alt, "clear") {
				return "", 0, true, false
			}
			params := splitOutsideQuotes(alt, ';')
			proto, authority, found := strings.Cut(strings.TrimSpace(params[0]), "=")
			if !found || strings.TrimSpace(proto) != "h3" {
				continue
			}
			authority = strings.Trim(strings.TrimSpace(authority), `"`)
			h, p, err := net.SplitHostPort(authority)
			if err != nil || (h != "" && !strings.EqualFold(h, host)) {
				continue
			}
			if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
				continue
			}
			maxAge = altSvcDefaultMaxAge
			for _, param := range params[1:] {
				k, val, _ := strings.Cut(strings.TrimSpace(param), "=")
				if strings.EqualFold(strings.TrimSpace(k), "ma") {
					secs, err := strconv.ParseUint(strings.Trim(strings.TrimSpace(val), `"`), 10, 63)
					if err != nil {
						continue
					}
					maxAge = seconds(float64(secs))
				}
			}
			return p, maxAge, false, true
		}
	}
	return "", 0, false, false
}

// splitOutsideQuotes splits s at sep where sep is not inside a quoted
// string.
func splitOutsideQuotes(s string, sep byte) []string {
	var parts []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && quoted:
			i++
		case s[i] == '"':
			quoted = !quoted
		case s[i] == sep && !quoted:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// addQUIC tracks a QUIC connection, which holds a budget token until it
// closes.
func (s *connSet) addQUIC(c *quic.Conn) {
	s.mu.Lock()
	closed := s.closed
	if !closed {
		if s.quics == nil {
			s.quics = make(map[*quic.Conn]struct{})
		}
		s.quics[c] = struct{}{}
	}
	s.mu.Unlock()
	if closed {
		_ = c.CloseWithError(0, "")
	}
	go func() {
		<-c.Context().Done()
		s.mu.Lock()
		delete(s.quics, c)
		s.mu.Unlock()
		<-s.budget
	}()
}

// checkProtocol refuses, when the batch is submitted, what the http3
// backend cannot do: an http:// URL (a validation error) and a
// request's own proxy (a configuration error).
func (c *Client) checkProtocol(p *prepared) error {
	if c.protocol != ProtocolHTTP3 {
		return nil
	}
	if p.plain {
		return errHTTP3Scheme(p.urlString)
	}
	if p.proxy != nil {
		return &Error{Kind: KindConfiguration, Field: "proxy", URL: redactURL(p.urlString),
			Message: "the http3 backend cannot use a proxy (HTTP/3 runs over UDP, which HTTP and SOCKS5 proxies do not carry); use backend \"auto\""}
	}
	return nil
}
