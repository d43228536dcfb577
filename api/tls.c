/*
 * tls.c — ledgerd's HTTPS (see tls.h for the policy): loading the PEM files,
 * the libmicrohttpd options, the handshake-time check of a client
 * certificate, and the per-request binding of its CN to the token's `sub`.
 *
 * libmicrohttpd (Debian's build) runs TLS on GnuTLS: it takes the PEM texts
 * and the priority string as options, and gives a connection's
 * gnutls_session_t to the application (MHD_CONNECTION_INFO_GNUTLS_SESSION).
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "server.h"

#define KEY_PEM_MAX ((size_t)64 * 1024)

bool gl_tls_client_mode_parse(const char *s, gl_tls_client_mode *out) {
    assert(s && out);
    if (strcmp(s, "off") == 0) *out = GL_TLS_CLIENT_OFF;
    else if (strcmp(s, "optional") == 0) *out = GL_TLS_CLIENT_OPTIONAL;
    else if (strcmp(s, "required") == 0) *out = GL_TLS_CLIENT_REQUIRED;
    else return false;
    return true;
}

const char *gl_tls_client_mode_name(gl_tls_client_mode m) {
    return m == GL_TLS_CLIENT_REQUIRED ? "required" : m == GL_TLS_CLIENT_OPTIONAL ? "optional" : "off";
}

/* ---------- loading ---------- */

/* Reads a whole PEM file of at most `limit` bytes into a NUL-terminated
 * buffer. A private key (is_key) must not be readable by group or others:
 * a key that leaked to another local user is no key. */
static char *read_pem(const char *what, const char *path, size_t limit, bool is_key, gl_error *err) {
    assert(what && path && limit > 0);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        gl_error_set(err, GL_ERR_CONFIG, "ledgerd: tls.%s \"%s\": %s", what, path, strerror(errno));
        return NULL;
    }
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        gl_error_set(err, GL_ERR_CONFIG, "ledgerd: tls.%s \"%s\" is not a regular file", what, path);
    } else if (is_key && (st.st_mode & (S_IRWXG | S_IRWXO))) {
        gl_error_set(err, GL_ERR_CONFIG,
                     "ledgerd: tls.%s \"%s\" is readable by group or others (mode %04o): refusing it; chmod 600 it",
                     what, path, (unsigned)(st.st_mode & 07777));
    } else if (st.st_size <= 0 || (uintmax_t)st.st_size > limit) {
        gl_error_set(err, GL_ERR_CONFIG, "ledgerd: tls.%s \"%s\" is empty or over %zu bytes", what, path, limit);
    } else if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory");
    } else {
        size_t got = 0, want = (size_t)st.st_size;
        while (got < want) {
            ssize_t n = read(fd, buf + got, want - got);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            got += (size_t)n;
        }
        buf[got] = '\0';
        if (got != want || !strstr(buf, "-----BEGIN ")) {
            gl_error_set(err, GL_ERR_CONFIG, "ledgerd: tls.%s \"%s\" could not be read as PEM", what, path);
            explicit_bzero(buf, want);
            free(buf);
            buf = NULL;
        }
    }
    close(fd);
    return buf;
}

static void free_secret(char **p) {
    if (*p) {
        explicit_bzero(*p, strlen(*p));
        free(*p);
    }
    *p = NULL;
}

/* Parses the PEM texts as GnuTLS will when the daemon starts, so that a bad
 * file is a configuration error naming the file, not "cannot listen": the key
 * must be the certificate's, the client CA file must hold a certificate. */
/* How many certificates a PEM text holds (< 0: a GnuTLS error, none parse). */
static int certificates_parse(const gnutls_datum_t *pem) {
    gnutls_x509_crt_t *crts = NULL;
    unsigned n = 0;
    int rc = gnutls_x509_crt_list_import2(&crts, &n, pem, GNUTLS_X509_FMT_PEM, 0);
    for (unsigned i = 0; rc >= 0 && i < n; i++) gnutls_x509_crt_deinit(crts[i]);
    gnutls_free(crts);
    return rc < 0 ? rc : n == 0 ? GNUTLS_E_NO_CERTIFICATE_FOUND : (int)n;
}

static bool check_pems(const gl_tls *t, gl_error *err) {
    gnutls_certificate_credentials_t cred;
    if (gnutls_certificate_allocate_credentials(&cred) < 0) {
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory");
        return false;
    }
    gnutls_datum_t cert = {(unsigned char *)t->cert_pem, (unsigned)strlen(t->cert_pem)};
    gnutls_datum_t key = {(unsigned char *)t->key_pem, (unsigned)strlen(t->key_pem)};
    /* The certificates parse first on their own: GnuTLS 3.7's
     * set_x509_key_mem leaks the certificate it was parsing when the PEM is
     * garbled (LeakSanitizer), and this says which file is wrong. */
    int rc = certificates_parse(&cert);
    if (rc >= 0) rc = gnutls_certificate_set_x509_key_mem(cred, &cert, &key, GNUTLS_X509_FMT_PEM);
    bool ok = rc >= 0;
    if (!ok)
        gl_error_set(err, GL_ERR_CONFIG, "ledgerd: tls.cert_file \"%s\" and tls.key_file \"%s\": %s", t->cfg.cert_file,
                     t->cfg.key_file, gnutls_strerror(rc));
    if (ok && t->client_ca_pem) {
        gnutls_datum_t ca = {(unsigned char *)t->client_ca_pem, (unsigned)strlen(t->client_ca_pem)};
        rc = gnutls_certificate_set_x509_trust_mem(cred, &ca, GNUTLS_X509_FMT_PEM);
        ok = rc > 0; /* the number of certificates taken */
        if (!ok)
            gl_error_set(err, GL_ERR_CONFIG, "ledgerd: tls.client_ca_file \"%s\" holds no usable CA certificate%s%s",
                         t->cfg.client_ca_file, rc < 0 ? ": " : "", rc < 0 ? gnutls_strerror(rc) : "");
    }
    gnutls_certificate_free_credentials(cred);
    return ok;
}

/* Called by GnuTLS when the client's certificate arrives: one that does not
 * verify against the client CA (another CA, expired, revoked, not for client
 * authentication) fails the handshake, before any byte of HTTP. No
 * certificate passes here: whether one is needed depends on the route. */
static int verify_client_during_handshake(gnutls_session_t session) {
    unsigned n = 0;
    if (!gnutls_certificate_get_peers(session, &n) || n == 0) return 0;
    gnutls_typed_vdata_st purpose = {.type = GNUTLS_DT_KEY_PURPOSE_OID, .data = (void *)GNUTLS_KP_TLS_WWW_CLIENT};
    unsigned status = 0;
    if (gnutls_certificate_verify_peers(session, &purpose, 1, &status) < 0 || status != 0)
        return GNUTLS_E_CERTIFICATE_ERROR;
    return 0;
}

void gl_tls_on_connection(const gl_tls *t, struct MHD_Connection *conn, enum MHD_ConnectionNotificationCode code) {
    assert(t);
    if (code != MHD_CONNECTION_NOTIFY_STARTED || !t->client_ca_pem) return;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (ci && ci->tls_session) gnutls_session_set_verify_function((gnutls_session_t)ci->tls_session,
                                                                  verify_client_during_handshake);
}

/* The options MHD_start_daemon gets through MHD_OPTION_ARRAY. MHD reads the
 * PEM texts at start (they stay allocated until gl_tls_free). */
static void build_options(gl_tls *t) {
    size_t i = 0;
    if (t->cfg.enabled) {
        t->options[i++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, t->cert_pem};
        t->options[i++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, t->key_pem};
        t->options[i++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)GL_TLS_PRIORITIES};
        if (t->client_ca_pem) {
            /* With a trust list MHD asks every client for a certificate (none is fine). */
            t->options[i++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, t->client_ca_pem};
        }
    }
    t->options[i] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    assert(i < sizeof t->options / sizeof t->options[0]);
}

bool gl_tls_load(gl_tls *t, const gl_tls_config *cfg, gl_error *err) {
    assert(t && cfg);
    memset(t, 0, sizeof *t);
    t->cfg = *cfg;
    if (cfg->enabled) {
        t->cert_pem = read_pem("cert_file", cfg->cert_file, GL_TLS_PEM_MAX, false, err);
        t->key_pem = t->cert_pem ? read_pem("key_file", cfg->key_file, KEY_PEM_MAX, true, err) : NULL;
        if (!t->key_pem) {
            gl_tls_free(t);
            return false;
        }
        if (cfg->client_certs != GL_TLS_CLIENT_OFF) {
            t->client_ca_pem = read_pem("client_ca_file", cfg->client_ca_file, GL_TLS_PEM_MAX, false, err);
            if (!t->client_ca_pem) {
                gl_tls_free(t);
                return false;
            }
        }
        if (!check_pems(t, err)) {
            gl_tls_free(t);
            return false;
        }
    }
    build_options(t);
    return true;
}

void gl_tls_free(gl_tls *t) {
    if (!t) return;
    free_secret(&t->key_pem);
    free(t->cert_pem);
    free(t->client_ca_pem);
    t->cert_pem = t->client_ca_pem = NULL;
}

unsigned gl_tls_mhd_flags(const gl_tls *t) {
    assert(t);
    return t->cfg.enabled ? (unsigned)MHD_USE_TLS : 0u;
}

struct MHD_OptionItem *gl_tls_mhd_options(gl_tls *t) {
    assert(t);
    return t->options;
}

/* ---------- a request's client certificate ---------- */

/* The single subject CN of a DER certificate; false when there is none, more
 * than one, or it does not fit. */
static bool subject_cn(const gnutls_datum_t *der, char *cn, size_t cap) {
    gnutls_x509_crt_t crt;
    if (gnutls_x509_crt_init(&crt) < 0) return false;
    bool ok = false;
    size_t size = cap;
    char extra[8];
    size_t extra_size = sizeof extra;
    if (gnutls_x509_crt_import(crt, der, GNUTLS_X509_FMT_DER) >= 0 &&
        gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &size) >= 0 &&
        gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 1, 0, extra, &extra_size) ==
            GNUTLS_E_REQUESTED_DATA_NOT_AVAILABLE)
        ok = size > 0 && size < cap && strlen(cn) == size; /* no NUL inside */
    gnutls_x509_crt_deinit(crt);
    return ok;
}

gl_tls_peer gl_tls_client_cn(const gl_tls *t, struct MHD_Connection *conn, char *cn, size_t cap) {
    assert(t && conn && cn && cap > 1);
    cn[0] = '\0';
    if (!t->cfg.enabled || t->cfg.client_certs == GL_TLS_CLIENT_OFF) return GL_TLS_PEER_NONE;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    gnutls_session_t session = ci ? (gnutls_session_t)ci->tls_session : NULL;
    unsigned n = 0;
    const gnutls_datum_t *chain = session ? gnutls_certificate_get_peers(session, &n) : NULL;
    if (!chain || n == 0) return GL_TLS_PEER_NONE;
    if (verify_client_during_handshake(session) != 0 || !subject_cn(&chain[0], cn, cap)) {
        cn[0] = '\0';
        return GL_TLS_PEER_INVALID;
    }
    return GL_TLS_PEER_VERIFIED;
}

/* The step authenticate() (handlers.c) runs once the token verified: a
 * verified client certificate binds the connection to its CN, which must be
 * the token's principal (a stolen token is no use without the service's
 * key); with client_certs = required, an authenticated route needs one. */
gl_response gl_tls_check_principal(gl_req *req) {
    assert(req && req->srv);
    gl_server *srv = req->srv;
    gl_tls_peer peer = gl_tls_client_cn(&srv->tls, req->conn, req->tls_client_cn, sizeof req->tls_client_cn);
    const char *code = NULL, *message = NULL;
    if (peer == GL_TLS_PEER_INVALID) {
        code = "client_certificate_invalid";
        message = "the client certificate does not verify or has no single subject CN";
    } else if (peer == GL_TLS_PEER_VERIFIED && strcmp(req->tls_client_cn, req->claims.sub) != 0) {
        code = "client_certificate_mismatch";
        message = "the client certificate's subject CN is not the token's sub";
    } else if (peer == GL_TLS_PEER_NONE && srv->tls.cfg.client_certs == GL_TLS_CLIENT_REQUIRED) {
        code = "client_certificate_required";
        message = "this server requires a client certificate whose subject CN is the token's sub";
    }
    if (!code) return (gl_response){0};
    gl_metrics_auth_failure(srv->metrics, gl_metrics_find_reason(srv->metrics, code));
    return gl_respond_error(req, 401, code, message, NULL);
}
