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
 *                            # ledgerd). Neither, or both, is a configuration error.
 *     # bench_without_events = true;   # make bench only: no outbox rows, so the feed, webhooks and
 *                                      # streams miss every effect (what the outbox costs, measured)
 *     webhooks = {                               # signed webhooks (api/webhooks.h, api/webhookd.c)
 *       enabled = true;                          # the dispatcher and the senders run
 *       allow_private_targets = false;           # true: loopback/private targets (tests, dev only)
 *       retry_schedule_ms = [5000, 300000, 1800000, 7200000, 18000000, 36000000];  # then dead
 *       connect_timeout_ms = 5000; timeout_ms = 10000;   # per attempt
 *       lease_ms = 60000;                        # a claimed delivery is its sender's this long
 *       disable_after_s = 259200;                # failing continuously this long: endpoint disabled
 *       senders = 2; poll_ms = 1000;             # threads per region; idle wait
 *       retention_hours = 168;                   # delivered deliveries kept this long
 *     };
 *   };
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>

#include <libconfig.h>

#include "../regions/settings.h"
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
    gl_webhooks_config_defaults(&c->webhooks);
}

static bool load_clients(const config_setting_t *g, gl_server_config *c, gl_error *err) {
    const config_setting_t *k = config_setting_get_member(g, "clients");
    if (!k) return true;
    gl_clients_config *l = &c->clients;
    return gl_settings_int(k, "per_address_connections", 0, 100000, &l->per_address_connections, err) &&
           gl_settings_int(k, "unauth_rate_per_s", 0, 1000000, &l->unauth_rate_per_s, err) &&
           gl_settings_int(k, "unauth_burst", 1, 10000000, &l->unauth_burst, err) &&
           gl_settings_int(k, "idle_timeout_s", 1, 3600, &l->idle_timeout_s, err) &&
           gl_settings_int(k, "read_timeout_ms", 100, 600000, &l->read_timeout_ms, err);
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
    bool ok = gl_settings_str(t, "cert_file", c->tls.cert_file, sizeof c->tls.cert_file, true, err) &&
              gl_settings_str(t, "key_file", c->tls.key_file, sizeof c->tls.key_file, true, err) &&
              gl_settings_str(t, "client_ca_file", c->tls.client_ca_file, sizeof c->tls.client_ca_file, false, err) &&
              gl_settings_str(t, "client_certs", mode, sizeof mode, false, err);
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
    bool ok = gl_settings_int(b, "threshold", 1, 1000, &c->breaker.threshold, err) &&
              gl_settings_int(b, "open_ms", 10, 600000, &c->breaker.open_ms, err) &&
              gl_settings_int(b, "open_max_ms", 10, 600000, &c->breaker.open_max_ms, err);
    if (ok && c->breaker.open_max_ms < c->breaker.open_ms) {
        gl_error_set(err, GL_ERR_CONFIG, "ledgerd: breaker.open_max_ms must be >= breaker.open_ms");
        ok = false;
    }
    return ok;
}

/* The group's own settings (the nested groups have their loaders). */
static bool load_scalars(const config_setting_t *g, gl_server_config *c, gl_error *err) {
    int body = (int)c->body_limit;
    bool ok = gl_settings_str(g, "listen", c->listen, sizeof c->listen, false, err) &&
              gl_settings_int(g, "port", 1, 65535, &c->port, err) && gl_settings_int(g, "threads", 1, 64, &c->threads, err) &&
              gl_settings_int(g, "body_limit", 1024, 64 * 1024 * 1024, &body, err) &&
              gl_settings_int(g, "batch_max", 1, LEDGER_BATCH_MAX, &c->batch_max, err) &&
              gl_settings_int(g, "writers_per_region", 1, GL_WORKERS_MAX, &c->writers_per_region, err) &&
              gl_settings_int(g, "queue_depth", 1, 1000000, &c->queue_depth, err) &&
              gl_settings_int(g, "idempotency_ttl_hours", 24, 24 * 365, &c->idem_ttl_h, err) &&
              gl_settings_int(g, "rate_per_s", 0, 1000000, &c->rate_per_s, err) &&
              gl_settings_int(g, "rate_burst", 0, 10000000, &c->rate_burst, err) &&
              gl_settings_str(g, "log_level", c->log_level, sizeof c->log_level, false, err) &&
              gl_settings_str(g, "audit_region", c->audit_region, sizeof c->audit_region, false, err) &&
              gl_settings_int(g, "handler_threads", 1, GL_HANDLERS_MAX, &c->handler_threads, err) &&
              gl_settings_int(g, "handler_queue", 1, 1000000, &c->handler_queue, err) &&
              gl_settings_int(g, "read_pool_size", 1, GL_POOL_MAX, &c->read_pool_size, err) &&
              gl_settings_int(g, "read_acquire_ms", 0, 60000, &c->read_acquire_ms, err) &&
              gl_settings_int(g, "shutdown_timeout_ms", 100, 600000, &c->shutdown_timeout_ms, err);
    int without = 0;
    if (ok && config_setting_get_member(g, "bench_without_events") &&
        !config_setting_lookup_bool(g, "bench_without_events", &without)) {
        gl_error_set(err, GL_ERR_CONFIG, "ledgerd: bench_without_events must be true or false");
        ok = false;
    }
    c->bench_without_events = without != 0;
    c->body_limit = (size_t)body;
    return ok;
}

static bool load_bool(const config_setting_t *g, const char *name, bool *dst, gl_error *err) {
    int v = 0;
    if (!config_setting_get_member(g, name)) return true;
    if (!config_setting_lookup_bool(g, name, &v)) {
        gl_error_set(err, GL_ERR_CONFIG, "ledgerd: webhooks.%s must be true or false", name);
        return false;
    }
    *dst = v != 0;
    return true;
}

/* retry_schedule_ms: 1..GL_WEBHOOK_RETRIES_MAX delays, each 1 ms .. 2 days. */
static bool load_schedule(const config_setting_t *g, gl_webhooks_config *w, gl_error *err) {
    const config_setting_t *s = config_setting_get_member(g, "retry_schedule_ms");
    if (!s) return true;
    int n = config_setting_length(s);
    if (!config_setting_is_array(s) || n < 1 || n > GL_WEBHOOK_RETRIES_MAX) {
        gl_error_set(err, GL_ERR_CONFIG, "ledgerd: webhooks.retry_schedule_ms must be a list of 1..%d integers",
                     GL_WEBHOOK_RETRIES_MAX);
        return false;
    }
    for (int i = 0; i < n; i++) {
        const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
        long long v = config_setting_type(e) == CONFIG_TYPE_INT ? config_setting_get_int(e) : -1;
        if (v < 1 || v > 2LL * 24 * 3600 * 1000) {
            gl_error_set(err, GL_ERR_CONFIG, "ledgerd: webhooks.retry_schedule_ms[%d] must be 1..172800000", i);
            return false;
        }
        w->retry_ms[i] = (int)v;
    }
    w->n_retry = n;
    return true;
}

static bool load_webhooks(const config_setting_t *g, gl_server_config *c, gl_error *err) {
    const config_setting_t *h = config_setting_get_member(g, "webhooks");
    if (!h) return true;
    gl_webhooks_config *w = &c->webhooks;
    bool ok = load_bool(h, "enabled", &w->enabled, err) &&
              load_bool(h, "allow_private_targets", &w->allow_private_targets, err) && load_schedule(h, w, err) &&
              gl_settings_int(h, "connect_timeout_ms", 100, 60000, &w->connect_timeout_ms, err) &&
              gl_settings_int(h, "timeout_ms", 100, 120000, &w->timeout_ms, err) &&
              gl_settings_int(h, "lease_ms", 200, 3600000, &w->lease_ms, err) &&
              gl_settings_int(h, "disable_after_s", 1, 30 * 24 * 3600, &w->disable_after_s, err) &&
              gl_settings_int(h, "senders", 1, GL_WEBHOOK_SENDERS_MAX, &w->senders, err) &&
              gl_settings_int(h, "poll_ms", 10, 60000, &w->poll_ms, err) &&
              gl_settings_int(h, "retention_hours", 1, 24 * 365, &w->retention_h, err);
    /* A lease shorter than an attempt would let a second sender post it while the first still waits. */
    if (ok && (w->lease_ms <= w->timeout_ms || w->connect_timeout_ms > w->timeout_ms)) {
        gl_error_set(err, GL_ERR_CONFIG,
                     "ledgerd: webhooks.lease_ms must exceed timeout_ms, and connect_timeout_ms may not exceed it");
        ok = false;
    }
    return ok;
}

bool gl_server_config_load(const char *path, gl_server_config *c, gl_error *err) {
    assert(path && c);
    defaults(c);
    config_t cf;
    config_init(&cf);
    const config_setting_t *g = NULL;
    bool ok = gl_settings_open(&cf, path, &g, err) && load_scalars(g, c, err) && load_breaker(g, c, err) &&
              load_clients(g, c, err) && gl_auth_config_read(g, &c->auth, err) && load_tls(g, c, err) &&
              load_webhooks(g, c, err);
    config_destroy(&cf);
    return ok;
}
