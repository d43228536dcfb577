/*
 * test_stream.c — unit tests for the `redis` group of ledger.conf
 * (api/stream.c: gl_stream_config_load) and for the text other modules add
 * to /metrics (api/metrics.c: gl_metrics_add_extra). No Redis, no database:
 * tests/streams.sh runs the publisher itself.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../api/metrics.h"
#include "../../api/stream.h"

static char g_dir[64];

static void setup(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/gl-test-stream.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(g_dir));
}

static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* Writes `text` to g_dir/name with `mode`; returns the path (static buffer per name slot). */
static const char *write_file(const char *name, const char *text, mode_t mode) {
    static char paths[2][128];
    char *path = paths[strcmp(name, "ledger.conf") == 0 ? 0 : 1];
    snprintf(path, 128, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    ck_assert_int_eq(chmod(path, mode), 0);
    return path;
}

static bool load(const char *conf, gl_stream_config *c, gl_error *err) {
    return gl_stream_config_load(write_file("ledger.conf", conf, 0644), c, err);
}

START_TEST(test_no_group_is_disabled) {
    gl_stream_config c;
    gl_error err;
    ck_assert(load("ledgerd = { port = 1; };\n", &c, &err));
    ck_assert(!c.enabled);
}
END_TEST

START_TEST(test_defaults) {
    gl_stream_config c;
    gl_error err;
    ck_assert(load("redis = { port = 6390; };\n", &c, &err));
    ck_assert(c.enabled);
    ck_assert_str_eq(c.host, "127.0.0.1");
    ck_assert_int_eq(c.port, 6390);
    ck_assert_str_eq(c.key_prefix, "geoledger:events:");
    ck_assert_int_eq(c.stream_maxlen, 1000000);
    ck_assert_int_eq(c.batch, 500);
    ck_assert_str_eq(c.password, "");
}
END_TEST

START_TEST(test_out_of_range_is_refused) {
    static const struct {
        const char *conf, *message;
    } cases[] = {
        {"redis = { port = 0; };\n", "redis: port must be 1..65535"},
        {"redis = { batch = 1001; };\n", "redis: batch must be 1..1000"},
        {"redis = { stream_maxlen = 0; };\n", "redis: stream_maxlen must be 1..1000000000"},
        {"redis = { poll_ms = 1; };\n", "redis: poll_ms must be 10..60000"},
        {"redis = { key_prefix = \"\"; };\n", "redis: key_prefix must be 1..127 characters"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gl_stream_config c;
        gl_error err;
        ck_assert_msg(!load(cases[i].conf, &c, &err), "accepted: %s", cases[i].conf);
        ck_assert_int_eq(err.kind, GL_ERR_CONFIG);
        ck_assert_str_eq(err.message, cases[i].message);
        ck_assert(!c.enabled);
    }
}
END_TEST

START_TEST(test_password_file) {
    gl_stream_config c;
    gl_error err;
    char conf[512];
    const char *pass = write_file("redis.pass", "s3cret\n", 0600);
    snprintf(conf, sizeof conf, "redis = { password_file = \"%s\"; };\n", pass);
    ck_assert_msg(load(conf, &c, &err), "%s", err.message);
    ck_assert_str_eq(c.password, "s3cret"); /* the first line, without its newline */

    write_file("redis.pass", "s3cret\n", 0640);
    ck_assert(!load(conf, &c, &err));
    ck_assert_msg(strstr(err.message, "may be read by group or others") != NULL, "%s", err.message);

    write_file("redis.pass", "\n", 0600);
    ck_assert(!load(conf, &c, &err));
    ck_assert_msg(strstr(err.message, "is empty") != NULL, "%s", err.message);

    snprintf(conf, sizeof conf, "redis = { password_file = \"%s/none\"; };\n", g_dir);
    ck_assert(!load(conf, &c, &err));
    ck_assert_msg(strstr(err.message, "cannot be read") != NULL, "%s", err.message);
}
END_TEST

static char *extra_text(void *ctx) { return strdup((const char *)ctx); }

START_TEST(test_metrics_extra_is_appended) {
    gl_metrics *m = gl_metrics_new();
    ck_assert_ptr_nonnull(m);
    ck_assert(gl_metrics_add_extra(m, extra_text, "# TYPE geoledger_x gauge\ngeoledger_x 1\n"));
    char *text = gl_metrics_render(m);
    ck_assert_ptr_nonnull(text);
    size_t len = strlen(text), tail = strlen("geoledger_x 1\n");
    ck_assert(len > tail && strcmp(text + len - tail, "geoledger_x 1\n") == 0); /* after the fixed families */
    free(text);
    for (int i = 1; i < GL_METRICS_EXTRA_MAX; i++) ck_assert(gl_metrics_add_extra(m, extra_text, ""));
    ck_assert(!gl_metrics_add_extra(m, extra_text, "")); /* a limit on everything */
    gl_metrics_free(m);
}
END_TEST

static Suite *stream_suite(void) {
    Suite *s = suite_create("stream");
    TCase *config = tcase_create("config");
    tcase_add_checked_fixture(config, setup, teardown);
    tcase_add_test(config, test_no_group_is_disabled);
    tcase_add_test(config, test_defaults);
    tcase_add_test(config, test_out_of_range_is_refused);
    tcase_add_test(config, test_password_file);
    suite_add_tcase(s, config);
    TCase *metrics = tcase_create("metrics");
    tcase_add_test(metrics, test_metrics_extra_is_appended);
    suite_add_tcase(s, metrics);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(stream_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
