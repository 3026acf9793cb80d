/*
 * fastreq.h - the C interface of libfastreq.so, the fastreq HTTP engine.
 *
 * fastreq runs thousands of HTTP requests at once with retries, a shared
 * rate limit, a concurrency limit, proxies, cookies and HTTP/2. This header
 * is the stable contract; the library is written in Go and exports these
 * functions through cgo.
 *
 * Conventions
 *   - Every function is safe to call from any thread.
 *   - Functions return FASTREQ_OK (0) or a negative FASTREQ_E* code, unless
 *     documented otherwise. No function aborts the process on bad input:
 *     a stale, zero or foreign handle gives FASTREQ_EBADHANDLE.
 *   - Configuration and requests cross as UTF-8 JSON (pointer + length; no
 *     NUL terminator needed). Field names are those of the Python API:
 *     see README.md, "Client settings" and "Request fields".
 *   - Handles are opaque non-zero 64-bit integers. 0 is never a handle.
 *     Handles are never reused within a process.
 *
 * Memory
 *   - Every pointer the library hands out (error strings, record bodies,
 *     record metadata) was allocated by the library and is freed by the
 *     caller with fastreq_free() or fastreq_records_release(), exactly once.
 *   - The library never keeps a pointer the caller passed in after the call
 *     returns: the caller may free its buffers at once.
 *   - fastreq_version() returns a static string: do not free it.
 *
 * Processes
 *   - The library holds a Go runtime. Load exactly one Go-built shared
 *     library per process, never unload it, and do not use it in a child
 *     created by fork() after the parent called into it (start the child
 *     with exec, or use posix_spawn).
 *   - Process-wide settings stay the host's: the library installs no
 *     signal handlers, writes nothing to stdout or stderr, and puts back
 *     the soft RLIMIT_NOFILE the Go runtime raises as it starts (a client
 *     needs at most max_connections sockets, concurrency + 8 by default).
 */
#ifndef FASTREQ_H
#define FASTREQ_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version this header describes; compare with fastreq_abi_version(). */
#define FASTREQ_ABI_VERSION 2

/* Return codes. */
#define FASTREQ_OK          0
#define FASTREQ_EINVAL     -1 /* bad JSON, unknown field, out-of-range value, NULL argument */
#define FASTREQ_EBADHANDLE -2 /* zero, unknown, closed or wrong-type handle */
#define FASTREQ_ECLOSED    -3 /* the client was closed */
#define FASTREQ_EINTERNAL  -4 /* a bug inside the library (recovered); the message says what */
#define FASTREQ_ESYS       -5 /* the operating system refused (no file descriptors, ...) */

/* Error kinds of a record (fastreq_record_t.error). The same names appear as
 * "kind" in the error JSON. */
#define FASTREQ_ERR_NONE               0
#define FASTREQ_ERR_VALIDATION         1 /* bad request, found before any network work */
#define FASTREQ_ERR_CONFIGURATION      2
#define FASTREQ_ERR_TIMEOUT            3
#define FASTREQ_ERR_CONNECT            4
#define FASTREQ_ERR_TLS                5
#define FASTREQ_ERR_PROXY              6
#define FASTREQ_ERR_TOO_MANY_REDIRECTS 7
#define FASTREQ_ERR_BODY_TOO_LARGE     8
#define FASTREQ_ERR_CANCELLED          9
#define FASTREQ_ERR_RETRIES_EXHAUSTED 10 /* "last_error" in the metadata says why */
#define FASTREQ_ERR_TRANSPORT         11 /* reset, truncated body, protocol error */
#define FASTREQ_ERR_HTTP_STATUS       12 /* only as last_error */
#define FASTREQ_ERR_IO                13 /* writing a download failed */
#define FASTREQ_ERR_INTERNAL          14

/* Record types (fastreq_record_t.type). */
#define FASTREQ_RECORD_RESULT 0 /* the final outcome of one request */
#define FASTREQ_RECORD_CHUNK  1 /* a piece of a streaming request's body */
#define FASTREQ_RECORD_READY  2 /* in a hub: the batch whose handle is `index` woke (fastreq_batch_notify) */

/* Submit flags. */
#define FASTREQ_SUBMIT_STRICT 1u /* the submit waits for the engine: any invalid request fails it; nothing runs */
/* Successful RESULT records carry no meta (NULL, meta_len 0); failed ones
 * still do. Saves encoding work for callers that need only status and body. */
#define FASTREQ_SUBMIT_META_ON_FAILURE 2u

/* Typical caller-side record chunk size for fastreq_batch_drain(). */
#define FASTREQ_DRAIN_CHUNK 256

/*
 * One completion record. Records of a batch arrive in completion order;
 * `index` ties each to its request. For one streaming request, its CHUNK
 * records arrive in body order and before its RESULT record.
 *
 * Fields the caller reads without parsing anything:
 *   index     position of the request in the submitted array
 *   type      FASTREQ_RECORD_RESULT or FASTREQ_RECORD_CHUNK (a hub's
 *             records are FASTREQ_RECORD_READY, with the batch's handle as
 *             index and nothing else)
 *   status    HTTP status of the final response, 0 when there was none
 *   error     FASTREQ_ERR_* (FASTREQ_ERR_NONE on success)
 *   body      body bytes (decoded from gzip/deflate), or the chunk; NULL
 *             when body_len is 0. Not NUL-terminated.
 *   meta      for RESULT records: NUL-terminated JSON of the response
 *             metadata: {"index", "id", "status_code", "headers" (lower-case
 *             names), "url" (final), "http_version" ("HTTP/1.1",
 *             "HTTP/2.0" or "HTTP/3.0"), "content_length",
 *             "path", "elapsed_ns", "attempts", "timings", "error": {"kind",
 *             "message", "field", "url", "proxy", "status", "retry_after",
 *             "attempts", "last_error"}}; NULL for CHUNK records, and for
 *             successful RESULT records of a batch submitted with
 *             FASTREQ_SUBMIT_META_ON_FAILURE.
 *             "timings" is where the last attempt's time went, integers in
 *             nanoseconds: {"dns_ns" (name lookup; 0 for an IP address),
 *             "connect_ns" (TCP connect; over HTTP/3 the whole QUIC
 *             handshake, TLS included), "tls_ns" (TLS handshake, and a
 *             proxy's CONNECT; 0 over HTTP/3), "ttfb_ns" (attempt start to the first
 *             byte of the response), "total_ns" (the attempt, body
 *             included), "reused" (the connection had carried a request
 *             before; dns_ns, connect_ns and tls_ns are then 0)}; all 0
 *             when no attempt was made.
 * Ownership: body and meta belong to the caller once drained; release them
 * with fastreq_records_release() (or each with fastreq_free()). A caller
 * may keep a body past the release by taking its pointer and setting the
 * record's body to NULL first, then free it with fastreq_free() when done.
 * Memory: while 64 MiB of big bodies (64 KiB and up) are being read or
 * wait to be drained, the engine's next big read waits for one to be
 * drained, if the caller drained one in the last second; what the caller
 * keeps after draining holds nothing up.
 */
typedef struct fastreq_record {
    int64_t index;
    int32_t type;
    int32_t status;
    int32_t error;
    int32_t reserved; /* zero */
    uint8_t *body;
    int64_t body_len;
    char *meta;
    int64_t meta_len; /* strlen(meta) */
} fastreq_record_t;

/* The library's own build defines FASTREQ_TYPES_ONLY to share the types
 * above with its generated export declarations. */
#ifndef FASTREQ_TYPES_ONLY

/* ---- Library ---------------------------------------------------------- */

/* Returns: the library version, e.g. "0.1.0". A static string; do not free. */
const char *fastreq_version(void);

/* Returns: FASTREQ_ABI_VERSION of the library, for a load-time check. */
int32_t fastreq_abi_version(void);

/* Frees one pointer the library handed out. NULL is ignored. */
void fastreq_free(void *ptr);

/* Releases body and meta of n records and sets them to NULL, so a second
 * release of the same records is harmless. records may be NULL when n == 0. */
void fastreq_records_release(fastreq_record_t *records, int32_t n);

/* Copies n bytes from src (a record's body, say) to dst, as memcpy does;
 * for a host that must copy bodies into objects of its own language. When
 * dst is n bytes the host has just allocated, and its pages are new to the
 * process (as a big block fresh from the allocator is), the library first
 * makes them present with one system call where the system has one
 * (Linux: MADV_POPULATE_WRITE), which costs much less than the fault per
 * page the copy would otherwise take; dst's contents outside the n bytes
 * are never changed. dst and src must not overlap; NULL is allowed when n
 * is 0. */
void fastreq_copy_body(void *dst, const void *src, size_t n);

/* Returns: how many library-allocated buffers are live (handed out and not
 * yet freed, or waiting in a queue). A supported diagnostic for leak
 * checks (it costs one atomic add per buffer): 0 once every record was
 * released, every batch freed and its requests ended (fastreq_client_close
 * waits for those; after fastreq_batch_free alone they end in the
 * background). */
int64_t fastreq_live_buffers(void);

/* Sets the Go runtime's soft memory limit (GOMEMLIMIT) in bytes; a negative
 * value only reads it. Returns: the previous limit. The library's collector
 * runs at GOGC=200 unless GOGC is set in the environment when it loads. */
int64_t fastreq_set_memory_limit(int64_t bytes);

/* Runs a garbage collection and returns as much memory to the operating
 * system as possible. Returns: FASTREQ_OK. */
int32_t fastreq_free_os_memory(void);

/* Returns: the number of live handles (clients, batches and bench
 * servers). A supported diagnostic for leak checks: 0 once every client
 * was closed, every batch freed and every bench server stopped. */
int64_t fastreq_live_handles(void);

/*
 * Moves the engine's waiting log records (retries, proxies cooling down,
 * ...; at the level each client's "debug"/"verbose" settings ask for) into
 * *out as a NUL-terminated JSON array of {"time_ns", "level" ("debug",
 * "info", "warning", "error"), "message", "attrs": {...}}, which the caller
 * frees with fastreq_free(); *out is NULL when there is none. The library
 * keeps at most 10,000 records and drops the oldest past that (the next
 * drain starts with a warning saying how many).
 * Returns: the number of records (>= 0) or FASTREQ_EINVAL when out is NULL.
 */
int32_t fastreq_log_drain(char **out);

/*
 * Returns: the address of a counter of the log records fastreq_log_drain()
 * would return now (updated atomically by the library; read it, never
 * write it). A host that forwards logs after every batch reads it once per
 * batch instead of calling when there is nothing. Valid for the process.
 */
const volatile int64_t *fastreq_log_counter(void);

/* ---- Clients ---------------------------------------------------------- */

/*
 * Creates a client from a JSON object of client settings (the Python API's
 * names: backend, concurrency, max_connections, max_retries, rate_limit, rate_limit_burst,
 * http2, http3, follow_redirects, verify_ssl, ca_file, timeout, cookies, random_user_agent,
 * random_proxy, proxies, proxy_selection, proxy_cooldown, webshare_file,
 * headers, max_redirects, max_body_size, backoff_multiplier, jitter,
 * max_delay, concurrency_per_host, rate_limit_per_host,
 * rate_limit_per_host_burst, connect_timeout, read_timeout, retry_non_idempotent,
 * circuit_breaker_threshold, circuit_breaker_cooldown, impersonate, dns_cache_ttl,
 * auto_throttle, debug, verbose).
 * Absent fields keep their defaults; config may
 * be NULL (len 0) for all defaults.
 *
 * impersonate ("chrome131", "chrome133a", "chrome136", "safari180",
 * "safari184", "firefox133", "firefox135", "random" for one picked per
 * client, or "chrome", "safari", "firefox" for the newest of each) makes
 * https requests send that browser's TLS ClientHello, its HTTP/2 frames
 * (SETTINGS, connection window, pseudo-header and header order, HEADERS
 * priority) and its request headers, User-Agent included, except those
 * the request or headers set; another name is FASTREQ_EINVAL with kind
 * "configuration", field "impersonate" and the known names.
 *
 * HTTP/3: backend "http3" sends every request over HTTP/3 (QUIC, UDP):
 * an http:// URL is a FASTREQ_ERR_VALIDATION result (field "url"), and
 * proxies or impersonate with it are FASTREQ_EINVAL (kind
 * "configuration"; a request's own proxy, a FASTREQ_ERR_CONFIGURATION
 * result). http3 (false) lets backend "auto" move an https origin to
 * HTTP/3 once it advertised h3 in Alt-Svc, falling back to TCP when the
 * QUIC handshake fails (within connect_timeout, at most 3 s) and keeping
 * that origin on TCP for 5 minutes, doubling per further failure.
 *
 * Field safety, as defaults: connect_timeout (30 s per TCP connect and
 * TLS handshake) and read_timeout (300 s without a byte) bound a silent
 * server even with no timeout; a negative value removes either bound.
 * POST, PATCH and other non-idempotent requests are retried only when
 * the server provably did not process them (never sent, or answered 429
 * or 503) unless retry_non_idempotent is true. circuit_breaker_threshold
 * (20) connection failures in a row to one host fail its queued requests
 * fast with FASTREQ_ERR_CONNECT for circuit_breaker_cooldown (30 s)
 * before one probe; negative turns it off. A client holds at most
 * max_connections sockets (0, the default: concurrency + 8; else at least
 * concurrency), in use or idle, whatever the number of hosts. dns_cache_ttl
 * (60 s) is how long a client keeps the addresses of a host name ("no
 * such host" up to 5 s; concurrent lookups of a name are one); negative
 * keeps nothing. auto_throttle (false) adapts each host's rate to its
 * answers: a 429, a 503 or a timeout halves it, successes raise it step by
 * step, between 1 request/s and rate_limit_per_host (when set); each
 * slow-down is an info log record. On a redirect to
 * another origin (scheme, host, port) the caller's Authorization,
 * Proxy-Authorization and Cookie headers are dropped; no Referer is added.
 *
 * Returns: FASTREQ_OK and *client_out set; or FASTREQ_EINVAL and, if err_out
 * is not NULL, *err_out set to a JSON error object {"kind", "field",
 * "message"} (kind "validation" or "configuration"; field names the
 * offending setting) that the caller frees with fastreq_free().
 */
int32_t fastreq_client_new(const char *config_json, size_t config_len,
                           uint64_t *client_out, char **err_out);

/*
 * Closes a client: cancels every request in flight (their records arrive
 * with FASTREQ_ERR_CANCELLED), waits for them to end, and releases the
 * client's connections. Batches of the client must still be freed.
 * Returns: FASTREQ_OK, also when the client was already closed;
 * FASTREQ_EBADHANDLE for a handle that never was a client.
 */
int32_t fastreq_client_close(uint64_t client);

/*
 * Adds or updates session cookies (a JSON object of name -> value) sent
 * with every later request of the client.
 * Returns: FASTREQ_OK; FASTREQ_EINVAL (+ *err_out as for fastreq_client_new);
 * FASTREQ_EBADHANDLE.
 */
int32_t fastreq_client_set_cookies(uint64_t client, const char *cookies_json,
                                   size_t len, char **err_out);

/* Forgets every session cookie, including those servers set.
 * Returns: FASTREQ_OK or FASTREQ_EBADHANDLE. */
int32_t fastreq_client_reset_cookies(uint64_t client);

/*
 * Checks a JSON array of requests as a STRICT fastreq_batch_submit does
 * (decoding, every field, every request's URL and settings under the
 * default client settings) and runs nothing.
 * Returns: FASTREQ_OK, or FASTREQ_EINVAL with *err_out (may be NULL) as
 * a strict submit would return it.
 */
int32_t fastreq_requests_check(const char *requests_json, size_t len, char **err_out);

/* ---- Batches ---------------------------------------------------------- */

/*
 * Submits a JSON array of requests, each an object with the Python API's
 * names: url (required), method, params (object, or array of [name, value]
 * pairs to keep order), data (string = text body; object or pairs = form),
 * content (base64 bytes), json (any JSON value, sent as the body), headers,
 * cookies, timeout, proxy, http2, follow_redirects, verify_ssl, stream,
 * output_path, max_body_size, retry_non_idempotent, id. Requests start
 * at once, within the
 * client's rate and concurrency limits.
 *
 * flags: 0 or a combination of FASTREQ_SUBMIT_STRICT and
 * FASTREQ_SUBMIT_META_ON_FAILURE (other bits are refused with
 * FASTREQ_EINVAL).
 *
 * With STRICT the call waits until the engine has read every request:
 * Returns: FASTREQ_OK and *batch_out set: every request will yield exactly
 * one RESULT record; FASTREQ_EINVAL with *err_out (bad JSON, unknown field,
 * an invalid request: the message names its index; JSON that does not
 * decode is reported as such even when an earlier request is invalid);
 * FASTREQ_EBADHANDLE; FASTREQ_ECLOSED when the client is closed. Nothing
 * runs when it fails.
 *
 * Without STRICT the call returns at once (the library keeps a copy of
 * the requests), FASTREQ_OK with *batch_out set, or FASTREQ_ESYS: an
 * invalid request yields its own RESULT record with FASTREQ_ERR_VALIDATION,
 * and a batch that cannot start at all (what STRICT refuses as a whole:
 * JSON that does not decode, a client that is closed or not a client)
 * yields no records: fastreq_batch_wait, _next, _drain and _done return
 * that code instead (resubmit with STRICT for the error's JSON). For a
 * caller that sends requests it made itself, one at a time: it never
 * waits for the engine to read them.
 *
 * No batch function, this one included, runs the library's Go runtime on
 * the caller's thread: submitting, waiting, draining, releasing,
 * cancelling and freeing are plain C that hands work to the engine's own
 * threads. The batch must be freed with fastreq_batch_free().
 */
int32_t fastreq_batch_submit(uint64_t client, const char *requests_json,
                             size_t len, uint32_t flags, uint64_t *batch_out,
                             char **err_out);

/*
 * Returns: a file descriptor that becomes readable when records are waiting
 * (an eventfd, written only when the queue goes from empty to non-empty,
 * or with fastreq_batch_set_wake() when its threshold is reached).
 * Read it (8 bytes, non-blocking) before draining, then drain until a short
 * read, and no wakeup is lost. The descriptor belongs to the batch: do not
 * close it; it is closed by fastreq_batch_free(). It is made on the first
 * call (readable at once if records are already waiting), so a caller that
 * only uses fastreq_batch_wait() never has one. Negative on error.
 */
int32_t fastreq_batch_fd(uint64_t batch);

/*
 * Waits until at least one record is waiting (or the threshold of
 * fastreq_batch_set_wake()), the batch has delivered all its records, or
 * timeout_ms passes (0 = just check; negative = no limit).
 * Wait in slices (e.g. 100 ms) to stay responsive to signals.
 * Returns: the number of records waiting (> 0), 0 on timeout,
 * FASTREQ_EBADHANDLE, or the code of a batch that could not start (see
 * fastreq_batch_submit without STRICT). When the batch is done and drained
 * it returns 0 at once; use fastreq_batch_done() to tell.
 */
int32_t fastreq_batch_wait(uint64_t batch, int32_t timeout_ms);

/*
 * fastreq_batch_wait() then fastreq_batch_drain() in one call: waits as
 * the former (timeout_ms alike), then moves up to max waiting records
 * into records[0..n). The loop of a caller that blocks is one call per
 * wakeup: while ((n = fastreq_batch_next(b, recs, max, 100)) >= 0) {...}
 * until fastreq_batch_done() says so.
 * Returns: n (0 on timeout, or when the batch is done and drained) or a
 * negative code (FASTREQ_EINVAL when records is NULL or max <= 0; the
 * code of a batch that could not start, as fastreq_batch_wait).
 */
int32_t fastreq_batch_next(uint64_t batch, fastreq_record_t *records,
                           int32_t max, int32_t timeout_ms);

/*
 * Sets when the batch wakes its caller: fastreq_batch_wait(),
 * fastreq_batch_next() and the descriptor of fastreq_batch_fd() then wake
 * only once min_records records are waiting, the waiting bodies hold
 * 4 MiB, every result has arrived, or (max_delay_us > 0) at most
 * max_delay_us microseconds after the oldest waiting record arrived. The
 * default, min_records 1, wakes on any record. One wakeup per bunch
 * instead of one per record costs the caller's thread, and the engine, far
 * less: a caller that wants only the whole batch sets a large min_records
 * and no delay; one that shows results as they land (progress, an
 * as-completed loop) a moderate min_records and the latency it accepts.
 * Returns: FASTREQ_OK, FASTREQ_EINVAL (min_records < 1 or max_delay_us < 0)
 * or FASTREQ_EBADHANDLE.
 */
int32_t fastreq_batch_set_wake(uint64_t batch, int32_t min_records, int32_t max_delay_us);

/*
 * Moves up to max waiting records into records[0..n). Never blocks.
 * Returns: n (0 when none is waiting) or a negative code (as
 * fastreq_batch_next). The caller owns the drained records' buffers (see
 * fastreq_record_t).
 */
int32_t fastreq_batch_drain(uint64_t batch, fastreq_record_t *records, int32_t max);

/* Returns: 1 when every RESULT record has been drained, 0 when not yet,
 * FASTREQ_EBADHANDLE, or the code of a batch that could not start (see
 * fastreq_batch_submit without STRICT). */
int32_t fastreq_batch_done(uint64_t batch);

/* Cancels a batch: requests not yet finished end with FASTREQ_ERR_CANCELLED
 * records. Returns at once. Returns: FASTREQ_OK or FASTREQ_EBADHANDLE. To
 * stop a batch whose results are no longer wanted, free it: that ends
 * what has not started without a record at all. */
int32_t fastreq_batch_cancel(uint64_t batch);

/*
 * A hub gathers the wakeups of many batches on one descriptor, for a
 * caller that waits for many small batches at once (an event loop with a
 * request per task): rather than one descriptor per batch, it watches the
 * hub's. A hub is a batch without requests: wait for it, drain it and free
 * it with the batch functions (fastreq_batch_fd, _wait, _next, _drain,
 * _set_wake, _free); it never ends. Its records are
 * FASTREQ_RECORD_READY, one each time a batch given to it wakes its
 * waiters (by that batch's wake rule, see fastreq_batch_set_wake), with
 * the batch's handle as index; the caller then drains that batch. A READY
 * record for a batch freed since is to be ignored.
 * Returns: FASTREQ_OK and *hub_out set, FASTREQ_EINVAL (hub_out NULL) or
 * FASTREQ_ESYS.
 */
int32_t fastreq_hub_new(uint64_t *hub_out);

/*
 * From now on, each time batch wakes its waiters, hub gets a READY record
 * for it; at once when the batch is awake already (records waiting, or a
 * batch that could not start), so no wakeup is missed between the submit
 * and this call. A batch reports to one hub. The batch's own waits and
 * descriptor work as before.
 * Returns: FASTREQ_OK, FASTREQ_EBADHANDLE (either handle), FASTREQ_EINVAL
 * (hub is not a hub, batch is one, or batch reports to a hub already).
 */
int32_t fastreq_batch_notify(uint64_t batch, uint64_t hub);

/*
 * Frees a batch: cancels it if it is still running, releases records
 * nobody drained, and closes its descriptor. It does not wait for the
 * engine: requests still queued end in the background (their records are
 * dropped), so freeing costs the same whatever the batch's size;
 * fastreq_client_close waits for them. The handle is invalid afterwards.
 * Returns: FASTREQ_OK or FASTREQ_EBADHANDLE.
 */
int32_t fastreq_batch_free(uint64_t batch);

/* ---- Bench server ------------------------------------------------------
 *
 * A loopback HTTP server for benchmarks (`fastreq bench`), so a client can
 * be measured without a server of its own. It answers every path and
 * method with 200 and the same body of body_len bytes (JSON,
 * {"pad":"xxx..."}, when body_len >= 10; else body_len bytes of 'x'),
 * over HTTP/1.1 and h2c (HTTP/2 with prior knowledge). It listens on
 * 127.0.0.1 only, on a port the system picks, and runs only from
 * fastreq_bench_server_start until fastreq_bench_server_stop or the end of
 * the process. A running server counts as a live handle
 * (fastreq_live_handles).
 */

/*
 * Starts a bench server serving a body of body_len bytes (0 to 64 MiB).
 * Returns: FASTREQ_OK, *server_out set to its handle and *url_out to its
 * base URL ("http://127.0.0.1:PORT", NUL-terminated) that the caller frees
 * with fastreq_free(); FASTREQ_EINVAL (server_out or url_out NULL,
 * body_len out of range) or FASTREQ_ESYS (no port to listen on), with
 * *err_out as for fastreq_client_new when err_out is not NULL.
 */
int32_t fastreq_bench_server_start(int64_t body_len, uint64_t *server_out,
                                   char **url_out, char **err_out);

/*
 * Stops a bench server: closes its listener and every connection and
 * waits for it to end. The handle is invalid afterwards.
 * Returns: FASTREQ_OK or FASTREQ_EBADHANDLE (not a server, or already
 * stopped).
 */
int32_t fastreq_bench_server_stop(uint64_t server);

/* ---- End of bench server ---------------------------------------------- */

#endif /* FASTREQ_TYPES_ONLY */

#ifdef __cplusplus
}
#endif

#endif /* FASTREQ_H */
