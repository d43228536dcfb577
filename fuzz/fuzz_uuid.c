/*
 * fuzz_uuid.c — libFuzzer harness for gl_id_parse (ledger/id.c): the ids in
 * request paths (/v1/accounts/{id}) and bodies (debit_account_id, ...).
 *
 * Oracles besides "no crash / no sanitizer report":
 *   - gl_id_parse accepts exactly the canonical 8-4-4-4-12 hex form (either
 *     case), as checked by an independent implementation here;
 *   - an accepted id formats back (gl_id_format) to the input, lower-cased,
 *     and parses again to the same 16 bytes.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ledger/id.h"

/* A broken invariant: say where, then abort (libFuzzer keeps the input as a crash). */
#define FAIL() (fprintf(stderr, "%s:%d: invariant violated\n", __FILE__, __LINE__), abort())

static bool canonical(const char *s) {
    if (strlen(s) != GL_ID_STR_LEN) return false;
    for (size_t i = 0; i < GL_ID_STR_LEN; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i])) return false;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = '\0';

    gl_id id;
    memset(&id, 0, sizeof id);
    bool ok = gl_id_parse(s, &id);
    if (ok != canonical(s)) FAIL();
    if (ok) {
        char out[GL_ID_STR_LEN + 1];
        gl_id_format(&id, out);
        for (size_t i = 0; i < GL_ID_STR_LEN; i++)
            if (out[i] != (char)tolower((unsigned char)s[i])) FAIL();
        gl_id again;
        if (!gl_id_parse(out, &again) || gl_id_cmp(&id, &again) != 0) FAIL();
        (void)gl_id_partition(&id);
        (void)gl_id_time_ms(&id);
        (void)gl_id_is_nil(&id);
    }
    (void)gl_id_parse(NULL, &id);
    free(s);
    return 0;
}
