/*
 * ledgerd — the HTTP/JSON API of geoledger (see ../shared/API.md).
 *
 *   ledgerd [--config FILE]
 *
 * main() loads ledger.conf (regions + the ledgerd group), loads the token
 * key, starts one writer thread per region (writer.c) and the HTTP daemon
 * (http.c), then waits for SIGTERM/SIGINT: it stops accepting connections,
 * lets the writers finish every queued batch, stops the daemon, exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server.h"

static int fail(const gl_error *e) {
    fprintf(stderr, "ledgerd: %s\n", e->message);
    if (e->detail[0]) fprintf(stderr, "DETAIL: %s\n", e->detail);
    if (e->hint[0]) fprintf(stderr, "HINT: %s\n", e->hint);
    return 1;
}

static bool init_auth(gl_server *srv, gl_error *err) {
    gl_jwt_config jc;
    gl_jwt_config_init(&jc);
    jc.alg = srv->cfg.auth_alg;
    jc.issuer = srv->cfg.auth_issuer;
    jc.audience = srv->cfg.auth_audience;
    jc.clock_skew_s = srv->cfg.auth_skew_s;
    return gl_jwt_verifier_init_from_files(&srv->jwt, &jc, srv->cfg.auth_key_file, err);
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
        !init_auth(&srv, &err))
        return fail(&err);
    pthread_mutex_init(&srv.inflight_mu, NULL);
    srv.inflight = json_object();
    if (!gl_writers_start(&srv, &err) || !gl_http_start(&srv, &err)) return fail(&err);
    fprintf(stderr, "{\"level\":\"info\",\"event\":\"listening\",\"listen\":\"%s\",\"port\":%d,\"regions\":%d}\n",
            srv.cfg.listen, srv.cfg.port, srv.regions.n_regions);

    int sig = wait_for_signal();
    fprintf(stderr, "{\"level\":\"info\",\"event\":\"shutdown\",\"signal\":%d}\n", sig);
    gl_http_quiesce(&srv);
    gl_writers_stop(&srv); /* every queued job commits and its connection resumes */
    gl_http_stop(&srv);
    gl_jwt_verifier_free(&srv.jwt);
    json_decref(srv.inflight);
    gl_config_free(&srv.regions);
    free(srv.writers);
    return 0;
}
