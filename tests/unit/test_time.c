/*
 * test_time.c — RFC 3339 parsing and formatting (ledger/pg.c), which every
 * time a client or a settlement file sends goes through: valid spellings, the
 * refusals with their reasons, the 1970..9999 bounds with offsets that would
 * push an instant past them (a year-10000 instant formatted as garbage: found
 * by fuzz/fuzz_rfc3339), and the round trip through gl_format_rfc3339_us.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../../ledger/pg.h"

static int64_t parse_ok(const char *s) {
    int64_t us = -1;
    const char *why = gl_rfc3339_parse(s, true, &us);
    ck_assert_msg(why == NULL, "%s: %s", s, why ? why : "");
    return us;
}

static void parse_fails(const char *s, bool allow_ns, const char *want) {
    int64_t us = 0;
    const char *why = gl_rfc3339_parse(s, allow_ns, &us);
    ck_assert_msg(why != NULL, "%s parsed", s);
    ck_assert_msg(strstr(why, want) != NULL, "%s: '%s' lacks '%s'", s, why, want);
}

START_TEST(test_valid) {
    ck_assert_int_eq(parse_ok("1970-01-01T00:00:00Z"), 0);
    ck_assert_int_eq(parse_ok("1970-01-01t00:00:01z"), 1000000);
    ck_assert_int_eq(parse_ok("2026-11-25T12:00:00+01:00"), parse_ok("2026-11-25T11:00:00Z"));
    ck_assert_int_eq(parse_ok("2026-11-25T12:00:00.5Z") % 1000000, 500000);
    ck_assert_int_eq(parse_ok("2026-11-25T12:00:00.123456789Z") % 1000000, 123456); /* truncated */
    ck_assert_int_eq(parse_ok("2024-02-29T00:00:00Z") - parse_ok("2024-02-28T00:00:00Z"), INT64_C(86400000000));
    ck_assert_int_eq(parse_ok("9999-12-31T23:59:59.999999Z"), INT64_C(253402300799999999));
    ck_assert_int_eq(parse_ok("9999-12-31T23:59:59+23:59"), INT64_C(253402300799) * 1000000 - (23 * 3600 + 59 * 60) * INT64_C(1000000));
}
END_TEST

START_TEST(test_refused) {
    parse_fails("2026-11-25", true, "THH:MM:SS");
    parse_fails("2026-13-01T00:00:00Z", true, "no such date");
    parse_fails("2023-02-29T00:00:00Z", true, "no such date");
    parse_fails("1969-12-31T23:59:59Z", true, "no such date");
    parse_fails("1970-01-01T00:30:00+01:00", true, "before 1970");
    parse_fails("9999-12-31T23:59:59-00:01", true, "after 9999");
    parse_fails("9999-12-31T23:59:59.999999999-23:59", true, "after 9999");
    parse_fails("2026-11-25T24:00:00Z", true, "out of range");
    parse_fails("2026-11-25T23:59:60Z", true, "out of range");
    parse_fails("2026-11-25T12:00:00", true, "zone");
    parse_fails("2026-11-25T12:00:00+1:00", true, "offset");
    parse_fails("2026-11-25T12:00:00.Z", true, "no digits");
    parse_fails("2026-11-25T12:00:00.1234567Z", false, "more than 6");
    parse_fails("2026-11-25T12:00:00.1234567890Z", true, "more than 9");
    parse_fails("2026-11-25T12:00:00Zjunk", true, "trailing");
    parse_fails(NULL, true, "missing");
}
END_TEST

START_TEST(test_round_trip) {
    const char *cases[] = {"1970-01-01T00:00:00.000000Z", "2026-12-07T06:18:21.123456Z",
                           "9999-12-31T23:59:59.999999Z", "2000-02-29T12:34:56.000001Z"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t us = parse_ok(cases[i]);
        char out[40];
        gl_format_rfc3339_us(us, out, sizeof out);
        ck_assert_str_eq(out, cases[i]);
    }
    /* Whatever parses formats to a string that parses back to the same instant. */
    int64_t us = parse_ok("9999-12-31T23:59:59+23:59");
    char out[40];
    gl_format_rfc3339_us(us, out, sizeof out);
    ck_assert_int_eq(parse_ok(out), us);
}
END_TEST

int main(void) {
    Suite *s = suite_create("time");
    TCase *tc = tcase_create("rfc3339");
    tcase_add_test(tc, test_valid);
    tcase_add_test(tc, test_refused);
    tcase_add_test(tc, test_round_trip);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
