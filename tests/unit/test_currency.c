/*
 * test_currency.c — unit tests for ledger/currency.c: the ISO 4217 table and
 * its lookup.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../../ledger/currency.h"

static void assert_currency(const char *code, unsigned numeric, int exponent) {
    const gl_currency *c = gl_currency_find(code);
    ck_assert_msg(c != NULL, "%s not found", code);
    ck_assert_str_eq(c->code, code);
    ck_assert_uint_eq(c->numeric, numeric);
    ck_assert_msg(c->exponent == exponent, "%s: exponent %d, want %d", code, c->exponent,
                  exponent);
}

START_TEST(test_known_exponents) {
    assert_currency("JPY", 392, 0);
    assert_currency("KRW", 410, 0);
    assert_currency("ISK", 352, 0);
    assert_currency("VND", 704, 0);
    assert_currency("CLP", 152, 0);
    assert_currency("PYG", 600, 0);
    assert_currency("UGX", 800, 0);
    assert_currency("XAF", 950, 0);
    assert_currency("XOF", 952, 0);
    assert_currency("USD", 840, 2);
    assert_currency("EUR", 978, 2);
    assert_currency("GBP", 826, 2);
    assert_currency("CHF", 756, 2);
    assert_currency("BHD", 48, 3);
    assert_currency("KWD", 414, 3);
    assert_currency("JOD", 400, 3);
    assert_currency("OMR", 512, 3);
    assert_currency("TND", 788, 3);
    assert_currency("LYD", 434, 3);
    assert_currency("IQD", 368, 3);
    assert_currency("CLF", 990, 4);
    assert_currency("UYW", 927, 4);
    /* ISO writes these with leading zeros; in C "032" would be octal 26. */
    assert_currency("ALL", 8, 2);
    assert_currency("ARS", 32, 2);
    assert_currency("DZD", 12, 2);
}
END_TEST

/* First and last entries: catches an off-by-one in the bsearch bounds. */
START_TEST(test_table_ends_are_findable) {
    int n = gl_currency_count();
    const gl_currency *first = gl_currency_at(0);
    const gl_currency *last = gl_currency_at(n - 1);
    ck_assert_ptr_nonnull(first);
    ck_assert_ptr_nonnull(last);
    ck_assert_ptr_eq(gl_currency_find(first->code), first);
    ck_assert_ptr_eq(gl_currency_find(last->code), last);
    ck_assert_str_eq(first->code, "AED");
}
END_TEST

/* Every entry must be reachable through the public lookup. */
START_TEST(test_every_entry_findable) {
    for (int i = 0; i < gl_currency_count(); i++) {
        const gl_currency *c = gl_currency_at(i);
        ck_assert_ptr_nonnull(c);
        ck_assert_ptr_eq(gl_currency_find(c->code), c);
    }
}
END_TEST

START_TEST(test_unknown_codes) {
    static const char *const unknown[] = {
        "ABC", "ZZZ", "AAA", "QQQ",
        "XAU", "XAG", "XPT", "XPD", "XTS", "XXX", "XDR", /* no minor unit: excluded */
        "XBA", "XBB", "XBC", "XBD", "XSU", "XUA",
        "HRK", /* withdrawn 2023 (Croatia joined the euro) */
        "DEM", "FRF", "ITL", /* pre-euro legacy */
    };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        ck_assert_msg(gl_currency_find(unknown[i]) == NULL, "%s should be unknown", unknown[i]);
    }
}
END_TEST

START_TEST(test_malformed_codes) {
    static const char *const bad[] = {
        "",     "E",    "EU",   "eur",  "Eur",  "eUR",  "EURO", "EUR ", " EUR",
        "US1",  "U$D",  "ÉUR",  "EU\n", "usd",  "jpy",  "US-D", "EUR\t",
    };
    ck_assert_ptr_null(gl_currency_find(NULL));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(gl_currency_find(bad[i]) == NULL, "\"%s\" should be rejected", bad[i]);
    }
    /* A valid code followed by more bytes is not that code. */
    const char eur_nul_x[] = {'E', 'U', 'R', 'X', '\0'};
    ck_assert_ptr_null(gl_currency_find(eur_nul_x));
    /* But the code itself must still be found (the rejections above are not vacuous). */
    ck_assert_ptr_nonnull(gl_currency_find("EUR"));
}
END_TEST

START_TEST(test_table_sorted_unique_wellformed) {
    int n = gl_currency_count();
    for (int i = 0; i < n; i++) {
        const gl_currency *c = gl_currency_at(i);
        ck_assert_ptr_nonnull(c);
        ck_assert_msg(strlen(c->code) == 3, "entry %d has a bad code", i);
        for (int k = 0; k < 3; k++) {
            ck_assert_msg(c->code[k] >= 'A' && c->code[k] <= 'Z', "entry %d: %s", i, c->code);
        }
        ck_assert_msg(c->exponent >= 0 && c->exponent <= 4, "%s: exponent %d", c->code,
                      c->exponent);
        ck_assert_msg(c->numeric >= 1 && c->numeric <= 999, "%s: numeric %u", c->code,
                      c->numeric);
        if (i > 0) {
            const gl_currency *prev = gl_currency_at(i - 1);
            ck_assert_msg(strcmp(prev->code, c->code) < 0, "not sorted/unique at %d: %s, %s",
                          i, prev->code, c->code);
        }
    }
}
END_TEST

/* Numeric codes identify a currency too (settlement files use them). */
START_TEST(test_numeric_codes_unique) {
    int n = gl_currency_count();
    for (int i = 0; i < n; i++) {
        for (int j = i + 1; j < n; j++) {
            ck_assert_msg(gl_currency_at(i)->numeric != gl_currency_at(j)->numeric,
                          "%s and %s share numeric %u", gl_currency_at(i)->code,
                          gl_currency_at(j)->code, gl_currency_at(i)->numeric);
        }
    }
}
END_TEST

START_TEST(test_count_and_bounds) {
    int n = gl_currency_count();
    ck_assert_int_ge(n, 150);
    ck_assert_int_le(n, 185);
    ck_assert_ptr_null(gl_currency_at(-1));
    ck_assert_ptr_null(gl_currency_at(n));
    ck_assert_ptr_null(gl_currency_at(1 << 30));
}
END_TEST

static Suite *currency_suite(void) {
    Suite *s = suite_create("currency");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_known_exponents);
    tcase_add_test(tc, test_table_ends_are_findable);
    tcase_add_test(tc, test_every_entry_findable);
    tcase_add_test(tc, test_unknown_codes);
    tcase_add_test(tc, test_malformed_codes);
    tcase_add_test(tc, test_table_sorted_unique_wellformed);
    tcase_add_test(tc, test_numeric_codes_unique);
    tcase_add_test(tc, test_count_and_bounds);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(currency_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
