/*
 * recon-seed — data for the reconciliation benchmark (bench/run.sh, scenario recon).
 *
 *   recon-seed --config F --region R --transfers N --file OUT.csv [--breaks 300]
 *
 * Writes N charges through the engine (debit a fresh psp_clearing account,
 * credit a merchant, reference "r<i>", metadata {"psp_fee": fee}) and the
 * matching settlement file in the generic format (reconciliation/FORMATS.md),
 * with about --breaks seeded breaks spread over the classes: lines the ledger
 * lacks, transfers the file lacks, wrong amounts, wrong fees, wrong
 * currencies and repeated lines. The file's times are the seeding time, so a
 * run over today..tomorrow covers them. Prints the clearing account id and
 * the expected break counts as its last line.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../ledger/ledger.h"
#include "../ledger/text.h"
#include "../ledger/pg.h"
#include "../regions/regions.h"

#define BATCH 8189

typedef struct {
    const char *config, *region, *file;
    int64_t transfers, breaks;
} seed_opts;

static bool parse_args(int argc, char **argv, seed_opts *o) {
    static const struct option longopts[] = {{"config", required_argument, NULL, 'c'},
                                             {"region", required_argument, NULL, 'r'},
                                             {"file", required_argument, NULL, 'f'},
                                             {"transfers", required_argument, NULL, 'n'},
                                             {"breaks", required_argument, NULL, 'b'},
                                             {NULL, 0, NULL, 0}};
    *o = (seed_opts){.breaks = 300};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        bool ok = true;
        if (ch == 'c') o->config = optarg;
        else if (ch == 'r') o->region = optarg;
        else if (ch == 'f') o->file = optarg;
        else if (ch == 'n') ok = gl_parse_i64(optarg, 1000, 100000000, &o->transfers);
        else if (ch == 'b') ok = gl_parse_i64(optarg, 0, 100000, &o->breaks);
        else ok = false;
        if (!ok) return false;
    }
    return o->config && o->region && o->file && o->transfers > 0;
}

/* References are unique per owner: each seeding run is its own owner. */
static char owner[64];

static bool create_account(PGconn *db, const ledger_ctx *ctx, const char *kind, gl_id *out, gl_error *err) {
    ledger_cmd c;
    ledger_result r;
    ledger_cmd_init(&c, LEDGER_CMD_CREATE_ACCOUNT);
    memcpy(c.currency, "EUR", 4);
    snprintf(c.owner, sizeof c.owner, "%s", owner);
    snprintf(c.account_kind, sizeof c.account_kind, "%s", kind);
    if (!ledger_execute(db, ctx, &c, 1, &r, err)) return false;
    *out = r.id;
    return r.code == LEDGER_OK;
}

/* The break seeded at line i, if any: every k-th transfer gets one, in turn. */
typedef enum { SEED_NONE, SEED_MISSING_IN_LEDGER, SEED_MISSING_IN_SETTLEMENT, SEED_AMOUNT, SEED_FEE, SEED_CURRENCY,
               SEED_DUPLICATE, SEED_KINDS } seed_kind;
static const char *const seed_names[SEED_KINDS] = {"", "missing_in_ledger", "missing_in_settlement", "amount_mismatch",
                                                   "fee_mismatch", "currency_mismatch", "duplicate"};

static seed_kind seed_at(const seed_opts *o, long i) {
    if (o->breaks == 0) return SEED_NONE;
    long every = o->transfers / o->breaks;
    if (every < 2 || i % every != every / 2) return SEED_NONE;
    return (seed_kind)(1 + (i / every) % (SEED_KINDS - 1));
}

static int64_t amount_of(long i) { return 100 + (i * 7919) % 100000; }
static int64_t fee_of(long i) { return 10 + i % 90; }

static void write_line(FILE *f, const char *ref, long i, const char *cur, int64_t amount, int64_t fee, const char *at) {
    int64_t net = amount - fee;
    fprintf(f, "%s,psp-%ld,charge,%s,%lld.%02lld,%lld.%02lld,%lld.%02lld,%s,\n", ref, i, cur, (long long)(amount / 100),
            (long long)(amount % 100), (long long)(fee / 100), (long long)(fee % 100), (long long)(net / 100),
            (long long)(net % 100), at);
}

int main(int argc, char **argv) {
    seed_opts o;
    if (!parse_args(argc, argv, &o)) {
        fprintf(stderr, "usage: recon-seed --config F --region R --transfers N --file OUT.csv [--breaks 300]\n");
        return 2;
    }
    snprintf(owner, sizeof owner, "recon-bench-%lld-%d", (long long)time(NULL), (int)getpid());
    gl_config cfg;
    gl_error err;
    if (!gl_config_load(o.config, &cfg, &err)) {
        fprintf(stderr, "recon-seed: %s\n", err.message);
        return 1;
    }
    const gl_region *r = gl_region_by_name(&cfg, o.region);
    PGconn *db = r ? gl_region_connect(r, GL_ROLE_SERVICE, &err) : NULL;
    FILE *f = fopen(o.file, "w");
    int rc = 1;
    ledger_cmd *cmds = calloc(BATCH, sizeof *cmds);
    ledger_result *res = calloc(BATCH, sizeof *res);
    char (*meta)[32] = calloc(BATCH, sizeof *meta);
    ledger_ctx ctx = {.partition_code = r ? r->code : 0};
    gl_id clearing, merchant;
    long counts[SEED_KINDS] = {0};
    if (!db || !f || !cmds || !res || !meta || !create_account(db, &ctx, "psp_clearing", &clearing, &err) ||
        !create_account(db, &ctx, "merchant", &merchant, &err)) {
        fprintf(stderr, "recon-seed: setup failed: %s\n", db ? err.message : "no region or no file");
        goto out;
    }
    char at[40];
    gl_format_rfc3339_us((int64_t)time(NULL) * 1000000, at, sizeof at);
    fprintf(f, "reference,psp_id,type,currency,gross,fee,net,created_at,settled_at\n");
    for (long base = 0; base < o.transfers; base += BATCH) {
        size_t m = 0;
        for (long i = base; i < base + BATCH && i < o.transfers; i++) {
            seed_kind k = seed_at(&o, i);
            counts[k]++;
            char ref[32];
            snprintf(ref, sizeof ref, "r%ld", i);
            if (k != SEED_MISSING_IN_LEDGER) {
                ledger_cmd *c = &cmds[m];
                ledger_cmd_init(c, LEDGER_CMD_TRANSFER);
                c->debit_account_id = clearing;
                c->credit_account_id = merchant;
                c->amount = amount_of(i);
                memcpy(c->currency, "EUR", 4);
                snprintf(c->owner, sizeof c->owner, "%s", owner);
                snprintf(c->reference, sizeof c->reference, "%s", ref);
                snprintf(meta[m], sizeof meta[m], "{\"psp_fee\": %lld}", (long long)fee_of(i));
                c->metadata = meta[m];
                m++;
            }
            if (k == SEED_MISSING_IN_SETTLEMENT) continue;
            write_line(f, ref, i, k == SEED_CURRENCY ? "USD" : "EUR", amount_of(i) + (k == SEED_AMOUNT ? 1 : 0),
                       fee_of(i) + (k == SEED_FEE ? 1 : 0), at);
            if (k == SEED_DUPLICATE) write_line(f, ref, i, "EUR", amount_of(i), fee_of(i), at);
        }
        if (!ledger_execute(db, &ctx, cmds, m, res, &err)) {
            fprintf(stderr, "recon-seed: batch failed: %s\n", err.message);
            goto out;
        }
        for (size_t i = 0; i < m; i++)
            if (res[i].code != LEDGER_OK) {
                fprintf(stderr, "recon-seed: transfer refused: %s\n", ledger_code_name(res[i].code));
                goto out;
            }
    }
    if (fclose(f) != 0) {
        f = NULL;
        fprintf(stderr, "recon-seed: cannot write %s\n", o.file);
        goto out;
    }
    f = NULL;
    char id[GL_ID_STR_LEN + 1];
    gl_id_format(&clearing, id);
    printf("clearing_account=%s", id);
    for (int k = 1; k < SEED_KINDS; k++) printf(" %s=%ld", seed_names[k], counts[k]);
    printf("\n");
    rc = 0;
out:
    if (f) fclose(f);
    free(cmds);
    free(res);
    free(meta);
    PQfinish(db);
    gl_config_free(&cfg);
    return rc;
}
