/*
 * fuzz_rfc3339.c — libFuzzer harness for the RFC 3339 parser of ledger/pg.c
 * (gl_rfc3339_parse, gl_parse_rfc3339_us: ?as_of=, expires_at, --from/--to)
 * and its wrapper gl_report_parse_time (reconciliation/report.c, which also
 * takes a bare date).
 *
 * Oracles besides "no crash / no sanitizer report":
 *   - acceptance and value agree with an independent implementation of the
 *     grammar documented in pg.h (years 1970..9999, T/t, Z/z or +HH:MM, no
 *     leap second, <= 9 fraction digits with allow_ns and <= 6 without,
 *     fraction truncated to microseconds, never before the epoch nor after
 *     9999-12-31T23:59:59.999999Z, whatever the offset);
 *   - allow_ns=false accepting implies allow_ns=true accepting the same value;
 *   - an accepted instant formats (gl_format_rfc3339_us) to text that parses
 *     back to the same microseconds;
 *   - a refusal always comes with a reason, an acceptance never does.
 *
 * Its one finding, now fixed (corpus/rfc3339/year10000-roundtrip keeps it): the
 * parser accepted a local date of 9999-12-31 with a negative offset, an
 * instant in year 10000 UTC, which gl_format_rfc3339_us rendered as broken
 * text ("10000-01-0T 23:58:59.99999Z").
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ledger/pg.h"
#include "../reconciliation/report.h"

/* A broken invariant: say where, then abort (libFuzzer keeps the input as a crash). */
#define FAIL() (fprintf(stderr, "%s:%d: invariant violated\n", __FILE__, __LINE__), abort())

#define LAST_SECOND INT64_C(253402300799) /* 9999-12-31T23:59:59Z */

static bool digits(const char *s, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* The reference: true and *us when s (of exactly len bytes, no NUL inside
 * the part that matters) is a valid instant. */
static bool reference(const char *s, size_t len, bool allow_ns, int64_t *us) {
    int y, mo, d, h, mi, se;
    if (len < 20) return false;
    if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' || !digits(s + 8, 2, &d))
        return false;
    if (s[10] != 'T' && s[10] != 't') return false;
    if (!digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &se))
        return false;
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1970 || mo < 1 || mo > 12 || d < 1) return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (d > (mo == 2 && leap ? 29 : mdays[mo - 1])) return false;
    if (h > 23 || mi > 59 || se > 59) return false;
    size_t i = 19;
    int64_t frac = 0;
    if (i < len && s[i] == '.') {
        size_t n = 0;
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, n++)
            if (n < 6) frac = frac * 10 + (s[i] - '0');
        if (n == 0 || n > (allow_ns ? 9u : 6u)) return false;
        for (; n < 6; n++) frac *= 10;
    }
    int64_t off = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        int oh, om;
        if (len - i < 6 || !digits(s + i + 1, 2, &oh) || s[i + 3] != ':' || !digits(s + i + 4, 2, &om) || oh > 23 ||
            om > 59)
            return false;
        off = (s[i] == '-' ? -1 : 1) * (int64_t)(oh * 3600 + om * 60);
        i += 6;
    } else {
        return false;
    }
    if (i != len) return false;
    int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
    if (t < 0 || t > LAST_SECOND) return false;
    *us = t * 1000000 + frac;
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    size_t len = strlen(s);

    int64_t us_ns = -1, us_us = -1, ref = -1;
    const char *why_ns = gl_rfc3339_parse(s, true, &us_ns);
    const char *why_us = gl_rfc3339_parse(s, false, &us_us);
    bool ref_ns = reference(s, len, true, &ref);
    if ((why_ns == NULL) != ref_ns || (ref_ns && us_ns != ref)) FAIL();
    bool ref_us = reference(s, len, false, &ref);
    if ((why_us == NULL) != ref_us || (ref_us && us_us != ref)) FAIL();
    if (why_us == NULL && (why_ns != NULL || us_us != us_ns)) FAIL();
    if (why_ns && !*why_ns) FAIL();

    int64_t us_pub = -1;
    if (gl_parse_rfc3339_us(s, &us_pub) != (why_ns == NULL) || (why_ns == NULL && us_pub != us_ns)) FAIL();

    if (why_ns == NULL) {
        if (us_ns < 0) FAIL();
        char out[64];
        gl_format_rfc3339_us(us_ns, out, sizeof out);
        int64_t back = -1;
        if (gl_rfc3339_parse(out, false, &back) != NULL || back != us_ns) FAIL();
    }

    gl_error err;
    gl_error_clear(&err);
    int64_t rep = -1;
    bool rep_ok = gl_report_parse_time(s, &rep, &err);
    if (len != 10 && (rep_ok != (why_us == NULL) || (rep_ok && rep != us_us))) FAIL();
    if (!rep_ok && err.kind == GL_ERR_NONE) FAIL();

    free(s);
    return 0;
}
