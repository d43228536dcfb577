/*
 * verify.c — checks DESIGN §5 invariants 1-5 and the outbox's (6) on live data. Each check is one
 * query whose rows are violations, described as text; the constraints in the
 * schema should make every one of them impossible, so any row is a bug.
 */
#include <stdio.h>

#include "ledger.h"
#include "pg.h"

#define VIOLATIONS_SHOWN_PER_CHECK 100

typedef struct {
    int invariant;
    const char *sql;
} check;

static const check checks[] = {
    /* 1. per currency, debits = credits, posted and pending */
    {1, "SELECT format('currency %s: debits_posted %s <> credits_posted %s or debits_pending %s <> credits_pending %s',"
        " currency, sum(debits_posted), sum(credits_posted), sum(debits_pending), sum(credits_pending))"
        " FROM accounts GROUP BY currency"
        " HAVING sum(debits_posted) <> sum(credits_posted) OR sum(debits_pending) <> sum(credits_pending)"},
    {1, "SELECT format('transfer %s has %s entries (want one debit and one credit entry)', t.id, count(e.*))"
        " FROM transfers t LEFT JOIN entries e ON e.transfer_id = t.id"
        " AND ((e.side = 'D' AND e.account_id = t.debit_account_id) OR (e.side = 'C' AND e.account_id = t.credit_account_id))"
        " GROUP BY t.id HAVING count(e.*) <> 2"},
    {1, "SELECT format('entry %s/%s names missing transfer %s', e.account_id, e.version, e.transfer_id)"
        " FROM entries e LEFT JOIN transfers t ON t.id = e.transfer_id WHERE t.id IS NULL"},
    /* 2. each account's counters = the sum of its entries; entries chain without gaps */
    {2, "WITH s AS (SELECT account_id,"
        "  coalesce(sum(pending_delta) FILTER (WHERE side = 'D'), 0) AS dp,"
        "  coalesce(sum(posted_delta) FILTER (WHERE side = 'D'), 0) AS dpo,"
        "  coalesce(sum(pending_delta) FILTER (WHERE side = 'C'), 0) AS cp,"
        "  coalesce(sum(posted_delta) FILTER (WHERE side = 'C'), 0) AS cpo,"
        "  count(*) AS n, max(version) AS v FROM entries GROUP BY account_id)"
        " SELECT format('account %s: counters (%s,%s,%s,%s) v%s but entries sum to (%s,%s,%s,%s) in %s entries up to v%s',"
        "  a.id, a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted, a.version,"
        "  coalesce(s.dp, 0), coalesce(s.dpo, 0), coalesce(s.cp, 0), coalesce(s.cpo, 0), coalesce(s.n, 0), coalesce(s.v, 0))"
        " FROM accounts a LEFT JOIN s ON s.account_id = a.id"
        " WHERE (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted, a.version, a.version)"
        "  IS DISTINCT FROM (coalesce(s.dp, 0), coalesce(s.dpo, 0), coalesce(s.cp, 0), coalesce(s.cpo, 0),"
        "  coalesce(s.n, 0), coalesce(s.v, 0))"},
    {2, "SELECT format('account %s entry v%s: balances after do not follow from v%s', account_id, version, version - 1)"
        " FROM (SELECT e.*, lag(debits_pending, 1, 0::int8) OVER w AS p_dp, lag(debits_posted, 1, 0::int8) OVER w AS p_dpo,"
        "  lag(credits_pending, 1, 0::int8) OVER w AS p_cp, lag(credits_posted, 1, 0::int8) OVER w AS p_cpo,"
        "  lag(version, 1, 0::int8) OVER w AS p_v FROM entries e WINDOW w AS (PARTITION BY account_id ORDER BY version)) x"
        " WHERE version <> p_v + 1 OR (side = 'D' AND (debits_pending, debits_posted, credits_pending, credits_posted)"
        "  IS DISTINCT FROM (p_dp + pending_delta, p_dpo + posted_delta, p_cp, p_cpo))"
        " OR (side = 'C' AND (debits_pending, debits_posted, credits_pending, credits_posted)"
        "  IS DISTINCT FROM (p_dp, p_dpo, p_cp + pending_delta, p_cpo + posted_delta))"},
    /* 3. no account breaks its flag limits; no counter negative */
    {3, "SELECT format('account %s breaks its limits: flags %s, debits (%s pending, %s posted), credits (%s pending, %s posted)',"
        " id, flags, debits_pending, debits_posted, credits_pending, credits_posted) FROM accounts"
        " WHERE least(debits_pending, debits_posted, credits_pending, credits_posted) < 0"
        " OR (flags & 1 <> 0 AND debits_pending::numeric + debits_posted > credits_posted)"
        " OR (flags & 2 <> 0 AND credits_pending::numeric + credits_posted > debits_posted)"},
    /* 4. holds resolved at most once, posted <= pending, reversed <= original */
    {4, "SELECT format('hold %s resolved %s times', pending_id, count(*)) FROM transfers"
        " WHERE pending_id IS NOT NULL GROUP BY pending_id HAVING count(*) > 1"},
    {4, "SELECT format('transfer %s resolves %s, which is not an open hold or exceeds it', r.id, r.pending_id)"
        " FROM transfers r JOIN transfers p ON p.id = r.pending_id"
        " WHERE p.flags & 1 = 0 OR r.amount > p.amount OR (r.flags & 20 <> 0 AND r.amount <> p.amount)"
        " OR r.debit_account_id <> p.debit_account_id OR r.credit_account_id <> p.credit_account_id"},
    {4, "SELECT format('hold %s: state %s disagrees with its resolving transfer %s', p.id, p.state, r.id)"
        " FROM pending_transfers p LEFT JOIN transfers r ON r.pending_id = p.id"
        " WHERE (p.state = 'pending') <> (r.id IS NULL) OR p.resolved_by IS DISTINCT FROM r.id"
        " OR (p.state = 'posted' AND (r.flags & 2 = 0 OR p.amount_posted <> r.amount))"
        " OR (p.state = 'voided' AND r.flags & 4 = 0) OR (p.state = 'expired' AND r.flags & 16 = 0)"},
    {4, "SELECT format('transfer %s names missing transfer %s', t.id, coalesce(t.pending_id, t.reverses_id))"
        " FROM transfers t LEFT JOIN transfers o ON o.id = coalesce(t.pending_id, t.reverses_id)"
        " WHERE coalesce(t.pending_id, t.reverses_id) IS NOT NULL AND o.id IS NULL"},
    {4, "SELECT format('hold %s has no hold state row', t.id) FROM transfers t"
        " LEFT JOIN pending_transfers p ON p.id = t.id WHERE t.flags & 1 <> 0 AND p.id IS NULL"},
    {4, "SELECT format('transfer %s reversed by %s in total, more than its %s', o.id, sum(r.amount), o.amount)"
        " FROM transfers r JOIN transfers o ON o.id = r.reverses_id"
        " GROUP BY o.id, o.amount HAVING sum(r.amount) > o.amount OR bool_or(o.flags & 53 <> 0)"},
    /* 5. a reference has at most one effect */
    {5, "SELECT format('owner %s reference %s used by %s transfers', owner, reference, count(*)) FROM transfers"
        " WHERE reference IS NOT NULL GROUP BY owner, reference HAVING count(*) > 1"},
    /* 6. the outbox (sql/0011, 0013): every number from the prune horizon to the
     * head is on exactly one event (an events row or a transfer), none beyond */
    {6, "SELECT format('outbox: seqs %s..%s are on %s events, %s distinct numbers, %s above the head (want %s, %s, 0)',"
        " p.pruned_through + 1, h.last_seq, count(f.seq) FILTER (WHERE f.seq <= h.last_seq),"
        " count(DISTINCT f.seq) FILTER (WHERE f.seq <= h.last_seq), count(f.seq) FILTER (WHERE f.seq > h.last_seq),"
        " h.last_seq - p.pruned_through, h.last_seq - p.pruned_through)"
        " FROM event_head h CROSS JOIN event_horizon p LEFT JOIN event_times f ON f.seq > p.pruned_through"
        " GROUP BY p.pruned_through, h.last_seq"
        " HAVING count(f.seq) <> h.last_seq - p.pruned_through OR count(DISTINCT f.seq) <> count(f.seq)"},
    /* residency (reported as 0): every row carries this partition's region code */
    {0, "SELECT format('account %s carries region code %s, this partition is %s', a.id,"
        " get_byte(uuid_send(a.id), 9), p.region_code) FROM accounts a, partition_info p"
        " WHERE get_byte(uuid_send(a.id), 9) <> p.region_code"},
    {0, "SELECT format('transfer %s carries region code %s, this partition is %s', t.id,"
        " get_byte(uuid_send(t.id), 9), p.region_code) FROM transfers t, partition_info p"
        " WHERE get_byte(uuid_send(t.id), 9) <> p.region_code"},
};

int ledger_verify(PGconn *db, ledger_violation_fn report, void *arg, gl_error *err) {
    int violations = 0;
    /* One snapshot for all checks, so concurrent writers cannot make them disagree. */
    if (!gl_pg_run(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, err)) return -1;
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        char sql[4096];
        /* MATERIALIZED: a bare LIMIT would tempt the planner into nested loops that
         * rescan busy accounts' entries per row (minutes instead of a second). */
        snprintf(sql, sizeof sql, "WITH v AS MATERIALIZED (%s) SELECT * FROM v LIMIT %d", checks[i].sql,
                 VIOLATIONS_SHOWN_PER_CHECK);
        PGresult *r = gl_pg_exec(db, sql, 0, NULL, err);
        if (!r) {
            PQclear(PQexec(db, "ROLLBACK"));
            return -1;
        }
        for (int row = 0; row < PQntuples(r); row++) {
            violations++;
            if (report) report(arg, checks[i].invariant, PQgetvalue(r, row, 0));
        }
        PQclear(r);
    }
    PQclear(PQexec(db, "COMMIT"));
    return violations;
}
