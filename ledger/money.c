/*
 * money.c — int64 minor-unit arithmetic and exact decimal conversion.
 *
 * No floating point anywhere: a double cannot hold every int64 and cannot
 * represent 0.1, so every step here is integer arithmetic with the GCC/Clang
 * overflow builtins, which report overflow instead of wrapping (signed
 * overflow is undefined behaviour in C).
 */
#include "money.h"

#define GL_MONEY_MAX_EXPONENT 4 /* CLF and UYW; no active ISO 4217 code has more */

/*
 * Longest formatted amount: '-', 19 digits of INT64_MIN's magnitude, '.',
 * plus NUL; the leading "0." padding only happens for short magnitudes so it
 * never adds to the 19-digit case. 32 leaves slack.
 */
#define FORMAT_TMP_CAP 32

static bool exponent_ok(int exponent) {
    return exponent >= 0 && exponent <= GL_MONEY_MAX_EXPONENT;
}

bool gl_money_add(int64_t a, int64_t b, int64_t *out) {
    int64_t r;
    if (out == NULL || __builtin_add_overflow(a, b, &r)) return false;
    *out = r; /* only on success: callers may keep the old value on failure */
    return true;
}

bool gl_money_sub(int64_t a, int64_t b, int64_t *out) {
    int64_t r;
    if (out == NULL || __builtin_sub_overflow(a, b, &r)) return false;
    *out = r;
    return true;
}

/*
 * Appends one decimal digit to a NON-POSITIVE accumulator: acc = acc*10 - d.
 * Accumulating downwards lets "-9223372036854775808" parse: INT64_MIN's
 * magnitude does not fit in a positive int64, but INT64_MIN itself does.
 */
static bool push_digit(int64_t *acc, int digit) {
    int64_t r;
    if (__builtin_mul_overflow(*acc, 10, &r)) return false;
    if (__builtin_sub_overflow(r, digit, &r)) return false;
    *acc = r;
    return true;
}

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/*
 * Grammar (anything else is rejected, nothing is rounded or trimmed):
 *
 *   amount := [+-]? digit+ ( '.' digit{1,exponent} )?
 *
 * Decisions beyond the header:
 *   - ".5" is rejected (an integer digit is required) and so is "1." (a '.'
 *     must be followed by a digit): both are typos more often than intent,
 *     and "0.5" / "1" say the same thing unambiguously.
 *   - More than `exponent` fraction digits are rejected even when the extra
 *     ones are zeros ("1.230" for USD): the header allows "up to exponent",
 *     and a client sending extra places is probably using the wrong currency.
 *     Consequently, with exponent 0 any '.' is rejected.
 *   - Leading zeros ("007") are accepted; they do not change the value.
 *   - "-0" and "+0" are 0.
 */
bool gl_money_parse_decimal(const char *s, size_t len, int exponent, int64_t *out) {
    if (s == NULL || out == NULL || !exponent_ok(exponent)) return false;

    size_t i = 0;
    bool negative = false;
    if (i < len && (s[i] == '-' || s[i] == '+')) {
        negative = (s[i] == '-');
        i++;
    }

    int64_t acc = 0; /* always <= 0, see push_digit */
    size_t int_digits = 0;
    for (; i < len && is_digit(s[i]); i++, int_digits++) {
        if (!push_digit(&acc, s[i] - '0')) return false;
    }
    if (int_digits == 0) return false; /* "", "-", ".5", "abc" */

    int frac_digits = 0;
    if (i < len && s[i] == '.') {
        i++;
        for (; i < len && is_digit(s[i]); i++, frac_digits++) {
            if (frac_digits == exponent) return false; /* too precise: never round */
            if (!push_digit(&acc, s[i] - '0')) return false;
        }
        if (frac_digits == 0) return false; /* "1." */
    }
    if (i != len) return false; /* trailing junk: " ", "e3", "x10", ",000", NUL */

    for (; frac_digits < exponent; frac_digits++) { /* "12.5" -> 1250 for exp 2 */
        if (!push_digit(&acc, 0)) return false;
    }

    if (!negative) {
        /* acc == INT64_MIN here means the positive value is INT64_MAX + 1. */
        if (__builtin_sub_overflow((int64_t)0, acc, &acc)) return false;
    }
    *out = acc;
    return true;
}

/*
 * Writes the digits of `mag` right to left into the end of tmp (which has
 * room for FORMAT_TMP_CAP bytes) and returns the index of the first one.
 * At least exponent+1 digits are produced so there is always a digit before
 * the point ("0.05"), and the point is placed after `exponent` digits.
 */
static size_t render_reversed(uint64_t mag, int exponent, bool negative, char *tmp) {
    size_t pos = FORMAT_TMP_CAP;
    int written = 0;
    do {
        if (written == exponent && exponent > 0) tmp[--pos] = '.';
        tmp[--pos] = (char)('0' + (int)(mag % 10u));
        mag /= 10u;
        written++;
    } while (mag != 0 || written <= exponent);
    if (negative) tmp[--pos] = '-';
    return pos;
}

int gl_money_format_decimal(int64_t minor, int exponent, char *buf, size_t cap) {
    if (buf == NULL || cap == 0) return -1;
    buf[0] = '\0'; /* a failed call never leaves stale text behind */
    if (!exponent_ok(exponent)) return -1;

    /* Magnitude in uint64: 0 - (uint64_t)INT64_MIN is 2^63, well defined. */
    bool negative = minor < 0;
    uint64_t mag = negative ? 0u - (uint64_t)minor : (uint64_t)minor;

    char tmp[FORMAT_TMP_CAP];
    size_t start = render_reversed(mag, exponent, negative, tmp);
    size_t n = FORMAT_TMP_CAP - start;
    if (n + 1 > cap) return -1; /* +1 for the NUL */
    for (size_t k = 0; k < n; k++) buf[k] = tmp[start + k];
    buf[n] = '\0';
    return (int)n;
}
