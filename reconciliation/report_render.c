/*
 * report_render.c — the compliance report as JSON, CSV or one self-contained
 * HTML page (inline CSS and SVG, no script, no external asset).
 *
 * Every function here only reads a built gl_report. Money is shown as its
 * integer minor units plus the decimal for the currency's exponent
 * (gl_money_format_decimal: integer arithmetic). Chart bars are scaled with
 * int64 arithmetic too. Every string that came from the database is escaped
 * for its output (jansson for JSON, quoting and a formula guard for CSV,
 * entities for HTML).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../ledger/currency.h"
#include "../ledger/money.h"
#include "../ledger/pg.h"
#include "report.h"

#define MONEY_LEN 48

bool gl_report_format_parse(const char *s, gl_report_format *out) {
    if (!s) return false;
    if (strcmp(s, "json") == 0) *out = GL_REPORT_JSON;
    else if (strcmp(s, "csv") == 0) *out = GL_REPORT_CSV;
    else if (strcmp(s, "html") == 0) *out = GL_REPORT_HTML;
    else return false;
    return true;
}

/* ---------------------------------------------------------------- shared */

/* The decimal form of `minor` in `currency`; false (and "") for a currency we
 * do not know the exponent of. */
static bool money_decimal(int64_t minor, const char *currency, char buf[MONEY_LEN]) {
    const gl_currency *c = gl_currency_find(currency);
    buf[0] = '\0';
    return c && gl_money_format_decimal(minor, c->exponent, buf, MONEY_LEN) >= 0;
}

static void format_ts(int64_t us, char buf[GL_REPORT_TS_LEN]) { gl_format_rfc3339_us(us, buf, GL_REPORT_TS_LEN); }

static void format_id(const gl_id *id, char buf[GL_ID_STR_LEN + 1]) { gl_id_format(id, buf); }

/* ---------------------------------------------------------------- JSON */

/* A JSON string; text that is not valid UTF-8 (jansson refuses it) becomes U+FFFD. */
static json_t *jstr(const char *s) {
    json_t *j = json_string(s);
    return j ? j : json_string("\xef\xbf\xbd");
}

static json_t *jmoney(int64_t minor, const char *currency) {
    char dec[MONEY_LEN];
    bool known = money_decimal(minor, currency, dec);
    json_t *o = json_object();
    json_object_set_new(o, "minor", json_integer(minor));
    json_object_set_new(o, "decimal", known ? jstr(dec) : json_null());
    return o;
}

static json_t *jts(int64_t us) {
    char ts[GL_REPORT_TS_LEN];
    format_ts(us, ts);
    return jstr(ts);
}

static json_t *jid(const gl_id *id) {
    char s[GL_ID_STR_LEN + 1];
    format_id(id, s);
    return jstr(s);
}

static json_t *json_parameters(const gl_report *r) {
    json_t *threshold = json_object();
    json_object_set_new(threshold, "minor", json_integer(r->threshold));
    json_object_set_new(threshold, "source", jstr(r->threshold_source));
    json_t *s = json_object();
    json_object_set_new(s, "min_count", json_integer(r->structuring_count));
    json_object_set_new(s, "band_pct", json_integer(r->structuring_band_pct));
    json_object_set_new(s, "band_from_minor", json_integer(r->band_from));
    json_object_set_new(s, "band_to_minor", json_integer(r->threshold));
    json_object_set_new(s, "window_hours", json_integer(GL_REPORT_STRUCTURING_WINDOW_HOURS));
    json_t *o = json_object();
    json_object_set_new(o, "large_transaction_threshold", threshold);
    json_object_set_new(o, "structuring", s);
    json_object_set_new(o, "max_rows", json_integer(r->max_rows));
    return o;
}

static json_t *json_volume_row(const gl_report_volume *v, bool with_day, bool with_kind) {
    json_t *o = json_object();
    if (with_day) json_object_set_new(o, "day", jstr(v->day));
    json_object_set_new(o, "currency", jstr(v->currency));
    if (with_kind) json_object_set_new(o, "account_kind", jstr(v->account_kind));
    json_object_set_new(o, "count", json_integer(v->count));
    json_object_set_new(o, "amount", jmoney(v->amount, v->currency));
    json_object_set_new(o, "refund_count", json_integer(v->refund_count));
    json_object_set_new(o, "refund_amount", jmoney(v->refund_amount, v->currency));
    return o;
}

static json_t *json_volume(const gl_report *r) {
    json_t *daily = json_array(), *by_day = json_array(), *totals = json_array();
    for (int i = 0; i < r->n_volume; i++) json_array_append_new(daily, json_volume_row(&r->volume[i], true, true));
    for (int i = 0; i < r->n_daily; i++) json_array_append_new(by_day, json_volume_row(&r->daily[i], true, false));
    for (int i = 0; i < r->n_totals; i++) json_array_append_new(totals, json_volume_row(&r->totals[i], false, false));
    json_t *o = json_object();
    json_object_set_new(o, "daily", daily);
    json_object_set_new(o, "by_day", by_day);
    json_object_set_new(o, "totals", totals);
    return o;
}

static json_t *json_large_item(const gl_report_large *l) {
    json_t *o = json_object();
    json_object_set_new(o, "id", jid(&l->id));
    json_object_set_new(o, "created_at", jts(l->created_at_us));
    json_object_set_new(o, "type", jstr(gl_report_transfer_type(l->flags)));
    json_object_set_new(o, "currency", jstr(l->currency));
    json_object_set_new(o, "amount", jmoney(l->amount, l->currency));
    json_object_set_new(o, "debit_account_id", jid(&l->debit_account_id));
    json_object_set_new(o, "debit_owner", jstr(l->debit_owner));
    json_object_set_new(o, "debit_kind", jstr(l->debit_kind));
    json_object_set_new(o, "credit_account_id", jid(&l->credit_account_id));
    json_object_set_new(o, "credit_kind", jstr(l->credit_kind));
    json_object_set_new(o, "owner", jstr(l->owner));
    json_object_set_new(o, "reference", l->reference[0] ? jstr(l->reference) : json_null());
    return o;
}

static json_t *json_alert_item(const gl_report_alert *a) {
    json_t *o = json_object();
    json_object_set_new(o, "account_id", jid(&a->account_id));
    json_object_set_new(o, "owner", jstr(a->owner));
    json_object_set_new(o, "account_kind", jstr(a->account_kind));
    json_object_set_new(o, "currency", jstr(a->currency));
    json_object_set_new(o, "count", json_integer(a->count));
    json_object_set_new(o, "total", jmoney(a->total, a->currency));
    json_object_set_new(o, "first_at", jts(a->first_at_us));
    json_object_set_new(o, "last_at", jts(a->last_at_us));
    return o;
}

/* The shape shared by the two list sections. */
static json_t *json_list(const gl_report *r, int64_t total, int n, json_t *items) {
    json_t *o = json_object();
    json_object_set_new(o, "configured", json_boolean(r->threshold > 0));
    json_object_set_new(o, "total", json_integer(total));
    json_object_set_new(o, "listed", json_integer(n));
    json_object_set_new(o, "truncated", json_boolean(total > n));
    json_object_set_new(o, "items", items);
    return o;
}

static json_t *json_large(const gl_report *r) {
    json_t *items = json_array();
    for (int i = 0; i < r->n_large; i++) json_array_append_new(items, json_large_item(&r->large[i]));
    return json_list(r, r->large_total, r->n_large, items);
}

static json_t *json_alerts(const gl_report *r) {
    json_t *items = json_array();
    for (int i = 0; i < r->n_alerts; i++) json_array_append_new(items, json_alert_item(&r->alerts[i]));
    return json_list(r, r->alerts_total, r->n_alerts, items);
}

static json_t *json_flows(const gl_report *r) {
    json_t *a = json_array();
    for (int i = 0; i < r->n_flows; i++) {
        const gl_report_flow *f = &r->flows[i];
        json_t *o = json_object();
        json_object_set_new(o, "counterparty_region", f->counterparty_region ? jstr(f->counterparty_region) : json_null());
        json_object_set_new(o, "currency", jstr(f->currency));
        json_object_set_new(o, "direction", jstr(f->direction));
        json_object_set_new(o, "count", json_integer(f->count));
        json_object_set_new(o, "amount", jmoney(f->amount, f->currency));
        json_array_append_new(a, o);
    }
    json_t *o = json_object();
    json_object_set_new(o, "flows", a);
    return o;
}

static json_t *json_partition_info(const gl_report *r) {
    json_t *o = json_object();
    json_object_set_new(o, "found", json_boolean(r->partition_found));
    json_object_set_new(o, "region_code", r->partition_found ? json_integer(r->partition_code) : json_null());
    json_object_set_new(o, "region_name", r->partition_found ? jstr(r->partition_name) : json_null());
    json_object_set_new(o, "matches", json_boolean(r->partition_found && r->partition_code == r->region_code &&
                                                   strcmp(r->partition_name, r->region_name) == 0));
    return o;
}

static json_t *json_residency(const gl_report *r) {
    json_t *tables = json_array(), *exceptions = json_array();
    for (int i = 0; i < GL_REPORT_RESIDENCY_TABLES; i++) {
        const gl_report_residency_table *t = &r->tables[i];
        json_array_append_new(tables, json_pack("{s:s,s:I,s:I}", "table", t->table, "rows_checked",
                                                (json_int_t)t->rows_checked, "exceptions", (json_int_t)t->exceptions));
    }
    for (int i = 0; i < r->n_exceptions; i++) {
        const gl_report_exception *x = &r->exceptions[i];
        json_t *o = json_object();
        json_object_set_new(o, "table", jstr(x->table));
        json_object_set_new(o, "row", jstr(x->row));
        json_object_set_new(o, "column", jstr(x->column));
        json_object_set_new(o, "value", jstr(x->value));
        json_object_set_new(o, "region_code", json_integer(x->region_code));
        json_array_append_new(exceptions, o);
    }
    json_t *o = json_object();
    json_object_set_new(o, "attestation", jstr(r->residency_pass ? "pass" : "fail"));
    json_object_set_new(o, "region_code", json_integer(r->region_code));
    json_object_set_new(o, "partition_info", json_partition_info(r));
    json_object_set_new(o, "tables", tables);
    json_object_set_new(o, "exceptions_total", json_integer(r->exceptions_total));
    json_object_set_new(o, "exceptions_truncated", json_boolean(r->exceptions_total > r->n_exceptions));
    json_object_set_new(o, "exceptions", exceptions);
    return o;
}

json_t *gl_report_json(const gl_report *r) {
    json_t *period = json_object();
    json_object_set_new(period, "from", jts(r->from_us));
    json_object_set_new(period, "to", jts(r->to_us));
    json_object_set_new(period, "days", json_integer(r->n_days));
    json_t *o = json_object();
    if (!o || !period) {
        json_decref(o);
        json_decref(period);
        return NULL;
    }
    json_object_set_new(o, "report", jstr("regional_compliance"));
    json_object_set_new(o, "format_version", json_integer(GL_REPORT_FORMAT_VERSION));
    json_object_set_new(o, "region", jstr(r->region_name));
    json_object_set_new(o, "region_code", json_integer(r->region_code));
    json_object_set_new(o, "period", period);
    json_object_set_new(o, "generated_at", jts(r->generated_at_us));
    json_object_set_new(o, "parameters", json_parameters(r));
    json_object_set_new(o, "volume", json_volume(r));
    json_object_set_new(o, "large_transactions", json_large(r));
    json_object_set_new(o, "structuring_alerts", json_alerts(r));
    json_object_set_new(o, "cross_border", json_flows(r));
    json_object_set_new(o, "residency", json_residency(r));
    return o;
}

static bool write_json(const gl_report *r, FILE *f, gl_error *err) {
    json_t *o = gl_report_json(r);
    if (!o) {
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory rendering the report");
        return false;
    }
    int rc = json_dumpf(o, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    fputc('\n', f);
    if (rc != 0) gl_error_set(err, GL_ERR_INTERNAL, "writing the JSON report failed");
    return rc == 0;
}

/* ---------------------------------------------------------------- CSV */

/* One rectangular table; each section fills the columns it needs (README). */
enum {
    C_SECTION, C_NAME, C_VALUE, C_DAY, C_CURRENCY, C_ACCOUNT_KIND, C_TYPE, C_COUNTERPARTY, C_COUNT,
    C_AMOUNT_MINOR, C_AMOUNT_DECIMAL, C_ROW_ID, C_CREATED_AT, C_DEBIT, C_CREDIT, C_OWNER, C_REFERENCE,
    C_FIRST_AT, C_LAST_AT, C_REGION_CODE, C_COLUMNS
};

static const char *const csv_header[C_COLUMNS] = {
    "section", "name", "value", "day", "currency", "account_kind", "type", "counterparty_region", "count",
    "amount_minor", "amount_decimal", "row_id", "created_at", "debit_account_id", "credit_account_id", "owner",
    "reference", "first_at", "last_at", "region_code",
};

/* Columns that can hold client-chosen text: guarded against spreadsheet formulas. */
static const bool csv_free_text[C_COLUMNS] = {
    [C_NAME] = true, [C_VALUE] = true, [C_COUNTERPARTY] = true, [C_OWNER] = true, [C_REFERENCE] = true,
};

typedef struct {
    const char *v[C_COLUMNS];
    char buf[C_COLUMNS][MONEY_LEN + 24]; /* numbers, ids, times, decimals formatted for this row */
} csv_row;

static void row_init(csv_row *row, const char *section) {
    memset(row->v, 0, sizeof row->v);
    row->v[C_SECTION] = section;
}

static void row_i64(csv_row *row, int col, int64_t v) {
    snprintf(row->buf[col], sizeof row->buf[col], "%lld", (long long)v);
    row->v[col] = row->buf[col];
}

static void row_ts(csv_row *row, int col, int64_t us) {
    gl_format_rfc3339_us(us, row->buf[col], sizeof row->buf[col]);
    row->v[col] = row->buf[col];
}

static void row_id(csv_row *row, int col, const gl_id *id) {
    gl_id_format(id, row->buf[col]);
    row->v[col] = row->buf[col];
}

static void row_money(csv_row *row, int64_t minor, const char *currency) {
    row_i64(row, C_AMOUNT_MINOR, minor);
    char dec[MONEY_LEN];
    if (money_decimal(minor, currency, dec)) {
        snprintf(row->buf[C_AMOUNT_DECIMAL], sizeof row->buf[C_AMOUNT_DECIMAL], "%s", dec);
        row->v[C_AMOUNT_DECIMAL] = row->buf[C_AMOUNT_DECIMAL];
    }
}

/* RFC 4180 quoting; a free-text field starting like a formula gets a leading
 * apostrophe (OWASP "CSV injection"), so a spreadsheet shows it as text. */
static void csv_field(FILE *f, const char *s, bool free_text) {
    if (!s) return;
    bool formula = free_text && s[0] && strchr("=+-@\t\r", s[0]) != NULL;
    bool quote = formula || strpbrk(s, ",\"\r\n") != NULL;
    if (!quote) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    if (formula) fputc('\'', f);
    for (const char *p = s; *p; p++) {
        if (*p == '"') fputc('"', f);
        fputc(*p, f);
    }
    fputc('"', f);
}

static void csv_write_row(FILE *f, const csv_row *row) {
    for (int i = 0; i < C_COLUMNS; i++) {
        if (i) fputc(',', f);
        csv_field(f, row->v[i], csv_free_text[i]);
    }
    fputs("\r\n", f);
}

static void csv_param(FILE *f, const char *name, const char *value) {
    csv_row row;
    row_init(&row, "parameter");
    row.v[C_NAME] = name;
    row.v[C_VALUE] = value;
    csv_write_row(f, &row);
}

static void csv_param_i64(FILE *f, const char *name, int64_t value) {
    char buf[24];
    snprintf(buf, sizeof buf, "%lld", (long long)value);
    csv_param(f, name, buf);
}

static void csv_param_ts(FILE *f, const char *name, int64_t us) {
    char ts[GL_REPORT_TS_LEN];
    format_ts(us, ts);
    csv_param(f, name, ts);
}

static void csv_parameters(FILE *f, const gl_report *r) {
    csv_param(f, "report", "regional_compliance");
    csv_param_i64(f, "format_version", GL_REPORT_FORMAT_VERSION);
    csv_param(f, "region", r->region_name);
    csv_param_i64(f, "region_code", r->region_code);
    csv_param_ts(f, "from", r->from_us);
    csv_param_ts(f, "to", r->to_us);
    csv_param_i64(f, "days", r->n_days);
    csv_param_ts(f, "generated_at", r->generated_at_us);
    csv_param_i64(f, "large_transaction_threshold", r->threshold);
    csv_param(f, "threshold_source", r->threshold_source);
    csv_param_i64(f, "structuring_min_count", r->structuring_count);
    csv_param_i64(f, "structuring_band_pct", r->structuring_band_pct);
    csv_param_i64(f, "structuring_band_from", r->band_from);
    csv_param_i64(f, "structuring_window_hours", GL_REPORT_STRUCTURING_WINDOW_HOURS);
    csv_param_i64(f, "max_rows", r->max_rows);
}

/* A volume row becomes one CSV row per type (volume, refund) that has transfers. */
static void csv_volume_rows(FILE *f, const char *section, const gl_report_volume *v) {
    for (int refund = 0; refund <= 1; refund++) {
        int64_t count = refund ? v->refund_count : v->count;
        if (count == 0) continue;
        csv_row row;
        row_init(&row, section);
        row.v[C_DAY] = v->day[0] ? v->day : NULL;
        row.v[C_CURRENCY] = v->currency;
        row.v[C_ACCOUNT_KIND] = v->account_kind[0] ? v->account_kind : NULL;
        row.v[C_TYPE] = refund ? "refund" : "volume";
        row_i64(&row, C_COUNT, count);
        row_money(&row, refund ? v->refund_amount : v->amount, v->currency);
        csv_write_row(f, &row);
    }
}

static void csv_large(FILE *f, const gl_report_large *l) {
    csv_row row;
    row_init(&row, "large_transaction");
    row_id(&row, C_ROW_ID, &l->id);
    row_ts(&row, C_CREATED_AT, l->created_at_us);
    row.v[C_TYPE] = gl_report_transfer_type(l->flags);
    row.v[C_CURRENCY] = l->currency;
    row_money(&row, l->amount, l->currency);
    row_id(&row, C_DEBIT, &l->debit_account_id);
    row_id(&row, C_CREDIT, &l->credit_account_id);
    row.v[C_OWNER] = l->debit_owner;
    row.v[C_ACCOUNT_KIND] = l->debit_kind;
    row.v[C_REFERENCE] = l->reference[0] ? l->reference : NULL;
    csv_write_row(f, &row);
}

static void csv_alert(FILE *f, const gl_report_alert *a) {
    csv_row row;
    row_init(&row, "structuring_alert");
    row_id(&row, C_ROW_ID, &a->account_id);
    row.v[C_OWNER] = a->owner;
    row.v[C_ACCOUNT_KIND] = a->account_kind;
    row.v[C_CURRENCY] = a->currency;
    row_i64(&row, C_COUNT, a->count);
    row_money(&row, a->total, a->currency);
    row_ts(&row, C_FIRST_AT, a->first_at_us);
    row_ts(&row, C_LAST_AT, a->last_at_us);
    csv_write_row(f, &row);
}

static void csv_flow(FILE *f, const gl_report_flow *fl) {
    csv_row row;
    row_init(&row, "cross_border");
    row.v[C_COUNTERPARTY] = fl->counterparty_region;
    row.v[C_CURRENCY] = fl->currency;
    row.v[C_TYPE] = fl->direction;
    row_i64(&row, C_COUNT, fl->count);
    row_money(&row, fl->amount, fl->currency);
    csv_write_row(f, &row);
}

static void csv_residency(FILE *f, const gl_report *r) {
    for (int i = 0; i < GL_REPORT_RESIDENCY_TABLES; i++) {
        csv_row row;
        row_init(&row, "residency_table");
        row.v[C_NAME] = r->tables[i].table;
        row_i64(&row, C_COUNT, r->tables[i].rows_checked);
        row_i64(&row, C_VALUE, r->tables[i].exceptions);
        csv_write_row(f, &row);
    }
    for (int i = 0; i < r->n_exceptions; i++) {
        const gl_report_exception *x = &r->exceptions[i];
        csv_row row;
        row_init(&row, "residency_exception");
        row.v[C_NAME] = x->table;
        row.v[C_TYPE] = x->column;
        row.v[C_ROW_ID] = x->row;
        row.v[C_VALUE] = x->value;
        row_i64(&row, C_REGION_CODE, x->region_code);
        csv_write_row(f, &row);
    }
}

static void csv_summary(FILE *f, const gl_report *r) {
    static const char section[] = "summary";
    struct {
        const char *name;
        int64_t value;
    } counts[] = {
        {"large_transactions_total", r->large_total}, {"large_transactions_listed", r->n_large},
        {"structuring_alerts_total", r->alerts_total}, {"structuring_alerts_listed", r->n_alerts},
        {"residency_exceptions_total", r->exceptions_total}, {"residency_exceptions_listed", r->n_exceptions},
    };
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        csv_row row;
        row_init(&row, section);
        row.v[C_NAME] = counts[i].name;
        row_i64(&row, C_VALUE, counts[i].value);
        csv_write_row(f, &row);
    }
    csv_row row;
    row_init(&row, section);
    row.v[C_NAME] = "residency_attestation";
    row.v[C_VALUE] = r->residency_pass ? "pass" : "fail";
    csv_write_row(f, &row);
}

static bool write_csv(const gl_report *r, FILE *f) {
    csv_row header;
    memset(&header, 0, sizeof header);
    for (int i = 0; i < C_COLUMNS; i++) header.v[i] = csv_header[i];
    csv_write_row(f, &header);
    csv_parameters(f, r);
    csv_summary(f, r);
    for (int i = 0; i < r->n_volume; i++) csv_volume_rows(f, "daily_volume", &r->volume[i]);
    for (int i = 0; i < r->n_daily; i++) csv_volume_rows(f, "day_total", &r->daily[i]);
    for (int i = 0; i < r->n_totals; i++) csv_volume_rows(f, "period_total", &r->totals[i]);
    for (int i = 0; i < r->n_large; i++) csv_large(f, &r->large[i]);
    for (int i = 0; i < r->n_alerts; i++) csv_alert(f, &r->alerts[i]);
    for (int i = 0; i < r->n_flows; i++) csv_flow(f, &r->flows[i]);
    csv_residency(f, r);
    return true;
}

/* ---------------------------------------------------------------- HTML */

/* Text for an HTML element or a quoted attribute. C0 controls (other than tab
 * and newlines) are not allowed in HTML: they become U+FFFD. */
static void html_text(FILE *f, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++) {
        switch (*p) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default:
            if ((*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r') || *p == 0x7f) fputs("&#xFFFD;", f);
            else fputc(*p, f);
        }
    }
}

static void html_cell(FILE *f, const char *s) {
    fputs("<td>", f);
    html_text(f, s);
    fputs("</td>", f);
}

static void html_cell_num(FILE *f, int64_t v) { fprintf(f, "<td class=\"n\">%lld</td>", (long long)v); }

static void html_cell_id(FILE *f, const gl_id *id) {
    char s[GL_ID_STR_LEN + 1];
    format_id(id, s);
    fprintf(f, "<td class=\"id\">%s</td>", s);
}

static void html_cell_ts(FILE *f, int64_t us) {
    char ts[GL_REPORT_TS_LEN];
    format_ts(us, ts);
    fprintf(f, "<td class=\"ts\">%s</td>", ts);
}

/* Two cells: the decimal amount with its currency, and the integer minor units. */
static void html_cells_money(FILE *f, int64_t minor, const char *currency) {
    char dec[MONEY_LEN];
    fputs("<td class=\"n\">", f);
    if (money_decimal(minor, currency, dec)) html_text(f, dec);
    else fputs("n/a", f);
    fputs(" ", f);
    html_text(f, currency);
    fprintf(f, "</td><td class=\"n minor\">%lld</td>", (long long)minor);
}

static void html_head_row(FILE *f, const char *const *names) {
    fputs("<thead><tr>", f);
    for (; *names; names++) fprintf(f, "<th>%s</th>", *names);
    fputs("</tr></thead>\n<tbody>\n", f);
}

static const char html_style[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem;color:#1d2430;background:#fff}"
    "h1{font-size:1.5rem;margin:0 0 .5rem}h2{font-size:1.15rem;margin:2rem 0 .5rem;border-bottom:1px solid #d0d6e0}"
    "table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}"
    "th,td{border:1px solid #d0d6e0;padding:.25rem .5rem;text-align:left;vertical-align:top}"
    "th{background:#eef1f6}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "td.id,td.ts{font-family:ui-monospace,monospace;font-size:.8rem}td.ts,td.n{white-space:nowrap}"
    "td.minor{color:#5a6474}"
    ".note{color:#5a6474;font-size:.85rem}.pass{color:#0b6b2e;font-weight:bold}.fail{color:#a4161a;font-weight:bold}"
    "dl{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem;font-size:.9rem}dt{font-weight:bold}"
    "svg{display:block;margin:.5rem 0}svg .bar{fill:#3465a4}svg .axis{stroke:#5a6474}"
    "svg text{font-size:11px;fill:#1d2430}";

static void html_begin(FILE *f, const gl_report *r) {
    char from[GL_REPORT_TS_LEN], to[GL_REPORT_TS_LEN];
    format_ts(r->from_us, from);
    format_ts(r->to_us, to);
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n", f);
    /* The page may load nothing at all: no script, no fetch, no font, no image. */
    fputs("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n", f);
    fputs("<title>Regional compliance report ", f);
    html_text(f, r->region_name);
    fprintf(f, " %s to %s</title>\n<style>%s</style>\n</head>\n<body>\n", from, to, html_style);
}

static void html_summary(FILE *f, const gl_report *r) {
    char from[GL_REPORT_TS_LEN], to[GL_REPORT_TS_LEN], gen[GL_REPORT_TS_LEN];
    format_ts(r->from_us, from);
    format_ts(r->to_us, to);
    format_ts(r->generated_at_us, gen);
    fputs("<header id=\"summary\">\n<h1>Regional compliance report: ", f);
    html_text(f, r->region_name);
    fputs("</h1>\n<dl>\n<dt>Region</dt><dd>", f);
    html_text(f, r->region_name);
    fprintf(f, " (code %d)</dd>\n<dt>Period</dt><dd>[%s, %s), %d UTC day(s)</dd>\n", r->region_code, from, to,
            r->n_days);
    fprintf(f, "<dt>Generated</dt><dd>%s (one database snapshot)</dd>\n", gen);
    if (r->threshold > 0)
        fprintf(f, "<dt>Large-transaction threshold</dt><dd>%lld minor units, any currency (%s)</dd>\n",
                (long long)r->threshold, r->threshold_source);
    else fputs("<dt>Large-transaction threshold</dt><dd>not configured</dd>\n", f);
    fprintf(f, "<dt>Residency attestation</dt><dd class=\"%s\">%s</dd>\n</dl>\n</header>\n",
            r->residency_pass ? "pass" : "fail", r->residency_pass ? "PASS" : "FAIL");
}

/* Chart geometry, in SVG user units (pixels). */
#define CHART_W 960
#define CHART_LEFT 110
#define CHART_RIGHT 20
#define CHART_TOP 20
#define CHART_PLOT_H 180
#define CHART_H (CHART_TOP + CHART_PLOT_H + 40)
#define CHART_BAR_MAX_W 40

/* Bar height for `value` on an axis whose top is `max`, `px` high: integers
 * only, never overflowing (value <= max). A non-zero value gets at least 1. */
static int64_t bar_height(int64_t value, int64_t max, int64_t px) {
    if (value <= 0 || max <= 0) return 0;
    int64_t h = max <= INT64_MAX / px ? value * px / max : value / (max / px);
    if (h > px) h = px;
    return h < 1 ? 1 : h;
}

static void html_chart_bar(FILE *f, const gl_report_volume *d, int64_t max, int bar_w) {
    int64_t h = bar_height(d->amount, max, CHART_PLOT_H);
    int x = CHART_LEFT + d->day_index * bar_w;
    char dec[MONEY_LEN];
    if (!money_decimal(d->amount, d->currency, dec)) snprintf(dec, sizeof dec, "%lld minor units", (long long)d->amount);
    fprintf(f, "<rect class=\"bar\" x=\"%d\" y=\"%lld\" width=\"%d\" height=\"%lld\"><title>", x,
            (long long)(CHART_TOP + CHART_PLOT_H - h), bar_w > 2 ? bar_w - 1 : bar_w, (long long)h);
    html_text(f, d->day);
    fputs(": ", f);
    html_text(f, dec);
    fputs(" ", f);
    html_text(f, d->currency);
    fprintf(f, " (%lld transfers)</title></rect>\n", (long long)d->count);
}

/* One bar chart per currency: the day's volume (all account kinds). */
static void html_chart(FILE *f, const gl_report *r, const char *currency) {
    int64_t max = 0;
    for (int i = 0; i < r->n_daily; i++)
        if (strcmp(r->daily[i].currency, currency) == 0 && r->daily[i].amount > max) max = r->daily[i].amount;
    int bar_w = (CHART_W - CHART_LEFT - CHART_RIGHT) / (r->n_days > 0 ? r->n_days : 1);
    if (bar_w > CHART_BAR_MAX_W) bar_w = CHART_BAR_MAX_W;
    if (bar_w < 1) bar_w = 1;
    char top[MONEY_LEN], first[GL_REPORT_DAY_LEN], last[GL_REPORT_DAY_LEN];
    if (!money_decimal(max, currency, top)) snprintf(top, sizeof top, "%lld", (long long)max);
    gl_report_format_day(r->from_us, first);
    gl_report_format_day(r->to_us - 1, last);
    /* Inline SVG in HTML needs no xmlns: the page holds no URL at all. */
    fprintf(f, "<svg width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\""
               " aria-label=\"daily volume ", CHART_W, CHART_H, CHART_W, CHART_H);
    html_text(f, currency);
    fputs("\">\n<text x=\"4\" y=\"32\">", f);
    html_text(f, top);
    fputs(" ", f);
    html_text(f, currency);
    fprintf(f, "</text>\n<text x=\"4\" y=\"%d\">0</text>\n", CHART_TOP + CHART_PLOT_H);
    fprintf(f, "<line class=\"axis\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>\n", CHART_LEFT, CHART_TOP + CHART_PLOT_H,
            CHART_LEFT + r->n_days * bar_w, CHART_TOP + CHART_PLOT_H);
    for (int i = 0; i < r->n_daily; i++)
        if (strcmp(r->daily[i].currency, currency) == 0) html_chart_bar(f, &r->daily[i], max, bar_w);
    fprintf(f, "<text x=\"%d\" y=\"%d\">%s</text>\n", CHART_LEFT, CHART_H - 12, first);
    if (r->n_days > 1)
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", CHART_LEFT + r->n_days * bar_w,
                CHART_H - 12, last);
    fputs("</svg>\n", f);
}

static void html_volume_table(FILE *f, const gl_report_volume *rows, int n, bool with_day, bool with_kind) {
    static const char *const all[] = {"Day", "Currency", "Debit account kind", "Transfers", "Volume",
                                      "Minor units", "Refunds", "Refunded", "Minor units", NULL};
    static const char *const totals[] = {"Currency", "Transfers", "Volume", "Minor units",
                                         "Refunds", "Refunded", "Minor units", NULL};
    fputs("<table>\n", f);
    html_head_row(f, with_day ? all : totals);
    for (int i = 0; i < n; i++) {
        const gl_report_volume *v = &rows[i];
        fputs("<tr>", f);
        if (with_day) html_cell(f, v->day);
        html_cell(f, v->currency);
        if (with_kind) html_cell(f, v->account_kind);
        html_cell_num(f, v->count);
        html_cells_money(f, v->amount, v->currency);
        html_cell_num(f, v->refund_count);
        html_cells_money(f, v->refund_amount, v->currency);
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table>\n", f);
}

static void html_volume(FILE *f, const gl_report *r) {
    fputs("<section id=\"daily-volume\">\n<h2>Daily volume</h2>\n<p class=\"note\">Plain transfers and captured "
          "holds (posts), by UTC day, currency and the debit account's kind; holds not captured, voids and "
          "expiries move nothing and are not counted; reversals are counted apart as refunds.</p>\n",
          f);
    if (r->n_totals == 0) fputs("<p>No transfers in the period.</p>\n", f);
    for (int i = 0; i < r->n_totals; i++) html_chart(f, r, r->totals[i].currency);
    if (r->n_totals > 0) {
        fputs("<h3>Period totals</h3>\n", f);
        html_volume_table(f, r->totals, r->n_totals, false, false);
        fputs("<h3>By day and account kind</h3>\n", f);
        html_volume_table(f, r->volume, r->n_volume, true, true);
    }
    fputs("</section>\n", f);
}

static void html_listed(FILE *f, int64_t total, int n) {
    fprintf(f, "<p class=\"note\">%lld in the period", (long long)total);
    if (total > n) fprintf(f, "; the first %d are listed (raise --max-rows for more)", n);
    fputs(".</p>\n", f);
}

static void html_large(FILE *f, const gl_report *r) {
    static const char *const head[] = {"Created", "Type", "Amount", "Minor units", "Transfer", "Debit account",
                                       "Debit owner", "Debit kind", "Credit account", "Credit kind", "Reference",
                                       NULL};
    fputs("<section id=\"large-transactions\">\n<h2>Large transactions</h2>\n", f);
    if (r->threshold <= 0) {
        fputs("<p>Not configured: the region has no large_transaction_threshold (ledger.conf) and no "
              "--threshold was given.</p>\n</section>\n",
              f);
        return;
    }
    fprintf(f, "<p class=\"note\">Transfers, posts and reversals of at least %lld minor units, in any currency.</p>\n",
            (long long)r->threshold);
    html_listed(f, r->large_total, r->n_large);
    fputs("<table>\n", f);
    html_head_row(f, head);
    for (int i = 0; i < r->n_large; i++) {
        const gl_report_large *l = &r->large[i];
        fputs("<tr>", f);
        html_cell_ts(f, l->created_at_us);
        html_cell(f, gl_report_transfer_type(l->flags));
        html_cells_money(f, l->amount, l->currency);
        html_cell_id(f, &l->id);
        html_cell_id(f, &l->debit_account_id);
        html_cell(f, l->debit_owner);
        html_cell(f, l->debit_kind);
        html_cell_id(f, &l->credit_account_id);
        html_cell(f, l->credit_kind);
        html_cell(f, l->reference);
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table>\n</section>\n", f);
}

static void html_alerts(FILE *f, const gl_report *r) {
    static const char *const head[] = {"Account", "Owner", "Kind", "Transfers", "Total", "Minor units",
                                       "First", "Last", NULL};
    fputs("<section id=\"structuring-alerts\">\n<h2>Structuring alerts</h2>\n", f);
    if (r->threshold <= 0) {
        fputs("<p>Not configured: there is no large-transaction threshold to compare with.</p>\n</section>\n", f);
        return;
    }
    fprintf(f, "<p class=\"note\">Debit accounts with %d or more transfers of [%lld, %lld) minor units within %d "
               "hours; each row is the account's densest such window.</p>\n",
            r->structuring_count, (long long)r->band_from, (long long)r->threshold,
            GL_REPORT_STRUCTURING_WINDOW_HOURS);
    html_listed(f, r->alerts_total, r->n_alerts);
    fputs("<table>\n", f);
    html_head_row(f, head);
    for (int i = 0; i < r->n_alerts; i++) {
        const gl_report_alert *a = &r->alerts[i];
        fputs("<tr>", f);
        html_cell_id(f, &a->account_id);
        html_cell(f, a->owner);
        html_cell(f, a->account_kind);
        html_cell_num(f, a->count);
        html_cells_money(f, a->total, a->currency);
        html_cell_ts(f, a->first_at_us);
        html_cell_ts(f, a->last_at_us);
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table>\n</section>\n", f);
}

static void html_flows(FILE *f, const gl_report *r) {
    static const char *const head[] = {"Counterparty region", "Currency", "Direction", "Transfers", "Amount",
                                       "Minor units", NULL};
    fputs("<section id=\"cross-border\">\n<h2>Cross-border flows</h2>\n<p class=\"note\">Aggregates only. out: "
          "credits to due_to accounts; in: debits of due_from accounts; *_reversed: their reversals. The "
          "counterparty is the account's metadata.counterparty_region.</p>\n",
          f);
    if (r->n_flows == 0) {
        fputs("<p>No cross-border flows in the period.</p>\n</section>\n", f);
        return;
    }
    fputs("<table>\n", f);
    html_head_row(f, head);
    for (int i = 0; i < r->n_flows; i++) {
        const gl_report_flow *fl = &r->flows[i];
        fputs("<tr>", f);
        html_cell(f, fl->counterparty_region ? fl->counterparty_region : "(not set)");
        html_cell(f, fl->currency);
        html_cell(f, fl->direction);
        html_cell_num(f, fl->count);
        html_cells_money(f, fl->amount, fl->currency);
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table>\n</section>\n", f);
}

static void html_residency(FILE *f, const gl_report *r) {
    static const char *const tables_head[] = {"Table", "Rows checked", "Exceptions", NULL};
    static const char *const ex_head[] = {"Table", "Row", "Column", "Value", "Region code", NULL};
    fprintf(f, "<section id=\"residency\">\n<h2>Residency attestation</h2>\n<p>Every row of the partition carries "
               "region code %d: <span class=\"%s\">%s</span>. ",
            r->region_code, r->residency_pass ? "pass" : "fail", r->residency_pass ? "PASS" : "FAIL");
    if (r->partition_found) {
        fprintf(f, "partition_info says code %d, name ", r->partition_code);
        html_text(f, r->partition_name);
        fputs(".</p>\n", f);
    } else {
        fputs("partition_info is missing.</p>\n", f);
    }
    fputs("<table>\n", f);
    html_head_row(f, tables_head);
    for (int i = 0; i < GL_REPORT_RESIDENCY_TABLES; i++) {
        fputs("<tr>", f);
        html_cell(f, r->tables[i].table);
        html_cell_num(f, r->tables[i].rows_checked);
        html_cell_num(f, r->tables[i].exceptions);
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table>\n", f);
    if (r->exceptions_total == 0) {
        fputs("</section>\n", f);
        return;
    }
    fprintf(f, "<p class=\"fail\">%lld exception(s)%s.</p>\n<table id=\"residency-exceptions\">\n",
            (long long)r->exceptions_total, r->exceptions_total > r->n_exceptions ? ", the first ones listed" : "");
    html_head_row(f, ex_head);
    for (int i = 0; i < r->n_exceptions; i++) {
        const gl_report_exception *x = &r->exceptions[i];
        fputs("<tr>", f);
        html_cell(f, x->table);
        html_cell(f, x->row);
        html_cell(f, x->column);
        html_cell(f, x->value);
        html_cell_num(f, x->region_code);
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table>\n</section>\n", f);
}

static bool write_html(const gl_report *r, FILE *f) {
    html_begin(f, r);
    html_summary(f, r);
    html_volume(f, r);
    html_large(f, r);
    html_alerts(f, r);
    html_flows(f, r);
    html_residency(f, r);
    fputs("</body>\n</html>\n", f);
    return true;
}

/* ---------------------------------------------------------------- entry point */

bool gl_report_write(const gl_report *r, gl_report_format format, FILE *f, gl_error *err) {
    bool ok = format == GL_REPORT_JSON  ? write_json(r, f, err)
              : format == GL_REPORT_CSV ? write_csv(r, f)
                                        : write_html(r, f);
    if (!ok) return false;
    /* stdio errors are sticky: one check after everything was written. */
    if (fflush(f) != 0 || ferror(f)) {
        gl_error_set(err, GL_ERR_INTERNAL, "writing the report failed: %s", strerror(errno));
        return false;
    }
    return true;
}
