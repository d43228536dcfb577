/*
 * buf.h — a growable byte buffer for building COPY data and SQL array literals.
 * An allocation failure sets `failed` and turns later appends into no-ops, so
 * callers check once at the end instead of after every append.
 */
#ifndef GL_BUF_H
#define GL_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "id.h"

typedef struct {
    char *data;
    size_t len, cap;
    bool failed;
} gl_buf;

void gl_buf_reset(gl_buf *b); /* len = 0, keeps memory */
/* Room for `extra` more bytes and a NUL after them, for a caller that writes
 * into data + len itself (fread) and then adds to len; false (and `failed`
 * set) when there is none. */
bool gl_buf_reserve(gl_buf *b, size_t extra);
void gl_buf_free(gl_buf *b);
void gl_buf_append(gl_buf *b, const char *s, size_t n);
void gl_buf_puts(gl_buf *b, const char *s);
void gl_buf_putc(gl_buf *b, char c);
void gl_buf_printf(gl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gl_buf_i64(gl_buf *b, int64_t v);
void gl_buf_id(gl_buf *b, const gl_id *id);
/* Appends `s` escaped for COPY text format (backslash, tab, newline, CR). */
void gl_buf_copy_text(gl_buf *b, const char *s);
/* Appends `s` as an element of a PostgreSQL array literal: "..." with \" and \\ escaped. */
void gl_buf_array_text(gl_buf *b, const char *s);
/* NUL-terminated view of the contents ("" when empty or failed). */
const char *gl_buf_cstr(gl_buf *b);

#endif
