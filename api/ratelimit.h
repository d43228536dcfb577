/*
 * ratelimit.h — per-principal token buckets for ledgerd (429 + Retry-After,
 * API.md "Errors").
 *
 * Each principal (the JWT `sub`) has a bucket of `burst` tokens that
 * refills at `rate_per_s` tokens per second; a request takes one token (or
 * `cost` with gl_ratelimit_take_n). Arithmetic is integer, in microtokens:
 * a token is 1,000,000 microtokens, so a bucket gains exactly rate_per_s
 * microtokens per microsecond and nothing is ever rounded. Time is the
 * caller's monotonic clock in microseconds (a parameter, so tests can
 * simulate it); a `now_us` older than the bucket's last update counts as
 * no time passing, so threads that read the clock before taking the lock
 * cannot move a bucket backwards.
 *
 * Retry-After: when a take is refused, *retry_after_s is the number of
 * whole seconds, rounded up and at least 1, after which the same take
 * would succeed if nothing else took from the bucket meanwhile.
 *
 * Storage: a fixed table of `capacity` buckets (a power of two, default
 * 65536) allocated once. It is open addressing with a bounded probe: a
 * principal hashes to one group of GL_RATELIMIT_GROUP (16) adjacent slots
 * and may live only there, so a lookup looks at no more than 16 slots and
 * no slot ever has to be deleted or tombstoned.
 *
 * Policy when a principal's group is full: the least recently used bucket
 * of the group is evicted and its slot given to the newcomer, who is never
 * refused for lack of space. If the evicted bucket had been idle long
 * enough to refill to `burst` (the common case), eviction loses nothing:
 * a fresh bucket is exactly what it would have had. Otherwise (more than
 * 16 principals active at once in one group, i.e. a table far too small
 * for the traffic) the evicted principal later starts again from a full
 * bucket: the limiter errs towards letting requests through rather than
 * refusing principals it has no room for. Both kinds are counted in
 * gl_ratelimit_stats so operators can size the table. Principals are
 * usually authenticated, so they are not attacker-chosen strings; the hash
 * is not keyed. (ledgerd also keys a table by client address, which an
 * attacker picks only within the addresses it holds: at worst its own
 * buckets evict each other and start full again.)
 *
 * Threads: groups are guarded by GL_RATELIMIT_STRIPES striped mutexes
 * (group index modulo the stripe count); takes on different groups
 * rarely contend. All functions are thread-safe except new/free.
 */
#ifndef GL_RATELIMIT_H
#define GL_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../ledger/error.h"

#define GL_RATELIMIT_PRINCIPAL_MAX 128 /* bytes; = GL_JWT_SUB_MAX */
#define GL_RATELIMIT_GROUP 16          /* slots a principal may occupy */
#define GL_RATELIMIT_STRIPES 256       /* mutexes (fewer if the table has fewer groups) */
#define GL_RATELIMIT_CAPACITY_DEFAULT 65536
#define GL_RATELIMIT_CAPACITY_MIN GL_RATELIMIT_GROUP
#define GL_RATELIMIT_CAPACITY_MAX (1u << 22)
#define GL_RATELIMIT_RATE_MAX 1000000u  /* tokens per second */
#define GL_RATELIMIT_BURST_MAX 1000000u /* tokens */

typedef struct {
    uint32_t rate_per_s; /* 1..GL_RATELIMIT_RATE_MAX tokens added per second */
    uint32_t burst;      /* 1..GL_RATELIMIT_BURST_MAX tokens: bucket size, and a new principal's tokens */
    uint32_t capacity;   /* buckets: a power of two, GL_RATELIMIT_CAPACITY_MIN..MAX */
} gl_ratelimit_config;

typedef struct {
    uint64_t principals;      /* slots in use */
    uint64_t evictions;       /* buckets evicted that had refilled (nothing lost) */
    uint64_t lossy_evictions; /* buckets evicted while not full (see "Policy" above) */
} gl_ratelimit_stats;

typedef struct gl_ratelimit gl_ratelimit;

/* rate_per_s 10, burst 20, capacity GL_RATELIMIT_CAPACITY_DEFAULT. */
void gl_ratelimit_config_init(gl_ratelimit_config *cfg);

/* NULL with err (GL_ERR_CONFIG for a bad value, GL_ERR_INTERNAL when out of memory). */
gl_ratelimit *gl_ratelimit_new(const gl_ratelimit_config *cfg, gl_error *err);
/* NULL is fine. No other thread may still use rl. */
void gl_ratelimit_free(gl_ratelimit *rl);

/*
 * Take one token from principal's bucket at time now_us. True: go ahead
 * (*retry_after_s = 0). False: refuse with 429 and Retry-After:
 * *retry_after_s (retry_after_s may be NULL). A NULL rl, or a NULL, empty
 * or longer than GL_RATELIMIT_PRINCIPAL_MAX principal, is a caller bug and
 * fails closed: false with *retry_after_s = 1.
 */
bool gl_ratelimit_take(gl_ratelimit *rl, const char *principal, uint64_t now_us, uint64_t *retry_after_s);
/*
 * The same for cost tokens at once (e.g. weighting a batch). cost 0 always
 * succeeds without touching the table. A cost above burst can never
 * succeed: false with *retry_after_s = 0, meaning "do not retry".
 */
bool gl_ratelimit_take_n(gl_ratelimit *rl, const char *principal, uint32_t cost, uint64_t now_us,
                         uint64_t *retry_after_s);

/* Whether one token is there now, without taking it (the same answers as
 * gl_ratelimit_take otherwise): a caller that charges only some requests
 * (failures) refuses the next one early when the bucket is empty. */
bool gl_ratelimit_has(gl_ratelimit *rl, const char *principal, uint64_t now_us, uint64_t *retry_after_s);

/* Counters since creation (principals: current). Each is read atomically, not all together. */
void gl_ratelimit_get_stats(const gl_ratelimit *rl, gl_ratelimit_stats *out);

#endif
