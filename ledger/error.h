/*
 * error.h — the one way geoledger reports errors.
 *
 * Every fallible function takes a `gl_error *` (may be NULL) and returns
 * false / -1 / NULL on failure after filling it. Messages are short and
 * factual (PostgreSQL style); detail and hint are kept apart.
 */
#ifndef GL_ERROR_H
#define GL_ERROR_H

#include <stdbool.h>

typedef enum {
    GL_ERR_NONE = 0,
    GL_ERR_INVALID,      /* bad input from the caller */
    GL_ERR_CONFIG,       /* bad configuration file */
    GL_ERR_DB,           /* database unreachable or failed */
    GL_ERR_CONFLICT,     /* retryable conflict (serialization, deadlock, unique race): run it again */
    GL_ERR_NOT_FOUND,
    GL_ERR_INTERNAL,
    GL_ERR_UNAVAILABLE,  /* the database is gone, shutting down, read-only (failover) or did not
                          * answer in time: nothing to fix in the request, retry later (HTTP 503) */
    GL_ERR_BUSY,         /* the database is up but the statement could not finish in time (statement
                          * or lock timeout): retry later (HTTP 503); no sign the region is down */
} gl_error_kind;

/* A database error also carries what the server said, as data: callers decide
 * retries and statuses from `sqlstate` and `constraint`, never from the text. */
typedef struct {
    gl_error_kind kind;
    char sqlstate[6];    /* PG_DIAG_SQLSTATE, "" when none (e.g. the connection broke) */
    char constraint[64]; /* PG_DIAG_CONSTRAINT_NAME, "" when none */
    char message[256];
    char detail[512];
    char hint[256];
} gl_error;

/* Sets kind and message (printf-style); clears detail and hint. NULL err is ignored. */
void gl_error_set(gl_error *err, gl_error_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void gl_error_detail(gl_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gl_error_hint(gl_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gl_error_clear(gl_error *err);
/* Whether err came from a constraint (or an expect_rows check) of that name. */
bool gl_error_is_constraint(const gl_error *err, const char *name);

#endif
