/*
 * test_money.c — unit tests for ledger/money.c: checked int64 arithmetic and
 * exact decimal parsing/formatting.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../ledger/money.h"

/* Parses a NUL-terminated literal; the length is taken with strlen. */
static bool parse(const char *s, int exponent, int64_t *out) {
    return gl_money_parse_decimal(s, strlen(s), exponent, out);
}

/* Asserts that `s` is rejected and that *out is left untouched. */
static void assert_rejected(const char *s, int exponent) {
    int64_t v = 4242;
    ck_assert_msg(!parse(s, exponent, &v), "accepted \"%s\" (exp %d) as %lld", s, exponent,
                  (long long)v);
    ck_assert_int_eq(v, 4242);
}

static void assert_parses(const char *s, int exponent, int64_t want) {
    int64_t v = 4242;
    ck_assert_msg(parse(s, exponent, &v), "rejected \"%s\" (exp %d)", s, exponent);
    ck_assert_msg(v == want, "\"%s\" (exp %d): got %lld, want %lld", s, exponent,
                  (long long)v, (long long)want);
}

static void assert_formats(int64_t minor, int exponent, const char *want) {
    char buf[64];
    int n = gl_money_format_decimal(minor, exponent, buf, sizeof buf);
    ck_assert_int_eq(n, (int)strlen(want));
    ck_assert_str_eq(buf, want);
}

/* ---- add / sub ---------------------------------------------------------- */

START_TEST(test_add_basic) {
    int64_t r = 0;
    ck_assert(gl_money_add(1250, -250, &r));
    ck_assert_int_eq(r, 1000);
    ck_assert(gl_money_add(INT64_MAX, 0, &r));
    ck_assert_int_eq(r, INT64_MAX);
    ck_assert(gl_money_add(INT64_MAX, INT64_MIN, &r));
    ck_assert_int_eq(r, -1);
    ck_assert(gl_money_add(INT64_MIN, 0, &r));
    ck_assert_int_eq(r, INT64_MIN);
}
END_TEST

START_TEST(test_add_overflow) {
    int64_t r = 77;
    ck_assert(!gl_money_add(INT64_MAX, 1, &r));
    ck_assert_int_eq(r, 77); /* untouched on failure */
    ck_assert(!gl_money_add(INT64_MIN, -1, &r));
    ck_assert(!gl_money_add(INT64_MAX, INT64_MAX, &r));
    ck_assert(!gl_money_add(INT64_MIN, INT64_MIN, &r));
    ck_assert_int_eq(r, 77);
    ck_assert(gl_money_add(INT64_MAX - 1, 1, &r));
    ck_assert_int_eq(r, INT64_MAX);
    ck_assert(gl_money_add(INT64_MIN + 1, -1, &r));
    ck_assert_int_eq(r, INT64_MIN);
}
END_TEST

START_TEST(test_sub_basic_and_overflow) {
    int64_t r = 77;
    ck_assert(gl_money_sub(1000, 1250, &r));
    ck_assert_int_eq(r, -250);
    r = 77;
    ck_assert(!gl_money_sub(INT64_MIN, 1, &r));
    ck_assert(!gl_money_sub(INT64_MAX, -1, &r));
    ck_assert(!gl_money_sub(0, INT64_MIN, &r)); /* -INT64_MIN does not exist */
    ck_assert(!gl_money_sub(INT64_MAX, INT64_MIN, &r));
    ck_assert_int_eq(r, 77);
    ck_assert(gl_money_sub(-1, INT64_MIN, &r));
    ck_assert_int_eq(r, INT64_MAX);
    ck_assert(gl_money_sub(INT64_MIN + 1, 1, &r));
    ck_assert_int_eq(r, INT64_MIN);
    ck_assert(gl_money_sub(0, INT64_MAX, &r));
    ck_assert_int_eq(r, -INT64_MAX);
}
END_TEST

/* ---- parse: valid input ------------------------------------------------- */

START_TEST(test_parse_valid) {
    assert_parses("12", 2, 1200);
    assert_parses("-12.5", 2, -1250);
    assert_parses("0.07", 2, 7);
    assert_parses("+3.10", 2, 310);
    assert_parses("0.5", 2, 50);
    assert_parses("1250", 0, 1250);
    assert_parses("1.234", 3, 1234);
    assert_parses("1.2", 3, 1200);
    assert_parses("0.0001", 4, 1);
    assert_parses("-0", 2, 0);
    assert_parses("+0", 0, 0);
    assert_parses("007.5", 1, 75);
    assert_parses("0000000000000000000000000000001", 0, 1); /* leading zeros never overflow */
}
END_TEST

/* The header says `len` bounds the input: bytes after it must be ignored. */
START_TEST(test_parse_respects_len) {
    int64_t v = 0;
    ck_assert(gl_money_parse_decimal("12.34xyz", 5, 2, &v));
    ck_assert_int_eq(v, 1234);
    ck_assert(gl_money_parse_decimal("123", 1, 0, &v));
    ck_assert_int_eq(v, 1);
    char no_nul[3] = {'4', '2', '7'};
    ck_assert(gl_money_parse_decimal(no_nul, 2, 0, &v));
    ck_assert_int_eq(v, 42);
    /* len 0 is the empty string even when the bytes after it are digits */
    v = 4242;
    ck_assert(!gl_money_parse_decimal("5", 0, 0, &v));
    ck_assert_int_eq(v, 4242);
}
END_TEST

/* ---- parse: exactness --------------------------------------------------- */

START_TEST(test_parse_too_many_decimals_rejected) {
    assert_rejected("12.345", 2); /* never rounded to 12.35 or truncated to 12.34 */
    assert_rejected("0.001", 2);
    assert_rejected("1.5", 0);
    assert_rejected("1.0", 0); /* exponent 0: no '.' at all */
    assert_rejected("1.00001", 4);
    assert_rejected("1.230", 2); /* extra zeros count too: "up to exponent" */
    assert_rejected("-0.125", 2);
}
END_TEST

/* ---- parse: malformed input classes ------------------------------------- */

START_TEST(test_parse_malformed) {
    static const char *const bad[] = {
        "",       "-",      "+",      ".",     "-.",    ".5",     "-.5",    "1.",
        "-1.",    "1..2",   "1.2.3",  " 1",    "1 ",    "\t1",    "1\n",    "- 1",
        "1e3",    "1E3",    "0x10",   "1,000", "1_000", "--1",    "+-1",    "-+1",
        "1-",     "1+",     "abc",    "1a",    "NaN",   "inf",    "١",      "1.2e1",
        "12,50",  "$12",    "12$",    "1'000", "0b1",   "0..1",   "1 .5",   "1. 5",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_rejected(bad[i], 2);
    }
    /* An embedded NUL inside `len` is junk, not a terminator. */
    int64_t v = 4242;
    ck_assert(!gl_money_parse_decimal("1\0" "2", 3, 2, &v));
    ck_assert_int_eq(v, 4242);
}
END_TEST

START_TEST(test_parse_bad_arguments) {
    int64_t v = 4242;
    ck_assert(!gl_money_parse_decimal(NULL, 0, 2, &v));
    ck_assert(!gl_money_parse_decimal("1", 1, 2, NULL));
    ck_assert(!gl_money_parse_decimal("1", 1, -1, &v));
    ck_assert(!gl_money_parse_decimal("1", 1, 5, &v));
    ck_assert_int_eq(v, 4242);
}
END_TEST

/* ---- parse: int64 limits ------------------------------------------------ */

START_TEST(test_parse_limits_exp0) {
    assert_parses("9223372036854775807", 0, INT64_MAX);
    assert_parses("-9223372036854775808", 0, INT64_MIN);
    assert_parses("+9223372036854775807", 0, INT64_MAX);
    assert_rejected("9223372036854775808", 0);
    assert_rejected("-9223372036854775809", 0);
    assert_rejected("99999999999999999999", 0);
    assert_rejected("-99999999999999999999", 0);
}
END_TEST

START_TEST(test_parse_limits_exp2) {
    assert_parses("92233720368547758.07", 2, INT64_MAX);
    assert_parses("-92233720368547758.08", 2, INT64_MIN);
    assert_rejected("92233720368547758.08", 2);
    assert_rejected("-92233720368547758.09", 2);
    /* overflow that only appears while zero-padding the fraction */
    assert_rejected("92233720368547758.1", 2);
    assert_rejected("-92233720368547758.1", 2);
    assert_rejected("92233720368547759", 2);
    assert_parses("92233720368547758", 2, INT64_MAX - 7);
}
END_TEST

START_TEST(test_parse_limits_exp4) {
    assert_parses("922337203685477.5807", 4, INT64_MAX);
    assert_parses("-922337203685477.5808", 4, INT64_MIN);
    assert_rejected("922337203685477.5808", 4);
    assert_rejected("922337203685478", 4);
    assert_rejected("-922337203685477.5809", 4);
}
END_TEST

/* ---- format ------------------------------------------------------------- */

START_TEST(test_format_basic) {
    assert_formats(-1250, 2, "-12.50");
    assert_formats(1250, 0, "1250");
    assert_formats(0, 0, "0");
    assert_formats(0, 2, "0.00");
    assert_formats(7, 2, "0.07");
    assert_formats(-7, 2, "-0.07");
    assert_formats(5, 4, "0.0005");
    assert_formats(-1, 1, "-0.1");
    assert_formats(1234, 3, "1.234");
    assert_formats(100, 2, "1.00");
    assert_formats(-100, 0, "-100");
}
END_TEST

START_TEST(test_format_limits) {
    assert_formats(INT64_MAX, 0, "9223372036854775807");
    assert_formats(INT64_MIN, 0, "-9223372036854775808");
    assert_formats(INT64_MAX, 2, "92233720368547758.07");
    assert_formats(INT64_MIN, 2, "-92233720368547758.08");
    assert_formats(INT64_MIN, 4, "-922337203685477.5808");
    assert_formats(INT64_MIN + 1, 3, "-9223372036854775.807");
}
END_TEST

START_TEST(test_format_buffer_too_small) {
    char buf[8];
    /* "-12.50" is 6 chars + NUL = 7 bytes */
    ck_assert_int_eq(gl_money_format_decimal(-1250, 2, buf, 7), 6);
    ck_assert_str_eq(buf, "-12.50");
    memset(buf, 'X', sizeof buf);
    ck_assert_int_eq(gl_money_format_decimal(-1250, 2, buf, 6), -1); /* no room for NUL */
    ck_assert_int_eq(buf[0], '\0'); /* no partial/stale text */
    ck_assert_int_eq(buf[6], 'X'); /* nothing written past cap */
    ck_assert_int_eq(gl_money_format_decimal(0, 0, buf, 1), -1);
    ck_assert_int_eq(gl_money_format_decimal(0, 0, buf, 2), 1);
    ck_assert_str_eq(buf, "0");
    ck_assert_int_eq(gl_money_format_decimal(0, 0, buf, 0), -1);
    ck_assert_int_eq(gl_money_format_decimal(0, 0, NULL, 10), -1);

    char big[21]; /* INT64_MIN at exp 0 is 20 chars */
    ck_assert_int_eq(gl_money_format_decimal(INT64_MIN, 0, big, 20), -1);
    ck_assert_int_eq(gl_money_format_decimal(INT64_MIN, 0, big, 21), 20);
    ck_assert_str_eq(big, "-9223372036854775808");
}
END_TEST

START_TEST(test_format_bad_exponent) {
    char buf[32];
    ck_assert_int_eq(gl_money_format_decimal(1, -1, buf, sizeof buf), -1);
    ck_assert_int_eq(gl_money_format_decimal(1, 5, buf, sizeof buf), -1);
}
END_TEST

/* ---- round trips -------------------------------------------------------- */

static void assert_round_trip(int64_t minor, int exponent) {
    char buf[32];
    int n = gl_money_format_decimal(minor, exponent, buf, sizeof buf);
    ck_assert_int_ge(n, 1);
    int64_t back = minor ^ 1; /* anything but the expected value */
    ck_assert_msg(gl_money_parse_decimal(buf, (size_t)n, exponent, &back),
                  "could not parse own output \"%s\" (exp %d)", buf, exponent);
    ck_assert_msg(back == minor, "\"%s\" (exp %d) came back as %lld, want %lld", buf,
                  exponent, (long long)back, (long long)minor);
}

START_TEST(test_round_trip_all_exponents) {
    static const int64_t values[] = {
        0,           1,          -1,          9,          -9,         10,
        99,          -100,       101,         1234,       -12345,     999999,
        1000000007,  INT64_MAX,  INT64_MIN,   INT64_MAX - 1, INT64_MIN + 1,
        4611686018427387904, -4611686018427387904,
    };
    for (int exponent = 0; exponent <= 4; exponent++) {
        for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
            assert_round_trip(values[i], exponent);
        }
    }
}
END_TEST

/* A deterministic pseudo-random sweep over the whole int64 range. */
START_TEST(test_round_trip_sweep) {
    uint64_t x = 0x9E3779B97F4A7C15u;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13; /* xorshift64 */
        x ^= x >> 7;
        x ^= x << 17;
        int64_t v;
        memcpy(&v, &x, sizeof v);
        assert_round_trip(v >> (i % 64), i % 5); /* vary magnitude too */
    }
}
END_TEST

/* Parse-then-format must reproduce canonical strings exactly. */
START_TEST(test_string_round_trip) {
    static const struct {
        const char *s;
        int exponent;
    } cases[] = {
        {"0", 0},         {"-5", 0},           {"0.00", 2},  {"-0.01", 2},
        {"12.50", 2},     {"1.000", 3},        {"-7.125", 3}, {"0.0001", 4},
        {"123.4567", 4},  {"-92233720368547758.08", 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = 0;
        char buf[32];
        ck_assert(parse(cases[i].s, cases[i].exponent, &v));
        ck_assert_int_ge(gl_money_format_decimal(v, cases[i].exponent, buf, sizeof buf), 1);
        ck_assert_str_eq(buf, cases[i].s);
    }
}
END_TEST

static Suite *money_suite(void) {
    Suite *s = suite_create("money");
    TCase *arith = tcase_create("arith");
    tcase_add_test(arith, test_add_basic);
    tcase_add_test(arith, test_add_overflow);
    tcase_add_test(arith, test_sub_basic_and_overflow);
    suite_add_tcase(s, arith);

    TCase *p = tcase_create("parse");
    tcase_add_test(p, test_parse_valid);
    tcase_add_test(p, test_parse_respects_len);
    tcase_add_test(p, test_parse_too_many_decimals_rejected);
    tcase_add_test(p, test_parse_malformed);
    tcase_add_test(p, test_parse_bad_arguments);
    tcase_add_test(p, test_parse_limits_exp0);
    tcase_add_test(p, test_parse_limits_exp2);
    tcase_add_test(p, test_parse_limits_exp4);
    suite_add_tcase(s, p);

    TCase *f = tcase_create("format");
    tcase_add_test(f, test_format_basic);
    tcase_add_test(f, test_format_limits);
    tcase_add_test(f, test_format_buffer_too_small);
    tcase_add_test(f, test_format_bad_exponent);
    suite_add_tcase(s, f);

    TCase *rt = tcase_create("round_trip");
    tcase_add_test(rt, test_round_trip_all_exponents);
    tcase_add_test(rt, test_round_trip_sweep);
    tcase_add_test(rt, test_string_round_trip);
    suite_add_tcase(s, rt);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(money_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
