/*
 * sealed.h — report files encrypted at rest (PCI DSS 3.5.1): AES-256-GCM,
 * streamed in chunks so any file size needs only two chunk buffers of memory.
 *
 * File layout (all integers big-endian):
 *
 *   header   8  magic "GLSEAL1\n"
 *            1  format version (1)
 *            1  key id length L (1..32)
 *            L  key id, [A-Za-z0-9_-]
 *            4  chunk size C: plaintext bytes of every chunk but the last (65536)
 *            8  file nonce (random, one per file)
 *   chunk i  ciphertext of the plaintext bytes [i*C, i*C + n) followed by a
 *            16-byte GCM tag. Every chunk except the final one holds exactly C
 *            bytes; the final chunk holds 0..C-1 bytes (so a file whose size is
 *            a multiple of C ends with an empty final chunk: only its tag).
 *
 *   IV(i)  = file nonce || uint32 i                       (12 bytes)
 *   AAD(i) = header bytes || uint64 i || uint8 final(i)   (final: 1 on the last chunk)
 *
 * A reader knows the final chunk by its length (shorter than C + 16), never by
 * a flag stored in the file, and authenticates that belief through the AAD. So
 * a flipped bit anywhere, a changed header (key id, chunk size, nonce), chunks
 * reordered, dropped or duplicated, a file cut at any byte (even exactly at a
 * chunk boundary) and bytes appended after the end all fail a tag check.
 *
 * Key ring file: the same format as the PAN key ring (keyring.h):
 *     # comment
 *     <key_id> <64 hex chars = 32-byte key>
 * The first key is the active one (new files); the others only decrypt files
 * sealed before a rotation. The file must not be accessible to group or others.
 *
 * Limits: one key seals at most 2^32 chunks per file (256 TiB), and the 8-byte
 * random nonce makes an IV collision between two files under the same key
 * likely only after about 2^32 files; rotate keys long before either.
 */
#ifndef GL_SEALED_H
#define GL_SEALED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../ledger/error.h"
#include "keyring.h"

#define GL_SEAL_KEY_ID_MAX GL_KEY_ID_MAX
#define GL_SEAL_KEYS_MAX GL_KEYRING_MAX
#define GL_SEAL_KEY_BYTES GL_KEY_BYTES
#define GL_SEAL_CHUNK_BYTES 65536         /* plaintext per chunk written */
#define GL_SEAL_CHUNK_BYTES_MAX (1 << 20) /* largest chunk size a reader accepts */
#define GL_SEAL_TAG_BYTES 16
#define GL_SEAL_NONCE_BYTES 8
#define GL_SEAL_VERSION 1

typedef gl_key gl_seal_key;
typedef gl_keyring gl_seal_keyring; /* keys[0] is active */

/* gl_keyring_load, messages naming the "key file": refuses a file that group
 * or others may access, a malformed line (reported as file:line, never echoing
 * key material), a duplicate key id and a file with no key. */
bool gl_seal_keyring_load(const char *path, gl_seal_keyring *ring, gl_error *err);
/* Wipes the key material (OPENSSL_cleanse). */
void gl_seal_keyring_clear(gl_seal_keyring *ring);

typedef struct gl_sealed_writer gl_sealed_writer;

/* Writes the header for the ring's active key to `out` and returns a writer,
 * or NULL with err set. `out` stays the caller's (never closed here). */
gl_sealed_writer *gl_sealed_open_write(FILE *out, const gl_seal_keyring *ring, gl_error *err);
/* Encrypts `len` bytes; full chunks go to the file as they fill. After a
 * failure the writer refuses every further write. */
bool gl_sealed_write(gl_sealed_writer *w, const void *data, size_t len, gl_error *err);
/* Seals the final chunk, flushes `out` and frees the writer (also on failure).
 * A file is only complete, and only decrypts, after this returned true. */
bool gl_sealed_close(gl_sealed_writer *w, gl_error *err);
/* Frees the writer without sealing the final chunk: what was written so far
 * will be refused by a reader as truncated. NULL is ignored. */
void gl_sealed_abort(gl_sealed_writer *w);

/* Seals everything read from `in` into `out` (open, write, close). */
bool gl_sealed_encrypt_stream(FILE *in, FILE *out, const gl_seal_keyring *ring, gl_error *err);

/*
 * Decrypts a sealed file from `in` into `out`, chunk by chunk. A chunk's
 * plaintext is written only after its tag verified, but the output before a
 * failure is partial: callers write to a temporary file and rename it into
 * place only when this returned true.
 * Errors: "not a sealed report file" (bad magic), unsupported version, the
 * header's key id not in `ring` (named in the message), and on any tamper
 * "report file is damaged or was tampered with (chunk N)" (N from 0; "header"
 * when the header itself is cut short or malformed).
 */
bool gl_sealed_decrypt_stream(FILE *in, FILE *out, const gl_seal_keyring *ring, gl_error *err);

#endif
