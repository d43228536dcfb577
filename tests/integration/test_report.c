/*
 * test_report.c — the regional compliance report (reconciliation/report.h and
 * `ledgerctl report regional`) against a real cluster (eu=1, us=2, sg=3 from
 * $GEOLEDGER_CONFIG, see tests/run.sh).
 *
 * Other suites write to the same eu partition and created_at is the server's
 * clock, so no period holds only this test's data. The figures are therefore
 * checked in two exact ways:
 *   - aggregates (daily volume, period totals) as deltas: the same period is
 *     reported before and after this test writes its known transfers, and
 *     the difference must be exactly those transfers (suites run one after
 *     the other: nothing else writes meanwhile);
 *   - lists (large transactions, structuring alerts, cross-border flows) by
 *     this test's own ids, accounts and a counterparty region unique to the run.
 * Every test makes its own accounts under an owner unique to the test and the run.
 */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "../../ledger/pg.h"
#include "../../reconciliation/report.h"
#include "itest.h"

#define EU "eu"
#define THRESHOLD 1000000 /* what every test passes as --threshold (and scripts/cluster.sh configures) */
#define HOUR_US (INT64_C(3600) * 1000000)

// NOLINTBEGIN(bugprone-macro-parentheses)
#define OWNER(var)  \
    char var[100];  \
    itest_unique(var, sizeof var, __func__)
// NOLINTEND(bugprone-macro-parentheses)

/* ---------------------------------------------------------------- helpers */

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A period around now, wide enough for the whole test; the threshold fixed. */
static gl_report_params around_now(void) {
    gl_report_params p;
    gl_report_params_init(&p);
    int64_t now = now_us();
    p.from_us = now - 6 * HOUR_US;
    p.to_us = now + 6 * HOUR_US;
    p.threshold_override = THRESHOLD;
    p.max_rows = GL_REPORT_ROWS_MAX;
    return p;
}

static gl_id account(const char *owner, const char *currency, const char *kind, const char *metadata) {
    ledger_cmd c;
    ledger_cmd_init(&c, LEDGER_CMD_CREATE_ACCOUNT);
    snprintf(c.owner, sizeof c.owner, "%s", owner);
    snprintf(c.currency, sizeof c.currency, "%s", currency);
    snprintf(c.account_kind, sizeof c.account_kind, "%s", kind);
    c.metadata = metadata;
    ledger_result r = itest_exec1(EU, &c);
    itest_assert_code(r.code, LEDGER_OK);
    return r.id;
}

static ledger_result run_ok(const ledger_cmd *c) {
    ledger_result r = itest_exec1(EU, c);
    itest_assert_code(r.code, LEDGER_OK);
    return r;
}

static ledger_result pay(const char *owner, gl_id from, gl_id to, int64_t amount, const char *currency,
                         const char *reference) {
    ledger_cmd c = itest_transfer(owner, reference, from, to, amount, currency);
    return run_ok(&c);
}

static ledger_result hold(const char *owner, gl_id from, gl_id to, int64_t amount, int64_t timeout_s) {
    ledger_cmd c = itest_transfer(owner, NULL, from, to, amount, "EUR");
    c.pending = true;
    c.timeout_s = timeout_s;
    return run_ok(&c);
}

static ledger_result act(ledger_cmd_kind kind, const char *owner, gl_id target, int64_t amount) {
    char ref[100];
    ledger_cmd c = itest_on(kind, owner, kind == LEDGER_CMD_REVERSE ? itest_unique(ref, sizeof ref, "rev") : NULL,
                            target, amount);
    return run_ok(&c);
}

/* Builds a report of `region` (eu, or a doctored copy of it) as the report role. */
static bool try_build(const gl_region *region, const gl_report_params *p, gl_report *r, gl_error *err) {
    gl_error_clear(err);
    return gl_report_build(itest_db(EU, GL_ROLE_REPORT), region, p, r, err);
}

static void build(const gl_report_params *p, gl_report *r) {
    gl_error err;
    ck_assert_msg(try_build(itest_region(EU), p, r, &err), "report failed: %s (%s)", err.message, err.detail);
}

/* The row of a volume array for (day, currency, kind); a zero row if absent. */
static gl_report_volume find_volume(const gl_report_volume *rows, int n, const char *day, const char *currency,
                                    const char *kind) {
    gl_report_volume z;
    memset(&z, 0, sizeof z);
    for (int i = 0; i < n; i++)
        if ((!day || strcmp(rows[i].day, day) == 0) && strcmp(rows[i].currency, currency) == 0 &&
            (!kind || strcmp(rows[i].account_kind, kind) == 0))
            return rows[i];
    return z;
}

/* Expected change of one volume key. */
typedef struct {
    char day[GL_REPORT_DAY_LEN];
    const char *currency, *kind;
    int64_t count, amount, refund_count, refund_amount;
} volume_delta;

static void add_delta(volume_delta *d, int *n, int64_t created_at_us, const char *currency, const char *kind,
                      int64_t amount, bool refund) {
    char day[GL_REPORT_DAY_LEN];
    gl_report_format_day(created_at_us, day);
    int i = 0;
    while (i < *n && !(strcmp(d[i].day, day) == 0 && strcmp(d[i].currency, currency) == 0 &&
                       strcmp(d[i].kind, kind) == 0))
        i++;
    if (i == *n) {
        memset(&d[i], 0, sizeof d[i]);
        memcpy(d[i].day, day, sizeof day);
        d[i].currency = currency;
        d[i].kind = kind;
        (*n)++;
    }
    if (refund) {
        d[i].refund_count++;
        d[i].refund_amount += amount;
    } else {
        d[i].count++;
        d[i].amount += amount;
    }
}

static void assert_volume_delta(const gl_report *before, const gl_report *after, const volume_delta *d) {
    gl_report_volume b = find_volume(before->volume, before->n_volume, d->day, d->currency, d->kind);
    gl_report_volume a = find_volume(after->volume, after->n_volume, d->day, d->currency, d->kind);
    ck_assert_msg(a.count - b.count == d->count && a.amount - b.amount == d->amount &&
                      a.refund_count - b.refund_count == d->refund_count &&
                      a.refund_amount - b.refund_amount == d->refund_amount,
                  "%s %s %s: delta (%lld, %lld, refunds %lld, %lld), expected (%lld, %lld, refunds %lld, %lld)",
                  d->day, d->currency, d->kind, (long long)(a.count - b.count), (long long)(a.amount - b.amount),
                  (long long)(a.refund_count - b.refund_count), (long long)(a.refund_amount - b.refund_amount),
                  (long long)d->count, (long long)d->amount, (long long)d->refund_count, (long long)d->refund_amount);
}

static const gl_report_large *find_large(const gl_report *r, gl_id id) {
    for (int i = 0; i < r->n_large; i++)
        if (gl_id_cmp(&r->large[i].id, &id) == 0) return &r->large[i];
    return NULL;
}

static const gl_report_alert *find_alert(const gl_report *r, gl_id account_id) {
    for (int i = 0; i < r->n_alerts; i++)
        if (gl_id_cmp(&r->alerts[i].account_id, &account_id) == 0) return &r->alerts[i];
    return NULL;
}

static const gl_report_flow *find_flow(const gl_report *r, const char *counterparty, const char *direction) {
    for (int i = 0; i < r->n_flows; i++)
        if (r->flows[i].counterparty_region && strcmp(r->flows[i].counterparty_region, counterparty) == 0 &&
            strcmp(r->flows[i].direction, direction) == 0)
            return &r->flows[i];
    return NULL;
}

static const gl_report_residency_table *find_table(const gl_report *r, const char *name) {
    for (int i = 0; i < GL_REPORT_RESIDENCY_TABLES; i++)
        if (strcmp(r->tables[i].table, name) == 0) return &r->tables[i];
    ck_abort_msg("no residency table %s", name);
    return NULL;
}

static const gl_report_exception *find_exception(const gl_report *r, const char *table, const char *value) {
    for (int i = 0; i < r->n_exceptions; i++)
        if (strcmp(r->exceptions[i].table, table) == 0 && strcmp(r->exceptions[i].value, value) == 0)
            return &r->exceptions[i];
    return NULL;
}

/* ---------------------------------------------------------------- period and parameters (no database) */

static int64_t parsed(const char *s) {
    int64_t us = -1;
    gl_error err;
    gl_error_clear(&err);
    ck_assert_msg(gl_report_parse_time(s, &us, &err), "'%s' refused: %s", s, err.message);
    return us;
}

static void refused(const char *s) {
    int64_t us = 0;
    gl_error err;
    gl_error_clear(&err);
    ck_assert_msg(!gl_report_parse_time(s, &us, &err), "'%s' accepted", s);
    ck_assert_int_eq(err.kind, GL_ERR_INVALID);
}

START_TEST(test_period_parsing) {
    ck_assert_int_eq(parsed("1970-01-01"), 0);
    ck_assert_int_eq(parsed("2026-11-25"), INT64_C(1795564800) * 1000000);
    ck_assert_int_eq(parsed("2026-11-25T00:00:00Z"), INT64_C(1795564800) * 1000000);
    ck_assert_int_eq(parsed("2024-02-29T10:30:15Z"), INT64_C(1709202615) * 1000000);
    ck_assert_int_eq(parsed("2024-02-29t10:30:15.5z"), INT64_C(1709202615) * 1000000 + 500000);
    ck_assert_int_eq(parsed("2024-02-29T12:30:15.000001+02:00"), INT64_C(1709202615) * 1000000 + 1);
    ck_assert_int_eq(parsed("2024-02-29T05:00:15-05:30"), INT64_C(1709202615) * 1000000);
    ck_assert_int_eq(parsed("9999-12-31T23:59:59Z"), INT64_C(253402300799) * 1000000);
    const char *bad[] = {"", "2026", "2026-11-2", "2026-13-01", "2026-00-10", "2023-02-29", "2026-04-31",
                         "1969-12-31", "2026-11-25T24:00:00Z", "2026-11-25T12:60:00Z", "2026-11-25T12:00:60Z",
                         "2026-11-25T12:00:00", "2026-11-25 12:00:00Z", "2026-11-25T12:00Z",
                         "2026-11-25T12:00:00.Z", "2026-11-25T12:00:00.1234567Z", "2026-11-25T12:00:00+0200",
                         "2026-11-25T12:00:00Zjunk", "2026-11-25x", " 2026-11-25", "+2026-11-25"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) refused(bad[i]);

    char day[GL_REPORT_DAY_LEN];
    gl_report_format_day(parsed("2024-02-29T23:59:59.999999Z"), day);
    ck_assert_str_eq(day, "2024-02-29");
    gl_report_format_day(parsed("2024-03-01"), day);
    ck_assert_str_eq(day, "2024-03-01");
    gl_report_format_day(0, day);
    ck_assert_str_eq(day, "1970-01-01");

    /* Half-open, at most 366 days, every knob in range. */
    gl_report_params p;
    gl_report_params_init(&p);
    gl_error err;
    p.from_us = parsed("2024-01-01");
    p.to_us = parsed("2025-01-01"); /* 2024 is a leap year: exactly 366 days */
    ck_assert(gl_report_params_check(&p, &err));
    p.to_us++;
    ck_assert(!gl_report_params_check(&p, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "366"));
    p.to_us = p.from_us;
    ck_assert(!gl_report_params_check(&p, &err));
    p.to_us = parsed("2024-01-02");
    p.structuring_count = 1;
    ck_assert(!gl_report_params_check(&p, &err));
    p.structuring_count = 3;
    p.structuring_band_pct = 100;
    ck_assert(!gl_report_params_check(&p, &err));
    p.structuring_band_pct = 10;
    p.max_rows = 0;
    ck_assert(!gl_report_params_check(&p, &err));
    p.max_rows = 10;
    p.threshold_override = -1;
    ck_assert(!gl_report_params_check(&p, &err));
    p.threshold_override = 0;
    ck_assert(gl_report_params_check(&p, &err));
}
END_TEST

/* ---------------------------------------------------------------- daily volume */

START_TEST(test_daily_volume_counts_money_moving_transfers) {
    OWNER(owner);
    gl_report_params p = around_now();
    gl_report before, after;
    build(&p, &before);

    gl_id w = account(owner, "EUR", "user_wallet", NULL), m = account(owner, "EUR", "merchant", NULL);
    gl_id jw = account(owner, "JPY", "user_wallet", NULL), jm = account(owner, "JPY", "merchant", NULL);
    volume_delta d[16];
    memset(d, 0, sizeof d);
    int nd = 0;
    /* volume: plain transfers, a post (the captured part only), a linked pair */
    add_delta(d, &nd, pay(owner, w, m, 1000, "EUR", NULL).created_at_us, "EUR", "user_wallet", 1000, false);
    ledger_result big = pay(owner, w, m, 2500, "EUR", NULL);
    add_delta(d, &nd, big.created_at_us, "EUR", "user_wallet", 2500, false);
    ledger_result h = hold(owner, w, m, 4000, 0);
    add_delta(d, &nd, act(LEDGER_CMD_POST, owner, h.id, 3000).created_at_us, "EUR", "user_wallet", 3000, false);
    ledger_cmd pair[2] = {itest_transfer(owner, NULL, w, m, 10, "EUR"), itest_transfer(owner, NULL, w, m, 20, "EUR")};
    pair[0].linked = true;
    ledger_result pr[2];
    itest_exec_ok(EU, pair, 2, pr);
    itest_assert_code(pr[0].code, LEDGER_OK);
    itest_assert_code(pr[1].code, LEDGER_OK);
    add_delta(d, &nd, pr[0].created_at_us, "EUR", "user_wallet", 10, false);
    add_delta(d, &nd, pr[1].created_at_us, "EUR", "user_wallet", 20, false);
    add_delta(d, &nd, pay(owner, jw, jm, 1500, "JPY", NULL).created_at_us, "JPY", "user_wallet", 1500, false);
    /* not volume: a voided hold, an open hold, an expired hold */
    act(LEDGER_CMD_VOID, owner, hold(owner, w, m, 700, 0).id, 0);
    hold(owner, w, m, 800, 0);
    ledger_result short_hold = hold(owner, w, m, 600, 1);
    sleep_ms(1100);
    act(LEDGER_CMD_EXPIRE, owner, short_hold.id, 0);
    /* a refund: the reversal debits the merchant, so it counts under "merchant" */
    add_delta(d, &nd, act(LEDGER_CMD_REVERSE, owner, big.id, 500).created_at_us, "EUR", "merchant", 500, true);

    build(&p, &after);
    for (int i = 0; i < nd; i++) assert_volume_delta(&before, &after, &d[i]);
    /* Nothing else moved: the period totals changed by exactly this test's transfers. */
    gl_report_volume tb = find_volume(before.totals, before.n_totals, NULL, "EUR", NULL);
    gl_report_volume ta = find_volume(after.totals, after.n_totals, NULL, "EUR", NULL);
    ck_assert_int_eq(ta.count - tb.count, 5);
    ck_assert_int_eq(ta.amount - tb.amount, 1000 + 2500 + 3000 + 10 + 20);
    ck_assert_int_eq(ta.refund_count - tb.refund_count, 1);
    ck_assert_int_eq(ta.refund_amount - tb.refund_amount, 500);
    tb = find_volume(before.totals, before.n_totals, NULL, "JPY", NULL);
    ta = find_volume(after.totals, after.n_totals, NULL, "JPY", NULL);
    ck_assert_int_eq(ta.count - tb.count, 1);
    ck_assert_int_eq(ta.amount - tb.amount, 1500);
    /* The per-day totals (what the charts draw) add up to the period totals. */
    int64_t sum = 0;
    for (int i = 0; i < after.n_daily; i++)
        if (strcmp(after.daily[i].currency, "EUR") == 0) sum += after.daily[i].amount;
    ck_assert_int_eq(sum, find_volume(after.totals, after.n_totals, NULL, "EUR", NULL).amount);

    /* JSON: minor units plus the decimal of the currency's exponent (JPY 0, EUR 2). */
    json_t *j = gl_report_json(&after);
    json_t *totals = json_object_get(json_object_get(j, "volume"), "totals");
    ck_assert(json_is_array(totals));
    size_t i;
    json_t *row;
    int seen = 0;
    json_array_foreach(totals, i, row) {
        const char *cur = json_string_value(json_object_get(row, "currency"));
        json_t *amount = json_object_get(row, "amount");
        long long minor = (long long)json_integer_value(json_object_get(amount, "minor"));
        char want[48];
        if (strcmp(cur, "JPY") == 0) snprintf(want, sizeof want, "%lld", minor);
        else if (strcmp(cur, "EUR") == 0) snprintf(want, sizeof want, "%lld.%02lld", minor / 100, minor % 100);
        else continue;
        ck_assert_str_eq(json_string_value(json_object_get(amount, "decimal")), want);
        seen++;
    }
    ck_assert_int_eq(seen, 2);
    json_decref(j);
    gl_report_free(&before);
    gl_report_free(&after);
}
END_TEST

/* ---------------------------------------------------------------- large transactions */

START_TEST(test_large_transactions_threshold_boundary) {
    OWNER(owner);
    gl_id w = account(owner, "EUR", "user_wallet", NULL), m = account(owner, "EUR", "merchant", NULL);
    ledger_result at = pay(owner, w, m, THRESHOLD, "EUR", "at-threshold");
    ledger_result below = pay(owner, w, m, THRESHOLD - 1, "EUR", NULL);
    ledger_result above = pay(owner, w, m, 2500000, "EUR", NULL);
    ledger_result refund = act(LEDGER_CMD_REVERSE, owner, above.id, THRESHOLD);
    ledger_result held = hold(owner, w, m, 5000000, 0);
    ledger_result voided = act(LEDGER_CMD_VOID, owner, held.id, 0);

    gl_report_params p = around_now();
    gl_report r;
    build(&p, &r);
    ck_assert_str_eq(r.threshold_source, "flag");
    ck_assert_int_eq(r.threshold, THRESHOLD);
    ck_assert(r.large_total == r.n_large);
    const gl_report_large *l = find_large(&r, at.id);
    ck_assert_msg(l != NULL, "a transfer of exactly the threshold is listed");
    ck_assert_int_eq(l->amount, THRESHOLD);
    ck_assert_str_eq(l->currency, "EUR");
    ck_assert_str_eq(gl_report_transfer_type(l->flags), "transfer");
    ck_assert(gl_id_cmp(&l->debit_account_id, &w) == 0 && gl_id_cmp(&l->credit_account_id, &m) == 0);
    ck_assert_str_eq(l->debit_owner, owner);
    ck_assert_str_eq(l->debit_kind, "user_wallet");
    ck_assert_str_eq(l->credit_kind, "merchant");
    ck_assert_str_eq(l->reference, "at-threshold");
    ck_assert_int_eq(l->created_at_us, at.created_at_us);
    ck_assert_msg(find_large(&r, below.id) == NULL, "threshold - 1 is not listed");
    ck_assert_ptr_nonnull(find_large(&r, above.id));
    l = find_large(&r, refund.id);
    ck_assert_msg(l != NULL, "a reversal of the threshold is listed");
    ck_assert_str_eq(gl_report_transfer_type(l->flags), "reversal");
    ck_assert_str_eq(l->debit_kind, "merchant");
    ck_assert_msg(find_large(&r, held.id) == NULL && find_large(&r, voided.id) == NULL,
                  "holds and voids move no money: not listed");
    gl_report_free(&r);

    /* --threshold overrides; the boundary moves with it. */
    p.threshold_override = 2500000;
    build(&p, &r);
    ck_assert(find_large(&r, at.id) == NULL && find_large(&r, refund.id) == NULL);
    ck_assert_ptr_nonnull(find_large(&r, above.id));
    gl_report_free(&r);

    /* The list is capped; the total stays exact. */
    p.threshold_override = THRESHOLD;
    p.max_rows = 1;
    build(&p, &r);
    ck_assert_int_eq(r.n_large, 1);
    ck_assert_int_ge(r.large_total, 3);
    json_t *j = gl_report_json(&r);
    ck_assert(json_is_true(json_object_get(json_object_get(j, "large_transactions"), "truncated")));
    json_decref(j);
    gl_report_free(&r);
}
END_TEST

START_TEST(test_threshold_from_config_or_not_configured) {
    gl_report_params p = around_now();
    p.threshold_override = 0;
    const gl_region *eu = itest_region(EU);
    gl_report r;
    build(&p, &r);
    ck_assert_int_eq(r.threshold, eu->large_transaction_threshold);
    ck_assert_str_eq(r.threshold_source, eu->large_transaction_threshold > 0 ? "config" : "not_configured");
    gl_report_free(&r);

    /* A region without a threshold: both threshold sections say so and list nothing. */
    gl_region bare = *eu;
    bare.large_transaction_threshold = 0;
    gl_error err;
    ck_assert_msg(try_build(&bare, &p, &r, &err), "%s", err.message);
    ck_assert_int_eq(r.threshold, 0);
    ck_assert_str_eq(r.threshold_source, "not_configured");
    ck_assert(r.n_large == 0 && r.large_total == 0 && r.n_alerts == 0 && r.alerts_total == 0);
    json_t *j = gl_report_json(&r);
    ck_assert(json_is_false(json_object_get(json_object_get(j, "large_transactions"), "configured")));
    ck_assert(json_is_false(json_object_get(json_object_get(j, "structuring_alerts"), "configured")));
    json_decref(j);
    gl_report_free(&r);

    /* ... unless --threshold gives one. */
    p.threshold_override = THRESHOLD;
    ck_assert(try_build(&bare, &p, &r, &err));
    ck_assert_str_eq(r.threshold_source, "flag");
    gl_report_free(&r);
}
END_TEST

/* ---------------------------------------------------------------- structuring */

START_TEST(test_structuring_alerts) {
    OWNER(owner);
    gl_id m = account(owner, "EUR", "merchant", NULL);
    /* s1: three transfers in [900000, 1000000) within seconds (the band's lower edge included) */
    gl_id s1 = account(owner, "EUR", "user_wallet", NULL);
    ledger_result first = pay(owner, s1, m, 950000, "EUR", NULL);
    pay(owner, s1, m, 900000, "EUR", NULL);
    ledger_result last = pay(owner, s1, m, THRESHOLD - 1, "EUR", NULL);
    /* s2: only two in the band; one just below it and one at the threshold do not count */
    gl_id s2 = account(owner, "EUR", "user_wallet", NULL);
    pay(owner, s2, m, 950000, "EUR", NULL);
    pay(owner, s2, m, 960000, "EUR", NULL);
    pay(owner, s2, m, 899999, "EUR", NULL);
    pay(owner, s2, m, THRESHOLD, "EUR", NULL);
    /* s3: in-band holds that were voided never moved money */
    gl_id s3 = account(owner, "EUR", "user_wallet", NULL);
    for (int i = 0; i < 3; i++) act(LEDGER_CMD_VOID, owner, hold(owner, s3, m, 950000, 0).id, 0);

    gl_report_params p = around_now();
    gl_report r;
    build(&p, &r);
    ck_assert_int_eq(r.band_from, 900000);
    ck_assert(r.alerts_total == r.n_alerts);
    const gl_report_alert *a = find_alert(&r, s1);
    ck_assert_msg(a != NULL, "3 just-below transfers within 24 h: alert");
    ck_assert_int_eq(a->count, 3);
    ck_assert_int_eq(a->total, 950000 + 900000 + THRESHOLD - 1);
    ck_assert_int_eq(a->first_at_us, first.created_at_us);
    ck_assert_int_eq(a->last_at_us, last.created_at_us);
    ck_assert_str_eq(a->owner, owner);
    ck_assert_str_eq(a->account_kind, "user_wallet");
    ck_assert_str_eq(a->currency, "EUR");
    ck_assert_msg(find_alert(&r, s2) == NULL, "2 in the band: no alert");
    ck_assert_msg(find_alert(&r, s3) == NULL, "voided holds: no alert");
    gl_report_free(&r);

    /* --structuring-count 2 alerts s2 too */
    p.structuring_count = 2;
    build(&p, &r);
    a = find_alert(&r, s2);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->count, 2);
    ck_assert_int_eq(a->total, 950000 + 960000);
    gl_report_free(&r);

    /* a 20 % band [800000, 1000000) takes in 899999 */
    p.structuring_count = 3;
    p.structuring_band_pct = 20;
    build(&p, &r);
    ck_assert_int_eq(r.band_from, 800000);
    a = find_alert(&r, s2);
    ck_assert_ptr_nonnull(a);
    ck_assert_int_eq(a->count, 3);
    ck_assert_int_eq(a->total, 950000 + 960000 + 899999);
    gl_report_free(&r);
}
END_TEST

/* ---------------------------------------------------------------- cross-border */

START_TEST(test_cross_border_aggregates) {
    OWNER(owner);
    char cp[100], meta[200], odd_meta[200];
    itest_unique(cp, sizeof cp, "xb");
    snprintf(meta, sizeof meta, "{\"counterparty_region\": \"%s\"}", cp);
    snprintf(odd_meta, sizeof odd_meta, "{\"counterparty_region\": \"<i>%s</i>&\"}", cp);
    gl_id due_to = account(owner, "EUR", "due_to", meta), due_from = account(owner, "EUR", "due_from", meta);
    gl_id odd = account(owner, "EUR", "due_to", odd_meta);
    gl_id unnamed = account(owner, "EUR", "due_to", NULL);
    gl_id u = account(owner, "EUR", "user_wallet", NULL);
    ledger_result o1 = pay(owner, u, due_to, 1200, "EUR", NULL);
    pay(owner, u, due_to, 300, "EUR", NULL);
    ledger_result i1 = pay(owner, due_from, u, 700, "EUR", NULL);
    act(LEDGER_CMD_REVERSE, owner, o1.id, 200);
    act(LEDGER_CMD_REVERSE, owner, i1.id, 100);
    hold(owner, u, due_to, 5000, 0); /* a hold is not a flow */
    pay(owner, u, odd, 50, "EUR", NULL);
    pay(owner, u, unnamed, 40, "EUR", NULL);

    gl_report_params p = around_now();
    gl_report r;
    build(&p, &r);
    struct {
        const char *direction;
        int64_t count, amount;
    } want[] = {{"out", 2, 1500}, {"out_reversed", 1, 200}, {"in", 1, 700}, {"in_reversed", 1, 100}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const gl_report_flow *f = find_flow(&r, cp, want[i].direction);
        ck_assert_msg(f != NULL, "no %s flow for %s", want[i].direction, cp);
        ck_assert_str_eq(f->currency, "EUR");
        ck_assert_msg(f->count == want[i].count && f->amount == want[i].amount, "%s: (%lld, %lld), expected (%lld, %lld)",
                      want[i].direction, (long long)f->count, (long long)f->amount, (long long)want[i].count,
                      (long long)want[i].amount);
    }
    char odd_cp[160];
    snprintf(odd_cp, sizeof odd_cp, "<i>%s</i>&", cp);
    const gl_report_flow *f = find_flow(&r, odd_cp, "out");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(f->amount, 50);
    /* An account without metadata.counterparty_region is still a flow, with no counterparty. */
    bool unnamed_seen = false;
    for (int i = 0; i < r.n_flows; i++)
        if (!r.flows[i].counterparty_region && strcmp(r.flows[i].direction, "out") == 0 && r.flows[i].amount >= 40)
            unnamed_seen = true;
    ck_assert(unnamed_seen);

    /* HTML escapes what came from the database. */
    char *html = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&html, &len);
    gl_error err;
    ck_assert(gl_report_write(&r, GL_REPORT_HTML, mem, &err));
    fclose(mem);
    char escaped[200];
    snprintf(escaped, sizeof escaped, "&lt;i&gt;%s&lt;/i&gt;&amp;", cp);
    ck_assert_msg(strstr(html, escaped) != NULL, "escaped counterparty missing");
    ck_assert_msg(strstr(html, "<i>") == NULL, "raw markup from the database in the HTML");
    free(html);
    gl_report_free(&r);
}
END_TEST

/* ---------------------------------------------------------------- residency */

START_TEST(test_residency_pass_and_exceptions) {
    OWNER(owner);
    gl_report_params p = around_now();
    gl_report r;
    build(&p, &r);
    ck_assert_msg(r.residency_pass, "residency fails on a clean partition: %lld exceptions",
                  (long long)r.exceptions_total);
    ck_assert(r.partition_found && r.partition_code == 1);
    ck_assert_str_eq(r.partition_name, "eu");
    ck_assert_int_eq(r.n_exceptions, 0);
    ck_assert_int_eq(find_table(&r, "accounts")->rows_checked,
                     itest_sql_i64(EU, "SELECT count(*) FROM accounts", 0, NULL));
    ck_assert_int_eq(find_table(&r, "transfers")->rows_checked,
                     itest_sql_i64(EU, "SELECT count(*) FROM transfers", 0, NULL));
    ck_assert_int_eq(find_table(&r, "entries")->rows_checked,
                     itest_sql_i64(EU, "SELECT count(*) FROM entries", 0, NULL));
    gl_report_free(&r);

    /* Two foreign rows, written as admin (the engine would never): an id of
     * region us (code 2), and a UUIDv4 whose byte 9 happens to be eu's code
     * (not one of our ids, so code 0). Removed again before any assertion. */
    gl_id us_id, v4_id;
    ck_assert(gl_id_new(2, &us_id, NULL));
    ck_assert(gl_id_parse("4a4b4c4d-0000-4000-8001-000000000001", &v4_id));
    char us_text[GL_ID_STR_LEN + 1], v4_text[GL_ID_STR_LEN + 1];
    gl_id_format(&us_id, us_text);
    gl_id_format(&v4_id, v4_text);
    const char *ins[3] = {us_text, v4_text, owner};
    ck_assert_int_eq(itest_sql_i64(EU, "WITH i AS (INSERT INTO accounts (id, currency, owner, kind, created_at)"
                                       " VALUES ($1::uuid, 'EUR', $3, 'user_wallet', now()),"
                                       " ($2::uuid, 'EUR', $3, 'user_wallet', now()) RETURNING 1)"
                                       " SELECT count(*) FROM i", 3, ins), 2);
    gl_error err;
    bool built = try_build(itest_region(EU), &p, &r, &err);
    int64_t deleted = itest_sql_i64(EU, "WITH d AS (DELETE FROM accounts WHERE owner = $1 RETURNING 1)"
                                        " SELECT count(*) FROM d", 1, ins + 2);
    ck_assert_int_eq(deleted, 2);
    ck_assert_msg(built, "%s", err.message);
    ck_assert(!r.residency_pass);
    ck_assert_int_eq(r.exceptions_total, 2);
    ck_assert_int_eq(find_table(&r, "accounts")->exceptions, 2);
    const gl_report_exception *x = find_exception(&r, "accounts", us_text);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(x->region_code, 2);
    ck_assert_str_eq(x->column, "id");
    ck_assert_str_eq(x->row, us_text);
    x = find_exception(&r, "accounts", v4_text);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(x->region_code, 0);
    gl_report_free(&r);

    build(&p, &r);
    ck_assert_msg(r.residency_pass, "residency still fails after the foreign rows were removed");
    gl_report_free(&r);
}
END_TEST

START_TEST(test_residency_wrong_partition) {
    /* Reading eu's partition as if it were region sg (code 3): partition_info
     * disagrees, and every id is an exception; only the first 100 are listed. */
    OWNER(owner);
    gl_id w = account(owner, "EUR", "user_wallet", NULL), m = account(owner, "EUR", "merchant", NULL);
    pay(owner, w, m, 1, "EUR", NULL);
    gl_region as_sg = *itest_region(EU);
    as_sg.code = 3;
    snprintf(as_sg.name, sizeof as_sg.name, "sg");
    gl_report_params p = around_now();
    gl_report r;
    gl_error err;
    ck_assert_msg(try_build(&as_sg, &p, &r, &err), "%s", err.message);
    ck_assert(!r.residency_pass);
    ck_assert(r.partition_found && r.partition_code == 1);
    ck_assert_int_eq(find_table(&r, "partition_info")->exceptions, 2); /* code and name */
    ck_assert_str_eq(r.exceptions[0].table, "partition_info");
    ck_assert_str_eq(r.exceptions[0].column, "region_code");
    ck_assert_str_eq(r.exceptions[0].value, "1");
    const gl_report_residency_table *a = find_table(&r, "accounts"), *t = find_table(&r, "transfers"),
                                    *e = find_table(&r, "entries"), *pt = find_table(&r, "pending_transfers");
    ck_assert_int_eq(a->exceptions, a->rows_checked);
    ck_assert_int_eq(t->exceptions, 3 * t->rows_checked);
    ck_assert_int_eq(e->exceptions, 2 * e->rows_checked);
    ck_assert_int_eq(pt->exceptions, pt->rows_checked);
    ck_assert_int_eq(r.exceptions_total, 2 + a->exceptions + t->exceptions + e->exceptions + pt->exceptions);
    ck_assert_int_eq(r.n_exceptions, r.exceptions_total < GL_REPORT_EXCEPTIONS_MAX ? r.exceptions_total
                                                                                   : GL_REPORT_EXCEPTIONS_MAX);
    ck_assert_int_eq(r.exceptions[2].region_code, 1);
    gl_report_free(&r);
}
END_TEST

/* ---------------------------------------------------------------- ledgerctl */

static char *slurp_file(const char *path) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    char *s = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&s, &len);
    char buf[4096];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, got, mem);
    fclose(mem);
    fclose(f);
    return s;
}

/* `report regional --region eu` over the test's period, plus `extra` arguments. */
static int run_report(const char *extra, char **out, char **errout) {
    gl_report_params p = around_now();
    char from[48], to[48], args[1024];
    gl_format_rfc3339_us(p.from_us, from, sizeof from);
    gl_format_rfc3339_us(p.to_us, to, sizeof to);
    snprintf(args, sizeof args, "report regional --region eu --from %s --to %s --threshold %d %s", from, to, THRESHOLD,
             extra);
    return itest_run_ledgerctl(args, out, errout);
}

START_TEST(test_ledgerctl_formats) {
    OWNER(owner);
    gl_id w = account(owner, "EUR", "user_wallet", NULL), m = account(owner, "EUR", "merchant", NULL);
    const char *ref = "<b>&\"x',y";
    ledger_result big = pay(owner, w, m, 1500000, "EUR", ref);
    const char *id = itest_id(big.id);

    /* JSON (the default) */
    char *out, *err;
    int rc = run_report("", &out, &err);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    json_error_t je;
    json_t *j = json_loads(out, 0, &je);
    ck_assert_msg(j != NULL, "not JSON: %s", je.text);
    const char *keys[] = {"report", "format_version", "region", "region_code", "period", "generated_at", "parameters",
                          "volume", "large_transactions", "structuring_alerts", "cross_border", "residency"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        ck_assert_msg(json_object_get(j, keys[i]) != NULL, "no \"%s\" in the JSON", keys[i]);
    ck_assert_str_eq(json_string_value(json_object_get(j, "region")), "eu");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "residency"), "attestation")), "pass");
    size_t i;
    json_t *item, *found = NULL;
    json_array_foreach(json_object_get(json_object_get(j, "large_transactions"), "items"), i, item) {
        if (strcmp(json_string_value(json_object_get(item, "id")), id) == 0) found = item;
    }
    ck_assert_msg(found != NULL, "transfer %s not in the JSON", id);
    ck_assert_str_eq(json_string_value(json_object_get(found, "reference")), ref);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(found, "amount"), "minor")), 1500000);
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(found, "amount"), "decimal")), "15000.00");
    json_decref(j);
    free(out);
    free(err);

    /* CSV: one table, the reference quoted (RFC 4180) */
    rc = run_report("--format csv", &out, &err);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    ck_assert(strncmp(out, "section,name,value,day,currency,", 32) == 0);
    char line[512];
    snprintf(line, sizeof line, "large_transaction,,,,EUR,user_wallet,transfer,,,1500000,15000.00,%s,", id);
    ck_assert_msg(strstr(out, line) != NULL, "no CSV line for %s", id);
    ck_assert_ptr_nonnull(strstr(out, ",\"<b>&\"\"x',y\","));
    free(out);
    free(err);

    /* HTML into a file: self-contained, escaped */
    char path[] = "/tmp/test-report-XXXXXX";
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    close(fd);
    char extra[128];
    snprintf(extra, sizeof extra, "--format html --out %s", path);
    rc = run_report(extra, &out, &err);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    ck_assert_str_eq(out, "");
    free(out);
    free(err);
    char *html = slurp_file(path);
    unlink(path);
    ck_assert(strncmp(html, "<!DOCTYPE html>", 15) == 0);
    ck_assert_ptr_nonnull(strstr(html, "&lt;b&gt;&amp;&quot;x&#39;,y"));
    ck_assert_ptr_null(strstr(html, "<b>"));
    ck_assert_ptr_null(strstr(html, "http:"));
    ck_assert_ptr_null(strstr(html, "https:"));
    ck_assert_ptr_null(strstr(html, "<script"));
    ck_assert_ptr_nonnull(strstr(html, "<svg"));
    ck_assert_ptr_nonnull(strstr(html, "<rect class=\"bar\""));
    const char *sections[] = {"summary", "daily-volume", "large-transactions", "structuring-alerts", "cross-border",
                              "residency"};
    for (size_t k = 0; k < sizeof sections / sizeof sections[0]; k++) {
        char want[64];
        snprintf(want, sizeof want, "id=\"%s\"", sections[k]);
        ck_assert_msg(strstr(html, want) != NULL, "no section %s", sections[k]);
    }
    ck_assert_ptr_nonnull(strstr(html, id));
    free(html);
}
END_TEST

START_TEST(test_ledgerctl_usage_errors) {
    struct {
        const char *args;
        int want;
    } cases[] = {
        {"report", 2},
        {"report weekly --region eu --from 2026-01-01 --to 2026-02-01", 2},
        {"report regional --from 2026-01-01 --to 2026-02-01", 2},
        {"report regional --region nowhere --from 2026-01-01 --to 2026-02-01", 2},
        {"report regional --region eu --from 2026-01-01 --to 2027-01-03", 2}, /* 367 days */
        {"report regional --region eu --from 2026-02-01 --to 2026-02-01", 2},
        {"report regional --region eu --from 2026-02-01 --to 2026-01-01", 2},
        {"report regional --region eu --from 2026-13-01 --to 2027-01-01", 2},
        {"report regional --region eu --from 2026-01-01 --to 2026-02-01 --format xml", 2},
        {"report regional --region eu --from 2026-01-01 --to 2026-02-01 --threshold 0", 2},
        {"report regional --region eu --from 2026-01-01 --to 2026-02-01 --threshold 12x", 2},
        {"report regional --region eu --from 2026-01-01 --to 2026-02-01 --structuring-count 1", 2},
        {"report regional --region eu --from 2026-01-01 --to 2026-02-01 --structuring-band-pct 100", 2},
        {"report regional --region eu --from 2026-01-01 --to 2026-02-01 --max-rows 0", 2},
        {"report regional --region eu --from 2026-01-01 --to 2026-02-01 extra", 2},
        {"report regional --region eu --from 2026-01-01 --to 2026-02-01 --out /nonexistent-dir/r.json", 3},
        {"report regional --region eu --from 2025-01-01 --to 2026-01-01 --format csv --out /dev/null/x", 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out, *err;
        int rc = itest_run_ledgerctl(cases[i].args, &out, &err);
        ck_assert_msg(rc == cases[i].want, "'%s': exit %d, expected %d (%s)", cases[i].args, rc, cases[i].want, err);
        ck_assert_msg(err[0] != '\0', "'%s': no message on stderr", cases[i].args);
        free(out);
        free(err);
    }
    /* A year-long period (366 days) is fine. */
    char *out, *err;
    int rc = itest_run_ledgerctl("report regional --region eu --from 2024-01-01 --to 2025-01-01 --format csv", &out, &err);
    ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
    free(out);
    free(err);
}
END_TEST

static Suite *report_suite(void) {
    const itest_group groups[] = {
        {"report",
         120,
         {test_period_parsing, test_daily_volume_counts_money_moving_transfers,
          test_large_transactions_threshold_boundary, test_threshold_from_config_or_not_configured,
          test_structuring_alerts, test_cross_border_aggregates, test_residency_pass_and_exceptions,
          test_residency_wrong_partition, test_ledgerctl_formats, test_ledgerctl_usage_errors, NULL}},
    };
    return itest_suite("report", groups, sizeof groups / sizeof groups[0]);
}

int main(void) { return itest_run(report_suite()); }
