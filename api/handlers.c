/*
 * handlers.c — routing and authentication: the layer between the transport
 * (http.c) and the endpoints (accounts.c, transfers.c, mandates_ep.c,
 * events_ep.c, webhooks_ep.c, probes.c).
 *
 * gl_handle() finds the request's row in the route table; for all but the
 * public probes it admits the client address (clients.c), authenticates the
 * token (JWT, and the client certificate with mutual TLS), counts the
 * principal's rate, applies the token's regions to the path's id and checks
 * the row's scope, then calls the endpoint. Every refusal has the one error
 * shape; nothing is written before the endpoint's own checks pass.
 */
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../ledger/clock.h"
#include "endpoints.h"
#include "reads.h"
#include "request.h"
#include "server.h"

/* ---------- routing ---------- */

static gl_response authenticate(gl_req *req) {
    const char *h = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Authorization");
    if (!h || strncmp(h, "Bearer ", 7) != 0) {
        gl_metrics_auth_failure(req->srv->metrics, gl_metrics_find_reason(req->srv->metrics, "token_missing"));
        return gl_respond_error(req, 401, "token_missing", "send Authorization: Bearer <JWT>", NULL);
    }
    gl_error err;
    gl_jwt_reason why = gl_jwt_verify(&req->srv->jwt, h + 7, time(NULL), &req->claims, &err);
    if (why == GL_JWT_OK) return gl_tls_check_principal(req); /* mutual TLS: the certificate names the principal */
    memset(&req->claims, 0, sizeof req->claims);
    gl_metrics_auth_failure(req->srv->metrics, gl_metrics_find_reason(req->srv->metrics, gl_jwt_reason_name(why)));
    return gl_respond_error(req, why == GL_JWT_INTERNAL ? 500 : 401, gl_jwt_reason_name(why), "the token was refused",
                            NULL);
}

/* An address that has spent its allowance of requests without a valid
 * token is refused before its token is looked at (api/clients.h): once per
 * request, on its headers (http.c), so no body is buffered for it either.
 * The public probes take no token and are never refused. */
static bool public_route(gl_req *req);

gl_response gl_handle_admit(gl_req *req) {
    if (public_route(req)) return (gl_response){0};
    uint64_t retry_s = 1;
    if (gl_clients_admit(req->srv->clients, req->address_key, &retry_s)) return (gl_response){0};
    gl_metrics_auth_failure(req->srv->metrics, gl_metrics_find_reason(req->srv->metrics, "too_many_failed_requests"));
    gl_response r = gl_respond_error(req, 429, "too_many_failed_requests",
                                     "too many requests without a valid token from this address", NULL);
    snprintf(r.retry_after, sizeof r.retry_after, "%llu", (unsigned long long)(retry_s ? retry_s : 1));
    return r;
}

static gl_response rate_limit(gl_req *req) {
    if (!req->srv->ratelimit) return (gl_response){0};
    uint64_t retry_s = 1;
    if (gl_ratelimit_take(req->srv->ratelimit, req->claims.sub, gl_monotonic_ns() / 1000u, &retry_s))
        return (gl_response){0};
    gl_response r = gl_respond_error(req, 429, "rate_limited", "too many requests for this principal", NULL);
    snprintf(r.retry_after, sizeof r.retry_after, "%llu", (unsigned long long)(retry_s ? retry_s : 1));
    return r;
}

static gl_response need_scope(gl_req *req, gl_jwt_scope s) {
    if (gl_jwt_has_scope(&req->claims, s) || gl_is_admin(req)) return (gl_response){0};
    return gl_respond_error(req, 403, "scope_missing", gl_jwt_scope_name(s), NULL);
}

/* Splits "/v1/a/b/c" into at most max segments (max + 1 when there are more: no route has that many). */
static int split_path(char *path, char **seg, int max) {
    int n = 0;
    for (char *save = NULL, *t = strtok_r(path, "/", &save); t && n < max + 1; t = strtok_r(NULL, "/", &save))
        seg[n++] = t;
    return n;
}

#define PATH_SEGMENTS_MAX 6 /* the longest template: /v1/webhook_endpoints/{id}/deliveries/{id}/redeliver */

/* ---------- the route table ---------- */

static gl_response healthz(gl_req *req, const gl_id *id) {
    (void)req;
    (void)id;
    return gl_respond_json(200, json_pack("{s:s}", "status", "ok"));
}
static gl_response on_readyz(gl_req *req, const gl_id *id) { return (void)id, gl_readyz(req); }
static gl_response on_metrics(gl_req *req, const gl_id *id) { return (void)id, gl_metrics_page(req); }
static gl_response on_create_account(gl_req *req, const gl_id *id) { return (void)id, gl_create_account(req); }
static gl_response on_create_mandate(gl_req *req, const gl_id *id) { return (void)id, gl_create_mandate(req); }
static gl_response on_create_transfer(gl_req *req, const gl_id *id) { return (void)id, gl_create_transfer(req); }
static gl_response on_create_batch(gl_req *req, const gl_id *id) { return (void)id, gl_create_batch(req); }
static gl_response on_list_transfers(gl_req *req, const gl_id *id) { return (void)id, gl_list_transfers(req); }
static gl_response on_list_events(gl_req *req, const gl_id *id) { return (void)id, gl_list_events(req); }
static gl_response on_create_webhook(gl_req *req, const gl_id *id) { return (void)id, gl_create_webhook_endpoint(req); }
static gl_response on_list_webhooks(gl_req *req, const gl_id *id) { return (void)id, gl_list_webhook_endpoints(req); }
static gl_response on_post(gl_req *req, const gl_id *id) { return gl_act_on_transfer(req, id, LEDGER_CMD_POST); }
static gl_response on_void(gl_req *req, const gl_id *id) { return gl_act_on_transfer(req, id, LEDGER_CMD_VOID); }
static gl_response on_reverse(gl_req *req, const gl_id *id) { return gl_act_on_transfer(req, id, LEDGER_CMD_REVERSE); }

#define NO_SCOPE GL_SCOPE_COUNT /* public routes: no token */

/* Every endpoint, once: dispatch, the scope it needs and the metrics label
 * (its template) all come from here. A template's segments are literals or
 * {id}, which matches an id (of any region: handlers answer 404 for an id of
 * no configured region). Adding an endpoint is one row and one function. */
static const gl_route route_table[] = {
    {"GET", "/healthz", NO_SCOPE, healthz},
    {"GET", "/readyz", NO_SCOPE, on_readyz},
    {"GET", "/metrics", NO_SCOPE, on_metrics},
    {"POST", "/v1/accounts", GL_SCOPE_ACCOUNTS_WRITE, on_create_account},
    {"GET", "/v1/accounts/{id}", GL_SCOPE_ACCOUNTS_READ, gl_get_account},
    {"GET", "/v1/accounts/{id}/balance", GL_SCOPE_ACCOUNTS_READ, gl_get_balance},
    {"GET", "/v1/accounts/{id}/entries", GL_SCOPE_ACCOUNTS_READ, gl_get_entries},
    {"POST", "/v1/mandates", GL_SCOPE_MANDATES_WRITE, on_create_mandate},
    {"GET", "/v1/mandates/{id}", GL_SCOPE_ACCOUNTS_READ, gl_get_mandate},
    {"DELETE", "/v1/mandates/{id}", GL_SCOPE_MANDATES_WRITE, gl_revoke_mandate},
    {"POST", "/v1/transfers", GL_SCOPE_TRANSFERS_WRITE, on_create_transfer},
    {"GET", "/v1/transfers", GL_SCOPE_TRANSFERS_READ, on_list_transfers},
    {"POST", "/v1/transfers/batch", GL_SCOPE_TRANSFERS_WRITE, on_create_batch},
    {"GET", "/v1/transfers/{id}", GL_SCOPE_TRANSFERS_READ, gl_get_transfer},
    {"POST", "/v1/transfers/{id}/post", GL_SCOPE_TRANSFERS_WRITE, on_post},
    {"POST", "/v1/transfers/{id}/void", GL_SCOPE_TRANSFERS_WRITE, on_void},
    {"POST", "/v1/transfers/{id}/reverse", GL_SCOPE_TRANSFERS_WRITE, on_reverse},
    {"GET", "/v1/events", GL_SCOPE_EVENTS_READ, on_list_events},
    {"POST", "/v1/webhook_endpoints", GL_SCOPE_WEBHOOKS_WRITE, on_create_webhook},
    {"GET", "/v1/webhook_endpoints", GL_SCOPE_EVENTS_READ, on_list_webhooks},
    {"GET", "/v1/webhook_endpoints/{id}", GL_SCOPE_EVENTS_READ, gl_get_webhook_endpoint},
    {"DELETE", "/v1/webhook_endpoints/{id}", GL_SCOPE_WEBHOOKS_WRITE, gl_delete_webhook_endpoint},
    {"POST", "/v1/webhook_endpoints/{id}/enable", GL_SCOPE_WEBHOOKS_WRITE, gl_enable_webhook_endpoint},
    {"GET", "/v1/webhook_endpoints/{id}/deliveries", GL_SCOPE_EVENTS_READ, gl_list_webhook_deliveries},
    {"POST", "/v1/webhook_endpoints/{id}/deliveries/{id}/redeliver", GL_SCOPE_WEBHOOKS_WRITE, gl_redeliver_webhook},
};

const gl_route *gl_routes(size_t *n) {
    assert(n);
    *n = sizeof route_table / sizeof route_table[0];
    return route_table;
}

/* Whether template `t` matches the n path segments (seg[i] an id where t has {id}). */
static bool template_matches(const char *t, char **seg, int n, const bool *is_id) {
    int i = 0;
    while (*t == '/' && i < n) {
        const char *end = strchr(t + 1, '/');
        size_t len = end ? (size_t)(end - t - 1) : strlen(t + 1);
        bool ok = len == 4 && strncmp(t + 1, "{id}", 4) == 0 ? is_id[i] : strlen(seg[i]) == len && strncmp(t + 1, seg[i], len) == 0;
        if (!ok) return false;
        i++;
        t += 1 + len;
    }
    return *t == '\0' && i == n;
}

const gl_route *gl_route_find(const char *method, char **seg, int n, const bool *is_id) {
    for (size_t i = 0; i < sizeof route_table / sizeof route_table[0]; i++)
        if (strcmp(route_table[i].method, method) == 0 && template_matches(route_table[i].path, seg, n, is_id))
            return &route_table[i];
    return NULL;
}

/* Whether the request's path is a public probe (no token, no admission). */
static bool public_route(gl_req *req) {
    char path[GL_PATH_MAX];
    snprintf(path, sizeof path, "%s", req->url);
    char *seg[PATH_SEGMENTS_MAX + 1];
    bool is_id[PATH_SEGMENTS_MAX + 1] = {false}; /* the probes have no {id} */
    int n = split_path(path, seg, PATH_SEGMENTS_MAX);
    const gl_route *r = n <= PATH_SEGMENTS_MAX ? gl_route_find(req->method, seg, n, is_id) : NULL;
    return r && r->scope == NO_SCOPE;
}

/* No row matched: the 404 a client has always had. An id path of a resource
 * is that resource's "not found" when its id does not parse (a webhook
 * endpoint's too); an account id path needs accounts:read first;
 * /v1/mandates/{id} keeps its label. */
static gl_response no_route(gl_req *req, char **seg, int n, bool has_id) {
    if (n >= 2 && n <= 4 && strcmp(seg[0], "v1") == 0) {
        if (strcmp(seg[1], "accounts") == 0) {
            if (!has_id) return gl_respond_error(req, 404, "account_not_found", "account not found", NULL);
            gl_response s = need_scope(req, GL_SCOPE_ACCOUNTS_READ);
            if (s.status) return s;
        } else if (strcmp(seg[1], "mandates") == 0) {
            if (!has_id || n != 3) return gl_respond_error(req, 404, "mandate_not_found", "mandate not found", NULL);
            snprintf(req->route, sizeof req->route, "/v1/mandates/{id}");
        } else if (strcmp(seg[1], "transfers") == 0 && !has_id) {
            return gl_respond_error(req, 404, "transfer_not_found", "transfer not found", NULL);
        } else if (strcmp(seg[1], "webhook_endpoints") == 0 && n >= 3 && !has_id) {
            return gl_respond_error(req, 404, "webhook_endpoint_not_found", "webhook endpoint not found", NULL);
        }
    }
    return gl_respond_error(req, 404, "route_not_found", "no such endpoint", NULL);
}

gl_response gl_handle(gl_req *req) {
    char path[GL_PATH_MAX];
    snprintf(path, sizeof path, "%s", req->url);
    char *seg[PATH_SEGMENTS_MAX + 1];
    int n = split_path(path, seg, PATH_SEGMENTS_MAX);
    bool is_id[PATH_SEGMENTS_MAX + 1] = {false};
    gl_id id, sub;
    bool has_id = n >= 3 && n <= PATH_SEGMENTS_MAX && gl_id_parse(seg[2], &id); /* ids sit third: /v1/<resource>/{id} */
    is_id[2] = has_id;
    is_id[4] = n == 6 && gl_id_parse(seg[4], &sub); /* a sub-resource's: .../{id}/deliveries/{id}/redeliver */
    const gl_route *r = n <= PATH_SEGMENTS_MAX ? gl_route_find(req->method, seg, n, is_id) : NULL;
    if (r && r->scope == NO_SCOPE) {
        snprintf(req->route, sizeof req->route, "%s", r->path);
        return r->fn(req, NULL);
    }
    /* A request run again on a handler thread was authenticated and counted
     * against its rate on the HTTP thread: its claims stand. */
    if (!req->authenticated) {
        gl_response a = authenticate(req); /* (the address was admitted on the headers: gl_handle_admit) */
        if (a.status) {
            if (a.status == 401) gl_clients_charge(req->srv->clients, req->address_key);
            return a;
        }
        a = rate_limit(req);
        if (a.status) return a;
        req->authenticated = true;
    }
    if (has_id && strcmp(seg[0], "v1") == 0 && !gl_id_region_allowed(req, &id)) return gl_region_forbidden(req, NULL);
    if (!r) return no_route(req, seg, n, has_id);
    snprintf(req->route, sizeof req->route, "%s", r->path);
    gl_response s = need_scope(req, r->scope);
    return s.status ? s : r->fn(req, has_id ? &id : NULL);
}
