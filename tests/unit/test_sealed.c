/*
 * test_sealed.c — unit tests for reconciliation/sealed.c: report files sealed
 * with AES-256-GCM in chunks, and the key ring file they are sealed with.
 *
 * Round trips at every size that matters to the chunking (0, 1, C-1, C, C+1,
 * many chunks, written in pieces of any size); then every kind of tamper must
 * fail with a clear error and must never release the plaintext of the chunk
 * that failed: bit flips (every bit of a small file), truncation (at every
 * byte of a small file, at chunk boundaries of a large one), chunks dropped,
 * swapped, duplicated, bytes appended, a changed key id, a wrong key; key
 * rotation; key files that others can read are refused.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../reconciliation/sealed.h"

#define C ((size_t)GL_SEAL_CHUNK_BYTES)
#define TAG ((size_t)GL_SEAL_TAG_BYTES)
#define KEY_A "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define KEY_B "f0e0d0c0b0a090807060504030201000ffeeddccbbaa99887766554433221100"
#define KEY_C "a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5"

/* Header length for a key id of `id_len` characters (see sealed.h). */
static size_t header_len(size_t id_len) { return 8 + 1 + 1 + id_len + 4 + 8; }

typedef struct {
    uint8_t *data;
    size_t len;
} bytes;

static void bytes_free(bytes *b) {
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

/* Deterministic, non-repeating test content. */
static bytes pattern(size_t len) {
    bytes b = {malloc(len ? len : 1), len};
    ck_assert_ptr_nonnull(b.data);
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b.data[i] = (uint8_t)x;
    }
    return b;
}

/* Writes a key file with `mode`; returns its path (heap: the caller unlinks and frees it). */
static char *key_file(const char *text, mode_t mode) {
    char *path = strdup("/tmp/test-sealed-keys.XXXXXX");
    ck_assert_ptr_nonnull(path);
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    size_t n = strlen(text);
    ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
    ck_assert_int_eq(fchmod(fd, mode), 0);
    close(fd);
    return path;
}

static gl_seal_keyring ring_from(const char *text) {
    char *path = key_file(text, 0600);
    gl_seal_keyring ring;
    gl_error err;
    gl_error_clear(&err);
    bool ok = gl_seal_keyring_load(path, &ring, &err);
    unlink(path);
    free(path);
    ck_assert_msg(ok, "key ring did not load: %s (%s)", err.message, err.detail);
    return ring;
}

/* Everything in `f` from the start. */
static bytes slurp(FILE *f) {
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    ck_assert_int_ge(n, 0);
    rewind(f);
    bytes b = {malloc((size_t)n + 1), (size_t)n};
    ck_assert_ptr_nonnull(b.data);
    ck_assert_uint_eq(fread(b.data, 1, (size_t)n, f), (size_t)n);
    return b;
}

static FILE *file_of(const uint8_t *data, size_t len) {
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    if (len) ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    rewind(f);
    return f;
}

/* Seals `plain`, handing it to the writer in pieces of `piece` bytes. */
static bytes seal_pieces(const gl_seal_keyring *ring, const bytes *plain, size_t piece) {
    FILE *out = tmpfile();
    ck_assert_ptr_nonnull(out);
    gl_error err;
    gl_error_clear(&err);
    gl_sealed_writer *w = gl_sealed_open_write(out, ring, &err);
    ck_assert_msg(w != NULL, "open_write: %s", err.message);
    for (size_t off = 0; off < plain->len; off += piece) {
        size_t n = plain->len - off < piece ? plain->len - off : piece;
        ck_assert_msg(gl_sealed_write(w, plain->data + off, n, &err), "write: %s", err.message);
    }
    ck_assert_msg(gl_sealed_close(w, &err), "close: %s", err.message);
    bytes b = slurp(out);
    fclose(out);
    return b;
}

static bytes seal(const gl_seal_keyring *ring, const bytes *plain) { return seal_pieces(ring, plain, 7000); }

/* Decrypts `sealed`; returns whether it succeeded, the output (also partial) in *out. */
static bool unseal(const gl_seal_keyring *ring, const uint8_t *sealed, size_t len, bytes *out, gl_error *err) {
    FILE *in = file_of(sealed, len);
    FILE *o = tmpfile();
    ck_assert_ptr_nonnull(o);
    gl_error_clear(err);
    bool ok = gl_sealed_decrypt_stream(in, o, ring, err);
    *out = slurp(o);
    fclose(in);
    fclose(o);
    return ok;
}

static void assert_round_trip(const gl_seal_keyring *ring, size_t len, size_t piece) {
    bytes plain = pattern(len);
    bytes sealed = seal_pieces(ring, &plain, piece);
    size_t chunks = len / C + 1; /* the final chunk is always short, possibly empty */
    ck_assert_uint_eq(sealed.len, header_len(strlen(ring->keys[0].id)) + len + chunks * TAG);
    bytes out;
    gl_error err;
    ck_assert_msg(unseal(ring, sealed.data, sealed.len, &out, &err), "%zu bytes: %s (%s)", len, err.message,
                  err.detail);
    ck_assert_uint_eq(out.len, len);
    ck_assert(len == 0 || memcmp(out.data, plain.data, len) == 0);
    bytes_free(&plain);
    bytes_free(&sealed);
    bytes_free(&out);
}

/* Asserts that `sealed` is refused with a message (or detail) containing `want`, and that
 * the output holds only a prefix of whole chunks of `plain` (at most `max_chunks`). */
static void assert_refused(const gl_seal_keyring *ring, const uint8_t *sealed, size_t len, const bytes *plain,
                           const char *want, size_t max_chunks) {
    bytes out;
    gl_error err;
    ck_assert_msg(!unseal(ring, sealed, len, &out, &err), "tampered file (%zu bytes) was accepted", len);
    ck_assert_msg(strstr(err.message, want) != NULL || strstr(err.detail, want) != NULL,
                  "error \"%s\" (%s) does not say \"%s\"", err.message, err.detail, want);
    ck_assert_msg(out.len % C == 0 && out.len / C <= max_chunks, "released %zu bytes of plaintext", out.len);
    ck_assert(out.len == 0 || memcmp(out.data, plain->data, out.len) == 0);
    bytes_free(&out);
}

/* A copy of `b` that the test may modify. */
static bytes copy(const bytes *b) {
    bytes c = {malloc(b->len + 2 * (C + TAG)), b->len};
    ck_assert_ptr_nonnull(c.data);
    memcpy(c.data, b->data, b->len);
    return c;
}

/* ---- round trips ---------------------------------------------------------- */

START_TEST(test_round_trip_sizes) {
    gl_seal_keyring ring = ring_from("k1 " KEY_A "\n");
    const size_t sizes[] = {0, 1, 2, 15, 16, 17, C - 1, C, C + 1, 2 * C, 3 * C + 123};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) assert_round_trip(&ring, sizes[i], 7000);
    gl_seal_keyring_clear(&ring);
}
END_TEST

START_TEST(test_round_trip_any_piece_size) {
    gl_seal_keyring ring = ring_from("k1 " KEY_A "\n");
    assert_round_trip(&ring, 2 * C + 77, 1);
    assert_round_trip(&ring, 2 * C + 77, C);
    assert_round_trip(&ring, 2 * C + 77, C + 1);
    assert_round_trip(&ring, 5 * C, 3 * C); /* one write spanning several chunks */
    gl_seal_keyring_clear(&ring);
}
END_TEST

START_TEST(test_encrypt_stream_and_fresh_nonce) {
    gl_seal_keyring ring = ring_from("k1 " KEY_A "\n");
    bytes plain = pattern(C + 5);
    FILE *in = file_of(plain.data, plain.len), *out = tmpfile();
    gl_error err;
    gl_error_clear(&err);
    ck_assert_msg(gl_sealed_encrypt_stream(in, out, &ring, &err), "%s", err.message);
    bytes a = slurp(out);
    bytes b = seal(&ring, &plain);
    ck_assert_uint_eq(a.len, b.len);
    /* Same key, same plaintext: a fresh random nonce makes the files differ. */
    ck_assert(memcmp(a.data, b.data, a.len) != 0);
    ck_assert_mem_eq(a.data, "GLSEAL1\n", 8);
    bytes o;
    ck_assert(unseal(&ring, a.data, a.len, &o, &err));
    ck_assert_uint_eq(o.len, plain.len);
    ck_assert_mem_eq(o.data, plain.data, plain.len);
    fclose(in);
    fclose(out);
    bytes_free(&plain);
    bytes_free(&a);
    bytes_free(&b);
    bytes_free(&o);
    gl_seal_keyring_clear(&ring);
}
END_TEST

/* ---- tampering ------------------------------------------------------------ */

START_TEST(test_every_bit_flip_is_detected) {
    gl_seal_keyring ring = ring_from("k1 " KEY_A "\nk2 " KEY_B "\n");
    bytes plain = pattern(100);
    bytes sealed = seal(&ring, &plain);
    bytes t = copy(&sealed);
    for (size_t i = 0; i < sealed.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(t.data, sealed.data, sealed.len);
            t.data[i] ^= (uint8_t)(1u << bit);
            bytes out;
            gl_error err;
            ck_assert_msg(!unseal(&ring, t.data, t.len, &out, &err), "flip of byte %zu bit %d was accepted", i, bit);
            ck_assert_msg(out.len == 0, "flip of byte %zu bit %d released %zu bytes", i, bit, out.len);
            ck_assert_msg(err.message[0] != '\0', "no error message");
            bytes_free(&out);
        }
    }
    bytes_free(&t);
    bytes_free(&sealed);
    bytes_free(&plain);
    gl_seal_keyring_clear(&ring);
}
END_TEST

START_TEST(test_every_truncation_is_detected) {
    gl_seal_keyring ring = ring_from("k1 " KEY_A "\n");
    bytes plain = pattern(100);
    bytes sealed = seal(&ring, &plain);
    for (size_t n = 0; n < sealed.len; n++) {
        bytes out;
        gl_error err;
        ck_assert_msg(!unseal(&ring, sealed.data, n, &out, &err), "cut to %zu of %zu bytes was accepted", n,
                      sealed.len);
        ck_assert_uint_eq(out.len, 0);
        bytes_free(&out);
    }
    bytes_free(&sealed);
    bytes_free(&plain);
    gl_seal_keyring_clear(&ring);
}
END_TEST

/* A 4-chunk file: chunks 0-2 full, chunk 3 final (500 bytes). */
typedef struct {
    gl_seal_keyring ring;
    bytes plain, sealed;
    size_t hdr;
} big_file;

static big_file big(void) {
    big_file f;
    f.ring = ring_from("k1 " KEY_A "\nk2 " KEY_B "\n");
    f.plain = pattern(3 * C + 500);
    f.sealed = seal(&f.ring, &f.plain);
    f.hdr = header_len(2);
    ck_assert_uint_eq(f.sealed.len, f.hdr + 3 * (C + TAG) + 500 + TAG);
    return f;
}

static void big_free(big_file *f) {
    bytes_free(&f->plain);
    bytes_free(&f->sealed);
    gl_seal_keyring_clear(&f->ring);
}

/* Offset of chunk i in the sealed file. */
static size_t chunk_at(const big_file *f, size_t i) { return f->hdr + i * (C + TAG); }

START_TEST(test_flips_in_each_part) {
    big_file f = big();
    struct {
        size_t offset;
        const char *want;
        size_t chunks_released;
    } cases[] = {
        {0, "not a sealed report file", 0},                     /* magic */
        {8, "unsupported format version", 0},                   /* version */
        {9, "damaged or was tampered with (header)", 0},        /* key id length */
        {12, "damaged or was tampered with (header)", 0},       /* chunk size, out of range */
        {15, "chunk 0", 0},                                     /* chunk size, in range */
        {f.hdr - 1, "chunk 0", 0},                              /* nonce */
        {chunk_at(&f, 0) + 10, "chunk 0", 0},                   /* first chunk's body */
        {chunk_at(&f, 2) + 1000, "chunk 2", 2},                 /* a middle chunk's body */
        {chunk_at(&f, 1) + C + 3, "chunk 1", 1},                /* a middle chunk's tag */
        {chunk_at(&f, 3) + 499, "chunk 3", 3},                  /* the final chunk's body */
        {f.sealed.len - 1, "chunk 3", 3},                       /* the final chunk's tag */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bytes t = copy(&f.sealed);
        t.data[cases[i].offset] ^= 0x20;
        assert_refused(&f.ring, t.data, t.len, &f.plain, cases[i].want, cases[i].chunks_released);
        bytes_free(&t);
    }
    big_free(&f);
}
END_TEST

START_TEST(test_key_id_change_is_detected) {
    big_file f = big();
    /* k1 -> k2: a key the ring has, so the header parses and chunk 0 fails. */
    bytes t = copy(&f.sealed);
    ck_assert_mem_eq(t.data + 10, "k1", 2);
    t.data[11] = '2';
    assert_refused(&f.ring, t.data, t.len, &f.plain, "chunk 0", 0);
    /* k1 -> kX: a key the ring lacks, named in the error. */
    t.data[11] = 'X';
    assert_refused(&f.ring, t.data, t.len, &f.plain, "key \"kX\", which is not in the key ring", 0);
    bytes_free(&t);
    big_free(&f);
}
END_TEST

START_TEST(test_truncation_at_chunk_boundaries) {
    big_file f = big();
    /* Cut exactly before the final chunk, and before each full chunk: every
     * remaining chunk is intact, only the end is missing. */
    for (size_t i = 0; i <= 3; i++)
        assert_refused(&f.ring, f.sealed.data, chunk_at(&f, i), &f.plain, "damaged or was tampered with", i);
    /* Cut inside the final chunk, and inside a full one. */
    assert_refused(&f.ring, f.sealed.data, f.sealed.len - 1, &f.plain, "chunk 3", 3);
    assert_refused(&f.ring, f.sealed.data, chunk_at(&f, 2) + 100, &f.plain, "chunk 2", 2);
    /* Without the final chunk's last full predecessor: chunk 2 read as final. */
    assert_refused(&f.ring, f.sealed.data, chunk_at(&f, 3) - 1, &f.plain, "chunk 2", 2);
    big_free(&f);
}
END_TEST

START_TEST(test_dropped_swapped_duplicated_chunks) {
    big_file f = big();
    size_t full = C + TAG;
    bytes t = copy(&f.sealed);
    /* drop chunk 1 */
    memmove(t.data + chunk_at(&f, 1), t.data + chunk_at(&f, 2), f.sealed.len - chunk_at(&f, 2));
    assert_refused(&f.ring, t.data, f.sealed.len - full, &f.plain, "chunk 1", 1);
    /* swap chunks 1 and 2 */
    memcpy(t.data, f.sealed.data, f.sealed.len);
    memcpy(t.data + chunk_at(&f, 1), f.sealed.data + chunk_at(&f, 2), full);
    memcpy(t.data + chunk_at(&f, 2), f.sealed.data + chunk_at(&f, 1), full);
    assert_refused(&f.ring, t.data, f.sealed.len, &f.plain, "chunk 1", 1);
    /* duplicate chunk 0 in place of chunk 1 */
    memcpy(t.data, f.sealed.data, f.sealed.len);
    memcpy(t.data + chunk_at(&f, 1), f.sealed.data + chunk_at(&f, 0), full);
    assert_refused(&f.ring, t.data, f.sealed.len, &f.plain, "chunk 1", 1);
    bytes_free(&t);
    big_free(&f);
}
END_TEST

START_TEST(test_appended_bytes) {
    big_file f = big();
    bytes t = copy(&f.sealed);
    const size_t extra[] = {1, TAG, 1000, C + TAG};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        memcpy(t.data, f.sealed.data, f.sealed.len);
        memset(t.data + f.sealed.len, 0x5a, extra[i]);
        assert_refused(&f.ring, t.data, f.sealed.len + extra[i], &f.plain, "chunk 3", 3);
    }
    /* The final chunk repeated after itself. */
    size_t final_len = 500 + TAG;
    memcpy(t.data, f.sealed.data, f.sealed.len);
    memcpy(t.data + f.sealed.len, f.sealed.data + chunk_at(&f, 3), final_len);
    assert_refused(&f.ring, t.data, f.sealed.len + final_len, &f.plain, "chunk 3", 3);
    bytes_free(&t);
    big_free(&f);
}
END_TEST

START_TEST(test_aborted_writer_leaves_a_refused_file) {
    gl_seal_keyring ring = ring_from("k1 " KEY_A "\n");
    bytes plain = pattern(C + 10);
    FILE *out = tmpfile();
    gl_error err;
    gl_sealed_writer *w = gl_sealed_open_write(out, &ring, &err);
    ck_assert_ptr_nonnull(w);
    ck_assert(gl_sealed_write(w, plain.data, plain.len, &err));
    gl_sealed_abort(w);
    bytes sealed = slurp(out);
    assert_refused(&ring, sealed.data, sealed.len, &plain, "chunk 1", 1);
    assert_refused(&ring, sealed.data, sealed.len, &plain, "the file ends before its final chunk (cut short)", 1);
    fclose(out);
    bytes_free(&sealed);
    bytes_free(&plain);
    gl_seal_keyring_clear(&ring);
}
END_TEST

START_TEST(test_not_a_sealed_file) {
    gl_seal_keyring ring = ring_from("k1 " KEY_A "\n");
    bytes plain = pattern(10);
    const char *csv = "date,amount\n2026-11-25,100\n";
    assert_refused(&ring, (const uint8_t *)csv, strlen(csv), &plain, "not a sealed report file", 0);
    assert_refused(&ring, (const uint8_t *)"", 0, &plain, "not a sealed report file", 0);
    bytes_free(&plain);
    gl_seal_keyring_clear(&ring);
}
END_TEST

/* ---- keys ----------------------------------------------------------------- */

START_TEST(test_wrong_key_same_id) {
    gl_seal_keyring ring = ring_from("k1 " KEY_A "\n");
    gl_seal_keyring impostor = ring_from("k1 " KEY_C "\n");
    bytes plain = pattern(C + 1);
    bytes sealed = seal(&ring, &plain);
    assert_refused(&impostor, sealed.data, sealed.len, &plain, "chunk 0", 0);
    bytes_free(&sealed);
    bytes_free(&plain);
    gl_seal_keyring_clear(&ring);
    gl_seal_keyring_clear(&impostor);
}
END_TEST

START_TEST(test_rotation) {
    gl_seal_keyring old_ring = ring_from("k2023 " KEY_A "\n");
    gl_seal_keyring new_ring = ring_from("# rotated 2026-11\nk2026 " KEY_B "\nk2023 " KEY_A "  # retired\n");
    ck_assert_int_eq(new_ring.n_keys, 2);
    ck_assert_str_eq(new_ring.keys[0].id, "k2026");
    bytes plain = pattern(2 * C + 3);
    bytes before = seal(&old_ring, &plain);
    bytes after = seal(&new_ring, &plain);
    ck_assert_mem_eq(after.data + 10, "k2026", 5); /* new files use the active key */
    bytes out;
    gl_error err;
    ck_assert_msg(unseal(&new_ring, before.data, before.len, &out, &err), "%s", err.message);
    ck_assert_uint_eq(out.len, plain.len);
    ck_assert_mem_eq(out.data, plain.data, plain.len);
    bytes_free(&out);
    ck_assert_msg(unseal(&new_ring, after.data, after.len, &out, &err), "%s", err.message);
    ck_assert_mem_eq(out.data, plain.data, plain.len);
    bytes_free(&out);
    /* The old ring has never seen the new key. */
    assert_refused(&old_ring, after.data, after.len, &plain, "key \"k2026\", which is not in the key ring", 0);
    bytes_free(&before);
    bytes_free(&after);
    bytes_free(&plain);
    gl_seal_keyring_clear(&old_ring);
    gl_seal_keyring_clear(&new_ring);
}
END_TEST

START_TEST(test_key_file_permissions) {
    const mode_t refused[] = {0640, 0604, 0660, 0644, 0610, 0601};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char *path = key_file("k1 " KEY_A "\n", refused[i]);
        gl_seal_keyring ring;
        gl_error err;
        gl_error_clear(&err);
        ck_assert_msg(!gl_seal_keyring_load(path, &ring, &err), "mode %04o was accepted", (unsigned)refused[i]);
        ck_assert_msg(strstr(err.message, "accessible to group or others") != NULL, "%s", err.message);
        ck_assert_msg(strstr(err.hint, "chmod 600") != NULL, "hint: %s", err.hint);
        unlink(path);
        free(path);
    }
    const mode_t accepted[] = {0600, 0400};
    for (size_t i = 0; i < sizeof accepted / sizeof accepted[0]; i++) {
        char *path = key_file("k1 " KEY_A "\n", accepted[i]);
        gl_seal_keyring ring;
        gl_error err;
        ck_assert_msg(gl_seal_keyring_load(path, &ring, &err), "mode %04o: %s", (unsigned)accepted[i], err.message);
        ck_assert_int_eq(ring.n_keys, 1);
        ck_assert_uint_eq(ring.keys[0].key[31], 0x1f);
        gl_seal_keyring_clear(&ring);
        ck_assert_int_eq(ring.n_keys, 0);
        ck_assert_uint_eq(ring.keys[0].key[31], 0);
        unlink(path);
        free(path);
    }
    gl_seal_keyring ring;
    gl_error err;
    ck_assert(!gl_seal_keyring_load("/nonexistent/keys", &ring, &err));
    ck_assert_msg(strstr(err.message, "cannot open key file") != NULL, "%s", err.message);
}
END_TEST

START_TEST(test_key_file_format) {
    gl_seal_keyring ring = ring_from("\n  # keys\r\nk_1 " KEY_A "\r\n\tk-2\t" KEY_B "\n# end");
    ck_assert_int_eq(ring.n_keys, 2);
    ck_assert_str_eq(ring.keys[0].id, "k_1");
    ck_assert_str_eq(ring.keys[1].id, "k-2");
    ck_assert_uint_eq(ring.keys[1].key[0], 0xf0);
    gl_seal_keyring_clear(&ring);

    const struct {
        const char *text, *want;
    } bad[] = {
        {"", "holds no key"},
        {"# only a comment\n", "holds no key"},
        {"k1 " KEY_A "\nk1 " KEY_B "\n", "line 2: duplicate key id"},
        {"k1 0001020304\n", "line 1: expected"},
        {"k1 " KEY_A "00\n", "line 1: expected"},
        {"k1\n", "line 1: expected"},
        {"k1 " KEY_A " extra\n", "line 1: unexpected text"},
        {"k1 zz0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n", "64 hex characters"},
        {"k.1 " KEY_A "\n", "key id must be"},
        {"k123456789012345678901234567890123 " KEY_A "\n", "key id must be"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *path = key_file(bad[i].text, 0600);
        gl_error err;
        gl_error_clear(&err);
        ck_assert_msg(!gl_seal_keyring_load(path, &ring, &err), "accepted: %s", bad[i].text);
        ck_assert_msg(strstr(err.message, bad[i].want) != NULL, "\"%s\" does not say \"%s\"", err.message,
                      bad[i].want);
        /* Key material never appears in an error. */
        ck_assert(strstr(err.message, "0001020304") == NULL && strstr(err.detail, "0001020304") == NULL);
        ck_assert_int_eq(ring.n_keys, 0);
        unlink(path);
        free(path);
    }
}
END_TEST

static Suite *sealed_suite(void) {
    Suite *s = suite_create("sealed");
    TCase *rt = tcase_create("round_trip");
    tcase_add_test(rt, test_round_trip_sizes);
    tcase_add_test(rt, test_round_trip_any_piece_size);
    tcase_add_test(rt, test_encrypt_stream_and_fresh_nonce);
    suite_add_tcase(s, rt);

    TCase *tamper = tcase_create("tamper");
    tcase_set_timeout(tamper, 60);
    tcase_add_test(tamper, test_every_bit_flip_is_detected);
    tcase_add_test(tamper, test_every_truncation_is_detected);
    tcase_add_test(tamper, test_flips_in_each_part);
    tcase_add_test(tamper, test_key_id_change_is_detected);
    tcase_add_test(tamper, test_truncation_at_chunk_boundaries);
    tcase_add_test(tamper, test_dropped_swapped_duplicated_chunks);
    tcase_add_test(tamper, test_appended_bytes);
    tcase_add_test(tamper, test_aborted_writer_leaves_a_refused_file);
    tcase_add_test(tamper, test_not_a_sealed_file);
    suite_add_tcase(s, tamper);

    TCase *keys = tcase_create("keys");
    tcase_add_test(keys, test_wrong_key_same_id);
    tcase_add_test(keys, test_rotation);
    tcase_add_test(keys, test_key_file_permissions);
    tcase_add_test(keys, test_key_file_format);
    suite_add_tcase(s, keys);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(sealed_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
