/*
 * engine.c — batch execution against one regional partition (DESIGN §4).
 *
 *   1. load the transfers that posts/voids/reversals name (immutable rows);
 *   2. BEGIN; lock every touched account in id order (one statement), then
 *      the mandates that transfers use; load hold states, reversal totals and
 *      references seen before;
 *   3. apply the commands in order in memory (apply.c decides each result);
 *      a failed linked chain is undone from an undo log;
 *   4. COPY the new accounts and the entries, update each touched account
 *      once; the caller's before-commit hook (it gets the batch's transfers in
 *      the results); then, last, reserve one event number per effect
 *      (events.h: the head's row lock, held to COMMIT), COPY the transfers
 *      (each with its event number), the holds and the account events; COMMIT.
 *
 * A batch of up to LEDGER_PIPELINE_MAX commands runs in libpq pipeline mode:
 * BEGIN goes out with the account locks (which also read the clock), and the
 * writes (INSERT ... unnest() of binary arrays in place of COPY), the caller's
 * before-commit statements and COMMIT go out together; row counts are checked
 * by the statements themselves (expect_rows, sql/0008). Group commit through
 * ledgerd is made of such batches, and there a round trip costs more than the
 * statements it carries.
 *
 * A unique violation or serialization failure from a concurrent writer (another
 * process on the same partition) rolls back and runs the whole batch again:
 * correctness comes from row locks and constraints, not from a single writer.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "buf.h"
#include "events.h"
#include "ledger.h"
#include "pg.h"

#define DEFAULT_MAX_RETRIES 5

/* A transfer written by this batch, or one loaded because a reference matched. */
typedef struct {
    gl_id id;
    size_t cmd; /* index of the command that produced it (outputs only) */
    gl_id debit_account_id, credit_account_id;
    int64_t amount;
    char currency[4];
    uint32_t flags;
    gl_id pending_id, reverses_id;
    int64_t expires_at_us;
    /* entries: the same deltas hit the debit side of one and the credit side of the other */
    int64_t pending_delta, posted_delta;
    ledger_acct debit_after, credit_after;
    int64_t event_off; /* its event's number, relative to the head (<= 0; outputs only) */
} xfer;

typedef struct {
    void *ptr;
    size_t size;
    size_t offset; /* into undo arena */
} undo_rec;

/* Open-addressing set of (owner, reference) -> transfer, for replays. */
typedef struct {
    uint64_t hash;
    int where; /* 0 empty, 1 known (from the database), 2 output of this batch */
    size_t idx;
} ref_slot;

typedef struct {
    const ledger_ctx *ctx;
    const ledger_cmd *cmds;
    size_t n;
    ledger_result *res;
    int64_t now_us;

    ledger_acct *accts;
    size_t n_accts;
    char (*acct_owners)[LEDGER_OWNER_MAX + 1]; /* acct_owners[k]: the owner of accts[k] (for events) */
    ledger_target *targets;
    size_t n_targets;
    ledger_mandate *mandates; /* sorted by id */
    size_t n_mandates;
    xfer *known; /* transfers found by reference */
    size_t n_known;
    char (*known_keys)[LEDGER_OWNER_MAX + LEDGER_REFERENCE_MAX + 2];

    xfer *outs;
    size_t n_outs;
    size_t *new_accounts; /* command indices */
    gl_id *new_account_ids;
    size_t n_new_accounts;

    ref_slot *refs;
    size_t refs_cap;

    undo_rec *undo;
    size_t n_undo, undo_cap;
    gl_buf undo_arena;
    bool in_chain;

    gl_buf sql_a, sql_b; /* scratch for array literals and COPY data */
    /* References are first assumed new (the common case: one index probe per
     * transfer saved); the unique index catches a replay, and the batch reruns
     * with them looked up. Set from the start when the caller expects replays. */
    bool lookup_references;
    /* Small batches run in libpq pipeline mode (see pg.h): BEGIN goes out with
     * the account locks, and every write with the COMMIT. */
    bool pipelined;
    /* The outbox: events of account commands (the transfers number their own
     * rows), and the last number reserved when known (outside pipeline mode). */
    ledger_event *account_events; /* one per account command of the batch (an event is ~0.5 KiB) */
    size_t n_account_events, account_events_cap;
    int64_t event_last;
    size_t *out_of; /* out_of[i]: the output command i wrote, or SIZE_MAX */
} batch;

/* ---------- small helpers ---------- */

static int id_cmp_void(const void *a, const void *b) { return gl_id_cmp(a, b); }

static ledger_acct *find_acct(batch *b, const gl_id *id) {
    return bsearch(id, b->accts, b->n_accts, sizeof *b->accts, id_cmp_void);
}

static ledger_mandate *find_mandate(batch *b, const gl_id *id) {
    return bsearch(id, b->mandates, b->n_mandates, sizeof *b->mandates, id_cmp_void);
}

static ledger_target *find_target(batch *b, const gl_id *id) {
    return bsearch(id, b->targets, b->n_targets, sizeof *b->targets, id_cmp_void);
}

static size_t sort_unique_ids(gl_id *ids, size_t n) {
    if (n == 0) return 0;
    qsort(ids, n, sizeof *ids, id_cmp_void);
    size_t m = 1;
    for (size_t i = 1; i < n; i++)
        if (gl_id_cmp(&ids[i], &ids[m - 1]) != 0) ids[m++] = ids[i];
    return m;
}

/* A binary uuid[] parameter. */
static gl_buf *ids_param(gl_buf *buf, const gl_id *ids, size_t n) {
    gl_bin_array_begin(buf, GL_OID_UUID);
    for (size_t i = 0; i < n; i++) gl_bin_uuid(buf, &ids[i]);
    gl_bin_array_finish(buf, (int32_t)n);
    return buf;
}

static bool is_transfer_cmd(ledger_cmd_kind k) { return k != LEDGER_CMD_CREATE_ACCOUNT && k != LEDGER_CMD_CLOSE_ACCOUNT; }

static bool targets_transfer(ledger_cmd_kind k) {
    return k == LEDGER_CMD_POST || k == LEDGER_CMD_VOID || k == LEDGER_CMD_EXPIRE || k == LEDGER_CMD_REVERSE;
}

/* ---------- undo log for linked chains ---------- */

static bool undo_save(batch *b, void *ptr, size_t size) {
    if (!b->in_chain) return true;
    if (b->n_undo == b->undo_cap) {
        size_t cap = b->undo_cap ? b->undo_cap * 2 : 64;
        undo_rec *p = realloc(b->undo, cap * sizeof *p);
        if (!p) return false;
        b->undo = p;
        b->undo_cap = cap;
    }
    b->undo[b->n_undo++] = (undo_rec){ptr, size, b->undo_arena.len};
    gl_buf_append(&b->undo_arena, ptr, size);
    return !b->undo_arena.failed;
}

static void undo_rollback(batch *b) {
    while (b->n_undo > 0) {
        undo_rec *u = &b->undo[--b->n_undo];
        memcpy(u->ptr, b->undo_arena.data + u->offset, u->size);
    }
    gl_buf_reset(&b->undo_arena);
}

static void undo_forget(batch *b) {
    b->n_undo = 0;
    gl_buf_reset(&b->undo_arena);
}

/* ---------- references ---------- */

static uint64_t ref_hash(const char *owner, const char *reference) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const char *p = owner; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ 0x1f) * 1099511628211ULL;
    for (const char *p = reference; *p; p++) h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

static bool ref_key_matches(batch *b, const ref_slot *s, const char *owner, const char *reference) {
    if (s->where == 1) {
        const char *key = b->known_keys[s->idx];
        size_t ol = strlen(owner);
        return strncmp(key, owner, ol) == 0 && key[ol] == '\x1f' && strcmp(key + ol + 1, reference) == 0;
    }
    /* An output slot is stale if its chain was rolled back and the index reused. */
    if (s->idx >= b->n_outs) return false;
    const ledger_cmd *c = &b->cmds[b->outs[s->idx].cmd];
    return strcmp(c->owner, owner) == 0 && strcmp(c->reference, reference) == 0;
}

static ref_slot *ref_find_slot(batch *b, const char *owner, const char *reference, bool *found) {
    uint64_t h = ref_hash(owner, reference);
    size_t mask = b->refs_cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        ref_slot *s = &b->refs[i];
        if (s->where == 0) {
            *found = false;
            s->hash = h;
            return s;
        }
        if (s->hash == h && ref_key_matches(b, s, owner, reference)) {
            *found = true;
            return s;
        }
    }
}

static const xfer *ref_lookup(batch *b, const ledger_cmd *c) {
    bool found;
    ref_slot *s = ref_find_slot(b, c->owner, c->reference, &found);
    if (!found) return NULL;
    return s->where == 1 ? &b->known[s->idx] : &b->outs[s->idx];
}

static void ref_insert(batch *b, const char *owner, const char *reference, int where, size_t idx) {
    bool found;
    ref_slot *s = ref_find_slot(b, owner, reference, &found);
    s->where = where;
    s->idx = idx;
}

static uint32_t type_flags(uint32_t f) {
    return f & (LEDGER_TF_PENDING | LEDGER_TF_POST | LEDGER_TF_VOID | LEDGER_TF_EXPIRE |
                LEDGER_TF_REVERSAL);
}

/* A replay must ask for the same effect; amounts of 0 ("all") match what was done. */
static bool same_fields(const ledger_cmd *c, const xfer *x) {
    uint32_t t = type_flags(x->flags);
    switch (c->kind) {
    case LEDGER_CMD_TRANSFER:
        return t == (c->pending ? LEDGER_TF_PENDING : 0u) &&
               gl_id_cmp(&x->debit_account_id, &c->debit_account_id) == 0 &&
               gl_id_cmp(&x->credit_account_id, &c->credit_account_id) == 0 && x->amount == c->amount &&
               strcmp(x->currency, c->currency) == 0;
    case LEDGER_CMD_POST:
        return t == LEDGER_TF_POST && gl_id_cmp(&x->pending_id, &c->target_id) == 0 &&
               (c->amount == 0 || c->amount == x->amount);
    case LEDGER_CMD_VOID: return t == LEDGER_TF_VOID && gl_id_cmp(&x->pending_id, &c->target_id) == 0;
    case LEDGER_CMD_EXPIRE: return t == LEDGER_TF_EXPIRE && gl_id_cmp(&x->pending_id, &c->target_id) == 0;
    case LEDGER_CMD_REVERSE:
        return t == LEDGER_TF_REVERSAL && gl_id_cmp(&x->reverses_id, &c->target_id) == 0 &&
               (c->amount == 0 || c->amount == x->amount);
    default: return false;
    }
}

/* ---------- applying commands ---------- */

static bool save_acct(batch *b, ledger_acct *a) { return undo_save(b, a, sizeof *a); }

static xfer *new_out(batch *b, size_t cmd_idx, uint32_t flags, gl_error *err) {
    xfer *x = &b->outs[b->n_outs];
    memset(x, 0, sizeof *x);
    if (!gl_id_new(b->ctx->partition_code, &x->id, err)) return NULL;
    x->cmd = cmd_idx;
    x->flags = flags | (b->cmds[cmd_idx].linked ? LEDGER_TF_LINKED : 0u);
    return x;
}

/* Records the accepted output: entries snapshot and the reference for replays. */
static void commit_out(batch *b, xfer *x, const ledger_acct *dr, const ledger_acct *cr) {
    const ledger_cmd *c = &b->cmds[x->cmd];
    x->debit_after = *dr;
    x->credit_after = *cr;
    b->res[x->cmd].id = x->id;
    b->res[x->cmd].created_at_us = b->now_us;
    if (c->reference[0]) ref_insert(b, c->owner, c->reference, 2, b->n_outs);
    b->n_outs++;
}

static ledger_code apply_create_account(batch *b, size_t i, gl_error *err) {
    gl_id id;
    if (!gl_id_new(b->ctx->partition_code, &id, err)) return LEDGER_CODE_COUNT;
    b->new_accounts[b->n_new_accounts] = i;
    b->new_account_ids[b->n_new_accounts++] = id;
    b->res[i].id = id;
    b->res[i].created_at_us = b->now_us;
    return LEDGER_OK;
}

static ledger_code apply_close_account(batch *b, size_t i) {
    ledger_acct *a = find_acct(b, &b->cmds[i].target_id);
    if (!a) return LEDGER_ACCOUNT_NOT_FOUND;
    if (a->flags & LEDGER_AF_CLOSED) return LEDGER_ACCOUNT_CLOSED;
    if (!save_acct(b, a)) return LEDGER_CODE_COUNT;
    a->flags |= LEDGER_AF_CLOSED;
    a->touched = true;
    b->res[i].id = a->id;
    return LEDGER_OK;
}

static ledger_code apply_transfer(batch *b, size_t i, gl_error *err) {
    const ledger_cmd *c = &b->cmds[i];
    ledger_acct *dr = find_acct(b, &c->debit_account_id), *cr = find_acct(b, &c->credit_account_id);
    ledger_code rc = ledger_check_accounts(dr, cr, c->currency);
    if (rc != LEDGER_OK) return rc;
    ledger_mandate *m = NULL;
    if (!gl_id_is_nil(&c->mandate_id)) {
        m = find_mandate(b, &c->mandate_id);
        rc = ledger_check_mandate(m, c, b->now_us);
        if (rc != LEDGER_OK) return rc;
        if (!undo_save(b, m, sizeof *m)) return LEDGER_CODE_COUNT;
    }
    if (!save_acct(b, dr) || !save_acct(b, cr)) return LEDGER_CODE_COUNT;
    rc = ledger_apply_transfer(dr, cr, c->amount, c->pending);
    if (rc != LEDGER_OK) return rc;
    /* A hold counts against the caps when it is placed: a later post cannot
     * exceed it, and a void does not give the allowance back. */
    if (m) ledger_mandate_consume(m, c->amount, b->now_us);
    xfer *x = new_out(b, i, c->pending ? LEDGER_TF_PENDING : 0u, err);
    if (!x) return LEDGER_CODE_COUNT;
    x->debit_account_id = c->debit_account_id;
    x->credit_account_id = c->credit_account_id;
    x->amount = c->amount;
    memcpy(x->currency, c->currency, sizeof x->currency);
    x->pending_delta = c->pending ? c->amount : 0;
    x->posted_delta = c->pending ? 0 : c->amount;
    if (c->pending && c->timeout_s > 0) x->expires_at_us = b->now_us + c->timeout_s * 1000000;
    commit_out(b, x, dr, cr);
    return LEDGER_OK;
}

static uint32_t resolve_flag(ledger_cmd_kind k) {
    return k == LEDGER_CMD_POST ? LEDGER_TF_POST : k == LEDGER_CMD_VOID ? LEDGER_TF_VOID : LEDGER_TF_EXPIRE;
}

static char resolve_state(ledger_cmd_kind k) { return k == LEDGER_CMD_POST ? 'P' : k == LEDGER_CMD_VOID ? 'V' : 'E'; }

static ledger_code apply_resolve(batch *b, size_t i, gl_error *err) {
    const ledger_cmd *c = &b->cmds[i];
    ledger_target *t = find_target(b, &c->target_id);
    int64_t amount = 0;
    ledger_code rc = ledger_check_resolve(t, c->kind, c->amount, b->now_us, &amount);
    if (rc != LEDGER_OK) return rc;
    ledger_acct *dr = find_acct(b, &t->debit_account_id), *cr = find_acct(b, &t->credit_account_id);
    if (!dr || !cr) return LEDGER_ACCOUNT_NOT_FOUND;
    /* A closed account's holds can be released, never captured: no money moves in or out. */
    if (c->kind == LEDGER_CMD_POST && ((dr->flags | cr->flags) & LEDGER_AF_CLOSED)) return LEDGER_ACCOUNT_CLOSED;
    if (!save_acct(b, dr) || !save_acct(b, cr) || !undo_save(b, t, sizeof *t)) return LEDGER_CODE_COUNT;
    int64_t posted = c->kind == LEDGER_CMD_POST ? amount : 0;
    rc = ledger_apply_resolve(dr, cr, t->amount, posted);
    if (rc != LEDGER_OK) return rc;
    xfer *x = new_out(b, i, resolve_flag(c->kind), err);
    if (!x) return LEDGER_CODE_COUNT;
    x->debit_account_id = t->debit_account_id;
    x->credit_account_id = t->credit_account_id;
    x->amount = amount;
    memcpy(x->currency, t->currency, sizeof x->currency);
    x->pending_id = t->id;
    x->pending_delta = -t->amount;
    x->posted_delta = posted;
    t->state = resolve_state(c->kind);
    t->amount_posted = posted;
    t->resolved_by = x->id;
    t->state_changed = true;
    commit_out(b, x, dr, cr);
    return LEDGER_OK;
}

static ledger_code apply_reverse(batch *b, size_t i, gl_error *err) {
    const ledger_cmd *c = &b->cmds[i];
    ledger_target *t = find_target(b, &c->target_id);
    int64_t amount = 0;
    ledger_code rc = ledger_check_reverse(t, c->amount, &amount);
    if (rc != LEDGER_OK) return rc;
    /* The refund flows back: the original credit account pays. */
    ledger_acct *dr = find_acct(b, &t->credit_account_id), *cr = find_acct(b, &t->debit_account_id);
    rc = ledger_check_accounts(dr, cr, t->currency);
    if (rc != LEDGER_OK) return rc;
    if (!save_acct(b, dr) || !save_acct(b, cr) || !undo_save(b, t, sizeof *t)) return LEDGER_CODE_COUNT;
    rc = ledger_apply_transfer(dr, cr, amount, false);
    if (rc != LEDGER_OK) return rc;
    xfer *x = new_out(b, i, LEDGER_TF_REVERSAL, err);
    if (!x) return LEDGER_CODE_COUNT;
    x->debit_account_id = t->credit_account_id;
    x->credit_account_id = t->debit_account_id;
    x->amount = amount;
    memcpy(x->currency, t->currency, sizeof x->currency);
    x->reverses_id = t->id;
    x->posted_delta = amount;
    t->amount_reversed += amount;
    commit_out(b, x, dr, cr);
    return LEDGER_OK;
}

/* Returns the command's code; LEDGER_CODE_COUNT signals an internal error (err set). */
static ledger_code apply_one(batch *b, size_t i, gl_error *err) {
    const ledger_cmd *c = &b->cmds[i];
    ledger_code rc = ledger_validate_cmd(c);
    if (rc != LEDGER_OK) return rc;
    if (is_transfer_cmd(c->kind) && c->reference[0]) {
        const xfer *prior = ref_lookup(b, c);
        if (prior) {
            b->res[i].id = prior->id;
            return same_fields(c, prior) ? LEDGER_EXISTS : LEDGER_EXISTS_WITH_DIFFERENT_FIELDS;
        }
    }
    switch (c->kind) {
    case LEDGER_CMD_CREATE_ACCOUNT: return apply_create_account(b, i, err);
    case LEDGER_CMD_CLOSE_ACCOUNT: return apply_close_account(b, i);
    case LEDGER_CMD_TRANSFER: return apply_transfer(b, i, err);
    case LEDGER_CMD_POST:
    case LEDGER_CMD_VOID:
    case LEDGER_CMD_EXPIRE: return apply_resolve(b, i, err);
    case LEDGER_CMD_REVERSE: return apply_reverse(b, i, err);
    }
    return LEDGER_CODE_COUNT;
}

static bool code_is_success(ledger_code rc) { return rc == LEDGER_OK || rc == LEDGER_EXISTS; }

/* Applies commands [from, to] as one linked chain: all succeed or none. */
static bool apply_chain(batch *b, size_t from, size_t to, gl_error *err) {
    size_t outs_mark = b->n_outs, accounts_mark = b->n_new_accounts;
    b->in_chain = to > from;
    size_t failed = to + 1;
    ledger_code failed_rc = LEDGER_OK;
    for (size_t i = from; i <= to; i++) {
        ledger_code rc = apply_one(b, i, err);
        if (rc == LEDGER_CODE_COUNT) return false;
        b->res[i].code = rc;
        if (!code_is_success(rc)) {
            failed = i;
            failed_rc = rc;
            break;
        }
    }
    if (failed <= to && to > from) {
        undo_rollback(b);
        b->n_outs = outs_mark;
        b->n_new_accounts = accounts_mark;
        for (size_t i = from; i <= to; i++) {
            b->res[i] = (ledger_result){.code = i == failed ? failed_rc : LEDGER_LINKED_EVENT_FAILED};
        }
    }
    undo_forget(b);
    b->in_chain = false;
    return true;
}

static bool apply_all(batch *b, gl_error *err) {
    size_t i = 0;
    while (i < b->n) {
        size_t j = i;
        while (j + 1 < b->n && b->cmds[j].linked) j++;
        if (b->cmds[j].linked) { /* the batch ends inside a chain */
            for (size_t k = i; k <= j; k++)
                b->res[k].code = k == j ? LEDGER_LINKED_EVENT_CHAIN_OPEN : LEDGER_LINKED_EVENT_FAILED;
            break;
        }
        if (!apply_chain(b, i, j, err)) return false;
        i = j + 1;
    }
    return true;
}

/* ---------- loading state ---------- */

static bool load_targets(batch *b, PGconn *db, gl_error *err) {
    gl_id *ids = malloc((b->n + 1) * sizeof *ids);
    if (!ids) return false;
    size_t m = 0;
    for (size_t i = 0; i < b->n; i++)
        if (targets_transfer(b->cmds[i].kind)) ids[m++] = b->cmds[i].target_id;
    m = sort_unique_ids(ids, m);
    b->n_targets = 0;
    bool ok = true;
    if (m > 0) {
        gl_buf *p[1] = {ids_param(&b->sql_a, ids, m)};
        PGresult *r = gl_pg_exec_bin(db,
                                 "SELECT id, debit_account_id, credit_account_id, amount, currency, flags "
                                 "FROM transfers WHERE id = ANY($1::uuid[]) ORDER BY id",
                                 1, p, err);
        ok = r != NULL;
        for (int row = 0; ok && row < PQntuples(r); row++) {
            ledger_target *t = &b->targets[b->n_targets++];
            memset(t, 0, sizeof *t);
            gl_pg_get_id(r, row, 0, &t->id);
            gl_pg_get_id(r, row, 1, &t->debit_account_id);
            gl_pg_get_id(r, row, 2, &t->credit_account_id);
            t->amount = gl_pg_get_i64(r, row, 3);
            gl_pg_get_text(r, row, 4, t->currency, sizeof t->currency);
            t->flags = (uint32_t)gl_pg_get_i64(r, row, 5);
            t->state = 'p';
        }
        PQclear(r);
    }
    free(ids);
    return ok;
}

#define LOCK_ACCOUNTS_SQL                                                                                     \
    "SELECT id, currency, flags, debits_pending, debits_posted, credits_pending, credits_posted, version, ctid, " \
    "owner FROM accounts WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE"
/* The same, with the clock read as each row comes out locked: the last row's
 * reading is after every lock, which is what load_now gives in a round trip of its own. */
#define LOCK_ACCOUNTS_SQL_CLOCK                                                                                     \
    "WITH locked AS MATERIALIZED (" LOCK_ACCOUNTS_SQL ") SELECT locked.*, "                                     \
    "(extract(epoch FROM clock_timestamp()) * 1000000)::int8 FROM locked ORDER BY id"

/* Whether the lock query can also read the clock: not when mandates or holds
 * are locked or read after the accounts (load_now must then come after them). */
static bool clock_with_locks(const batch *b) {
    if (!b->pipelined || b->n_targets > 0) return false;
    for (size_t i = 0; i < b->n; i++)
        if (!gl_id_is_nil(&b->cmds[i].mandate_id)) return false;
    return true;
}

/* A text column of a binary result, cut to the owner's size (the domain holds it to 128). */
static void owner_of_row(const PGresult *r, int row, int col, char *out) {
    int len = PQgetisnull(r, row, col) ? 0 : PQgetlength(r, row, col);
    if (len > LEDGER_OWNER_MAX) len = LEDGER_OWNER_MAX;
    memcpy(out, PQgetvalue(r, row, col), (size_t)len);
    out[len] = '\0';
}

static bool lock_accounts(batch *b, PGconn *db, gl_error *err) {
    gl_id *ids = malloc((2 * b->n + 2 * b->n_targets + 1) * sizeof *ids);
    if (!ids) return false;
    size_t m = 0;
    for (size_t i = 0; i < b->n; i++) {
        const ledger_cmd *c = &b->cmds[i];
        if (c->kind == LEDGER_CMD_TRANSFER) {
            ids[m++] = c->debit_account_id;
            ids[m++] = c->credit_account_id;
        } else if (c->kind == LEDGER_CMD_CLOSE_ACCOUNT) {
            ids[m++] = c->target_id;
        }
    }
    for (size_t i = 0; i < b->n_targets; i++) {
        ids[m++] = b->targets[i].debit_account_id;
        ids[m++] = b->targets[i].credit_account_id;
    }
    m = sort_unique_ids(ids, m);
    b->n_accts = 0;
    bool ok = true, clock = clock_with_locks(b);
    if (m > 0) {
        gl_buf *p[1] = {ids_param(&b->sql_a, ids, m)};
        /* ORDER BY id: rows are locked in id order, so two batches never deadlock. */
        /* Binary results: 16k rows of text to format and parse would be ~5% of a batch. */
        PGresult *r = gl_pg_exec_bin_result(db, clock ? LOCK_ACCOUNTS_SQL_CLOCK : LOCK_ACCOUNTS_SQL, 1, p, err);
        ok = r != NULL;
        for (int row = 0; ok && row < PQntuples(r); row++) {
            ledger_acct *a = &b->accts[b->n_accts++];
            memset(a, 0, sizeof *a);
            unsigned char tid[6] = {0};
            ok = gl_pg_bin_uuid(r, row, 0, &a->id) && gl_pg_bin_bytes(r, row, 1, a->currency, 3) &&
                 gl_pg_bin_bytes(r, row, 8, tid, 6);
            a->flags = (uint32_t)gl_pg_bin_i32(r, row, 2);
            a->debits_pending = gl_pg_bin_i64(r, row, 3);
            a->debits_posted = gl_pg_bin_i64(r, row, 4);
            a->credits_pending = gl_pg_bin_i64(r, row, 5);
            a->credits_posted = gl_pg_bin_i64(r, row, 6);
            a->version = gl_pg_bin_i64(r, row, 7);
            a->tid_block = (uint32_t)tid[0] << 24 | (uint32_t)tid[1] << 16 | (uint32_t)tid[2] << 8 | tid[3];
            a->tid_offset = (uint16_t)(tid[4] << 8 | tid[5]);
            owner_of_row(r, row, 9, b->acct_owners[b->n_accts - 1]);
            int64_t clock_us = clock ? gl_pg_bin_i64(r, row, 10) : 0;
            if (clock_us > b->now_us) b->now_us = clock_us;
        }
        /* Only a bad row is ours to report: a failed query keeps its own error
         * (a lock timeout or a lost connection must stay a 503, not a 500). */
        if (!ok && r) gl_error_set(err, GL_ERR_INTERNAL, "unexpected row from the account lock query");
        PQclear(r);
    }
    free(ids);
    return ok;
}

/* Hold states and reversal totals change, so they are read after the locks
 * (every change to them also locks the same accounts). */
static bool load_target_state(batch *b, PGconn *db, gl_error *err) {
    if (b->n_targets == 0) return true;
    gl_id *ids = malloc(b->n_targets * sizeof *ids);
    if (!ids) return false;
    for (size_t i = 0; i < b->n_targets; i++) ids[i] = b->targets[i].id;
    gl_buf *p[1] = {ids_param(&b->sql_a, ids, b->n_targets)};
    free(ids);
    PGresult *r = gl_pg_exec_bin(db,
                             "SELECT id, state, (extract(epoch FROM expires_at) * 1000000)::int8, amount_posted "
                             "FROM pending_transfers WHERE id = ANY($1::uuid[])",
                             1, p, err);
    if (!r) return false;
    for (int row = 0; row < PQntuples(r); row++) {
        gl_id id;
        gl_pg_get_id(r, row, 0, &id);
        ledger_target *t = find_target(b, &id);
        if (!t) continue;
        const char *st = PQgetvalue(r, row, 1);
        t->state = strcmp(st, "pending") == 0 ? 'p' : strcmp(st, "posted") == 0 ? 'P' : strcmp(st, "voided") == 0 ? 'V' : 'E';
        t->expires_at_us = gl_pg_get_i64(r, row, 2);
        t->amount_posted = gl_pg_get_i64(r, row, 3);
    }
    PQclear(r);
    r = gl_pg_exec_bin(db,
                   "SELECT reverses_id, sum(amount)::int8 FROM transfers WHERE reverses_id = ANY($1::uuid[]) "
                   "GROUP BY reverses_id",
                   1, p, err);
    if (!r) return false;
    for (int row = 0; row < PQntuples(r); row++) {
        gl_id id;
        gl_pg_get_id(r, row, 0, &id);
        ledger_target *t = find_target(b, &id);
        if (t) t->amount_reversed = gl_pg_get_i64(r, row, 1);
    }
    PQclear(r);
    return true;
}

/* Mandates are locked after the accounts (a revocation locks only its
 * mandate, so the lock order cannot cycle): a charge and a revocation are
 * serialized, and the day's usage is exact under concurrent batches. */
static bool load_mandates(batch *b, PGconn *db, gl_error *err) {
    b->n_mandates = 0;
    gl_id *ids = malloc((b->n + 1) * sizeof *ids);
    if (!ids) return false;
    size_t m = 0;
    for (size_t i = 0; i < b->n; i++)
        if (!gl_id_is_nil(&b->cmds[i].mandate_id)) ids[m++] = b->cmds[i].mandate_id;
    m = sort_unique_ids(ids, m);
    bool ok = true;
    if (m > 0) {
        gl_buf *p[1] = {ids_param(&b->sql_a, ids, m)};
        PGresult *r = gl_pg_exec_bin(
            db, "SELECT " LEDGER_MANDATE_COLUMNS " FROM mandates WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE", 1,
            p, err);
        ok = r != NULL;
        for (int row = 0; ok && row < PQntuples(r); row++)
            ledger_mandate_from_row(r, row, &b->mandates[b->n_mandates++]);
        PQclear(r);
    }
    free(ids);
    return ok;
}

static bool load_references(batch *b, PGconn *db, gl_error *err) {
    gl_buf *owners = &b->sql_a, *refs = &b->sql_b;
    gl_bin_array_begin(owners, GL_OID_TEXT);
    gl_bin_array_begin(refs, GL_OID_TEXT);
    int32_t m = 0;
    for (size_t i = 0; i < b->n; i++) {
        const ledger_cmd *c = &b->cmds[i];
        if (!is_transfer_cmd(c->kind) || !c->reference[0]) continue;
        gl_bin_text(owners, c->owner);
        gl_bin_text(refs, c->reference);
        m++;
    }
    b->n_known = 0;
    if (m == 0) return true;
    gl_bin_array_finish(owners, m);
    gl_bin_array_finish(refs, m);
    gl_buf *p[2] = {owners, refs};
    PGresult *r = gl_pg_exec_bin(db,
                             "SELECT t.id, t.debit_account_id, t.credit_account_id, t.amount, t.currency, t.flags, "
                             "t.pending_id, t.reverses_id, t.owner, t.reference FROM transfers t "
                             "JOIN (SELECT DISTINCT * FROM unnest($1::text[], $2::text[])) AS u(owner, reference) "
                             "ON t.owner = u.owner AND t.reference = u.reference",
                             2, p, err);
    if (!r) return false;
    for (int row = 0; row < PQntuples(r) && (size_t)row < b->n; row++) {
        xfer *x = &b->known[b->n_known];
        memset(x, 0, sizeof *x);
        gl_pg_get_id(r, row, 0, &x->id);
        gl_pg_get_id(r, row, 1, &x->debit_account_id);
        gl_pg_get_id(r, row, 2, &x->credit_account_id);
        x->amount = gl_pg_get_i64(r, row, 3);
        gl_pg_get_text(r, row, 4, x->currency, sizeof x->currency);
        x->flags = (uint32_t)gl_pg_get_i64(r, row, 5);
        gl_pg_get_id(r, row, 6, &x->pending_id);
        gl_pg_get_id(r, row, 7, &x->reverses_id);
        char *key = b->known_keys[b->n_known];
        snprintf(key, sizeof b->known_keys[0], "%s\x1f%s", PQgetvalue(r, row, 8), PQgetvalue(r, row, 9));
        ref_insert(b, PQgetvalue(r, row, 8), PQgetvalue(r, row, 9), 1, b->n_known);
        b->n_known++;
    }
    PQclear(r);
    return true;
}

static bool load_now(batch *b, PGconn *db, gl_error *err) {
    /* Taken after the locks: per account, entry times then follow version order. */
    if (b->now_us != 0) return true; /* read by the lock query */
    PGresult *r = gl_pg_exec(db, "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::int8", 0, NULL, err);
    if (!r) return false;
    b->now_us = gl_pg_get_i64(r, 0, 0);
    PQclear(r);
    return true;
}

/* ---------- writing (COPY BINARY and binary array parameters) ---------- */

/* Array columns for the set-based statements, freed together. */
typedef struct {
    gl_buf col[15];
    int ncols;
} columns;

static void columns_begin(columns *c, const unsigned *oids, int ncols) {
    memset(c, 0, sizeof *c);
    c->ncols = ncols;
    for (int i = 0; i < ncols; i++) gl_bin_array_begin(&c->col[i], oids[i]);
}

static gl_buf *const *columns_finish(columns *c, int32_t n, gl_buf **ptrs) {
    for (int i = 0; i < c->ncols; i++) {
        gl_bin_array_finish(&c->col[i], n);
        ptrs[i] = &c->col[i];
    }
    return ptrs;
}

static void columns_free(columns *c) {
    for (int i = 0; i < c->ncols; i++) gl_buf_free(&c->col[i]);
}

/* New rows go out as one COPY BINARY (large batches: the cheapest way in) or,
 * in a pipelined batch, as INSERT ... SELECT FROM unnest() of binary arrays,
 * which a pipeline can carry and COPY cannot. Fields are encoded the same way
 * in both, so each row is written once, through field(). */
typedef struct {
    batch *b;
    const unsigned *oids;
    int ncols, next;
    int32_t rows;
    columns cols;  /* pipelined */
    int head_col;  /* a column of event numbers relative to the head (pipelined), or -1 */
} row_sink;

static void sink_begin(row_sink *s, batch *b, const unsigned *oids, int ncols) {
    memset(s, 0, sizeof *s);
    s->b = b;
    s->oids = oids;
    s->ncols = ncols;
    s->head_col = -1;
    if (b->pipelined) {
        columns_begin(&s->cols, oids, ncols);
    } else {
        gl_buf_reset(&b->sql_b);
        gl_bin_copy_begin(&b->sql_b);
    }
}

static void sink_row(row_sink *s) {
    s->rows++;
    s->next = 0;
    if (!s->b->pipelined) gl_bin_tuple(&s->b->sql_b, s->ncols);
}

static gl_buf *field(row_sink *s) { return s->b->pipelined ? &s->cols.col[s->next++] : &s->b->sql_b; }

static const char *array_type(unsigned oid) {
    switch (oid) {
    case GL_OID_UUID: return "uuid[]";
    case GL_OID_INT8: return "int8[]";
    case GL_OID_INT4: return "int4[]";
    case GL_OID_TIMESTAMPTZ: return "timestamptz[]";
    case GL_OID_JSONB: return "jsonb[]";
    default: return "text[]";
    }
}

/* INSERT INTO table (columns) SELECT c1, .., cn FROM unnest($1::t1[], ..) AS
 * u(c1, .., cn); the head-relative column, if any, plus the head (the number
 * this transaction reserved last: it holds the head's row lock). */
static bool unnest_insert_sql(const row_sink *s, const char *table_columns, char *sql, size_t cap) {
    int len = snprintf(sql, cap, "INSERT INTO %s SELECT ", table_columns);
    for (int i = 0; i < s->ncols && len > 0 && (size_t)len < cap; i++)
        len += snprintf(sql + len, cap - (size_t)len, "%s%sc%d", i ? ", " : "",
                        i == s->head_col ? "(SELECT last_seq FROM event_head WHERE id = 1) + " : "", i + 1);
    if (len > 0 && (size_t)len < cap) len += snprintf(sql + len, cap - (size_t)len, " FROM unnest(");
    for (int i = 0; i < s->ncols && len > 0 && (size_t)len < cap; i++)
        len += snprintf(sql + len, cap - (size_t)len, "%s$%d::%s", i ? ", " : "", i + 1, array_type(s->oids[i]));
    if (len > 0 && (size_t)len < cap) len += snprintf(sql + len, cap - (size_t)len, ") AS u(");
    for (int i = 0; i < s->ncols && len > 0 && (size_t)len < cap; i++)
        len += snprintf(sql + len, cap - (size_t)len, "%sc%d", i ? ", " : "", i + 1);
    if (len > 0 && (size_t)len < cap) len += snprintf(sql + len, cap - (size_t)len, ")");
    return len > 0 && (size_t)len < cap;
}

/* Writes the rows into `table (columns)`; nothing when there are none. */
static bool sink_write(row_sink *s, PGconn *db, const char *table_columns, gl_error *err) {
    bool ok = true;
    if (s->rows > 0 && s->b->pipelined) {
        char sql[2048];
        ok = unnest_insert_sql(s, table_columns, sql, sizeof sql);
        assert(ok); /* the tables' column lists are constants that fit */
        if (!ok) gl_error_set(err, GL_ERR_INTERNAL, "the INSERT into %s does not fit", table_columns);
        gl_buf *p[15];
        ok = ok && gl_pg_run_bin(db, sql, s->ncols, columns_finish(&s->cols, s->rows, p), err);
    } else if (s->rows > 0) {
        char sql[1024];
        gl_bin_copy_end(&s->b->sql_b);
        snprintf(sql, sizeof sql, "COPY %s FROM STDIN (FORMAT binary)", table_columns);
        ok = gl_pg_copy(db, sql, &s->b->sql_b, err);
    }
    if (s->b->pipelined) columns_free(&s->cols);
    return ok;
}

static bool write_new_accounts(batch *b, PGconn *db, gl_error *err) {
    static const unsigned oids[7] = {GL_OID_UUID, GL_OID_TEXT, GL_OID_TEXT, GL_OID_TEXT,
                                     GL_OID_INT4, GL_OID_JSONB, GL_OID_TIMESTAMPTZ};
    row_sink s;
    sink_begin(&s, b, oids, 7);
    for (size_t k = 0; k < b->n_new_accounts; k++) {
        const ledger_cmd *c = &b->cmds[b->new_accounts[k]];
        sink_row(&s);
        gl_bin_uuid(field(&s), &b->new_account_ids[k]);
        gl_bin_text(field(&s), c->currency);
        gl_bin_text(field(&s), c->owner);
        gl_bin_text(field(&s), c->account_kind);
        gl_bin_i32(field(&s), (int32_t)c->account_flags);
        gl_bin_jsonb(field(&s), c->metadata);
        gl_bin_ts_us(field(&s), b->now_us);
    }
    return sink_write(&s, db, "accounts (id, currency, owner, kind, flags, metadata, created_at)", err);
}

/* Each row carries its event's number (sql/0013): relative to the head in a
 * pipeline (the statement adds the head), absolute in a COPY. */
static bool write_transfers(batch *b, PGconn *db, gl_error *err) {
    static const unsigned oids[15] = {GL_OID_UUID, GL_OID_TEXT, GL_OID_TEXT,  GL_OID_UUID,        GL_OID_UUID,
                                      GL_OID_INT8, GL_OID_TEXT, GL_OID_INT4,  GL_OID_UUID,        GL_OID_UUID,
                                      GL_OID_TIMESTAMPTZ, GL_OID_JSONB, GL_OID_TIMESTAMPTZ, GL_OID_UUID, GL_OID_INT8};
    bool numbered = ledger_events_enabled();
    row_sink s;
    sink_begin(&s, b, oids, 15);
    if (numbered && b->pipelined) s.head_col = 14;
    for (size_t k = 0; k < b->n_outs; k++) {
        const xfer *x = &b->outs[k];
        const ledger_cmd *c = &b->cmds[x->cmd];
        sink_row(&s);
        gl_bin_uuid(field(&s), &x->id);
        gl_bin_text(field(&s), c->owner);
        gl_bin_opt_text(field(&s), c->reference);
        gl_bin_uuid(field(&s), &x->debit_account_id);
        gl_bin_uuid(field(&s), &x->credit_account_id);
        gl_bin_i64(field(&s), x->amount);
        gl_bin_text(field(&s), x->currency);
        gl_bin_i32(field(&s), (int32_t)x->flags);
        gl_bin_opt_uuid(field(&s), &x->pending_id);
        gl_bin_opt_uuid(field(&s), &x->reverses_id);
        if (x->expires_at_us) gl_bin_ts_us(field(&s), x->expires_at_us);
        else gl_bin_null(field(&s));
        gl_bin_jsonb(field(&s), c->metadata);
        gl_bin_ts_us(field(&s), b->now_us);
        gl_bin_opt_uuid(field(&s), &c->mandate_id);
        if (!numbered) gl_bin_null(field(&s));
        else gl_bin_i64(field(&s), (b->pipelined ? 0 : b->event_last) + x->event_off);
    }
    return sink_write(&s, db,
                      "transfers (id, owner, reference, debit_account_id, credit_account_id, amount, currency, "
                      "flags, pending_id, reverses_id, expires_at, metadata, created_at, mandate_id, event_seq)",
                      err);
}

static void entry_row(row_sink *s, const xfer *x, const ledger_acct *a, const char *side, int64_t now_us) {
    sink_row(s);
    gl_bin_uuid(field(s), &a->id);
    gl_bin_i64(field(s), a->version);
    gl_bin_uuid(field(s), &x->id);
    gl_bin_text(field(s), side);
    gl_bin_i64(field(s), x->pending_delta);
    gl_bin_i64(field(s), x->posted_delta);
    gl_bin_i64(field(s), a->debits_pending);
    gl_bin_i64(field(s), a->debits_posted);
    gl_bin_i64(field(s), a->credits_pending);
    gl_bin_i64(field(s), a->credits_posted);
    gl_bin_ts_us(field(s), now_us);
}

static bool write_entries(batch *b, PGconn *db, gl_error *err) {
    static const unsigned oids[11] = {GL_OID_UUID, GL_OID_INT8, GL_OID_UUID, GL_OID_TEXT, GL_OID_INT8, GL_OID_INT8,
                                      GL_OID_INT8, GL_OID_INT8, GL_OID_INT8, GL_OID_INT8, GL_OID_TIMESTAMPTZ};
    row_sink s;
    sink_begin(&s, b, oids, 11);
    for (size_t k = 0; k < b->n_outs; k++) {
        entry_row(&s, &b->outs[k], &b->outs[k].debit_after, "D", b->now_us);
        entry_row(&s, &b->outs[k], &b->outs[k].credit_after, "C", b->now_us);
    }
    return sink_write(&s, db,
                      "entries (account_id, version, transfer_id, side, pending_delta, posted_delta, "
                      "debits_pending, debits_posted, credits_pending, credits_posted, created_at)",
                      err);
}

static bool write_new_holds(batch *b, PGconn *db, gl_error *err) {
    static const unsigned oids[3] = {GL_OID_UUID, GL_OID_TEXT, GL_OID_TIMESTAMPTZ};
    row_sink s;
    sink_begin(&s, b, oids, 3);
    for (size_t k = 0; k < b->n_outs; k++) {
        const xfer *x = &b->outs[k];
        if (!(x->flags & LEDGER_TF_PENDING)) continue;
        sink_row(&s);
        gl_bin_uuid(field(&s), &x->id);
        gl_bin_text(field(&s), "pending");
        if (x->expires_at_us) gl_bin_ts_us(field(&s), x->expires_at_us);
        else gl_bin_null(field(&s));
    }
    return sink_write(&s, db, "pending_transfers (id, state, expires_at)", err);
}

static const char *state_name(char state) {
    return state == 'P' ? "posted" : state == 'V' ? "voided" : state == 'E' ? "expired" : "pending";
}

static bool write_resolved_holds(batch *b, PGconn *db, gl_error *err) {
    static const unsigned oids[4] = {GL_OID_UUID, GL_OID_TEXT, GL_OID_INT8, GL_OID_UUID};
    columns c;
    columns_begin(&c, oids, 4);
    int32_t m = 0;
    for (size_t k = 0; k < b->n_targets; k++) {
        const ledger_target *t = &b->targets[k];
        if (!t->state_changed) continue;
        gl_bin_uuid(&c.col[0], &t->id);
        gl_bin_text(&c.col[1], state_name(t->state));
        gl_bin_i64(&c.col[2], t->amount_posted);
        gl_bin_uuid(&c.col[3], &t->resolved_by);
        m++;
    }
    gl_buf *p[4];
    bool ok = m == 0 || gl_pg_run_bin(db,
                                      "UPDATE pending_transfers p SET state = u.state, amount_posted = u.amount_posted, "
                                      "resolved_by = u.resolved_by FROM unnest($1::uuid[], $2::text[], $3::int8[], "
                                      "$4::uuid[]) AS u(id, state, amount_posted, resolved_by) "
                                      "WHERE p.id = u.id AND p.state = 'pending'",
                                      4, columns_finish(&c, m, p), err);
    columns_free(&c);
    return ok;
}

static void bin_tid(gl_buf *b, const ledger_acct *a) {
    char tid[10] = {0, 0, 0, 6}; /* element length 6 (big-endian int32), then block and offset */
    for (int i = 0; i < 4; i++) tid[4 + i] = (char)(a->tid_block >> (8 * (3 - i)));
    tid[8] = (char)(a->tid_offset >> 8);
    tid[9] = (char)(a->tid_offset & 0xFF);
    gl_buf_append(b, tid, sizeof tid);
}

/* One UPDATE for every touched account, with its final counters. Rows are
 * found by the ctid the lock query returned (a TID scan under begin_batch's
 * planner settings: no index descent); the statement fails unless every one was found. */
static bool write_accounts(batch *b, PGconn *db, gl_error *err) {
    static const unsigned oids[7] = {GL_OID_TID,  GL_OID_INT8, GL_OID_INT8, GL_OID_INT8,
                                     GL_OID_INT8, GL_OID_INT8, GL_OID_INT4};
    columns c;
    columns_begin(&c, oids, 7);
    int32_t m = 0;
    for (size_t k = 0; k < b->n_accts; k++) {
        const ledger_acct *a = &b->accts[k];
        if (!a->touched) continue;
        bin_tid(&c.col[0], a);
        gl_bin_i64(&c.col[1], a->debits_pending);
        gl_bin_i64(&c.col[2], a->debits_posted);
        gl_bin_i64(&c.col[3], a->credits_pending);
        gl_bin_i64(&c.col[4], a->credits_posted);
        gl_bin_i64(&c.col[5], a->version);
        gl_bin_i32(&c.col[6], (int32_t)a->flags);
        m++;
    }
    if (m == 0) {
        columns_free(&c);
        return true;
    }
    gl_buf *p[8];
    gl_buf expected = {0};
    gl_bin_i32_raw(&expected, m);
    columns_finish(&c, m, p);
    p[7] = &expected;
    bool ok = gl_pg_run_bin(db,
                            "WITH done AS (UPDATE accounts a SET debits_pending = u.dp, debits_posted = u.dpo, "
                            "credits_pending = u.cp, credits_posted = u.cpo, version = u.v, flags = u.f "
                            "FROM unnest($1::tid[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], "
                            "$6::int8[], $7::int4[]) AS u(t, dp, dpo, cp, cpo, v, f) WHERE a.ctid = u.t RETURNING 1) "
                            "SELECT expect_rows(count(*), $8, 'account_update_by_locked_ctid') FROM done",
                            8, p, err);
    columns_free(&c);
    gl_buf_free(&expected);
    return ok;
}

static bool write_mandates(batch *b, PGconn *db, gl_error *err) {
    for (size_t i = 0; i < b->n_mandates; i++) {
        const ledger_mandate *m = &b->mandates[i];
        if (!m->touched) continue;
        char id[GL_ID_STR_LEN + 1], day[24], spent[24];
        gl_id_format(&m->id, id);
        snprintf(day, sizeof day, "%lld", (long long)m->day);
        snprintf(spent, sizeof spent, "%lld", (long long)m->spent_today);
        const char *params[3] = {id, day, spent};
        if (!gl_pg_run(db,
                       "UPDATE mandates SET usage_day = date '1970-01-01' + $2::int4, spent_on_usage_day = $3::int8 "
                       "WHERE id = $1::uuid",
                       3, params, err))
            return false;
    }
    return true;
}

/* ---------- events (the outbox, events.h) ---------- */

static const char *owner_of(const batch *b, const gl_id *account_id) {
    const ledger_acct *a = bsearch(account_id, b->accts, b->n_accts, sizeof *b->accts, id_cmp_void);
    return a ? b->acct_owners[a - b->accts] : NULL;
}

/* An account opened or closed by command i. */
static void account_event(const batch *b, size_t i, ledger_event *e) {
    const ledger_cmd *c = &b->cmds[i];
    if (c->kind == LEDGER_CMD_CREATE_ACCOUNT) {
        e->type = LEDGER_EV_ACCOUNT_CREATED;
        e->account_id = b->res[i].id;
        memcpy(e->currency, c->currency, sizeof e->currency);
    } else {
        e->type = LEDGER_EV_ACCOUNT_CLOSED;
        e->account_id = c->target_id;
        const ledger_acct *a = bsearch(&c->target_id, b->accts, b->n_accts, sizeof *b->accts, id_cmp_void);
        if (a) memcpy(e->currency, a->currency, 3);
        ledger_event_add_owner(e, owner_of(b, &c->target_id));
    }
    ledger_event_add_owner(e, c->owner);
}

/* Numbers every effect of the batch, in command order, with numbers reserved
 * from the head (held to COMMIT): a transfer written by the batch takes its
 * number on its own row (x->event_off), an account opened or closed gets an
 * events row (b->account_events). A refused command, a replay (`exists`) and
 * a rolled-back chain have no effect and take no number. Every number
 * reserved is written exactly once, so seq stays dense. */
static bool number_events(batch *b, PGconn *db, gl_error *err) {
    b->n_account_events = 0;
    if (!ledger_events_enabled()) return true;
    int64_t total = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (b->res[i].code != LEDGER_OK) continue;
        ledger_cmd_kind kind = b->cmds[i].kind;
        if (kind == LEDGER_CMD_CREATE_ACCOUNT || kind == LEDGER_CMD_CLOSE_ACCOUNT) {
            assert(b->n_account_events < b->account_events_cap);
            ledger_event *e = &b->account_events[b->n_account_events++];
            memset(e, 0, sizeof *e);
            account_event(b, i, e);
            e->created_at_us = b->now_us;
            e->seq = ++total;
        } else if (b->out_of[i] != SIZE_MAX) {
            b->outs[b->out_of[i]].event_off = ++total;
        }
    }
    assert(total == (int64_t)(b->n_account_events + b->n_outs)); /* every output is an effect of an OK command */
    /* Offsets from the head: the last reserved number is the head, offset 0. */
    for (size_t k = 0; k < b->n_outs; k++) b->outs[k].event_off -= total;
    for (size_t k = 0; k < b->n_account_events; k++) b->account_events[k].seq -= total;
    return total == 0 || ledger_events_reserve(db, total, &b->event_last, err);
}

/* The batch's rows that need no event number, written before the caller's
 * before-commit hook: new accounts, mandates' usage, entries, the account
 * counters. */
static bool write_unnumbered(batch *b, PGconn *db, gl_error *err) {
    if (!write_new_accounts(b, db, err) || !write_mandates(b, db, err)) return false;
    if (b->n_outs > 0 && !write_entries(b, db, err)) return false;
    return write_accounts(b, db, err);
}

/* The rows that carry the events, written after the hook and last before
 * COMMIT: from their numbering to COMMIT the head's row lock serializes the
 * region's writers, so nothing else is in that window. The numbers, the
 * transfers that carry them, the holds (whose keys reference the transfers),
 * the account events. */
static bool write_numbered(batch *b, PGconn *db, gl_error *err) {
    if (!number_events(b, db, err)) return false;
    if (b->n_outs > 0 && (!write_transfers(b, db, err) || !write_new_holds(b, db, err) ||
                          !write_resolved_holds(b, db, err)))
        return false;
    return ledger_events_write_reserved(db, b->account_events, b->n_account_events, err);
}

/* ---------- what the hook sees ---------- */

static int out_by_id_cmp(const void *a, const void *b, void *outs) {
    const xfer *o = outs;
    return gl_id_cmp(&o[*(const size_t *)a].id, &o[*(const size_t *)b].id);
}

static void set_written(batch *b, size_t i, const xfer *x) {
    ledger_result *r = &b->res[i];
    r->written = true;
    r->created_at_us = b->now_us;
    r->transfer = (ledger_written){.debit_account_id = x->debit_account_id, .credit_account_id = x->credit_account_id,
                                   .pending_id = x->pending_id, .reverses_id = x->reverses_id, .amount = x->amount,
                                   .expires_at_us = x->expires_at_us, .flags = x->flags,
                                   .metadata = b->cmds[x->cmd].metadata};
    memcpy(r->transfer.currency, x->currency, sizeof r->transfer.currency);
}

/* Maps each command to the output it wrote, and gives every result naming a
 * transfer of this batch its details (ledger_result.written): the hook runs
 * before the transfers are in their table. An EXISTS may name an earlier
 * command's output: those are found by id (outputs sorted by id, once). */
static bool map_outputs(batch *b, gl_error *err) {
    for (size_t i = 0; i < b->n; i++) b->out_of[i] = SIZE_MAX;
    for (size_t k = 0; k < b->n_outs; k++) {
        b->out_of[b->outs[k].cmd] = k;
        set_written(b, b->outs[k].cmd, &b->outs[k]);
    }
    size_t n_exists = 0;
    for (size_t i = 0; i < b->n; i++) n_exists += b->res[i].code == LEDGER_EXISTS && is_transfer_cmd(b->cmds[i].kind);
    if (n_exists == 0 || b->n_outs == 0) return true;
    size_t *by_id = malloc(b->n_outs * sizeof *by_id);
    if (!by_id) {
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory mapping %zu outputs", b->n_outs);
        return false;
    }
    for (size_t k = 0; k < b->n_outs; k++) by_id[k] = k;
    qsort_r(by_id, b->n_outs, sizeof *by_id, out_by_id_cmp, b->outs);
    for (size_t i = 0; i < b->n; i++) {
        if (b->res[i].code != LEDGER_EXISTS || !is_transfer_cmd(b->cmds[i].kind)) continue;
        size_t lo = 0, hi = b->n_outs;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2, k = by_id[mid];
            int c = gl_id_cmp(&b->outs[k].id, &b->res[i].id);
            if (c == 0) {
                set_written(b, i, &b->outs[k]);
                break;
            }
            if (c < 0) lo = mid + 1;
            else hi = mid;
        }
    }
    free(by_id);
    return true;
}

/* ---------- the batch ---------- */

static bool batch_alloc(batch *b) {
    size_t n = b->n;
    b->accts = calloc(2 * n, sizeof *b->accts);
    b->acct_owners = calloc(2 * n, sizeof *b->acct_owners);
    b->targets = calloc(n, sizeof *b->targets);
    b->mandates = calloc(n, sizeof *b->mandates);
    b->known = calloc(n, sizeof *b->known);
    b->known_keys = calloc(n, sizeof *b->known_keys);
    b->outs = calloc(n, sizeof *b->outs);
    b->new_accounts = calloc(n, sizeof *b->new_accounts);
    b->new_account_ids = calloc(n, sizeof *b->new_account_ids);
    for (size_t i = 0; i < n; i++) b->account_events_cap += !is_transfer_cmd(b->cmds[i].kind);
    b->account_events = b->account_events_cap ? calloc(b->account_events_cap, sizeof *b->account_events) : NULL;
    b->out_of = calloc(n, sizeof *b->out_of);
    b->refs_cap = 16;
    while (b->refs_cap < 4 * n) b->refs_cap *= 2; /* <= 50% load: n outputs + n known */
    b->refs = calloc(b->refs_cap, sizeof *b->refs);
    return b->accts && b->acct_owners && b->targets && b->mandates && b->known && b->known_keys && b->outs && b->new_accounts && b->new_account_ids &&
           (b->account_events || !b->account_events_cap) && b->out_of && b->refs;
}

static void batch_free(batch *b) {
    free(b->accts);
    free(b->acct_owners);
    free(b->targets);
    free(b->mandates);
    free(b->known);
    free(b->known_keys);
    free(b->outs);
    free(b->new_accounts);
    free(b->new_account_ids);
    free(b->account_events);
    free(b->out_of);
    free(b->refs);
    free(b->undo);
    gl_buf_free(&b->undo_arena);
    gl_buf_free(&b->sql_a);
    gl_buf_free(&b->sql_b);
}

static void batch_reset(batch *b) {
    b->now_us = 0;
    b->n_accts = b->n_targets = b->n_known = b->n_outs = b->n_new_accounts = 0;
    memset(b->refs, 0, b->refs_cap * sizeof *b->refs);
    undo_forget(b);
    for (size_t i = 0; i < b->n; i++) b->res[i] = (ledger_result){.code = LEDGER_OK};
}

/* Without the lookup, a refused command might have been a replay (which must
 * answer `exists`): any refusal of a command with a reference reruns the batch
 * with references looked up. Batches without refusals keep the fast path. */
static bool references_settled(batch *b, gl_error *err) {
    if (b->lookup_references) return true;
    for (size_t i = 0; i < b->n; i++) {
        if (b->cmds[i].reference[0] && is_transfer_cmd(b->cmds[i].kind) && !code_is_success(b->res[i].code)) {
            gl_error_set(err, GL_ERR_CONFLICT, "rerun: transfers_owner_reference to look up");
            /* As the unique index would name it: ledger_execute matches the name. */
            if (err) snprintf(err->constraint, sizeof err->constraint, "transfers_owner_reference");
            return false;
        }
    }
    return true;
}

/* Every engine statement is a set of point lookups by key; with more than a
 * few dozen keys the planner would otherwise pick sequential scans or hash
 * joins over the whole table. In a pipelined batch both statements are only
 * queued: they go out with the first query. */
static bool begin_batch(batch *b, PGconn *db, gl_error *err) {
    if (b->pipelined && !gl_pg_pipeline_begin(db, err)) return false;
    return gl_pg_run(db, "BEGIN", 0, NULL, err) &&
           gl_pg_run(db,
                     "SELECT set_config('enable_seqscan', 'off', true), set_config('enable_hashjoin', 'off', true), "
                     "set_config('enable_mergejoin', 'off', true), set_config('enable_bitmapscan', 'off', true)",
                     0, NULL, err);
}

static bool attempt(batch *b, PGconn *db, gl_error *err) {
    batch_reset(b);
    bool ok = begin_batch(b, db, err) && load_targets(b, db, err) && lock_accounts(b, db, err) && load_mandates(b, db, err) &&
              load_target_state(b, db, err) &&
              (!b->lookup_references || load_references(b, db, err)) && load_now(b, db, err) && apply_all(b, err) && references_settled(b, err) && map_outputs(b, err) &&
              write_unnumbered(b, db, err) &&
              (!b->ctx->before_commit || b->ctx->before_commit(b->ctx->before_commit_arg, db, b->res, b->n, err)) &&
              write_numbered(b, db, err) && gl_pg_run(db, "COMMIT", 0, NULL, err) && gl_pg_pipeline_end(db, err);
    if (!ok) {
        if (err && err->kind == GL_ERR_NONE) gl_error_set(err, GL_ERR_INTERNAL, "out of memory executing batch");
        /* Sends what is still queued (inside the transaction: undone by the
         * ROLLBACK; after a failed statement, skipped) and leaves pipeline mode. */
        gl_pg_pipeline_end(db, NULL);
        gl_pg_rollback(db);
    }
    return ok;
}

bool ledger_execute(PGconn *db, const ledger_ctx *ctx, const ledger_cmd *cmds, size_t n, ledger_result *results,
                    gl_error *err) {
    gl_error_clear(err);
    if (n == 0 || n > LEDGER_BATCH_MAX) {
        gl_error_set(err, GL_ERR_INVALID, "batch size %zu is outside 1..%d", n, LEDGER_BATCH_MAX);
        return false;
    }
    if (ctx->partition_code == 0) {
        gl_error_set(err, GL_ERR_INVALID, "engine context has no partition code");
        return false;
    }
    batch b = {.ctx = ctx, .cmds = cmds, .n = n, .res = results, .pipelined = n <= LEDGER_PIPELINE_MAX};
    bool ok = batch_alloc(&b);
    if (!ok) gl_error_set(err, GL_ERR_INTERNAL, "out of memory allocating batch of %zu", n);
    int retries = ctx->max_retries > 0 ? ctx->max_retries : DEFAULT_MAX_RETRIES;
    for (int attempt_no = 0; ok; attempt_no++) {
        gl_error e;
        gl_error_clear(&e);
        if (attempt(&b, db, &e)) break;
        if (!b.lookup_references && gl_error_is_constraint(&e, "transfers_owner_reference")) {
            b.lookup_references = true; /* a replay of an earlier reference: rerun, looking them up */
            attempt_no--;
            continue;
        }
        if (e.kind != GL_ERR_CONFLICT || attempt_no >= retries) {
            if (err) *err = e;
            ok = false;
        }
    }
    batch_free(&b);
    return ok;
}
