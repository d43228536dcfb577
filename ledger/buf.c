#include "buf.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool gl_buf_reserve(gl_buf *b, size_t extra) {
    assert(b);
    if (b->failed) return false;
    if (b->len + extra + 1 <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void gl_buf_reset(gl_buf *b) {
    b->len = 0;
    b->failed = false;
    if (b->data) b->data[0] = '\0';
}

void gl_buf_free(gl_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->failed = false;
}

void gl_buf_append(gl_buf *b, const char *s, size_t n) {
    if (!gl_buf_reserve(b, n)) return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void gl_buf_puts(gl_buf *b, const char *s) { gl_buf_append(b, s, strlen(s)); }

void gl_buf_putc(gl_buf *b, char c) { gl_buf_append(b, &c, 1); }

void gl_buf_i64(gl_buf *b, int64_t v) {
    char tmp[24];
    int i = (int)sizeof tmp;
    /* Work in uint64 so INT64_MIN negates without overflow. */
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) tmp[--i] = '-';
    gl_buf_append(b, tmp + i, sizeof tmp - (size_t)i);
}

void gl_buf_id(gl_buf *b, const gl_id *id) {
    char s[GL_ID_STR_LEN + 1];
    gl_id_format(id, s);
    gl_buf_append(b, s, GL_ID_STR_LEN);
}

void gl_buf_copy_text(gl_buf *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '\\': gl_buf_append(b, "\\\\", 2); break;
        case '\t': gl_buf_append(b, "\\t", 2); break;
        case '\n': gl_buf_append(b, "\\n", 2); break;
        case '\r': gl_buf_append(b, "\\r", 2); break;
        default: gl_buf_putc(b, *s);
        }
    }
}

void gl_buf_array_text(gl_buf *b, const char *s) {
    gl_buf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') gl_buf_putc(b, '\\');
        gl_buf_putc(b, *s);
    }
    gl_buf_putc(b, '"');
}

const char *gl_buf_cstr(gl_buf *b) { return (b->data && !b->failed) ? b->data : ""; }

void gl_buf_printf(gl_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !gl_buf_reserve(b, (size_t)n)) {
        b->failed = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}
