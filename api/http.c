/*
 * http.c — libmicrohttpd plumbing: body collection with a limit, the response
 * and error shapes, the request log line, and suspend/resume for writes.
 *
 * MHD calls on_request several times per request: first with no data (we
 * allocate a gl_req), then with body chunks, then once with none left (we
 * handle it). A write suspends the connection; the writer resumes it after
 * COMMIT and MHD calls on_request once more, when the job's response is sent.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <openssl/rand.h>

#include "../ledger/clock.h"
#include "../ledger/deadline.h"
#include "jobs.h"
#include "server.h"

/* ---------- the error shape (API.md) ---------- */

char *gl_error_body(const char *type, const char *code, const char *message, const char *param,
                    const char *request_id) {
    json_t *e = json_pack("{s:s,s:s,s:s}", "type", type, "code", code, "message", message);
    if (param) json_object_set_new(e, "param", json_string(param));
    if (request_id) json_object_set_new(e, "request_id", json_string(request_id));
    json_t *o = json_pack("{s:o}", "error", e);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return s;
}

const char *gl_type_of_status(unsigned status) {
    switch (status) {
    case 400: case 413: return "invalid_request";
    case 401: return "authentication";
    case 403: return "permission";
    case 404: return "not_found";
    case 409: return "conflict";
    case 422: return "rejected";
    case 429: return "rate_limited";
    case 503: return "unavailable";
    default: return "internal";
    }
}

/* A ledger refusal as an HTTP status: API.md "Errors". */
unsigned gl_status_of_code(ledger_code c) {
    switch (c) {
    case LEDGER_OK: return 201;
    case LEDGER_EXISTS: return 200;
    case LEDGER_ACCOUNT_NOT_FOUND: case LEDGER_TRANSFER_NOT_FOUND: case LEDGER_PENDING_NOT_FOUND:
    case LEDGER_WRONG_REGION: return 404;
    case LEDGER_EXISTS_WITH_DIFFERENT_FIELDS: return 409;
    case LEDGER_MANDATE_INVALID: case LEDGER_MANDATE_LIMIT_EXCEEDED: return 403;
    case LEDGER_AMOUNT_INVALID: case LEDGER_CURRENCY_INVALID: case LEDGER_SAME_ACCOUNT: case LEDGER_OWNER_INVALID:
    case LEDGER_KIND_INVALID: case LEDGER_REFERENCE_INVALID: case LEDGER_METADATA_INVALID:
    case LEDGER_TIMEOUT_INVALID: case LEDGER_ACCOUNT_FLAGS_INVALID: case LEDGER_LINKED_EVENT_CHAIN_OPEN: return 400;
    default: return 422;
    }
}

gl_response gl_respond_json(unsigned status, json_t *body) {
    gl_response r = {.status = status};
    r.body = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    return r;
}

gl_response gl_respond_error(const gl_req *req, unsigned status, const char *code, const char *message,
                             const char *param) {
    gl_response r = {.status = status, .code = code};
    r.body = gl_error_body(gl_type_of_status(status), code, message, param, req ? req->request_id : NULL);
    if (status == 429 || status == 503) snprintf(r.retry_after, sizeof r.retry_after, "1");
    /* A 503's cause is logged where it is found (region_unavailable, read_failed...);
     * a 500 made here says its cause in its message. */
    if (status == 500)
        gl_log(GL_LOG_ERROR, "internal_error", "request %s: %s: %s", req ? req->request_id : "-", code, message);
    return r;
}

/* ---------- sending ---------- */

static uint64_t elapsed_us(const gl_req *req) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)((now.tv_sec - req->start.tv_sec) * 1000000LL + (now.tv_nsec - req->start.tv_nsec) / 1000);
}

/* PCI DSS 10.2.1: failed authentication, refused access and every write by an
 * admin go to the audit log. State changes that commit (mandates) are audited
 * in their own transaction instead (mandates_ep.c). */
static void audit_request(const gl_req *req, const gl_response *r, const char *route, const char *error_code) {
    bool admin = req->claims.sub[0] && gl_jwt_has_scope(&req->claims, GL_SCOPE_ADMIN);
    bool write = strcmp(req->method, "GET") != 0;
    const char *action = r->status == 401                         ? "auth.failure"
                         : r->status == 403                       ? "access.denied"
                         : admin && write                         ? "admin.request"
                                                                  : NULL;
    if (!action) return;
    json_t *d = json_pack("{s:s,s:i,s:s,s:s}", "method", req->method, "status", (int)r->status, "reason",
                          error_code ? error_code : "", "request_id", req->request_id);
    char *detail = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(d);
    gl_audit_event ev = {.actor = req->claims.sub[0] ? req->claims.sub : "unauthenticated",
                         .action = action,
                         .object = route,
                         .source = req->client_ip,
                         .outcome = r->status == 401 || r->status == 403 ? GL_AUDIT_DENIED
                                    : r->status < 400                 ? GL_AUDIT_SUCCESS
                                                                      : GL_AUDIT_FAILURE,
                         .detail_text = detail};
    gl_auditq_record(req->srv->audit, &ev);
    free(detail);
}

/* The request's log line and metrics. */
static void record(const gl_req *req, const gl_response *r) {
    uint64_t us = elapsed_us(req);
    const char *route = req->route[0] ? req->route : "(unmatched)";
    /* Only a replayed error has no code at hand: its stored body says it. */
    const char *error_code = r->code;
    json_t *body = !error_code && r->status >= 400 && r->body ? json_loads(r->body, 0, NULL) : NULL;
    if (body) error_code = json_string_value(json_object_get(json_object_get(body, "error"), "code"));
    gl_log_request_fields f = {req->request_id, req->claims.sub[0] ? req->claims.sub : NULL, req->method, route,
                               (int)r->status, us, req->region_name, req->traceparent[0] ? req->traceparent : NULL,
                               error_code};
    gl_log_request(&f);
    audit_request(req, r, route, error_code);
    json_decref(body);
    gl_metrics_request(req->srv->metrics, gl_metrics_find_route(req->srv->metrics, route), req->method,
                       (int)r->status, us);
}

static enum MHD_Result send_response(gl_req *req, gl_response *r) {
    const char *body = r->body ? r->body : "{}";
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", r->content_type ? r->content_type : "application/json");
    MHD_add_response_header(resp, "Request-Id", req->request_id);
    if (r->replayed) MHD_add_response_header(resp, "Idempotent-Replayed", "true");
    if (r->retry_after[0]) MHD_add_response_header(resp, "Retry-After", r->retry_after);
    if (req->traceparent[0]) MHD_add_response_header(resp, "traceparent", req->traceparent);
    enum MHD_Result rc = MHD_queue_response(req->conn, r->status, resp);
    MHD_destroy_response(resp);
    record(req, r);
    free(r->body);
    r->body = NULL;
    return rc;
}

/* W3C trace context: keep the caller's trace id, answer with our own span id. */
static void take_traceparent(gl_req *req) {
    const char *tp = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "traceparent");
    char trace_id[33], parent_id[17];
    uint8_t flags;
    if (tp && gl_traceparent_parse(tp, trace_id, parent_id, &flags) &&
        !gl_traceparent_child(trace_id, flags, req->traceparent))
        req->traceparent[0] = '\0';
}

static void take_client_ip(gl_req *req) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    const char *ok = NULL;
    if (sa && sa->sa_family == AF_INET)
        ok = inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, req->client_ip,
                       sizeof req->client_ip);
    else if (sa && sa->sa_family == AF_INET6)
        ok = inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, req->client_ip,
                       sizeof req->client_ip);
    if (!ok) snprintf(req->client_ip, sizeof req->client_ip, "unknown");
    if (!ok || !gl_address_key(req->client_ip, req->address_key))
        snprintf(req->address_key, sizeof req->address_key, "unknown");
}

static gl_req *req_new(gl_server *srv, struct MHD_Connection *conn, const char *url, const char *method) {
    gl_req *req = calloc(1, sizeof *req);
    if (!req) return NULL;
    req->srv = srv;
    req->conn = conn;
    clock_gettime(CLOCK_MONOTONIC, &req->start);
    if (!gl_request_id(req->request_id)) snprintf(req->request_id, sizeof req->request_id, "unavailable");
    snprintf(req->method, sizeof req->method, "%s", method);
    snprintf(req->url, sizeof req->url, "%s", url);
    take_traceparent(req);
    take_client_ip(req);
    return req;
}

static bool declared_too_large(const gl_req *req) {
    const char *cl = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!cl) return false;
    char *end = NULL;
    errno = 0;
    unsigned long long n = strtoull(cl, &end, 10);
    return end != cl && errno == 0 && n > req->srv->cfg.body_limit;
}

static bool append_body(gl_req *req, const char *data, size_t n) {
    if (req->body_too_large || req->body_len + n > req->srv->cfg.body_limit) {
        req->body_too_large = true;
        return true; /* keep reading (and dropping) so we can answer 413 */
    }
    char *p = realloc(req->body, req->body_len + n + 1);
    if (!p) return false;
    memcpy(p + req->body_len, data, n);
    req->body = p;
    req->body_len += n;
    req->body[req->body_len] = '\0';
    return true;
}

/* ---------- handler threads ----------
 * An MHD thread never waits on a database: it serves many connections at
 * once, and a slow region would stall every request that shares the thread
 * with one of its reads. It runs a request as far as it goes without a read
 * (the common write, whose payer's owner is cached, goes straight to its
 * writer); at the first read it gives up, suspends the connection and queues
 * the request for a handler thread, which runs it again from the start (it
 * may wait on a region's database, bounded by the region's pool, breaker and
 * deadline), stores the reply and resumes the connection, or leaves that to
 * the writer when the request became a job. */

static void run_request(gl_req *req) {
    gl_response r = gl_handle(req);
    if (r.status == 0) return; /* a job: the writer resumes the connection, which may free req at once */
    gl_handle_release(req);
    req->reply = r;
    req->replied = true;
    MHD_resume_connection(req->conn);
}

/* Past the shutdown deadline a queued request is not run: 503. */
static void abandon_request(gl_req *req) {
    req->reply = gl_respond_error(req, 503, "server_busy", "the server is stopping, retry later", NULL);
    req->replied = true;
    MHD_resume_connection(req->conn);
}

static void *handler_main(void *arg) {
    gl_server *srv = arg;
    gl_handlers *h = &srv->handlers;
    for (;;) {
        pthread_mutex_lock(&h->mu);
        while (!h->head && !h->stopping) pthread_cond_wait(&h->cv, &h->mu);
        gl_req *req = h->head;
        if (req) {
            h->head = req->next;
            if (!h->head) h->tail = NULL;
            h->depth--;
        }
        bool abandon = h->abandon;
        pthread_mutex_unlock(&h->mu);
        if (!req) break; /* stopping, and nothing left */
        if (abandon) abandon_request(req);
        else run_request(req);
    }
    return NULL;
}

/* Queues a suspended request for a handler thread; false when the queue is
 * full or the server is stopping. */
static bool dispatch(gl_server *srv, gl_req *req) {
    gl_handlers *h = &srv->handlers;
    pthread_mutex_lock(&h->mu);
    bool ok = !h->stopping && h->depth < srv->cfg.handler_queue;
    if (ok) {
        req->next = NULL;
        if (h->tail) h->tail->next = req;
        else h->head = req;
        h->tail = req;
        h->depth++;
        pthread_cond_signal(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    return ok;
}

bool gl_handlers_start(gl_server *srv, gl_error *err) {
    gl_handlers *h = &srv->handlers;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    for (int i = 0; i < srv->cfg.handler_threads; i++) {
        if (pthread_create(&h->threads[i], NULL, handler_main, srv) != 0) {
            gl_error_set(err, GL_ERR_INTERNAL, "cannot start handler thread %d", i);
            return false;
        }
        h->n_threads = i + 1;
    }
    return true;
}

/* Joins the handler threads by the absolute (CLOCK_REALTIME) time `until`. */
static bool join_handlers(gl_handlers *h, const struct timespec *until) {
    bool all = true;
    for (int i = 0; i < h->n_threads; i++) {
        if (!h->threads[i]) continue;
        if (pthread_timedjoin_np(h->threads[i], NULL, until) == 0) h->threads[i] = 0;
        else all = false;
    }
    return all;
}

bool gl_handlers_stop(gl_server *srv, int deadline_ms) {
    gl_handlers *h = &srv->handlers;
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    struct timespec until = gl_realtime_in(deadline_ms);
    if (join_handlers(h, &until)) return true;
    /* Past the deadline: what is queued is answered 503, round trips in
     * flight are cut (their requests answer 503 too). */
    gl_log(GL_LOG_WARN, "shutdown_deadline", "handlers still busy after %d ms: answering the rest 503", deadline_ms);
    pthread_mutex_lock(&h->mu);
    h->abandon = true;
    pthread_mutex_unlock(&h->mu);
    gl_deadline_fire_all();
    until = gl_realtime_in(2000);
    return join_handlers(h, &until);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    (void)version;
    gl_server *srv = cls;
    gl_req *req = *con_cls;
    if (!req) {
        req = req_new(srv, conn, url, method);
        *con_cls = req;
        if (!req) return MHD_NO;
        /* A declared length over the limit is refused before a byte of the
         * body is read (MHD then closes the connection); a chunked body is
         * counted as it arrives (append_body). */
        if (declared_too_large(req)) {
            gl_response r = gl_respond_error(req, 413, "body_too_large", "the request body is over the limit", NULL);
            return send_response(req, &r);
        }
        gl_response refused = gl_handle_admit(req);
        if (refused.status) return send_response(req, &refused);
        return MHD_YES;
    }
    if (req->replied) { /* resumed by a handler thread */
        req->replied = false;
        return send_response(req, &req->reply);
    }
    if (req->job) { /* resumed by the writer: the batch committed (or failed) */
        gl_response r = req->job->resp;
        req->job->resp.body = NULL;
        return send_response(req, &r);
    }
    if (*upload_data_size > 0) {
        bool ok = append_body(req, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return ok ? MHD_YES : MHD_NO;
    }
    if (req->body_too_large) {
        gl_response r = gl_respond_error(req, 413, "body_too_large", "the request body is over the limit", NULL);
        return send_response(req, &r);
    }
    if (!gl_clients_request_read(conn)) return MHD_NO; /* read too late: being cut */
    req->inline_only = true;
    gl_response r = gl_handle(req);
    req->inline_only = false;
    if (!req->would_block) {
        if (r.status == 0) return MHD_YES; /* a job (or a refusal of one): suspended by submit */
        return send_response(req, &r);
    }
    free(r.body); /* run again on a handler thread */
    req->would_block = false;
    req->read_error = GL_ERR_NONE;
    req->read_sqlstate[0] = '\0';
    req->retry_after_s = 0;
    /* Suspended before it is queued: a handler thread may resume it at once. */
    MHD_suspend_connection(conn);
    if (!dispatch(srv, req)) {
        gl_log(GL_LOG_WARN, "server_busy", "request %s: the handler queue is full or the server is stopping",
               req->request_id);
        req->reply = gl_respond_error(req, 503, "server_busy", "the server is busy or stopping, retry later", NULL);
        req->replied = true;
        MHD_resume_connection(conn);
    }
    return MHD_YES;
}

static void release_inflight(gl_req *req) {
    if (!req->inflight_held) return;
    pthread_mutex_lock(&req->srv->inflight_mu);
    json_object_del(req->srv->inflight, req->inflight_key);
    pthread_mutex_unlock(&req->srv->inflight_mu);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    gl_server *srv = cls;
    (void)toe;
    gl_clients_response_done(srv->clients, conn);
    gl_req *req = *con_cls;
    if (!req) return;
    release_inflight(req);
    gl_job_free(req->job); /* the job's life ends with its request (jobs.h) */
    free(req->reply.body); /* a reply never sent (the client went away) */
    free(req->body);
    free(req);
    *con_cls = NULL;
}

/* libmicrohttpd keeps one MHD_OPTION_NOTIFY_CONNECTION callback (a second
 * one replaces the first): every module that follows connections is called
 * from here. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    gl_server *srv = cls;
    gl_tls_on_connection(&srv->tls, conn, code);
    gl_clients_on_connection(srv->clients, conn, socket_context, code);
}

bool gl_http_start(gl_server *srv, gl_error *err) {
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv->cfg.port)};
    if (inet_pton(AF_INET, srv->cfg.listen, &addr.sin_addr) != 1) {
        gl_error_set(err, GL_ERR_CONFIG, "ledgerd.listen \"%s\" is not an IPv4 address", srv->cfg.listen);
        return false;
    }
    srv->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
                                       MHD_USE_ERROR_LOG | gl_tls_mhd_flags(&srv->tls),
                                   0, NULL, NULL, on_request, srv, MHD_OPTION_ARRAY, gl_tls_mhd_options(&srv->tls),
                                   MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                   MHD_OPTION_THREAD_POOL_SIZE, (unsigned)srv->cfg.threads,
                                   MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
                                   MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv,
                                   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)srv->cfg.clients.idle_timeout_s,
                                   MHD_OPTION_PER_IP_CONNECTION_LIMIT,
                                   (unsigned)srv->cfg.clients.per_address_connections,
                                   MHD_OPTION_CONNECTION_LIMIT, (unsigned)4096, MHD_OPTION_END);
    if (!srv->daemon) {
        gl_error_set(err, GL_ERR_CONFIG, "cannot listen on %s:%d", srv->cfg.listen, srv->cfg.port);
        return false;
    }
    return true;
}

/* Stop accepting new connections; requests in flight continue. */
void gl_http_quiesce(gl_server *srv) {
    if (srv->daemon) MHD_quiesce_daemon(srv->daemon);
}

void gl_http_stop(gl_server *srv) {
    if (srv->daemon) MHD_stop_daemon(srv->daemon);
    srv->daemon = NULL;
}
