/*
 * pg.h — small libpq helpers shared by the engine, reads and verify.
 * All statements are parameterized; values travel as text.
 */
#ifndef GL_PG_H
#define GL_PG_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "buf.h"
#include "error.h"
#include "id.h"

/* Runs a statement; returns the result on PGRES_COMMAND_OK / TUPLES_OK, else NULL
 * with err filled (kind GL_ERR_CONFLICT for retryable SQLSTATEs). */
PGresult *gl_pg_exec(PGconn *db, const char *sql, int nparams, const char *const *values, gl_error *err);
/* Same, for statements whose result is not needed. */
bool gl_pg_run(PGconn *db, const char *sql, int nparams, const char *const *values, gl_error *err);
/* Streams `data` into a COPY ... FROM STDIN statement. */
bool gl_pg_copy(PGconn *db, const char *copy_sql, gl_buf *data, gl_error *err);
/* Fills err from a failed result (message, detail, hint, SQLSTATE class). */
void gl_pg_error(gl_error *err, PGconn *db, const PGresult *res, const char *what);

bool gl_pg_get_id(const PGresult *r, int row, int col, gl_id *out); /* false if NULL/invalid */
int64_t gl_pg_get_i64(const PGresult *r, int row, int col);         /* 0 if NULL */
/* Copies a text column into buf (cap bytes); "" for NULL. */
void gl_pg_get_text(const PGresult *r, int row, int col, char *buf, size_t cap);

/* Formats microseconds since the epoch as a timestamptz literal (UTC). */
void gl_format_ts_us(int64_t us, char *buf, size_t cap);

#endif
