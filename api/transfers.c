/*
 * transfers.c — POST /v1/transfers, /v1/transfers/batch, GET /v1/transfers,
 * GET /v1/transfers/{id}, POST /v1/transfers/{id}/post|void|reverse.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ledger/clock.h"
#include "../ledger/currency.h"
#include "mandates.h"
#include "../ledger/kinds.h"
#include "../ledger/pg.h"
#include "../regions/route.h"
#include "endpoints.h"
#include "jobs.h"
#include "reads.h"
#include "../ledger/render.h"
#include "request.h"

/* A new transfer as GET would show it, from its command and result. */
/* A transfer response: what the batch wrote from its result (the hook runs
 * before the transfers are in their table), an earlier transfer (a replay)
 * read from the table. */
static bool respond_transfer(gl_job *job, PGconn *db, gl_error *err) {
    const ledger_result *r = &job->results[0];
    if (r->code != LEDGER_OK && r->code != LEDGER_EXISTS) {
        return gl_job_respond_error(job, gl_status_of_code(r->code), gl_api_code(r->code), gl_code_message(r->code));
    }
    ledger_transfer t;
    if (r->written) {
        ledger_transfer_from_result(&job->cmds[0], r, &t);
    } else {
        int found = ledger_transfer_get(db, &r->id, &t, err);
        if (found <= 0) return found == 0 && gl_job_respond_error(job, 500, "internal", "transfer vanished");
    }
    json_t *o = gl_transfer_json(&t);
    job->resp.status = r->code == LEDGER_OK ? 201 : 200;
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

/* Each item that wrote (or found) a transfer gets it: what this batch wrote
 * from its result, earlier transfers (replays) read in one query: this runs
 * under the batch's row locks. */
static bool batch_transfers(json_t *items, const gl_job *job, PGconn *db, gl_error *err) {
    gl_id *ids = malloc(job->n * sizeof *ids);
    size_t *item_of = malloc(job->n * sizeof *item_of);
    size_t m = 0;
    for (size_t i = 0; ids && item_of && i < job->n; i++) {
        const ledger_result *r = &job->results[i];
        if (r->code != LEDGER_OK && r->code != LEDGER_EXISTS) continue;
        if (r->written) {
            ledger_transfer t;
            ledger_transfer_from_result(&job->cmds[i], r, &t);
            json_object_set_new(json_array_get(items, i), "transfer", gl_transfer_json(&t));
            continue;
        }
        ids[m] = r->id;
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
        json_array_append_new(items, json_pack("{s:s}", "result", gl_api_code(r->code)));
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
        job->resp.code = gl_api_code(c);
        o = json_pack("{s:{s:s,s:s,s:s,s:s,s:I,s:o}}", "error", "type", gl_type_of_status(job->resp.status), "code",
                      gl_api_code(c), "message", gl_code_message(c), "request_id", job->request_id, "index",
                      (json_int_t)failed, "results", items);
    } else {
        job->resp.status = job->atomic ? 201 : 200;
        o = json_pack("{s:b,s:o}", "atomic", job->atomic, "results", items);
    }
    job->resp.body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return job->resp.body != NULL;
}

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

static const gl_field_spec transfer_spec[] = {
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

/* Where a transfer goes: its region (the debit account's) and whether it can
 * run there (gl_route_transfer), decided once, here; the writer trusts it. */
typedef struct {
    const gl_region *region;
    ledger_code code;
} transfer_route;

/* Fills one transfer command (in its job) from a validated object and routes
 * it; on failure sets *fail (route->region is set once known: gl_replay_or). */
static bool transfer_cmd(gl_req *req, json_t *o, ledger_cmd *c, transfer_route *route, gl_response *fail) {
    assert(req && o && c && route && fail);
    ledger_cmd_init(c, LEDGER_CMD_TRANSFER);
    gl_copy_str(c->owner, sizeof c->owner, req->claims.sub);
    const char *bad = NULL;
    if (!gl_id_parse(gl_str_field(o, "debit_account_id"), &c->debit_account_id)) bad = "debit_account_id";
    else if (!gl_id_parse(gl_str_field(o, "credit_account_id"), &c->credit_account_id)) bad = "credit_account_id";
    else if (!gl_amount_field(o, "amount", true, &c->amount)) bad = "amount";
    else if (!gl_copy_str(c->currency, sizeof c->currency, gl_str_field(o, "currency")) || !gl_currency_find(c->currency))
        bad = "currency";
    else if (!gl_copy_str(c->reference, sizeof c->reference, gl_str_field(o, "reference")) || !c->reference[0])
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
    route->region = gl_route_transfer(&req->srv->regions, c, &route->code);
    if (!gl_id_region_allowed(req, &c->debit_account_id) || !gl_id_region_allowed(req, &c->credit_account_id)) {
        *fail = gl_region_forbidden(req, gl_id_region_allowed(req, &c->debit_account_id) ? "credit_account_id" : "debit_account_id");
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
    return v == 1 || (mandate_payee_allowed(req, c, fail) && find_mandate_for(req, route->region, c, fail));
}

gl_response gl_create_transfer(gl_req *req) {
    gl_response fail;
    json_t *o = gl_parse_body(req, transfer_spec, &fail);
    if (!o) return fail;
    gl_job *job = gl_job_new(req, NULL, 1); /* its region is the command's, known once it is filled */
    if (!job) {
        json_decref(o);
        return gl_respond_error(req, 500, "internal", "out of memory", NULL);
    }
    transfer_route route = {NULL, LEDGER_OK};
    bool ok = transfer_cmd(req, o, &job->cmds[0], &route, &fail);
    json_t *meta = json_object_get(o, "metadata");
    job->metadata = ok && meta && !json_is_null(meta) ? json_dumps(meta, JSON_COMPACT) : NULL;
    json_decref(o);
    if (ok && job->metadata && strlen(job->metadata) > LEDGER_METADATA_MAX) {
        ok = false;
        fail = gl_respond_error(req, 400, "invalid_value", "metadata is over 4096 bytes", "metadata");
    } else if (ok && !gl_job_set_route(job, 0, route.code)) {
        ok = false;
        fail = gl_respond_error(req, 500, "internal", "out of memory", NULL);
    }
    if (!ok) {
        gl_job_free(job);
        return fail.status == 403 ? gl_replay_or(req, route.region, fail) : fail;
    }
    job->region = route.region;
    job->cmds[0].metadata = job->metadata; /* owned by the job: the writer reads it while the batch runs */
    job->respond = respond_transfer;
    return gl_submit_keyed(req, job, true);
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

gl_response gl_create_batch(gl_req *req) {
    static const gl_field_spec spec[] = {{"atomic", JSON_TRUE, true}, {"transfers", JSON_ARRAY, true},
                                      {NULL, JSON_NULL, false}};
    gl_response fail;
    json_t *o = gl_parse_body(req, spec, &fail);
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
    /* Its region is the items' (one for all), known once the first is filled. */
    gl_job *job = gl_job_new(req, NULL, n);
    const gl_region *refused_region = NULL;
    char **metas = calloc(n, sizeof *metas);
    bool ok = metas && job;
    if (!ok) fail = gl_respond_error(req, 500, "internal", "out of memory", NULL);
    for (size_t i = 0; ok && i < n; i++) {
        gl_req item_req = *req;
        char *txt = json_dumps(json_array_get(items, i), JSON_COMPACT);
        item_req.body = txt;
        item_req.body_len = txt ? strlen(txt) : 0;
        json_t *io = gl_parse_body(&item_req, transfer_spec, &fail);
        free(txt);
        transfer_route route = {NULL, LEDGER_OK};
        ok = io && transfer_cmd(req, io, &job->cmds[i], &route, &fail);
        if (!ok) refused_region = route.region;
        json_t *meta = ok ? json_object_get(io, "metadata") : NULL;
        bool has_meta = meta && !json_is_null(meta);
        if (has_meta) metas[i] = json_dumps(meta, JSON_COMPACT);
        json_decref(io); /* meta was borrowed from io: not used past here */
        if (has_meta && (!metas[i] || strlen(metas[i]) > LEDGER_METADATA_MAX)) {
            ok = false;
            fail = gl_respond_error(req, 400, "invalid_value", "metadata is over 4096 bytes", "metadata");
        } else if (ok && job->region && route.region != job->region) {
            ok = false;
            fail = gl_respond_error(req, 400, "invalid_value", "a batch runs in one region: split it", "transfers");
        } else if (ok && !gl_job_set_route(job, i, route.code)) { /* refused: answered in the batch, with its chain */
            ok = false;
            fail = gl_respond_error(req, 500, "internal", "out of memory", NULL);
        }
        if (!ok) break;
        job->region = route.region;
        job->cmds[i].linked = atomic && i + 1 < n;
    }
    json_decref(o);
    if (ok && !batch_metadata(job, metas)) {
        ok = false;
        fail = gl_respond_error(req, 500, "internal", "out of memory", NULL);
    }
    for (size_t i = 0; metas && i < n; i++) free(metas[i]);
    free(metas);
    if (!ok) {
        gl_job_free(job);
        return fail.status == 403 ? gl_replay_or(req, refused_region, fail) : fail;
    }
    job->atomic = atomic;
    job->respond = respond_batch;
    return gl_submit_keyed(req, job, true);
}

gl_response gl_get_transfer(gl_req *req, const gl_id *id) {
    ledger_transfer t;
    int v = gl_transfer_visible(req, id, &t);
    if (v < 0) return gl_read_error(req);
    if (!v) return gl_respond_error(req, 404, "transfer_not_found", "transfer not found", NULL);
    return gl_respond_json(200, gl_transfer_json(&t));
}

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
    if (strlen(reference) == 0 || strlen(reference) > LEDGER_REFERENCE_MAX || !gl_utf8_valid(reference))
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
    if (!gl_id_region_allowed(req, &id)) return gl_region_forbidden(req, "account_id");
    gl_entries_page pg;
    gl_response fail;
    if (!gl_read_entries_page(req, &id, "account_id", &pg, &fail)) return fail;
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
    return gl_page_response(data, &pg);
}

gl_response gl_list_transfers(gl_req *req) {
    const char *account = gl_query(req, "account_id"), *reference = gl_query(req, "reference");
    if (reference && !account) return list_by_reference(req, reference);
    if (account && !reference) return list_by_account(req, account);
    return gl_respond_error(req, 400, "invalid_value", "give exactly one of account_id or reference", NULL);
}

/* Whether the caller may post, void or reverse transfer *id: it must see the
 * transfer, and a refund debits the payee, which only the payee's owner (or a
 * mandate) may do. 0 when it may, else the refusal. */
static gl_response act_allowed(gl_req *req, const gl_id *id, ledger_cmd_kind kind) {
    ledger_transfer t;
    int v = gl_transfer_visible(req, id, &t);
    if (v < 0) return gl_read_error(req);
    if (!v) return gl_respond_error(req, 404, "transfer_not_found", "transfer not found", NULL);
    if (kind != LEDGER_CMD_REVERSE) return (gl_response){0};
    ledger_account payee;
    int pv = gl_account_visible(req, &t.credit_account_id, &payee);
    if (pv < 0) return gl_read_error(req);
    if (pv != 1) return gl_respond_error(req, 403, "mandate_required", "no mandate lets you debit the payee's account", NULL);
    if (gl_account_unbounded(payee.flags) && !may_debit_unbounded(req)) return unbounded_debit_forbidden(req, NULL);
    return (gl_response){0};
}

/* post, void, reverse: a new transfer naming an existing one the caller made. */
gl_response gl_act_on_transfer(gl_req *req, const gl_id *id, ledger_cmd_kind kind) {
    static const gl_field_spec post_spec[] = {{"amount", JSON_INTEGER, false}, {NULL, JSON_NULL, false}};
    static const gl_field_spec void_spec[] = {{NULL, JSON_NULL, false}};
    static const gl_field_spec rev_spec[] = {{"amount", JSON_INTEGER, false}, {"reference", JSON_STRING, true},
                                          {NULL, JSON_NULL, false}};
    const gl_field_spec *spec = kind == LEDGER_CMD_POST ? post_spec : kind == LEDGER_CMD_VOID ? void_spec : rev_spec;
    gl_response fail;
    json_t *o = req->body_len || kind == LEDGER_CMD_REVERSE ? gl_parse_body(req, spec, &fail) : json_object();
    if (!o) return fail;
    /* The transfer's region: route_v1 checked the token allows it; an id of
     * no configured region is not visible (404 below), so never queued. */
    gl_job *job = gl_job_new(req, gl_region_of_id(&req->srv->regions, id), 1);
    if (!job) {
        json_decref(o);
        return gl_respond_error(req, 500, "internal", "out of memory", NULL);
    }
    ledger_cmd *c = &job->cmds[0];
    ledger_cmd_init(c, kind);
    gl_copy_str(c->owner, sizeof c->owner, req->claims.sub);
    c->target_id = *id;
    bool ok = gl_amount_field(o, "amount", false, &c->amount);
    if (ok && kind == LEDGER_CMD_REVERSE)
        ok = gl_copy_str(c->reference, sizeof c->reference, gl_str_field(o, "reference")) && c->reference[0];
    json_decref(o);
    fail = ok ? act_allowed(req, id, kind)
              : gl_respond_error(req, 400, "invalid_value", "amount must be > 0; reference 1..128 characters", NULL);
    if (fail.status) {
        gl_job_free(job);
        return fail;
    }
    job->respond = respond_transfer;
    return gl_submit_keyed(req, job, true);
}
