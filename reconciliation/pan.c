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

#include "../ledger/text.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define PAN_DIGITS_MIN GL_PAN_DIGITS_MIN
#define PAN_DIGITS_MAX GL_PAN_DIGITS_MAX
#define BIN_DIGITS 6
#define LAST_DIGITS 4
#define HIDDEN_DIGITS_MIN 6 /* never fewer hidden digits than this: see kept_prefix */
#define PAN_TEXT_MAX 256    /* gl_pan_token_with: longest card text, separators included */
#define SEP_RUN_MAX 3       /* separator characters between two digits of one run */

/* ---------- digit runs ---------- */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* ASCII separators: what people and systems put between the groups of a card
 * number (spaces, dashes, dots, slashes, underscores, colons, brackets, '+'
 * of form encoding). Not ',' (CSV delimiter, thousands), not '*' (the mask). */
static bool is_ascii_separator(unsigned char c) {
    switch (c) {
    case ' ': case '\t': case '-': case '.': case '/': case '_': case ':':
    case '(': case ')': case '[': case ']': case '{': case '}': case '+':
        return true;
    default:
        return false;
    }
}

/*
 * Bytes of the UTF-8 separator at s[0, n), 0 if none: Unicode spaces (NBSP
 * U+00A0, U+2000..U+200A, narrow NBSP U+202F, U+205F, U+3000), invisible
 * ones (soft hyphen U+00AD, U+200B..U+200D, word joiner U+2060, BOM U+FEFF),
 * hyphens and dashes (U+2010..U+2015, minus U+2212, fullwidth U+FF0D) and
 * dots (middle dot U+00B7, bullet U+2022). Word processors and PDFs put these
 * where a person typed a space or a dash.
 */
static size_t utf8_separator_len(const unsigned char *s, size_t n) {
    if (n >= 2 && s[0] == 0xC2) return (s[1] == 0xA0 || s[1] == 0xAD || s[1] == 0xB7) ? 2 : 0;
    if (n < 3) return 0;
    unsigned a = s[0], b = s[1], c = s[2];
    if (a == 0xE2 && b == 0x80)
        return ((c >= 0x80 && c <= 0x8D) || (c >= 0x90 && c <= 0x95) || c == 0xA2 || c == 0xAF) ? 3 : 0;
    if (a == 0xE2 && b == 0x81) return (c == 0x9F || c == 0xA0) ? 3 : 0;
    if (a == 0xE2 && b == 0x88) return c == 0x92 ? 3 : 0;
    if (a == 0xE3 && b == 0x80) return c == 0x80 ? 3 : 0;
    if (a == 0xEF && b == 0xBB) return c == 0xBF ? 3 : 0;
    if (a == 0xEF && b == 0xBC) return c == 0x8D ? 3 : 0;
    return 0;
}

/* Bytes of the separator character at text[i] (i < len), 0 if it is none. */
static size_t separator_len(const char *text, size_t len, size_t i) {
    const unsigned char *s = (const unsigned char *)text + i;
    if (s[0] < 0x80) return is_ascii_separator(s[0]) ? 1 : 0;
    return utf8_separator_len(s, len - i);
}

/* Digits joined by 1..SEP_RUN_MAX separator characters: text[start, end)
 * begins and ends with a digit. */
typedef struct {
    size_t start;
    size_t end;
    size_t n_digits;
} digit_run;

/* A byte that can be part of a digit run: a digit, an ASCII separator, or any
 * non-ASCII byte (a superset of the UTF-8 separators' bytes: the skip-ahead
 * below only needs to never skip a real run). */
static bool in_run_class(char c) {
    return is_digit(c) || is_ascii_separator((unsigned char)c) || (unsigned char)c >= 0x80;
}

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

/* Past the separators at text[i]: at most SEP_RUN_MAX characters; i if none. */
static size_t skip_separators(const char *text, size_t len, size_t i) {
    for (int k = 0; k < SEP_RUN_MAX && i < len; k++) {
        size_t s = separator_len(text, len, i);
        if (s == 0) break;
        i += s;
    }
    return i;
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
        } else {
            size_t after = skip_separators(text, len, i);
            if (after == i || after == len || !is_digit(text[after])) break;
            i = after;
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
        if (g > run->start && is_digit(text[g - 1])) continue; /* not the start of a group */
        if (!is_digit(text[g])) continue;
        size_t n = 0;
        for (size_t i = g; i <= run->end && n <= PAN_DIGITS_MAX; i++) {
            bool group_end = i == run->end || !is_digit(text[i]); /* (a separator's bytes: repeats the test) */
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

/* ---------- dates and times are not cards ---------- */

/*
 * With '-', ':', '.', '/' and ' ' as separators, a timestamp such as
 * "2026-11-20 10:00:00" is a 14-digit run, and one in ten would pass Luhn:
 * every Stripe and Adyen time column would be masked now and then (and the
 * row lost as malformed). A run that is exactly a list of dates, each with an
 * optional time, is therefore not a card:
 *     date  = YYYY-MM-DD | DD-MM-YYYY | MM-DD-YYYY, one of '-' '/' '.' twice
 *     time  = ' ' HH:MM[:SS[.fraction]][(+|-)HH[[:]MM]]
 *     dates joined by any separators (a range "2026-11-01 - 2026-11-30").
 * Field values are checked (month 1..12, day 1..31, year 1900..2199, hour
 * 0..23, minute 0..59, second 0..60). A card written in that exact shape is
 * not a spelling anyone uses; anything else next to a date (a card after a
 * timestamp) makes the run fail the shape and be judged as usual.
 */
#define DATE_GROUPS_MAX 32

typedef struct {
    size_t n;                          /* groups */
    size_t at[DATE_GROUPS_MAX];        /* offset of each digit group */
    size_t len[DATE_GROUPS_MAX];       /* its digits */
} run_groups;

/* The run's digit groups; false if there are more than DATE_GROUPS_MAX. */
static bool split_groups(const char *text, const digit_run *run, run_groups *g) {
    g->n = 0;
    for (size_t i = run->start; i < run->end;) {
        if (!is_digit(text[i])) {
            i++;
            continue;
        }
        if (g->n == DATE_GROUPS_MAX) return false;
        g->at[g->n] = i;
        while (i < run->end && is_digit(text[i])) i++;
        g->len[g->n] = i - g->at[g->n];
        g->n++;
    }
    return true;
}

static unsigned group_value(const char *text, const run_groups *g, size_t k) {
    unsigned v = 0;
    for (size_t i = 0; i < g->len[k] && i < 4; i++) v = v * 10 + (unsigned)(text[g->at[k] + i] - '0');
    return v;
}

/* The one separator byte between group k and k + 1 ('\0' if it is not exactly one ASCII byte). */
static char sep_after(const char *text, const run_groups *g, size_t k) {
    size_t from = g->at[k] + g->len[k];
    return g->at[k + 1] == from + 1 ? text[from] : '\0';
}

static bool in_range(unsigned v, unsigned lo, unsigned hi) { return v >= lo && v <= hi; }

/* A date at groups k..k+2? */
static bool date_at(const char *text, const run_groups *g, size_t k) {
    if (k + 3 > g->n) return false;
    char s = sep_after(text, g, k);
    if ((s != '-' && s != '/' && s != '.') || sep_after(text, g, k + 1) != s) return false;
    unsigned a = group_value(text, g, k), b = group_value(text, g, k + 1), c = group_value(text, g, k + 2);
    if (g->len[k] == 4 && g->len[k + 1] == 2 && g->len[k + 2] == 2)
        return in_range(a, 1900, 2199) && in_range(b, 1, 12) && in_range(c, 1, 31);
    if (g->len[k] == 2 && g->len[k + 1] == 2 && g->len[k + 2] == 4)
        return in_range(c, 1900, 2199) && in_range(a, 1, 31) && in_range(b, 1, 31) && (a <= 12 || b <= 12);
    return false;
}

/* A time at group k (after the date's ' '): returns the groups it spans, 0 if none. */
static size_t time_at(const char *text, const run_groups *g, size_t k) {
    if (k + 2 > g->n || g->len[k] != 2 || g->len[k + 1] != 2 || sep_after(text, g, k) != ':' ||
        !in_range(group_value(text, g, k), 0, 23) || !in_range(group_value(text, g, k + 1), 0, 59))
        return 0;
    size_t used = 2;
    if (k + used < g->n && sep_after(text, g, k + used - 1) == ':' && g->len[k + used] == 2 &&
        in_range(group_value(text, g, k + used), 0, 60)) {
        used++; /* seconds */
        if (k + used < g->n && sep_after(text, g, k + used - 1) == '.' && g->len[k + used] <= 9) used++;
    }
    if (k + used < g->n) { /* a zone offset: +HH, +HHMM, +HH:MM */
        char s = sep_after(text, g, k + used - 1);
        size_t h = k + used;
        if ((s == '+' || s == '-') && g->len[h] == 2 && in_range(group_value(text, g, h), 0, 23)) {
            used++;
            if (h + 1 < g->n && sep_after(text, g, h) == ':' && g->len[h + 1] == 2 &&
                in_range(group_value(text, g, h + 1), 0, 59))
                used++;
        } else if ((s == '+' || s == '-') && g->len[h] == 4 && in_range(group_value(text, g, h) / 100, 0, 23)) {
            used++;
        }
    }
    return used;
}

/* Is the run a list of dates (each with an optional time) and nothing else? */
static bool run_is_dates(const char *text, const digit_run *run) {
    run_groups g;
    if (!split_groups(text, run, &g)) return false;
    size_t k = 0;
    while (k < g.n) {
        if (!date_at(text, &g, k)) return false;
        k += 3;
        if (k < g.n && sep_after(text, &g, k - 1) == ' ') k += time_at(text, &g, k);
    }
    return true;
}

/*
 * Does the run hold a card number? If so its digits go to card[] (*card_len).
 * 13..19 digits: the run itself, or whole groups of it, must pass Luhn. Longer: every window of
 * 13..19 digits is tried, leftmost first, common card lengths first.
 */
static bool run_holds_pan(const char *text, const digit_run *run, char card[PAN_DIGITS_MAX], size_t *card_len) {
    if (run->n_digits < PAN_DIGITS_MIN || run_is_dates(text, run)) return false;
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

/*
 * How many leading digits of an n-digit number may be shown (PCI DSS 3.4.1:
 * BIN and last 4 at most): the first 6, but never so many that fewer than 6
 * digits stay hidden, so a 13-digit card shows 3 + 4, a 14-digit one 4 + 4,
 * a 15-digit one 5 + 4, 16..19 digits 6 + 4. No card ever shows a larger
 * share than first 6 / last 4 of a 16-digit card (10 of 16).
 */
static size_t kept_prefix(size_t n) {
    assert(n >= PAN_DIGITS_MIN);
    size_t most = n - LAST_DIGITS - HIDDEN_DIGITS_MIN;
    return most < BIN_DIGITS ? most : BIN_DIGITS;
}

/* Keeps the run's first kept_prefix(n) and last 4 digits; every other digit
 * becomes '*'. Any card inside the run (a window or whole groups of it) then
 * has at least 6 of its digits hidden too: what the run shows of it is at most
 * the card's own kept_prefix and last 4 (see pan.h). */
static void mask_run(char *text, const digit_run *run) {
    assert(run->n_digits >= PAN_DIGITS_MIN);
    size_t keep = kept_prefix(run->n_digits), seen = 0;
    for (size_t i = run->start; i < run->end; i++) {
        if (!is_digit(text[i])) continue;
        if (seen >= keep && seen < run->n_digits - LAST_DIGITS) text[i] = '*';
        seen++;
    }
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
    gl_hex(mac, mac_len, out);
    OPENSSL_cleanse(mac, sizeof mac);
    return true;
}

static void describe_card(const char *card, size_t n, const gl_pan_keyring *ring, gl_pan_masked *out) {
    memset(out, 0, sizeof *out);
    out->present = true;
    assert(n >= PAN_DIGITS_MIN && n <= PAN_DIGITS_MAX);
    memcpy(out->bin, card, kept_prefix(n)); /* (NUL-terminated by the memset) */
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
    size_t pan_len = strnlen(pan, PAN_TEXT_MAX + 1);
    if (pan_len > PAN_TEXT_MAX) shape_ok = false;
    for (size_t i = 0; i < pan_len && shape_ok;) {
        size_t sep = separator_len(pan, pan_len, i);
        if (is_digit(pan[i]) && n < PAN_DIGITS_MAX) digits[n++] = pan[i++];
        else if (sep > 0) i += sep;
        else shape_ok = false;
    }
    bool ok = shape_ok && n >= PAN_DIGITS_MIN && hmac_token(key, digits, n, out);
    OPENSSL_cleanse(digits, sizeof digits);
    if (!ok) {
        gl_error_set(err, GL_ERR_INVALID, "not a card number (13-19 digits and separators)");
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
