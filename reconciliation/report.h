/*
 * report.h — the regional compliance report (reconciliation/README.md,
 * "Compliance report").
 *
 * gl_report_build() reads ONE region's partition, in one REPEATABLE READ READ
 * ONLY transaction (all sections see the same snapshot), into a gl_report
 * model; the gl_report_write_* functions render that model as JSON, CSV or a
 * self-contained HTML page. Building and rendering are apart so that a
 * database error never leaves half a report behind, and so that tests can
 * check the figures on the model itself.
 *
 * Money is int64 minor units everywhere: SQL sums are numeric, parsed back
 * into int64 with an overflow check (an overflowing sum is an error, never a
 * wrapped or rounded figure). No floating point, not even for chart bars.
 */
#ifndef GL_REPORT_H
#define GL_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "../ledger/error.h"
#include "../ledger/id.h"
#include "../ledger/ledger.h"
#include "../regions/regions.h"

#define GL_REPORT_FORMAT_VERSION 1
#define GL_REPORT_PERIOD_MAX_DAYS 366
#define GL_REPORT_ROWS_DEFAULT 1000        /* items listed per list section (large, alerts) */
#define GL_REPORT_ROWS_MAX 100000
#define GL_REPORT_AGGREGATE_ROWS_MAX 200000 /* volume / cross-border rows: beyond, an error, never a cut */
#define GL_REPORT_EXCEPTIONS_MAX 100        /* residency exceptions listed (the total is always exact) */
#define GL_REPORT_STRUCTURING_COUNT_DEFAULT 3
#define GL_REPORT_STRUCTURING_COUNT_MAX 1000
#define GL_REPORT_STRUCTURING_BAND_PCT_DEFAULT 10
#define GL_REPORT_STRUCTURING_WINDOW_HOURS 24 /* shown in the output; report.c's SQL spells it '24 hours' */
#define GL_REPORT_TS_LEN 40   /* "YYYY-MM-DDTHH:MM:SS.ffffffZ" + NUL, with room */
#define GL_REPORT_DAY_LEN 11  /* "YYYY-MM-DD" + NUL */
#define GL_REPORT_KIND_LEN 40 /* an account kind (<= 32) or "(no account)" */
#define GL_REPORT_RESIDENCY_TABLES 5

typedef enum { GL_REPORT_JSON, GL_REPORT_CSV, GL_REPORT_HTML } gl_report_format;

typedef struct {
    int64_t from_us, to_us;     /* [from, to), microseconds since the Unix epoch (UTC) */
    int64_t threshold_override; /* > 0: replaces the region's large_transaction_threshold */
    int structuring_count;      /* 2..GL_REPORT_STRUCTURING_COUNT_MAX transfers in 24 h */
    int structuring_band_pct;   /* 1..99: the band is [threshold*(100-pct)/100, threshold) */
    int max_rows;               /* 1..GL_REPORT_ROWS_MAX items per list section */
} gl_report_params;

/* One row of daily volume: a UTC day, a currency and the DEBIT account's kind. */
typedef struct {
    char day[GL_REPORT_DAY_LEN];
    int day_index; /* days since the period's first UTC day */
    char currency[4];
    char account_kind[GL_REPORT_KIND_LEN]; /* "" in the per-day and per-period totals */
    int64_t count, amount;                 /* plain transfers and posts */
    int64_t refund_count, refund_amount;   /* reversals */
} gl_report_volume;

typedef struct {
    gl_id id;
    int64_t created_at_us;
    uint32_t flags; /* transfers.flags: see gl_report_transfer_type() */
    char currency[4];
    int64_t amount;
    gl_id debit_account_id, credit_account_id;
    char debit_owner[LEDGER_OWNER_MAX + 1]; /* "" if the account row is missing */
    char debit_kind[GL_REPORT_KIND_LEN];
    char credit_kind[GL_REPORT_KIND_LEN];
    char owner[LEDGER_OWNER_MAX + 1]; /* the transfer's author */
    char reference[LEDGER_REFERENCE_MAX + 1];
} gl_report_large;

/* The densest 24 h window of just-below-threshold transfers of one debit account. */
typedef struct {
    gl_id account_id;
    char owner[LEDGER_OWNER_MAX + 1];
    char account_kind[GL_REPORT_KIND_LEN];
    char currency[4];
    int64_t count, total;
    int64_t first_at_us, last_at_us;
} gl_report_alert;

typedef struct {
    char *counterparty_region; /* heap; NULL when the account has no metadata.counterparty_region */
    char currency[4];
    const char *direction; /* "out", "out_reversed", "in", "in_reversed" (static strings) */
    int64_t count, amount;
} gl_report_flow;

typedef struct {
    const char *table; /* static */
    int64_t rows_checked;
    int64_t exceptions; /* id values carrying another code (a row may hold several) */
} gl_report_residency_table;

typedef struct {
    char table[24], column[24];
    char row[64];               /* the row's key: its id, or account_id/version for entries */
    char value[64];             /* the offending id (or partition_info's code/name) */
    int region_code;            /* the code it carries; 0 = not a geoledger id */
} gl_report_exception;

typedef struct {
    /* header */
    char region_name[GL_REGION_NAME_MAX + 1];
    int region_code;
    int64_t from_us, to_us, generated_at_us; /* generated_at: the snapshot's now() */
    int n_days;                              /* UTC calendar days the period touches */
    int64_t threshold;                       /* 0: not configured (no large/structuring sections) */
    const char *threshold_source;            /* "config", "flag" or "not_configured" */
    int structuring_count, structuring_band_pct;
    int64_t band_from; /* inclusive; the band ends at threshold, exclusive */
    int max_rows;

    /* daily volume: detail rows, per day per currency (the charts), per currency over the period */
    int n_volume, n_daily, n_totals;
    gl_report_volume *volume, *daily, *totals;

    int64_t large_total; /* all matches; `n_large` of them listed */
    int n_large;
    gl_report_large *large;

    int64_t alerts_total;
    int n_alerts;
    gl_report_alert *alerts;

    int n_flows;
    gl_report_flow *flows;

    /* residency attestation (the whole partition, not only the period) */
    bool partition_found;
    int partition_code;
    char partition_name[GL_REGION_NAME_MAX + 8];
    gl_report_residency_table tables[GL_REPORT_RESIDENCY_TABLES];
    int64_t exceptions_total;
    int n_exceptions;
    gl_report_exception *exceptions;
    bool residency_pass;
} gl_report;

/* Defaults: no override, 3 transfers, 10 %, GL_REPORT_ROWS_DEFAULT; period unset. */
void gl_report_params_init(gl_report_params *p);
/* Checks every field (the period: from < to, at most GL_REPORT_PERIOD_MAX_DAYS). */
bool gl_report_params_check(const gl_report_params *p, gl_error *err);

/* Parses "YYYY-MM-DD" (00:00 UTC) or RFC 3339 "YYYY-MM-DDTHH:MM:SS[.ffffff](Z|±HH:MM)"
 * (years 1970..9999 and not before 1970-01-01T00:00:00Z, at most 6 fraction
 * digits, no leap second). The grammar is gl_rfc3339_parse's (ledger/pg.h). */
bool gl_report_parse_time(const char *s, int64_t *out_us, gl_error *err);
/* The UTC day of an instant, "YYYY-MM-DD". */
void gl_report_format_day(int64_t us, char out[GL_REPORT_DAY_LEN]);

/*
 * Builds the report of `region` from `db` (a connection to that region, the
 * report role is enough). On failure `out` is left empty (nothing to free).
 */
bool gl_report_build(PGconn *db, const gl_region *region, const gl_report_params *p, gl_report *out,
                     gl_error *err);
/* Safe on a zeroed, failed or already-freed report. */
void gl_report_free(gl_report *r);

/* "transfer", "post" or "reversal" (what the large-transaction list shows). */
const char *gl_report_transfer_type(uint32_t flags);

/* Rendering (reconciliation/report_render.c). */
bool gl_report_format_parse(const char *s, gl_report_format *out);
json_t *gl_report_json(const gl_report *r); /* NULL only when out of memory */
/* Writes the report to `f`; false (err set) on a write error. */
bool gl_report_write(const gl_report *r, gl_report_format format, FILE *f, gl_error *err);

#endif
