/*
 * decimal.c — see decimal.h.
 *
 * The grammar and the arithmetic are gl_money_parse_decimal_status's
 * (ledger/money.c): syntax first (so that "99999999999999999999x" is reported
 * as malformed, not as too large), then precision, then the value, with the
 * overflow builtins. This file adds what settlement files need: fraction
 * zeros beyond the exponent are dropped before parsing, exponents up to 9,
 * and error messages that name the problem without quoting the input.
 */
#include "decimal.h"

#include <string.h>

#include "../ledger/money.h"

_Static_assert(GL_DECIMAL_EXPONENT_MAX <= GL_MONEY_PARSE_EXPONENT_MAX, "money.c parses every exponent allowed here");

/*
 * The length of s[0, len) without the fraction's zeros beyond `exponent`
 * ("12.340" exp 2 -> "12.34", "100.00" exp 0 -> "100"): padding that loses
 * nothing. A '.' is dropped only with the zeros after it, so "5." stays
 * malformed; cutting trailing zeros never makes a malformed string valid.
 */
static size_t without_padding(const char *s, size_t len, int exponent) {
    const char *dot = memchr(s, '.', len);
    if (dot == NULL) return len;
    size_t dot_at = (size_t)(dot - s);
    size_t n = len;
    while (n > dot_at + 1 + (size_t)exponent && s[n - 1] == '0') n--;
    if (n < len && n == dot_at + 1) n = dot_at; /* every fraction digit was padding */
    return n;
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
    switch (gl_money_parse_decimal_status(s, without_padding(s, len, exponent), exponent, out_minor)) {
    case GL_MONEY_PARSED:
        return true;
    case GL_MONEY_MALFORMED:
        gl_error_set(err, GL_ERR_INVALID, "not a decimal amount");
        gl_error_hint(err, "expected [+-]digits[.digits], no spaces, separators or exponents");
        return false;
    case GL_MONEY_TOO_PRECISE:
        gl_error_set(err, GL_ERR_INVALID, "more than %d decimal places: precision would be lost", exponent);
        return false;
    case GL_MONEY_OUT_OF_RANGE:
        break;
    }
    gl_error_set(err, GL_ERR_INVALID, "amount out of range");
    gl_error_detail(err, "minor units must fit in a signed 64-bit integer");
    return false;
}

bool gl_decimal_parse_int64(const char *s, size_t len, int64_t *out, gl_error *err) {
    if (s == NULL || out == NULL) {
        gl_error_set(err, GL_ERR_INVALID, "decimal: bad arguments");
        return false;
    }
    if (len == 0) {
        gl_error_set(err, GL_ERR_INVALID, "empty amount");
        return false;
    }
    /* Exponent 0: any '.' is too precise, which here means "not an integer". */
    gl_money_parse_status st = gl_money_parse_decimal_status(s, len, 0, out);
    if (st == GL_MONEY_PARSED) return true;
    gl_error_set(err, GL_ERR_INVALID, st == GL_MONEY_OUT_OF_RANGE ? "amount out of range" : "not an integer amount");
    return false;
}
