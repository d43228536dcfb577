/*
 * decimal.c — see decimal.h.
 *
 * Two steps: first the syntax is checked and the parts located (so that
 * "99999999999999999999x" is reported as malformed, not as too large), then
 * the value is accumulated with the overflow builtins. The accumulator runs
 * downwards (<= 0) so INT64_MIN, whose magnitude has no positive int64, parses.
 */
#include "decimal.h"

typedef struct {
    bool negative;
    const char *int_digits;
    size_t n_int;
    const char *frac_digits;
    size_t n_frac;
} decimal_parts;

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static size_t count_digits(const char *s, size_t from, size_t len) {
    size_t i = from;
    while (i < len && is_digit(s[i])) i++;
    return i - from;
}

/* [+-]? digit+ ('.' digit+)? — false on anything else. */
static bool split_decimal(const char *s, size_t len, bool allow_fraction, decimal_parts *p) {
    size_t i = 0;
    p->negative = false;
    if (i < len && (s[i] == '+' || s[i] == '-')) {
        p->negative = s[i] == '-';
        i++;
    }
    p->int_digits = s + i;
    p->n_int = count_digits(s, i, len);
    if (p->n_int == 0) return false;
    i += p->n_int;
    p->frac_digits = s + i;
    p->n_frac = 0;
    if (allow_fraction && i < len && s[i] == '.') {
        i++;
        p->frac_digits = s + i;
        p->n_frac = count_digits(s, i, len);
        if (p->n_frac == 0) return false;
        i += p->n_frac;
    }
    return i == len;
}

/* acc = acc * 10 - digit, on a non-positive accumulator; false on overflow. */
static bool push_digit(int64_t *acc, int digit) {
    int64_t r;
    if (__builtin_mul_overflow(*acc, 10, &r)) return false;
    if (__builtin_sub_overflow(r, digit, &r)) return false;
    *acc = r;
    return true;
}

/* Accumulates the parts, the fraction padded or cut to `exponent` digits
 * (split_decimal and the precision check ran before: what is cut is zeros). */
static bool accumulate(const decimal_parts *p, int exponent, int64_t *out) {
    int64_t acc = 0;
    for (size_t k = 0; k < p->n_int; k++)
        if (!push_digit(&acc, p->int_digits[k] - '0')) return false;
    for (size_t k = 0; k < (size_t)exponent; k++) {
        int digit = k < p->n_frac ? p->frac_digits[k] - '0' : 0;
        if (!push_digit(&acc, digit)) return false;
    }
    if (!p->negative && __builtin_sub_overflow((int64_t)0, acc, &acc)) return false;
    *out = acc;
    return true;
}

bool gl_decimal_to_minor(const char *s, size_t len, int exponent, int64_t *out_minor, gl_error *err) {
    if (s == NULL || out_minor == NULL || exponent < 0 || exponent > GL_DECIMAL_EXPONENT_MAX) {
        gl_error_set(err, GL_ERR_INVALID, "decimal: bad arguments");
        return false;
    }
    if (len == 0) {
        gl_error_set(err, GL_ERR_INVALID, "empty amount");
        return false;
    }
    decimal_parts p;
    if (!split_decimal(s, len, true, &p)) {
        gl_error_set(err, GL_ERR_INVALID, "not a decimal amount");
        gl_error_hint(err, "expected [+-]digits[.digits], no spaces, separators or exponents");
        return false;
    }
    for (size_t k = (size_t)exponent; k < p.n_frac; k++) {
        if (p.frac_digits[k] != '0') {
            gl_error_set(err, GL_ERR_INVALID, "more than %d decimal places: precision would be lost", exponent);
            return false;
        }
    }
    int64_t v;
    if (!accumulate(&p, exponent, &v)) {
        gl_error_set(err, GL_ERR_INVALID, "amount out of range");
        gl_error_detail(err, "minor units must fit in a signed 64-bit integer");
        return false;
    }
    *out_minor = v;
    return true;
}

bool gl_decimal_parse_int64(const char *s, size_t len, int64_t *out, gl_error *err) {
    if (s == NULL || out == NULL) {
        gl_error_set(err, GL_ERR_INVALID, "decimal: bad arguments");
        return false;
    }
    decimal_parts p;
    if (len == 0 || !split_decimal(s, len, false, &p)) {
        gl_error_set(err, GL_ERR_INVALID, len == 0 ? "empty amount" : "not an integer amount");
        return false;
    }
    int64_t v;
    if (!accumulate(&p, 0, &v)) {
        gl_error_set(err, GL_ERR_INVALID, "amount out of range");
        return false;
    }
    *out = v;
    return true;
}
