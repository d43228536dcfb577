/*
 * pan.h — the PAN guard (PCI DSS 3.4.1, 3.5.1).
 *
 * Finds primary account numbers in free text (13–19 digits passing the Luhn
 * check, optionally separated by single spaces or dashes) and reduces each one
 * to BIN (first 6) + last 4 and a keyed HMAC-SHA256 token, so that equal cards
 * can still be matched without the number being kept.
 *
 * Key ring file (keyring.h; one key per line, '#' comments allowed):
 *     <key_id> <64 hex chars = 32-byte key>
 * The first key is the active one (new tokens); the others are kept so tokens
 * made before a rotation can still be recognised (gl_pan_token_with).
 * key_id: [A-Za-z0-9_-]{1,32}. The file must not be group/world readable
 * (gl_pan_keyring_load refuses any group/other permission bit, write included:
 * whoever can replace the key can make the tokens meaningless).
 *
 * What counts as a PAN (implementation: pan.c):
 *   - a "digit run" is digits joined by single ' ' or '-' separators
 *     ("4111 1111 1111 1111", "4111-1111-1111-1111");
 *   - a run of 13..19 digits is a PAN if it passes Luhn;
 *   - a run of more than 19 digits is a PAN if any 13..19-digit window of it
 *     passes Luhn (a card number glued to other digits): safety first, the
 *     whole run is then masked. The card described for such a run is the first
 *     passing window, common card lengths (16, 15, 19, 14, 13, 17, 18) first.
 * Masking keeps the run's first 6 and last 4 digits and every separator, and
 * turns the other digits into '*': the text keeps its length.
 */
#ifndef GL_PAN_H
#define GL_PAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../ledger/error.h"
#include "keyring.h"

#define GL_PAN_KEY_ID_MAX GL_KEY_ID_MAX
#define GL_PAN_KEYS_MAX GL_KEYRING_MAX
#define GL_PAN_TOKEN_HEX 64
#define GL_PAN_DIGITS_MIN 13 /* shortest card number: shorter text holds none */
#define GL_PAN_DIGITS_MAX 19

typedef gl_key gl_pan_key;
typedef gl_keyring gl_pan_keyring; /* keys[0] is active */

/* What is kept of a card: never the full number. */
typedef struct {
    bool present;
    char bin[7];                        /* first 6 digits */
    char last4[5];
    char key_id[GL_PAN_KEY_ID_MAX + 1]; /* key that made the token */
    char token[GL_PAN_TOKEN_HEX + 1];   /* hex HMAC-SHA256(key, digits) */
} gl_pan_masked;

/* gl_keyring_load, messages naming the "PAN key ring". */
bool gl_pan_keyring_load(const char *path, gl_pan_keyring *ring, gl_error *err);
/* Wipes the key material (gl_keyring_clear). */
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
/* The same on text[0, len) (need not be NUL-terminated; a NUL is an ordinary
 * non-digit). The fast path: text shorter than 13 bytes is left alone at once. */
int gl_pan_mask_buf(char *text, size_t len, const gl_pan_keyring *ring, gl_pan_masked *first);

/*
 * The token of a card under a given key of the ring (e.g. an old one, to find
 * cards tokenized before a rotation). `pan` is the card number, separators
 * ' ' and '-' allowed; it must hold 13..19 digits. out: GL_PAN_TOKEN_HEX hex
 * characters + NUL. Fails on an unknown key id or a malformed number.
 */
bool gl_pan_token_with(const gl_pan_keyring *ring, const char *key_id, const char *pan, char *out, size_t out_cap,
                       gl_error *err);

/* True if `text` still holds anything that looks like a PAN (for tests/scans). */
bool gl_pan_text_has_pan(const char *text);
bool gl_pan_buf_has_pan(const char *text, size_t len);

#endif
