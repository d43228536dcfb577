/*
 * id.h — 128-bit identifiers (UUIDs), time-ordered, carrying a partition code.
 *
 * Layout (RFC 9562 UUIDv7-compatible; see regions/README.md):
 *   bytes 0..5   48-bit big-endian Unix time in milliseconds
 *   byte  6      high nibble: version 7; low nibble: counter bits 11..8
 *   byte  7      counter bits 7..0 (12-bit per-process counter, random start each ms)
 *   byte  8      high 2 bits: variant 0b10; low 6 bits: random
 *   byte  9      partition (region) code, 1..255
 *   bytes 10..15 48 random bits (OpenSSL RAND_bytes)
 */
#ifndef GL_ID_H
#define GL_ID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"

typedef struct {
    uint8_t b[16];
} gl_id;

#define GL_ID_STR_LEN 36 /* without NUL */

/* Generates a new id for `partition_code` (1..255). Thread-safe. */
bool gl_id_new(uint8_t partition_code, gl_id *out, gl_error *err);
/* Parses the canonical 8-4-4-4-12 form (either case). */
bool gl_id_parse(const char *s, gl_id *out);
/* Writes the lowercase canonical form; buf must hold GL_ID_STR_LEN + 1. */
void gl_id_format(const gl_id *id, char *buf);
/* The partition (region) code carried by a geoledger id; 0 if the id is not one of ours. */
uint8_t gl_id_partition(const gl_id *id);
/* Milliseconds since the epoch encoded in the id. */
uint64_t gl_id_time_ms(const gl_id *id);
int gl_id_cmp(const gl_id *a, const gl_id *b);
bool gl_id_is_nil(const gl_id *id);

#endif
