/*
 * audit.h — the hash-chained audit log of one regional partition (PCI DSS
 * 10.2: who, what, when, where from, outcome; 10.3.4: tamper detection).
 * Table audit_log, sql/0005_audit.sql.
 *
 * Appending: rows get seq = last + 1 under pg_advisory_xact_lock(GL_AUDIT_LOCK_KEY),
 * never from a sequence, so seq has no gaps and a deleted row shows as one.
 * Appenders are serialized per partition for the rest of their transaction;
 * append last in a transaction to keep that short.
 *
 * Chain: prev_hash(seq 1) = 32 zero bytes, prev_hash(seq n) = hash(seq n-1), and
 *   hash = SHA-256( prev_hash                        32 bytes
 *                || uint64 seq                       big-endian
 *                || int64 at_us                      µs since the Unix epoch, big-endian
 *                || for actor, action, object, source, outcome, detail:
 *                      uint32 length || bytes        big-endian length, UTF-8 bytes )
 * `detail` is the compact JSON text with sorted keys that jansson produced
 * (JSON_COMPACT | JSON_SORT_KEYS), stored as text exactly as hashed, and `at`
 * is chosen here, so the stored bytes are the hashed bytes and verification
 * recomputes every hash in C, trusting nothing PostgreSQL computes.
 *
 * What verification proves, and what it does not: any edited row (hash
 * mismatch), any row removed from the middle or the start (seq gap, broken
 * link), any reordering. It cannot see rows removed from the END (the shorter
 * chain is still a valid chain), nor a chain rewritten from some row onward by
 * someone who can write the table (the hash has no secret key). Both are
 * caught by comparing against a head recorded elsewhere: record
 * gl_audit_summary.last_seq/last_hash_hex (e.g. `ledgerctl --json audit verify`
 * from a scheduled job into a separate, write-once store) and check that the
 * recorded row still has the recorded hash. `ledgerctl audit anchor` does the
 * same across regions: each region's log records the others' heads
 * (action "audit.anchor"), and `ledgerctl audit verify` checks them.
 */
#ifndef GL_AUDIT_H
#define GL_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "error.h"

/* pg_advisory_xact_lock key serializing appenders (ledger_migrate uses 7349001). */
#define GL_AUDIT_LOCK_KEY 7349005
#define GL_AUDIT_BATCH_MAX 10000   /* events per gl_audit_append call */
#define GL_AUDIT_ACTOR_MAX 256     /* bytes */
#define GL_AUDIT_ACTION_MAX 64
#define GL_AUDIT_OBJECT_MAX 512
#define GL_AUDIT_SOURCE_MAX 256
#define GL_AUDIT_DETAIL_MAX 65536  /* bytes of canonical JSON */
#define GL_AUDIT_HASH_BYTES 32
#define GL_AUDIT_HASH_HEX 64      /* its lower-case hex digits */
#define GL_AUDIT_FETCH_ROWS 10000  /* rows per FETCH while verifying: bounds memory */

typedef enum {
    GL_AUDIT_SUCCESS,
    GL_AUDIT_FAILURE, /* the action was attempted and failed */
    GL_AUDIT_DENIED,  /* refused by authentication or authorization */
} gl_audit_outcome;

typedef struct {
    const char *actor;   /* who: a principal (JWT sub) or the OS user of a job; required */
    const char *action;  /* what: "<area>.<verb>", e.g. "auth.failure", "mandate.create",
                            "recon.run", "admin.migrate": [a-z][a-z0-9_]* parts joined by '.' */
    const char *object;  /* what it was done to (an id, a file name); NULL means "" */
    const char *source;  /* where from: the client IP, or "host/pid" for a job; required */
    gl_audit_outcome outcome;
    int64_t at_us;       /* when it happened, µs since the Unix epoch; 0 = now */
    /* Anything else, as one JSON object: give either the text (`detail_text`)
     * or a jansson value (`detail`), or neither ({}). Never card data (PCI DSS 3.4). */
    const char *detail_text;
    const json_t *detail;
} gl_audit_event;

/*
 * Appends `n` events (0 < n <= GL_AUDIT_BATCH_MAX) in order, all or none.
 * If `db` is inside a transaction (PQTRANS_INTRANS) the events join it, so an
 * event commits or rolls back with the effect it records; a failure then
 * leaves that transaction aborted (the caller rolls back: an effect that
 * cannot be audited should not commit). Otherwise the events get their own
 * transaction. The caller's transaction must be READ COMMITTED: under
 * REPEATABLE READ a concurrent append surfaces as GL_ERR_CONFLICT (retry).
 * Bad events (missing or overlong fields, malformed action, detail not a JSON
 * object, invalid UTF-8) are refused with GL_ERR_INVALID before any SQL runs.
 */
bool gl_audit_append(PGconn *db, const gl_audit_event *events, size_t n, gl_error *err);

/* "success", "failure", "denied". */
const char *gl_audit_outcome_name(gl_audit_outcome o);

/* For jobs and CLI commands: the OS user ("uid:<n>" if it has no name), and
 * "<hostname>/<pid>". Always NUL-terminated, truncated to `cap`. */
void gl_audit_local_actor(char *buf, size_t cap);
void gl_audit_local_source(char *buf, size_t cap);

/* One stored row; strings point into the result and live only during a callback. */
typedef struct {
    int64_t seq;
    int64_t at_us; /* µs since the Unix epoch */
    const char *actor, *action, *object, *source, *outcome, *detail;
    uint8_t prev_hash[GL_AUDIT_HASH_BYTES];
    uint8_t hash[GL_AUDIT_HASH_BYTES];
} gl_audit_row;

/* The hash a row must carry, given its prev_hash and fields (see the top). */
bool gl_audit_row_hash(const gl_audit_row *row, uint8_t out[GL_AUDIT_HASH_BYTES]);

typedef enum {
    GL_AUDIT_MODIFIED,    /* the row's hash does not match its contents */
    GL_AUDIT_BROKEN_LINK, /* prev_hash is not the previous row's hash */
    GL_AUDIT_GAP,         /* seq jumps: rows in between were deleted */
    GL_AUDIT_BAD_START,   /* the first row is not seq 1: the first rows were deleted */
} gl_audit_violation_kind;

typedef struct {
    gl_audit_violation_kind kind;
    int64_t seq;          /* the row where it shows */
    int64_t expected_seq; /* GAP, BAD_START: the seq that should have come */
    const char *message;  /* one line, for operators */
} gl_audit_violation;

/* "modified_row", "broken_link", "gap", "bad_start". */
const char *gl_audit_violation_kind_name(gl_audit_violation_kind k);

typedef void (*gl_audit_violation_fn)(void *arg, const gl_audit_violation *v);

typedef struct {
    int64_t rows;       /* rows checked */
    int64_t violations; /* violations reported */
    int64_t last_seq;   /* 0 when the log is empty */
    char last_hash_hex[GL_AUDIT_HASH_HEX + 1]; /* 64 zeros when empty */
} gl_audit_summary;

/*
 * Reads the whole log in seq order in one snapshot (a cursor, GL_AUDIT_FETCH_ROWS
 * rows at a time: bounded memory) and reports every violation to `cb` (may be
 * NULL). Appenders commit in seq order, so verifying a live log reports no
 * false gaps. Returns false only when the log could not be read; violations
 * are counted in out->violations. `db` must not be inside a transaction.
 */
bool gl_audit_verify(PGconn *db, gl_audit_violation_fn cb, void *arg, gl_audit_summary *out, gl_error *err);

/*
 * Checks a head recorded earlier (see the top): whether row `seq` still exists
 * and carries `hash_hex` (64 hex digits). Together with a clean verify this
 * proves rows 1..seq are the ones recorded then. Returns 1 yes, 0 no (the
 * reason, "cut" or "rewritten", in `why`), -1 on error.
 */
int gl_audit_check_head(PGconn *db, int64_t seq, const char *hash_hex, char *why, size_t why_cap, gl_error *err);

typedef bool (*gl_audit_row_fn)(void *arg, const gl_audit_row *row);

/* Calls `cb` for the last `limit` rows (1..GL_AUDIT_FETCH_ROWS), newest first,
 * until it returns false. Returns the number of rows passed, or -1. */
int gl_audit_tail(PGconn *db, int limit, gl_audit_row_fn cb, void *arg, gl_error *err);

/* Lower-case hex of a hash; `hex` holds GL_AUDIT_HASH_HEX + 1 bytes. */
void gl_audit_hex(const uint8_t hash[GL_AUDIT_HASH_BYTES], char *hex);

#endif
