/*
 * ratelimit.c — per-principal token buckets in a fixed table (see
 * ratelimit.h for the contract and the eviction policy).
 *
 * Slots of a group are filled in order and never emptied (eviction reuses
 * a slot in place), so the first unused slot of a group ends its search.
 */
#include "ratelimit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MICRO UINT64_C(1000000) /* microtokens per token, and microseconds per second */

typedef struct {
    bool used;
    uint64_t hash;
    uint64_t tokens_micro;
    uint64_t updated_us; /* last refill; also the LRU clock, since every take refills */
    char principal[GL_RATELIMIT_PRINCIPAL_MAX + 1];
} slot;

struct gl_ratelimit {
    uint64_t rate;        /* tokens per second = microtokens per microsecond */
    uint64_t burst;       /* tokens */
    uint64_t burst_micro; /* bucket size in microtokens */
    uint64_t fill_us;     /* time for an empty bucket to fill, rounded up */
    size_t group_mask;    /* groups - 1 */
    size_t stripe_mask;   /* stripes - 1 */
    slot *slots;          /* groups * GL_RATELIMIT_GROUP */
    _Atomic uint64_t principals, evictions, lossy_evictions;
    pthread_mutex_t stripes[GL_RATELIMIT_STRIPES];
};

void gl_ratelimit_config_init(gl_ratelimit_config *cfg) {
    if (!cfg) return;
    cfg->rate_per_s = 10;
    cfg->burst = 20;
    cfg->capacity = GL_RATELIMIT_CAPACITY_DEFAULT;
}

static bool config_valid(const gl_ratelimit_config *cfg, gl_error *err) {
    if (cfg->rate_per_s < 1 || cfg->rate_per_s > GL_RATELIMIT_RATE_MAX) {
        gl_error_set(err, GL_ERR_CONFIG, "rate limit rate_per_s %u is out of range", (unsigned)cfg->rate_per_s);
        gl_error_hint(err, "Use 1..%u tokens per second.", GL_RATELIMIT_RATE_MAX);
        return false;
    }
    if (cfg->burst < 1 || cfg->burst > GL_RATELIMIT_BURST_MAX) {
        gl_error_set(err, GL_ERR_CONFIG, "rate limit burst %u is out of range", (unsigned)cfg->burst);
        gl_error_hint(err, "Use 1..%u tokens.", GL_RATELIMIT_BURST_MAX);
        return false;
    }
    uint32_t cap = cfg->capacity;
    if (cap < GL_RATELIMIT_CAPACITY_MIN || cap > GL_RATELIMIT_CAPACITY_MAX || (cap & (cap - 1)) != 0) {
        gl_error_set(err, GL_ERR_CONFIG, "rate limit capacity %u is invalid", (unsigned)cap);
        gl_error_hint(err, "Use a power of two from %u to %u.", (unsigned)GL_RATELIMIT_CAPACITY_MIN,
                      (unsigned)GL_RATELIMIT_CAPACITY_MAX);
        return false;
    }
    return true;
}

gl_ratelimit *gl_ratelimit_new(const gl_ratelimit_config *cfg, gl_error *err) {
    if (!cfg) {
        gl_error_set(err, GL_ERR_CONFIG, "rate limit configuration is missing");
        return NULL;
    }
    if (!config_valid(cfg, err)) return NULL;
    gl_ratelimit *rl = calloc(1, sizeof *rl);
    slot *slots = calloc(cfg->capacity, sizeof *slots);
    if (!rl || !slots) {
        free(rl);
        free(slots);
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory for %u rate limit buckets", (unsigned)cfg->capacity);
        return NULL;
    }
    size_t groups = cfg->capacity / GL_RATELIMIT_GROUP;
    /* Both powers of two, so halving lands exactly on groups when there are fewer groups than stripes. */
    size_t stripes = GL_RATELIMIT_STRIPES;
    while (stripes > groups) stripes /= 2;
    for (size_t i = 0; i < stripes; i++) pthread_mutex_init(&rl->stripes[i], NULL);
    rl->rate = cfg->rate_per_s;
    rl->burst = cfg->burst;
    rl->burst_micro = (uint64_t)cfg->burst * MICRO;
    rl->fill_us = (rl->burst_micro + rl->rate - 1) / rl->rate;
    rl->group_mask = groups - 1;
    rl->stripe_mask = stripes - 1;
    rl->slots = slots;
    atomic_init(&rl->principals, 0);
    atomic_init(&rl->evictions, 0);
    atomic_init(&rl->lossy_evictions, 0);
    return rl;
}

void gl_ratelimit_free(gl_ratelimit *rl) {
    if (!rl) return;
    for (size_t i = 0; i <= rl->stripe_mask; i++) pthread_mutex_destroy(&rl->stripes[i]);
    free(rl->slots);
    free(rl);
}

/* FNV-1a, then a 64-bit finalizer so that the low bits (the group index) depend on every byte. */
static uint64_t hash_principal(const char *p, size_t len) {
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)p[i];
        h *= UINT64_C(0x100000001b3);
    }
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return h;
}

/* Microtokens the bucket holds at now_us (> updated_us), capped at burst; no overflow. */
static uint64_t tokens_at(const gl_ratelimit *rl, const slot *s, uint64_t now_us) {
    if (now_us <= s->updated_us) return s->tokens_micro;
    uint64_t elapsed = now_us - s->updated_us;
    /* Past fill_us the bucket is full whatever it held; below it elapsed * rate <= burst_micro + rate. */
    if (elapsed >= rl->fill_us) return rl->burst_micro;
    uint64_t t = s->tokens_micro + elapsed * rl->rate;
    return t < rl->burst_micro ? t : rl->burst_micro;
}

static void refill(const gl_ratelimit *rl, slot *s, uint64_t now_us) {
    s->tokens_micro = tokens_at(rl, s, now_us);
    if (now_us > s->updated_us) s->updated_us = now_us;
}

static void claim(const gl_ratelimit *rl, slot *s, uint64_t hash, const char *p, size_t len, uint64_t now_us) {
    s->used = true;
    s->hash = hash;
    s->tokens_micro = rl->burst_micro;
    s->updated_us = now_us;
    memcpy(s->principal, p, len);
    s->principal[len] = '\0';
}

/* The principal's slot in its group: found, newly claimed, or taken from the group's LRU bucket. */
static slot *find_or_claim(gl_ratelimit *rl, slot *group, uint64_t hash, const char *p, size_t len,
                           uint64_t now_us) {
    slot *lru = NULL;
    for (size_t i = 0; i < GL_RATELIMIT_GROUP; i++) {
        slot *s = &group[i];
        if (!s->used) {
            claim(rl, s, hash, p, len, now_us);
            atomic_fetch_add_explicit(&rl->principals, 1, memory_order_relaxed);
            return s;
        }
        if (s->hash == hash && memcmp(s->principal, p, len + 1) == 0) return s;
        if (!lru || s->updated_us < lru->updated_us) lru = s;
    }
    bool lossless = tokens_at(rl, lru, now_us) == rl->burst_micro;
    atomic_fetch_add_explicit(lossless ? &rl->evictions : &rl->lossy_evictions, 1, memory_order_relaxed);
    claim(rl, lru, hash, p, len, now_us);
    return lru;
}

/* Whole seconds until missing_micro microtokens have dripped in: rounded up, at least 1. */
static uint64_t retry_after(const gl_ratelimit *rl, uint64_t missing_micro) {
    uint64_t wait_us = (missing_micro + rl->rate - 1) / rl->rate;
    uint64_t s = (wait_us + MICRO - 1) / MICRO;
    return s > 0 ? s : 1;
}

/* Takes cost tokens (take) or only looks whether they are there (!take). */
static bool take_or_look(gl_ratelimit *rl, const char *principal, uint32_t cost, uint64_t now_us,
                         uint64_t *retry_after_s, bool take) {
    uint64_t unused = 0;
    uint64_t *retry = retry_after_s ? retry_after_s : &unused;
    *retry = 1;
    size_t len = principal ? strnlen(principal, GL_RATELIMIT_PRINCIPAL_MAX + 1) : 0;
    if (!rl || len == 0 || len > GL_RATELIMIT_PRINCIPAL_MAX) return false; /* fail closed on a caller bug */
    *retry = 0;
    if (cost == 0) return true;
    if (cost > rl->burst) return false;

    uint64_t need = (uint64_t)cost * MICRO;
    uint64_t hash = hash_principal(principal, len);
    size_t g = (size_t)hash & rl->group_mask;
    pthread_mutex_t *lock = &rl->stripes[g & rl->stripe_mask];

    pthread_mutex_lock(lock);
    slot *s = find_or_claim(rl, &rl->slots[g * GL_RATELIMIT_GROUP], hash, principal, len, now_us);
    refill(rl, s, now_us);
    bool ok = s->tokens_micro >= need;
    if (!ok) *retry = retry_after(rl, need - s->tokens_micro);
    else if (take) s->tokens_micro -= need;
    pthread_mutex_unlock(lock);
    return ok;
}

bool gl_ratelimit_take_n(gl_ratelimit *rl, const char *principal, uint32_t cost, uint64_t now_us,
                         uint64_t *retry_after_s) {
    return take_or_look(rl, principal, cost, now_us, retry_after_s, true);
}

bool gl_ratelimit_has(gl_ratelimit *rl, const char *principal, uint64_t now_us, uint64_t *retry_after_s) {
    return take_or_look(rl, principal, 1, now_us, retry_after_s, false);
}

bool gl_ratelimit_take(gl_ratelimit *rl, const char *principal, uint64_t now_us, uint64_t *retry_after_s) {
    return gl_ratelimit_take_n(rl, principal, 1, now_us, retry_after_s);
}

void gl_ratelimit_get_stats(const gl_ratelimit *rl, gl_ratelimit_stats *out) {
    if (!out) return;
    memset(out, 0, sizeof *out);
    if (!rl) return;
    out->principals = atomic_load_explicit(&rl->principals, memory_order_relaxed);
    out->evictions = atomic_load_explicit(&rl->evictions, memory_order_relaxed);
    out->lossy_evictions = atomic_load_explicit(&rl->lossy_evictions, memory_order_relaxed);
}
