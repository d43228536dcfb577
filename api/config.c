/*
 * config.c — ledgerd's settings, from the `ledgerd` group of ledger.conf:
 *
 *   ledgerd = {
 *     listen = "127.0.0.1"; port = 8080; threads = 4;
 *     body_limit = 1048576; batch_max = 8189; queue_depth = 10000; writers_per_region = 2;
 *     idempotency_ttl_hours = 24; log_level = "info";
 *     audit_region = "eu";   # where auth failures and admin requests are audited; default: the first region
 *     rate_per_s = 1000; rate_burst = 10000;  # per principal (a batch counts each transfer); 0 = no limit
 *     handler_threads = 32; handler_queue = 4096;   # where requests run (http.c), off the HTTP threads
 *     read_pool_size = 8; read_acquire_ms = 250;    # per region (regions/pool.h)
 *     breaker = { threshold = 3; open_ms = 500; open_max_ms = 1000; };   # per region (regions/breaker.h)
 *     shutdown_timeout_ms = 5000;   # SIGTERM: what has not finished by then is answered 503
 *     clients = { per_address_connections = 128;          # an address: IPv4, or an IPv6 /64
 *                 unauth_rate_per_s = 20; unauth_burst = 100;   # requests without a valid token, per address
 *                 idle_timeout_s = 10; read_timeout_ms = 10000; };
 *     auth = { algorithm = "HS256"; key_file = "var/dev-hs256.key";
 *              issuer = "geoledger-dev"; audience = "geoledger"; clock_skew_s = 60;
 *              max_token_lifetime_s = 86400; };   # exp - iat at most (iat required); 0 = no limit
 *     tls = {                                    # HTTPS (api/tls.h): TLS 1.2/1.3, AEAD + ECDHE only
 *       cert_file = "var/ca/server.crt";         # PEM: the server certificate (then its chain)
 *       key_file = "var/ca/server.key";          # PEM; refused when readable by group or others
 *       client_ca_file = "var/ca/ca.crt";        # optional: the CA(s) of client certificates
 *       client_certs = "optional";               # "off" | "optional" | "required"; default
 *     };                                         #   "optional" with client_ca_file, else "off"
 *     # plain_http = true;   # instead of tls: serve plain HTTP (a test, or TLS ends in front of
 *   };                       # ledgerd). Neither, or both, is a configuration error.
 */
#include <stdio.h>
#include <string.h>

#include <libconfig.h>

#include "server.h"

static void defaults(gl_server_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->listen, sizeof c->listen, "127.0.0.1");
    c->port = 8080;
    c->threads = 4;
    c->body_limit = (size_t)1024 * 1024;
    c->batch_max = LEDGER_BATCH_MAX;
    c->writers_per_region = 2;
    c->queue_depth = 10000;
    c->idem_ttl_h = 24;
    snprintf(c->log_level, sizeof c->log_level, "info");
    c->auth_skew_s = 60;
    c->auth_max_lifetime_s = 86400;
    c->clients = (gl_clients_config){.per_address_connections = 128, .unauth_rate_per_s = 20, .unauth_burst = 100,
                                     .idle_timeout_s = 10, .read_timeout_ms = 10000};
    c->rate_per_s = 1000;
    c->rate_burst = 10000; /* holds the largest batch (8189 transfers count 8189) */
    c->handler_threads = 32;
    c->handler_queue = 4096;
    c->read_pool_size = 8;
    c->read_acquire_ms = 250;
    c->breaker = GL_BREAKER_DEFAULT;
    c->shutdown_timeout_ms = 5000;
}

static bool get_str(const config_setting_t *g, const char *name, char *dst, size_t cap, bool required,
                    gl_error *err) {
    const char *v = NULL;
    if (!config_setting_lookup_string(g, name, &v)) {
        if (required) gl_error_set(err, GL_ERR_CONFIG, "ledgerd: %s is required", name);
        return !required;
    }
    if (strlen(v) >= cap) {
        gl_error_set(err, GL_ERR_CONFIG, "ledgerd: %s is too long", name);
        return false;
    }
    memcpy(dst, v, strlen(v) + 1);
    return true;
}

static bool get_int(const config_setting_t *g, const char *name, int min, int max, int *dst, gl_error *err) {
    int v;
    if (!config_setting_lookup_int(g, name, &v)) return true;
    if (v < min || v > max) {
        gl_error_set(err, GL_ERR_CONFIG, "ledgerd: %s must be %d..%d", name, min, max);
        return false;
    }
    *dst = v;
    return true;
}

static bool load_auth(const config_setting_t *g, gl_server_config *c, gl_error *err) {
    const config_setting_t *a = config_setting_get_member(g, "auth");
    if (!a) {
        gl_error_set(err, GL_ERR_CONFIG, "ledgerd: the auth group is required (every request is authenticated)");
        return false;
    }
    return get_str(a, "algorithm", c->auth_alg, sizeof c->auth_alg, true, err) &&
           get_str(a, "key_file", c->auth_key_file, sizeof c->auth_key_file, true, err) &&
           get_str(a, "issuer", c->auth_issuer, sizeof c->auth_issuer, true, err) &&
           get_str(a, "audience", c->auth_audience, sizeof c->auth_audience, true, err) &&
           get_int(a, "clock_skew_s", 0, 300, &c->auth_skew_s, err) &&
           get_int(a, "max_token_lifetime_s", 0, GL_JWT_LIFETIME_S_MAX, &c->auth_max_lifetime_s, err);
}

static bool load_clients(const config_setting_t *g, gl_server_config *c, gl_error *err) {
    const config_setting_t *k = config_setting_get_member(g, "clients");
    if (!k) return true;
    gl_clients_config *l = &c->clients;
    return get_int(k, "per_address_connections", 0, 100000, &l->per_address_connections, err) &&
           get_int(k, "unauth_rate_per_s", 0, 1000000, &l->unauth_rate_per_s, err) &&
           get_int(k, "unauth_burst", 1, 10000000, &l->unauth_burst, err) &&
           get_int(k, "idle_timeout_s", 1, 3600, &l->idle_timeout_s, err) &&
           get_int(k, "read_timeout_ms", 100, 600000, &l->read_timeout_ms, err);
}

/* The `tls` group, or plain_http = true: exactly one of them. Serving plain
 * HTTP is never a default: someone must have written it down. */
static bool load_tls(const config_setting_t *g, gl_server_config *c, gl_error *err) {
    const config_setting_t *t = config_setting_get_member(g, "tls");
    int plain = 0;
    if (config_setting_get_member(g, "plain_http") && !config_setting_lookup_bool(g, "plain_http", &plain)) {
        gl_error_set(err, GL_ERR_CONFIG, "ledgerd: plain_http must be true or false");
        return false;
    }
    if (t && plain) {
        gl_error_set(err, GL_ERR_CONFIG, "ledgerd: both a tls group and plain_http = true: choose one");
        return false;
    }
    if (!t) {
        if (plain) return true; /* c->tls.enabled stays false */
        gl_error_set(err, GL_ERR_CONFIG,
                     "ledgerd: no tls group: ledgerd serves HTTPS (tls = { cert_file = ...; key_file = ...; }); "
                     "plain HTTP only with plain_http = true");
        return false;
    }
    c->tls.enabled = true;
    char mode[16] = "";
    bool ok = get_str(t, "cert_file", c->tls.cert_file, sizeof c->tls.cert_file, true, err) &&
              get_str(t, "key_file", c->tls.key_file, sizeof c->tls.key_file, true, err) &&
              get_str(t, "client_ca_file", c->tls.client_ca_file, sizeof c->tls.client_ca_file, false, err) &&
              get_str(t, "client_certs", mode, sizeof mode, false, err);
    if (!ok) return false;
    c->tls.client_certs = c->tls.client_ca_file[0] ? GL_TLS_CLIENT_OPTIONAL : GL_TLS_CLIENT_OFF;
    if (mode[0] && !gl_tls_client_mode_parse(mode, &c->tls.client_certs)) {
        gl_error_set(err, GL_ERR_CONFIG, "ledgerd: tls.client_certs must be \"off\", \"optional\" or \"required\"");
        return false;
    }
    if (c->tls.client_certs != GL_TLS_CLIENT_OFF && !c->tls.client_ca_file[0]) {
        gl_error_set(err, GL_ERR_CONFIG, "ledgerd: tls.client_certs = \"%s\" needs tls.client_ca_file",
                     gl_tls_client_mode_name(c->tls.client_certs));
        return false;
    }
    return true;
}

static bool load_breaker(const config_setting_t *g, gl_server_config *c, gl_error *err) {
    const config_setting_t *b = config_setting_get_member(g, "breaker");
    if (!b) return true;
    bool ok = get_int(b, "threshold", 1, 1000, &c->breaker.threshold, err) &&
              get_int(b, "open_ms", 10, 600000, &c->breaker.open_ms, err) &&
              get_int(b, "open_max_ms", 10, 600000, &c->breaker.open_max_ms, err);
    if (ok && c->breaker.open_max_ms < c->breaker.open_ms) {
        gl_error_set(err, GL_ERR_CONFIG, "ledgerd: breaker.open_max_ms must be >= breaker.open_ms");
        ok = false;
    }
    return ok;
}

bool gl_server_config_load(const char *path, gl_server_config *c, gl_error *err) {
    defaults(c);
    config_t cf;
    config_init(&cf);
    bool ok = config_read_file(&cf, path) == CONFIG_TRUE;
    if (!ok) gl_error_set(err, GL_ERR_CONFIG, "%s:%d: %s", path, config_error_line(&cf), config_error_text(&cf));
    const config_setting_t *g = ok ? config_lookup(&cf, "ledgerd") : NULL;
    if (ok && !g) {
        gl_error_set(err, GL_ERR_CONFIG, "%s: no ledgerd group", path);
        ok = false;
    }
    int body = (int)c->body_limit;
    ok = ok && get_str(g, "listen", c->listen, sizeof c->listen, false, err) &&
         get_int(g, "port", 1, 65535, &c->port, err) && get_int(g, "threads", 1, 64, &c->threads, err) &&
         get_int(g, "body_limit", 1024, 64 * 1024 * 1024, &body, err) &&
         get_int(g, "batch_max", 1, LEDGER_BATCH_MAX, &c->batch_max, err) &&
         get_int(g, "writers_per_region", 1, GL_WORKERS_MAX, &c->writers_per_region, err) &&
         get_int(g, "queue_depth", 1, 1000000, &c->queue_depth, err) &&
         get_int(g, "idempotency_ttl_hours", 24, 24 * 365, &c->idem_ttl_h, err) &&
         get_int(g, "rate_per_s", 0, 1000000, &c->rate_per_s, err) &&
         get_int(g, "rate_burst", 0, 10000000, &c->rate_burst, err) &&
         get_str(g, "log_level", c->log_level, sizeof c->log_level, false, err) &&
         get_str(g, "audit_region", c->audit_region, sizeof c->audit_region, false, err) &&
         get_int(g, "handler_threads", 1, GL_HANDLERS_MAX, &c->handler_threads, err) &&
         get_int(g, "handler_queue", 1, 1000000, &c->handler_queue, err) &&
         get_int(g, "read_pool_size", 1, GL_POOL_MAX, &c->read_pool_size, err) &&
         get_int(g, "read_acquire_ms", 0, 60000, &c->read_acquire_ms, err) &&
         get_int(g, "shutdown_timeout_ms", 100, 600000, &c->shutdown_timeout_ms, err) && load_breaker(g, c, err) &&
         load_clients(g, c, err) && load_auth(g, c, err) && load_tls(g, c, err);
    c->body_limit = (size_t)body;
    config_destroy(&cf);
    return ok;
}
