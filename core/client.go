package core

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Version is the engine's version.
const Version = "0.1.0"

// errClientClosed is the cancel cause of work cut short by Client.Close.
var errClientClosed = errors.New("client closed")

// Client runs requests with the policies of its ClientConfig. Its rate
// limit, concurrency gate, connection pools, proxy pool and cookie session
// are shared by all its calls. A Client is safe for concurrent use.
type Client struct {
	cfg      ClientConfig
	backend  *transportBackend
	protocol Protocol
	limiter  *limiter
	hosts    *hostGates // nil: no per-host limits
	breaker  *breaker
	retry    RetryPolicy
	jar      *sessionJar
	proxies  *ProxyPool // nil: no pool
	agents   *userAgents
	headers  http.Header
	host     string // the Host header of cfg.Headers, "" for the URL's
	// plainHeaders are the complete headers of a request that adds none
	// of its own (no headers, cookies or body type): one per entry of
	// agents when the User-Agent rotates, else one. Shared by those
	// requests and never written: a request that would be changed gets
	// its own copy first (see newRequest). nil: every request builds its
	// own.
	plainHeaders []http.Header
	log          *slog.Logger
	// CheckRedirect functions, built once: following up to MaxRedirects,
	// and not following.
	follow, noFollow func(*http.Request, []*http.Request) error

	ctx     context.Context
	cancel  context.CancelCauseFunc
	runners *runners // the goroutines requests run on

	mu      sync.Mutex
	closed  bool
	batches sync.WaitGroup
}

// NewClient checks cfg and builds a client. Invalid settings give an
// *Error of KindValidation or KindConfiguration naming the field.
func NewClient(cfg ClientConfig) (*Client, error) {
	if err := cfg.normalize(); err != nil {
		return nil, err
	}
	roots, err := loadRoots(cfg.CAFile)
	if err != nil {
		return nil, err
	}
	backend, err := newBackend(cfg.Backend, cfg.Concurrency, cfg.maxConnections(), limit(cfg.ConnectTimeout), roots)
	if err != nil {
		return nil, err
	}
	backend.dns = newDNSCache(cfg.DNSCacheTTL, limit(cfg.ConnectTimeout), backend.dial)
	if cfg.Logger != nil {
		backend.log = cfg.Logger
	}
	c := &Client{
		cfg:      cfg,
		backend:  backend,
		protocol: backend.protocol,
		limiter:  newLimiter(cfg.RateLimit, cfg.RateLimitBurst, cfg.Concurrency),
		hosts: newHostGates(cfg.ConcurrencyPerHost, cfg.RateLimitPerHost, cfg.RateLimitPerHostBurst,
			cfg.AutoThrottle, cfg.Logger),
		retry: RetryPolicy{
			MaxRetries: cfg.MaxRetries,
			Multiplier: seconds(cfg.BackoffMultiplier),
			Jitter:     cfg.Jitter,
			MaxDelay:   seconds(cfg.MaxDelay),
		},
		jar:     newSessionJar(cfg.Cookies),
		headers: make(http.Header, len(cfg.Headers)),
		log:     cfg.Logger,
	}
	c.follow, c.noFollow = limitRedirects(cfg.MaxRedirects), stopAtRedirect
	if c.protocol == ProtocolAuto && !boolOr(cfg.HTTP2, true) {
		c.protocol = ProtocolHTTP1
	}
	if c.protocol == ProtocolAuto && cfg.HTTP3 && cfg.Impersonate == "" {
		backend.altSvc = newAltSvcCache()
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	for k, v := range cfg.Headers {
		if strings.EqualFold(k, "host") { // net/http sends req.Host, never a Host header
			c.host = v
			continue
		}
		c.headers.Set(k, v)
	}
	if boolOr(cfg.RandomUserAgent, true) {
		c.agents = newUserAgents(cfg.UserAgents, os.Getenv)
	}
	if p := pickProfile(cfg.Impersonate); p != nil {
		backend.profile = p
		c.agents = &userAgents{list: []string{p.userAgent()}} // the one that goes with its TLS
		// The browser's other headers, where the caller set none.
		for _, h := range p.headers {
			if k := http.CanonicalHeaderKey(h[0]); k != "User-Agent" && c.headers.Get(k) == "" {
				c.headers.Set(k, h[1])
			}
		}
	}
	if cfg.RandomProxy || len(cfg.Proxies) > 0 || cfg.WebshareFile != "" {
		addrs, err := LoadProxySources(cfg.Proxies, cfg.WebshareFile, cfg.RandomProxy, os.Getenv)
		if err != nil {
			return nil, err
		}
		if len(addrs) > 0 {
			if c.proxies, err = NewProxyPool(addrs, cfg.ProxySelection, seconds(cfg.ProxyCooldown)); err != nil {
				return nil, err
			}
		} else if cfg.RandomProxy {
			c.log.Warn("random_proxy is set but the proxy pool is empty; requests go direct")
		}
		if c.proxies != nil && c.protocol == ProtocolHTTP3 {
			return nil, configError("backend", "the http3 backend cannot use proxies (HTTP/3 runs over UDP, which HTTP and SOCKS5 proxies do not carry); use backend \"auto\" with http3")
		}
	}
	threshold := cfg.CircuitBreakerThreshold
	if c.proxies != nil { // every request goes through a proxy: no host is reached directly
		threshold = 0
	}
	c.breaker = newBreaker(threshold, seconds(cfg.CircuitBreakerCooldown), c.log)
	c.plainHeaders = c.buildPlainHeaders()
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	c.runners = newRunners(c.ctx.Done())
	return c, nil
}

// Config returns the client's settings with defaults filled in.
func (c *Client) Config() ClientConfig { return c.cfg }

// Backend returns the client's transport strategy.
func (c *Client) Backend() Backend { return c.backend }

// SetCookies adds or updates session cookies sent with every request.
func (c *Client) SetCookies(cookies map[string]string) error {
	if err := validateCookies("cookies", cookies); err != nil {
		return err
	}
	c.jar.set(cookies)
	return nil
}

// ResetCookies forgets every session cookie, including those servers set.
func (c *Client) ResetCookies() { c.jar.reset() }

// Close cancels every request in flight, waits for them to end and closes
// idle connections. It is idempotent. Calls after Close fail with
// KindCancelled.
func (c *Client) Close() error {
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.mu.Unlock()
	if already {
		return nil
	}
	c.cancel(errClientClosed)
	c.batches.Wait()
	c.backend.Close()
	return nil
}

// Do runs one request and returns its response. An HTTP error status is a
// response, not an error (unless retries ran out on a retryable status);
// the returned error is the response's *Error.
func (c *Client) Do(ctx context.Context, req RequestConfig) (*NormalizedResponse, error) {
	b, err := c.Submit(ctx, []RequestConfig{req}, BatchOptions{})
	if err != nil {
		return nil, err
	}
	res := b.Wait()[0]
	return res, res.Err()
}

// acceptEncoding is what the engine decodes (decodedBody), advertised
// unless the caller sets Accept-Encoding; shared, never written.
var acceptEncoding = []string{"gzip, deflate, br, zstd"}

// maxPlainHeaders bounds the header sets built ahead for a rotation list
// of User-Agents; with a longer list every request builds its own.
const maxPlainHeaders = 64

// buildPlainHeaders builds Client.plainHeaders: the header of a request
// that adds none, for each User-Agent it may pick.
func (c *Client) buildPlainHeaders() []http.Header {
	agents := []string{""}
	if _, set := c.headers["User-Agent"]; !set && c.agents != nil && len(c.agents.list) > 0 {
		agents = c.agents.list
	}
	if len(agents) > maxPlainHeaders {
		return nil
	}
	all := make([]http.Header, len(agents))
	for i, ua := range agents {
		all[i] = c.headerFor(ua)
	}
	return all
}

// headerFor is the header of a request that adds none, with User-Agent ua
// unless the client's headers set one ("": the rotation's list is empty
// or there is none, so "fastreq/VERSION" without one, an empty value with
// an empty list, as pick answers it).
func (c *Client) headerFor(ua string) http.Header {
	h := make(http.Header, len(c.headers)+2)
	for k, vs := range c.headers {
		h[k] = vs
	}
	if _, ok := h["User-Agent"]; !ok {
		if ua == "" && c.agents == nil {
			ua = "fastreq/" + Version
		}
		h["User-Agent"] = []string{ua}
	}
	if _, ok := h["Accept-Encoding"]; !ok {
		h["Accept-Encoding"] = acceptEncoding
	}
	return h
}

// baseHeader is the header of a request that adds none: one of the
// shared plainHeaders (shared: nothing may write it), else one built for
// the User-Agent picked.
func (c *Client) baseHeader() (h http.Header, shared bool) {
	switch {
	case len(c.plainHeaders) == 1:
		return c.plainHeaders[0], true
	case c.plainHeaders != nil:
		return c.plainHeaders[c.agents.pickIndex()], true
	case c.agents != nil:
		return c.headerFor(c.agents.pick()), false
	}
	return c.headerFor(""), false
}

// newRequest builds the attempt's *http.Request: the client's headers
// with the User-Agent and Accept-Encoding (baseHeader), then the
// request's own headers, which win, its body type and cookies. shared:
// the request's Header is one of plainHeaders, which nothing may write.
func (c *Client) newRequest(ctx context.Context, p *prepared) (req *http.Request, shared bool, err error) {
	var body io.Reader
	if p.body != nil {
		body = bytes.NewReader(p.body)
	}
	req, err = http.NewRequestWithContext(ctx, p.method, p.urlString, body)
	if err != nil {
		return nil, false, err
	}
	if p.body != nil {
		data := p.body
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	}
	if c.host != "" {
		req.Host = c.host
	}
	base, shared := c.baseHeader()
	if len(p.headers) == 0 && len(p.cookies) == 0 && p.contentType == "" {
		req.Header = base
		return req, shared, nil
	}
	h := req.Header
	for k, vs := range base {
		h[k] = vs
	}
	for k, v := range p.headers {
		if strings.EqualFold(k, "host") {
			req.Host = v
			continue
		}
		h.Set(k, v)
	}
	if p.contentType != "" {
		if _, ok := h["Content-Type"]; !ok {
			h["Content-Type"] = []string{p.contentType}
		}
	}
	for k, v := range p.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	return req, false, nil
}

// proxyFailed benches a pool proxy for the cooldown and says so in the log.
func (c *Client) proxyFailed(proxy *url.URL, e *Error) {
	c.proxies.MarkFailed(proxy, time.Now())
	c.log.Warn("proxy failed; it sits out the cooldown", "proxy", e.Proxy, "cooldown", seconds(c.cfg.ProxyCooldown), "error", e.Message)
}

// limitRedirects follows redirects up to limit, then fails the request.
func limitRedirects(limit int) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		if len(via) > limit { // via holds the original request too
			return &redirectLimitError{limit: limit}
		}
		redirectHeaders(req, via)
		return nil
	}
}

// redirectHeaders applies the rules net/http leaves to the client to the
// next request of a redirect chain, whose headers it copied from the
// first: no Referer unless the caller set one (it would carry the
// previous URL, query and all, to the next server), and the caller's
// credentials -- Authorization, Proxy-Authorization and Cookie -- only
// while every hop stays on the first request's origin (scheme, host and
// port; net/http compares hosts alone). The session jar's cookies are
// added after this, by cookie rules.
func redirectHeaders(req *http.Request, via []*http.Request) {
	first := via[0]
	if _, set := first.Header["Referer"]; !set {
		delete(req.Header, "Referer")
	}
	cross := !sameOrigin(first.URL, req.URL)
	for _, hop := range via[1:] {
		cross = cross || !sameOrigin(first.URL, hop.URL)
	}
	if cross {
		delete(req.Header, "Authorization")
		delete(req.Header, "Proxy-Authorization")
		delete(req.Header, "Cookie")
	}
}

// sameOrigin reports whether a and b have the same scheme, host and port
// (a missing port being the scheme's default).
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) &&
		originPort(a) == originPort(b)
}

func originPort(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "https") {
		return "443"
	}
	return "80"
}

// stopAtRedirect returns the 3xx response itself.
func stopAtRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
