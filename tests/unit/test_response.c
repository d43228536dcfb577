/*
 * test_response.c — the answer a ledger result code gets (api/request.c,
 * api/http.c): an API error code, a message, an HTTP status and its error
 * type, for every code the engine has; every one of those codes is in
 * api/openapi.yaml's table of error codes and its ErrorCode enum (the
 * contract clients read; api/check-error-codes.sh checks the other codes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../api/request.h"
#include "unit.h"

static bool api_code_shaped(const char *s) {
    if (!s || !s[0]) return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || *p == '_')) return false;
    return true;
}

START_TEST(test_every_code_is_answered) {
    for (int c = 0; c < LEDGER_CODE_COUNT; c++) {
        const char *code = gl_api_code((ledger_code)c);
        ck_assert_msg(api_code_shaped(code), "code %d -> '%s'", c, code ? code : "(null)");
        ck_assert(gl_code_message((ledger_code)c)[0]);
        unsigned status = gl_status_of_code((ledger_code)c);
        ck_assert_msg(status >= 200 && status <= 599, "code %s -> status %u", code, status);
        if (c == LEDGER_OK || c == LEDGER_EXISTS) ck_assert_uint_lt(status, 300);
        else ck_assert_msg(status >= 400, "a refusal %s answered %u", code, status);
        ck_assert_str_ne(gl_type_of_status(status), "");
    }
}
END_TEST

START_TEST(test_the_names_clients_know) {
    ck_assert_str_eq(gl_api_code(LEDGER_MANDATE_INVALID), "mandate_required");
    ck_assert_uint_eq(gl_status_of_code(LEDGER_MANDATE_INVALID), 403);
    ck_assert_str_eq(gl_api_code(LEDGER_EXISTS_WITH_DIFFERENT_FIELDS), "reference_conflict");
    ck_assert_uint_eq(gl_status_of_code(LEDGER_EXISTS_WITH_DIFFERENT_FIELDS), 409);
    ck_assert_str_eq(gl_api_code(LEDGER_PENDING_EXPIRED), "pending_transfer_expired");
    ck_assert_str_eq(gl_api_code(LEDGER_INSUFFICIENT_FUNDS), "insufficient_funds");
    ck_assert_uint_eq(gl_status_of_code(LEDGER_INSUFFICIENT_FUNDS), 422);
    ck_assert_str_eq(gl_type_of_status(422), "rejected");
    ck_assert_str_eq(gl_type_of_status(503), "unavailable");
    ck_assert_str_eq(gl_type_of_status(429), "rate_limited");
}
END_TEST

/* Every code a refusal can carry is documented (run from the repository root). */
START_TEST(test_codes_are_in_the_contract) {
    FILE *f = fopen("api/openapi.yaml", "r");
    ck_assert_msg(f != NULL, "run from the repository root: api/openapi.yaml");
    static char spec[1 << 20];
    size_t n = fread(spec, 1, sizeof spec - 1, f);
    fclose(f);
    spec[n] = '\0';
    for (int c = 0; c < LEDGER_CODE_COUNT; c++) {
        if (c == LEDGER_OK || c == LEDGER_EXISTS) continue;
        char quoted[80], listed[80];
        snprintf(quoted, sizeof quoted, "`%s`", gl_api_code((ledger_code)c));
        snprintf(listed, sizeof listed, "\n        - %s\n", gl_api_code((ledger_code)c));
        ck_assert_msg(strstr(spec, quoted), "%s is not in api/openapi.yaml's table of error codes", quoted);
        ck_assert_msg(strstr(spec, listed), "%s is not in api/openapi.yaml's ErrorCode enum", quoted);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("response");
    TCase *tc = tcase_create("response");
    tcase_add_test(tc, test_every_code_is_answered);
    tcase_add_test(tc, test_the_names_clients_know);
    tcase_add_test(tc, test_codes_are_in_the_contract);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
