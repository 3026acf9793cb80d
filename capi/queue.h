/* The completion queues of batches and the engine's inbox, in plain C:
 * every batch function of fastreq.h but the submit's decoding runs here,
 * so a host thread waiting for, draining and releasing results, or
 * cancelling and freeing a batch, never enters the Go runtime. (A thread
 * returning from a call into Go keeps one of its scheduler slots until the
 * runtime takes it back; a host that called in between requests kept the
 * engine waiting for that slot.)
 *
 * The engine's side (capi/queue.go) is one goroutine that waits on the
 * inbox's eventfd through Go's network poller and takes what hosts posted
 * (submits, cancels, frees, big bodies drained and released), and the engine's
 * goroutines, which push records with fq_push. Only Go calls the fq_*
 * functions below. */
#ifndef FASTREQ_QUEUE_H
#define FASTREQ_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include "fastreq.h"

#define FQ_INTERNAL __attribute__((visibility("hidden")))

/* Bodies of at least this many bytes may be mapped pages of the engine's
 * big-buffer pool, which only Go releases (bigBuffer in bigbuf.go). */
#define FQ_BIG_BODY (64 << 10)

typedef struct fq_batch fq_batch;

enum { FQ_SUBMIT = 1, FQ_CANCEL, FQ_ABANDON, FQ_ARM, FQ_RELEASE, FQ_DRAINED };

/* A message in the engine's inbox. */
typedef struct fq_post {
    int32_t kind;
    uint64_t handle; /* SUBMIT, CANCEL, ABANDON, ARM: the batch's handle */
    fq_batch *batch; /* SUBMIT: valid until fq_decide */
    void *ptr;       /* RELEASE, DRAINED: a body of at least FQ_BIG_BODY bytes */
    int64_t len;
} fq_post;

/* What a SUBMIT asks for; the pointers are the host's, valid until
 * fq_decide (the host waits for it). */
typedef struct fq_submit {
    uint64_t client;
    const char *json;
    size_t len;
    uint32_t flags;
    int32_t out_null; /* batch_out was NULL */
} fq_submit;

/* Buffers handed to the host and not yet freed (fastreq_live_buffers). */
FQ_INTERNAL extern int64_t fq_live_buffers;

/* The inbox's eventfd (made on first use); -1 when it cannot be made. */
FQ_INTERNAL int fq_inbox_fd(void);
/* Moves the inbox's messages into *out (malloc'd; the caller frees it). */
FQ_INTERNAL int32_t fq_take_posts(fq_post **out);

/* A new batch with its handle (the host's and the engine's references),
 * or NULL when there is no memory. */
FQ_INTERNAL fq_batch *fq_batch_new(fq_submit s);
FQ_INTERNAL uint64_t fq_handle_of(fq_batch *b);
FQ_INTERNAL fq_submit fq_submit_of(fq_batch *b);
/* The submit's verdict: FASTREQ_OK with the number of RESULT records the
 * batch produces, or a code with the error JSON (malloc'd; handed to the
 * host). The engine touches b after an accepting verdict only through
 * fq_push. */
FQ_INTERNAL void fq_decide(fq_batch *b, int32_t rc, char *err_json, int64_t total);

/* fq_push results: */
#define FQ_DROPPED 1 /* the batch was freed: the caller releases the record */
#define FQ_ARM_TIMER 2 /* a bunch began below a threshold with a delay: call fq_expire after it */
FQ_INTERNAL int32_t fq_push(fq_batch *b, const fastreq_record_t *rec, int32_t *delay_us);
/* The engine skipped n RESULT records of a freed batch: they count as
 * pushed (b may be gone once it returns, as after the last RESULT's fq_push). */
FQ_INTERNAL void fq_skipped(fq_batch *b, int64_t n);
/* Whether handle is no longer live (the host freed its batch). */
FQ_INTERNAL int32_t fq_freed(uint64_t handle);
/* A bunch's delay passed: wakes the batch's waiters if records wait. */
FQ_INTERNAL void fq_expire(uint64_t handle);
/* Batches alive (not yet freed by the host). */
FQ_INTERNAL int64_t fq_live_batches(void);
/* Makes the pages of [p, p + n) present at once for a write about to come
 * (Linux MADV_POPULATE_WRITE), for ranges of 32 KiB and up: fresh says
 * they are new; else only pages that look new are. */
FQ_INTERNAL void fq_populate(void *p, size_t n, int fresh);

/* Puts back the soft RLIMIT_NOFILE the process had before the Go runtime
 * raised it (nofile.c); returns 1 when it did. */
FQ_INTERNAL int32_t fq_restore_nofile(void);

#endif
