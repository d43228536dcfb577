/*
 * test_pgtls.c — every hop to PostgreSQL is encrypted and authenticated
 * (DESIGN §6; PCI DSS 4.2.1, 8.3.2), against the real cluster of tests/run.sh:
 *
 * - every role of every region connects through gl_region_connect with TLS
 *   (TLSv1.2 or later, as libpq and the server's pg_stat_ssl both say),
 *   sslmode=verify-full and a password (SCRAM), from a passfile, never from
 *   the configuration;
 * - the servers have ssl = on, scram-sha-256 verifiers for every login role,
 *   and a pg_hba.conf that accepts nothing but hostssl + scram-sha-256;
 * - a connection without TLS is refused by the server, one without the
 *   password or with a wrong one is refused, and a certificate that does not
 *   name the host we asked for is refused by the client before anything is
 *   sent.
 *
 * (A server with a certificate from another CA: tests/pgtls.sh, which starts one.)
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "itest.h"

static const gl_db_role ROLES[] = {GL_ROLE_SERVICE, GL_ROLE_ADMIN, GL_ROLE_RECON, GL_ROLE_REPORT};
#define N_ROLES (sizeof ROLES / sizeof ROLES[0])

/* The value of a connection option as libpq resolved it ("" if unset). */
static const char *conn_option(PGconn *db, const char *key, char *buf, size_t cap) {
    PQconninfoOption *opts = PQconninfo(db);
    ck_assert_ptr_nonnull(opts);
    buf[0] = '\0';
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, key) == 0 && o->val) snprintf(buf, cap, "%s", o->val);
    PQconninfoFree(opts);
    return buf;
}

/* One value of a query on db (aborts unless one row). */
static char *value(PGconn *db, const char *sql) {
    PGresult *r = PQexec(db, sql);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1, "%s: %s", sql,
                  PQresultErrorMessage(r));
    char *v = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    ck_assert_ptr_nonnull(v);
    return v;
}

/* A connection to eu as `role` with `extra` appended to its conninfo (libpq
 * keeps the last occurrence of a keyword), made without gl_region_connect so
 * that nothing else is added. The caller closes it. */
static PGconn *connect_with(gl_db_role role, const char *extra) {
    const gl_region *r = itest_region("eu");
    const char *base = role == GL_ROLE_ADMIN ? r->admin_conninfo : r->conninfo;
    char ci[GL_CONNINFO_MAX + 512];
    int n = snprintf(ci, sizeof ci, "%s connect_timeout=5 %s", base, extra);
    ck_assert(n > 0 && (size_t)n < sizeof ci);
    PGconn *db = PQconnectdb(ci);
    ck_assert_ptr_nonnull(db);
    return db;
}

static void assert_refused(PGconn *db, const char *what, const char *reason) {
    ck_assert_msg(PQstatus(db) == CONNECTION_BAD, "%s: the connection was accepted", what);
    ck_assert_msg(strstr(PQerrorMessage(db), reason) != NULL, "%s: refused, but not because \"%s\": %s", what,
                  reason, PQerrorMessage(db));
}

START_TEST(test_every_role_connects_over_verified_tls_with_a_password) {
    for (int i = 0; i < itest_cfg.n_regions; i++) {
        const gl_region *r = &itest_cfg.regions[i];
        for (size_t k = 0; k < N_ROLES; k++) {
            gl_error err;
            gl_error_clear(&err);
            PGconn *db = gl_region_connect(r, ROLES[k], &err);
            ck_assert_msg(db != NULL, "%s: %s", err.message, err.detail);
            char buf[256];
            ck_assert_msg(PQsslInUse(db), "region %s role %d: no TLS", r->name, (int)ROLES[k]);
            const char *proto = PQsslAttribute(db, "protocol");
            ck_assert_msg(proto && (strcmp(proto, "TLSv1.2") == 0 || strcmp(proto, "TLSv1.3") == 0),
                          "region %s: protocol %s", r->name, proto ? proto : "(none)");
            ck_assert_str_eq(conn_option(db, "sslmode", buf, sizeof buf), "verify-full");
            ck_assert_str_eq(conn_option(db, "channel_binding", buf, sizeof buf), "require");
            /* The password came from the passfile, not from the conninfo. */
            ck_assert_msg(PQconnectionUsedPassword(db), "region %s: no password was used", r->name);
            ck_assert_str_eq(conn_option(db, "password", buf, sizeof buf), "");
            ck_assert_str_ne(conn_option(db, "passfile", buf, sizeof buf), "");
            /* What the server saw: this very backend is on TLS 1.2+. */
            char *ssl = value(db, "SELECT ssl::text || ' ' || version FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
            ck_assert_msg(strcmp(ssl, "true TLSv1.2") == 0 || strcmp(ssl, "true TLSv1.3") == 0,
                          "region %s: pg_stat_ssl says \"%s\"", r->name, ssl);
            free(ssl);
            PQfinish(db);
        }
    }
}
END_TEST

START_TEST(test_no_configured_conninfo_carries_a_password) {
    for (int i = 0; i < itest_cfg.n_regions; i++) {
        const gl_region *r = &itest_cfg.regions[i];
        const char *cis[] = {r->conninfo, r->admin_conninfo, r->recon_conninfo, r->report_conninfo};
        for (size_t k = 0; k < 4; k++) {
            char *errmsg = NULL;
            PQconninfoOption *opts = PQconninfoParse(cis[k], &errmsg);
            ck_assert_msg(opts != NULL, "%s", errmsg ? errmsg : "?");
            for (PQconninfoOption *o = opts; o->keyword; o++) {
                if (strcmp(o->keyword, "password") == 0)
                    ck_assert_msg(o->val == NULL, "region %s: a password in the conninfo", r->name);
                if (strcmp(o->keyword, "sslmode") == 0) ck_assert_str_eq(o->val ? o->val : "", "verify-full");
                if (strcmp(o->keyword, "passfile") == 0) {
                    ck_assert_msg(o->val && *o->val, "region %s: no passfile", r->name);
                    struct stat st;
                    ck_assert_int_eq(stat(o->val, &st), 0);
                    ck_assert_msg((st.st_mode & 077) == 0, "%s is mode %o, not 0600", o->val,
                                  (unsigned)(st.st_mode & 0777));
                }
            }
            PQconninfoFree(opts);
        }
    }
}
END_TEST

START_TEST(test_servers_require_tls_and_scram_for_everyone) {
    for (int i = 0; i < itest_cfg.n_regions; i++) {
        gl_error err;
        gl_error_clear(&err);
        PGconn *db = gl_region_connect(&itest_cfg.regions[i], GL_ROLE_ADMIN, &err);
        ck_assert_msg(db != NULL, "%s: %s", err.message, err.detail);
        const char *checks[][2] = {
            {"SHOW ssl", "on"},
            {"SELECT current_setting('ssl_min_protocol_version') IN ('TLSv1.2', 'TLSv1.3')", "t"},
            {"SHOW password_encryption", "scram-sha-256"},
            /* every role that can log in has a SCRAM verifier (none without a password, no md5) */
            {"SELECT count(*) FROM pg_authid WHERE rolcanlogin AND "
             "(rolpassword IS NULL OR rolpassword NOT LIKE 'SCRAM-SHA-256$%')",
             "0"},
            /* pg_hba.conf: every line that lets a client in is hostssl + scram-sha-256 */
            {"SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL OR "
             "(auth_method <> 'reject' AND (type <> 'hostssl' OR auth_method <> 'scram-sha-256'))",
             "0"},
            {"SELECT count(*) FROM pg_hba_file_rules WHERE type = 'hostssl' AND auth_method = 'scram-sha-256'", "2"},
            /* no Unix socket: libpq has no TLS on one */
            {"SHOW unix_socket_directories", ""},
        };
        for (size_t k = 0; k < sizeof checks / sizeof checks[0]; k++) {
            char *v = value(db, checks[k][0]);
            ck_assert_msg(strcmp(v, checks[k][1]) == 0, "region %s: %s is \"%s\", expected \"%s\"",
                          itest_cfg.regions[i].name, checks[k][0], v, checks[k][1]);
            free(v);
        }
        PQfinish(db);
    }
}
END_TEST

START_TEST(test_connection_without_tls_is_refused_by_the_server) {
    /* channel_binding=disable too, or libpq itself would refuse before asking. */
    PGconn *db = connect_with(GL_ROLE_SERVICE, "sslmode=disable channel_binding=disable");
    assert_refused(db, "sslmode=disable", "no encryption"); /* pg_hba.conf's hostnossl ... reject */
    ck_assert(strstr(PQerrorMessage(db), "pg_hba.conf rejects connection") != NULL);
    ck_assert(!PQconnectionNeedsPassword(db)); /* refused before any authentication */
    PQfinish(db);
}
END_TEST

START_TEST(test_connection_without_the_password_is_refused) {
    /* An empty passfile of the right mode: libpq has no password to offer. Then
     * a wrong password: the server refuses it (28P01, "password authentication
     * failed"). The file is removed before anything is asserted. */
    char path[] = "/tmp/geoledger-nopass.XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    char extra[128];
    snprintf(extra, sizeof extra, "passfile=%s", path);
    PGconn *none = connect_with(GL_ROLE_SERVICE, extra);
    FILE *f = fopen(path, "w");
    if (f) {
        fputs("localhost:*:*:geoledger_service:not-the-password\n", f);
        fclose(f);
    }
    PGconn *wrong = f ? connect_with(GL_ROLE_SERVICE, extra) : NULL;
    unlink(path);

    ck_assert_msg(PQstatus(none) == CONNECTION_BAD, "accepted without a password");
    ck_assert_msg(PQconnectionNeedsPassword(none), "refused, but not for want of a password: %s",
                  PQerrorMessage(none));
    PQfinish(none);
    ck_assert_ptr_nonnull(wrong);
    assert_refused(wrong, "wrong password", "password authentication failed for user \"geoledger_service\"");
    PQfinish(wrong);
}
END_TEST

START_TEST(test_certificate_for_another_name_is_refused) {
    /* The server's certificate names localhost, 127.0.0.1 and ::1. Connecting to
     * the same address under another name must fail verify-full in the client,
     * during the handshake: no startup packet, no password is sent. */
    const char *names[] = {"db.example.invalid", "127.0.0.2"};
    for (size_t k = 0; k < 2; k++) {
        char extra[128];
        snprintf(extra, sizeof extra, "host=%s hostaddr=127.0.0.1", names[k]);
        PGconn *db = connect_with(GL_ROLE_ADMIN, extra);
        ck_assert_msg(PQstatus(db) == CONNECTION_BAD, "%s: accepted", names[k]);
        ck_assert_msg(strstr(PQerrorMessage(db), "does not match host name") != NULL, "%s: %s", names[k],
                      PQerrorMessage(db));
        ck_assert(!PQconnectionUsedPassword(db));
        PQfinish(db);
    }
    /* The same address under its certified name is accepted (the control). */
    PGconn *db = connect_with(GL_ROLE_ADMIN, "host=localhost hostaddr=127.0.0.1");
    ck_assert_msg(PQstatus(db) == CONNECTION_OK, "%s", PQerrorMessage(db));
    PQfinish(db);
}
END_TEST

static Suite *pgtls_suite(void) {
    Suite *s = suite_create("pgtls");
    TCase *tc = tcase_create("tls_and_scram");
    tcase_add_checked_fixture(tc, itest_setup, itest_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_every_role_connects_over_verified_tls_with_a_password);
    tcase_add_test(tc, test_no_configured_conninfo_carries_a_password);
    tcase_add_test(tc, test_servers_require_tls_and_scram_for_everyone);
    tcase_add_test(tc, test_connection_without_tls_is_refused_by_the_server);
    tcase_add_test(tc, test_connection_without_the_password_is_refused);
    tcase_add_test(tc, test_certificate_for_another_name_is_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return itest_run(pgtls_suite()); }
