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
    return exponent_ok(exponent) && gl_money_parse_decimal_status(s, len, exponent, out) == GL_MONEY_PARSED;
}

/* Counts the digits of s[from, len). */
static size_t count_digits(const char *s, size_t from, size_t len) {
    size_t i = from;
    while (i < len && is_digit(s[i])) i++;
    return i - from;
}

/* Three steps: the syntax, the precision, then the value (push_digit). */
gl_money_parse_status gl_money_parse_decimal_status(const char *s, size_t len, int exponent, int64_t *out) {
    if (s == NULL || out == NULL || exponent < 0 || exponent > GL_MONEY_PARSE_EXPONENT_MAX) return GL_MONEY_MALFORMED;

    size_t i = 0;
    bool negative = false;
    if (i < len && (s[i] == '-' || s[i] == '+')) {
        negative = (s[i] == '-');
        i++;
    }
    const char *int_digits = s + i;
    size_t n_int = count_digits(s, i, len);
    if (n_int == 0) return GL_MONEY_MALFORMED; /* "", "-", ".5", "abc" */
    i += n_int;
    const char *frac_digits = s + i;
    size_t n_frac = 0;
    if (i < len && s[i] == '.') {
        frac_digits = s + ++i;
        n_frac = count_digits(s, i, len);
        if (n_frac == 0) return GL_MONEY_MALFORMED; /* "1." */
        i += n_frac;
    }
    if (i != len) return GL_MONEY_MALFORMED; /* trailing junk: " ", "e3", "x10", ",000", NUL */

    if (n_frac > (size_t)exponent) return GL_MONEY_TOO_PRECISE; /* never round */

    int64_t acc = 0; /* always <= 0, see push_digit */
    for (size_t k = 0; k < n_int; k++)
        if (!push_digit(&acc, int_digits[k] - '0')) return GL_MONEY_OUT_OF_RANGE;
    for (size_t k = 0; k < (size_t)exponent; k++) /* "12.5" -> 1250 for exp 2 */
        if (!push_digit(&acc, k < n_frac ? frac_digits[k] - '0' : 0)) return GL_MONEY_OUT_OF_RANGE;
    /* acc == INT64_MIN here means the positive value is INT64_MAX + 1. */
    if (!negative && __builtin_sub_overflow((int64_t)0, acc, &acc)) return GL_MONEY_OUT_OF_RANGE;
    *out = acc;
    return GL_MONEY_PARSED;
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
