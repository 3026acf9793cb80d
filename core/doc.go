// Package core is the fastreq engine: a pure-Go client that runs thousands
// of HTTP requests at once with retries, a shared token-bucket rate limit, a
// shared concurrency gate, proxy rotation, a cookie session, User-Agent
// rotation, browser impersonation (a browser's TLS ClientHello and HTTP/2
// settings), HTTP/1.1, HTTP/2 (h2 over TLS and h2c) and HTTP/3 over QUIC
// (the "http3" backend, or ClientConfig.HTTP3 for upgrades by Alt-Svc with
// a fallback to TCP), streaming and downloads to files.
//
// A Client is safe for concurrent use. Create one with NewClient, submit
// requests with Do (one request) or Submit (a batch whose results arrive as
// they complete and, with Wait, all together in order), and Close it when
// done: Close cancels everything still in flight.
//
// As in net/http, an HTTP status such as 404 or 500 is a response, not an
// error; a request fails only when no response could be had (or, for the
// retryable statuses 429, 500, 502, 503 and 504, when retries ran out).
// Failures are *Error values with a Kind that callers (and the C and Python
// layers) map to their own exception types.
//
// Every response carries the Timings of its last attempt (DNS, connect,
// TLS, time to first byte, total, connection reused). A client looks host
// names up through its own DNS cache (ClientConfig.DNSCacheTTL) and, with
// ClientConfig.AutoThrottle, lowers the rate of a host that answers 429 or
// 503 or times out.
package core
