/*
 * mandates_ep.c — POST /v1/mandates, GET and DELETE /v1/mandates/{id} (the
 * database side is mandates.c).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../ledger/currency.h"
#include "../ledger/events.h"
#include "mandates.h"
#include "../ledger/kinds.h"
#include "../ledger/pg.h"
#include "endpoints.h"
#include "jobs.h"
#include "reads.h"
#include "../ledger/render.h"
#include "request.h"

/* Who may see or revoke a mandate: the wallet's owner, the grantee, an admin.
 * 1 yes, 0 no (answered 404: existence is not leaked), -1 region unavailable. */
static int mandate_visible(gl_req *req, const gl_id *id, ledger_mandate *m) {
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

static bool respond_mandate(gl_job *job, unsigned status, const ledger_mandate *m) {
    return gl_job_respond_json(job, status, gl_mandate_json(m));
}

/* A mandate change is audited in the transaction that makes it (PCI DSS
 * 10.2.1): both commit, or neither. */
static bool audit_mandate(PGconn *db, const gl_job *job, const char *action, const ledger_mandate *m, gl_error *err) {
    char id[GL_ID_STR_LEN + 1];
    gl_id_format(&m->id, id);
    return gl_job_audit(db, job, action, id, gl_mandate_json(m), err);
}

/* The mandate's event (events.h), in the transaction of the change: it
 * concerns the wallet's owner (read here: an admin may have granted it), the
 * grantee and whoever made the change. */
static bool mandate_event(PGconn *db, const gl_job *job, ledger_event_type type, const ledger_mandate *m,
                          gl_error *err) {
    char wallet[GL_ID_STR_LEN + 1];
    gl_id_format(&m->wallet_account_id, wallet);
    const char *p[1] = {wallet};
    PGresult *r = gl_pg_exec(db, "SELECT owner FROM accounts WHERE id = $1::uuid", 1, p, err);
    if (!r) return false;
    ledger_event e = {.type = type, .account_id = m->wallet_account_id, .mandate_id = m->id};
    e.created_at_us = type == LEDGER_EV_MANDATE_REVOKED ? m->revoked_at_us : m->created_at_us;
    memcpy(e.currency, m->currency, sizeof e.currency);
    if (PQntuples(r) == 1) ledger_event_add_owner(&e, PQgetvalue(r, 0, 0));
    PQclear(r);
    ledger_event_add_owner(&e, m->grantee);
    ledger_event_add_owner(&e, job->principal);
    return ledger_events_write(db, &e, 1, err);
}

/* Runs in the writer's transaction; reruns of the batch start from the request's copy. */
static bool respond_mandate_create(gl_job *job, PGconn *db, gl_error *err) {
    ledger_mandate m = *(const ledger_mandate *)job->extra;
    int rc = gl_mandate_insert(db, &m, err);
    if (rc < 0) return false;
    if (rc == 0)
        return gl_job_respond_error(job, 409, "mandate_exists",
                                    "a live mandate already covers this wallet, grantee and currency: revoke it first");
    return audit_mandate(db, job, "mandate.create", &m, err) && mandate_event(db, job, LEDGER_EV_MANDATE_CREATED, &m, err) &&
           respond_mandate(job, 201, &m);
}

static bool respond_mandate_revoke(gl_job *job, PGconn *db, gl_error *err) {
    ledger_mandate m;
    int rc = gl_mandate_revoke(db, (const gl_id *)job->extra, job->principal, &m, err);
    if (rc < 0) return false;
    return (rc == 0 || (audit_mandate(db, job, "mandate.revoke", &m, err) &&
                        mandate_event(db, job, LEDGER_EV_MANDATE_REVOKED, &m, err))) &&
           respond_mandate(job, 200, &m);
}

/* Checks the body of POST /v1/mandates into *m; on failure sets *fail. */
static bool mandate_fields(gl_req *req, json_t *o, ledger_mandate *m, gl_response *fail) {
    const char *bad = NULL;
    if (!gl_id_parse(gl_str_field(o, "wallet_account_id"), &m->wallet_account_id)) bad = "wallet_account_id";
    else if (!gl_copy_str(m->grantee, sizeof m->grantee, gl_str_field(o, "grantee")) || !m->grantee[0]) bad = "grantee";
    else if (!gl_copy_str(m->currency, sizeof m->currency, gl_str_field(o, "currency")) || !gl_currency_find(m->currency))
        bad = "currency";
    else if (!gl_amount_field(o, "max_amount_per_charge", true, &m->max_per_charge)) bad = "max_amount_per_charge";
    else if (!gl_amount_field(o, "max_amount_per_day", true, &m->max_per_day) ||
             m->max_per_day < m->max_per_charge)
        bad = "max_amount_per_day";
    else if (!gl_parse_rfc3339_us(gl_str_field(o, "expires_at"), &m->expires_at_us)) bad = "expires_at";
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

gl_response gl_create_mandate(gl_req *req) {
    static const gl_field_spec spec[] = {
        {"wallet_account_id", JSON_STRING, true},   {"grantee", JSON_STRING, true},
        {"currency", JSON_STRING, true},            {"max_amount_per_charge", JSON_INTEGER, true},
        {"max_amount_per_day", JSON_INTEGER, true}, {"expires_at", JSON_STRING, true},
        {NULL, JSON_NULL, false}};
    gl_response fail;
    json_t *o = gl_parse_body(req, spec, &fail);
    if (!o) return fail;
    ledger_mandate *m = calloc(1, sizeof *m);
    bool ok = m && mandate_fields(req, o, m, &fail);
    json_decref(o);
    if (!ok) {
        free(m);
        return m ? fail : gl_respond_error(req, 500, "internal", "out of memory", NULL);
    }
    /* Only the wallet's owner grants (another principal's wallet is "not found"). */
    if (!gl_id_region_allowed(req, &m->wallet_account_id)) {
        free(m);
        return gl_region_forbidden(req, "wallet_account_id");
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
    gl_job *job = resp.status ? NULL : gl_job_new(req, r, 0);
    if (!job) {
        free(m);
        return resp.status ? resp : gl_respond_error(req, 500, "internal", "out of memory", NULL);
    }
    gl_copy_str(m->created_by, sizeof m->created_by, req->claims.sub);
    job->extra = m;
    job->respond = respond_mandate_create;
    return gl_submit_keyed(req, job, false);
}

gl_response gl_get_mandate(gl_req *req, const gl_id *id) {
    ledger_mandate m;
    int v = mandate_visible(req, id, &m);
    if (v < 0) return gl_read_error(req);
    if (v == 0) return gl_respond_error(req, 404, "mandate_not_found", "mandate not found", NULL);
    return gl_respond_json(200, gl_mandate_json(&m));
}

/* Revocation is idempotent: revoking a revoked mandate answers it as it is. */
gl_response gl_revoke_mandate(gl_req *req, const gl_id *id) {
    ledger_mandate m;
    int v = mandate_visible(req, id, &m);
    if (v < 0) return gl_read_error(req);
    if (v == 0) return gl_respond_error(req, 404, "mandate_not_found", "mandate not found", NULL);
    gl_id *target = malloc(sizeof *target);
    gl_job *job = target ? gl_job_new(req, gl_region_of_id(&req->srv->regions, id), 0) : NULL;
    if (!job) {
        free(target);
        return gl_respond_error(req, 500, "internal", "out of memory", NULL);
    }
    *target = *id;
    job->extra = target;
    job->respond = respond_mandate_revoke;
    return gl_submit(req, job);
}
