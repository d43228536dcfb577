/*
 * test_mandate.c — unit tests for the engine's mandate decision
 * (ledger_check_mandate / ledger_mandate_consume in ledger/apply.c).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../../ledger/apply.h"

#define DAY_US (86400LL * 1000000)
#define NOW_US (20000 * DAY_US + 3600LL * 1000000) /* 01:00 UTC on day 20000 */

static ledger_mandate mandate(void) {
    ledger_mandate m = {0};
    m.id.b[0] = 1;
    m.wallet_account_id.b[0] = 2;
    snprintf(m.grantee, sizeof m.grantee, "%s", "app");
    snprintf(m.currency, sizeof m.currency, "%s", "EUR");
    m.max_per_charge = 300;
    m.max_per_day = 500;
    m.expires_at_us = NOW_US + DAY_US;
    m.day = 20000;
    return m;
}

static ledger_cmd charge(int64_t amount) {
    ledger_cmd c;
    ledger_cmd_init(&c, LEDGER_CMD_TRANSFER);
    snprintf(c.owner, sizeof c.owner, "%s", "app");
    snprintf(c.currency, sizeof c.currency, "%s", "EUR");
    c.debit_account_id.b[0] = 2;
    c.amount = amount;
    c.mandate_id.b[0] = 1;
    return c;
}

START_TEST(test_caps) {
    ledger_mandate m = mandate();
    ledger_cmd c = charge(300);
    ck_assert_int_eq(ledger_check_mandate(&m, &c, NOW_US), LEDGER_OK);
    c.amount = 301;
    ck_assert_int_eq(ledger_check_mandate(&m, &c, NOW_US), LEDGER_MANDATE_LIMIT_EXCEEDED);
    m.spent_today = 200;
    c.amount = 300;
    ck_assert_int_eq(ledger_check_mandate(&m, &c, NOW_US), LEDGER_OK);
    c.amount = 301;
    ck_assert_int_eq(ledger_check_mandate(&m, &c, NOW_US), LEDGER_MANDATE_LIMIT_EXCEEDED);
    m.spent_today = 500;
    c.amount = 1;
    ck_assert_int_eq(ledger_check_mandate(&m, &c, NOW_US), LEDGER_MANDATE_LIMIT_EXCEEDED);
    /* the caps are int64: no overflow near the top */
    m.max_per_charge = m.max_per_day = INT64_MAX;
    m.spent_today = INT64_MAX - 1;
    c.amount = 2;
    ck_assert_int_eq(ledger_check_mandate(&m, &c, NOW_US), LEDGER_MANDATE_LIMIT_EXCEEDED);
    c.amount = 1;
    ck_assert_int_eq(ledger_check_mandate(&m, &c, NOW_US), LEDGER_OK);
}
END_TEST

START_TEST(test_day_rolls_over) {
    ledger_mandate m = mandate();
    m.spent_today = 500;
    ledger_cmd c = charge(300);
    ck_assert_int_eq(ledger_check_mandate(&m, &c, NOW_US), LEDGER_MANDATE_LIMIT_EXCEEDED);
    int64_t tomorrow = (20001 * DAY_US); /* 00:00:00 UTC the next day */
    ck_assert_int_eq(ledger_check_mandate(&m, &c, tomorrow), LEDGER_OK);
    ck_assert_int_eq(ledger_check_mandate(&m, &c, tomorrow - 1), LEDGER_MANDATE_LIMIT_EXCEEDED);
    ledger_mandate_consume(&m, 300, tomorrow);
    ck_assert_int_eq(m.day, 20001);
    ck_assert_int_eq(m.spent_today, 300);
    ck_assert(m.touched);
    ledger_mandate_consume(&m, 200, tomorrow + 5);
    ck_assert_int_eq(m.spent_today, 500);
}
END_TEST

START_TEST(test_not_covered) {
    ledger_cmd c = charge(1);
    ck_assert_int_eq(ledger_check_mandate(NULL, &c, NOW_US), LEDGER_MANDATE_INVALID);
    ledger_mandate m = mandate();
    m.revoked = true;
    ck_assert_int_eq(ledger_check_mandate(&m, &c, NOW_US), LEDGER_MANDATE_INVALID);
    m = mandate();
    ck_assert_int_eq(ledger_check_mandate(&m, &c, m.expires_at_us), LEDGER_MANDATE_INVALID);
    ck_assert_int_eq(ledger_check_mandate(&m, &c, m.expires_at_us - 1), LEDGER_OK);
    snprintf(c.owner, sizeof c.owner, "%s", "app2");
    ck_assert_int_eq(ledger_check_mandate(&m, &c, NOW_US), LEDGER_MANDATE_INVALID);
    c = charge(1);
    snprintf(c.currency, sizeof c.currency, "%s", "USD");
    ck_assert_int_eq(ledger_check_mandate(&m, &c, NOW_US), LEDGER_MANDATE_INVALID);
    c = charge(1);
    c.debit_account_id.b[0] = 3;
    ck_assert_int_eq(ledger_check_mandate(&m, &c, NOW_US), LEDGER_MANDATE_INVALID);
    /* only a transfer may carry a mandate */
    c = charge(0);
    c.kind = LEDGER_CMD_POST;
    ck_assert_int_eq(ledger_validate_cmd(&c), LEDGER_MANDATE_INVALID);
    c.kind = LEDGER_CMD_TRANSFER;
    c.amount = 1;
    ck_assert_int_eq(ledger_validate_cmd(&c), LEDGER_OK);
    ck_assert_str_eq(ledger_code_name(LEDGER_MANDATE_LIMIT_EXCEEDED), "mandate_limit_exceeded");
}
END_TEST

int main(void) {
    Suite *s = suite_create("mandate");
    TCase *tc = tcase_create("decision");
    tcase_add_test(tc, test_caps);
    tcase_add_test(tc, test_day_rolls_over);
    tcase_add_test(tc, test_not_covered);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_ENV);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
