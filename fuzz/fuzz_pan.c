/*
 * fuzz_pan.c — libFuzzer harness for the PAN guard (reconciliation/pan.c):
 * gl_pan_mask_buf / gl_pan_mask_text scanning arbitrary text (every field of
 * every settlement row goes through it), gl_pan_buf_has_pan, gl_pan_luhn_ok,
 * gl_pan_token_with.
 *
 * Input: byte 0 bit 0 picks gl_pan_mask_text (NUL-terminated: the scan stops
 * at the first NUL) instead of gl_pan_mask_buf (exactly `len` bytes, a NUL is
 * an ordinary byte); the rest is the text.
 *
 * The leak oracle (fuzz/pan_oracle.c, an independent implementation of
 * pan.h's definition: runs of digits apart by up to 3 separator code points,
 * Luhn on the run, on whole groups, on windows of a longer run, dates left
 * out; the harness aborts on any violation, so a finding is a card number
 * that got through): the masked output holds no card, and every card the
 * oracle finds in the input has at least 6 of its digits turned into '*'
 * in the output (PCI DSS 3.4.1: pan.h's "what is kept").
 * Masking only turns digits into '*' (never another byte; so every digit left
 * in the output was at the same place in the input), the count is 0 exactly
 * when nothing changed and agrees with gl_pan_buf_has_pan on the input, the
 * first card's description has BIN/last 4 digits and a token, and the
 * output no longer "has a PAN" for gl_pan_buf_has_pan either.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* A card of the input (oracle): at least 6 of its digits are '*' in the output. */
static const char *masked_out;
static bool card_hidden_enough(void *arg, const size_t *at, size_t n) {
    (void)arg;
    size_t hidden = 0;
    for (size_t k = 0; k < n; k++) hidden += masked_out[at[k]] == '*';
    if (hidden < 6 || n - hidden > 10) FAIL();
    return true;
}

static bool all_digits(const char *s, size_t n) {
    for (size_t k = 0; k < n; k++)
        if (!fuzz_dig(s[k])) return false;
    return s[n] == '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    bool text_mode = data[0] & 1;
    size_t len = size - 1;
    char *in = malloc(len + 1), *out = malloc(len + 1);
    if (!in || !out) {
        free(in);
        free(out);
        return 0;
    }
    memcpy(in, data + 1, len);
    in[len] = '\0';
    memcpy(out, in, len + 1);

    gl_pan_masked first;
    memset(&first, 0x55, sizeof first);
    int n;
    size_t scanned = len;
    if (text_mode) {
        n = gl_pan_mask_text(out, &ring, &first);
        scanned = strlen(in);
    } else {
        n = gl_pan_mask_buf(out, len, &ring, &first);
    }

    /* only digits become '*', only within the scanned part */
    for (size_t k = 0; k <= len; k++) {
        if (out[k] == in[k]) continue;
        if (k >= scanned || !fuzz_dig(in[k]) || out[k] != '*') FAIL();
    }
    bool changed = memcmp(in, out, len) != 0;
    if (n < 0 || (n == 0) == changed) FAIL();
    if (gl_pan_buf_has_pan(in, scanned) != (n > 0)) FAIL();
    if (n > 0) {
        size_t bin_len = strnlen(first.bin, sizeof first.bin);
        if (!first.present || bin_len < 3 || bin_len > 6 || !all_digits(first.bin, bin_len) ||
            !all_digits(first.last4, 4) ||
            strcmp(first.key_id, "k1") != 0 || strlen(first.token) != GL_PAN_TOKEN_HEX)
            FAIL();
    } else if (first.present) {
        FAIL();
    }

    /* the leak oracle: nothing left, and every card of the input kept short enough */
    if (fuzz_pan_leaks(out, scanned)) FAIL();
    if (fuzz_pan_cards(in, scanned, NULL, NULL) != (n > 0)) FAIL();
    masked_out = out;
    (void)fuzz_pan_cards(in, scanned, card_hidden_enough, NULL);
    if (gl_pan_buf_has_pan(out, scanned)) FAIL();
    if (gl_pan_text_has_pan(out)) FAIL(); /* stops at the first NUL: a part of what was scanned */

    /* luhn and token helpers on the raw input */
    if (len > 0 && len <= 64) {
        bool ref = true;
        for (size_t k = 0; k < len; k++) ref = ref && fuzz_dig(in[k]);
        ref = ref && fuzz_luhn(in, len);
        if (gl_pan_luhn_ok(in, len) != ref) FAIL();
    }
    char token[GL_PAN_TOKEN_HEX + 1];
    gl_error err;
    gl_error_clear(&err);
    bool tok = gl_pan_token_with(&ring, "k1", in, token, sizeof token, &err);
    size_t nd = 0;
    bool shape = true;
    size_t in_len = strlen(in);
    if (in_len > 256) shape = false; /* pan.c: the longest card text it takes */
    for (size_t k = 0; k < in_len && shape;) {
        size_t sep = fuzz_sep_len(in, in_len, k);
        if (fuzz_dig(in[k])) nd++, k++;
        else if (sep > 0) k += sep;
        else shape = false;
    }
    if (tok != (shape && nd >= GL_PAN_DIGITS_MIN && nd <= GL_PAN_DIGITS_MAX)) FAIL();
    if (tok && strlen(token) != GL_PAN_TOKEN_HEX) FAIL();

    free(in);
    free(out);
    return 0;
}
