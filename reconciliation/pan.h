/*
 * pan.h — the PAN guard (PCI DSS 3.4.1, 3.5.1).
 *
 * Finds primary account numbers in free text (13–19 digits passing the Luhn
 * check, written with any separators, see below) and reduces each one to its
 * BIN (first 6, fewer for short cards) + last 4 and a keyed HMAC-SHA256 token, so that equal cards
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
 * What counts as a PAN (implementation: pan.c; the rule and its reasons:
 * reconciliation/README.md, "PAN guard"):
 *   - a "digit run" is digits joined by runs of 1..3 separator characters
 *     (a 4th separator, or any other character, ends the run). Separators:
 *     ASCII space, tab, - . / _ : ( ) [ ] { } +; UTF-8 NBSP U+00A0, soft
 *     hyphen U+00AD, middle dot U+00B7, U+2000..U+200D (spaces, zero-width
 *     space/joiners), U+2010..U+2015 (hyphens, dashes), bullet U+2022,
 *     narrow NBSP U+202F, U+205F, word joiner U+2060, minus U+2212,
 *     ideographic space U+3000, U+FEFF, fullwidth hyphen-minus U+FF0D.
 *     Not separators: ',' (CSV delimiter, thousands), '*' (the mask), letters
 *     (so "card4111111111111111x" is found: letters end a run, they do not
 *     hide one);
 *   - a run of 13..19 digits is a PAN if it passes Luhn, or if a sequence of
 *     whole groups of it (13..19 digits) does ("4242 4242 4242 4242 12");
 *   - a run of more than 19 digits is a PAN if any 13..19-digit window of it
 *     passes Luhn (a card number glued to other digits): safety first, the
 *     whole run is then masked. The card described for such a run is the first
 *     passing window, common card lengths (16, 15, 19, 14, 13, 17, 18) first;
 *   - except a run that is exactly a list of dates, each with an optional
 *     time ("2026-11-20 10:00:00", "20/11/2026 10:00:00.123+01:00",
 *     "2026-11-01 - 2026-11-30"): time columns are not cards.
 * What is kept (PCI DSS 3.4.1): of an n-digit run, the first min(6, n - 10)
 * digits and the last 4, every separator and every other character; the other
 * digits become '*' (the text keeps its length). So at least 6 digits are
 * always hidden: 13 digits show 3 + 4, 14 show 4 + 4, 15 show 5 + 4, 16..19
 * show 6 + 4 — never a larger share than first 6 / last 4 of a 16-digit card.
 * A card inside a longer run shows no more of itself than that either.
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
    char bin[7];                        /* first min(6, n - 10) digits of an n-digit card: 3..6 */
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
 * replaced by "<BIN>******<last4>"-style text of the same shape (only digits
 * change, to '*'; see "What is kept" above), and the first one found is described in
 * *first (if not NULL; first->present false when none). Returns the number of
 * PANs masked. With a NULL ring the token is left empty.
 */
int gl_pan_mask_text(char *text, const gl_pan_keyring *ring, gl_pan_masked *first);
/* The same on text[0, len) (need not be NUL-terminated; a NUL is an ordinary
 * non-digit). The fast path: text shorter than 13 bytes is left alone at once. */
int gl_pan_mask_buf(char *text, size_t len, const gl_pan_keyring *ring, gl_pan_masked *first);

/*
 * The token of a card under a given key of the ring (e.g. an old one, to find
 * cards tokenized before a rotation). `pan` is the card number, any of the
 * separators above allowed (any number of them, up to 256 bytes in all); it
 * must hold 13..19 digits. out: GL_PAN_TOKEN_HEX hex
 * characters + NUL. Fails on an unknown key id or a malformed number.
 */
bool gl_pan_token_with(const gl_pan_keyring *ring, const char *key_id, const char *pan, char *out, size_t out_cap,
                       gl_error *err);

/* True if `text` still holds anything that looks like a PAN (for tests/scans). */
bool gl_pan_text_has_pan(const char *text);
bool gl_pan_buf_has_pan(const char *text, size_t len);

#endif
