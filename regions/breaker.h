/*
 * breaker.h — a region's circuit breaker: closed / open / half-open.
 *
 * While a region's database is down every request for it would wait for a
 * timeout; the breaker answers them at once instead (503 + Retry-After).
 * `threshold` consecutive failures (errors of kind GL_ERR_UNAVAILABLE: a
 * server-side timeout, a shutdown, a lost connection) open it, and so does one
 * trip (the database did not answer at all: a refused connect, a deadline); after
 * `open_ms` one caller is let through as a probe (half-open): its success
 * closes the breaker, its failure opens it again for twice as long, up to
 * `open_max_ms`. Any success while closed resets the count. Thread-safe.
 */
#ifndef GL_BREAKER_H
#define GL_BREAKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../ledger/clock.h"

typedef enum { GL_BREAKER_CLOSED = 0, GL_BREAKER_OPEN = 1, GL_BREAKER_HALF_OPEN = 2 } gl_breaker_state;

typedef struct {
    int threshold;   /* consecutive failures that open it (>= 1) */
    int open_ms;     /* first open period */
    int open_max_ms; /* the doubling stops here */
} gl_breaker_config;

#define GL_BREAKER_DEFAULT ((gl_breaker_config){.threshold = 3, .open_ms = 500, .open_max_ms = 1000})

typedef struct {
    pthread_mutex_t mu;
    gl_breaker_config cfg;
    gl_breaker_state state;
    int failures;          /* consecutive, while closed */
    int open_for_ms;       /* the current open period */
    uint64_t opened_at_ms; /* monotonic */
    bool probing;          /* half-open: the probe is out */
    uint64_t probe_at_ms;  /* when it went out (a probe that never reports is replaced) */
    uint64_t opened_total; /* times it opened (metrics) */
    /* Mirrors written under mu, read without it: the common case (closed, no
     * failure) of every request and batch takes no lock. */
    _Atomic int seen_state;
    _Atomic int seen_failures;
    _Atomic uint64_t seen_open_until_ms;
} gl_breaker;

void gl_breaker_init(gl_breaker *b, gl_breaker_config cfg);
void gl_breaker_destroy(gl_breaker *b);
/* Whether a call may go to the database now. When false, *retry_after_s (if
 * given) says when to come back (>= 1). A true answer in the half-open state
 * makes the caller the probe (*probe, if given, says so): it must report
 * success or failure, or give its turn back (gl_breaker_release_probe). */
bool gl_breaker_allow(gl_breaker *b, int *retry_after_s, bool *probe);
/* A probe that never reached the database (no connection free) gives its
 * turn back: the breaker stays half-open for the next caller. */
void gl_breaker_release_probe(gl_breaker *b);
/* Whether the breaker is open now (without taking the probe): callers that
 * only queue work (the writer probes) refuse it at once. */
bool gl_breaker_refuses(gl_breaker *b, int *retry_after_s);
void gl_breaker_success(gl_breaker *b);
void gl_breaker_failure(gl_breaker *b);
/* Opens it now, whatever the count: the database did not answer at all (a
 * connect failed, or a client-side deadline fired). */
void gl_breaker_trip(gl_breaker *b);
gl_breaker_state gl_breaker_state_now(gl_breaker *b);
const char *gl_breaker_state_name(gl_breaker_state s);
uint64_t gl_breaker_opened_total(gl_breaker *b);

#endif
