/*
 * test_fastreq.c - tests of libfastreq.so through include/fastreq.h only.
 *
 * Run by `make -C tests/c run` (see run.sh): the test server's plain HTTP
 * URL arrives in FASTREQ_TEST_URL, and the program runs under valgrind.
 * Every test checks that it handed back every buffer it drained
 * (fastreq_live_buffers() == 0), and main checks at the end that every
 * handle is gone too, since a suppression must never hide a leak of the
 * library's own buffers.
 *
 * Tests (main's table): version, client_new_errors, cookies, bad_handles,
 * submit_errors, batch_1000_fd, cancel, timeout, wait_timeout,
 * close_inflight, streaming, output_path, buffer_bounds, copy_body, wait_vs_free,
 * batch_next_and_logs, batch_set_wake, timings, http3 (which also needs
 * FASTREQ_TEST_H3_URL and FASTREQ_TEST_CA_FILE).
 *
 * Usage: test_fastreq [test-name ...]   (no names: every test)
 * Exit status: 0 when every test passed, 1 otherwise.
 */
#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include "fastreq.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- A tiny test harness ------------------------------------------------ */

static int g_failures;     /* failed checks, all tests */
static const char *g_test; /* name of the running test */
static const char *g_url;  /* http://127.0.0.1:port of the test server */

static void failf(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "FAIL %s (%s:%d): ", g_test, file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    g_failures++;
}

/* CHECK records a failure and goes on; REQUIRE also leaves the test. Both
 * take a printf-style message after the condition. */
#define CHECK(cond, ...)                                     \
    do {                                                     \
        if (!(cond)) failf(__FILE__, __LINE__, __VA_ARGS__); \
    } while (0)
#define REQUIRE(cond, ...)                              \
    do {                                                \
        if (!(cond)) {                                  \
            failf(__FILE__, __LINE__, __VA_ARGS__);     \
            return;                                     \
        }                                               \
    } while (0)
#define CHECK_RC(got, want)                                                      \
    do {                                                                         \
        long long got_ = (long long)(got), want_ = (long long)(want);            \
        if (got_ != want_)                                                       \
            failf(__FILE__, __LINE__, "%s returned %lld, want %lld (%s)", #got, \
                  got_, want_, #want);                                           \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- Helpers ----------------------------------------------------------- */

/* The body of /x/json (tests/testserver/misbehave.go, JSONBody). */
static const char JSON_BODY[] =
    "{\"id\":12345,\"name\":\"fastreq\",\"description\":\"fixed JSON document for "
    "benchmarks\",\"active\":true,\"score\":98.6,\"tags\":[\"http\",\"client\","
    "\"bench\"],\"owner\":{\"login\":\"fastreq\",\"id\":1},\"items\":[1,2,3,4,5]}";

/* A growable string for building request JSON. */
typedef struct {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) abort();
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        b->cap = (b->cap + (size_t)n + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
}

/* Whether the JSON text has "key":"value" (the library writes compact JSON). */
static bool json_has_str(const char *json, const char *key, const char *value)
{
    char pat[256];
    snprintf(pat, sizeof pat, "\"%s\":\"%s\"", key, value);
    return json && strstr(json, pat) != NULL;
}

/* Whether the JSON text has "key":number. */
static bool json_has_num(const char *json, const char *key, long long value)
{
    char pat[256];
    snprintf(pat, sizeof pat, "\"%s\":%lld", key, value);
    const char *p = json ? strstr(json, pat) : NULL;
    if (!p) return false;
    char next = p[strlen(pat)];
    return next == ',' || next == '}';
}

static uint64_t new_client(const char *cfg)
{
    uint64_t c = 0;
    char *err = NULL;
    int32_t rc = fastreq_client_new(cfg, strlen(cfg), &c, &err);
    if (rc != FASTREQ_OK) {
        failf(__FILE__, __LINE__, "client_new(%s) = %d: %s", cfg, rc, err ? err : "(no error)");
        fastreq_free(err);
        return 0;
    }
    if (err != NULL) failf(__FILE__, __LINE__, "client_new OK but err_out set");
    return c;
}

/* Defaults for tests: no retries (an error shows as itself), a safety
 * timeout so that a bug fails one request instead of hanging the run. */
#define TEST_CLIENT "{\"max_retries\":0,\"timeout\":60,\"random_user_agent\":false"

static uint64_t submit(uint64_t c, const char *json, uint32_t flags)
{
    uint64_t b = 0;
    char *err = NULL;
    int32_t rc = fastreq_batch_submit(c, json, strlen(json), flags, &b, &err);
    if (rc != FASTREQ_OK) {
        failf(__FILE__, __LINE__, "batch_submit = %d: %s", rc, err ? err : "(no error)");
        fastreq_free(err);
        return 0;
    }
    if (err != NULL) failf(__FILE__, __LINE__, "batch_submit OK but err_out set");
    return b;
}

/* Submits a JSON array of n copies of one request object, given without
 * its braces as printf-style fields. Returns the batch or 0 (test failed). */
static uint64_t submit_each(uint64_t c, int n, const char *fmt, ...)
{
    char obj[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(obj, sizeof obj, fmt, ap);
    va_end(ap);
    sbuf json = {0};
    sb_add(&json, "[");
    for (int i = 0; i < n; i++) sb_add(&json, "%s{%s}", i ? "," : "", obj);
    sb_add(&json, "]");
    uint64_t b = submit(c, json.p, 0);
    free(json.p);
    return b;
}

/* Drains every waiting record into a growing array (caller releases and
 * frees). Returns how many it appended. */
typedef struct {
    fastreq_record_t *r;
    int n, cap;
} recvec;

static int drain_into(uint64_t b, recvec *v)
{
    int total = 0;
    for (;;) {
        if (v->cap - v->n < FASTREQ_DRAIN_CHUNK) {
            v->cap = v->cap * 2 + FASTREQ_DRAIN_CHUNK;
            v->r = realloc(v->r, (size_t)v->cap * sizeof *v->r);
            if (!v->r) abort();
        }
        int32_t n = fastreq_batch_drain(b, v->r + v->n, FASTREQ_DRAIN_CHUNK);
        if (n < 0) {
            failf(__FILE__, __LINE__, "batch_drain = %d", n);
            return total;
        }
        v->n += n;
        total += n;
        if (n < FASTREQ_DRAIN_CHUNK) return total;
    }
}

/* Collects records until `results` RESULT records arrived or timeout_s
 * passes, waiting with fastreq_batch_wait in 100 ms slices. */
static int collect(uint64_t b, recvec *v, int results, double timeout_s)
{
    double deadline = now_s() + timeout_s;
    int got = 0;
    while (got < results && now_s() < deadline) {
        int32_t w = fastreq_batch_wait(b, 100);
        if (w < 0) {
            failf(__FILE__, __LINE__, "batch_wait = %d", w);
            break;
        }
        int before = v->n;
        drain_into(b, v);
        for (int i = before; i < v->n; i++)
            if (v->r[i].type == FASTREQ_RECORD_RESULT) got++;
    }
    return got;
}

static void recvec_free(recvec *v)
{
    fastreq_records_release(v->r, v->n);
    free(v->r);
    v->r = NULL;
    v->n = v->cap = 0;
}

/* Checks the invariants of every RESULT record's metadata. */
static void check_meta(const fastreq_record_t *r)
{
    CHECK(r->meta != NULL, "record %" PRId64 ": RESULT without meta", r->index);
    if (!r->meta) return;
    CHECK((int64_t)strlen(r->meta) == r->meta_len, "record %" PRId64 ": meta_len %" PRId64 " != strlen %zu",
          r->index, r->meta_len, strlen(r->meta));
    CHECK(r->meta[0] == '{' && r->meta[r->meta_len - 1] == '}', "record %" PRId64 ": meta is not an object: %s",
          r->index, r->meta);
    CHECK(json_has_num(r->meta, "index", r->index), "record %" PRId64 ": meta index differs: %s", r->index,
          r->meta);
    CHECK(r->reserved == 0, "record %" PRId64 ": reserved = %d", r->index, r->reserved);
    CHECK((r->body == NULL) == (r->body_len == 0), "record %" PRId64 ": body %p with body_len %" PRId64,
          r->index, (void *)r->body, r->body_len);
}

/* Requests still in flight when their batch was freed end in the
 * background and free their buffers as they end: allow them a few seconds. */
static void check_no_live_buffers(void)
{
    int64_t live = fastreq_live_buffers();
    for (int i = 0; live != 0 && i < 500; i++) {
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
        live = fastreq_live_buffers();
    }
    CHECK(live == 0, "%" PRId64 " library buffer(s) still live after the test", live);
}

/* ---- Tests ------------------------------------------------------------- */

static void test_version(void)
{
    const char *v = fastreq_version();
    REQUIRE(v != NULL, "fastreq_version() is NULL");
    unsigned a, b, c;
    CHECK(sscanf(v, "%u.%u.%u", &a, &b, &c) == 3, "version %s is not x.y.z", v);
    CHECK(fastreq_version() == v, "fastreq_version() is not a static string");
    CHECK_RC(fastreq_abi_version(), FASTREQ_ABI_VERSION);
    int64_t prev = fastreq_set_memory_limit(-1);
    CHECK(prev > 0, "memory limit %" PRId64, prev);
    CHECK_RC(fastreq_set_memory_limit(-1), prev);
    CHECK_RC(fastreq_free_os_memory(), FASTREQ_OK);
    fastreq_free(NULL);
    fastreq_records_release(NULL, 0);

    /* The log queue: NULL is refused; a drain gives a JSON array or NULL,
     * which the caller frees. */
    CHECK_RC(fastreq_log_drain(NULL), FASTREQ_EINVAL);
    char *logs = (char *)1;
    int32_t n = fastreq_log_drain(&logs);
    CHECK(n >= 0, "fastreq_log_drain = %d", n);
    CHECK((n == 0) == (logs == NULL), "%d records but logs %p", n, (void *)logs);
    if (logs != NULL) {
        CHECK(logs[0] == '[', "log records are not a JSON array: %.40s", logs);
        fastreq_free(logs);
    }
}

/* client_new with a bad config: EINVAL and an error object naming the
 * field, which the caller frees. */
static void test_client_new_errors(void)
{
    static const struct {
        const char *json, *kind, *field;
    } cases[] = {
        {"{", "validation", NULL},
        {"not json", "validation", NULL},
        {"[1,2]", "validation", NULL},
        {"{} {}", "validation", NULL},
        {"{\"concurrency\":4,\"nope\":1}", "validation", "nope"},
        {"{\"concurrency\":-1}", "validation", "concurrency"},
        {"{\"concurrency\":2000000}", "validation", "concurrency"},
        {"{\"concurrency\":\"ten\"}", "validation", "concurrency"},
        {"{\"concurrency\":1e400}", "validation", NULL},
        {"{\"max_retries\":-3}", "validation", "max_retries"},
        {"{\"jitter\":1.5}", "validation", "jitter"},
        {"{\"timeout\":-0.5}", "validation", "timeout"},
        {"{\"rate_limit\":-1}", "validation", "rate_limit"},
        {"{\"max_body_size\":-1}", "validation", "max_body_size"},
        {"{\"headers\":{\"bad name\":\"x\"}}", "validation", "headers"},
        {"{\"headers\":[1]}", "validation", "headers"},
        {"{\"cookies\":{\"a\":\"x;y\"}}", "validation", "cookies"},
        {"{\"backend\":\"carrier-pigeon\"}", "configuration", "backend"},
        {"{\"proxy_selection\":\"first\"}", "configuration", "proxy_selection"},
        {"{\"dns_cache_ttl\":\"60\"}", "validation", "dns_cache_ttl"},
        {"{\"auto_throttle\":1}", "validation", "auto_throttle"},
        {"{\"proxies\":[\"ftp://nope\"]}", NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t c = 12345;
        char *err = NULL;
        int32_t rc = fastreq_client_new(cases[i].json, strlen(cases[i].json), &c, &err);
        CHECK(rc == FASTREQ_EINVAL, "client_new(%s) = %d, want EINVAL", cases[i].json, rc);
        if (rc == FASTREQ_OK) {
            fastreq_client_close(c);
            continue;
        }
        CHECK(err != NULL, "client_new(%s): no error object", cases[i].json);
        if (!err) continue;
        CHECK(err[0] == '{' && strstr(err, "\"message\":\"") != NULL, "client_new(%s): error %s", cases[i].json,
              err);
        if (cases[i].kind)
            CHECK(json_has_str(err, "kind", cases[i].kind), "client_new(%s): error %s, want kind %s",
                  cases[i].json, err, cases[i].kind);
        if (cases[i].field)
            CHECK(json_has_str(err, "field", cases[i].field), "client_new(%s): error %s, want field %s",
                  cases[i].json, err, cases[i].field);
        fastreq_free(err);
    }

    /* A NULL err_out is allowed; a NULL client_out is EINVAL. */
    uint64_t c = 0;
    CHECK_RC(fastreq_client_new("{", 1, &c, NULL), FASTREQ_EINVAL);
    char *err = NULL;
    CHECK_RC(fastreq_client_new(NULL, 0, NULL, &err), FASTREQ_EINVAL);
    CHECK(json_has_str(err, "field", "client_out"), "NULL client_out: error %s", err ? err : "(none)");
    fastreq_free(err);

    /* Length, not NUL, ends the config: the trailing garbage is not read. */
    const char *cfg = "{\"concurrency\":3}GARBAGE";
    CHECK_RC(fastreq_client_new(cfg, 17, &c, NULL), FASTREQ_OK);
    CHECK_RC(fastreq_client_close(c), FASTREQ_OK);

    /* NULL config: all defaults. Every field at once also works. */
    CHECK_RC(fastreq_client_new(NULL, 0, &c, NULL), FASTREQ_OK);
    CHECK_RC(fastreq_client_close(c), FASTREQ_OK);
    const char *all =
        "{\"backend\":\"http1\",\"concurrency\":7,\"max_retries\":1,\"rate_limit\":100,"
        "\"rate_limit_burst\":3,\"http2\":false,\"follow_redirects\":false,\"verify_ssl\":false,"
        "\"timeout\":5,\"cookies\":{\"a\":\"b\"},\"random_user_agent\":true,\"random_proxy\":false,"
        "\"proxies\":[\"127.0.0.1:1\"],\"proxy_selection\":\"random\",\"proxy_cooldown\":1,"
        "\"webshare_file\":\"\",\"headers\":{\"X-A\":\"1\"},\"max_redirects\":2,"
        "\"max_body_size\":1000,\"backoff_multiplier\":0.1,\"jitter\":0.5,\"max_delay\":2,"
        "\"debug\":true,\"verbose\":false}";
    c = new_client(all);
    if (c) CHECK_RC(fastreq_client_close(c), FASTREQ_OK);
    check_no_live_buffers();
}

/* Cookies: bad JSON and bad values are EINVAL with an error object. */
static void test_cookies(void)
{
    uint64_t c = new_client(TEST_CLIENT "}");
    REQUIRE(c, "no client");
    char *err = NULL;
    const char *good = "{\"session\":\"abc\"}";
    CHECK_RC(fastreq_client_set_cookies(c, good, strlen(good), &err), FASTREQ_OK);
    CHECK(err == NULL, "set_cookies OK but err_out set");
    const char *bad[] = {"{", "[\"a\"]", "{\"a\":1}", "{\"a\":\"x;y\"}", "{\"\":\"x\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err = NULL;
        CHECK_RC(fastreq_client_set_cookies(c, bad[i], strlen(bad[i]), &err), FASTREQ_EINVAL);
        CHECK(err != NULL && strstr(err, "\"kind\":\"validation\""), "set_cookies(%s): error %s", bad[i],
              err ? err : "(none)");
        fastreq_free(err);
    }
    CHECK_RC(fastreq_client_reset_cookies(c), FASTREQ_OK);
    CHECK_RC(fastreq_client_close(c), FASTREQ_OK);
    check_no_live_buffers();
}

/* 1 when fd polls readable within ms, 0 when not (or a signal came first),
 * -1 on error (errno says why). */
static int poll_readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int pr = poll(&p, 1, ms);
    return pr < 0 && errno == EINTR ? 0 : pr;
}

/* 1,000 requests to /x/json, drained the asyncio way: poll() the batch's
 * fd, read its 8 bytes, drain in chunks until a short read. */
#define BATCH_N 1000
static void test_batch_1000_fd(void)
{
    uint64_t c = new_client(TEST_CLIENT ",\"concurrency\":50,\"http2\":false}");
    REQUIRE(c, "no client");
    double t0 = now_s();
    uint64_t b = submit_each(c, BATCH_N, "\"url\":\"%s/x/json\"", g_url);
    if (!b) {
        fastreq_client_close(c);
        return;
    }
    int fd = fastreq_batch_fd(b);
    CHECK(fd >= 0, "batch_fd = %d", fd);
    CHECK_RC(fastreq_batch_fd(b), fd);

    static unsigned char seen[BATCH_N];
    memset(seen, 0, sizeof seen);
    fastreq_record_t recs[FASTREQ_DRAIN_CHUNK];
    int results = 0, wakeups = 0, drains = 0;
    double deadline = now_s() + 90;
    while (results < BATCH_N && fd >= 0 && now_s() < deadline) {
        int pr = poll_readable(fd, 100);
        REQUIRE(pr >= 0, "poll: %s", strerror(errno));
        if (pr == 0) continue;
        wakeups++;
        uint64_t count;
        ssize_t r = read(fd, &count, sizeof count);
        CHECK(r == 8 || (r < 0 && errno == EAGAIN), "read(eventfd) = %zd (%s)", r, strerror(errno));
        for (;;) {
            int32_t n = fastreq_batch_drain(b, recs, FASTREQ_DRAIN_CHUNK);
            drains++;
            if (n < 0) {
                failf(__FILE__, __LINE__, "batch_drain = %d", n);
                break;
            }
            for (int i = 0; i < n; i++) {
                fastreq_record_t *rec = &recs[i];
                CHECK(rec->type == FASTREQ_RECORD_RESULT, "record type %d", rec->type);
                if (rec->index < 0 || rec->index >= BATCH_N) {
                    failf(__FILE__, __LINE__, "record index %" PRId64 " out of range", rec->index);
                    continue;
                }
                CHECK(!seen[rec->index], "index %" PRId64 " delivered twice", rec->index);
                seen[rec->index] = 1;
                results++;
                CHECK(rec->status == 200 && rec->error == FASTREQ_ERR_NONE,
                      "index %" PRId64 ": status %d error %d meta %s", rec->index, rec->status, rec->error,
                      rec->meta ? rec->meta : "(null)");
                CHECK(rec->body_len == (int64_t)strlen(JSON_BODY) && rec->body &&
                          memcmp(rec->body, JSON_BODY, strlen(JSON_BODY)) == 0,
                      "index %" PRId64 ": body differs (%" PRId64 " bytes)", rec->index, rec->body_len);
                check_meta(rec);
                CHECK(json_has_num(rec->meta, "status_code", 200), "index %" PRId64 ": meta %s", rec->index,
                      rec->meta);
            }
            fastreq_records_release(recs, n);
            for (int i = 0; i < n; i++)
                CHECK(recs[i].body == NULL && recs[i].meta == NULL, "release did not clear record %d", i);
            fastreq_records_release(recs, n); /* a second release is harmless */
            if (n < FASTREQ_DRAIN_CHUNK) break;
        }
    }
    double took = now_s() - t0;
    CHECK(results == BATCH_N, "got %d of %d results", results, BATCH_N);
    for (int i = 0; i < BATCH_N; i++)
        if (!seen[i]) {
            failf(__FILE__, __LINE__, "index %d never delivered", i);
            break;
        }
    CHECK_RC(fastreq_batch_done(b), 1);
    double w0 = now_s();
    CHECK_RC(fastreq_batch_wait(b, 5000), 0); /* done and drained: at once */
    CHECK(now_s() - w0 < 1.0, "batch_wait on a finished batch took %.3f s", now_s() - w0);
    CHECK_RC(fastreq_batch_drain(b, recs, FASTREQ_DRAIN_CHUNK), 0);
    CHECK_RC(fastreq_batch_drain(b, NULL, 0), 0);
    CHECK_RC(fastreq_batch_drain(b, recs, -1), FASTREQ_EINVAL);
    CHECK_RC(fastreq_batch_free(b), FASTREQ_OK);
    CHECK_RC(fastreq_client_close(c), FASTREQ_OK);
    printf("  %d requests in %.2f s: %d wakeups, %d drain calls\n", BATCH_N, took, wakeups, drains);
    check_no_live_buffers();
}

/* Cancel a batch stuck on /x/stall: every record arrives CANCELLED, fast. */
static void test_cancel(void)
{
    uint64_t c = new_client(TEST_CLIENT ",\"concurrency\":4}");
    REQUIRE(c, "no client");
    uint64_t b = submit_each(c, 12, "\"url\":\"%s/x/stall\"", g_url);
    if (!b) {
        fastreq_client_close(c);
        return;
    }
    CHECK_RC(fastreq_batch_wait(b, 300), 0); /* the requests stall */
    CHECK_RC(fastreq_batch_done(b), 0);
    double t0 = now_s();
    CHECK_RC(fastreq_batch_cancel(b), FASTREQ_OK);
    CHECK_RC(fastreq_batch_cancel(b), FASTREQ_OK); /* twice is fine */
    recvec v = {0};
    int got = collect(b, &v, 12, 30);
    double took = now_s() - t0;
    CHECK(got == 12, "got %d of 12 results after cancel", got);
    CHECK(took < 5.0, "cancel took %.2f s", took);
    unsigned seen = 0;
    for (int i = 0; i < v.n; i++) {
        fastreq_record_t *r = &v.r[i];
        CHECK(r->type == FASTREQ_RECORD_RESULT && r->error == FASTREQ_ERR_CANCELLED && r->status == 0,
              "record %" PRId64 ": type %d error %d status %d, want CANCELLED", r->index, r->type, r->error,
              r->status);
        check_meta(r);
        CHECK(json_has_str(r->meta, "kind", "cancelled"), "meta %s", r->meta);
        if (r->index >= 0 && r->index < 12) {
            CHECK(!(seen & (1u << r->index)), "index %" PRId64 " twice", r->index);
            seen |= 1u << r->index;
        }
    }
    CHECK(seen == 0xfff, "indexes seen: %#x", seen);
    CHECK_RC(fastreq_batch_done(b), 1);
    recvec_free(&v);
    CHECK_RC(fastreq_batch_free(b), FASTREQ_OK);
    CHECK_RC(fastreq_client_close(c), FASTREQ_OK);
    printf("  cancel delivered 12 records in %.3f s\n", took);
    check_no_live_buffers();
}

/* A per-request timeout of 0.2 s against /x/stall: FASTREQ_ERR_TIMEOUT.
 * With a retry allowed, the same ends as RETRIES_EXHAUSTED after two
 * attempts, with the timeout as last_error. */
static void test_timeout(void)
{
    uint64_t c = new_client(TEST_CLIENT ",\"backoff_multiplier\":0.01}");
    REQUIRE(c, "no client");
    double t0 = now_s();
    uint64_t b = submit_each(c, 1, "\"url\":\"%s/x/stall\",\"timeout\":0.2,\"id\":\"t\"", g_url);
    if (b) {
        recvec v = {0};
        int got = collect(b, &v, 1, 30);
        double took = now_s() - t0;
        CHECK(got == 1 && v.n == 1, "got %d records", v.n);
        if (v.n == 1) {
            fastreq_record_t *r = &v.r[0];
            CHECK(r->error == FASTREQ_ERR_TIMEOUT, "error %d, want TIMEOUT; meta %s", r->error,
                  r->meta ? r->meta : "");
            CHECK(r->status == 0 && r->body == NULL, "status %d", r->status);
            check_meta(r);
            CHECK(json_has_str(r->meta, "kind", "timeout") && json_has_str(r->meta, "id", "t") &&
                      json_has_num(r->meta, "attempts", 1),
                  "meta %s", r->meta);
        }
        CHECK(took >= 0.19 && took < 10, "timed out after %.3f s", took);
        recvec_free(&v);
        CHECK_RC(fastreq_batch_free(b), FASTREQ_OK);
        printf("  0.2 s timeout reported after %.3f s\n", took);
    }
    CHECK_RC(fastreq_client_close(c), FASTREQ_OK);

    c = new_client("{\"max_retries\":1,\"backoff_multiplier\":0.01,\"jitter\":0}");
    REQUIRE(c, "no client");
    b = submit_each(c, 1, "\"url\":\"%s/x/stall\",\"timeout\":0.2", g_url);
    if (b) {
        recvec v = {0};
        CHECK(collect(b, &v, 1, 30) == 1 && v.n == 1, "got %d records", v.n);
        if (v.n == 1) {
            fastreq_record_t *r = &v.r[0];
            check_meta(r);
            CHECK(r->error == FASTREQ_ERR_RETRIES_EXHAUSTED && json_has_num(r->meta, "attempts", 2) &&
                      strstr(r->meta, "\"last_error\":{\"kind\":\"timeout\"") != NULL,
                  "error %d, want RETRIES_EXHAUSTED after 2 attempts with last_error timeout; meta %s", r->error,
                  r->meta ? r->meta : "");
        }
        recvec_free(&v);
        CHECK_RC(fastreq_batch_free(b), FASTREQ_OK);
    }
    CHECK_RC(fastreq_client_close(c), FASTREQ_OK);
    check_no_live_buffers();
}

/* fastreq_batch_wait with a timeout returns 0 after about that time. */
static void test_wait_timeout(void)
{
    uint64_t c = new_client(TEST_CLIENT "}");
    REQUIRE(c, "no client");
    uint64_t b = submit_each(c, 1, "\"url\":\"%s/x/stall\"", g_url);
    if (b) {
        double t0 = now_s();
        CHECK_RC(fastreq_batch_wait(b, 0), 0);
        double t1 = now_s();
        CHECK(t1 - t0 < 0.5, "wait(0) took %.3f s", t1 - t0);
        CHECK_RC(fastreq_batch_wait(b, 300), 0);
        double took = now_s() - t1;
        CHECK(took >= 0.29 && took < 1.5, "wait(300) returned after %.3f s", took);
        /* After a cancel, a wait with no limit returns the one record. */
        CHECK_RC(fastreq_batch_cancel(b), FASTREQ_OK);
        CHECK_RC(fastreq_batch_wait(b, -1), 1);
        fastreq_record_t r;
        CHECK_RC(fastreq_batch_drain(b, &r, 1), 1);
        CHECK(r.error == FASTREQ_ERR_CANCELLED, "error %d", r.error);
        fastreq_records_release(&r, 1);
        CHECK_RC(fastreq_batch_done(b), 1);
        CHECK_RC(fastreq_batch_free(b), FASTREQ_OK);
        printf("  wait(0) %.1f ms, wait(300) %.1f ms\n", (t1 - t0) * 1e3, took * 1e3);
    }
    CHECK_RC(fastreq_client_close(c), FASTREQ_OK);
    check_no_live_buffers();
}

/* Every handle-taking function on 0, a random number, a closed client, a
 * freed batch and the wrong kind of handle: EBADHANDLE, no crash. */
static void check_bad_batch(uint64_t h, const char *what)
{
    fastreq_record_t r[2];
    memset(r, 0, sizeof r);
    CHECK(fastreq_batch_fd(h) < 0, "%s: batch_fd = %d", what, fastreq_batch_fd(h));
    CHECK(fastreq_batch_wait(h, 0) == FASTREQ_EBADHANDLE, "%s: batch_wait", what);
    CHECK(fastreq_batch_wait(h, 10) == FASTREQ_EBADHANDLE, "%s: batch_wait(10)", what);
    CHECK(fastreq_batch_drain(h, r, 2) == FASTREQ_EBADHANDLE, "%s: batch_drain", what);
    CHECK(fastreq_batch_done(h) == FASTREQ_EBADHANDLE, "%s: batch_done", what);
    CHECK(fastreq_batch_cancel(h) == FASTREQ_EBADHANDLE, "%s: batch_cancel", what);
    CHECK(fastreq_batch_free(h) == FASTREQ_EBADHANDLE, "%s: batch_free", what);
}

static void check_bad_client(uint64_t h, const char *what, bool closed_client)
{
    char *err = NULL;
    uint64_t b = 0;
    int32_t rc = fastreq_batch_submit(h, "[]", 2, FASTREQ_SUBMIT_STRICT, &b, &err);
    CHECK(rc == FASTREQ_EBADHANDLE || (closed_client && rc == FASTREQ_ECLOSED),
          "%s: batch_submit = %d", what, rc);
    CHECK(b == 0, "%s: batch_submit set a handle", what);
    fastreq_free(err);
    err = NULL;
    /* Without STRICT the submit returns at once; the batch's wait says why
     * it cannot start. */
    rc = fastreq_batch_submit(h, "[]", 2, 0, &b, &err);
    CHECK(rc == FASTREQ_OK && b != 0 && err == NULL, "%s: loose batch_submit = %d", what, rc);
    if (rc == FASTREQ_OK) {
        rc = fastreq_batch_wait(b, 5000);
        CHECK(rc == FASTREQ_EBADHANDLE || (closed_client && rc == FASTREQ_ECLOSED), "%s: loose batch_wait = %d",
              what, rc);
        CHECK_RC(fastreq_batch_free(b), FASTREQ_OK);
    }
    CHECK_RC(fastreq_client_set_cookies(h, "{}", 2, &err), FASTREQ_EBADHANDLE);
    CHECK(err == NULL || strstr(err, "\"message\""), "%s: set_cookies error %s", what, err);
    fastreq_free(err);
    CHECK_RC(fastreq_client_reset_cookies(h), FASTREQ_EBADHANDLE);
    if (!closed_client) CHECK(fastreq_client_close(h) == FASTREQ_EBADHANDLE, "%s: client_close", what);
}

static void test_bad_handles(void)
{
    uint64_t c = new_client(TEST_CLIENT "}");
    REQUIRE(c, "no client");
    uint64_t b = submit(c, "[]", FASTREQ_SUBMIT_STRICT);
    REQUIRE(b, "no batch");
    uint64_t freed = submit(c, "[]", 0);
    REQUIRE(freed, "no batch");
    CHECK_RC(fastreq_batch_free(freed), FASTREQ_OK);
    uint64_t closed = new_client(TEST_CLIENT "}");
    REQUIRE(closed, "no client");
    CHECK_RC(fastreq_client_close(closed), FASTREQ_OK);
    CHECK_RC(fastreq_client_close(closed), FASTREQ_OK); /* double close */

    int64_t handles = fastreq_live_handles();
    CHECK(handles == 2, "live handles %" PRId64 ", want 2", handles);

    uint64_t junk[] = {0, 0xdeadbeefcafef00dULL, UINT64_MAX, (uint64_t)1 << 63, c + b + 1000};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "handle %#" PRIx64, junk[i]);
        check_bad_batch(junk[i], what);
        check_bad_client(junk[i], what, false);
    }
    check_bad_batch(c, "client used as a batch");
    check_bad_client(b, "batch used as a client", false);
    check_bad_batch(freed, "freed batch");
    check_bad_client(freed, "freed batch used as a client", false);
    check_bad_batch(closed, "closed client used as a batch");
    check_bad_client(closed, "closed client", true);

    /* The good handles still work afterwards. */
    CHECK_RC(fastreq_batch_done(b), 1);
    CHECK_RC(fastreq_batch_free(b), FASTREQ_OK);
    CHECK_RC(fastreq_batch_free(b), FASTREQ_EBADHANDLE);
    CHECK_RC(fastreq_client_close(c), FASTREQ_OK);
    CHECK_RC(fastreq_client_close(c), FASTREQ_OK);
    check_no_live_buffers();
}

/* Bad request JSON: EINVAL with an error naming the field; STRICT names the
 * index; without STRICT an invalid request is a VALIDATION record. */
static void test_submit_errors(void)
{
    uint64_t c = new_client(TEST_CLIENT "}");
    REQUIRE(c, "no client");
    char u[512];
    snprintf(u, sizeof u, "%s/x/json", g_url);
    static const struct {
        const char *json, *field;
    } cases[] = {
        {"", NULL},
        {"[", NULL},
        {"{\"url\":\"http://x\"}", NULL},
        {"[{\"url\":1}]", "url"},
        {"[{\"url\":\"http://x\",\"nope\":true}]", "nope"},
        {"[{\"url\":\"http://x\",\"timeout\":\"soon\"}]", "timeout"},
        {"[{\"url\":\"http://x\",\"headers\":[\"a\"]}]", "headers"},
        {"[{\"url\":\"http://x\",\"content\":\"***not base64***\"}]", NULL},
        {"[] []", NULL},
        {"[null, 3]", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t b = 0;
        char *err = NULL;
        int32_t rc = fastreq_batch_submit(c, cases[i].json, strlen(cases[i].json), FASTREQ_SUBMIT_STRICT, &b, &err);
        CHECK(rc == FASTREQ_EINVAL, "submit(%s) = %d, want EINVAL", cases[i].json, rc);
        if (rc == FASTREQ_OK) {
            fastreq_batch_free(b);
            continue;
        }
        CHECK(err && json_has_str(err, "kind", "validation"), "submit(%s): error %s", cases[i].json,
              err ? err : "(none)");
        if (cases[i].field)
            CHECK(json_has_str(err, "field", cases[i].field), "submit(%s): error %s, want field %s",
                  cases[i].json, err ? err : "(none)", cases[i].field);
        fastreq_free(err);
    }
    /* NULL batch_out */
    CHECK_RC(fastreq_batch_submit(c, "[]", 2, 0, NULL, NULL), FASTREQ_EINVAL);

    /* fastreq_requests_check answers as a strict submit, running nothing. */
    {
        const char *good = "[{\"url\":\"http://127.0.0.1:1/\"}]", *bad = "[{\"url\":\"ftp://x/\"}]";
        char *err = NULL;
        CHECK_RC(fastreq_requests_check(good, strlen(good), &err), FASTREQ_OK);
        CHECK(err == NULL, "check OK set an error");
        CHECK_RC(fastreq_requests_check(bad, strlen(bad), &err), FASTREQ_EINVAL);
        CHECK(err && json_has_str(err, "field", "url"), "check error %s", err ? err : "(none)");
        fastreq_free(err);
        CHECK_RC(fastreq_requests_check(bad, strlen(bad), NULL), FASTREQ_EINVAL);
    }

    /* STRICT: request 2 is invalid; nothing runs. */
    char json[2048];
    snprintf(json, sizeof json,
             "[{\"url\":\"%s\"},{\"url\":\"%s\",\"method\":\"POST\",\"data\":\"x\"},"
             "{\"url\":\"ftp://example.invalid/\"}]",
             u, u);
    uint64_t b = 0;
    char *err = NULL;
    CHECK_RC(fastreq_batch_submit(c, json, strlen(json), FASTREQ_SUBMIT_STRICT, &b, &err), FASTREQ_EINVAL);
    CHECK(err && json_has_str(err, "field", "url") && strstr(err, "request 2"), "strict error %s",
          err ? err : "(none)");
    fastreq_free(err);
    CHECK_RC(fastreq_live_handles(), 1);

    /* Without STRICT: two results, one VALIDATION record for index 2. */
    b = submit(c, json, 0);
    if (b) {
        recvec v = {0};
        CHECK(collect(b, &v, 3, 30) == 3, "want 3 results");
        for (int i = 0; i < v.n; i++) {
            fastreq_record_t *r = &v.r[i];
            check_meta(r);
            if (r->index == 2)
                CHECK(r->error == FASTREQ_ERR_VALIDATION && r->status == 0 &&
                          json_has_str(r->meta, "field", "url"),
                      "index 2: error %d meta %s", r->error, r->meta);
            else
                CHECK(r->error == FASTREQ_ERR_NONE && r->status == 200, "index %" PRId64 ": error %d status %d",
                      r->index, r->error, r->status);
        }
        recvec_free(&v);
        CHECK_RC(fastreq_batch_free(b), FASTREQ_OK);
    }

    /* Without STRICT, JSON that does not decode: the submit returns at
     * once, and the batch's wait, next, drain and done say EINVAL. */
    b = submit(c, "[{\"url\":", 0);
    if (b) {
        fastreq_record_t r[2];
        CHECK_RC(fastreq_batch_wait(b, 5000), FASTREQ_EINVAL);
        CHECK_RC(fastreq_batch_next(b, r, 2, 0), FASTREQ_EINVAL);
        CHECK_RC(fastreq_batch_drain(b, r, 2), FASTREQ_EINVAL);
        CHECK_RC(fastreq_batch_done(b), FASTREQ_EINVAL);
        CHECK_RC(fastreq_batch_free(b), FASTREQ_OK);
    }

    /* An empty batch is done at once (a strict submit returns once the
     * engine has read it). */
    b = submit(c, "[]", FASTREQ_SUBMIT_STRICT);
    if (b) {
        CHECK_RC(fastreq_batch_done(b), 1);
        CHECK_RC(fastreq_batch_wait(b, -1), 0);
        CHECK_RC(fastreq_batch_free(b), FASTREQ_OK);
    }
    CHECK_RC(fastreq_client_close(c), FASTREQ_OK);
    check_no_live_buffers();
}

/* Closing a client with a batch in flight: the batch's records come back
 * CANCELLED, and the batch must still be freed. */
static void test_close_inflight(void)
{
    uint64_t c = new_client(TEST_CLIENT ",\"concurrency\":3}");
    REQUIRE(c, "no client");
    uint64_t b = submit_each(c, 8, "\"url\":\"%s/x/stall\"", g_url);
    if (!b) {
        fastreq_client_close(c);
        return;
    }
    CHECK_RC(fastreq_batch_wait(b, 200), 0);
    double t0 = now_s();
    CHECK_RC(fastreq_client_close(c), FASTREQ_OK);
    double took = now_s() - t0;
    CHECK(took < 5, "client_close took %.2f s", took);
    /* Close waited for the requests to end: every record is waiting. */
    recvec v = {0};
    drain_into(b, &v);
    CHECK(v.n == 8, "%d records waiting after client_close, want 8", v.n);
    for (int i = 0; i < v.n; i++) {
        CHECK(v.r[i].error == FASTREQ_ERR_CANCELLED, "index %" PRId64 ": error %d", v.r[i].index, v.r[i].error);
        check_meta(&v.r[i]);
    }
    recvec_free(&v);
    CHECK_RC(fastreq_batch_done(b), 1);
    CHECK_RC(fastreq_live_handles(), 1); /* the batch */
    CHECK_RC(fastreq_client_close(c), FASTREQ_OK);
    CHECK_RC(fastreq_batch_free(b), FASTREQ_OK);
    CHECK_RC(fastreq_live_handles(), 0);

    /* Freeing a batch that is still running cancels it and releases the
     * records nobody drained. */
    c = new_client(TEST_CLIENT ",\"concurrency\":2}");
    REQUIRE(c, "no client");
    b = submit_each(c, 4, "\"url\":\"%s/x/stall\"", g_url);
    if (b) {
        CHECK_RC(fastreq_batch_wait(b, 100), 0);
        t0 = now_s();
        CHECK_RC(fastreq_batch_free(b), FASTREQ_OK);
        CHECK(now_s() - t0 < 5, "batch_free of a running batch took %.2f s", now_s() - t0);
    }
    CHECK_RC(fastreq_client_close(c), FASTREQ_OK);
    printf("  client_close with 8 stalled requests took %.3f s\n", took);
    check_no_live_buffers();
}

/* stream:true against /x/slow-chunks: CHUNK records in body order, then
 * the RESULT, per request. */
#define STREAMS 2
static void test_streaming(void)
{
    uint64_t c = new_client(TEST_CLIENT "}");
    REQUIRE(c, "no client");
    const int nchunks = 5, size = 16;
    uint64_t b = submit_each(c, STREAMS, "\"url\":\"%s/x/slow-chunks?n=%d&interval_ms=30&size=%d\",\"stream\":true",
                             g_url, nchunks, size);
    if (!b) {
        fastreq_client_close(c);
        return;
    }
    recvec v = {0};
    CHECK(collect(b, &v, STREAMS, 30) == STREAMS, "want %d results", STREAMS);
    int64_t got[STREAMS] = {0};
    int chunks[STREAMS] = {0};
    bool finished[STREAMS] = {false};
    for (int i = 0; i < v.n; i++) {
        fastreq_record_t *r = &v.r[i];
        REQUIRE(r->index >= 0 && r->index < STREAMS, "index %" PRId64, r->index);
        int k = (int)r->index;
        CHECK(!finished[k], "index %d: record after its RESULT", k);
        if (r->type == FASTREQ_RECORD_CHUNK) {
            chunks[k]++;
            CHECK(r->meta == NULL && r->meta_len == 0, "CHUNK with meta");
            CHECK(r->body != NULL && r->body_len > 0, "empty CHUNK");
            for (int64_t j = 0; j < r->body_len; j++) {
                /* /x/slow-chunks sends n times the pattern bytes 0..size-1 */
                if (r->body[j] != (uint8_t)((got[k] + j) % size)) {
                    failf(__FILE__, __LINE__, "index %d: byte %" PRId64 " is %u, want %u", k, got[k] + j,
                          r->body[j], (unsigned)((got[k] + j) % size));
                    break;
                }
            }
            got[k] += r->body_len;
        } else {
            finished[k] = true;
            CHECK(r->error == FASTREQ_ERR_NONE && r->status == 200, "index %d: error %d status %d", k, r->error,
                  r->status);
            CHECK(r->body == NULL && r->body_len == 0, "streamed RESULT has a body");
            check_meta(r);
            CHECK(json_has_num(r->meta, "content_length", (long long)nchunks * size), "meta %s", r->meta);
        }
    }
    for (int k = 0; k < STREAMS; k++) {
        CHECK(finished[k], "index %d: no RESULT", k);
        CHECK(got[k] == (int64_t)nchunks * size, "index %d: %" PRId64 " bytes streamed", k, got[k]);
        CHECK(chunks[k] >= 1, "index %d: no chunks", k);
    }
    recvec_free(&v);
    CHECK_RC(fastreq_batch_free(b), FASTREQ_OK);
    CHECK_RC(fastreq_client_close(c), FASTREQ_OK);
    printf("  chunks per stream: %d, %d\n", chunks[0], chunks[1]);
    check_no_live_buffers();
}

/* output_path: the body goes to the file; the record carries no body. */
static void test_output_path(void)
{
    char dir[] = "/tmp/fastreq-c-XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL, "mkdtemp: %s", strerror(errno));
    char path[512];
    snprintf(path, sizeof path, "%s/out.bin", dir);
    const int size = 100000;

    uint64_t c = new_client(TEST_CLIENT "}");
    if (c) {
        uint64_t b = submit_each(c, 1, "\"url\":\"%s/x/bytes/%d\",\"output_path\":\"%s\"", g_url, size, path);
        if (b) {
            recvec v = {0};
            CHECK(collect(b, &v, 1, 30) == 1 && v.n == 1, "want one record, got %d", v.n);
            if (v.n == 1) {
                fastreq_record_t *r = &v.r[0];
                CHECK(r->error == FASTREQ_ERR_NONE && r->status == 200, "error %d status %d meta %s", r->error,
                      r->status, r->meta ? r->meta : "");
                CHECK(r->body == NULL && r->body_len == 0, "download RESULT has a body");
                check_meta(r);
                CHECK(json_has_str(r->meta, "path", path) && json_has_num(r->meta, "content_length", size),
                      "meta %s", r->meta);
            }
            recvec_free(&v);
            CHECK_RC(fastreq_batch_free(b), FASTREQ_OK);
        }
        CHECK_RC(fastreq_client_close(c), FASTREQ_OK);
    }

    FILE *f = fopen(path, "rb");
    CHECK(f != NULL, "%s: %s", path, strerror(errno));
    if (f) {
        int n = 0, ch, bad = -1;
        while ((ch = fgetc(f)) != EOF) {
            if (bad < 0 && ch != n % 256) bad = n;
            n++;
        }
        fclose(f);
        CHECK(n == size, "file has %d bytes, want %d", n, size);
        CHECK(bad < 0, "file differs at byte %d", bad);
    }
    /* Only the file itself is left: no temporary .part file. */
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            CHECK(strcmp(e->d_name, "out.bin") == 0, "unexpected file %s left in %s", e->d_name, dir);
            char p[1024];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
    check_no_live_buffers();
}

/* The library reads exactly the caller's len bytes of input and writes at
 * most max records: inputs end against a PROT_NONE guard page, and drained
 * records land between canaries and against the guard page. (valgrind
 * cannot check this from inside Go code; see go.supp.) An overrun kills
 * the process. */
static void test_buffer_bounds(void)
{
    long page = sysconf(_SC_PAGESIZE);
    unsigned char *mem = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    REQUIRE(mem != MAP_FAILED, "mmap: %s", strerror(errno));
    REQUIRE(mprotect(mem + page, (size_t)page, PROT_NONE) == 0, "mprotect: %s", strerror(errno));
    unsigned char *end = mem + page; /* the first byte that faults */
#define AT_END(str) ((const char *)memcpy(end - strlen(str), (str), strlen(str)))

    uint64_t c = 0;
    char *err = NULL;
    const char *cfg = "{\"max_retries\":0,\"timeout\":60,\"concurrency\":4}";
    CHECK_RC(fastreq_client_new(AT_END(cfg), strlen(cfg), &c, &err), FASTREQ_OK);
    fastreq_free(err);
    /* Truncated JSON: the decoder must stop at len, not look for more. */
    const char *truncated = "{\"concurrency\":";
    uint64_t c2 = 0;
    err = NULL;
    CHECK_RC(fastreq_client_new(AT_END(truncated), strlen(truncated), &c2, &err), FASTREQ_EINVAL);
    fastreq_free(err);
    REQUIRE(c, "no client");
    const char *cookies = "{\"session\":\"abc\"}";
    CHECK_RC(fastreq_client_set_cookies(c, AT_END(cookies), strlen(cookies), NULL), FASTREQ_OK);

    char req[1024];
    snprintf(req, sizeof req, "[{\"url\":\"%s/x/json\"},{\"url\":\"%s/x/json\"},{\"url\":\"%s/x/json\"}]", g_url,
             g_url, g_url);
    uint64_t b = 0;
    err = NULL;
    int32_t rc = fastreq_batch_submit(c, AT_END(req), strlen(req), 0, &b, &err);
    CHECK(rc == FASTREQ_OK, "submit = %d: %s", rc, err ? err : "");
    fastreq_free(err);
    if (rc == FASTREQ_OK) {
        CHECK_RC(fastreq_batch_set_wake(b, 3, 0), FASTREQ_OK); /* waits return once all three wait */
        double deadline = now_s() + 30;
        while (fastreq_batch_wait(b, 100) < 3 && now_s() < deadline) {
        }
        /* Three records wait; max 2 between canaries. */
        fastreq_record_t *a = malloc(5 * sizeof *a);
        REQUIRE(a, "malloc");
        memset(a, 0xa5, 5 * sizeof *a);
        CHECK_RC(fastreq_batch_drain(b, a + 1, 2), 2);
        unsigned char *bytes = (unsigned char *)a;
        size_t rs = sizeof *a;
        for (size_t i = 0; i < 5 * rs; i++) {
            if (i >= rs && i < 3 * rs) continue;
            if (bytes[i] != 0xa5) {
                failf(__FILE__, __LINE__, "drain(max 2) wrote byte %zu of the 5-record array", i);
                break;
            }
        }
        fastreq_records_release(a + 1, 2);
        free(a);
        /* The last one into a single slot that ends at the guard page. */
        fastreq_record_t *slot = (fastreq_record_t *)(void *)(end - sizeof *slot);
        CHECK_RC(fastreq_batch_drain(b, slot, 1), 1);
        CHECK(slot->status == 200 && slot->body_len == (int64_t)strlen(JSON_BODY), "status %d", slot->status);
        fastreq_records_release(slot, 1);
        CHECK_RC(fastreq_batch_done(b), 1);
        CHECK_RC(fastreq_batch_free(b), FASTREQ_OK);
    }
    CHECK_RC(fastreq_client_close(c), FASTREQ_OK);
#undef AT_END
    munmap(mem, (size_t)page * 2);
    check_no_live_buffers();
}

/* fastreq_copy_body copies like memcpy, whatever dst is: new pages of a
 * fresh mapping (populated first), pages already in use, small and odd
 * sizes at odd offsets; nothing outside the n bytes changes, errno stays,
 * and n == 0 takes NULL. The source is a real big body, from the
 * library's pool of mapped buffers. */
static void test_copy_body(void)
{
    const size_t big = 300000; /* a big body (at least 64 KiB), not a whole number of pages */
    uint64_t c = new_client(TEST_CLIENT "}");
    REQUIRE(c, "no client");
    uint64_t b = submit_each(c, 1, "\"url\":\"%s/bytes/%zu?seed=7\"", g_url, big);
    recvec v = {0};
    if (b) {
        CHECK(collect(b, &v, 1, 30) == 1, "no result");
        CHECK_RC(fastreq_batch_free(b), FASTREQ_OK);
    }
    CHECK_RC(fastreq_client_close(c), FASTREQ_OK);
    const fastreq_record_t *r = v.n == 1 ? &v.r[0] : NULL;
    if (r && (r->status != 200 || r->body_len != (int64_t)big)) {
        failf(__FILE__, __LINE__, "status %d, %" PRId64 " bytes", r->status, r->body_len);
        r = NULL;
    }
    if (r) {
        const unsigned char *src = r->body;
        long page = sysconf(_SC_PAGESIZE);
        size_t span = (big + 3 * (size_t)page) & ~((size_t)page - 1);
        /* Fresh pages, guarded on both sides, at an odd offset. */
        unsigned char *map = mmap(NULL, span + 2 * (size_t)page, PROT_READ | PROT_WRITE,
                                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        REQUIRE(map != MAP_FAILED, "mmap: %s", strerror(errno));
        CHECK(mprotect(map, (size_t)page, PROT_NONE) == 0 && mprotect(map + page + span, (size_t)page, PROT_NONE) == 0,
              "mprotect: %s", strerror(errno));
        unsigned char *area = map + page;
        static const size_t sizes[] = {1, 100, 4096, 40000, 65536, 65537, 300000 - 13};
        static const size_t offsets[] = {0, 1, 13, 4095};
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            for (size_t j = 0; j < sizeof offsets / sizeof offsets[0]; j++) {
                size_t n = sizes[i], off = offsets[j];
                if (off + n > span) continue;
                if (madvise(area, span, MADV_DONTNEED) != 0) { /* fresh (zero) pages again */
                    failf(__FILE__, __LINE__, "madvise: %s", strerror(errno));
                    continue;
                }
                errno = 1234;
                fastreq_copy_body(area + off, src + 3, n);
                CHECK(errno == 1234, "errno %d after a copy of %zu at %zu", errno, n, off);
                CHECK(memcmp(area + off, src + 3, n) == 0, "fresh pages: a copy of %zu at %zu differs", n, off);
                size_t k;
                for (k = 0; k < off && area[k] == 0; k++) {
                }
                CHECK(k == off, "fresh pages: byte %zu before a copy of %zu at %zu changed", k, n, off);
                for (k = off + n; k < span && area[k] == 0; k++) {
                }
                CHECK(k == span, "fresh pages: byte %zu after a copy of %zu at %zu changed", k, n, off);
            }
        }
        munmap(map, span + 2 * (size_t)page);

        /* Memory in use (every page present), between canaries. */
        unsigned char *heap = malloc(big + 64);
        REQUIRE(heap, "malloc");
        memset(heap, 0x5a, big + 64);
        fastreq_copy_body(heap + 32, src, big);
        CHECK(memcmp(heap + 32, src, big) == 0, "malloc'd memory: the copy differs");
        size_t bad = 0;
        for (size_t k = 0; k < 32; k++) bad += heap[k] != 0x5a || heap[32 + big + k] != 0x5a;
        CHECK(bad == 0, "malloc'd memory: %zu canary byte(s) changed", bad);
        free(heap);
    }
    fastreq_copy_body(NULL, NULL, 0);
    recvec_free(&v);
    check_no_live_buffers();
}

/* A thread blocked in fastreq_batch_wait(b, -1) comes back when another
 * thread frees the batch. */
struct waiter {
    uint64_t batch;
    int32_t rc;
    volatile int finished;
};

static void *wait_forever(void *arg)
{
    struct waiter *w = arg;
    w->rc = fastreq_batch_wait(w->batch, -1);
    w->finished = 1;
    return NULL;
}

static void test_wait_vs_free(void)
{
    uint64_t c = new_client(TEST_CLIENT "}");
    REQUIRE(c, "no client");
    for (int i = 0; i < 5; i++) {
        uint64_t b = submit_each(c, 2, "\"url\":\"%s/x/stall\"", g_url);
        if (!b) break;
        struct waiter w[2] = {{b, 0, 0}, {b, 0, 0}};
        pthread_t th[2];
        for (int j = 0; j < 2; j++) REQUIRE(pthread_create(&th[j], NULL, wait_forever, &w[j]) == 0, "pthread_create");
        CHECK_RC(fastreq_batch_wait(b, 20), 0);
        CHECK_RC(fastreq_batch_free(b), FASTREQ_OK);
        double deadline = now_s() + 10;
        while (!(w[0].finished && w[1].finished) && now_s() < deadline) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        if (!(w[0].finished && w[1].finished)) {
            /* Joining would hang the run; report and stop here. */
            failf(__FILE__, __LINE__, "fastreq_batch_wait(-1) still blocked 10 s after fastreq_batch_free");
            fastreq_client_close(c);
            return;
        }
        for (int j = 0; j < 2; j++) {
            pthread_join(th[j], NULL);
            CHECK(w[j].rc >= 0 || w[j].rc == FASTREQ_EBADHANDLE, "wait = %d", w[j].rc);
        }
    }
    CHECK_RC(fastreq_client_close(c), FASTREQ_OK);
    check_no_live_buffers();
}

/* 100 requests drained the blocking way, one fastreq_batch_next() call
 * per wakeup; a retry leaves a debug log record, which the counter of
 * fastreq_log_counter() announces before fastreq_log_drain() takes it. */
static void test_batch_next_and_logs(void)
{
    char *out = NULL;
    fastreq_log_drain(&out); /* start with no records */
    fastreq_free(out);
    const volatile int64_t *waiting = fastreq_log_counter();
    REQUIRE(waiting && waiting == fastreq_log_counter(), "log_counter = %p", (const void *)waiting);
    CHECK_RC(*waiting, 0);

    uint64_t c = new_client("{\"max_retries\":1,\"backoff_multiplier\":0.001,\"debug\":true,"
                            "\"timeout\":60,\"concurrency\":8}");
    REQUIRE(c, "no client");
    char key[64];
    snprintf(key, sizeof key, "cnext-%ld", (long)getpid());
    sbuf js = {0}; /* a key per request: each fails once, then succeeds */
    sb_add(&js, "[");
    for (int i = 0; i < 100; i++)
        sb_add(&js, "%s{\"url\":\"%s/x/status-then-ok?fail=1&key=%s-%d\"}", i ? "," : "", g_url, key, i);
    sb_add(&js, "]");
    uint64_t b = submit(c, js.p, 0);
    free(js.p);
    if (!b) {
        fastreq_client_close(c);
        return;
    }
    fastreq_record_t recs[16];
    CHECK_RC(fastreq_batch_next(b, NULL, 16, 0), FASTREQ_EINVAL);
    CHECK_RC(fastreq_batch_next(b, recs, 0, 0), FASTREQ_EINVAL);
    int got = 0, ok = 0;
    double deadline = now_s() + 60;
    while (fastreq_batch_done(b) == 0 && now_s() < deadline) {
        int32_t n = fastreq_batch_next(b, recs, 16, 100);
        REQUIRE(n >= 0 && n <= 16, "batch_next = %d", n);
        for (int32_t i = 0; i < n; i++) ok += recs[i].status == 200 && recs[i].error == FASTREQ_ERR_NONE;
        got += n;
        fastreq_records_release(recs, n);
    }
    CHECK(got == 100 && ok == 100, "%d records, %d ok, want 100 and 100", got, ok);
    CHECK_RC(fastreq_batch_next(b, recs, 16, 0), 0);
    CHECK_RC(fastreq_batch_free(b), FASTREQ_OK);
    CHECK_RC(fastreq_batch_next(b, recs, 16, 0), FASTREQ_EBADHANDLE);
    CHECK_RC(fastreq_client_close(c), FASTREQ_OK);

    int64_t before = *waiting;
    CHECK(before >= 100, "log counter = %" PRId64 " after 100 retries, want >= 100", before);
    int32_t n = fastreq_log_drain(&out);
    CHECK(n == before && out && strstr(out, "\"retrying\""), "log_drain = %d records (the counter said %" PRId64 ")",
          n, before);
    fastreq_free(out);
    CHECK_RC(*waiting, 0);
    check_no_live_buffers();
}

/* fastreq_batch_set_wake: with a threshold of 20 for 20 requests the first
 * fastreq_batch_next comes back only when all 20 are in, so it fills the
 * 16 slots given. */
static void test_batch_set_wake(void)
{
    uint64_t c = new_client(TEST_CLIENT ",\"concurrency\":4}");
    REQUIRE(c, "no client");
    uint64_t b = submit_each(c, 20, "\"url\":\"%s/x/json\"", g_url);
    if (!b) {
        fastreq_client_close(c);
        return;
    }
    CHECK_RC(fastreq_batch_set_wake(b, 0, 0), FASTREQ_EINVAL);
    CHECK_RC(fastreq_batch_set_wake(b, 20, 0), FASTREQ_OK);
    fastreq_record_t recs[16];
    int32_t n = fastreq_batch_next(b, recs, 16, 30000);
    CHECK(n == 16, "first batch_next with wake 20 = %d, want 16 (all 20 in, 16 slots)", n);
    int ok = 0;
    for (int32_t i = 0; i < n; i++) ok += recs[i].status == 200;
    if (n > 0) fastreq_records_release(recs, n);
    int32_t m = fastreq_batch_next(b, recs, 16, 0);
    CHECK(m == 4, "second batch_next = %d, want the 4 left", m);
    for (int32_t i = 0; i < m; i++) ok += recs[i].status == 200;
    if (m > 0) fastreq_records_release(recs, m);
    CHECK(ok == 20, "%d records with status 200, want 20", ok);
    CHECK_RC(fastreq_batch_done(b), 1);
    CHECK_RC(fastreq_batch_free(b), FASTREQ_OK);
    CHECK_RC(fastreq_batch_set_wake(b, 2, 0), FASTREQ_EBADHANDLE);
    CHECK_RC(fastreq_client_close(c), FASTREQ_OK);
}

/* A hub reports, on one descriptor, each batch given to it once that
 * batch wakes: 8 one-request batches (some notified after their result is
 * in), a failing one among them; their READY records name each batch, and
 * each batch then drains its record. A hub is not a request batch, a batch
 * reports to one hub; freeing the hub first leaves the batches working. */
static void test_hub(void)
{
    uint64_t c = new_client(TEST_CLIENT "}");
    REQUIRE(c, "no client");
    uint64_t hub = 0;
    CHECK_RC(fastreq_hub_new(NULL), FASTREQ_EINVAL);
    CHECK_RC(fastreq_hub_new(&hub), FASTREQ_OK);
    int fd = fastreq_batch_fd(hub);
    CHECK(fd >= 0, "hub fd %d", fd);
    enum { N = 8 };
    uint64_t b[N];
    for (int i = 0; i < N; i++) {
        b[i] = submit_each(c, 1, i == 3 ? "\"url\":\"http://127.0.0.1:1/\"" : "\"url\":\"%s/x/json\"", g_url);
        if (i % 2 == 1) { /* notified once its result is in: reported at once */
            CHECK(fastreq_batch_wait(b[i], 30000) == 1, "batch %d has no record", i);
        }
        CHECK_RC(fastreq_batch_notify(b[i], hub), FASTREQ_OK);
    }
    CHECK_RC(fastreq_batch_notify(b[0], hub), FASTREQ_EINVAL);   /* one hub per batch */
    CHECK_RC(fastreq_batch_notify(b[1], b[2]), FASTREQ_EINVAL);  /* b[2] is no hub */
    CHECK_RC(fastreq_batch_notify(hub, hub), FASTREQ_EINVAL);
    CHECK_RC(fastreq_batch_notify(b[1], 12345), FASTREQ_EBADHANDLE);
    int seen[N] = {0}, ready = 0;
    for (int rounds = 0; ready < N && rounds < 1000; rounds++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 30000) != 1)
            break;
        uint64_t counter;
        (void)!read(fd, &counter, sizeof counter);
        fastreq_record_t recs[4];
        int32_t n;
        while ((n = fastreq_batch_drain(hub, recs, 4)) > 0) {
            for (int32_t k = 0; k < n; k++) {
                CHECK(recs[k].type == FASTREQ_RECORD_READY && !recs[k].body && !recs[k].meta, "hub record type %d", recs[k].type);
                for (int i = 0; i < N; i++) {
                    if ((uint64_t)recs[k].index != b[i])
                        continue;
                    fastreq_record_t r;
                    if (!seen[i] && fastreq_batch_drain(b[i], &r, 1) == 1) {
                        seen[i] = 1;
                        ready++;
                        CHECK(i == 3 ? r.error == FASTREQ_ERR_CONNECT : r.status == 200, "batch %d: status %d error %d", i, r.status, r.error);
                        fastreq_records_release(&r, 1);
                    }
                }
            }
            fastreq_records_release(recs, n);
        }
    }
    CHECK(ready == N, "%d of %d batches reported ready", ready, N);
    CHECK_RC(fastreq_batch_done(hub), 0); /* a hub never ends */
    uint64_t late = submit_each(c, 1, "\"url\":\"%s/x/json\"", g_url);
    CHECK_RC(fastreq_batch_notify(late, hub), FASTREQ_OK);
    CHECK_RC(fastreq_batch_free(hub), FASTREQ_OK); /* before the batch it hears from */
    CHECK(fastreq_batch_wait(late, 30000) == 1, "a batch whose hub was freed has no record");
    CHECK_RC(fastreq_batch_free(late), FASTREQ_OK);
    for (int i = 0; i < N; i++)
        CHECK_RC(fastreq_batch_free(b[i]), FASTREQ_OK);
    CHECK_RC(fastreq_client_close(c), FASTREQ_OK);
}

/* The number after "key": in the JSON text, or -1 when it is not there. */
static long long json_num(const char *json, const char *key)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = json ? strstr(json, pat) : NULL;
    return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

/* Every RESULT record's metadata has "timings": the first request of a
 * client opens a connection (connect_ns > 0, "reused":false), the next one
 * reuses it ("reused":true, connect_ns 0); ttfb_ns <= total_ns. A client
 * takes dns_cache_ttl and auto_throttle. */
static void test_timings(void)
{
    uint64_t c = new_client(TEST_CLIENT ",\"concurrency\":1,\"dns_cache_ttl\":30}");
    REQUIRE(c, "no client");
    for (int i = 0; i < 2; i++) {
        uint64_t b = submit_each(c, 1, "\"url\":\"%s/x/json\"", g_url);
        if (!b) break;
        recvec v = {0};
        CHECK(collect(b, &v, 1, 30) == 1, "request %d: no result", i);
        if (v.n == 1) {
            const char *m = v.r[0].meta;
            check_meta(&v.r[0]);
            CHECK(m && strstr(m, "\"timings\":{\"dns_ns\":") != NULL, "request %d: meta %s", i,
                  m ? m : "(null)");
            long long connect = json_num(m, "connect_ns");
            long long ttfb = json_num(m, "ttfb_ns"), total = json_num(m, "total_ns");
            CHECK(0 < ttfb && ttfb <= total, "request %d: ttfb_ns %lld, total_ns %lld", i, ttfb, total);
            if (i == 0)
                CHECK(connect > 0 && strstr(m, "\"reused\":false") != NULL, "first request: meta %s", m);
            else
                CHECK(connect == 0 && strstr(m, "\"reused\":true") != NULL, "second request: meta %s", m);
        }
        recvec_free(&v);
        CHECK_RC(fastreq_batch_free(b), FASTREQ_OK);
    }
    CHECK_RC(fastreq_client_close(c), FASTREQ_OK);
    c = new_client(TEST_CLIENT ",\"dns_cache_ttl\":-1,\"auto_throttle\":true}"); /* negative: no cache */
    CHECK(c != 0, "dns_cache_ttl -1 refused");
    if (c) CHECK_RC(fastreq_client_close(c), FASTREQ_OK);
}

/* HTTP/3: the http3 backend, and an auto client with "http3" that moves
 * to HTTP/3 after the server's Alt-Svc; the metadata says which. */
static void test_http3(void)
{
    const char *h3 = getenv("FASTREQ_TEST_H3_URL"), *ca = getenv("FASTREQ_TEST_CA_FILE");
    REQUIRE(h3 && strncmp(h3, "https://", 8) == 0 && ca && *ca,
            "FASTREQ_TEST_H3_URL and FASTREQ_TEST_CA_FILE must be set");
    static const char *const configs[] = {"\"backend\":\"http3\"", "\"http3\":true"};
    static const char *const want[2][2] = {{"HTTP/3.0", "HTTP/3.0"}, {"HTTP/2.0", "HTTP/3.0"}};
    for (int k = 0; k < 2; k++) {
        char cfg[1024];
        snprintf(cfg, sizeof cfg, TEST_CLIENT ",%s,\"ca_file\":\"%s\"}", configs[k], ca);
        uint64_t c = new_client(cfg);
        REQUIRE(c, "no client for %s", cfg);
        for (int i = 0; i < 2; i++) {
            uint64_t b = submit_each(c, 1, "\"url\":\"%s/x/json\"", h3);
            if (!b) break;
            recvec v = {0};
            CHECK(collect(b, &v, 1, 30) == 1, "%s, request %d: no result", configs[k], i);
            if (v.n == 1) {
                check_meta(&v.r[0]);
                CHECK(v.r[0].status == 200 && v.r[0].error == FASTREQ_ERR_NONE, "%s, request %d: status %d error %d",
                      configs[k], i, v.r[0].status, v.r[0].error);
                CHECK(v.r[0].meta && json_has_str(v.r[0].meta, "http_version", want[k][i]),
                      "%s, request %d: want %s, meta %s", configs[k], i, want[k][i],
                      v.r[0].meta ? v.r[0].meta : "(null)");
                CHECK(v.r[0].body_len == (int64_t)strlen(JSON_BODY), "body of %lld bytes",
                      (long long)v.r[0].body_len);
            }
            recvec_free(&v);
            CHECK_RC(fastreq_batch_free(b), FASTREQ_OK);
        }
        CHECK_RC(fastreq_client_close(c), FASTREQ_OK);
    }

    /* http:// with the http3 backend: a validation error naming the URL. */
    char cfg[1024];
    snprintf(cfg, sizeof cfg, TEST_CLIENT ",\"backend\":\"http3\",\"ca_file\":\"%s\"}", ca);
    uint64_t c = new_client(cfg);
    REQUIRE(c, "no client");
    uint64_t b = submit_each(c, 1, "\"url\":\"%s/get\"", g_url);
    if (b) {
        recvec v = {0};
        CHECK(collect(b, &v, 1, 30) == 1, "no result");
        if (v.n == 1)
            CHECK(v.r[0].error == FASTREQ_ERR_VALIDATION && v.r[0].meta && strstr(v.r[0].meta, "https") != NULL,
                  "http:// over http3: error %d meta %s", v.r[0].error, v.r[0].meta ? v.r[0].meta : "(null)");
        recvec_free(&v);
        CHECK_RC(fastreq_batch_free(b), FASTREQ_OK);
    }
    CHECK_RC(fastreq_client_close(c), FASTREQ_OK);
}

/* ---- main -------------------------------------------------------------- */

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    {"version", test_version},
    {"client_new_errors", test_client_new_errors},
    {"cookies", test_cookies},
    {"bad_handles", test_bad_handles},
    {"submit_errors", test_submit_errors},
    {"batch_1000_fd", test_batch_1000_fd},
    {"cancel", test_cancel},
    {"timeout", test_timeout},
    {"wait_timeout", test_wait_timeout},
    {"close_inflight", test_close_inflight},
    {"streaming", test_streaming},
    {"output_path", test_output_path},
    {"buffer_bounds", test_buffer_bounds},
    {"copy_body", test_copy_body},
    {"wait_vs_free", test_wait_vs_free},
    {"batch_next_and_logs", test_batch_next_and_logs},
    {"batch_set_wake", test_batch_set_wake},
    {"hub", test_hub},
    {"timings", test_timings},
    {"http3", test_http3},
};

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    g_url = getenv("FASTREQ_TEST_URL");
    if (!g_url || strncmp(g_url, "http://", 7) != 0) {
        fprintf(stderr, "FASTREQ_TEST_URL must be the test server's http:// URL\n");
        return 2;
    }
    double start = now_s();
    int ran = 0;
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++) {
        bool wanted = argc < 2;
        for (int a = 1; a < argc; a++) wanted |= strcmp(argv[a], tests[i].name) == 0;
        if (!wanted) continue;
        g_test = tests[i].name;
        int before = g_failures;
        double t0 = now_s();
        printf("RUN  %s\n", g_test);
        tests[i].fn();
        printf("%s %s (%.2f s)\n", g_failures == before ? "ok  " : "FAIL", g_test, now_s() - t0);
        ran++;
    }
    if (ran == 0) {
        fprintf(stderr, "no test matched\n");
        return 2;
    }

    /* The leak check that no valgrind suppression can hide. */
    g_test = "final leak check";
    CHECK_RC(fastreq_live_handles(), 0);
    CHECK_RC(fastreq_live_buffers(), 0);

    printf("%s: %d test(s), %d failure(s), %.2f s\n", g_failures ? "FAIL" : "PASS", ran, g_failures,
           now_s() - start);
    return g_failures ? 1 : 0;
}
