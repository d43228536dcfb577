/*
 * pan.h — the PAN guard (PCI DSS 3.4.1, 3.5.1).
 *
 * Finds primary account numbers in free text (13–19 digits passing the Luhn
 * check, optionally separated by single spaces or dashes) and reduces each one
 * to BIN (first 6) + last 4 and a keyed HMAC-SHA256 token, so that equal cards
 * can still be matched without the number being kept.
 *
 * Key ring file (one key per line, '#' comments allowed):
 *     <key_id> <64 hex chars = 32-byte key>
 * The first key is the active one (new tokens); the others are kept so tokens
 * made before a rotation can still be recognised (gl_pan_token_with).
 * key_id: [A-Za-z0-9_-]{1,32}. The file must not be group/world readable.
 */
#ifndef GL_PAN_H
#define GL_PAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../ledger/error.h"

#define GL_PAN_KEY_ID_MAX 32
#define GL_PAN_KEYS_MAX 16
#define GL_PAN_TOKEN_HEX 64

typedef struct {
    char id[GL_PAN_KEY_ID_MAX + 1];
    uint8_t key[32];
} gl_pan_key;

typedef struct {
    int n_keys; /* keys[0] is active */
    gl_pan_key keys[GL_PAN_KEYS_MAX];
} gl_pan_keyring;

/* What is kept of a card: never the full number. */
typedef struct {
    bool present;
    char bin[7];                        /* first 6 digits */
    char last4[5];
    char key_id[GL_PAN_KEY_ID_MAX + 1]; /* key that made the token */
    char token[GL_PAN_TOKEN_HEX + 1];   /* hex HMAC-SHA256(key, digits) */
} gl_pan_masked;

bool gl_pan_keyring_load(const char *path, gl_pan_keyring *ring, gl_error *err);
/* Wipes the key material. */
void gl_pan_keyring_clear(gl_pan_keyring *ring);

/* Luhn check of a digit string. */
bool gl_pan_luhn_ok(const char *digits, size_t len);

/*
 * Scans `text` (NUL-terminated, modified in place) for PANs. Each one is
 * replaced by "<BIN>******<last4>"-style text of the same shape ("BIN…last4"
 * never contains the middle digits), and the first one found is described in
 * *first (if not NULL; first->present false when none). Returns the number of
 * PANs masked. With a NULL ring the token is left empty.
 */
int gl_pan_mask_text(char *text, const gl_pan_keyring *ring, gl_pan_masked *first);

/* True if `text` still holds anything that looks like a PAN (for tests/scans). */
bool gl_pan_text_has_pan(const char *text);

#endif
