/*
 * test_settlement.c — unit tests for reconciliation/settlement.c: the Stripe,
 * Adyen and generic readers (reconciliation/FORMATS.md), malformed rows, fatal
 * errors, and the PAN guard on every column.
 *
 * Expected times were computed independently (Python calendar.timegm).
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../reconciliation/settlement.h"

#define SEC(s) ((int64_t)(s) * INT64_C(1000000))
#define T_2026_11_20_1000Z 1795168800 /* 2026-11-20 10:00:00 UTC */
#define T_2026_11_22_0000Z 1795305600
#define PAN_SPACED "4111 1111 1111 1111"
/* HMAC-SHA256(key 00..1f, "4111111111111111"), see test_pan.c */
#define TOKEN_SEQ_4111 "0622241201382a45912fb22828b3f7db5153cf2072722a73ded22623ea79abc9"

/* ---- helpers ------------------------------------------------------------ */

#define MAX_LINES 64

typedef struct {
    gl_settlement_line lines[MAX_LINES];
    int n_lines;
    uint64_t bad_line[MAX_LINES];
    char reason[MAX_LINES][400];
    int n_bad;
    int stop_at;            /* on_line returns false on this line count (0: never) */
    bool stop_sets_error;
} collector;

static bool collect_line(void *arg, const gl_settlement_line *line, gl_error *err) {
    collector *c = arg;
    ck_assert_int_lt(c->n_lines, MAX_LINES);
    c->lines[c->n_lines++] = *line;
    if (c->stop_at > 0 && c->n_lines == c->stop_at) {
        if (c->stop_sets_error) gl_error_set(err, GL_ERR_CONFLICT, "enough");
        return false;
    }
    return true;
}

static void collect_error(void *arg, uint64_t line_no, const char *reason) {
    collector *c = arg;
    ck_assert_int_lt(c->n_bad, MAX_LINES);
    c->bad_line[c->n_bad] = line_no;
    snprintf(c->reason[c->n_bad], sizeof c->reason[0], "%s", reason);
    c->n_bad++;
}

static FILE *input(const char *text) {
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite(text, 1, strlen(text), f), strlen(text));
    rewind(f);
    return f;
}

static gl_pan_keyring test_ring(void) {
    gl_pan_keyring ring;
    memset(&ring, 0, sizeof ring);
    ring.n_keys = 1;
    snprintf(ring.keys[0].id, sizeof ring.keys[0].id, "k1");
    for (int i = 0; i < 32; i++) ring.keys[0].key[i] = (uint8_t)i;
    return ring;
}

typedef struct {
    collector c;
    gl_settlement_stats stats;
    gl_error err;
    bool ok;
} result;

static void read_text(result *r, const char *text, gl_settlement_source src) {
    memset(r, 0, sizeof *r);
    gl_pan_keyring ring = test_ring();
    FILE *f = input(text);
    r->ok = gl_settlement_read(f, src, &ring, collect_line, collect_error, &r->c, &r->stats, &r->err);
    fclose(f);
}

static void read_sample(result *r, const char *name, gl_settlement_source src) {
    /* The samples live next to this directory: tests/unit/../data/recon. */
    char path[512];
    const char *slash = strrchr(__FILE__, '/');
    int dir_len = slash ? (int)(slash - __FILE__) : 1;
    snprintf(path, sizeof path, "%.*s/../data/recon/%s", dir_len, slash ? __FILE__ : ".", name);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s (run from the repository root)", path);
    memset(r, 0, sizeof *r);
    gl_pan_keyring ring = test_ring();
    r->ok = gl_settlement_read(f, src, &ring, collect_line, collect_error, &r->c, &r->stats, &r->err);
    fclose(f);
}

static void assert_read_ok(const result *r, int good, int bad) {
    ck_assert_msg(r->ok, "read failed: %s", r->err.message);
    ck_assert_msg(r->c.n_lines == good && r->c.n_bad == bad, "%d good, %d bad (first reason: %s)", r->c.n_lines,
                  r->c.n_bad, r->c.n_bad ? r->c.reason[0] : "-");
    ck_assert_uint_eq(r->stats.good, (uint64_t)good);
    ck_assert_uint_eq(r->stats.bad, (uint64_t)bad);
    ck_assert_uint_eq(r->stats.rows, (uint64_t)(good + bad));
}

/* Exactly one bad row, at `line`, whose reason contains `needle`. */
static void assert_one_bad(const char *text, gl_settlement_source src, uint64_t line, const char *needle) {
    result r;
    read_text(&r, text, src);
    ck_assert_msg(r.ok, "read failed: %s", r.err.message);
    ck_assert_msg(r.c.n_bad == 1, "%d bad rows, want 1 (%s)", r.c.n_bad, needle);
    ck_assert_uint_eq(r.c.bad_line[0], line);
    ck_assert_msg(strstr(r.c.reason[0], needle) != NULL, "\"%s\" not in \"%s\"", needle, r.c.reason[0]);
    ck_assert(!gl_pan_text_has_pan(r.c.reason[0]));
}

static void assert_read_fails(const char *text, gl_settlement_source src, const char *needle) {
    result r;
    read_text(&r, text, src);
    ck_assert_msg(!r.ok, "read succeeded, want failure with \"%s\"", needle);
    ck_assert_msg(strstr(r.err.message, needle) != NULL, "\"%s\" not in \"%s\"", needle, r.err.message);
}

/* Nothing a line hands out may hold a full card number. */
static void assert_line_pan_free(const gl_settlement_line *l) {
    char dump[1024];
    snprintf(dump, sizeof dump, "%s|%s|%s|%s|%s|%s|%s|%s", l->reference, l->psp_id, l->type, l->currency, l->card.bin,
             l->card.last4, l->card.key_id, l->card.token);
    ck_assert_msg(!gl_pan_text_has_pan(dump), "PAN in line %llu", (unsigned long long)l->line_no);
    ck_assert(!gl_pan_text_has_pan(l->reference));
    ck_assert(!gl_pan_text_has_pan(l->psp_id));
}

/* ---- names -------------------------------------------------------------- */

START_TEST(test_source_names) {
    gl_settlement_source s;
    ck_assert(gl_settlement_source_parse("stripe", &s));
    ck_assert_int_eq(s, GL_SOURCE_STRIPE);
    ck_assert(gl_settlement_source_parse("adyen", &s));
    ck_assert_int_eq(s, GL_SOURCE_ADYEN);
    ck_assert(gl_settlement_source_parse("generic", &s));
    ck_assert_int_eq(s, GL_SOURCE_GENERIC);
    ck_assert(!gl_settlement_source_parse("paypal", &s));
    ck_assert(!gl_settlement_source_parse(NULL, &s));
    ck_assert_str_eq(gl_settlement_source_name(GL_SOURCE_ADYEN), "adyen");
    ck_assert_str_eq(gl_settlement_source_name((gl_settlement_source)42), "unknown");
}
END_TEST

/* ---- Stripe ------------------------------------------------------------- */

START_TEST(test_stripe_sample) {
    result r;
    read_sample(&r, "stripe_small.csv", GL_SOURCE_STRIPE);
    assert_read_ok(&r, 5, 0);
    ck_assert_uint_eq(r.stats.pans_masked, 1);

    const gl_settlement_line *l = &r.c.lines[0];
    ck_assert_uint_eq(l->line_no, 2);
    ck_assert_str_eq(l->psp_id, "txn_3QGeoCharge00A");
    ck_assert_str_eq(l->reference, "ride-42");
    ck_assert_str_eq(l->type, "charge");
    ck_assert_str_eq(l->currency, "USD"); /* "usd" in the file */
    ck_assert_int_eq(l->gross_minor, 1000);
    ck_assert_int_eq(l->fee_minor, 59);
    ck_assert_int_eq(l->net_minor, 941);
    ck_assert_int_eq(l->created_at_us, SEC(T_2026_11_20_1000Z)); /* charge_created_utc, not created_utc */
    ck_assert_int_eq(l->settled_at_us, SEC(T_2026_11_22_0000Z));
    ck_assert(!l->card.present);

    l = &r.c.lines[1]; /* refund: negative gross */
    ck_assert_str_eq(l->type, "refund");
    ck_assert_int_eq(l->gross_minor, -400);
    ck_assert_int_eq(l->fee_minor, 0);
    ck_assert_int_eq(l->net_minor, -400);

    l = &r.c.lines[2]; /* card number in the description; no reference; no charge_created_utc */
    ck_assert_str_eq(l->reference, "");
    ck_assert(l->card.present);
    ck_assert_str_eq(l->card.bin, "411111");
    ck_assert_str_eq(l->card.last4, "1111");
    ck_assert_str_eq(l->card.key_id, "k1");
    ck_assert_str_eq(l->card.token, TOKEN_SEQ_4111);
    ck_assert_int_eq(l->created_at_us, SEC(T_2026_11_20_1000Z + 9000)); /* created_utc 12:30:00 */
    ck_assert_int_eq(l->gross_minor, 2550);

    l = &r.c.lines[3]; /* JPY: exponent 0 */
    ck_assert_str_eq(l->currency, "JPY");
    ck_assert_int_eq(l->gross_minor, 1000);
    ck_assert_int_eq(l->fee_minor, 36);
    ck_assert_int_eq(l->net_minor, 964);
    ck_assert_int_eq(l->settled_at_us, SEC(T_2026_11_22_0000Z + 86400));

    l = &r.c.lines[4]; /* dispute: negative gross, fee charged on top */
    ck_assert_str_eq(l->type, "dispute");
    ck_assert_int_eq(l->gross_minor, -1000);
    ck_assert_int_eq(l->fee_minor, 1500);
    ck_assert_int_eq(l->net_minor, -2500);
    for (int i = 0; i < r.c.n_lines; i++) assert_line_pan_free(&r.c.lines[i]);
}
END_TEST

#define STRIPE_HDR "balance_transaction_id,created_utc,currency,gross,fee,net,reporting_category\n"

START_TEST(test_stripe_amount_rules) {
    assert_one_bad(STRIPE_HDR "txn_1,2026-11-20 10:00:00,usd,10.001,0.00,10.00,charge\n", GL_SOURCE_STRIPE, 2,
                   "column \"gross\": more than 2 decimal places: precision would be lost");
    assert_one_bad(STRIPE_HDR "txn_1,2026-11-20 10:00:00,usd,10.00,0.5,9.49,charge\n", GL_SOURCE_STRIPE, 2,
                   "net != gross - fee");
    assert_one_bad(STRIPE_HDR "txn_1,2026-11-20 10:00:00,usd,99999999999999999.00,0,0,charge\n", GL_SOURCE_STRIPE,
                   2, "column \"gross\": amount out of range");
    assert_one_bad(STRIPE_HDR "txn_1,2026-11-20 10:00:00,usd,92233720368547758.07,-0.01,0,charge\n",
                   GL_SOURCE_STRIPE, 2, "gross - fee is out of range");
    assert_one_bad(STRIPE_HDR "txn_1,2026-11-20 10:00:00,usd,\"1,000.00\",0,1000,charge\n", GL_SOURCE_STRIPE, 2,
                   "column \"gross\": not a decimal amount");
    assert_one_bad(STRIPE_HDR "txn_1,2026-11-20 10:00:00,usd,1e3,0,1000,charge\n", GL_SOURCE_STRIPE, 2,
                   "not a decimal amount");
    assert_one_bad(STRIPE_HDR "txn_1,2026-11-20 10:00:00,usd,10.00,,10.00,charge\n", GL_SOURCE_STRIPE, 2,
                   "column \"fee\": empty");
    assert_one_bad(STRIPE_HDR "txn_1,2026-11-20 10:00:00,xyz,10.00,0,10.00,charge\n", GL_SOURCE_STRIPE, 2,
                   "column \"currency\": unknown currency");
    assert_one_bad(STRIPE_HDR "txn_1,2026-11-20 10:00:00,us,10.00,0,10.00,charge\n", GL_SOURCE_STRIPE, 2,
                   "unknown currency");
    assert_one_bad(STRIPE_HDR "txn_1,2026-11-20 10:00:00,jpy,10.5,0,10.5,charge\n", GL_SOURCE_STRIPE, 2,
                   "more than 0 decimal places");

    /* Precision rule: extra zeros are fine. Upper-case currency too. */
    result r;
    read_text(&r, STRIPE_HDR "txn_1,2026-11-20 10:00:00,USD,10.000,0.590,9.41,charge\n", GL_SOURCE_STRIPE);
    assert_read_ok(&r, 1, 0);
    ck_assert_int_eq(r.c.lines[0].gross_minor, 1000);
    ck_assert_int_eq(r.c.lines[0].fee_minor, 59);
    /* BHD has 3 decimals. */
    read_text(&r, STRIPE_HDR "txn_1,2026-11-20 10:00:00,bhd,1.234,0.004,1.23,charge\n", GL_SOURCE_STRIPE);
    assert_read_ok(&r, 1, 0);
    ck_assert_int_eq(r.c.lines[0].net_minor, 1230);
}
END_TEST

START_TEST(test_stripe_columns_and_times) {
    assert_read_fails("balance_transaction_id,created_utc,currency,gross,fee,reporting_category\n",
                      GL_SOURCE_STRIPE, "missing required column \"net\"");
    assert_read_fails("balance_transaction_id,currency,gross,fee,net,reporting_category\n", GL_SOURCE_STRIPE,
                      "\"charge_created_utc\" or \"created_utc\"");
    assert_read_fails("balance_transaction_id,created_utc,currency,gross,fee,net,reporting_category,GROSS\n",
                      GL_SOURCE_STRIPE, "duplicate column \"gross\"");

    /* Header names: any case, surrounding blanks; columns in any order. */
    result r;
    read_text(&r,
              " Reporting_Category ,NET,fee,Gross,Currency,created_utc,charge_created_utc,Balance_Transaction_Id,"
              "available_on_utc,automatic_payout_effective_at\n"
              "Charge,9.41,0.59,10.00,usd,2026-11-20 10:00:00,,txn_1,2026-11-22,\n"
              "charge,9.41,0.59,10.00,usd,2026-11-20 10:00:00,2026-11-20T09:00:00Z,txn_2,,2026-11-22 00:00:00\n"
              "charge,9.41,0.59,10.00,usd,2026-11-20 10:00:00,,txn_3,,\n",
              GL_SOURCE_STRIPE);
    assert_read_ok(&r, 3, 0);
    ck_assert_str_eq(r.c.lines[0].type, "charge");
    ck_assert_int_eq(r.c.lines[0].created_at_us, SEC(T_2026_11_20_1000Z));     /* created_utc fallback */
    ck_assert_int_eq(r.c.lines[0].settled_at_us, SEC(T_2026_11_22_0000Z));     /* date only: midnight */
    ck_assert_int_eq(r.c.lines[1].created_at_us, SEC(T_2026_11_20_1000Z - 3600)); /* charge_created_utc */
    ck_assert_int_eq(r.c.lines[1].settled_at_us, SEC(T_2026_11_22_0000Z));     /* payout effective fallback */
    ck_assert_int_eq(r.c.lines[2].settled_at_us, 0);
    ck_assert_str_eq(r.c.lines[2].reference, ""); /* no payment_metadata[reference] column */

    assert_one_bad(STRIPE_HDR "txn_1,2026-11-20 25:00:00,usd,1,0,1,charge\n", GL_SOURCE_STRIPE, 2,
                   "column \"created_utc\": not a time");
    assert_one_bad(STRIPE_HDR "txn_1,2026-02-29 10:00:00,usd,1,0,1,charge\n", GL_SOURCE_STRIPE, 2, "not a time");
    assert_one_bad(STRIPE_HDR "txn_1,20/11/2026,usd,1,0,1,charge\n", GL_SOURCE_STRIPE, 2, "not a time");
    assert_one_bad(STRIPE_HDR "txn_1,2026-11-20 10:00:60,usd,1,0,1,charge\n", GL_SOURCE_STRIPE, 2, "not a time");
    assert_one_bad(STRIPE_HDR "txn_1,,usd,1,0,1,charge\n", GL_SOURCE_STRIPE, 2, "empty");
    assert_one_bad(STRIPE_HDR ",2026-11-20 10:00:00,usd,1,0,1,charge\n", GL_SOURCE_STRIPE, 2,
                   "column \"balance_transaction_id\": empty");
    assert_one_bad(STRIPE_HDR "txn_1,2026-11-20 10:00:00,usd,1,0,1,\n", GL_SOURCE_STRIPE, 2,
                   "column \"reporting_category\": empty");

    read_text(&r, STRIPE_HDR "txn_1,2024-02-29 23:59:59,usd,1,0,1,charge\n", GL_SOURCE_STRIPE);
    assert_read_ok(&r, 1, 0);
    ck_assert_int_eq(r.c.lines[0].created_at_us, SEC(1709251199));
}
END_TEST

START_TEST(test_key_limits) {
    char text[1024];
    char key[GL_SETTLEMENT_KEY_MAX + 2];
    memset(key, 'k', sizeof key - 1);
    key[GL_SETTLEMENT_KEY_MAX] = '\0'; /* exactly 128: fine */
    snprintf(text, sizeof text, STRIPE_HDR "%s,2026-11-20 10:00:00,usd,1,0,1,charge\n", key);
    result r;
    read_text(&r, text, GL_SOURCE_STRIPE);
    assert_read_ok(&r, 1, 0);
    ck_assert_uint_eq(strlen(r.c.lines[0].psp_id), GL_SETTLEMENT_KEY_MAX);

    key[GL_SETTLEMENT_KEY_MAX] = 'k'; /* 129 */
    key[GL_SETTLEMENT_KEY_MAX + 1] = '\0';
    snprintf(text, sizeof text, STRIPE_HDR "%s,2026-11-20 10:00:00,usd,1,0,1,charge\n", key);
    assert_one_bad(text, GL_SOURCE_STRIPE, 2, "column \"balance_transaction_id\": longer than 128 bytes");

    char type[GL_SETTLEMENT_TYPE_MAX + 2];
    memset(type, 't', sizeof type - 1);
    type[sizeof type - 1] = '\0';
    snprintf(text, sizeof text, STRIPE_HDR "txn_1,2026-11-20 10:00:00,usd,1,0,1,%s\n", type);
    assert_one_bad(text, GL_SOURCE_STRIPE, 2, "longer than 64 bytes");

    /* A line break inside a quoted reference is a control character. */
    assert_one_bad("balance_transaction_id,created_utc,currency,gross,fee,net,reporting_category,"
                   "payment_metadata[reference]\n"
                   "txn_1,2026-11-20 10:00:00,usd,1,0,1,charge,\"two\nlines\"\n",
                   GL_SOURCE_STRIPE, 2, "column \"payment_metadata[reference]\": control character");
}
END_TEST

/* ---- Adyen -------------------------------------------------------------- */

START_TEST(test_adyen_sample) {
    result r;
    read_sample(&r, "adyen_small.csv", GL_SOURCE_ADYEN);
    assert_read_ok(&r, 5, 0);
    ck_assert_uint_eq(r.stats.pans_masked, 0);

    const gl_settlement_line *l = &r.c.lines[0]; /* Settled: credit positive, four fee columns */
    ck_assert_str_eq(l->psp_id, "852584129291587A");
    ck_assert_str_eq(l->reference, "ride-1001");
    ck_assert_str_eq(l->type, "settled");
    ck_assert_str_eq(l->currency, "EUR");
    ck_assert_int_eq(l->gross_minor, 30000);
    ck_assert_int_eq(l->fee_minor, 240);
    ck_assert_int_eq(l->net_minor, 29760);
    ck_assert_int_eq(l->created_at_us, SEC(T_2026_11_20_1000Z - 3600)); /* 10:00 CET = 09:00 UTC */
    ck_assert_int_eq(l->settled_at_us, 0);

    l = &r.c.lines[1]; /* Refunded: debit negative, commission on top */
    ck_assert_str_eq(l->type, "refunded");
    ck_assert_int_eq(l->gross_minor, -5000);
    ck_assert_int_eq(l->fee_minor, 400);
    ck_assert_int_eq(l->net_minor, -5400);

    l = &r.c.lines[2];
    ck_assert_str_eq(l->type, "chargeback");
    ck_assert_int_eq(l->gross_minor, -15000);
    ck_assert_int_eq(l->net_minor, -15000);

    l = &r.c.lines[3]; /* Fee: no gross, currency from Net Currency */
    ck_assert_str_eq(l->type, "fee");
    ck_assert_str_eq(l->psp_id, "");
    ck_assert_str_eq(l->reference, "");
    ck_assert_str_eq(l->currency, "EUR");
    ck_assert_int_eq(l->gross_minor, 0);
    ck_assert_int_eq(l->net_minor, -32);
    ck_assert_int_eq(l->created_at_us, SEC(T_2026_11_20_1000Z + 13 * 3600)); /* 00:00 CET = 23:00 UTC */

    l = &r.c.lines[4];
    ck_assert_str_eq(l->type, "merchantpayout");
    ck_assert_int_eq(l->net_minor, -39028);
}
END_TEST

#define ADYEN_HDR                                                                                                \
    "Psp Reference,Merchant Reference,Creation Date,TimeZone,Type,Gross Currency,Gross Debit (GC),"              \
    "Gross Credit (GC),Net Currency,Net Debit (NC),Net Credit (NC),Commission (NC),Markup (NC),"                 \
    "Scheme Fees (NC),Interchange (NC)\n"

START_TEST(test_adyen_rules) {
    assert_one_bad(ADYEN_HDR "p1,r1,2026-11-20 10:00:00,UTC,Settled,USD,,10.00,EUR,,9.00,1.00,,,\n", GL_SOURCE_ADYEN,
                   2, "net currency differs from gross currency: not supported");
    assert_one_bad(ADYEN_HDR "p1,r1,2026-11-20 10:00:00,UTC,Settled,EUR,,10.00,EUR,,9.00,0.50,,,\n", GL_SOURCE_ADYEN,
                   2, "net != gross - fee");
    assert_one_bad(ADYEN_HDR "p1,r1,2026-11-20 10:00:00,UTC,Settled,EUR,,,EUR,,,0.50,,,\n", GL_SOURCE_ADYEN, 2,
                   "no amount");
    assert_one_bad(ADYEN_HDR "p1,r1,2026-11-20 10:00:00,UTC,Settled,,,10.00,EUR,,10.00,,,,\n", GL_SOURCE_ADYEN, 2,
                   "column \"Gross Currency\": empty on a row with a gross amount");
    assert_one_bad(ADYEN_HDR "p1,r1,2026-11-20 10:00:00,UTC,Fee,,,,,0.32,,,,,\n", GL_SOURCE_ADYEN, 2,
                   "\"Gross Currency\" and \"Net Currency\": empty");
    assert_one_bad(ADYEN_HDR "p1,r1,2026-11-20 10:00:00,UTC,,EUR,,1.00,EUR,,1.00,,,,\n", GL_SOURCE_ADYEN, 2,
                   "column \"Type\": empty");
    assert_one_bad(ADYEN_HDR "p1,r1,2026-11-20 10:00:00,UTC,Settled,EUR,,1.00,EUR,,0.99,,0.011,,\n",
                   GL_SOURCE_ADYEN, 2, "column \"Markup (NC)\": more than 2 decimal places");
    assert_one_bad(ADYEN_HDR "p1,r1,,UTC,Settled,EUR,,1.00,EUR,,1.00,,,,\n", GL_SOURCE_ADYEN, 2,
                   "column \"Creation Date\": empty");
    assert_one_bad(ADYEN_HDR "p1,r1,2026-11-20T10:00:00Z,UTC,Settled,EUR,,1.00,EUR,,1.00,,,,\n", GL_SOURCE_ADYEN, 2,
                   "not a time"); /* the zone comes from TimeZone only */

    /* Gross only: net is gross - fee. Both debit and credit: credit - debit. */
    result r;
    read_text(&r,
              "Psp Reference,Merchant Reference,Creation Date,Type,Gross Currency,Gross Debit (GC),"
              "Gross Credit (GC),Commission (NC)\n"
              "p1,r1,2026-11-20 10:00:00,Settled,eur,,10.00,0.25\n"
              "p2,r2,2026-11-20 10:00:00,Balancetransfer,EUR,3.00,5.00,\n",
              GL_SOURCE_ADYEN);
    assert_read_ok(&r, 2, 0);
    ck_assert_int_eq(r.c.lines[0].net_minor, 975);
    ck_assert_int_eq(r.c.lines[0].created_at_us, SEC(T_2026_11_20_1000Z)); /* no TimeZone column: UTC */
    ck_assert_int_eq(r.c.lines[1].gross_minor, 200);

    assert_read_fails("Psp Reference,Merchant Reference,Creation Date,Type,Gross Currency\n", GL_SOURCE_ADYEN,
                      "\"Gross Debit (GC)\" or \"Gross Credit (GC)\"");
    assert_read_fails("Psp Reference,Creation Date,Type,Gross Currency,Gross Debit (GC)\n", GL_SOURCE_ADYEN,
                      "missing required column \"Merchant Reference\"");

    /* Header case differs ("Scheme fees"): still found. */
    read_text(&r,
              "psp reference,merchant reference,creation date,type,gross currency,gross credit (gc),"
              "net credit (nc),scheme fees (nc)\n"
              "p1,r1,2026-11-20 10:00:00,Settled,EUR,10.00,9.90,0.10\n",
              GL_SOURCE_ADYEN);
    assert_read_ok(&r, 1, 0);
    ck_assert_int_eq(r.c.lines[0].fee_minor, 10);
}
END_TEST

static int64_t adyen_created_in_zone(const char *zone, bool *ok, char *reason, size_t cap) {
    char text[1024];
    snprintf(text, sizeof text, ADYEN_HDR "p1,r1,2026-11-20 10:00:00,%s,Settled,EUR,,1.00,EUR,,1.00,,,,\n", zone);
    result r;
    read_text(&r, text, GL_SOURCE_ADYEN);
    ck_assert(r.ok);
    *ok = r.c.n_lines == 1;
    snprintf(reason, cap, "%s", r.c.n_bad ? r.c.reason[0] : "");
    return *ok ? r.c.lines[0].created_at_us : 0;
}

START_TEST(test_adyen_time_zones) {
    static const struct {
        const char *zone;
        int offset_s;
    } ok_zones[] = {
        {"UTC", 0},          {"GMT", 0},          {"utc", 0},          {"CET", 3600},     {"CEST", 7200},
        {"+01:00", 3600},    {"+0100", 3600},     {"+01", 3600},       {"+1", 3600},      {"-05:30", -19800},
        {"GMT+01:00", 3600}, {"UTC-5", -18000},   {" EET ", 7200},     {"SGT", 28800},    {"BST", 3600},
        {"PST", -28800},     {"+14:00", 50400},
    };
    char reason[400];
    bool ok;
    for (size_t i = 0; i < sizeof ok_zones / sizeof ok_zones[0]; i++) {
        int64_t t = adyen_created_in_zone(ok_zones[i].zone, &ok, reason, sizeof reason);
        ck_assert_msg(ok, "zone \"%s\" refused: %s", ok_zones[i].zone, reason);
        ck_assert_msg(t == SEC(T_2026_11_20_1000Z - ok_zones[i].offset_s), "zone \"%s\"", ok_zones[i].zone);
    }
    static const char *const bad_zones[] = {"Europe/Amsterdam", "CST", "IST", "+15:00", "+01:60", "+123",
                                            "GMT+", "1", "", "UTC+01:00:00"};
    for (size_t i = 0; i < sizeof bad_zones / sizeof bad_zones[0]; i++) {
        adyen_created_in_zone(bad_zones[i], &ok, reason, sizeof reason);
        ck_assert_msg(!ok, "zone \"%s\" accepted", bad_zones[i]);
        ck_assert_msg(strstr(reason, "column \"TimeZone\"") != NULL, "%s", reason);
    }
}
END_TEST

/* ---- generic ------------------------------------------------------------ */

START_TEST(test_generic_sample) {
    result r;
    read_sample(&r, "generic_small.csv", GL_SOURCE_GENERIC);
    assert_read_ok(&r, 4, 0);
    const gl_settlement_line *l = &r.c.lines[0];
    ck_assert_str_eq(l->reference, "ride-1");
    ck_assert_str_eq(l->psp_id, "psp-1");
    ck_assert_int_eq(l->gross_minor, 1250);
    ck_assert_int_eq(l->fee_minor, 30);
    ck_assert_int_eq(l->net_minor, 1220);
    ck_assert_int_eq(l->created_at_us, SEC(T_2026_11_20_1000Z));
    ck_assert_int_eq(l->settled_at_us, SEC(T_2026_11_22_0000Z));

    l = &r.c.lines[1];
    ck_assert_str_eq(l->type, "refund"); /* "Refund" */
    ck_assert_int_eq(l->created_at_us, SEC(T_2026_11_20_1000Z)); /* 11:00+01:00 */
    ck_assert_int_eq(l->settled_at_us, 0);

    l = &r.c.lines[2]; /* JPY, fraction of a second, a note with a line break */
    ck_assert_str_eq(l->currency, "JPY");
    ck_assert_int_eq(l->net_minor, 970);
    ck_assert_int_eq(l->created_at_us, SEC(T_2026_11_20_1000Z) + 123456);
    ck_assert_uint_eq(l->line_no, 4);

    l = &r.c.lines[3];
    ck_assert_uint_eq(l->line_no, 6); /* after the two-line note */
    ck_assert_str_eq(l->reference, "");
    ck_assert_int_eq(l->fee_minor, 1500);
    ck_assert_int_eq(l->created_at_us, SEC(T_2026_11_20_1000Z + 5 * 3600)); /* 10:00-05:00 */
}
END_TEST

#define GENERIC_HDR "reference,psp_id,type,currency,gross,fee,net,created_at\n"

START_TEST(test_generic_rules) {
    assert_one_bad(GENERIC_HDR "r1,p1,charge,EUR,1.00,0,1.00,2026-11-20T10:00:00\n", GL_SOURCE_GENERIC, 2,
                   "column \"created_at\": not an RFC 3339 time");
    assert_one_bad(GENERIC_HDR "r1,p1,charge,EUR,1.00,0,1.00,2026-11-20\n", GL_SOURCE_GENERIC, 2, "RFC 3339");
    assert_one_bad(GENERIC_HDR "r1,p1,charge,EUR,1.00,0,1.00,2026-11-20T10:00:00+1:00\n", GL_SOURCE_GENERIC, 2,
                   "RFC 3339");
    assert_one_bad(GENERIC_HDR "r1,p1,charge,EUR,1.00,0,1.00,2026-11-20T10:00:00.1234567890Z\n", GL_SOURCE_GENERIC,
                   2, "RFC 3339");
    assert_one_bad(GENERIC_HDR ",,charge,EUR,1.00,0,1.00,2026-11-20T10:00:00Z\n", GL_SOURCE_GENERIC, 2,
                   "\"reference\" and \"psp_id\": both empty");
    assert_one_bad(GENERIC_HDR "r1,p1,charge,EUR,1.00,0.10,1.00,2026-11-20T10:00:00Z\n", GL_SOURCE_GENERIC, 2,
                   "net != gross - fee");
    assert_one_bad(GENERIC_HDR "r1,p1,charge,ZZZ,1.00,0,1.00,2026-11-20T10:00:00Z\n", GL_SOURCE_GENERIC, 2,
                   "unknown currency");
    assert_read_fails("reference,type,currency,gross,fee,net,created_at\n", GL_SOURCE_GENERIC,
                      "missing required column \"psp_id\"");

    result r;
    read_text(&r,
              "extra,net,fee,gross,currency,type,psp_id,reference,created_at,more\n"
              "x,-1.00,0,-1.00,chf,CHARGEBACK,p1,,2026-11-20t10:00:00z,y\n",
              GL_SOURCE_GENERIC);
    assert_read_ok(&r, 1, 0);
    ck_assert_str_eq(r.c.lines[0].type, "chargeback");
    ck_assert_str_eq(r.c.lines[0].currency, "CHF");
    ck_assert_int_eq(r.c.lines[0].settled_at_us, 0);
    ck_assert_int_eq(r.c.lines[0].created_at_us, SEC(T_2026_11_20_1000Z));
}
END_TEST

/* ---- rows, blank lines, CSV errors -------------------------------------- */

START_TEST(test_blank_lines) {
    result r;
    /* Blank lines in the middle are bad rows; at the end they are nothing. */
    read_text(&r,
              GENERIC_HDR "r1,p1,charge,EUR,1.00,0,1.00,2026-11-20T10:00:00Z\n"
                          "\n"
                          "\r\n"
                          "r2,p2,charge,EUR,1.00,0,1.00,2026-11-20T10:00:00Z\n"
                          "\n\n\n",
              GL_SOURCE_GENERIC);
    assert_read_ok(&r, 2, 2);
    ck_assert_uint_eq(r.c.bad_line[0], 3);
    ck_assert_uint_eq(r.c.bad_line[1], 4);
    ck_assert_str_eq(r.c.reason[0], "blank line");
    ck_assert_uint_eq(r.c.lines[1].line_no, 5);

    /* No final line end at all is fine too. */
    read_text(&r, GENERIC_HDR "r1,p1,charge,EUR,1.00,0,1.00,2026-11-20T10:00:00Z", GL_SOURCE_GENERIC);
    assert_read_ok(&r, 1, 0);
    /* Only a header. */
    read_text(&r, GENERIC_HDR, GL_SOURCE_GENERIC);
    assert_read_ok(&r, 0, 0);
    /* A blank line before a CSV error is reported too, in order. */
    read_text(&r, GENERIC_HDR "\na\"b\n", GL_SOURCE_GENERIC);
    assert_read_ok(&r, 0, 2);
    ck_assert_uint_eq(r.c.bad_line[0], 2);
    ck_assert_uint_eq(r.c.bad_line[1], 3);
}
END_TEST

START_TEST(test_bad_rows_do_not_stop_the_read) {
    result r;
    read_text(&r,
              GENERIC_HDR "r1,p1,charge,EUR,1.00,0,1.00,2026-11-20T10:00:00Z\n"
                          "r2,p2,charge,EUR,1.00,0,1.00\n"                                  /* 7 fields */
                          "r3,p3,charge,EUR,1.00,0,1.00,2026-11-20T10:00:00Z,extra\n"        /* 9 fields */
                          "\"r4\nstill r4\"x,p4,charge,EUR,1,0,1,2026-11-20T10:00:00Z\n"     /* CSV syntax */
                          "r5,p5,charge,EUR,1.00,0,1.00,2026-11-20T10:00:00Z\n",
              GL_SOURCE_GENERIC);
    assert_read_ok(&r, 2, 3);
    ck_assert_uint_eq(r.c.bad_line[0], 3);
    ck_assert_str_eq(r.c.reason[0], "7 fields, the header has 8");
    ck_assert_uint_eq(r.c.bad_line[1], 4);
    ck_assert_str_eq(r.c.reason[1], "9 fields, the header has 8");
    ck_assert_uint_eq(r.c.bad_line[2], 5);
    ck_assert_ptr_nonnull(strstr(r.c.reason[2], "after the closing quote"));
    ck_assert_uint_eq(r.c.lines[1].line_no, 7);
    ck_assert_str_eq(r.c.lines[1].reference, "r5");
}
END_TEST

START_TEST(test_fatal_errors) {
    assert_read_fails("", GL_SOURCE_STRIPE, "empty (no header line)");
    assert_read_fails("\n" STRIPE_HDR, GL_SOURCE_STRIPE, "first line is empty");
    assert_read_fails("a,\"b\n", GL_SOURCE_STRIPE, "unreadable header");

    /* A record over 64 KiB stops the read, with its line number. */
    size_t big = (size_t)70 * 1024;
    char *text = malloc(big + 256);
    ck_assert_ptr_nonnull(text);
    int off = snprintf(text, 256, GENERIC_HDR "r1,p1,charge,EUR,1,0,1,2026-11-20T10:00:00Z\nr2,");
    memset(text + off, 'x', big);
    snprintf(text + off + big, 64, ",charge,EUR,1,0,1,2026-11-20T10:00:00Z\n");
    result r;
    read_text(&r, text, GL_SOURCE_GENERIC);
    ck_assert(!r.ok);
    ck_assert_ptr_nonnull(strstr(r.err.message, "line 3: record longer than 65536 bytes"));
    ck_assert_int_eq(r.c.n_lines, 1); /* what came before was handed out */
    free(text);

    gl_error err;
    ck_assert(!gl_settlement_read(NULL, GL_SOURCE_STRIPE, NULL, collect_line, NULL, NULL, NULL, &err));
    FILE *f = input(GENERIC_HDR);
    ck_assert(!gl_settlement_read(f, GL_SOURCE_GENERIC, NULL, NULL, NULL, NULL, NULL, &err));
    ck_assert(!gl_settlement_read(f, (gl_settlement_source)9, NULL, collect_line, NULL, NULL, NULL, &err));
    fclose(f);
}
END_TEST

START_TEST(test_callback_stops_the_read) {
    const char *text = GENERIC_HDR "r1,p1,charge,EUR,1,0,1,2026-11-20T10:00:00Z\n"
                                   "r2,p2,charge,EUR,1,0,1,2026-11-20T10:00:00Z\n"
                                   "r3,p3,charge,EUR,1,0,1,2026-11-20T10:00:00Z\n";
    collector c;
    memset(&c, 0, sizeof c);
    c.stop_at = 2;
    c.stop_sets_error = true;
    gl_error err;
    FILE *f = input(text);
    ck_assert(!gl_settlement_read(f, GL_SOURCE_GENERIC, NULL, collect_line, collect_error, &c, NULL, &err));
    fclose(f);
    ck_assert_int_eq(c.n_lines, 2);
    ck_assert_int_eq(err.kind, GL_ERR_CONFLICT);
    ck_assert_str_eq(err.message, "enough"); /* the callback's error is kept */

    memset(&c, 0, sizeof c);
    c.stop_at = 1;
    f = input(text);
    ck_assert(!gl_settlement_read(f, GL_SOURCE_GENERIC, NULL, collect_line, NULL, &c, NULL, &err));
    fclose(f);
    ck_assert_ptr_nonnull(strstr(err.message, "stopped by the caller at line 2"));

    /* NULL stats and NULL on_error are allowed; bad rows are then only counted away. */
    memset(&c, 0, sizeof c);
    f = input(GENERIC_HDR "r1,p1,charge,EUR,1,0,1,2026-11-20T10:00:00Z\nbad\n");
    ck_assert(gl_settlement_read(f, GL_SOURCE_GENERIC, NULL, collect_line, NULL, &c, NULL, &err));
    fclose(f);
    ck_assert_int_eq(c.n_lines, 1);
}
END_TEST

START_TEST(test_bom_and_crlf) {
    result r;
    read_text(&r,
              "\xEF\xBB\xBF" "balance_transaction_id,created_utc,currency,gross,fee,net,reporting_category\r\n"
              "txn_1,2026-11-20 10:00:00,usd,10.00,0.59,9.41,charge\r\n",
              GL_SOURCE_STRIPE);
    assert_read_ok(&r, 1, 0);
    ck_assert_str_eq(r.c.lines[0].psp_id, "txn_1");
    ck_assert_str_eq(r.c.lines[0].type, "charge"); /* no '\r' left on the last field */
}
END_TEST

/* ---- the PAN guard on every column -------------------------------------- */

/* Splits a line without quotes at ','. */
static int split_simple(char *line, char **fields, int max) {
    int n = 0;
    for (char *p = line; n < max;) {
        fields[n++] = p;
        char *comma = strchr(p, ',');
        if (!comma) break;
        *comma = '\0';
        p = comma + 1;
    }
    return n;
}

/*
 * For each column of `header`, puts a card number into that column of `row`
 * (alone, or glued inside other text) and reads the file: whatever happens to
 * the row, no full PAN may reach a line, a reason or an error, and the card is
 * counted and described.
 */
static void check_pan_in_every_column(gl_settlement_source src, const char *header, const char *row) {
    static const char *const forms[] = {PAN_SPACED, "4111111111111111", "x4111-1111-1111-1111y"};
    char row_copy[1024];
    snprintf(row_copy, sizeof row_copy, "%s", row);
    char *fields[64];
    int n = split_simple(row_copy, fields, 64);
    for (int col = 0; col < n; col++) {
        for (size_t k = 0; k < sizeof forms / sizeof forms[0]; k++) {
            char text[4096];
            size_t off = (size_t)snprintf(text, sizeof text, "%s\n", header);
            for (int j = 0; j < n; j++)
                off += (size_t)snprintf(text + off, sizeof text - off, "%s%s", j ? "," : "", j == col ? forms[k] : fields[j]);
            snprintf(text + off, sizeof text - off, "\n");
            result r;
            read_text(&r, text, src);
            ck_assert_msg(r.ok, "column %d: %s", col, r.err.message);
            ck_assert_uint_eq(r.stats.pans_masked, 1);
            ck_assert_uint_eq(r.stats.rows, 1);
            ck_assert(!gl_pan_text_has_pan(r.err.message));
            if (r.c.n_lines == 1) {
                const gl_settlement_line *l = &r.c.lines[0];
                assert_line_pan_free(l);
                ck_assert_msg(l->card.present, "column %d: card not described", col);
                ck_assert_str_eq(l->card.bin, "411111");
                ck_assert_str_eq(l->card.last4, "1111");
                ck_assert_str_eq(l->card.token, TOKEN_SEQ_4111);
            } else {
                ck_assert_int_eq(r.c.n_bad, 1);
                ck_assert_msg(!gl_pan_text_has_pan(r.c.reason[0]), "column %d: PAN in \"%s\"", col, r.c.reason[0]);
                ck_assert_ptr_null(strstr(r.c.reason[0], "1111"));
            }
        }
    }
}

START_TEST(test_pan_in_every_column_stripe) {
    check_pan_in_every_column(
        GL_SOURCE_STRIPE,
        "automatic_payout_id,automatic_payout_effective_at,balance_transaction_id,created_utc,created,"
        "available_on_utc,available_on,currency,gross,fee,net,reporting_category,source_id,description,"
        "customer_facing_amount,customer_facing_currency,charge_created_utc,payment_intent_id,card_brand,"
        "card_country,payment_metadata[reference]",
        "po_1,2026-11-22 00:00:00,txn_1,2026-11-20 10:00:05,2026-11-20 11:00:05,2026-11-22 00:00:00,2026-11-22,"
        "usd,10.00,0.59,9.41,charge,ch_1,Ride 42,10.00,usd,2026-11-20 10:00:00,pi_1,visa,US,ride-42");
}
END_TEST

START_TEST(test_pan_in_every_column_adyen) {
    check_pan_in_every_column(
        GL_SOURCE_ADYEN,
        "Company Account,Merchant Account,Psp Reference,Merchant Reference,Payment Method,Creation Date,TimeZone,"
        "Type,Modification Reference,Gross Currency,Gross Debit (GC),Gross Credit (GC),Exchange Rate,Net Currency,"
        "Net Debit (NC),Net Credit (NC),Commission (NC),Markup (NC),Scheme Fees (NC),Interchange (NC),"
        "Payment Method Variant,Batch Number",
        "Co,EU,852584129291587A,ride-1001,visa,2026-11-20 10:00:00,CET,Settled,852584129291587A,EUR,,300.00,1,EUR,,"
        "297.60,,0.60,0.20,1.60,visacredit,42");
}
END_TEST

START_TEST(test_pan_in_every_column_generic) {
    check_pan_in_every_column(GL_SOURCE_GENERIC, "reference,psp_id,type,currency,gross,fee,net,created_at,settled_at,note",
                              "ride-1,psp-1,charge,EUR,12.50,0.30,12.20,2026-11-20T10:00:00Z,,hello");
}
END_TEST

START_TEST(test_pan_in_header_and_bad_rows) {
    result r;
    /* A card in an unused header column, and in rows that are bad for other reasons. */
    read_text(&r,
              "reference,psp_id,type,currency,gross,fee,net,created_at,note 4111111111111111\n"
              "r1,p1,charge,EUR,1.00,0,1.00,2026-11-20T10:00:00Z,ok\n"
              "r2,p2,charge,EUR,1.00,0,1.00,2026-11-20T10:00:00Z,card 5555 5555 5555 4444,extra\n"
              "r3,p3,charge,EUR,oops 4111111111111111,0,1.00,2026-11-20T10:00:00Z,x\n"
              "\"4111111111111111\"x,p4,charge,EUR,1,0,1,2026-11-20T10:00:00Z,x\n",
              GL_SOURCE_GENERIC);
    assert_read_ok(&r, 1, 3);
    ck_assert_uint_eq(r.stats.pans_masked, 3); /* header, r2, r3; the CSV-broken row is never cut into fields */
    ck_assert(!r.c.lines[0].card.present);     /* the header's card belongs to no row */
    for (int i = 0; i < r.c.n_bad; i++) {
        ck_assert(!gl_pan_text_has_pan(r.c.reason[i]));
        ck_assert_ptr_null(strstr(r.c.reason[i], "1111"));
        ck_assert_ptr_null(strstr(r.c.reason[i], "oops"));
    }
    ck_assert_str_eq(r.c.reason[1], "column \"gross\": not a decimal amount");
}
END_TEST

static Suite *settlement_suite(void) {
    Suite *s = suite_create("settlement");
    TCase *st = tcase_create("stripe");
    tcase_add_test(st, test_source_names);
    tcase_add_test(st, test_stripe_sample);
    tcase_add_test(st, test_stripe_amount_rules);
    tcase_add_test(st, test_stripe_columns_and_times);
    tcase_add_test(st, test_key_limits);
    suite_add_tcase(s, st);

    TCase *ad = tcase_create("adyen");
    tcase_add_test(ad, test_adyen_sample);
    tcase_add_test(ad, test_adyen_rules);
    tcase_add_test(ad, test_adyen_time_zones);
    suite_add_tcase(s, ad);

    TCase *ge = tcase_create("generic");
    tcase_add_test(ge, test_generic_sample);
    tcase_add_test(ge, test_generic_rules);
    suite_add_tcase(s, ge);

    TCase *rows = tcase_create("rows");
    tcase_add_test(rows, test_blank_lines);
    tcase_add_test(rows, test_bad_rows_do_not_stop_the_read);
    tcase_add_test(rows, test_fatal_errors);
    tcase_add_test(rows, test_callback_stops_the_read);
    tcase_add_test(rows, test_bom_and_crlf);
    suite_add_tcase(s, rows);

    TCase *pan = tcase_create("pan");
    tcase_set_timeout(pan, 30);
    tcase_add_test(pan, test_pan_in_every_column_stripe);
    tcase_add_test(pan, test_pan_in_every_column_adyen);
    tcase_add_test(pan, test_pan_in_every_column_generic);
    tcase_add_test(pan, test_pan_in_header_and_bad_rows);
    suite_add_tcase(s, pan);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(settlement_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
