package core

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"golang.org/x/net/http2"
)

// Backend is a transport strategy: it hands out pooled round trippers for
// a route and reports what it supports. Every backend keeps one pooled
// transport per distinct route, shared by all requests of a client.
type Backend interface {
	// Name is the canonical backend name ("auto", "http1", "http2" or
	// "http3").
	Name() string
	// SupportsHTTP2 reports whether the backend may speak HTTP/2.
	SupportsHTTP2() bool
	// RoundTripper returns the pooled transport for a route.
	RoundTripper(r Route) http.RoundTripper
	// Close closes idle connections; in-flight requests are cancelled by
	// their contexts.
	Close()
}

// Route is what selects a pooled transport.
type Route struct {
	Proxy     string // proxy URL (with credentials), "" for none
	VerifySSL bool
	Protocol  Protocol
	Plain     bool // http:// target (h2c for ProtocolHTTP2; refused by ProtocolHTTP3)
}

// Protocol is the wire protocol a route asks for.
type Protocol uint8

const (
	ProtocolAuto  Protocol = iota // HTTP/2 when the server offers it by ALPN, else HTTP/1.1
	ProtocolHTTP1                 // HTTP/1.1 only
	ProtocolHTTP2                 // HTTP/2 only: h2 over TLS, h2c with prior knowledge for http://
	ProtocolHTTP3                 // HTTP/3 only, over QUIC: https, no proxy
)

// backendProtocols maps each backend name to its protocol. (The Python
// package maps the names of the original Python library to these.)
var backendProtocols = map[string]Protocol{
	"auto":  ProtocolAuto,
	"http1": ProtocolHTTP1,
	"http2": ProtocolHTTP2,
	"http3": ProtocolHTTP3,
}

// BackendNames lists every accepted backend name.
func BackendNames() []string {
	names := make([]string, 0, len(backendProtocols))
	for n := range backendProtocols {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func lookupBackend(name string) (Protocol, error) {
	p, ok := backendProtocols[strings.ToLower(name)]
	if !ok {
		return 0, configError("backend", "unknown backend %q; valid backends: %s", name, strings.Join(BackendNames(), ", "))
	}
	return p, nil
}

// transportBackend is the one Backend implementation; the protocol is the
// strategy's parameter.
type transportBackend struct {
	name     string
	protocol Protocol
	idle     int           // idle connections kept per host, sized to the concurrency
	connect  time.Duration // bound of each connection step (TCP, TLS); 0: none

	roots *x509.CertPool // nil: the system's

	sessions tls.ClientSessionCache // TLS sessions of the direct routes (sessionCache)
	profile  *profile               // the browser an impersonating client passes for; nil: none

	mu    sync.Mutex
	pool  map[Route]http.RoundTripper
	dial  *net.Dialer
	conns connSet // every connection dialled, so Close can close them all

	dns *dnsCache // resolves names for dial and times it (dns.go); nil: dial alone

	// altSvc, when the client allows HTTP/3 with the auto protocol
	// (ClientConfig.HTTP3), holds the origins that advertised h3 and the
	// direct https routes upgrade to it (http3.go); nil: no upgrade.
	altSvc *altSvcCache
	quic   quicEndpoint // the UDP socket of every QUIC connection, opened on first use
	log    *slog.Logger // never nil
}

var _ Backend = (*transportBackend)(nil)

func newBackend(name string, concurrency, maxConns int, connect time.Duration, roots *x509.CertPool) (*transportBackend, error) {
	proto, err := lookupBackend(name)
	if err != nil {
		return nil, err
	}
	return &transportBackend{
		name:     strings.ToLower(name),
		protocol: proto,
		idle:     concurrency,
		connect:  connect,
		roots:    roots,
		sessions: tls.NewLRUClientSessionCache(tlsSessionCacheSize),
		conns:    connSet{budget: make(chan struct{}, maxConns)},
		pool:     make(map[Route]http.RoundTripper),
		dial:     &net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second},
		log:      slog.New(slog.DiscardHandler),
	}, nil
}

func (b *transportBackend) Name() string { return b.name }
func (b *transportBackend) SupportsHTTP2() bool {
	return b.protocol != ProtocolHTTP1 && b.protocol != ProtocolHTTP3
}

func (b *transportBackend) RoundTripper(r Route) http.RoundTripper {
	b.mu.Lock()
	defer b.mu.Unlock()
	rt, ok := b.pool[r]
	if !ok {
		rt = b.transportFor(r)
		b.pool[r] = rt
	}
	return rt
}

// Close closes every connection the backend dialled. In-flight requests
// have been cancelled by then; closing only the idle ones would miss HTTP/2
// connections whose cancelled streams are still being torn down, and they
// (and their read loops) would outlive the client.
func (b *transportBackend) Close() {
	b.closeIdle()
	b.conns.closeAll()
	// HTTP/3 transports also end the handshakes still running (which no
	// request's cancellation reaches), then the UDP socket goes.
	for _, rt := range b.transports() {
		if c, ok := rt.(interface{ Close() error }); ok {
			_ = c.Close()
		}
	}
	b.quic.close()
}

// dialContext dials and tracks the connection, which holds a budget token
// until it is closed.
func (b *transportBackend) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	if err := b.reserve(ctx); err != nil {
		return nil, err
	}
	c, err := b.dialHost(ctx, network, addr)
	if err != nil {
		<-b.conns.budget
		return nil, err
	}
	return b.conns.add(c), nil
}

// reserve takes a connection token. When none is free it closes the idle
// connections of every transport -- the tokens that requests in flight
// do not hold are then held by idle connections or by dials whose
// connection will be idle -- and waits, closing idle connections again
// now and then as dials and requests finish.
func (b *transportBackend) reserve(ctx context.Context) error {
	select {
	case b.conns.budget <- struct{}{}:
		return nil
	default:
	}
	wait := time.Millisecond
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		b.closeIdle()
		t.Reset(wait)
		select {
		case b.conns.budget <- struct{}{}:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// transports is a snapshot of every route's transport.
func (b *transportBackend) transports() []http.RoundTripper {
	b.mu.Lock()
	defer b.mu.Unlock()
	rts := make([]http.RoundTripper, 0, len(b.pool))
	for _, rt := range b.pool {
		rts = append(rts, rt)
	}
	return rts
}

// closeIdle closes the idle connections of every transport.
func (b *transportBackend) closeIdle() {
	for _, rt := range b.transports() {
		if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
			c.CloseIdleConnections()
		}
	}
}

// dialTLSContext is dialContext plus the TLS handshake, for x/net/http2's
// own transport (which would otherwise dial untracked).
func (b *transportBackend) dialTLSContext(ctx context.Context, network, addr string, cfg *tls.Config) (net.Conn, error) {
	raw, err := b.dialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(raw, cfg)
	if b.connect > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.connect)
		defer cancel()
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	return tc, nil
}

func (b *transportBackend) tlsConfig(r Route) *tls.Config {
	return &tls.Config{RootCAs: b.roots, InsecureSkipVerify: !r.VerifySSL, ClientSessionCache: b.sessionCache(r)} //nolint:gosec // the caller asked for verify_ssl=false
}

func (b *transportBackend) newTransport(r Route) http.RoundTripper {
	if r.Protocol == ProtocolHTTP3 {
		return b.newH3Transport(r, b.connect)
	}
	if r.Protocol == ProtocolAuto && b.altSvc != nil && r.Proxy == "" && !r.Plain {
		handshake := h3AutoHandshake
		if b.connect > 0 {
			handshake = min(handshake, b.connect)
		}
		return &altSvcTransport{tcp: b.newTCPTransport(r), h3: b.newH3Transport(r, handshake), alt: b.altSvc, b: b}
	}
	return b.newTCPTransport(r)
}

// newTCPTransport is the transport of a route over TCP.
func (b *transportBackend) newTCPTransport(r Route) http.RoundTripper {
	// HTTP/2 without a proxy goes through x/net/http2 directly: h2c with
	// prior knowledge for http://, h2 over TLS (ALPN) for https://.
	if r.Protocol == ProtocolHTTP2 && r.Proxy == "" {
		t := &http2.Transport{
			TLSClientConfig:    b.tlsConfig(r),
			DisableCompression: true,
			ReadIdleTimeout:    30 * time.Second,
			DialTLSContext:     b.dialTLSContext,
		}
		if r.Plain {
			t.AllowHTTP = true
			t.DialTLSContext = func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				return b.dialContext(ctx, network, addr)
			}
		}
		return t
	}
	if r.Plain && r.Proxy == "" {
		// http:// without a proxy: HTTP/1.1 (h2c needs ProtocolHTTP2).
		return newH1Transport(b.newHTTPTransport(r), b.dialContext, b.idle)
	}
	return b.newHTTPTransport(r)
}

// newHTTPTransport is the route's http.Transport.
func (b *transportBackend) newHTTPTransport(r Route) *http.Transport {
	t := &http.Transport{
		DialContext:           b.dialContext,
		TLSClientConfig:       b.tlsConfig(r),
		TLSHandshakeTimeout:   b.connect,
		MaxIdleConns:          0, // no global cap; per host below
		MaxIdleConnsPerHost:   b.idle,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true, // we decode gzip/deflate ourselves
	}
	if r.Proxy != "" {
		pu, _ := url.Parse(r.Proxy) // validated by ParseProxy
		t.Proxy = http.ProxyURL(pu)
		t.OnProxyConnectResponse = func(_ context.Context, _ *url.URL, _ *http.Request, resp *http.Response) error {
			if resp.StatusCode != http.StatusOK {
				return &proxyConnectError{status: resp.Status}
			}
			return nil
		}
	}
	if r.Protocol == ProtocolHTTP1 {
		// A non-nil empty map disables the bundled HTTP/2.
		t.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	} else {
		// Auto (and HTTP/2 through a proxy): negotiate h2 by ALPN, with
		// x/net/http2's transport behind it.
		t.ForceAttemptHTTP2 = true
		if h2, err := http2.ConfigureTransports(t); err == nil {
			h2.ReadIdleTimeout = 30 * time.Second
		}
	}
	return t
}

// proxyConnectError is a CONNECT refused by the proxy (407, 403, 502...).
type proxyConnectError struct{ status string }

func (e *proxyConnectError) Error() string { return "proxy refused CONNECT: " + e.status }

// redirectLimitError stops a redirect chain.
type redirectLimitError struct{ limit int }

func (e *redirectLimitError) Error() string {
	return "stopped after " + strconv.Itoa(e.limit) + " redirects"
}

// loadRoots returns the system's roots plus the certificates of caFile, or
// nil (the system's) when caFile is "".
func loadRoots(caFile string) (*x509.CertPool, error) {
	if caFile == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, configError("ca_file", "cannot read ca_file: %v", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, configError("ca_file", "ca_file %q holds no PEM certificate", caFile)
	}
	return pool, nil
}

// connSet tracks open connections; a tracked connection leaves the set when
// it is closed.
type connSet struct {
	// budget holds a token per open connection, MaxConnections of them:
	// the client's sockets stay bounded whatever the number of hosts
	// (net/http bounds idle connections per host only).
	budget chan struct{}

	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	quics  map[*quic.Conn]struct{} // QUIC connections (http3.go)
	closed bool
}

// trackedConn holds a token of its set's budget until it is closed.
type trackedConn struct {
	net.Conn
	set  *connSet
	once sync.Once
}

// Close closes the connection, then gives its token back (after, so that
// a dial waiting for the token never adds a socket before this one goes).
func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.set.mu.Lock()
		delete(c.set.conns, c)
		c.set.mu.Unlock()
		<-c.set.budget
	})
	return err
}

func (s *connSet) add(c net.Conn) net.Conn {
	tc := &trackedConn{Conn: c, set: s}
	s.mu.Lock()
	closed := s.closed
	if !closed {
		if s.conns == nil {
			s.conns = make(map[*trackedConn]struct{})
		}
		s.conns[tc] = struct{}{}
	}
	s.mu.Unlock()
	if closed { // dialled after Close: nothing may use it
		tc.Close()
	}
	return tc
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	s.closed = true
	conns := make([]*trackedConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	quics := make([]*quic.Conn, 0, len(s.quics))
	for c := range s.quics {
		quics = append(quics, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
	for _, c := range quics {
		_ = c.CloseWithError(0, "")
	}
}
