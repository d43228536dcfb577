/*
 * money.h — int64 minor-unit arithmetic with overflow checks, and exact
 * conversion between minor units and decimal strings. No floating point.
 */
#ifndef GL_MONEY_H
#define GL_MONEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* *out = a + b; false (and *out untouched) on int64 overflow. */
bool gl_money_add(int64_t a, int64_t b, int64_t *out);
/* *out = a - b; false on overflow. */
bool gl_money_sub(int64_t a, int64_t b, int64_t *out);

/*
 * Parses a decimal amount ("12", "-12.5", "0.07", "1,234.50" is NOT accepted)
 * into minor units for a currency with `exponent` decimal places (0..4).
 * Exact: "12.345" with exponent 2 is rejected (too many decimals), never rounded.
 * Accepts an optional leading '-' or '+', digits, optional '.' and up to
 * `exponent` fraction digits (fewer are zero-padded). Rejects empty strings,
 * whitespace, exponents (1e3), and values outside int64. `len` is the length
 * of `s` (need not be NUL-terminated).
 */
bool gl_money_parse_decimal(const char *s, size_t len, int exponent, int64_t *out);

/*
 * The parser behind gl_money_parse_decimal, for callers that must say why an
 * amount was refused (reconciliation/decimal.c, settlement files): the same
 * grammar and arithmetic, checked in this order (so "99999999999999999999x"
 * is malformed, not too large), and `exponent` may be 0..9. *out is set only
 * on GL_MONEY_PARSED. NULL arguments or a bad exponent: GL_MONEY_MALFORMED.
 */
#define GL_MONEY_PARSE_EXPONENT_MAX 9
typedef enum {
    GL_MONEY_PARSED,
    GL_MONEY_MALFORMED,    /* not [+-]? digit+ ('.' digit+)? */
    GL_MONEY_TOO_PRECISE,  /* more than `exponent` fraction digits */
    GL_MONEY_OUT_OF_RANGE, /* the minor units do not fit in int64 */
} gl_money_parse_status;
gl_money_parse_status gl_money_parse_decimal_status(const char *s, size_t len, int exponent, int64_t *out);

/*
 * Formats minor units as a decimal string with `exponent` fraction digits
 * ("-12.50" for -1250, exp 2; "1250" for exp 0). Returns the length written
 * (excluding NUL), or -1 if `cap` is too small. INT64_MIN is handled.
 */
int gl_money_format_decimal(int64_t minor, int exponent, char *buf, size_t cap);

#endif
