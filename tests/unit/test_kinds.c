/*
 * test_kinds.c — the account kinds table (ledger/kinds.h) and the client
 * address keys of api/clients.h: what decides who may create money and what
 * unauthenticated traffic is counted by.
 */
#include <regex.h>
#include <stdlib.h>
#include <string.h>

#include "../../api/clients.h"
#include "../../ledger/kinds.h"
#include "../../ledger/ledger.h"
#include "unit.h"

START_TEST(test_table_is_sound) {
    int n = 0;
    const gl_account_kind *k = gl_account_kinds(&n);
    ck_assert_int_ge(n, 9);
    regex_t domain; /* sql/0002: CREATE DOMAIN account_kind ... '^[a-z][a-z0-9_]{0,31}$' */
    ck_assert_int_eq(regcomp(&domain, "^[a-z][a-z0-9_]{0,31}$", REG_EXTENDED | REG_NOSUB), 0);
    for (int i = 0; i < n; i++) {
        ck_assert_msg(regexec(&domain, k[i].name, 0, NULL, 0) == 0, "%s", k[i].name);
        ck_assert_ptr_eq(gl_account_kind_find(k[i].name), &k[i]); /* names are unique */
        ck_assert(k[i].what && k[i].what[0]);
        uint32_t floor = gl_account_kind_floor_flag(&k[i]);
        if (k[i].may_go_below_zero) ck_assert_uint_eq(floor, 0);
        else if (k[i].normal == GL_NORMAL_CREDIT) ck_assert_uint_eq(floor, LEDGER_AF_DEBITS_MUST_NOT_EXCEED_CREDITS);
        else ck_assert_uint_eq(floor, LEDGER_AF_CREDITS_MUST_NOT_EXCEED_DEBITS);
    }
    regfree(&domain);
}
END_TEST

START_TEST(test_who_may_mint) {
    static const char *const bounded[] = {"wallet", "merchant", "earnings", "fee", "escrow"};
    static const char *const unbounded[] = {"funding", "issuance", "clearing", "settlement"};
    for (size_t i = 0; i < sizeof bounded / sizeof *bounded; i++) {
        const gl_account_kind *k = gl_account_kind_find(bounded[i]);
        ck_assert_ptr_nonnull(k);
        ck_assert_msg(!k->may_go_below_zero && k->normal == GL_NORMAL_CREDIT, "%s", bounded[i]);
    }
    for (size_t i = 0; i < sizeof unbounded / sizeof *unbounded; i++) {
        const gl_account_kind *k = gl_account_kind_find(unbounded[i]);
        ck_assert_ptr_nonnull(k);
        ck_assert_msg(k->may_go_below_zero, "%s", unbounded[i]);
    }
    ck_assert_ptr_null(gl_account_kind_find("Wallet"));
    ck_assert_ptr_null(gl_account_kind_find("wallet "));
    ck_assert_ptr_null(gl_account_kind_find(""));
    ck_assert_ptr_null(gl_account_kind_find(NULL));
}
END_TEST

START_TEST(test_address_keys) {
    char key[GL_ADDRESS_KEY_MAX];
    ck_assert(gl_address_key("127.0.0.2", key));
    ck_assert_str_eq(key, "127.0.0.2");
    ck_assert(gl_address_key("2001:db8:1:2:aaaa:bbbb:cccc:dddd", key));
    ck_assert_str_eq(key, "2001:db8:1:2::/64");
    char other[GL_ADDRESS_KEY_MAX];
    ck_assert(gl_address_key("2001:db8:1:2::99", other)); /* the same /64: one bucket */
    ck_assert_str_eq(key, other);
    ck_assert(gl_address_key("2001:db8:1:3::1", other));
    ck_assert_str_ne(key, other);
    ck_assert(gl_address_key("::ffff:10.0.0.1", key)); /* a v4-mapped address is its IPv4 one */
    ck_assert_str_eq(key, "10.0.0.1");
    ck_assert(!gl_address_key("unknown", key));
    ck_assert(!gl_address_key("", key));
    ck_assert(!gl_address_key("1.2.3.4.5", key));
}
END_TEST

int main(void) {
    Suite *s = suite_create("kinds");
    TCase *tc = tcase_create("kinds");
    tcase_add_test(tc, test_table_is_sound);
    tcase_add_test(tc, test_who_may_mint);
    tcase_add_test(tc, test_address_keys);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
