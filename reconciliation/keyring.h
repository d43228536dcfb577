/*
 * keyring.h — the key ring file shared by the PAN guard (pan.h: HMAC keys for
 * card tokens) and sealed reports (sealed.h: AES-256-GCM keys).
 *
 * File format (one key per line):
 *     # comment
 *     <key_id> <64 hex chars = 32-byte key>   [# comment]
 * key_id: [A-Za-z0-9_-]{1,32}, unique in the file; at most 16 keys; blank
 * lines and '#' comments (also after the key) are ignored; at most 16 KiB.
 * The first key is the active one; the others are kept for rotation.
 * The file must not be accessible to group or others (any permission bit,
 * write included: whoever can replace a key can defeat it).
 */
#ifndef GL_KEYRING_H
#define GL_KEYRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../ledger/error.h"

#define GL_KEY_ID_MAX 32
#define GL_KEY_BYTES 32
#define GL_KEYRING_MAX 16

typedef struct {
    char id[GL_KEY_ID_MAX + 1];
    uint8_t key[GL_KEY_BYTES];
} gl_key;

typedef struct {
    int n_keys; /* keys[0] is active */
    gl_key keys[GL_KEYRING_MAX];
} gl_keyring;

/*
 * Loads a key ring file. `what` names the file in messages ("cannot open
 * <what> \"path\"", "<what> \"path\" line 3: duplicate key id"), and
 * `why_private` is the error detail when group or others may access it.
 * Refuses a malformed line (reported by line number, never quoting it), a
 * duplicate key id, more than 16 keys and a file with no key. On failure the
 * ring is empty.
 */
bool gl_keyring_load(const char *path, const char *what, const char *why_private, gl_keyring *ring, gl_error *err);
/* Wipes the key material (OPENSSL_cleanse). NULL is ignored. */
void gl_keyring_clear(gl_keyring *ring);
/* The key with this id, or NULL. */
const gl_key *gl_keyring_find(const gl_keyring *ring, const char *id);
/* True if s[0, n) is a valid key id: 1..GL_KEY_ID_MAX of [A-Za-z0-9_-]. */
bool gl_keyring_id_ok(const char *s, size_t n);

#endif
