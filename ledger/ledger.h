/*
 * ledger.h — the double-entry engine for ONE regional partition.
 *
 * The unit of work is a batch of commands (DESIGN §4). ledger_execute() runs
 * a batch in one database transaction: it locks every touched account in id
 * order, applies the commands in memory (each gets its own result code;
 * linked chains succeed or fail together), writes transfers and entries with
 * COPY, updates each touched account once, and commits. Nothing here knows
 * about HTTP, configuration files or other regions.
 */
#ifndef GL_LEDGER_H
#define GL_LEDGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "error.h"
#include "id.h"

/* TigerBeetle's batch limit; the HTTP batch endpoint exposes the same. */
#define LEDGER_BATCH_MAX 8189
/* Batches of up to this many commands run in libpq pipeline mode: three round
 * trips (BEGIN and locks; reads a batch needs; writes and COMMIT), rows written
 * by INSERT of binary arrays. Above it, COPY's lower cost per row wins. */
#define LEDGER_PIPELINE_MAX 256
#define LEDGER_OWNER_MAX 128
#define LEDGER_REFERENCE_MAX 128
#define LEDGER_KIND_MAX 32
#define LEDGER_METADATA_MAX 4096 /* bytes of JSON text */
#define LEDGER_TIMEOUT_MAX_S (366LL * 24 * 3600)

/* Account flags (same bits as accounts.flags). */
#define LEDGER_AF_DEBITS_MUST_NOT_EXCEED_CREDITS 1u
#define LEDGER_AF_CREDITS_MUST_NOT_EXCEED_DEBITS 2u
#define LEDGER_AF_CLOSED 4u

/* Transfer flags (same bits as transfers.flags). */
#define LEDGER_TF_PENDING 1u
#define LEDGER_TF_POST 2u
#define LEDGER_TF_VOID 4u
#define LEDGER_TF_LINKED 8u
#define LEDGER_TF_EXPIRE 16u
#define LEDGER_TF_REVERSAL 32u

/* Result of one command. Stable names: see ledger_code_name(). */
typedef enum {
    LEDGER_OK = 0,
    LEDGER_EXISTS,                       /* same reference, same fields: the first one is returned */
    LEDGER_EXISTS_WITH_DIFFERENT_FIELDS, /* same reference, other fields */
    LEDGER_LINKED_EVENT_FAILED,          /* another command of the linked chain failed */
    LEDGER_LINKED_EVENT_CHAIN_OPEN,      /* the batch's last command has the linked flag */
    LEDGER_AMOUNT_INVALID,               /* <= 0 where a positive amount is required, or < 0 */
    LEDGER_CURRENCY_INVALID,
    LEDGER_CURRENCY_MISMATCH,
    LEDGER_SAME_ACCOUNT,
    LEDGER_ACCOUNT_NOT_FOUND,
    LEDGER_ACCOUNT_CLOSED,
    LEDGER_ACCOUNT_FLAGS_INVALID,
    LEDGER_OWNER_INVALID,
    LEDGER_KIND_INVALID,
    LEDGER_REFERENCE_INVALID,
    LEDGER_METADATA_INVALID,
    LEDGER_TIMEOUT_INVALID,
    LEDGER_INSUFFICIENT_FUNDS,           /* debits would exceed credits (debits_must_not_exceed_credits) */
    LEDGER_EXCEEDS_DEBITS,               /* credits would exceed debits (credits_must_not_exceed_debits) */
    LEDGER_BALANCE_OVERFLOW,             /* a counter would overflow int64 */
    LEDGER_TRANSFER_NOT_FOUND,           /* reverse target does not exist */
    LEDGER_PENDING_NOT_FOUND,
    LEDGER_NOT_PENDING,                  /* post/void/expire of a transfer that is not a hold */
    LEDGER_PENDING_EXPIRED,
    LEDGER_PENDING_NOT_EXPIRED,          /* expire before the timeout */
    LEDGER_ALREADY_POSTED,
    LEDGER_ALREADY_VOIDED,
    LEDGER_EXCEEDS_PENDING_AMOUNT,
    LEDGER_NOT_REVERSIBLE,               /* holds, voids and reversals cannot be reversed */
    LEDGER_EXCEEDS_REVERSIBLE_AMOUNT,
    LEDGER_CROSS_REGION_REQUIRES_SAGA,   /* set by the region router, never by the engine */
    LEDGER_WRONG_REGION,                 /* set by the region router: id belongs to no/another region */
    LEDGER_MANDATE_INVALID,              /* the mandate is unknown, revoked, expired, or does not cover this
                                            debit account, author or currency */
    LEDGER_MANDATE_LIMIT_EXCEEDED,       /* above the mandate's per-charge or per-day cap */
    LEDGER_CODE_COUNT
} ledger_code;

const char *ledger_code_name(ledger_code c);
/* Parses a name back (for tests and tools); false if unknown. */
bool ledger_code_from_name(const char *name, ledger_code *out);

typedef enum {
    LEDGER_CMD_CREATE_ACCOUNT,
    LEDGER_CMD_CLOSE_ACCOUNT,
    LEDGER_CMD_TRANSFER, /* plain or pending (hold) */
    LEDGER_CMD_POST,     /* capture a hold, full (amount 0) or partial */
    LEDGER_CMD_VOID,     /* release a hold */
    LEDGER_CMD_EXPIRE,   /* release a hold whose timeout passed */
    LEDGER_CMD_REVERSE,  /* refund a posted transfer, full (amount 0) or partial */
} ledger_cmd_kind;

typedef struct {
    ledger_cmd_kind kind;
    bool linked;                             /* chained with the next command: all or nothing */
    char owner[LEDGER_OWNER_MAX + 1];        /* the principal: account owner / transfer author */
    char reference[LEDGER_REFERENCE_MAX + 1];/* transfers: unique per owner; "" = none */
    const char *metadata;                    /* JSON object text or NULL; not copied */
    /* create account */
    char currency[4];
    char account_kind[LEDGER_KIND_MAX + 1];
    uint32_t account_flags;
    /* transfer */
    gl_id debit_account_id;
    gl_id credit_account_id;
    int64_t amount;      /* minor units; post/reverse: 0 = the whole remaining amount */
    bool pending;
    int64_t timeout_s;   /* pending only; 0 = never expires */
    /* close account, post, void, expire, reverse: the account or transfer acted on */
    gl_id target_id;
    /* transfer only; nil = none. The debit account is someone else's: the
     * mandate (table mandates) must grant `owner` the right to debit it, and
     * the amount counts against its per-charge and per-day caps. Checked and
     * consumed under the mandate's row lock, in the batch's transaction. */
    gl_id mandate_id;
} ledger_cmd;

/* A transfer the batch wrote, as a read will show it once the batch commits
 * (with its command's owner, reference and metadata; a new hold is pending,
 * nothing of it posted or reversed yet). */
typedef struct {
    gl_id debit_account_id, credit_account_id;
    gl_id pending_id, reverses_id; /* nil when absent */
    int64_t amount;
    int64_t expires_at_us; /* 0 = none */
    uint32_t flags;
    char currency[4];
    const char *metadata; /* the writing command's JSON text (NULL = none): valid during the batch only */
} ledger_written;

typedef struct {
    ledger_code code;
    gl_id id; /* the created account/transfer; the earlier one for EXISTS and EXISTS_WITH_DIFFERENT_FIELDS */
    int64_t created_at_us; /* `written` or an account created: the batch's timestamp; else 0 */
    /* The transfer `id` names was written by this batch (LEDGER_OK for a
     * transfer command, or LEDGER_EXISTS naming an earlier command of the
     * batch): not yet in its table when the before-commit hook runs, so the
     * hook renders it from here (ledger_transfer_from_result). */
    bool written;
    ledger_written transfer;
} ledger_result;

/*
 * Called inside the batch's transaction before COMMIT, with each command's
 * result: the caller's own rows (idempotency keys, outbox) commit atomically
 * with the effect. Return false (err set) to roll the batch back;
 * GL_ERR_CONFLICT reruns it like any other race.
 *
 * It runs after the new accounts, the entries and the account counters are
 * written and before the transfers, holds and events are: those go last, as
 * the outbox's head is locked from their numbering to COMMIT and every other
 * writer of the region waits for it (events.h). So the hook reads no transfer
 * of this batch from the table: results[i].written has them.
 *
 * The connection may be in libpq pipeline mode (a batch of up to
 * LEDGER_PIPELINE_MAX commands, ledger/pg.h). Then a statement sent with
 * gl_pg_run is queued with the batch's writes and COMMIT (its error surfaces
 * at the end, and rolls the batch back); a query whose rows the hook reads
 * (gl_pg_exec*) syncs the pipeline and waits for them: a round trip made
 * while the batch holds its row locks, so the hook reads what it needs in one
 * query (ledger_transfers_each), never one per command. Events of the hook's
 * own effects go through ledger_events_write (numbered before the batch's).
 * The hook must not COMMIT, ROLLBACK, COPY, or leave pipeline mode.
 */
typedef bool (*ledger_before_commit_fn)(void *arg, PGconn *db, const ledger_result *results, size_t n,
                                        gl_error *err);

typedef struct {
    uint8_t partition_code; /* stamped into every id this engine creates */
    int max_retries;        /* whole-batch retries on serialization/unique races; 0 = default 5 */
    ledger_before_commit_fn before_commit; /* optional */
    void *before_commit_arg;
} ledger_ctx;

/*
 * Executes `n` (1..LEDGER_BATCH_MAX) commands in one transaction and fills
 * results[0..n). Returns true when the batch committed (individual commands
 * may still have failed: see their codes); false on an infrastructure error
 * (database down, constraint violated by a concurrent writer after all retries),
 * in which case nothing was applied and `err` says why.
 */
bool ledger_execute(PGconn *db, const ledger_ctx *ctx, const ledger_cmd *cmds, size_t n,
                    ledger_result *results, gl_error *err);

/* credits - debits - pending (the `posted`/`available` of API.md), saturated to
 * int64: each counter fits in int64, their difference may not. */
int64_t ledger_balance(int64_t credits, int64_t debits, int64_t pending);

/* Initializes a command with defaults (kind "wallet", no flags, not linked). */
void ledger_cmd_init(ledger_cmd *cmd, ledger_cmd_kind kind);

/* ---- reads ---- */

typedef struct {
    gl_id id;
    char currency[4];
    char owner[LEDGER_OWNER_MAX + 1];
    char kind[LEDGER_KIND_MAX + 1];
    uint32_t flags;
    int64_t debits_pending, debits_posted, credits_pending, credits_posted;
    int64_t version;
    char created_at[40]; /* RFC 3339 UTC */
    /* JSON object text as PostgreSQL renders the stored jsonb ("" = none);
     * jsonb text can be longer than what was written, hence twice the limit. */
    char metadata[2 * LEDGER_METADATA_MAX + 1];
} ledger_account;

typedef struct {
    gl_id id;
    char owner[LEDGER_OWNER_MAX + 1];
    char reference[LEDGER_REFERENCE_MAX + 1];
    gl_id debit_account_id, credit_account_id;
    int64_t amount;
    char currency[4];
    uint32_t flags;
    gl_id pending_id, reverses_id; /* nil when absent */
    char status[16];               /* pending|posted|voided|expired (for holds), posted otherwise */
    int64_t amount_posted;         /* holds: amount captured so far */
    int64_t amount_reversed;       /* sum of reversals of this transfer */
    char expires_at[40];           /* "" when none */
    char created_at[40];
    char metadata[2 * LEDGER_METADATA_MAX + 1]; /* JSON object text ("" = none) */
} ledger_transfer;

/* The transfer a result with `written` set names, for the command c that got it. */
void ledger_transfer_from_result(const ledger_cmd *c, const ledger_result *r, ledger_transfer *out);

typedef struct {
    int64_t version;
    gl_id transfer_id;
    char side; /* 'D' or 'C' */
    int64_t pending_delta, posted_delta;
    int64_t debits_pending, debits_posted, credits_pending, credits_posted;
    char created_at[40];
} ledger_entry;

/* Returns 1 found, 0 not found, -1 error. */
int ledger_account_get(PGconn *db, const gl_id *id, ledger_account *out, gl_error *err);
/* Counters as of `as_of` (RFC 3339 or anything PostgreSQL's timestamptz accepts);
 * an account that did not exist yet is "not found". 1 / 0 / -1. */
int ledger_account_get_as_of(PGconn *db, const gl_id *id, const char *as_of, ledger_account *out,
                             gl_error *err);
int ledger_transfer_get(PGconn *db, const gl_id *id, ledger_transfer *out, gl_error *err);
/* The transfers ids[0..n) in one query (n <= LEDGER_BATCH_MAX): fn(arg, i, t)
 * for each one found, i its index in ids (in no particular order; t is valid
 * during the call only). Returns how many were found, or -1. One round trip,
 * so a batch's responses cost one query under its row locks. */
typedef void (*ledger_transfer_fn)(void *arg, size_t i, const ledger_transfer *t);
int ledger_transfers_each(PGconn *db, const gl_id *ids, size_t n, ledger_transfer_fn fn, void *arg, gl_error *err);
/* Entries of an account with version > after_version, oldest first; returns count or -1. */
int ledger_entries_list(PGconn *db, const gl_id *account_id, int64_t after_version, int limit,
                        ledger_entry *out, gl_error *err);

/* Queues up to `limit` expire commands for holds whose timeout passed and runs them.
 * Returns the number expired, or -1. */
int ledger_expire_due(PGconn *db, const ledger_ctx *ctx, int limit, gl_error *err);

/* A mandate (sql/0006_mandates.sql): a wallet owner's permission for a
 * grantee to debit the wallet, with caps. One struct and one decoder for
 * every read of the table: the engine's lock of a batch's mandates, ledgerd's
 * reads, inserts and revocations (api/mandates.c). */
typedef struct {
    gl_id id;
    gl_id wallet_account_id;
    char grantee[LEDGER_OWNER_MAX + 1];
    char currency[4];
    int64_t max_per_charge, max_per_day;
    int64_t expires_at_us;
    bool revoked;
    int64_t day;         /* UTC days since 1970-01-01 that spent_today counts */
    int64_t spent_today; /* the usage of `day` (the engine rolls the day over lazily) */
    char created_by[LEDGER_OWNER_MAX + 1];
    int64_t created_at_us;
    int64_t revoked_at_us; /* 0: not revoked */
    char revoked_by[LEDGER_OWNER_MAX + 1];
    bool expired;     /* expires_at had passed when read, by the database clock */
    int64_t read_day; /* the database's UTC day when read: what "today" is for ledger_mandate_spent_today */
    bool touched;     /* the engine: its usage changed in this batch */
} ledger_mandate;

/* What every read of the mandates table selects, in the order
 * ledger_mandate_from_row decodes (text results). */
#define LEDGER_MANDATE_COLUMNS                                                                                 \
    "id, wallet_account_id, grantee, currency, max_amount_per_charge, max_amount_per_day, "                   \
    "(extract(epoch FROM expires_at) * 1000000)::int8, revoked_at IS NOT NULL, "                              \
    "(usage_day - date '1970-01-01')::int8, spent_on_usage_day, "                                             \
    "created_by, (extract(epoch FROM created_at) * 1000000)::int8, "                                          \
    "coalesce((extract(epoch FROM revoked_at) * 1000000)::int8, 0), coalesce(revoked_by, ''), "               \
    "expires_at <= now(), ((now() AT TIME ZONE 'UTC')::date - date '1970-01-01')::int8"
void ledger_mandate_from_row(const PGresult *r, int row, ledger_mandate *m);
/* The usage of the day the row was read on (0 when its usage is of an earlier day). */
int64_t ledger_mandate_spent_today(const ledger_mandate *m);

/* ---- invariants (DESIGN §5, 1-5) ---- */

typedef void (*ledger_violation_fn)(void *arg, int invariant, const char *what);
/* Checks invariants 1-5 on the partition; calls `report` for each violation.
 * Returns the number of violations, or -1 on a database error. */
int ledger_verify(PGconn *db, ledger_violation_fn report, void *arg, gl_error *err);

#endif
