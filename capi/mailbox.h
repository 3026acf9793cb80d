/* The library's side of fastreq_mailbox_t (see fastreq.h): plain C, so a
 * host thread posting requests and taking results never enters the Go
 * runtime. Only the engine's goroutine calls the mbox_* functions. */
#ifndef FASTREQ_MAILBOX_H
#define FASTREQ_MAILBOX_H

#include <stddef.h>
#include <stdint.h>
#include "fastreq.h"

typedef struct mbox_post {
    char *json; /* malloc'd copy; NULL for a cancel */
    size_t len;
    int64_t tag;
} mbox_post;

#define MBOX_INTERNAL __attribute__((visibility("hidden")))

MBOX_INTERNAL fastreq_mailbox_t *mbox_new(int intake_fd, int ready_fd);
/* Moves the posts into *out (malloc'd; the caller frees it and each json). */
MBOX_INTERNAL int32_t mbox_take_posts(fastreq_mailbox_t *m, mbox_post **out);
/* Moves the records the host gave back into *out (malloc'd). */
MBOX_INTERNAL int32_t mbox_take_returned(fastreq_mailbox_t *m, fastreq_record_t **out);
/* Queues one result record and wakes the host when the queue was empty;
 * returns 0, or -1 when the host freed the mailbox (the caller releases
 * the record). */
MBOX_INTERNAL int32_t mbox_complete(fastreq_mailbox_t *m, const fastreq_record_t *rec);
/* The engine is done with the mailbox: no more completions. Frees it when
 * the host has freed it too; returns the records nobody took in *out. */
MBOX_INTERNAL int32_t mbox_engine_done(fastreq_mailbox_t *m, fastreq_record_t **out);

#endif
