/*
 * metrics.c — fixed-size Prometheus metrics (see metrics.h for the contract).
 *
 * Layout: every series is a plain _Atomic uint64_t/int64_t at a fixed
 * position in one calloc'd struct; nothing is allocated after
 * gl_metrics_new, so observing a request cannot fail. Histograms keep one
 * non-cumulative count per bucket plus an overflow slot; the renderer adds
 * them up, which is what keeps buckets cumulative and +Inf == _count under
 * concurrent updates.
 */
#include "metrics.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_METHODS 8
#define N_EXACT_CODES 15
#define N_STATUS (N_EXACT_CODES + 5 + 1) /* exact codes, 1xx..5xx, "other" */
#define STATUS_OTHER (N_STATUS - 1)
#define N_DUR_BOUNDS 12
#define N_SIZE_BOUNDS 14
#define HIST_SLOTS_MAX 15 /* the largest bound count + 1 overflow slot */
#define US_PER_S UINT64_C(1000000)

static const char *const METHODS[N_METHODS] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"};

static const int EXACT_CODES[N_EXACT_CODES] = {200, 201, 202, 204, 400, 401, 403, 404,
                                               405, 409, 413, 422, 429, 500, 503};
static const char *const STATUS_NAMES[N_STATUS] = {"200", "201", "202", "204", "400", "401", "403",
                                                   "404", "405", "409", "413", "422", "429", "500",
                                                   "503", "1xx", "2xx", "3xx", "4xx", "5xx", "other"};

/* Bounds and their `le` spellings side by side, so the two cannot disagree. */
static const uint64_t DUR_BOUNDS_US[N_DUR_BOUNDS] = {1000,   2500,   5000,   10000,   25000,   50000,
                                                     100000, 250000, 500000, 1000000, 2500000, 5000000};
static const char *const DUR_LE[N_DUR_BOUNDS] = {"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
                                                 "0.1",   "0.25",   "0.5",   "1",    "2.5",   "5"};
/* 8189 is the largest batch API.md allows. */
static const uint64_t SIZE_BOUNDS[N_SIZE_BOUNDS] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8189};
static const char *const SIZE_LE[N_SIZE_BOUNDS] = {"1",   "2",   "4",    "8",    "16",   "32",   "64",
                                                   "128", "256", "512", "1024", "2048", "4096", "8189"};

typedef struct {
    _Atomic uint64_t slot[HIST_SLOTS_MAX]; /* slot i: values in (bound[i-1], bound[i]]; last used slot: > all bounds */
    _Atomic uint64_t sum;                  /* microseconds, or transfers for batch sizes */
} histogram;

typedef struct {
    const uint64_t *bounds;
    const char *const *le;
    int n_bounds;
    bool sum_in_us; /* print _sum as seconds with 6 decimals */
} hist_shape;

static const hist_shape DUR_SHAPE = {DUR_BOUNDS_US, DUR_LE, N_DUR_BOUNDS, true};
static const hist_shape SIZE_SHAPE = {SIZE_BOUNDS, SIZE_LE, N_SIZE_BOUNDS, false};

/* A registration table: names [0, count) never change once published. */
typedef struct {
    _Atomic int count;
    int max;
    size_t name_max;
    char (*names)[GL_METRICS_ROUTE_MAX + 1]; /* points into the owning gl_metrics */
} name_table;

struct gl_metrics {
    pthread_mutex_t reg_lock; /* serializes registrations only */
    name_table routes, regions, reasons;
    char route_names[GL_METRICS_ROUTES_MAX][GL_METRICS_ROUTE_MAX + 1];
    char region_names[GL_METRICS_REGIONS_MAX][GL_METRICS_ROUTE_MAX + 1];
    char reason_names[GL_METRICS_REASONS_MAX][GL_METRICS_ROUTE_MAX + 1];

    _Atomic uint64_t requests[GL_METRICS_ROUTES_MAX][N_METHODS][N_STATUS];
    histogram request_duration[GL_METRICS_ROUTES_MAX];
    histogram batch_size[GL_METRICS_REGIONS_MAX];
    histogram batch_duration[GL_METRICS_REGIONS_MAX];
    _Atomic int64_t gauges[GL_GAUGE_COUNT][GL_METRICS_REGIONS_MAX];
    _Atomic uint64_t db_errors[GL_METRICS_REGIONS_MAX];
    _Atomic uint64_t auth_failures[GL_METRICS_REASONS_MAX];
    int n_extra; /* set before serving (gl_metrics_add_extra) */
    struct {
        gl_metrics_extra_fn fn;
        void *ctx;
    } extra[GL_METRICS_EXTRA_MAX];
    _Atomic uint64_t webhook_outcomes[GL_METRICS_REGIONS_MAX][GL_WEBHOOK_OUTCOMES];
};

/* ---- lifecycle ---- */

static void table_init(name_table *t, char (*names)[GL_METRICS_ROUTE_MAX + 1], int max, size_t name_max) {
    atomic_init(&t->count, 0);
    t->max = max;
    t->name_max = name_max;
    t->names = names;
}

gl_metrics *gl_metrics_new(void) {
    /* calloc gives all-zero atomics: a valid zero on every platform we target. */
    gl_metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    if (pthread_mutex_init(&m->reg_lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    table_init(&m->routes, m->route_names, GL_METRICS_ROUTES_MAX, GL_METRICS_ROUTE_MAX);
    table_init(&m->regions, m->region_names, GL_METRICS_REGIONS_MAX, GL_METRICS_NAME_MAX);
    table_init(&m->reasons, m->reason_names, GL_METRICS_REASONS_MAX, GL_METRICS_NAME_MAX);
    return m;
}

void gl_metrics_free(gl_metrics *m) {
    if (!m) return;
    pthread_mutex_destroy(&m->reg_lock);
    free(m);
}

/* ---- registration ---- */

/* Prometheus label values must be UTF-8; this rejects overlongs, surrogates and > U+10FFFF too. */
static bool valid_utf8(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0) {
            len = 2;
            min = 0x80;
            c &= 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
            min = 0x800;
            c &= 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
            min = 0x10000;
            c &= 0x07;
        } else {
            return false;
        }
        if (n - i < len) return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            c = (c << 6) | (s[i + k] & 0x3F);
        }
        if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

static int table_find(const name_table *t, const char *name) {
    int n = atomic_load_explicit(&t->count, memory_order_acquire);
    for (int i = 0; i < n; i++)
        if (strcmp(t->names[i], name) == 0) return i;
    return -1;
}

static int table_add(gl_metrics *m, name_table *t, const char *name) {
    if (!m || !name) return -1;
    size_t len = strnlen(name, t->name_max + 1);
    if (len == 0 || len > t->name_max || !valid_utf8((const unsigned char *)name, len)) return -1;
    pthread_mutex_lock(&m->reg_lock);
    int idx = table_find(t, name);
    if (idx < 0) {
        int n = atomic_load_explicit(&t->count, memory_order_relaxed);
        if (n < t->max) {
            memcpy(t->names[n], name, len + 1);
            /* Release: a reader that sees the new count sees the whole name. */
            atomic_store_explicit(&t->count, n + 1, memory_order_release);
            idx = n;
        }
    }
    pthread_mutex_unlock(&m->reg_lock);
    return idx;
}

int gl_metrics_route(gl_metrics *m, const char *tmpl) { return m ? table_add(m, &m->routes, tmpl) : -1; }
int gl_metrics_region(gl_metrics *m, const char *name) { return m ? table_add(m, &m->regions, name) : -1; }
int gl_metrics_reason(gl_metrics *m, const char *name) { return m ? table_add(m, &m->reasons, name) : -1; }

int gl_metrics_find_route(const gl_metrics *m, const char *tmpl) {
    return m && tmpl ? table_find(&m->routes, tmpl) : -1;
}
int gl_metrics_find_region(const gl_metrics *m, const char *name) {
    return m && name ? table_find(&m->regions, name) : -1;
}
int gl_metrics_find_reason(const gl_metrics *m, const char *name) {
    return m && name ? table_find(&m->reasons, name) : -1;
}

/* True when idx was handed out by t: observations for anything else are dropped. */
static bool registered(const name_table *t, int idx) {
    return idx >= 0 && idx < atomic_load_explicit(&t->count, memory_order_acquire);
}

/* ---- observations ---- */

static int method_index(const char *method) {
    if (method)
        for (int i = 0; i < N_METHODS - 1; i++)
            if (strcmp(method, METHODS[i]) == 0) return i;
    return N_METHODS - 1;
}

static int status_index(int status) {
    for (int i = 0; i < N_EXACT_CODES; i++)
        if (EXACT_CODES[i] == status) return i;
    if (status < 100 || status > 599) return STATUS_OTHER;
    return N_EXACT_CODES + status / 100 - 1;
}

static void counter_inc(_Atomic uint64_t *c) { atomic_fetch_add_explicit(c, 1, memory_order_relaxed); }

static void hist_observe(histogram *h, const hist_shape *shape, uint64_t value) {
    int slot = 0;
    while (slot < shape->n_bounds && value > shape->bounds[slot]) slot++;
    counter_inc(&h->slot[slot]);
    atomic_fetch_add_explicit(&h->sum, value, memory_order_relaxed);
}

void gl_metrics_request(gl_metrics *m, int route, const char *method, int status, uint64_t duration_us) {
    if (!m || !registered(&m->routes, route)) return;
    counter_inc(&m->requests[route][method_index(method)][status_index(status)]);
    hist_observe(&m->request_duration[route], &DUR_SHAPE, duration_us);
}

void gl_metrics_batch(gl_metrics *m, int region, size_t size, uint64_t duration_us) {
    if (!m || !registered(&m->regions, region)) return;
    hist_observe(&m->batch_size[region], &SIZE_SHAPE, (uint64_t)size);
    hist_observe(&m->batch_duration[region], &DUR_SHAPE, duration_us);
}

static _Atomic int64_t *gauge_at(gl_metrics *m, gl_metrics_gauge gauge, int region) {
    if (!m || (unsigned)gauge >= GL_GAUGE_COUNT || !registered(&m->regions, region)) return NULL;
    return &m->gauges[gauge][region];
}

void gl_metrics_gauge_set(gl_metrics *m, gl_metrics_gauge gauge, int region, int64_t value) {
    _Atomic int64_t *g = gauge_at(m, gauge, region);
    if (g) atomic_store_explicit(g, value, memory_order_relaxed);
}

void gl_metrics_gauge_add(gl_metrics *m, gl_metrics_gauge gauge, int region, int64_t delta) {
    _Atomic int64_t *g = gauge_at(m, gauge, region);
    if (g) atomic_fetch_add_explicit(g, delta, memory_order_relaxed);
}

void gl_metrics_db_error(gl_metrics *m, int region) {
    if (m && registered(&m->regions, region)) counter_inc(&m->db_errors[region]);
}

bool gl_metrics_add_extra(gl_metrics *m, gl_metrics_extra_fn fn, void *ctx) {
    if (!m || !fn || m->n_extra >= GL_METRICS_EXTRA_MAX) return false;
    m->extra[m->n_extra].fn = fn;
    m->extra[m->n_extra].ctx = ctx;
    m->n_extra++;
    return true;
}

void gl_metrics_webhook(gl_metrics *m, int region, gl_webhook_outcome outcome) {
    if (m && registered(&m->regions, region) && (unsigned)outcome < GL_WEBHOOK_OUTCOMES)
        counter_inc(&m->webhook_outcomes[region][outcome]);
}

void gl_metrics_auth_failure(gl_metrics *m, int reason) {
    if (m && registered(&m->reasons, reason)) counter_inc(&m->auth_failures[reason]);
}

/* ---- rendering ---- */

/*
 * An output sink: either a fixed caller buffer (truncating, but still
 * counting the full length, like snprintf) or a growing heap buffer.
 */
typedef struct {
    char *buf;
    size_t cap;
    size_t len; /* full length of the text so far, even past cap */
    bool grow;
    bool failed; /* out of memory, or GL_METRICS_RENDER_MAX exceeded */
} sink;

/* Grows a heap sink to hold need bytes; false (and failed set) when it cannot. */
static bool sink_reserve(sink *o, size_t need) {
    if (need <= o->cap) return true;
    if (o->failed || need > GL_METRICS_RENDER_MAX) {
        o->failed = true;
        return false;
    }
    size_t cap = o->cap ? o->cap : 4096;
    while (cap < need) cap *= 2;
    if (cap > GL_METRICS_RENDER_MAX) cap = GL_METRICS_RENDER_MAX;
    char *p = realloc(o->buf, cap);
    if (!p) {
        o->failed = true;
        return false;
    }
    o->buf = p;
    o->cap = cap;
    return true;
}

static void put_mem(sink *o, const char *s, size_t n) {
    if (o->grow) {
        /* +1 keeps room for the final NUL. */
        if (sink_reserve(o, o->len + n + 1)) memcpy(o->buf + o->len, s, n);
    } else if (o->len < o->cap) {
        size_t room = o->cap - 1 - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void put_str(sink *o, const char *s) { put_mem(o, s, strlen(s)); }

static void put_u64(sink *o, uint64_t v) {
    char num[24];
    int n = snprintf(num, sizeof num, "%" PRIu64, v);
    put_mem(o, num, (size_t)n);
}

static void put_i64(sink *o, int64_t v) {
    char num[24];
    int n = snprintf(num, sizeof num, "%" PRId64, v);
    put_mem(o, num, (size_t)n);
}

/* Microseconds as seconds with 6 decimals, by integer division: no float rounding, ever. */
static void put_seconds(sink *o, uint64_t us) {
    char num[32];
    int n = snprintf(num, sizeof num, "%" PRIu64 ".%06" PRIu64, us / US_PER_S, us % US_PER_S);
    put_mem(o, num, (size_t)n);
}

/* Exposition format 0.0.4: in label values, \ " and line feed are escaped. */
static void put_label_value(sink *o, const char *v) {
    put_mem(o, "\"", 1);
    for (const char *p = v; *p; p++) {
        if (*p == '\\') put_mem(o, "\\\\", 2);
        else if (*p == '"') put_mem(o, "\\\"", 2);
        else if (*p == '\n') put_mem(o, "\\n", 2);
        else put_mem(o, p, 1);
    }
    put_mem(o, "\"", 1);
}

static void put_header(sink *o, const char *name, const char *type, const char *help) {
    put_str(o, "# HELP ");
    put_str(o, name);
    put_str(o, " ");
    put_str(o, help);
    put_str(o, "\n# TYPE ");
    put_str(o, name);
    put_str(o, " ");
    put_str(o, type);
    put_str(o, "\n");
}

/* name{label="value"} or name{label="value",le="x"}, without the sample. */
static void put_series(sink *o, const char *name, const char *suffix, const char *label, const char *value,
                       const char *le) {
    put_str(o, name);
    put_str(o, suffix);
    put_str(o, "{");
    put_str(o, label);
    put_str(o, "=");
    put_label_value(o, value);
    if (le) {
        put_str(o, ",le=\"");
        put_str(o, le);
        put_str(o, "\"");
    }
    put_str(o, "} ");
}

static void render_histogram(sink *o, const char *name, const char *label, const char *value,
                             const histogram *h, const hist_shape *shape) {
    uint64_t cumulative = 0;
    for (int i = 0; i <= shape->n_bounds; i++) {
        cumulative += atomic_load_explicit(&h->slot[i], memory_order_relaxed);
        put_series(o, name, "_bucket", label, value, i < shape->n_bounds ? shape->le[i] : "+Inf");
        put_u64(o, cumulative);
        put_str(o, "\n");
    }
    uint64_t sum = atomic_load_explicit(&h->sum, memory_order_relaxed);
    put_series(o, name, "_sum", label, value, NULL);
    if (shape->sum_in_us) put_seconds(o, sum);
    else put_u64(o, sum);
    put_str(o, "\n");
    put_series(o, name, "_count", label, value, NULL);
    put_u64(o, cumulative); /* the +Inf bucket, by construction */
    put_str(o, "\n");
}

static void render_requests(sink *o, const gl_metrics *m, int n_routes) {
    static const char name[] = "geoledger_http_requests_total";
    put_header(o, name, "counter", "HTTP requests by route template, method and status code.");
    for (int r = 0; r < n_routes; r++)
        for (int me = 0; me < N_METHODS; me++)
            for (int s = 0; s < N_STATUS; s++) {
                uint64_t v = atomic_load_explicit(&m->requests[r][me][s], memory_order_relaxed);
                if (v == 0) continue;
                put_str(o, name);
                put_str(o, "{route=");
                put_label_value(o, m->route_names[r]);
                put_str(o, ",method=\"");
                put_str(o, METHODS[me]);
                put_str(o, "\",status=\"");
                put_str(o, STATUS_NAMES[s]);
                put_str(o, "\"} ");
                put_u64(o, v);
                put_str(o, "\n");
            }
}

static void render_histograms(sink *o, const char *name, const char *help, const char *label,
                              const char (*names)[GL_METRICS_ROUTE_MAX + 1], int n, const histogram *h,
                              const hist_shape *shape) {
    put_header(o, name, "histogram", help);
    for (int i = 0; i < n; i++) render_histogram(o, name, label, names[i], &h[i], shape);
}

static void render_u64_family(sink *o, const char *name, const char *type, const char *help, const char *label,
                              const char (*names)[GL_METRICS_ROUTE_MAX + 1], int n, const _Atomic uint64_t *v) {
    put_header(o, name, type, help);
    for (int i = 0; i < n; i++) {
        put_series(o, name, "", label, names[i], NULL);
        put_u64(o, atomic_load_explicit(&v[i], memory_order_relaxed));
        put_str(o, "\n");
    }
}

static void render_gauge(sink *o, const char *name, const char *help,
                         const char (*names)[GL_METRICS_ROUTE_MAX + 1], int n, const _Atomic int64_t *v) {
    put_header(o, name, strstr(name, "_total") ? "counter" : "gauge", help);
    for (int i = 0; i < n; i++) {
        put_series(o, name, "", "region", names[i], NULL);
        put_i64(o, atomic_load_explicit(&v[i], memory_order_relaxed));
        put_str(o, "\n");
    }
}

static void render_webhooks(sink *o, const gl_metrics *m, int n_regions) {
    static const char name[] = "geoledger_webhook_deliveries_total";
    static const char *const outcomes[GL_WEBHOOK_OUTCOMES] = {"delivered", "failed", "dead"};
    put_header(o, name, "counter", "Webhook delivery attempts by region and outcome (failed: retried later).");
    for (int r = 0; r < n_regions; r++)
        for (int k = 0; k < GL_WEBHOOK_OUTCOMES; k++) {
            put_str(o, name);
            put_str(o, "{region=");
            put_label_value(o, m->region_names[r]);
            put_str(o, ",outcome=\"");
            put_str(o, outcomes[k]);
            put_str(o, "\"} ");
            put_u64(o, atomic_load_explicit(&m->webhook_outcomes[r][k], memory_order_relaxed));
            put_str(o, "\n");
        }
    render_gauge(o, "geoledger_webhook_queue_depth", "Webhook deliveries waiting to be sent (pending).",
                 m->region_names, n_regions, m->gauges[GL_GAUGE_WEBHOOK_PENDING]);
    render_gauge(o, "geoledger_webhook_dead_letters", "Webhook deliveries given up on (dead letters).",
                 m->region_names, n_regions, m->gauges[GL_GAUGE_WEBHOOK_DEAD]);
}

static void render_all(sink *o, const gl_metrics *m) {
    int n_routes = atomic_load_explicit(&m->routes.count, memory_order_acquire);
    int n_regions = atomic_load_explicit(&m->regions.count, memory_order_acquire);
    int n_reasons = atomic_load_explicit(&m->reasons.count, memory_order_acquire);
    const char(*regions)[GL_METRICS_ROUTE_MAX + 1] = m->region_names;

    render_requests(o, m, n_routes);
    render_histograms(o, "geoledger_http_request_duration_seconds", "HTTP request duration by route template.",
                      "route", m->route_names, n_routes, m->request_duration, &DUR_SHAPE);
    render_histograms(o, "geoledger_batch_size", "Transfers per applied batch.", "region", regions, n_regions,
                      m->batch_size, &SIZE_SHAPE);
    render_histograms(o, "geoledger_batch_duration_seconds", "Time to apply one batch.", "region", regions,
                      n_regions, m->batch_duration, &DUR_SHAPE);
    render_gauge(o, "geoledger_queue_depth", "Requests waiting for a region's database.", regions, n_regions,
                 m->gauges[GL_GAUGE_QUEUE_DEPTH]);
    render_gauge(o, "geoledger_db_pool_in_use", "Database connections in use.", regions, n_regions,
                 m->gauges[GL_GAUGE_DB_POOL_IN_USE]);
    render_gauge(o, "geoledger_db_pool_size", "Database connections in the pool.", regions, n_regions,
                 m->gauges[GL_GAUGE_DB_POOL_SIZE]);
    render_gauge(o, "geoledger_region_up", "Whether the region's database answers (1) or not (0).", regions,
                 n_regions, m->gauges[GL_GAUGE_REGION_UP]);
    render_gauge(o, "geoledger_region_breaker_state", "The region's circuit breaker: 0 closed, 1 open, 2 half-open.",
                 regions, n_regions, m->gauges[GL_GAUGE_BREAKER_STATE]);
    render_gauge(o, "geoledger_region_breaker_openings_total", "Times the region's circuit breaker opened.", regions,
                 n_regions, m->gauges[GL_GAUGE_BREAKER_OPENINGS]);
    render_gauge(o, "geoledger_db_timeouts_total", "Database hops cut by the client-side deadline.", regions,
                 n_regions, m->gauges[GL_GAUGE_DB_TIMEOUTS]);
    render_gauge(o, "geoledger_db_pool_acquire_timeouts_total", "Reads that found no free connection in time.",
                 regions, n_regions, m->gauges[GL_GAUGE_POOL_TIMEOUTS]);
    render_u64_family(o, "geoledger_db_errors_total", "counter", "Database errors by region.", "region", regions,
                      n_regions, m->db_errors);
    render_u64_family(o, "geoledger_auth_failures_total", "counter", "Rejected credentials by reason.", "reason",
                      m->reason_names, n_reasons, m->auth_failures);
    render_webhooks(o, m, n_regions);
    /* Other modules' families (the outbox threads) come last. */
    for (int i = 0; i < m->n_extra; i++) {
        char *text = m->extra[i].fn(m->extra[i].ctx);
        if (text) put_str(o, text);
        free(text);
    }
}

size_t gl_metrics_render_to(const gl_metrics *m, char *buf, size_t cap) {
    if (!m) return 0;
    sink o = {.buf = buf, .cap = buf ? cap : 0};
    render_all(&o, m);
    if (o.cap > 0) o.buf[o.len < o.cap ? o.len : o.cap - 1] = '\0';
    return o.len;
}

char *gl_metrics_render(const gl_metrics *m) {
    if (!m) return NULL;
    sink o = {.grow = true};
    render_all(&o, m);
    if (o.failed || !o.buf) {
        free(o.buf);
        return NULL;
    }
    o.buf[o.len] = '\0';
    return o.buf;
}
