/*
 * accounts.c — POST /v1/accounts, GET /v1/accounts/{id}, /balance, /entries.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ledger/currency.h"
#include "../ledger/kinds.h"
#include "../ledger/pg.h"
#include "../ledger/text.h"
#include "endpoints.h"
#include "jobs.h"
#include "reads.h"
#include "../ledger/render.h"
#include "request.h"

static bool respond_account(gl_job *job, PGconn *db, gl_error *err) {
    const ledger_result *r = &job->results[0];
    if (r->code != LEDGER_OK)
        return gl_job_respond_error(job, gl_status_of_code(r->code), gl_api_code(r->code), gl_code_message(r->code));
    ledger_account a;
    if (ledger_account_get(db, &r->id, &a, err) <= 0) return false;
    json_t *o = gl_account_json(&a, gl_region_name_of_id(&job->srv->regions, &a.id));
    job->resp.status = 201;
    job->resp.body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    return job->resp.body != NULL;
}

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

gl_response gl_create_account(gl_req *req) {
    static const gl_field_spec spec[] = {{"currency", JSON_STRING, true}, {"region", JSON_STRING, true},
                                      {"owner", JSON_STRING, false},   {"kind", JSON_STRING, false},
                                      {"flags", JSON_OBJECT, false},   {"metadata", JSON_OBJECT, false},
                                      {NULL, JSON_NULL, false}};
    gl_response fail;
    json_t *o = gl_parse_body(req, spec, &fail);
    if (!o) return fail;
    const gl_region *r = gl_region_by_name(&req->srv->regions, gl_str_field(o, "region"));
    const char *kind_name = gl_str_field(o, "kind") ? gl_str_field(o, "kind") : "wallet";
    const gl_account_kind *kind = gl_account_kind_find(kind_name);
    uint32_t flags = 0;
    gl_response resp = {0};
    gl_job *job = NULL;
    if (!r) resp = gl_respond_error(req, 400, "invalid_value", "unknown region", "region");
    else if (!gl_region_allowed(req, r)) resp = gl_region_forbidden(req, "region");
    else if (!gl_currency_find(gl_str_field(o, "currency")))
        resp = gl_respond_error(req, 400, "invalid_value", "not an ISO 4217 currency", "currency");
    else if (gl_str_field(o, "owner") && strcmp(gl_str_field(o, "owner"), req->claims.sub) != 0 && !gl_is_admin(req))
        resp = gl_respond_error(req, 403, "permission_denied", "accounts are created for yourself", "owner");
    else if (!kind)
        resp = gl_respond_error(req, 400, "kind_invalid", "unknown account kind (see the account kinds in the docs)", "kind");
    else if ((resp = account_kind_policy(req, kind, json_object_get(o, "flags"), &flags)).status)
        ;
    else if (!(job = gl_job_new(req, r, 1)))
        resp = gl_respond_error(req, 500, "internal", "out of memory", NULL);
    if (resp.status || !job) {
        json_decref(o);
        return resp;
    }
    ledger_cmd *c = &job->cmds[0];
    ledger_cmd_init(c, LEDGER_CMD_CREATE_ACCOUNT);
    gl_copy_str(c->currency, sizeof c->currency, gl_str_field(o, "currency"));
    gl_copy_str(c->owner, sizeof c->owner, gl_str_field(o, "owner") ? gl_str_field(o, "owner") : req->claims.sub);
    gl_copy_str(c->account_kind, sizeof c->account_kind, kind->name);
    c->account_flags = flags;
    json_t *meta = json_object_get(o, "metadata");
    char *meta_text = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
    json_decref(o);
    if (meta_text && strlen(meta_text) > LEDGER_METADATA_MAX) {
        free(meta_text);
        gl_job_free(job);
        return gl_respond_error(req, 400, "invalid_value", "metadata is over 4096 bytes", "metadata");
    }
    job->metadata = meta_text; /* owned by the job: the writer reads it while the batch runs */
    c->metadata = meta_text;
    job->respond = respond_account;
    return gl_submit_keyed(req, job, false);
}

gl_response gl_get_account(gl_req *req, const gl_id *id) {
    ledger_account a;
    int v = gl_account_visible(req, id, &a);
    if (v < 0) return gl_read_error(req);
    if (v != 1) return gl_respond_error(req, 404, "account_not_found", "account not found", NULL);
    req->region_name = gl_region_of_id(&req->srv->regions, id)->name;
    return gl_respond_json(200, gl_account_json(&a, gl_region_name_of_id(&req->srv->regions, &a.id)));
}

gl_response gl_get_balance(gl_req *req, const gl_id *id) {
    ledger_account a;
    int v = gl_account_visible(req, id, &a);
    if (v < 0) return gl_read_error(req);
    if (v != 1) return gl_respond_error(req, 404, "account_not_found", "account not found", NULL);
    const char *as_of = gl_query(req, "as_of");
    int64_t as_of_us = 0;
    if (as_of) {
        if (!gl_rfc3339_valid(as_of))
            return gl_respond_error(req, 400, "invalid_value", "as_of must be RFC 3339 (2026-11-25T12:00:00Z)", "as_of");
        /* The database gets the instant we parsed, in UTC: no offset or
         * spelling it would read differently (or refuse) reaches it. */
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
    json_t *o = gl_account_json(&a, gl_region_name_of_id(&req->srv->regions, &a.id));
    /* The instant the counters are for, in the form every timestamp of the API has. */
    char instant[40];
    if (as_of) gl_format_rfc3339_us(as_of_us, instant, sizeof instant);
    json_object_set_new(o, "as_of", as_of ? json_string(instant) : json_null());
    return gl_respond_json(200, o);
}

bool gl_read_entries_page(gl_req *req, const gl_id *id, const char *param, gl_entries_page *pg, gl_response *fail) {
    ledger_account a;
    int v = gl_account_visible(req, id, &a);
    int64_t limit = ENTRIES_PAGE_DEFAULT, after = 0;
    bool good = false;
    if (v < 0) *fail = gl_read_error(req);
    else if (v != 1) *fail = gl_respond_error(req, 404, "account_not_found", "account not found", param);
    else if (gl_query(req, "limit") && !gl_parse_i64(gl_query(req, "limit"), 1, ENTRIES_PAGE_MAX, &limit))
        *fail = gl_respond_error(req, 400, "invalid_value", "limit must be 1..100", "limit");
    else if (gl_query(req, "starting_after") && !gl_parse_i64(gl_query(req, "starting_after"), 0, INT64_MAX, &after))
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
gl_response gl_page_response(json_t *data, const gl_entries_page *pg) {
    json_t *o = json_pack("{s:o,s:b}", "data", data, "has_more", pg->more);
    if (pg->more) {
        char cur[24];
        snprintf(cur, sizeof cur, "%lld", (long long)pg->e[pg->n - 1].version);
        json_object_set_new(o, "next_cursor", json_string(cur));
    }
    return gl_respond_json(200, o);
}

gl_response gl_get_entries(gl_req *req, const gl_id *id) {
    gl_entries_page pg;
    gl_response fail;
    if (!gl_read_entries_page(req, id, NULL, &pg, &fail)) return fail;
    json_t *data = json_array();
    for (int i = 0; i < pg.n; i++) json_array_append_new(data, gl_entry_json(&pg.e[i]));
    return gl_page_response(data, &pg);
}
