/*
 * settlement.c — PSP settlement files to gl_settlement_lines (settlement.h);
 * the formats and every rule applied to them are in reconciliation/FORMATS.md.
 *
 * Reading order: column tables of the three sources, field helpers (text,
 * currency, amounts, times), one row-to-line function per source, then the
 * loop (header, rows, blank lines) in gl_settlement_read.
 *
 * The PAN guard runs on every field of a row (header included) right after
 * the CSV reader cut it, before any other code looks at it; error reasons are
 * built from constant text and our own column names only, never from a field.
 */
#include "settlement.h"

#include <string.h>

#include "../ledger/currency.h"
#include "../ledger/money.h"
#include "csv.h"
#include "decimal.h"

#define REASON_MAX 384 /* "column \"<our name>\": " + a gl_error message */
#define US_PER_S INT64_C(1000000)

/* ---------- columns ---------- */

typedef struct {
    const char *name; /* as in the file's header; matched ignoring ASCII case and surrounding blanks */
    bool required;
} column_spec;

enum {
    STRIPE_BALANCE_TRANSACTION_ID,
    STRIPE_REPORTING_CATEGORY,
    STRIPE_CURRENCY,
    STRIPE_GROSS,
    STRIPE_FEE,
    STRIPE_NET,
    STRIPE_CHARGE_CREATED_UTC,
    STRIPE_CREATED_UTC,
    STRIPE_AVAILABLE_ON_UTC,
    STRIPE_PAYOUT_EFFECTIVE_AT_UTC,
    STRIPE_PAYOUT_EFFECTIVE_AT,
    STRIPE_REFERENCE,
    STRIPE_COLUMNS
};

static const column_spec stripe_columns[STRIPE_COLUMNS] = {
    [STRIPE_BALANCE_TRANSACTION_ID] = {"balance_transaction_id", true},
    [STRIPE_REPORTING_CATEGORY] = {"reporting_category", true},
    [STRIPE_CURRENCY] = {"currency", true},
    [STRIPE_GROSS] = {"gross", true},
    [STRIPE_FEE] = {"fee", true},
    [STRIPE_NET] = {"net", true},
    [STRIPE_CHARGE_CREATED_UTC] = {"charge_created_utc", false},
    [STRIPE_CREATED_UTC] = {"created_utc", false},
    [STRIPE_AVAILABLE_ON_UTC] = {"available_on_utc", false},
    [STRIPE_PAYOUT_EFFECTIVE_AT_UTC] = {"automatic_payout_effective_at_utc", false},
    [STRIPE_PAYOUT_EFFECTIVE_AT] = {"automatic_payout_effective_at", false},
    [STRIPE_REFERENCE] = {"payment_metadata[reference]", false},
};

enum {
    ADYEN_PSP_REFERENCE,
    ADYEN_MERCHANT_REFERENCE,
    ADYEN_TYPE,
    ADYEN_CREATION_DATE,
    ADYEN_TIMEZONE,
    ADYEN_GROSS_CURRENCY,
    ADYEN_GROSS_DEBIT,
    ADYEN_GROSS_CREDIT,
    ADYEN_NET_CURRENCY,
    ADYEN_NET_DEBIT,
    ADYEN_NET_CREDIT,
    ADYEN_COMMISSION,
    ADYEN_MARKUP,
    ADYEN_SCHEME_FEES,
    ADYEN_INTERCHANGE,
    ADYEN_COLUMNS
};

static const column_spec adyen_columns[ADYEN_COLUMNS] = {
    [ADYEN_PSP_REFERENCE] = {"Psp Reference", true},
    [ADYEN_MERCHANT_REFERENCE] = {"Merchant Reference", true},
    [ADYEN_TYPE] = {"Type", true},
    [ADYEN_CREATION_DATE] = {"Creation Date", true},
    [ADYEN_TIMEZONE] = {"TimeZone", false},
    [ADYEN_GROSS_CURRENCY] = {"Gross Currency", true},
    [ADYEN_GROSS_DEBIT] = {"Gross Debit (GC)", false},
    [ADYEN_GROSS_CREDIT] = {"Gross Credit (GC)", false},
    [ADYEN_NET_CURRENCY] = {"Net Currency", false},
    [ADYEN_NET_DEBIT] = {"Net Debit (NC)", false},
    [ADYEN_NET_CREDIT] = {"Net Credit (NC)", false},
    [ADYEN_COMMISSION] = {"Commission (NC)", false},
    [ADYEN_MARKUP] = {"Markup (NC)", false},
    [ADYEN_SCHEME_FEES] = {"Scheme Fees (NC)", false},
    [ADYEN_INTERCHANGE] = {"Interchange (NC)", false},
};

enum {
    GENERIC_REFERENCE,
    GENERIC_PSP_ID,
    GENERIC_TYPE,
    GENERIC_CURRENCY,
    GENERIC_GROSS,
    GENERIC_FEE,
    GENERIC_NET,
    GENERIC_CREATED_AT,
    GENERIC_SETTLED_AT,
    GENERIC_COLUMNS
};

static const column_spec generic_columns[GENERIC_COLUMNS] = {
    [GENERIC_REFERENCE] = {"reference", true}, [GENERIC_PSP_ID] = {"psp_id", true},
    [GENERIC_TYPE] = {"type", true},           [GENERIC_CURRENCY] = {"currency", true},
    [GENERIC_GROSS] = {"gross", true},         [GENERIC_FEE] = {"fee", true},
    [GENERIC_NET] = {"net", true},             [GENERIC_CREATED_AT] = {"created_at", true},
    [GENERIC_SETTLED_AT] = {"settled_at", false},
};

#define COLUMNS_MAX ADYEN_COLUMNS /* the largest table */

/* A data row seen through the header: logical column -> field. */
typedef struct {
    const gl_csv_record *rec;
    const column_spec *spec;
    const int *col; /* field index, or -1 when the file lacks the column */
    const gl_currency **last_currency; /* a file is nearly always in one currency: skip the lookup */
} row_view;

typedef bool (*header_check_fn)(const int *col, gl_error *err);
typedef bool (*row_to_line_fn)(const row_view *row, gl_settlement_line *line, char *reason);

typedef struct {
    const char *name;
    const column_spec *columns;
    int n_columns;
    header_check_fn check_header; /* "one of these columns" rules */
    row_to_line_fn to_line;
} source_desc;

/* ---------- reasons (never quote a field: name the column) ---------- */

static bool reject(char *reason, const char *what) {
    snprintf(reason, REASON_MAX, "%s", what);
    return false;
}

static bool reject_column(char *reason, const row_view *row, int c, const char *what) {
    snprintf(reason, REASON_MAX, "column \"%s\": %s", row->spec[c].name, what);
    return false;
}

/* ---------- field helpers ---------- */

/* The field of logical column c; NULL when the file has no such column. */
static const gl_csv_field *cell(const row_view *row, int c) {
    return row->col[c] < 0 ? NULL : &row->rec->fields[row->col[c]];
}

static bool cell_filled(const row_view *row, int c) {
    const gl_csv_field *f = cell(row, c);
    return f != NULL && f->len > 0;
}

/* The first of two columns that has a value, or -1. */
static int first_filled(const row_view *row, int a, int b) {
    if (cell_filled(row, a)) return a;
    if (cell_filled(row, b)) return b;
    return -1;
}

static bool has_control_char(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F) return true;
    }
    return false;
}

/* Copies an identifier (reference, psp id) into dst (max bytes + NUL). An
 * absent column or an empty field gives "" and is an error only if required. */
static bool take_text(const row_view *row, int c, char *dst, size_t max, bool required, char *reason) {
    const gl_csv_field *f = cell(row, c);
    dst[0] = '\0';
    if (f == NULL || f->len == 0) return required ? reject_column(reason, row, c, "empty") : true;
    if (f->len > max) {
        snprintf(reason, REASON_MAX, "column \"%s\": longer than %zu bytes", row->spec[c].name, max);
        return false;
    }
    if (has_control_char(f->ptr, f->len)) return reject_column(reason, row, c, "control character");
    memcpy(dst, f->ptr, f->len);
    dst[f->len] = '\0';
    return true;
}

/* The row type, lower case ("Settled" -> "settled"). */
static bool take_type(const row_view *row, int c, char *dst, char *reason) {
    if (!take_text(row, c, dst, GL_SETTLEMENT_TYPE_MAX, true, reason)) return false;
    for (char *p = dst; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    return true;
}

/* Three ASCII letters in any case ("usd" in Stripe files), known to the ledger. */
static bool take_currency(const row_view *row, int c, const gl_currency **cur, char *reason) {
    const gl_csv_field *f = cell(row, c);
    if (f == NULL || f->len == 0) return reject_column(reason, row, c, "empty");
    char code[4] = {0};
    bool letters = f->len == 3;
    for (size_t i = 0; letters && i < 3; i++) {
        char ch = f->ptr[i];
        if (ch >= 'a' && ch <= 'z') ch = (char)(ch - 'a' + 'A');
        letters = ch >= 'A' && ch <= 'Z';
        code[i] = ch;
    }
    const gl_currency *last = *row->last_currency;
    if (letters && last && memcmp(last->code, code, 3) == 0) {
        *cur = last;
        return true;
    }
    *cur = letters ? gl_currency_find(code) : NULL;
    if (*cur) *row->last_currency = *cur;
    if (*cur == NULL) return reject_column(reason, row, c, "unknown currency");
    return true;
}

/* An amount in major units; *present false (and *minor 0) for an empty field. */
static bool take_amount(const row_view *row, int c, int exponent, int64_t *minor, bool *present, char *reason) {
    const gl_csv_field *f = cell(row, c);
    *minor = 0;
    *present = f != NULL && f->len > 0;
    if (!*present) return true;
    gl_error e;
    gl_error_clear(&e);
    if (!gl_decimal_to_minor(f->ptr, f->len, exponent, minor, &e)) return reject_column(reason, row, c, e.message);
    return true;
}

static bool take_required_amount(const row_view *row, int c, int exponent, int64_t *minor, char *reason) {
    bool present;
    if (!take_amount(row, c, exponent, minor, &present, reason)) return false;
    return present ? true : reject_column(reason, row, c, "empty");
}

static bool check_net(int64_t gross, int64_t fee, int64_t net, char *reason) {
    int64_t expected;
    if (!gl_money_sub(gross, fee, &expected)) return reject(reason, "gross - fee is out of range");
    if (expected != net) return reject(reason, "net != gross - fee");
    return true;
}

/* ---------- times ---------- */

typedef enum { ZONE_FORBIDDEN, ZONE_OPTIONAL, ZONE_REQUIRED } zone_rule;

typedef struct {
    bool date_only_ok; /* "2026-11-20" = midnight */
    zone_rule zone;    /* a "Z" / "+01:00" suffix */
    const char *expected; /* for the error reason */
} time_rules;

static const time_rules stripe_times = {true, ZONE_OPTIONAL, "not a time (expected YYYY-MM-DD HH:MM:SS, UTC)"};
static const time_rules adyen_times = {false, ZONE_FORBIDDEN, "not a time (expected YYYY-MM-DD HH:MM:SS)"};
static const time_rules generic_times = {false, ZONE_REQUIRED,
                                         "not an RFC 3339 time (expected e.g. 2026-11-20T10:00:00Z)"};

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Exactly n digits at s[*i]. */
static bool read_digits(const char *s, size_t len, size_t *i, int n, int *out) {
    if (len - *i < (size_t)n) return false;
    int v = 0;
    for (int k = 0; k < n; k++) {
        char c = s[*i + (size_t)k];
        if (!is_digit(c)) return false;
        v = v * 10 + (c - '0');
    }
    *i += (size_t)n;
    *out = v;
    return true;
}

static bool expect_char(const char *s, size_t len, size_t *i, char c) {
    if (*i >= len || s[*i] != c) return false;
    (*i)++;
    return true;
}

static bool is_leap_year(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int y, int m) {
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap_year(y) ? 29 : days[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int y, int m, int d) {
    int64_t yy = y - (m <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* "+HH:MM" / "-HH:MM" (RFC 3339), at most 14 hours. */
static bool read_rfc3339_offset(const char *s, size_t len, size_t *i, int32_t *offset_s) {
    int sign = s[*i] == '-' ? -1 : 1;
    int h, m;
    (*i)++;
    if (!read_digits(s, len, i, 2, &h) || !expect_char(s, len, i, ':') || !read_digits(s, len, i, 2, &m))
        return false;
    if (h > 14 || m > 59 || (h == 14 && m > 0)) return false;
    *offset_s = sign * (h * 3600 + m * 60);
    return true;
}

/* Up to 9 fraction digits after the '.'; the first 6 are kept (µs). */
static bool read_fraction_us(const char *s, size_t len, size_t *i, int64_t *us) {
    size_t n = 0;
    *us = 0;
    while (*i < len && is_digit(s[*i])) {
        if (n < 6) *us = *us * 10 + (s[*i] - '0');
        n++;
        (*i)++;
    }
    if (n == 0 || n > 9) return false;
    for (size_t k = n; k < 6; k++) *us *= 10;
    return true;
}

/*
 * YYYY-MM-DD[( |T)HH:MM:SS[.frac]][Z|±HH:MM] as µs since the epoch. A time
 * without a zone is taken at `default_offset_s` east of UTC. Leap seconds
 * (":60") are refused: no PSP file has them and the ledger cannot store them.
 */
static bool parse_time(const char *s, size_t len, const time_rules *rules, int32_t default_offset_s,
                       int64_t *out_us) {
    size_t i = 0;
    int y, mo, d, h = 0, mi = 0, sec = 0;
    int64_t frac_us = 0;
    if (!read_digits(s, len, &i, 4, &y) || !expect_char(s, len, &i, '-') || !read_digits(s, len, &i, 2, &mo) ||
        !expect_char(s, len, &i, '-') || !read_digits(s, len, &i, 2, &d))
        return false;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo)) return false;
    int32_t offset_s = default_offset_s;
    if (i == len) {
        if (!rules->date_only_ok) return false;
    } else {
        if (s[i] != ' ' && s[i] != 'T' && s[i] != 't') return false;
        i++;
        if (!read_digits(s, len, &i, 2, &h) || !expect_char(s, len, &i, ':') || !read_digits(s, len, &i, 2, &mi) ||
            !expect_char(s, len, &i, ':') || !read_digits(s, len, &i, 2, &sec))
            return false;
        if (h > 23 || mi > 59 || sec > 59) return false;
        if (i < len && s[i] == '.') {
            i++;
            if (!read_fraction_us(s, len, &i, &frac_us)) return false;
        }
        if (i < len) {
            if (rules->zone == ZONE_FORBIDDEN) return false;
            if (s[i] == 'Z' || s[i] == 'z') {
                offset_s = 0;
                i++;
            } else if (s[i] == '+' || s[i] == '-') {
                if (!read_rfc3339_offset(s, len, &i, &offset_s)) return false;
            } else {
                return false;
            }
        } else if (rules->zone == ZONE_REQUIRED) {
            return false;
        }
    }
    if (i != len) return false;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + sec - offset_s;
    *out_us = secs * US_PER_S + frac_us; /* years 1..9999: far from int64 limits */
    return true;
}

static bool take_time(const row_view *row, int c, const time_rules *rules, int32_t offset_s, int64_t *us,
                      char *reason) {
    const gl_csv_field *f = cell(row, c);
    if (f == NULL || f->len == 0) return reject_column(reason, row, c, "empty");
    if (!parse_time(f->ptr, f->len, rules, offset_s, us)) return reject_column(reason, row, c, rules->expected);
    return true;
}

/* ---------- Adyen's TimeZone column ---------- */

/*
 * Zone abbreviations with one fixed offset. Ambiguous ones (CST, IST, AST…)
 * are left out on purpose; BST is British Summer Time, as in Adyen's own
 * documentation. IANA names ("Europe/Amsterdam") are not supported: their
 * offset depends on the date and on tzdata, and the process-wide TZ
 * machinery (setenv + mktime) is not safe in a threaded library.
 */
static const struct {
    const char *name;
    int32_t offset_min;
} zone_abbreviations[] = {
    {"UTC", 0},      {"GMT", 0},      {"UT", 0},      {"Z", 0},      {"WET", 0},      {"WEST", 60},
    {"BST", 60},     {"CET", 60},     {"CEST", 120},  {"EET", 120},  {"EEST", 180},   {"MSK", 180},
    {"EST", -300},   {"EDT", -240},   {"CDT", -300},  {"MST", -420}, {"MDT", -360},   {"PST", -480},
    {"PDT", -420},   {"AKST", -540},  {"AKDT", -480}, {"HST", -600}, {"SGT", 480},    {"HKT", 480},
    {"JST", 540},    {"KST", 540},    {"AEST", 600},  {"AEDT", 660}, {"NZST", 720},   {"NZDT", 780},
};

static bool ascii_equal_nocase(const char *a, size_t a_len, const char *b) {
    size_t b_len = strlen(b);
    if (a_len != b_len) return false;
    for (size_t i = 0; i < a_len; i++) {
        char x = a[i], y = b[i];
        if (x >= 'a' && x <= 'z') x = (char)(x - 'a' + 'A');
        if (y >= 'a' && y <= 'z') y = (char)(y - 'a' + 'A');
        if (x != y) return false;
    }
    return true;
}

/* "+01:00", "+0100", "+01", "+1", "-05:30": a fixed offset east of UTC. */
static bool parse_fixed_offset(const char *s, size_t len, int32_t *offset_s) {
    if (len < 2 || (s[0] != '+' && s[0] != '-')) return false;
    int sign = s[0] == '-' ? -1 : 1;
    size_t n = 1;
    while (n < len && is_digit(s[n])) n++;
    n--; /* digits after the sign */
    size_t i = 1;
    int h = 0, m = 0;
    if (n == 4 && len == 5) { /* +HHMM */
        if (!read_digits(s, len, &i, 2, &h) || !read_digits(s, len, &i, 2, &m)) return false;
    } else if (n == 1 || n == 2) { /* +H, +HH, +H:MM, +HH:MM */
        if (!read_digits(s, len, &i, (int)n, &h)) return false;
        if (i < len && (!expect_char(s, len, &i, ':') || !read_digits(s, len, &i, 2, &m))) return false;
    } else {
        return false;
    }
    if (i != len || h > 14 || m > 59 || (h == 14 && m > 0)) return false;
    *offset_s = sign * (h * 3600 + m * 60);
    return true;
}

/* A TimeZone value: an abbreviation, a fixed offset, or "UTC"/"GMT" + offset
 * ("GMT+01:00" is one hour EAST of UTC, the display convention, not POSIX's). */
static bool parse_zone(const char *s, size_t len, int32_t *offset_s) {
    while (len > 0 && s[0] == ' ') s++, len--;
    while (len > 0 && s[len - 1] == ' ') len--;
    for (size_t k = 0; k < sizeof zone_abbreviations / sizeof zone_abbreviations[0]; k++) {
        if (ascii_equal_nocase(s, len, zone_abbreviations[k].name)) {
            *offset_s = zone_abbreviations[k].offset_min * 60;
            return true;
        }
    }
    if (len > 3 && (ascii_equal_nocase(s, 3, "UTC") || ascii_equal_nocase(s, 3, "GMT")))
        return parse_fixed_offset(s + 3, len - 3, offset_s);
    return parse_fixed_offset(s, len, offset_s);
}

/* ---------- Stripe ---------- */

static bool stripe_check_header(const int *col, gl_error *err) {
    if (col[STRIPE_CHARGE_CREATED_UTC] < 0 && col[STRIPE_CREATED_UTC] < 0) {
        gl_error_set(err, GL_ERR_INVALID, "missing required column \"charge_created_utc\" or \"created_utc\"");
        return false;
    }
    return true;
}

static bool stripe_to_line(const row_view *row, gl_settlement_line *line, char *reason) {
    const gl_currency *cur;
    if (!take_text(row, STRIPE_BALANCE_TRANSACTION_ID, line->psp_id, GL_SETTLEMENT_KEY_MAX, true, reason) ||
        !take_text(row, STRIPE_REFERENCE, line->reference, GL_SETTLEMENT_KEY_MAX, false, reason) ||
        !take_type(row, STRIPE_REPORTING_CATEGORY, line->type, reason) ||
        !take_currency(row, STRIPE_CURRENCY, &cur, reason))
        return false;
    memcpy(line->currency, cur->code, sizeof line->currency);
    if (!take_required_amount(row, STRIPE_GROSS, cur->exponent, &line->gross_minor, reason) ||
        !take_required_amount(row, STRIPE_FEE, cur->exponent, &line->fee_minor, reason) ||
        !take_required_amount(row, STRIPE_NET, cur->exponent, &line->net_minor, reason) ||
        !check_net(line->gross_minor, line->fee_minor, line->net_minor, reason))
        return false;

    int created = first_filled(row, STRIPE_CHARGE_CREATED_UTC, STRIPE_CREATED_UTC);
    if (created < 0) return reject(reason, "column \"charge_created_utc\" and \"created_utc\": empty");
    if (!take_time(row, created, &stripe_times, 0, &line->created_at_us, reason)) return false;

    int settled = first_filled(row, STRIPE_AVAILABLE_ON_UTC, STRIPE_PAYOUT_EFFECTIVE_AT_UTC);
    if (settled < 0 && cell_filled(row, STRIPE_PAYOUT_EFFECTIVE_AT)) settled = STRIPE_PAYOUT_EFFECTIVE_AT;
    line->settled_at_us = 0;
    if (settled >= 0 && !take_time(row, settled, &stripe_times, 0, &line->settled_at_us, reason)) return false;
    return true;
}

/* ---------- Adyen ---------- */

static bool adyen_check_header(const int *col, gl_error *err) {
    if (col[ADYEN_GROSS_DEBIT] < 0 && col[ADYEN_GROSS_CREDIT] < 0) {
        gl_error_set(err, GL_ERR_INVALID, "missing required column \"Gross Debit (GC)\" or \"Gross Credit (GC)\"");
        return false;
    }
    return true;
}

/* credit - debit of a pair of columns; *present when either has a value. */
static bool adyen_credit_minus_debit(const row_view *row, int credit_col, int debit_col, int exponent,
                                     int64_t *out, bool *present, char *reason) {
    int64_t credit, debit;
    bool has_credit, has_debit;
    if (!take_amount(row, credit_col, exponent, &credit, &has_credit, reason) ||
        !take_amount(row, debit_col, exponent, &debit, &has_debit, reason))
        return false;
    *present = has_credit || has_debit;
    if (!gl_money_sub(credit, debit, out)) return reject(reason, "credit - debit is out of range");
    return true;
}

/* Commission + Markup + Scheme Fees + Interchange, those that have a value. */
static bool adyen_fees(const row_view *row, int exponent, int64_t *fee, char *reason) {
    static const int fee_cols[] = {ADYEN_COMMISSION, ADYEN_MARKUP, ADYEN_SCHEME_FEES, ADYEN_INTERCHANGE};
    *fee = 0;
    for (size_t k = 0; k < sizeof fee_cols / sizeof fee_cols[0]; k++) {
        int64_t v;
        bool present;
        if (!take_amount(row, fee_cols[k], exponent, &v, &present, reason)) return false;
        if (!gl_money_add(*fee, v, fee)) return reject(reason, "the sum of the fees is out of range");
    }
    return true;
}

/*
 * The row's currency: Gross Currency; on rows with no gross amount (Fee,
 * MerchantPayout…) Adyen may leave it empty, and Net Currency is used.
 * Gross and net in two currencies would need the exchange rate to check
 * anything: refused rather than guessed.
 */
static bool adyen_currency(const row_view *row, const gl_currency **cur, char *reason) {
    const gl_currency *gross_cur = NULL, *net_cur = NULL;
    if (cell_filled(row, ADYEN_GROSS_CURRENCY) && !take_currency(row, ADYEN_GROSS_CURRENCY, &gross_cur, reason))
        return false;
    if (cell_filled(row, ADYEN_NET_CURRENCY) && !take_currency(row, ADYEN_NET_CURRENCY, &net_cur, reason))
        return false;
    if (gross_cur && net_cur && gross_cur != net_cur)
        return reject(reason, "net currency differs from gross currency: not supported");
    *cur = gross_cur ? gross_cur : net_cur;
    if (*cur == NULL) return reject(reason, "column \"Gross Currency\" and \"Net Currency\": empty");
    if (gross_cur == NULL && (cell_filled(row, ADYEN_GROSS_CREDIT) || cell_filled(row, ADYEN_GROSS_DEBIT)))
        return reject_column(reason, row, ADYEN_GROSS_CURRENCY, "empty on a row with a gross amount");
    return true;
}

/* The TimeZone column's offset; a file without the column is in UTC. */
static bool adyen_offset(const row_view *row, int32_t *offset_s, char *reason) {
    const gl_csv_field *f = cell(row, ADYEN_TIMEZONE);
    *offset_s = 0;
    if (f == NULL) return true;
    if (f->len == 0) return reject_column(reason, row, ADYEN_TIMEZONE, "empty (the creation time would be ambiguous)");
    if (!parse_zone(f->ptr, f->len, offset_s))
        return reject_column(reason, row, ADYEN_TIMEZONE,
                             "time zone not supported (use UTC, GMT, a fixed offset like +01:00, "
                             "or an unambiguous abbreviation such as CET/CEST)");
    return true;
}

static bool adyen_to_line(const row_view *row, gl_settlement_line *line, char *reason) {
    const gl_currency *cur;
    int32_t offset_s;
    if (!take_text(row, ADYEN_PSP_REFERENCE, line->psp_id, GL_SETTLEMENT_KEY_MAX, false, reason) ||
        !take_text(row, ADYEN_MERCHANT_REFERENCE, line->reference, GL_SETTLEMENT_KEY_MAX, false, reason) ||
        !take_type(row, ADYEN_TYPE, line->type, reason) || !adyen_currency(row, &cur, reason) ||
        !adyen_offset(row, &offset_s, reason))
        return false;
    memcpy(line->currency, cur->code, sizeof line->currency);

    bool has_gross, has_net;
    if (!adyen_credit_minus_debit(row, ADYEN_GROSS_CREDIT, ADYEN_GROSS_DEBIT, cur->exponent, &line->gross_minor,
                                  &has_gross, reason) ||
        !adyen_credit_minus_debit(row, ADYEN_NET_CREDIT, ADYEN_NET_DEBIT, cur->exponent, &line->net_minor, &has_net,
                                  reason) ||
        !adyen_fees(row, cur->exponent, &line->fee_minor, reason))
        return false;
    if (!has_gross && !has_net) return reject(reason, "no amount (gross and net debit/credit all empty)");
    if (has_gross && has_net && !check_net(line->gross_minor, line->fee_minor, line->net_minor, reason))
        return false;
    if (has_gross && !has_net && !gl_money_sub(line->gross_minor, line->fee_minor, &line->net_minor))
        return reject(reason, "gross - fee is out of range");

    if (!take_time(row, ADYEN_CREATION_DATE, &adyen_times, offset_s, &line->created_at_us, reason)) return false;
    line->settled_at_us = 0; /* the report has no per-row settlement time: the batch has one */
    return true;
}

/* ---------- generic ---------- */

static bool generic_to_line(const row_view *row, gl_settlement_line *line, char *reason) {
    const gl_currency *cur;
    if (!take_text(row, GENERIC_REFERENCE, line->reference, GL_SETTLEMENT_KEY_MAX, false, reason) ||
        !take_text(row, GENERIC_PSP_ID, line->psp_id, GL_SETTLEMENT_KEY_MAX, false, reason))
        return false;
    if (line->reference[0] == '\0' && line->psp_id[0] == '\0')
        return reject(reason, "column \"reference\" and \"psp_id\": both empty");
    if (!take_type(row, GENERIC_TYPE, line->type, reason) || !take_currency(row, GENERIC_CURRENCY, &cur, reason))
        return false;
    memcpy(line->currency, cur->code, sizeof line->currency);
    if (!take_required_amount(row, GENERIC_GROSS, cur->exponent, &line->gross_minor, reason) ||
        !take_required_amount(row, GENERIC_FEE, cur->exponent, &line->fee_minor, reason) ||
        !take_required_amount(row, GENERIC_NET, cur->exponent, &line->net_minor, reason) ||
        !check_net(line->gross_minor, line->fee_minor, line->net_minor, reason) ||
        !take_time(row, GENERIC_CREATED_AT, &generic_times, 0, &line->created_at_us, reason))
        return false;
    line->settled_at_us = 0;
    if (cell_filled(row, GENERIC_SETTLED_AT) &&
        !take_time(row, GENERIC_SETTLED_AT, &generic_times, 0, &line->settled_at_us, reason))
        return false;
    return true;
}

/* ---------- sources ---------- */

static const source_desc sources[] = {
    [GL_SOURCE_STRIPE] = {"stripe", stripe_columns, STRIPE_COLUMNS, stripe_check_header, stripe_to_line},
    [GL_SOURCE_ADYEN] = {"adyen", adyen_columns, ADYEN_COLUMNS, adyen_check_header, adyen_to_line},
    [GL_SOURCE_GENERIC] = {"generic", generic_columns, GENERIC_COLUMNS, NULL, generic_to_line},
};

static const source_desc *source_desc_of(gl_settlement_source s) {
    if ((int)s < 0 || (size_t)s >= sizeof sources / sizeof sources[0]) return NULL;
    return &sources[s];
}

bool gl_settlement_source_parse(const char *name, gl_settlement_source *out) {
    if (name == NULL || out == NULL) return false;
    for (size_t k = 0; k < sizeof sources / sizeof sources[0]; k++) {
        if (strcmp(name, sources[k].name) == 0) {
            *out = (gl_settlement_source)k;
            return true;
        }
    }
    return false;
}

const char *gl_settlement_source_name(gl_settlement_source s) {
    const source_desc *d = source_desc_of(s);
    return d ? d->name : "unknown";
}

/* ---------- the read loop ---------- */

typedef struct {
    const source_desc *src;
    const gl_pan_keyring *keys;
    gl_settlement_line_fn on_line;
    gl_settlement_error_fn on_error;
    void *arg;
    gl_settlement_stats *stats;
    int col[COLUMNS_MAX];
    size_t header_fields;
    uint64_t blank_first_line; /* a run of blank lines not yet known to be trailing */
    uint64_t blank_count;
    const gl_currency *last_currency;
} read_state;

/* The PAN guard over every field of a record; the first card goes to *card. */
static void mask_record(read_state *st, const gl_csv_record *rec, gl_pan_masked *card) {
    card->present = false;
    for (size_t j = 0; j < rec->n_fields; j++) {
        gl_csv_field *f = &rec->fields[j];
        if (f->len < GL_PAN_DIGITS_MIN) continue; /* cannot hold a PAN: the common case, no call */
        if (card->present) {
            st->stats->pans_masked += (uint64_t)gl_pan_mask_buf(f->ptr, f->len, st->keys, NULL);
        } else {
            st->stats->pans_masked += (uint64_t)gl_pan_mask_buf(f->ptr, f->len, st->keys, card);
        }
    }
}

static void report_bad(read_state *st, uint64_t line_no, const char *reason) {
    st->stats->rows++;
    st->stats->bad++;
    if (st->on_error) st->on_error(st->arg, line_no, reason);
}

/* Blank lines followed by a row are malformed rows; trailing ones are not rows. */
static void flush_blank_lines(read_state *st) {
    for (uint64_t k = 0; k < st->blank_count; k++) report_bad(st, st->blank_first_line + k, "blank line");
    st->blank_count = 0;
}

static bool header_name_equal(const gl_csv_field *f, const char *name) {
    const char *s = f->ptr;
    size_t len = f->len;
    while (len > 0 && (s[0] == ' ' || s[0] == '\t')) s++, len--;
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
    return ascii_equal_nocase(s, len, name);
}

static bool map_header(read_state *st, const gl_csv_record *rec, gl_error *err) {
    const source_desc *src = st->src;
    for (int c = 0; c < src->n_columns; c++) st->col[c] = -1;
    for (size_t j = 0; j < rec->n_fields; j++) {
        for (int c = 0; c < src->n_columns; c++) {
            if (!header_name_equal(&rec->fields[j], src->columns[c].name)) continue;
            if (st->col[c] >= 0) {
                gl_error_set(err, GL_ERR_INVALID, "%s file: duplicate column \"%s\" in the header", src->name,
                             src->columns[c].name);
                return false;
            }
            st->col[c] = (int)j;
        }
    }
    for (int c = 0; c < src->n_columns; c++) {
        if (src->columns[c].required && st->col[c] < 0) {
            gl_error_set(err, GL_ERR_INVALID, "%s file: missing required column \"%s\"", src->name,
                         src->columns[c].name);
            gl_error_hint(err, "is this a %s file? See reconciliation/FORMATS.md", src->name);
            return false;
        }
    }
    if (src->check_header && !src->check_header(st->col, err)) return false;
    st->header_fields = rec->n_fields;
    return true;
}

static bool read_header(read_state *st, gl_csv_reader *csv, gl_error *err) {
    gl_csv_record rec;
    gl_error csv_err;
    gl_error_clear(&csv_err);
    gl_csv_status s = gl_csv_next(csv, &rec, &csv_err);
    if (s == GL_CSV_END) {
        gl_error_set(err, GL_ERR_INVALID, "%s file: empty (no header line)", st->src->name);
        return false;
    }
    if (s != GL_CSV_RECORD) {
        gl_error_set(err, GL_ERR_INVALID, "%s file: unreadable header: %s", st->src->name, csv_err.message);
        return false;
    }
    gl_pan_masked card;
    mask_record(st, &rec, &card);
    if (rec.blank) {
        gl_error_set(err, GL_ERR_INVALID, "%s file: the first line is empty (expected the header)", st->src->name);
        return false;
    }
    return map_header(st, &rec, err);
}

/* One data row: PAN guard, then the source's mapping, then a callback. */
static bool handle_row(read_state *st, gl_csv_record *rec, gl_error *err) {
    gl_settlement_line line;
    memset(&line, 0, sizeof line);
    line.line_no = rec->line_no;
    mask_record(st, rec, &line.card);
    char reason[REASON_MAX];
    if (rec->n_fields != st->header_fields) {
        snprintf(reason, sizeof reason, "%zu fields, the header has %zu", rec->n_fields, st->header_fields);
        report_bad(st, rec->line_no, reason);
        return true;
    }
    row_view row = {rec, st->src->columns, st->col, &st->last_currency};
    if (!st->src->to_line(&row, &line, reason)) {
        report_bad(st, rec->line_no, reason);
        return true;
    }
    st->stats->rows++;
    st->stats->good++;
    if (!st->on_line(st->arg, &line, err)) {
        if (err && err->kind == GL_ERR_NONE)
            gl_error_set(err, GL_ERR_INVALID, "reading stopped by the caller at line %llu",
                         (unsigned long long)rec->line_no);
        return false;
    }
    return true;
}

static bool read_rows(read_state *st, gl_csv_reader *csv, gl_error *err) {
    for (;;) {
        gl_csv_record rec;
        gl_error csv_err;
        gl_error_clear(&csv_err);
        gl_csv_status s = gl_csv_next(csv, &rec, &csv_err);
        if (s == GL_CSV_END) return true; /* trailing blank lines are dropped */
        if (s == GL_CSV_ERROR) {
            gl_error_set(err, GL_ERR_INVALID, "%s file: %s", st->src->name, csv_err.message);
            return false;
        }
        if (s == GL_CSV_RECORD && rec.blank) {
            if (st->blank_count == 0) st->blank_first_line = rec.line_no;
            st->blank_count++;
            continue;
        }
        flush_blank_lines(st);
        if (s == GL_CSV_BAD_RECORD) {
            report_bad(st, rec.line_no, csv_err.message);
        } else if (!handle_row(st, &rec, err)) {
            return false;
        }
    }
}

bool gl_settlement_read(FILE *f, gl_settlement_source source, const gl_pan_keyring *pan_keys,
                        gl_settlement_line_fn on_line, gl_settlement_error_fn on_error, void *arg,
                        gl_settlement_stats *stats, gl_error *err) {
    gl_error_clear(err);
    gl_settlement_stats local_stats;
    if (stats == NULL) stats = &local_stats;
    memset(stats, 0, sizeof *stats);
    const source_desc *src = source_desc_of(source);
    if (f == NULL || on_line == NULL || src == NULL) {
        gl_error_set(err, GL_ERR_INVALID, "settlement read: bad arguments");
        return false;
    }
    gl_csv_reader *csv = gl_csv_reader_new(f, NULL, err);
    if (csv == NULL) return false;
    read_state st = {
        .src = src,
        .keys = pan_keys,
        .on_line = on_line,
        .on_error = on_error,
        .arg = arg,
        .stats = stats,
    };
    bool ok = read_header(&st, csv, err) && read_rows(&st, csv, err);
    gl_csv_reader_free(csv);
    return ok;
}
