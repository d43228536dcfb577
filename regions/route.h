/*
 * route.h — runs a batch in the home region of its accounts.
 *
 * Every command routes by id alone (the region code carried in the id). A
 * transfer whose two accounts live in different regions is refused with
 * cross_region_requires_saga (the saga comes later); a command naming an id of
 * another region than the batch's gets wrong_region. Both refusals respect
 * linked chains: the rest of the chain gets linked_event_failed.
 *
 * ledgerd routes each request once, in its endpoint (gl_route_transfer), and
 * its writer runs the batch with gl_route_execute_routed, which trusts that
 * decision; ledgerctl, the tools and the tests use gl_route_execute, which
 * routes every command itself.
 */
#ifndef GL_ROUTE_H
#define GL_ROUTE_H

#include "../ledger/ledger.h"
#include "regions.h"

/* The region a command belongs to (create: by `region_for_create`), or NULL. */
const gl_region *gl_route_command(const gl_config *cfg, const ledger_cmd *c, const gl_region *region_for_create);

/* A transfer's home, its debit account's region (NULL: no configured region
 * has it), and in *code whether it can run there: LEDGER_OK, account_not_found
 * (either account's id names no configured region) or cross_region_requires_saga. */
const gl_region *gl_route_transfer(const gl_config *cfg, const ledger_cmd *c, ledger_code *code);

/* Runs cmds on region r's partition through `db`, each command routed here;
 * results as ledger_execute. For commands that come from elsewhere
 * (ledgerctl, tools, tests): every one is checked. */
bool gl_route_execute(const gl_config *cfg, const gl_region *r, PGconn *db, const ledger_cmd *cmds, size_t n,
                      ledger_result *results, gl_error *err);
/* Same, with a hook run inside the transaction before COMMIT; it sees the
 * results of all n commands (router refusals included), see ledger_before_commit_fn. */
bool gl_route_execute_hooked(const gl_config *cfg, const gl_region *r, PGconn *db, const ledger_cmd *cmds, size_t n,
                             ledger_result *results, ledger_before_commit_fn hook, void *hook_arg, gl_error *err);
/* Runs cmds the caller has already routed to r (ledgerd's writer: each
 * endpoint routed its request): refused NULL or refused[i] LEDGER_OK runs
 * command i, any other code is its result without running, and the rest of
 * its linked chain gets linked_event_failed. Nothing is routed again; the
 * caller's array and results go to the engine as they are unless a chain is
 * refused. Hook as gl_route_execute_hooked. */
bool gl_route_execute_routed(const gl_region *r, PGconn *db, const ledger_cmd *cmds, const ledger_code *refused,
                             size_t n, ledger_result *results, ledger_before_commit_fn hook, void *hook_arg,
                             gl_error *err);

#endif
