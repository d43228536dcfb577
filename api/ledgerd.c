/*
 * ledgerd — the HTTP/JSON API of geoledger (see ../shared/API.md).
 *
 *   ledgerd [--config FILE]
 *
 * main() loads ledger.conf (regions + the ledgerd group), loads the token
 * key, sets up each region's breaker and read pool, starts the writers
 * (writer.c), the handler threads, the webhook worker (webhookd.c) and the
 * HTTP daemon (http.c), then waits
 * for SIGTERM/SIGINT: it stops accepting connections and lets the handlers
 * and writers finish what is queued, within shutdown_timeout_ms; past it,
 * what is left is answered 503 and the process exits (1 if a thread still
 * hung on: a stuck process is never left behind).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../ledger/events.h"
#include "server.h"
#include "stream.h"

static int fail(const gl_error *e) {
    fprintf(stderr, "ledgerd: %s\n", e->message);
    if (e->detail[0]) fprintf(stderr, "DETAIL: %s\n", e->detail);
    if (e->hint[0]) fprintf(stderr, "HINT: %s\n", e->hint);
    return 1;
}

static bool init_auth(gl_server *srv, gl_error *err) {
    gl_jwt_config jc;
    gl_auth_jwt_config(&srv->cfg.auth, &jc);
    return gl_jwt_verifier_init_from_files(&srv->jwt, &jc, srv->cfg.auth.key_file, err);
}

/* Every route, region and auth-failure reason is registered up front: metrics storage is fixed. */

static bool start_audit(gl_server *srv, gl_error *err) {
    const gl_region *r = srv->cfg.audit_region[0] ? gl_region_by_name(&srv->regions, srv->cfg.audit_region)
                                                  : &srv->regions.regions[0];
    if (!r) {
        gl_error_set(err, GL_ERR_CONFIG, "ledgerd.audit_region \"%s\" is not a configured region", srv->cfg.audit_region);
        return false;
    }
    srv->audit = gl_auditq_start(r, err);
    return srv->audit != NULL;
}

static bool init_observability(gl_server *srv, gl_error *err) {
    gl_log_level level;
    if (!gl_log_level_parse(srv->cfg.log_level, &level)) {
        gl_error_set(err, GL_ERR_CONFIG, "ledgerd: log_level must be debug, info, warn or error");
        return false;
    }
    gl_log_set_level(level);
    srv->metrics = gl_metrics_new();
    if (!srv->metrics) {
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory");
        return false;
    }
    size_t n_routes;
    const gl_route *routes = gl_routes(&n_routes);
    for (size_t i = 0; i < n_routes; i++) gl_metrics_route(srv->metrics, routes[i].path); /* (one label per path) */
    gl_metrics_route(srv->metrics, "(unmatched)");
    for (int i = 0; i < srv->regions.n_regions; i++) gl_metrics_region(srv->metrics, srv->regions.regions[i].name);
    for (int r = GL_JWT_TOKEN_MALFORMED; r <= GL_JWT_TOKEN_LIFETIME_INVALID; r++)
        gl_metrics_reason(srv->metrics, gl_jwt_reason_name((gl_jwt_reason)r));
    gl_metrics_reason(srv->metrics, "token_missing");
    gl_metrics_reason(srv->metrics, "too_many_failed_requests"); /* refused by address, before verification */
    static const char *const tls_reasons[] = {"client_certificate_invalid", "client_certificate_mismatch",
                                              "client_certificate_required"}; /* tls.c */
    for (size_t i = 0; i < sizeof tls_reasons / sizeof tls_reasons[0]; i++)
        gl_metrics_reason(srv->metrics, tls_reasons[i]);
    if (srv->cfg.rate_per_s > 0) {
        gl_ratelimit_config rc;
        gl_ratelimit_config_init(&rc);
        rc.rate_per_s = (uint32_t)srv->cfg.rate_per_s;
        rc.burst = (uint32_t)(srv->cfg.rate_burst > 0 ? srv->cfg.rate_burst : srv->cfg.rate_per_s);
        srv->ratelimit = gl_ratelimit_new(&rc, err);
        if (!srv->ratelimit) return false;
    }
    const gl_clients_config *k = &srv->cfg.clients;
    srv->clients = gl_clients_new(k->unauth_rate_per_s, k->unauth_burst, k->read_timeout_ms, err);
    return srv->clients != NULL;
}

/* Each region's breaker (shared by its reads and writers) and read pool. */
static bool init_regions(gl_server *srv, gl_error *err) {
    int n = srv->regions.n_regions;
    srv->breakers = calloc((size_t)n, sizeof *srv->breakers);
    srv->pools = calloc((size_t)n, sizeof *srv->pools);
    if (!srv->breakers || !srv->pools) {
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory");
        return false;
    }
    for (int i = 0; i < n; i++) {
        gl_breaker_init(&srv->breakers[i], srv->cfg.breaker);
        if (!gl_pool_init(&srv->pools[i], &srv->regions.regions[i], GL_ROLE_SERVICE, &srv->breakers[i],
                          srv->cfg.read_pool_size, srv->cfg.read_acquire_ms, err))
            return false;
    }
    return true;
}

static void free_regions(gl_server *srv) {
    for (int i = 0; srv->pools && i < srv->regions.n_regions; i++) gl_pool_destroy(&srv->pools[i]);
    for (int i = 0; srv->breakers && i < srv->regions.n_regions; i++) gl_breaker_destroy(&srv->breakers[i]);
    free(srv->pools);
    free(srv->breakers);
}

/* The outbox threads (stream.c): /metrics' outbox series, and the Redis
 * stream when ledger.conf has a redis group. */
static gl_streams *start_streams(gl_server *srv, const char *path, gl_error *err) {
    gl_stream_config sc;
    if (!gl_stream_config_load(path, &sc, err)) return NULL;
    gl_streams *s = gl_streams_start(&srv->regions, &sc, srv->metrics, err);
    if (s && sc.enabled)
        gl_log(GL_LOG_INFO, "stream_enabled", "publishing each region's events to Redis %s:%d, streams %s<region>",
               sc.host, sc.port, sc.key_prefix);
    return s;
}

static int wait_for_signal(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int sig = 0;
    sigwait(&set, &sig);
    return sig;
}

int main(int argc, char **argv) {
    const char *flag = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) flag = argv[++i];
        else {
            fprintf(stderr, "usage: ledgerd [--config FILE]\n");
            return 2;
        }
    }
    /* Block the signals in every thread; main receives them with sigwait. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stderr, NULL, _IOLBF, 0);

    static gl_server srv;
    gl_error err;
    const char *path = gl_config_default_path(flag);
    if (!gl_config_load(path, &srv.regions, &err) || !gl_server_config_load(path, &srv.cfg, &err) ||
        !init_auth(&srv, &err) || !gl_tls_load(&srv.tls, &srv.cfg.tls, &err))
        return fail(&err);
    if (!init_observability(&srv, &err)) return fail(&err);
    if (srv.cfg.bench_without_events) {
        ledger_events_measure_without();
        gl_log(GL_LOG_WARN, "events_off",
               "bench_without_events: no events are written; the feed, webhooks and streams miss every effect");
    }
    pthread_mutex_init(&srv.inflight_mu, NULL);
    srv.inflight = json_object();
    gl_streams *streams = NULL;
    if (!init_regions(&srv, &err) || !start_audit(&srv, &err) || !gl_writers_start(&srv, &err) ||
        !(streams = start_streams(&srv, path, &err)) || !gl_handlers_start(&srv, &err) || !gl_webhookd_start(&srv, &err) ||
        !gl_http_start(&srv, &err))
        return fail(&err);
    fprintf(stderr,
            "{\"level\":\"info\",\"event\":\"listening\",\"listen\":\"%s\",\"port\":%d,\"regions\":%d,"
            "\"scheme\":\"%s\",\"client_certs\":\"%s\"}\n",
            srv.cfg.listen, srv.cfg.port, srv.regions.n_regions, srv.cfg.tls.enabled ? "https" : "http",
            gl_tls_client_mode_name(srv.cfg.tls.client_certs));

    int sig = wait_for_signal();
    fprintf(stderr, "{\"level\":\"info\",\"event\":\"shutdown\",\"signal\":%d}\n", sig);
    gl_http_quiesce(&srv);
    gl_webhookd_stop(&srv); /* its sends are cut at once: a lease given back, sent after the restart */
    /* One deadline for the whole drain: the handlers run what is queued (their
     * reads are bounded by the regions' deadlines), then the writers commit
     * what is queued; past it, the rest is answered 503. */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool handlers_done = gl_handlers_stop(&srv, srv.cfg.shutdown_timeout_ms);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int spent_ms = (int)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
    int left_ms = srv.cfg.shutdown_timeout_ms - spent_ms;
    bool writers_done = gl_writers_stop(&srv, left_ms > 100 ? left_ms : 100);
    if (!handlers_done || !writers_done) {
        /* A thread is stuck past every deadline: exit now rather than hang
         * (the database rolls back whatever it had not committed). */
        gl_log(GL_LOG_ERROR, "shutdown_forced", "%s still busy after the shutdown deadline: exiting",
               !handlers_done ? "handler threads" : "writers");
        _exit(1);
    }
    gl_http_stop(&srv);
    if (!gl_streams_stop(streams, 3000)) { /* after the last scrape: its metrics read the threads' state */
        gl_log(GL_LOG_ERROR, "shutdown_forced", "an outbox thread still busy after its Redis/database timeout: exiting");
        _exit(1);
    }
    gl_auditq_stop(srv.audit, 3000); /* after the last request: its events are queued */
    gl_jwt_verifier_free(&srv.jwt);
    gl_tls_free(&srv.tls);
    json_decref(srv.inflight);
    gl_metrics_free(srv.metrics);
    gl_ratelimit_free(srv.ratelimit);
    gl_clients_free(srv.clients);
    free(srv.writers);
    free_regions(&srv);
    gl_config_free(&srv.regions);
    return 0;
}
