#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void gl_error_clear(gl_error *err) {
    if (!err) return;
    err->kind = GL_ERR_NONE;
    err->sqlstate[0] = err->constraint[0] = '\0';
    err->message[0] = err->detail[0] = err->hint[0] = '\0';
}

void gl_error_set(gl_error *err, gl_error_kind kind, const char *fmt, ...) {
    if (!err) return;
    gl_error_clear(err);
    err->kind = kind;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

void gl_error_detail(gl_error *err, const char *fmt, ...) {
    if (!err) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->detail, sizeof err->detail, fmt, ap);
    va_end(ap);
}

void gl_error_hint(gl_error *err, const char *fmt, ...) {
    if (!err) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->hint, sizeof err->hint, fmt, ap);
    va_end(ap);
}

bool gl_error_is_constraint(const gl_error *err, const char *name) {
    return err && name && err->constraint[0] && strcmp(err->constraint, name) == 0;
}
