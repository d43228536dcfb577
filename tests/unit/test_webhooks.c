/*
 * test_webhooks.c — the parts of api/webhooks.c that need no database: the
 * Standard Webhooks signature (against the scheme's published test vector,
 * and round trips with our own secrets) and the target check that keeps
 * deliveries off loopback, private and link-local addresses (IP literals
 * only: no DNS in a unit test).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../../api/webhooks.h"

/* The Standard Webhooks libraries' own vector (24-byte secret). */
START_TEST(test_sign_known_vector) {
    char sig[GL_WEBHOOK_SIGNATURE_MAX + 1];
    const char *body = "{\"test\": 2432232314}";
    ck_assert(gl_webhook_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
                              strlen(body), sig));
    ck_assert_str_eq(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}
END_TEST

START_TEST(test_secret_shape_and_use) {
    char a[GL_WEBHOOK_SECRET_LEN + 1], b[GL_WEBHOOK_SECRET_LEN + 1];
    ck_assert(gl_webhook_secret_new(a));
    ck_assert(gl_webhook_secret_new(b));
    ck_assert_uint_eq(strlen(a), GL_WEBHOOK_SECRET_LEN);
    ck_assert(strncmp(a, "whsec_", 6) == 0 && a[GL_WEBHOOK_SECRET_LEN - 1] == '=');
    ck_assert_str_ne(a, b);
    char s1[GL_WEBHOOK_SIGNATURE_MAX + 1], s2[GL_WEBHOOK_SIGNATURE_MAX + 1], s3[GL_WEBHOOK_SIGNATURE_MAX + 1];
    ck_assert(gl_webhook_sign(a, "id", 1, "{}", 2, s1));
    ck_assert(gl_webhook_sign(b, "id", 1, "{}", 2, s2));
    ck_assert(gl_webhook_sign(a, "id", 2, "{}", 2, s3));
    ck_assert_str_ne(s1, s2); /* the key matters */
    ck_assert_str_ne(s1, s3); /* and the timestamp */
    ck_assert_uint_eq(strlen(s1), 47);
}
END_TEST

START_TEST(test_sign_refuses_malformed_secrets) {
    char sig[GL_WEBHOOK_SIGNATURE_MAX + 1];
    const char *bad[] = {"", "whsec_", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_MfKQ9r8G", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS",
                         "whsec_!!!!9r8GKYqrTwjUPD8ILPZIo2LaLaSw"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!gl_webhook_sign(bad[i], "id", 1, "{}", 2, sig), "accepted secret \"%s\"", bad[i]);
}
END_TEST

static bool refused(const char *url, bool allow_private) {
    gl_webhook_target t;
    const char *why = NULL;
    bool ok = gl_webhook_target_check(url, allow_private, &t, &why);
    ck_assert(ok == (why == NULL));
    return !ok;
}

START_TEST(test_private_targets_refused) {
    const char *urls[] = {
        "http://127.0.0.1/",         "http://127.1.2.3:8080/x", "http://10.0.0.1/",         "http://172.16.0.1/",
        "http://172.31.255.255/",    "http://192.168.0.1/",     "http://100.64.0.1/",       "http://169.254.169.254/",
        "http://0.0.0.0/",           "http://224.0.0.1/",       "http://240.0.0.1/",        "http://255.255.255.255/",
        "http://198.18.0.1/",        "http://[::1]/",           "http://[::]/",             "http://[fe80::1]/",
        "http://[fc00::1]/",         "http://[fd12:3456::1]/",  "http://[ff02::1]/",        "http://[::ffff:10.0.0.1]/",
        "http://[64:ff9b::7f00:1]/", "http://[2002:a00:1::1]/", "http://[2001:db8::1]/",    "https://[fec0::1]:8443/",
    };
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        ck_assert_msg(refused(urls[i], false), "%s was allowed", urls[i]);
        ck_assert_msg(!refused(urls[i], true), "%s refused with allow_private_targets", urls[i]);
    }
}
END_TEST

START_TEST(test_public_targets_pass) {
    gl_webhook_target t;
    const char *why = NULL;
    ck_assert(gl_webhook_target_check("https://8.8.8.8/hook?a=1", false, &t, &why));
    ck_assert(t.https && t.port == 443 && t.host_is_literal);
    ck_assert_str_eq(t.addr, "8.8.8.8");
    ck_assert(gl_webhook_target_check("http://[2001:4860:4860::8888]:8080/", false, &t, &why));
    ck_assert(!t.https && t.port == 8080);
    ck_assert_str_eq(t.host, "2001:4860:4860::8888");
    ck_assert(gl_webhook_target_check("http://172.32.0.1/", false, &t, &why)); /* just past 172.16/12 */
    ck_assert(gl_webhook_target_check("http://100.128.0.1/", false, &t, &why)); /* just past 100.64/10 */
}
END_TEST

START_TEST(test_malformed_urls_refused) {
    const char *urls[] = {"ftp://8.8.8.8/",        "file:///etc/passwd",       "http://user:pw@8.8.8.8/",
                          "http://8.8.8.8/#frag",  "http://8.8.8.8:0/",        "http://8.8.8.8:65536/",
                          "http://8.8.8.8:8a/",    "http:///x",                "http://8.8.8.8 /",
                          "http://[::1/",          "http://ex_ample.com/",     "gopher://8.8.8.8/",
                          "HTTP://8.8.8.8/",       "http://8.8.8.8/\x01"};
    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++)
        ck_assert_msg(refused(urls[i], true), "%s was accepted", urls[i]);
    char longer[GL_WEBHOOK_URL_MAX + 16] = "http://8.8.8.8/";
    memset(longer + strlen(longer), 'a', GL_WEBHOOK_URL_MAX);
    longer[sizeof longer - 1] = '\0';
    ck_assert(refused(longer, true));
}
END_TEST

static Suite *webhooks_suite(void) {
    Suite *s = suite_create("webhooks");
    TCase *sig = tcase_create("signature");
    tcase_add_test(sig, test_sign_known_vector);
    tcase_add_test(sig, test_secret_shape_and_use);
    tcase_add_test(sig, test_sign_refuses_malformed_secrets);
    suite_add_tcase(s, sig);
    TCase *target = tcase_create("target");
    tcase_add_test(target, test_private_targets_refused);
    tcase_add_test(target, test_public_targets_pass);
    tcase_add_test(target, test_malformed_urls_refused);
    suite_add_tcase(s, target);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(webhooks_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
