/*
 * handlers.c — the endpoints of API.md.
 *
 * gl_handle() authenticates (JWT on everything but the probes), matches the
 * route, checks the scope and the object (a principal sees and moves money
 * only on accounts it owns; others' accounts are 404), and either answers a
 * read on this thread's connection to the home region or queues a job on the
 * region's writer. Every refusal has the one error shape; nothing is written
 * before validation passes.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "../ledger/clock.h"
#include "../ledger/currency.h"
#include "../ledger/pg.h"
#include "../ledger/text.h"
#include "../ledger/audit.h"
#include "../ledger/kinds.h"
#include "mandates.h"
#include "reads.h"
#include "render.h"
#include "server.h"

#define ENTRIES_PAGE_MAX 100
#define ENTRIES_PAGE_DEFAULT 10

/* ---------- small helpers ---------- */

static const char *code_message(ledger_code c) {
    switch (c) {
    case LEDGER_INSUFFICIENT_FUNDS: return "the debit account's balance does not cover the amount";
    case LEDGER_CURRENCY_MISMATCH: return "the transfer's currency differs from an account's currency";
    case LEDGER_ACCOUNT_CLOSED: return "an account of the transfer is closed";
    case LEDGER_ACCOUNT_NOT_FOUND: return "account not found";
    case LEDGER_PENDING_EXPIRED: return "the pending transfer has expired";
    case LEDGER_EXCEEDS_PENDING_AMOUNT: return "the amount exceeds the pending amount";
    case LEDGER_ALREADY_POSTED: return "the pending transfer was already posted";
    case LEDGER_ALREADY_VOIDED: return "the pending transfer was already voided";
    case LEDGER_EXCEEDS_REVERSIBLE_AMOUNT: return "the amount exceeds what is left to reverse";
    case LEDGER_CROSS_REGION_REQUIRES_SAGA: return "the accounts live in different regions: use /v1/payments";
    case LEDGER_EXISTS_WITH_DIFFERENT_FIELDS: return "this reference was used for a different transfer";
    case LEDGER_MANDATE_INVALID: return "no live mandate lets you debit this account in this currency";
    case LEDGER_MANDATE_LIMIT_EXCEEDED: return "the amount is above the mandate's per-charge or per-day cap";
    default: return "the ledger refused the request";
    }
}

/* The API's names where API.md names a refusal differently from the engine. */
static const char *api_code(ledger_code c) {
    switch (c) {
    case LEDGER_EXISTS_WITH_DIFFERENT_FIELDS: return "reference_conflict";
    case LEDGER_PENDING_EXPIRED: return "pending_transfer_expired";
    case LEDGER_MANDATE_INVALID: return "mandate_required";
    default: return ledger_code_name(c);
    }
}

static gl_response region_forbidden(const gl_req *req, const char *param) {
    return gl_respond_error(req, 403, "region_forbidden", "not allowed in this region", param);
}

/* ---------- request bodies ---------- */

typedef struct {
    const char *name;
    json_type type;
    bool required;
} field_spec;

/* Parses the body as one JSON object with only the listed fields, of their types. */
static json_t *parse_body(const gl_req *req, const field_spec *spec, gl_response *fail) {
    json_error_t je;
    json_t *o = req->body_len ? json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!o || !json_is_object(o)) {
        json_decref(o);
        *fail = gl_respond_error(req, 400, "invalid_json", "the body must be one JSON object", NULL);
        return NULL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        const field_spec *f = spec;
        while (f->name && strcmp(f->name, key) != 0) f++;
        if (!f->name) {
            *fail = gl_respond_error(req, 400, "unknown_field", "unknown field", key);
            json_decref(o);
            return NULL;
        }
        bool type_ok = json_typeof(v) == f->type || (f->type == JSON_TRUE && json_is_boolean(v)) ||
                       (!f->required && json_is_null(v));
        if (!type_ok) {
            *fail = gl_respond_error(req, 400, "invalid_type", "wrong type for this field", key);
            json_decref(o);
            return NULL;
        }
    }
    for (const field_spec *f = spec; f->name; f++) {
        if (f->required && !json_object_get(o, f->name)) {
            *fail = gl_respond_error(req, 400, "missing_field", "a required field is missing", f->name);
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static const char *str_field(json_t *o, const char *name) {
    json_t *v = json_object_get(o, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Amounts: JSON integers 1..2^63-1 (jansson refuses larger integers at parse time). */
static bool amount_field(json_t *o, const char *name, bool required, int64_t *out) {
    json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v)) {
        *out = 0;
        return !required;
    }
    *out = (int64_t)json_integer_value(v);
    return *out > 0;
}

static bool copy_str(char *dst, size_t cap, const char *src) {
    size_t n = src ? strlen(src) : 0;
    if (!src || n >= cap) return false;
    memcpy(dst, src, n + 1);
    return true;
}

/* ---------- idempotency ---------- */

static bool idem_key_valid(const char *k) {
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

/* Reads and checks the Idempotency-Key; marks it in flight for this process. */
static bool take_idem_key(gl_req *req, gl_job *job, bool required, gl_response *fail) {
    const char *k = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Idempotency-Key");
    if (!k) {
        if (required)
            *fail = gl_respond_error(req, 400, "idempotency_key_required", "this POST moves money: send an Idempotency-Key",
                                     NULL);
        return !required;
    }
    if (!idem_key_valid(k)) {
        *fail = gl_respond_error(req, 400, "idempotency_key_invalid", "Idempotency-Key must be 1..255 printable characters",
                                 NULL);
        return false;
    }
    snprintf(job->idem_key, sizeof job->idem_key, "%s", k);
    snprintf(job->method, sizeof job->method, "%s", req->method);
    snprintf(job->path, sizeof job->path, "%s", req->url);
    request_hash(req, job->request_hash);
    snprintf(req->inflight_key, sizeof req->inflight_key, "%s\x1f%s", req->claims.sub, k);
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
static gl_response replay_or(gl_req *req, const gl_region *r, gl_response refusal) {
    const char *k = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Idempotency-Key");
    if (!r || !k || !idem_key_valid(k) || req->claims.sub[0] == '\0') return refusal;
    /* The first request under the key is still running (it may yet commit):
     * the client is told so, as on the usual path, not refused. */
    char inflight_key[sizeof req->inflight_key];
    snprintf(inflight_key, sizeof inflight_key, "%s\x1f%s", req->claims.sub, k);
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

/* ---------- jobs ---------- */

static gl_job *job_new(gl_req *req, const gl_region *r, size_t n) {
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

static void job_free(gl_job *job) {
    if (!job) return;
    free(job->metadata);
    free(job->extra);
    free(job->cmds);
    free(job->results);
    free(job->resp.body);
    free(job);
}

/* Takes the Idempotency-Key, then queues the job (freed on any refusal). */
static gl_response submit(gl_req *req, gl_job *job);

static gl_response submit_keyed(gl_req *req, gl_job *job, bool key_required) {
    gl_response fail;
    if (!take_idem_key(req, job, key_required, &fail)) {
        job_free(job);
        return fail;
    }
    return submit(req, job);
}

/* Queues the job; on success the response comes after COMMIT (status 0 here). */
static gl_response submit(gl_req *req, gl_job *job) {
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
    job_free(job);
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

static bool respond_error_in_job(gl_job *job, unsigned status, const char *code, const char *msg) {
    job->resp.status = status;
    job->resp.body = gl_error_body(gl_type_of_status(status), code, msg, NULL, job->request_id);
    return job->resp.body != NULL;
}

/* A new transfer as GET would show it, from its command and result. */
static void transfer_from_cmd(const ledger_cmd *c, const ledger_result *r, ledger_transfer *t) {
    memset(t, 0, sizeof *t);
    t->id = r->id;
    memcpy(t->owner, c->owner, sizeof t->owner);
    memcpy(t->reference, c->reference, sizeof t->reference);
    t->debit_account_id = c->debit_account_id;
    t->credit_account_id = c->credit_account_id;
    t->amount = c->amount;
    memcpy(t->currency, c->currency, sizeof t->currency);
    t->flags = c->pending ? LEDGER_TF_PENDING : 0u;
    snprintf(t->status, sizeof t->status, "%s", c->pending ? "pending" : "posted");
    gl_format_rfc3339_us(r->created_at_us, t->created_at, sizeof t->created_at);
    if (c->pending && c->timeout_s > 0)
        gl_format_rfc3339_us(r->created_at_us + c->timeout_s * 1000000, t->expires_at, sizeof t->expires_at);
    if (c->metadata) snprintf(t->metadata, sizeof t->metadata, "%s", c->metadata);
}

/* Reads what the batch wrote (same transaction) to build a transfer response. */
static bool respond_transfer(gl_job *job, PGconn *db, gl_error *err) {
    const ledger_result *r = &job->results[0];
    if (r->code != LEDGER_OK && r->code != LEDGER_EXISTS) {
        return respond_error_in_job(job, gl_status_of_code(r->code), api_code(r->code), code_message(r->code));
    }
    ledger_transfer t;
    if (r->code == LEDGER_OK && job->cmds[0].kind == LEDGER_CMD_TRANSFER) {
        transfer_from_cmd(&job->cmds[0], r, &t); /* the hot path: no query */
    } else {
        int found = ledger_transfer_get(db, &r->id, &t, err);
        if (found <= 0) return found == 0 && respond_error_in_job(job, 500, "internal", "transfer vanished");
    }
    json_t *o = gl_transfer_json(&t);
    job->resp.status = r->code == LEDGER_OK ? 201 : 200;
    job->resp.body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return job->resp.body != NULL;
}

static bool respond_account(gl_job *job, PGconn *db, gl_error *err) {
    const ledger_result *r = &job->results[0];
    if (r->code != LEDGER_OK)
        return respond_error_in_job(job, gl_status_of_code(r->code), api_code(r->code), code_message(r->code));
    ledger_account a;
    if (ledger_account_get(db, &r->id, &a, err) <= 0) return false;
    json_t *o = gl_account_json(&job->srv->regions, &a);
    job->resp.status = 201;
    job->resp.body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return job->resp.body != NULL;
}

/* Batch: per-item results; an atomic batch that failed answers with the failing item's error. */
typedef struct {
    json_t *items;
    const size_t *item_of; /* the item each read transfer belongs to */
} batch_items;

static void put_transfer(void *arg, size_t i, const ledger_transfer *t) {
    batch_items *b = arg;
    json_object_set_new(json_array_get(b->items, b->item_of[i]), "transfer", gl_transfer_json(t));
}

/* Each item that wrote (or found) a transfer gets it, all read in one query:
 * this runs under the batch's row locks. */
static bool batch_transfers(json_t *items, const gl_job *job, PGconn *db, gl_error *err) {
    gl_id *ids = malloc(job->n * sizeof *ids);
    size_t *item_of = malloc(job->n * sizeof *item_of);
    size_t m = 0;
    for (size_t i = 0; ids && item_of && i < job->n; i++) {
        if (job->results[i].code != LEDGER_OK && job->results[i].code != LEDGER_EXISTS) continue;
        ids[m] = job->results[i].id;
        item_of[m++] = i;
    }
    batch_items b = {.items = items, .item_of = item_of};
    int found = !ids || !item_of ? (gl_error_set(err, GL_ERR_INTERNAL, "out of memory"), -1)
                                 : ledger_transfers_each(db, ids, m, put_transfer, &b, err);
    if (found >= 0 && (size_t)found != m) {
        gl_error_set(err, GL_ERR_INTERNAL, "%zu of the batch's %zu transfers could not be read back", m - (size_t)found, m);
        found = -1;
    }
    free(ids);
    free(item_of);
    return found >= 0;
}

static bool respond_batch(gl_job *job, PGconn *db, gl_error *err) {
    json_t *items = json_array();
    size_t failed = job->n;
    for (size_t i = 0; i < job->n; i++) {
        const ledger_result *r = &job->results[i];
        json_array_append_new(items, json_pack("{s:s}", "result", api_code(r->code)));
        if (r->code != LEDGER_OK && r->code != LEDGER_EXISTS && failed == job->n && r->code != LEDGER_LINKED_EVENT_FAILED)
            failed = i;
    }
    if (!batch_transfers(items, job, db, err)) {
        json_decref(items);
        return false;
    }
    json_t *o;
    if (job->atomic && failed < job->n) {
        ledger_code c = job->results[failed].code;
        job->resp.status = gl_status_of_code(c);
        o = json_pack("{s:{s:s,s:s,s:s,s:I,s:o}}", "error", "type", gl_type_of_status(job->resp.status), "code",
                      api_code(c), "message", code_message(c), "index", (json_int_t)failed, "results", items);
    } else {
        job->resp.status = job->atomic ? 201 : 200;
        o = json_pack("{s:b,s:o}", "atomic", job->atomic, "results", items);
    }
    job->resp.body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return job->resp.body != NULL;
}

/* ---------- object checks (the reads are in reads.c) ---------- */

/* No principal creates money (API.md): debiting an account that may go below
 * zero (a funding account; or an account opened before the kinds, or by an
 * operator, without its floor flag) needs accounts:issue or admin. */
static bool may_debit_unbounded(const gl_req *req) {
    return gl_jwt_has_scope(&req->claims, GL_SCOPE_ACCOUNTS_ISSUE) || gl_is_admin(req);
}

static gl_response unbounded_debit_forbidden(const gl_req *req, const char *param) {
    return gl_respond_error(req, 403, "unbounded_debit_forbidden",
                            "this account may go below zero: debiting it needs the accounts:issue scope", param);
}

/* ---------- accounts ---------- */

/* The flags a request asks for ("flags": {"name": bool}); false when a name
 * is unknown or a value is not a boolean. *asked_off: flags set to false. */
static bool requested_flags(json_t *flags, uint32_t *on, uint32_t *asked_off) {
    *on = *asked_off = 0;
    const char *fk;
    json_t *fv;
    json_object_foreach(flags, fk, fv) {
        uint32_t bit = strcmp(fk, "debits_must_not_exceed_credits") == 0   ? LEDGER_AF_DEBITS_MUST_NOT_EXCEED_CREDITS
                       : strcmp(fk, "credits_must_not_exceed_debits") == 0 ? LEDGER_AF_CREDITS_MUST_NOT_EXCEED_DEBITS
                                                                           : 0;
        if (!bit || !json_is_boolean(fv)) return false;
        if (json_is_true(fv)) *on |= bit;
        else *asked_off |= bit;
    }
    return true;
}

/* Who may open an account of which kind, with which flags (ledger/kinds.h):
 * a kind that may go below zero needs accounts:issue or admin; any other
 * kind always carries its floor flag, and a request cannot take it off.
 * 0 with *flags set, or an error response. */
static gl_response account_kind_policy(gl_req *req, const gl_account_kind *k, json_t *flags_json, uint32_t *flags) {
    uint32_t on, off;
    if (!requested_flags(flags_json, &on, &off))
        return gl_respond_error(req, 400, "invalid_value", "flags: known names with boolean values only", "flags");
    if (k->may_go_below_zero) {
        if (!gl_jwt_has_scope(&req->claims, GL_SCOPE_ACCOUNTS_ISSUE) && !gl_is_admin(req))
            return gl_respond_error(req, 403, "account_kind_forbidden",
                                    "this kind may go below zero: opening one needs the accounts:issue scope", "kind");
        *flags = on;
        return (gl_response){0};
    }
    uint32_t floor = gl_account_kind_floor_flag(k);
    if ((off & floor) || (on & ~floor))
        return gl_respond_error(req, 400, "account_flags_forbidden",
                                "this kind never goes below zero: its limit flag is fixed", "flags");
    *flags = floor;
    return (gl_response){0};
}

static gl_response create_account(gl_req *req) {
    static const field_spec spec[] = {{"currency", JSON_STRING, true}, {"region", JSON_STRING, true},
                                      {"owner", JSON_STRING, false},   {"kind", JSON_STRING, false},
                                      {"flags", JSON_OBJECT, false},   {"metadata", JSON_OBJECT, false},
                                      {NULL, JSON_NULL, false}};
    gl_response fail;
    json_t *o = parse_body(req, spec, &fail);
    if (!o) return fail;
    const gl_region *r = gl_region_by_name(&req->srv->regions, str_field(o, "region"));
    const char *kind_name = str_field(o, "kind") ? str_field(o, "kind") : "wallet";
    const gl_account_kind *kind = gl_account_kind_find(kind_name);
    uint32_t flags = 0;
    gl_response resp = {0};
    gl_job *job = NULL;
    if (!r) resp = gl_respond_error(req, 400, "invalid_value", "unknown region", "region");
    else if (!gl_region_allowed(req, r)) resp = region_forbidden(req, "region");
    else if (!gl_currency_find(str_field(o, "currency")))
        resp = gl_respond_error(req, 400, "invalid_value", "not an ISO 4217 currency", "currency");
    else if (str_field(o, "owner") && strcmp(str_field(o, "owner"), req->claims.sub) != 0 && !gl_is_admin(req))
        resp = gl_respond_error(req, 403, "permission_denied", "accounts are created for yourself", "owner");
    else if (!kind)
        resp = gl_respond_error(req, 400, "kind_invalid", "unknown account kind (see the account kinds in the docs)", "kind");
    else if ((resp = account_kind_policy(req, kind, json_object_get(o, "flags"), &flags)).status)
        ;
    else if (!(job = job_new(req, r, 1)))
        resp = gl_respond_error(req, 500, "internal", "out of memory", NULL);
    if (resp.status || !job) {
        json_decref(o);
        return resp;
    }
    ledger_cmd *c = &job->cmds[0];
    ledger_cmd_init(c, LEDGER_CMD_CREATE_ACCOUNT);
    copy_str(c->currency, sizeof c->currency, str_field(o, "currency"));
    copy_str(c->owner, sizeof c->owner, str_field(o, "owner") ? str_field(o, "owner") : req->claims.sub);
    copy_str(c->account_kind, sizeof c->account_kind, kind->name);
    c->account_flags = flags;
    json_t *meta = json_object_get(o, "metadata");
    char *meta_text = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
    json_decref(o);
    if (meta_text && strlen(meta_text) > LEDGER_METADATA_MAX) {
        free(meta_text);
        job_free(job);
        return gl_respond_error(req, 400, "invalid_value", "metadata is over 4096 bytes", "metadata");
    }
    job->metadata = meta_text; /* owned by the job: the writer reads it while the batch runs */
    c->metadata = meta_text;
    job->respond = respond_account;
    return submit_keyed(req, job, false);
}

static gl_response get_account(gl_req *req, const gl_id *id) {
    ledger_account a;
    int v = gl_account_visible(req, id, &a);
    if (v < 0) return gl_read_error(req);
    if (v != 1) return gl_respond_error(req, 404, "account_not_found", "account not found", NULL);
    req->region_name = gl_region_of_id(&req->srv->regions, id)->name;
    return gl_respond_json(200, gl_account_json(&req->srv->regions, &a));
}

static const char *query(const gl_req *req, const char *name) {
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM), nothing else. */
static bool rfc3339_valid(const char *s) {
    int64_t us;
    return gl_parse_rfc3339_us(s, &us);
}

static gl_response get_balance(gl_req *req, const gl_id *id) {
    ledger_account a;
    int v = gl_account_visible(req, id, &a);
    if (v < 0) return gl_read_error(req);
    if (v != 1) return gl_respond_error(req, 404, "account_not_found", "account not found", NULL);
    const char *as_of = query(req, "as_of");
    if (as_of) {
        if (!rfc3339_valid(as_of))
            return gl_respond_error(req, 400, "invalid_value", "as_of must be RFC 3339 (2026-11-25T12:00:00Z)", "as_of");
        /* The database gets the instant we parsed, in UTC: no offset or
         * spelling it would read differently (or refuse) reaches it. */
        int64_t as_of_us = 0;
        char as_of_utc[40];
        gl_parse_rfc3339_us(as_of, &as_of_us);
        gl_format_ts_us(as_of_us, as_of_utc, sizeof as_of_utc);
        gl_error err;
        const gl_region *r = gl_region_of_id(&req->srv->regions, id);
        PGconn *db = gl_read_conn(req, r);
        int found = db ? ledger_account_get_as_of(db, id, as_of_utc, &a, &err) : -1;
        if (found < 0 && db) gl_read_failed(req, r, &err);
        if (found < 0) return gl_read_error(req);
        if (!found) return gl_respond_error(req, 404, "account_not_found", "the account did not exist then", "as_of");
    }
    json_t *o = gl_account_json(&req->srv->regions, &a);
    json_object_set_new(o, "as_of", as_of ? json_string(as_of) : json_null());
    return gl_respond_json(200, o);
}

/* Well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF):
 * what a PostgreSQL text column accepts from a query string. */
static bool utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
        if (n < 0 || (n == 1 && c < 0xC2) || (n == 3 && c > 0xF4)) return false;
        unsigned cp = n == 0 ? c : c & (0x3Fu >> n);
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (p[i] & 0x3Fu);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        p += n + 1;
    }
    return true;
}


/* One cursor page of an owned account's entries: `limit` (1..100) after
 * `starting_after` (an entry version). Shared by /entries and /v1/transfers. */
typedef struct {
    ledger_entry e[ENTRIES_PAGE_MAX + 1];
    int n;
    bool more;
    PGconn *db; /* the home region's read connection, for follow-up reads */
    const gl_region *region;
} entries_page;

static bool read_entries_page(gl_req *req, const gl_id *id, const char *param, entries_page *pg, gl_response *fail) {
    ledger_account a;
    int v = gl_account_visible(req, id, &a);
    int64_t limit = ENTRIES_PAGE_DEFAULT, after = 0;
    bool good = false;
    if (v < 0) *fail = gl_read_error(req);
    else if (v != 1) *fail = gl_respond_error(req, 404, "account_not_found", "account not found", param);
    else if (query(req, "limit") && !gl_parse_i64(query(req, "limit"), 1, ENTRIES_PAGE_MAX, &limit))
        *fail = gl_respond_error(req, 400, "invalid_value", "limit must be 1..100", "limit");
    else if (query(req, "starting_after") && !gl_parse_i64(query(req, "starting_after"), 0, INT64_MAX, &after))
        *fail = gl_respond_error(req, 400, "invalid_value", "starting_after must be a cursor from next_cursor",
                                 "starting_after");
    else good = true;
    if (!good) return false;
    gl_error err;
    const gl_region *r = gl_region_of_id(&req->srv->regions, id);
    pg->region = r;
    pg->db = gl_read_conn(req, r);
    pg->n = pg->db ? ledger_entries_list(pg->db, id, after, (int)limit + 1, pg->e, &err) : -1;
    if (pg->n < 0 && pg->db) gl_read_failed(req, r, &err);
    if (pg->n < 0) {
        *fail = gl_read_error(req);
        return false;
    }
    pg->more = pg->n > limit;
    if (pg->more) pg->n = (int)limit;
    return true;
}

/* {data, has_more, next_cursor?}: the cursor is the last entry's version. */
static gl_response page_response(json_t *data, const entries_page *pg) {
    json_t *o = json_pack("{s:o,s:b}", "data", data, "has_more", pg->more);
    if (pg->more) {
        char cur[24];
        snprintf(cur, sizeof cur, "%lld", (long long)pg->e[pg->n - 1].version);
        json_object_set_new(o, "next_cursor", json_string(cur));
    }
    return gl_respond_json(200, o);
}

static gl_response get_entries(gl_req *req, const gl_id *id) {
    entries_page pg;
    gl_response fail;
    if (!read_entries_page(req, id, NULL, &pg, &fail)) return fail;
    json_t *data = json_array();
    for (int i = 0; i < pg.n; i++) json_array_append_new(data, gl_entry_json(&pg.e[i]));
    return page_response(data, &pg);
}

/* ---------- transfers ---------- */

static const field_spec transfer_spec[] = {
    {"debit_account_id", JSON_STRING, true}, {"credit_account_id", JSON_STRING, true},
    {"amount", JSON_INTEGER, true},          {"currency", JSON_STRING, true},
    {"reference", JSON_STRING, true},        {"metadata", JSON_OBJECT, false},
    {"pending", JSON_TRUE, false},           {"timeout_seconds", JSON_INTEGER, false},
    {NULL, JSON_NULL, false}};

/* Sets c->mandate_id to the live mandate letting the caller debit c's debit
 * account; false (403 mandate_required, or 503) when there is none. */
static bool find_mandate_for(gl_req *req, const gl_region *r, ledger_cmd *c, gl_response *fail) {
    PGconn *db = gl_read_conn(req, r);
    gl_error err;
    int found = db ? gl_mandate_find_live(db, &c->debit_account_id, c->owner, c->currency, &c->mandate_id, &err) : -1;
    if (found < 0 && db) gl_read_failed(req, r, &err);
    if (found < 0) *fail = gl_read_error(req);
    else if (!found)
        *fail = gl_respond_error(req, 403, "mandate_required", "no live mandate lets you debit this account in this currency",
                                 "debit_account_id");
    return found == 1;
}

/* A mandate charge credits only an account of the grantee's own (API.md):
 * else a grantee could move a user's money to anyone. Owners never change,
 * so the (cached) owner read here cannot go stale before the batch runs. */
static bool mandate_payee_allowed(gl_req *req, const ledger_cmd *c, gl_response *fail) {
    int v = gl_account_owned(req, &c->credit_account_id, NULL);
    if (v < 0) *fail = gl_read_error(req);
    else if (v == 0) *fail = gl_respond_error(req, 404, "account_not_found", "account not found", "credit_account_id");
    else if (v == 2)
        *fail = gl_respond_error(req, 403, "mandate_payee_forbidden",
                                 "a mandate charge may credit only the grantee's own accounts", "credit_account_id");
    return v == 1;
}

/* Fills one transfer command from a validated object; on failure sets *fail. */
static bool transfer_cmd(gl_req *req, json_t *o, ledger_cmd *c, const gl_region **region, gl_response *fail) {
    ledger_cmd_init(c, LEDGER_CMD_TRANSFER);
    copy_str(c->owner, sizeof c->owner, req->claims.sub);
    const char *bad = NULL;
    if (!gl_id_parse(str_field(o, "debit_account_id"), &c->debit_account_id)) bad = "debit_account_id";
    else if (!gl_id_parse(str_field(o, "credit_account_id"), &c->credit_account_id)) bad = "credit_account_id";
    else if (!amount_field(o, "amount", true, &c->amount)) bad = "amount";
    else if (!copy_str(c->currency, sizeof c->currency, str_field(o, "currency")) || !gl_currency_find(c->currency))
        bad = "currency";
    else if (!copy_str(c->reference, sizeof c->reference, str_field(o, "reference")) || !c->reference[0])
        bad = "reference";
    if (bad) {
        *fail = gl_respond_error(req, 400, "invalid_value", "invalid value", bad);
        return false;
    }
    c->pending = json_is_true(json_object_get(o, "pending"));
    json_t *to = json_object_get(o, "timeout_seconds");
    if (to && !json_is_null(to)) {
        c->timeout_s = (int64_t)json_integer_value(to);
        if (!c->pending || c->timeout_s <= 0 || c->timeout_s > LEDGER_TIMEOUT_MAX_S) {
            *fail = gl_respond_error(req, 400, "invalid_value", "timeout_seconds needs pending and 1..31622400",
                                     "timeout_seconds");
            return false;
        }
    }
    /* The token's regions first: nothing of a region it does not cover is read. */
    *region = gl_region_of_id(&req->srv->regions, &c->debit_account_id);
    if (!gl_id_region_allowed(req, &c->debit_account_id) || !gl_id_region_allowed(req, &c->credit_account_id)) {
        *fail = region_forbidden(req, gl_id_region_allowed(req, &c->debit_account_id) ? "credit_account_id" : "debit_account_id");
        return false;
    }
    bool unbounded = false;
    int v = gl_account_owned(req, &c->debit_account_id, &unbounded);
    if (v < 0) {
        *fail = gl_read_error(req);
        return false;
    }
    if (v == 0) {
        *fail = gl_respond_error(req, 404, "account_not_found", "account not found", "debit_account_id");
        return false;
    }
    if (unbounded && !may_debit_unbounded(req)) {
        *fail = unbounded_debit_forbidden(req, "debit_account_id");
        return false;
    }
    /* Someone else's wallet: a live mandate must cover it (API.md: else 403);
     * the engine checks it again, and its caps, under the mandate's row lock. */
    return v == 1 || (mandate_payee_allowed(req, c, fail) && find_mandate_for(req, *region, c, fail));
}

static gl_response create_transfer(gl_req *req) {
    gl_response fail;
    json_t *o = parse_body(req, transfer_spec, &fail);
    if (!o) return fail;
    ledger_cmd c;
    const gl_region *r = NULL;
    bool ok = transfer_cmd(req, o, &c, &r, &fail);
    json_t *meta = json_object_get(o, "metadata");
    char *meta_text = ok && meta && !json_is_null(meta) ? json_dumps(meta, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!ok) return fail.status == 403 ? replay_or(req, r, fail) : fail;
    if (meta_text && strlen(meta_text) > LEDGER_METADATA_MAX) {
        free(meta_text);
        return gl_respond_error(req, 400, "invalid_value", "metadata is over 4096 bytes", "metadata");
    }
    gl_job *job = job_new(req, r, 1);
    if (!job) {
        free(meta_text);
        return gl_respond_error(req, 500, "internal", "out of memory", NULL);
    }
    job->metadata = meta_text; /* owned by the job: the writer reads it while the batch runs */
    c.metadata = meta_text;
    job->cmds[0] = c;
    job->respond = respond_transfer;
    return submit_keyed(req, job, true);
}

/* The items' metadata texts in one allocation (the job owns it), each
 * command pointing at its own: one free() however many items carry metadata. */
static bool batch_metadata(gl_job *job, char **metas) {
    size_t total = 0;
    for (size_t i = 0; i < job->n; i++) total += metas[i] ? strlen(metas[i]) + 1 : 0;
    if (total == 0) return true;
    char *arena = malloc(total), *p = arena;
    if (!arena) return false;
    for (size_t i = 0; i < job->n; i++) {
        if (!metas[i]) continue;
        size_t len = strlen(metas[i]) + 1;
        memcpy(p, metas[i], len);
        job->cmds[i].metadata = p;
        p += len;
    }
    job->metadata = arena;
    return true;
}

/* A batch of n transfers counts as n requests against the principal's rate
 * (the request itself took one already): batching is not a way around it. */
static gl_response rate_limit_items(gl_req *req, size_t n) {
    assert(n >= 1);
    if (!req->srv->ratelimit || n == 1 || req->items_charged) return (gl_response){0};
    req->items_charged = true;
    uint64_t retry_s = 1;
    if (gl_ratelimit_take_n(req->srv->ratelimit, req->claims.sub, (uint32_t)(n - 1), gl_monotonic_ns() / 1000u,
                            &retry_s))
        return (gl_response){0};
    gl_response r = gl_respond_error(req, 429, "rate_limited",
                                     retry_s ? "too many requests for this principal (a batch counts each transfer)"
                                             : "this batch is larger than the principal's burst: split it",
                                     "transfers");
    snprintf(r.retry_after, sizeof r.retry_after, "%llu", (unsigned long long)(retry_s ? retry_s : 1));
    return r;
}

static gl_response create_batch(gl_req *req) {
    static const field_spec spec[] = {{"atomic", JSON_TRUE, true}, {"transfers", JSON_ARRAY, true},
                                      {NULL, JSON_NULL, false}};
    gl_response fail;
    json_t *o = parse_body(req, spec, &fail);
    if (!o) return fail;
    json_t *items = json_object_get(o, "transfers");
    size_t n = json_array_size(items);
    if (n == 0 || n > LEDGER_BATCH_MAX) {
        json_decref(o);
        return gl_respond_error(req, 400, "invalid_value", "transfers must hold 1..8189 items", "transfers");
    }
    gl_response limited = rate_limit_items(req, n);
    if (limited.status) {
        json_decref(o);
        return limited;
    }
    bool atomic = json_is_true(json_object_get(o, "atomic"));
    gl_job *job = NULL;
    const gl_region *region = NULL, *refused_region = NULL;
    char **metas = calloc(n, sizeof *metas);
    bool ok = metas != NULL;
    if (!ok) fail = gl_respond_error(req, 500, "internal", "out of memory", NULL);
    for (size_t i = 0; ok && i < n; i++) {
        gl_req item_req = *req;
        char *txt = json_dumps(json_array_get(items, i), JSON_COMPACT);
        item_req.body = txt;
        item_req.body_len = txt ? strlen(txt) : 0;
        json_t *io = parse_body(&item_req, transfer_spec, &fail);
        free(txt);
        ledger_cmd c;
        const gl_region *r = NULL;
        ok = io && transfer_cmd(req, io, &c, &r, &fail);
        if (!ok) refused_region = r;
        json_t *meta = ok ? json_object_get(io, "metadata") : NULL;
        bool has_meta = meta && !json_is_null(meta);
        if (has_meta) metas[i] = json_dumps(meta, JSON_COMPACT);
        json_decref(io); /* meta was borrowed from io: not used past here */
        if (has_meta && (!metas[i] || strlen(metas[i]) > LEDGER_METADATA_MAX)) {
            ok = false;
            fail = gl_respond_error(req, 400, "invalid_value", "metadata is over 4096 bytes", "metadata");
        } else if (ok && region && r != region) {
            ok = false;
            fail = gl_respond_error(req, 400, "invalid_value", "a batch runs in one region: split it", "transfers");
        } else if (ok && !job && !(job = job_new(req, r, n))) {
            ok = false;
            fail = gl_respond_error(req, 500, "internal", "out of memory", NULL);
        }
        if (!ok) break;
        region = r;
        c.linked = atomic && i + 1 < n;
        job->cmds[i] = c;
    }
    json_decref(o);
    if (ok && !batch_metadata(job, metas)) {
        ok = false;
        fail = gl_respond_error(req, 500, "internal", "out of memory", NULL);
    }
    for (size_t i = 0; metas && i < n; i++) free(metas[i]);
    free(metas);
    if (!ok) {
        job_free(job);
        return fail.status == 403 ? replay_or(req, refused_region, fail) : fail;
    }
    job->atomic = atomic;
    job->respond = respond_batch;
    return submit_keyed(req, job, true);
}

static gl_response get_transfer(gl_req *req, const gl_id *id) {
    ledger_transfer t;
    int v = gl_transfer_visible(req, id, &t);
    if (v < 0) return gl_read_error(req);
    if (!v) return gl_respond_error(req, 404, "transfer_not_found", "transfer not found", NULL);
    return gl_respond_json(200, gl_transfer_json(&t));
}

/* GET /v1/transfers?reference=R: the caller's transfer with that reference, from
 * whichever region has it (reads span regions). ?account_id=A: the transfers
 * of an account the caller owns, oldest first, through its entries (cursor:
 * the entry version, as for /entries). */
/* Appends the caller's transfers with that reference in region r; false when
 * the region could not answer (logged). */
static bool find_by_reference_in(gl_req *req, const gl_region *r, const char *reference, json_t *data) {
    PGconn *db = gl_read_conn(req, r);
    if (!db) return false;
    gl_error err;
    gl_error_clear(&err);
    const char *p[2] = {req->claims.sub, reference};
    PGresult *res = gl_pg_exec(db, "SELECT id FROM transfers WHERE owner = $1 AND reference = $2", 2, p, &err);
    bool ok = res != NULL;
    for (int row = 0; ok && row < PQntuples(res); row++) {
        gl_id id;
        ledger_transfer t;
        ok = gl_pg_get_id(res, row, 0, &id) && ledger_transfer_get(db, &id, &t, &err) == 1;
        if (ok) json_array_append_new(data, gl_transfer_json(&t));
    }
    PQclear(res);
    if (!ok) gl_read_failed(req, r, &err);
    gl_read_release(req, r); /* one region's connection at a time */
    return ok;
}

/* A search over every region is complete or it is not answered: when a region
 * cannot answer, the caller gets 503 naming it (at once while its breaker is
 * open), never a partial list that would read as "no such transfer there". */
static gl_response list_by_reference(gl_req *req, const char *reference) {
    if (strlen(reference) == 0 || strlen(reference) > LEDGER_REFERENCE_MAX || !utf8_valid(reference))
        return gl_respond_error(req, 400, "invalid_value", "reference must be 1..128 characters of UTF-8", "reference");
    json_t *data = json_array();
    char down[256] = "";
    for (int i = 0; i < req->srv->regions.n_regions; i++) {
        const gl_region *r = &req->srv->regions.regions[i];
        if (!gl_region_allowed(req, r)) continue; /* the token's regions bound the search */
        if (!find_by_reference_in(req, r, reference, data))
            snprintf(down + strlen(down), sizeof down - strlen(down), "%s%s", down[0] ? ", " : "", r->name);
    }
    if (down[0]) {
        json_decref(data);
        char msg[sizeof down + 80];
        snprintf(msg, sizeof msg, "the search spans every region and these are unavailable: %.255s; retry later", down);
        gl_response resp = gl_respond_error(req, 503, "region_unavailable", msg, NULL);
        snprintf(resp.retry_after, sizeof resp.retry_after, "%d", req->retry_after_s > 0 ? req->retry_after_s : 1);
        return resp;
    }
    return gl_respond_json(200, json_pack("{s:o,s:b}", "data", data, "has_more", false));
}

/* A listed transfer takes its place in the page (its slot is an empty object). */
static void fill_listed(void *arg, size_t i, const ledger_transfer *t) {
    batch_items *b = arg;
    json_array_set_new(b->items, b->item_of[i], gl_transfer_json(t));
}

static gl_response list_by_account(gl_req *req, const char *account) {
    gl_id id;
    if (!gl_id_parse(account, &id)) return gl_respond_error(req, 400, "invalid_value", "not an id", "account_id");
    if (!gl_id_region_allowed(req, &id)) return region_forbidden(req, "account_id");
    entries_page pg;
    gl_response fail;
    if (!read_entries_page(req, &id, "account_id", &pg, &fail)) return fail;
    json_t *data = json_array();
    gl_id ids[ENTRIES_PAGE_MAX];
    size_t item_of[ENTRIES_PAGE_MAX];
    assert(pg.n >= 0 && pg.n <= ENTRIES_PAGE_MAX);
    for (int i = 0; i < pg.n; i++) {
        ids[i] = pg.e[i].transfer_id;
        item_of[i] = (size_t)i;
        json_array_append_new(data, json_object()); /* filled in entry order below */
    }
    gl_error err;
    gl_error_clear(&err);
    batch_items b = {.items = data, .item_of = item_of};
    int found = ledger_transfers_each(pg.db, ids, (size_t)pg.n, fill_listed, &b, &err);
    if (found != pg.n) {
        if (found >= 0) gl_error_set(&err, GL_ERR_INTERNAL, "an entry names a transfer that is not there");
        gl_read_failed(req, pg.region, &err);
        json_decref(data);
        return gl_read_error(req);
    }
    return page_response(data, &pg);
}

static gl_response list_transfers(gl_req *req) {
    const char *account = query(req, "account_id"), *reference = query(req, "reference");
    if (reference && !account) return list_by_reference(req, reference);
    if (account && !reference) return list_by_account(req, account);
    return gl_respond_error(req, 400, "invalid_value", "give exactly one of account_id or reference", NULL);
}

/* post, void, reverse: a new transfer naming an existing one the caller made. */
static gl_response act_on_transfer(gl_req *req, const gl_id *id, ledger_cmd_kind kind) {
    static const field_spec post_spec[] = {{"amount", JSON_INTEGER, false}, {NULL, JSON_NULL, false}};
    static const field_spec void_spec[] = {{NULL, JSON_NULL, false}};
    static const field_spec rev_spec[] = {{"amount", JSON_INTEGER, false}, {"reference", JSON_STRING, true},
                                          {NULL, JSON_NULL, false}};
    const field_spec *spec = kind == LEDGER_CMD_POST ? post_spec : kind == LEDGER_CMD_VOID ? void_spec : rev_spec;
    gl_response fail;
    json_t *o = req->body_len || kind == LEDGER_CMD_REVERSE ? parse_body(req, spec, &fail) : json_object();
    if (!o) return fail;
    ledger_cmd c;
    ledger_cmd_init(&c, kind);
    copy_str(c.owner, sizeof c.owner, req->claims.sub);
    c.target_id = *id;
    bool ok = amount_field(o, "amount", false, &c.amount);
    if (ok && kind == LEDGER_CMD_REVERSE)
        ok = copy_str(c.reference, sizeof c.reference, str_field(o, "reference")) && c.reference[0];
    json_decref(o);
    if (!ok) return gl_respond_error(req, 400, "invalid_value", "amount must be > 0; reference 1..128 characters", NULL);
    ledger_transfer t;
    int v = gl_transfer_visible(req, id, &t);
    if (v < 0) return gl_read_error(req);
    if (!v) return gl_respond_error(req, 404, "transfer_not_found", "transfer not found", NULL);
    const gl_region *r = gl_region_of_id(&req->srv->regions, id); /* allowed: route_v1 checked */
    if (kind == LEDGER_CMD_REVERSE) {
        /* A refund debits the payee: only the payee's owner (or a mandate) may do that. */
        ledger_account payee;
        int pv = gl_account_visible(req, &t.credit_account_id, &payee);
        if (pv < 0) return gl_read_error(req);
        if (pv != 1)
            return gl_respond_error(req, 403, "mandate_required", "no mandate lets you debit the payee's account", NULL);
        if (gl_account_unbounded(payee.flags) && !may_debit_unbounded(req)) return unbounded_debit_forbidden(req, NULL);
    }
    gl_job *job = job_new(req, r, 1);
    if (!job) return gl_respond_error(req, 500, "internal", "out of memory", NULL);
    job->cmds[0] = c;
    job->respond = respond_transfer;
    return submit_keyed(req, job, true);
}

/* ---------- probes ---------- */

/* ---------- mandates ---------- */

/* Who may see or revoke a mandate: the wallet's owner, the grantee, an admin.
 * 1 yes, 0 no (answered 404: existence is not leaked), -1 region unavailable. */
static int mandate_visible(gl_req *req, const gl_id *id, gl_mandate *m) {
    const gl_region *r = gl_region_of_id(&req->srv->regions, id);
    if (!r) return 0;
    PGconn *db = gl_read_conn(req, r);
    gl_error err;
    int found = db ? gl_mandate_get(db, id, m, &err) : -1;
    if (found < 0 && db) gl_read_failed(req, r, &err);
    if (found <= 0) return found;
    if (gl_is_admin(req) || strcmp(m->grantee, req->claims.sub) == 0) return 1;
    int v = gl_account_owned(req, &m->wallet_account_id, NULL);
    return v < 0 ? -1 : v == 1;
}

static bool respond_mandate(gl_job *job, unsigned status, const gl_mandate *m) {
    json_t *o = gl_mandate_json(m);
    job->resp.status = status;
    job->resp.body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return job->resp.body != NULL;
}

/* A mandate change is audited in the transaction that makes it (PCI DSS
 * 10.2.1): both commit, or neither. */
static bool audit_mandate(PGconn *db, const gl_job *job, const char *action, const gl_mandate *m, gl_error *err) {
    json_t *detail = gl_mandate_json(m);
    char id[GL_ID_STR_LEN + 1];
    gl_id_format(&m->id, id);
    json_object_set_new(detail, "request_id", json_string(job->request_id));
    gl_audit_event ev = {.actor = job->principal, .action = action, .object = id, .source = job->source,
                         .outcome = GL_AUDIT_SUCCESS, .detail = detail};
    bool ok = gl_audit_append(db, &ev, 1, err);
    json_decref(detail);
    return ok;
}

/* Runs in the writer's transaction; reruns of the batch start from the request's copy. */
static bool respond_mandate_create(gl_job *job, PGconn *db, gl_error *err) {
    gl_mandate m = *(const gl_mandate *)job->extra;
    int rc = gl_mandate_insert(db, &m, err);
    if (rc < 0) return false;
    if (rc == 0)
        return respond_error_in_job(job, 409, "mandate_exists",
                                    "a live mandate already covers this wallet, grantee and currency: revoke it first");
    return audit_mandate(db, job, "mandate.create", &m, err) && respond_mandate(job, 201, &m);
}

static bool respond_mandate_revoke(gl_job *job, PGconn *db, gl_error *err) {
    gl_mandate m;
    int rc = gl_mandate_revoke(db, (const gl_id *)job->extra, job->principal, &m, err);
    if (rc < 0) return false;
    return (rc == 0 || audit_mandate(db, job, "mandate.revoke", &m, err)) && respond_mandate(job, 200, &m);
}

/* Checks the body of POST /v1/mandates into *m; on failure sets *fail. */
static bool mandate_fields(gl_req *req, json_t *o, gl_mandate *m, gl_response *fail) {
    const char *bad = NULL;
    if (!gl_id_parse(str_field(o, "wallet_account_id"), &m->wallet_account_id)) bad = "wallet_account_id";
    else if (!copy_str(m->grantee, sizeof m->grantee, str_field(o, "grantee")) || !m->grantee[0]) bad = "grantee";
    else if (!copy_str(m->currency, sizeof m->currency, str_field(o, "currency")) || !gl_currency_find(m->currency))
        bad = "currency";
    else if (!amount_field(o, "max_amount_per_charge", true, &m->max_amount_per_charge)) bad = "max_amount_per_charge";
    else if (!amount_field(o, "max_amount_per_day", true, &m->max_amount_per_day) ||
             m->max_amount_per_day < m->max_amount_per_charge)
        bad = "max_amount_per_day";
    else if (!gl_parse_rfc3339_us(str_field(o, "expires_at"), &m->expires_at_us)) bad = "expires_at";
    if (bad) {
        *fail = gl_respond_error(req, 400, "invalid_value",
                                 strcmp(bad, "max_amount_per_day") == 0 ? "must be an integer >= max_amount_per_charge"
                                                                        : "invalid value",
                                 bad);
        return false;
    }
    int64_t now_us = (int64_t)time(NULL) * 1000000;
    if (m->expires_at_us <= now_us || m->expires_at_us - now_us > GL_MANDATE_MAX_LIFETIME_S * 1000000) {
        *fail = gl_respond_error(req, 400, "invalid_value", "expires_at must be in the future, at most 5 years ahead",
                                 "expires_at");
        return false;
    }
    return true;
}

static gl_response create_mandate(gl_req *req) {
    static const field_spec spec[] = {
        {"wallet_account_id", JSON_STRING, true},   {"grantee", JSON_STRING, true},
        {"currency", JSON_STRING, true},            {"max_amount_per_charge", JSON_INTEGER, true},
        {"max_amount_per_day", JSON_INTEGER, true}, {"expires_at", JSON_STRING, true},
        {NULL, JSON_NULL, false}};
    gl_response fail;
    json_t *o = parse_body(req, spec, &fail);
    if (!o) return fail;
    gl_mandate *m = calloc(1, sizeof *m);
    bool ok = m && mandate_fields(req, o, m, &fail);
    json_decref(o);
    if (!ok) {
        free(m);
        return m ? fail : gl_respond_error(req, 500, "internal", "out of memory", NULL);
    }
    /* Only the wallet's owner grants (another principal's wallet is "not found"). */
    if (!gl_id_region_allowed(req, &m->wallet_account_id)) {
        free(m);
        return region_forbidden(req, "wallet_account_id");
    }
    ledger_account a;
    int v = gl_account_visible(req, &m->wallet_account_id, &a);
    const gl_region *r = gl_region_of_id(&req->srv->regions, &m->wallet_account_id);
    gl_response resp = {0};
    gl_error err;
    if (v < 0) resp = gl_read_error(req);
    else if (v != 1) resp = gl_respond_error(req, 404, "account_not_found", "account not found", "wallet_account_id");
    else if (strcmp(a.owner, m->grantee) == 0)
        resp = gl_respond_error(req, 400, "invalid_value", "the wallet's owner needs no mandate", "grantee");
    else if (strcmp(a.currency, m->currency) != 0)
        resp = gl_respond_error(req, 422, "currency_mismatch", "the mandate's currency differs from the wallet's", "currency");
    else if (!(a.flags & LEDGER_AF_DEBITS_MUST_NOT_EXCEED_CREDITS)) /* a grantee could spend money the wallet lacks */
        resp = gl_respond_error(req, 422, "wallet_unbounded", "a mandate covers only an account that never goes below zero",
                                "wallet_account_id");
    else if (!gl_id_new(r->code, &m->id, &err)) resp = gl_respond_error(req, 500, "internal", "cannot make an id", NULL);
    gl_job *job = resp.status ? NULL : job_new(req, r, 0);
    if (!job) {
        free(m);
        return resp.status ? resp : gl_respond_error(req, 500, "internal", "out of memory", NULL);
    }
    copy_str(m->created_by, sizeof m->created_by, req->claims.sub);
    job->extra = m;
    job->respond = respond_mandate_create;
    return submit_keyed(req, job, false);
}

static gl_response get_mandate(gl_req *req, const gl_id *id) {
    gl_mandate m;
    int v = mandate_visible(req, id, &m);
    if (v < 0) return gl_read_error(req);
    if (v == 0) return gl_respond_error(req, 404, "mandate_not_found", "mandate not found", NULL);
    return gl_respond_json(200, gl_mandate_json(&m));
}

/* Revocation is idempotent: revoking a revoked mandate answers it as it is. */
static gl_response revoke_mandate(gl_req *req, const gl_id *id) {
    gl_mandate m;
    int v = mandate_visible(req, id, &m);
    if (v < 0) return gl_read_error(req);
    if (v == 0) return gl_respond_error(req, 404, "mandate_not_found", "mandate not found", NULL);
    gl_id *target = malloc(sizeof *target);
    gl_job *job = target ? job_new(req, gl_region_of_id(&req->srv->regions, id), 0) : NULL;
    if (!job) {
        free(target);
        return gl_respond_error(req, 500, "internal", "out of memory", NULL);
    }
    *target = *id;
    job->extra = target;
    job->respond = respond_mandate_revoke;
    return submit(req, job);
}

/* A region is up while its breaker is closed and its writers hold a connection. */
static bool region_up(gl_server *srv, int i) {
    return gl_breaker_state_now(&srv->breakers[i]) == GL_BREAKER_CLOSED && atomic_load(&srv->writers[i].up);
}

static gl_response readyz(gl_req *req) {
    json_t *regions = json_object(), *breakers = json_object();
    int up = 0;
    for (int i = 0; i < req->srv->regions.n_regions; i++) {
        bool ok = region_up(req->srv, i);
        up += ok;
        const char *name = req->srv->regions.regions[i].name;
        json_object_set_new(regions, name, json_string(ok ? "up" : "down"));
        json_object_set_new(breakers, name,
                            json_string(gl_breaker_state_name(gl_breaker_state_now(&req->srv->breakers[i]))));
    }
    const char *status = up == req->srv->regions.n_regions ? "ok" : up ? "degraded" : "down";
    gl_response r = gl_respond_json(up ? 200 : 503, json_pack("{s:s,s:o,s:o}", "status", status, "regions", regions,
                                                             "breakers", breakers));
    if (!up) snprintf(r.retry_after, sizeof r.retry_after, "5");
    return r;
}

static gl_response metrics(gl_req *req) {
    gl_server *srv = req->srv;
    for (int i = 0; i < srv->regions.n_regions; i++) {
        const gl_writer *w = &srv->writers[i];
        gl_pool *p = &srv->pools[i];
        gl_metrics_gauge_set(srv->metrics, GL_GAUGE_REGION_UP, i, region_up(srv, i) ? 1 : 0);
        gl_metrics_gauge_set(srv->metrics, GL_GAUGE_QUEUE_DEPTH, i, atomic_load(&w->depth_seen));
        gl_metrics_gauge_set(srv->metrics, GL_GAUGE_DB_POOL_SIZE, i, p->size);
        gl_metrics_gauge_set(srv->metrics, GL_GAUGE_DB_POOL_IN_USE, i, atomic_load(&p->in_use));
        gl_metrics_gauge_set(srv->metrics, GL_GAUGE_BREAKER_STATE, i, gl_breaker_state_now(&srv->breakers[i]));
        gl_metrics_gauge_set(srv->metrics, GL_GAUGE_BREAKER_OPENINGS, i,
                             (int64_t)gl_breaker_opened_total(&srv->breakers[i]));
        gl_metrics_gauge_set(srv->metrics, GL_GAUGE_DB_TIMEOUTS, i,
                             (int64_t)(atomic_load(&p->deadlines_fired) + atomic_load(&w->deadlines_fired)));
        gl_metrics_gauge_set(srv->metrics, GL_GAUGE_POOL_TIMEOUTS, i, (int64_t)atomic_load(&p->acquire_timeouts));
    }
    gl_response r = {.status = 200, .content_type = GL_METRICS_CONTENT_TYPE};
    r.body = gl_metrics_render(srv->metrics);
    return r;
}

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
 * token is refused before its token is looked at (api/clients.h). */
static gl_response admit_address(gl_req *req) {
    uint64_t retry_s = 1;
    if (gl_clients_admit(req->srv->clients, req->address_key, &retry_s)) return (gl_response){0};
    gl_metrics_auth_failure(req->srv->metrics, gl_metrics_find_reason(req->srv->metrics, "too_many_failed_requests"));
    gl_response r = gl_respond_error(req, 429, "too_many_failed_requests",
                                     "too many requests without a valid token from this address", NULL);
    snprintf(r.retry_after, sizeof r.retry_after, "%llu", (unsigned long long)(retry_s ? retry_s : 1));
    return r;
}

gl_response gl_handle_admit(gl_req *req) {
    if (strncmp(req->url, "/v1/", 4) != 0) return (gl_response){0}; /* probes and 404s: no body, no token */
    return admit_address(req);
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

/* Splits "/v1/a/b/c" into at most 5 segments. */
static int split_path(char *path, char **seg, int max) {
    int n = 0;
    for (char *save = NULL, *t = strtok_r(path, "/", &save); t && n < max + 1; t = strtok_r(NULL, "/", &save))
        seg[n++] = t;
    return n;
}

/* ---------- the route table ---------- */

static gl_response healthz(gl_req *req, const gl_id *id) {
    (void)req;
    (void)id;
    return gl_respond_json(200, json_pack("{s:s}", "status", "ok"));
}
static gl_response on_readyz(gl_req *req, const gl_id *id) { return (void)id, readyz(req); }
static gl_response on_metrics(gl_req *req, const gl_id *id) { return (void)id, metrics(req); }
static gl_response on_create_account(gl_req *req, const gl_id *id) { return (void)id, create_account(req); }
static gl_response on_create_mandate(gl_req *req, const gl_id *id) { return (void)id, create_mandate(req); }
static gl_response on_create_transfer(gl_req *req, const gl_id *id) { return (void)id, create_transfer(req); }
static gl_response on_create_batch(gl_req *req, const gl_id *id) { return (void)id, create_batch(req); }
static gl_response on_list_transfers(gl_req *req, const gl_id *id) { return (void)id, list_transfers(req); }
static gl_response on_post(gl_req *req, const gl_id *id) { return act_on_transfer(req, id, LEDGER_CMD_POST); }
static gl_response on_void(gl_req *req, const gl_id *id) { return act_on_transfer(req, id, LEDGER_CMD_VOID); }
static gl_response on_reverse(gl_req *req, const gl_id *id) { return act_on_transfer(req, id, LEDGER_CMD_REVERSE); }

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
    {"GET", "/v1/accounts/{id}", GL_SCOPE_ACCOUNTS_READ, get_account},
    {"GET", "/v1/accounts/{id}/balance", GL_SCOPE_ACCOUNTS_READ, get_balance},
    {"GET", "/v1/accounts/{id}/entries", GL_SCOPE_ACCOUNTS_READ, get_entries},
    {"POST", "/v1/mandates", GL_SCOPE_MANDATES_WRITE, on_create_mandate},
    {"GET", "/v1/mandates/{id}", GL_SCOPE_ACCOUNTS_READ, get_mandate},
    {"DELETE", "/v1/mandates/{id}", GL_SCOPE_MANDATES_WRITE, revoke_mandate},
    {"POST", "/v1/transfers", GL_SCOPE_TRANSFERS_WRITE, on_create_transfer},
    {"GET", "/v1/transfers", GL_SCOPE_TRANSFERS_READ, on_list_transfers},
    {"POST", "/v1/transfers/batch", GL_SCOPE_TRANSFERS_WRITE, on_create_batch},
    {"GET", "/v1/transfers/{id}", GL_SCOPE_TRANSFERS_READ, get_transfer},
    {"POST", "/v1/transfers/{id}/post", GL_SCOPE_TRANSFERS_WRITE, on_post},
    {"POST", "/v1/transfers/{id}/void", GL_SCOPE_TRANSFERS_WRITE, on_void},
    {"POST", "/v1/transfers/{id}/reverse", GL_SCOPE_TRANSFERS_WRITE, on_reverse},
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

/* No row matched: the 404 a client has always had. An id path of a resource
 * is that resource's "not found" when its id does not parse; an account id
 * path needs accounts:read first; /v1/mandates/{id} keeps its label. */
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
        }
    }
    return gl_respond_error(req, 404, "route_not_found", "no such endpoint", NULL);
}

gl_response gl_handle(gl_req *req) {
    char path[GL_PATH_MAX];
    snprintf(path, sizeof path, "%s", req->url);
    char *seg[6];
    int n = split_path(path, seg, 5);
    bool is_id[6] = {false};
    gl_id id;
    bool has_id = n >= 3 && n <= 4 && gl_id_parse(seg[2], &id); /* ids sit third: /v1/<resource>/{id} */
    is_id[2] = has_id;
    const gl_route *r = n <= 5 ? gl_route_find(req->method, seg, n, is_id) : NULL;
    if (r && r->scope == NO_SCOPE) {
        snprintf(req->route, sizeof req->route, "%s", r->path);
        return r->fn(req, NULL);
    }
    /* A request run again on a handler thread was authenticated and counted
     * against its rate on the HTTP thread: its claims stand. */
    if (!req->authenticated) {
        gl_response a = admit_address(req);
        if (a.status) return a;
        a = authenticate(req);
        if (a.status) {
            if (a.status == 401) gl_clients_charge(req->srv->clients, req->address_key);
            return a;
        }
        a = rate_limit(req);
        if (a.status) return a;
        req->authenticated = true;
    }
    if (has_id && strcmp(seg[0], "v1") == 0 && !gl_id_region_allowed(req, &id)) return region_forbidden(req, NULL);
    if (!r) return no_route(req, seg, n, has_id);
    snprintf(req->route, sizeof req->route, "%s", r->path);
    gl_response s = need_scope(req, r->scope);
    return s.status ? s : r->fn(req, has_id ? &id : NULL);
}
