#include "pan_oracle.h"

#include <string.h>

void fuzz_test_ring(gl_pan_keyring *ring) {
    memset(ring, 0, sizeof *ring);
    ring->n_keys = 1;
    strcpy(ring->keys[0].id, "k1");
    for (int i = 0; i < GL_KEY_BYTES; i++) ring->keys[0].key[i] = (uint8_t)i;
}

bool fuzz_dig(char c) { return c >= '0' && c <= '9'; }
bool fuzz_sep(char c) { return c == ' ' || c == '-'; }

bool fuzz_luhn(const char *d, size_t n) {
    unsigned sum = 0;
    for (size_t k = 0; k < n; k++) {
        unsigned v = (unsigned)(d[n - 1 - k] - '0');
        if (k % 2 == 1) v = v * 2 > 9 ? v * 2 - 9 : v * 2;
        sum += v;
    }
    return sum % 10 == 0;
}

bool fuzz_pan_leaks(const char *t, size_t len) {
    static char digits[4096];
    static bool group_start[4096 + 1]; /* the digit at this index begins a group (a group ends where the next begins) */
    size_t i = 0;
    while (i < len) {
        if (!fuzz_dig(t[i])) {
            i++;
            continue;
        }
        /* one maximal run from i: its digits, and where each group starts */
        size_t nd = 0;
        bool new_group = true;
        while (i < len) {
            if (fuzz_dig(t[i])) {
                if (nd < sizeof digits) {
                    digits[nd] = t[i];
                    group_start[nd] = new_group;
                    nd++;
                }
                new_group = false;
                i++;
            } else if (fuzz_sep(t[i]) && i + 1 < len && fuzz_dig(t[i + 1])) {
                new_group = true;
                i++;
            } else {
                break;
            }
        }
        group_start[nd] = true; /* the run's end closes its last group */
        if (nd >= GL_PAN_DIGITS_MIN && nd <= GL_PAN_DIGITS_MAX) {
            if (fuzz_luhn(digits, nd)) return true;
            for (size_t a = 0; a < nd; a++) {
                if (!group_start[a]) continue;
                for (size_t b = a + GL_PAN_DIGITS_MIN; b <= nd && b - a <= GL_PAN_DIGITS_MAX; b++)
                    if (group_start[b] && fuzz_luhn(digits + a, b - a)) return true;
            }
        } else if (nd > GL_PAN_DIGITS_MAX) { /* (only the first 4096 digits of a huge run: enough for a test) */
            for (size_t a = 0; a + GL_PAN_DIGITS_MIN <= nd; a++)
                for (size_t w = GL_PAN_DIGITS_MIN; w <= GL_PAN_DIGITS_MAX && a + w <= nd; w++)
                    if (fuzz_luhn(digits + a, w)) return true;
        }
    }
    return false;
}
