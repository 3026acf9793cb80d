package core

import (
	"log/slog"
	"math"
	"time"
)

// Defaults of ClientConfig, the same as the Python API's.
const (
	DefaultConcurrency       = 20
	DefaultMaxRetries        = 3
	DefaultRateLimitBurst    = 5
	DefaultProxyCooldown     = 60.0 // seconds
	DefaultMaxRedirects      = 20
	DefaultMaxBodySize       = 1 << 30 // 1 GiB kept in memory per response
	DefaultBackoffMultiplier = 1.0     // seconds
	DefaultJitter            = 0.1
	DefaultMaxDelay          = 60.0 // seconds
	DefaultConnectTimeout    = 30.0 // seconds
	DefaultReadTimeout       = 300.0
	DefaultBreakerThreshold  = 20
	DefaultBreakerCooldown   = 30.0 // seconds
	DefaultDNSCacheTTL       = 60.0 // seconds
	// DefaultSpareConns is how many connections a client may hold beyond
	// its concurrency (idle ones kept for reuse, dials racing a reuse)
	// when MaxConnections is 0.
	DefaultSpareConns = 8
)

// ClientConfig holds every client setting. JSON names are those of the
// Python API. DefaultClientConfig returns the Python defaults; the zero
// value of each field is documented next to it and is safe: a nil *bool
// means the Python default (true), so ClientConfig{} verifies certificates,
// follows redirects and may use HTTP/2. The one zero value that differs
// from the Python API is MaxRetries (0: no retries; Python's default is 3).
type ClientConfig struct {
	// Backend picks the transport: "auto", "http1", "http2", "http3" or
	// an alias (see Backends). "" means "auto". "http3" sends every
	// request over HTTP/3 (QUIC): https URLs only, no proxies, no
	// impersonation.
	Backend string `json:"backend"`
	// Concurrency is the most requests in flight at once, shared by all
	// batches of the client. 0 means DefaultConcurrency.
	Concurrency int `json:"concurrency"`
	// MaxConnections is the most connections the client holds open at
	// once, in use or idle, whatever the number of hosts; each is a
	// descriptor. When a new connection finds them all taken, idle ones
	// are closed first. 0 means Concurrency + DefaultSpareConns; else at
	// least Concurrency. A job that comes back to many hosts reconnects
	// less with more (one per host it keeps), as far as the process's
	// descriptor limit allows.
	MaxConnections int `json:"max_connections"`
	// MaxRetries is the number of retries after the first attempt. 0 means
	// no retries.
	MaxRetries int `json:"max_retries"`
	// RateLimit is requests per second (token bucket). 0 means unlimited.
	RateLimit float64 `json:"rate_limit"`
	// RateLimitBurst is the bucket size. 0 means DefaultRateLimitBurst.
	RateLimitBurst int `json:"rate_limit_burst"`
	// ConcurrencyPerHost is the most requests in flight to one host
	// (scheme, host and port), within Concurrency. 0 means no per-host
	// limit. A request waiting for its host holds no slot and does not
	// hold up requests to other hosts.
	ConcurrencyPerHost int `json:"concurrency_per_host"`
	// RateLimitPerHost is requests per second to one host (a token bucket
	// per host, taken besides the client's). 0 means no per-host limit.
	RateLimitPerHost float64 `json:"rate_limit_per_host"`
	// RateLimitPerHostBurst is the per-host bucket size. 0 means 1.
	RateLimitPerHostBurst int `json:"rate_limit_per_host_burst"`
	// HTTP2 allows HTTP/2 where the server offers it (backend "auto").
	// false means HTTP/1.1 only unless the backend is "http2". nil: true.
	HTTP2 *bool `json:"http2"`
	// HTTP3 lets the "auto" backend move an origin to HTTP/3 once it
	// advertised h3 in an Alt-Svc header (h3=":port", remembered for its
	// ma= max-age): later requests to it go over QUIC, and when the QUIC
	// handshake fails (no answer within connect_timeout, at most 3 s: UDP
	// blocked, nothing listening) the request goes over TCP at once and
	// the origin stays on TCP for 5 minutes, doubling with each further
	// failure up to 48 hours. Requests through a proxy, plain http://
	// ones, those with HTTP2 false and an impersonating client's stay on
	// TCP.
	HTTP3 bool `json:"http3"`
	// FollowRedirects follows 3xx responses up to MaxRedirects. false
	// returns the 3xx response itself. nil: true.
	FollowRedirects *bool `json:"follow_redirects"`
	// MaxRedirects is the redirect limit. 0 means DefaultMaxRedirects.
	MaxRedirects int `json:"max_redirects"`
	// VerifySSL checks server certificates. false accepts any certificate.
	// nil: true.
	VerifySSL *bool `json:"verify_ssl"`
	// CAFile is a PEM file of extra trusted root certificates (for private
	// CAs), added to the system's. "" means the system's only.
	CAFile string `json:"ca_file"`
	// Timeout is seconds per attempt, body included. 0 means no limit.
	Timeout float64 `json:"timeout"`
	// ConnectTimeout bounds each step of making a connection (TCP
	// connect, TLS handshake) in seconds. 0 means DefaultConnectTimeout;
	// a negative value, no limit.
	ConnectTimeout float64 `json:"connect_timeout"`
	// ReadTimeout is the longest an attempt may go without receiving a
	// byte, in seconds, counted from its start until the response
	// arrives and then between reads of the body; past it the attempt
	// fails with KindTimeout. It bounds a silent server even when Timeout
	// is 0. 0 means DefaultReadTimeout; a negative value, no limit.
	ReadTimeout float64 `json:"read_timeout"`
	// RetryNonIdempotent retries requests whose method is not idempotent
	// (POST, PATCH, ...) after any retryable failure. false retries them
	// only when the server provably did not process them: the request
	// was never sent (connect, TLS or proxy failure) or the answer was
	// 429 or 503. A request with an Idempotency-Key header counts as
	// idempotent.
	RetryNonIdempotent bool `json:"retry_non_idempotent"`
	// CircuitBreakerThreshold is how many connection failures in a row
	// to one host (scheme, host and port, reached directly) open its
	// circuit: its queued requests and retries then fail at once with
	// KindConnect instead of trying, until CircuitBreakerCooldown has
	// passed and one probe request connects. 0 means
	// DefaultBreakerThreshold; a negative value turns the breaker off.
	CircuitBreakerThreshold int `json:"circuit_breaker_threshold"`
	// CircuitBreakerCooldown is seconds an open circuit waits before
	// letting one probe through. 0 means DefaultBreakerCooldown.
	CircuitBreakerCooldown float64 `json:"circuit_breaker_cooldown"`
	// DNSCacheTTL is how long, in seconds, the client keeps the addresses
	// a host name resolved to, so that new connections to a host do not
	// look its name up again ("no such host" is kept for at most 5 s;
	// other lookup failures are not kept). Concurrent lookups of one name
	// are one lookup either way, and IP addresses are never looked up. 0
	// means DefaultDNSCacheTTL; a negative value keeps nothing.
	DNSCacheTTL float64 `json:"dns_cache_ttl"`
	// AutoThrottle adapts each host's request rate to how it answers: a
	// 429 or 503 answer, or an attempt that timed out, halves the host's
	// rate (once per round of requests in flight), and each success raises
	// it by a step, up to RateLimitPerHost when that is set (unlimited
	// otherwise) and never below one request per second (or
	// RateLimitPerHost, when lower). Changes are logged at info level.
	AutoThrottle bool `json:"auto_throttle"`
	// Cookies are initial session cookies sent with every request.
	Cookies map[string]string `json:"cookies"`
	// RandomUserAgent rotates a built-in list of browser User-Agent strings
	// (or USER_AGENTS). false sends "fastreq/<version>". nil: true.
	RandomUserAgent *bool `json:"random_user_agent"`
	// UserAgents replaces the built-in list (and USER_AGENTS). nil means
	// the environment variable, else the built-in list.
	UserAgents []string `json:"user_agents"`
	// Impersonate makes https requests pass for a browser: its TLS
	// ClientHello (and so its JA3/JA4 fingerprint), its HTTP/2 settings
	// as far as x/net/http2 sets them, and its User-Agent (unless the
	// request or Headers set one; RandomUserAgent is then ignored). One
	// of ImpersonateTargets: chrome131, chrome133a, chrome136, safari180,
	// safari184, firefox133, firefox135, "random" for one of them
	// picked per client, or "chrome", "safari" or "firefox" for the
	// newest of each. "" means none: Go's own TLS.
	Impersonate string `json:"impersonate"`
	// RandomProxy rotates requests through the proxy pool: Proxies,
	// WebshareFile and the FASTREQ_PROXIES environment variable. Proxies or
	// WebshareFile given explicitly enable the pool on their own.
	RandomProxy bool `json:"random_proxy"`
	// Proxies are proxy addresses for the pool (host:port,
	// host:port:user:pass, http(s)://[user:pass@]host:port, socks5://...).
	Proxies []string `json:"proxies"`
	// ProxySelection is "round_robin" or "random". "" means "round_robin".
	ProxySelection string `json:"proxy_selection"`
	// ProxyCooldown is seconds a failed proxy sits out. 0 means none.
	ProxyCooldown float64 `json:"proxy_cooldown"`
	// WebshareFile is a file of host:port:user:pass lines added to the pool.
	WebshareFile string `json:"webshare_file"`
	// Headers are default headers for every request; a request's own
	// headers win.
	Headers map[string]string `json:"headers"`
	// MaxBodySize is the most bytes of (decoded) body kept in memory per
	// response; a larger body fails that request with KindBodyTooLarge.
	// Streaming and downloads to a file are not limited. 0 means
	// DefaultMaxBodySize.
	MaxBodySize int64 `json:"max_body_size"`
	// BackoffMultiplier, Jitter and MaxDelay shape the retry delay:
	// BackoffMultiplier*2^n seconds, plus or minus Jitter times that,
	// capped at MaxDelay. Zero values mean no delay, no jitter, no cap.
	BackoffMultiplier float64 `json:"backoff_multiplier"`
	Jitter            float64 `json:"jitter"`
	MaxDelay          float64 `json:"max_delay"`

	// Debug and Verbose choose the level of the records the C interface
	// keeps for its host (debug: every record; verbose, the default: info
	// and above; neither: warnings and errors). The engine itself logs
	// through Logger whatever they say.
	Debug   bool  `json:"debug"`
	Verbose *bool `json:"verbose"`

	// Logger receives log records. nil discards them. The engine never
	// writes to stdout or stderr on its own.
	Logger *slog.Logger `json:"-"`
}

// DefaultClientConfig returns the defaults of the Python API.
func DefaultClientConfig() ClientConfig {
	return ClientConfig{
		Backend:                 "auto",
		Concurrency:             DefaultConcurrency,
		MaxRetries:              DefaultMaxRetries,
		RateLimitBurst:          DefaultRateLimitBurst,
		HTTP2:                   Bool(true),
		FollowRedirects:         Bool(true),
		MaxRedirects:            DefaultMaxRedirects,
		VerifySSL:               Bool(true),
		RandomUserAgent:         Bool(true),
		ProxySelection:          "round_robin",
		ProxyCooldown:           DefaultProxyCooldown,
		MaxBodySize:             DefaultMaxBodySize,
		BackoffMultiplier:       DefaultBackoffMultiplier,
		Jitter:                  DefaultJitter,
		MaxDelay:                DefaultMaxDelay,
		ConnectTimeout:          DefaultConnectTimeout,
		ReadTimeout:             DefaultReadTimeout,
		CircuitBreakerThreshold: DefaultBreakerThreshold,
		CircuitBreakerCooldown:  DefaultBreakerCooldown,
		DNSCacheTTL:             DefaultDNSCacheTTL,
		Verbose:                 Bool(true),
	}
}

// normalize fills zero values with defaults and checks every field,
// returning a validation error that names the first bad one.
func (c *ClientConfig) normalize() error {
	orDefault(&c.Backend, "auto")
	orDefault(&c.Concurrency, DefaultConcurrency)
	orDefault(&c.RateLimitBurst, DefaultRateLimitBurst)
	orDefault(&c.MaxRedirects, DefaultMaxRedirects)
	orDefault(&c.MaxBodySize, DefaultMaxBodySize)
	orDefault(&c.ProxySelection, "round_robin")
	orDefault(&c.ConnectTimeout, DefaultConnectTimeout)
	orDefault(&c.ReadTimeout, DefaultReadTimeout)
	orDefault(&c.CircuitBreakerThreshold, DefaultBreakerThreshold)
	orDefault(&c.CircuitBreakerCooldown, DefaultBreakerCooldown)
	orDefault(&c.DNSCacheTTL, DefaultDNSCacheTTL)
	ints := []struct {
		name string
		v    int64
		min  int64
	}{
		{"concurrency", int64(c.Concurrency), 1},
		{"max_connections", int64(c.MaxConnections), 0},
		{"max_retries", int64(c.MaxRetries), 0},
		{"rate_limit_burst", int64(c.RateLimitBurst), 1},
		{"concurrency_per_host", int64(c.ConcurrencyPerHost), 0},
		{"rate_limit_per_host_burst", int64(c.RateLimitPerHostBurst), 0},
		{"max_redirects", int64(c.MaxRedirects), 1},
		{"max_body_size", c.MaxBodySize, 1},
	}
	for _, f := range ints {
		if f.v < f.min {
			return validationError(f.name, "%s must be at least %d, got %d", f.name, f.min, f.v)
		}
	}
	if c.Concurrency > 1_000_000 {
		return validationError("concurrency", "concurrency must be at most 1000000, got %d", c.Concurrency)
	}
	if c.MaxConnections > 1_000_000 {
		return validationError("max_connections", "max_connections must be at most 1000000, got %d", c.MaxConnections)
	}
	if c.MaxConnections != 0 && c.MaxConnections < c.Concurrency {
		// A request waiting for a connection would close the idle ones
		// that requests in flight give back (see transportBackend.reserve).
		return validationError("max_connections", "max_connections must be at least concurrency (%d), got %d",
			c.Concurrency, c.MaxConnections)
	}
	floats := []struct {
		name string
		v    float64
	}{
		{"rate_limit", c.RateLimit}, {"rate_limit_per_host", c.RateLimitPerHost},
		{"timeout", c.Timeout}, {"proxy_cooldown", c.ProxyCooldown},
		{"backoff_multiplier", c.BackoffMultiplier}, {"jitter", c.Jitter}, {"max_delay", c.MaxDelay},
		{"circuit_breaker_cooldown", c.CircuitBreakerCooldown},
	}
	for _, f := range floats {
		if err := checkNonNegative(f.name, f.v); err != nil {
			return err
		}
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"connect_timeout", c.ConnectTimeout}, {"read_timeout", c.ReadTimeout}, {"dns_cache_ttl", c.DNSCacheTTL}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return validationError(f.name, "%s must be a finite number, got %v", f.name, f.v)
		}
	}
	if c.Jitter > 1 {
		return validationError("jitter", "jitter must be between 0 and 1, got %g", c.Jitter)
	}
	if c.ProxySelection != "round_robin" && c.ProxySelection != "random" {
		return configError("proxy_selection", "proxy_selection must be \"round_robin\" or \"random\", got %q", c.ProxySelection)
	}
	if _, err := lookupBackend(c.Backend); err != nil {
		return err
	}
	if err := normalizeImpersonate(&c.Impersonate); err != nil {
		return err
	}
	if p, _ := lookupBackend(c.Backend); p == ProtocolHTTP3 {
		if c.Impersonate != "" {
			return configError("impersonate", "impersonate cannot be used with the http3 backend: the browser fingerprints are those of TLS over TCP and HTTP/2; use backend \"auto\"")
		}
		if len(c.Proxies) > 0 || c.WebshareFile != "" {
			return configError("backend", "the http3 backend cannot use proxies (HTTP/3 runs over UDP, which HTTP and SOCKS5 proxies do not carry); use backend \"auto\" with http3")
		}
	}
	if err := validateHeaders("headers", c.Headers); err != nil {
		return err
	}
	return validateCookies("cookies", c.Cookies)
}

// maxConnections is the connection budget MaxConnections sets.
func (c *ClientConfig) maxConnections() int {
	if c.MaxConnections == 0 {
		return c.Concurrency + DefaultSpareConns
	}
	return c.MaxConnections
}

func checkNonNegative(name string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return validationError(name, "%s must be a finite number >= 0, got %v", name, v)
	}
	return nil
}

// orDefault sets *v to def when it holds its type's zero value.
func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// limit is s seconds as a Duration, or 0 (no limit) when s is negative.
func limit(s float64) time.Duration {
	if s < 0 {
		return 0
	}
	return seconds(s)
}

// Bool returns a pointer to v, for the *bool settings.
func Bool(v bool) *bool { return &v }

// boolOr is *p, or def when p is nil.
func boolOr(p *bool, def bool) bool {
	if p == nil {
		return def
	}
	return *p
}

// seconds converts a float number of seconds to a Duration. Past the
// longest Duration (about 292 years) it saturates: the float-to-int
// conversion would overflow to a negative Duration, so a huge timeout
// would expire at once.
func seconds(s float64) time.Duration {
	if ns := s * float64(time.Second); ns < math.MaxInt64 {
		return time.Duration(ns)
	}
	return math.MaxInt64
}
