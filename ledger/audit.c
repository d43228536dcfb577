/*
 * audit.c — see audit.h for the chain and what verification proves.
 *
 * Reading order: the canonical encoding and hash (the part an independent
 * verifier must reproduce byte for byte), event validation, append (lock,
 * read the head, COPY), then verify (cursor, one check per row) and tail.
 */
#include "audit.h"

#include "text.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "buf.h"
#include "pg.h"

#define PG_EPOCH_UNIX_US 946684800000000LL /* 2000-01-01 in Unix microseconds */
#define STR_(x) #x
#define STR(x) STR_(x)
#define LOCK_SQL "SELECT pg_advisory_xact_lock(" STR(GL_AUDIT_LOCK_KEY) ")"
#define COLUMNS "seq, at, actor, action, object, source, outcome, detail, prev_hash, hash"
#define CURSOR "gl_audit_verify_cursor"

static const uint8_t zero_hash[GL_AUDIT_HASH_BYTES];

/* ---------- canonical encoding and hash ---------- */

static bool digest_be(EVP_MD_CTX *md, uint64_t v, int bytes) {
    uint8_t b[8];
    for (int i = 0; i < bytes; i++) b[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    return EVP_DigestUpdate(md, b, (size_t)bytes) == 1;
}

/* uint32 length, then the bytes: no two field lists encode alike. */
static bool digest_field(EVP_MD_CTX *md, const char *s) {
    size_t n = strlen(s);
    return n <= UINT32_MAX && digest_be(md, n, 4) && (n == 0 || EVP_DigestUpdate(md, s, n) == 1);
}

bool gl_audit_row_hash(const gl_audit_row *row, uint8_t out[GL_AUDIT_HASH_BYTES]) {
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned int len = 0;
    bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
              EVP_DigestUpdate(md, row->prev_hash, GL_AUDIT_HASH_BYTES) == 1 &&
              digest_be(md, (uint64_t)row->seq, 8) && digest_be(md, (uint64_t)row->at_us, 8) &&
              digest_field(md, row->actor) && digest_field(md, row->action) && digest_field(md, row->object) &&
              digest_field(md, row->source) && digest_field(md, row->outcome) && digest_field(md, row->detail) &&
              EVP_DigestFinal_ex(md, out, &len) == 1 && len == GL_AUDIT_HASH_BYTES;
    EVP_MD_CTX_free(md);
    return ok;
}

void gl_audit_hex(const uint8_t hash[GL_AUDIT_HASH_BYTES], char *hex) {
    gl_hex(hash, GL_AUDIT_HASH_BYTES, hex);
}

const char *gl_audit_outcome_name(gl_audit_outcome o) {
    switch (o) {
    case GL_AUDIT_SUCCESS: return "success";
    case GL_AUDIT_FAILURE: return "failure";
    case GL_AUDIT_DENIED: return "denied";
    }
    return NULL;
}

const char *gl_audit_violation_kind_name(gl_audit_violation_kind k) {
    switch (k) {
    case GL_AUDIT_MODIFIED: return "modified_row";
    case GL_AUDIT_BROKEN_LINK: return "broken_link";
    case GL_AUDIT_GAP: return "gap";
    case GL_AUDIT_BAD_START: return "bad_start";
    }
    return "unknown";
}

/* ---------- local identity (for jobs and CLI commands) ---------- */

void gl_audit_local_actor(char *buf, size_t cap) {
    if (cap == 0) return;
    struct passwd pw, *found = NULL;
    char scratch[4096];
    uid_t uid = geteuid();
    if (getpwuid_r(uid, &pw, scratch, sizeof scratch, &found) == 0 && found && found->pw_name[0])
        snprintf(buf, cap, "%s", found->pw_name);
    else
        snprintf(buf, cap, "uid:%lu", (unsigned long)uid);
}

void gl_audit_local_source(char *buf, size_t cap) {
    if (cap == 0) return;
    char host[256];
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "unknown-host");
    host[sizeof host - 1] = '\0';
    snprintf(buf, cap, "%s/%ld", host, (long)getpid());
}

/* ---------- validation ---------- */

/* Well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF):
 * PostgreSQL would refuse anything else, with a less useful message. */
static bool utf8_ok(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (len == 0 || i + len > n) return false;
        uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        static const uint32_t min_for_len[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_for_len[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

static bool check_text(size_t index, const char *field, const char *s, size_t min, size_t max, gl_error *err) {
    size_t n = s ? strlen(s) : 0;
    if (n < min) {
        gl_error_set(err, GL_ERR_INVALID, "audit event %zu: %s is required", index, field);
        return false;
    }
    if (n > max) {
        gl_error_set(err, GL_ERR_INVALID, "audit event %zu: %s is longer than %zu bytes", index, field, max);
        return false;
    }
    if (!utf8_ok((const unsigned char *)(s ? s : ""), n)) {
        gl_error_set(err, GL_ERR_INVALID, "audit event %zu: %s is not valid UTF-8", index, field);
        return false;
    }
    return true;
}

/* [a-z][a-z0-9_]* parts joined by '.', at least two parts (the SQL CHECK says the same). */
static bool action_ok(const char *s) {
    size_t parts = 0;
    bool at_part_start = true;
    for (const char *p = s; *p; p++) {
        if (at_part_start) {
            if (*p < 'a' || *p > 'z') return false;
            at_part_start = false;
            parts++;
        } else if (*p == '.') {
            at_part_start = true;
        } else if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) {
            return false;
        }
    }
    return parts >= 2 && !at_part_start;
}

/* The detail as canonical JSON text (heap), or NULL with err set. */
static char *canonical_detail(size_t index, const gl_audit_event *e, gl_error *err) {
    if (e->detail_text && e->detail) {
        gl_error_set(err, GL_ERR_INVALID, "audit event %zu: give detail_text or detail, not both", index);
        return NULL;
    }
    json_t *parsed = NULL;
    const json_t *obj = e->detail;
    if (e->detail_text) {
        json_error_t je;
        parsed = json_loads(e->detail_text, JSON_REJECT_DUPLICATES, &je);
        if (!parsed) {
            gl_error_set(err, GL_ERR_INVALID, "audit event %zu: detail is not JSON", index);
            gl_error_detail(err, "%s at line %d column %d", je.text, je.line, je.column);
            return NULL;
        }
        obj = parsed;
    }
    if (obj && !json_is_object(obj)) {
        json_decref(parsed);
        gl_error_set(err, GL_ERR_INVALID, "audit event %zu: detail must be a JSON object", index);
        return NULL;
    }
    char *text = obj ? json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS) : strdup("{}");
    json_decref(parsed);
    if (!text) {
        gl_error_set(err, GL_ERR_INTERNAL, "audit event %zu: cannot encode detail", index);
        return NULL;
    }
    if (strlen(text) > GL_AUDIT_DETAIL_MAX) {
        free(text);
        gl_error_set(err, GL_ERR_INVALID, "audit event %zu: detail is longer than %d bytes", index,
                     GL_AUDIT_DETAIL_MAX);
        return NULL;
    }
    return text;
}

static bool event_ok(size_t i, const gl_audit_event *e, gl_error *err) {
    if (!check_text(i, "actor", e->actor, 1, GL_AUDIT_ACTOR_MAX, err) ||
        !check_text(i, "action", e->action, 1, GL_AUDIT_ACTION_MAX, err) ||
        !check_text(i, "object", e->object, 0, GL_AUDIT_OBJECT_MAX, err) ||
        !check_text(i, "source", e->source, 1, GL_AUDIT_SOURCE_MAX, err))
        return false;
    if (!action_ok(e->action)) {
        gl_error_set(err, GL_ERR_INVALID, "audit event %zu: action \"%s\" is not of the form area.verb", i, e->action);
        gl_error_hint(err, "lower-case [a-z][a-z0-9_]* parts joined by '.', e.g. \"mandate.create\"");
        return false;
    }
    if (!gl_audit_outcome_name(e->outcome)) {
        gl_error_set(err, GL_ERR_INVALID, "audit event %zu: unknown outcome %d", i, (int)e->outcome);
        return false;
    }
    if (e->at_us < 0) {
        gl_error_set(err, GL_ERR_INVALID, "audit event %zu: at_us is before 1970", i);
        return false;
    }
    return true;
}

static void free_details(char **details, size_t n) {
    if (!details) return;
    for (size_t i = 0; i < n; i++) free(details[i]);
    free(details);
}

/* Validates every event and returns their canonical details (heap), or NULL. */
static char **prepare_events(const gl_audit_event *events, size_t n, gl_error *err) {
    if (!events || n == 0 || n > GL_AUDIT_BATCH_MAX) {
        gl_error_set(err, GL_ERR_INVALID, "an audit append takes 1 to %d events, got %zu", GL_AUDIT_BATCH_MAX,
                     events ? n : 0);
        return NULL;
    }
    char **details = calloc(n, sizeof *details);
    if (!details) {
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!event_ok(i, &events[i], err) || !(details[i] = canonical_detail(i, &events[i], err))) {
            free_details(details, n);
            return NULL;
        }
    }
    return details;
}

/* ---------- append ---------- */

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Strings must reach the table as the bytes that were hashed. */
static bool require_utf8_client(PGconn *db, gl_error *err) {
    const char *enc = PQparameterStatus(db, "client_encoding");
    if (enc && strcmp(enc, "UTF8") == 0) return true;
    gl_error_set(err, GL_ERR_INVALID, "the audit log needs client_encoding UTF8, the connection uses %s",
                 enc ? enc : "an unknown encoding");
    gl_error_hint(err, "unset PGCLIENTENCODING or set it to UTF8");
    return false;
}

/* Makes the connection read text as UTF-8 (for verify and tail, which own their reads). */
static bool use_utf8_client(PGconn *db, gl_error *err) {
    const char *enc = PQparameterStatus(db, "client_encoding");
    if (enc && strcmp(enc, "UTF8") == 0) return true;
    if (PQsetClientEncoding(db, "UTF8") == 0) return true;
    gl_error_set(err, GL_ERR_DB, "cannot set client_encoding to UTF8: %s", PQerrorMessage(db));
    return false;
}

/* The head of the chain: the last seq and its hash (0 and zeros when empty). */
static bool read_head(PGconn *db, int64_t *seq, uint8_t hash[GL_AUDIT_HASH_BYTES], gl_error *err) {
    PGresult *r = gl_pg_exec_bin_result(db, "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1", 0, NULL, err);
    if (!r) return false;
    bool ok = true;
    *seq = 0;
    memset(hash, 0, GL_AUDIT_HASH_BYTES);
    if (PQntuples(r) == 1) {
        *seq = gl_pg_bin_i64(r, 0, 0);
        ok = gl_pg_bin_bytes(r, 0, 1, hash, GL_AUDIT_HASH_BYTES);
        if (!ok) gl_error_set(err, GL_ERR_INTERNAL, "audit_log seq %lld has a malformed hash", (long long)*seq);
    }
    PQclear(r);
    return ok;
}

static void bin_bytea(gl_buf *b, const uint8_t *p, size_t n) {
    char len[4] = {(char)(n >> 24), (char)(n >> 16), (char)(n >> 8), (char)n};
    gl_buf_append(b, len, sizeof len);
    gl_buf_append(b, (const char *)p, n);
}

/* Chains the events onto the head and writes them as COPY (FORMAT binary) rows. */
static bool chain_events(const gl_audit_event *events, char *const *details, size_t n, int64_t head_seq,
                         const uint8_t head_hash[GL_AUDIT_HASH_BYTES], gl_buf *copy, gl_error *err) {
    int64_t at_now = now_us();
    gl_audit_row row;
    memcpy(row.prev_hash, head_hash, GL_AUDIT_HASH_BYTES);
    gl_bin_copy_begin(copy);
    for (size_t i = 0; i < n; i++) {
        const gl_audit_event *e = &events[i];
        row.seq = head_seq + 1 + (int64_t)i;
        row.at_us = e->at_us ? e->at_us : at_now;
        row.actor = e->actor;
        row.action = e->action;
        row.object = e->object ? e->object : "";
        row.source = e->source;
        row.outcome = gl_audit_outcome_name(e->outcome);
        row.detail = details[i];
        if (!gl_audit_row_hash(&row, row.hash)) {
            gl_error_set(err, GL_ERR_INTERNAL, "SHA-256 failed (OpenSSL)");
            return false;
        }
        gl_bin_tuple(copy, 10);
        gl_bin_i64(copy, row.seq);
        gl_bin_ts_us(copy, row.at_us);
        gl_bin_text(copy, row.actor);
        gl_bin_text(copy, row.action);
        gl_bin_text(copy, row.object);
        gl_bin_text(copy, row.source);
        gl_bin_text(copy, row.outcome);
        gl_bin_text(copy, row.detail);
        bin_bytea(copy, row.prev_hash, GL_AUDIT_HASH_BYTES);
        bin_bytea(copy, row.hash, GL_AUDIT_HASH_BYTES);
        memcpy(row.prev_hash, row.hash, GL_AUDIT_HASH_BYTES);
    }
    gl_bin_copy_end(copy);
    return true;
}

/* Lock, head, COPY: inside whatever transaction is open on `db`. */
static bool append_locked(PGconn *db, const gl_audit_event *events, char *const *details, size_t n, gl_error *err) {
    int64_t head_seq;
    uint8_t head_hash[GL_AUDIT_HASH_BYTES];
    gl_buf copy = {0};
    bool ok = gl_pg_run(db, LOCK_SQL, 0, NULL, err) && read_head(db, &head_seq, head_hash, err) &&
              chain_events(events, details, n, head_seq, head_hash, &copy, err) &&
              gl_pg_copy(db, "COPY audit_log (" COLUMNS ") FROM STDIN (FORMAT binary)", &copy, err);
    gl_buf_free(&copy);
    return ok;
}

bool gl_audit_append(PGconn *db, const gl_audit_event *events, size_t n, gl_error *err) {
    char **details = prepare_events(events, n, err);
    if (!details) return false;
    /* Called from a pipelined engine batch's hook: what it queued goes out first (COPY cannot be pipelined). */
    if (!gl_pg_pipeline_end(db, err)) {
        free_details(details, n);
        return false;
    }
    PGTransactionStatusType ts = PQtransactionStatus(db);
    bool own = ts == PQTRANS_IDLE;
    bool ok = true;
    if (!own && ts != PQTRANS_INTRANS) {
        gl_error_set(err, GL_ERR_INVALID, "cannot append to the audit log: the connection is %s",
                     ts == PQTRANS_INERROR ? "in a failed transaction" : "busy or broken");
        ok = false;
    }
    ok = ok && require_utf8_client(db, err);
    ok = ok && (!own || gl_pg_run(db, "BEGIN", 0, NULL, err));
    ok = ok && append_locked(db, events, details, n, err);
    if (own && ok) ok = gl_pg_run(db, "COMMIT", 0, NULL, err);
    if (own && !ok && PQtransactionStatus(db) != PQTRANS_IDLE) gl_pg_rollback(db);
    free_details(details, n);
    return ok;
}

/* ---------- reading rows ---------- */

/* Decodes row `i` of a binary-format result of COLUMNS. False when a hash
 * column is not 32 bytes (then it reads as zeros). */
static bool decode_row(const PGresult *r, int i, gl_audit_row *row) {
    row->seq = gl_pg_bin_i64(r, i, 0);
    row->at_us = gl_pg_bin_i64(r, i, 1) + PG_EPOCH_UNIX_US;
    row->actor = PQgetvalue(r, i, 2);
    row->action = PQgetvalue(r, i, 3);
    row->object = PQgetvalue(r, i, 4);
    row->source = PQgetvalue(r, i, 5);
    row->outcome = PQgetvalue(r, i, 6);
    row->detail = PQgetvalue(r, i, 7);
    bool prev_ok = gl_pg_bin_bytes(r, i, 8, row->prev_hash, GL_AUDIT_HASH_BYTES);
    bool hash_ok = gl_pg_bin_bytes(r, i, 9, row->hash, GL_AUDIT_HASH_BYTES);
    if (!prev_ok) memset(row->prev_hash, 0, GL_AUDIT_HASH_BYTES);
    if (!hash_ok) memset(row->hash, 0, GL_AUDIT_HASH_BYTES);
    return prev_ok && hash_ok;
}

/* ---------- verify ---------- */

typedef struct {
    gl_audit_violation_fn cb;
    void *arg;
    gl_audit_summary *sum;
    bool have_prev;
    int64_t prev_seq;
    uint8_t prev_hash[GL_AUDIT_HASH_BYTES]; /* as stored: a modified row is reported once, not twice */
} chain_state;

static void report(chain_state *s, gl_audit_violation_kind kind, int64_t seq, int64_t expected,
                   const char *message) {
    s->sum->violations++;
    gl_audit_violation v = {kind, seq, expected, message};
    if (s->cb) s->cb(s->arg, &v);
}

static void check_link(chain_state *s, const gl_audit_row *row) {
    char msg[256];
    long long seq = (long long)row->seq;
    if (!s->have_prev) {
        if (row->seq != 1) {
            snprintf(msg, sizeof msg, "the log starts at seq %lld: rows 1 to %lld were deleted", seq, seq - 1);
            report(s, GL_AUDIT_BAD_START, row->seq, 1, msg);
        } else if (memcmp(row->prev_hash, zero_hash, GL_AUDIT_HASH_BYTES) != 0) {
            report(s, GL_AUDIT_BROKEN_LINK, row->seq, 0, "seq 1: prev_hash is not 32 zero bytes");
        }
        return;
    }
    long long prev = (long long)s->prev_seq;
    if (row->seq != s->prev_seq + 1) {
        snprintf(msg, sizeof msg, "seq jumps from %lld to %lld: %lld row(s) deleted", prev, seq, seq - prev - 1);
        report(s, GL_AUDIT_GAP, row->seq, s->prev_seq + 1, msg);
    }
    if (memcmp(row->prev_hash, s->prev_hash, GL_AUDIT_HASH_BYTES) != 0) {
        snprintf(msg, sizeof msg, "seq %lld: prev_hash is not the hash of seq %lld (chain broken)", seq, prev);
        report(s, GL_AUDIT_BROKEN_LINK, row->seq, 0, msg);
    }
}

static void check_row(chain_state *s, const gl_audit_row *row, bool hashes_well_formed) {
    check_link(s, row);
    uint8_t want[GL_AUDIT_HASH_BYTES];
    bool computed = gl_audit_row_hash(row, want);
    if (!hashes_well_formed || !computed || memcmp(want, row->hash, GL_AUDIT_HASH_BYTES) != 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "seq %lld: the hash does not match the row's contents (row modified)",
                 (long long)row->seq);
        report(s, GL_AUDIT_MODIFIED, row->seq, 0, msg);
    }
    s->have_prev = true;
    s->prev_seq = row->seq;
    memcpy(s->prev_hash, row->hash, GL_AUDIT_HASH_BYTES);
    s->sum->rows++;
    s->sum->last_seq = row->seq;
}

/* Streams the cursor through check_row; false on a database error. */
static bool verify_rows(PGconn *db, chain_state *s, gl_error *err) {
    for (;;) {
        PGresult *r = gl_pg_exec_bin_result(db, "FETCH " STR(GL_AUDIT_FETCH_ROWS) " FROM " CURSOR, 0, NULL, err);
        if (!r) return false;
        int n = PQntuples(r);
        for (int i = 0; i < n; i++) {
            gl_audit_row row;
            bool well_formed = decode_row(r, i, &row);
            check_row(s, &row, well_formed);
        }
        PQclear(r);
        if (n < GL_AUDIT_FETCH_ROWS) return true;
    }
}

bool gl_audit_verify(PGconn *db, gl_audit_violation_fn cb, void *arg, gl_audit_summary *out, gl_error *err) {
    memset(out, 0, sizeof *out);
    gl_audit_hex(zero_hash, out->last_hash_hex);
    if (PQtransactionStatus(db) != PQTRANS_IDLE) {
        gl_error_set(err, GL_ERR_INVALID, "audit verify needs a connection outside any transaction");
        return false;
    }
    chain_state s = {.cb = cb, .arg = arg, .sum = out};
    /* One snapshot: appenders commit in seq order, so it holds a prefix of the chain. */
    bool ok = use_utf8_client(db, err) && gl_pg_run(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, err);
    if (!ok) return false;
    ok = gl_pg_run(db, "DECLARE " CURSOR " NO SCROLL CURSOR FOR SELECT " COLUMNS " FROM audit_log ORDER BY seq", 0,
                   NULL, err) &&
         verify_rows(db, &s, err);
    PQclear(PQexec(db, ok ? "COMMIT" : "ROLLBACK"));
    if (s.have_prev) gl_audit_hex(s.prev_hash, out->last_hash_hex);
    return ok;
}

/* ---------- recorded head ---------- */

int gl_audit_check_head(PGconn *db, int64_t seq, const char *hash_hex, char *why, size_t why_cap, gl_error *err) {
    if (seq < 1 || !hash_hex || strlen(hash_hex) != GL_AUDIT_HASH_HEX ||
        strspn(hash_hex, "0123456789abcdefABCDEF") != GL_AUDIT_HASH_HEX) {
        gl_error_set(err, GL_ERR_INVALID, "a recorded head is a seq >= 1 and a 64-hex-digit hash");
        return -1;
    }
    char seq_s[24];
    snprintf(seq_s, sizeof seq_s, "%lld", (long long)seq);
    const char *p[1] = {seq_s};
    PGresult *r = gl_pg_exec(db, "SELECT encode(hash, 'hex') FROM audit_log WHERE seq = $1::int8", 1, p, err);
    if (!r) return -1;
    int same = PQntuples(r) == 1 && strcasecmp(PQgetvalue(r, 0, 0), hash_hex) == 0;
    if (!same && PQntuples(r) == 0)
        snprintf(why, why_cap, "recorded head seq %s is gone: the log was cut at its end", seq_s);
    else if (!same)
        snprintf(why, why_cap, "recorded head seq %s has another hash now: the chain was rewritten", seq_s);
    PQclear(r);
    return same;
}

/* ---------- tail ---------- */

int gl_audit_tail(PGconn *db, int limit, gl_audit_row_fn cb, void *arg, gl_error *err) {
    if (limit < 1 || limit > GL_AUDIT_FETCH_ROWS) {
        gl_error_set(err, GL_ERR_INVALID, "limit must be 1..%d, got %d", GL_AUDIT_FETCH_ROWS, limit);
        return -1;
    }
    if (!use_utf8_client(db, err)) return -1;
    gl_buf p = {0};
    gl_bin_i32_raw(&p, limit);
    gl_buf *params[1] = {&p};
    PGresult *r =
        gl_pg_exec_bin_result(db, "SELECT " COLUMNS " FROM audit_log ORDER BY seq DESC LIMIT $1::int4", 1, params, err);
    gl_buf_free(&p);
    if (!r) return -1;
    int passed = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        gl_audit_row row;
        decode_row(r, i, &row);
        passed++;
        if (!cb(arg, &row)) break;
    }
    PQclear(r);
    return passed;
}
