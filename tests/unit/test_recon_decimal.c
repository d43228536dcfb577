/*
 * test_recon_decimal.c — unit tests for reconciliation/decimal.c: exact
 * decimal strings (major units) to int64 minor units.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../reconciliation/decimal.h"

static void assert_minor(const char *s, int exponent, int64_t want) {
    int64_t v = 4242;
    gl_error err;
    gl_error_clear(&err);
    ck_assert_msg(gl_decimal_to_minor(s, strlen(s), exponent, &v, &err), "rejected \"%s\" (exp %d): %s", s,
                  exponent, err.message);
    ck_assert_msg(v == want, "\"%s\" (exp %d): got %lld, want %lld", s, exponent, (long long)v, (long long)want);
}

/* Rejected, *out untouched, the message holds `needle` and never the input. */
static void assert_rejected(const char *s, int exponent, const char *needle) {
    int64_t v = 4242;
    gl_error err;
    gl_error_clear(&err);
    ck_assert_msg(!gl_decimal_to_minor(s, strlen(s), exponent, &v, &err), "accepted \"%s\" (exp %d) as %lld", s,
                  exponent, (long long)v);
    ck_assert_int_eq(v, 4242);
    ck_assert_int_eq(err.kind, GL_ERR_INVALID);
    ck_assert_msg(strstr(err.message, needle) != NULL, "\"%s\": \"%s\" not in \"%s\"", s, needle, err.message);
    if (strlen(s) > 3) ck_assert_ptr_null(strstr(err.message, s));
}

START_TEST(test_documented_examples) {
    assert_minor("12.34", 2, 1234);
    assert_minor("12", 2, 1200);
    assert_minor("12.3", 2, 1230);
    assert_minor("-5.00", 2, -500);
    assert_minor("12.340", 2, 1234);
    assert_rejected("12.345", 2, "precision");
}
END_TEST

START_TEST(test_valid) {
    assert_minor("0", 2, 0);
    assert_minor("-0", 2, 0);
    assert_minor("+0.00", 2, 0);
    assert_minor("+7.5", 2, 750);
    assert_minor("0.07", 2, 7);
    assert_minor("007.10", 2, 710);
    assert_minor("1000", 0, 1000);                      /* JPY */
    assert_minor("1000.00", 0, 1000);                   /* JPY written with zeros */
    assert_minor("1.234", 3, 1234);                     /* BHD */
    assert_minor("-0.0001", 4, -1);                     /* CLF */
    assert_minor("10.000000000000000000000000", 2, 1000); /* many zeros: nothing lost */
    assert_minor("1.5", 9, 1500000000);
}
END_TEST

START_TEST(test_precision_lost) {
    assert_rejected("0.001", 2, "more than 2 decimal places");
    assert_rejected("12.3401", 2, "precision");
    assert_rejected("1.5", 0, "more than 0 decimal places");
    assert_rejected("0.00001", 4, "precision");
    assert_rejected("1.0000000000000000001", 2, "precision");
}
END_TEST

START_TEST(test_malformed) {
    static const char *const bad[] = {
        "-",     "+",     ".5",    "5.",   "-.5",  "1,000.00", "1 000", " 1",   "1 ",    "1e3",  "0x10",
        "1.2.3", "--1",   "+-1",   "1-",   "abc",  "1.5a",     "\xd9\xa1",    "1_000", "NaN",  "inf",  "1.-5",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) assert_rejected(bad[i], 2, "not a decimal amount");
    assert_rejected("", 2, "empty");
}
END_TEST

START_TEST(test_limits) {
    assert_minor("92233720368547758.07", 2, INT64_MAX);
    assert_minor("-92233720368547758.08", 2, INT64_MIN);
    assert_rejected("92233720368547758.08", 2, "out of range");
    assert_rejected("-92233720368547758.09", 2, "out of range");
    assert_minor("9223372036854775807", 0, INT64_MAX);
    assert_minor("-9223372036854775808", 0, INT64_MIN);
    assert_rejected("9223372036854775808", 0, "out of range");
    assert_rejected("99999999999999999999999999", 2, "out of range");
    assert_rejected("922337203685477580.8", 1, "out of range");
    /* Padding with the exponent overflows too. */
    assert_rejected("922337203685477580", 2, "out of range");
    /* Malformed wins over too large: the syntax is checked first. */
    assert_rejected("99999999999999999999999999x", 2, "not a decimal");
}
END_TEST

START_TEST(test_len_respected_and_arguments) {
    int64_t v = 0;
    gl_error err;
    ck_assert(gl_decimal_to_minor("12.345", 5, 2, &v, &err)); /* "12.34" */
    ck_assert_int_eq(v, 1234);
    ck_assert(gl_decimal_to_minor("7xyz", 1, 2, &v, &err));
    ck_assert_int_eq(v, 700);
    ck_assert(!gl_decimal_to_minor("1", 1, -1, &v, &err));
    ck_assert(!gl_decimal_to_minor("1", 1, GL_DECIMAL_EXPONENT_MAX + 1, &v, &err));
    ck_assert(!gl_decimal_to_minor(NULL, 0, 2, &v, &err));
    ck_assert(!gl_decimal_to_minor("1", 1, 2, NULL, &err));
    ck_assert(!gl_decimal_to_minor("1.5", 3, 0, &v, NULL)); /* NULL err is fine */
}
END_TEST

START_TEST(test_int64) {
    int64_t v = 0;
    gl_error err;
    ck_assert(gl_decimal_parse_int64("1250", 4, &v, &err));
    ck_assert_int_eq(v, 1250);
    ck_assert(gl_decimal_parse_int64("-9223372036854775808", 20, &v, &err));
    ck_assert_int_eq(v, INT64_MIN);
    ck_assert(gl_decimal_parse_int64("+9223372036854775807", 20, &v, &err));
    ck_assert_int_eq(v, INT64_MAX);
    v = 77;
    ck_assert(!gl_decimal_parse_int64("9223372036854775808", 19, &v, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "out of range"));
    ck_assert(!gl_decimal_parse_int64("12.50", 5, &v, &err));
    ck_assert(!gl_decimal_parse_int64("", 0, &v, &err));
    ck_assert(!gl_decimal_parse_int64(" 1", 2, &v, &err));
    ck_assert_int_eq(v, 77);
}
END_TEST

static Suite *decimal_suite(void) {
    Suite *s = suite_create("recon_decimal");
    TCase *tc = tcase_create("decimal");
    tcase_add_test(tc, test_documented_examples);
    tcase_add_test(tc, test_valid);
    tcase_add_test(tc, test_precision_lost);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_len_respected_and_arguments);
    tcase_add_test(tc, test_int64);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(decimal_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
