/*
 * outbox.h — watching and trimming the outbox (sql/0011_events.sql): where its
 * head is and where each consumer has got to (ledgerd's /metrics), and the
 * retention that deletes old events every consumer has passed (`ledgerctl
 * events prune`). Writing and reading events is events.h.
 */
#ifndef GL_OUTBOX_H
#define GL_OUTBOX_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "error.h"

#define LEDGER_CONSUMER_NAME_MAX 64 /* the CHECK on event_consumers.name */
#define LEDGER_OUTBOX_CONSUMERS_MAX 32 /* a status reads at most this many (by name) */
#define LEDGER_PRUNE_BATCH_MAX 100000

typedef struct {
    char name[LEDGER_CONSUMER_NAME_MAX + 1];
    int64_t position;
} ledger_outbox_consumer;

typedef struct {
    int64_t head; /* the last committed seq */
    int n_consumers;
    bool more_consumers; /* there were more than LEDGER_OUTBOX_CONSUMERS_MAX */
    ledger_outbox_consumer consumers[LEDGER_OUTBOX_CONSUMERS_MAX]; /* by name */
} ledger_outbox_status;

/* The head and the consumers' positions, in one statement (one snapshot). */
bool ledger_outbox_status_read(PGconn *db, ledger_outbox_status *st, gl_error *err);

/*
 * What retention may prune: the oldest events of the feed, from its horizon
 * (event_horizon.pruned_through) up to the first event not older than cutoff_us
 * or up to the prune bound, the smallest position of any consumer in
 * event_consumers (the head when there is none: a consumer not yet
 * registered cannot be waited for). The bound is computed in the statement
 * that prunes, so a consumer that moved since is never overtaken, and
 * positions only move forward. Pruning deletes the `events` rows and moves the
 * horizon past them; transfers stay (they are the ledger), but the feed no
 * longer shows their events.
 */
typedef struct {
    int64_t cutoff_us; /* events created before this (Unix microseconds) */
    int64_t after;     /* dry run: only events with seq > after (where the previous step stopped); a prune
                          always starts at the horizon */
    int limit;         /* 1..LEDGER_PRUNE_BATCH_MAX events per call */
    bool dry_run;      /* count what would go, delete nothing */
} ledger_prune_step;

typedef struct {
    int64_t count; /* events pruned (or, dry run, prunable) in this call */
    int64_t last;  /* the new horizon: the largest such seq, or `after` when none */
    int64_t bound; /* the prune bound this call used */
} ledger_prune_result;

/* One batch, one statement: in the caller's transaction if one is open (to
 * audit the deletion with it). A batch with count < limit is the last. */
bool ledger_events_prune_step(PGconn *db, const ledger_prune_step *p, ledger_prune_result *out, gl_error *err);

/* How many events above `bound` are older than cutoff_us (kept only because
 * a consumer has not passed them), looking at no more than `window` seqs;
 * *capped is set when the window ended before the head. -1 on error. */
int64_t ledger_events_count_unpassed(PGconn *db, int64_t bound, int64_t cutoff_us, int64_t window, bool *capped,
                                     gl_error *err);

#endif
