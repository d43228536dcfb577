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

enum { EV_ID, EV_TYPE, EV_AT, EV_ACCOUNT, EV_TRANSFER, EV_DEBIT, EV_CREDIT, EV_PENDING, EV_REVERSES, EV_MANDATE,
       EV_AMOUNT, EV_CURRENCY, EV_OWNER1, EV_OWNER2, EV_OWNER3, EV_COLS };

static const unsigned ev_oids[EV_COLS] = {
    GL_OID_UUID, GL_OID_TEXT, GL_OID_TIMESTAMPTZ, GL_OID_UUID, GL_OID_UUID, GL_OID_UUID, GL_OID_UUID, GL_OID_UUID,
    GL_OID_UUID, GL_OID_UUID, GL_OID_INT8,        GL_OID_TEXT, GL_OID_TEXT, GL_OID_TEXT, GL_OID_TEXT,
};

/* The numbers come from event_head in the statement that inserts the rows:
 * the head's row lock is taken as late as it can be and held to COMMIT. */
#define EVENTS_INSERT_SQL                                                                                              \
    "WITH h AS (UPDATE event_head SET last_seq = last_seq + cardinality($1::uuid[]) WHERE id = 1 RETURNING last_seq) " \
    "INSERT INTO events (seq, id, type, created_at, account_id, transfer_id, debit_account_id, credit_account_id, "    \
    "pending_id, reverses_id, mandate_id, amount, currency, owner1, owner2, owner3) "                                 \
    "SELECT h.last_seq - cardinality($1::uuid[]) + u.ord, u.id, u.type, u.at, u.account_id, u.transfer_id, "          \
    "u.debit_id, u.credit_id, u.pending_id, u.reverses_id, u.mandate_id, u.amount, u.currency, "                      \
    "u.o1, u.o2, u.o3 FROM h, unnest($1::uuid[], $2::text[], $3::timestamptz[], "          \
    "$4::uuid[], $5::uuid[], $6::uuid[], $7::uuid[], $8::uuid[], $9::uuid[], $10::uuid[], $11::int8[], "              \
    "$12::text[], $13::text[], $14::text[], $15::text[]) WITH ORDINALITY AS u(id, type, at, account_id, "             \
    "transfer_id, debit_id, credit_id, pending_id, reverses_id, mandate_id, amount, currency, o1, o2, o3, ord)"

static void append_event(gl_buf *col, const ledger_event *e) {
    gl_bin_uuid(&col[EV_ID], &e->id);
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

static void copy_event(gl_buf *b, const ledger_event *e) {
    gl_bin_tuple(b, 16);
    gl_bin_i64(b, e->seq);
    gl_bin_uuid(b, &e->id);
    gl_bin_text(b, ledger_event_type_name(e->type));
    gl_bin_ts_us(b, e->created_at_us);
    const gl_id *ids[] = {&e->account_id, &e->transfer_id, &e->debit_account_id, &e->credit_account_id,
                          &e->pending_id, &e->reverses_id, &e->mandate_id};
    for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) gl_bin_opt_uuid(b, ids[k]);
    if (e->amount > 0) gl_bin_i64(b, e->amount);
    else gl_bin_null(b);
    gl_bin_opt_text(b, e->currency);
    for (int k = 0; k < LEDGER_EVENT_OWNERS; k++) gl_bin_opt_text(b, e->owners[k]);
}

/* Outside pipeline mode (the engine's large batches), COPY: one WAL record
 * per page of rows instead of one per row, as for transfers and entries. COPY
 * cannot compute the numbers, so they are taken first: the head's row lock is
 * then held from this round trip to COMMIT. */
static bool write_by_copy(PGconn *db, ledger_event *events, size_t n, gl_error *err) {
    char count[24];
    snprintf(count, sizeof count, "%zu", n);
    const char *p[1] = {count};
    PGresult *r = gl_pg_exec(db, "UPDATE event_head SET last_seq = last_seq + $1::int8 WHERE id = 1 RETURNING last_seq",
                             1, p, err);
    if (!r) return false;
    int64_t last = PQntuples(r) == 1 ? gl_pg_get_i64(r, 0, 0) : -1;
    PQclear(r);
    if (last < (int64_t)n) {
        gl_error_set(err, GL_ERR_INTERNAL, "event_head has no row (migration 0011 not applied?)");
        return false;
    }
    gl_buf b;
    memset(&b, 0, sizeof b);
    gl_bin_copy_begin(&b);
    for (size_t i = 0; i < n; i++) {
        events[i].seq = last - (int64_t)n + 1 + (int64_t)i;
        copy_event(&b, &events[i]);
    }
    gl_bin_copy_end(&b);
    bool ok = !b.failed;
    if (!ok) gl_error_set(err, GL_ERR_INTERNAL, "out of memory encoding %zu events", n);
    ok = ok && gl_pg_copy(db,
                          "COPY events (seq, id, type, created_at, account_id, transfer_id, debit_account_id, "
                          "credit_account_id, pending_id, reverses_id, mandate_id, amount, currency, owner1, owner2, "
                          "owner3) "
                          "FROM STDIN (FORMAT binary)",
                          &b, err);
    gl_buf_free(&b);
    return ok;
}

static atomic_bool events_off;

void ledger_events_measure_without(void) { atomic_store(&events_off, true); }

bool ledger_events_enabled(void) { return !atomic_load(&events_off); }

bool ledger_events_write(PGconn *db, uint8_t partition_code, ledger_event *events, size_t n, gl_error *err) {
    assert(db && (events || n == 0));
    if (n == 0 || !ledger_events_enabled()) return true;
    for (size_t i = 0; i < n; i++) {
        assert(events[i].owners[0][0] && ledger_event_type_name(events[i].type));
        if (!gl_id_new(partition_code, &events[i].id, err)) return false;
    }
    if (PQpipelineStatus(db) == PQ_PIPELINE_OFF) return write_by_copy(db, events, n, err);
    gl_buf col[EV_COLS];
    gl_buf *params[EV_COLS];
    memset(col, 0, sizeof col);
    for (int c = 0; c < EV_COLS; c++) {
        gl_bin_array_begin(&col[c], ev_oids[c]);
        params[c] = &col[c];
    }
    bool ok = true;
    for (size_t i = 0; i < n; i++) append_event(col, &events[i]);
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

/* ---- reading ---- */

/* One statement, one snapshot: the committed head and the events up to it.
 * The window (seq <= after + scan_max) bounds the rows a reader who may see
 * few of them makes the server look at; seq is dense, so it is exact. */
#define EVENTS_LIST_SQL                                                                                             \
    "SELECT h.last_seq, e.seq, e.id, e.type, (extract(epoch FROM e.created_at) * 1000000)::int8, e.account_id, "   \
    "e.transfer_id, e.debit_account_id, e.credit_account_id, e.pending_id, e.reverses_id, e.mandate_id, e.amount, " \
    "e.currency, e.owner1, e.owner2, e.owner3 FROM (SELECT last_seq FROM event_head WHERE id = 1) h LEFT JOIN LATERAL (" \
    "SELECT * FROM events WHERE seq > $1::int8 AND seq <= least(h.last_seq, $1::int8 + $2::int8) "                  \
    "AND ($3::text IS NULL OR $3::text IN (owner1, owner2, owner3)) AND ($4::text[] IS NULL OR type = ANY ($4::text[])) " \
    "ORDER BY seq LIMIT $5::int4) e ON true ORDER BY e.seq"

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
    e->amount = gl_pg_get_i64(r, row, 12);
    gl_pg_get_text(r, row, 13, e->currency, sizeof e->currency);
    for (int k = 0; k < LEDGER_EVENT_OWNERS; k++) /* NULL past the last owner: "" */
        if (!PQgetisnull(r, row, 14 + k)) gl_pg_get_text(r, row, 14 + k, e->owners[k], sizeof e->owners[k]);
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
    for (int row = 0; row < PQntuples(r); row++)
        if (!PQgetisnull(r, row, 1)) read_event(r, row, &out[n++]);
    PQclear(r);
    int64_t end = q->after + q->scan_max < *head ? q->after + q->scan_max : *head;
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
