/*
 * pg.h — small libpq helpers shared by the engine, reads and verify.
 * All statements are parameterized; values travel as text. Every round trip
 * they make is under the connection's deadline when it is guarded
 * (ledger/deadline.h).
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
 * with err filled (kind GL_ERR_CONFLICT for retryable SQLSTATEs). In pipeline
 * mode the statements queued before it go out with it, in one round trip, and
 * the first of them that failed is the error. */
PGresult *gl_pg_exec(PGconn *db, const char *sql, int nparams, const char *const *values, gl_error *err);
/* Same, for statements whose result is not needed. In pipeline mode the
 * statement is only queued: its failure is reported by the next gl_pg_exec* or
 * by gl_pg_pipeline_end (the statements after a failed one do not run). */
bool gl_pg_run(PGconn *db, const char *sql, int nparams, const char *const *values, gl_error *err);
/* Streams `data` into a COPY ... FROM STDIN statement (ends a pipeline first). */
bool gl_pg_copy(PGconn *db, const char *copy_sql, gl_buf *data, gl_error *err);
/* ROLLBACK, ignoring the outcome (a failed transaction's cleanup); a broken
 * connection is left alone. */
void gl_pg_rollback(PGconn *db);
/* Pipeline mode (libpq >= 14): see gl_pg_exec and gl_pg_run. _end sends what is
 * queued, reads every result and leaves the mode; false with the first failure
 * (the connection is then out of pipeline mode unless it broke). */
bool gl_pg_pipeline_begin(PGconn *db, gl_error *err);
bool gl_pg_pipeline_end(PGconn *db, gl_error *err);
/* Fills err from a failed result: kind (from the SQLSTATE, or UNAVAILABLE when
 * the connection broke), sqlstate, constraint, message, detail, hint. */
void gl_pg_error(gl_error *err, PGconn *db, const PGresult *res, const char *what);
/* Whether a connection can take the next statement: healthy, idle, out of
 * pipeline mode. Reads (without blocking) what the server sent while it was
 * idle, so a backend that was terminated or a server that restarted is seen
 * here, not by the next statement. Anything else (a transaction, pipeline or
 * COPY cut short) is for the caller to close. */
bool gl_pg_reusable(PGconn *db);
/* GL_ERR_CONFLICT (rerun), GL_ERR_UNAVAILABLE or GL_ERR_BUSY (503) or GL_ERR_DB for a SQLSTATE. */
gl_error_kind gl_pg_kind_of_sqlstate(const char *state);

bool gl_pg_get_id(const PGresult *r, int row, int col, gl_id *out); /* false if NULL/invalid */
int64_t gl_pg_get_i64(const PGresult *r, int row, int col);         /* 0 if NULL */
/* Copies a text column into buf (cap bytes); "" for NULL. */
void gl_pg_get_text(const PGresult *r, int row, int col, char *buf, size_t cap);

/* Formats microseconds since the epoch as a timestamptz literal (UTC). */
void gl_format_ts_us(int64_t us, char *buf, size_t cap);
/* Same instant as RFC 3339 "YYYY-MM-DDTHH:MM:SS.ffffffZ", the form the reads return. */
void gl_format_rfc3339_us(int64_t us, char *buf, size_t cap);
/* Parses RFC 3339 "YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+HH:MM|-HH:MM)" (fraction
 * truncated to µs); false when malformed or before 1970. */
bool gl_parse_rfc3339_us(const char *s, int64_t *out_us);
/* The grammar behind gl_parse_rfc3339_us, for callers that say why: NULL when
 * `s` is a valid instant (then *out_us is set), else a short reason that never
 * quotes `s` ("expected YYYY-MM-DD", "bad UTC offset (want +HH:MM)"...).
 * 'T'/'t' and 'Z'/'z' are both accepted; dates are years 1970..9999 and the
 * instant must lie in 1970-01-01T00:00:00Z..9999-12-31T23:59:59.999999Z (an
 * offset cannot push it out); no leap second (:60).
 * With allow_ns up to 9 fraction digits are accepted (truncated to µs);
 * without, more than 6 are refused (nothing is silently dropped). */
const char *gl_rfc3339_parse(const char *s, bool allow_ns, int64_t *out_us);

/* ---- binary wire formats (COPY BINARY and binary array parameters) ----
 * Text parsing of uuids, integers and timestamps is most of PostgreSQL's CPU
 * for a large batch; the binary forms skip it. */
#define GL_OID_INT4 23
#define GL_OID_INT8 20
#define GL_OID_TEXT 25
#define GL_OID_UUID 2950
#define GL_OID_TID 27
#define GL_OID_TIMESTAMPTZ 1184
#define GL_OID_JSONB 3802

void gl_bin_copy_begin(gl_buf *b);                /* signature + flags + header extension */
void gl_bin_copy_end(gl_buf *b);                  /* file trailer */
void gl_bin_tuple(gl_buf *b, int nfields);
void gl_bin_null(gl_buf *b);
void gl_bin_uuid(gl_buf *b, const gl_id *id);
void gl_bin_opt_uuid(gl_buf *b, const gl_id *id); /* NULL when nil */
void gl_bin_i64(gl_buf *b, int64_t v);
void gl_bin_i32(gl_buf *b, int32_t v);
void gl_bin_i32_raw(gl_buf *b, int32_t v);       /* a binary int4 parameter (no length prefix) */
void gl_bin_text(gl_buf *b, const char *s);      /* also bpchar, "char" and varchar */
void gl_bin_opt_text(gl_buf *b, const char *s);  /* NULL when NULL or "" */
void gl_bin_jsonb(gl_buf *b, const char *json);  /* NULL when NULL */
void gl_bin_ts_us(gl_buf *b, int64_t unix_us);   /* timestamptz */

/* One-dimensional binary array parameter: begin with the element count, then
 * append exactly n elements with gl_bin_uuid/gl_bin_i64/gl_bin_i32/gl_bin_text.
 * The count is patched by gl_bin_array_finish, so callers may start with 0. */
void gl_bin_array_begin(gl_buf *b, unsigned elem_oid);
void gl_bin_array_finish(gl_buf *b, int32_t n);

/* Like gl_pg_exec, with every parameter in binary format. */
PGresult *gl_pg_exec_bin(PGconn *db, const char *sql, int nparams, gl_buf *const *params, gl_error *err);
/* Same, with the result in binary format too (read it with gl_pg_bin_*). */
PGresult *gl_pg_exec_bin_result(PGconn *db, const char *sql, int nparams, gl_buf *const *params, gl_error *err);
int64_t gl_pg_bin_i64(const PGresult *r, int row, int col);  /* int8; 0 if NULL */
int32_t gl_pg_bin_i32(const PGresult *r, int row, int col);  /* int4; 0 if NULL */
bool gl_pg_bin_uuid(const PGresult *r, int row, int col, gl_id *out);
/* Raw bytes of a column; false unless exactly `n` bytes. */
bool gl_pg_bin_bytes(const PGresult *r, int row, int col, void *out, int n);
bool gl_pg_run_bin(PGconn *db, const char *sql, int nparams, gl_buf *const *params, gl_error *err);

#endif
