#include "pool.h"

#include "../ledger/clock.h"
#include "../ledger/pg.h"

#include <assert.h>
#include <errno.h>
#include <string.h>
#include <time.h>

bool gl_pool_init(gl_pool *p, const gl_region *r, gl_db_role role, gl_breaker *breaker, int size, int acquire_ms,
                  gl_error *err) {
    assert(p && r && breaker);
    if (size < 1 || size > GL_POOL_MAX || acquire_ms < 0) {
        gl_error_set(err, GL_ERR_CONFIG, "pool size must be 1..%d and acquire_ms >= 0", GL_POOL_MAX);
        return false;
    }
    memset(p, 0, sizeof *p);
    p->region = r;
    p->role = role;
    p->breaker = breaker;
    p->size = size;
    p->acquire_ms = acquire_ms;
    p->n_idle = size; /* every slot free, none connected yet: connections open on first use */
    p->last_release_ms = gl_monotonic_ms();
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    return true;
}

void gl_pool_destroy(gl_pool *p) {
    assert(atomic_load(&p->in_use) == 0);
    for (int i = 0; i < p->n_idle; i++) PQfinish(p->idle[i]);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
}

/* The pool is stalled when every connection is out and none was given back
 * for acquire_ms since it ran out (or since `from`): the database is slow or
 * hung. A cold pool, or a busy one that gives back, is not stalled. */
static uint64_t stall_at(const gl_pool *p, uint64_t from) {
    uint64_t since = p->last_release_ms > p->exhausted_ms ? p->last_release_ms : p->exhausted_ms;
    if (from > since) since = from;
    return since + (uint64_t)p->acquire_ms;
}

/* Waits for a free slot while the pool makes progress, at most the region's
 * request deadline in all; false when the pool stalls, when that deadline
 * passes, or at once when the pool is stalled and `size` callers wait. */
static bool take_slot(gl_pool *p, PGconn **out) {
    uint64_t start = gl_monotonic_ms();
    uint64_t give_up = start + (uint64_t)p->region->timeouts.request_ms;
    pthread_mutex_lock(&p->mu);
    bool stalled = start >= stall_at(p, 0);
    if (p->n_idle == 0 && (!stalled || p->n_waiting < p->size)) {
        p->n_waiting++;
        for (;;) {
            uint64_t now = gl_monotonic_ms();
            uint64_t until = stall_at(p, start);
            if (until > give_up) until = give_up;
            if (p->n_idle > 0 || now >= until) break;
            struct timespec ts = gl_monotonic_at(until);
            pthread_cond_timedwait(&p->cv, &p->mu, &ts);
        }
        p->n_waiting--;
    }
    bool got = p->n_idle > 0;
    if (got) *out = p->idle[--p->n_idle];
    if (got && p->n_idle == 0) p->exhausted_ms = gl_monotonic_ms();
    pthread_mutex_unlock(&p->mu);
    return got;
}

static void put_slot(gl_pool *p, PGconn *db) {
    pthread_mutex_lock(&p->mu);
    assert(p->n_idle < p->size);
    p->idle[p->n_idle++] = db;
    p->last_release_ms = gl_monotonic_ms();
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

bool gl_pool_acquire(gl_pool *p, gl_lease *l, int *retry_after_s, gl_error *err) {
    *l = (gl_lease){.pool = p, .failure = GL_ERR_NONE};
    *retry_after_s = 1;
    if (!gl_breaker_allow(p->breaker, retry_after_s, &l->probe)) {
        gl_error_set(err, GL_ERR_UNAVAILABLE, "region %s is unavailable (circuit open)", p->region->name);
        return false;
    }
    PGconn *db = NULL;
    if (!take_slot(p, &db)) {
        atomic_fetch_add(&p->acquire_timeouts, 1);
        /* Load, not a failure of the database: the breaker is not told, and a
         * probe that did not run gives its turn back. */
        if (l->probe) gl_breaker_release_probe(p->breaker);
        gl_error_set(err, GL_ERR_UNAVAILABLE, "region %s is busy (no connection free within %d ms)", p->region->name,
                     p->acquire_ms);
        return false;
    }
    atomic_fetch_add(&p->in_use, 1);
    if (!gl_pg_reusable(db)) { /* not opened yet, or broken while it was idle */
        PQfinish(db);
        db = gl_region_connect(p->region, p->role, err); /* bounded by timeouts.connect_s */
        if (!db) {
            gl_breaker_trip(p->breaker);
            atomic_fetch_sub(&p->in_use, 1);
            put_slot(p, NULL);
            return false;
        }
    }
    (void)gl_deadline_take_fired(db); /* what happened before this lease is not its business */
    l->db = db;
    return true;
}

void gl_lease_failed(gl_lease *l, const gl_error *err) {
    if (err && (err->kind == GL_ERR_UNAVAILABLE || err->kind == GL_ERR_BUSY) && l->failure != GL_ERR_UNAVAILABLE)
        l->failure = err->kind;
}

void gl_pool_release(gl_lease *l) {
    gl_pool *p = l->pool;
    if (!p || !l->db) return;
    PGconn *db = l->db;
    l->db = NULL;
    bool fired = gl_deadline_take_fired(db);
    /* Only an idle, healthy connection goes back: anything else (a broken
     * socket, a transaction left open, a pipeline or COPY cut short, a server
     * that said it cannot serve: read-only after a failover, shutting down) is
     * closed, and a later lease connects again. */
    bool healthy = !fired && l->failure != GL_ERR_UNAVAILABLE && gl_pg_reusable(db);
    if (!healthy) {
        PQfinish(db);
        db = NULL;
    }
    if (fired) {
        atomic_fetch_add(&p->deadlines_fired, 1);
        gl_breaker_trip(p->breaker);
    } else if (l->failure == GL_ERR_UNAVAILABLE || (!healthy && l->failure != GL_ERR_BUSY)) {
        gl_breaker_failure(p->breaker);
    } else { /* the database answered: a statement's error or a timeout of its own is no sign it is down */
        gl_breaker_success(p->breaker);
    }
    atomic_fetch_sub(&p->in_use, 1);
    put_slot(p, db);
}
