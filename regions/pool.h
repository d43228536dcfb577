/*
 * pool.h — a bounded pool of connections to one region, guarded by the
 * region's breaker and by a deadline on every round trip.
 *
 * A caller (a handler thread) leases a connection, uses it, and gives it back.
 * At most `size` leases exist at once; the others wait while leases come back
 * (at most the region's timeouts.request_ms in all). The pool is stalled when
 * no lease came back for `acquire_ms` (the database is slow or hung): then the
 * waiters are refused, at most `size` callers wait and the rest are refused at
 * once, so such a region holds at most 2 x `size` callers; a busy
 * but healthy region keeps its callers waiting their turn. The connections are
 * service-role ones, guarded per round trip by the region's request deadline
 * (timeouts.request_ms, ledger/deadline.h): a database that stops answering
 * costs a round trip at most that long. A lease ends "broken" (closed,
 * reopened on a later lease) when its connection is unhealthy, not idle, or
 * failed with GL_ERR_UNAVAILABLE; a cut round trip trips the breaker, other
 * GL_ERR_UNAVAILABLE failures count against it, and it then refuses leases at
 * once while the region is down.
 */
#ifndef GL_POOL_H
#define GL_POOL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../ledger/deadline.h"
#include "breaker.h"
#include "regions.h"

#define GL_POOL_MAX 64

typedef struct {
    const gl_region *region;
    gl_db_role role;
    gl_breaker *breaker; /* shared with the region's writers */
    int size;
    int acquire_ms;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    PGconn *idle[GL_POOL_MAX]; /* connections not leased (some may be NULL: not open yet) */
    int n_idle;
    int n_waiting;            /* callers waiting for a slot */
    uint64_t last_release_ms; /* monotonic: when a lease was last given back */
    uint64_t exhausted_ms;    /* monotonic: when the last free connection was last leased */
    atomic_int in_use;
    atomic_uint_fast64_t acquire_timeouts; /* metrics: waits that ran out, and refusals of a stalled pool */
    atomic_uint_fast64_t deadlines_fired;
} gl_pool;

typedef struct {
    gl_pool *pool;
    PGconn *db;
    bool probe; /* this lease is the breaker's half-open probe */
    gl_error_kind failure; /* how a query on it failed (gl_lease_failed); GL_ERR_NONE if none did */
} gl_lease;

bool gl_pool_init(gl_pool *p, const gl_region *r, gl_db_role role, gl_breaker *breaker, int size, int acquire_ms,
                  gl_error *err);
void gl_pool_destroy(gl_pool *p); /* no lease may be out */
/* A connection, or false with err (kind GL_ERR_UNAVAILABLE; err->message says
 * whether the breaker is open, the pool busy or the connect failed) and
 * *retry_after_s set. */
bool gl_pool_acquire(gl_pool *p, gl_lease *l, int *retry_after_s, gl_error *err);
/* Records that a query on the lease failed with err (its kind decides whether
 * the breaker hears of it: GL_ERR_UNAVAILABLE counts, a statement's error does not). */
void gl_lease_failed(gl_lease *l, const gl_error *err);
/* Gives the connection back and tells the breaker how the lease went. */
void gl_pool_release(gl_lease *l);

#endif
