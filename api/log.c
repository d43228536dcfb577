/*
 * log.c — JSON log lines and trace context (see log.h for the contract).
 *
 * A line is built entirely in memory (jansson object -> one buffer ending
 * in "\n") before the lock is taken, so the critical section is one fwrite
 * and one fflush: threads never wait on each other's JSON encoding.
 */
#include "log.h"

#include "../ledger/text.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#define LINE_STACK_BYTES 4096 /* most lines fit; larger ones go to the heap */
#define DUMP_FLAGS JSON_COMPACT
#define SPAN_RANDOM_TRIES 4 /* an all-zero 64-bit id is a 2^-64 event; retrying a few times is plenty */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *g_out; /* NULL means stderr; read and written under g_lock */
static _Atomic int g_level = GL_LOG_INFO;

static const char *const LEVEL_NAMES[] = {"debug", "info", "warn", "error"};
#define N_LEVELS ((int)(sizeof LEVEL_NAMES / sizeof LEVEL_NAMES[0]))

/* ---- levels and sink ---- */

bool gl_log_level_parse(const char *name, gl_log_level *out) {
    if (!name || !out) return false;
    for (int i = 0; i < N_LEVELS; i++) {
        if (strcmp(name, LEVEL_NAMES[i]) == 0) {
            *out = (gl_log_level)i;
            return true;
        }
    }
    return false;
}

const char *gl_log_level_name(gl_log_level level) {
    return (unsigned)level < (unsigned)N_LEVELS ? LEVEL_NAMES[level] : "unknown";
}

void gl_log_set_level(gl_log_level threshold) {
    if ((unsigned)threshold < (unsigned)N_LEVELS) atomic_store(&g_level, (int)threshold);
}

gl_log_level gl_log_get_level(void) { return (gl_log_level)atomic_load(&g_level); }

bool gl_log_enabled(gl_log_level level) { return (int)level >= atomic_load(&g_level); }

void gl_log_set_output(FILE *out) {
    pthread_mutex_lock(&g_lock);
    g_out = out;
    pthread_mutex_unlock(&g_lock);
}

/* ---- building a line ---- */

void gl_log_format_time(int64_t unix_ms, char out[32]) {
    out[0] = '\0';
    if (unix_ms < 0) return;
    time_t sec = (time_t)(unix_ms / 1000);
    struct tm tm;
    if (!gmtime_r(&sec, &tm)) return;
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    /* Anything but 19 characters is a year past 9999, which RFC 3339 cannot spell. */
    if (n != 19) {
        out[0] = '\0';
        return;
    }
    snprintf(out + n, 32 - n, ".%03dZ", (int)(unix_ms % 1000));
}

static void now_rfc3339(char out[32]) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    gl_log_format_time((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, out);
}

/*
 * A JSON string of at most max bytes of v. The cut is moved back to a
 * character boundary; if the rest is still not UTF-8, the bytes outside
 * printable ASCII become '?' rather than losing the whole field.
 */
static json_t *bounded_string(const char *v, size_t max) {
    size_t n = strnlen(v, max);
    bool cut = n == max && v[n] != '\0';
    /* v[n] is the first byte left out: while it continues a character, leave that character out. */
    while (cut && n > 0 && ((unsigned char)v[n] & 0xC0) == 0x80) n--;
    json_t *s = json_stringn(v, n);
    if (s) return s;
    char safe[GL_LOG_MSG_MAX];
    if (n > sizeof safe) n = sizeof safe;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        safe[i] = c >= 0x20 && c < 0x7F ? (char)c : '?';
    }
    return json_stringn(safe, n);
}

static void set_string(json_t *obj, const char *key, const char *v, size_t max) {
    if (v) json_object_set_new(obj, key, bounded_string(v, max));
}

static json_t *line_new(gl_log_level level, const char *event) {
    json_t *obj = json_object();
    if (!obj) return NULL;
    char ts[32];
    now_rfc3339(ts);
    json_object_set_new(obj, "time", json_string(ts));
    json_object_set_new(obj, "level", json_string(gl_log_level_name(level)));
    set_string(obj, "event", event ? event : "unknown", GL_LOG_FIELD_MAX);
    return obj;
}

static void write_line(const char *buf, size_t n) {
    pthread_mutex_lock(&g_lock);
    FILE *out = g_out ? g_out : stderr;
    fwrite(buf, 1, n, out);
    fflush(out);
    pthread_mutex_unlock(&g_lock);
}

/* Encodes obj plus "\n" into one buffer, writes it in one call, and releases obj. */
static void emit(json_t *obj) {
    if (!obj) return;
    char stack[LINE_STACK_BYTES];
    size_t n = json_dumpb(obj, NULL, 0, DUMP_FLAGS);
    char *buf = n < sizeof stack ? stack : malloc(n + 1);
    if (n > 0 && buf && json_dumpb(obj, buf, n, DUMP_FLAGS) == n) {
        buf[n] = '\n';
        write_line(buf, n + 1);
    }
    if (buf != stack) free(buf);
    json_decref(obj);
}

/* ---- public log calls ---- */

void gl_log_request(const gl_log_request_fields *r) {
    if (!r) return;
    gl_log_level level = r->status >= 500 ? GL_LOG_ERROR : GL_LOG_INFO;
    if (!gl_log_enabled(level)) return;
    json_t *obj = line_new(level, "http_request");
    if (!obj) return;
    set_string(obj, "request_id", r->request_id ? r->request_id : "", GL_LOG_FIELD_MAX);
    set_string(obj, "principal", r->principal, GL_LOG_FIELD_MAX);
    set_string(obj, "method", r->method ? r->method : "", GL_LOG_FIELD_MAX);
    set_string(obj, "route", r->route ? r->route : "", GL_LOG_FIELD_MAX);
    json_object_set_new(obj, "status", json_integer(r->status));
    /* json_int_t is signed 64-bit; 2^63 us is 292000 years, so the clamp is for type safety only. */
    json_int_t us = r->duration_us > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)r->duration_us;
    json_object_set_new(obj, "duration_us", json_integer(us));
    json_object_set_new(obj, "duration_ms", json_integer(us / 1000));
    set_string(obj, "region", r->region, GL_LOG_FIELD_MAX);
    set_string(obj, "traceparent", r->traceparent, GL_LOG_FIELD_MAX);
    set_string(obj, "error", r->error_code, GL_LOG_FIELD_MAX);
    emit(obj);
}

static void log_va(gl_log_level level, const char *event, json_t *extra, const char *fmt, va_list ap) {
    if (!gl_log_enabled(level)) {
        json_decref(extra);
        return;
    }
    json_t *obj = line_new(level, event);
    if (obj && fmt) {
        char msg[GL_LOG_MSG_MAX + 1];
        vsnprintf(msg, sizeof msg, fmt, ap);
        set_string(obj, "msg", msg, GL_LOG_MSG_MAX);
    }
    if (obj && json_is_object(extra)) {
        const char *key;
        json_t *value;
        json_object_foreach(extra, key, value) {
            /* The fixed fields keep their meaning whatever a caller passes. */
            if (!json_object_get(obj, key) && strcmp(key, "msg") != 0) json_object_set(obj, key, value);
        }
    }
    json_decref(extra);
    emit(obj);
}

void gl_log(gl_log_level level, const char *event, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_va(level, event, NULL, fmt, ap);
    va_end(ap);
}

void gl_log_json(gl_log_level level, const char *event, json_t *extra, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_va(level, event, extra, fmt, ap);
    va_end(ap);
}

/* ---- trace context ---- */

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1; /* uppercase is invalid in traceparent */
}

/* n lowercase hex digits, not all of them '0' (an all-zero id means "absent" in the spec). */
static bool nonzero_hex(const char *s, size_t n) {
    bool nonzero = false;
    for (size_t i = 0; i < n; i++) {
        if (hex_value(s[i]) < 0) return false;
        nonzero = nonzero || s[i] != '0';
    }
    return nonzero;
}

/* n random bytes, not all zero. */
static bool random_id(unsigned char *bytes, size_t n) {
    for (int attempt = 0; attempt < SPAN_RANDOM_TRIES; attempt++) {
        if (RAND_bytes(bytes, (int)n) != 1) return false;
        for (size_t i = 0; i < n; i++)
            if (bytes[i] != 0) return true;
    }
    return false;
}

bool gl_traceparent_parse(const char *hdr, char trace_id[33], char parent_id[17], uint8_t *flags) {
    if (!hdr || !trace_id || !parent_id || !flags) return false;
    /* "00-" 32 "-" 16 "-" 2 */
    if (strnlen(hdr, GL_TRACEPARENT_LEN + 1) != GL_TRACEPARENT_LEN) return false;
    if (hdr[0] != '0' || hdr[1] != '0' || hdr[2] != '-' || hdr[35] != '-' || hdr[52] != '-') return false;
    if (!nonzero_hex(hdr + 3, 32) || !nonzero_hex(hdr + 36, 16)) return false;
    int hi = hex_value(hdr[53]), lo = hex_value(hdr[54]);
    if (hi < 0 || lo < 0) return false;
    memcpy(trace_id, hdr + 3, 32);
    trace_id[32] = '\0';
    memcpy(parent_id, hdr + 36, 16);
    parent_id[16] = '\0';
    *flags = (uint8_t)(hi << 4 | lo);
    return true;
}

/* out = "00-" trace_id "-" span_hex "-" flags */
static void format_traceparent(const char *trace_id, const char *span_hex, uint8_t flags, char out[56]) {
    memcpy(out, "00-", 3);
    memcpy(out + 3, trace_id, 32);
    out[35] = '-';
    memcpy(out + 36, span_hex, 16);
    out[52] = '-';
    gl_hex(&flags, 1, out + 53); /* and the NUL at out[55] */
}

bool gl_traceparent_child(const char trace_id[33], uint8_t flags, char out[56]) {
    if (!out) return false;
    out[0] = '\0';
    if (!trace_id || strnlen(trace_id, 33) != 32 || !nonzero_hex(trace_id, 32)) return false;
    unsigned char span[8];
    char span_hex[17];
    if (!random_id(span, sizeof span)) return false;
    gl_hex(span, sizeof span, span_hex);
    format_traceparent(trace_id, span_hex, flags, out);
    return true;
}

bool gl_traceparent_new(uint8_t flags, char out[56]) {
    if (!out) return false;
    out[0] = '\0';
    unsigned char trace[16];
    char trace_hex[33];
    if (!random_id(trace, sizeof trace)) return false;
    gl_hex(trace, sizeof trace, trace_hex);
    return gl_traceparent_child(trace_hex, flags, out);
}

bool gl_request_id(char out[33]) {
    if (!out) return false;
    out[0] = '\0';
    unsigned char id[16];
    if (RAND_bytes(id, (int)sizeof id) != 1) return false;
    gl_hex(id, sizeof id, out);
    return true;
}
