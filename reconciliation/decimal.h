/*
 * decimal.h — exact decimal strings to int64 minor units, for settlement files.
 *
 * PSP files state amounts in major units ("10.00", "-5", "1234.5"); the ledger
 * counts minor units. The conversion is exact or it fails: no floating point,
 * no rounding, no silent truncation.
 *
 * Unlike gl_money_parse_decimal (the API's strict input rule), fraction digits
 * beyond the currency exponent are accepted when they are zeros: files written
 * by other systems pad amounts ("12.340" for USD, "100.00" for JPY) and that
 * loses nothing.
 */
#ifndef GL_DECIMAL_H
#define GL_DECIMAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../ledger/error.h"

#define GL_DECIMAL_EXPONENT_MAX 9

/*
 * Grammar:   [+-]? digit+ ( '.' digit+ )?
 * `s` need not be NUL-terminated (len bytes are read). `exponent` is the
 * currency's minor-unit exponent (0..GL_DECIMAL_EXPONENT_MAX).
 *
 *   "12.34" exp 2 -> 1234     "12" -> 1200      "12.3" -> 1230
 *   "-5.00" exp 2 -> -500     "12.340" -> 1234  "12.345" -> error (precision)
 *
 * Rejected: empty, whitespace anywhere, ".5", "5.", "1,000.00", "1e3", "0x10",
 * results outside int64. On failure *out_minor is untouched and err names the
 * problem without quoting the input (it may come from a file holding card data).
 */
bool gl_decimal_to_minor(const char *s, size_t len, int exponent, int64_t *out_minor, gl_error *err);

/* An integer amount already in minor units: [+-]? digit+, within int64. */
bool gl_decimal_parse_int64(const char *s, size_t len, int64_t *out, gl_error *err);

#endif
