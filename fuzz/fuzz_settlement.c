/*
 * fuzz_settlement.c — libFuzzer harness for the settlement file readers
 * (reconciliation/settlement.c: gl_settlement_read over Stripe, Adyen and
 * generic CSV, FORMATS.md), with the CSV reader, decimal amounts, times,
 * Adyen time zones and the PAN guard underneath.
 *
 * Input: byte 0 picks the format (b % 3: stripe, adyen, generic); bit 2 makes
 * on_line stop the read at the first line; bit 3 reads without a PAN key
 * ring. The rest is the file (fed through fmemopen).
 *
 * Oracles on every line handed out (FORMATS.md):
 *   - identifiers within their limits, NUL-terminated, no control character;
 *     type lower case; currency 3 upper-case letters known to the ledger;
 *   - net == gross - fee (Stripe, generic; Adyen when gross is present);
 *     generic: reference and psp_id not both empty; Stripe: psp_id not empty;
 *   - no card number left in reference / psp_id / type (an independent
 *     check, the same as fuzz_pan.c's, plus gl_pan_text_has_pan), and a
 *     described card has BIN, last 4
 *     and (with a key ring) a token;
 * and on every error: the reason / message holds no digit run of 13 or more
 * digits (reasons never quote a field); line numbers only go up; the stats
 * add up; stopping from on_line makes the read fail with an error.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ledger/currency.h"
#include "../reconciliation/settlement.h"
#include "pan_oracle.h"

/* A broken invariant: say where, then abort (libFuzzer keeps the input as a crash). */
#define FAIL() (fprintf(stderr, "%s:%d: invariant violated\n", __FILE__, __LINE__), abort())

static gl_pan_keyring ring;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fuzz_test_ring(&ring);
    return 0;
}

static bool has_card(const char *s) { return fuzz_pan_leaks(s, strlen(s)); }

static bool long_digit_run(const char *s) {
    size_t run = 0;
    for (; *s; s++) {
        run = fuzz_dig(*s) ? run + 1 : 0;
        if (run >= 13) return true;
    }
    return false;
}

static bool ident_ok(const char *s, size_t cap) {
    size_t n = strnlen(s, cap);
    if (n == cap) return false;
    for (size_t k = 0; k < n; k++)
        if ((unsigned char)s[k] < 0x20 || s[k] == 0x7f) return false;
    return !has_card(s) && !gl_pan_text_has_pan(s);
}

typedef struct {
    gl_settlement_source src;
    bool stop;
    bool keyed;
    uint64_t lines, errors, last_line;
} ctx;

static bool on_line(void *arg, const gl_settlement_line *l, gl_error *err) {
    ctx *c = arg;
    c->lines++;
    if (l->line_no <= c->last_line || l->line_no < 2) FAIL();
    c->last_line = l->line_no;
    if (!ident_ok(l->reference, sizeof l->reference) || !ident_ok(l->psp_id, sizeof l->psp_id) ||
        !ident_ok(l->type, sizeof l->type) || !l->type[0])
        FAIL();
    for (const char *p = l->type; *p; p++)
        if (*p >= 'A' && *p <= 'Z') FAIL();
    if (strnlen(l->currency, sizeof l->currency) != 3 || !gl_currency_find(l->currency)) FAIL();
    int64_t expected;
    bool sub_ok = !__builtin_sub_overflow(l->gross_minor, l->fee_minor, &expected);
    bool check = c->src != GL_SOURCE_ADYEN || l->gross_minor != 0;
    if (check && (!sub_ok || expected != l->net_minor)) FAIL();
    if (c->src == GL_SOURCE_GENERIC && !l->reference[0] && !l->psp_id[0]) FAIL();
    if (c->src == GL_SOURCE_STRIPE && !l->psp_id[0]) FAIL();
    if (c->src == GL_SOURCE_ADYEN && l->settled_at_us != 0) FAIL();
    if (l->card.present) {
        size_t bin_len = strnlen(l->card.bin, sizeof l->card.bin); /* pan.h: 3..6 digits */
        if (bin_len < 3 || bin_len > 6) FAIL();
        for (size_t k = 0; k < bin_len; k++)
            if (!fuzz_dig(l->card.bin[k])) FAIL();
        for (int k = 0; k < 4; k++)
            if (!fuzz_dig(l->card.last4[k])) FAIL();
        if (l->card.last4[4]) FAIL();
        if (c->keyed && (strlen(l->card.token) != GL_PAN_TOKEN_HEX || strcmp(l->card.key_id, "k1") != 0))
            FAIL();
    }
    if (c->stop) {
        if (c->lines == 1 && (l->line_no & 1)) gl_error_set(err, GL_ERR_CONFLICT, "stop");
        return false;
    }
    return true;
}

static void on_error(void *arg, uint64_t line_no, const char *reason) {
    ctx *c = arg;
    c->errors++;
    if (line_no < 2) FAIL();
    if (!reason || !reason[0] || long_digit_run(reason) || has_card(reason)) FAIL();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    ctx c = {.src = (gl_settlement_source)(data[0] % 3), .stop = (data[0] >> 2) & 1, .keyed = !((data[0] >> 3) & 1)};
    data++;
    size--;
    FILE *f = size ? fmemopen((void *)data, size, "r") : fopen("/dev/null", "r");
    if (!f) abort();
    gl_settlement_stats stats;
    gl_error err;
    bool ok = gl_settlement_read(f, c.src, c.keyed ? &ring : NULL, on_line, on_error, &c, &stats, &err);
    fclose(f);
    if (!ok && (err.kind == GL_ERR_NONE || !err.message[0])) FAIL();
    if (long_digit_run(err.message) || long_digit_run(err.detail) || has_card(err.message)) FAIL();
    if (stats.rows != stats.good + stats.bad || stats.good != c.lines || stats.bad != c.errors) FAIL();
    if (c.stop && c.lines > 0 && ok) FAIL();
    return 0;
}
