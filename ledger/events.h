/*
 * events.h — the outbox (sql/0011_events.sql, 0013): one event per committed
 * effect, written in the transaction of the effect, numbered gap-free in
 * commit order.
 *
 * The engine numbers the events of its commands itself (ledger_execute): a
 * transfer row carries its own number (transfers.event_seq: transfer created,
 * hold placed/posted/voided/expired, reversal), an account created or closed
 * gets an `events` row. A caller whose transaction has effects of its own
 * (ledgerd's mandates) writes theirs with ledger_events_write in the same
 * transaction. Readers read both through the view event_feed.
 * Readers follow `seq` (ledger_events_list): seq is dense and a number becomes
 * visible only after every smaller one (event_head's row lock, held to COMMIT),
 * so a cursor never skips an event that commits late.
 */
#ifndef GL_EVENTS_H
#define GL_EVENTS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "id.h"
#include "ledger.h"

typedef enum {
    LEDGER_EV_ACCOUNT_CREATED,
    LEDGER_EV_ACCOUNT_CLOSED,
    LEDGER_EV_TRANSFER_CREATED,  /* a plain transfer */
    LEDGER_EV_TRANSFER_PENDING,  /* a hold placed */
    LEDGER_EV_TRANSFER_POSTED,   /* a hold captured (amount: the capture) */
    LEDGER_EV_TRANSFER_VOIDED,   /* a hold released */
    LEDGER_EV_TRANSFER_EXPIRED,  /* a hold released by its timeout */
    LEDGER_EV_TRANSFER_REVERSED, /* a refund (amount: the refund) */
    LEDGER_EV_MANDATE_CREATED,
    LEDGER_EV_MANDATE_REVOKED,
    LEDGER_EV_COUNT
} ledger_event_type;

/* The API name ("transfer.pending"), or NULL for a value out of range. */
const char *ledger_event_type_name(ledger_event_type t);
/* Parses an API name; false when it names no type. */
bool ledger_event_type_parse(const char *name, ledger_event_type *out);
/* A set of types (bit 1 << type) as a text[] literal "{a,b}" ("{}" for none);
 * false when it does not fit in cap. */
bool ledger_event_types_literal(uint32_t types, char *buf, size_t cap);
/* "transfer.created,transfer.posted" (or "") into a set of types; false for
 * a name of no type or a list over 511 bytes. */
bool ledger_event_types_parse(const char *list, uint32_t *mask);

#define LEDGER_EVENT_OWNERS 3 /* at most: the debit side's, the credit side's, the actor */
#define LEDGER_EVENTS_PAGE_MAX 1000
/* The largest position a reader may name: 2^62, beyond any seq a region
 * reaches, so that a position plus a scan window stays within int64. */
#define LEDGER_EVENTS_SEQ_MAX ((int64_t)1 << 62)

/* One event. Ids that do not apply are nil, amount 0 and currency "" when none. */
typedef struct {
    int64_t seq;           /* set by the reads (an offset from the head when written) */
    gl_id id;              /* set by the reads: derived from (region, seq, time), sql/0013 */
    ledger_event_type type;
    int64_t created_at_us; /* the effect's commit time as the engine stamps it */
    gl_id account_id, transfer_id, debit_account_id, credit_account_id, pending_id, reverses_id, mandate_id;
    int64_t amount;
    char currency[4];
    /* The principals it concerns, "" = none; who may read it (besides admin). */
    char owners[LEDGER_EVENT_OWNERS][LEDGER_OWNER_MAX + 1];
} ledger_event;

/* Turns the outbox off for this process: ledger_events_write then writes
 * nothing. For measuring what the outbox costs only (make bench: ledger-bench
 * --no-events, ledgerd's bench_without_events): the feed, the webhooks and
 * the streams miss every effect made meanwhile. There is no way back on. */
void ledger_events_measure_without(void);
bool ledger_events_enabled(void);

/* Adds a principal to the event's owners unless it is there already (or empty). */
void ledger_event_add_owner(ledger_event *e, const char *owner);

/*
 * Reserves n numbers in the caller's open transaction: moves event_head on by
 * n and takes its row lock until the caller's COMMIT, so no later writer gets
 * a number before this transaction's rows are visible. The head is then this
 * transaction's last reserved number until it reserves again. In pipeline
 * mode the statement is only queued and *last is 0 (rows name their numbers
 * relative to the head, as ledger_events_write_reserved does); otherwise a
 * round trip and *last is the last number reserved (for rows written by COPY,
 * which cannot read the head: the engine's transfers).
 */
bool ledger_events_reserve(PGconn *db, int64_t n, int64_t *last, gl_error *err);

/*
 * Writes events[0..n) into `events` with the numbers reserved last: each
 * events[i].seq is an offset from the head (<= 0; the last reserved is 0).
 * Call it before anything reserves again. One statement; n == 0 writes nothing.
 */
bool ledger_events_write_reserved(PGconn *db, const ledger_event *events, size_t n, gl_error *err);

/*
 * Appends events[0..n) in the caller's open transaction: reserves n numbers
 * and writes the rows (their seq fields are overwritten with the offsets).
 * For effects outside the engine (ledgerd's mandates); the engine numbers its
 * transfers and account events itself. Nothing when the outbox is measured
 * without (ledger_events_measure_without) or n == 0.
 */
bool ledger_events_write(PGconn *db, ledger_event *events, size_t n, gl_error *err);

/* What a reader may see and how far it may scan. */
typedef struct {
    int64_t after;         /* events with seq > after */
    int limit;             /* 1..LEDGER_EVENTS_PAGE_MAX */
    const char *principal; /* only events it is an owner of; NULL = all (admin) */
    uint32_t types;        /* bit (1 << type) per wanted type; 0 = all */
    int64_t scan_max;      /* at most this many seqs are looked at per call (> 0) */
} ledger_events_query;

/*
 * Up to q->limit events after q->after, in seq order, into out, with their
 * owners (the webhook dispatcher matches endpoints on them). *scanned_to is
 * the position a reader resumes from: the last event returned when the page is
 * full, else the last seq looked at (events the principal may not see are
 * passed over, at most q->scan_max of them per call). *head is the last
 * committed seq. Returns the number of events, or -1.
 */
int ledger_events_list(PGconn *db, const ledger_events_query *q, ledger_event *out, int64_t *scanned_to, int64_t *head,
                       gl_error *err);

/* ---- consumers (event_consumers): where each reader of the outbox has got to ---- */

/* The consumer's position (0 for a consumer never seen; the row is made). -1 on error. */
int64_t ledger_events_consumer_position(PGconn *db, const char *name, gl_error *err);
/* Moves the consumer's position forward to `position` (never back), in the
 * caller's transaction if one is open: do it in the transaction that hands
 * the events on, so a crash re-reads them rather than skipping them. */
bool ledger_events_consumer_advance(PGconn *db, const char *name, int64_t position, gl_error *err);

#endif
