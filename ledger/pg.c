#include "pg.h"

#include "deadline.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GL_PG_MAX_PARAMS 16

static void trim_newline(char *s) {
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) s[--n] = '\0';
}

/* What a SQLSTATE means for the caller (PostgreSQL's errcodes.h, Appendix A):
 * a conflict is resolved by running the whole batch again; "unavailable" means
 * the server cannot serve now (connection lost, shutting down, read-only after
 * a failover, out of resources) and "busy" that it is up but the statement
 * ran out of time (statement or lock timeout): both are answered 503, only
 * the first counts against the region; anything else is an error of the
 * statement. */
static gl_error_kind kind_of_sqlstate(const char *state) {
    if (!state || strlen(state) != 5) return GL_ERR_DB;
    static const char *const conflict[] = {
        "40001", /* serialization_failure */
        "40P01", /* deadlock_detected */
        "23505", /* unique_violation: a race on an insert; the rerun looks it up */
    };
    static const char *const unavailable[] = {
        "57P01", /* admin_shutdown */
        "57P02", /* crash_shutdown */
        "57P03", /* cannot_connect_now (starting up, recovering) */
        "25006", /* read_only_sql_transaction: the primary was demoted (failover) */
        "40003", /* statement_completion_unknown */
    };
    static const char *const busy[] = {
        "57014", /* query_canceled: statement_timeout (or a cancel) */
        "55P03", /* lock_not_available: lock_timeout */
        "25P03", /* idle_in_transaction_session_timeout: the session was ours to keep busy */
        "57P05", /* idle_session_timeout */
    };
    for (size_t i = 0; i < sizeof conflict / sizeof conflict[0]; i++)
        if (strcmp(state, conflict[i]) == 0) return GL_ERR_CONFLICT;
    for (size_t i = 0; i < sizeof unavailable / sizeof unavailable[0]; i++)
        if (strcmp(state, unavailable[i]) == 0) return GL_ERR_UNAVAILABLE;
    for (size_t i = 0; i < sizeof busy / sizeof busy[0]; i++)
        if (strcmp(state, busy[i]) == 0) return GL_ERR_BUSY;
    /* Whole classes: 08 connection_exception, 53 insufficient_resources, 58 system_error. */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 || strncmp(state, "58", 2) == 0)
        return GL_ERR_UNAVAILABLE;
    return GL_ERR_DB;
}

gl_error_kind gl_pg_kind_of_sqlstate(const char *state) { return kind_of_sqlstate(state); }

void gl_pg_error(gl_error *err, PGconn *db, const PGresult *res, const char *what) {
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *constraint = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
    gl_error_kind kind = kind_of_sqlstate(state);
    /* No SQLSTATE: libpq's own failure (the connection broke, or never was). */
    if (!state && PQstatus(db) != CONNECTION_OK) kind = GL_ERR_UNAVAILABLE;
    gl_error_set(err, kind, "%s failed: %s", what, msg ? msg : PQerrorMessage(db));
    if (!err) return;
    trim_newline(err->message);
    if (state) snprintf(err->sqlstate, sizeof err->sqlstate, "%s", state);
    if (constraint) snprintf(err->constraint, sizeof err->constraint, "%s", constraint);
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
    if (state || detail) gl_error_detail(err, "SQLSTATE %s%s%s", state ? state : "?", detail ? ": " : "", detail ? detail : "");
    if (hint) gl_error_hint(err, "%s", hint);
}

bool gl_pg_reusable(PGconn *db) {
    if (!db || PQstatus(db) != CONNECTION_OK) return false;
    /* A server that ended the session sends an error and closes: the first
     * read may take the message, the second meets the end of the stream. */
    for (int i = 0; i < 2; i++)
        if (PQconsumeInput(db) != 1) return false;
    return PQstatus(db) == CONNECTION_OK && PQtransactionStatus(db) == PQTRANS_IDLE &&
           PQpipelineStatus(db) == PQ_PIPELINE_OFF && !PQisBusy(db);
}

/* A round trip that the client-side deadline cut (ledger/deadline.h): the
 * server did not answer in time, whatever libpq says of the closed socket. */
static void cut_error(gl_error *err, const char *what) {
    gl_error_set(err, GL_ERR_UNAVAILABLE, "%s: no answer from the server within the deadline", what);
}

/* A libpq call that failed without a result (send, sync, pipeline switch). */
static void conn_error(gl_error *err, PGconn *db, const char *what) {
    gl_error_set(err, PQstatus(db) == CONNECTION_OK ? GL_ERR_DB : GL_ERR_UNAVAILABLE, "%s: %s", what,
                 PQerrorMessage(db));
    if (err) trim_newline(err->message);
}

/* ---------- pipelines ----------
 * In pipeline mode (libpq >= 14) a statement whose result is not needed
 * (gl_pg_run, gl_pg_run_bin) is only queued; a query that returns a result
 * sends the queue and itself with one Sync and waits once. A small engine
 * batch is then two round trips instead of nine; a round trip can cost more
 * than the statement it carries (and across a network, a latency each). */

static bool in_pipeline(PGconn *db) { return PQpipelineStatus(db) != PQ_PIPELINE_OFF; }

bool gl_pg_pipeline_begin(PGconn *db, gl_error *err) {
    if (PQenterPipelineMode(db) == 1) return true;
    conn_error(err, db, "cannot enter pipeline mode");
    return false;
}

/* Sends Sync and reads every result up to it. The first failure fills err (the
 * statements after it come back aborted); *last, when asked, gets the result
 * of the last statement when all succeeded. */
static bool pipeline_sync_unguarded(PGconn *db, PGresult **last, gl_error *err);

/* One round trip: under the connection's deadline. */
static bool pipeline_sync(PGconn *db, PGresult **last, gl_error *err) {
    gl_deadline d = gl_hop_begin(db);
    bool ok = pipeline_sync_unguarded(db, last, err);
    if (gl_hop_end(db, &d) && !ok) cut_error(err, "pipeline");
    return ok;
}

static bool pipeline_sync_unguarded(PGconn *db, PGresult **last, gl_error *err) {
    if (last) *last = NULL;
    if (PQpipelineSync(db) != 1) {
        conn_error(err, db, "pipeline sync failed");
        return false;
    }
    bool ok = true;
    /* A COMMIT that answered "COMMIT" committed, whatever happens to the
     * connection before the Sync's answer: its batch must not be reported as
     * failed (a keyed retry would replay it, an unkeyed one run it twice). */
    bool committed = false;
    /* PQgetResult returns NULL once after each statement's results. Two NULLs
     * in a row mean nothing more will come: the connection broke and the Sync
     * will never be answered (libpq may still say CONNECTION_OK then). */
    bool after_null = false;
    for (;;) {
        PGresult *r = PQgetResult(db);
        if (!r) {
            if (after_null || PQstatus(db) != CONNECTION_OK) {
                if (ok && committed && !last) break; /* the COMMIT's answer came: done */
                if (ok) {
                    gl_error_set(err, GL_ERR_UNAVAILABLE, "connection lost in a pipeline: %s", PQerrorMessage(db));
                    if (err) trim_newline(err->message);
                }
                ok = false;
                break;
            }
            after_null = true;
            continue; /* the end of one statement's results */
        }
        after_null = false;
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK && strcmp(PQcmdStatus(r), "COMMIT") == 0) committed = true;
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            break;
        }
        if ((st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) && ok && last) {
            PQclear(*last);
            *last = r;
            continue;
        }
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_PIPELINE_ABORTED && ok && !committed) {
            gl_pg_error(err, db, r, "query");
            ok = false;
        }
        PQclear(r);
    }
    if (!ok && last) {
        PQclear(*last);
        *last = NULL;
    }
    return ok;
}

bool gl_pg_pipeline_end(PGconn *db, gl_error *err) {
    if (!in_pipeline(db)) return true;
    bool ok = pipeline_sync(db, NULL, err);
    /* A connection that broke after a successful sync (a COMMIT answered)
     * stays in pipeline mode; what it did stands, and its user sees it broken. */
    if (PQexitPipelineMode(db) != 1 && ok && PQstatus(db) == CONNECTION_OK) {
        conn_error(err, db, "cannot leave pipeline mode");
        ok = false;
    }
    return ok;
}

static bool queue_params(PGconn *db, const char *sql, int nparams, const char *const *values, const int *lengths,
                         const int *formats, int result_format, gl_error *err) {
    gl_deadline d = gl_hop_begin(db); /* sending may wait for the server to read */
    bool sent = PQsendQueryParams(db, sql, nparams, NULL, values, lengths, formats, result_format) == 1;
    bool cut = gl_hop_end(db, &d);
    if (sent) return true;
    if (cut) cut_error(err, "sending a statement");
    else conn_error(err, db, "cannot queue a statement");
    return false;
}

/* A statement whose result is needed: in pipeline mode it goes out with the queue. */
static PGresult *exec_params(PGconn *db, const char *sql, int nparams, const char *const *values, const int *lengths,
                             const int *formats, int result_format, gl_error *err) {
    if (in_pipeline(db)) {
        PGresult *r = NULL;
        bool ok = queue_params(db, sql, nparams, values, lengths, formats, result_format, err) &&
                  pipeline_sync(db, &r, err);
        return ok ? r : NULL;
    }
    gl_deadline d = gl_hop_begin(db);
    PGresult *r = PQexecParams(db, sql, nparams, NULL, values, lengths, formats, result_format);
    bool cut = gl_hop_end(db, &d);
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
    if (cut) cut_error(err, "query");
    else gl_pg_error(err, db, r, "query");
    PQclear(r);
    return NULL;
}

/* A statement whose result is not needed: in pipeline mode only queued, and a
 * failure surfaces from the next query or gl_pg_pipeline_end. */
static bool run_params(PGconn *db, const char *sql, int nparams, const char *const *values, const int *lengths,
                       const int *formats, gl_error *err) {
    if (in_pipeline(db)) return queue_params(db, sql, nparams, values, lengths, formats, 0, err);
    PGresult *r = exec_params(db, sql, nparams, values, lengths, formats, 0, err);
    PQclear(r);
    return r != NULL;
}

PGresult *gl_pg_exec(PGconn *db, const char *sql, int nparams, const char *const *values, gl_error *err) {
    return exec_params(db, sql, nparams, values, NULL, NULL, 0, err);
}

bool gl_pg_run(PGconn *db, const char *sql, int nparams, const char *const *values, gl_error *err) {
    return run_params(db, sql, nparams, values, NULL, NULL, err);
}

static bool copy_unguarded(PGconn *db, const char *copy_sql, gl_buf *data, gl_error *err);

bool gl_pg_copy(PGconn *db, const char *copy_sql, gl_buf *data, gl_error *err) {
    if (data->failed) {
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory building COPY data");
        return false;
    }
    if (!gl_pg_pipeline_end(db, err)) return false; /* COPY cannot be pipelined */
    gl_deadline d = gl_hop_begin(db);
    bool ok = copy_unguarded(db, copy_sql, data, err);
    if (gl_hop_end(db, &d) && !ok) cut_error(err, "COPY");
    return ok;
}

static bool copy_unguarded(PGconn *db, const char *copy_sql, gl_buf *data, gl_error *err) {
    PGresult *r = PQexec(db, copy_sql);
    if (!r || PQresultStatus(r) != PGRES_COPY_IN) {
        gl_pg_error(err, db, r, "COPY");
        PQclear(r);
        return false;
    }
    PQclear(r);
    bool sent = PQputCopyData(db, data->data ? data->data : "", (int)data->len) == 1;
    if (PQputCopyEnd(db, sent ? NULL : "client failed to send data") != 1) sent = false;
    bool ok = true;
    while ((r = PQgetResult(db)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        if (st != PGRES_COMMAND_OK && ok) {
            gl_pg_error(err, db, r, "COPY");
            ok = false;
        }
        PQclear(r);
        /* Still in COPY: the end could not be sent, and libpq would answer
         * COPY_IN forever. The connection is of no further use. */
        if (st == PGRES_COPY_IN || st == PGRES_COPY_BOTH) {
            gl_error_set(err, GL_ERR_UNAVAILABLE, "COPY could not be ended: %s", PQerrorMessage(db));
            return false;
        }
    }
    if (!sent && ok) {
        conn_error(err, db, "COPY failed");
        ok = false;
    }
    return ok;
}

void gl_pg_rollback(PGconn *db) {
    if (!db || PQstatus(db) != CONNECTION_OK) return;
    gl_deadline d = gl_hop_begin(db);
    PQclear(PQexec(db, "ROLLBACK"));
    gl_hop_end(db, &d);
}

bool gl_pg_get_id(const PGresult *r, int row, int col, gl_id *out) {
    if (PQgetisnull(r, row, col)) {
        memset(out, 0, sizeof *out);
        return false;
    }
    return gl_id_parse(PQgetvalue(r, row, col), out);
}

int64_t gl_pg_get_i64(const PGresult *r, int row, int col) {
    if (PQgetisnull(r, row, col)) return 0;
    return strtoll(PQgetvalue(r, row, col), NULL, 10);
}

void gl_pg_get_text(const PGresult *r, int row, int col, char *buf, size_t cap) {
    if (cap == 0) return;
    buf[0] = '\0';
    if (PQgetisnull(r, row, col)) return;
    const char *v = PQgetvalue(r, row, col);
    size_t n = strnlen(v, cap - 1);
    memcpy(buf, v, n);
    buf[n] = '\0';
}

void gl_format_ts_us(int64_t us, char *buf, size_t cap) {
    time_t secs = (time_t)(us / 1000000);
    long frac = (long)(us % 1000000);
    if (frac < 0) {
        frac += 1000000;
        secs--;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    char date[32];
    strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
    snprintf(buf, cap, "%s.%06ld+00", date, frac);
}

/* ---------- binary formats ---------- */

#define PG_EPOCH_UNIX_US 946684800000000LL /* 2000-01-01 in Unix microseconds */
#define ARRAY_COUNT_OFFSET 12              /* ndim, hasnull, elemtype, then the dimension */

static void put_be(gl_buf *b, uint64_t v, int bytes) {
    char tmp[8];
    for (int i = 0; i < bytes; i++) tmp[i] = (char)(v >> (8 * (bytes - 1 - i)));
    gl_buf_append(b, tmp, (size_t)bytes);
}

void gl_bin_copy_begin(gl_buf *b) {
    gl_buf_append(b, "PGCOPY\n\377\r\n\0", 11);
    put_be(b, 0, 4); /* flags */
    put_be(b, 0, 4); /* header extension length */
}

void gl_bin_copy_end(gl_buf *b) { put_be(b, 0xFFFF, 2); }

void gl_bin_tuple(gl_buf *b, int nfields) { put_be(b, (uint64_t)nfields, 2); }

void gl_bin_null(gl_buf *b) { put_be(b, 0xFFFFFFFFu, 4); }

void gl_bin_uuid(gl_buf *b, const gl_id *id) {
    put_be(b, 16, 4);
    gl_buf_append(b, (const char *)id->b, 16);
}

void gl_bin_opt_uuid(gl_buf *b, const gl_id *id) {
    if (gl_id_is_nil(id)) gl_bin_null(b);
    else gl_bin_uuid(b, id);
}

void gl_bin_i64(gl_buf *b, int64_t v) {
    put_be(b, 8, 4);
    put_be(b, (uint64_t)v, 8);
}

void gl_bin_i32(gl_buf *b, int32_t v) {
    put_be(b, 4, 4);
    put_be(b, (uint32_t)v, 4);
}

void gl_bin_i32_raw(gl_buf *b, int32_t v) {
    gl_buf_reset(b);
    put_be(b, (uint32_t)v, 4);
}

void gl_bin_text(gl_buf *b, const char *s) {
    size_t n = strlen(s);
    put_be(b, n, 4);
    gl_buf_append(b, s, n);
}

void gl_bin_opt_text(gl_buf *b, const char *s) {
    if (!s || !*s) gl_bin_null(b);
    else gl_bin_text(b, s);
}

void gl_bin_jsonb(gl_buf *b, const char *json) {
    if (!json) {
        gl_bin_null(b);
        return;
    }
    size_t n = strlen(json);
    put_be(b, n + 1, 4);
    gl_buf_putc(b, 1); /* jsonb binary format version */
    gl_buf_append(b, json, n);
}

void gl_bin_ts_us(gl_buf *b, int64_t unix_us) { gl_bin_i64(b, unix_us - PG_EPOCH_UNIX_US); }

void gl_bin_array_begin(gl_buf *b, unsigned elem_oid) {
    gl_buf_reset(b);
    put_be(b, 1, 4); /* ndim */
    put_be(b, 0, 4); /* has nulls */
    put_be(b, elem_oid, 4);
    put_be(b, 0, 4); /* dimension: patched by finish */
    put_be(b, 1, 4); /* lower bound */
}

void gl_bin_array_finish(gl_buf *b, int32_t n) {
    if (b->failed || b->len < ARRAY_COUNT_OFFSET + 4) return;
    for (int i = 0; i < 4; i++) b->data[ARRAY_COUNT_OFFSET + i] = (char)((uint32_t)n >> (8 * (3 - i)));
}

static PGresult *exec_bin(PGconn *db, const char *sql, int nparams, gl_buf *const *params, int result_format,
                          gl_error *err);

PGresult *gl_pg_exec_bin(PGconn *db, const char *sql, int nparams, gl_buf *const *params, gl_error *err) {
    return exec_bin(db, sql, nparams, params, 0, err);
}

PGresult *gl_pg_exec_bin_result(PGconn *db, const char *sql, int nparams, gl_buf *const *params, gl_error *err) {
    return exec_bin(db, sql, nparams, params, 1, err);
}

static uint64_t get_be(const unsigned char *p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v = (v << 8) | p[i];
    return v;
}

int64_t gl_pg_bin_i64(const PGresult *r, int row, int col) {
    if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 8) return 0;
    return (int64_t)get_be((const unsigned char *)PQgetvalue(r, row, col), 8);
}

int32_t gl_pg_bin_i32(const PGresult *r, int row, int col) {
    if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != 4) return 0;
    return (int32_t)(uint32_t)get_be((const unsigned char *)PQgetvalue(r, row, col), 4);
}

bool gl_pg_bin_bytes(const PGresult *r, int row, int col, void *out, int n) {
    if (PQgetisnull(r, row, col) || PQgetlength(r, row, col) != n) return false;
    memcpy(out, PQgetvalue(r, row, col), (size_t)n);
    return true;
}

bool gl_pg_bin_uuid(const PGresult *r, int row, int col, gl_id *out) {
    return gl_pg_bin_bytes(r, row, col, out->b, 16);
}

/* Binary parameters for libpq; false (err set) when one failed to build. */
static bool bin_params(int nparams, gl_buf *const *params, const char **values, int *lengths, int *formats,
                       gl_error *err) {
    if (nparams > GL_PG_MAX_PARAMS) {
        gl_error_set(err, GL_ERR_INTERNAL, "too many parameters");
        return false;
    }
    for (int i = 0; i < nparams; i++) {
        if (params[i]->failed) {
            gl_error_set(err, GL_ERR_INTERNAL, "out of memory building parameters");
            return false;
        }
        values[i] = params[i]->data ? params[i]->data : "";
        lengths[i] = (int)params[i]->len;
        formats[i] = 1;
    }
    return true;
}

static PGresult *exec_bin(PGconn *db, const char *sql, int nparams, gl_buf *const *params, int result_format,
                          gl_error *err) {
    const char *values[GL_PG_MAX_PARAMS];
    int lengths[GL_PG_MAX_PARAMS], formats[GL_PG_MAX_PARAMS];
    if (!bin_params(nparams, params, values, lengths, formats, err)) return NULL;
    return exec_params(db, sql, nparams, values, lengths, formats, result_format, err);
}

bool gl_pg_run_bin(PGconn *db, const char *sql, int nparams, gl_buf *const *params, gl_error *err) {
    const char *values[GL_PG_MAX_PARAMS];
    int lengths[GL_PG_MAX_PARAMS], formats[GL_PG_MAX_PARAMS];
    return bin_params(nparams, params, values, lengths, formats, err) &&
           run_params(db, sql, nparams, values, lengths, formats, err);
}

void gl_format_rfc3339_us(int64_t us, char *buf, size_t cap) {
    char ts[40];
    gl_format_ts_us(us, ts, sizeof ts); /* "YYYY-MM-DD HH:MM:SS.ffffff+00" */
    ts[10] = 'T';
    ts[26] = '\0';
    snprintf(buf, cap, "%sZ", ts);
}

/* Reads exactly `n` digits into *out; false at the first non-digit (a NUL
 * included, so nothing past the end of the string is read). */
static bool fixed_digits(const char *s, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static int days_in_month(int year, int mon) {
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return mon == 2 && leap ? 29 : mdays[mon - 1];
}

/* ".f{1,n}" (or nothing) at *p: the fraction in µs; moves *p past it. */
static const char *parse_fraction(const char **p, bool allow_ns, int64_t *frac_us) {
    *frac_us = 0;
    if (**p != '.') return NULL;
    int max_digits = allow_ns ? 9 : 6, digits = 0;
    const char *q = *p + 1;
    for (; *q >= '0' && *q <= '9'; q++, digits++) {
        if (digits == max_digits) return allow_ns ? "more than 9 fraction digits" : "more than 6 fraction digits";
        if (digits < 6) *frac_us = *frac_us * 10 + (*q - '0');
    }
    if (digits == 0) return "no digits after '.'";
    for (; digits < 6; digits++) *frac_us *= 10;
    *p = q;
    return NULL;
}

#define LAST_4_DIGIT_YEAR_S INT64_C(253402300799) /* 9999-12-31T23:59:59Z */

const char *gl_rfc3339_parse(const char *s, bool allow_ns, int64_t *out_us) {
    if (s == NULL) return "missing";
    int year, mon, day, hour, min, sec;
    if (!fixed_digits(s, 4, &year) || s[4] != '-' || !fixed_digits(s + 5, 2, &mon) || s[7] != '-' ||
        !fixed_digits(s + 8, 2, &day))
        return "expected YYYY-MM-DD";
    if (year < 1970 || mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon))
        return "no such date (years 1970..9999)";
    const char *p = s + 10;
    if ((*p != 'T' && *p != 't') || !fixed_digits(p + 1, 2, &hour) || p[3] != ':' || !fixed_digits(p + 4, 2, &min) ||
        p[6] != ':' || !fixed_digits(p + 7, 2, &sec))
        return "expected THH:MM:SS after the date";
    if (hour > 23 || min > 59 || sec > 59) return "hour, minute or second out of range";
    p += 9;
    int64_t frac_us;
    const char *why = parse_fraction(&p, allow_ns, &frac_us);
    if (why) return why;
    int64_t offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (!fixed_digits(p + 1, 2, &oh) || p[3] != ':' || !fixed_digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return "bad UTC offset (want +HH:MM)";
        offset_s = (*p == '-' ? -1 : 1) * (int64_t)(oh * 3600 + om * 60);
        p += 6;
    } else {
        return "a time needs a zone: Z or +HH:MM";
    }
    if (*p) return "trailing characters";
    struct tm tm = {.tm_year = year - 1900, .tm_mon = mon - 1, .tm_mday = day, .tm_hour = hour, .tm_min = min,
                    .tm_sec = sec};
    int64_t t = (int64_t)timegm(&tm) - offset_s;
    if (t < 0) return "before 1970-01-01T00:00:00Z";
    /* 9999-12-31T23:59:59-23:59 is in year 10000 UTC: no 4-digit year formats it. */
    if (t > LAST_4_DIGIT_YEAR_S) return "after 9999-12-31T23:59:59Z";
    *out_us = t * 1000000 + frac_us;
    return NULL;
}

bool gl_parse_rfc3339_us(const char *s, int64_t *out_us) { return gl_rfc3339_parse(s, true, out_us) == NULL; }
