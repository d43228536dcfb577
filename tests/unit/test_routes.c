/*
 * test_routes.c — the route table of api/handlers.c: every row is found by
 * its own method and template and by nothing else, ids match {id} and only
 * {id}, literal segments beat ids, and each row names a scope (or is public).
 */
#include <stdlib.h>
#include <string.h>

#include "../../api/server.h"
#include "unit.h"

#define ID "01a25073-376e-73f8-bb01-35c8e0c3c6a9"

/* Splits a path as gl_handle does and looks it up. */
static const gl_route *find(const char *method, const char *path) {
    static char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    char *seg[8];
    bool is_id[8] = {false};
    int n = 0;
    for (char *save = NULL, *t = strtok_r(buf, "/", &save); t && n < 8; t = strtok_r(NULL, "/", &save)) seg[n++] = t;
    gl_id id;
    if (n >= 3) is_id[2] = gl_id_parse(seg[2], &id);
    if (n == 6) is_id[4] = gl_id_parse(seg[4], &id); /* .../{id}/deliveries/{id}/redeliver */
    return gl_route_find(method, seg, n, is_id);
}

/* The template with every {id} filled in. */
static const char *concrete(const char *tmpl) {
    static char out[256];
    size_t len = 0;
    for (const char *p = tmpl; *p && len + sizeof ID < sizeof out;) {
        if (strncmp(p, "{id}", 4) == 0) {
            memcpy(out + len, ID, sizeof ID - 1);
            len += sizeof ID - 1;
            p += 4;
        } else {
            out[len++] = *p++;
        }
    }
    out[len] = '\0';
    return out;
}

START_TEST(test_every_row_finds_itself) {
    size_t n = 0;
    const gl_route *r = gl_routes(&n);
    ck_assert_uint_ge(n, 17);
    for (size_t i = 0; i < n; i++) {
        ck_assert_ptr_eq(find(r[i].method, concrete(r[i].path)), &r[i]);
        ck_assert_ptr_nonnull(r[i].fn);
        ck_assert(r[i].scope <= GL_SCOPE_COUNT);
        for (size_t j = 0; j < i; j++) /* one row per method and path */
            ck_assert(strcmp(r[i].method, r[j].method) != 0 || strcmp(r[i].path, r[j].path) != 0);
    }
}
END_TEST

START_TEST(test_what_does_not_match) {
    ck_assert_ptr_null(find("GET", "/v1/accounts/not-an-id"));
    ck_assert_ptr_null(find("DELETE", "/v1/accounts/" ID));
    ck_assert_ptr_null(find("GET", "/v1/accounts/" ID "/balance/x"));
    ck_assert_ptr_null(find("POST", "/v1/transfers/" ID "/refund"));
    ck_assert_ptr_null(find("GET", "/v1/transfers/batch"));
    ck_assert_ptr_null(find("POST", "/healthz"));
    ck_assert_ptr_null(find("GET", "/v2/accounts"));
    ck_assert_ptr_null(find("GET", "/"));
    ck_assert_ptr_null(find("get", "/healthz")); /* methods are exact */
}
END_TEST

START_TEST(test_literals_and_ids) {
    const gl_route *batch = find("POST", "/v1/transfers/batch");
    ck_assert_ptr_nonnull(batch);
    ck_assert_str_eq(batch->path, "/v1/transfers/batch");
    ck_assert_str_eq(find("GET", "/v1/transfers/" ID)->path, "/v1/transfers/{id}");
    ck_assert_str_eq(find("GET", "//v1//accounts/" ID "/")->path, "/v1/accounts/{id}"); /* empty segments drop */
    ck_assert_int_eq(find("GET", "/healthz")->scope, GL_SCOPE_COUNT);            /* public */
    ck_assert_int_eq(find("POST", "/v1/accounts")->scope, GL_SCOPE_ACCOUNTS_WRITE);
    ck_assert_int_eq(find("DELETE", "/v1/mandates/" ID)->scope, GL_SCOPE_MANDATES_WRITE);
    ck_assert_int_eq(find("GET", "/v1/mandates/" ID)->scope, GL_SCOPE_ACCOUNTS_READ);
    ck_assert_int_eq(find("POST", "/v1/webhook_endpoints")->scope, GL_SCOPE_WEBHOOKS_WRITE);
    ck_assert_int_eq(find("GET", "/v1/webhook_endpoints/" ID "/deliveries")->scope, GL_SCOPE_EVENTS_READ);
    ck_assert_str_eq(find("POST", "/v1/webhook_endpoints/" ID "/deliveries/" ID "/redeliver")->path,
                     "/v1/webhook_endpoints/{id}/deliveries/{id}/redeliver");
    ck_assert_ptr_null(find("POST", "/v1/webhook_endpoints/" ID "/deliveries/not-an-id/redeliver"));
    ck_assert_ptr_null(find("POST", "/v1/webhook_endpoints/" ID "/deliveries/" ID "/redeliver/x"));
}
END_TEST

int main(void) {
    Suite *s = suite_create("routes");
    TCase *tc = tcase_create("routes");
    tcase_add_test(tc, test_every_row_finds_itself);
    tcase_add_test(tc, test_what_does_not_match);
    tcase_add_test(tc, test_literals_and_ids);
    suite_add_tcase(s, tc);
    return unit_run(s);
}
