// fastreq_mailbox_t: requests posted and results taken by a host thread
// without entering the Go runtime (see fastreq.h for why).

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailbox.h"

struct fastreq_mailbox {
    pthread_mutex_t mu;
    int intake_fd; /* eventfd the engine reads: posts are waiting (the engine closes it) */
    int ready_fd;  /* eventfd the host polls: results are waiting */
    int host_gone, engine_gone; /* either: closed to posts */
    mbox_post *posts;
    int32_t nposts, capposts;
    fastreq_record_t *done; /* results, from head */
    int32_t head, ndone, capdone;
    fastreq_record_t *back; /* taken records given back, for the engine to release */
    int32_t nback, capback;
};

static void signal_fd(int fd)
{
    uint64_t one = 1;
    ssize_t r = write(fd, &one, sizeof one); /* non-blocking; a full counter still reads as ready */
    (void)r;
}

static int grow(void **p, int32_t *cap, int32_t need, size_t size)
{
    if (need <= *cap) return 0;
    int32_t n = *cap ? *cap * 2 : 16;
    while (n < need) n *= 2;
    void *q = realloc(*p, (size_t)n * size);
    if (!q) return -1;
    *p = q;
    *cap = n;
    return 0;
}

fastreq_mailbox_t *mbox_new(int intake_fd, int ready_fd)
{
    fastreq_mailbox_t *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    pthread_mutex_init(&m->mu, NULL);
    m->intake_fd = intake_fd;
    m->ready_fd = ready_fd;
    return m;
}

static int32_t post(fastreq_mailbox_t *m, char *json, size_t len, int64_t tag)
{
    pthread_mutex_lock(&m->mu);
    if (m->host_gone || m->engine_gone) {
        pthread_mutex_unlock(&m->mu);
        free(json);
        return FASTREQ_ECLOSED;
    }
    if (grow((void **)&m->posts, &m->capposts, m->nposts + 1, sizeof *m->posts) != 0) {
        pthread_mutex_unlock(&m->mu);
        free(json);
        return FASTREQ_ESYS;
    }
    m->posts[m->nposts++] = (mbox_post){json, len, tag};
    if (m->nposts == 1) signal_fd(m->intake_fd); /* under the lock: the engine closes the fd once it is gone */
    pthread_mutex_unlock(&m->mu);
    return FASTREQ_OK;
}

int32_t fastreq_mailbox_post(fastreq_mailbox_t *m, const char *requests_json, size_t len, int64_t tag)
{
    if (!m || (!requests_json && len)) return FASTREQ_EINVAL;
    char *copy = malloc(len + 1);
    if (!copy) return FASTREQ_ESYS;
    if (len) memcpy(copy, requests_json, len);
    copy[len] = 0;
    return post(m, copy, len, tag);
}

int32_t fastreq_mailbox_cancel(fastreq_mailbox_t *m, int64_t tag)
{
    if (!m) return FASTREQ_EINVAL;
    return post(m, NULL, 0, tag);
}

int32_t fastreq_mailbox_fd(fastreq_mailbox_t *m)
{
    return m ? m->ready_fd : FASTREQ_EINVAL;
}

int32_t fastreq_mailbox_take(fastreq_mailbox_t *m, fastreq_record_t *records, int32_t max)
{
    if (!m || !records || max <= 0) return FASTREQ_EINVAL;
    pthread_mutex_lock(&m->mu);
    int32_t n = m->ndone - m->head;
    if (n > max) n = max;
    memcpy(records, m->done + m->head, (size_t)n * sizeof *records);
    m->head += n;
    if (m->head == m->ndone) {
        m->head = m->ndone = 0;
        uint64_t counter;
        ssize_t r = read(m->ready_fd, &counter, sizeof counter); /* quiet until the next result */
        (void)r;
    }
    pthread_mutex_unlock(&m->mu);
    return n;
}

int32_t fastreq_mailbox_release(fastreq_mailbox_t *m, fastreq_record_t *records, int32_t n)
{
    if (!m || (!records && n > 0) || n < 0) return FASTREQ_EINVAL;
    pthread_mutex_lock(&m->mu);
    if (grow((void **)&m->back, &m->capback, m->nback + n, sizeof *m->back) != 0) {
        pthread_mutex_unlock(&m->mu);
        return FASTREQ_ESYS;
    }
    memcpy(m->back + m->nback, records, (size_t)n * sizeof *records);
    m->nback += n;
    pthread_mutex_unlock(&m->mu);
    for (int32_t i = 0; i < n; i++) { /* the caller's copies no longer own anything */
        records[i].body = NULL;
        records[i].meta = NULL;
        records[i].body_len = records[i].meta_len = 0;
    }
    return FASTREQ_OK;
}

/* Hands the caller a whole array and its length, leaving it empty. */
static int32_t take_array(fastreq_mailbox_t *m, void **array, int32_t *n, int32_t *cap, void **out)
{
    pthread_mutex_lock(&m->mu);
    int32_t count = *n;
    *out = *array;
    *array = NULL;
    *n = *cap = 0;
    pthread_mutex_unlock(&m->mu);
    return count;
}

int32_t mbox_take_posts(fastreq_mailbox_t *m, mbox_post **out)
{
    return take_array(m, (void **)&m->posts, &m->nposts, &m->capposts, (void **)out);
}

int32_t mbox_take_returned(fastreq_mailbox_t *m, fastreq_record_t **out)
{
    return take_array(m, (void **)&m->back, &m->nback, &m->capback, (void **)out);
}

int32_t mbox_complete(fastreq_mailbox_t *m, const fastreq_record_t *rec)
{
    pthread_mutex_lock(&m->mu);
    if (m->host_gone || grow((void **)&m->done, &m->capdone, m->ndone + 1, sizeof *m->done) != 0) {
        pthread_mutex_unlock(&m->mu);
        return -1;
    }
    m->done[m->ndone++] = *rec;
    int first = m->ndone - m->head == 1;
    pthread_mutex_unlock(&m->mu);
    if (first) signal_fd(m->ready_fd);
    return 0;
}

/* Frees the mailbox and its eventfds once both sides are gone; the
 * records still in it go to *out for the engine to release. */
static int32_t leave(fastreq_mailbox_t *m, int engine, fastreq_record_t **out)
{
    pthread_mutex_lock(&m->mu);
    if (engine) m->engine_gone = 1;
    else m->host_gone = 1;
    int last = m->engine_gone && m->host_gone;
    int32_t n = 0;
    if (out) { /* the engine takes what is left; after host_gone nothing is added */
        n = (m->ndone - m->head) + m->nback;
        *out = malloc((size_t)(n ? n : 1) * sizeof **out);
        if (*out) {
            memcpy(*out, m->done + m->head, (size_t)(m->ndone - m->head) * sizeof **out);
            memcpy(*out + (m->ndone - m->head), m->back, (size_t)m->nback * sizeof **out);
        } else {
            n = 0;
        }
        m->head = m->ndone = m->nback = 0;
    }
    pthread_mutex_unlock(&m->mu);
    if (last) {
        for (int32_t i = 0; i < m->nposts; i++) free(m->posts[i].json);
        free(m->posts);
        free(m->done);
        free(m->back);
        close(m->ready_fd); /* the intake fd is the engine's to close */
        pthread_mutex_destroy(&m->mu);
        free(m);
    }
    return n;
}

int32_t mbox_engine_done(fastreq_mailbox_t *m, fastreq_record_t **out)
{
    return leave(m, 1, out);
}

void fastreq_mailbox_free(fastreq_mailbox_t *m)
{
    if (m) leave(m, 0, NULL);
}
