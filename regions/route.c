#include "route.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "../ledger/pg.h"

const gl_region *gl_route_command(const gl_config *cfg, const ledger_cmd *c, const gl_region *region_for_create) {
    switch (c->kind) {
    case LEDGER_CMD_CREATE_ACCOUNT: return region_for_create;
    case LEDGER_CMD_TRANSFER: return gl_region_of_id(cfg, &c->debit_account_id);
    default: return gl_region_of_id(cfg, &c->target_id);
    }
}

const gl_region *gl_route_transfer(const gl_config *cfg, const ledger_cmd *c, ledger_code *code) {
    assert(cfg && c && code && c->kind == LEDGER_CMD_TRANSFER);
    const gl_region *home = gl_region_of_id(cfg, &c->debit_account_id);
    const gl_region *payee = gl_region_of_id(cfg, &c->credit_account_id);
    *code = !home || !payee ? LEDGER_ACCOUNT_NOT_FOUND : home != payee ? LEDGER_CROSS_REGION_REQUIRES_SAGA : LEDGER_OK;
    return home;
}

static ledger_code route_code(const gl_config *cfg, const gl_region *r, const ledger_cmd *c) {
    ledger_code code = LEDGER_OK;
    const gl_region *home =
        c->kind == LEDGER_CMD_TRANSFER ? gl_route_transfer(cfg, c, &code) : gl_route_command(cfg, c, r);
    if (code != LEDGER_OK) return code;
    if (!home) return c->kind == LEDGER_CMD_CLOSE_ACCOUNT ? LEDGER_ACCOUNT_NOT_FOUND
                      : c->kind == LEDGER_CMD_REVERSE     ? LEDGER_TRANSFER_NOT_FOUND
                                                          : LEDGER_PENDING_NOT_FOUND;
    return home == r ? LEDGER_OK : LEDGER_WRONG_REGION;
}

/* Maps the engine's sub-batch results back to the caller's order before its hook runs. */
typedef struct {
    ledger_result *results;
    const size_t *keep;
    ledger_before_commit_fn hook;
    void *hook_arg;
    size_t n;
} route_hook;

static bool route_before_commit(void *arg, PGconn *db, const ledger_result *sub, size_t m, gl_error *err) {
    route_hook *h = arg;
    for (size_t k = 0; k < m; k++) h->results[h->keep[k]] = sub[k];
    return h->hook(h->hook_arg, db, h->results, h->n, err);
}

static bool run_hook_alone(PGconn *db, route_hook *h, gl_error *err) {
    /* Nothing reached the engine, but the caller's rows still need a transaction. */
    if (!gl_pg_run(db, "BEGIN", 0, NULL, err)) return false;
    bool ok = h->hook(h->hook_arg, db, h->results, h->n, err) && gl_pg_run(db, "COMMIT", 0, NULL, err);
    if (!ok) gl_pg_rollback(db);
    return ok;
}

static bool batch_size_ok(size_t n, gl_error *err) {
    if (n > 0 && n <= LEDGER_BATCH_MAX) return true;
    gl_error_set(err, GL_ERR_INVALID, "batch size %zu is outside 1..%d", n, LEDGER_BATCH_MAX);
    return false;
}

static bool any_refused(const ledger_code *refused, size_t n) {
    for (size_t i = 0; refused && i < n; i++)
        if (refused[i] != LEDGER_OK) return true;
    return false;
}

/* Gives every command of a chain with a refused member its result (the first
 * refusal, linked_event_failed for the rest) and lists the commands that run
 * in keep[]; returns how many run. */
static size_t refuse_chains(const ledger_cmd *cmds, const ledger_code *refused, size_t n, ledger_result *results,
                            size_t *keep) {
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i; /* [i, j] is one chain */
        while (j + 1 < n && cmds[j].linked) j++;
        size_t bad = j + 1;
        for (size_t k = i; k <= j && bad > j; k++)
            if (refused[k] != LEDGER_OK) bad = k;
        for (size_t k = i; k <= j; k++) {
            memset(&results[k], 0, sizeof results[k]);
            if (bad <= j) results[k].code = k == bad ? refused[k] : LEDGER_LINKED_EVENT_FAILED;
            else keep[m++] = k;
        }
        i = j + 1;
    }
    return m;
}

/* Some chain cannot run here. The engine takes one contiguous array, so the
 * commands that do run are copied into a sub-batch (the only copy the router
 * makes), and its results are put back in the caller's order before the
 * caller's hook sees them. */
static bool execute_sub_batch(const gl_region *r, PGconn *db, const ledger_cmd *cmds, const ledger_code *refused,
                              size_t n, ledger_result *results, ledger_before_commit_fn hook, void *hook_arg,
                              gl_error *err) {
    size_t *keep = calloc(n, sizeof *keep);
    ledger_cmd *sub = malloc(n * sizeof *sub);
    ledger_result *sub_res = calloc(n, sizeof *sub_res);
    bool ok = keep && sub && sub_res;
    if (!ok) gl_error_set(err, GL_ERR_INTERNAL, "out of memory routing batch");
    size_t m = ok ? refuse_chains(cmds, refused, n, results, keep) : 0;
    for (size_t k = 0; k < m; k++) sub[k] = cmds[keep[k]];
    route_hook h = {results, keep, hook, hook_arg, n};
    if (ok && m > 0) {
        ledger_ctx ctx = {.partition_code = r->code};
        if (hook) {
            ctx.before_commit = route_before_commit;
            ctx.before_commit_arg = &h;
        }
        ok = ledger_execute(db, &ctx, sub, m, sub_res, err);
        for (size_t k = 0; ok && k < m; k++) results[keep[k]] = sub_res[k];
    } else if (ok && hook) {
        ok = run_hook_alone(db, &h, err);
    }
    free(keep);
    free(sub);
    free(sub_res);
    return ok;
}

bool gl_route_execute_routed(const gl_region *r, PGconn *db, const ledger_cmd *cmds, const ledger_code *refused,
                             size_t n, ledger_result *results, ledger_before_commit_fn hook, void *hook_arg,
                             gl_error *err) {
    assert(r && db && cmds && results);
    if (!batch_size_ok(n, err)) return false;
    if (any_refused(refused, n))
        return execute_sub_batch(r, db, cmds, refused, n, results, hook, hook_arg, err);
    /* The common case: the caller's batch is the engine's, as it is. */
    ledger_ctx ctx = {.partition_code = r->code, .before_commit = hook, .before_commit_arg = hook_arg};
    return ledger_execute(db, &ctx, cmds, n, results, err);
}

bool gl_route_execute(const gl_config *cfg, const gl_region *r, PGconn *db, const ledger_cmd *cmds, size_t n,
                      ledger_result *results, gl_error *err) {
    return gl_route_execute_hooked(cfg, r, db, cmds, n, results, NULL, NULL, err);
}

bool gl_route_execute_hooked(const gl_config *cfg, const gl_region *r, PGconn *db, const ledger_cmd *cmds, size_t n,
                             ledger_result *results, ledger_before_commit_fn hook, void *hook_arg, gl_error *err) {
    if (!batch_size_ok(n, err)) return false;
    /* These commands come from elsewhere (ledgerctl, tools, tests): each is routed here. */
    ledger_code *codes = malloc(n * sizeof *codes);
    if (!codes) {
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory routing batch");
        return false;
    }
    for (size_t i = 0; i < n; i++) codes[i] = route_code(cfg, r, &cmds[i]);
    bool ok = gl_route_execute_routed(r, db, cmds, codes, n, results, hook, hook_arg, err);
    free(codes);
    return ok;
}
