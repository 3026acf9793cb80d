/* Batches' completion queues, their handles and the engine's inbox: see
 * queue.h. Every function here is safe from any thread. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#undef FASTREQ_TYPES_ONLY /* the prototypes of fastreq.h check these definitions */
#include "queue.h"

/* Waiters are woken once this many body bytes wait, whatever the
 * threshold, so bodies do not pile up unseen. */
#define MIN_BYTES (4 << 20)

int64_t fq_live_buffers;

/* A batch. refs counts its owners: the host until fastreq_batch_free, the
 * engine until its last RESULT record (or a refusing verdict), and each
 * call in progress; the last one frees it. */
struct fq_batch {
    pthread_mutex_t mu;
    pthread_cond_t cond; /* records to wait for; the verdict */
    uint64_t handle;
    int refs;
    fastreq_record_t *items;
    int64_t head, len, cap;
    int64_t total;   /* RESULT records the batch produces; -1 until the verdict */
    int64_t pushed;  /* RESULT records pushed */
    int64_t drained; /* RESULT records drained */
    int64_t bytes;   /* body bytes of the waiting records */
    int32_t want;    /* wake threshold in records (>= 1) */
    int32_t delay_us;
    int late;        /* a delay passed while records waited */
    int efd;         /* -1 until fastreq_batch_fd */
    int closed;      /* freed by the host */
    int strict;      /* FASTREQ_SUBMIT_STRICT: the host waits for the verdict */
    int decided;
    int32_t rc;      /* the verdict: FASTREQ_OK or the code of a refused batch */
    char *err;
    char *json;      /* a non-strict submit's copy of the requests, until the verdict */
    fq_submit submit;
    int hub;         /* a hub (fastreq_hub_new): READY records only, never ends */
    fq_batch *notify; /* the hub this batch reports its wakeups to (a reference), or NULL */
};

/* ---- memory -------------------------------------------------------------- */

static void live_add(int64_t d) { __atomic_add_fetch(&fq_live_buffers, d, __ATOMIC_RELAXED); }

static int post(fq_post p);

/* Frees a record's buffers: small ones here, big bodies by the engine. */
static void release_record(fastreq_record_t *r)
{
    if (r->meta) {
        free(r->meta);
        live_add(-1);
    }
    if (r->body) {
        if (r->body_len >= FQ_BIG_BODY) {
            fq_post p = {.kind = FQ_RELEASE, .ptr = r->body, .len = r->body_len};
            post(p);
        } else {
            free(r->body);
            live_add(-1);
        }
    }
    r->body = NULL;
    r->meta = NULL;
    r->body_len = r->meta_len = 0;
}

/* ---- the inbox ------------------------------------------------------------- */

static pthread_mutex_t inbox_mu = PTHREAD_MUTEX_INITIALIZER;
static fq_post *inbox;
static size_t inbox_len, inbox_cap;
static pthread_once_t bell_once = PTHREAD_ONCE_INIT;
static int bell = -1;

static void make_bell(void) { bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK); }

int fq_inbox_fd(void)
{
    pthread_once(&bell_once, make_bell);
    return bell;
}

static void ring(int fd)
{
    uint64_t one = 1;
    ssize_t n = write(fd, &one, sizeof one); /* non-blocking; a full counter still reads as ready */
    (void)n;
}

/* Queues p for the engine; -1 when there is no memory or no inbox. */
static int post(fq_post p)
{
    int fd = fq_inbox_fd();
    if (fd < 0)
        return -1;
    pthread_mutex_lock(&inbox_mu);
    if (inbox_len == inbox_cap) {
        size_t cap = inbox_cap ? inbox_cap * 2 : 64;
        fq_post *grown = realloc(inbox, cap * sizeof *grown);
        if (!grown) {
            pthread_mutex_unlock(&inbox_mu);
            return -1;
        }
        inbox = grown;
        inbox_cap = cap;
    }
    int first = inbox_len == 0;
    inbox[inbox_len++] = p;
    pthread_mutex_unlock(&inbox_mu);
    if (first) /* later ones are taken with the first */
        ring(fd);
    return 0;
}

int32_t fq_take_posts(fq_post **out)
{
    pthread_mutex_lock(&inbox_mu);
    *out = inbox;
    int32_t n = (int32_t)inbox_len;
    inbox = NULL;
    inbox_len = inbox_cap = 0;
    pthread_mutex_unlock(&inbox_mu);
    return n;
}

/* ---- handles ----------------------------------------------------------------
 * A batch handle is HANDLE_BIT | generation << SLOT_BITS | slot: the bit
 * keeps batch handles apart from the Go registry's (clients, servers), and
 * the generation, bumped each time a slot is reused, keeps a stale handle
 * from reaching a newer batch. */

#define HANDLE_BIT (UINT64_C(1) << 62)
#define SLOT_BITS 24
#define SLOT_MASK ((UINT64_C(1) << SLOT_BITS) - 1)

typedef struct {
    fq_batch *b;
    uint64_t gen;
} slot_t;

static pthread_mutex_t tab_mu = PTHREAD_MUTEX_INITIALIZER;
static slot_t *slots;
static uint32_t nslots, capslots;
static uint32_t *freelist;
static uint32_t nfree, capfree;
static int64_t live_batches;

int64_t fq_live_batches(void) { return __atomic_load_n(&live_batches, __ATOMIC_RELAXED); }

static uint64_t tab_add(fq_batch *b)
{
    uint64_t h = 0;
    pthread_mutex_lock(&tab_mu);
    uint32_t i;
    if (nfree > 0) {
        i = freelist[--nfree];
    } else {
        if (nslots == capslots) {
            uint32_t cap = capslots ? capslots * 2 : 256;
            slot_t *grown;
            if (cap > SLOT_MASK || !(grown = realloc(slots, cap * sizeof *grown)))
                goto out;
            slots = grown;
            capslots = cap;
        }
        i = nslots++;
        slots[i].gen = 0;
    }
    slots[i].gen++;
    slots[i].b = b;
    h = HANDLE_BIT | slots[i].gen << SLOT_BITS | i;
    __atomic_add_fetch(&live_batches, 1, __ATOMIC_RELAXED);
out:
    pthread_mutex_unlock(&tab_mu);
    return h;
}

static slot_t *tab_slot(uint64_t h)
{
    uint64_t i = h & SLOT_MASK;
    if (!(h & HANDLE_BIT) || i >= nslots || !slots[i].b || slots[i].gen != (h & ~HANDLE_BIT) >> SLOT_BITS)
        return NULL;
    return &slots[i];
}

/* The live batch of h with a reference for the caller, or NULL. */
static fq_batch *tab_get(uint64_t h)
{
    pthread_mutex_lock(&tab_mu);
    slot_t *s = tab_slot(h);
    fq_batch *b = s ? s->b : NULL;
    if (b)
        __atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&tab_mu);
    return b;
}

/* Forgets h; returns its batch (whose host reference the caller now holds)
 * or NULL when h is not live. */
static fq_batch *tab_remove(uint64_t h)
{
    pthread_mutex_lock(&tab_mu);
    slot_t *s = tab_slot(h);
    fq_batch *b = s ? s->b : NULL;
    if (b) {
        s->b = NULL;
        if (nfree == capfree) {
            uint32_t cap = capfree ? capfree * 2 : 256;
            uint32_t *grown = realloc(freelist, cap * sizeof *grown);
            if (grown) {
                freelist = grown;
                capfree = cap;
            }
        }
        if (nfree < capfree) /* else the slot is not reused */
            freelist[nfree++] = (uint32_t)(s - slots);
        __atomic_sub_fetch(&live_batches, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&tab_mu);
    return b;
}

static void unref(fq_batch *b)
{
    if (__atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (int64_t i = b->head; i < b->len; i++) /* only when the engine dropped it unfreed */
        release_record(&b->items[i]);
    free(b->items);
    if (b->efd >= 0)
        close(b->efd);
    if (b->err) {
        free(b->err);
        live_add(-1);
    }
    free(b->json);
    pthread_cond_destroy(&b->cond);
    pthread_mutex_destroy(&b->mu);
    fq_batch *hub = b->notify;
    free(b);
    if (hub)
        unref(hub);
}

/* ---- the queue ----------------------------------------------------------- */

/* Whether a waiter should be up; the caller holds b->mu. */
static int awake(const fq_batch *b)
{
    int64_t n = b->len - b->head;
    return n >= b->want || b->late || b->bytes >= MIN_BYTES || (b->total >= 0 && b->pushed == b->total) ||
           b->closed || b->rc != FASTREQ_OK;
}

/* Waking a batch's waiters happens after b->mu is unlocked, so that a
 * waiter that wakes does not block at once on the mutex its waker still
 * holds. The state they wake for is set under the lock, so no wakeup is
 * lost. A pending wakeup holds a reference of its own (taken by waking,
 * dropped by wake): once the lock is gone, another thread may drop the
 * last of the others -- a concurrent push of the last record, then the
 * host's free -- and the condition variable, the descriptor and the hub
 * must outlive the wakeup. */
typedef struct {
    fq_batch *b;
    int efd;
    fq_batch *hub;
} fq_wake;

/* The wakeup of b's waiters, with a reference to b; taken while the
 * caller holds b->mu. */
static fq_wake waking(fq_batch *b)
{
    __atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
    return (fq_wake){b, b->efd, b->notify};
}

static void hub_ready(fq_batch *hub, uint64_t handle);

/* Wakes the descriptor's watcher, blocked waiters and the hub, and drops
 * the wakeup's reference; called after b->mu is unlocked (w.b NULL:
 * nobody to wake). */
static void wake(fq_wake w)
{
    if (!w.b)
        return;
    if (w.efd >= 0)
        ring(w.efd);
    pthread_cond_broadcast(&w.b->cond);
    if (w.hub)
        hub_ready(w.hub, w.b->handle);
    unref(w.b);
}

static int engine_done(const fq_batch *b) { return b->total >= 0 && b->pushed == b->total; }

/* Appends rec to b's queue; the caller holds b->mu. Returns 0, or -1 when
 * there is no memory (the record is not queued). */
static int append_locked(fq_batch *b, const fastreq_record_t *rec)
{
    if (b->len == b->cap) {
        int64_t cap = b->cap ? b->cap * 2 : 16;
        fastreq_record_t *grown = realloc(b->items, (size_t)cap * sizeof *grown);
        if (!grown)
            return -1;
        b->items = grown;
        b->cap = cap;
    }
    b->items[b->len++] = *rec;
    b->bytes += rec->body_len;
    return 0;
}

int32_t fq_push(fq_batch *b, const fastreq_record_t *rec, int32_t *delay_us)
{
    int32_t res = 0;
    fq_wake w = {0};
    pthread_mutex_lock(&b->mu);
    int was = awake(b), first = b->head == b->len, result = rec->type == FASTREQ_RECORD_RESULT;
    if (b->closed || append_locked(b, rec) != 0)
        res = FQ_DROPPED; /* freed, or no memory: the record is lost, its count is not */
    if (result)
        b->pushed++;
    if (!b->closed) {
        if (!was && awake(b))
            w = waking(b);
        else if (!res && first && !was && b->delay_us > 0 && b->want > 1) {
            res |= FQ_ARM_TIMER;
            *delay_us = b->delay_us;
        }
    }
    int last = result && engine_done(b);
    pthread_mutex_unlock(&b->mu);
    wake(w);
    if (last)
        unref(b); /* the engine's reference: b may be gone once this returns */
    return res;
}

void fq_skipped(fq_batch *b, int64_t n)
{
    pthread_mutex_lock(&b->mu);
    b->pushed += n;
    int last = n > 0 && engine_done(b);
    pthread_mutex_unlock(&b->mu);
    if (last)
        unref(b); /* the engine's reference */
}

int32_t fq_freed(uint64_t handle)
{
    fq_batch *b = tab_get(handle);
    if (b)
        unref(b);
    return b == NULL;
}

void fq_expire(uint64_t handle)
{
    fq_batch *b = tab_get(handle);
    if (!b)
        return;
    fq_wake w = {0};
    pthread_mutex_lock(&b->mu);
    if (!b->closed && b->head < b->len && !b->late) {
        b->late = 1;
        w = waking(b);
    }
    pthread_mutex_unlock(&b->mu);
    wake(w);
    unref(b);
}

fq_submit fq_submit_of(fq_batch *b) { return b->submit; }

void fq_decide(fq_batch *b, int32_t rc, char *err_json, int64_t total)
{
    fq_wake w = {0};
    pthread_mutex_lock(&b->mu);
    int was = awake(b);
    b->rc = rc;
    if (b->strict)
        b->err = err_json;
    else if (err_json) { /* nobody asks for it: the waits return rc */
        free(err_json);
        live_add(-1);
    }
    free(b->json);
    b->json = NULL;
    if (rc == FASTREQ_OK)
        b->total = total;
    b->decided = 1;
    if (!was && awake(b) && !b->closed)
        w = waking(b);
    else if (b->strict) { /* the submit waits for the verdict, not for records */
        w = waking(b);
        w.efd = -1;
        w.hub = NULL;
    }
    int done = rc != FASTREQ_OK || engine_done(b);
    pthread_mutex_unlock(&b->mu);
    wake(w);
    if (done)
        unref(b); /* the engine's reference: no record is to come */
}

/* ---- hubs ---------------------------------------------------------------- */

/* Queues a READY record for the batch of handle in hub and wakes the hub's
 * waiters as any batch's; no lock is held by the caller. A hub being freed
 * drops it. */
static void hub_ready(fq_batch *hub, uint64_t handle)
{
    fastreq_record_t rec = {.index = (int64_t)handle, .type = FASTREQ_RECORD_READY};
    fq_wake w = {0};
    pthread_mutex_lock(&hub->mu);
    if (!hub->closed) {
        int was = awake(hub);
        append_locked(hub, &rec); /* no memory: the wakeup is lost; the batch's own waits still see it */
        if (!was && awake(hub))
            w = waking(hub);
    }
    pthread_mutex_unlock(&hub->mu);
    wake(w);
}

int32_t fastreq_hub_new(uint64_t *hub_out)
{
    if (!hub_out)
        return FASTREQ_EINVAL;
    fq_batch *h = fq_batch_new((fq_submit){0});
    if (!h)
        return FASTREQ_ESYS;
    h->refs = 1; /* the host's: no engine work stands behind a hub */
    h->hub = 1;
    h->decided = 1;
    *hub_out = h->handle;
    return FASTREQ_OK;
}

int32_t fastreq_batch_notify(uint64_t batch, uint64_t hub)
{
    fq_batch *b = tab_get(batch);
    if (!b)
        return FASTREQ_EBADHANDLE;
    fq_batch *h = tab_get(hub);
    if (!h) {
        unref(b);
        return FASTREQ_EBADHANDLE;
    }
    int32_t rc = FASTREQ_OK;
    int tell = 0;
    pthread_mutex_lock(&b->mu);
    if (!h->hub || b->hub || b->notify) {
        rc = FASTREQ_EINVAL;
    } else {
        b->notify = h; /* takes tab_get's reference (b's until its end) */
        tell = !b->closed && awake(b); /* awake already: only the hub is new to it */
    }
    pthread_mutex_unlock(&b->mu);
    if (tell)
        hub_ready(h, b->handle);
    if (rc != FASTREQ_OK)
        unref(h);
    unref(b);
    return rc;
}

/* ---- the ABI ------------------------------------------------------------- */

fq_batch *fq_batch_new(fq_submit s)
{
    fq_batch *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    pthread_mutex_init(&b->mu, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cond, &attr);
    pthread_condattr_destroy(&attr);
    b->refs = 2; /* the host's and the engine's */
    b->total = -1;
    b->want = 1;
    b->efd = -1;
    b->submit = s;
    b->handle = tab_add(b);
    if (!b->handle) {
        b->refs = 1;
        unref(b);
        return NULL;
    }
    return b;
}

uint64_t fq_handle_of(fq_batch *b) { return b->handle; }

int32_t fastreq_batch_submit(uint64_t client, const char *requests_json, size_t len, uint32_t flags,
                             uint64_t *batch_out, char **err_out)
{
    if (err_out)
        *err_out = NULL;
    int strict = (flags & FASTREQ_SUBMIT_STRICT) || !batch_out;
    char *copy = NULL;
    if (!strict && len > 0) { /* the call returns before the engine reads the requests */
        if (!(copy = malloc(len)))
            return FASTREQ_ESYS;
        memcpy(copy, requests_json, len);
        requests_json = copy;
    }
    fq_batch *b = fq_batch_new((fq_submit){client, requests_json, len, flags, batch_out == NULL});
    if (!b) {
        free(copy);
        return FASTREQ_ESYS;
    }
    b->strict = strict;
    b->json = copy;
    fq_post p = {.kind = FQ_SUBMIT, .handle = b->handle, .batch = b};
    if (post(p) != 0) {
        tab_remove(b->handle);
        b->refs = 1;
        unref(b);
        return FASTREQ_ESYS;
    }
    if (!strict) {
        *batch_out = b->handle;
        return FASTREQ_OK;
    }
    pthread_mutex_lock(&b->mu);
    while (!b->decided)
        pthread_cond_wait(&b->cond, &b->mu);
    int32_t rc = b->rc;
    char *err = b->err;
    b->err = NULL;
    pthread_mutex_unlock(&b->mu);
    if (rc != FASTREQ_OK) {
        if (err_out)
            *err_out = err;
        else if (err) {
            free(err);
            live_add(-1);
        }
        tab_remove(b->handle);
        unref(b); /* the host's; the verdict dropped the engine's */
        return rc;
    }
    *batch_out = b->handle;
    return FASTREQ_OK;
}

int32_t fastreq_batch_fd(uint64_t batch)
{
    fq_batch *b = tab_get(batch);
    if (!b)
        return FASTREQ_EBADHANDLE;
    int32_t fd;
    pthread_mutex_lock(&b->mu);
    if (b->efd < 0) {
        b->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (b->efd >= 0 && ((b->head < b->len && awake(b)) || b->rc != FASTREQ_OK))
            ring(b->efd);
    }
    fd = b->efd >= 0 ? b->efd : FASTREQ_ESYS;
    pthread_mutex_unlock(&b->mu);
    unref(b);
    return fd;
}

/* Waits as fastreq_batch_wait says; the caller holds b->mu. Returns the
 * records waiting. */
static int64_t wait_locked(fq_batch *b, int32_t timeout_ms)
{
    struct timespec deadline;
    if (timeout_ms > 0) {
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    while (!awake(b) && timeout_ms != 0) {
        if (timeout_ms < 0)
            pthread_cond_wait(&b->cond, &b->mu);
        else if (pthread_cond_timedwait(&b->cond, &b->mu, &deadline) == ETIMEDOUT)
            break;
    }
    return b->len - b->head;
}

static int32_t clamp(int64_t n) { return n > INT32_MAX ? INT32_MAX : (int32_t)n; }

int32_t fastreq_batch_wait(uint64_t batch, int32_t timeout_ms)
{
    fq_batch *b = tab_get(batch);
    if (!b)
        return FASTREQ_EBADHANDLE;
    pthread_mutex_lock(&b->mu);
    int64_t n = wait_locked(b, timeout_ms);
    int32_t rc = b->rc;
    pthread_mutex_unlock(&b->mu);
    unref(b);
    return rc != FASTREQ_OK ? rc : clamp(n);
}

/* Moves up to max records into recs; the caller holds b->mu. */
static int32_t drain_locked(fq_batch *b, fastreq_record_t *recs, int32_t max)
{
    int64_t n = b->len - b->head;
    if (n > max)
        n = max;
    memcpy(recs, b->items + b->head, (size_t)n * sizeof *recs);
    for (int64_t i = 0; i < n; i++) {
        if (recs[i].type == FASTREQ_RECORD_RESULT)
            b->drained++;
        b->bytes -= recs[i].body_len;
        if (recs[i].body && recs[i].body_len >= FQ_BIG_BODY) { /* no longer holds the engine's reads back */
            fq_post p = {.kind = FQ_DRAINED, .ptr = recs[i].body, .len = recs[i].body_len};
            post(p);
        }
    }
    b->head += n;
    if (b->head == b->len) {
        b->head = b->len = 0;
        b->late = 0;
        if (b->cap > 4096) { /* a finished burst does not pin memory */
            free(b->items);
            b->items = NULL;
            b->cap = 0;
        }
    }
    return (int32_t)n;
}

int32_t fastreq_batch_next(uint64_t batch, fastreq_record_t *records, int32_t max, int32_t timeout_ms)
{
    fq_batch *b = tab_get(batch);
    if (!b)
        return FASTREQ_EBADHANDLE;
    if (!records || max <= 0) {
        unref(b);
        return FASTREQ_EINVAL;
    }
    pthread_mutex_lock(&b->mu);
    wait_locked(b, timeout_ms);
    int32_t n = b->rc != FASTREQ_OK ? b->rc : drain_locked(b, records, max);
    pthread_mutex_unlock(&b->mu);
    unref(b);
    return n;
}

int32_t fastreq_batch_drain(uint64_t batch, fastreq_record_t *records, int32_t max)
{
    fq_batch *b = tab_get(batch);
    if (!b)
        return FASTREQ_EBADHANDLE;
    int32_t n = 0;
    if (max != 0 && (!records || max < 0))
        n = FASTREQ_EINVAL;
    else {
        pthread_mutex_lock(&b->mu);
        n = b->rc != FASTREQ_OK ? b->rc : max > 0 ? drain_locked(b, records, max) : 0;
        pthread_mutex_unlock(&b->mu);
    }
    unref(b);
    return n;
}

int32_t fastreq_batch_set_wake(uint64_t batch, int32_t min_records, int32_t max_delay_us)
{
    fq_batch *b = tab_get(batch);
    if (!b)
        return FASTREQ_EBADHANDLE;
    if (min_records < 1 || max_delay_us < 0) {
        unref(b);
        return FASTREQ_EINVAL;
    }
    int arm = 0;
    fq_wake w = {0};
    pthread_mutex_lock(&b->mu);
    b->want = min_records;
    b->delay_us = max_delay_us;
    if (awake(b))
        w = waking(b);
    else if (b->head < b->len && max_delay_us > 0 && min_records > 1)
        arm = 1; /* records already wait: their delay starts now */
    pthread_mutex_unlock(&b->mu);
    wake(w);
    if (arm) {
        fq_post p = {.kind = FQ_ARM, .handle = batch, .len = max_delay_us};
        post(p);
    }
    unref(b);
    return FASTREQ_OK;
}

int32_t fastreq_batch_done(uint64_t batch)
{
    fq_batch *b = tab_get(batch);
    if (!b)
        return FASTREQ_EBADHANDLE;
    pthread_mutex_lock(&b->mu);
    int32_t done = b->rc != FASTREQ_OK ? b->rc : b->head == b->len && b->total >= 0 && b->drained == b->total;
    pthread_mutex_unlock(&b->mu);
    unref(b);
    return done;
}

int32_t fastreq_batch_cancel(uint64_t batch)
{
    fq_batch *b = tab_get(batch);
    if (!b)
        return FASTREQ_EBADHANDLE;
    fq_post p = {.kind = FQ_CANCEL, .handle = batch};
    int rc = post(p) == 0 ? FASTREQ_OK : FASTREQ_ESYS;
    unref(b);
    return rc;
}

int32_t fastreq_batch_free(uint64_t batch)
{
    fq_batch *b = tab_remove(batch);
    if (!b)
        return FASTREQ_EBADHANDLE;
    pthread_mutex_lock(&b->mu);
    b->closed = 1;
    int finished = engine_done(b) || b->hub;
    fastreq_record_t *items = b->items;
    int64_t head = b->head, n = b->len - b->head;
    b->items = NULL;
    b->head = b->len = b->cap = 0;
    b->bytes = 0;
    pthread_cond_broadcast(&b->cond); /* waiters in other threads return */
    pthread_mutex_unlock(&b->mu);
    for (int64_t i = 0; i < n; i++)
        release_record(&items[head + i]);
    free(items);
    if (!finished) {
        /* The batch ends in the background: what it pushes from now on is
         * released at once, so freeing never waits for the engine. */
        fq_post p = {.kind = FQ_ABANDON, .handle = batch};
        post(p);
    }
    unref(b);
    return FASTREQ_OK;
}

void fastreq_records_release(fastreq_record_t *records, int32_t n)
{
    if (!records || n <= 0)
        return;
    for (int32_t i = 0; i < n; i++)
        release_record(&records[i]);
}

/* ---- copies out ------------------------------------------------------------ */

#if defined(__linux__) && !defined(MADV_POPULATE_WRITE)
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older C libraries' headers lack it */
#endif

/* Ranges shorter than this are copied without populating: one system call
 * costs more than the few faults it would save. */
#define POPULATE_MIN (32 << 10)

/* Cleared when the kernel does not know MADV_POPULATE_WRITE (before Linux
 * 5.14): the copies go on without it. */
static int populate_known = 1;

/* Makes the pages of [p, p + n) present and writable, when the range is
 * long enough and (unless fresh says the pages are new) they look new:
 * the page in the middle of the range is not yet present (memory being
 * reused is, and populating it would be a wasted walk). Contents are
 * unchanged: a new page reads as zeros either way. errno is kept. */
void fq_populate(void *p, size_t n, int fresh)
{
#if defined(MADV_POPULATE_WRITE)
    static uintptr_t page_size;
    if (n < POPULATE_MIN || !__atomic_load_n(&populate_known, __ATOMIC_RELAXED))
        return;
    uintptr_t page = __atomic_load_n(&page_size, __ATOMIC_RELAXED);
    if (!page) {
        long sz = sysconf(_SC_PAGESIZE);
        if (sz <= 0)
            return;
        page = (uintptr_t)sz;
        __atomic_store_n(&page_size, page, __ATOMIC_RELAXED);
    }
    int saved = errno;
    uintptr_t mask = page - 1, start = (uintptr_t)p & ~mask, end = ((uintptr_t)p + n + mask) & ~mask;
    unsigned char present = 0;
    if (!fresh && (mincore((void *)(((uintptr_t)p + n / 2) & ~mask), 1, &present) != 0 || (present & 1))) {
        errno = saved;
        return;
    }
    if (madvise((void *)start, end - start, MADV_POPULATE_WRITE) != 0 && errno == EINVAL)
        __atomic_store_n(&populate_known, 0, __ATOMIC_RELAXED);
    errno = saved;
#else
    (void)p;
    (void)n;
    (void)fresh;
#endif
}

void fastreq_copy_body(void *dst, const void *src, size_t n)
{
    if (n == 0)
        return;
    fq_populate(dst, n, 0);
    memcpy(dst, src, n);
}
