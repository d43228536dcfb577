#include "breaker.h"

#include <assert.h>
#include <stdatomic.h>
#include <time.h>

/* A probe that has not reported by then is taken as lost (a bug or a killed
 * thread), and the next caller probes: the breaker can never stay half-open. */
#define PROBE_STALE_MS 10000

void gl_breaker_init(gl_breaker *b, gl_breaker_config cfg) {
    assert(b && cfg.threshold >= 1 && cfg.open_ms > 0 && cfg.open_max_ms >= cfg.open_ms);
    *b = (gl_breaker){.cfg = cfg, .state = GL_BREAKER_CLOSED, .open_for_ms = cfg.open_ms};
    pthread_mutex_init(&b->mu, NULL);
}

void gl_breaker_destroy(gl_breaker *b) { pthread_mutex_destroy(&b->mu); }

/* Caller holds mu: publishes what the lock-free readers see. */
static void publish(gl_breaker *b) {
    atomic_store(&b->seen_open_until_ms, b->opened_at_ms + (uint64_t)b->open_for_ms);
    atomic_store(&b->seen_failures, b->failures);
    atomic_store(&b->seen_state, (int)b->state);
}

/* Caller holds mu. */
static void open_now(gl_breaker *b, int for_ms) {
    b->state = GL_BREAKER_OPEN;
    b->open_for_ms = for_ms > b->cfg.open_max_ms ? b->cfg.open_max_ms : for_ms;
    b->opened_at_ms = gl_monotonic_ms();
    b->probing = false;
    b->opened_total++;
    publish(b);
}

/* Caller holds mu: whole seconds until the open period ends (>= 1). */
static int retry_after_locked(const gl_breaker *b, uint64_t now) {
    uint64_t until = b->opened_at_ms + (uint64_t)b->open_for_ms;
    uint64_t left_ms = until > now ? until - now : 0;
    int s = (int)((left_ms + 999) / 1000);
    return s < 1 ? 1 : s;
}

bool gl_breaker_refuses(gl_breaker *b, int *retry_after_s) {
    if (atomic_load(&b->seen_state) != GL_BREAKER_OPEN) return false;
    uint64_t until = atomic_load(&b->seen_open_until_ms), now = gl_monotonic_ms();
    if (now >= until) return false;
    if (retry_after_s) *retry_after_s = (int)((until - now + 999) / 1000);
    return true;
}

bool gl_breaker_allow(gl_breaker *b, int *retry_after_s, bool *probe) {
    if (atomic_load(&b->seen_state) == GL_BREAKER_CLOSED) {
        if (probe) *probe = false;
        return true;
    }
    pthread_mutex_lock(&b->mu);
    bool allow = b->state == GL_BREAKER_CLOSED;
    if (probe) *probe = false;
    uint64_t now = gl_monotonic_ms();
    if (b->state == GL_BREAKER_OPEN && now >= b->opened_at_ms + (uint64_t)b->open_for_ms) {
        b->state = GL_BREAKER_HALF_OPEN;
        b->probing = false;
        publish(b);
    }
    if (b->state == GL_BREAKER_HALF_OPEN && (!b->probing || now >= b->probe_at_ms + PROBE_STALE_MS)) {
        b->probing = true; /* this caller is the probe */
        b->probe_at_ms = now;
        allow = true;
        if (probe) *probe = true;
    }
    if (!allow && retry_after_s) *retry_after_s = retry_after_locked(b, now);
    pthread_mutex_unlock(&b->mu);
    return allow;
}

void gl_breaker_release_probe(gl_breaker *b) {
    pthread_mutex_lock(&b->mu);
    if (b->state == GL_BREAKER_HALF_OPEN) b->probing = false;
    pthread_mutex_unlock(&b->mu);
}

void gl_breaker_success(gl_breaker *b) {
    if (atomic_load(&b->seen_state) == GL_BREAKER_CLOSED && atomic_load(&b->seen_failures) == 0) return;
    pthread_mutex_lock(&b->mu);
    b->state = GL_BREAKER_CLOSED;
    b->failures = 0;
    b->probing = false;
    b->open_for_ms = b->cfg.open_ms;
    publish(b);
    pthread_mutex_unlock(&b->mu);
}

void gl_breaker_failure(gl_breaker *b) {
    pthread_mutex_lock(&b->mu);
    if (b->state == GL_BREAKER_HALF_OPEN) open_now(b, b->open_for_ms * 2); /* the probe failed */
    else if (b->state == GL_BREAKER_CLOSED && ++b->failures >= b->cfg.threshold) open_now(b, b->cfg.open_ms);
    else publish(b);
    pthread_mutex_unlock(&b->mu);
}

void gl_breaker_trip(gl_breaker *b) {
    pthread_mutex_lock(&b->mu);
    if (b->state == GL_BREAKER_HALF_OPEN) open_now(b, b->open_for_ms * 2);
    else if (b->state == GL_BREAKER_CLOSED) open_now(b, b->cfg.open_ms);
    pthread_mutex_unlock(&b->mu);
}

gl_breaker_state gl_breaker_state_now(gl_breaker *b) { return (gl_breaker_state)atomic_load(&b->seen_state); }

const char *gl_breaker_state_name(gl_breaker_state s) {
    switch (s) {
    case GL_BREAKER_CLOSED: return "closed";
    case GL_BREAKER_OPEN: return "open";
    case GL_BREAKER_HALF_OPEN: return "half_open";
    }
    return "unknown";
}

uint64_t gl_breaker_opened_total(gl_breaker *b) {
    pthread_mutex_lock(&b->mu);
    uint64_t n = b->opened_total;
    pthread_mutex_unlock(&b->mu);
    return n;
}
