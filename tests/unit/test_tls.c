/*
 * test_tls.c — ledgerd's `tls` configuration (api/config.c) and the loading of
 * its PEM files (api/tls.c): exactly one of a tls group and plain_http = true,
 * client_certs values, a key readable by others refused, size and PEM limits.
 * No network: handshakes and client certificates are tested against a real
 * ledgerd by tests/tls.sh.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "../../api/server.h"
#include "unit.h"

static char tmp_dir[] = "/tmp/gl_test_tls.XXXXXX";

/* Writes `content` to tmp_dir/name with `mode`; returns the path (static buffer, one per slot). */
static const char *write_file(int slot, const char *name, const char *content, mode_t mode) {
    static char paths[4][512];
    ck_assert(slot >= 0 && slot < 4);
    int n = snprintf(paths[slot], sizeof paths[slot], "%s/%s", tmp_dir, name);
    ck_assert(n > 0 && (size_t)n < sizeof paths[slot]);
    FILE *f = fopen(paths[slot], "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(fputs(content, f), 0);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(chmod(paths[slot], mode), 0);
    return paths[slot];
}

/* A ledgerd group with `extra` inside it. */
static const char *conf_with(const char *extra) {
    static char text[4096];
    int n = snprintf(text, sizeof text,
                     "ledgerd = { port = 8443;\n"
                     "  auth = { algorithm = \"HS256\"; key_file = \"k\"; issuer = \"i\"; audience = \"a\"; };\n"
                     "  %s\n};\n",
                     extra);
    ck_assert(n > 0 && (size_t)n < sizeof text);
    return write_file(0, "ledger.conf", text, 0600);
}

static void expect_config_error(const char *extra, const char *want) {
    gl_server_config c;
    gl_error err;
    gl_error_clear(&err);
    ck_assert_msg(!gl_server_config_load(conf_with(extra), &c, &err), "accepted: %s", extra);
    ck_assert_msg(strstr(err.message, want), "message '%s' lacks '%s'", err.message, want);
}

static gl_server_config expect_config_ok(const char *extra) {
    gl_server_config c;
    gl_error err;
    gl_error_clear(&err);
    ck_assert_msg(gl_server_config_load(conf_with(extra), &c, &err), "refused (%s): %s", extra, err.message);
    return c;
}

START_TEST(test_neither_tls_nor_plain_is_refused) {
    expect_config_error("", "no tls group");
    expect_config_error("plain_http = false;", "no tls group");
}
END_TEST

START_TEST(test_both_is_refused) {
    expect_config_error("plain_http = true; tls = { cert_file = \"c\"; key_file = \"k\"; };", "both a tls group");
}
END_TEST

START_TEST(test_plain_http_explicit) {
    gl_server_config c = expect_config_ok("plain_http = true;");
    ck_assert(!c.tls.enabled);
    expect_config_error("plain_http = 1;", "plain_http must be true or false");
}
END_TEST

START_TEST(test_tls_group) {
    gl_server_config c = expect_config_ok("tls = { cert_file = \"/c.pem\"; key_file = \"/k.pem\"; };");
    ck_assert(c.tls.enabled);
    ck_assert_str_eq(c.tls.cert_file, "/c.pem");
    ck_assert_str_eq(c.tls.key_file, "/k.pem");
    ck_assert_int_eq(c.tls.client_certs, GL_TLS_CLIENT_OFF);
    c = expect_config_ok("tls = { cert_file = \"c\"; key_file = \"k\"; client_ca_file = \"ca\"; };");
    ck_assert_int_eq(c.tls.client_certs, GL_TLS_CLIENT_OPTIONAL); /* a CA alone means optional */
    c = expect_config_ok("tls = { cert_file = \"c\"; key_file = \"k\"; client_ca_file = \"ca\"; client_certs = \"required\"; };");
    ck_assert_int_eq(c.tls.client_certs, GL_TLS_CLIENT_REQUIRED);
    c = expect_config_ok("tls = { cert_file = \"c\"; key_file = \"k\"; client_ca_file = \"ca\"; client_certs = \"off\"; };");
    ck_assert_int_eq(c.tls.client_certs, GL_TLS_CLIENT_OFF);
}
END_TEST

START_TEST(test_tls_group_errors) {
    expect_config_error("tls = { key_file = \"k\"; };", "cert_file is required");
    expect_config_error("tls = { cert_file = \"c\"; };", "key_file is required");
    expect_config_error("tls = { cert_file = \"c\"; key_file = \"k\"; client_ca_file = \"ca\"; client_certs = \"maybe\"; };",
                        "client_certs must be");
    expect_config_error("tls = { cert_file = \"c\"; key_file = \"k\"; client_certs = \"optional\"; };",
                        "needs tls.client_ca_file");
}
END_TEST

/* A self-signed P-256 certificate and its key, and a certificate of another
 * key: made in main() for this run (no key material in the repository). */
static char PEM[4096], KEY[4096], OTHER_PEM[4096];

static bool make_pair(const char *cn, char *cert_pem, size_t cert_cap, char *key_pem, size_t key_cap) {
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    time_t now = time(NULL);
    unsigned char serial[8] = {1, 2, 3, 4, 5, 6, 7, (unsigned char)cn[0]};
    bool ok = gnutls_x509_privkey_init(&key) >= 0 &&
              gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) >= 0 &&
              gnutls_x509_crt_init(&crt) >= 0 && gnutls_x509_crt_set_version(crt, 3) >= 0 &&
              gnutls_x509_crt_set_serial(crt, serial, sizeof serial) >= 0 &&
              gnutls_x509_crt_set_activation_time(crt, now - 60) >= 0 &&
              gnutls_x509_crt_set_expiration_time(crt, now + 3600) >= 0 &&
              gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn, (unsigned)strlen(cn)) >= 0 &&
              gnutls_x509_crt_set_key(crt, key) >= 0 && gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0) >= 0;
    size_t size = cert_cap - 1;
    ok = ok && gnutls_x509_crt_export(crt, GNUTLS_X509_FMT_PEM, cert_pem, &size) >= 0;
    if (ok) cert_pem[size] = '\0';
    size = key_cap - 1;
    ok = ok && gnutls_x509_privkey_export_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN, key_pem, &size) >= 0;
    if (ok) key_pem[size] = '\0';
    if (crt) gnutls_x509_crt_deinit(crt);
    if (key) gnutls_x509_privkey_deinit(key);
    return ok;
}

static gl_tls_config tls_config(const char *cert, const char *key, const char *ca, gl_tls_client_mode mode) {
    gl_tls_config t = {.enabled = true, .client_certs = mode};
    snprintf(t.cert_file, sizeof t.cert_file, "%s", cert);
    snprintf(t.key_file, sizeof t.key_file, "%s", key);
    snprintf(t.client_ca_file, sizeof t.client_ca_file, "%s", ca ? ca : "");
    return t;
}

static void expect_load_error(const gl_tls_config *cfg, const char *want) {
    gl_tls t;
    gl_error err;
    gl_error_clear(&err);
    ck_assert(!gl_tls_load(&t, cfg, &err));
    ck_assert_msg(strstr(err.message, want), "message '%s' lacks '%s'", err.message, want);
    ck_assert_ptr_null(t.cert_pem);
    ck_assert_ptr_null(t.key_pem);
}

START_TEST(test_load_ok_and_options) {
    const char *cert = write_file(1, "c.pem", PEM, 0644), *key = write_file(2, "k.pem", KEY, 0600),
               *ca = write_file(3, "ca.pem", PEM, 0644);
    gl_tls_config cfg = tls_config(cert, key, ca, GL_TLS_CLIENT_OPTIONAL);
    gl_tls t;
    gl_error err;
    gl_error_clear(&err);
    ck_assert_msg(gl_tls_load(&t, &cfg, &err), "%s", err.message);
    ck_assert_str_eq(t.cert_pem, PEM);
    ck_assert_str_eq(t.key_pem, KEY);
    ck_assert_str_eq(t.client_ca_pem, PEM);
    ck_assert_uint_eq(gl_tls_mhd_flags(&t), (unsigned)MHD_USE_TLS);
    const struct MHD_OptionItem *o = gl_tls_mhd_options(&t);
    bool priorities = false, trust = false;
    size_t i = 0;
    for (; o[i].option != MHD_OPTION_END; i++) {
        if (o[i].option == MHD_OPTION_HTTPS_PRIORITIES) priorities = !strcmp(o[i].ptr_value, GL_TLS_PRIORITIES);
        if (o[i].option == MHD_OPTION_HTTPS_MEM_TRUST) trust = o[i].ptr_value == t.client_ca_pem;
    }
    ck_assert(priorities && trust && i < 8);
    gl_tls_free(&t);
    ck_assert_ptr_null(t.key_pem);
    /* client_certs off: the CA is not read, no trust option */
    cfg = tls_config(cert, key, "/nonexistent", GL_TLS_CLIENT_OFF);
    ck_assert(gl_tls_load(&t, &cfg, &err));
    for (o = gl_tls_mhd_options(&t); o->option != MHD_OPTION_END; o++) ck_assert(o->option != MHD_OPTION_HTTPS_MEM_TRUST);
    gl_tls_free(&t);
}
END_TEST

START_TEST(test_plain_has_no_options) {
    gl_tls_config cfg = {.enabled = false};
    gl_tls t;
    gl_error err;
    ck_assert(gl_tls_load(&t, &cfg, &err));
    ck_assert_uint_eq(gl_tls_mhd_flags(&t), 0);
    ck_assert_int_eq(gl_tls_mhd_options(&t)[0].option, MHD_OPTION_END);
    gl_tls_free(&t);
}
END_TEST

START_TEST(test_key_readable_by_others_refused) {
    const char *cert = write_file(1, "c.pem", PEM, 0644);
    for (int i = 0; i < 3; i++) {
        static const mode_t modes[] = {0644, 0640, 0604};
        const char *key = write_file(2, "k.pem", KEY, modes[i]);
        gl_tls_config cfg = tls_config(cert, key, NULL, GL_TLS_CLIENT_OFF);
        expect_load_error(&cfg, "readable by group or others");
    }
}
END_TEST

START_TEST(test_files_refused) {
    const char *key = write_file(2, "k.pem", KEY, 0600);
    gl_tls_config cfg = tls_config("/nonexistent/c.pem", key, NULL, GL_TLS_CLIENT_OFF);
    expect_load_error(&cfg, "tls.cert_file \"/nonexistent/c.pem\"");
    const char *notpem = write_file(1, "c.pem", "not a certificate\n", 0644);
    cfg = tls_config(notpem, key, NULL, GL_TLS_CLIENT_OFF);
    expect_load_error(&cfg, "could not be read as PEM");
    const char *empty = write_file(1, "c.pem", "", 0644);
    cfg = tls_config(empty, key, NULL, GL_TLS_CLIENT_OFF);
    expect_load_error(&cfg, "empty or over");
    char *big = malloc(GL_TLS_PEM_MAX + 2);
    ck_assert_ptr_nonnull(big);
    memset(big, 'A', GL_TLS_PEM_MAX + 1);
    memcpy(big, PEM, strlen(PEM));
    big[GL_TLS_PEM_MAX + 1] = '\0';
    const char *huge = write_file(1, "c.pem", big, 0644);
    free(big);
    cfg = tls_config(huge, key, NULL, GL_TLS_CLIENT_OFF);
    expect_load_error(&cfg, "empty or over");
    cfg = tls_config(tmp_dir, key, NULL, GL_TLS_CLIENT_OFF);
    expect_load_error(&cfg, "not a regular file");
    const char *cert = write_file(1, "c.pem", PEM, 0644);
    cfg = tls_config(cert, key, "/nonexistent/ca.pem", GL_TLS_CLIENT_REQUIRED);
    expect_load_error(&cfg, "tls.client_ca_file");
}
END_TEST

START_TEST(test_pem_contents_checked) {
    const char *key = write_file(2, "k.pem", KEY, 0600);
    const char *other = write_file(1, "c.pem", OTHER_PEM, 0644);
    gl_tls_config cfg = tls_config(other, key, NULL, GL_TLS_CLIENT_OFF);
    expect_load_error(&cfg, "tls.key_file"); /* the key is not the certificate's */
    const char *garbled = write_file(1, "c.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", 0644);
    cfg = tls_config(garbled, key, NULL, GL_TLS_CLIENT_OFF);
    expect_load_error(&cfg, "tls.cert_file");
    const char *cert = write_file(1, "c.pem", PEM, 0644);
    const char *badca = write_file(3, "ca.pem", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", 0644);
    cfg = tls_config(cert, key, badca, GL_TLS_CLIENT_OPTIONAL);
    expect_load_error(&cfg, "tls.client_ca_file");
}
END_TEST

START_TEST(test_client_mode_names) {
    gl_tls_client_mode m;
    ck_assert(gl_tls_client_mode_parse("off", &m) && m == GL_TLS_CLIENT_OFF);
    ck_assert(gl_tls_client_mode_parse("optional", &m) && m == GL_TLS_CLIENT_OPTIONAL);
    ck_assert(gl_tls_client_mode_parse("required", &m) && m == GL_TLS_CLIENT_REQUIRED);
    ck_assert(!gl_tls_client_mode_parse("Required", &m) && !gl_tls_client_mode_parse("", &m));
    ck_assert_str_eq(gl_tls_client_mode_name(GL_TLS_CLIENT_REQUIRED), "required");
}
END_TEST

static Suite *tls_suite(void) {
    Suite *s = suite_create("tls");
    TCase *conf = tcase_create("config");
    tcase_add_test(conf, test_neither_tls_nor_plain_is_refused);
    tcase_add_test(conf, test_both_is_refused);
    tcase_add_test(conf, test_plain_http_explicit);
    tcase_add_test(conf, test_tls_group);
    tcase_add_test(conf, test_tls_group_errors);
    tcase_add_test(conf, test_client_mode_names);
    suite_add_tcase(s, conf);
    TCase *load = tcase_create("load");
    tcase_add_test(load, test_load_ok_and_options);
    tcase_add_test(load, test_plain_has_no_options);
    tcase_add_test(load, test_key_readable_by_others_refused);
    tcase_add_test(load, test_files_refused);
    tcase_add_test(load, test_pem_contents_checked);
    suite_add_tcase(s, load);
    return s;
}


int main(void) {
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    char other_key[4096];
    if (!make_pair("geoledger unit test", PEM, sizeof PEM, KEY, sizeof KEY) ||
        !make_pair("other", OTHER_PEM, sizeof OTHER_PEM, other_key, sizeof other_key)) {
        fputs("test_tls: cannot make a test certificate with GnuTLS\n", stderr);
        return EXIT_FAILURE;
    }
    int rc = unit_run(tls_suite());
    unit_remove_dir(tmp_dir);
    return rc;
}
