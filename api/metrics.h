/*
 * metrics.h — ledgerd's Prometheus metrics, served as text exposition
 * format 0.0.4 on GET /metrics (API.md).
 *
 * Every family has a fixed shape and fixed storage (DESIGN §7: a limit on
 * everything). Label values come only from names registered at start-up
 * (route templates, regions, auth failure reasons) and from fixed lists
 * (methods, status codes), never from request data, so a client cannot
 * grow the output or the memory: an unknown path is counted under a route
 * the caller registered for it (e.g. "(unmatched)"), not under its path.
 *
 * Families:
 *   geoledger_http_requests_total{route,method,status}          counter
 *       method: GET HEAD POST PUT PATCH DELETE OPTIONS, else "OTHER".
 *       status: the exact code if it is one of 200 201 202 204 400 401 403
 *       404 405 409 413 422 429 500 503, else its class "1xx".."5xx", and
 *       "other" outside 100..599. Only series that were observed at least
 *       once are printed (64 routes x 8 methods x 21 statuses would be
 *       10752 mostly-zero lines).
 *   geoledger_http_request_duration_seconds{route}                histogram
 *   geoledger_batch_size{region}                                  histogram
 *   geoledger_batch_duration_seconds{region}                      histogram
 *   geoledger_queue_depth{region}, geoledger_db_pool_in_use{region},
 *   geoledger_db_pool_size{region}, geoledger_region_up{region},
 *   geoledger_region_breaker_state{region} (0 closed, 1 open, 2 half-open)  gauges
 *   geoledger_db_timeouts_total{region}, geoledger_db_pool_acquire_timeouts_total{region},
 *   geoledger_region_breaker_openings_total{region}              counters
 *   geoledger_db_errors_total{region}                             counter
 *   geoledger_auth_failures_total{reason}                         counter
 *   geoledger_webhook_deliveries_total{region,outcome}            counter
 *       outcome: delivered (an attempt answered 2xx), failed (an attempt
 *       failed, a retry is scheduled), dead (the last retry failed).
 *   geoledger_webhook_queue_depth{region}, geoledger_webhook_dead_letters{region}  gauges
 *       pending deliveries, and dead ones, as the region's webhook worker last counted them.
 * Per-route, per-region and per-reason series are printed for every
 * registered name, zero or not, so dashboards see them from the start.
 *
 * Units: durations are observed as integer microseconds and summed as
 * uint64 microseconds (no floating-point drift); _sum is printed as seconds
 * with exactly 6 decimals by integer arithmetic. Buckets are `le`
 * (inclusive) bounds: a 1000 us request lands in le="0.001".
 *
 * Threads: every update is a relaxed atomic; updates from any number of
 * threads never block each other nor the renderer. Registration takes a
 * mutex and publishes the new name with release order, so it is safe at
 * any time, though meant for start-up. A render taken while updates run is
 * not a snapshot across series, but inside one histogram +Inf and _count
 * are always equal and buckets always cumulative (both are computed from
 * the same bucket loads); only _sum may be a few observations apart.
 *
 * Invalid arguments (NULL metrics, an index that was never returned by a
 * registration, an out-of-range gauge) are ignored: metrics must never take
 * the service down.
 */
#ifndef GL_METRICS_H
#define GL_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GL_METRICS_ROUTES_MAX 64
#define GL_METRICS_REGIONS_MAX 16
#define GL_METRICS_REASONS_MAX 32
#define GL_METRICS_ROUTE_MAX 128 /* bytes of a route template */
#define GL_METRICS_NAME_MAX 64   /* bytes of a region or reason name */
/* The Content-Type of a GET /metrics response carrying gl_metrics_render's text. */
#define GL_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
/* A render never exceeds this (worst case with every limit reached is ~4 MiB). */
#define GL_METRICS_RENDER_MAX ((size_t)8 << 20)

typedef struct gl_metrics gl_metrics;

typedef enum {
    GL_GAUGE_QUEUE_DEPTH = 0, /* geoledger_queue_depth */
    GL_GAUGE_DB_POOL_IN_USE,  /* geoledger_db_pool_in_use */
    GL_GAUGE_DB_POOL_SIZE,    /* geoledger_db_pool_size */
    GL_GAUGE_REGION_UP,       /* geoledger_region_up: 1 up, 0 down */
    GL_GAUGE_BREAKER_STATE,   /* geoledger_region_breaker_state: 0 closed, 1 open, 2 half-open */
    /* Totals kept elsewhere (pools, breakers) and copied in at render time: counters. */
    GL_GAUGE_DB_TIMEOUTS,      /* geoledger_db_timeouts_total: client-side deadlines that fired */
    GL_GAUGE_POOL_TIMEOUTS,    /* geoledger_db_pool_acquire_timeouts_total */
    GL_GAUGE_BREAKER_OPENINGS, /* geoledger_region_breaker_openings_total */
    GL_GAUGE_WEBHOOK_PENDING,  /* geoledger_webhook_queue_depth: pending deliveries */
    GL_GAUGE_WEBHOOK_DEAD,     /* geoledger_webhook_dead_letters: dead deliveries */
    GL_GAUGE_COUNT
} gl_metrics_gauge;

/* All counters zero, nothing registered. NULL when out of memory. */
gl_metrics *gl_metrics_new(void);
/* NULL is fine. No other thread may still use m. */
void gl_metrics_free(gl_metrics *m);

/*
 * Register a label value and return its index (0, 1, ... in registration
 * order), or -1 if the table is full or the name is empty, too long
 * (see the _MAX above) or not valid UTF-8. Registering a name again
 * returns its existing index.
 */
int gl_metrics_route(gl_metrics *m, const char *tmpl);
int gl_metrics_region(gl_metrics *m, const char *name);
int gl_metrics_reason(gl_metrics *m, const char *name);

/* Index of an already registered name, or -1. Lock-free. */
int gl_metrics_find_route(const gl_metrics *m, const char *tmpl);
int gl_metrics_find_region(const gl_metrics *m, const char *name);
int gl_metrics_find_reason(const gl_metrics *m, const char *name);

/* One finished HTTP request: counts it and observes its duration. method may be NULL ("OTHER"). */
void gl_metrics_request(gl_metrics *m, int route, const char *method, int status, uint64_t duration_us);
/* One batch applied in a region: size (transfers) and duration histograms. */
void gl_metrics_batch(gl_metrics *m, int region, size_t size, uint64_t duration_us);

void gl_metrics_gauge_set(gl_metrics *m, gl_metrics_gauge gauge, int region, int64_t value);
void gl_metrics_gauge_add(gl_metrics *m, gl_metrics_gauge gauge, int region, int64_t delta);
/* +1 on geoledger_db_errors_total{region}. */
void gl_metrics_db_error(gl_metrics *m, int region);
typedef enum { GL_WEBHOOK_DELIVERED, GL_WEBHOOK_FAILED, GL_WEBHOOK_DEAD, GL_WEBHOOK_OUTCOMES } gl_webhook_outcome;
/* +1 on geoledger_webhook_deliveries_total{region,outcome}. */
void gl_metrics_webhook(gl_metrics *m, int region, gl_webhook_outcome outcome);
/* +1 on geoledger_auth_failures_total{reason}. */
void gl_metrics_auth_failure(gl_metrics *m, int reason);

/*
 * Text rendered by another module (api/stream.c: the outbox and the Redis
 * stream) after the fixed families: fn returns a malloc'd block of complete
 * Prometheus families (or NULL: nothing), from values it already holds; it is
 * called on the scrape's thread, so it must not wait on a database or a
 * socket. At most GL_METRICS_EXTRA_MAX; register before serving, not after.
 */
#define GL_METRICS_EXTRA_MAX 4
typedef char *(*gl_metrics_extra_fn)(void *ctx);
bool gl_metrics_add_extra(gl_metrics *m, gl_metrics_extra_fn fn, void *ctx);

/*
 * Render into buf (cap bytes, always NUL-terminated when cap > 0) and
 * return the length of the full text, like snprintf: a result >= cap means
 * it was truncated (at a byte, not a line) and a buffer of result + 1 bytes
 * is needed. Returns 0 for NULL m.
 */
size_t gl_metrics_render_to(const gl_metrics *m, char *buf, size_t cap);
/* The same in a malloc'd NUL-terminated string the caller frees; NULL when out of memory. */
char *gl_metrics_render(const gl_metrics *m);

#endif
