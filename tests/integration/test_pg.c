/*
 * test_pg.c — ledger/pg.c against a real server: the per-connection cache of
 * prepared statements (a statement is prepared on its second run).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../ledger/pg.h"
#include "itest.h"

/* How many statements this session has prepared whose text is `sql`. */
static int64_t prepared_count(PGconn *db, const char *sql) {
    const char *p[1] = {sql};
    PGresult *r = PQexecParams(db, "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1", 1, NULL, p,
                               NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "pg_prepared_statements: %s", PQerrorMessage(db));
    int64_t n = gl_pg_get_i64(r, 0, 0);
    PQclear(r);
    return n;
}

static int64_t exec_i64(PGconn *db, const char *sql, const char *arg) {
    const char *p[1] = {arg};
    gl_error err;
    gl_error_clear(&err);
    PGresult *r = gl_pg_exec(db, sql, 1, p, &err);
    ck_assert_msg(r != NULL, "%s: %s", sql, err.message);
    ck_assert_int_eq(PQntuples(r), 1);
    int64_t v = gl_pg_get_i64(r, 0, 0);
    PQclear(r);
    return v;
}

static const char add_one[] = "SELECT $1::int8 + 1";

START_TEST(test_prepared_from_the_second_run) {
    PGconn *db = itest_connect("eu", GL_ROLE_SERVICE);
    ck_assert_int_eq(exec_i64(db, add_one, "41"), 42);
    ck_assert_int_eq(prepared_count(db, add_one), 0); /* a one-off is not prepared */
    ck_assert_int_eq(exec_i64(db, add_one, "1"), 2);
    ck_assert_int_eq(prepared_count(db, add_one), 1);
    for (int i = 0; i < 10; i++) ck_assert_int_eq(exec_i64(db, add_one, "7"), 8); /* runs prepared, once */
    ck_assert_int_eq(prepared_count(db, add_one), 1);
    /* Same text in another buffer: the same statement (keyed by text, not address). */
    char copy[sizeof add_one];
    memcpy(copy, add_one, sizeof add_one);
    ck_assert_int_eq(exec_i64(db, copy, "9"), 10);
    ck_assert_int_eq(prepared_count(db, add_one), 1);
    PQfinish(db);
}
END_TEST

START_TEST(test_binary_parameters_run_prepared) {
    PGconn *db = itest_connect("eu", GL_ROLE_SERVICE);
    const char *sql = "SELECT cardinality($1::int8[])";
    for (int round = 0; round < 3; round++) {
        gl_buf arr = {0};
        gl_bin_array_begin(&arr, GL_OID_INT8);
        for (int i = 0; i <= round; i++) gl_bin_i64(&arr, i);
        gl_bin_array_finish(&arr, round + 1);
        gl_buf *p[1] = {&arr};
        gl_error err;
        gl_error_clear(&err);
        PGresult *r = gl_pg_exec_bin(db, sql, 1, p, &err);
        ck_assert_msg(r != NULL, "%s", err.message);
        ck_assert_int_eq(gl_pg_get_i64(r, 0, 0), round + 1);
        PQclear(r);
        gl_buf_free(&arr);
    }
    ck_assert_int_eq(prepared_count(db, sql), 1);
    PQfinish(db);
}
END_TEST

/* A PREPARE refused in an aborted transaction fails like the query would;
 * after ROLLBACK the statement prepares and runs. */
START_TEST(test_failed_prepare_reports_and_recovers) {
    PGconn *db = itest_connect("eu", GL_ROLE_SERVICE);
    ck_assert_int_eq(exec_i64(db, add_one, "1"), 2); /* first run: remembered, not prepared */
    gl_error err;
    gl_error_clear(&err);
    ck_assert(gl_pg_run(db, "BEGIN", 0, NULL, &err));
    ck_assert(!gl_pg_run(db, "SELECT 1/0", 0, NULL, &err));
    const char *p[1] = {"1"};
    gl_error_clear(&err);
    PGresult *r = gl_pg_exec(db, add_one, 1, p, &err); /* second run: PREPARE in the aborted transaction */
    ck_assert_ptr_null(r);
    ck_assert_msg(strstr(err.message, "aborted") != NULL, "unexpected error: %s", err.message);
    ck_assert(gl_pg_run(db, "ROLLBACK", 0, NULL, &err));
    ck_assert_int_eq(exec_i64(db, add_one, "2"), 3);
    ck_assert_int_eq(prepared_count(db, add_one), 1);
    PQfinish(db);
}
END_TEST

/* PQreset starts a new session without the server's prepared statements:
 * the cache must forget them, or the next run would name a missing one. */
START_TEST(test_reset_forgets_prepared_statements) {
    PGconn *db = itest_connect("eu", GL_ROLE_SERVICE);
    ck_assert_int_eq(exec_i64(db, add_one, "1"), 2);
    ck_assert_int_eq(exec_i64(db, add_one, "2"), 3);
    ck_assert_int_eq(prepared_count(db, add_one), 1);
    PQreset(db);
    ck_assert_int_eq(PQstatus(db), CONNECTION_OK);
    ck_assert_int_eq(prepared_count(db, add_one), 0);
    ck_assert_int_eq(exec_i64(db, add_one, "3"), 4);
    ck_assert_int_eq(exec_i64(db, add_one, "4"), 5);
    ck_assert_int_eq(prepared_count(db, add_one), 1);
    PQfinish(db);
}
END_TEST

/* More distinct statements than the cache holds: all still run (unprepared past the cache). */
START_TEST(test_full_cache_still_runs_everything) {
    PGconn *db = itest_connect("eu", GL_ROLE_SERVICE);
    char sql[64];
    for (int i = 0; i < 300; i++) {
        snprintf(sql, sizeof sql, "SELECT $1::int8 + %d", i);
        ck_assert_int_eq(exec_i64(db, sql, "1"), 1 + i);
        ck_assert_int_eq(exec_i64(db, sql, "2"), 2 + i);
    }
    snprintf(sql, sizeof sql, "SELECT $1::int8 + %d", 299);
    ck_assert_int_eq(prepared_count(db, sql), 0); /* past the cache's size */
    snprintf(sql, sizeof sql, "SELECT $1::int8 + %d", 0);
    ck_assert_int_eq(prepared_count(db, sql), 1);
    PQfinish(db);
}
END_TEST

static Suite *pg_suite(void) {
    const itest_group groups[] = {
        {"prepared",
         60,
         {test_prepared_from_the_second_run, test_binary_parameters_run_prepared,
          test_failed_prepare_reports_and_recovers, test_reset_forgets_prepared_statements,
          test_full_cache_still_runs_everything, NULL}},
    };
    return itest_suite("pg", groups, sizeof groups / sizeof groups[0]);
}

int main(void) { return itest_run(pg_suite()); }
