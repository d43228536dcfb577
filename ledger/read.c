/* read.c — point reads: accounts (now or as of a time), transfers, statements. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger.h"
#include "pg.h"

#define TS_SQL(col) "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"

static void fill_account(const PGresult *r, int row, ledger_account *a) {
    memset(a, 0, sizeof *a);
    gl_pg_get_id(r, row, 0, &a->id);
    gl_pg_get_text(r, row, 1, a->currency, sizeof a->currency);
    gl_pg_get_text(r, row, 2, a->owner, sizeof a->owner);
    gl_pg_get_text(r, row, 3, a->kind, sizeof a->kind);
    a->flags = (uint32_t)gl_pg_get_i64(r, row, 4);
    a->debits_pending = gl_pg_get_i64(r, row, 5);
    a->debits_posted = gl_pg_get_i64(r, row, 6);
    a->credits_pending = gl_pg_get_i64(r, row, 7);
    a->credits_posted = gl_pg_get_i64(r, row, 8);
    a->version = gl_pg_get_i64(r, row, 9);
    gl_pg_get_text(r, row, 10, a->created_at, sizeof a->created_at);
    gl_pg_get_text(r, row, 11, a->metadata, sizeof a->metadata);
}

int ledger_account_get(PGconn *db, const gl_id *id, ledger_account *out, gl_error *err) {
    char ids[GL_ID_STR_LEN + 1];
    gl_id_format(id, ids);
    const char *p[1] = {ids};
    PGresult *r = gl_pg_exec(db,
                             "SELECT id, currency, owner, kind, flags, debits_pending, debits_posted, "
                             "credits_pending, credits_posted, version, " TS_SQL("created_at")
                             ", coalesce(metadata::text, '') FROM accounts WHERE id = $1::uuid",
                             1, p, err);
    if (!r) return -1;
    int found = PQntuples(r) == 1;
    if (found) fill_account(r, 0, out);
    PQclear(r);
    return found;
}

int ledger_account_get_as_of(PGconn *db, const gl_id *id, const char *as_of, ledger_account *out, gl_error *err) {
    char ids[GL_ID_STR_LEN + 1];
    gl_id_format(id, ids);
    const char *p[2] = {ids, as_of};
    /* The last entry at or before as_of carries all four counters: one index probe. */
    PGresult *r = gl_pg_exec(db,
                             "SELECT a.id, a.currency, a.owner, a.kind, a.flags, "
                             "coalesce(e.debits_pending, 0), coalesce(e.debits_posted, 0), "
                             "coalesce(e.credits_pending, 0), coalesce(e.credits_posted, 0), "
                             "coalesce(e.version, 0), " TS_SQL("a.created_at") ", coalesce(a.metadata::text, '')"
                             " FROM accounts a LEFT JOIN LATERAL ("
                             "  SELECT * FROM entries WHERE account_id = a.id AND created_at <= $2::timestamptz"
                             "  ORDER BY version DESC LIMIT 1) e ON true "
                             "WHERE a.id = $1::uuid AND a.created_at <= $2::timestamptz",
                             2, p, err);
    if (!r) return -1;
    int found = PQntuples(r) == 1;
    if (found) {
        fill_account(r, 0, out);
        out->flags &= ~LEDGER_AF_CLOSED; /* closing is not versioned; report limits only */
    }
    PQclear(r);
    return found;
}

/* One transfer's columns, from t (transfers) and p (its pending_transfers row). */
#define TRANSFER_COLUMNS                                                                                           \
    "t.id, t.owner, coalesce(t.reference, ''), t.debit_account_id, t.credit_account_id, t.amount, "               \
    "t.currency, t.flags, t.pending_id, t.reverses_id, "                                                         \
    "CASE WHEN t.flags & 1 = 0 THEN 'posted' "                                                                   \
    "     WHEN p.state = 'pending' AND p.expires_at <= clock_timestamp() THEN 'expired' ELSE p.state END, "     \
    "coalesce(p.amount_posted, 0), "                                                                             \
    "coalesce((SELECT sum(r.amount) FROM transfers r WHERE r.reverses_id = t.id), 0)::int8, "                    \
    "coalesce(" TS_SQL("t.expires_at") ", ''), " TS_SQL("t.created_at") ", coalesce(t.metadata::text, '')"

/* The TRANSFER_COLUMNS of row `row`, from column c on. */
static void fill_transfer(const PGresult *r, int row, int c, ledger_transfer *out) {
    memset(out, 0, sizeof *out);
    gl_pg_get_id(r, row, c + 0, &out->id);
    gl_pg_get_text(r, row, c + 1, out->owner, sizeof out->owner);
    gl_pg_get_text(r, row, c + 2, out->reference, sizeof out->reference);
    gl_pg_get_id(r, row, c + 3, &out->debit_account_id);
    gl_pg_get_id(r, row, c + 4, &out->credit_account_id);
    out->amount = gl_pg_get_i64(r, row, c + 5);
    gl_pg_get_text(r, row, c + 6, out->currency, sizeof out->currency);
    out->flags = (uint32_t)gl_pg_get_i64(r, row, c + 7);
    gl_pg_get_id(r, row, c + 8, &out->pending_id);
    gl_pg_get_id(r, row, c + 9, &out->reverses_id);
    gl_pg_get_text(r, row, c + 10, out->status, sizeof out->status);
    out->amount_posted = gl_pg_get_i64(r, row, c + 11);
    out->amount_reversed = gl_pg_get_i64(r, row, c + 12);
    gl_pg_get_text(r, row, c + 13, out->expires_at, sizeof out->expires_at);
    gl_pg_get_text(r, row, c + 14, out->created_at, sizeof out->created_at);
    gl_pg_get_text(r, row, c + 15, out->metadata, sizeof out->metadata);
}

void ledger_transfer_from_result(const ledger_cmd *c, const ledger_result *r, ledger_transfer *out) {
    assert(c && r && r->written && out);
    const ledger_written *w = &r->transfer;
    memset(out, 0, sizeof *out);
    out->id = r->id;
    snprintf(out->owner, sizeof out->owner, "%s", c->owner); /* an EXISTS names a transfer of the same owner and reference */
    snprintf(out->reference, sizeof out->reference, "%s", c->reference);
    out->debit_account_id = w->debit_account_id;
    out->credit_account_id = w->credit_account_id;
    out->amount = w->amount;
    memcpy(out->currency, w->currency, sizeof out->currency);
    out->flags = w->flags;
    out->pending_id = w->pending_id;
    out->reverses_id = w->reverses_id;
    snprintf(out->status, sizeof out->status, "%s", w->flags & LEDGER_TF_PENDING ? "pending" : "posted");
    if (w->expires_at_us) gl_format_rfc3339_us(w->expires_at_us, out->expires_at, sizeof out->expires_at);
    gl_format_rfc3339_us(r->created_at_us, out->created_at, sizeof out->created_at);
    if (w->metadata) snprintf(out->metadata, sizeof out->metadata, "%s", w->metadata);
}

int ledger_transfer_get(PGconn *db, const gl_id *id, ledger_transfer *out, gl_error *err) {
    char ids[GL_ID_STR_LEN + 1];
    gl_id_format(id, ids);
    const char *p[1] = {ids};
    PGresult *r = gl_pg_exec(db,
                             "SELECT " TRANSFER_COLUMNS
                             " FROM transfers t LEFT JOIN pending_transfers p ON p.id = t.id WHERE t.id = $1::uuid",
                             1, p, err);
    if (!r) return -1;
    int found = PQntuples(r) == 1;
    if (found) fill_transfer(r, 0, 0, out);
    PQclear(r);
    return found;
}

int ledger_transfers_each(PGconn *db, const gl_id *ids, size_t n, ledger_transfer_fn fn, void *arg, gl_error *err) {
    assert(db && fn && (ids || n == 0));
    if (n == 0) return 0;
    if (n > LEDGER_BATCH_MAX) {
        gl_error_set(err, GL_ERR_INVALID, "at most %d transfers are read at once", LEDGER_BATCH_MAX);
        return -1;
    }
    ledger_transfer *t = malloc(sizeof *t); /* one, reused: a transfer is ~8 KiB with its metadata */
    if (!t) {
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory");
        return -1;
    }
    gl_buf arr = {0};
    gl_bin_array_begin(&arr, GL_OID_UUID);
    for (size_t i = 0; i < n; i++) gl_bin_uuid(&arr, &ids[i]);
    gl_bin_array_finish(&arr, (int32_t)n);
    gl_buf *p[1] = {&arr};
    /* The ordinality says which asked id a row answers (ids may repeat). */
    PGresult *r = gl_pg_exec_bin(db,
                                 "SELECT q.ord, " TRANSFER_COLUMNS
                                 " FROM unnest($1::uuid[]) WITH ORDINALITY AS q(id, ord)"
                                 " JOIN transfers t ON t.id = q.id LEFT JOIN pending_transfers p ON p.id = t.id",
                                 1, p, err);
    gl_buf_free(&arr);
    int found = r ? 0 : -1;
    for (int row = 0; r && row < PQntuples(r); row++) {
        long ord = strtol(PQgetvalue(r, row, 0), NULL, 10);
        if (ord < 1 || (size_t)ord > n) continue;
        fill_transfer(r, row, 1, t);
        fn(arg, (size_t)ord - 1, t);
        found++;
    }
    PQclear(r);
    free(t);
    return found;
}

int ledger_entries_list(PGconn *db, const gl_id *account_id, int64_t after_version, int limit, ledger_entry *out,
                        gl_error *err) {
    if (limit <= 0 || limit > 10000) {
        gl_error_set(err, GL_ERR_INVALID, "limit must be 1..10000");
        return -1;
    }
    char ids[GL_ID_STR_LEN + 1], after[24], lim[16];
    gl_id_format(account_id, ids);
    snprintf(after, sizeof after, "%lld", (long long)after_version);
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[3] = {ids, after, lim};
    PGresult *r = gl_pg_exec(db,
                             "SELECT version, transfer_id, side, pending_delta, posted_delta, debits_pending, "
                             "debits_posted, credits_pending, credits_posted, " TS_SQL("created_at")
                             " FROM entries WHERE account_id = $1::uuid AND version > $2::int8 "
                             "ORDER BY version LIMIT $3::int4",
                             3, p, err);
    if (!r) return -1;
    int n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        ledger_entry *e = &out[i];
        memset(e, 0, sizeof *e);
        e->version = gl_pg_get_i64(r, i, 0);
        gl_pg_get_id(r, i, 1, &e->transfer_id);
        e->side = PQgetvalue(r, i, 2)[0];
        e->pending_delta = gl_pg_get_i64(r, i, 3);
        e->posted_delta = gl_pg_get_i64(r, i, 4);
        e->debits_pending = gl_pg_get_i64(r, i, 5);
        e->debits_posted = gl_pg_get_i64(r, i, 6);
        e->credits_pending = gl_pg_get_i64(r, i, 7);
        e->credits_posted = gl_pg_get_i64(r, i, 8);
        gl_pg_get_text(r, i, 9, e->created_at, sizeof e->created_at);
    }
    PQclear(r);
    return n;
}

int ledger_expire_due(PGconn *db, const ledger_ctx *ctx, int limit, gl_error *err) {
    if (limit <= 0 || limit > LEDGER_BATCH_MAX) limit = LEDGER_BATCH_MAX;
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[1] = {lim};
    PGresult *r = gl_pg_exec(db,
                             "SELECT p.id, t.owner FROM pending_transfers p JOIN transfers t ON t.id = p.id "
                             "WHERE p.state = 'pending' AND p.expires_at <= clock_timestamp() "
                             "ORDER BY p.expires_at LIMIT $1::int4",
                             1, p, err);
    if (!r) return -1;
    int n = PQntuples(r);
    if (n == 0) {
        PQclear(r);
        return 0;
    }
    ledger_cmd *cmds = calloc((size_t)n, sizeof *cmds);
    ledger_result *res = calloc((size_t)n, sizeof *res);
    int expired = -1;
    if (cmds && res) {
        for (int i = 0; i < n; i++) {
            ledger_cmd_init(&cmds[i], LEDGER_CMD_EXPIRE);
            gl_pg_get_id(r, i, 0, &cmds[i].target_id);
            gl_pg_get_text(r, i, 1, cmds[i].owner, sizeof cmds[i].owner); /* the hold's author owns its expiry */
        }
        if (ledger_execute(db, ctx, cmds, (size_t)n, res, err)) {
            expired = 0;
            for (int i = 0; i < n; i++) expired += res[i].code == LEDGER_OK;
        }
    } else {
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory");
    }
    free(cmds);
    free(res);
    PQclear(r);
    return expired;
}

void ledger_mandate_from_row(const PGresult *r, int row, ledger_mandate *m) {
    assert(r && m && row >= 0 && row < PQntuples(r) && PQnfields(r) == 16);
    memset(m, 0, sizeof *m);
    gl_pg_get_id(r, row, 0, &m->id);
    gl_pg_get_id(r, row, 1, &m->wallet_account_id);
    gl_pg_get_text(r, row, 2, m->grantee, sizeof m->grantee);
    gl_pg_get_text(r, row, 3, m->currency, sizeof m->currency);
    m->max_per_charge = gl_pg_get_i64(r, row, 4);
    m->max_per_day = gl_pg_get_i64(r, row, 5);
    m->expires_at_us = gl_pg_get_i64(r, row, 6);
    m->revoked = PQgetvalue(r, row, 7)[0] == 't';
    m->day = gl_pg_get_i64(r, row, 8);
    m->spent_today = gl_pg_get_i64(r, row, 9);
    gl_pg_get_text(r, row, 10, m->created_by, sizeof m->created_by);
    m->created_at_us = gl_pg_get_i64(r, row, 11);
    m->revoked_at_us = gl_pg_get_i64(r, row, 12);
    gl_pg_get_text(r, row, 13, m->revoked_by, sizeof m->revoked_by);
    m->expired = PQgetvalue(r, row, 14)[0] == 't';
    m->read_day = gl_pg_get_i64(r, row, 15);
}

int64_t ledger_mandate_spent_today(const ledger_mandate *m) {
    assert(m);
    return m->day == m->read_day ? m->spent_today : 0;
}
