/*
 * fuzz_decimal.c — libFuzzer harness for decimal amounts:
 *   reconciliation/decimal.c  gl_decimal_to_minor, gl_decimal_parse_int64
 *                             (every amount column of a settlement file)
 *   ledger/money.c            gl_money_parse_decimal(_status) (the API/CLI
 *                             amount rule), gl_money_format_decimal,
 *                             gl_money_add / gl_money_sub
 *
 * Input: byte 0 picks the exponent (-1..10: the out-of-range ones check the
 * argument checks), the rest is the amount text (not NUL-terminated: the
 * parsers take a length; ASan sees any read past it).
 *
 * Oracles: a reference implementation (with __int128) of the documented
 * grammar, precision and range rules decides the status and value of every
 * call; failures leave *out untouched; a parsed value formats back to text
 * that parses to the same value; format reports -1 exactly when the buffer is
 * too small; add/sub agree with 128-bit arithmetic.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ledger/money.h"
#include "../reconciliation/decimal.h"

/* A broken invariant: say where, then abort (libFuzzer keeps the input as a crash). */
#define FAIL() (fprintf(stderr, "%s:%d: invariant violated\n", __FILE__, __LINE__), abort())

typedef enum { R_OK, R_MALFORMED, R_PRECISE, R_RANGE } ref_status;

/* [+-]? digit+ ('.' digit+)?; `lenient`: fraction digits beyond `exp` may be zeros. */
static ref_status reference(const char *s, size_t len, int exp, bool lenient, int64_t *out) {
    size_t i = 0;
    bool neg = false;
    if (i < len && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    size_t int_start = i;
    while (i < len && s[i] >= '0' && s[i] <= '9') i++;
    size_t n_int = i - int_start;
    if (n_int == 0) return R_MALFORMED;
    size_t frac_start = i, n_frac = 0;
    if (i < len && s[i] == '.') {
        frac_start = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9') i++;
        n_frac = i - frac_start;
        if (n_frac == 0) return R_MALFORMED;
    }
    if (i != len) return R_MALFORMED;
    for (size_t k = (size_t)exp; k < n_frac; k++)
        if (!lenient || s[frac_start + k] != '0') return R_PRECISE;
    const __int128 limit = (__int128)1 << 64; /* anything past this is out of range anyway */
    __int128 v = 0;
    bool big = false;
    for (size_t k = 0; k < n_int && !big; k++) {
        v = v * 10 + (s[int_start + k] - '0');
        big = v > limit;
    }
    for (int k = 0; k < exp && !big; k++) {
        v = v * 10 + ((size_t)k < n_frac ? s[frac_start + k] - '0' : 0);
        big = v > limit;
    }
    if (neg) v = -v;
    if (big || v > INT64_MAX || v < INT64_MIN) return R_RANGE;
    *out = (int64_t)v;
    return R_OK;
}

static void check_format(int64_t v, int exp) {
    char buf[48];
    int n = gl_money_format_decimal(v, exp, buf, sizeof buf);
    if (exp < 0 || exp > 4) {
        if (n != -1) FAIL();
        return;
    }
    if (n <= 0 || (size_t)n != strlen(buf)) FAIL();
    int64_t back = 0;
    if (!gl_money_parse_decimal(buf, (size_t)n, exp, &back) || back != v) FAIL();
    /* exactly n + 1 bytes are needed */
    char small[48];
    if (gl_money_format_decimal(v, exp, small, (size_t)n) != -1 || small[0] != '\0') FAIL();
    if (gl_money_format_decimal(v, exp, small, (size_t)n + 1) != n || memcmp(small, buf, (size_t)n + 1) != 0)
        FAIL();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int exp = (int)(data[0] % 12) - 1;
    size_t len = size - 1;
    char *s = malloc(len ? len : 1); /* exactly len bytes: no NUL, no slack */
    if (!s) return 0;
    memcpy(s, data + 1, len);

    const int64_t sentinel = INT64_C(0x5a5a5a5a5a5a5a5a);
    bool exp_ok = exp >= 0 && exp <= GL_DECIMAL_EXPONENT_MAX;

    /* money.c, strict */
    int64_t ref = 0, got = sentinel;
    gl_money_parse_status st = gl_money_parse_decimal_status(s, len, exp, &got);
    ref_status want = exp_ok ? reference(s, len, exp, false, &ref) : R_MALFORMED;
    if ((int)st != (int)want) FAIL();
    if (st == GL_MONEY_PARSED ? got != ref : got != sentinel) FAIL();
    got = sentinel;
    bool ok = gl_money_parse_decimal(s, len, exp, &got);
    if (ok != (want == R_OK && exp <= 4)) FAIL();
    if (ok ? got != ref : got != sentinel) FAIL();
    if (ok) check_format(got, exp);

    /* decimal.c, lenient about padding zeros */
    gl_error err;
    gl_error_clear(&err);
    got = sentinel;
    ok = gl_decimal_to_minor(s, len, exp, &got, &err);
    want = exp_ok ? reference(s, len, exp, true, &ref) : R_MALFORMED;
    if (ok != (want == R_OK)) FAIL();
    if (ok ? got != ref : (got != sentinel || err.kind != GL_ERR_INVALID)) FAIL();

    gl_error_clear(&err);
    got = sentinel;
    ok = gl_decimal_parse_int64(s, len, &got, &err);
    want = reference(s, len, 0, false, &ref);
    if (ok != (want == R_OK) || (ok ? got != ref : got != sentinel)) FAIL();

    /* formatting and checked arithmetic on values taken from the input bytes */
    if (len >= 16) {
        int64_t a, b, r = sentinel;
        memcpy(&a, s, 8);
        memcpy(&b, s + 8, 8);
        check_format(a, exp);
        __int128 sum = (__int128)a + b, diff = (__int128)a - b;
        bool add_ok = gl_money_add(a, b, &r);
        if (add_ok != (sum >= INT64_MIN && sum <= INT64_MAX) || (add_ok ? r != (int64_t)sum : r != sentinel))
            FAIL();
        r = sentinel;
        bool sub_ok = gl_money_sub(a, b, &r);
        if (sub_ok != (diff >= INT64_MIN && diff <= INT64_MAX) || (sub_ok ? r != (int64_t)diff : r != sentinel))
            FAIL();
    }
    free(s);
    return 0;
}
