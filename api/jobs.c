/*
 * jobs.c — see jobs.h.
 */
#include "jobs.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "../ledger/audit.h"
#include "../ledger/pg.h"
#include "reads.h"

bool gl_idem_key_valid(const char *k) {
    size_t n = strlen(k);
    if (n == 0 || n > GL_IDEM_KEY_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)k[i] < 0x21 || (unsigned char)k[i] > 0x7e) return false;
    return true;
}

static void request_hash(const gl_req *req, unsigned char out[32]) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int len = 0;
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, req->method, strlen(req->method) + 1);
    EVP_DigestUpdate(ctx, req->url, strlen(req->url) + 1);
    if (req->body) EVP_DigestUpdate(ctx, req->body, req->body_len);
    EVP_DigestFinal_ex(ctx, out, &len);
    EVP_MD_CTX_free(ctx);
}

/* The key of the in-flight set (srv->inflight): principal and Idempotency-Key. */
static void inflight_key_of(const gl_req *req, const char *key, char out[sizeof req->inflight_key]) {
    snprintf(out, sizeof req->inflight_key, "%s\x1f%s", req->claims.sub, key);
}

/* Reads and checks the Idempotency-Key; marks it in flight for this process. */
static bool take_idem_key(gl_req *req, gl_job *job, bool required, gl_response *fail) {
    const char *k = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Idempotency-Key");
    if (!k) {
        if (required)
            *fail = gl_respond_error(req, 400, "idempotency_key_required", "this POST moves money: send an Idempotency-Key",
                                     NULL);
        return !required;
    }
    if (!gl_idem_key_valid(k)) {
        *fail = gl_respond_error(req, 400, "idempotency_key_invalid", "Idempotency-Key must be 1..255 printable characters",
                                 NULL);
        return false;
    }
    snprintf(job->idem_key, sizeof job->idem_key, "%s", k);
    snprintf(job->method, sizeof job->method, "%s", req->method);
    snprintf(job->path, sizeof job->path, "%s", req->url);
    request_hash(req, job->request_hash);
    inflight_key_of(req, k, req->inflight_key);
    pthread_mutex_lock(&req->srv->inflight_mu);
    bool busy = json_object_get(req->srv->inflight, req->inflight_key) != NULL;
    if (!busy) json_object_set_new(req->srv->inflight, req->inflight_key, json_true());
    pthread_mutex_unlock(&req->srv->inflight_mu);
    if (busy) {
        *fail = gl_respond_error(req, 409, "idempotency_key_in_use", "a request with this key is still running", NULL);
        return false;
    }
    req->inflight_held = true;
    return true;
}

/* A keyed POST that today's authorization refuses (a mandate revoked or
 * expired since, a token's regions narrowed): when its key already holds the
 * completed response of the same request, that response stands, replayed
 * byte for byte; only new effects are authorized again (API.md). Another
 * request under the key is 422 as always. When region r cannot say, 503: a
 * refusal could make the client give up on a charge that went through. */
gl_response gl_replay_or(gl_req *req, const gl_region *r, gl_response refusal) {
    const char *k = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Idempotency-Key");
    if (!r || !k || !gl_idem_key_valid(k) || req->claims.sub[0] == '\0') return refusal;
    /* The first request under the key is still running (it may yet commit):
     * the client is told so, as on the usual path, not refused. */
    char inflight_key[sizeof req->inflight_key];
    inflight_key_of(req, k, inflight_key);
    pthread_mutex_lock(&req->srv->inflight_mu);
    bool running = json_object_get(req->srv->inflight, inflight_key) != NULL;
    pthread_mutex_unlock(&req->srv->inflight_mu);
    if (running) {
        free(refusal.body);
        return gl_respond_error(req, 409, "idempotency_key_in_use", "a request with this key is still running", NULL);
    }
    PGconn *db = gl_read_conn(req, r);
    gl_error err;
    gl_error_clear(&err);
    const char *p[2] = {req->claims.sub, k};
    PGresult *res = db ? gl_pg_exec(db,
                                    "SELECT path, request_hash, status, response_body FROM idempotency_keys "
                                    "WHERE principal = $1 AND key = $2 AND expires_at > now()",
                                    2, p, &err)
                       : NULL;
    if (!res) {
        if (db) gl_read_failed(req, r, &err);
        free(refusal.body);
        return gl_read_error(req);
    }
    if (PQntuples(res) == 0) {
        PQclear(res);
        return refusal;
    }
    unsigned char hash[32];
    request_hash(req, hash);
    size_t stored_len = 0;
    unsigned char *stored = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 1), &stored_len);
    bool same = stored && stored_len == sizeof hash && memcmp(stored, hash, sizeof hash) == 0 &&
                strcmp(PQgetvalue(res, 0, 0), req->url) == 0;
    PQfreemem(stored);
    free(refusal.body);
    gl_response r2;
    if (same) {
        r2 = (gl_response){.status = (unsigned)strtoul(PQgetvalue(res, 0, 2), NULL, 10), .replayed = true};
        r2.body = strdup(PQgetvalue(res, 0, 3));
    } else {
        r2 = gl_respond_error(req, 422, "idempotency_key_reused", "this Idempotency-Key was used with another request",
                              NULL);
    }
    PQclear(res);
    return r2;
}

gl_job *gl_job_new(gl_req *req, const gl_region *r, size_t n) {
    gl_job *job = calloc(1, sizeof *job);
    if (!job) return NULL;
    /* n = 0: a job with no ledger command (mandates) that only needs the
     * batch's transaction for its own rows and its idempotency row. */
    job->cmds = n ? calloc(n, sizeof *job->cmds) : NULL;
    job->results = n ? calloc(n, sizeof *job->results) : NULL;
    if (n && (!job->cmds || !job->results)) {
        free(job->cmds);
        free(job->results);
        free(job);
        return NULL;
    }
    job->srv = req->srv;
    job->conn = req->conn;
    job->region = r;
    job->n = n;
    snprintf(job->principal, sizeof job->principal, "%s", req->claims.sub);
    snprintf(job->request_id, sizeof job->request_id, "%s", req->request_id);
    snprintf(job->source, sizeof job->source, "%s", req->client_ip);
    return job;
}

void gl_job_free(gl_job *job) {
    if (!job) return;
    free(job->metadata);
    free(job->extra);
    free(job->cmds);
    free(job->refused);
    free(job->results);
    free(job->resp.body);
    free(job);
}

_Static_assert(LEDGER_OK == 0, "a calloc'ed route array runs every command");

bool gl_job_set_route(gl_job *job, size_t i, ledger_code code) {
    assert(job && i < job->n && code < LEDGER_CODE_COUNT);
    if (code == LEDGER_OK && !job->refused) return true; /* the common case allocates nothing */
    /* The first refusal: calloc makes every other command LEDGER_OK. */
    if (!job->refused && !(job->refused = calloc(job->n, sizeof *job->refused))) return false;
    job->refused[i] = code;
    return true;
}

/* Queues the job; on success the response comes after COMMIT (status 0 here). */
gl_response gl_submit(gl_req *req, gl_job *job) {
    assert(req && job && job->region);
    req->region_name = job->region->name;
    /* Leases go back first: once the job is queued, the writer may answer it
     * and the request may be gone before this thread returns. */
    gl_handle_release(req);
    req->job = job;
    /* On the HTTP thread the connection is suspended here, before the writer
     * can resume it (a handler thread's request was suspended when queued). */
    if (req->inline_only) MHD_suspend_connection(req->conn);
    int retry_after_s = 1;
    if (gl_writer_submit(req->srv, job, &retry_after_s)) return (gl_response){0};
    req->job = NULL;
    gl_job_free(job);
    gl_log(GL_LOG_WARN, "submit_refused", "request %s: region %s is down or its queue is full", req->request_id,
           req->region_name);
    gl_response r = gl_respond_error(req, 503, "region_unavailable", "the region is unavailable or busy, retry later",
                                     NULL);
    snprintf(r.retry_after, sizeof r.retry_after, "%d", retry_after_s);
    if (!req->inline_only) return r;
    req->reply = r; /* suspended above: answered once resumed */
    req->replied = true;
    MHD_resume_connection(req->conn);
    return (gl_response){0};
}

/* Takes the Idempotency-Key, then queues the job (freed on any refusal). */
gl_response gl_submit_keyed(gl_req *req, gl_job *job, bool key_required) {
    gl_response fail;
    if (!take_idem_key(req, job, key_required, &fail)) {
        gl_job_free(job);
        return fail;
    }
    return gl_submit(req, job);
}

bool gl_job_respond_error(gl_job *job, unsigned status, const char *code, const char *msg) {
    job->resp.status = status;
    job->resp.code = code;
    job->resp.body = gl_error_body(gl_type_of_status(status), code, msg, NULL, job->request_id);
    return job->resp.body != NULL;
}

bool gl_job_respond_json(gl_job *job, unsigned status, json_t *o) {
    assert(job);
    job->resp.status = status;
    job->resp.body = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    return job->resp.body != NULL;
}

bool gl_job_audit(PGconn *db, const gl_job *job, const char *action, const char *object, json_t *detail,
                  gl_error *err) {
    assert(db && job && action && object);
    if (!detail) detail = json_object();
    json_object_set_new(detail, "request_id", json_string(job->request_id));
    gl_audit_event ev = {.actor = job->principal, .action = action, .object = object, .source = job->source,
                         .outcome = GL_AUDIT_SUCCESS, .detail = detail};
    bool ok = gl_audit_append(db, &ev, 1, err);
    json_decref(detail);
    return ok;
}
