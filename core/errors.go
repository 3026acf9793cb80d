package core

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/quic-go/quic-go"
)

// ErrorKind classifies a failure. The values are stable strings: they cross
// the C ABI and the Python package maps them to exception types.
type ErrorKind string

const (
	KindValidation       ErrorKind = "validation"         // bad input, found before any network work
	KindConfiguration    ErrorKind = "configuration"      // bad client setting (unknown backend, ...)
	KindTimeout          ErrorKind = "timeout"            // the request's timeout passed
	KindConnect          ErrorKind = "connect"            // could not connect to the server
	KindTLS              ErrorKind = "tls"                // TLS handshake or certificate failure
	KindProxy            ErrorKind = "proxy"              // the proxy could not be reached or refused
	KindTooManyRedirects ErrorKind = "too_many_redirects" // redirect limit reached
	KindBodyTooLarge     ErrorKind = "body_too_large"     // body exceeded MaxBodySize
	KindCancelled        ErrorKind = "cancelled"          // batch cancelled or client closed
	KindRetriesExhausted ErrorKind = "retries_exhausted"  // every attempt failed; see Error.Last
	KindTransport        ErrorKind = "transport"          // connection reset, truncated body, protocol error
	KindHTTPStatus       ErrorKind = "http_status"        // a retryable status (429, 5xx); only as Error.Last
	KindIO               ErrorKind = "io"                 // writing a download or stream callback failed
)

// Sentinel errors, so that errors.Is(err, core.ErrTimeout) works on any *Error.
var (
	ErrValidation       = &Error{Kind: KindValidation}
	ErrConfiguration    = &Error{Kind: KindConfiguration}
	ErrTimeout          = &Error{Kind: KindTimeout}
	ErrConnect          = &Error{Kind: KindConnect}
	ErrTLS              = &Error{Kind: KindTLS}
	ErrProxy            = &Error{Kind: KindProxy}
	ErrTooManyRedirects = &Error{Kind: KindTooManyRedirects}
	ErrBodyTooLarge     = &Error{Kind: KindBodyTooLarge}
	ErrCancelled        = &Error{Kind: KindCancelled}
	ErrRetriesExhausted = &Error{Kind: KindRetriesExhausted}
	ErrTransport        = &Error{Kind: KindTransport}
	ErrHTTPStatus       = &Error{Kind: KindHTTPStatus}
	ErrIO               = &Error{Kind: KindIO}
)

// Error is the one error type of the engine. Its JSON form crosses the C ABI.
type Error struct {
	Kind    ErrorKind `json:"kind"`
	Message string    `json:"message"`
	// Field names the offending field or setting for validation and
	// configuration errors ("url", "headers", "concurrency", ...).
	Field string `json:"field,omitempty"`
	// URL is the request URL with any password redacted.
	URL string `json:"url,omitempty"`
	// Proxy is the proxy in use, password redacted, for proxy errors.
	Proxy string `json:"proxy,omitempty"`
	// Status is the HTTP status for KindHTTPStatus.
	Status int `json:"status,omitempty"`
	// RetryAfter is the server's Retry-After in seconds, when it sent one.
	RetryAfter float64 `json:"retry_after,omitempty"`
	// Attempts is how many attempts were made (set on the final error).
	Attempts int `json:"attempts,omitempty"`
	// Last is the error of the final attempt when Kind is KindRetriesExhausted.
	Last *Error `json:"last_error,omitempty"`

	cause error
}

func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Kind)
	}
	return e.Message
}

// Unwrap returns the underlying Go error, if any; for KindRetriesExhausted
// it returns Last, so that errors.Is(err, ErrTimeout) sees why the final
// attempt failed.
func (e *Error) Unwrap() error {
	if e.Last != nil {
		return e.Last
	}
	return e.cause
}

// Is reports whether target is a sentinel of the same kind, so that
// errors.Is(err, ErrTimeout) matches every timeout error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Kind == e.Kind
}

func validationError(field, format string, args ...any) *Error {
	return &Error{Kind: KindValidation, Field: field, Message: fmt.Sprintf(format, args...)}
}

func configError(field, format string, args ...any) *Error {
	return &Error{Kind: KindConfiguration, Field: field, Message: fmt.Sprintf(format, args...)}
}

// errBodyTooLarge is returned by the body reader; it carries no URL.
type bodyTooLargeError struct{ limit int64 }

func (e bodyTooLargeError) Error() string {
	return fmt.Sprintf("response body exceeds the limit of %d bytes (max_body_size)", e.limit)
}

// classify turns a transport-level error into an *Error of the right kind.
// attempt is the attempt's context: its batch's tells a timeout from a
// cancel.
func classify(err error, attempt *attemptCtx, rawURL, proxy string) *Error {
	var fe *Error
	if errors.As(err, &fe) {
		return fe
	}
	e := &Error{cause: err, URL: redactURL(rawURL)}
	var (
		certErr   *tls.CertificateVerificationError
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		certInv   x509.CertificateInvalidError
		recHdrErr tls.RecordHeaderError
		alertErr  tls.AlertError
		opErr     *net.OpError
		tooLarge  bodyTooLargeError
		redirErr  *redirectLimitError
		proxyErr  *proxyConnectError
		netErr    net.Error
		quicErr   *quic.TransportError
	)
	switch {
	case attempt.parent.Err() != nil && !errors.Is(context.Cause(attempt.parent), context.DeadlineExceeded):
		e.Kind = KindCancelled
	case errors.As(err, &tooLarge):
		e.Kind = KindBodyTooLarge
	case errors.As(err, &redirErr):
		e.Kind = KindTooManyRedirects
	case errors.As(err, &proxyErr):
		e.Kind = KindProxy
		e.Proxy = redactURL(proxy)
	case errors.As(err, &opErr) && (opErr.Op == "proxyconnect" || strings.HasPrefix(opErr.Op, "socks ")):
		// "socks connect": the SOCKS5 proxy refused (authentication, rules).
		e.Kind = KindProxy
		e.Proxy = redactURL(proxy)
	case attempt.Err() != nil || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		e.Kind = KindTimeout
		if why := attempt.timeoutCause(); why != nil {
			e.Message = why.msg
			return e
		}
		if errors.As(err, &opErr) && opErr.Op == "dial" {
			e.Message = "timeout: connecting took longer than connect_timeout: " + redactText(unwrapURLError(err).Error(), rawURL, proxy)
			return e
		}
	case errors.As(err, &quicErr) && quicErr.ErrorCode == alertNoApplicationProtocol:
		// A QUIC server that does not speak h3.
		e.Kind = KindTLS
		e.Message = "tls: the server does not offer HTTP/3 (ALPN h3)"
		return e
	case errors.As(err, &quicErr) && quicErr.ErrorCode.IsCryptoError():
		// The QUIC handshake's TLS failed (a certificate, an alert).
		e.Kind = KindTLS
	case strings.Contains(err.Error(), "unexpected ALPN protocol") || strings.Contains(err.Error(), "no application protocol"):
		// x/net/http2 on a server that does not offer h2.
		e.Kind = KindTLS
		e.Message = "tls: the server does not offer HTTP/2 (ALPN); use backend \"auto\" or \"http1\""
		return e
	case errors.As(err, &certErr), errors.As(err, &unknownCA), errors.As(err, &hostErr),
		errors.As(err, &certInv), errors.As(err, &recHdrErr), errors.As(err, &alertErr),
		errors.As(err, &opErr) && opErr.Op == "remote error": // a TLS alert from the server
		e.Kind = KindTLS
	case errors.As(err, &opErr) && opErr.Op == "dial":
		e.Kind = KindConnect
		if proxy != "" && strings.HasPrefix(proxy, "socks5") {
			e.Kind = KindProxy
			e.Proxy = redactURL(proxy)
		}
	default:
		e.Kind = KindTransport
	}
	text := redactText(unwrapURLError(err).Error(), rawURL, proxy)
	if strings.HasPrefix(text, string(e.Kind)+": ") {
		e.Message = text
	} else {
		e.Message = string(e.Kind) + ": " + text
	}
	return e
}

// unwrapURLError drops net/http's "Get \"url\": " prefix; we report the
// URL (redacted) in its own field.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// redactURL hides the password of a URL, as url.URL.Redacted does, also
// where the text does not parse as having userinfo (no "//", as in
// "user:pw@host/x", which url.Parse reads as an opaque URL).
func redactURL(raw string) string {
	if raw == "" || !strings.Contains(raw, "@") {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable URL>"
	}
	if u.User != nil {
		return u.Redacted()
	}
	prefix, rest := "", raw
	if i := strings.Index(raw, "://"); i >= 0 {
		prefix, rest = raw[:i+3], raw[i+3:]
	}
	authority := rest
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		authority = rest[:end]
	}
	at := strings.LastIndexByte(authority, '@')
	colon := strings.IndexByte(authority[:max(at, 0)], ':')
	if at < 0 || colon < 0 {
		return raw
	}
	return prefix + rest[:colon] + ":xxxxx" + rest[at:]
}

// redactText removes the passwords of the request URL and the proxy from a
// message produced by a lower layer.
func redactText(msg, rawURL, proxy string) string {
	for _, raw := range []string{rawURL, proxy} {
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok && pw != "" {
				msg = strings.ReplaceAll(msg, pw, "xxxxx")
			}
		}
	}
	return msg
}

// redactedURL is u.Redacted(), for a u that may have been parsed from
// raw: when u would print as raw exactly, raw itself (which holds no
// password then), so the common final URL -- the one requested -- is not
// built again. The check covers the URLs of plain form (scheme, a host of
// characters url.URL.String leaves as they are, a path that starts with
// '/', a query, no user, fragment or opaque part); others are printed.
func redactedURL(u *url.URL, raw string) string {
	if u.Opaque != "" || u.User != nil || u.Fragment != "" || u.Scheme == "" || !plainHost(u.Host) {
		return u.Redacted()
	}
	path := u.EscapedPath()
	if path != "" && path[0] != '/' {
		return u.Redacted()
	}
	rest, ok := strings.CutPrefix(raw, u.Scheme)
	if ok {
		rest, ok = strings.CutPrefix(rest, "://")
	}
	if ok {
		rest, ok = strings.CutPrefix(rest, u.Host)
	}
	if ok {
		rest, ok = strings.CutPrefix(rest, path)
	}
	if ok && (u.ForceQuery || u.RawQuery != "") {
		rest, ok = strings.CutPrefix(rest, "?")
		if ok {
			rest, ok = strings.CutPrefix(rest, u.RawQuery)
		}
	}
	if ok && rest == "" {
		return raw
	}
	return u.Redacted()
}

// plainHost reports whether h is not empty and url.URL.String writes it
// as it is: letters, digits, and ".-_~:[]".
func plainHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(".-_~:[]", c) >= 0) {
			return false
		}
	}
	return true
}
