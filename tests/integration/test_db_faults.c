/*
 * test_db_faults.c — what the database can do to a caller, against the real
 * cluster of tests/run.sh: a query the server never answers (the client-side
 * deadline cuts it), a server-side statement timeout, a backend killed under
 * an idle connection, under a pipeline and under COPY (no call may spin or
 * hang; each returns an UNAVAILABLE error), the read pool's acquire timeout,
 * its breaker when the region cannot be reached, and errors carried as data
 * (SQLSTATE and constraint name, never the text).
 *
 * Check's per-test timeout is the guard against a spinning or hung call.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../ledger/deadline.h"
#include "../../ledger/pg.h"
#include "../../regions/pool.h"
#include "itest.h"

#define EU "eu"

static uint64_t ms_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (uint64_t)((t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000);
}

/* Ends db's backend from an admin connection, and waits until it is gone. */
static void kill_backend(PGconn *db) {
    char pid[16];
    snprintf(pid, sizeof pid, "%d", PQbackendPID(db));
    const char *p[1] = {pid};
    ck_assert_int_eq(itest_sql_i64(EU, "SELECT pg_terminate_backend($1::int, 5000)::int", 1, p), 1);
}

START_TEST(test_deadline_cuts_a_query_the_server_does_not_answer) {
    PGconn *db = itest_connect(EU, GL_ROLE_ADMIN); /* no statement_timeout: only the deadline can end it */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    uint64_t fired_before = gl_deadline_fired_total();
    gl_deadline d = gl_deadline_arm(db, 300);
    ck_assert_int_ge(d.slot, 0);
    gl_error err;
    PGresult *r = gl_pg_exec(db, "SELECT pg_sleep(30)", 0, NULL, &err);
    ck_assert(gl_deadline_disarm(&d));
    ck_assert_ptr_null(r);
    ck_assert_uint_lt(ms_since(&t0), 3000);
    ck_assert_int_eq(err.kind, GL_ERR_UNAVAILABLE);
    ck_assert_int_eq(PQstatus(db), CONNECTION_BAD);
    ck_assert_uint_gt(gl_deadline_fired_total(), fired_before);
    PQfinish(db);
}
END_TEST

/* A guarded connection: every round trip gets the hop time, and only a round
 * trip the server does not answer is cut, not a series of quick ones. */
START_TEST(test_guard_cuts_one_round_trip_not_many_quick_ones) {
    PGconn *db = itest_connect(EU, GL_ROLE_ADMIN);
    ck_assert(gl_deadline_guard(db, 300));
    gl_error err;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 40; i++) { /* 40 x 20 ms: well past 300 ms in all */
        PGresult *r = gl_pg_exec(db, "SELECT pg_sleep(0.02)", 0, NULL, &err);
        ck_assert_msg(r != NULL, "round trip %d: %s", i, err.message);
        PQclear(r);
    }
    ck_assert_uint_ge(ms_since(&t0), 700);
    ck_assert(!gl_deadline_take_fired(db));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_ptr_null(gl_pg_exec(db, "SELECT pg_sleep(30)", 0, NULL, &err));
    ck_assert_uint_lt(ms_since(&t0), 3000);
    ck_assert_int_eq(err.kind, GL_ERR_UNAVAILABLE);
    ck_assert_msg(strstr(err.message, "no answer") != NULL, "%s", err.message);
    ck_assert(gl_deadline_take_fired(db));
    ck_assert(!gl_deadline_take_fired(db)); /* taken */
    PQfinish(db);                           /* frees the guard (libpq instance data) */
}
END_TEST

START_TEST(test_service_connections_are_guarded_with_the_request_deadline) {
    /* request_ms 2000 > statement_ms 1500: a slow statement is ended by the
     * server (busy), the connection is not cut. */
    PGconn *db = itest_connect(EU, GL_ROLE_SERVICE);
    gl_error err;
    ck_assert_ptr_null(gl_pg_exec(db, "SELECT pg_sleep(5)", 0, NULL, &err));
    ck_assert_int_eq(err.kind, GL_ERR_BUSY);
    ck_assert(!gl_deadline_take_fired(db));
    ck_assert(gl_pg_reusable(db));
    PQfinish(db);
}
END_TEST

START_TEST(test_disarmed_deadline_never_fires) {
    PGconn *db = itest_connect(EU, GL_ROLE_SERVICE);
    gl_deadline d = gl_deadline_arm(db, 100);
    gl_error err;
    PGresult *r = gl_pg_exec(db, "SELECT 1", 0, NULL, &err);
    ck_assert_ptr_nonnull(r);
    PQclear(r);
    ck_assert(!gl_deadline_disarm(&d));
    struct timespec pause = {0, 300 * 1000000L};
    nanosleep(&pause, NULL);
    r = gl_pg_exec(db, "SELECT 2", 0, NULL, &err); /* the socket was left alone */
    ck_assert_ptr_nonnull(r);
    PQclear(r);
    ck_assert(!gl_deadline_disarm(&d)); /* twice is harmless */
    PQfinish(db);
}
END_TEST

START_TEST(test_statement_timeout_is_unavailable_and_keeps_the_connection) {
    PGconn *db = itest_connect(EU, GL_ROLE_SERVICE); /* the region's timeouts: statement 1500 ms */
    char *v = itest_sql_value(EU, "SELECT 1::text", 0, NULL);
    free(v);
    PGresult *cur = gl_pg_exec(db, "SELECT current_setting('statement_timeout')", 0, NULL, NULL);
    ck_assert_ptr_nonnull(cur);
    ck_assert_str_eq(PQgetvalue(cur, 0, 0), "1500ms");
    PQclear(cur);
    gl_error err;
    PGresult *r = gl_pg_exec(db, "SELECT pg_sleep(10)", 0, NULL, &err);
    ck_assert_ptr_null(r);
    ck_assert_str_eq(err.sqlstate, "57014");
    ck_assert_int_eq(err.kind, GL_ERR_BUSY);
    ck_assert_int_eq(PQstatus(db), CONNECTION_OK);
    r = gl_pg_exec(db, "SELECT current_setting('lock_timeout'), current_setting('idle_in_transaction_session_timeout')",
                   0, NULL, &err);
    ck_assert_ptr_nonnull(r);
    ck_assert_str_eq(PQgetvalue(r, 0, 0), "1s");
    ck_assert_str_eq(PQgetvalue(r, 0, 1), "10s");
    PQclear(r);
    PQfinish(db);
}
END_TEST

START_TEST(test_killed_backend_under_a_pipeline_fails_at_once) {
    PGconn *db = itest_connect(EU, GL_ROLE_SERVICE);
    gl_error err;
    ck_assert(gl_pg_pipeline_begin(db, &err));
    ck_assert(gl_pg_run(db, "SELECT 1", 0, NULL, &err)); /* queued */
    kill_backend(db);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    PGresult *r = gl_pg_exec(db, "SELECT 2", 0, NULL, &err);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(err.kind, GL_ERR_UNAVAILABLE);
    ck_assert_uint_lt(ms_since(&t0), 2000);
    ck_assert(!gl_pg_pipeline_end(db, &err)); /* and ending it does not spin either */
    PQfinish(db);
}
END_TEST

START_TEST(test_killed_backend_under_copy_fails_at_once) {
    PGconn *db = itest_connect(EU, GL_ROLE_SERVICE);
    kill_backend(db);
    gl_buf data = {0};
    gl_buf_append(&data, "x\n", 2);
    gl_error err;
    ck_assert(!gl_pg_copy(db, "COPY pg_temp.nothing FROM STDIN", &data, &err));
    ck_assert_int_eq(err.kind, GL_ERR_UNAVAILABLE);
    gl_buf_free(&data);
    PQfinish(db);
}
END_TEST

START_TEST(test_killed_backend_of_an_idle_connection_is_seen_without_a_query) {
    PGconn *db = itest_connect(EU, GL_ROLE_SERVICE);
    ck_assert(gl_pg_reusable(db));
    kill_backend(db);
    /* What the writers, the pools and the audit queue check before reusing a connection. */
    ck_assert(!gl_pg_reusable(db));
    PQfinish(db);
}
END_TEST

static gl_pool pool;
static gl_breaker breaker;

START_TEST(test_pool_acquire_times_out_when_every_connection_is_leased) {
    gl_breaker_init(&breaker, GL_BREAKER_DEFAULT);
    gl_error err;
    ck_assert(gl_pool_init(&pool, itest_region(EU), GL_ROLE_SERVICE, &breaker, 1, 150, &err));
    gl_lease a, b;
    int retry;
    ck_assert(gl_pool_acquire(&pool, &a, &retry, &err));
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert(!gl_pool_acquire(&pool, &b, &retry, &err));
    uint64_t waited = ms_since(&t0);
    ck_assert_uint_ge(waited, 140);
    ck_assert_uint_lt(waited, 2000);
    ck_assert_int_eq(err.kind, GL_ERR_UNAVAILABLE);
    ck_assert_uint_eq(atomic_load(&pool.acquire_timeouts), 1);
    ck_assert_int_eq(gl_breaker_state_now(&breaker), GL_BREAKER_CLOSED); /* load is not a failure */
    PGconn *first = a.db;
    gl_pool_release(&a);
    ck_assert(gl_pool_acquire(&pool, &b, &retry, &err));
    ck_assert_ptr_eq(b.db, first); /* the idle connection is reused */
    gl_pool_release(&b);
    gl_pool_destroy(&pool);
    gl_breaker_destroy(&breaker);
}
END_TEST

START_TEST(test_pool_drops_a_broken_connection_and_counts_it) {
    gl_breaker_init(&breaker, (gl_breaker_config){.threshold = 2, .open_ms = 5000, .open_max_ms = 5000});
    gl_error err;
    ck_assert(gl_pool_init(&pool, itest_region(EU), GL_ROLE_SERVICE, &breaker, 1, 100, &err));
    gl_lease l;
    int retry;
    ck_assert(gl_pool_acquire(&pool, &l, &retry, &err));
    kill_backend(l.db);
    PGresult *r = gl_pg_exec(l.db, "SELECT 1", 0, NULL, &err);
    ck_assert_ptr_null(r);
    gl_lease_failed(&l, &err);
    gl_pool_release(&l); /* closed, not pooled; one failure of two */
    ck_assert_int_eq(gl_breaker_state_now(&breaker), GL_BREAKER_CLOSED);
    ck_assert(gl_pool_acquire(&pool, &l, &retry, &err)); /* a fresh connection */
    r = gl_pg_exec(l.db, "SELECT 1", 0, NULL, &err);
    ck_assert_ptr_nonnull(r);
    PQclear(r);
    gl_pool_release(&l);
    gl_pool_destroy(&pool);
    gl_breaker_destroy(&breaker);
}
END_TEST

START_TEST(test_unreachable_region_opens_the_breaker_and_fails_fast) {
    gl_region dead = *itest_region(EU);
    snprintf(dead.conninfo, sizeof dead.conninfo, "host=/nonexistent-geoledger-socket-dir port=1 dbname=x user=y");
    gl_error err;
    PGconn *db = gl_region_connect(&dead, GL_ROLE_SERVICE, &err);
    ck_assert_ptr_null(db);
    ck_assert_int_eq(err.kind, GL_ERR_UNAVAILABLE);
    gl_breaker_init(&breaker, GL_BREAKER_DEFAULT);
    ck_assert(gl_pool_init(&pool, &dead, GL_ROLE_SERVICE, &breaker, 2, 100, &err));
    gl_lease l;
    int retry = 0;
    ck_assert(!gl_pool_acquire(&pool, &l, &retry, &err));
    ck_assert_int_eq(gl_breaker_state_now(&breaker), GL_BREAKER_OPEN);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert(!gl_pool_acquire(&pool, &l, &retry, &err));
    ck_assert_uint_lt(ms_since(&t0), 50); /* answered by the breaker */
    ck_assert_int_eq(err.kind, GL_ERR_UNAVAILABLE);
    ck_assert_int_ge(retry, 1);
    gl_pool_destroy(&pool);
    gl_breaker_destroy(&breaker);
}
END_TEST

START_TEST(test_errors_carry_sqlstate_and_constraint) {
    PGconn *db = itest_db(EU, GL_ROLE_SERVICE);
    gl_error err;
    ck_assert_ptr_null(gl_pg_exec(db, "SELECT expect_rows(1, 2, 'some_check')", 0, NULL, &err));
    ck_assert_str_eq(err.sqlstate, "P0001");
    ck_assert(gl_error_is_constraint(&err, "some_check"));
    ck_assert_int_eq(err.kind, GL_ERR_DB);
    ck_assert_ptr_null(gl_pg_exec(db, "SELECT 1/0", 0, NULL, &err));
    ck_assert_str_eq(err.sqlstate, "22012");
    ck_assert_str_eq(err.constraint, "");
    /* A unique violation names its index. */
    PGconn *admin = itest_db(EU, GL_ROLE_ADMIN);
    PGresult *r = gl_pg_exec(admin, "CREATE TEMP TABLE u (k int CONSTRAINT u_k_unique UNIQUE)", 0, NULL, &err);
    ck_assert_ptr_nonnull(r);
    PQclear(r);
    PQclear(gl_pg_exec(admin, "INSERT INTO u VALUES (1)", 0, NULL, &err));
    ck_assert_ptr_null(gl_pg_exec(admin, "INSERT INTO u VALUES (1)", 0, NULL, &err));
    ck_assert_str_eq(err.sqlstate, "23505");
    ck_assert_int_eq(err.kind, GL_ERR_CONFLICT);
    ck_assert(gl_error_is_constraint(&err, "u_k_unique"));
}
END_TEST

static Suite *faults_suite(void) {
    Suite *s = suite_create("faults");
    TCase *tc = tcase_create("database");
    tcase_add_checked_fixture(tc, itest_setup, itest_teardown);
    tcase_set_timeout(tc, 15);
    tcase_add_test(tc, test_deadline_cuts_a_query_the_server_does_not_answer);
    tcase_add_test(tc, test_guard_cuts_one_round_trip_not_many_quick_ones);
    tcase_add_test(tc, test_service_connections_are_guarded_with_the_request_deadline);
    tcase_add_test(tc, test_disarmed_deadline_never_fires);
    tcase_add_test(tc, test_statement_timeout_is_unavailable_and_keeps_the_connection);
    tcase_add_test(tc, test_killed_backend_under_a_pipeline_fails_at_once);
    tcase_add_test(tc, test_killed_backend_under_copy_fails_at_once);
    tcase_add_test(tc, test_killed_backend_of_an_idle_connection_is_seen_without_a_query);
    tcase_add_test(tc, test_pool_acquire_times_out_when_every_connection_is_leased);
    tcase_add_test(tc, test_pool_drops_a_broken_connection_and_counts_it);
    tcase_add_test(tc, test_unreachable_region_opens_the_breaker_and_fails_fast);
    tcase_add_test(tc, test_errors_carry_sqlstate_and_constraint);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return itest_run(faults_suite()); }
