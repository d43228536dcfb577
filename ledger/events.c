/*
 * events.c — writing and reading the outbox (events.h, sql/0011_events.sql).
 */
#include "events.h"

#include <assert.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "pg.h"

static const char *const type_names[LEDGER_EV_COUNT] = {
    [LEDGER_EV_ACCOUNT_CREATED] = "account.created",   [LEDGER_EV_ACCOUNT_CLOSED] = "account.closed",
    [LEDGER_EV_TRANSFER_CREATED] = "transfer.created", [LEDGER_EV_TRANSFER_PENDING] = "transfer.pending",
    [LEDGER_EV_TRANSFER_POSTED] = "transfer.posted",   [LEDGER_EV_TRANSFER_VOIDED] = "transfer.voided",
    [LEDGER_EV_TRANSFER_EXPIRED] = "transfer.expired", [LEDGER_EV_TRANSFER_REVERSED] = "transfer.reversed",
    [LEDGER_EV_MANDATE_CREATED] = "mandate.created",   [LEDGER_EV_MANDATE_REVOKED] = "mandate.revoked",
};

const char *ledger_event_type_name(ledger_event_type t) {
    return (unsigned)t < LEDGER_EV_COUNT ? type_names[t] : NULL;
}

bool ledger_event_type_parse(const char *name, ledger_event_type *out) {
    for (int t = 0; name && t < LEDGER_EV_COUNT; t++) {
        if (strcmp(name, type_names[t]) == 0) {
            *out = (ledger_event_type)t;
            return true;
        }
    }
    return false;
}

bool ledger_event_types_literal(uint32_t types, char *buf, size_t cap) {
    assert(buf && cap >= 3);
    size_t len = 0;
    buf[len++] = '{';
    for (int t = 0; t < LEDGER_EV_COUNT; t++) {
        if (!(types & (1u << t))) continue;
        int w = snprintf(buf + len, cap - len, "%s%s", len > 1 ? "," : "", type_names[t]);
        if (w < 0 || (size_t)w >= cap - len) return false;
        len += (size_t)w;
    }
    if (len + 2 > cap) return false;
    buf[len++] = '}';
    buf[len] = '\0';
    return true;
}

bool ledger_event_types_parse(const char *list, uint32_t *mask) {
    assert(list && mask);
    char buf[512];
    if (strlen(list) >= sizeof buf) return false;
    snprintf(buf, sizeof buf, "%s", list);
    *mask = 0;
    char *save = NULL;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        ledger_event_type type;
        if (!ledger_event_type_parse(t, &type)) return false;
        *mask |= 1u << type;
    }
    return true;
}

void ledger_event_add_owner(ledger_event *e, const char *owner) {
    assert(e);
    if (!owner || !owner[0]) return;
    for (int i = 0; i < LEDGER_EVENT_OWNERS; i++) {
        if (strcmp(e->owners[i], owner) == 0) return;
        if (!e->owners[i][0]) {
            snprintf(e->owners[i], sizeof e->owners[i], "%s", owner);
            return;
        }
    }
    assert(!"more owners than LEDGER_EVENT_OWNERS"); /* debit side, credit side and actor at most */
}

/* ---- writing ---- */

enum { EV_OFFSET, EV_TYPE, EV_AT, EV_ACCOUNT, EV_TRANSFER, EV_DEBIT, EV_CREDIT, EV_PENDING, EV_REVERSES, EV_MANDATE,
       EV_AMOUNT, EV_CURRENCY, EV_OWNER1, EV_OWNER2, EV_OWNER3, EV_COLS };

static const unsigned ev_oids[EV_COLS] = {
    GL_OID_INT8, GL_OID_TEXT, GL_OID_TIMESTAMPTZ, GL_OID_UUID, GL_OID_UUID, GL_OID_UUID, GL_OID_UUID, GL_OID_UUID,
    GL_OID_UUID, GL_OID_UUID, GL_OID_INT8,        GL_OID_TEXT, GL_OID_TEXT, GL_OID_TEXT, GL_OID_TEXT,
};

/* The numbers were reserved by this transaction, which holds the head's row
 * lock: the head is its last reserved number, and each row's seq is the head
 * plus its offset (<= 0). No id: event_feed derives it (sql/0013). */
#define EVENTS_INSERT_SQL                                                                                            \
    "INSERT INTO events (seq, type, created_at, account_id, transfer_id, debit_account_id, credit_account_id, "      \
    "pending_id, reverses_id, mandate_id, amount, currency, owner1, owner2, owner3) "                               \
    "SELECT h.last_seq + u.off, u.type, u.at, u.account_id, u.transfer_id, u.debit_id, u.credit_id, u.pending_id, "  \
    "u.reverses_id, u.mandate_id, u.amount, u.currency, u.o1, u.o2, u.o3 "                                          \
    "FROM (SELECT last_seq FROM event_head WHERE id = 1) h, unnest($1::int8[], $2::text[], $3::timestamptz[], "      \
    "$4::uuid[], $5::uuid[], $6::uuid[], $7::uuid[], $8::uuid[], $9::uuid[], $10::uuid[], $11::int8[], "            \
    "$12::text[], $13::text[], $14::text[], $15::text[]) AS u(off, type, at, account_id, transfer_id, debit_id, "    \
    "credit_id, pending_id, reverses_id, mandate_id, amount, currency, o1, o2, o3)"

static void append_event(gl_buf *col, const ledger_event *e) {
    gl_bin_i64(&col[EV_OFFSET], e->seq);
    gl_bin_text(&col[EV_TYPE], ledger_event_type_name(e->type));
    gl_bin_ts_us(&col[EV_AT], e->created_at_us);
    gl_bin_opt_uuid(&col[EV_ACCOUNT], &e->account_id);
    gl_bin_opt_uuid(&col[EV_TRANSFER], &e->transfer_id);
    gl_bin_opt_uuid(&col[EV_DEBIT], &e->debit_account_id);
    gl_bin_opt_uuid(&col[EV_CREDIT], &e->credit_account_id);
    gl_bin_opt_uuid(&col[EV_PENDING], &e->pending_id);
    gl_bin_opt_uuid(&col[EV_REVERSES], &e->reverses_id);
    gl_bin_opt_uuid(&col[EV_MANDATE], &e->mandate_id);
    if (e->amount > 0) gl_bin_i64(&col[EV_AMOUNT], e->amount);
    else gl_bin_null(&col[EV_AMOUNT]);
    gl_bin_opt_text(&col[EV_CURRENCY], e->currency);
    for (int k = 0; k < LEDGER_EVENT_OWNERS; k++) gl_bin_opt_text(&col[EV_OWNER1 + k], e->owners[k]);
}

static atomic_bool events_off;

void ledger_events_measure_without(void) { atomic_store(&events_off, true); }

bool ledger_events_enabled(void) { return !atomic_load(&events_off); }

/* The statement fails unless the head's row was there to be moved: in a
 * pipeline nobody looks at a row count before the COMMIT that follows. */
#define EVENTS_RESERVE_SQL                                                                                    \
    "WITH h AS (UPDATE event_head SET last_seq = last_seq + $1::int8 WHERE id = 1 RETURNING last_seq) "     \
    "SELECT expect_rows(count(*), 1, 'event_head_row'), max(last_seq) FROM h"

bool ledger_events_reserve(PGconn *db, int64_t n, int64_t *last, gl_error *err) {
    assert(db && n > 0 && n <= LEDGER_EVENTS_SEQ_MAX && last);
    char count[24];
    snprintf(count, sizeof count, "%lld", (long long)n);
    const char *p[1] = {count};
    *last = 0;
    if (PQpipelineStatus(db) != PQ_PIPELINE_OFF) return gl_pg_run(db, EVENTS_RESERVE_SQL, 1, p, err);
    PGresult *r = gl_pg_exec(db, EVENTS_RESERVE_SQL, 1, p, err);
    if (!r) return false;
    *last = PQntuples(r) == 1 ? gl_pg_get_i64(r, 0, 1) : 0;
    PQclear(r);
    if (*last < n) gl_error_set(err, GL_ERR_INTERNAL, "event_head returned no number");
    return *last >= n;
}

bool ledger_events_write_reserved(PGconn *db, const ledger_event *events, size_t n, gl_error *err) {
    assert(db && (events || n == 0) && n <= INT32_MAX);
    if (n == 0) return true;
    gl_buf col[EV_COLS];
    gl_buf *params[EV_COLS];
    memset(col, 0, sizeof col);
    for (int c = 0; c < EV_COLS; c++) {
        gl_bin_array_begin(&col[c], ev_oids[c]);
        params[c] = &col[c];
    }
    bool ok = true;
    for (size_t i = 0; i < n; i++) {
        assert(events[i].seq <= 0 && events[i].owners[0][0] && ledger_event_type_name(events[i].type));
        append_event(col, &events[i]);
    }
    for (int c = 0; ok && c < EV_COLS; c++) {
        gl_bin_array_finish(&col[c], (int32_t)n);
        if (col[c].failed) {
            gl_error_set(err, GL_ERR_INTERNAL, "out of memory encoding %zu events", n);
            ok = false;
        }
    }
    ok = ok && gl_pg_run_bin(db, EVENTS_INSERT_SQL, EV_COLS, params, err);
    for (int c = 0; c < EV_COLS; c++) gl_buf_free(&col[c]);
    return ok;
}

bool ledger_events_write(PGconn *db, ledger_event *events, size_t n, gl_error *err) {
    assert(db && (events || n == 0));
    if (n == 0 || !ledger_events_enabled()) return true;
    /* Two statements that must share the head's lock: outside a transaction
     * another writer could reserve between them and the rows would take its
     * numbers. (A pipeline is always the engine's batch, inside one.) */
    if (PQpipelineStatus(db) == PQ_PIPELINE_OFF && PQtransactionStatus(db) != PQTRANS_INTRANS) {
        gl_error_set(err, GL_ERR_INTERNAL, "events are written inside the transaction of their effect");
        return false;
    }
    int64_t last;
    if (!ledger_events_reserve(db, (int64_t)n, &last, err)) return false;
    for (size_t i = 0; i < n; i++) events[i].seq = (int64_t)(i + 1) - (int64_t)n;
    return ledger_events_write_reserved(db, events, n, err);
}

/* ---- reading ---- */

/* One statement, one snapshot: the committed head and the events up to it.
 * The window (seq <= from + scan_max, from = the later of the position and
 * the prune horizon) bounds the rows a reader who may see few of them makes
 * the server look at; seq is dense above the horizon, so it is exact. */
#define EVENTS_COLUMNS                                                                                       \
    "seq, id, type, (extract(epoch FROM created_at) * 1000000)::int8 AS at_us, account_id, transfer_id, "    \
    "debit_account_id, credit_account_id, pending_id, reverses_id, mandate_id, amount, currency, owner1, owner2, owner3"
#define EVENTS_HALF(view)                                                                                        \
    "(SELECT " EVENTS_COLUMNS " FROM " view " WHERE seq > h.from_seq AND seq <= least(h.last_seq, h.from_seq + " \
    "$2::int8) AND ($3::text IS NULL OR $3::text IN (owner1, owner2, owner3)) "                                  \
    "AND ($4::text[] IS NULL OR type = ANY ($4::text[])) ORDER BY seq LIMIT $5::int4)"
/* Each half (sql/0013: events rows, numbered transfers) is read in seq order
 * up to the page size, then the two are merged: a LIMIT over their union
 * would sort the whole window first. */
#define EVENTS_LIST_SQL                                                                                           \
    "SELECT h.last_seq, e.*, h.from_seq FROM (SELECT last_seq, greatest($1::int8, (SELECT pruned_through "       \
    "FROM event_horizon WHERE id = 1)) AS from_seq FROM event_head WHERE id = 1) h LEFT JOIN LATERAL (SELECT * FROM (" EVENTS_HALF("event_rows")              \
    " UNION ALL " EVENTS_HALF("transfer_events") ") u ORDER BY seq LIMIT $5::int4) e ON true ORDER BY e.seq"

static void read_event(const PGresult *r, int row, ledger_event *e) {
    memset(e, 0, sizeof *e);
    char type[32];
    e->seq = gl_pg_get_i64(r, row, 1);
    gl_pg_get_id(r, row, 2, &e->id);
    gl_pg_get_text(r, row, 3, type, sizeof type);
    if (!ledger_event_type_parse(type, &e->type)) e->type = LEDGER_EV_COUNT; /* the CHECK makes it unreachable */
    e->created_at_us = gl_pg_get_i64(r, row, 4);
    gl_id *ids[] = {&e->account_id, &e->transfer_id, &e->debit_account_id, &e->credit_account_id,
                    &e->pending_id, &e->reverses_id, &e->mandate_id};
    for (int k = 0; k < 7; k++)
        if (!PQgetisnull(r, row, 5 + k)) gl_pg_get_id(r, row, 5 + k, ids[k]);
    e->amount = PQgetisnull(r, row, 12) ? 0 : gl_pg_get_i64(r, row, 12);
    if (!PQgetisnull(r, row, 13)) gl_pg_get_text(r, row, 13, e->currency, sizeof e->currency);
    for (int k = 0; k < LEDGER_EVENT_OWNERS; k++) /* NULL where none or a repeat: packed to the front */
        if (!PQgetisnull(r, row, 14 + k)) ledger_event_add_owner(e, PQgetvalue(r, row, 14 + k));
}

int ledger_events_list(PGconn *db, const ledger_events_query *q, ledger_event *out, int64_t *scanned_to, int64_t *head,
                       gl_error *err) {
    assert(db && q && out && scanned_to && head);
    assert(q->limit >= 1 && q->limit <= LEDGER_EVENTS_PAGE_MAX && q->after >= 0 && q->scan_max > 0);
    assert(q->after <= LEDGER_EVENTS_SEQ_MAX && q->scan_max <= LEDGER_EVENTS_SEQ_MAX);
    char after[24], window[24], limit[16], types[512];
    snprintf(after, sizeof after, "%lld", (long long)q->after);
    snprintf(window, sizeof window, "%lld", (long long)q->scan_max);
    snprintf(limit, sizeof limit, "%d", q->limit);
    if (q->types && !ledger_event_types_literal(q->types, types, sizeof types)) {
        gl_error_set(err, GL_ERR_INTERNAL, "event type filter does not fit");
        return -1;
    }
    const char *params[5] = {after, window, q->principal, q->types ? types : NULL, limit};
    PGresult *r = gl_pg_exec(db, EVENTS_LIST_SQL, 5, params, err);
    if (!r) return -1;
    int n = 0;
    *head = PQntuples(r) > 0 ? gl_pg_get_i64(r, 0, 0) : 0;
    int64_t from = PQntuples(r) > 0 ? gl_pg_get_i64(r, 0, 17) : q->after; /* past what retention pruned */
    for (int row = 0; row < PQntuples(r); row++)
        if (!PQgetisnull(r, row, 1)) read_event(r, row, &out[n++]);
    PQclear(r);
    int64_t end = from + q->scan_max < *head ? from + q->scan_max : *head;
    if (n == q->limit) end = out[n - 1].seq; /* a full page: the rest of the window is still to read */
    *scanned_to = end > q->after ? end : q->after;
    return n;
}

/* ---- consumers ---- */

int64_t ledger_events_consumer_position(PGconn *db, const char *name, gl_error *err) {
    assert(db && name && name[0]);
    const char *p[1] = {name};
    PGresult *r = gl_pg_exec(db,
                             "INSERT INTO event_consumers (name) VALUES ($1) "
                             "ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING position",
                             1, p, err);
    if (!r) return -1;
    int64_t pos = PQntuples(r) == 1 ? gl_pg_get_i64(r, 0, 0) : -1;
    if (pos < 0) gl_error_set(err, GL_ERR_INTERNAL, "event consumer %s: no position returned", name);
    PQclear(r);
    return pos;
}

bool ledger_events_consumer_advance(PGconn *db, const char *name, int64_t position, gl_error *err) {
    assert(db && name && name[0] && position >= 0);
    char pos[24];
    snprintf(pos, sizeof pos, "%lld", (long long)position);
    const char *p[2] = {name, pos};
    return gl_pg_run(db,
                     "INSERT INTO event_consumers (name, position) VALUES ($1, $2::int8) ON CONFLICT (name) DO UPDATE "
                     "SET position = greatest(event_consumers.position, excluded.position), updated_at = now()",
                     2, p, err);
}
