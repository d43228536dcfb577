/*
 * itest.c — see itest.h. Small on purpose: each helper does one thing and
 * aborts the test with a precise message when that thing does not happen.
 */
#include "itest.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../ledger/text.h"

gl_config itest_cfg;

#define ROLES 4
static PGconn *cached[GL_REGIONS_MAX][ROLES];
static bool loaded;

void itest_setup(void) {
    const char *path = getenv("GEOLEDGER_CONFIG");
    ck_assert_msg(path && *path, "GEOLEDGER_CONFIG is not set: run the integration tests through tests/run.sh "
                                 "(or start a cluster with scripts/cluster.sh and export it)");
    gl_error err;
    gl_error_clear(&err);
    ck_assert_msg(gl_config_load(path, &itest_cfg, &err), "cannot load %s: %s %s", path, err.message, err.detail);
    ck_assert_int_gt(itest_cfg.n_regions, 0);
    loaded = true;
}

void itest_teardown(void) {
    for (int r = 0; r < GL_REGIONS_MAX; r++)
        for (int k = 0; k < ROLES; k++)
            if (cached[r][k]) {
                PQfinish(cached[r][k]);
                cached[r][k] = NULL;
            }
    if (loaded) gl_config_free(&itest_cfg);
    loaded = false;
}

const gl_region *itest_region(const char *name) {
    ck_assert_msg(loaded, "itest_setup was not run (add it as a checked fixture)");
    const gl_region *r = gl_region_by_name(&itest_cfg, name);
    ck_assert_msg(r != NULL, "region \"%s\" is not in the configuration", name);
    return r;
}

PGconn *itest_connect(const char *region, gl_db_role role) {
    const gl_region *r = itest_region(region);
    gl_error err;
    gl_error_clear(&err);
    PGconn *db = gl_region_connect(r, role, &err);
    ck_assert_msg(db != NULL, "%s: %s", err.message, err.detail);
    return db;
}

PGconn *itest_db(const char *region, gl_db_role role) {
    const gl_region *r = itest_region(region);
    ck_assert((int)role >= 0 && (int)role < ROLES);
    int idx = (int)(r - itest_cfg.regions);
    if (!cached[idx][role]) cached[idx][role] = itest_connect(region, role);
    return cached[idx][role];
}

const char *itest_unique(char *buf, size_t cap, const char *prefix) {
    static unsigned seq;
    uint32_t rnd = 0;
    ck_assert(getrandom(&rnd, sizeof rnd, 0) == (ssize_t)sizeof rnd);
    int n = snprintf(buf, cap, "%s-%ld-%08x-%u", prefix, (long)getpid(), (unsigned)rnd, ++seq);
    ck_assert_msg(n > 0 && (size_t)n < cap, "unique name for \"%s\" does not fit %zu bytes", prefix, cap);
    /* Owners allow [A-Za-z0-9._:@/-]: test names use '_', which becomes '-'. */
    for (char *p = buf; *p; p++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.:@/-", *p)) *p = '-';
    return buf;
}

bool itest_exec(const char *region, const ledger_cmd *cmds, size_t n, ledger_result *results, gl_error *err) {
    const gl_region *r = itest_region(region);
    return gl_route_execute(&itest_cfg, r, itest_db(region, GL_ROLE_SERVICE), cmds, n, results, err);
}

void itest_exec_ok(const char *region, const ledger_cmd *cmds, size_t n, ledger_result *results) {
    gl_error err;
    gl_error_clear(&err);
    ck_assert_msg(itest_exec(region, cmds, n, results, &err), "batch of %zu in %s failed: %s (%s)", n, region,
                  err.message, err.detail);
}

ledger_result itest_exec1(const char *region, const ledger_cmd *cmd) {
    ledger_result res;
    memset(&res, 0xEE, sizeof res); /* the engine must fill it */
    itest_exec_ok(region, cmd, 1, &res);
    return res;
}

gl_id itest_account(const char *region, const char *currency, uint32_t flags, const char *owner) {
    ledger_cmd c;
    ledger_cmd_init(&c, LEDGER_CMD_CREATE_ACCOUNT);
    snprintf(c.owner, sizeof c.owner, "%s", owner);
    snprintf(c.currency, sizeof c.currency, "%s", currency);
    c.account_flags = flags;
    ledger_result res = itest_exec1(region, &c);
    ck_assert_msg(res.code == LEDGER_OK, "create account (%s, %s, flags %u, %s): %s", region, currency, flags, owner,
                  ledger_code_name(res.code));
    ck_assert_int_eq(gl_id_partition(&res.id), itest_region(region)->code);
    return res.id;
}

ledger_cmd itest_transfer(const char *owner, const char *reference, gl_id from, gl_id to, int64_t amount,
                          const char *currency) {
    ledger_cmd c;
    ledger_cmd_init(&c, LEDGER_CMD_TRANSFER);
    snprintf(c.owner, sizeof c.owner, "%s", owner);
    if (reference) snprintf(c.reference, sizeof c.reference, "%s", reference);
    c.debit_account_id = from;
    c.credit_account_id = to;
    c.amount = amount;
    snprintf(c.currency, sizeof c.currency, "%s", currency);
    return c;
}

ledger_cmd itest_on(ledger_cmd_kind kind, const char *owner, const char *reference, gl_id target, int64_t amount) {
    ledger_cmd c;
    ledger_cmd_init(&c, kind);
    snprintf(c.owner, sizeof c.owner, "%s", owner);
    if (reference) snprintf(c.reference, sizeof c.reference, "%s", reference);
    c.target_id = target;
    c.amount = amount;
    return c;
}

static const gl_region *home_of(gl_id id) {
    ck_assert_msg(loaded, "itest_setup was not run");
    const gl_region *r = gl_region_of_id(&itest_cfg, &id);
    ck_assert_msg(r != NULL, "id %s belongs to no configured region", itest_id(id));
    return r;
}

ledger_account itest_get(gl_id id) {
    const gl_region *r = home_of(id);
    ledger_account a;
    gl_error err;
    gl_error_clear(&err);
    int found = ledger_account_get(itest_db(r->name, GL_ROLE_SERVICE), &id, &a, &err);
    ck_assert_msg(found >= 0, "reading account %s: %s", itest_id(id), err.message);
    ck_assert_msg(found == 1, "account %s not found", itest_id(id));
    return a;
}

void itest_assert_counters(gl_id id, int64_t debits_pending, int64_t debits_posted, int64_t credits_pending,
                           int64_t credits_posted, int64_t version) {
    ledger_account a = itest_get(id);
    ck_assert_msg(a.debits_pending == debits_pending && a.debits_posted == debits_posted &&
                      a.credits_pending == credits_pending && a.credits_posted == credits_posted &&
                      a.version == version,
                  "account %s: (dp %lld, dpo %lld, cp %lld, cpo %lld, v %lld), expected (%lld, %lld, %lld, %lld, v %lld)",
                  itest_id(id), (long long)a.debits_pending, (long long)a.debits_posted,
                  (long long)a.credits_pending, (long long)a.credits_posted, (long long)a.version,
                  (long long)debits_pending, (long long)debits_posted, (long long)credits_pending,
                  (long long)credits_posted, (long long)version);
}

void itest_assert_same_account(const ledger_account *b, const ledger_account *a) {
    ck_assert_msg(gl_id_cmp(&a->id, &b->id) == 0, "different accounts compared");
    ck_assert_msg(a->debits_pending == b->debits_pending && a->debits_posted == b->debits_posted &&
                      a->credits_pending == b->credits_pending && a->credits_posted == b->credits_posted &&
                      a->version == b->version && a->flags == b->flags,
                  "account %s changed: (dp %lld, dpo %lld, cp %lld, cpo %lld, v %lld, f %u) -> "
                  "(%lld, %lld, %lld, %lld, v %lld, f %u)",
                  itest_id(a->id), (long long)b->debits_pending, (long long)b->debits_posted,
                  (long long)b->credits_pending, (long long)b->credits_posted, (long long)b->version, b->flags,
                  (long long)a->debits_pending, (long long)a->debits_posted, (long long)a->credits_pending,
                  (long long)a->credits_posted, (long long)a->version, a->flags);
}

char *itest_sql_value(const char *region, const char *sql, int n, const char *const *params) {
    PGconn *db = itest_db(region, GL_ROLE_ADMIN);
    PGresult *r = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "SQL failed in %s: %s\n%s", region,
                  PQresultErrorMessage(r), sql);
    ck_assert_msg(PQntuples(r) == 1 && PQnfields(r) >= 1, "SQL returned %d rows, expected 1: %s", PQntuples(r), sql);
    char *v = PQgetisnull(r, 0, 0) ? NULL : strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

int64_t itest_sql_i64(const char *region, const char *sql, int n, const char *const *params) {
    char *v = itest_sql_value(region, sql, n, params);
    ck_assert_msg(v != NULL, "SQL returned NULL: %s", sql);
    int64_t x;
    ck_assert_msg(gl_parse_i64(v, INT64_MIN, INT64_MAX, &x), "SQL returned \"%s\", not an integer: %s", v, sql);
    free(v);
    return x;
}

void itest_sql_try(PGconn *db, const char *sql, char state[6], char *msg, size_t msg_cap) {
    PGresult *r = PQexec(db, sql);
    ExecStatusType st = PQresultStatus(r);
    state[0] = '\0';
    if (msg && msg_cap) msg[0] = '\0';
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
        snprintf(state, 6, "%s", s ? s : "?????");
        if (msg && msg_cap) snprintf(msg, msg_cap, "%s", m ? m : PQerrorMessage(db));
    }
    PQclear(r);
}

const char *itest_id(gl_id id) {
    static char ring[8][GL_ID_STR_LEN + 1];
    static unsigned next;
    char *s = ring[next++ % 8];
    gl_id_format(&id, s);
    return s;
}

int64_t itest_transfers_of_owner(const char *region, const char *owner) {
    const char *p[1] = {owner};
    return itest_sql_i64(region, "SELECT count(*) FROM transfers WHERE owner = $1", 1, p);
}

int64_t itest_entries_of_account(const char *region, gl_id account) {
    const char *p[1] = {itest_id(account)};
    return itest_sql_i64(region, "SELECT count(*) FROM entries WHERE account_id = $1::uuid", 1, p);
}

const char *itest_ledgerctl(void) {
    static char path[4096];
    const char *build = getenv("BUILD");
    snprintf(path, sizeof path, "%s/bin/ledgerctl", build && *build ? build : "build");
    ck_assert_msg(access(path, X_OK) == 0, "%s is not an executable (build it, or set BUILD)", path);
    return path;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    ck_assert_ptr_nonnull(s);
    size_t got;
    while ((got = fread(s + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len - 1 == 0) {
            cap *= 2;
            char *bigger = realloc(s, cap);
            ck_assert_ptr_nonnull(bigger);
            s = bigger;
        }
    }
    s[len] = '\0';
    fclose(f);
    return s;
}

int itest_run_ledgerctl(const char *args, char **out, char **errout) {
    char out_path[] = "/tmp/itest-ledgerctl-out.XXXXXX", err_path[] = "/tmp/itest-ledgerctl-err.XXXXXX";
    int fo = mkstemp(out_path), fe = mkstemp(err_path);
    ck_assert_msg(fo >= 0 && fe >= 0, "mkstemp failed");
    close(fo);
    close(fe);
    size_t cap = strlen(args) + 8192;
    char *cmd = malloc(cap);
    ck_assert_ptr_nonnull(cmd);
    snprintf(cmd, cap, "'%s' %s >'%s' 2>'%s' </dev/null", itest_ledgerctl(), args, out_path, err_path);
    int st = system(cmd);
    free(cmd);
    ck_assert_msg(st != -1, "system() failed");
    char *o = slurp(out_path), *e = slurp(err_path);
    unlink(out_path);
    unlink(err_path);
    if (out) *out = o;
    else free(o);
    if (errout) *errout = e;
    else free(e);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Suite *itest_suite(const char *name, const itest_group *groups, size_t n) {
    Suite *s = suite_create(name);
    for (size_t g = 0; g < n; g++) {
        TCase *tc = tcase_create(groups[g].name);
        tcase_add_checked_fixture(tc, itest_setup, itest_teardown);
        tcase_set_timeout(tc, groups[g].timeout_s);
        for (int i = 0; i < ITEST_GROUP_TESTS_MAX && groups[g].tests[i]; i++) tcase_add_test(tc, groups[g].tests[i]);
        suite_add_tcase(s, tc);
    }
    return s;
}

int itest_run(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
