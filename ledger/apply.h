/*
 * apply.h — the engine's decision logic, free of I/O so every result code can
 * be unit-tested. engine.c loads state, calls these in command order, and
 * writes what they decided.
 */
#ifndef GL_APPLY_H
#define GL_APPLY_H

#include "ledger.h"

/* An account as locked for the batch, with its running counters. */
typedef struct {
    gl_id id;
    char currency[4];
    uint32_t flags;
    int64_t debits_pending, debits_posted, credits_pending, credits_posted;
    int64_t version;
    bool touched; /* counters or flags changed in this batch */
    /* Where the locked row lives (ctid): the final UPDATE finds it without an
     * index descent. Stable while we hold the row lock. */
    uint32_t tid_block;
    uint16_t tid_offset;
} ledger_acct;

/* A transfer named by a post/void/expire/reverse, with its mutable state. */
typedef struct {
    gl_id id;
    gl_id debit_account_id, credit_account_id;
    int64_t amount;
    char currency[4];
    uint32_t flags;
    /* holds only (flags & PENDING) */
    char state;            /* 'p' pending, 'P' posted, 'V' voided, 'E' expired */
    int64_t expires_at_us; /* 0 = never */
    int64_t amount_posted;
    gl_id resolved_by;
    bool state_changed;
    /* reversal bookkeeping */
    int64_t amount_reversed;
} ledger_target;

/* ledger_mandate (ledger.h): a mandate as locked for the batch. */

/* Does mandate `m` (NULL: not found) let command `c` debit `c->amount` at
 * `now_us`? LEDGER_OK, LEDGER_MANDATE_INVALID or LEDGER_MANDATE_LIMIT_EXCEEDED.
 * Pure: the caller consumes the amount with ledger_mandate_consume. */
ledger_code ledger_check_mandate(const ledger_mandate *m, const ledger_cmd *c, int64_t now_us);
/* Adds `amount` to the day's usage (rolling the day over first). */
void ledger_mandate_consume(ledger_mandate *m, int64_t amount, int64_t now_us);

/* Static checks that need no database state (amounts, names, flags...). */
ledger_code ledger_validate_cmd(const ledger_cmd *c);

/* Can `dr` -> `cr` carry a transfer of `currency`? (existence, closed, currency) */
ledger_code ledger_check_accounts(const ledger_acct *dr, const ledger_acct *cr, const char *currency);

/*
 * Moves counters. Each returns LEDGER_OK and mutates both accounts (version+1
 * each), or returns a failure code and leaves both untouched.
 *   transfer: posted (pending=false) or held (pending=true) `amount`
 *   resolve:  a hold of `held` is released and `posted` (0..held) of it captured
 */
ledger_code ledger_apply_transfer(ledger_acct *dr, ledger_acct *cr, int64_t amount, bool pending);
ledger_code ledger_apply_resolve(ledger_acct *dr, ledger_acct *cr, int64_t held, int64_t posted);

/* Decides a post/void/expire against a hold at time `now_us`. On LEDGER_OK,
 * *amount_out is the amount to capture (post) or release (void/expire). */
ledger_code ledger_check_resolve(const ledger_target *t, ledger_cmd_kind kind, int64_t requested,
                                 int64_t now_us, int64_t *amount_out);
/* Decides a reversal; on LEDGER_OK, *amount_out is the amount to refund. */
ledger_code ledger_check_reverse(const ledger_target *t, int64_t requested, int64_t *amount_out);

#endif
