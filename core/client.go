package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"math/rand/v2"
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
	retry    RetryPolicy
	jar      *sessionJar
	proxies  *ProxyPool // nil: no pool
	agents   *userAgents
	headers  http.Header
	log      *slog.Logger
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
	backend, err := newBackend(cfg.Backend, cfg.Concurrency, roots)
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:      cfg,
		backend:  backend,
		protocol: backend.protocol,
		limiter:  newLimiter(cfg.RateLimit, cfg.RateLimitBurst, cfg.Concurrency),
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
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	for k, v := range cfg.Headers {
		c.headers.Set(k, v)
	}
	if boolOr(cfg.RandomUserAgent, true) {
		c.agents = newUserAgents(cfg.UserAgents, os.Getenv)
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
	}
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

// BatchOptions tune one batch.
type BatchOptions struct {
	// OnResult, when set, receives each result as it completes, from the
	// engine's goroutines (concurrently: it must be safe for that). The
	// batch then keeps no results: Wait returns nil and Results is nil.
	OnResult func(*NormalizedResponse)
	// OnChunk receives the body of streaming requests that have no
	// OnChunk of their own. The slice is only valid during the call.
	OnChunk func(index int, chunk []byte) error
	// StrictValidation makes Submit fail, running nothing, when any
	// request is invalid. Otherwise an invalid request just fails alone.
	StrictValidation bool
	// BodyAllocator, with OnResult, supplies the memory whole bodies of a
	// known length are read into, so a caller that hands bodies to another
	// allocator (a C library) needs no copy and no Go garbage per body.
	BodyAllocator BodyAllocator
	// Start starts the batch's dispatcher on a goroutine of its own (it
	// waits for the rate limiter and the concurrency gate); nil runs
	// `go dispatch()`. For a host that knows a better place to start it.
	// n is the number of requests, each of which will have one result
	// (SubmitSeq knows it only here); it is called only when n > 0.
	Start func(n int, dispatch func())
}

// BodyAllocator supplies body buffers from outside the Go heap. Alloc
// returns a slice of exactly n bytes, or nil to read into Go memory; ctx
// is the request's (an allocator that waits for memory gives up when it
// is done). Free takes back a buffer whose read failed. A buffer that was
// filled becomes the result's Content, and OnResult owns it from then on.
type BodyAllocator interface {
	Alloc(ctx context.Context, n int) []byte
	Free(buf []byte)
}

// Batch is a set of requests submitted together. Results arrive as they
// complete on Results, and all together, in order, from Wait.
type Batch struct {
	client  *Client
	ctx     context.Context
	cancel  context.CancelCauseFunc
	stop    func() bool // detaches the batch from the client's context
	opts    BatchOptions
	preps   []*prepared                 // nil once finished, or when invalid
	invalid map[int]*NormalizedResponse // the results of invalid requests

	results []*NormalizedResponse
	ch      chan *NormalizedResponse
	done    chan struct{}

	mu        sync.Mutex
	remaining int
}

// Submit validates reqs and starts them. With StrictValidation, the first
// invalid request's *Error is returned (its Field names the field, and
// the message the request's index). Otherwise every request gets exactly
// one result. The batch keeps the requests' maps and byte slices (read,
// never written), not reqs itself.
func (c *Client) Submit(ctx context.Context, reqs []RequestConfig, opts BatchOptions) (*Batch, error) {
	return c.SubmitSeq(ctx, func(yield func(*RequestConfig, error) bool) {
		for i := range reqs {
			if !yield(&reqs[i], nil) {
				return
			}
		}
	}, opts)
}

// SubmitSeq is Submit for requests that come one at a time, as a decoder
// produces them: each *RequestConfig is only read during its step (the
// producer may reuse the struct, not its maps and slices), so a large
// batch never holds every RequestConfig at once, only what its attempts
// need. An error from reqs fails the submit, and nothing runs.
func (c *Client) SubmitSeq(ctx context.Context, reqs iter.Seq2[*RequestConfig, error], opts BatchOptions) (*Batch, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	b := &Batch{client: c, opts: opts, done: make(chan struct{})}
	var refused *Error // StrictValidation's: the sequence is still read to its end, whose error wins
	for cfg, err := range reqs {
		if err != nil {
			return nil, err
		}
		if refused != nil {
			continue
		}
		i := len(b.preps)
		p, err := prepare(i, cfg)
		if err != nil {
			fe := err.(*Error)
			if opts.StrictValidation {
				e := *fe
				e.Message = fmt.Sprintf("request %d: %s", i, fe.Message)
				refused = &e
				continue
			}
			if b.invalid == nil {
				b.invalid = make(map[int]*NormalizedResponse)
			}
			b.invalid[i] = &NormalizedResponse{Index: i, ID: cfg.ID, Error: fe}
		}
		b.preps = append(b.preps, p)
	}
	if refused != nil {
		return nil, refused
	}
	n := len(b.preps)
	b.remaining = n
	if opts.OnResult == nil {
		b.results = make([]*NormalizedResponse, n)
		b.ch = make(chan *NormalizedResponse, n)
		b.opts.BodyAllocator = nil // the batch keeps the bodies: they must be Go memory
	}

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, &Error{Kind: KindCancelled, Message: "cancelled: the client is closed"}
	}
	c.batches.Add(1)
	c.mu.Unlock()

	b.ctx, b.cancel = context.WithCancelCause(ctx)
	b.stop = context.AfterFunc(c.ctx, func() { b.cancel(errClientClosed) })
	if n == 0 {
		b.finishBatch()
		return b, nil
	}
	if opts.Start != nil {
		opts.Start(n, b.dispatch)
	} else {
		go b.dispatch()
	}
	return b, nil
}

// Len is the number of requests in the batch.
func (b *Batch) Len() int { return len(b.preps) }

// Results delivers each result as it completes and is closed after the
// last one. It is buffered for the whole batch, so nobody has to read it.
// nil when BatchOptions.OnResult is set.
func (b *Batch) Results() <-chan *NormalizedResponse { return b.ch }

// Done is closed when every request of the batch has its result.
func (b *Batch) Done() <-chan struct{} { return b.done }

// Wait blocks until the batch is done and returns the results in request
// order (nil when BatchOptions.OnResult is set).
func (b *Batch) Wait() []*NormalizedResponse {
	<-b.done
	return b.results
}

// Cancel stops the batch: requests not yet finished fail with
// KindCancelled. It returns at once; Wait or Done tell when all ended.
func (b *Batch) Cancel() { b.cancel(context.Canceled) }

// dispatch starts requests in order, each after its rate token and then
// its concurrency slot.
func (b *Batch) dispatch() {
	c := b.client
	for i, p := range b.preps {
		if p == nil {
			b.finish(b.invalid[i])
			continue
		}
		if err := c.limiter.waitToken(b.ctx); err != nil {
			b.cancelFrom(i)
			return
		}
		if err := c.limiter.acquire(b.ctx); err != nil {
			b.cancelFrom(i)
			return
		}
		c.runners.start(func() { c.run(b, p) })
	}
}

// cancelFrom gives every request from index i on a cancelled result.
func (b *Batch) cancelFrom(i int) {
	for ; i < len(b.preps); i++ {
		if p := b.preps[i]; p != nil {
			b.finish(&NormalizedResponse{Index: i, ID: p.id, Error: b.cancelledError(p)})
		} else {
			b.finish(b.invalid[i])
		}
	}
}

func (b *Batch) cancelledError(p *prepared) *Error {
	msg := "cancelled: the batch was cancelled"
	if errors.Is(context.Cause(b.ctx), errClientClosed) {
		msg = "cancelled: the client was closed"
	} else if errors.Is(context.Cause(b.ctx), context.DeadlineExceeded) {
		return &Error{Kind: KindTimeout, Message: "timeout: the caller's deadline passed", URL: redactURL(p.urlString)}
	}
	return &Error{Kind: KindCancelled, Message: msg, URL: redactURL(p.urlString)}
}

// finish records one result; the last one closes the batch.
func (b *Batch) finish(r *NormalizedResponse) {
	if b.opts.OnResult != nil {
		b.deliver(r)
	} else {
		b.results[r.Index] = r
		b.ch <- r
	}
	b.mu.Lock()
	b.remaining--
	last := b.remaining == 0
	b.mu.Unlock()
	if last {
		b.finishBatch()
	}
}

// deliver hands r to OnResult; a panic there is the caller's bug, but it
// must not kill the process or leave the batch unfinished.
func (b *Batch) deliver(r *NormalizedResponse) {
	defer func() {
		if p := recover(); p != nil {
			b.client.log.Error("OnResult panicked", "index", r.Index, "panic", p)
		}
	}()
	b.opts.OnResult(r)
}

func (b *Batch) finishBatch() {
	b.stop()
	b.cancel(nil)
	if b.ch != nil {
		close(b.ch)
	}
	close(b.done)
	b.client.batches.Done()
}

// outcome is what one attempt produced.
type outcome struct {
	err           *Error
	retryAfter    time.Duration
	hasRetryAfter bool
	streamed      bool // chunks went out: a retry would duplicate them
}

// run makes the attempts of one request. The dispatcher has already taken
// the first attempt's token and slot.
func (c *Client) run(b *Batch, p *prepared) {
	start := time.Now()
	res := &NormalizedResponse{Index: p.index, ID: p.id}
	holding := true
	defer func() {
		if r := recover(); r != nil {
			res.Error = &Error{Kind: KindIO, Message: fmt.Sprintf("io: a callback panicked: %v", r), URL: redactURL(p.urlString)}
		}
		if holding {
			c.limiter.release()
		}
		res.Elapsed = time.Since(start)
		b.preps[p.index] = nil // let a finished request's memory go before the batch ends
		b.finish(res)
	}()
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			if c.limiter.waitToken(b.ctx) != nil || c.limiter.acquire(b.ctx) != nil {
				res.Error = b.cancelledError(p)
				return
			}
			holding = true
		}
		last := attempt >= c.retry.MaxRetries
		out := c.attempt(b, p, res, last)
		holding = false
		c.limiter.release()
		res.Attempts = attempt + 1
		if out.err == nil {
			return
		}
		retryable := RetryableKind(out.err.Kind) && !out.streamed
		if !retryable || last || b.ctx.Err() != nil {
			if retryable && last && attempt > 0 {
				res.Error = &Error{
					Kind:     KindRetriesExhausted,
					Message:  fmt.Sprintf("retries exhausted: giving up after %d attempt(s): %s", attempt+1, out.err.Message),
					URL:      redactURL(p.urlString),
					Attempts: attempt + 1,
					Last:     out.err,
				}
			} else {
				res.Error = out.err
				res.Error.Attempts = attempt + 1
			}
			return
		}
		delay := c.retry.Delay(attempt, out.retryAfter, out.hasRetryAfter, rand.Float64())
		c.log.Debug("retrying", "url", redactURL(p.urlString), "attempt", attempt+1, "error", out.err.Message, "delay", delay)
		if sleepCtx(b.ctx, delay) != nil {
			res.Error = b.cancelledError(p)
			return
		}
	}
}

// attempt makes one attempt and fills res on success (or, on the last
// attempt, with the final retryable-status response).
func (c *Client) attempt(b *Batch, p *prepared, res *NormalizedResponse, last bool) (out outcome) {
	ctx := b.ctx
	timeout := p.timeout
	if timeout == 0 {
		timeout = c.cfg.Timeout
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, seconds(timeout))
		defer cancel()
	}

	proxy, fromPool := p.proxy, false
	if proxy == nil && c.proxies != nil {
		proxy, fromPool = c.proxies.Next(time.Now()), true
	}
	route := Route{VerifySSL: boolOr(c.cfg.VerifySSL, true), Protocol: c.protocol, Plain: p.plain}
	if p.verifySSL != nil {
		route.VerifySSL = *p.verifySSL
	}
	if p.http2 != nil {
		switch {
		case !*p.http2:
			route.Protocol = ProtocolHTTP1
		case route.Protocol == ProtocolHTTP1:
			route.Protocol = ProtocolAuto
		}
	}
	if proxy != nil {
		route.Proxy = proxy.String()
	}

	req, err := c.newRequest(ctx, p)
	if err != nil {
		return outcome{err: &Error{Kind: KindValidation, Field: "url", Message: "validation: " + err.Error(), URL: redactURL(p.urlString)}}
	}
	follow := boolOr(c.cfg.FollowRedirects, true)
	if p.followRedirects != nil {
		follow = *p.followRedirects
	}
	var jar http.CookieJar = c.jar
	if len(p.cookies) > 0 {
		jar = overrideJar{c.jar, p.cookies}
	}
	redirects := c.follow
	if !follow {
		redirects = c.noFollow
	}
	hc := http.Client{Transport: c.backend.RoundTripper(route), Jar: jar, CheckRedirect: redirects}
	resp, err := hc.Do(req)
	if err != nil {
		e := classify(err, ctx, b.ctx, p.urlString, route.Proxy) // redacts the proxy
		if fromPool && e.Kind == KindProxy {
			c.proxyFailed(proxy, e)
		}
		return outcome{err: e}
	}
	if proxy != nil && resp.StatusCode == http.StatusProxyAuthRequired {
		// Only a proxy answers 407: for http:// targets it comes back as
		// a response rather than as a failed CONNECT.
		discardBody(resp)
		e := &Error{Kind: KindProxy, Message: "proxy: proxy refused the request: " + resp.Status,
			URL: redactURL(p.urlString), Proxy: proxy.Redacted()}
		if fromPool {
			c.proxyFailed(proxy, e)
		}
		return outcome{err: e}
	}
	if fromPool {
		c.proxies.MarkSucceeded(proxy)
	}

	var statusErr *Error
	if RetryableStatus(resp.StatusCode) {
		ra, has := ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		statusErr = &Error{
			Kind:    KindHTTPStatus,
			Status:  resp.StatusCode,
			Message: fmt.Sprintf("http_status: %s from %s", resp.Status, redactURL(p.urlString)),
			URL:     redactURL(p.urlString),
		}
		if has {
			statusErr.RetryAfter = ra.Seconds()
		}
		if !last {
			discardBody(resp)
			return outcome{err: statusErr, retryAfter: ra, hasRetryAfter: has}
		}
	}
	defer resp.Body.Close()

	res.StatusCode = resp.StatusCode
	res.Headers = normalizeHeaders(resp.Header)
	res.URL = resp.Request.URL.String()
	res.HTTPVersion = resp.Proto
	var n int64
	switch {
	case p.stream:
		sink := p.onChunk
		if sink == nil && b.opts.OnChunk != nil {
			sink = func(chunk []byte) error { return b.opts.OnChunk(p.index, chunk) }
		}
		if sink == nil {
			sink = func([]byte) error { return nil }
		}
		n, err = streamBody(resp, sink, &out.streamed)
	case p.outputPath != "":
		n, err = saveBody(resp, p.outputPath)
		res.Path = p.outputPath
	default:
		limit := c.cfg.MaxBodySize
		if p.maxBodySize > 0 {
			limit = p.maxBodySize
		}
		res.Content, err = readBody(ctx, resp, limit, b.opts.BodyAllocator)
		n = int64(len(res.Content))
	}
	res.ContentLength = n
	if err != nil {
		res.StatusCode, res.Headers, res.Content, res.Path, res.URL, res.HTTPVersion = 0, nil, nil, "", "", ""
		e := classify(err, ctx, b.ctx, p.urlString, route.Proxy)
		if e.Kind == KindBodyTooLarge {
			e.Field = "max_body_size"
		}
		out.err = e
		return out
	}
	if statusErr != nil {
		out.err = statusErr
	}
	return out
}

// newRequest builds the attempt's *http.Request: client headers, then the
// User-Agent, then the request's own headers, which win.
func (c *Client) newRequest(ctx context.Context, p *prepared) (*http.Request, error) {
	var body io.Reader
	if p.body != nil {
		body = bytes.NewReader(p.body)
	}
	req, err := http.NewRequestWithContext(ctx, p.method, p.urlString, body)
	if err != nil {
		return nil, err
	}
	if p.body != nil {
		data := p.body
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
	}
	h := req.Header
	for k, vs := range c.headers {
		h[k] = vs
	}
	for k, v := range p.headers {
		if strings.EqualFold(k, "host") {
			req.Host = v
			continue
		}
		h.Set(k, v)
	}
	if _, ok := h["User-Agent"]; !ok {
		if c.agents != nil {
			h["User-Agent"] = []string{c.agents.pick()}
		} else {
			h["User-Agent"] = []string{"fastreq/" + Version}
		}
	}
	if _, ok := h["Accept-Encoding"]; !ok {
		h["Accept-Encoding"] = []string{"gzip, deflate"}
	}
	if p.contentType != "" {
		if _, ok := h["Content-Type"]; !ok {
			h["Content-Type"] = []string{p.contentType}
		}
	}
	for k, v := range p.cookies {
		req.AddCookie(&http.Cookie{Name: k, Value: v})
	}
	return req, nil
}

// proxyFailed benches a pool proxy for the cooldown and says so in the log.
func (c *Client) proxyFailed(proxy *url.URL, e *Error) {
	c.proxies.MarkFailed(proxy, time.Now())
	c.log.Warn("proxy failed; it sits out the cooldown", "proxy", e.Proxy, "cooldown", seconds(c.cfg.ProxyCooldown), "error", e.Message)
}

// limitRedirects follows redirects up to limit, then fails the request.
func limitRedirects(limit int) func(*http.Request, []*http.Request) error {
	return func(_ *http.Request, via []*http.Request) error {
		if len(via) > limit { // via holds the original request too
			return &redirectLimitError{limit: limit}
		}
		return nil
	}
}

// stopAtRedirect returns the 3xx response itself.
func stopAtRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
