#include "pan_oracle.h"

#include <string.h>

void fuzz_test_ring(gl_pan_keyring *ring) {
    memset(ring, 0, sizeof *ring);
    ring->n_keys = 1;
    strcpy(ring->keys[0].id, "k1");
    for (int i = 0; i < GL_KEY_BYTES; i++) ring->keys[0].key[i] = (uint8_t)i;
}

bool fuzz_dig(char c) { return c >= '0' && c <= '9'; }

/* ---- separators: code points ---- */

static const uint32_t SEP_POINTS[] = {' ',    '\t',   '-',    '.',    '/',    '_',    ':',    '(',    ')',
                                      '[',    ']',    '{',    '}',    '+',    0x00A0, 0x00AD, 0x00B7, 0x2022,
                                      0x202F, 0x205F, 0x2060, 0x2212, 0x3000, 0xFEFF, 0xFF0D};

static bool sep_point(uint32_t cp) {
    if ((cp >= 0x2000 && cp <= 0x200D) || (cp >= 0x2010 && cp <= 0x2015)) return true;
    for (size_t k = 0; k < sizeof SEP_POINTS / sizeof SEP_POINTS[0]; k++)
        if (SEP_POINTS[k] == cp) return true;
    return false;
}

/* Decodes one well-formed UTF-8 code point (shortest form) at t[i]: its length, 0 if malformed. */
static size_t utf8_decode(const unsigned char *t, size_t avail, uint32_t *cp) {
    if (t[0] < 0x80) {
        *cp = t[0];
        return 1;
    }
    size_t n = t[0] >= 0xF0 && t[0] < 0xF5 ? 4 : t[0] >= 0xE0 ? 3 : t[0] >= 0xC2 && t[0] < 0xE0 ? 2 : 0;
    if (n == 0 || n > avail) return 0;
    uint32_t v = t[0] & (0x7F >> n);
    for (size_t k = 1; k < n; k++) {
        if ((t[k] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (t[k] & 0x3F);
    }
    static const uint32_t min_of[] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min_of[n] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return n;
}

size_t fuzz_sep_len(const char *t, size_t len, size_t i) {
    uint32_t cp = 0;
    size_t n = utf8_decode((const unsigned char *)t + i, len - i, &cp);
    return n > 0 && sep_point(cp) ? n : 0;
}

bool fuzz_luhn(const char *d, size_t n) {
    unsigned sum = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned v = (unsigned)(d[n - 1 - k] - '0');
        if (k % 2 == 1) v = v * 2 > 9 ? v * 2 - 9 : v * 2;
        sum += v;
    }
    return sum % 10 == 0;
}

/* ---- one run: its digits, where they are, what lies between them ---- */

#define RUN_CAP 4096 /* digits of a run looked at (enough for a test) */

typedef struct {
    char d[RUN_CAP];
    size_t at[RUN_CAP];       /* byte offset of each digit */
    bool group_start[RUN_CAP + 1];
    size_t n;
} orun;

/* ---- dates: "the run is exactly a list of dates with optional times" ---- */

typedef struct {
    size_t start, len; /* in digits */
} ogroup;

static unsigned num(const orun *r, ogroup g) {
    unsigned v = 0;
    for (size_t k = 0; k < g.len; k++) v = v * 10 + (unsigned)(r->d[g.start + k] - '0');
    return v;
}

/* the single ASCII byte between groups a and a + 1 of the run, or 0 */
static char between(const char *t, const orun *r, const ogroup *g, size_t a) {
    size_t k = g[a + 1].start;
    return r->at[k] == r->at[k - 1] + 2 ? t[r->at[k - 1] + 1] : 0;
}

static bool oracle_is_dates(const char *t, const orun *r) {
    ogroup g[64];
    size_t ng = 0;
    for (size_t k = 0; k < r->n; k++) {
        if (!r->group_start[k]) continue;
        if (ng == 32) return false; /* pan.c gives up on the date shape beyond 32 groups too */
        g[ng].start = k;
        g[ng].len = 0;
        ng++;
    }
    for (size_t a = 0; a < ng; a++) g[a].len = (a + 1 < ng ? g[a + 1].start : r->n) - g[a].start;
    size_t a = 0;
    while (a < ng) {
        if (a + 3 > ng) return false;
        char s = between(t, r, g, a);
        if (!(s == '-' || s == '/' || s == '.') || between(t, r, g, a + 1) != s) return false;
        unsigned x = num(r, g[a]), y = num(r, g[a + 1]), z = num(r, g[a + 2]);
        bool ymd = g[a].len == 4 && g[a + 1].len == 2 && g[a + 2].len == 2 && x >= 1900 && x <= 2199 && y >= 1 &&
                   y <= 12 && z >= 1 && z <= 31;
        bool dmy = g[a].len == 2 && g[a + 1].len == 2 && g[a + 2].len == 4 && z >= 1900 && z <= 2199 && x >= 1 &&
                   x <= 31 && y >= 1 && y <= 31 && (x <= 12 || y <= 12);
        if (!ymd && !dmy) return false;
        a += 3;
        if (a >= ng || between(t, r, g, a - 1) != ' ') continue;
        /* HH:MM */
        if (a + 2 > ng || g[a].len != 2 || g[a + 1].len != 2 || between(t, r, g, a) != ':' || num(r, g[a]) > 23 ||
            num(r, g[a + 1]) > 59)
            continue;
        a += 2;
        if (a < ng && between(t, r, g, a - 1) == ':' && g[a].len == 2 && num(r, g[a]) <= 60) {
            a++;
            if (a < ng && between(t, r, g, a - 1) == '.' && g[a].len <= 9) a++;
        }
        if (a < ng && (between(t, r, g, a - 1) == '+' || between(t, r, g, a - 1) == '-')) {
            if (g[a].len == 2 && num(r, g[a]) <= 23) {
                a++;
                if (a < ng && between(t, r, g, a - 1) == ':' && g[a].len == 2 && num(r, g[a]) <= 59) a++;
            } else if (g[a].len == 4 && num(r, g[a]) / 100 <= 23) {
                a++;
            }
        }
    }
    return true;
}

/* ---- cards in a run ---- */

static bool report(const orun *r, size_t from, size_t n, fuzz_card_fn fn, void *arg) {
    if (fn) (void)fn(arg, r->at + from, n);
    return true;
}

static bool run_cards(const char *t, const orun *r, fuzz_card_fn fn, void *arg) {
    size_t nd = r->n;
    if (nd < GL_PAN_DIGITS_MIN || oracle_is_dates(t, r)) return false;
    bool any = false;
    if (nd <= GL_PAN_DIGITS_MAX) {
        for (size_t a = 0; a < nd; a++) {
            if (!r->group_start[a]) continue;
            for (size_t b = a + GL_PAN_DIGITS_MIN; b <= nd && b - a <= GL_PAN_DIGITS_MAX; b++)
                if (r->group_start[b] && fuzz_luhn(r->d + a, b - a)) any = report(r, a, b - a, fn, arg);
        }
        return any;
    }
    for (size_t a = 0; a + GL_PAN_DIGITS_MIN <= nd; a++)
        for (size_t w = GL_PAN_DIGITS_MIN; w <= GL_PAN_DIGITS_MAX && a + w <= nd; w++)
            if (fuzz_luhn(r->d + a, w)) any = report(r, a, w, fn, arg);
    return any;
}

bool fuzz_pan_cards(const char *t, size_t len, fuzz_card_fn fn, void *arg) {
    static orun r;
    bool any = false;
    size_t i = 0;
    while (i < len) {
        if (!fuzz_dig(t[i])) {
            i++;
            continue;
        }
        /* one maximal run from i */
        r.n = 0;
        bool new_group = true;
        while (i < len) {
            if (fuzz_dig(t[i])) {
                if (r.n < RUN_CAP) {
                    r.d[r.n] = t[i];
                    r.at[r.n] = i;
                    r.group_start[r.n] = new_group;
                    r.n++;
                }
                new_group = false;
                i++;
                continue;
            }
            size_t j = i, seps = 0, s;
            while (j < len && seps < 4 && (s = fuzz_sep_len(t, len, j)) > 0) {
                j += s;
                seps++;
            }
            if (seps == 0 || seps > 3 || j >= len || !fuzz_dig(t[j])) break;
            new_group = true;
            i = j;
        }
        r.group_start[r.n] = true; /* the run's end closes its last group */
        if (run_cards(t, &r, fn, arg)) any = true;
    }
    return any;
}

bool fuzz_pan_leaks(const char *t, size_t len) { return fuzz_pan_cards(t, len, NULL, NULL); }
