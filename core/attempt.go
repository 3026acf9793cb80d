package core

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"time"
)

// outcome is what one attempt produced.
type outcome struct {
	err           *Error
	retryAfter    time.Duration
	hasRetryAfter bool
	streamed      bool // chunks went out: a retry would duplicate them
	// unprocessed: the server provably did not act on the request (it was
	// never sent, or the answer was 429 or 503), so even a request that
	// is not idempotent may be retried.
	unprocessed bool
	connFailed  bool // no connection to the server could be made
	direct      bool // no proxy: connection failures are the server's
}

// run makes one attempt of t, for which the dispatcher took a rate token
// and a concurrency slot, and then either ends t or queues its retry.
// A waiting retry holds no slot and no goroutine.
func (c *Client) run(b *Batch, t *task) {
	p := t.p
	holding := true
	defer func() {
		if r := recover(); r != nil {
			if holding {
				c.release(t)
			}
			t.res.Error = &Error{Kind: KindIO, Message: fmt.Sprintf("io: a callback panicked: %v", r), URL: redactURL(p.urlString)}
			b.end(t)
		}
	}()
	begin := time.Now()
	if t.attempt == 0 {
		t.start = begin
	}
	restricted := !p.idempotent && !boolOr(p.retryNonIdempotent, c.cfg.RetryNonIdempotent)
	last := t.attempt >= c.retry.MaxRetries
	out := c.attempt(b, p, &t.res, begin, last, restricted)
	// The host's throttle and circuit learn the outcome before the slots
	// go back, so that the task the slot goes to next sees them.
	if c.cfg.AutoThrottle {
		c.hosts.feedback(t, &out, time.Now())
	}
	if out.direct {
		c.breaker.record(t, out.connFailed, time.Now())
	}
	holding = false
	c.release(t)
	t.attempt++
	if out.err == nil {
		b.end(t)
		return
	}
	retryable := RetryableKind(out.err.Kind) && !out.streamed && (!restricted || out.unprocessed)
	if !retryable || last || b.ctx.Err() != nil {
		if retryable && last && t.attempt > 1 {
			t.res.Error = &Error{
				Kind:     KindRetriesExhausted,
				Message:  fmt.Sprintf("retries exhausted: giving up after %d attempt(s): %s", t.attempt, out.err.Message),
				URL:      redactURL(p.urlString),
				Attempts: t.attempt,
				Last:     out.err,
			}
		} else {
			t.res.Error = out.err
			t.res.Error.Attempts = t.attempt
		}
		b.end(t)
		return
	}
	delay := c.retry.Delay(t.attempt-1, out.retryAfter, out.hasRetryAfter, rand.Float64())
	c.log.Debug("retrying", "url", redactURL(p.urlString), "attempt", t.attempt, "error", out.err.Message, "delay", delay)
	if !b.queueRetry(t, time.Now().Add(delay)) {
		t.res.Error = b.cancelledError(p)
		b.end(t)
	}
}

// release gives back the slots t holds: the client's, and its host's
// when the client has per-host limits.
func (c *Client) release(t *task) {
	c.limiter.release()
	c.releaseHost(t)
}

// releaseHost gives t's per-host slot back, when the client has per-host
// limits.
func (c *Client) releaseHost(t *task) {
	if c.hosts != nil {
		c.hosts.done(t)
	}
}

// attempt makes one attempt and fills res on success (or, when a
// retryable status will not be retried -- the last attempt, or a request
// that may not be replayed -- with that final response).
func (c *Client) attempt(b *Batch, p *prepared, res *NormalizedResponse, begin time.Time, last, restricted bool) (out outcome) {
	timeout := p.timeout
	if timeout == 0 {
		timeout = c.cfg.Timeout
	}
	// The trace notes the timings and, where it decides a retry, whether
	// the request's headers went out.
	a, ctx := startAttempt(b, begin, seconds(timeout), limit(c.cfg.ReadTimeout), restricted)
	trace := &a.trace
	defer func() {
		res.Timings = trace.timings(time.Now())
		a.end(b)
	}()

	proxy, fromPool := p.proxy, false
	if proxy == nil && c.proxies != nil {
		proxy, fromPool = c.proxies.Next(time.Now()), true
	}
	out.direct = proxy == nil
	route := Route{VerifySSL: boolOr(c.cfg.VerifySSL, true), Protocol: c.protocol, Plain: p.plain}
	if p.verifySSL != nil {
		route.VerifySSL = *p.verifySSL
	}
	if p.http2 != nil && route.Protocol != ProtocolHTTP3 {
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

	req, shared, err := c.newRequest(ctx, p)
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
	resp, err := send(req, shared, c.backend.RoundTripper(route), jar, redirects)
	if err != nil {
		e := classify(err, a, p.urlString, route.Proxy) // redacts the proxy
		if fromPool && e.Kind == KindProxy {
			c.proxyFailed(proxy, e)
		}
		var op *net.OpError
		out.err = e
		out.connFailed = errors.As(err, &op) && op.Op == "dial"
		out.unprocessed = restricted && !trace.sent.Load()
		return out
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
		return outcome{err: e, unprocessed: true}
	}
	if fromPool {
		c.proxies.MarkSucceeded(proxy)
	}
	a.wd.watchBody(resp)

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
		unprocessed := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable
		if !last && (!restricted || unprocessed) {
			discardBody(resp)
			out.err, out.retryAfter, out.hasRetryAfter, out.unprocessed = statusErr, ra, has, unprocessed
			return out
		}
	}
	defer resp.Body.Close()

	res.StatusCode = resp.StatusCode
	if statusErr != nil || !b.opts.HeadersOnFailure {
		res.Headers = normalizeHeaders(resp.Header)
	}
	res.URL = redactedURL(resp.Request.URL, p.urlString)
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
		e := classify(err, a, p.urlString, route.Proxy)
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
