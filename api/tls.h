/*
 * tls.h — ledgerd's HTTPS: the certificate and key from ledger.conf, the
 * protocol and cipher policy, and client certificates (mutual TLS for
 * service principals).
 *
 * Policy (GL_TLS_PRIORITIES): TLS 1.2 and 1.3 only; AEAD ciphers only
 * (AES-GCM, ChaCha20-Poly1305); forward-secret key exchange only (ECDHE on
 * X25519 / P-256 / P-384); the server's order wins.
 *
 * Client certificates (client_certs):
 *   off       none asked for;
 *   optional  asked for; one that does not verify against client_ca_file
 *             (another CA, expired, not for client auth) fails the handshake;
 *             a verified one binds the connection to its subject CN, which
 *             must equal the token's `sub` (else 401 client_certificate_mismatch);
 *   required  as optional, and an authenticated route without a verified
 *             certificate is 401 client_certificate_required. The probes
 *             (/healthz, /readyz) and /metrics, which take no token, stay
 *             open, so a load balancer or Prometheus need no certificate.
 */
#ifndef GL_TLS_H
#define GL_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <microhttpd.h>

#include "../ledger/ledger.h"

/* GnuTLS priority string; checked with `gnutls-cli --priority ... --list`. */
#define GL_TLS_PRIORITIES                                                                                   \
    "SECURE256:+SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:"      \
    "+CHACHA20-POLY1305:-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:-GROUP-ALL:+GROUP-X25519:"           \
    "+GROUP-SECP256R1:+GROUP-SECP384R1:%SERVER_PRECEDENCE"

#define GL_TLS_PATH_MAX 1024
#define GL_TLS_PEM_MAX ((size_t)256 * 1024) /* a certificate chain or a CA bundle; a key is far smaller */
#define GL_TLS_CN_MAX 128           /* a principal name (LEDGER_OWNER_MAX) fits */

typedef enum { GL_TLS_CLIENT_OFF = 0, GL_TLS_CLIENT_OPTIONAL, GL_TLS_CLIENT_REQUIRED } gl_tls_client_mode;

/* The `tls` group of `ledgerd` in ledger.conf (config.c). */
typedef struct {
    bool enabled; /* a tls group is configured (else plain_http = true was) */
    char cert_file[GL_TLS_PATH_MAX];
    char key_file[GL_TLS_PATH_MAX];
    char client_ca_file[GL_TLS_PATH_MAX]; /* "" = none */
    gl_tls_client_mode client_certs;
} gl_tls_config;

/* What the daemon runs with: the PEM texts (kept for the daemon's life: MHD
 * reads them at start) and the MHD options that carry them. */
typedef struct {
    gl_tls_config cfg;
    char *cert_pem;
    char *key_pem;
    char *client_ca_pem;
    struct MHD_OptionItem options[8];
} gl_tls;

/* "off" / "optional" / "required"; false for anything else. */
bool gl_tls_client_mode_parse(const char *s, gl_tls_client_mode *out);
const char *gl_tls_client_mode_name(gl_tls_client_mode m);

/* Reads the files (size-limited; a key file readable by group or others is
 * refused) and prepares the MHD options. With cfg->enabled false (plain
 * HTTP), prepares an empty option list. */
bool gl_tls_load(gl_tls *t, const gl_tls_config *cfg, gl_error *err);
/* Overwrites and frees the PEM texts. */
void gl_tls_free(gl_tls *t);

/* For MHD_start_daemon: the flag (MHD_USE_TLS or 0) and the option array
 * (for MHD_OPTION_ARRAY; terminated, empty without TLS). */
unsigned gl_tls_mhd_flags(const gl_tls *t);
struct MHD_OptionItem *gl_tls_mhd_options(gl_tls *t);
/* From the daemon's one MHD_OPTION_NOTIFY_CONNECTION callback (http.c): with
 * client certificates on, arms the certificate check on the new connection's
 * TLS session, so a certificate that does not verify fails the handshake. */
void gl_tls_on_connection(const gl_tls *t, struct MHD_Connection *conn, enum MHD_ConnectionNotificationCode code);

typedef enum {
    GL_TLS_PEER_NONE = 0, /* no certificate (or TLS / client certificates off) */
    GL_TLS_PEER_VERIFIED, /* verified against the client CA; cn is its subject CN */
    GL_TLS_PEER_INVALID   /* presented, but it does not verify or has no single usable CN */
} gl_tls_peer;

/* The connection's client certificate. The handshake already refuses one
 * that does not verify; this checks again (a resumed session, a library
 * that skipped the callback) and reads the subject CN into cn ("" unless
 * GL_TLS_PEER_VERIFIED). */
gl_tls_peer gl_tls_client_cn(const gl_tls *t, struct MHD_Connection *conn, char *cn, size_t cap);

#endif
