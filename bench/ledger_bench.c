/*
 * ledger-bench — throughput of the engine's batch path on one region.
 *
 *   ledger-bench --config F --region R --scenario uniform|hot
 *                [--accounts 100000] [--seconds 20] [--batch 8189]
 *
 * Creates the accounts (through the engine), then for --seconds submits
 * batches of random transfers, each with a unique reference, from one writer
 * (the shape of ledgerd's per-region writer). uniform: random distinct pairs;
 * hot: random payer, every transfer credits one platform account.
 * Prints `transfers_per_s=<n>` and a few details as its last line.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../ledger/events.h"
#include "../ledger/ledger.h"
#include "../ledger/text.h"
#include "../regions/regions.h"

typedef struct {
    const char *config, *region, *scenario, *accounts_out;
    int64_t accounts, seconds, batch;
    bool no_events; /* --no-events: the engine writes no outbox rows (what the outbox costs) */
} bench_opts;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* xorshift64*: fast, reproducible, good enough to pick accounts. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;
static uint64_t rng(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static int usage(void) {
    fprintf(stderr, "usage: ledger-bench --config F --region R --scenario uniform|hot [--accounts N] [--seconds S] "
                    "[--batch N] [--accounts-out FILE] [--no-events]\n       --seconds 0: create the accounts only\n"
                    "       --no-events: measure without the outbox (ledger/events.h)\n");
    return 2;
}

static bool parse_args(int argc, char **argv, bench_opts *o) {
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},  {"region", required_argument, NULL, 'r'},
        {"scenario", required_argument, NULL, 's'}, {"accounts", required_argument, NULL, 'a'},
        {"seconds", required_argument, NULL, 't'}, {"batch", required_argument, NULL, 'b'},
        {"accounts-out", required_argument, NULL, 'o'}, {"no-events", no_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    *o = (bench_opts){NULL, NULL, NULL, NULL, 100000, 20, LEDGER_BATCH_MAX, false};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        bool ok = true;
        switch (ch) {
        case 'c': o->config = optarg; break;
        case 'r': o->region = optarg; break;
        case 's': o->scenario = optarg; break;
        case 'a': ok = gl_parse_i64(optarg, 2, 10000000, &o->accounts); break;
        case 't': ok = gl_parse_i64(optarg, 0, 3600, &o->seconds); break;
        case 'o': o->accounts_out = optarg; break;
        case 'n': o->no_events = true; break;
        case 'b': ok = gl_parse_i64(optarg, 1, LEDGER_BATCH_MAX, &o->batch); break;
        default: ok = false;
        }
        if (!ok) return false;
    }
    return o->config && o->region && o->scenario &&
           (strcmp(o->scenario, "uniform") == 0 || strcmp(o->scenario, "hot") == 0);
}

static bool create_accounts(PGconn *db, const ledger_ctx *ctx, gl_id *ids, long n, gl_error *err) {
    ledger_cmd *cmds = calloc(LEDGER_BATCH_MAX, sizeof *cmds);
    ledger_result *res = calloc(LEDGER_BATCH_MAX, sizeof *res);
    bool ok = cmds && res;
    for (long done = 0; ok && done < n;) {
        long left = n - done;
        size_t m = left < LEDGER_BATCH_MAX ? (size_t)left : (size_t)LEDGER_BATCH_MAX;
        for (size_t i = 0; i < m; i++) {
            ledger_cmd_init(&cmds[i], LEDGER_CMD_CREATE_ACCOUNT);
            memcpy(cmds[i].currency, "EUR", 4);
            snprintf(cmds[i].owner, sizeof cmds[i].owner, "bench");
        }
        ok = ledger_execute(db, ctx, cmds, m, res, err);
        for (size_t i = 0; ok && i < m; i++) ids[done + (long)i] = res[i].id;
        done += (long)m;
    }
    free(cmds);
    free(res);
    return ok;
}

/* One id per line, for the HTTP benchmark's wrk script. */
static bool write_ids(const char *path, const gl_id *ids, long n) {
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "ledger-bench: cannot write %s\n", path);
        return false;
    }
    char s[GL_ID_STR_LEN + 1];
    for (long i = 0; i < n; i++) {
        gl_id_format(&ids[i], s);
        fprintf(f, "%s\n", s);
    }
    return fclose(f) == 0;
}

static void fill_batch(ledger_cmd *cmds, size_t m, const gl_id *ids, long n, bool hot, long *seq) {
    for (size_t i = 0; i < m; i++) {
        ledger_cmd *c = &cmds[i];
        ledger_cmd_init(c, LEDGER_CMD_TRANSFER);
        long from, to;
        if (hot) {
            to = 0; /* the platform account */
            from = 1 + (long)(rng() % (uint64_t)(n - 1));
        } else {
            from = (long)(rng() % (uint64_t)n);
            do to = (long)(rng() % (uint64_t)n);
            while (to == from);
        }
        c->debit_account_id = ids[from];
        c->credit_account_id = ids[to];
        c->amount = 1 + (int64_t)(rng() % 10000);
        memcpy(c->currency, "EUR", 4);
        snprintf(c->owner, sizeof c->owner, "bench");
        snprintf(c->reference, sizeof c->reference, "bench-%d-%ld", (int)getpid(), (*seq)++);
    }
}

int main(int argc, char **argv) {
    bench_opts o;
    if (!parse_args(argc, argv, &o)) return usage();
    gl_config cfg;
    gl_error err;
    if (!gl_config_load(o.config, &cfg, &err)) {
        fprintf(stderr, "ledger-bench: %s\n", err.message);
        return 1;
    }
    const gl_region *r = gl_region_by_name(&cfg, o.region);
    PGconn *db = r ? gl_region_connect(r, GL_ROLE_SERVICE, &err) : NULL;
    if (!db) {
        fprintf(stderr, "ledger-bench: %s\n", r ? err.message : "no such region");
        gl_config_free(&cfg);
        return 1;
    }
    ledger_ctx ctx = {.partition_code = r->code};
    if (o.no_events) ledger_events_measure_without();
    rng_state ^= (uint64_t)getpid() << 20;
    gl_id *ids = calloc((size_t)o.accounts, sizeof *ids);
    ledger_cmd *cmds = calloc((size_t)o.batch, sizeof *cmds);
    ledger_result *res = calloc((size_t)o.batch, sizeof *res);
    int rc = 1;
    double t0 = now_s();
    if (!ids || !cmds || !res || !create_accounts(db, &ctx, ids, o.accounts, &err)) {
        fprintf(stderr, "ledger-bench: setting up accounts: %s\n", ids ? err.message : "out of memory");
        goto out;
    }
    fprintf(stderr, "ledger-bench: %ld accounts created in %.1f s\n", o.accounts, now_s() - t0);
    if (o.accounts_out && !write_ids(o.accounts_out, ids, o.accounts)) goto out;
    if (o.seconds == 0) { /* accounts only (the HTTP benchmark drives the transfers) */
        rc = 0;
        goto out;
    }
    bool hot = strcmp(o.scenario, "hot") == 0;
    long seq = 0, ok_count = 0, refused = 0, batches = 0;
    double start = now_s(), end = start + (double)o.seconds, max_batch_s = 0;
    while (now_s() < end) {
        fill_batch(cmds, (size_t)o.batch, ids, o.accounts, hot, &seq);
        double b0 = now_s();
        if (!ledger_execute(db, &ctx, cmds, (size_t)o.batch, res, &err)) {
            fprintf(stderr, "ledger-bench: batch failed: %s (%s)\n", err.message, err.detail);
            goto out;
        }
        double dt = now_s() - b0;
        if (dt > max_batch_s) max_batch_s = dt;
        for (long i = 0; i < o.batch; i++) {
            if (res[i].code == LEDGER_OK) ok_count++;
            else refused++;
        }
        batches++;
    }
    double elapsed = now_s() - start;
    printf("scenario=%s accounts=%ld batch=%ld batches=%ld refused=%ld seconds=%.1f max_batch_ms=%.0f "
           "transfers_per_s=%.0f\n",
           o.scenario, o.accounts, o.batch, batches, refused, elapsed, max_batch_s * 1000,
           (double)ok_count / elapsed);
    rc = refused ? 1 : 0;
out:
    free(ids);
    free(cmds);
    free(res);
    PQfinish(db);
    gl_config_free(&cfg);
    return rc;
}
