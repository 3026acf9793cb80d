/*
 * bench_abi.c - what the C ABI of libfastreq.so costs a C caller.
 *
 * Run by `make -C tests/c bench` (see run.sh), which starts the test server
 * and passes its URL in FASTREQ_TEST_URL. Prints:
 *   (a) the cost of one empty call through the ABI (fastreq_batch_done and
 *       fastreq_batch_wait(b, 0) on a finished batch, 1e6 calls each), and
 *       of a full one-request round trip to the local server's /x/json
 *       (submit, wait, drain, release, free; one request at a time);
 *   (b) draining 100k completion records: 100,000 requests to /x/json at
 *       high concurrency, left to complete, then only the drain + release
 *       loop is timed, in ns per record.
 *
 * Usage: bench_abi [calls] [round_trips] [records]
 *        (defaults 1000000 2000 100000)
 */
#define _POSIX_C_SOURCE 200809L

#include "fastreq.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <poll.h>
#include <unistd.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void die(const char *what, int32_t rc, char *err)
{
    fprintf(stderr, "bench_abi: %s failed (%d): %s\n", what, rc, err ? err : "");
    fastreq_free(err);
    exit(1);
}

static uint64_t client(const char *cfg)
{
    uint64_t c;
    char *err = NULL;
    int32_t rc = fastreq_client_new(cfg, strlen(cfg), &c, &err);
    if (rc != FASTREQ_OK) die("fastreq_client_new", rc, err);
    return c;
}

static uint64_t submit(uint64_t c, const char *json, size_t len)
{
    uint64_t b;
    char *err = NULL;
    int32_t rc = fastreq_batch_submit(c, json, len, 0, &b, &err);
    if (rc != FASTREQ_OK) die("fastreq_batch_submit", rc, err);
    return b;
}

/* Calls fn n times on a finished, drained batch; returns ns per call. */
static double per_call(int32_t (*fn)(uint64_t, int32_t), uint64_t b, long n)
{
    int64_t sum = 0;
    double t0 = now_ns();
    for (long i = 0; i < n; i++) sum += fn(b, 0);
    double t = now_ns() - t0;
    if (sum != fn(b, 0) * n) fprintf(stderr, "bench_abi: unexpected results\n");
    return t / (double)n;
}

static int32_t done_fn(uint64_t b, int32_t unused)
{
    (void)unused;
    return fastreq_batch_done(b);
}

static int32_t wait0_fn(uint64_t b, int32_t timeout) { return fastreq_batch_wait(b, timeout); }

/* One request: submit, wait (mode 0: fastreq_batch_wait; 1: poll on the
 * fd, then read it), drain, release, free. */
static void round_trip(uint64_t c, const char *req, size_t len, int mode)
{
    fastreq_record_t rec[4];
    uint64_t b = submit(c, req, len);
    if (mode == 0) {
        if (fastreq_batch_wait(b, -1) != 1) die("fastreq_batch_wait", -1, NULL);
    } else {
        struct pollfd p = {.fd = fastreq_batch_fd(b), .events = POLLIN};
        if (poll(&p, 1, 60000) != 1) die("poll", -1, NULL);
        uint64_t count;
        if (read(p.fd, &count, sizeof count) != sizeof count) die("read(eventfd)", -1, NULL);
    }
    int32_t n = fastreq_batch_drain(b, rec, 4);
    if (n != 1 || rec[0].status != 200) die("round trip", n, NULL);
    fastreq_records_release(rec, n);
    fastreq_batch_free(b);
}

int main(int argc, char **argv)
{
    const char *url = getenv("FASTREQ_TEST_URL");
    if (!url) {
        fprintf(stderr, "FASTREQ_TEST_URL must be the test server's http:// URL\n");
        return 2;
    }
    long calls = argc > 1 ? atol(argv[1]) : 1000000;
    long trips = argc > 2 ? atol(argv[2]) : 2000;
    long nrec = argc > 3 ? atol(argv[3]) : 100000;
    printf("libfastreq %s, ABI %d\n", fastreq_version(), fastreq_abi_version());

    /* (a) Empty calls: a finished, empty batch. */
    uint64_t c = client("{\"backend\":\"http1\",\"max_retries\":0,\"timeout\":60}");
    uint64_t empty = submit(c, "[]", 2);
    per_call(done_fn, empty, calls / 10); /* warm up */
    double done_ns = per_call(done_fn, empty, calls);
    double wait_ns = per_call(wait0_fn, empty, calls);
    fastreq_batch_free(empty);
    printf("(a) empty ABI call, fastreq_batch_done(finished batch): %8.1f ns/call  (%ld calls)\n", done_ns, calls);
    printf("    fastreq_batch_wait(finished batch, 0):              %8.1f ns/call  (%ld calls)\n", wait_ns, calls);

    /* (a) One-request round trips, one at a time: waiting in
     * fastreq_batch_wait (a Go goroutine blocks), or in poll() on the
     * batch's eventfd (the asyncio way; Go never blocks the caller). */
    char req[1024];
    int reqlen = snprintf(req, sizeof req, "[{\"url\":\"%s/x/json\"}]", url);
    for (int mode = 0; mode < 2; mode++) {
        double t0 = 0;
        for (long i = -trips / 10; i < trips; i++) { /* negative i: warm-up */
            if (i == 0) t0 = now_ns();
            round_trip(c, req, (size_t)reqlen, mode);
        }
        printf("    round trip, submit 1 GET /x/json + %s + drain + release + free: %7.1f us/request  (%ld)\n",
               mode ? "poll(fd)  " : "batch_wait", (now_ns() - t0) / 1e3 / (double)trips, trips);
    }
    fastreq_client_close(c);

    /* (b) 100k records: run the requests, let every record queue up, then
     * time only the drain + release loop. */
    c = client("{\"backend\":\"http1\",\"concurrency\":256,\"max_retries\":0,\"timeout\":60}");
    size_t one = strlen(url) + 32, cap = (size_t)nrec * one + 16, len = 0;
    char *json = malloc(cap);
    if (!json) return 1;
    json[len++] = '[';
    for (long i = 0; i < nrec; i++)
        len += (size_t)snprintf(json + len, cap - len, "%s{\"url\":\"%s/x/json\"}", i ? "," : "", url);
    json[len++] = ']';
    double t0 = now_ns();
    uint64_t b = submit(c, json, len);
    free(json);
    while (fastreq_batch_wait(b, 100) < nrec) {
    }
    double run_s = (now_ns() - t0) / 1e9;
    fastreq_free_os_memory(); /* start the timed loop with no GC cycle pending */

    fastreq_record_t *recs = malloc(sizeof *recs * FASTREQ_DRAIN_CHUNK);
    if (!recs) return 1;
    long got = 0, bad = 0;
    double drain_ns = 0, release_ns = 0;
    t0 = now_ns();
    for (;;) {
        double a = now_ns();
        int32_t n = fastreq_batch_drain(b, recs, FASTREQ_DRAIN_CHUNK);
        double m = now_ns();
        if (n < 0) die("fastreq_batch_drain", n, NULL);
        for (int32_t i = 0; i < n; i++) bad += recs[i].status != 200;
        double r0 = now_ns();
        fastreq_records_release(recs, n);
        release_ns += now_ns() - r0;
        drain_ns += m - a;
        got += n;
        if (n < FASTREQ_DRAIN_CHUNK) break;
    }
    double total = now_ns() - t0;
    if (got != nrec || bad || fastreq_batch_done(b) != 1) {
        fprintf(stderr, "bench_abi: drained %ld of %ld records, %ld not 200\n", got, nrec, bad);
        return 1;
    }
    printf("(b) %ld requests to /x/json at concurrency 256 completed in %.2f s (%.0f req/s)\n", nrec, run_s,
           (double)nrec / run_s);
    printf("    drain + release of %ld records in chunks of %d:  %8.1f ns/record  (%.1f ms)\n", got,
           FASTREQ_DRAIN_CHUNK, total / (double)got, total / 1e6);
    printf("      of which fastreq_batch_drain %.1f ns/record, fastreq_records_release %.1f ns/record\n",
           drain_ns / (double)got, release_ns / (double)got);
    free(recs);
    fastreq_batch_free(b);
    fastreq_client_close(c);
    if (fastreq_live_buffers() != 0 || fastreq_live_handles() != 0) {
        fprintf(stderr, "bench_abi: %" PRId64 " buffers and %" PRId64 " handles live at the end\n",
                fastreq_live_buffers(), fastreq_live_handles());
        return 1;
    }
    return 0;
}
