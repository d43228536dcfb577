/*
 * fuzz_keyring.c — libFuzzer harness for the key ring file parser
 * (reconciliation/keyring.c: gl_keyring_load, behind gl_pan_keyring_load and
 * gl_seal_keyring_load): `<key_id> <64 hex>` lines, comments, blanks.
 *
 * The input is written to a private temporary file (mode 0600, as the loader
 * requires) and loaded.
 * Oracles: a loaded ring has 1..16 keys with valid, unique ids
 * (gl_keyring_id_ok, gl_keyring_find finds each); a failed load leaves the
 * ring empty and says why; no message, detail or hint holds a run of 16 or
 * more hex digits (key material is never echoed).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../reconciliation/keyring.h"

/* A broken invariant: say where, then abort (libFuzzer keeps the input as a crash). */
#define FAIL() (fprintf(stderr, "%s:%d: invariant violated\n", __FILE__, __LINE__), abort())

static char path[64];

static void remove_file(void) { unlink(path); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/gl-fuzz-keyring-%ld", dir && *dir && strlen(dir) < 32 ? dir : "/tmp", (long)getpid());
    atexit(remove_file);
    return 0;
}

static bool hex_run(const char *s) {
    size_t run = 0;
    for (; *s; s++) {
        bool hex = (*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F');
        run = hex ? run + 1 : 0;
        if (run >= 16) return true;
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    FILE *f = fopen(path, "w");
    if (!f) abort();
    if (fchmod(fileno(f), 0600) != 0) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);

    gl_keyring ring;
    memset(&ring, 0x5a, sizeof ring);
    gl_error err;
    gl_error_clear(&err);
    bool ok = gl_keyring_load(path, "key ring", "keys are private", &ring, &err);
    if (ok) {
        if (ring.n_keys < 1 || ring.n_keys > GL_KEYRING_MAX) FAIL();
        for (int i = 0; i < ring.n_keys; i++) {
            if (!gl_keyring_id_ok(ring.keys[i].id, strlen(ring.keys[i].id))) FAIL();
            if (gl_keyring_find(&ring, ring.keys[i].id) != &ring.keys[i]) FAIL(); /* unique */
        }
    } else {
        if (ring.n_keys != 0 || err.kind == GL_ERR_NONE || !err.message[0]) FAIL();
        if (hex_run(err.message) || hex_run(err.detail) || hex_run(err.hint)) FAIL();
    }
    gl_keyring_clear(&ring);
    return 0;
}
