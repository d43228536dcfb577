/*
 * test_log.c — unit tests for api/log.c: every line is one valid JSON
 * object with the documented fields and types, levels filter, fields are
 * bounded and sanitized, four threads never interleave lines, and W3C
 * traceparent parsing and generation follow the spec.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../../api/log.h"

#define THREADS 4
#define THREAD_LINES 1000
#define SPEC_EXAMPLE "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static FILE *g_file;

static void setup(void) {
    g_file = tmpfile();
    ck_assert_ptr_nonnull(g_file);
    gl_log_set_output(g_file);
    gl_log_set_level(GL_LOG_INFO);
}

static void teardown(void) {
    gl_log_set_output(NULL);
    fclose(g_file);
    g_file = NULL;
}

/* Every line written so far, parsed; fails the test on a line that is not one JSON object. */
static json_t *read_lines(void) {
    json_t *lines = json_array();
    ck_assert_ptr_nonnull(lines);
    ck_assert_int_eq(fseek(g_file, 0, SEEK_SET), 0);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, g_file)) > 0) {
        ck_assert_msg(line[n - 1] == '\n', "line without newline: %s", line);
        json_error_t jerr;
        json_t *obj = json_loadb(line, (size_t)n - 1, JSON_REJECT_DUPLICATES, &jerr);
        ck_assert_msg(json_is_object(obj), "not a JSON object (%s): %s", jerr.text, line);
        json_array_append_new(lines, obj);
    }
    free(line);
    return lines;
}

static json_t *only_line(void) {
    json_t *lines = read_lines();
    ck_assert_uint_eq(json_array_size(lines), 1);
    json_t *obj = json_incref(json_array_get(lines, 0));
    json_decref(lines);
    return obj;
}

static const char *str_field(const json_t *obj, const char *key) {
    const json_t *v = json_object_get(obj, key);
    ck_assert_msg(json_is_string(v), "field %s is not a string", key);
    return json_string_value(v);
}

static json_int_t int_field(const json_t *obj, const char *key) {
    const json_t *v = json_object_get(obj, key);
    ck_assert_msg(json_is_integer(v), "field %s is not an integer", key);
    return json_integer_value(v);
}

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" */
static bool is_rfc3339_ms(const char *t) {
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (strlen(t) != sizeof shape - 1) return false;
    for (size_t i = 0; shape[i]; i++) {
        bool ok = shape[i] == 'd' ? (t[i] >= '0' && t[i] <= '9') : t[i] == shape[i];
        if (!ok) return false;
    }
    return true;
}

static bool is_lower_hex(const char *s, size_t n) {
    if (strlen(s) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

START_TEST(test_levels) {
    gl_log_level l = GL_LOG_ERROR;
    ck_assert(gl_log_level_parse("debug", &l) && l == GL_LOG_DEBUG);
    ck_assert(gl_log_level_parse("info", &l) && l == GL_LOG_INFO);
    ck_assert(gl_log_level_parse("warn", &l) && l == GL_LOG_WARN);
    ck_assert(gl_log_level_parse("error", &l) && l == GL_LOG_ERROR);
    ck_assert(!gl_log_level_parse("INFO", &l));
    ck_assert(!gl_log_level_parse("warning", &l));
    ck_assert(!gl_log_level_parse(NULL, &l));
    ck_assert_str_eq(gl_log_level_name(GL_LOG_WARN), "warn");
    ck_assert_str_eq(gl_log_level_name((gl_log_level)9), "unknown");

    gl_log_set_level(GL_LOG_WARN);
    ck_assert_int_eq(gl_log_get_level(), GL_LOG_WARN);
    gl_log_set_level((gl_log_level)42); /* ignored */
    ck_assert_int_eq(gl_log_get_level(), GL_LOG_WARN);
    gl_log(GL_LOG_DEBUG, "dropped", "debug");
    gl_log(GL_LOG_INFO, "dropped", "info");
    gl_log(GL_LOG_WARN, "kept", "warn %d", 1);
    gl_log(GL_LOG_ERROR, "kept", "error %d", 2);
    gl_log_request(&(gl_log_request_fields){.request_id = "a", .method = "GET", .route = "/", .status = 200});
    gl_log_request(&(gl_log_request_fields){.request_id = "b", .method = "GET", .route = "/", .status = 503});
    gl_log_json(GL_LOG_INFO, "dropped", json_pack("{s:i}", "n", 1), "extra is freed even when dropped");

    json_t *lines = read_lines();
    ck_assert_uint_eq(json_array_size(lines), 3);
    ck_assert_str_eq(str_field(json_array_get(lines, 0), "msg"), "warn 1");
    ck_assert_str_eq(str_field(json_array_get(lines, 0), "level"), "warn");
    ck_assert_str_eq(str_field(json_array_get(lines, 1), "msg"), "error 2");
    ck_assert_str_eq(str_field(json_array_get(lines, 2), "request_id"), "b");
    ck_assert_str_eq(str_field(json_array_get(lines, 2), "level"), "error");
    json_decref(lines);
}
END_TEST

START_TEST(test_request_line) {
    char rid[33];
    ck_assert(gl_request_id(rid));
    gl_log_request(&(gl_log_request_fields){
        .request_id = rid,
        .principal = "app:shop-42",
        .method = "POST",
        .route = "/v1/transfers",
        .status = 422,
        .duration_us = 12345,
        .region = "eu",
        .traceparent = SPEC_EXAMPLE,
        .error_code = "insufficient_funds",
    });
    json_t *obj = only_line();
    ck_assert(is_rfc3339_ms(str_field(obj, "time")));
    ck_assert_str_eq(str_field(obj, "level"), "info");
    ck_assert_str_eq(str_field(obj, "event"), "http_request");
    ck_assert_str_eq(str_field(obj, "request_id"), rid);
    ck_assert_str_eq(str_field(obj, "principal"), "app:shop-42");
    ck_assert_str_eq(str_field(obj, "method"), "POST");
    ck_assert_str_eq(str_field(obj, "route"), "/v1/transfers");
    ck_assert_int_eq(int_field(obj, "status"), 422);
    ck_assert_int_eq(int_field(obj, "duration_us"), 12345);
    ck_assert_int_eq(int_field(obj, "duration_ms"), 12); /* integer, truncated: never a float */
    ck_assert_str_eq(str_field(obj, "region"), "eu");
    ck_assert_str_eq(str_field(obj, "traceparent"), SPEC_EXAMPLE);
    ck_assert_str_eq(str_field(obj, "error"), "insufficient_funds");
    ck_assert_uint_eq(json_object_size(obj), 13);
    json_decref(obj);
}
END_TEST

START_TEST(test_request_line_optional_fields) {
    gl_log_request(&(gl_log_request_fields){.request_id = "r1", .method = "GET", .route = "/healthz", .status = 200,
                                            .duration_us = 999});
    gl_log_request(NULL); /* ignored */
    json_t *obj = only_line();
    ck_assert_int_eq(int_field(obj, "duration_ms"), 0);
    ck_assert_ptr_null(json_object_get(obj, "principal"));
    ck_assert_ptr_null(json_object_get(obj, "region"));
    ck_assert_ptr_null(json_object_get(obj, "traceparent"));
    ck_assert_ptr_null(json_object_get(obj, "error"));
    ck_assert_uint_eq(json_object_size(obj), 9);
    json_decref(obj);
}
END_TEST

START_TEST(test_event_lines) {
    gl_log(GL_LOG_WARN, "region_down", "region %s: %s", "sg", "connection refused");
    gl_log_json(GL_LOG_ERROR, "db_error", json_pack("{s:s,s:i,s:s,s:s}", "region", "eu", "attempt", 3, "level", "debug",
                                                    "msg", "not mine"),
                "serialization failure");
    gl_log_json(GL_LOG_INFO, "started", NULL, NULL);
    gl_log_json(GL_LOG_INFO, "not_an_object", json_integer(5), "x");
    json_t *lines = read_lines();
    ck_assert_uint_eq(json_array_size(lines), 4);
    json_t *a = json_array_get(lines, 0);
    ck_assert_str_eq(str_field(a, "level"), "warn");
    ck_assert_str_eq(str_field(a, "event"), "region_down");
    ck_assert_str_eq(str_field(a, "msg"), "region sg: connection refused");
    ck_assert(is_rfc3339_ms(str_field(a, "time")));
    json_t *b = json_array_get(lines, 1);
    ck_assert_str_eq(str_field(b, "level"), "error"); /* a caller cannot overwrite the fixed fields */
    ck_assert_str_eq(str_field(b, "msg"), "serialization failure");
    ck_assert_str_eq(str_field(b, "region"), "eu");
    ck_assert_int_eq(int_field(b, "attempt"), 3);
    json_t *c = json_array_get(lines, 2);
    ck_assert_ptr_null(json_object_get(c, "msg"));
    ck_assert_uint_eq(json_object_size(c), 3);
    ck_assert_uint_eq(json_object_size(json_array_get(lines, 3)), 4);
    json_decref(lines);
}
END_TEST

START_TEST(test_bounds_and_sanitizing) {
    char long_msg[3000];
    memset(long_msg, 'm', sizeof long_msg - 1);
    long_msg[sizeof long_msg - 1] = '\0';
    /* 255 ASCII bytes then a 2-byte 'é': a cut at 256 would split it, so it is left out whole. */
    char principal[300];
    memset(principal, 'p', 255);
    memcpy(principal + 255, "\xc3\xa9tail", 7);
    gl_log(GL_LOG_INFO, "long", "%s", long_msg);
    gl_log_request(&(gl_log_request_fields){.request_id = "r", .principal = principal, .method = "G\xff\x01T",
                                            .route = "/caf\xc3\xa9", .status = 200});
    json_t *lines = read_lines();
    ck_assert_uint_eq(json_array_size(lines), 2);
    ck_assert_uint_eq(strlen(str_field(json_array_get(lines, 0), "msg")), GL_LOG_MSG_MAX);
    json_t *req = json_array_get(lines, 1);
    const char *p = str_field(req, "principal");
    ck_assert_uint_eq(strlen(p), 255);
    ck_assert_int_eq(p[254], 'p');
    ck_assert_str_eq(str_field(req, "method"), "G??T"); /* not UTF-8: printable ASCII kept, the rest '?' */
    ck_assert_str_eq(str_field(req, "route"), "/caf\xc3\xa9"); /* valid UTF-8 untouched */
    json_decref(lines);
}
END_TEST

START_TEST(test_time_format) {
    char t[32];
    gl_log_format_time(0, t);
    ck_assert_str_eq(t, "1970-01-01T00:00:00.000Z");
    gl_log_format_time(INT64_C(1700000000123), t);
    ck_assert_str_eq(t, "2023-11-14T22:13:20.123Z");
    gl_log_format_time(INT64_C(253402300799999), t);
    ck_assert_str_eq(t, "9999-12-31T23:59:59.999Z");
    gl_log_format_time(INT64_C(253402300800000), t); /* year 10000 */
    ck_assert_str_eq(t, "");
    gl_log_format_time(-1, t);
    ck_assert_str_eq(t, "");
}
END_TEST

/* ---- four threads, one file: lines must never interleave ---- */

static void *writer(void *arg) {
    const int id = *(const int *)arg;
    char filler[900]; /* long lines make a torn write likely if the lock were missing */
    memset(filler, 'a' + id, sizeof filler - 1);
    filler[sizeof filler - 1] = '\0';
    for (int i = 0; i < THREAD_LINES; i++) {
        if (i % 2) {
            gl_log_json(GL_LOG_INFO, "tick", json_pack("{s:i,s:i}", "thread", id, "seq", i), "%s", filler);
        } else {
            char rid[33];
            char seq[32];
            snprintf(seq, sizeof seq, "%d/%d", id, i);
            if (!gl_request_id(rid)) return (void *)1;
            gl_log_request(&(gl_log_request_fields){.request_id = rid, .principal = seq, .method = "GET",
                                                    .route = filler, .status = 200, .duration_us = (uint64_t)i});
        }
    }
    return NULL;
}

static void count_thread(int seen[THREADS], int id) {
    bool valid = id >= 0 && id < THREADS;
    ck_assert_msg(valid, "line from an unknown thread %d", id);
    if (valid) seen[id]++;
}

START_TEST(test_threads_do_not_interleave) {
    pthread_t t[THREADS];
    int ids[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ids[i] = i;
        ck_assert_int_eq(pthread_create(&t[i], NULL, writer, &ids[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        void *res = NULL;
        pthread_join(t[i], &res);
        ck_assert_ptr_null(res);
    }
    json_t *lines = read_lines(); /* fails on any torn or merged line */
    ck_assert_uint_eq(json_array_size(lines), (size_t)THREADS * THREAD_LINES);
    int seen[THREADS] = {0};
    size_t i;
    json_t *obj;
    json_array_foreach(lines, i, obj) {
        const json_t *thread = json_object_get(obj, "thread");
        if (thread) {
            ck_assert_uint_eq(strlen(str_field(obj, "msg")), 899);
            count_thread(seen, (int)json_integer_value(thread));
        } else {
            ck_assert_uint_eq(strlen(str_field(obj, "route")), GL_LOG_FIELD_MAX);
            count_thread(seen, str_field(obj, "principal")[0] - '0');
        }
    }
    for (int k = 0; k < THREADS; k++) ck_assert_int_eq(seen[k], THREAD_LINES);
    json_decref(lines);
}
END_TEST

/* ---- trace context ---- */

START_TEST(test_traceparent_parse_valid) {
    char trace[33], parent[17];
    uint8_t flags = 0xAA;
    ck_assert(gl_traceparent_parse(SPEC_EXAMPLE, trace, parent, &flags));
    ck_assert_str_eq(trace, "4bf92f3577b34da6a3ce929d0e0e4736");
    ck_assert_str_eq(parent, "00f067aa0ba902b7");
    ck_assert_uint_eq(flags, 0x01);
    ck_assert(gl_traceparent_parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", trace, parent, &flags));
    ck_assert_uint_eq(flags, 0x00);
    ck_assert(gl_traceparent_parse("00-00000000000000000000000000000001-0000000000000001-ff", trace, parent, &flags));
    ck_assert_uint_eq(flags, 0xff);
}
END_TEST

START_TEST(test_traceparent_parse_invalid) {
    static const char *const bad[] = {
        "",
        "00",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",   /* 54 bytes */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011", /* 56 bytes */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ", /* trailing space */
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", /* leading space */
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* unknown version */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* forbidden version */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  /* uppercase trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",  /* uppercase parent id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",  /* uppercase flags */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  /* zero trace id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  /* zero parent id */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* separators */
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", /* not hex */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
    };
    char trace[33], parent[17];
    uint8_t flags;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!gl_traceparent_parse(bad[i], trace, parent, &flags), "accepted: \"%s\"", bad[i]);
    ck_assert(!gl_traceparent_parse(NULL, trace, parent, &flags));
    ck_assert(!gl_traceparent_parse(SPEC_EXAMPLE, NULL, parent, &flags));
}
END_TEST

START_TEST(test_traceparent_child) {
    char out[56], out2[56], trace[33], parent[17];
    uint8_t flags = 0;
    ck_assert(gl_traceparent_child("4bf92f3577b34da6a3ce929d0e0e4736", 0x01, out));
    ck_assert_uint_eq(strlen(out), GL_TRACEPARENT_LEN);
    ck_assert(gl_traceparent_parse(out, trace, parent, &flags));
    ck_assert_str_eq(trace, "4bf92f3577b34da6a3ce929d0e0e4736");
    ck_assert(is_lower_hex(parent, 16));
    ck_assert_uint_eq(flags, 0x01);
    ck_assert(gl_traceparent_child("4bf92f3577b34da6a3ce929d0e0e4736", 0xa5, out2));
    ck_assert_str_ne(out, out2); /* a fresh span id each time (2^-64 to collide) */
    ck_assert_str_eq(out2 + 53, "a5");

    ck_assert(!gl_traceparent_child("00000000000000000000000000000000", 1, out));
    ck_assert_str_eq(out, "");
    ck_assert(!gl_traceparent_child("4BF92F3577B34DA6A3CE929D0E0E4736", 1, out));
    char short_id[33] = "4bf92f3577b34da6a3ce929d0e0e473"; /* 31 digits */
    ck_assert(!gl_traceparent_child(short_id, 1, out));
    ck_assert(!gl_traceparent_child(NULL, 1, out));

    ck_assert(gl_traceparent_new(0x01, out));
    ck_assert(gl_traceparent_parse(out, trace, parent, &flags));
    ck_assert(gl_traceparent_new(0x01, out2));
    ck_assert_int_ne(memcmp(out + 3, out2 + 3, 32), 0);
}
END_TEST

START_TEST(test_request_id) {
    char a[33], b[33];
    ck_assert(gl_request_id(a));
    ck_assert(gl_request_id(b));
    ck_assert(is_lower_hex(a, 32));
    ck_assert(is_lower_hex(b, 32));
    ck_assert_str_ne(a, b);
}
END_TEST

static Suite *log_suite(void) {
    Suite *s = suite_create("log");
    TCase *lines = tcase_create("lines");
    tcase_add_checked_fixture(lines, setup, teardown);
    tcase_add_test(lines, test_levels);
    tcase_add_test(lines, test_request_line);
    tcase_add_test(lines, test_request_line_optional_fields);
    tcase_add_test(lines, test_event_lines);
    tcase_add_test(lines, test_bounds_and_sanitizing);
    tcase_add_test(lines, test_time_format);
    suite_add_tcase(s, lines);

    TCase *threads = tcase_create("threads");
    tcase_add_checked_fixture(threads, setup, teardown);
    tcase_set_timeout(threads, 60);
    tcase_add_test(threads, test_threads_do_not_interleave);
    suite_add_tcase(s, threads);

    TCase *trace = tcase_create("trace");
    tcase_add_test(trace, test_traceparent_parse_valid);
    tcase_add_test(trace, test_traceparent_parse_invalid);
    tcase_add_test(trace, test_traceparent_child);
    tcase_add_test(trace, test_request_id);
    suite_add_tcase(s, trace);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(log_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
