/*
 * test_metrics.c — unit tests for api/metrics.c: exact exposition lines for
 * every family, cumulative buckets and +Inf == _count, integer _sum
 * formatting, label escaping, registration limits, truncating renders,
 * concurrent updates, and (when promtool is installed) Prometheus' own
 * parser and linter on a full render.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../api/metrics.h"

#define THREADS 4
#define THREAD_ROUNDS 10000

/* True when `line` is a whole line of text. */
static bool has_line(const char *text, const char *line) {
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++) {
        bool starts = p == text || p[-1] == '\n';
        if (starts && p[n] == '\n') return true;
    }
    return false;
}

#define ck_assert_line(text, line) ck_assert_msg(has_line((text), (line)), "missing line: %s\n---\n%s", (line), (text))
#define ck_assert_no_line(text, line) ck_assert_msg(!has_line((text), (line)), "unexpected line: %s", (line))

static gl_metrics *g_m;

static void setup(void) {
    g_m = gl_metrics_new();
    ck_assert_ptr_nonnull(g_m);
}

static void teardown(void) {
    gl_metrics_free(g_m);
    g_m = NULL;
}

static char *render(void) {
    char *text = gl_metrics_render(g_m);
    ck_assert_ptr_nonnull(text);
    return text;
}

START_TEST(test_empty_has_every_family) {
    static const char expected[] =
        "# HELP geoledger_http_requests_total HTTP requests by route template, method and status code.\n"
        "# TYPE geoledger_http_requests_total counter\n"
        "# HELP geoledger_http_request_duration_seconds HTTP request duration by route template.\n"
        "# TYPE geoledger_http_request_duration_seconds histogram\n"
        "# HELP geoledger_batch_size Transfers per applied batch.\n"
        "# TYPE geoledger_batch_size histogram\n"
        "# HELP geoledger_batch_duration_seconds Time to apply one batch.\n"
        "# TYPE geoledger_batch_duration_seconds histogram\n"
        "# HELP geoledger_queue_depth Requests waiting for a region's database.\n"
        "# TYPE geoledger_queue_depth gauge\n"
        "# HELP geoledger_db_pool_in_use Database connections in use.\n"
        "# TYPE geoledger_db_pool_in_use gauge\n"
        "# HELP geoledger_db_pool_size Database connections in the pool.\n"
        "# TYPE geoledger_db_pool_size gauge\n"
        "# HELP geoledger_region_up Whether the region's database answers (1) or not (0).\n"
        "# TYPE geoledger_region_up gauge\n"
        "# HELP geoledger_region_breaker_state The region's circuit breaker: 0 closed, 1 open, 2 half-open.\n"
        "# TYPE geoledger_region_breaker_state gauge\n"
        "# HELP geoledger_region_breaker_openings_total Times the region's circuit breaker opened.\n"
        "# TYPE geoledger_region_breaker_openings_total counter\n"
        "# HELP geoledger_db_timeouts_total Database hops cut by the client-side deadline.\n"
        "# TYPE geoledger_db_timeouts_total counter\n"
        "# HELP geoledger_db_pool_acquire_timeouts_total Reads that found no free connection in time.\n"
        "# TYPE geoledger_db_pool_acquire_timeouts_total counter\n"
        "# HELP geoledger_db_errors_total Database errors by region.\n"
        "# TYPE geoledger_db_errors_total counter\n"
        "# HELP geoledger_auth_failures_total Rejected credentials by reason.\n"
        "# TYPE geoledger_auth_failures_total counter\n"
        "# HELP geoledger_webhook_deliveries_total Webhook delivery attempts by region and outcome (failed: retried "
        "later).\n"
        "# TYPE geoledger_webhook_deliveries_total counter\n"
        "# HELP geoledger_webhook_queue_depth Webhook deliveries waiting to be sent (pending).\n"
        "# TYPE geoledger_webhook_queue_depth gauge\n"
        "# HELP geoledger_webhook_dead_letters Webhook deliveries given up on (dead letters).\n"
        "# TYPE geoledger_webhook_dead_letters gauge\n";
    char *text = render();
    ck_assert_str_eq(text, expected);
    free(text);
}
END_TEST

START_TEST(test_request_counter) {
    int r = gl_metrics_route(g_m, "/v1/accounts/{id}");
    ck_assert_int_eq(r, 0);
    gl_metrics_request(g_m, r, "GET", 200, 10);
    gl_metrics_request(g_m, r, "GET", 200, 10);
    gl_metrics_request(g_m, r, "POST", 201, 10);
    gl_metrics_request(g_m, r, "BREW", 418, 10); /* unknown method, a code outside the list */
    gl_metrics_request(g_m, r, NULL, 302, 10);
    gl_metrics_request(g_m, r, "get", 99, 10); /* methods are case-sensitive (RFC 9110) */
    gl_metrics_request(g_m, r, "DELETE", 600, 10);
    char *text = render();
    ck_assert_line(text, "geoledger_http_requests_total{route=\"/v1/accounts/{id}\",method=\"GET\",status=\"200\"} 2");
    ck_assert_line(text, "geoledger_http_requests_total{route=\"/v1/accounts/{id}\",method=\"POST\",status=\"201\"} 1");
    ck_assert_line(text, "geoledger_http_requests_total{route=\"/v1/accounts/{id}\",method=\"OTHER\",status=\"4xx\"} 1");
    ck_assert_line(text, "geoledger_http_requests_total{route=\"/v1/accounts/{id}\",method=\"OTHER\",status=\"3xx\"} 1");
    ck_assert_line(text,
                   "geoledger_http_requests_total{route=\"/v1/accounts/{id}\",method=\"OTHER\",status=\"other\"} 1");
    ck_assert_line(text,
                   "geoledger_http_requests_total{route=\"/v1/accounts/{id}\",method=\"DELETE\",status=\"other\"} 1");
    /* Unobserved combinations are not printed. */
    ck_assert_ptr_null(strstr(text, "status=\"404\""));
    ck_assert_line(text, "geoledger_http_request_duration_seconds_count{route=\"/v1/accounts/{id}\"} 7");
    free(text);
}
END_TEST

START_TEST(test_every_listed_code_is_exact) {
    static const int codes[] = {200, 201, 202, 204, 400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 503};
    int r = gl_metrics_route(g_m, "/v1/transfers");
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) gl_metrics_request(g_m, r, "POST", codes[i], 1);
    char *text = render();
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        char line[160];
        snprintf(line, sizeof line,
                 "geoledger_http_requests_total{route=\"/v1/transfers\",method=\"POST\",status=\"%d\"} 1", codes[i]);
        ck_assert_line(text, line);
    }
    free(text);
}
END_TEST

START_TEST(test_duration_histogram) {
    int r = gl_metrics_route(g_m, "/v1/transfers");
    gl_metrics_request(g_m, r, "POST", 201, 0);       /* le 0.001 */
    gl_metrics_request(g_m, r, "POST", 201, 1000);    /* le 0.001: bounds are inclusive */
    gl_metrics_request(g_m, r, "POST", 201, 1001);    /* le 0.0025 */
    gl_metrics_request(g_m, r, "POST", 201, 300000);  /* le 0.5 */
    gl_metrics_request(g_m, r, "POST", 201, 5000000); /* le 5 */
    gl_metrics_request(g_m, r, "POST", 201, 5000001); /* +Inf only */
    char *text = render();
#define B(le, n) "geoledger_http_request_duration_seconds_bucket{route=\"/v1/transfers\",le=\"" le "\"} " #n
    ck_assert_line(text, B("0.001", 2));
    ck_assert_line(text, B("0.0025", 3));
    ck_assert_line(text, B("0.005", 3));
    ck_assert_line(text, B("0.01", 3));
    ck_assert_line(text, B("0.025", 3));
    ck_assert_line(text, B("0.05", 3));
    ck_assert_line(text, B("0.1", 3));
    ck_assert_line(text, B("0.25", 3));
    ck_assert_line(text, B("0.5", 4));
    ck_assert_line(text, B("1", 4));
    ck_assert_line(text, B("2.5", 4));
    ck_assert_line(text, B("5", 5));
    ck_assert_line(text, B("+Inf", 6));
#undef B
    /* 0 + 1000 + 1001 + 300000 + 5000000 + 5000001 us */
    ck_assert_line(text, "geoledger_http_request_duration_seconds_sum{route=\"/v1/transfers\"} 10.302002");
    ck_assert_line(text, "geoledger_http_request_duration_seconds_count{route=\"/v1/transfers\"} 6");
    free(text);
}
END_TEST

START_TEST(test_sum_is_exact) {
    int r = gl_metrics_route(g_m, "/healthz");
    char *text = render();
    ck_assert_line(text, "geoledger_http_request_duration_seconds_sum{route=\"/healthz\"} 0.000000");
    ck_assert_line(text, "geoledger_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"+Inf\"} 0");
    free(text);
    /* A million 1 us requests sum to exactly one second: a double accumulator would not. */
    for (int i = 0; i < 1000000; i++) gl_metrics_request(g_m, r, "GET", 200, 1);
    gl_metrics_request(g_m, r, "GET", 200, UINT64_C(86400000000) + 7);
    text = render();
    ck_assert_line(text, "geoledger_http_request_duration_seconds_sum{route=\"/healthz\"} 86401.000007");
    ck_assert_line(text, "geoledger_http_request_duration_seconds_count{route=\"/healthz\"} 1000001");
    free(text);
}
END_TEST

START_TEST(test_batch_histograms) {
    int eu = gl_metrics_region(g_m, "eu");
    int us = gl_metrics_region(g_m, "us");
    ck_assert_int_eq(eu, 0);
    ck_assert_int_eq(us, 1);
    gl_metrics_batch(g_m, eu, 1, 2000);
    gl_metrics_batch(g_m, eu, 3, 2000);
    gl_metrics_batch(g_m, eu, 8189, 60000000);
    gl_metrics_batch(g_m, eu, 9000, 1);
    char *text = render();
    ck_assert_line(text, "geoledger_batch_size_bucket{region=\"eu\",le=\"1\"} 1");
    ck_assert_line(text, "geoledger_batch_size_bucket{region=\"eu\",le=\"2\"} 1");
    ck_assert_line(text, "geoledger_batch_size_bucket{region=\"eu\",le=\"4\"} 2");
    ck_assert_line(text, "geoledger_batch_size_bucket{region=\"eu\",le=\"4096\"} 2");
    ck_assert_line(text, "geoledger_batch_size_bucket{region=\"eu\",le=\"8189\"} 3");
    ck_assert_line(text, "geoledger_batch_size_bucket{region=\"eu\",le=\"+Inf\"} 4");
    ck_assert_line(text, "geoledger_batch_size_sum{region=\"eu\"} 17193");
    ck_assert_line(text, "geoledger_batch_size_count{region=\"eu\"} 4");
    ck_assert_line(text, "geoledger_batch_duration_seconds_bucket{region=\"eu\",le=\"0.001\"} 1");
    ck_assert_line(text, "geoledger_batch_duration_seconds_bucket{region=\"eu\",le=\"0.0025\"} 3");
    ck_assert_line(text, "geoledger_batch_duration_seconds_bucket{region=\"eu\",le=\"5\"} 3");
    ck_assert_line(text, "geoledger_batch_duration_seconds_bucket{region=\"eu\",le=\"+Inf\"} 4");
    ck_assert_line(text, "geoledger_batch_duration_seconds_sum{region=\"eu\"} 60.004001");
    ck_assert_line(text, "geoledger_batch_duration_seconds_count{region=\"eu\"} 4");
    /* A registered region with no batches still has its (zero) series. */
    ck_assert_line(text, "geoledger_batch_size_bucket{region=\"us\",le=\"+Inf\"} 0");
    ck_assert_line(text, "geoledger_batch_size_sum{region=\"us\"} 0");
    ck_assert_line(text, "geoledger_batch_duration_seconds_count{region=\"us\"} 0");
    free(text);
}
END_TEST

/*
 * Every histogram in a render: within one series (the text before ",le="),
 * buckets never decrease, and its +Inf bucket equals its _count.
 */
static void check_histograms_consistent(const char *text) {
    char series[512] = "", line[1024];
    unsigned long long prev = 0, inf = 0;
    int checked = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        ck_assert_uint_lt(n, sizeof line);
        memcpy(line, p, n);
        line[n] = '\0';
        p += nl ? n + 1 : n;
        const char *sp = strrchr(line, ' ');
        if (line[0] == '#' || !sp) continue;
        unsigned long long v = strtoull(sp + 1, NULL, 10);
        const char *le = strstr(line, ",le=\"");
        if (le) {
            size_t k = (size_t)(le - line);
            if (strlen(series) != k || strncmp(series, line, k) != 0) {
                snprintf(series, sizeof series, "%.*s", (int)k, line);
                prev = 0;
            }
            ck_assert_msg(v >= prev, "bucket decreases: %s", line);
            prev = v;
            if (strstr(le, "+Inf")) inf = v;
        } else if (strstr(line, "_count{")) {
            ck_assert_msg(v == inf, "+Inf (%llu) != _count at %s", inf, line);
            checked++;
        }
    }
    ck_assert_int_gt(checked, 0);
}

START_TEST(test_cumulative_everywhere) {
    int r = gl_metrics_route(g_m, "/v1/events");
    int eu = gl_metrics_region(g_m, "eu");
    for (uint64_t us = 0; us < 7000000; us += 977) gl_metrics_request(g_m, r, "GET", 200, us);
    for (size_t n = 0; n < 9000; n += 13) gl_metrics_batch(g_m, eu, n, n * 100);
    char *text = render();
    check_histograms_consistent(text);
    free(text);
}
END_TEST

START_TEST(test_escaping) {
    int r = gl_metrics_route(g_m, "/a\"b\\c\nd");
    int reason = gl_metrics_reason(g_m, "tab\there ünïcode");
    ck_assert_int_ge(r, 0);
    ck_assert_int_ge(reason, 0);
    gl_metrics_request(g_m, r, "GET", 200, 1);
    gl_metrics_auth_failure(g_m, reason);
    char *text = render();
    ck_assert_line(text, "geoledger_http_requests_total{route=\"/a\\\"b\\\\c\\nd\",method=\"GET\",status=\"200\"} 1");
    ck_assert_line(text, "geoledger_http_request_duration_seconds_count{route=\"/a\\\"b\\\\c\\nd\"} 1");
    /* Only \, " and newline are escaped; other bytes (tab, UTF-8) pass through. */
    ck_assert_line(text, "geoledger_auth_failures_total{reason=\"tab\there ünïcode\"} 1");
    free(text);
}
END_TEST

START_TEST(test_gauges_and_counters) {
    int eu = gl_metrics_region(g_m, "eu");
    int sg = gl_metrics_region(g_m, "sg");
    int expired = gl_metrics_reason(g_m, "token_expired");
    int malformed = gl_metrics_reason(g_m, "token_malformed");
    gl_metrics_gauge_set(g_m, GL_GAUGE_QUEUE_DEPTH, eu, 5);
    gl_metrics_gauge_add(g_m, GL_GAUGE_QUEUE_DEPTH, eu, -7); /* a gauge may go negative: report, don't hide */
    gl_metrics_gauge_set(g_m, GL_GAUGE_DB_POOL_SIZE, eu, 16);
    gl_metrics_gauge_add(g_m, GL_GAUGE_DB_POOL_IN_USE, eu, 3);
    gl_metrics_gauge_add(g_m, GL_GAUGE_DB_POOL_IN_USE, eu, -1);
    gl_metrics_gauge_set(g_m, GL_GAUGE_REGION_UP, eu, 1);
    gl_metrics_gauge_set(g_m, GL_GAUGE_REGION_UP, sg, 0);
    gl_metrics_db_error(g_m, sg);
    gl_metrics_db_error(g_m, sg);
    gl_metrics_auth_failure(g_m, expired);
    gl_metrics_auth_failure(g_m, expired);
    gl_metrics_auth_failure(g_m, expired);
    char *text = render();
    ck_assert_line(text, "geoledger_queue_depth{region=\"eu\"} -2");
    ck_assert_line(text, "geoledger_queue_depth{region=\"sg\"} 0");
    ck_assert_line(text, "geoledger_db_pool_size{region=\"eu\"} 16");
    ck_assert_line(text, "geoledger_db_pool_in_use{region=\"eu\"} 2");
    ck_assert_line(text, "geoledger_region_up{region=\"eu\"} 1");
    ck_assert_line(text, "geoledger_region_up{region=\"sg\"} 0");
    ck_assert_line(text, "geoledger_db_errors_total{region=\"eu\"} 0");
    ck_assert_line(text, "geoledger_db_errors_total{region=\"sg\"} 2");
    ck_assert_line(text, "geoledger_auth_failures_total{reason=\"token_expired\"} 3");
    ck_assert_line(text, "geoledger_auth_failures_total{reason=\"token_malformed\"} 0");
    ck_assert_int_eq(malformed, 1);
    free(text);
}
END_TEST

/* Webhook outcomes per region and outcome, every pair printed; the two gauges. */
START_TEST(test_webhook_families) {
    int eu = gl_metrics_region(g_m, "eu"), sg = gl_metrics_region(g_m, "sg");
    gl_metrics_webhook(g_m, eu, GL_WEBHOOK_DELIVERED);
    gl_metrics_webhook(g_m, eu, GL_WEBHOOK_DELIVERED);
    gl_metrics_webhook(g_m, sg, GL_WEBHOOK_DEAD);
    gl_metrics_webhook(g_m, sg, GL_WEBHOOK_OUTCOMES); /* out of range: ignored */
    gl_metrics_webhook(g_m, 7, GL_WEBHOOK_FAILED);    /* never registered: ignored */
    gl_metrics_gauge_set(g_m, GL_GAUGE_WEBHOOK_PENDING, eu, 5);
    gl_metrics_gauge_set(g_m, GL_GAUGE_WEBHOOK_DEAD, sg, 1);
    char *text = render();
    ck_assert_line(text, "geoledger_webhook_deliveries_total{region=\"eu\",outcome=\"delivered\"} 2");
    ck_assert_line(text, "geoledger_webhook_deliveries_total{region=\"eu\",outcome=\"failed\"} 0");
    ck_assert_line(text, "geoledger_webhook_deliveries_total{region=\"sg\",outcome=\"dead\"} 1");
    ck_assert_line(text, "geoledger_webhook_queue_depth{region=\"eu\"} 5");
    ck_assert_line(text, "geoledger_webhook_dead_letters{region=\"sg\"} 1");
    free(text);
}
END_TEST

START_TEST(test_registration_limits) {
    char name[GL_METRICS_ROUTE_MAX + 2];
    for (int i = 0; i < GL_METRICS_ROUTES_MAX; i++) {
        snprintf(name, sizeof name, "/r/%d", i);
        ck_assert_int_eq(gl_metrics_route(g_m, name), i);
    }
    ck_assert_int_eq(gl_metrics_route(g_m, "/one/too/many"), -1);
    ck_assert_int_eq(gl_metrics_route(g_m, "/r/7"), 7); /* idempotent, even when full */
    ck_assert_int_eq(gl_metrics_find_route(g_m, "/r/63"), 63);
    ck_assert_int_eq(gl_metrics_find_route(g_m, "/one/too/many"), -1);

    for (int i = 0; i < GL_METRICS_REGIONS_MAX; i++) {
        snprintf(name, sizeof name, "r%d", i);
        ck_assert_int_eq(gl_metrics_region(g_m, name), i);
    }
    ck_assert_int_eq(gl_metrics_region(g_m, "zz"), -1);
    for (int i = 0; i < GL_METRICS_REASONS_MAX; i++) {
        snprintf(name, sizeof name, "reason_%d", i);
        ck_assert_int_eq(gl_metrics_reason(g_m, name), i);
    }
    ck_assert_int_eq(gl_metrics_reason(g_m, "zz"), -1);
    ck_assert_int_eq(gl_metrics_find_reason(g_m, "reason_31"), 31);
    ck_assert_int_eq(gl_metrics_find_region(g_m, "r15"), 15);
}
END_TEST

START_TEST(test_bad_names_and_indexes) {
    char long_name[GL_METRICS_ROUTE_MAX + 2];
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    ck_assert_int_eq(gl_metrics_route(g_m, long_name), -1); /* 129 bytes */
    long_name[GL_METRICS_ROUTE_MAX] = '\0';
    ck_assert_int_eq(gl_metrics_route(g_m, long_name), 0); /* 128 bytes */
    ck_assert_int_eq(gl_metrics_route(g_m, ""), -1);
    ck_assert_int_eq(gl_metrics_route(g_m, NULL), -1);
    ck_assert_int_eq(gl_metrics_route(g_m, "/bad\xff"), -1);     /* not UTF-8 */
    ck_assert_int_eq(gl_metrics_route(g_m, "/bad\xc0\xaf"), -1); /* overlong '/' */
    ck_assert_int_eq(gl_metrics_route(g_m, "/bad\xed\xa0\x80"), -1); /* surrogate */
    ck_assert_int_eq(gl_metrics_route(g_m, "/cut\xe2\x82"), -1);   /* truncated sequence */
    ck_assert_int_eq(gl_metrics_route(g_m, "/ok\xe2\x82\xac"), 1); /* euro sign */
    char region[GL_METRICS_NAME_MAX + 2];
    memset(region, 'r', sizeof region - 1);
    region[sizeof region - 1] = '\0';
    ck_assert_int_eq(gl_metrics_region(g_m, region), -1);
    ck_assert_int_eq(gl_metrics_route(NULL, "/x"), -1);

    /* Unregistered indexes and bad gauges are dropped, not crashes. */
    gl_metrics_request(g_m, 2, "GET", 200, 1);
    gl_metrics_request(g_m, -1, "GET", 200, 1);
    gl_metrics_request(g_m, GL_METRICS_ROUTES_MAX, "GET", 200, 1);
    gl_metrics_batch(g_m, 0, 1, 1);
    gl_metrics_gauge_set(g_m, GL_GAUGE_QUEUE_DEPTH, 0, 1);
    gl_metrics_gauge_set(g_m, GL_GAUGE_COUNT, 0, 1);
    gl_metrics_gauge_add(g_m, (gl_metrics_gauge)-1, 0, 1);
    gl_metrics_db_error(g_m, 3);
    gl_metrics_auth_failure(g_m, 0);
    gl_metrics_request(NULL, 0, "GET", 200, 1);
    gl_metrics_batch(NULL, 0, 1, 1);
    gl_metrics_gauge_set(NULL, GL_GAUGE_QUEUE_DEPTH, 0, 1);
    gl_metrics_db_error(NULL, 0);
    gl_metrics_auth_failure(NULL, 0);
    ck_assert_ptr_null(gl_metrics_render(NULL));
    ck_assert_uint_eq(gl_metrics_render_to(NULL, NULL, 0), 0);
    gl_metrics_free(NULL);

    char *text = render();
    ck_assert_ptr_null(strstr(text, "geoledger_http_requests_total{"));
    ck_assert_line(text, "geoledger_http_request_duration_seconds_count{route=\"/ok€\"} 0");
    free(text);
}
END_TEST

START_TEST(test_render_to_buffer) {
    int r = gl_metrics_route(g_m, "/v1/accounts");
    gl_metrics_region(g_m, "eu");
    gl_metrics_request(g_m, r, "POST", 201, 1234);
    char *full = render();
    size_t n = strlen(full);

    ck_assert_uint_eq(gl_metrics_render_to(g_m, NULL, 0), n); /* size query */
    char *exact = malloc(n + 1);
    ck_assert_ptr_nonnull(exact);
    ck_assert_uint_eq(gl_metrics_render_to(g_m, exact, n + 1), n);
    ck_assert_str_eq(exact, full);

    char small[100];
    memset(small, 'x', sizeof small);
    ck_assert_uint_eq(gl_metrics_render_to(g_m, small, sizeof small), n);
    ck_assert_uint_eq(strlen(small), sizeof small - 1);
    ck_assert_int_eq(memcmp(small, full, sizeof small - 1), 0);

    char one[1] = {'x'};
    ck_assert_uint_eq(gl_metrics_render_to(g_m, one, 1), n);
    ck_assert_int_eq(one[0], '\0');
    free(exact);
    free(full);
}
END_TEST

typedef struct {
    int route;
    int region;
} worker_args;

static void *worker(void *arg) {
    const worker_args *a = arg;
    for (int i = 0; i < THREAD_ROUNDS; i++) {
        gl_metrics_request(g_m, a->route, "GET", 200, (uint64_t)i);
        gl_metrics_batch(g_m, a->region, (size_t)i % 100, 10);
        gl_metrics_gauge_add(g_m, GL_GAUGE_QUEUE_DEPTH, a->region, 1);
        gl_metrics_gauge_add(g_m, GL_GAUGE_QUEUE_DEPTH, a->region, -1);
        gl_metrics_db_error(g_m, a->region);
    }
    return NULL;
}

/* Renders while writers run: every intermediate render must be consistent too. */
static void *reader(void *arg) {
    (void)arg;
    for (int i = 0; i < 20; i++) {
        char *text = gl_metrics_render(g_m);
        if (!text) return (void *)1;
        check_histograms_consistent(text);
        free(text);
    }
    return NULL;
}

START_TEST(test_threads) {
    worker_args a = {gl_metrics_route(g_m, "/v1/transfers"), gl_metrics_region(g_m, "eu")};
    pthread_t t[THREADS], rd;
    for (int i = 0; i < THREADS; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, worker, &a), 0);
    ck_assert_int_eq(pthread_create(&rd, NULL, reader, NULL), 0);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    void *rd_result = NULL;
    pthread_join(rd, &rd_result);
    ck_assert_ptr_null(rd_result);

    char *text = render();
    char line[160];
    snprintf(line, sizeof line,
             "geoledger_http_requests_total{route=\"/v1/transfers\",method=\"GET\",status=\"200\"} %d",
             THREADS * THREAD_ROUNDS);
    ck_assert_line(text, line);
    snprintf(line, sizeof line, "geoledger_http_request_duration_seconds_count{route=\"/v1/transfers\"} %d",
             THREADS * THREAD_ROUNDS);
    ck_assert_line(text, line);
    /* sum of 0..9999 us, four times = 199980000 us */
    ck_assert_line(text, "geoledger_http_request_duration_seconds_sum{route=\"/v1/transfers\"} 199.980000");
    snprintf(line, sizeof line, "geoledger_db_errors_total{region=\"eu\"} %d", THREADS * THREAD_ROUNDS);
    ck_assert_line(text, line);
    ck_assert_line(text, "geoledger_queue_depth{region=\"eu\"} 0");
    free(text);
}
END_TEST

/* Registering from several threads at once still hands out each index exactly once. */
static void *registrar(void *arg) {
    const int base = *(const int *)arg;
    char name[32];
    for (int i = 0; i < 16; i++) {
        snprintf(name, sizeof name, "/t%d/%d", base, i);
        if (gl_metrics_route(g_m, name) < 0) return (void *)1;
    }
    return NULL;
}

START_TEST(test_concurrent_registration) {
    pthread_t t[THREADS];
    int base[THREADS];
    for (int i = 0; i < THREADS; i++) {
        base[i] = i;
        ck_assert_int_eq(pthread_create(&t[i], NULL, registrar, &base[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        void *res = NULL;
        pthread_join(t[i], &res);
        ck_assert_ptr_null(res);
    }
    bool seen[GL_METRICS_ROUTES_MAX] = {false};
    char name[32];
    for (int b = 0; b < THREADS; b++)
        for (int i = 0; i < 16; i++) {
            snprintf(name, sizeof name, "/t%d/%d", b, i);
            int idx = gl_metrics_find_route(g_m, name);
            ck_assert_int_ge(idx, 0);
            ck_assert(!seen[idx]);
            seen[idx] = true;
        }
}
END_TEST

/* ---- promtool: Prometheus' own parser and linter, when installed ---- */

static bool promtool_available(void) { return system("command -v promtool >/dev/null 2>&1") == 0; }

START_TEST(test_promtool) {
    if (!promtool_available()) {
        fprintf(stderr, "test_metrics: SKIP promtool check (promtool not installed; apt-get install prometheus)\n");
        return;
    }
    int r = gl_metrics_route(g_m, "/v1/accounts/{id}");
    int q = gl_metrics_route(g_m, "/weird \"route\"\\\n");
    int eu = gl_metrics_region(g_m, "eu");
    gl_metrics_region(g_m, "us");
    int reason = gl_metrics_reason(g_m, "token_expired");
    gl_metrics_request(g_m, r, "GET", 200, 1500);
    gl_metrics_request(g_m, r, "GET", 404, 15000000);
    gl_metrics_request(g_m, q, "PATCH", 418, 7);
    gl_metrics_batch(g_m, eu, 100, 25000);
    gl_metrics_gauge_set(g_m, GL_GAUGE_REGION_UP, eu, 1);
    gl_metrics_gauge_set(g_m, GL_GAUGE_DB_POOL_SIZE, eu, 8);
    gl_metrics_db_error(g_m, eu);
    gl_metrics_auth_failure(g_m, reason);
    char *text = render();

    char path[] = "/tmp/test_metrics_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    ck_assert_int_eq(fclose(f), 0);
    free(text);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s", path);
    int rc = system(cmd);
    unlink(path);
    ck_assert_msg(rc == 0, "promtool check metrics failed (status %d): see its output above", rc);
}
END_TEST

static Suite *metrics_suite(void) {
    Suite *s = suite_create("metrics");
    TCase *render_tc = tcase_create("render");
    tcase_add_checked_fixture(render_tc, setup, teardown);
    tcase_add_test(render_tc, test_empty_has_every_family);
    tcase_add_test(render_tc, test_request_counter);
    tcase_add_test(render_tc, test_every_listed_code_is_exact);
    tcase_add_test(render_tc, test_duration_histogram);
    tcase_add_test(render_tc, test_sum_is_exact);
    tcase_add_test(render_tc, test_batch_histograms);
    tcase_add_test(render_tc, test_cumulative_everywhere);
    tcase_add_test(render_tc, test_escaping);
    tcase_add_test(render_tc, test_gauges_and_counters);
    tcase_add_test(render_tc, test_webhook_families);
    tcase_add_test(render_tc, test_render_to_buffer);
    suite_add_tcase(s, render_tc);

    TCase *reg = tcase_create("registration");
    tcase_add_checked_fixture(reg, setup, teardown);
    tcase_add_test(reg, test_registration_limits);
    tcase_add_test(reg, test_bad_names_and_indexes);
    tcase_add_test(reg, test_concurrent_registration);
    suite_add_tcase(s, reg);

    TCase *threads = tcase_create("threads");
    tcase_add_checked_fixture(threads, setup, teardown);
    tcase_set_timeout(threads, 60);
    tcase_add_test(threads, test_threads);
    suite_add_tcase(s, threads);

    TCase *prom = tcase_create("promtool");
    tcase_add_checked_fixture(prom, setup, teardown);
    tcase_set_timeout(prom, 60);
    tcase_add_test(prom, test_promtool);
    suite_add_tcase(s, prom);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(metrics_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
