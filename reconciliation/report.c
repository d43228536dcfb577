/*
 * report.c — the regional compliance report: parameters, period parsing, and
 * the queries that fill the gl_report model (rendering: report_render.c).
 *
 * Reading order: gl_report_build() opens one REPEATABLE READ READ ONLY
 * transaction and runs one loader per section; each loader is one
 * parameterized query whose rows become model rows. The definitions (what
 * counts as volume, a large transaction, a structuring alert, a cross-border
 * flow, a residency exception) are in reconciliation/README.md and next to
 * each query.
 */
#include "report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../ledger/pg.h"
#include "../ledger/text.h"

#define US_PER_S INT64_C(1000000)
#define US_PER_DAY (INT64_C(86400) * US_PER_S)
/* A report is a long read, but not an unbounded one: beyond this the
 * database cancels the statement and the report fails with that error. */
#define STATEMENT_TIMEOUT "10min"

/* Transfer flags (sql/0002_ledger.sql): 1 pending, 2 post, 4 void, 8 linked, 16 expire, 32 reversal.
 * Volume = "money-moving": plain transfers (linked or not) and posts, i.e. none
 * of pending|void|expire|reversal (1+4+16+32 = 53). Refunds = reversals. */
#define SQL_VOLUME "t.flags & 53 = 0"
#define SQL_REFUND "t.flags & 32 <> 0"

/* The region code an id carries, read the way gl_id_partition() reads it: byte 9
 * of a UUIDv7 with the RFC variant, else 0 ("not one of our ids"). */
#define SQL_CODE(col)                                                                                        \
    "(CASE WHEN get_byte(uuid_send(" col "), 6) >> 4 = 7 AND get_byte(uuid_send(" col "), 8) & 192 = 128" \
    " THEN get_byte(uuid_send(" col "), 9) ELSE 0 END)"

/* An instant as int8 microseconds (extract() is numeric and exact since PostgreSQL 14). */
#define SQL_US(col) "(extract(epoch FROM " col ") * 1000000)::int8"

static const char *const residency_tables[GL_REPORT_RESIDENCY_TABLES] = {
    "partition_info", "accounts", "transfers", "entries", "pending_transfers",
};

/* ---------------------------------------------------------------- time */

/* The date of a day number: days since 1970-01-01, proleptic Gregorian
 * (H. Hinnant's civil_from_days). */
static void civil_from_days(int64_t z, int *y, int *m, int *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

/* Floor division: days before 1970 round down, not toward zero. */
static int64_t day_number(int64_t us) { return us >= 0 ? us / US_PER_DAY : -((-us + US_PER_DAY - 1) / US_PER_DAY); }

/* Writes `v` as exactly `n` decimal digits (v >= 0). */
static void put_digits(char *p, int v, int n) {
    for (int i = n - 1; i >= 0; i--, v /= 10) p[i] = (char)('0' + v % 10);
}

void gl_report_format_day(int64_t us, char out[GL_REPORT_DAY_LEN]) {
    int y, m, d;
    civil_from_days(day_number(us), &y, &m, &d);
    put_digits(out, y < 0 ? 0 : y % 10000, 4);
    out[4] = '-';
    put_digits(out + 5, m, 2);
    out[7] = '-';
    put_digits(out + 8, d, 2);
    out[10] = '\0';
}

static bool bad_time(const char *s, const char *why, gl_error *err) {
    gl_error_set(err, GL_ERR_INVALID, "'%.64s' is not a valid time: %s", s, why);
    gl_error_hint(err, "use YYYY-MM-DD (midnight UTC) or RFC 3339, e.g. 2026-11-25T00:00:00Z");
    return false;
}

/* The grammar is gl_rfc3339_parse's (ledger/pg.c), at most 6 fraction digits:
 * a period boundary is never silently truncated. A bare date is midnight UTC,
 * i.e. the same date followed by "T00:00:00Z". */
bool gl_report_parse_time(const char *s, int64_t *out_us, gl_error *err) {
    if (!s) return bad_time("", "missing", err);
    static const char midnight_utc[] = "T00:00:00Z";
    char with_clock[10 + sizeof midnight_utc];
    const char *text = s;
    if (strlen(s) == 10) { /* a bare date (or something malformed the parser will name) */
        memcpy(with_clock, s, 10);
        memcpy(with_clock + 10, midnight_utc, sizeof midnight_utc);
        text = with_clock;
    }
    const char *why = gl_rfc3339_parse(text, false, out_us);
    if (why) return bad_time(s, why, err);
    return true;
}

/* ---------------------------------------------------------------- parameters */

void gl_report_params_init(gl_report_params *p) {
    memset(p, 0, sizeof *p);
    p->structuring_count = GL_REPORT_STRUCTURING_COUNT_DEFAULT;
    p->structuring_band_pct = GL_REPORT_STRUCTURING_BAND_PCT_DEFAULT;
    p->max_rows = GL_REPORT_ROWS_DEFAULT;
}

bool gl_report_params_check(const gl_report_params *p, gl_error *err) {
    if (p->from_us >= p->to_us) {
        gl_error_set(err, GL_ERR_INVALID, "the report period is empty: --to must be after --from");
        gl_error_hint(err, "the period is half-open, [from, to): --from 2026-11-01 --to 2026-12-01 is November");
        return false;
    }
    if (p->to_us - p->from_us > GL_REPORT_PERIOD_MAX_DAYS * US_PER_DAY) {
        gl_error_set(err, GL_ERR_INVALID, "the report period is longer than %d days", GL_REPORT_PERIOD_MAX_DAYS);
        gl_error_hint(err, "run one report per year or month");
        return false;
    }
    if (p->threshold_override < 0) {
        gl_error_set(err, GL_ERR_INVALID, "the large-transaction threshold must be positive");
        return false;
    }
    if (p->structuring_count < 2 || p->structuring_count > GL_REPORT_STRUCTURING_COUNT_MAX) {
        gl_error_set(err, GL_ERR_INVALID, "the structuring count must be 2..%d", GL_REPORT_STRUCTURING_COUNT_MAX);
        return false;
    }
    if (p->structuring_band_pct < 1 || p->structuring_band_pct > 99) {
        gl_error_set(err, GL_ERR_INVALID, "the structuring band must be 1..99 percent");
        return false;
    }
    if (p->max_rows < 1 || p->max_rows > GL_REPORT_ROWS_MAX) {
        gl_error_set(err, GL_ERR_INVALID, "the row limit must be 1..%d", GL_REPORT_ROWS_MAX);
        return false;
    }
    return true;
}

const char *gl_report_transfer_type(uint32_t flags) {
    if (flags & LEDGER_TF_REVERSAL) return "reversal";
    if (flags & LEDGER_TF_POST) return "post";
    if (flags & LEDGER_TF_PENDING) return "hold";
    if (flags & LEDGER_TF_VOID) return "void";
    if (flags & LEDGER_TF_EXPIRE) return "expire";
    return "transfer";
}

/* threshold * (100 - pct) / 100 rounded down, without the product overflowing. */
static int64_t band_from(int64_t threshold, int pct) {
    return threshold / 100 * (100 - pct) + threshold % 100 * (100 - pct) / 100;
}

/* Header fields: everything that does not need the database. */
static void fill_header(gl_report *r, const gl_region *region, const gl_report_params *p) {
    snprintf(r->region_name, sizeof r->region_name, "%s", region->name);
    r->region_code = region->code;
    r->from_us = p->from_us;
    r->to_us = p->to_us;
    r->n_days = (int)(day_number(p->to_us - 1) - day_number(p->from_us) + 1);
    if (p->threshold_override > 0) {
        r->threshold = p->threshold_override;
        r->threshold_source = "flag";
    } else if (region->large_transaction_threshold > 0) {
        r->threshold = region->large_transaction_threshold;
        r->threshold_source = "config";
    } else {
        r->threshold = 0;
        r->threshold_source = "not_configured";
    }
    r->structuring_count = p->structuring_count;
    r->structuring_band_pct = p->structuring_band_pct;
    r->band_from = band_from(r->threshold, p->structuring_band_pct);
    r->max_rows = p->max_rows;
}

/* ---------------------------------------------------------------- query plumbing */

/* Text parameters shared by the queries. */
typedef struct {
    char from[48], to[48];
    char code[8];
} period_params;

/* A numeric column holding an integer sum, as int64: an error (never a wrap) if it does not fit. */
static bool get_sum(const PGresult *res, int row, int col, int64_t *out, gl_error *err) {
    const char *s = PQgetvalue(res, row, col);
    if (!gl_parse_i64(s, INT64_MIN, INT64_MAX, out)) {
        gl_error_set(err, GL_ERR_INTERNAL, "a sum of amounts does not fit in 64 bits: %.64s", s);
        gl_error_hint(err, "report a shorter period");
        return false;
    }
    return true;
}

static void *alloc_rows(int n, size_t size, gl_error *err) {
    void *p = calloc(n > 0 ? (size_t)n : 1, size);
    if (!p) gl_error_set(err, GL_ERR_INTERNAL, "out of memory for %d report rows", n);
    return p;
}

/* Aggregates are never cut: a result above the limit fails the report. */
static bool aggregate_fits(const PGresult *res, const char *what, gl_error *err) {
    if (PQntuples(res) <= GL_REPORT_AGGREGATE_ROWS_MAX) return true;
    gl_error_set(err, GL_ERR_INVALID, "more than %d %s rows", GL_REPORT_AGGREGATE_ROWS_MAX, what);
    gl_error_hint(err, "report a shorter period");
    return false;
}

/* ---------------------------------------------------------------- sections */

static bool load_generated_at(PGconn *db, gl_report *r, gl_error *err) {
    PGresult *res = gl_pg_exec(db, "SELECT " SQL_US("now()"), 0, NULL, err);
    if (!res) return false;
    r->generated_at_us = gl_pg_get_i64(res, 0, 0);
    PQclear(res);
    return true;
}

/*
 * Daily volume, grouped by the UTC day of created_at, the currency and the
 * kind of the DEBIT account. One scan yields the detail rows (level 0), the
 * per-day per-currency totals that the charts draw (level 1) and the
 * per-currency period totals (level 3), all from the same exact numeric sums.
 */
static const char volume_sql[] =
    "WITH m AS ("
    " SELECT (t.created_at AT TIME ZONE 'UTC')::date AS day, t.currency::text AS currency,"
    "  coalesce(a.kind::text, '(no account)') AS kind, t.amount, " SQL_REFUND " AS refund"
    " FROM transfers t LEFT JOIN accounts a ON a.id = t.debit_account_id"
    " WHERE t.created_at >= $1 AND t.created_at < $2 AND (" SQL_VOLUME " OR " SQL_REFUND "))"
    " SELECT grouping(day, kind), to_char(day, 'YYYY-MM-DD'),"
    "  day - ($1::timestamptz AT TIME ZONE 'UTC')::date, currency, kind,"
    "  count(*) FILTER (WHERE NOT refund), coalesce(sum(amount) FILTER (WHERE NOT refund), 0)::text,"
    "  count(*) FILTER (WHERE refund), coalesce(sum(amount) FILTER (WHERE refund), 0)::text"
    " FROM m GROUP BY GROUPING SETS ((day, currency, kind), (day, currency), (currency))"
    " ORDER BY 1, 2, 4, 5 LIMIT $3";

static bool volume_row(const PGresult *res, int row, gl_report_volume *v, gl_error *err) {
    gl_pg_get_text(res, row, 1, v->day, sizeof v->day);
    v->day_index = (int)gl_pg_get_i64(res, row, 2);
    gl_pg_get_text(res, row, 3, v->currency, sizeof v->currency);
    if (PQgetisnull(res, row, 4)) v->account_kind[0] = '\0';
    else gl_pg_get_text(res, row, 4, v->account_kind, sizeof v->account_kind);
    v->count = gl_pg_get_i64(res, row, 5);
    v->refund_count = gl_pg_get_i64(res, row, 7);
    return get_sum(res, row, 6, &v->amount, err) && get_sum(res, row, 8, &v->refund_amount, err);
}

static bool load_volume(PGconn *db, const period_params *q, gl_report *r, gl_error *err) {
    char limit[16];
    snprintf(limit, sizeof limit, "%d", GL_REPORT_AGGREGATE_ROWS_MAX + 1);
    const char *params[3] = {q->from, q->to, limit};
    PGresult *res = gl_pg_exec(db, volume_sql, 3, params, err);
    if (!res) return false;
    bool ok = aggregate_fits(res, "daily volume", err);
    int n = PQntuples(res), counts[4] = {0, 0, 0, 0};
    for (int i = 0; ok && i < n; i++) counts[gl_pg_get_i64(res, i, 0) & 3]++;
    if (ok) {
        r->volume = alloc_rows(counts[0], sizeof *r->volume, err);
        r->daily = alloc_rows(counts[1], sizeof *r->daily, err);
        r->totals = alloc_rows(counts[3], sizeof *r->totals, err);
        ok = r->volume && r->daily && r->totals;
    }
    for (int i = 0; ok && i < n; i++) {
        int64_t level = gl_pg_get_i64(res, i, 0);
        gl_report_volume *v = level == 0   ? &r->volume[r->n_volume++]
                              : level == 1 ? &r->daily[r->n_daily++]
                                           : &r->totals[r->n_totals++];
        ok = volume_row(res, i, v, err);
    }
    PQclear(res);
    return ok;
}

/*
 * Large transactions: money-moving transfers (plain, posts) and reversals with
 * amount >= threshold, in minor units whatever the currency. Holds are not
 * listed: a captured hold appears as its post, a released one moved nothing.
 */
static const char large_sql[] =
    "SELECT t.id, " SQL_US("t.created_at") ", t.flags, t.currency, t.amount,"
    "  t.debit_account_id, coalesce(d.owner::text, ''), coalesce(d.kind::text, '(no account)'),"
    "  t.credit_account_id, coalesce(c.kind::text, '(no account)'), t.owner, coalesce(t.reference, ''),"
    "  count(*) OVER ()"
    " FROM transfers t LEFT JOIN accounts d ON d.id = t.debit_account_id"
    "  LEFT JOIN accounts c ON c.id = t.credit_account_id"
    " WHERE t.created_at >= $1 AND t.created_at < $2 AND (" SQL_VOLUME " OR " SQL_REFUND ") AND t.amount >= $3"
    " ORDER BY t.created_at, t.id LIMIT $4";

static void large_row(const PGresult *res, int row, gl_report_large *l) {
    gl_pg_get_id(res, row, 0, &l->id);
    l->created_at_us = gl_pg_get_i64(res, row, 1);
    l->flags = (uint32_t)gl_pg_get_i64(res, row, 2);
    gl_pg_get_text(res, row, 3, l->currency, sizeof l->currency);
    l->amount = gl_pg_get_i64(res, row, 4);
    gl_pg_get_id(res, row, 5, &l->debit_account_id);
    gl_pg_get_text(res, row, 6, l->debit_owner, sizeof l->debit_owner);
    gl_pg_get_text(res, row, 7, l->debit_kind, sizeof l->debit_kind);
    gl_pg_get_id(res, row, 8, &l->credit_account_id);
    gl_pg_get_text(res, row, 9, l->credit_kind, sizeof l->credit_kind);
    gl_pg_get_text(res, row, 10, l->owner, sizeof l->owner);
    gl_pg_get_text(res, row, 11, l->reference, sizeof l->reference);
}

static bool load_large(PGconn *db, const period_params *q, gl_report *r, gl_error *err) {
    char threshold[24], limit[16];
    snprintf(threshold, sizeof threshold, "%lld", (long long)r->threshold);
    snprintf(limit, sizeof limit, "%d", r->max_rows);
    const char *params[4] = {q->from, q->to, threshold, limit};
    PGresult *res = gl_pg_exec(db, large_sql, 4, params, err);
    if (!res) return false;
    int n = PQntuples(res);
    r->large = alloc_rows(n, sizeof *r->large, err);
    if (r->large) {
        for (int i = 0; i < n; i++) large_row(res, i, &r->large[i]);
        r->n_large = n;
        r->large_total = n ? gl_pg_get_i64(res, 0, 12) : 0;
    }
    PQclear(res);
    return r->large != NULL;
}

/*
 * Structuring: per debit account, money-moving transfers with amount in
 * [band_from, threshold). For each such transfer, the window of the 24 hours
 * up to and including it (RANGE: transfers of the same instant are all in it).
 * An account is alerted when some window ending inside the period holds at
 * least `count` of them; the alert shows its densest such window (the earliest
 * if several are as dense). Windows look back up to 24 h before the period,
 * so a burst across the start of the period is not missed.
 */
static const char alerts_sql[] =
    "WITH band AS ("
    " SELECT t.debit_account_id AS account_id, t.amount, t.created_at FROM transfers t"
    " WHERE t.created_at >= $1::timestamptz - interval '24 hours' AND t.created_at < $2"
    "  AND " SQL_VOLUME " AND t.amount >= $3 AND t.amount < $4),"
    " w AS ("
    " SELECT account_id, created_at, count(*) OVER win AS n, sum(amount) OVER win AS total,"
    "  min(created_at) OVER win AS first_at FROM band"
    " WINDOW win AS (PARTITION BY account_id ORDER BY created_at"
    "  RANGE BETWEEN interval '24 hours' PRECEDING AND CURRENT ROW)),"
    " best AS ("
    " SELECT DISTINCT ON (account_id) account_id, n, total, first_at, created_at AS last_at FROM w"
    " WHERE n >= $5 AND created_at >= $1 ORDER BY account_id, n DESC, created_at)"
    " SELECT b.account_id, coalesce(a.owner::text, ''), coalesce(a.kind::text, '(no account)'),"
    "  coalesce(a.currency::text, ''), b.n, b.total::text, " SQL_US("b.first_at") ", " SQL_US("b.last_at") ","
    "  count(*) OVER ()"
    " FROM best b LEFT JOIN accounts a ON a.id = b.account_id"
    " ORDER BY b.first_at, b.account_id LIMIT $6";

static bool alert_row(const PGresult *res, int row, gl_report_alert *a, gl_error *err) {
    gl_pg_get_id(res, row, 0, &a->account_id);
    gl_pg_get_text(res, row, 1, a->owner, sizeof a->owner);
    gl_pg_get_text(res, row, 2, a->account_kind, sizeof a->account_kind);
    gl_pg_get_text(res, row, 3, a->currency, sizeof a->currency);
    a->count = gl_pg_get_i64(res, row, 4);
    a->first_at_us = gl_pg_get_i64(res, row, 6);
    a->last_at_us = gl_pg_get_i64(res, row, 7);
    return get_sum(res, row, 5, &a->total, err);
}

static bool load_alerts(PGconn *db, const period_params *q, gl_report *r, gl_error *err) {
    char from[24], to[24], count[16], limit[16];
    snprintf(from, sizeof from, "%lld", (long long)r->band_from);
    snprintf(to, sizeof to, "%lld", (long long)r->threshold);
    snprintf(count, sizeof count, "%d", r->structuring_count);
    snprintf(limit, sizeof limit, "%d", r->max_rows);
    const char *params[6] = {q->from, q->to, from, to, count, limit};
    PGresult *res = gl_pg_exec(db, alerts_sql, 6, params, err);
    if (!res) return false;
    int n = PQntuples(res);
    r->alerts = alloc_rows(n, sizeof *r->alerts, err);
    bool ok = r->alerts != NULL;
    for (int i = 0; ok && i < n; i++) ok = alert_row(res, i, &r->alerts[i], err);
    if (ok) {
        r->n_alerts = n;
        r->alerts_total = n ? gl_pg_get_i64(res, 0, 8) : 0;
    }
    PQclear(res);
    return ok;
}

/*
 * Cross-border flows (the convention the saga will follow, DESIGN §3): a
 * 'due_to' account holds what this region owes another one, a 'due_from'
 * account what another region owes this one; metadata.counterparty_region
 * names the other region.
 *   out          money-moving transfer crediting a due_to account
 *   out_reversed reversal debiting a due_to account (an outflow given back)
 *   in           money-moving transfer debiting a due_from account
 *   in_reversed  reversal crediting a due_from account
 */
static const char flows_sql[] =
    "WITH t AS (SELECT * FROM transfers t WHERE t.created_at >= $1 AND t.created_at < $2"
    "  AND (" SQL_VOLUME " OR " SQL_REFUND ")),"
    " f AS ("
    " SELECT a.metadata->>'counterparty_region' AS cp, t.currency,"
    "  CASE WHEN " SQL_REFUND " THEN 'in_reversed' ELSE 'out' END AS direction, t.amount"
    " FROM t JOIN accounts a ON a.id = t.credit_account_id"
    " WHERE (a.kind = 'due_to' AND NOT " SQL_REFUND ") OR (a.kind = 'due_from' AND " SQL_REFUND ")"
    " UNION ALL"
    " SELECT a.metadata->>'counterparty_region', t.currency,"
    "  CASE WHEN " SQL_REFUND " THEN 'out_reversed' ELSE 'in' END, t.amount"
    " FROM t JOIN accounts a ON a.id = t.debit_account_id"
    " WHERE (a.kind = 'due_from' AND NOT " SQL_REFUND ") OR (a.kind = 'due_to' AND " SQL_REFUND "))"
    " SELECT cp, currency, direction, count(*), sum(amount)::text FROM f"
    " GROUP BY cp, currency, direction ORDER BY cp NULLS LAST, currency, direction LIMIT $3";

static const char *direction_name(const char *s) {
    static const char *const names[] = {"out", "out_reversed", "in", "in_reversed"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i]) == 0) return names[i];
    return "?";
}

static bool flow_row(const PGresult *res, int row, gl_report_flow *f, gl_error *err) {
    if (!PQgetisnull(res, row, 0)) {
        f->counterparty_region = strdup(PQgetvalue(res, row, 0));
        if (!f->counterparty_region) {
            gl_error_set(err, GL_ERR_INTERNAL, "out of memory");
            return false;
        }
    }
    gl_pg_get_text(res, row, 1, f->currency, sizeof f->currency);
    f->direction = direction_name(PQgetvalue(res, row, 2));
    f->count = gl_pg_get_i64(res, row, 3);
    return get_sum(res, row, 4, &f->amount, err);
}

static bool load_flows(PGconn *db, const period_params *q, gl_report *r, gl_error *err) {
    char limit[16];
    snprintf(limit, sizeof limit, "%d", GL_REPORT_AGGREGATE_ROWS_MAX + 1);
    const char *params[3] = {q->from, q->to, limit};
    PGresult *res = gl_pg_exec(db, flows_sql, 3, params, err);
    if (!res) return false;
    int n = PQntuples(res);
    bool ok = aggregate_fits(res, "cross-border", err);
    if (ok) r->flows = alloc_rows(n, sizeof *r->flows, err);
    ok = ok && r->flows;
    if (ok) r->n_flows = n; /* zeroed rows: gl_report_free copes with a failure halfway */
    for (int i = 0; ok && i < n; i++) ok = flow_row(res, i, &r->flows[i], err);
    PQclear(res);
    return ok;
}

/* ---------------------------------------------------------------- residency */

/* Rows per table and id values carrying another code, for the whole partition. */
static const char residency_counts_sql[] =
    "SELECT 'accounts', count(*), count(*) FILTER (WHERE " SQL_CODE("id") " <> $1) FROM accounts"
    " UNION ALL SELECT 'transfers', count(*), count(*) FILTER (WHERE " SQL_CODE("id") " <> $1)"
    "  + count(*) FILTER (WHERE " SQL_CODE("debit_account_id") " <> $1)"
    "  + count(*) FILTER (WHERE " SQL_CODE("credit_account_id") " <> $1) FROM transfers"
    " UNION ALL SELECT 'entries', count(*), count(*) FILTER (WHERE " SQL_CODE("account_id") " <> $1)"
    "  + count(*) FILTER (WHERE " SQL_CODE("transfer_id") " <> $1) FROM entries"
    " UNION ALL SELECT 'pending_transfers', count(*), count(*) FILTER (WHERE " SQL_CODE("id") " <> $1)"
    "  FROM pending_transfers";

/* The first exceptions, in table order then by row. */
static const char residency_list_sql[] =
    "SELECT tbl, row_key, col, val, code FROM ("
    " SELECT 1 AS o, 'accounts' AS tbl, id::text AS row_key, 'id' AS col, id::text AS val, " SQL_CODE("id") " AS code"
    "  FROM accounts"
    " UNION ALL SELECT 2, 'transfers', id::text, 'id', id::text, " SQL_CODE("id") " FROM transfers"
    " UNION ALL SELECT 2, 'transfers', id::text, 'debit_account_id', debit_account_id::text,"
    "  " SQL_CODE("debit_account_id") " FROM transfers"
    " UNION ALL SELECT 2, 'transfers', id::text, 'credit_account_id', credit_account_id::text,"
    "  " SQL_CODE("credit_account_id") " FROM transfers"
    " UNION ALL SELECT 3, 'entries', account_id::text || '/' || version, 'account_id', account_id::text,"
    "  " SQL_CODE("account_id") " FROM entries"
    " UNION ALL SELECT 3, 'entries', account_id::text || '/' || version, 'transfer_id', transfer_id::text,"
    "  " SQL_CODE("transfer_id") " FROM entries"
    " UNION ALL SELECT 4, 'pending_transfers', id::text, 'id', id::text, " SQL_CODE("id") " FROM pending_transfers"
    ") x WHERE code <> $1 ORDER BY o, row_key, col LIMIT $2";

static gl_report_residency_table *residency_table(gl_report *r, const char *name) {
    for (int i = 0; i < GL_REPORT_RESIDENCY_TABLES; i++)
        if (strcmp(r->tables[i].table, name) == 0) return &r->tables[i];
    return NULL;
}

static gl_report_exception *add_exception(gl_report *r, const char *table, const char *row, const char *column,
                                          const char *value, int code) {
    if (r->n_exceptions >= GL_REPORT_EXCEPTIONS_MAX) return NULL;
    gl_report_exception *x = &r->exceptions[r->n_exceptions++];
    snprintf(x->table, sizeof x->table, "%s", table);
    snprintf(x->row, sizeof x->row, "%s", row);
    snprintf(x->column, sizeof x->column, "%s", column);
    snprintf(x->value, sizeof x->value, "%s", value);
    x->region_code = code;
    return x;
}

/* partition_info must exist and name this region (code and name). */
static bool check_partition_info(PGconn *db, gl_report *r, gl_error *err) {
    PGresult *res = gl_pg_exec(db, "SELECT region_code, region_name FROM partition_info", 0, NULL, err);
    if (!res) return false;
    gl_report_residency_table *t = residency_table(r, "partition_info");
    r->partition_found = PQntuples(res) == 1;
    t->rows_checked = PQntuples(res);
    if (!r->partition_found) {
        t->exceptions = 1;
        add_exception(r, "partition_info", "singleton", "region_code", "(missing)", 0);
        PQclear(res);
        return true;
    }
    r->partition_code = (int)gl_pg_get_i64(res, 0, 0);
    gl_pg_get_text(res, 0, 1, r->partition_name, sizeof r->partition_name);
    PQclear(res);
    if (r->partition_code != r->region_code) {
        t->exceptions++;
        char code[8];
        snprintf(code, sizeof code, "%d", r->partition_code);
        add_exception(r, "partition_info", "singleton", "region_code", code, r->partition_code);
    }
    if (strcmp(r->partition_name, r->region_name) != 0) {
        t->exceptions++;
        add_exception(r, "partition_info", "singleton", "region_name", r->partition_name, r->partition_code);
    }
    return true;
}

static bool count_residency(PGconn *db, const period_params *q, gl_report *r, gl_error *err) {
    const char *params[1] = {q->code};
    PGresult *res = gl_pg_exec(db, residency_counts_sql, 1, params, err);
    if (!res) return false;
    for (int i = 0; i < PQntuples(res); i++) {
        gl_report_residency_table *t = residency_table(r, PQgetvalue(res, i, 0));
        if (!t) continue;
        t->rows_checked = gl_pg_get_i64(res, i, 1);
        t->exceptions = gl_pg_get_i64(res, i, 2);
    }
    PQclear(res);
    return true;
}

static bool list_exceptions(PGconn *db, const period_params *q, gl_report *r, gl_error *err) {
    char limit[16];
    snprintf(limit, sizeof limit, "%d", GL_REPORT_EXCEPTIONS_MAX - r->n_exceptions);
    const char *params[2] = {q->code, limit};
    PGresult *res = gl_pg_exec(db, residency_list_sql, 2, params, err);
    if (!res) return false;
    for (int i = 0; i < PQntuples(res); i++)
        add_exception(r, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1), PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
                      (int)gl_pg_get_i64(res, i, 4));
    PQclear(res);
    return true;
}

/* Residency covers the whole partition, not just the period: a row that
 * should not be here is an exception whenever it was written. */
static bool load_residency(PGconn *db, const period_params *q, gl_report *r, gl_error *err) {
    for (int i = 0; i < GL_REPORT_RESIDENCY_TABLES; i++) r->tables[i].table = residency_tables[i];
    r->exceptions = alloc_rows(GL_REPORT_EXCEPTIONS_MAX, sizeof *r->exceptions, err);
    if (!r->exceptions || !check_partition_info(db, r, err) || !count_residency(db, q, r, err)) return false;
    r->exceptions_total = 0;
    for (int i = 0; i < GL_REPORT_RESIDENCY_TABLES; i++) r->exceptions_total += r->tables[i].exceptions;
    int64_t in_rows = r->exceptions_total - residency_table(r, "partition_info")->exceptions;
    if (in_rows > 0 && r->n_exceptions < GL_REPORT_EXCEPTIONS_MAX && !list_exceptions(db, q, r, err)) return false;
    r->residency_pass = r->partition_found && r->exceptions_total == 0;
    return true;
}

/* ---------------------------------------------------------------- build */

static bool load_sections(PGconn *db, gl_report *r, gl_error *err) {
    period_params q;
    gl_format_ts_us(r->from_us, q.from, sizeof q.from);
    gl_format_ts_us(r->to_us, q.to, sizeof q.to);
    snprintf(q.code, sizeof q.code, "%d", r->region_code);
    if (!gl_pg_run(db, "SET LOCAL statement_timeout = '" STATEMENT_TIMEOUT "'", 0, NULL, err)) return false;
    if (!load_generated_at(db, r, err) || !load_volume(db, &q, r, err)) return false;
    /* Without a threshold there is nothing to compare with: both sections say "not configured". */
    if (r->threshold > 0 && (!load_large(db, &q, r, err) || !load_alerts(db, &q, r, err))) return false;
    return load_flows(db, &q, r, err) && load_residency(db, &q, r, err);
}

bool gl_report_build(PGconn *db, const gl_region *region, const gl_report_params *p, gl_report *out,
                     gl_error *err) {
    memset(out, 0, sizeof *out);
    if (!gl_report_params_check(p, err)) return false;
    fill_header(out, region, p);
    /* One snapshot for every section, so the figures agree with each other
     * whatever is written meanwhile; READ ONLY: a report never writes. */
    if (!gl_pg_run(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, err)) return false;
    bool ok = load_sections(db, out, err) && gl_pg_run(db, "COMMIT", 0, NULL, err);
    if (!ok) {
        PQclear(PQexec(db, "ROLLBACK"));
        gl_report_free(out);
    }
    return ok;
}

void gl_report_free(gl_report *r) {
    if (!r) return;
    for (int i = 0; r->flows && i < r->n_flows; i++) free(r->flows[i].counterparty_region);
    free(r->volume);
    free(r->daily);
    free(r->totals);
    free(r->large);
    free(r->alerts);
    free(r->flows);
    free(r->exceptions);
    memset(r, 0, sizeof *r);
}
