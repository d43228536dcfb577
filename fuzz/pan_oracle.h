/*
 * pan_oracle.h — the fuzz harnesses' own check for card numbers left in text
 * (fuzz_pan.c, fuzz_settlement.c): an implementation of pan.h's definition
 * independent of reconciliation/pan.c, so a bug there is not repeated here.
 * It decodes UTF-8 into code points and compares them with its own list of
 * separators, where pan.c matches bytes.
 *
 * A card, for the oracle: in a "run" (digits of which every two neighbours are
 * apart by 0..3 separator code points: ASCII space, tab, - . / _ : ( ) [ ] { } +,
 * U+00A0, U+00AD, U+00B7, U+2000..U+200D, U+2010..U+2015, U+2022, U+202F,
 * U+205F, U+2060, U+2212, U+3000, U+FEFF, U+FF0D), unless the run is exactly
 * a list of dates with optional times (pan.h),
 *   - a run of 13..19 digits that passes Luhn,
 *   - a 13..19-digit window of a longer run that passes Luhn,
 *   - a sequence of whole groups of a 13..19-digit run with 13..19 digits
 *     that passes Luhn.
 */
#ifndef FUZZ_PAN_ORACLE_H
#define FUZZ_PAN_ORACLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../reconciliation/pan.h"

bool fuzz_dig(char c);
/* Bytes of the separator code point at t[i] (i < len), 0 if it is none. */
size_t fuzz_sep_len(const char *t, size_t len, size_t i);
bool fuzz_luhn(const char *d, size_t n);
/* Each card found: the byte offsets of its digits (n of them). Return false to stop. */
typedef bool (*fuzz_card_fn)(void *arg, const size_t *at, size_t n);
/* Calls fn (if not NULL) for cards of t[0, len) (every card of a 13..19-digit
 * run, the first of each longer run... at least one per run that holds any);
 * returns true if there is any. */
bool fuzz_pan_cards(const char *t, size_t len, fuzz_card_fn fn, void *arg);
bool fuzz_pan_leaks(const char *t, size_t len);
/* A fixed one-key ring ("k1", key bytes 0, 1, 2, ...) for the harnesses. */
void fuzz_test_ring(gl_pan_keyring *ring);

#endif
