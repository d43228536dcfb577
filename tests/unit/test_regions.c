/*
 * test_regions.c — ledger.conf loading and validation, region lookup and
 * id routing. No database: connections are covered by integration tests.
 *
 * Every error case asserts on the message and on the file:line it names,
 * because a message without a location is the bug we are guarding against.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "../../regions/regions.h"
#include "unit.h"

#ifndef GL_SQL_DIR
#define GL_SQL_DIR "sql"
#endif

static char tmp_dir[] = "/tmp/gl_test_regions.XXXXXX";

/* Writes `content` to tmp_dir/name; returns the path in a static buffer. */
static const char *write_conf(const char *name, const char *content) {
    static char path[512];
    int n = snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    ck_assert(n > 0 && (size_t)n < sizeof path);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(fputs(content, f), 0);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

/* A heap string of `len` copies of `c`. */
static char *repeat(char c, size_t len) {
    char *s = malloc(len + 1);
    ck_assert_ptr_nonnull(s);
    memset(s, c, len);
    s[len] = '\0';
    return s;
}

/* Formats into a heap buffer (the content of the long-string cases). */
static char *format_conf(const char *fmt, const char *arg) {
    size_t size = strlen(fmt) + strlen(arg) + 1;
    char *s = malloc(size);
    ck_assert_ptr_nonnull(s);
    int n = snprintf(s, size, fmt, arg);
    ck_assert(n > 0 && (size_t)n < size);
    return s;
}

/* Loads `content`; asserts failure with `want` in the message and `line` (0: none) as file:line. */
static gl_error expect_error(const char *content, const char *want, int line) {
    gl_config cfg;
    gl_error err;
    gl_error_clear(&err);
    const char *path = write_conf("bad.conf", content);
    ck_assert_msg(!gl_config_load(path, &cfg, &err), "loaded, expected \"%s\"", want);
    ck_assert_int_eq(err.kind, GL_ERR_CONFIG);
    ck_assert_msg(strstr(err.message, want), "message \"%s\" lacks \"%s\"", err.message, want);
    ck_assert_msg(strstr(err.message, path), "message \"%s\" lacks the path", err.message);
    if (line > 0) {
        char where[32];
        snprintf(where, sizeof where, ":%d:", line);
        ck_assert_msg(strstr(err.message, where), "message \"%s\" lacks line %d", err.message, line);
    }
    /* A failed load leaves nothing behind: no regions, nothing to free. */
    ck_assert_int_eq(cfg.n_regions, 0);
    ck_assert_ptr_null(cfg.regions);
    return err;
}

/* ------------------------------------------------------------ valid files */

static const char valid_conf[] =
    "# three regions, every option exercised somewhere\n"
    "regions = (\n"
    "  {\n"
    "    name = \"eu\";\n"
    "    code = 1;\n"
    "    conninfo = \"host=/run/pg port=5441 dbname=geoledger user=geoledger_service\";\n"
    "    admin_conninfo = \"host=/run/pg port=5441 dbname=geoledger user=postgres\";\n"
    "    recon_conninfo = \"host=/run/pg port=5441 dbname=geoledger user=eu_recon\";\n"
    "    report_conninfo = \"host=/run/pg port=5441 dbname=geoledger user=eu_report\";\n"
    "    replicas = ( \"host=r1 port=5441 dbname=geoledger\", \"host=r2 port=5441 dbname=geoledger\" );\n"
    "    large_transaction_threshold = 1000000;\n"
    "  },\n"
    "  { name = \"us-east_1\"; code = 255; conninfo = \"host=us dbname=geoledger user=svc\"; },\n"
    "  {\n"
    "    name = \"ap\";\n"
    "    code = 0x10;\n"
    "    conninfo = \"postgresql://svc@ap:5443/geoledger?sslmode=disable\";\n"
    "    replicas = [ \"postgresql://ap-r1/geoledger\" ];\n"
    "    large_transaction_threshold = 5000000000L;\n"
    "  }\n"
    ");\n";

static void load_valid(gl_config *cfg) {
    gl_error err;
    gl_error_clear(&err);
    memset(cfg, 0xAB, sizeof *cfg); /* load must not depend on a zeroed struct */
    ck_assert_msg(gl_config_load(write_conf("valid.conf", valid_conf), cfg, &err), "%s (%s)",
                  err.message, err.detail);
    ck_assert_int_eq(err.kind, GL_ERR_NONE);
    ck_assert_int_eq(cfg->n_regions, 3);
}

START_TEST(test_valid_values) {
    gl_config cfg;
    load_valid(&cfg);
    const gl_region *eu = &cfg.regions[0];
    ck_assert_str_eq(eu->name, "eu");
    ck_assert_int_eq(eu->code, 1);
    ck_assert_str_eq(eu->conninfo, "host=/run/pg port=5441 dbname=geoledger user=geoledger_service");
    ck_assert_str_eq(eu->admin_conninfo, "host=/run/pg port=5441 dbname=geoledger user=postgres");
    ck_assert_str_eq(eu->recon_conninfo, "host=/run/pg port=5441 dbname=geoledger user=eu_recon");
    ck_assert_str_eq(eu->report_conninfo, "host=/run/pg port=5441 dbname=geoledger user=eu_report");
    ck_assert_int_eq(eu->n_replicas, 2);
    ck_assert_str_eq(eu->replicas[0], "host=r1 port=5441 dbname=geoledger");
    ck_assert_str_eq(eu->replicas[1], "host=r2 port=5441 dbname=geoledger");
    ck_assert_int_eq(eu->large_transaction_threshold, 1000000);

    const gl_region *ap = &cfg.regions[2];
    ck_assert_str_eq(ap->name, "ap");
    ck_assert_int_eq(ap->code, 16);
    ck_assert_int_eq(ap->n_replicas, 1);
    ck_assert_str_eq(ap->replicas[0], "postgresql://ap-r1/geoledger");
    ck_assert_int_eq(ap->large_transaction_threshold, 5000000000LL);
    gl_config_free(&cfg);
}
END_TEST

START_TEST(test_timeouts_defaults_and_overrides) {
    const char *path = write_conf("timeouts.conf",
                                  "regions = (\n"
                                  "  { name = \"eu\"; code = 1; conninfo = \"host=a\"; },\n"
                                  "  { name = \"us\"; code = 2; conninfo = \"host=b\";\n"
                                  "    timeouts = { connect_s = 5; statement_ms = 0; request_ms = 750;\n"
                                  "                 tcp_user_timeout_ms = 30000; keepalives_count = 9; }; }\n"
                                  ");\n");
    gl_config cfg;
    gl_error err;
    ck_assert_msg(gl_config_load(path, &cfg, &err), "%s", err.message);
    const gl_region_timeouts *eu = &cfg.regions[0].timeouts, *us = &cfg.regions[1].timeouts;
    gl_region_timeouts def = GL_TIMEOUTS_DEFAULT;
    ck_assert_int_eq(eu->connect_s, 2);
    ck_assert_int_eq(eu->request_ms, 2000);
    ck_assert_int_eq(memcmp(eu, &def, sizeof def), 0);
    ck_assert_int_eq(us->connect_s, 5);
    ck_assert_int_eq(us->statement_ms, 0);
    ck_assert_int_eq(us->request_ms, 750);
    ck_assert_int_eq(us->tcp_user_timeout_ms, 30000);
    ck_assert_int_eq(us->keepalives_count, 9);
    ck_assert_int_eq(us->lock_ms, def.lock_ms); /* not set: the default */
    gl_config_free(&cfg);
}
END_TEST

START_TEST(test_valid_defaults) {
    gl_config cfg;
    load_valid(&cfg);
    const gl_region *us = &cfg.regions[1];
    ck_assert_str_eq(us->name, "us-east_1");
    ck_assert_int_eq(us->code, 255);
    ck_assert_str_eq(us->admin_conninfo, us->conninfo);
    ck_assert_str_eq(us->recon_conninfo, "host=us dbname=geoledger user=svc user=geoledger_recon");
    ck_assert_str_eq(us->report_conninfo, "host=us dbname=geoledger user=svc user=geoledger_report");
    ck_assert_int_eq(us->n_replicas, 0);
    ck_assert_int_eq(us->large_transaction_threshold, 0);
    /* A URI takes the role's user as a query parameter, not as " user=". */
    const gl_region *ap = &cfg.regions[2];
    ck_assert_str_eq(ap->recon_conninfo,
                     "postgresql://svc@ap:5443/geoledger?sslmode=disable&user=geoledger_recon");
    ck_assert_str_eq(cfg.migrations_dir, GL_SQL_DIR);
    gl_config_free(&cfg);
}
END_TEST

/* The user libpq would actually connect as. */
static void assert_conninfo_user(const char *conninfo, const char *want) {
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &why);
    ck_assert_msg(opts, "%s: %s", conninfo, why ? why : "?");
    const char *user = NULL;
    for (const PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "user") == 0) user = o->val;
    ck_assert_ptr_nonnull(user);
    ck_assert_str_eq(user, want);
    PQconninfoFree(opts);
}

/* The derived defaults rely on libpq keeping the last user=; prove it. */
START_TEST(test_derived_conninfo_user_wins) {
    gl_config cfg;
    load_valid(&cfg);
    assert_conninfo_user(cfg.regions[1].recon_conninfo, "geoledger_recon");
    assert_conninfo_user(cfg.regions[1].report_conninfo, "geoledger_report");
    assert_conninfo_user(cfg.regions[2].recon_conninfo, "geoledger_recon");
    assert_conninfo_user(cfg.regions[2].report_conninfo, "geoledger_report");
    gl_config_free(&cfg);
}
END_TEST

START_TEST(test_uri_without_query) {
    gl_config cfg;
    gl_error err;
    const char *path = write_conf("uri.conf", "regions = ( { name = \"eu\"; code = 1;\n"
                                              "  conninfo = \"postgres://h/geoledger\"; } );\n");
    ck_assert_msg(gl_config_load(path, &cfg, &err), "%s", err.message);
    ck_assert_str_eq(cfg.regions[0].report_conninfo, "postgres://h/geoledger?user=geoledger_report");
    assert_conninfo_user(cfg.regions[0].report_conninfo, "geoledger_report");
    gl_config_free(&cfg);
}
END_TEST

START_TEST(test_migrations_dir_and_shared_line) {
    gl_config cfg;
    gl_error err;
    /* Two regions on one line: the 32-bit literal guard must not confuse code = 1 with code = 2. */
    const char *path = write_conf("dir.conf",
                                  "regions = ( { name = \"a\"; code = 1; conninfo = \"host=a\"; },"
                                  " { name = \"b\"; code = 2; conninfo = \"host=b\"; } );\n"
                                  "migrations_dir = \"/opt/geoledger/sql\";\n"
                                  "api = { listen = \"127.0.0.1:8080\"; };  # other modules' keys\n");
    ck_assert_msg(gl_config_load(path, &cfg, &err), "%s", err.message);
    ck_assert_int_eq(cfg.n_regions, 2);
    ck_assert_int_eq(cfg.regions[1].code, 2);
    ck_assert_str_eq(cfg.migrations_dir, "/opt/geoledger/sql");
    gl_config_free(&cfg);
}
END_TEST

/* ------------------------------------------------------------ error table */

#define REGION_START "regions = (\n  {\n    name = \"eu\";\n    code = 1;\n"
#define REGION_END "  }\n);\n"
#define CONNINFO "    conninfo = \"host=a dbname=geoledger\";\n"

typedef struct {
    const char *content;
    const char *want; /* substring of err.message */
    int line;         /* expected in the message as :line:, 0 for none */
} error_case;

static const error_case error_cases[] = {
    /* timeouts */
    {"regions = (\n  { name = \"eu\"; code = 1; conninfo = \"host=a\";\n    timeouts = 5; }\n);\n",
     "timeouts must be a group", 3},
    {"regions = (\n  { name = \"eu\"; code = 1; conninfo = \"host=a\";\n    timeouts = { connect = 2; }; }\n);\n",
     "unknown setting \"connect\" in timeouts", 3},
    {"regions = (\n  { name = \"eu\"; code = 1; conninfo = \"host=a\";\n    timeouts = { connect_s = 1; }; }\n);\n",
     "timeouts.connect_s must be 2..60, got 1", 3},
    {"regions = (\n  { name = \"eu\"; code = 1; conninfo = \"host=a\";\n    timeouts = { request_ms = 50; }; }\n);\n",
     "timeouts.request_ms must be 100..600000, got 50", 3},
    {"regions = (\n  { name = \"eu\"; code = 1; conninfo = \"host=a\";\n    timeouts = { lock_ms = \"1s\"; }; }\n);\n",
     "lock_ms must be an integer", 3},
    /* syntax */
    {"regions = (\n  { name = \"eu\"; code == 1; }\n);\n", "syntax error", 2},
    /* the regions list */
    {"migrations_dir = \"sql\";\n", "no regions configured", 0},
    {"# none yet\nregions = ();\n", "no regions configured", 2},
    {"regions = { name = \"eu\"; };\n", "regions must be a list", 1},
    {"regions = (\n  \"eu\" );\n", "must be a group", 2},
    /* name */
    {"regions = (\n  { code = 1; conninfo = \"host=a\"; }\n);\n", "region has no name", 2},
    {"regions = (\n  { name = \"EU\"; code = 1; conninfo = \"host=a\"; }\n);\n",
     "region name \"EU\" is invalid", 2},
    {"regions = (\n\n  { name = \"abcdefghijklmnopq\"; code = 1; conninfo = \"host=a\"; }\n);\n",
     "region name \"abcdefghijklmnopq\" is invalid", 3},
    {"regions = (\n  { name = \"\"; code = 1; conninfo = \"host=a\"; }\n);\n", "is invalid", 2},
    {"regions = (\n  { name = \"e u\"; code = 1; conninfo = \"host=a\"; }\n);\n", "is invalid", 2},
    {"regions = (\n  { name = 1; code = 1; conninfo = \"host=a\"; }\n);\n", "name must be a string", 2},
    {"regions = (\n  { name = \"eu\"; code = 1; conninfo = \"host=a\"; },\n"
     "  { name = \"eu\"; code = 2; conninfo = \"host=b\"; }\n);\n",
     "region name \"eu\" is used twice", 3},
    /* code */
    {"regions = (\n  { name = \"eu\";\n    conninfo = \"host=a\"; }\n);\n", "region \"eu\" has no code", 2},
    {"regions = (\n  { name = \"eu\"; code = 0; conninfo = \"host=a\"; }\n);\n",
     "region code 0 is out of range (1..255)", 2},
    {"regions = (\n  { name = \"eu\";\n code = 256; conninfo = \"host=a\"; }\n);\n",
     "region code 256 is out of range", 3},
    {"regions = (\n  { name = \"eu\"; code = -1; conninfo = \"host=a\"; }\n);\n", "out of range", 2},
    {"regions = (\n  { name = \"eu\"; code = \"1\"; conninfo = \"host=a\"; }\n);\n",
     "code must be an integer", 2},
    {"regions = (\n  { name = \"eu\"; code = 1.0; conninfo = \"host=a\"; }\n);\n",
     "code must be an integer", 2},
    {"regions = (\n  { name = \"eu\"; code = 7; conninfo = \"host=a\"; },\n\n"
     "  { name = \"us\"; code = 7; conninfo = \"host=b\"; }\n);\n",
     "region code 7 is used twice", 4},
    /* libconfig 1.5 would wrap this to 1 without a word */
    {"regions = (\n  { name = \"eu\"; code = 4294967297; conninfo = \"host=a\"; }\n);\n",
     "code does not fit in 32 bits", 2},
    /* conninfo */
    {"regions = (\n  { name = \"eu\"; code = 1; }\n);\n", "region \"eu\" has no conninfo", 2},
    {REGION_START "    conninfo = \"\";\n" REGION_END, "conninfo is empty", 5},
    {REGION_START "    conninfo = \"host\";\n" REGION_END, "conninfo is not a valid libpq connection string", 5},
    {REGION_START "    conninfo = \"host=a bogus=1\";\n" REGION_END, "not a valid libpq connection string", 5},
    {REGION_START "    conninfo = 5432;\n" REGION_END, "conninfo must be a string", 5},
    {REGION_START CONNINFO "    admin_conninfo = \"\";\n" REGION_END, "admin_conninfo is empty", 6},
    {REGION_START CONNINFO "    recon_conninfo = 1;\n" REGION_END, "recon_conninfo must be a string", 6},
    {REGION_START CONNINFO "    report_conninfo = \"port=\'x\";\n" REGION_END,
     "report_conninfo is not a valid libpq connection string", 6},
    /* replicas */
    {REGION_START CONNINFO "    replicas = \"host=r\";\n" REGION_END, "replicas must be a list", 6},
    {REGION_START CONNINFO "    replicas = ( 1 );\n" REGION_END, "replica 1 must be a conninfo string", 6},
    {REGION_START CONNINFO "    replicas = ( \"host=r\",\n  \"\" );\n" REGION_END, "replica 2 is empty", 7},
    {REGION_START CONNINFO "    replicas = ( \"host=r\", \"nonsense\" );\n" REGION_END,
     "replica conninfo is not a valid libpq connection string", 6},
    {REGION_START CONNINFO
     "    replicas = ( \"host=1\", \"host=2\", \"host=3\", \"host=4\", \"host=5\",\n"
     "                 \"host=6\", \"host=7\", \"host=8\", \"host=9\" );\n" REGION_END,
     "too many replicas (9, at most 8)", 6},
    /* large_transaction_threshold */
    {REGION_START CONNINFO "    large_transaction_threshold = -1;\n" REGION_END,
     "large_transaction_threshold must be >= 0", 6},
    {REGION_START CONNINFO "    large_transaction_threshold = \"100\";\n" REGION_END,
     "large_transaction_threshold must be an integer", 6},
    {REGION_START CONNINFO "    large_transaction_threshold = 5000000000;\n" REGION_END,
     "large_transaction_threshold does not fit in 32 bits", 6},
    /* typos */
    {REGION_START "    conninf = \"host=a\";\n" REGION_END, "unknown setting \"conninf\" in region", 5},
    {REGION_START CONNINFO "\n    large_transaction_treshold = 5;\n" REGION_END,
     "unknown setting \"large_transaction_treshold\"", 7},
    {REGION_START CONNINFO "    extra = { a = 1; };\n" REGION_END, "unknown setting \"extra\"", 6},
    /* migrations_dir */
    {REGION_START CONNINFO REGION_END "migrations_dir = \"\";\n", "migrations_dir is empty", 8},
    {REGION_START CONNINFO REGION_END "\nmigrations_dir = 1;\n", "migrations_dir must be a string", 9},
};

START_TEST(test_error_table) {
    const error_case *c = &error_cases[_i];
    expect_error(c->content, c->want, c->line);
}
END_TEST

/* ------------------------------------------------ errors with more to check */

START_TEST(test_error_hints_and_details) {
    gl_error err = expect_error(REGION_START "    conninf = \"host=a\";\n" REGION_END, "conninf", 5);
    ck_assert_ptr_nonnull(strstr(err.hint, "conninfo"));

    err = expect_error("regions = (\n  { name = \"eu\"; code = 1; conninfo = \"host=a\"; },\n"
                       "  { name = \"eu\"; code = 2; conninfo = \"host=b\"; }\n);\n",
                       "used twice", 3);
    ck_assert_ptr_nonnull(strstr(err.detail, "first defined at"));
    ck_assert_ptr_nonnull(strstr(err.detail, ":2"));

    err = expect_error(REGION_START "    conninfo = \"host\";\n" REGION_END, "not a valid", 5);
    ck_assert_msg(strstr(err.detail, "missing \"=\""), "detail: %s", err.detail);
    ck_assert_ptr_null(strchr(err.detail, '\n'));

    err = expect_error(REGION_START CONNINFO "    large_transaction_threshold = 5000000000;\n" REGION_END,
                       "32 bits", 6);
    ck_assert_ptr_nonnull(strstr(err.hint, "5000000000L"));
}
END_TEST

START_TEST(test_code_missing_multiline) {
    /* The region group starts on line 2; that is where a missing key is reported. */
    expect_error("regions = (\n  {\n    name = \"eu\";\n" CONNINFO "  }\n);\n", "has no code", 2);
}
END_TEST

START_TEST(test_missing_file) {
    gl_config cfg;
    gl_error err;
    char path[600];
    snprintf(path, sizeof path, "%s/does-not-exist.conf", tmp_dir);
    ck_assert(!gl_config_load(path, &cfg, &err));
    ck_assert_int_eq(err.kind, GL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.message, "cannot read configuration file"));
    ck_assert_ptr_nonnull(strstr(err.message, path));
    ck_assert_str_eq(err.detail, "No such file or directory");
    ck_assert_int_eq(cfg.n_regions, 0);
}
END_TEST

START_TEST(test_null_err_is_fine) {
    gl_config cfg;
    ck_assert(!gl_config_load(write_conf("null.conf", "regions = ();\n"), &cfg, NULL));
    ck_assert_ptr_null(cfg.regions);
}
END_TEST

START_TEST(test_conninfo_too_long) {
    char *big = repeat('x', GL_CONNINFO_MAX - 5); /* "host=" + this = GL_CONNINFO_MAX bytes */
    char *conf = format_conf(REGION_START "    conninfo = \"host=%s\";\n" REGION_END, big);
    expect_error(conf, "conninfo is too long (1024 bytes, at most 1023)", 5);
    free(conf);
    free(big);
}
END_TEST

START_TEST(test_conninfo_too_long_to_derive) {
    /* Fits on its own, but not with " user=geoledger_recon" appended: refuse, never cut. */
    char *big = repeat('x', GL_CONNINFO_MAX - 20);
    char *conf = format_conf(REGION_START "    conninfo = \"host=%s\";\n" REGION_END, big);
    gl_error err = expect_error(conf, "conninfo is too long to derive recon_conninfo", 5);
    ck_assert_ptr_nonnull(strstr(err.hint, "set recon_conninfo explicitly"));
    free(conf);
    free(big);
}
END_TEST

START_TEST(test_admin_and_replica_too_long) {
    char *big = repeat('y', GL_CONNINFO_MAX);
    char *conf = format_conf(REGION_START CONNINFO "    admin_conninfo = \"%s\";\n" REGION_END, big);
    expect_error(conf, "admin_conninfo is too long", 6);
    free(conf);
    conf = format_conf(REGION_START CONNINFO "    replicas = ( \"host=r\",\n \"%s\" );\n" REGION_END, big);
    expect_error(conf, "replica conninfo is too long", 7);
    free(conf);
    free(big);
}
END_TEST

START_TEST(test_migrations_dir_too_long) {
    gl_config probe;
    char *big = repeat('d', sizeof probe.migrations_dir);
    char *conf = format_conf(REGION_START CONNINFO REGION_END "migrations_dir = \"%s\";\n", big);
    expect_error(conf, "migrations_dir is too long (4096 bytes, at most 4095)", 8);
    free(conf);
    free(big);
}
END_TEST

START_TEST(test_too_many_regions) {
    size_t size = (size_t)64 * (GL_REGIONS_MAX + 2);
    char *conf = malloc(size);
    ck_assert_ptr_nonnull(conf);
    size_t used = (size_t)snprintf(conf, size, "regions = (\n");
    for (int i = 0; i <= GL_REGIONS_MAX; i++)
        used += (size_t)snprintf(conf + used, size - used, "%s{ name = \"r%d\"; code = %d; conninfo = \"host=a\"; }\n",
                                 i ? "," : "", i, i % 255 + 1);
    ck_assert_uint_lt(used + 4, size);
    snprintf(conf + used, size - used, ");\n");
    expect_error(conf, "too many regions (256, at most 255)", 1);
    free(conf);
}
END_TEST

/* ----------------------------------------------------------------- lookup */

START_TEST(test_lookup_by_name_and_code) {
    gl_config cfg;
    load_valid(&cfg);
    ck_assert_ptr_eq(gl_region_by_name(&cfg, "eu"), &cfg.regions[0]);
    ck_assert_ptr_eq(gl_region_by_name(&cfg, "us-east_1"), &cfg.regions[1]);
    ck_assert_ptr_eq(gl_region_by_name(&cfg, "ap"), &cfg.regions[2]);
    ck_assert_ptr_null(gl_region_by_name(&cfg, "EU"));
    ck_assert_ptr_null(gl_region_by_name(&cfg, ""));
    ck_assert_ptr_null(gl_region_by_name(&cfg, NULL));
    ck_assert_ptr_eq(gl_region_by_code(&cfg, 1), &cfg.regions[0]);
    ck_assert_ptr_eq(gl_region_by_code(&cfg, 255), &cfg.regions[1]);
    ck_assert_ptr_eq(gl_region_by_code(&cfg, 16), &cfg.regions[2]);
    ck_assert_ptr_null(gl_region_by_code(&cfg, 0));
    ck_assert_ptr_null(gl_region_by_code(&cfg, 2));
    gl_config_free(&cfg);
}
END_TEST

START_TEST(test_lookup_by_id) {
    gl_config cfg;
    gl_error err;
    load_valid(&cfg);
    for (int i = 0; i < cfg.n_regions; i++) {
        gl_id id;
        ck_assert(gl_id_new(cfg.regions[i].code, &id, &err));
        ck_assert_ptr_eq(gl_region_of_id(&cfg, &id), &cfg.regions[i]);
    }
    gl_id stranger;
    ck_assert(gl_id_new(77, &stranger, &err)); /* a well-formed id of a region we do not serve */
    ck_assert_ptr_null(gl_region_of_id(&cfg, &stranger));

    gl_id nil = {{0}};
    ck_assert_ptr_null(gl_region_of_id(&cfg, &nil));
    /* A UUIDv4 whose byte 9 happens to be 1 is not ours: no routing by accident. */
    gl_id v4;
    ck_assert(gl_id_parse("6f1c2a3b-4d5e-4f60-8a01-0b1c2d3e4f50", &v4));
    ck_assert_int_eq(v4.b[9], 1);
    ck_assert_ptr_null(gl_region_of_id(&cfg, &v4));
    gl_config_free(&cfg);
}
END_TEST

/* ----------------------------------------------------- default path, free */

START_TEST(test_default_path) {
    ck_assert_int_eq(unsetenv("GEOLEDGER_CONFIG"), 0);
    ck_assert_str_eq(gl_config_default_path(NULL), "ledger.conf");
    ck_assert_str_eq(gl_config_default_path("/etc/gl.conf"), "/etc/gl.conf");

    ck_assert_int_eq(setenv("GEOLEDGER_CONFIG", "/srv/env.conf", 1), 0);
    ck_assert_str_eq(gl_config_default_path(NULL), "/srv/env.conf");
    ck_assert_str_eq(gl_config_default_path(""), "/srv/env.conf");
    ck_assert_str_eq(gl_config_default_path("/etc/gl.conf"), "/etc/gl.conf"); /* the flag wins */

    ck_assert_int_eq(setenv("GEOLEDGER_CONFIG", "", 1), 0);
    ck_assert_str_eq(gl_config_default_path(NULL), "ledger.conf");
    ck_assert_int_eq(unsetenv("GEOLEDGER_CONFIG"), 0);
}
END_TEST

START_TEST(test_free_zeroed_and_twice) {
    gl_config cfg;
    memset(&cfg, 0, sizeof cfg);
    gl_config_free(&cfg);
    gl_config_free(&cfg);
    gl_config_free(NULL);
    ck_assert_int_eq(cfg.n_regions, 0);

    load_valid(&cfg);
    gl_config_free(&cfg);
    ck_assert_ptr_null(cfg.regions);
    ck_assert_int_eq(cfg.n_regions, 0);
    gl_config_free(&cfg); /* freeing again is harmless */
}
END_TEST

/* ------------------------------------------------------------------- main */

static Suite *regions_suite(void) {
    Suite *s = suite_create("regions");
    TCase *load = tcase_create("load");
    tcase_add_test(load, test_valid_values);
    tcase_add_test(load, test_valid_defaults);
    tcase_add_test(load, test_timeouts_defaults_and_overrides);
    tcase_add_test(load, test_derived_conninfo_user_wins);
    tcase_add_test(load, test_uri_without_query);
    tcase_add_test(load, test_migrations_dir_and_shared_line);
    suite_add_tcase(s, load);

    TCase *errors = tcase_create("errors");
    tcase_add_loop_test(errors, test_error_table, 0, (int)(sizeof error_cases / sizeof error_cases[0]));
    tcase_add_test(errors, test_error_hints_and_details);
    tcase_add_test(errors, test_code_missing_multiline);
    tcase_add_test(errors, test_missing_file);
    tcase_add_test(errors, test_null_err_is_fine);
    tcase_add_test(errors, test_conninfo_too_long);
    tcase_add_test(errors, test_conninfo_too_long_to_derive);
    tcase_add_test(errors, test_admin_and_replica_too_long);
    tcase_add_test(errors, test_migrations_dir_too_long);
    tcase_add_test(errors, test_too_many_regions);
    suite_add_tcase(s, errors);

    TCase *lookup = tcase_create("lookup");
    tcase_add_test(lookup, test_lookup_by_name_and_code);
    tcase_add_test(lookup, test_lookup_by_id);
    tcase_add_test(lookup, test_default_path);
    tcase_add_test(lookup, test_free_zeroed_and_twice);
    suite_add_tcase(s, lookup);
    return s;
}


int main(void) {
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    int rc = unit_run(regions_suite());
    unit_remove_dir(tmp_dir);
    return rc;
}
