/*
 * test_audit.c — the hash-chained audit log (ledger/audit.h, sql/0005_audit.sql,
 * `ledgerctl audit`) against the real cluster of tests/run.sh.
 *
 * Appends (one, a batch, inside a caller's transaction that rolls back or
 * commits, 4 processes at once), then what must be impossible (runtime roles
 * editing the log, the owner editing it with the trigger on), then what
 * verification must see when a superuser switches the trigger off: an edited
 * row, an edited row with a recomputed hash, a deleted row, deleted first rows,
 * and what it cannot see (a deleted last row) but the recorded head does.
 *
 * The other tests and `ledgerctl audit verify` run on the same database, so
 * every tamper test copies the rows it touches into a temporary table first,
 * restores them byte for byte, asserts only after restoring, and checks that
 * the chain is clean again. Rows of a test carry an actor unique to it.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "../../ledger/audit.h"
#include "itest.h"

#define EU "eu"
#define CHILDREN 4
#define EVENTS_PER_CHILD 200
#define FOUND_MAX 16

/* Declares a char array named `var` holding an actor unique to this test and run. */
// NOLINTBEGIN(bugprone-macro-parentheses)
#define ACTOR(var) \
    char var[100]; \
    itest_unique(var, sizeof var, __func__)
// NOLINTEND(bugprone-macro-parentheses)

static gl_audit_event event(const char *actor, const char *action, const char *object, const char *detail) {
    gl_audit_event e = {.actor = actor, .action = action, .object = object, .source = "127.0.0.1",
                        .outcome = GL_AUDIT_SUCCESS, .detail_text = detail};
    return e;
}

static void append_ok(PGconn *db, const gl_audit_event *events, size_t n) {
    gl_error err;
    gl_error_clear(&err);
    ck_assert_msg(gl_audit_append(db, events, n, &err), "append of %zu: %s (%s)", n, err.message, err.detail);
}

static int64_t max_seq(void) { return itest_sql_i64(EU, "SELECT coalesce(max(seq), 0) FROM audit_log", 0, NULL); }

static int64_t rows_of(const char *actor) {
    const char *p[1] = {actor};
    return itest_sql_i64(EU, "SELECT count(*) FROM audit_log WHERE actor = $1", 1, p);
}

static int64_t first_seq_of(const char *actor) {
    const char *p[1] = {actor};
    return itest_sql_i64(EU, "SELECT min(seq) FROM audit_log WHERE actor = $1", 1, p);
}

/* Appends `n` events for `actor` and returns the seq of the first. */
static int64_t append_n(const char *actor, size_t n) {
    gl_audit_event ev[8];
    ck_assert_uint_le(n, 8);
    for (size_t i = 0; i < n; i++) ev[i] = event(actor, "test.tamper", "obj", NULL);
    append_ok(itest_db(EU, GL_ROLE_SERVICE), ev, n);
    return first_seq_of(actor);
}

/* ---- verification results, collected without aborting (tamper windows) ---- */

typedef struct {
    bool ok; /* gl_audit_verify returned true */
    char error[800];
    gl_audit_summary sum;
    int n;
    gl_audit_violation_kind kind[FOUND_MAX];
    int64_t seq[FOUND_MAX], expected[FOUND_MAX];
} found;

static void collect(void *arg, const gl_audit_violation *v) {
    found *f = arg;
    if (f->n < FOUND_MAX) {
        f->kind[f->n] = v->kind;
        f->seq[f->n] = v->seq;
        f->expected[f->n] = v->expected_seq;
    }
    f->n++;
}

/* Verifies eu on a fresh report connection; never aborts (see assert_clean). */
static found verify_eu(void) {
    found f;
    memset(&f, 0, sizeof f);
    gl_error err;
    gl_error_clear(&err);
    PGconn *db = gl_region_connect(itest_region(EU), GL_ROLE_REPORT, &err);
    if (db) f.ok = gl_audit_verify(db, collect, &f, &f.sum, &err);
    if (!f.ok) snprintf(f.error, sizeof f.error, "%s %s", err.message, err.detail);
    PQfinish(db);
    return f;
}

static void assert_clean(const found *f) {
    ck_assert_msg(f->ok, "verify failed: %s", f->error);
    ck_assert_msg(f->n == 0, "%d violation(s), first %s at seq %lld", f->n,
                  f->n ? gl_audit_violation_kind_name(f->kind[0]) : "", f->n ? (long long)f->seq[0] : 0LL);
    ck_assert_int_eq(f->sum.violations, 0);
}

static bool has(const found *f, gl_audit_violation_kind kind, int64_t seq) {
    for (int i = 0; i < f->n && i < FOUND_MAX; i++)
        if (f->kind[i] == kind && f->seq[i] == seq) return true;
    return false;
}

/* ---- tampering as the superuser, with the append-only trigger off ---- */

/* A fresh admin connection that bypasses triggers, with rows [from, to] saved. */
static PGconn *tamper_begin(int64_t from, int64_t to) {
    PGconn *db = itest_connect(EU, GL_ROLE_ADMIN);
    char a[24], b[24];
    snprintf(a, sizeof a, "%lld", (long long)from);
    snprintf(b, sizeof b, "%lld", (long long)to);
    const char *p[2] = {a, b};
    const char *steps[] = {"SET session_replication_role = replica", "CREATE TEMP TABLE saved (LIKE audit_log)",
                           "INSERT INTO saved SELECT * FROM audit_log WHERE seq BETWEEN $1 AND $2"};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        PGresult *r = PQexecParams(db, steps[i], i == 2 ? 2 : 0, NULL, i == 2 ? p : NULL, NULL, NULL, 0);
        ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s: %s", steps[i], PQresultErrorMessage(r));
        PQclear(r);
    }
    return db;
}

/* Runs a tamper statement; returns the rows it touched (-1 on error: the caller restores, then asserts). */
static int tamper(PGconn *db, const char *sql, int n, const char *const *params) {
    PGresult *r = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
    int touched = PQresultStatus(r) == PGRES_COMMAND_OK ? (int)strtol(PQcmdTuples(r), NULL, 10) : -1;
    if (touched < 0) fprintf(stderr, "tamper failed: %s", PQresultErrorMessage(r));
    PQclear(r);
    return touched;
}

/* Puts the saved rows back exactly as they were and closes the connection. */
static void tamper_restore(PGconn *db) {
    const char *sql = "BEGIN; DELETE FROM audit_log WHERE seq IN (SELECT seq FROM saved);"
                      " INSERT INTO audit_log SELECT * FROM saved; COMMIT";
    PGresult *r = PQexec(db, sql);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    char msg[256];
    snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(db);
    ck_assert_msg(ok, "restoring the audit log failed: %s", msg);
}

static const char *i64s(char *buf, size_t cap, int64_t v) {
    snprintf(buf, cap, "%lld", (long long)v);
    return buf;
}

/* =================================================================== append */

START_TEST(test_append_one_and_recompute_from_sql) {
    ACTOR(actor);
    int64_t before = max_seq();
    gl_audit_event e = event(actor, "mandate.create", "acct-42", "{\"scope\": \"transfers:write\", \"amount\": 5}");
    e.outcome = GL_AUDIT_DENIED;
    append_ok(itest_db(EU, GL_ROLE_SERVICE), &e, 1);
    int64_t seq = first_seq_of(actor);
    ck_assert_int_eq(rows_of(actor), 1);
    ck_assert_int_gt(seq, before);

    /* Read the row back as text and recompute its hash here, independently. */
    char s[24];
    const char *p[1] = {i64s(s, sizeof s, seq)};
    PGresult *r = PQexecParams(itest_db(EU, GL_ROLE_ADMIN),
                               "SELECT (extract(epoch FROM at) * 1000000)::int8, actor, action, object, source, outcome,"
                               " detail, encode(prev_hash, 'hex'), encode(hash, 'hex'),"
                               " (SELECT encode(hash, 'hex') FROM audit_log WHERE seq = a.seq - 1)"
                               " FROM audit_log a WHERE seq = $1",
                               1, NULL, p, NULL, NULL, 0);
    ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    ck_assert_int_eq(PQntuples(r), 1);
    ck_assert_str_eq(PQgetvalue(r, 0, 2), "mandate.create");
    ck_assert_str_eq(PQgetvalue(r, 0, 3), "acct-42");
    ck_assert_str_eq(PQgetvalue(r, 0, 4), "127.0.0.1");
    ck_assert_str_eq(PQgetvalue(r, 0, 5), "denied");
    ck_assert_str_eq(PQgetvalue(r, 0, 6), "{\"amount\":5,\"scope\":\"transfers:write\"}"); /* canonical */
    const char *prev_row_hash = PQgetisnull(r, 0, 9) ? NULL : PQgetvalue(r, 0, 9);
    if (seq == 1) ck_assert_str_eq(PQgetvalue(r, 0, 7), "0000000000000000000000000000000000000000000000000000000000000000");
    else ck_assert_str_eq(PQgetvalue(r, 0, 7), prev_row_hash);

    gl_audit_row row = {.seq = seq, .at_us = strtoll(PQgetvalue(r, 0, 0), NULL, 10), .actor = PQgetvalue(r, 0, 1),
                        .action = PQgetvalue(r, 0, 2), .object = PQgetvalue(r, 0, 3), .source = PQgetvalue(r, 0, 4),
                        .outcome = PQgetvalue(r, 0, 5), .detail = PQgetvalue(r, 0, 6)};
    for (int i = 0; i < GL_AUDIT_HASH_BYTES; i++) {
        unsigned v;
        ck_assert_int_eq(sscanf(PQgetvalue(r, 0, 7) + (size_t)2 * i, "%2x", &v), 1);
        row.prev_hash[i] = (uint8_t)v;
    }
    uint8_t want[GL_AUDIT_HASH_BYTES];
    char want_hex[GL_AUDIT_HASH_HEX + 1];
    ck_assert(gl_audit_row_hash(&row, want));
    gl_audit_hex(want, want_hex);
    ck_assert_str_eq(want_hex, PQgetvalue(r, 0, 8));
    PQclear(r);
    found clean = verify_eu();
    assert_clean(&clean);
}
END_TEST

START_TEST(test_append_batch_in_order) {
    ACTOR(actor);
    enum { N = 50 };
    gl_audit_event ev[N];
    char details[N][64];
    json_t *obj = json_pack("{s:s,s:i}", "z", "last", "a", 1);
    for (int i = 0; i < N; i++) {
        snprintf(details[i], sizeof details[i], "{\"i\": %d, \"b\": [1, 2], \"a\": \"x\"}", i);
        ev[i] = event(actor, "recon.run", "", details[i]);
    }
    ev[N - 1].detail_text = NULL;
    ev[N - 1].detail = obj; /* a jansson value works too */
    ev[N - 1].outcome = GL_AUDIT_FAILURE;
    append_ok(itest_db(EU, GL_ROLE_SERVICE), ev, N);
    json_decref(obj);

    int64_t first = first_seq_of(actor);
    ck_assert_int_eq(rows_of(actor), N);
    const char *p[1] = {actor};
    /* consecutive, in the order given */
    ck_assert_int_eq(itest_sql_i64(EU, "SELECT max(seq) - min(seq) + 1 FROM audit_log WHERE actor = $1", 1, p), N);
    for (int i = 0; i < N - 1; i += 7) {
        char s[24], want[64];
        const char *q[1] = {i64s(s, sizeof s, first + i)};
        char *detail = itest_sql_value(EU, "SELECT detail FROM audit_log WHERE seq = $1", 1, q);
        snprintf(want, sizeof want, "{\"a\":\"x\",\"b\":[1,2],\"i\":%d}", i);
        ck_assert_str_eq(detail, want);
        free(detail);
    }
    char *last = itest_sql_value(EU, "SELECT detail || ' ' || outcome FROM audit_log WHERE actor = $1 ORDER BY seq DESC LIMIT 1", 1, p);
    ck_assert_str_eq(last, "{\"a\":1,\"z\":\"last\"} failure");
    free(last);
    found clean = verify_eu();
    assert_clean(&clean);
}
END_TEST

START_TEST(test_append_joins_the_callers_transaction) {
    ACTOR(actor);
    PGconn *db = itest_connect(EU, GL_ROLE_SERVICE);
    int64_t before = max_seq();
    gl_audit_event ev[3] = {event(actor, "mandate.revoke", "m-1", NULL), event(actor, "mandate.revoke", "m-2", NULL),
                            event(actor, "mandate.revoke", "m-3", NULL)};

    /* rolled back with the caller's transaction: nothing stays */
    PQclear(PQexec(db, "BEGIN"));
    append_ok(db, ev, 3);
    ck_assert_int_eq(PQtransactionStatus(db), PQTRANS_INTRANS); /* not committed by the append */
    const char *p[1] = {actor};
    PGresult *r = PQexecParams(db, "SELECT count(*) FROM audit_log WHERE actor = $1", 1, NULL, p, NULL, NULL, 0);
    ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "3"); /* visible inside the transaction */
    PQclear(r);
    PQclear(PQexec(db, "ROLLBACK"));
    ck_assert_int_eq(rows_of(actor), 0);
    ck_assert_int_eq(max_seq(), before);
    found clean = verify_eu();
    assert_clean(&clean);

    /* committed with it */
    PQclear(PQexec(db, "BEGIN"));
    append_ok(db, ev, 2);
    ck_assert_int_eq(rows_of(actor), 0); /* not visible to others before the commit */
    PQclear(PQexec(db, "COMMIT"));
    ck_assert_int_eq(rows_of(actor), 2);
    ck_assert_int_eq(max_seq(), before + 2);

    /* a failed caller transaction is not appended to */
    PQclear(PQexec(db, "BEGIN"));
    PQclear(PQexec(db, "SELECT no_such_column FROM audit_log"));
    gl_error err;
    gl_error_clear(&err);
    ck_assert(!gl_audit_append(db, ev, 1, &err));
    ck_assert_msg(strstr(err.message, "failed transaction") != NULL, "%s", err.message);
    PQclear(PQexec(db, "ROLLBACK"));
    PQfinish(db);
    ck_assert_int_eq(rows_of(actor), 2);
    found clean_after = verify_eu();
    assert_clean(&clean_after);
}
END_TEST

START_TEST(test_append_refuses_bad_events) {
    ACTOR(actor);
    int64_t before = max_seq();
    PGconn *db = itest_db(EU, GL_ROLE_SERVICE);
    json_t *array = json_array();
    char long_actor[GL_AUDIT_ACTOR_MAX + 2];
    memset(long_actor, 'a', sizeof long_actor - 1);
    long_actor[sizeof long_actor - 1] = '\0';
    struct {
        gl_audit_event e;
        const char *want;
    } bad[] = {
        {event("", "auth.failure", "", NULL), "actor is required"},
        {event(long_actor, "auth.failure", "", NULL), "actor is longer than"},
        {event(actor, "Auth.Failure", "", NULL), "not of the form area.verb"},
        {event(actor, "auth", "", NULL), "not of the form area.verb"},
        {event(actor, "auth.", "", NULL), "not of the form area.verb"},
        {event(actor, "auth failure", "", NULL), "not of the form area.verb"},
        {event(actor, "auth.failure", "\xff\xfe", NULL), "object is not valid UTF-8"},
        {event(actor, "auth.failure", "", "[1, 2]"), "detail must be a JSON object"},
        {event(actor, "auth.failure", "", "{\"a\": 1, \"a\": 2}"), "detail is not JSON"},
        {event(actor, "auth.failure", "", "{oops"), "detail is not JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gl_audit_event two[2] = {event(actor, "auth.failure", "", NULL), bad[i].e};
        gl_error err;
        gl_error_clear(&err);
        ck_assert_msg(!gl_audit_append(db, two, 2, &err), "bad event %zu accepted", i);
        ck_assert_int_eq(err.kind, GL_ERR_INVALID);
        ck_assert_msg(strstr(err.message, bad[i].want) && strstr(err.message, "audit event 1"),
                      "case %zu: \"%s\" does not say \"%s\"", i, err.message, bad[i].want);
    }
    gl_audit_event e = event(actor, "auth.failure", "", NULL);
    e.source = NULL;
    gl_error err;
    ck_assert(!gl_audit_append(db, &e, 1, &err));
    ck_assert_msg(strstr(err.message, "source is required") != NULL, "%s", err.message);
    e = event(actor, "auth.failure", "", "{}");
    e.detail = array;
    ck_assert(!gl_audit_append(db, &e, 1, &err));
    ck_assert_msg(strstr(err.message, "not both") != NULL, "%s", err.message);
    e.detail_text = NULL;
    ck_assert(!gl_audit_append(db, &e, 1, &err));
    ck_assert_msg(strstr(err.message, "JSON object") != NULL, "%s", err.message);
    e.outcome = (gl_audit_outcome)42;
    e.detail = NULL;
    ck_assert(!gl_audit_append(db, &e, 1, &err));
    ck_assert_msg(strstr(err.message, "unknown outcome") != NULL, "%s", err.message);
    ck_assert(!gl_audit_append(db, &e, 0, &err));
    json_decref(array);
    ck_assert_int_eq(max_seq(), before);
    ck_assert_int_eq(rows_of(actor), 0);
}
END_TEST

/* Appends EVENTS_PER_CHILD events one by one on its own connection; the exit
 * status says whether all went in. No Check calls here: this is a child. */
static void child_appends(int child, const char *prefix) {
    gl_error err;
    PGconn *db = gl_region_connect(itest_region(EU), GL_ROLE_SERVICE, &err);
    if (!db) _exit(2);
    char actor[128], detail[32];
    snprintf(actor, sizeof actor, "%s-child%d", prefix, child);
    for (int i = 0; i < EVENTS_PER_CHILD; i++) {
        snprintf(detail, sizeof detail, "{\"i\":%d}", i);
        gl_audit_event e = event(actor, "test.concurrent", "", detail);
        /* child 0 appends inside its own explicit transactions, the others alone */
        bool wrap = child == 0;
        if (wrap) PQclear(PQexec(db, "BEGIN"));
        bool ok = gl_audit_append(db, &e, 1, &err);
        if (wrap) PQclear(PQexec(db, "COMMIT"));
        if (!ok) {
            fprintf(stderr, "child %d event %d: %s (%s)\n", child, i, err.message, err.detail);
            _exit(1);
        }
    }
    PQfinish(db);
    _exit(0);
}

START_TEST(test_concurrent_appenders_leave_no_gap) {
    ACTOR(prefix);
    pid_t pids[CHILDREN];
    for (int c = 0; c < CHILDREN; c++) {
        pids[c] = fork();
        ck_assert_int_ge(pids[c], 0);
        if (pids[c] == 0) child_appends(c, prefix);
    }
    for (int c = 0; c < CHILDREN; c++) {
        int st;
        ck_assert_int_eq(waitpid(pids[c], &st, 0), pids[c]);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "appender %d failed (status %d)", c, st);
    }
    char like[128];
    snprintf(like, sizeof like, "%s-child%%", prefix);
    const char *p[1] = {like};
    ck_assert_int_eq(itest_sql_i64(EU, "SELECT count(*) FROM audit_log WHERE actor LIKE $1", 1, p),
                     (int64_t)CHILDREN * EVENTS_PER_CHILD);
    /* each appender's events are in its own order */
    ck_assert_int_eq(itest_sql_i64(EU,
                                   "SELECT count(*) FROM (SELECT (detail::jsonb->>'i')::int AS i,"
                                   " row_number() OVER (PARTITION BY actor ORDER BY seq) - 1 AS n"
                                   " FROM audit_log WHERE actor LIKE $1) x WHERE i <> n",
                                   1, p),
                     0);
    /* gap-free from 1 */
    ck_assert_int_eq(itest_sql_i64(EU, "SELECT count(*) - max(seq) FROM audit_log", 0, NULL), 0);
    found f = verify_eu();
    assert_clean(&f);
    ck_assert_int_eq(f.sum.rows, max_seq());
}
END_TEST

START_TEST(test_verify_streams_past_one_fetch) {
    ACTOR(actor);
    enum { BATCH = 2000, BATCHES = 6 };
    gl_audit_event *ev = calloc(BATCH, sizeof *ev);
    ck_assert_ptr_nonnull(ev);
    for (int i = 0; i < BATCH; i++) ev[i] = event(actor, "test.bulk", "", NULL);
    for (int b = 0; b < BATCHES; b++) append_ok(itest_db(EU, GL_ROLE_SERVICE), ev, BATCH);
    free(ev);
    ck_assert_int_eq(rows_of(actor), (int64_t)BATCH * BATCHES);
    found f = verify_eu();
    assert_clean(&f);
    ck_assert_int_gt(f.sum.rows, GL_AUDIT_FETCH_ROWS);
    ck_assert_int_eq(f.sum.rows, itest_sql_i64(EU, "SELECT count(*) FROM audit_log", 0, NULL));
    ck_assert_int_eq(f.sum.last_seq, max_seq());
    char *head = itest_sql_value(EU, "SELECT encode(hash, 'hex') FROM audit_log ORDER BY seq DESC LIMIT 1", 0, NULL);
    ck_assert_str_eq(f.sum.last_hash_hex, head);
    free(head);
}
END_TEST

/* ================================================================ guards */

/* Runs `sql` in a transaction that is rolled back, expecting SQLSTATE `state`. */
static void refused(PGconn *db, const char *sql, const char *state, const char *msg_part) {
    char st[6], ignore[6], msg[256];
    itest_sql_try(db, "BEGIN", ignore, NULL, 0);
    itest_sql_try(db, sql, st, msg, sizeof msg);
    itest_sql_try(db, "ROLLBACK", ignore, NULL, 0);
    ck_assert_msg(strcmp(st, state) == 0, "\"%s\": SQLSTATE \"%s\" (%s), expected %s", sql, st, msg, state);
    ck_assert_msg(strstr(msg, msg_part) != NULL, "\"%s\": \"%s\" does not say \"%s\"", sql, msg, msg_part);
}

START_TEST(test_roles_cannot_edit_the_log) {
    ACTOR(actor);
    int64_t seq = append_n(actor, 1);
    char sql[256];
    gl_db_role writers[] = {GL_ROLE_SERVICE, GL_ROLE_RECON};
    for (size_t i = 0; i < 2; i++) {
        PGconn *db = itest_db(EU, writers[i]);
        snprintf(sql, sizeof sql, "UPDATE audit_log SET actor = 'mallory' WHERE seq = %lld", (long long)seq);
        refused(db, sql, "42501", "permission denied");
        snprintf(sql, sizeof sql, "DELETE FROM audit_log WHERE seq = %lld", (long long)seq);
        refused(db, sql, "42501", "permission denied");
        refused(db, "TRUNCATE audit_log", "42501", "permission denied");
    }
    PGconn *rep = itest_db(EU, GL_ROLE_REPORT);
    refused(rep,
            "INSERT INTO audit_log VALUES (999999999, now(), 'x', 'a.b', '', 's', 'success', '{}',"
            " '\\x0000000000000000000000000000000000000000000000000000000000000000',"
            " '\\x0000000000000000000000000000000000000000000000000000000000000000')",
            "42501", "permission denied");
    /* the owner holds the privileges, and the trigger still says no */
    PGconn *admin = itest_db(EU, GL_ROLE_ADMIN);
    snprintf(sql, sizeof sql, "UPDATE audit_log SET actor = 'mallory' WHERE seq = %lld", (long long)seq);
    refused(admin, sql, "42501", "append-only");
    snprintf(sql, sizeof sql, "DELETE FROM audit_log WHERE seq = %lld", (long long)seq);
    refused(admin, sql, "42501", "append-only");
    refused(admin, "TRUNCATE audit_log", "42501", "append-only");
    ck_assert_int_eq(rows_of(actor), 1);
    found clean = verify_eu();
    assert_clean(&clean);
}
END_TEST

/* ================================================================ tampering */

START_TEST(test_verify_detects_an_edited_row) {
    ACTOR(actor);
    int64_t s = append_n(actor, 3);
    char a[24];
    const char *p[1] = {i64s(a, sizeof a, s + 1)};
    char *out = NULL, *json_out = NULL;

    PGconn *t = tamper_begin(s + 1, s + 1);
    int touched = tamper(t, "UPDATE audit_log SET actor = 'mallory' WHERE seq = $1", 1, p);
    found f = verify_eu();
    int rc = itest_run_ledgerctl("audit verify --region eu", &out, NULL);
    int rc_json = itest_run_ledgerctl("--json audit verify --region eu", &json_out, NULL);
    tamper_restore(t);
    found after = verify_eu();

    ck_assert_int_eq(touched, 1);
    ck_assert_msg(f.ok, "%s", f.error);
    ck_assert_int_eq(f.n, 1);
    ck_assert_msg(has(&f, GL_AUDIT_MODIFIED, s + 1), "no modified_row at %lld", (long long)(s + 1));
    ck_assert_int_eq(rc, 4);
    ck_assert_msg(strstr(out, "VIOLATION region eu audit modified_row") && strstr(out, "audit log VIOLATED"), "%s", out);
    ck_assert_int_eq(rc_json, 4);
    json_t *o = json_loads(json_out, 0, NULL);
    ck_assert_msg(o != NULL, "not JSON: %s", json_out);
    ck_assert(json_is_false(json_object_get(o, "ok")));
    json_t *v0 = json_array_get(json_object_get(json_array_get(json_object_get(o, "regions"), 0), "violations"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(v0, "kind")), "modified_row");
    ck_assert_int_eq(json_integer_value(json_object_get(v0, "seq")), s + 1);
    json_decref(o);
    free(out);
    free(json_out);
    assert_clean(&after);
    ck_assert_int_eq(rows_of(actor), 3);
}
END_TEST

START_TEST(test_verify_detects_a_rewritten_hash) {
    /* An intruder who edits a row and recomputes its hash breaks the next link. */
    ACTOR(actor);
    int64_t s = append_n(actor, 3);
    char a[24];
    const char *p[1] = {i64s(a, sizeof a, s + 1)};
    PGresult *r = PQexecParams(itest_db(EU, GL_ROLE_ADMIN),
                               "SELECT (extract(epoch FROM at) * 1000000)::int8, object, source, outcome, detail,"
                               " prev_hash FROM audit_log WHERE seq = $1",
                               1, NULL, p, NULL, NULL, 1 /* binary */);
    ck_assert_int_eq(PQntuples(r), 1);
    gl_audit_row row = {.seq = s + 1, .actor = "mallory", .action = "test.tamper", .object = PQgetvalue(r, 0, 1),
                        .source = PQgetvalue(r, 0, 2), .outcome = PQgetvalue(r, 0, 3), .detail = PQgetvalue(r, 0, 4)};
    uint64_t at = 0;
    for (int i = 0; i < 8; i++) at = (at << 8) | (uint8_t)PQgetvalue(r, 0, 0)[i];
    row.at_us = (int64_t)at;
    memcpy(row.prev_hash, PQgetvalue(r, 0, 5), GL_AUDIT_HASH_BYTES);
    uint8_t forged[GL_AUDIT_HASH_BYTES];
    char forged_hex[GL_AUDIT_HASH_HEX + 1];
    ck_assert(gl_audit_row_hash(&row, forged));
    gl_audit_hex(forged, forged_hex);
    PQclear(r);

    char *recorded = itest_sql_value(EU, "SELECT encode(hash, 'hex') FROM audit_log WHERE seq = $1", 1, p);
    const char *q[2] = {a, forged_hex};
    char why[160] = "";
    gl_error err;
    gl_error_clear(&err);
    PGconn *t = tamper_begin(s + 1, s + 1);
    int touched =
        tamper(t, "UPDATE audit_log SET actor = 'mallory', hash = decode($2, 'hex') WHERE seq = $1", 2, q);
    found f = verify_eu();
    int same = gl_audit_check_head(itest_db(EU, GL_ROLE_REPORT), s + 1, recorded, why, sizeof why, &err);
    tamper_restore(t);
    found after = verify_eu();

    free(recorded);
    ck_assert_msg(same == 0, "check_head: %d %s", same, err.message);
    ck_assert_msg(strstr(why, "rewritten") != NULL, "%s", why);
    ck_assert_int_eq(touched, 1);
    ck_assert_msg(f.ok, "%s", f.error);
    ck_assert_int_eq(f.n, 1);
    ck_assert_msg(has(&f, GL_AUDIT_BROKEN_LINK, s + 2), "no broken_link at %lld", (long long)(s + 2));
    assert_clean(&after);
}
END_TEST

START_TEST(test_verify_detects_a_deleted_row) {
    ACTOR(actor);
    int64_t s = append_n(actor, 3);
    char a[24];
    const char *p[1] = {i64s(a, sizeof a, s + 1)};
    PGconn *t = tamper_begin(s + 1, s + 1);
    int touched = tamper(t, "DELETE FROM audit_log WHERE seq = $1", 1, p);
    found f = verify_eu();
    tamper_restore(t);
    found after = verify_eu();

    ck_assert_int_eq(touched, 1);
    ck_assert_msg(f.ok, "%s", f.error);
    ck_assert_int_eq(f.n, 2);
    ck_assert_msg(has(&f, GL_AUDIT_GAP, s + 2), "no gap at %lld", (long long)(s + 2));
    ck_assert_int_eq(f.expected[0], s + 1);
    ck_assert_msg(has(&f, GL_AUDIT_BROKEN_LINK, s + 2), "no broken_link at %lld", (long long)(s + 2));
    assert_clean(&after);
    ck_assert_int_eq(rows_of(actor), 3);
}
END_TEST

START_TEST(test_verify_detects_deleted_first_rows) {
    ACTOR(actor);
    append_n(actor, 2); /* so the log has at least two rows */
    const char *p[1] = {"2"};
    PGconn *t = tamper_begin(1, 2);
    int touched = tamper(t, "DELETE FROM audit_log WHERE seq <= $1", 1, p);
    found f = verify_eu();
    tamper_restore(t);
    found after = verify_eu();

    ck_assert_int_eq(touched, 2);
    ck_assert_msg(f.ok, "%s", f.error);
    ck_assert_int_eq(f.n, 1);
    ck_assert_msg(has(&f, GL_AUDIT_BAD_START, 3), "no bad_start at 3");
    ck_assert_int_eq(f.expected[0], 1);
    assert_clean(&after);
}
END_TEST

START_TEST(test_deleted_last_row_shows_only_in_the_head) {
    /* The documented limit: a chain cut at its end is still a valid chain;
     * the head recorded elsewhere is what shows the cut. */
    ACTOR(actor);
    append_n(actor, 2);
    found recorded = verify_eu();
    assert_clean(&recorded);
    char a[24], args[200], why[160] = "";
    const char *p[1] = {i64s(a, sizeof a, recorded.sum.last_seq)};
    snprintf(args, sizeof args, "audit verify --region eu --expect-head %lld:%s", (long long)recorded.sum.last_seq,
             recorded.sum.last_hash_hex);
    char *out = NULL;
    gl_error err;
    gl_error_clear(&err);

    PGconn *t = tamper_begin(recorded.sum.last_seq, recorded.sum.last_seq);
    int touched = tamper(t, "DELETE FROM audit_log WHERE seq = $1", 1, p);
    found f = verify_eu();
    int same = gl_audit_check_head(itest_db(EU, GL_ROLE_REPORT), recorded.sum.last_seq, recorded.sum.last_hash_hex,
                                   why, sizeof why, &err);
    int rc = itest_run_ledgerctl(args, &out, NULL);
    tamper_restore(t);
    found after = verify_eu();
    int rc_after = itest_run_ledgerctl(args, NULL, NULL);

    ck_assert_int_eq(touched, 1);
    assert_clean(&f); /* the chain alone cannot tell */
    ck_assert_int_eq(f.sum.last_seq, recorded.sum.last_seq - 1);
    ck_assert_str_ne(f.sum.last_hash_hex, recorded.sum.last_hash_hex);
    ck_assert_msg(same == 0, "recorded head still found (%d): %s", same, err.message);
    ck_assert_msg(strstr(why, "cut at its end") != NULL, "%s", why);
    ck_assert_int_eq(rc, 4);
    ck_assert_msg(strstr(out, "VIOLATION region eu audit head_mismatch") != NULL, "%s", out);
    free(out);
    assert_clean(&after);
    ck_assert_int_eq(after.sum.last_seq, recorded.sum.last_seq);
    ck_assert_str_eq(after.sum.last_hash_hex, recorded.sum.last_hash_hex);
    ck_assert_int_eq(rc_after, 0);
    ck_assert_int_eq(gl_audit_check_head(itest_db(EU, GL_ROLE_REPORT), recorded.sum.last_seq,
                                         recorded.sum.last_hash_hex, why, sizeof why, &err),
                     1);
}
END_TEST

START_TEST(test_anchors_show_a_cut_tail) {
    /* What eu's chain alone cannot show (above), the other regions' anchors do:
     * `audit anchor` records eu's head in us and sg, and cutting eu from that
     * row on is then reported by `audit verify`. */
    ACTOR(actor);
    append_n(actor, 2);
    found before = verify_eu();
    assert_clean(&before);
    char *out = NULL, *json_out = NULL, want[200];
    ck_assert_int_eq(itest_run_ledgerctl("audit anchor", &out, NULL), 0);
    snprintf(want, sizeof want, "region us: anchored eu at seq %lld hash %s", (long long)before.sum.last_seq,
             before.sum.last_hash_hex);
    ck_assert_msg(strstr(out, want) != NULL, "want '%s' in: %s", want, out);
    free(out);
    out = NULL;
    ck_assert_int_eq(itest_run_ledgerctl("audit verify --region eu", NULL, NULL), 0);
    ck_assert_int_eq(itest_run_ledgerctl("audit anchor --region eu", NULL, NULL), 2);

    int64_t cut = before.sum.last_seq; /* the anchored row, and the anchors written after it */
    found now = verify_eu();
    char a[24];
    const char *p[1] = {i64s(a, sizeof a, cut)};
    PGconn *t = tamper_begin(cut, now.sum.last_seq);
    int touched = tamper(t, "DELETE FROM audit_log WHERE seq >= $1", 1, p);
    found f = verify_eu();
    int rc = itest_run_ledgerctl("audit verify --region eu", &out, NULL);
    int rc_json = itest_run_ledgerctl("--json audit verify --region eu", &json_out, NULL);
    tamper_restore(t);
    int rc_after = itest_run_ledgerctl("audit verify --region eu", NULL, NULL);

    ck_assert_int_eq(touched, (int)(now.sum.last_seq - cut + 1));
    assert_clean(&f); /* the chain alone still cannot tell */
    ck_assert_int_eq(rc, 4);
    snprintf(want, sizeof want, "VIOLATION region eu audit anchor_mismatch: region us's anchor of seq %lld",
             (long long)cut);
    ck_assert_msg(strstr(out, want) != NULL && strstr(out, "region sg's anchor") != NULL, "%s", out);
    ck_assert_int_eq(rc_json, 4);
    json_t *o = json_loads(json_out, 0, NULL);
    ck_assert_msg(o != NULL, "not JSON: %s", json_out);
    json_t *v0 = json_array_get(json_object_get(json_array_get(json_object_get(o, "regions"), 0), "violations"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(v0, "kind")), "anchor_mismatch");
    ck_assert_int_eq(json_integer_value(json_object_get(v0, "seq")), cut);
    json_decref(o);
    free(out);
    free(json_out);
    ck_assert_int_eq(rc_after, 0);
}
END_TEST

/* ================================================================ ledgerctl */

START_TEST(test_ledgerctl_audit_verify_and_show) {
    ACTOR(actor);
    /* a line break in a field must not forge a second line of output */
    gl_audit_event e = event(actor, "admin.migrate", "line1\nVIOLATION forged", "{\"k\": \"v\"}");
    append_ok(itest_db(EU, GL_ROLE_SERVICE), &e, 1);
    char *out = NULL, *err = NULL;

    ck_assert_int_eq(itest_run_ledgerctl("audit verify", &out, &err), 0);
    for (int i = 0; i < itest_cfg.n_regions; i++) {
        char want[64];
        snprintf(want, sizeof want, "region %s: audit log intact", itest_cfg.regions[i].name);
        ck_assert_msg(strstr(out, want) != NULL, "no \"%s\" in:\n%s", want, out);
    }
    free(out);
    free(err);

    ck_assert_int_eq(itest_run_ledgerctl("--json audit verify", &out, NULL), 0);
    json_t *o = json_loads(out, 0, NULL);
    ck_assert_msg(o != NULL, "not one JSON object: %s", out);
    ck_assert(json_is_true(json_object_get(o, "ok")));
    ck_assert_int_eq(json_array_size(json_object_get(o, "regions")), itest_cfg.n_regions);
    json_decref(o);
    free(out);

    ck_assert_int_eq(itest_run_ledgerctl("audit show --region eu --limit 1", &out, NULL), 0);
    ck_assert_msg(strstr(out, actor) && strstr(out, "action=admin.migrate") &&
                      strstr(out, "object=line1\\x0aVIOLATION forged") && !strstr(out, "\nVIOLATION"),
                  "%s", out);
    ck_assert_msg(strchr(out, '\n') == out + strlen(out) - 1, "one row, one line:\n%s", out);
    free(out);

    ck_assert_int_eq(itest_run_ledgerctl("--json audit show --region eu --limit 1", &out, NULL), 0);
    o = json_loads(out, 0, NULL);
    ck_assert_msg(o != NULL, "not one JSON object: %s", out);
    json_t *row = json_array_get(json_object_get(o, "rows"), 0);
    ck_assert_str_eq(json_string_value(json_object_get(row, "actor")), actor);
    ck_assert_str_eq(json_string_value(json_object_get(row, "region")), "eu");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(row, "detail"), "k")), "v");
    ck_assert_int_eq(json_integer_value(json_object_get(row, "seq")), max_seq());
    ck_assert_int_eq(strlen(json_string_value(json_object_get(row, "hash"))), 64);
    json_decref(o);
    free(out);

    ck_assert_int_eq(itest_run_ledgerctl("audit show --limit 0", NULL, NULL), 2);
    ck_assert_int_eq(itest_run_ledgerctl("audit show --limit 10001", NULL, NULL), 2);
    ck_assert_int_eq(itest_run_ledgerctl("audit verify --region nowhere", NULL, NULL), 2);
    ck_assert_int_eq(itest_run_ledgerctl("audit verify --limit 3", NULL, NULL), 2);
    ck_assert_int_eq(itest_run_ledgerctl("audit verify --region eu --expect-head 5:abc", NULL, NULL), 2);
    ck_assert_int_eq(itest_run_ledgerctl("audit verify --expect-head "
                                         "5:0000000000000000000000000000000000000000000000000000000000000000",
                                         NULL, NULL),
                     2);
    ck_assert_int_eq(itest_run_ledgerctl("audit show --expect-head 1:x", NULL, NULL), 2);
    ck_assert_int_eq(itest_run_ledgerctl("audit frobnicate", NULL, NULL), 2);
    ck_assert_int_eq(itest_run_ledgerctl("audit", NULL, NULL), 2);
}
END_TEST

/* =================================================================== suite */

static Suite *audit_suite(void) {
    const itest_group groups[] = {
        {"append",
         120,
         {test_append_one_and_recompute_from_sql, test_append_batch_in_order, test_append_joins_the_callers_transaction,
          test_append_refuses_bad_events, test_concurrent_appenders_leave_no_gap, test_verify_streams_past_one_fetch,
          NULL}},
        {"guards", 30, {test_roles_cannot_edit_the_log, NULL}},
        {"tamper",
         60,
         {test_verify_detects_an_edited_row, test_verify_detects_a_rewritten_hash, test_verify_detects_a_deleted_row,
          test_verify_detects_deleted_first_rows, test_deleted_last_row_shows_only_in_the_head,
          test_anchors_show_a_cut_tail, NULL}},
        {"ledgerctl", 60, {test_ledgerctl_audit_verify_and_show, NULL}},
    };
    return itest_suite("audit", groups, sizeof groups / sizeof groups[0]);
}

int main(void) { return itest_run(audit_suite()); }
