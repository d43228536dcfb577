/*
 * recon.h — the reconciliation job: one PSP settlement file against the ledger
 * transfers of one clearing account in one region, in bounded memory.
 *
 * How it works (a grace hash join, so memory does not grow with the file):
 *   1. the settlement file is parsed as a stream (settlement.h: every PAN is
 *      masked there) and each line goes to one of P partition files on disk,
 *      by a hash of its key: a charge's merchant reference, else the line's
 *      PSP id (refunds repeat their payment's reference: they use the PSP id);
 *   2. the clearing account's transfers of the period (widened by the timing
 *      window) stream from PostgreSQL through a cursor into P partition files
 *      by a hash of their reference;
 *   3. partition by partition, the settlement side is loaded into a hash table
 *      and the ledger side probes it: pairs are compared (currency, amount,
 *      fee, period), repeats are duplicates;
 *   4. what is left on either side is partitioned again by (currency, amount)
 *      and paired by amount + currency + time window;
 *   5. breaks are stored (recon_breaks), written as JSON and CSV reports sealed
 *      with AES-256-GCM (sealed.h), the run is recorded (recon_runs) and audited.
 * P is chosen from the file size so one partition fits in `memory_budget`.
 *
 * Ledger sign convention: a transfer that debits the clearing account is money
 * the PSP owes us (a charge, positive); one that credits it is a refund
 * (negative). A settlement line's gross is signed the same way. The expected
 * PSP fee of a transfer is its metadata "psp_fee" (integer minor units), when set.
 */
#ifndef GL_RECON_H
#define GL_RECON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <libpq-fe.h>

#include "../ledger/error.h"
#include "../ledger/id.h"
#include "pan.h"
#include "sealed.h"
#include "settlement.h"

typedef enum {
    GL_BREAK_MISSING_IN_LEDGER,
    GL_BREAK_MISSING_IN_SETTLEMENT,
    GL_BREAK_AMOUNT_MISMATCH,
    GL_BREAK_FEE_MISMATCH,
    GL_BREAK_CURRENCY_MISMATCH,
    GL_BREAK_DUPLICATE,
    GL_BREAK_TIMING, /* explained: the pair settles in the neighbouring period */
    GL_BREAK_CLASSES
} gl_break_class;

const char *gl_break_class_name(gl_break_class c);

#define GL_RECON_DEFAULT_WINDOW_S (3 * 24 * 3600)
#define GL_RECON_DEFAULT_MEMORY_MB 64

typedef struct {
    gl_settlement_source source;
    const char *file_path;            /* opened and read by gl_recon_run; "-" = stdin */
    gl_id clearing_account;
    int64_t from_us, to_us;           /* the period, [from, to) */
    int64_t window_us;                /* timing tolerance and amount-matching window */
    const gl_pan_keyring *pan_keys;
    const gl_seal_keyring *seal_keys; /* reports at rest */
    const char *out_dir;              /* where the sealed reports go */
    const char *work_dir;             /* partition files (a private temp dir is made inside) */
    size_t memory_budget;             /* bytes for one partition's hash table */
    const char *operator_name;        /* who (audit, recon_runs) */
    const char *host;                 /* where from */
} gl_recon_options;

typedef struct {
    gl_id run_id;
    uint64_t lines, malformed, pans_masked;
    uint64_t ledger_transfers; /* in the period */
    uint64_t matched, matched_by_amount;
    uint64_t breaks, unexplained;
    uint64_t by_class[GL_BREAK_CLASSES];
    unsigned partitions;
    /* where the time went (wall clock, ms): the two inputs overlap; and the
     * CPU time of the threads that read them (the rest of the ledger side is
     * the server's) */
    int64_t file_ms, ledger_ms, match_ms, output_ms;
    int64_t file_cpu_ms, ledger_cpu_ms;
    char json_path[4096], csv_path[4096];
} gl_recon_summary;

/*
 * Runs one reconciliation on `db` (connected as the reconciliation role).
 * Returns false only when the run could not be completed (file unreadable,
 * database error...): the run is then recorded as failed and audited as such.
 * Breaks are not failures: see summary->unexplained.
 */
bool gl_recon_run(PGconn *db, const gl_recon_options *o, gl_recon_summary *out, gl_error *err);

#endif
