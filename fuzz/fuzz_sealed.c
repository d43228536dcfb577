/*
 * fuzz_sealed.c — libFuzzer harness for sealed report files
 * (reconciliation/sealed.c: gl_sealed_decrypt_stream reads a file an
 * attacker may have replaced or changed: header, key id, chunk size, chunks).
 *
 * Byte 0 (mod 3) picks a mode:
 *   0  the rest is a sealed file, decrypted with a fixed key ring
 *      ("k1", "old"): header parsing and chunk framing on arbitrary bytes;
 *      it must not decrypt (nobody can forge the tag) unless it is empty;
 *   1  the rest is a plaintext: sealed with gl_sealed_encrypt_stream, then
 *      decrypted: must succeed and give the plaintext back;
 *   2  bytes 1-4 describe a change (flip a byte, cut the file, append a
 *      byte), the rest is a plaintext: sealed, changed, then decrypted:
 *      must fail (sealed.h: any change is detected).
 * Oracle: the result as stated per mode, and no key material in messages.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../reconciliation/sealed.h"

/* A broken invariant: say where, then abort (libFuzzer keeps the input as a crash). */
#define FAIL() (fprintf(stderr, "%s:%d: invariant violated\n", __FILE__, __LINE__), abort())

static gl_seal_keyring ring;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    memset(&ring, 0, sizeof ring);
    ring.n_keys = 2;
    strcpy(ring.keys[0].id, "k1");
    strcpy(ring.keys[1].id, "old");
    for (int i = 0; i < GL_KEY_BYTES; i++) {
        ring.keys[0].key[i] = (uint8_t)i;
        ring.keys[1].key[i] = (uint8_t)(0xA0 + i);
    }
    return 0;
}

/* Decrypts buf[0, len); *plain (malloc'd, *plain_len) is what was written. */
static bool decrypt(const uint8_t *buf, size_t len, char **plain, size_t *plain_len) {
    FILE *in = len ? fmemopen((void *)buf, len, "r") : fopen("/dev/null", "r");
    FILE *out = open_memstream(plain, plain_len);
    if (!in || !out) abort();
    gl_error err;
    gl_error_clear(&err);
    bool ok = gl_sealed_decrypt_stream(in, out, &ring, &err);
    fclose(in);
    fclose(out);
    if (!ok && (err.kind == GL_ERR_NONE || !err.message[0])) FAIL();
    return ok;
}

static void seal(const uint8_t *data, size_t size, char **sealed, size_t *sealed_len) {
    FILE *in = size ? fmemopen((void *)data, size, "r") : fopen("/dev/null", "r");
    FILE *out = open_memstream(sealed, sealed_len);
    if (!in || !out) abort();
    gl_error err;
    if (!gl_sealed_encrypt_stream(in, out, &ring, &err)) FAIL();
    fclose(in);
    fclose(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0] % 3;
    data++;
    size--;
    char *plain = NULL, *sealed = NULL;
    size_t plain_len = 0, sealed_len = 0;
    if (mode == 0) {
        if (decrypt(data, size, &plain, &plain_len)) FAIL();
    } else if (mode == 1) {
        seal(data, size, &sealed, &sealed_len);
        if (!decrypt((const uint8_t *)sealed, sealed_len, &plain, &plain_len)) FAIL();
        if (plain_len != size || (size && memcmp(plain, data, size) != 0)) FAIL();
    } else {
        if (size < 4) return 0;
        uint32_t change = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 | data[3];
        data += 4;
        size -= 4;
        seal(data, size, &sealed, &sealed_len);
        size_t at = (change >> 2) % sealed_len;
        size_t len = sealed_len;
        uint8_t *buf = malloc(sealed_len + 1);
        if (!buf) abort();
        memcpy(buf, sealed, sealed_len);
        switch (change & 3) {
        case 0:
        case 1: buf[at] ^= (uint8_t)(1u << (change >> 8 & 7)); break; /* one bit flipped */
        case 2: len = at; break;                                   /* cut short */
        default: buf[len++] = (uint8_t)change; break;              /* a byte appended */
        }
        if (decrypt(buf, len, &plain, &plain_len)) FAIL();
        free(buf);
    }
    free(plain);
    free(sealed);
    return 0;
}
