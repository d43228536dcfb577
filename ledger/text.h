/*
 * text.h — small text conversions shared by the ledger, the API, the tools.
 */
#ifndef GL_TEXT_H
#define GL_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* bytes[0..n) as 2n lowercase hex digits and a NUL into out (2n + 1 bytes). */
void gl_hex(const uint8_t *bytes, size_t n, char *out);
/* A whole decimal integer in min..max (strtoll's syntax, nothing after it). */
bool gl_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

#endif
