/*
 * pan.c — the PAN guard: see pan.h for what counts as a PAN and how it is masked.
 *
 * Reading order: digit runs and Luhn (pure functions), masking, tokens, the
 * key ring (loaded by keyring.c).
 *
 * Speed matters: every field of every settlement row goes through
 * gl_pan_mask_buf. Text shorter than 13 bytes cannot hold a PAN and is
 * returned at once; longer text is walked once, and only a run of 13+ digits
 * costs more than a comparison per byte.
 *
 * Copies of card digits live only in small stack arrays, wiped with
 * OPENSSL_cleanse before the function returns.
 */
#include "pan.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define PAN_DIGITS_MIN GL_PAN_DIGITS_MIN
#define PAN_DIGITS_MAX GL_PAN_DIGITS_MAX
#define BIN_DIGITS 6
#define LAST_DIGITS 4

/* ---------- digit runs ---------- */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }
static bool is_separator(char c) { return c == ' ' || c == '-'; }

/* Digits joined by single separators: text[start, end) begins and ends with a digit. */
typedef struct {
    size_t start;
    size_t end;
    size_t n_digits;
} digit_run;

/* The characters a digit run is made of. */
static bool in_run_class(char c) { return is_digit(c) || is_separator(c); }

/*
 * Moves *pos to the start of the next stretch of at least PAN_DIGITS_MIN
 * run-class characters, the only place a 13-digit run can be; false if none.
 * Skip-ahead as in Boyer-Moore: if text[i + 12] is not a run character, no
 * such stretch can start at or before i + 12, so most text (ids, names, dates)
 * is looked at one byte in 13 or so.
 */
static bool next_long_stretch(const char *text, size_t len, size_t *pos) {
    size_t i = *pos;
    while (len - i >= PAN_DIGITS_MIN) {
        size_t j = i + PAN_DIGITS_MIN - 1;
        if (!in_run_class(text[j])) {
            i = j + 1;
            continue;
        }
        size_t k = j;
        while (k > i && in_run_class(text[k - 1])) k--;
        if (k == i) {
            *pos = i;
            return true;
        }
        i = k; /* text[k - 1] breaks the stretch: it can only start at k */
    }
    *pos = len;
    return false;
}

/* Finds the next run at or after *pos that could hold a PAN (13+ digits are
 * not guaranteed: the caller checks n_digits); false when there is none. */
static bool next_run(const char *text, size_t len, size_t *pos, digit_run *run) {
    if (!next_long_stretch(text, len, pos)) return false;
    size_t i = *pos;
    while (i < len && !is_digit(text[i])) i++;
    if (i == len) {
        *pos = len;
        return false;
    }
    run->start = i;
    run->n_digits = 0;
    size_t last_digit = i;
    while (i < len) {
        if (is_digit(text[i])) {
            run->n_digits++;
            last_digit = i++;
        } else if (is_separator(text[i]) && i + 1 < len && is_digit(text[i + 1])) {
            i++;
        } else {
            break;
        }
    }
    run->end = last_digit + 1;
    *pos = run->end;
    return true;
}

/* Copies up to `max` digits of text[from, end), skipping separators. */
static size_t collect_digits(const char *text, size_t from, size_t end, char *out, size_t max) {
    size_t n = 0;
    for (size_t i = from; i < end && n < max; i++)
        if (is_digit(text[i])) out[n++] = text[i];
    return n;
}

bool gl_pan_luhn_ok(const char *digits, size_t len) {
    if (digits == NULL || len == 0) return false;
    unsigned sum = 0;
    bool doubled = false; /* from the right: the check digit is not doubled */
    for (size_t i = len; i-- > 0;) {
        if (!is_digit(digits[i])) return false;
        unsigned d = (unsigned)(digits[i] - '0');
        if (doubled) {
            d *= 2;
            if (d > 9) d -= 9;
        }
        sum += d;
        doubled = !doubled;
    }
    return sum % 10 == 0;
}

/*
 * A card written in groups next to other digits ("exp 4242 4242 4242 4242 12",
 * "qty 2 5105105105105100"): does a sequence of whole groups of 13..19 digits
 * pass Luhn? Only group boundaries are tried, so an unseparated number is
 * judged whole and ids do not turn into cards by chance.
 */
static bool groups_hold_pan(const char *text, const digit_run *run, char card[PAN_DIGITS_MAX], size_t *card_len) {
    for (size_t g = run->start; g < run->end; g++) {
        if (g > run->start && !is_separator(text[g - 1])) continue; /* not the start of a group */
        if (!is_digit(text[g])) continue;
        size_t n = 0;
        for (size_t i = g; i <= run->end && n <= PAN_DIGITS_MAX; i++) {
            bool group_end = i == run->end || is_separator(text[i]);
            if (group_end && n >= PAN_DIGITS_MIN && !(g == run->start && i == run->end) &&
                gl_pan_luhn_ok(card, n)) {
                *card_len = n;
                return true;
            }
            if (i < run->end && is_digit(text[i])) {
                if (n == PAN_DIGITS_MAX) break;
                card[n++] = text[i];
            }
        }
    }
    return false;
}

/*
 * Does the run hold a card number? If so its digits go to card[] (*card_len).
 * 13..19 digits: the run itself, or whole groups of it, must pass Luhn. Longer: every window of
 * 13..19 digits is tried, leftmost first, common card lengths first.
 */
static bool run_holds_pan(const char *text, const digit_run *run, char card[PAN_DIGITS_MAX], size_t *card_len) {
    if (run->n_digits < PAN_DIGITS_MIN) return false;
    if (run->n_digits <= PAN_DIGITS_MAX) {
        *card_len = collect_digits(text, run->start, run->end, card, PAN_DIGITS_MAX);
        return gl_pan_luhn_ok(card, *card_len) || groups_hold_pan(text, run, card, card_len);
    }
    static const size_t lengths[] = {16, 15, 19, 14, 13, 17, 18};
    for (size_t p = run->start; p < run->end; p++) {
        if (!is_digit(text[p])) continue;
        size_t m = collect_digits(text, p, run->end, card, PAN_DIGITS_MAX);
        if (m < PAN_DIGITS_MIN) break; /* fewer digits left than the shortest card */
        for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++) {
            if (lengths[k] <= m && gl_pan_luhn_ok(card, lengths[k])) {
                *card_len = lengths[k];
                return true;
            }
        }
    }
    return false;
}

/* ---------- masking ---------- */

/* Keeps the run's first 6 and last 4 digits; every other digit becomes '*'. */
static void mask_run(char *text, const digit_run *run) {
    size_t seen = 0;
    for (size_t i = run->start; i < run->end; i++) {
        if (!is_digit(text[i])) continue;
        if (seen >= BIN_DIGITS && seen < run->n_digits - LAST_DIGITS) text[i] = '*';
        seen++;
    }
}

static void to_hex(const uint8_t *bytes, size_t n, char *out) {
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[bytes[i] >> 4];
        out[2 * i + 1] = hex[bytes[i] & 0x0F];
    }
    out[2 * n] = '\0';
}

/* out: GL_PAN_TOKEN_HEX + 1 bytes. HMAC-SHA256 over the digits only, so the
 * same card written with or without separators gets the same token. */
static bool hmac_token(const gl_pan_key *key, const char *digits, size_t n, char *out) {
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    out[0] = '\0';
    if (HMAC(EVP_sha256(), key->key, GL_KEY_BYTES, (const unsigned char *)digits, n, mac, &mac_len) == NULL ||
        mac_len != GL_PAN_TOKEN_HEX / 2)
        return false;
    to_hex(mac, mac_len, out);
    OPENSSL_cleanse(mac, sizeof mac);
    return true;
}

static void describe_card(const char *card, size_t n, const gl_pan_keyring *ring, gl_pan_masked *out) {
    memset(out, 0, sizeof *out);
    out->present = true;
    memcpy(out->bin, card, BIN_DIGITS);
    memcpy(out->last4, card + n - LAST_DIGITS, LAST_DIGITS);
    if (ring && ring->n_keys > 0 && hmac_token(&ring->keys[0], card, n, out->token))
        snprintf(out->key_id, sizeof out->key_id, "%s", ring->keys[0].id);
}

/* Cheaper than a memset: this runs for every long field of every row. */
static void clear_masked(gl_pan_masked *m) {
    m->present = false;
    m->bin[0] = m->last4[0] = m->key_id[0] = m->token[0] = '\0';
}

int gl_pan_mask_buf(char *text, size_t len, const gl_pan_keyring *ring, gl_pan_masked *first) {
    if (first) clear_masked(first);
    if (text == NULL || len < PAN_DIGITS_MIN) return 0;
    int masked = 0;
    size_t pos = 0;
    digit_run run;
    while (next_run(text, len, &pos, &run)) {
        char card[PAN_DIGITS_MAX];
        size_t card_len = 0;
        if (!run_holds_pan(text, &run, card, &card_len)) continue;
        if (masked == 0 && first) describe_card(card, card_len, ring, first);
        OPENSSL_cleanse(card, sizeof card);
        mask_run(text, &run);
        masked++;
    }
    return masked;
}

int gl_pan_mask_text(char *text, const gl_pan_keyring *ring, gl_pan_masked *first) {
    if (text == NULL) {
        if (first) clear_masked(first);
        return 0;
    }
    return gl_pan_mask_buf(text, strlen(text), ring, first);
}

bool gl_pan_buf_has_pan(const char *text, size_t len) {
    if (text == NULL || len < PAN_DIGITS_MIN) return false;
    size_t pos = 0;
    digit_run run;
    while (next_run(text, len, &pos, &run)) {
        char card[PAN_DIGITS_MAX];
        size_t card_len = 0;
        bool found = run_holds_pan(text, &run, card, &card_len);
        OPENSSL_cleanse(card, sizeof card);
        if (found) return true;
    }
    return false;
}

bool gl_pan_text_has_pan(const char *text) { return text != NULL && gl_pan_buf_has_pan(text, strlen(text)); }

/* ---------- tokens under a chosen key ---------- */

bool gl_pan_token_with(const gl_pan_keyring *ring, const char *key_id, const char *pan, char *out, size_t out_cap,
                       gl_error *err) {
    if (out && out_cap > 0) out[0] = '\0';
    if (ring == NULL || key_id == NULL || pan == NULL || out == NULL || out_cap < GL_PAN_TOKEN_HEX + 1) {
        gl_error_set(err, GL_ERR_INVALID, "PAN token: bad arguments");
        return false;
    }
    const gl_pan_key *key = gl_keyring_find(ring, key_id);
    if (key == NULL) {
        gl_error_set(err, GL_ERR_NOT_FOUND, "PAN key \"%.32s\" is not in the key ring", key_id);
        return false;
    }
    char digits[PAN_DIGITS_MAX];
    size_t n = 0;
    bool shape_ok = true;
    for (const char *p = pan; *p && shape_ok; p++) {
        if (is_digit(*p) && n < PAN_DIGITS_MAX) digits[n++] = *p;
        else if (is_digit(*p) || !is_separator(*p)) shape_ok = false;
    }
    bool ok = shape_ok && n >= PAN_DIGITS_MIN && hmac_token(key, digits, n, out);
    OPENSSL_cleanse(digits, sizeof digits);
    if (!ok) {
        gl_error_set(err, GL_ERR_INVALID, "not a card number (13-19 digits, separators ' ' or '-')");
        return false;
    }
    return true;
}

/* ---------- key ring ---------- */

bool gl_pan_keyring_load(const char *path, gl_pan_keyring *ring, gl_error *err) {
    return gl_keyring_load(path, "PAN key ring",
                           "card token keys must be readable by their owner only (PCI DSS 3.5.1, 3.6.1)", ring, err);
}

void gl_pan_keyring_clear(gl_pan_keyring *ring) { gl_keyring_clear(ring); }
