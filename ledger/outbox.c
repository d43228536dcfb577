/*
 * outbox.c — the outbox's head, its consumers' positions and retention (outbox.h).
 */
#include "outbox.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include "pg.h"

#define STATUS_SQL                                                                                           \
    "SELECT h.last_seq, c.name, c.position, (SELECT count(*) FROM event_consumers) FROM event_head h "     \
    "LEFT JOIN LATERAL (SELECT name, position FROM event_consumers ORDER BY name LIMIT $1::int4) c ON true " \
    "WHERE h.id = 1 ORDER BY c.name"

bool ledger_outbox_status_read(PGconn *db, ledger_outbox_status *st, gl_error *err) {
    assert(db && st);
    memset(st, 0, sizeof *st);
    char max[16];
    snprintf(max, sizeof max, "%d", LEDGER_OUTBOX_CONSUMERS_MAX);
    const char *p[1] = {max};
    PGresult *r = gl_pg_exec(db, STATUS_SQL, 1, p, err);
    if (!r) return false;
    bool ok = PQntuples(r) >= 1;
    if (!ok) gl_error_set(err, GL_ERR_INTERNAL, "outbox status: event_head has no row (migration 0011 not applied?)");
    for (int row = 0; ok && row < PQntuples(r); row++) {
        st->head = gl_pg_get_i64(r, row, 0);
        st->more_consumers = gl_pg_get_i64(r, row, 3) > LEDGER_OUTBOX_CONSUMERS_MAX;
        if (PQgetisnull(r, row, 1) || st->n_consumers >= LEDGER_OUTBOX_CONSUMERS_MAX) continue;
        ledger_outbox_consumer *c = &st->consumers[st->n_consumers++];
        gl_pg_get_text(r, row, 1, c->name, sizeof c->name);
        c->position = gl_pg_get_i64(r, row, 2);
    }
    PQclear(r);
    return ok;
}

#define CUTOFF_TS "'epoch'::timestamptz + $2::int8 * interval '1 microsecond'"

/* The bound and the batch in one statement, so the bound is never stale: a
 * consumer's position only moves forward, so the smallest one seen here is
 * at or below where every consumer is when the rows go. What goes is a prefix
 * of the feed: from the horizon up to the first event not older than the
 * cutoff, the bound, or `limit` numbers, whichever comes first (a transfer is
 * never deleted, so the horizon, not a hole, is what hides the events). The
 * head is only read: its row lock is the writers'. */
#define PRUNE_CTE                                                                                                  \
    "WITH b AS (SELECT least(h.last_seq, coalesce((SELECT min(position) FROM event_consumers), h.last_seq)) "    \
    "AS bound, greatest($1::int8, p.pruned_through) AS from_seq FROM event_head h, event_horizon p "             \
    "WHERE h.id = 1 AND p.id = 1), "                                                                              \
    "w AS (SELECT b.bound, b.from_seq, greatest(b.from_seq, least(b.bound, b.from_seq + $3::int8)) AS hi FROM b), " \
    "y AS (SELECT min(f.seq) AS young FROM event_times f, w WHERE f.seq > w.from_seq AND f.seq <= w.hi "       \
    "AND f.created_at >= " CUTOFF_TS "), "                                                                          \
    "t AS (SELECT w.bound, w.from_seq, coalesce(y.young - 1, w.hi) AS upto FROM w, y) "
#define PRUNE_DELETE_SQL                                                                                        \
    PRUNE_CTE ", d AS (DELETE FROM events e USING t WHERE e.seq > t.from_seq AND e.seq <= t.upto RETURNING 1), "          \
    "u AS (UPDATE event_horizon p SET pruned_through = t.upto FROM t WHERE p.id = 1 "                          \
    "AND t.upto > p.pruned_through RETURNING 1) "                                                               \
    "SELECT t.upto - t.from_seq, t.upto, t.bound, (SELECT count(*) FROM d), (SELECT count(*) FROM u) FROM t"
#define PRUNE_COUNT_SQL PRUNE_CTE "SELECT t.upto - t.from_seq, t.upto, t.bound FROM t"

bool ledger_events_prune_step(PGconn *db, const ledger_prune_step *p, ledger_prune_result *out, gl_error *err) {
    assert(db && p && out && p->after >= 0 && p->limit >= 1 && p->limit <= LEDGER_PRUNE_BATCH_MAX);
    char after[24], cutoff[24], limit[16];
    /* A prune starts at the horizon (nothing above it goes unchecked); a dry
     * run, which moves nothing, where the previous one stopped. */
    snprintf(after, sizeof after, "%lld", (long long)(p->dry_run ? p->after : 0));
    snprintf(cutoff, sizeof cutoff, "%lld", (long long)p->cutoff_us);
    snprintf(limit, sizeof limit, "%d", p->limit);
    const char *params[3] = {after, cutoff, limit};
    PGresult *r = gl_pg_exec(db, p->dry_run ? PRUNE_COUNT_SQL : PRUNE_DELETE_SQL, 3, params, err);
    if (!r) return false;
    bool ok = PQntuples(r) == 1;
    if (ok) {
        out->count = gl_pg_get_i64(r, 0, 0);
        out->last = gl_pg_get_i64(r, 0, 1) > p->after ? gl_pg_get_i64(r, 0, 1) : p->after;
        out->bound = gl_pg_get_i64(r, 0, 2);
    } else {
        gl_error_set(err, GL_ERR_INTERNAL, "events prune: no result row (migration 0011 not applied?)");
    }
    PQclear(r);
    return ok;
}

int64_t ledger_events_count_unpassed(PGconn *db, int64_t bound, int64_t cutoff_us, int64_t window, bool *capped,
                                     gl_error *err) {
    assert(db && bound >= 0 && window > 0 && capped);
    char b[24], cutoff[24], w[24];
    snprintf(b, sizeof b, "%lld", (long long)bound);
    snprintf(cutoff, sizeof cutoff, "%lld", (long long)cutoff_us);
    snprintf(w, sizeof w, "%lld", (long long)window);
    const char *params[3] = {b, cutoff, w};
    /* seq is dense above the bound (nothing there was ever pruned): the
     * window is a range of the two indexes, whatever the tables' sizes. */
    PGresult *r = gl_pg_exec(db,
                             "SELECT count(*) FILTER (WHERE e.created_at < " CUTOFF_TS "), "
                             "(SELECT last_seq FROM event_head WHERE id = 1) > $1::int8 + $3::int8 FROM event_times"
                             " e WHERE e.seq > greatest($1::int8, (SELECT pruned_through FROM event_horizon WHERE id = 1)) "
                             "AND e.seq <= $1::int8 + $3::int8",
                             3, params, err);
    if (!r) return -1;
    int64_t n = PQntuples(r) == 1 ? gl_pg_get_i64(r, 0, 0) : -1;
    *capped = n >= 0 && strcmp(PQgetvalue(r, 0, 1), "t") == 0;
    if (n < 0) gl_error_set(err, GL_ERR_INTERNAL, "events prune: no count returned");
    PQclear(r);
    return n;
}
