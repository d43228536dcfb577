/*
 * itest.h — helpers for integration tests (Check) against a real cluster.
 *
 * The cluster comes from $GEOLEDGER_CONFIG (tests/run.sh starts one and writes
 * it); without it every test fails loudly instead of silently skipping.
 *
 * Use itest_setup/itest_teardown as a *checked* fixture (they run inside the
 * forked test process), so no connection is ever shared across a fork.
 * Every helper asserts on failure (ck_abort), so a test reads as a script of
 * what it expects; functions that return a failure say so in their comment.
 */
#ifndef GL_ITEST_H
#define GL_ITEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <check.h>
#include <libpq-fe.h>

#include "../../ledger/ledger.h"
#include "../../regions/regions.h"
#include "../../regions/route.h"

/* The loaded configuration (valid between itest_setup and itest_teardown). */
extern gl_config itest_cfg;

/* Checked fixture: loads $GEOLEDGER_CONFIG (aborts if unset or invalid). */
void itest_setup(void);
/* Closes cached connections and frees the configuration. */
void itest_teardown(void);

/* A region of the configuration by name (aborts if unknown). */
const gl_region *itest_region(const char *name);
/* A cached connection to `region` as `role` (one per region and role). */
PGconn *itest_db(const char *region, gl_db_role role);
/* A fresh connection that the caller closes with PQfinish. */
PGconn *itest_connect(const char *region, gl_db_role role);

/* A name unique to this run and call: "<prefix>-<pid>-<random>-<n>" (owner/reference safe). */
const char *itest_unique(char *buf, size_t cap, const char *prefix);

/* Creates an account in `region` (as service) and returns its id; aborts unless ok. */
gl_id itest_account(const char *region, const char *currency, uint32_t flags, const char *owner);

/* Runs a batch through gl_route_execute in `region`. Returns what it returns
 * (false: infrastructure error, described in *err). */
bool itest_exec(const char *region, const ledger_cmd *cmds, size_t n, ledger_result *results, gl_error *err);
/* Runs one command; aborts if the batch did not commit; returns its result. */
ledger_result itest_exec1(const char *region, const ledger_cmd *cmd);
/* Runs `n` commands; aborts if the batch did not commit. */
void itest_exec_ok(const char *region, const ledger_cmd *cmds, size_t n, ledger_result *results);

/* Command builders (owner required; reference may be NULL). */
ledger_cmd itest_transfer(const char *owner, const char *reference, gl_id from, gl_id to, int64_t amount,
                          const char *currency);
ledger_cmd itest_on(ledger_cmd_kind kind, const char *owner, const char *reference, gl_id target, int64_t amount);

/* Reads an account from its home region (aborts if missing or on error). */
ledger_account itest_get(gl_id id);
/* Asserts the account's four counters and version. */
void itest_assert_counters(gl_id id, int64_t debits_pending, int64_t debits_posted, int64_t credits_pending,
                           int64_t credits_posted, int64_t version);
/* Asserts that two reads of an account are identical (counters, flags, version). */
void itest_assert_same_account(const ledger_account *before, const ledger_account *after);
/* Asserts a result code, naming both codes on failure. */
#define itest_assert_code(got, want)                                                                        \
    ck_assert_msg((got) == (want), "result %s, expected %s", ledger_code_name(got), ledger_code_name(want))

/* Runs SQL as admin in `region` with up to `n` text parameters and returns the first
 * column of the single row as a heap string (NULL for SQL NULL). Aborts on error or
 * on a row count other than 1. */
char *itest_sql_value(const char *region, const char *sql, int n, const char *const *params);
/* Same, as an integer (aborts on NULL). */
int64_t itest_sql_i64(const char *region, const char *sql, int n, const char *const *params);
/* Runs SQL on `db`; returns the SQLSTATE of the error ("" on success) in `state`
 * and the primary message in `msg` (may be NULL). */
void itest_sql_try(PGconn *db, const char *sql, char state[6], char *msg, size_t msg_cap);

/* Formats an id into a static ring of buffers (8 slots): for parameters and messages. */
const char *itest_id(gl_id id);

/* Counts rows written for an owner / an account in `region` (as admin). */
int64_t itest_transfers_of_owner(const char *region, const char *owner);
int64_t itest_entries_of_account(const char *region, gl_id account);

/* Path of the built ledgerctl: $BUILD/bin/ledgerctl (BUILD defaults to "build"). */
const char *itest_ledgerctl(void);
/* Runs `ledgerctl ARGS` through /bin/sh; stdout and stderr go to heap strings.
 * Returns the exit status (-1 if it did not exit normally). */
int itest_run_ledgerctl(const char *args, char **out, char **errout);

/* A test case of a suite: its tests (NULL-terminated) share one timeout and
 * run with itest_setup/itest_teardown as a checked fixture. */
#define ITEST_GROUP_TESTS_MAX 16
typedef struct {
    const char *name;
    int timeout_s;
    const TTest *tests[ITEST_GROUP_TESTS_MAX];
} itest_group;

/* Builds a suite from `n` groups. */
Suite *itest_suite(const char *name, const itest_group *groups, size_t n);
/* Runs the suite (CK_ENV: CK_RUN_CASE and friends apply); the exit status for main. */
int itest_run(Suite *s);

#endif
