/*
 * webhooks_ep.c — /v1/webhook_endpoints (API.md): register, list, read,
 * delete and re-enable endpoints; list an endpoint's deliveries with their
 * attempts (dead letters with ?state=dead) and redeliver one by hand. The
 * database side is webhooks.c; the sending, webhookd.c.
 *
 * An endpoint is its owner's (an admin sees all): another principal's is
 * "not found", as an account is. Writes are jobs on the endpoint's region
 * writer, audited in its transaction, like mandates.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "../ledger/events.h"
#include "../ledger/pg.h"
#include "../ledger/render.h"
#include "../ledger/text.h"
#include "endpoints.h"
#include "jobs.h"
#include "reads.h"
#include "request.h"
#include "webhooks.h"

#define DELIVERIES_LIMIT_DEFAULT 20

/* What a webhook job's respond() needs (job->extra). */
typedef struct {
    gl_webhook_endpoint e; /* create: the new endpoint; the others: e.id */
    gl_id delivery;        /* redeliver */
} webhook_job;

static gl_response not_found(gl_req *req) {
    return gl_respond_error(req, 404, "webhook_endpoint_not_found", "webhook endpoint not found", NULL);
}

/* The endpoint `id` when the caller may see it: 1 yes (*e set), 0 no (404:
 * existence is not leaked), -1 region unavailable. */
static int endpoint_visible(gl_req *req, const gl_id *id, gl_webhook_endpoint *e) {
    const gl_region *r = gl_region_of_id(&req->srv->regions, id);
    if (!r) return 0;
    PGconn *db = gl_read_conn(req, r);
    gl_error err;
    gl_error_clear(&err);
    int found = db ? gl_webhook_get(db, id, e, &err) : -1;
    if (found < 0 && db) gl_read_failed(req, r, &err);
    if (found <= 0) return found;
    return gl_is_admin(req) || strcmp(e->owner, req->claims.sub) == 0;
}

static const char *region_name_of(const gl_server *srv, const gl_id *id) {
    const gl_region *r = gl_region_of_id(&srv->regions, id);
    return r ? r->name : NULL;
}

/* ---------- jobs (in the writer's transaction) ---------- */

static bool audit_endpoint(PGconn *db, const gl_job *job, const char *action, const gl_webhook_endpoint *e,
                           gl_error *err) {
    char id[GL_ID_STR_LEN + 1];
    gl_id_format(&e->id, id);
    json_t *detail = json_pack("{s:s}", "url", e->url); /* never the secret */
    return gl_job_audit(db, job, action, id, detail, err);
}

static bool respond_create(gl_job *job, PGconn *db, gl_error *err) {
    webhook_job w = *(const webhook_job *)job->extra; /* a rerun of the batch starts from the request's copy */
    int rc = gl_webhook_insert(db, &w.e, err);
    if (rc < 0) return false;
    if (rc == 0)
        return gl_job_respond_error(job, 409, "webhook_endpoint_limit", "the principal has the most endpoints a region allows: delete one first");
    return audit_endpoint(db, job, "webhook_endpoint.create", &w.e, err) &&
           gl_job_respond_json(job, 201, gl_webhook_json(&w.e, job->region->name));
}

static bool respond_delete(gl_job *job, PGconn *db, gl_error *err) {
    const webhook_job *w = job->extra;
    gl_webhook_endpoint e;
    int rc = gl_webhook_get(db, &w->e.id, &e, err);
    rc = rc == 1 ? gl_webhook_delete(db, &w->e.id, err) : rc;
    if (rc < 0) return false;
    if (rc == 0) return gl_job_respond_error(job, 404, "webhook_endpoint_not_found", "webhook endpoint not found");
    return audit_endpoint(db, job, "webhook_endpoint.delete", &e, err) &&
           gl_job_respond_json(job, 200, json_pack("{s:o,s:b}", "id", gl_id_json(&e.id), "deleted", 1));
}

static bool respond_enable(gl_job *job, PGconn *db, gl_error *err) {
    const webhook_job *w = job->extra;
    gl_webhook_endpoint e;
    int rc = gl_webhook_enable(db, &w->e.id, &e, err);
    if (rc < 0) return false;
    if (rc == 0) return gl_job_respond_error(job, 404, "webhook_endpoint_not_found", "webhook endpoint not found");
    return audit_endpoint(db, job, "webhook_endpoint.enable", &e, err) &&
           gl_job_respond_json(job, 200, gl_webhook_json(&e, job->region->name));
}

static bool respond_redeliver(gl_job *job, PGconn *db, gl_error *err) {
    const webhook_job *w = job->extra;
    int rc = gl_webhook_redeliver(db, &w->e.id, &w->delivery, err);
    if (rc < 0) return false;
    if (rc == 0) return gl_job_respond_error(job, 404, "webhook_delivery_not_found", "webhook delivery not found");
    if (rc == 2)
        return gl_job_respond_error(job, 409, "webhook_delivery_pending", "the delivery is still pending: it is being retried");
    json_t *data = NULL;
    int64_t next = 0;
    if (gl_webhook_deliveries(db, &w->e.id, GL_DELIVERY_ANY, 0, 1, &w->delivery, &data, &next, err) != 1) {
        json_decref(data);
        if (!err->message[0]) gl_error_set(err, GL_ERR_INTERNAL, "the redelivered delivery is gone");
        return false;
    }
    json_t *d = json_incref(json_array_get(data, 0));
    json_decref(data);
    return gl_job_respond_json(job, 200, d);
}

/* A job for the endpoint's region carrying w (copied); keyed when `keyed`. */
static gl_response submit(gl_req *req, const gl_region *r, const webhook_job *w, gl_job_respond_fn fn, bool keyed) {
    webhook_job *copy = malloc(sizeof *copy);
    gl_job *job = copy ? gl_job_new(req, r, 0) : NULL;
    if (!job) {
        free(copy);
        return gl_respond_error(req, 500, "internal", "out of memory", NULL);
    }
    *copy = *w;
    job->extra = copy;
    job->respond = fn;
    return keyed ? gl_submit_keyed(req, job, false) : gl_submit(req, job);
}

/* ---------- POST /v1/webhook_endpoints ---------- */

/* event_types: an array of at most 16 event type names (empty: all). */
static bool parse_event_types(json_t *a, uint32_t *mask) {
    *mask = 0;
    if (!a) return true;
    if (json_array_size(a) > GL_WEBHOOK_TYPES_MAX) return false;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        ledger_event_type t;
        if (!json_is_string(v) || !ledger_event_type_parse(json_string_value(v), &t)) return false;
        *mask |= 1u << t;
    }
    return true;
}

/* Checks the body into w and *r; on failure sets *fail. */
static bool endpoint_fields(gl_req *req, json_t *o, webhook_job *w, const gl_region **r, gl_response *fail) {
    const char *url = gl_str_field(o, "url"), *why = NULL;
    *r = gl_region_by_name(&req->srv->regions, gl_str_field(o, "region"));
    gl_webhook_target t;
    if (!*r) *fail = gl_respond_error(req, 400, "invalid_value", "no such region", "region");
    else if (!gl_region_allowed(req, *r)) *fail = gl_region_forbidden(req, "region");
    else if (!parse_event_types(json_object_get(o, "event_types"), &w->e.types))
        *fail = gl_respond_error(req, 400, "invalid_value", "event_types must be at most 16 event type names", "event_types");
    else if (!gl_copy_str(w->e.url, sizeof w->e.url, url))
        *fail = gl_respond_error(req, 400, "invalid_value", "the url is over 2048 bytes", "url");
    else if (!gl_webhook_target_check(url, req->srv->cfg.webhooks.allow_private_targets, &t, &why))
        *fail = gl_respond_error(req, 400, "invalid_value", why, "url");
    return fail->status == 0;
}

gl_response gl_create_webhook_endpoint(gl_req *req) {
    static const gl_field_spec spec[] = {{"url", JSON_STRING, true},
                                         {"region", JSON_STRING, true},
                                         {"event_types", JSON_ARRAY, false},
                                         {NULL, JSON_NULL, false}};
    if (req->inline_only) { /* the url's host is resolved: a handler thread's job, not the HTTP thread's */
        req->would_block = true;
        return (gl_response){0};
    }
    gl_response fail = {0};
    json_t *o = gl_parse_body(req, spec, &fail);
    if (!o) return fail;
    webhook_job w;
    memset(&w, 0, sizeof w);
    const gl_region *r = NULL;
    bool ok = endpoint_fields(req, o, &w, &r, &fail);
    json_decref(o);
    if (!ok) return fail;
    gl_error err;
    gl_copy_str(w.e.owner, sizeof w.e.owner, req->claims.sub);
    w.e.owner_is_admin = gl_is_admin(req);
    if (!gl_id_new(r->code, &w.e.id, &err) || !gl_webhook_secret_new(w.e.secret))
        return gl_respond_error(req, 500, "internal", "cannot make an id or a secret", NULL);
    gl_response resp = submit(req, r, &w, respond_create, true);
    OPENSSL_cleanse(&w, sizeof w);
    return resp;
}

/* ---------- GET /v1/webhook_endpoints ---------- */

/* The caller's endpoints of region r (admin: all, the first GL_WEBHOOK_LIST_MAX) into data. */
static bool list_region(gl_req *req, const gl_region *r, json_t *data, bool *more) {
    gl_webhook_endpoint *e = calloc(GL_WEBHOOK_LIST_MAX + 1, sizeof *e);
    PGconn *db = e ? gl_read_conn(req, r) : NULL;
    gl_error err;
    gl_error_clear(&err);
    int n = db ? gl_webhook_list(db, gl_is_admin(req) ? NULL : req->claims.sub, e, GL_WEBHOOK_LIST_MAX + 1, &err) : -1;
    if (n < 0 && db) gl_read_failed(req, r, &err);
    if (db) gl_read_release(req, r);
    for (int i = 0; i < n && i < GL_WEBHOOK_LIST_MAX; i++) json_array_append_new(data, gl_webhook_json(&e[i], r->name));
    *more = *more || n > GL_WEBHOOK_LIST_MAX;
    free(e);
    return n >= 0;
}

gl_response gl_list_webhook_endpoints(gl_req *req) {
    const char *only = gl_query(req, "region");
    const gl_region *one = only ? gl_region_by_name(&req->srv->regions, only) : NULL;
    if (only && !one) return gl_respond_error(req, 400, "invalid_value", "no such region", "region");
    if (one && !gl_region_allowed(req, one)) return gl_region_forbidden(req, "region");
    json_t *data = json_array(), *down = json_array();
    bool more = false;
    for (int i = 0; i < req->srv->regions.n_regions; i++) {
        const gl_region *r = &req->srv->regions.regions[i];
        if ((one && r != one) || !gl_region_allowed(req, r)) continue;
        if (!list_region(req, r, data, &more)) json_array_append_new(down, json_string(r->name));
    }
    if (req->would_block) { /* on the HTTP thread: it runs again on a handler thread */
        json_decref(data);
        json_decref(down);
        return (gl_response){0};
    }
    json_t *o = json_pack("{s:o,s:b}", "data", data, "has_more", more);
    if (json_array_size(down)) json_object_set_new(o, "regions_unavailable", down);
    else json_decref(down);
    return gl_respond_json(200, o);
}

/* ---------- /v1/webhook_endpoints/{id} ---------- */

gl_response gl_get_webhook_endpoint(gl_req *req, const gl_id *id) {
    gl_webhook_endpoint e;
    int v = endpoint_visible(req, id, &e);
    if (v < 0) return gl_read_error(req);
    if (v == 0) return not_found(req);
    return gl_respond_json(200, gl_webhook_json(&e, region_name_of(req->srv, id)));
}

/* DELETE and POST .../enable: the endpoint must be the caller's first. */
static gl_response change_endpoint(gl_req *req, const gl_id *id, gl_job_respond_fn fn) {
    webhook_job w;
    memset(&w, 0, sizeof w);
    int v = endpoint_visible(req, id, &w.e);
    if (v < 0) return gl_read_error(req);
    if (v == 0) return not_found(req);
    return submit(req, gl_region_of_id(&req->srv->regions, id), &w, fn, false);
}

gl_response gl_delete_webhook_endpoint(gl_req *req, const gl_id *id) { return change_endpoint(req, id, respond_delete); }
gl_response gl_enable_webhook_endpoint(gl_req *req, const gl_id *id) { return change_endpoint(req, id, respond_enable); }

/* ---------- deliveries ---------- */

gl_response gl_list_webhook_deliveries(gl_req *req, const gl_id *id) {
    int64_t limit = DELIVERIES_LIMIT_DEFAULT, before = 0;
    gl_delivery_state state = GL_DELIVERY_ANY;
    const char *lim = gl_query(req, "limit"), *after = gl_query(req, "after"), *st = gl_query(req, "state");
    if (lim && !gl_parse_i64(lim, 1, GL_WEBHOOK_PAGE_MAX, &limit))
        return gl_respond_error(req, 400, "invalid_value", "limit must be 1..100", "limit");
    if (after && !gl_parse_i64(after, 1, INT64_MAX, &before))
        return gl_respond_error(req, 400, "invalid_value", "after must be a next_cursor of this list", "after");
    if (st && !gl_delivery_state_parse(st, &state))
        return gl_respond_error(req, 400, "invalid_value", "state must be pending, delivered or dead", "state");
    gl_webhook_endpoint e;
    int v = endpoint_visible(req, id, &e);
    if (v < 0) return gl_read_error(req);
    if (v == 0) return not_found(req);
    const gl_region *r = gl_region_of_id(&req->srv->regions, id);
    PGconn *db = gl_read_conn(req, r);
    gl_error err;
    gl_error_clear(&err);
    json_t *data = NULL;
    int64_t next = 0;
    int n = db ? gl_webhook_deliveries(db, id, state, before, (int)limit, NULL, &data, &next, &err) : -1;
    if (n < 0) {
        if (db) gl_read_failed(req, r, &err);
        return gl_read_error(req);
    }
    char cursor[24];
    snprintf(cursor, sizeof cursor, "%lld", (long long)next);
    return gl_respond_json(200, json_pack("{s:o,s:b,s:o}", "data", data, "has_more", next != 0, "next_cursor",
                                          next ? json_string(cursor) : json_null()));
}

/* The {delivery_id} of /v1/webhook_endpoints/{id}/deliveries/{delivery_id}/redeliver. */
static bool delivery_id_of(const gl_req *req, gl_id *out) {
    char path[GL_PATH_MAX];
    snprintf(path, sizeof path, "%s", req->url);
    char *save = NULL, *seg = strtok_r(path, "/", &save);
    for (int i = 0; seg && i < 4; i++) seg = strtok_r(NULL, "/", &save);
    return seg && gl_id_parse(seg, out);
}

gl_response gl_redeliver_webhook(gl_req *req, const gl_id *id) {
    webhook_job w;
    memset(&w, 0, sizeof w);
    if (!delivery_id_of(req, &w.delivery)) /* (the route matched it as an id) */
        return gl_respond_error(req, 404, "webhook_delivery_not_found", "webhook delivery not found", NULL);
    int v = endpoint_visible(req, id, &w.e);
    if (v < 0) return gl_read_error(req);
    if (v == 0) return not_found(req);
    return submit(req, gl_region_of_id(&req->srv->regions, id), &w, respond_redeliver, false);
}
