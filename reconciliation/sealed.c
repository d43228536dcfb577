/*
 * sealed.c — see sealed.h for the file format and what it detects.
 *
 * Reading order: the key ring (loaded by keyring.c), then the header (shared
 * by both sides), then seal_chunk/open_chunk (the only places that touch
 * AES-GCM), then the writer and the reader built on them.
 */
#include "sealed.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#define MAGIC_BYTES 8
#define IV_BYTES 12
/* magic, version, key id length: what a reader needs before the key id */
#define HEADER_FIXED_BYTES (MAGIC_BYTES + 2)
#define HEADER_MAX (HEADER_FIXED_BYTES + GL_SEAL_KEY_ID_MAX + 4 + GL_SEAL_NONCE_BYTES)
#define AAD_SUFFIX_BYTES 9 /* uint64 chunk index, uint8 final flag */
#define CHUNKS_MAX ((uint64_t)UINT32_MAX + 1) /* the IV holds a 32-bit chunk counter */

/* ---------- small helpers ---------- */

static const uint8_t magic[MAGIC_BYTES] = {'G', 'L', 'S', 'E', 'A', 'L', '1', '\n'};

static void put_be(uint8_t *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v = (v << 8) | p[i];
    return v;
}

/* ---------- key ring ---------- */

bool gl_seal_keyring_load(const char *path, gl_seal_keyring *ring, gl_error *err) {
    return gl_keyring_load(path, "key file",
                           "report encryption keys must be readable by their owner only (PCI DSS 3.6.1)", ring, err);
}

void gl_seal_keyring_clear(gl_seal_keyring *ring) { gl_keyring_clear(ring); }

/* ---------- header ---------- */

typedef struct {
    uint8_t bytes[HEADER_MAX]; /* exactly as in the file: the first part of every chunk's AAD */
    size_t len;
    char key_id[GL_SEAL_KEY_ID_MAX + 1];
    uint32_t chunk_bytes;
    uint8_t nonce[GL_SEAL_NONCE_BYTES];
} header;

static bool header_build(header *h, const char *key_id, gl_error *err) {
    size_t id_len = strlen(key_id);
    if (!gl_keyring_id_ok(key_id, id_len)) {
        gl_error_set(err, GL_ERR_INVALID, "key id \"%s\" is not 1-32 of [A-Za-z0-9_-]", key_id);
        return false;
    }
    if (RAND_bytes(h->nonce, sizeof h->nonce) != 1) {
        gl_error_set(err, GL_ERR_INTERNAL, "no random bytes for the file nonce");
        return false;
    }
    memcpy(h->key_id, key_id, id_len + 1);
    h->chunk_bytes = GL_SEAL_CHUNK_BYTES;
    uint8_t *p = h->bytes;
    memcpy(p, magic, MAGIC_BYTES);
    p += MAGIC_BYTES;
    *p++ = GL_SEAL_VERSION;
    *p++ = (uint8_t)id_len;
    memcpy(p, key_id, id_len); // NOLINT(bugprone-not-null-terminated-result): length-prefixed, no NUL in the file
    p += id_len;
    put_be(p, h->chunk_bytes, 4);
    p += 4;
    memcpy(p, h->nonce, sizeof h->nonce);
    p += sizeof h->nonce;
    h->len = (size_t)(p - h->bytes);
    return true;
}

static bool damaged(gl_error *err, const char *where, const char *detail) {
    gl_error_set(err, GL_ERR_INVALID, "report file is damaged or was tampered with (%s)", where);
    gl_error_detail(err, "%s", detail);
    return false;
}

static bool read_exact(FILE *in, uint8_t *buf, size_t n, gl_error *err, bool *short_read) {
    size_t got = fread(buf, 1, n, in);
    *short_read = got < n;
    if (got < n && ferror(in)) {
        gl_error_set(err, GL_ERR_INTERNAL, "cannot read the sealed file: %s", strerror(errno));
        return false;
    }
    return true;
}

/* Reads and checks the header; every field is authenticated later through the
 * AAD, so here only what is needed to find the key and size the buffers. */
static bool header_read(FILE *in, header *h, gl_error *err) {
    bool cut;
    uint8_t *p = h->bytes;
    if (!read_exact(in, p, HEADER_FIXED_BYTES, err, &cut)) return false;
    if (cut || memcmp(p, magic, MAGIC_BYTES) != 0) {
        gl_error_set(err, GL_ERR_INVALID, "not a sealed report file");
        gl_error_detail(err, "the file does not start with the \"GLSEAL1\" header");
        return false;
    }
    if (p[MAGIC_BYTES] != GL_SEAL_VERSION) {
        gl_error_set(err, GL_ERR_INVALID, "sealed report file has unsupported format version %u", p[MAGIC_BYTES]);
        gl_error_detail(err, "this build reads version %d", GL_SEAL_VERSION);
        return false;
    }
    size_t id_len = p[MAGIC_BYTES + 1];
    if (id_len == 0 || id_len > GL_SEAL_KEY_ID_MAX) return damaged(err, "header", "key id length out of range");
    size_t rest = id_len + 4 + GL_SEAL_NONCE_BYTES;
    if (!read_exact(in, p + HEADER_FIXED_BYTES, rest, err, &cut)) return false;
    if (cut) return damaged(err, "header", "the file ends inside its header");
    const char *id = (const char *)p + HEADER_FIXED_BYTES;
    if (!gl_keyring_id_ok(id, id_len)) return damaged(err, "header", "the key id holds characters outside [A-Za-z0-9_-]");
    memcpy(h->key_id, id, id_len);
    h->key_id[id_len] = '\0';
    h->chunk_bytes = (uint32_t)get_be(p + HEADER_FIXED_BYTES + id_len, 4);
    if (h->chunk_bytes == 0 || h->chunk_bytes > GL_SEAL_CHUNK_BYTES_MAX)
        return damaged(err, "header", "chunk size out of range");
    memcpy(h->nonce, p + HEADER_FIXED_BYTES + id_len + 4, GL_SEAL_NONCE_BYTES);
    h->len = HEADER_FIXED_BYTES + rest;
    return true;
}

/* ---------- one chunk ---------- */

static void chunk_iv(const header *h, uint64_t index, uint8_t iv[IV_BYTES]) {
    memcpy(iv, h->nonce, GL_SEAL_NONCE_BYTES);
    put_be(iv + GL_SEAL_NONCE_BYTES, index, 4);
}

static bool chunk_aad(EVP_CIPHER_CTX *ctx, const header *h, uint64_t index, bool final, bool encrypt) {
    uint8_t suffix[AAD_SUFFIX_BYTES];
    put_be(suffix, index, 8);
    suffix[8] = final ? 1 : 0;
    int outl;
    if (encrypt)
        return EVP_EncryptUpdate(ctx, NULL, &outl, h->bytes, (int)h->len) == 1 &&
               EVP_EncryptUpdate(ctx, NULL, &outl, suffix, sizeof suffix) == 1;
    return EVP_DecryptUpdate(ctx, NULL, &outl, h->bytes, (int)h->len) == 1 &&
           EVP_DecryptUpdate(ctx, NULL, &outl, suffix, sizeof suffix) == 1;
}

/* Encrypts `n` bytes of `plain` into `out` (n bytes) followed by the tag. */
static bool seal_chunk(EVP_CIPHER_CTX *ctx, const uint8_t *key, const header *h, uint64_t index, bool final,
                       const uint8_t *plain, size_t n, uint8_t *out) {
    uint8_t iv[IV_BYTES];
    chunk_iv(h, index, iv);
    int outl = 0, finl = 0;
    return EVP_EncryptInit_ex(ctx, NULL, NULL, key, iv) == 1 && chunk_aad(ctx, h, index, final, true) &&
           (n == 0 || EVP_EncryptUpdate(ctx, out, &outl, plain, (int)n) == 1) &&
           EVP_EncryptFinal_ex(ctx, out + outl, &finl) == 1 && (size_t)outl + (size_t)finl == n &&
           EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GL_SEAL_TAG_BYTES, out + n) == 1;
}

/* Decrypts `n` ciphertext bytes followed by their tag; false when the tag does
 * not verify (then `plain` holds nothing the caller may use). */
static bool open_chunk(EVP_CIPHER_CTX *ctx, const uint8_t *key, const header *h, uint64_t index, bool final,
                       uint8_t *in, size_t n, uint8_t *plain) {
    uint8_t iv[IV_BYTES];
    chunk_iv(h, index, iv);
    int outl = 0, finl = 0;
    return EVP_DecryptInit_ex(ctx, NULL, NULL, key, iv) == 1 && chunk_aad(ctx, h, index, final, false) &&
           (n == 0 || EVP_DecryptUpdate(ctx, plain, &outl, in, (int)n) == 1) &&
           EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GL_SEAL_TAG_BYTES, in + n) == 1 &&
           EVP_DecryptFinal_ex(ctx, plain + outl, &finl) == 1;
}

/* A GCM context with the cipher set and the default 12-byte IV. */
static EVP_CIPHER_CTX *gcm_context(bool encrypt, gl_error *err) {
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    bool ok = ctx && (encrypt ? EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL)
                              : EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL)) == 1;
    if (!ok) {
        EVP_CIPHER_CTX_free(ctx);
        gl_error_set(err, GL_ERR_INTERNAL, "cannot set up AES-256-GCM (OpenSSL)");
        return NULL;
    }
    return ctx;
}

/* Wipes (report plaintext is as sensitive as the report) and frees. */
static void wipe_free(uint8_t *p, size_t n) {
    if (p) OPENSSL_cleanse(p, n);
    free(p);
}

/* ---------- writer ---------- */

struct gl_sealed_writer {
    FILE *out;
    EVP_CIPHER_CTX *ctx;
    uint8_t key[GL_SEAL_KEY_BYTES];
    header h;
    uint64_t chunk_index;
    uint8_t *plain; /* h.chunk_bytes: the chunk being filled */
    size_t plain_len;
    uint8_t *sealed; /* h.chunk_bytes + tag */
    bool failed;
};

static void writer_free(gl_sealed_writer *w) {
    EVP_CIPHER_CTX_free(w->ctx);
    wipe_free(w->plain, w->h.chunk_bytes);
    wipe_free(w->sealed, (size_t)w->h.chunk_bytes + GL_SEAL_TAG_BYTES);
    OPENSSL_cleanse(w, sizeof *w);
    free(w);
}

void gl_sealed_abort(gl_sealed_writer *w) {
    if (w) writer_free(w);
}

static bool writer_fail(gl_sealed_writer *w, gl_error *err, const char *what) {
    w->failed = true;
    gl_error_set(err, GL_ERR_INTERNAL, "cannot write the sealed report: %s", what);
    return false;
}

gl_sealed_writer *gl_sealed_open_write(FILE *out, const gl_seal_keyring *ring, gl_error *err) {
    if (!out || !ring || ring->n_keys < 1) {
        gl_error_set(err, GL_ERR_INVALID, "sealing a report needs an output file and a key ring with a key");
        return NULL;
    }
    gl_sealed_writer *w = calloc(1, sizeof *w);
    if (!w) {
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    w->out = out;
    memcpy(w->key, ring->keys[0].key, sizeof w->key);
    bool ok = header_build(&w->h, ring->keys[0].id, err) && (w->ctx = gcm_context(true, err)) != NULL;
    if (ok) {
        w->plain = malloc(w->h.chunk_bytes);
        w->sealed = malloc((size_t)w->h.chunk_bytes + GL_SEAL_TAG_BYTES);
        if (!w->plain || !w->sealed) {
            gl_error_set(err, GL_ERR_INTERNAL, "out of memory");
            ok = false;
        }
    }
    if (ok && fwrite(w->h.bytes, 1, w->h.len, out) != w->h.len) {
        gl_error_set(err, GL_ERR_INTERNAL, "cannot write the sealed report: %s", strerror(errno));
        ok = false;
    }
    if (!ok) {
        writer_free(w);
        return NULL;
    }
    return w;
}

static bool flush_chunk(gl_sealed_writer *w, bool final, gl_error *err) {
    if (w->chunk_index >= CHUNKS_MAX) return writer_fail(w, err, "more than 2^32 chunks in one file");
    if (!seal_chunk(w->ctx, w->key, &w->h, w->chunk_index, final, w->plain, w->plain_len, w->sealed))
        return writer_fail(w, err, "AES-256-GCM failed (OpenSSL)");
    size_t n = w->plain_len + GL_SEAL_TAG_BYTES;
    if (fwrite(w->sealed, 1, n, w->out) != n) return writer_fail(w, err, strerror(errno));
    w->chunk_index++;
    w->plain_len = 0;
    return true;
}

bool gl_sealed_write(gl_sealed_writer *w, const void *data, size_t len, gl_error *err) {
    if (w->failed) {
        gl_error_set(err, GL_ERR_INTERNAL, "cannot write the sealed report: an earlier write failed");
        return false;
    }
    const uint8_t *p = data;
    while (len > 0) {
        size_t room = w->h.chunk_bytes - w->plain_len;
        size_t take = len < room ? len : room;
        memcpy(w->plain + w->plain_len, p, take);
        w->plain_len += take;
        p += take;
        len -= take;
        /* A full chunk is never the final one (the final chunk is always
         * short, see sealed.h), so it can go out at once. */
        if (w->plain_len == w->h.chunk_bytes && !flush_chunk(w, false, err)) return false;
    }
    return true;
}

bool gl_sealed_close(gl_sealed_writer *w, gl_error *err) {
    bool ok = !w->failed;
    if (!ok) gl_error_set(err, GL_ERR_INTERNAL, "cannot write the sealed report: an earlier write failed");
    ok = ok && flush_chunk(w, true, err);
    if (ok && fflush(w->out) != 0) ok = writer_fail(w, err, strerror(errno));
    writer_free(w);
    return ok;
}

bool gl_sealed_encrypt_stream(FILE *in, FILE *out, const gl_seal_keyring *ring, gl_error *err) {
    gl_sealed_writer *w = gl_sealed_open_write(out, ring, err);
    if (!w) return false;
    uint8_t buf[16384];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, in)) > 0) {
        if (!gl_sealed_write(w, buf, got, err)) break;
    }
    OPENSSL_cleanse(buf, sizeof buf);
    if (ferror(in)) {
        gl_sealed_abort(w);
        gl_error_set(err, GL_ERR_INTERNAL, "cannot read the report to seal: %s", strerror(errno));
        return false;
    }
    return gl_sealed_close(w, err);
}

/* ---------- reader ---------- */

typedef struct {
    header h;
    const gl_seal_key *key;
    EVP_CIPHER_CTX *ctx;
    uint8_t *sealed; /* chunk_bytes + tag */
    uint8_t *plain;  /* chunk_bytes */
} reader;

static void reader_free(reader *r) {
    EVP_CIPHER_CTX_free(r->ctx);
    wipe_free(r->sealed, (size_t)r->h.chunk_bytes + GL_SEAL_TAG_BYTES);
    wipe_free(r->plain, r->h.chunk_bytes);
}

static bool reader_open(FILE *in, const gl_seal_keyring *ring, reader *r, gl_error *err) {
    if (!header_read(in, &r->h, err)) return false;
    r->key = gl_keyring_find(ring, r->h.key_id);
    if (!r->key) {
        gl_error_set(err, GL_ERR_NOT_FOUND, "report file is sealed with key \"%s\", which is not in the key ring",
                     r->h.key_id);
        gl_error_hint(err, "keep retired keys in the key ring file, after the active one");
        return false;
    }
    r->ctx = gcm_context(false, err);
    if (!r->ctx) return false;
    r->sealed = malloc((size_t)r->h.chunk_bytes + GL_SEAL_TAG_BYTES);
    r->plain = malloc(r->h.chunk_bytes);
    if (!r->sealed || !r->plain) {
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory");
        return false;
    }
    return true;
}

static bool chunk_damaged(gl_error *err, const reader *r, uint64_t index, const char *why) {
    char where[48];
    snprintf(where, sizeof where, "chunk %llu", (unsigned long long)index);
    damaged(err, where, why);
    uint64_t offset = r->h.len + index * ((uint64_t)r->h.chunk_bytes + GL_SEAL_TAG_BYTES);
    gl_error_detail(err, "%s; the chunk starts at byte %llu", why, (unsigned long long)offset);
    return false;
}

/* Opens chunk after chunk; the one shorter than a full chunk is the final one. */
static bool reader_run(FILE *in, FILE *out, reader *r, gl_error *err) {
    size_t full = (size_t)r->h.chunk_bytes + GL_SEAL_TAG_BYTES;
    for (uint64_t index = 0;; index++) {
        size_t got = fread(r->sealed, 1, full, in);
        if (ferror(in)) {
            gl_error_set(err, GL_ERR_INTERNAL, "cannot read the sealed file: %s", strerror(errno));
            return false;
        }
        bool final = got < full;
        if (got < GL_SEAL_TAG_BYTES)
            return chunk_damaged(err, r, index, "the file ends before its final chunk (cut short)");
        if (index >= CHUNKS_MAX) return chunk_damaged(err, r, index, "more chunks than a sealed file can hold");
        size_t n = got - GL_SEAL_TAG_BYTES;
        if (!open_chunk(r->ctx, r->key->key, &r->h, index, final, r->sealed, n, r->plain)) {
            OPENSSL_cleanse(r->plain, r->h.chunk_bytes);
            return chunk_damaged(err, r, index, "authentication tag mismatch (content, order, length or key)");
        }
        if (n > 0 && fwrite(r->plain, 1, n, out) != n) {
            gl_error_set(err, GL_ERR_INTERNAL, "cannot write the decrypted report: %s", strerror(errno));
            return false;
        }
        if (final) break;
    }
    if (fflush(out) != 0) {
        gl_error_set(err, GL_ERR_INTERNAL, "cannot write the decrypted report: %s", strerror(errno));
        return false;
    }
    return true;
}

bool gl_sealed_decrypt_stream(FILE *in, FILE *out, const gl_seal_keyring *ring, gl_error *err) {
    if (!in || !out || !ring) {
        gl_error_set(err, GL_ERR_INVALID, "decrypting a report needs an input, an output and a key ring");
        return false;
    }
    reader r;
    memset(&r, 0, sizeof r);
    bool ok = reader_open(in, ring, &r, err) && reader_run(in, out, &r, err);
    reader_free(&r);
    return ok;
}
