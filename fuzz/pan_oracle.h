/*
 * pan_oracle.h — the fuzz harnesses' own check for card numbers left in text
 * (fuzz_pan.c, fuzz_settlement.c): an implementation of pan.h's definition
 * independent of reconciliation/pan.c, so a bug there is not repeated here.
 *
 * fuzz_pan_leaks(t, len) is true when t[0, len) holds
 *   - a run of 13..19 digits joined by single ' ' or '-' that passes Luhn,
 *   - a 13..19-digit window of a longer run that passes Luhn,
 *   - a sequence of whole groups of a 13..19-digit run (pan.c's group rule)
 *     with 13..19 digits that passes Luhn.
 */
#ifndef FUZZ_PAN_ORACLE_H
#define FUZZ_PAN_ORACLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../reconciliation/pan.h"

bool fuzz_dig(char c);
bool fuzz_sep(char c);
bool fuzz_luhn(const char *d, size_t n);
bool fuzz_pan_leaks(const char *t, size_t len);
/* A fixed one-key ring ("k1", key bytes 0, 1, 2, ...) for the harnesses. */
void fuzz_test_ring(gl_pan_keyring *ring);

#endif
