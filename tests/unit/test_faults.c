/*
 * test_faults.c — unit tests for the fault-isolation building blocks: the
 * circuit breaker's state machine (regions/breaker.c) on the real monotonic
 * clock with short periods, and what each SQLSTATE means to a caller
 * (ledger/pg.c: conflict to rerun, unavailable to answer 503, else an error).
 */
#include <check.h>
#include <stdlib.h>
#include <time.h>

#include "../../ledger/pg.h"
#include "../../regions/breaker.h"

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static gl_breaker make(int threshold, int open_ms, int open_max_ms) {
    gl_breaker b;
    gl_breaker_init(&b, (gl_breaker_config){.threshold = threshold, .open_ms = open_ms, .open_max_ms = open_max_ms});
    return b;
}

START_TEST(test_opens_after_threshold_consecutive_failures) {
    gl_breaker b = make(3, 500, 800);
    ck_assert(gl_breaker_allow(&b, NULL, NULL));
    gl_breaker_failure(&b);
    gl_breaker_failure(&b);
    gl_breaker_success(&b); /* a success in between resets the count */
    gl_breaker_failure(&b);
    gl_breaker_failure(&b);
    ck_assert_int_eq(gl_breaker_state_now(&b), GL_BREAKER_CLOSED);
    gl_breaker_failure(&b);
    ck_assert_int_eq(gl_breaker_state_now(&b), GL_BREAKER_OPEN);
    int retry = 0;
    ck_assert(!gl_breaker_allow(&b, &retry, NULL));
    ck_assert_int_eq(retry, 1); /* under 500 ms left: rounded up to whole seconds, at least 1 */
    ck_assert(gl_breaker_refuses(&b, &retry));
    ck_assert_uint_eq(gl_breaker_opened_total(&b), 1);
    gl_breaker_destroy(&b);
}
END_TEST

START_TEST(test_trip_opens_at_once) {
    gl_breaker b = make(100, 200, 800);
    gl_breaker_trip(&b);
    ck_assert_int_eq(gl_breaker_state_now(&b), GL_BREAKER_OPEN);
    ck_assert(!gl_breaker_allow(&b, NULL, NULL));
    gl_breaker_destroy(&b);
}
END_TEST

START_TEST(test_half_open_lets_one_probe_through) {
    gl_breaker b = make(1, 100, 400);
    gl_breaker_failure(&b);
    ck_assert(!gl_breaker_allow(&b, NULL, NULL));
    sleep_ms(150);
    ck_assert(!gl_breaker_refuses(&b, NULL)); /* the open period is over: queue, the writer probes */
    bool probe = false;
    ck_assert(gl_breaker_allow(&b, NULL, &probe)); /* the probe */
    ck_assert(probe);
    ck_assert_int_eq(gl_breaker_state_now(&b), GL_BREAKER_HALF_OPEN);
    ck_assert(!gl_breaker_allow(&b, NULL, &probe)); /* only one */
    ck_assert(!probe);
    gl_breaker_release_probe(&b); /* it never reached the database: the next caller probes */
    ck_assert(gl_breaker_allow(&b, NULL, &probe));
    ck_assert(probe);
    gl_breaker_success(&b);
    ck_assert_int_eq(gl_breaker_state_now(&b), GL_BREAKER_CLOSED);
    ck_assert(gl_breaker_allow(&b, NULL, NULL));
    ck_assert(gl_breaker_allow(&b, NULL, NULL));
    gl_breaker_destroy(&b);
}
END_TEST

/* Refusals are checked soon after the event and admissions well after the
 * period, so a slow (sanitizer, loaded) machine cannot flip an answer. */
START_TEST(test_failed_probe_doubles_the_open_period_up_to_the_cap) {
    gl_breaker b = make(1, 100, 250);
    gl_breaker_trip(&b);
    sleep_ms(150);
    ck_assert(gl_breaker_allow(&b, NULL, NULL));
    gl_breaker_failure(&b); /* the probe failed: open for 200 ms */
    ck_assert_int_eq(gl_breaker_state_now(&b), GL_BREAKER_OPEN);
    sleep_ms(20);
    ck_assert(!gl_breaker_allow(&b, NULL, NULL));
    sleep_ms(250);
    ck_assert(gl_breaker_allow(&b, NULL, NULL));
    gl_breaker_trip(&b); /* fails again: 400 ms, capped at 250 */
    sleep_ms(20);
    ck_assert(!gl_breaker_allow(&b, NULL, NULL));
    sleep_ms(300);
    ck_assert(gl_breaker_allow(&b, NULL, NULL));
    gl_breaker_success(&b);
    gl_breaker_trip(&b); /* closed in between: this opening is open_ms again */
    sleep_ms(150);
    ck_assert(gl_breaker_allow(&b, NULL, NULL));
    ck_assert_uint_eq(gl_breaker_opened_total(&b), 4);
    gl_breaker_destroy(&b);
}
END_TEST

START_TEST(test_state_names) {
    ck_assert_str_eq(gl_breaker_state_name(GL_BREAKER_CLOSED), "closed");
    ck_assert_str_eq(gl_breaker_state_name(GL_BREAKER_OPEN), "open");
    ck_assert_str_eq(gl_breaker_state_name(GL_BREAKER_HALF_OPEN), "half_open");
}
END_TEST

START_TEST(test_sqlstate_kinds) {
    /* rerun the batch */
    ck_assert_int_eq(gl_pg_kind_of_sqlstate("40001"), GL_ERR_CONFLICT);
    ck_assert_int_eq(gl_pg_kind_of_sqlstate("40P01"), GL_ERR_CONFLICT);
    ck_assert_int_eq(gl_pg_kind_of_sqlstate("23505"), GL_ERR_CONFLICT);
    /* the database cannot serve now: 503 */
    const char *unavailable[] = {"08000", "08003", "08006", "08001", "08004", "57P01", "57P02", "57P03",
                                 "25006", "53300", "53100", "58030", "40003"};
    for (size_t i = 0; i < sizeof unavailable / sizeof unavailable[0]; i++)
        ck_assert_msg(gl_pg_kind_of_sqlstate(unavailable[i]) == GL_ERR_UNAVAILABLE, "%s", unavailable[i]);
    /* up, but out of time: 503 without counting against the region */
    const char *busy[] = {"57014", "55P03", "25P03", "57P05"};
    for (size_t i = 0; i < sizeof busy / sizeof busy[0]; i++)
        ck_assert_msg(gl_pg_kind_of_sqlstate(busy[i]) == GL_ERR_BUSY, "%s", busy[i]);
    /* errors of the statement */
    const char *db[] = {"23514", "23503", "P0001", "42601", "22003", "42501", "XX000", "", "4", "400010"};
    for (size_t i = 0; i < sizeof db / sizeof db[0]; i++)
        ck_assert_msg(gl_pg_kind_of_sqlstate(db[i]) == GL_ERR_DB, "'%s'", db[i]);
    ck_assert_int_eq(gl_pg_kind_of_sqlstate(NULL), GL_ERR_DB);
}
END_TEST

START_TEST(test_error_is_constraint) {
    gl_error e;
    gl_error_set(&e, GL_ERR_DB, "whatever the text says: transfers_owner_reference");
    ck_assert(!gl_error_is_constraint(&e, "transfers_owner_reference")); /* never the text */
    snprintf(e.constraint, sizeof e.constraint, "transfers_owner_reference");
    ck_assert(gl_error_is_constraint(&e, "transfers_owner_reference"));
    ck_assert(!gl_error_is_constraint(&e, "transfers_owner"));
    gl_error_set(&e, GL_ERR_DB, "next"); /* set clears the fields */
    ck_assert_str_eq(e.constraint, "");
    ck_assert_str_eq(e.sqlstate, "");
    ck_assert(!gl_error_is_constraint(NULL, "x"));
}
END_TEST

static Suite *faults_suite(void) {
    Suite *s = suite_create("faults");
    TCase *breaker = tcase_create("breaker");
    tcase_add_test(breaker, test_opens_after_threshold_consecutive_failures);
    tcase_add_test(breaker, test_trip_opens_at_once);
    tcase_add_test(breaker, test_half_open_lets_one_probe_through);
    tcase_add_test(breaker, test_failed_probe_doubles_the_open_period_up_to_the_cap);
    tcase_add_test(breaker, test_state_names);
    suite_add_tcase(s, breaker);
    TCase *errors = tcase_create("errors");
    tcase_add_test(errors, test_sqlstate_kinds);
    tcase_add_test(errors, test_error_is_constraint);
    suite_add_tcase(s, errors);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(faults_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
