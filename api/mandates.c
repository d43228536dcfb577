/*
 * mandates.c — create, revoke, find and render mandates (see mandates.h).
 */
#include "mandates.h"

#include <stdio.h>
#include <string.h>

#include "../ledger/pg.h"
#include "../ledger/render.h"

/* Runs a statement returning LEDGER_MANDATE_COLUMNS; 1 row read, 0 no row, -1 error. */
static int mandate_query(PGconn *db, const char *sql, int n, const char *const *params, ledger_mandate *out,
                         gl_error *err) {
    PGresult *r = gl_pg_exec(db, sql, n, params, err);
    if (!r) return -1;
    int found = PQntuples(r) > 0;
    if (found) ledger_mandate_from_row(r, 0, out);
    PQclear(r);
    return found;
}

int gl_mandate_get(PGconn *db, const gl_id *id, ledger_mandate *out, gl_error *err) {
    char ids[GL_ID_STR_LEN + 1];
    gl_id_format(id, ids);
    const char *p[1] = {ids};
    return mandate_query(db, "SELECT " LEDGER_MANDATE_COLUMNS " FROM mandates WHERE id = $1::uuid", 1, p, out, err);
}

int gl_mandate_find_live(PGconn *db, const gl_id *wallet, const char *grantee, const char *currency, gl_id *id,
                         gl_error *err) {
    char ws[GL_ID_STR_LEN + 1];
    gl_id_format(wallet, ws);
    const char *p[3] = {ws, grantee, currency};
    PGresult *r = gl_pg_exec(db,
                             "SELECT id FROM mandates WHERE wallet_account_id = $1::uuid AND grantee = $2 "
                             "AND currency = $3 AND revoked_at IS NULL AND expires_at > now()",
                             3, p, err);
    if (!r) return -1;
    int found = PQntuples(r) > 0 && gl_pg_get_id(r, 0, 0, id);
    PQclear(r);
    return found;
}

int gl_mandate_insert(PGconn *db, ledger_mandate *m, gl_error *err) {
    char id[GL_ID_STR_LEN + 1], wallet[GL_ID_STR_LEN + 1], per_charge[24], per_day[24], expires[48];
    gl_id_format(&m->id, id);
    gl_id_format(&m->wallet_account_id, wallet);
    snprintf(per_charge, sizeof per_charge, "%lld", (long long)m->max_per_charge);
    snprintf(per_day, sizeof per_day, "%lld", (long long)m->max_per_day);
    gl_format_ts_us(m->expires_at_us, expires, sizeof expires);
    const char *retire[3] = {wallet, m->grantee, m->currency};
    /* An expired mandate still holds the "one live mandate" slot until retired. */
    if (!gl_pg_run(db,
                   "UPDATE mandates SET revoked_at = now(), revoked_by = 'system:expired' "
                   "WHERE wallet_account_id = $1::uuid AND grantee = $2 AND currency = $3 "
                   "AND revoked_at IS NULL AND expires_at <= now()",
                   3, retire, err))
        return -1;
    const char *p[8] = {id, wallet, m->grantee, m->currency, per_charge, per_day, expires, m->created_by};
    return mandate_query(db,
                         "INSERT INTO mandates (id, wallet_account_id, grantee, currency, max_amount_per_charge, "
                         "max_amount_per_day, expires_at, created_by) "
                         "VALUES ($1::uuid, $2::uuid, $3, $4, $5::int8, $6::int8, $7::timestamptz, $8) "
                         "ON CONFLICT (wallet_account_id, grantee, currency) WHERE revoked_at IS NULL DO NOTHING "
                         "RETURNING " LEDGER_MANDATE_COLUMNS,
                         8, p, m, err);
}

int gl_mandate_revoke(PGconn *db, const gl_id *id, const char *by, ledger_mandate *m, gl_error *err) {
    char ids[GL_ID_STR_LEN + 1];
    gl_id_format(id, ids);
    const char *p[2] = {ids, by};
    /* The row lock waits for any batch charging this mandate: a charge commits
     * before the revocation or is refused after it, never in between. */
    int rc = mandate_query(db,
                           "UPDATE mandates SET revoked_at = now(), revoked_by = $2 "
                           "WHERE id = $1::uuid AND revoked_at IS NULL RETURNING " LEDGER_MANDATE_COLUMNS,
                           2, p, m, err);
    if (rc != 0) return rc;
    rc = gl_mandate_get(db, id, m, err);
    if (rc == 0) gl_error_set(err, GL_ERR_NOT_FOUND, "mandate not found");
    return rc == 1 ? 0 : -1;
}

static json_t *time_json(int64_t us) {
    char buf[40];
    gl_format_rfc3339_us(us, buf, sizeof buf);
    return json_string(buf);
}

json_t *gl_mandate_json(const ledger_mandate *m) {
    const char *status = m->revoked_at_us ? "revoked" : m->expired ? "expired" : "active";
    json_t *o = json_object();
    json_object_set_new(o, "id", gl_id_json(&m->id));
    json_object_set_new(o, "wallet_account_id", gl_id_json(&m->wallet_account_id));
    json_object_set_new(o, "grantee", json_string(m->grantee));
    json_object_set_new(o, "currency", json_string(m->currency));
    json_object_set_new(o, "max_amount_per_charge", json_integer(m->max_per_charge));
    json_object_set_new(o, "max_amount_per_day", json_integer(m->max_per_day));
    json_object_set_new(o, "spent_today", json_integer(ledger_mandate_spent_today(m)));
    json_object_set_new(o, "status", json_string(status));
    json_object_set_new(o, "expires_at", time_json(m->expires_at_us));
    json_object_set_new(o, "created_by", json_string(m->created_by));
    json_object_set_new(o, "created_at", time_json(m->created_at_us));
    json_object_set_new(o, "revoked_at", m->revoked_at_us ? time_json(m->revoked_at_us) : json_null());
    json_object_set_new(o, "revoked_by", m->revoked_at_us ? json_string(m->revoked_by) : json_null());
    return o;
}
