/*
 * log.h — ledgerd's structured logs and W3C trace context.
 *
 * Every line is one JSON object (built with jansson, compact, UTF-8)
 * followed by "\n", written with a single fwrite under a process-wide mutex
 * and flushed, so lines from different threads never interleave and a
 * crash loses at most the line being built. Default sink: stderr.
 *
 * Request lines (gl_log_request), one per finished request:
 *   {"time":"2024-05-01T12:00:00.123Z","level":"info","event":"http_request",
 *    "request_id":"...","principal":"...","method":"POST",
 *    "route":"/v1/transfers","status":201,"duration_us":1234,"duration_ms":1,
 *    "region":"eu","traceparent":"00-...","error":"insufficient_funds"}
 *   time: RFC 3339, UTC, milliseconds. duration_us is exact; duration_ms is
 *   the same truncated to whole milliseconds, for humans (both integers:
 *   no floats in logs). principal, region, traceparent and error are left
 *   out when NULL. level: "error" for status >= 500, else "info".
 *   route is the route template ("/v1/accounts/{id}"), never the raw path.
 *
 * Other events (gl_log, gl_log_json):
 *   {"time":...,"level":"warn","event":"region_down","msg":"...", ...extra}
 *
 * What is never logged: this module has no field for a token, a request or
 * response body, or a header other than traceparent, and callers must not
 * put one in msg or extra fields (DESIGN §6, PCI DSS 3.4). Every string is
 * cut at GL_LOG_FIELD_MAX bytes and msg at GL_LOG_MSG_MAX, so one line is
 * bounded; a string that is not valid UTF-8 (after the cut) is logged with
 * every byte outside printable ASCII replaced by '?'.
 *
 * Levels: lines below the threshold (default info) are dropped before any
 * work is done. The threshold and the sink may be changed at any time;
 * the sink must stay open until it has been replaced.
 */
#ifndef GL_LOG_H
#define GL_LOG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#define GL_LOG_FIELD_MAX 256 /* bytes of any string field but msg */
#define GL_LOG_MSG_MAX 1024  /* bytes of msg */
#define GL_TRACEPARENT_LEN 55

typedef enum {
    GL_LOG_DEBUG = 0,
    GL_LOG_INFO = 1,
    GL_LOG_WARN = 2,
    GL_LOG_ERROR = 3,
} gl_log_level;

/* "debug", "info", "warn", "error" (exactly, as in ledger.conf) -> true and *out. */
bool gl_log_level_parse(const char *name, gl_log_level *out);
/* "debug".."error"; "unknown" outside the enum. */
const char *gl_log_level_name(gl_log_level level);

void gl_log_set_level(gl_log_level threshold);
gl_log_level gl_log_get_level(void);
bool gl_log_enabled(gl_log_level level);
/* NULL restores stderr. The previous sink is not closed. */
void gl_log_set_output(FILE *out);

/* unix_ms (milliseconds since the epoch, >= 0) as "YYYY-MM-DDTHH:MM:SS.mmmZ"; "" if out of range. */
void gl_log_format_time(int64_t unix_ms, char out[32]);

typedef struct {
    const char *request_id;  /* required (gl_request_id) */
    const char *principal;   /* JWT sub, NULL before authentication */
    const char *method;      /* required */
    const char *route;       /* route template, required */
    int status;              /* HTTP status sent */
    uint64_t duration_us;    /* from the first byte read to the last queued */
    const char *region;      /* NULL if none was involved */
    const char *traceparent; /* the outgoing traceparent, NULL if none */
    const char *error_code;  /* the API error code (API.md), NULL on success */
} gl_log_request_fields;

void gl_log_request(const gl_log_request_fields *r);

/* msg is printf-formatted (vsnprintf, cut at GL_LOG_MSG_MAX). */
void gl_log(gl_log_level level, const char *event, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/*
 * The same with extra fields: every key of `extra` (a JSON object, or NULL)
 * is added to the line, except time, level, event and msg which this module
 * owns. `extra` is stolen (decref'd) even when the line is dropped. msg may
 * be NULL.
 */
void gl_log_json(gl_log_level level, const char *event, json_t *extra, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- W3C Trace Context (https://www.w3.org/TR/trace-context/) ---- */

/*
 * Parse a traceparent header: exactly "00-<32 hex>-<16 hex>-<2 hex>",
 * 55 bytes, lowercase hex only, trace id and parent id not all zeros.
 * Other versions are refused (we cannot know their layout), as is any
 * surrounding whitespace. On false the outputs are unspecified.
 */
bool gl_traceparent_parse(const char *hdr, char trace_id[33], char parent_id[17], uint8_t *flags);

/*
 * The traceparent of our own span inside trace_id: a fresh random
 * non-zero span id (RAND_bytes) with the caller's flags. False (and out
 * = "") if trace_id is not 32 lowercase hex digits, not all zero, or the
 * random generator failed.
 */
bool gl_traceparent_child(const char trace_id[33], uint8_t flags, char out[56]);
/* A new trace (no incoming traceparent): random trace id and span id. */
bool gl_traceparent_new(uint8_t flags, char out[56]);

/* A random 128-bit request id as 32 lowercase hex digits. False (out = "") if RAND_bytes failed. */
bool gl_request_id(char out[33]);

#endif
