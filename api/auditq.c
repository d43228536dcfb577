/*
 * auditq.c — the bounded audit queue of ledgerd (see auditq.h).
 */
#include "auditq.h"

#include "../ledger/clock.h"
#include "../ledger/pg.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

/* A queued event owns copies of its strings. */
typedef struct {
    char actor[GL_AUDIT_ACTOR_MAX + 1];
    char action[GL_AUDIT_ACTION_MAX + 1];
    char object[GL_AUDIT_OBJECT_MAX + 1];
    char source[GL_AUDIT_SOURCE_MAX + 1];
    char *detail; /* heap, may be NULL */
    gl_audit_outcome outcome;
    int64_t at_us;
} queued_event;

struct gl_auditq {
    const gl_region *region;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    queued_event *ring; /* GL_AUDITQ_CAP slots */
    size_t head, count;
    bool stopping;
    PGconn *db;
    atomic_uint_fast64_t dropped, written;
};

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void gl_auditq_record(gl_auditq *q, const gl_audit_event *ev) {
    if (!q) return;
    pthread_mutex_lock(&q->mu);
    bool full = q->count == GL_AUDITQ_CAP;
    if (!full) {
        queued_event *e = &q->ring[(q->head + q->count) % GL_AUDITQ_CAP];
        snprintf(e->actor, sizeof e->actor, "%s", ev->actor ? ev->actor : "");
        snprintf(e->action, sizeof e->action, "%s", ev->action ? ev->action : "");
        snprintf(e->object, sizeof e->object, "%s", ev->object ? ev->object : "");
        snprintf(e->source, sizeof e->source, "%s", ev->source ? ev->source : "");
        e->detail = ev->detail_text ? strdup(ev->detail_text) : NULL;
        e->outcome = ev->outcome;
        e->at_us = ev->at_us ? ev->at_us : now_us();
        q->count++;
        pthread_cond_signal(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    if (full) {
        atomic_fetch_add(&q->dropped, 1);
        gl_log(GL_LOG_ERROR, "audit_dropped", "audit queue full: dropped one %s event", ev->action);
    }
}

static bool ensure_db(gl_auditq *q) {
    if (gl_pg_reusable(q->db)) return true;
    PQfinish(q->db);
    gl_error err;
    q->db = gl_region_connect(q->region, GL_ROLE_SERVICE, &err);
    if (!q->db) gl_log(GL_LOG_ERROR, "audit_region_down", "cannot reach region %s for the audit log", q->region->name);
    return q->db != NULL;
}

/* Appends the oldest `n` queued events; they leave the queue only once committed. */
static bool flush_some(gl_auditq *q, size_t n) {
    gl_audit_event *evs = calloc(n, sizeof *evs);
    if (!evs) return false;
    pthread_mutex_lock(&q->mu);
    for (size_t i = 0; i < n; i++) {
        /* Slots [head, head+n) are not reused until head moves, below. */
        const queued_event *e = &q->ring[(q->head + i) % GL_AUDITQ_CAP];
        evs[i] = (gl_audit_event){.actor = e->actor, .action = e->action, .object = e->object, .source = e->source,
                                  .outcome = e->outcome, .at_us = e->at_us, .detail_text = e->detail};
    }
    pthread_mutex_unlock(&q->mu);
    gl_error err;
    gl_error_clear(&err);
    /* A hung region costs each round trip at most the region's request
     * deadline (a service-role connection is guarded: ledger/deadline.h). */
    bool ok = ensure_db(q) && gl_audit_append(q->db, evs, n, &err);
    free(evs);
    if (!ok && err.kind == GL_ERR_INVALID) {
        /* A malformed event would block the queue forever: drop it, loudly. */
        gl_log(GL_LOG_ERROR, "audit_dropped", "%zu audit events refused: %s", n, err.message);
        atomic_fetch_add(&q->dropped, n);
    } else if (!ok) {
        if (q->db) gl_log(GL_LOG_ERROR, "audit_append_failed", "%zu audit events not appended yet: %s", n, err.message);
        return false;
    }
    pthread_mutex_lock(&q->mu);
    for (size_t i = 0; i < n; i++) free(q->ring[(q->head + i) % GL_AUDITQ_CAP].detail);
    q->head = (q->head + n) % GL_AUDITQ_CAP;
    q->count -= n;
    pthread_mutex_unlock(&q->mu);
    if (ok) atomic_fetch_add(&q->written, n);
    return true;
}

static void *drain_main(void *arg) {
    gl_auditq *q = arg;
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while (q->count == 0 && !q->stopping) pthread_cond_wait(&q->cv, &q->mu);
        bool stopping = q->stopping;
        size_t n = q->count < GL_AUDIT_BATCH_MAX ? q->count : GL_AUDIT_BATCH_MAX;
        pthread_mutex_unlock(&q->mu);
        /* q->count is changed by other threads: cppcheck cannot see that. */
        // cppcheck-suppress knownConditionTrueFalse
        if (n == 0 && stopping) break;
        if (!flush_some(q, n)) {
            if (stopping) break; /* one last try only: the rest is reported below */
            struct timespec pause = {0, GL_AUDITQ_FLUSH_MS * 1000000L};
            nanosleep(&pause, NULL); /* the region is down: retry, the queue holds the events */
        }
    }
    return NULL;
}

gl_auditq *gl_auditq_start(const gl_region *r, gl_error *err) {
    gl_auditq *q = calloc(1, sizeof *q);
    if (q) q->ring = calloc(GL_AUDITQ_CAP, sizeof *q->ring);
    if (!q || !q->ring) {
        if (q) free(q);
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory for the audit queue");
        return NULL;
    }
    q->region = r;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    if (pthread_create(&q->thread, NULL, drain_main, q) != 0) {
        free(q->ring);
        free(q);
        gl_error_set(err, GL_ERR_INTERNAL, "cannot start the audit thread");
        return NULL;
    }
    return q;
}

void gl_auditq_stop(gl_auditq *q, int deadline_ms) {
    if (!q) return;
    pthread_mutex_lock(&q->mu);
    q->stopping = true;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    /* One last flush, bounded by the region's deadlines; if even that does
     * not end, the process is exiting: say so and leave the queue behind. */
    struct timespec until = gl_realtime_in(deadline_ms);
    if (pthread_timedjoin_np(q->thread, NULL, &until) != 0) {
        pthread_mutex_lock(&q->mu);
        size_t left = q->count;
        pthread_mutex_unlock(&q->mu);
        gl_log(GL_LOG_ERROR, "audit_lost_at_shutdown", "the audit thread did not finish within %d ms: %zu events "
               "not appended to region %s", deadline_ms, left, q->region->name);
        return;
    }
    if (q->count)
        gl_log(GL_LOG_ERROR, "audit_lost_at_shutdown", "%zu audit events could not be appended to region %s",
               q->count, q->region->name);
    for (size_t i = 0; i < q->count; i++) free(q->ring[(q->head + i) % GL_AUDITQ_CAP].detail);
    PQfinish(q->db);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q->ring);
    free(q);
}

uint64_t gl_auditq_dropped(const gl_auditq *q) { return q ? atomic_load(&q->dropped) : 0; }
uint64_t gl_auditq_written(const gl_auditq *q) { return q ? atomic_load(&q->written) : 0; }
