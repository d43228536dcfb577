/*
 * stress.c — concurrent load generator and consistency checker for the engine.
 *
 *   stress --config F --region R --mode uniform|hot|mixed --procs P --batches B
 *          --batch-size N --accounts A --seed S [--crash-after-ms MS]
 *          [--report FILE] [--tag T]
 *
 * The parent creates A EUR accounts in region R, funds every limited one from
 * a funding account, then forks P workers. Each worker opens its own connection
 * and runs B batches of N commands through gl_route_execute():
 *   uniform  plain transfers between accounts that can always pay: every command
 *            must succeed, so every committed batch holds exactly N transfers;
 *   hot      transfers from random accounts into one hot account;
 *   mixed    transfers, holds (some with a 1-2 s timeout), full and partial
 *            posts, voids, expiries, full and partial reversals, linked chains,
 *            reference replays and deliberately failing commands.
 * A worker keeps a model of the holds and transfers it created (only it acts on
 * them), so it knows which result codes the engine may answer for each command;
 * at the end it compares its model with the database (ledger_transfer_get).
 *
 * The parent then checks the database: conservation (credits - debits sums to 0
 * over the run's accounts and over the partition), no limited account
 * overdrawn, every transfer of the run with two entries, account versions equal
 * entry counts, each worker's transfer count equal to its successes, and in hot
 * mode the hot account's credits equal the sum the workers saw accepted.
 *
 * Accounts: 0 funding (no limits; funds every limited account first); 1 the hot
 * account (hot mode only); the others cycle through rich (limited, funded with
 * more than the whole run could take from them), open (no limits) and poor
 * (limited, funded with a few transfers' worth, so they run dry and refuse).
 *
 * --crash-after-ms MS: the parent SIGKILLs every worker MS ms after the fork,
 * mid-batch, skips the checks that need worker reports and checks the database
 * (in uniform mode every committed batch must still hold exactly N transfers).
 *
 * Exit status: 0 consistent; 1 inconsistency; 2 usage; 3 database error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../ledger/id.h"
#include "../../ledger/ledger.h"
#include "../../ledger/text.h"
#include "../../regions/regions.h"
#include "../../regions/route.h"

enum { EXIT_INCONSISTENT = 1, EXIT_USAGE = 2, EXIT_INFRA = 3 };

#define MAX_PROCS 64
#define MAX_AMOUNT 10000                     /* minor units per transfer: 1..MAX_AMOUNT */
#define POOR_FUND ((int64_t)3 * MAX_AMOUNT)           /* a poor account runs dry after a few payments */
#define FAIL_AMOUNT 1000000000000000LL       /* more than any limited account can ever hold */
#define MAX_TOTAL_COMMANDS 1000000000L       /* keeps rich funding far below FAIL_AMOUNT */
#define CLOCK_SLACK_MS 50                    /* client vs server clock, both on this host */
#define ISSUES_SHOWN 20                      /* per process */
#define PICK_TRIES 16
#define EXPIRE_EVERY 20                      /* worker 0 runs ledger_expire_due every 20 batches */

/* ================================================================ options */

typedef enum { MODE_UNIFORM, MODE_HOT, MODE_MIXED } run_mode;

static const char *const mode_names[] = {"uniform", "hot", "mixed"};

typedef struct {
    const char *config, *region, *report, *tag;
    run_mode mode;
    int64_t procs, batches, batch_size, accounts, crash_after_ms;
    unsigned long long seed;
} options;

static void usage(FILE *f) {
    fputs("usage: stress --config F --region R --mode uniform|hot|mixed --procs P --batches B\n"
          "              --batch-size N --accounts A --seed S [--crash-after-ms MS]\n"
          "              [--report FILE] [--tag T]\n"
          "Exit status: 0 consistent, 1 inconsistency, 2 usage, 3 database error.\n",
          f);
}

static int fail_usage(const char *what, const char *arg) {
    fprintf(stderr, "stress: %s '%s'\n", what, arg ? arg : "");
    usage(stderr);
    return EXIT_USAGE;
}

static bool parse_seed(const char *s, unsigned long long *out) {
    if (!s || !*s || *s == '-') return false;
    char *end;
    errno = 0;
    *out = strtoull(s, &end, 10);
    return errno == 0 && *end == '\0';
}

static bool parse_mode(const char *s, run_mode *out) {
    for (int m = 0; m < 3; m++) {
        if (strcmp(s, mode_names[m]) == 0) {
            *out = (run_mode)m;
            return true;
        }
    }
    return false;
}

/* Tags end up in owners and LIKE patterns: no wildcards, no ':'. */
static bool tag_valid(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 40) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '-' || s[i] == '.'))
            return false;
    return true;
}

static const struct option long_opts[] = {
    {"config", required_argument, NULL, 'c'},     {"region", required_argument, NULL, 'r'},
    {"mode", required_argument, NULL, 'm'},       {"procs", required_argument, NULL, 'p'},
    {"batches", required_argument, NULL, 'b'},    {"batch-size", required_argument, NULL, 'n'},
    {"accounts", required_argument, NULL, 'a'},   {"seed", required_argument, NULL, 's'},
    {"crash-after-ms", required_argument, NULL, 'k'}, {"report", required_argument, NULL, 'o'},
    {"tag", required_argument, NULL, 't'},        {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* Returns 0, or the exit status for a bad option. */
static int parse_one(options *o, int opt, const char *arg) {
    switch (opt) {
    case 'c': o->config = arg; return 0;
    case 'r': o->region = arg; return 0;
    case 'o': o->report = arg; return 0;
    case 't': return tag_valid(arg) ? (o->tag = arg, 0) : fail_usage("bad --tag (1-40 of A-Z a-z 0-9 . -)", arg);
    case 'm': return parse_mode(arg, &o->mode) ? 0 : fail_usage("bad --mode", arg);
    case 'p': return gl_parse_i64(arg, 1, MAX_PROCS, &o->procs) ? 0 : fail_usage("bad --procs (1..64)", arg);
    case 'b': return gl_parse_i64(arg, 1, 1000000, &o->batches) ? 0 : fail_usage("bad --batches", arg);
    case 'n':
        return gl_parse_i64(arg, 1, LEDGER_BATCH_MAX, &o->batch_size) ? 0 : fail_usage("bad --batch-size (1..8189)", arg);
    case 'a': return gl_parse_i64(arg, 4, 100000, &o->accounts) ? 0 : fail_usage("bad --accounts (4..100000)", arg);
    case 's': return parse_seed(arg, &o->seed) ? 0 : fail_usage("bad --seed", arg);
    case 'k': return gl_parse_i64(arg, 1, 3600000, &o->crash_after_ms) ? 0 : fail_usage("bad --crash-after-ms", arg);
    case 'h': usage(stdout); return -1;
    default: usage(stderr); return EXIT_USAGE;
    }
}

/* Returns 0 to run, -1 after --help, or an exit status. */
static int parse_options(int argc, char **argv, options *o) {
    *o = (options){.mode = MODE_UNIFORM, .procs = 4, .batches = 10, .batch_size = 100, .accounts = 50, .seed = 1};
    int opt;
    while ((opt = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        int rc = parse_one(o, opt, optarg);
        if (rc) return rc;
    }
    if (optind < argc) return fail_usage("unexpected argument", argv[optind]);
    if (!o->region) return fail_usage("--region is required", "");
    if (o->procs * o->batches * o->batch_size > MAX_TOTAL_COMMANDS)
        return fail_usage("procs * batches * batch-size exceeds", "1000000000");
    o->config = gl_config_default_path(o->config);
    return 0;
}

/* ================================================================ shared state */

typedef enum { ACC_FUNDING, ACC_HOT, ACC_RICH, ACC_OPEN, ACC_POOR } acct_class;

typedef struct {
    options opt;
    gl_config cfg;
    const gl_region *region;
    char tag[48];
    char owner[64]; /* accounts and funding transfers: "stress:<tag>" (tag <= 40 chars) */
    size_t n_accts;
    gl_id *ids;
    acct_class *cls;
    int64_t rich_fund;
} stress;

/* What a worker sends the parent through the pipe (< PIPE_BUF: one atomic write). */
typedef struct {
    int worker;
    int finished;   /* ran all its batches */
    int in_doubt;   /* a batch failed in a way that may have committed (connection lost) */
    int64_t commands;
    int64_t codes[LEDGER_CODE_COUNT];
    int64_t ok_transfers; /* results that wrote a transfer row, expiries excluded */
    int64_t ok_expires;
    int64_t due_expired; /* holds expired by ledger_expire_due (worker 0) */
    int64_t hot_amount, hot_count;
    int64_t batches_committed;
    int64_t infra_errors;
    int64_t inconsistencies;
    int64_t run_ms; /* time spent running batches (without the end-of-run model check) */
} worker_report;

static int64_t now_ms(clockid_t clk) {
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool is_limited(acct_class c) { return c == ACC_RICH || c == ACC_POOR; }

static acct_class class_of(const options *o, size_t i) {
    static const acct_class cycle[4] = {ACC_RICH, ACC_RICH, ACC_OPEN, ACC_POOR};
    if (i == 0) return ACC_FUNDING;
    if (i == 1 && o->mode == MODE_HOT) return ACC_HOT;
    return cycle[i % 4];
}

static const char *kind_of(acct_class c) {
    switch (c) {
    case ACC_FUNDING: return "funding";
    case ACC_HOT: return "fees";
    case ACC_OPEN: return "merchant";
    default: return "wallet";
    }
}

static void print_error(const char *what, const gl_error *e) {
    fprintf(stderr, "stress: %s: %s\n", what, e->message);
    if (e->detail[0]) fprintf(stderr, "DETAIL: %s\n", e->detail);
}

/* ================================================================ setup */

static void cmd_base(ledger_cmd *c, ledger_cmd_kind kind, const char *owner) {
    ledger_cmd_init(c, kind);
    snprintf(c->owner, sizeof c->owner, "%s", owner);
    memcpy(c->currency, "EUR", 4);
}

/* Runs one setup batch; every command must succeed. */
static bool setup_batch(const stress *s, PGconn *db, ledger_cmd *cmds, size_t n, ledger_result *res) {
    gl_error e;
    if (!gl_route_execute(&s->cfg, s->region, db, cmds, n, res, &e)) {
        print_error("setup batch", &e);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (res[i].code != LEDGER_OK) {
            fprintf(stderr, "stress: setup command %zu refused: %s\n", i, ledger_code_name(res[i].code));
            return false;
        }
    }
    return true;
}

static bool create_accounts(stress *s, PGconn *db, ledger_cmd *cmds, ledger_result *res) {
    for (size_t from = 0; from < s->n_accts; from += LEDGER_BATCH_MAX) {
        size_t left = s->n_accts - from, batch_max = LEDGER_BATCH_MAX;
        size_t n = left < batch_max ? left : batch_max;
        for (size_t k = 0; k < n; k++) {
            acct_class c = s->cls[from + k];
            cmd_base(&cmds[k], LEDGER_CMD_CREATE_ACCOUNT, s->owner);
            snprintf(cmds[k].account_kind, sizeof cmds[k].account_kind, "%s", kind_of(c));
            cmds[k].account_flags = is_limited(c) ? LEDGER_AF_DEBITS_MUST_NOT_EXCEED_CREDITS : 0;
        }
        if (!setup_batch(s, db, cmds, n, res)) return false;
        /* cppcheck 2.10 misreads n as 0 after setup_batch (false positive) */
        // cppcheck-suppress knownConditionTrueFalse
        for (size_t k = 0; k < n; k++) s->ids[from + k] = res[k].id;
    }
    return true;
}

/* The funding account pays every limited account its starting balance. */
static bool fund_accounts(const stress *s, PGconn *db, ledger_cmd *cmds, ledger_result *res) {
    size_t n = 0;
    for (size_t i = 0; i < s->n_accts; i++) {
        if (!is_limited(s->cls[i])) continue;
        ledger_cmd *c = &cmds[n++];
        cmd_base(c, LEDGER_CMD_TRANSFER, s->owner);
        snprintf(c->reference, sizeof c->reference, "fund.%zu", i);
        c->debit_account_id = s->ids[0];
        c->credit_account_id = s->ids[i];
        c->amount = s->cls[i] == ACC_RICH ? s->rich_fund : POOR_FUND;
        if (n == LEDGER_BATCH_MAX || i + 1 == s->n_accts) {
            if (!setup_batch(s, db, cmds, n, res)) return false;
            n = 0;
        }
    }
    return n == 0 || setup_batch(s, db, cmds, n, res);
}

static bool setup(stress *s) {
    gl_error e;
    PGconn *db = gl_region_connect(s->region, GL_ROLE_SERVICE, &e);
    if (!db) {
        print_error("connect", &e);
        return false;
    }
    size_t cap = s->n_accts < LEDGER_BATCH_MAX ? s->n_accts : LEDGER_BATCH_MAX;
    ledger_cmd *cmds = calloc(cap, sizeof *cmds);
    ledger_result *res = calloc(cap, sizeof *res);
    bool ok = cmds && res && create_accounts(s, db, cmds, res) && fund_accounts(s, db, cmds, res);
    free(cmds);
    free(res);
    PQfinish(db);
    return ok;
}

/* ================================================================ worker model */

typedef enum {
    X_TRANSFER,         /* plain transfer */
    X_HOLD,             /* pending transfer */
    X_POST,             /* post (full or partial) of an open hold */
    X_VOID,             /* void of an open hold */
    X_EXPIRE,           /* expire of an open hold with a timeout */
    X_REVERSE,          /* reversal: full, partial or too much */
    X_FAIL_FUNDS,       /* a limited account pays more than it can ever have */
    X_POST_TOO_MUCH,    /* post of more than an open hold without timeout holds */
    X_RE_RESOLVE,       /* post or void of a hold already resolved */
    X_REVERSE_HOLD,     /* reversal of a hold */
    X_VOID_PLAIN,       /* void of a transfer that is not a hold */
    X_REPLAY_SAME,      /* a reference used before, same fields */
    X_REPLAY_DIFF,      /* a reference used before, another amount */
    X_WRONG_CURRENCY,   /* USD between EUR accounts */
} xkind;

static const char *const xkind_names[] = {
    "transfer", "hold", "post", "void", "expire", "reverse", "fail_funds", "post_too_much",
    "re_resolve", "reverse_hold", "void_plain", "replay_same", "replay_diff", "wrong_currency",
};

/* A transfer this worker made that can be reversed (plain transfers and posts). */
typedef struct {
    gl_id id;
    int64_t amount, reversed;
    size_t dr, cr;
    bool is_post;
    uint64_t ref_batch; /* its reference is "b<ref_batch>.<ref_index>" */
    size_t ref_index;
    uint64_t busy; /* batch number + 1 when used in the current batch */
} xfer_rec;

typedef struct {
    gl_id id;
    int64_t amount, posted;
    size_t dr, cr;
    int timeout_s;
    int64_t lo_ms, hi_ms; /* the creating batch ran within [lo, hi] (CLOCK_REALTIME) */
    char state;           /* 'p' open, 'P' posted, 'V' voided, 'E' expired (or refused as expired) */
    uint64_t busy;
} hold_rec;

typedef struct {
    xkind kind;
    size_t target; /* index into holds or xfers */
    size_t dr, cr;
    int64_t amount;
    size_t chain_end; /* last command of its linked chain (itself when single) */
} expect;

typedef struct {
    const stress *s;
    int index;
    PGconn *db;
    uint64_t rng;
    char owner[LEDGER_OWNER_MAX + 1];
    size_t n; /* batch size */
    ledger_cmd *cmds;
    ledger_result *res;
    expect *exp;
    uint64_t batch_no;
    int64_t t_lo, t_hi; /* wall clock bracket of the current batch */
    xfer_rec *xfers;
    size_t n_xfers, cap_xfers;
    hold_rec *holds;
    size_t n_holds, cap_holds;
    bool oom;
    worker_report rep;
} worker;

static uint64_t rnd(worker *w, uint64_t n) { /* splitmix64 */
    uint64_t z = (w->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (z ^ (z >> 31)) % n;
}

static int64_t rnd_amount(worker *w) { return 1 + (int64_t)rnd(w, MAX_AMOUNT); }

static bool grow(void **arr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t c = *cap ? *cap * 2 : 256;
    void *p = realloc(*arr, c * elem);
    if (!p) return false;
    *arr = p;
    *cap = c;
    return true;
}

static void add_xfer(worker *w, const xfer_rec *x) {
    if (!grow((void **)&w->xfers, &w->cap_xfers, w->n_xfers + 1, sizeof *w->xfers)) {
        w->oom = true;
        return;
    }
    w->xfers[w->n_xfers++] = *x;
}

static void add_hold(worker *w, const hold_rec *h) {
    if (!grow((void **)&w->holds, &w->cap_holds, w->n_holds + 1, sizeof *w->holds)) {
        w->oom = true;
        return;
    }
    w->holds[w->n_holds++] = *h;
}

/* ---------------------------------------------------------------- picking */

static size_t pick_account(worker *w, bool allow_poor, size_t not_this) {
    for (;;) {
        size_t i = (size_t)rnd(w, w->s->n_accts);
        acct_class c = w->s->cls[i];
        if (i == not_this || c == ACC_HOT || (c == ACC_POOR && !allow_poor)) continue;
        return i;
    }
}

static size_t pick_limited(worker *w) {
    for (;;) {
        size_t i = (size_t)rnd(w, w->s->n_accts);
        if (is_limited(w->s->cls[i])) return i;
    }
}

typedef enum { HOLD_OPEN, HOLD_OPEN_TIMED, HOLD_OPEN_UNTIMED, HOLD_CLOSED, HOLD_ANY } hold_want;

static bool hold_matches(const hold_rec *h, hold_want want) {
    switch (want) {
    case HOLD_OPEN: return h->state == 'p';
    case HOLD_OPEN_TIMED: return h->state == 'p' && h->timeout_s > 0;
    case HOLD_OPEN_UNTIMED: return h->state == 'p' && h->timeout_s == 0;
    case HOLD_CLOSED: return h->state != 'p';
    case HOLD_ANY: return true;
    }
    return false;
}

/* A hold not yet used in this batch (targets must come from committed batches). */
static bool pick_hold(worker *w, hold_want want, size_t *out) {
    for (int t = 0; t < PICK_TRIES && w->n_holds > 0; t++) {
        size_t i = (size_t)rnd(w, w->n_holds);
        hold_rec *h = &w->holds[i];
        if (h->busy == w->batch_no + 1 || !hold_matches(h, want)) continue;
        h->busy = w->batch_no + 1;
        *out = i;
        return true;
    }
    return false;
}

static bool pick_xfer(worker *w, bool plain_only, size_t *out) {
    for (int t = 0; t < PICK_TRIES && w->n_xfers > 0; t++) {
        size_t i = (size_t)rnd(w, w->n_xfers);
        xfer_rec *x = &w->xfers[i];
        if (x->busy == w->batch_no + 1 || (plain_only && x->is_post)) continue;
        x->busy = w->batch_no + 1;
        *out = i;
        return true;
    }
    return false;
}

/* ---------------------------------------------------------------- generating */

static ledger_cmd *begin_cmd(worker *w, size_t i, ledger_cmd_kind kind, xkind xk) {
    ledger_cmd *c = &w->cmds[i];
    cmd_base(c, kind, w->owner);
    snprintf(c->reference, sizeof c->reference, "b%" PRIu64 ".%zu", w->batch_no, i);
    w->exp[i] = (expect){.kind = xk, .chain_end = i};
    return c;
}

static void set_accounts(worker *w, size_t i, size_t dr, size_t cr, int64_t amount) {
    ledger_cmd *c = &w->cmds[i];
    c->debit_account_id = w->s->ids[dr];
    c->credit_account_id = w->s->ids[cr];
    c->amount = amount;
    w->exp[i].dr = dr;
    w->exp[i].cr = cr;
    w->exp[i].amount = amount;
}

static bool gen_plain(worker *w, size_t i, bool allow_poor) {
    size_t dr = pick_account(w, allow_poor, SIZE_MAX);
    begin_cmd(w, i, LEDGER_CMD_TRANSFER, X_TRANSFER);
    set_accounts(w, i, dr, pick_account(w, true, dr), rnd_amount(w));
    return true;
}

static bool gen_hold(worker *w, size_t i, bool allow_poor) {
    size_t dr = pick_account(w, allow_poor, SIZE_MAX);
    ledger_cmd *c = begin_cmd(w, i, LEDGER_CMD_TRANSFER, X_HOLD);
    set_accounts(w, i, dr, pick_account(w, true, dr), rnd_amount(w));
    c->pending = true;
    uint64_t r = rnd(w, 6);
    c->timeout_s = r == 0 ? 1 : r == 1 ? 2 : 0; /* a third expire within the run */
    return true;
}

static bool gen_hot(worker *w, size_t i) {
    begin_cmd(w, i, LEDGER_CMD_TRANSFER, X_TRANSFER);
    set_accounts(w, i, pick_account(w, true, 1), 1, rnd_amount(w));
    return true;
}

static bool gen_fail_funds(worker *w, size_t i) {
    size_t dr = pick_limited(w);
    ledger_cmd *c = begin_cmd(w, i, LEDGER_CMD_TRANSFER, X_FAIL_FUNDS);
    set_accounts(w, i, dr, pick_account(w, true, dr), FAIL_AMOUNT);
    c->pending = rnd(w, 2) == 0;
    return true;
}

static bool gen_wrong_currency(worker *w, size_t i) {
    gen_plain(w, i, true);
    memcpy(w->cmds[i].currency, "USD", 4);
    w->exp[i].kind = X_WRONG_CURRENCY;
    return true;
}

static bool gen_on_hold(worker *w, size_t i, hold_want want, ledger_cmd_kind kind, xkind xk) {
    size_t h;
    if (!pick_hold(w, want, &h)) return false;
    ledger_cmd *c = begin_cmd(w, i, kind, xk);
    c->target_id = w->holds[h].id;
    w->exp[i].target = h;
    return true;
}

/* Mostly holds without timeout, so that holds with one get the time to expire. */
static hold_want open_hold(worker *w) { return rnd(w, 4) ? HOLD_OPEN_UNTIMED : HOLD_OPEN; }

static bool gen_post(worker *w, size_t i) {
    if (!gen_on_hold(w, i, open_hold(w), LEDGER_CMD_POST, X_POST)) return false;
    const hold_rec *h = &w->holds[w->exp[i].target];
    int64_t amount = rnd(w, 2) ? 0 : 1 + (int64_t)rnd(w, (uint64_t)h->amount); /* 0 = all */
    w->cmds[i].amount = w->exp[i].amount = amount;
    return true;
}

static bool gen_post_too_much(worker *w, size_t i) {
    if (!gen_on_hold(w, i, HOLD_OPEN_UNTIMED, LEDGER_CMD_POST, X_POST_TOO_MUCH)) return false;
    w->cmds[i].amount = w->exp[i].amount = w->holds[w->exp[i].target].amount + 1;
    return true;
}

static bool gen_re_resolve(worker *w, size_t i) {
    return gen_on_hold(w, i, HOLD_CLOSED, rnd(w, 2) ? LEDGER_CMD_POST : LEDGER_CMD_VOID, X_RE_RESOLVE);
}

static bool gen_on_xfer(worker *w, size_t i, bool plain_only, ledger_cmd_kind kind, xkind xk) {
    size_t x;
    if (!pick_xfer(w, plain_only, &x)) return false;
    ledger_cmd *c = begin_cmd(w, i, kind, xk);
    c->target_id = w->xfers[x].id;
    w->exp[i].target = x;
    return true;
}

static bool gen_reverse(worker *w, size_t i) {
    if (!gen_on_xfer(w, i, false, LEDGER_CMD_REVERSE, X_REVERSE)) return false;
    const xfer_rec *x = &w->xfers[w->exp[i].target];
    int64_t left = x->amount - x->reversed;
    uint64_t r = rnd(w, 8);
    int64_t amount = r == 0 ? left + 1 : (r < 4 || left == 0) ? 0 : 1 + (int64_t)rnd(w, (uint64_t)left);
    w->cmds[i].amount = w->exp[i].amount = amount;
    return true;
}

static bool gen_reverse_hold(worker *w, size_t i) {
    size_t h;
    if (!pick_hold(w, HOLD_ANY, &h)) return false;
    ledger_cmd *c = begin_cmd(w, i, LEDGER_CMD_REVERSE, X_REVERSE_HOLD);
    c->target_id = w->holds[h].id;
    w->exp[i].target = h;
    return true;
}

/* The same reference again: same fields -> exists, another amount -> exists_with_different_fields. */
static bool gen_replay(worker *w, size_t i) {
    size_t x;
    if (!pick_xfer(w, true, &x)) return false;
    const xfer_rec *r = &w->xfers[x];
    bool same = rnd(w, 3) != 0;
    ledger_cmd *c = begin_cmd(w, i, LEDGER_CMD_TRANSFER, same ? X_REPLAY_SAME : X_REPLAY_DIFF);
    snprintf(c->reference, sizeof c->reference, "b%" PRIu64 ".%zu", r->ref_batch, r->ref_index);
    set_accounts(w, i, r->dr, r->cr, same ? r->amount : r->amount + 1);
    w->exp[i].target = x;
    return true;
}

/* 2..4 transfers or holds from accounts that can always pay, linked; half of
 * the chains carry a command that must fail, so the whole chain must not apply. */
static size_t gen_chain(worker *w, size_t i, size_t room) {
    size_t max = room < 4 ? room : 4;
    size_t len = 2 + (size_t)rnd(w, max - 1);
    size_t bad = rnd(w, 2) ? (size_t)rnd(w, len) : SIZE_MAX;
    for (size_t k = 0; k < len; k++) {
        if (k == bad) gen_fail_funds(w, i + k);
        else if (rnd(w, 3) == 0) gen_hold(w, i + k, false);
        else gen_plain(w, i + k, false);
        w->cmds[i + k].linked = k + 1 < len;
    }
    for (size_t k = 0; k < len; k++) w->exp[i + k].chain_end = i + len - 1;
    return len;
}

/* One mixed-mode command (or chain); returns how many slots it used. */
static size_t gen_mixed(worker *w, size_t i, size_t room) {
    unsigned r = (unsigned)rnd(w, 100);
    if (r >= 76 && r < 82 && room >= 2) return gen_chain(w, i, room);
    bool done = r < 30   ? false
                : r < 45 ? gen_hold(w, i, true)
                : r < 57 ? gen_post(w, i)
                : r < 64 ? gen_on_hold(w, i, open_hold(w), LEDGER_CMD_VOID, X_VOID)
                : r < 76 ? gen_reverse(w, i)
                : r < 86 ? gen_fail_funds(w, i)
                : r < 89 ? gen_replay(w, i)
                : r < 92 ? gen_on_hold(w, i, HOLD_OPEN_TIMED, LEDGER_CMD_EXPIRE, X_EXPIRE)
                : r < 93 ? gen_post_too_much(w, i)
                : r < 95 ? gen_re_resolve(w, i)
                : r < 96 ? gen_reverse_hold(w, i)
                : r < 97 ? gen_on_xfer(w, i, false, LEDGER_CMD_VOID, X_VOID_PLAIN)
                : r < 98 ? gen_wrong_currency(w, i)
                         : false;
    if (!done) gen_plain(w, i, true);
    return 1;
}

static void gen_batch(worker *w) {
    for (size_t i = 0; i < w->n;) {
        switch (w->s->opt.mode) {
        case MODE_UNIFORM: i += gen_plain(w, i, false); break;
        case MODE_HOT: i += gen_hot(w, i); break;
        case MODE_MIXED: i += gen_mixed(w, i, w->n - i); break;
        }
    }
}

/* ---------------------------------------------------------------- expected codes */

typedef struct {
    ledger_code c[4];
    size_t n;
} code_set;

static void allow(code_set *s, ledger_code c) { s->c[s->n++] = c; }

static bool allowed(const code_set *s, ledger_code c) {
    for (size_t i = 0; i < s->n; i++)
        if (s->c[i] == c) return true;
    return false;
}

typedef enum { EXPIRY_NO, EXPIRY_MAYBE, EXPIRY_YES } expiry;

/* Had the hold timed out when the current batch ran? The server stamps
 * expires_at inside the creating batch, and decides inside the current one. */
static expiry expiry_of(const worker *w, const hold_rec *h) {
    if (h->timeout_s == 0) return EXPIRY_NO;
    int64_t t = (int64_t)h->timeout_s * 1000;
    if (w->t_hi < h->lo_ms + t - CLOCK_SLACK_MS) return EXPIRY_NO;
    if (w->t_lo >= h->hi_ms + t + CLOCK_SLACK_MS) return EXPIRY_YES;
    return EXPIRY_MAYBE;
}

static void allow_resolve(code_set *s, expiry ex) {
    if (ex != EXPIRY_YES) allow(s, LEDGER_OK);
    if (ex != EXPIRY_NO) allow(s, LEDGER_PENDING_EXPIRED);
}

static void allow_expire(code_set *s, expiry ex) {
    if (ex != EXPIRY_YES) allow(s, LEDGER_PENDING_NOT_EXPIRED);
    if (ex != EXPIRY_NO) {
        allow(s, LEDGER_OK);
        allow(s, LEDGER_PENDING_EXPIRED); /* ledger_expire_due got there first */
    }
}

static ledger_code resolved_code(char state) {
    return state == 'P' ? LEDGER_ALREADY_POSTED : state == 'V' ? LEDGER_ALREADY_VOIDED : LEDGER_PENDING_EXPIRED;
}

static void allow_reverse(const worker *w, const expect *e, code_set *s) {
    const xfer_rec *x = &w->xfers[e->target];
    int64_t left = x->amount - x->reversed;
    if (left == 0 || e->amount > left) {
        allow(s, LEDGER_EXCEEDS_REVERSIBLE_AMOUNT);
        return;
    }
    allow(s, LEDGER_OK);
    if (w->s->cls[x->cr] == ACC_POOR) allow(s, LEDGER_INSUFFICIENT_FUNDS); /* the payee refunds */
}

static code_set expected_codes(const worker *w, const expect *e) {
    code_set s = {.n = 0};
    const hold_rec *h = e->target < w->n_holds ? &w->holds[e->target] : NULL;
    bool needs_hold = e->kind == X_POST || e->kind == X_VOID || e->kind == X_EXPIRE || e->kind == X_RE_RESOLVE;
    if (needs_hold && !h) abort(); /* the generator only targets holds it recorded */
    switch (e->kind) {
    case X_TRANSFER:
    case X_HOLD:
        allow(&s, LEDGER_OK);
        if (w->s->cls[e->dr] == ACC_POOR) allow(&s, LEDGER_INSUFFICIENT_FUNDS);
        break;
    case X_POST:
    case X_VOID: allow_resolve(&s, expiry_of(w, h)); break;
    case X_EXPIRE: allow_expire(&s, expiry_of(w, h)); break;
    case X_REVERSE: allow_reverse(w, e, &s); break;
    case X_FAIL_FUNDS: allow(&s, LEDGER_INSUFFICIENT_FUNDS); break;
    case X_POST_TOO_MUCH: allow(&s, LEDGER_EXCEEDS_PENDING_AMOUNT); break;
    case X_RE_RESOLVE: allow(&s, resolved_code(h->state)); break;
    case X_REVERSE_HOLD: allow(&s, LEDGER_NOT_REVERSIBLE); break;
    case X_VOID_PLAIN: allow(&s, LEDGER_NOT_PENDING); break;
    case X_REPLAY_SAME: allow(&s, LEDGER_EXISTS); break;
    case X_REPLAY_DIFF: allow(&s, LEDGER_EXISTS_WITH_DIFFERENT_FIELDS); break;
    case X_WRONG_CURRENCY: allow(&s, LEDGER_CURRENCY_MISMATCH); break;
    }
    return s;
}

/* ---------------------------------------------------------------- checking */

static void issue(worker *w, size_t i, const char *fmt, const char *a, const char *b) {
    if (w->rep.inconsistencies++ >= ISSUES_SHOWN) return;
    char id[GL_ID_STR_LEN + 1];
    gl_id_format(&w->res[i].id, id);
    fprintf(stderr, "stress: INCONSISTENT worker %d batch %" PRIu64 " command %zu (%s, id %s): ", w->index,
            w->batch_no, i, xkind_names[w->exp[i].kind], id);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    fprintf(stderr, fmt, a, b);
#pragma GCC diagnostic pop
    fputc('\n', stderr);
}

static void describe(const code_set *s, char *buf, size_t cap) {
    size_t len = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < s->n && len < cap; k++) {
        int m = snprintf(buf + len, cap - len, "%s%s", k ? "|" : "", ledger_code_name(s->c[k]));
        if (m < 0) return;
        len += (size_t)m;
    }
}

static void check_code(worker *w, size_t i) {
    code_set s = expected_codes(w, &w->exp[i]);
    ledger_code got = w->res[i].code;
    if (!allowed(&s, got)) {
        char want[160];
        describe(&s, want, sizeof want);
        issue(w, i, "engine answered %s, expected %s", ledger_code_name(got), want);
    }
    /* ok and exists name a transfer; exists_with_different_fields may name the prior one */
    bool has_id = !gl_id_is_nil(&w->res[i].id);
    if (got != LEDGER_EXISTS_WITH_DIFFERENT_FIELDS && has_id != (got == LEDGER_OK || got == LEDGER_EXISTS))
        issue(w, i, "result %s %s an id", ledger_code_name(got), has_id ? "carries" : "lacks");
    if (w->exp[i].kind == X_REPLAY_SAME && got == LEDGER_EXISTS &&
        gl_id_cmp(&w->res[i].id, &w->xfers[w->exp[i].target].id) != 0)
        issue(w, i, "replay of %s returned another transfer%s", w->cmds[i].reference, "");
}

static void record_transfer(worker *w, size_t i, const hold_rec *post_of, int64_t amount) {
    if (w->s->opt.mode != MODE_MIXED) return;
    const expect *e = &w->exp[i];
    xfer_rec x = {.id = w->res[i].id, .amount = amount, .dr = post_of ? post_of->dr : e->dr,
                  .cr = post_of ? post_of->cr : e->cr, .is_post = post_of != NULL};
    x.ref_batch = w->batch_no;
    x.ref_index = i;
    add_xfer(w, &x);
}

static void record_hold(worker *w, size_t i) {
    const expect *e = &w->exp[i];
    hold_rec h = {.id = w->res[i].id, .amount = e->amount, .dr = e->dr, .cr = e->cr,
                  .timeout_s = (int)w->cmds[i].timeout_s, .lo_ms = w->t_lo, .hi_ms = w->t_hi, .state = 'p'};
    add_hold(w, &h);
}

/* Brings the model up to date with an accepted result (or a refusal that tells something). */
static void apply_ok(worker *w, size_t i) {
    const expect *e = &w->exp[i];
    hold_rec *h = e->target < w->n_holds ? &w->holds[e->target] : NULL;
    switch (e->kind) {
    case X_TRANSFER: record_transfer(w, i, NULL, e->amount); break;
    case X_HOLD: record_hold(w, i); break;
    case X_POST:
        h->state = 'P';
        h->posted = e->amount ? e->amount : h->amount;
        record_transfer(w, i, h, h->posted);
        break;
    case X_VOID: h->state = 'V'; break;
    case X_EXPIRE: h->state = 'E'; break;
    case X_REVERSE: {
        xfer_rec *x = &w->xfers[e->target];
        x->reversed += e->amount ? e->amount : x->amount - x->reversed;
        break;
    }
    default: break; /* an unexpected success: already reported */
    }
}

static bool is_resolve(xkind k) { return k == X_POST || k == X_VOID || k == X_EXPIRE; }

static void apply_result(worker *w, size_t i) {
    ledger_code got = w->res[i].code;
    const ledger_cmd *c = &w->cmds[i];
    if (got == LEDGER_OK) {
        if (c->kind == LEDGER_CMD_EXPIRE) w->rep.ok_expires++;
        else w->rep.ok_transfers++;
        if (w->s->opt.mode == MODE_HOT && !c->pending && w->exp[i].cr == 1) {
            w->rep.hot_amount += c->amount;
            w->rep.hot_count++;
        }
        apply_ok(w, i);
    } else if (got == LEDGER_PENDING_EXPIRED && is_resolve(w->exp[i].kind)) {
        w->holds[w->exp[i].target].state = 'E';
    }
}

/* A linked chain succeeds as a whole, or one command fails and every other
 * one answers linked_event_failed with no id. */
static void check_chain(worker *w, size_t from, size_t to) {
    size_t failed = SIZE_MAX, n_failed = 0, n_linked = 0;
    for (size_t i = from; i <= to; i++) {
        ledger_code c = w->res[i].code;
        if (c == LEDGER_LINKED_EVENT_FAILED) n_linked++;
        else if (c != LEDGER_OK && c != LEDGER_EXISTS) n_failed++, failed = i;
    }
    if (n_failed == 0 && n_linked == 0) {
        for (size_t i = from; i <= to; i++) {
            check_code(w, i);
            apply_result(w, i);
        }
        return;
    }
    if (n_failed != 1 || n_linked != to - from) {
        issue(w, from, "linked chain is not all-or-nothing (%s failures, %s linked_event_failed)",
              n_failed == 1 ? "1" : "several/no", n_linked == to - from ? "all others" : "not all others");
        return;
    }
    check_code(w, failed);
    apply_result(w, failed);
    for (size_t i = from; i <= to; i++)
        if (i != failed && !gl_id_is_nil(&w->res[i].id)) issue(w, i, "rolled back chain member has an id%s%s", "", "");
}

static void check_batch(worker *w) {
    for (size_t i = 0; i < w->n; i++) {
        ledger_code c = w->res[i].code;
        w->rep.codes[(unsigned)c < LEDGER_CODE_COUNT ? c : LEDGER_CODE_COUNT - 1]++;
    }
    w->rep.commands += (int64_t)w->n;
    for (size_t i = 0; i < w->n;) {
        size_t end = w->exp[i].chain_end;
        check_chain(w, i, end);
        i = end + 1;
    }
}

/* ---------------------------------------------------------------- end-of-run model check */

static void model_issue(worker *w, const gl_id *id, const char *what) {
    if (w->rep.inconsistencies++ >= ISSUES_SHOWN) return;
    char s[GL_ID_STR_LEN + 1];
    gl_id_format(id, s);
    fprintf(stderr, "stress: INCONSISTENT worker %d: transfer %s: %s\n", w->index, s, what);
}

static bool fetch(worker *w, const gl_id *id, ledger_transfer *t) {
    gl_error e;
    int rc = ledger_transfer_get(w->db, id, t, &e);
    if (rc < 0) {
        print_error("ledger_transfer_get", &e);
        w->rep.infra_errors++;
        return false;
    }
    if (rc == 0) model_issue(w, id, "accepted but not found");
    return rc == 1;
}

static void check_hold_model(worker *w, const hold_rec *h) {
    ledger_transfer t;
    if (!fetch(w, &h->id, &t)) return;
    const char *want = h->state == 'P' ? "posted" : h->state == 'V' ? "voided" : h->state == 'E' ? "expired" : "pending";
    bool status_ok = strcmp(t.status, want) == 0 ||
                     (h->state == 'p' && h->timeout_s > 0 && strcmp(t.status, "expired") == 0);
    if (!status_ok) model_issue(w, &h->id, "hold status differs from the results the engine gave");
    if (t.amount != h->amount || (h->state == 'P' && t.amount_posted != h->posted))
        model_issue(w, &h->id, "hold amount or amount_posted differs from the results the engine gave");
}

static void check_xfer_model(worker *w, const xfer_rec *x) {
    ledger_transfer t;
    if (!fetch(w, &x->id, &t)) return;
    if (t.amount != x->amount) model_issue(w, &x->id, "amount differs from the command");
    if (t.amount_reversed != x->reversed) model_issue(w, &x->id, "amount_reversed differs from accepted reversals");
    if (t.amount_reversed > t.amount) model_issue(w, &x->id, "reversed more than its amount");
}

static void check_model(worker *w) {
    for (size_t i = 0; i < w->n_holds && !w->rep.infra_errors; i++) check_hold_model(w, &w->holds[i]);
    for (size_t i = 0; i < w->n_xfers && !w->rep.infra_errors; i++) check_xfer_model(w, &w->xfers[i]);
}

/* ---------------------------------------------------------------- worker main */

static void maybe_expire_due(worker *w) {
    if (w->s->opt.mode != MODE_MIXED || w->index != 0 || w->batch_no % EXPIRE_EVERY != EXPIRE_EVERY - 1) return;
    ledger_ctx ctx = {.partition_code = w->s->region->code};
    gl_error e;
    int n = ledger_expire_due(w->db, &ctx, 200, &e);
    if (n < 0) {
        print_error("ledger_expire_due", &e);
        w->rep.infra_errors++;
    } else {
        w->rep.due_expired += n;
    }
}

/* Runs one batch; false when the worker should stop. */
static bool run_batch(worker *w) {
    gen_batch(w);
    gl_error e;
    w->t_lo = now_ms(CLOCK_REALTIME);
    bool ok = gl_route_execute(&w->s->cfg, w->s->region, w->db, w->cmds, w->n, w->res, &e);
    w->t_hi = now_ms(CLOCK_REALTIME);
    if (ok) {
        w->rep.batches_committed++;
        check_batch(w);
        maybe_expire_due(w);
        return !w->oom;
    }
    w->rep.infra_errors++;
    fprintf(stderr, "stress: worker %d batch %" PRIu64 " failed: %s%s%s\n", w->index, w->batch_no, e.message,
            e.detail[0] ? " — " : "", e.detail);
    if (e.kind == GL_ERR_CONFLICT && PQstatus(w->db) == CONNECTION_OK) return true; /* rolled back: go on */
    w->rep.in_doubt = 1; /* the connection may have died during COMMIT */
    return false;
}

static bool worker_init(worker *w, const stress *s, int index) {
    *w = (worker){.s = s, .index = index, .n = (size_t)s->opt.batch_size};
    w->rng = s->opt.seed * 0x2545f4914f6cdd1dULL + (uint64_t)index * 0x9e3779b97f4a7c15ULL + 1;
    w->rep.worker = index;
    snprintf(w->owner, sizeof w->owner, "%s:w%d", s->owner, index);
    w->cmds = calloc(w->n, sizeof *w->cmds);
    w->res = calloc(w->n, sizeof *w->res);
    w->exp = calloc(w->n, sizeof *w->exp);
    return w->cmds && w->res && w->exp;
}

static void worker_free(worker *w) {
    if (w->db) PQfinish(w->db);
    free(w->cmds);
    free(w->res);
    free(w->exp);
    free(w->xfers);
    free(w->holds);
}

static bool write_full(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

static int worker_main(const stress *s, int index, int report_fd) {
    worker w;
    gl_error e;
    bool ok = worker_init(&w, s, index);
    if (ok && !(w.db = gl_region_connect(s->region, GL_ROLE_SERVICE, &e))) {
        print_error("worker connect", &e);
        w.rep.infra_errors++;
        ok = false;
    }
    int64_t t0 = now_ms(CLOCK_MONOTONIC);
    for (; ok && w.batch_no < (uint64_t)s->opt.batches; w.batch_no++)
        if (!run_batch(&w)) break;
    w.rep.run_ms = now_ms(CLOCK_MONOTONIC) - t0;
    w.rep.finished = ok && w.batch_no == (uint64_t)s->opt.batches;
    if (w.oom) fprintf(stderr, "stress: worker %d: out of memory\n", index);
    if (w.rep.finished && s->opt.mode == MODE_MIXED) check_model(&w);
    if (!write_full(report_fd, &w.rep, sizeof w.rep)) perror("stress: report pipe");
    int rc = w.rep.inconsistencies ? EXIT_INCONSISTENT : (w.rep.finished && !w.rep.infra_errors) ? 0 : EXIT_INFRA;
    worker_free(&w);
    return rc;
}

/* ================================================================ parent: running workers */

typedef struct {
    worker_report *reports; /* by worker index */
    bool *have_report;
    int n_reports;
    int killed;    /* SIGKILLed by the parent (crash mode) */
    int bad_exits; /* died of a signal we did not send, or exited with an unexpected status */
    int inconsistent_exits;
    double seconds;
    int64_t inconsistencies; /* found by the parent */
    bool infra;
    bool db_checked;
    int64_t db_transfers, db_entries, db_worker_transfers, db_batches;
} outcome;

static void note_exit(outcome *out, int status, bool we_killed) {
    if (WIFSIGNALED(status)) {
        if (!(we_killed && WTERMSIG(status) == SIGKILL)) out->bad_exits++;
        return;
    }
    int code = WEXITSTATUS(status);
    if (code == EXIT_INCONSISTENT) out->inconsistent_exits++;
    else if (code == EXIT_INFRA) out->infra = true;
    else if (code != 0) out->bad_exits++;
}

static void read_reports(int fd, outcome *out, long procs) {
    worker_report r;
    for (;;) {
        ssize_t k = read(fd, &r, sizeof r);
        if (k < 0 && errno == EINTR) continue;
        if (k != (ssize_t)sizeof r) break; /* EOF: every worker closed its end */
        if (r.worker < 0 || r.worker >= procs || out->have_report[r.worker]) continue;
        out->reports[r.worker] = r;
        out->have_report[r.worker] = true;
        out->n_reports++;
    }
}

static void wait_all(pid_t *pids, long procs, outcome *out) {
    for (long i = 0; i < procs; i++) {
        int status;
        if (waitpid(pids[i], &status, 0) == pids[i]) note_exit(out, status, false);
    }
}

/* Crash mode: wait MS ms (reaping workers that end early), then SIGKILL the rest. */
static void crash_workers(pid_t *pids, long procs, long ms, outcome *out) {
    int64_t deadline = now_ms(CLOCK_MONOTONIC) + ms;
    bool *done = calloc(procs > 0 ? (size_t)procs : 1, sizeof *done);
    if (!done) abort();
    while (now_ms(CLOCK_MONOTONIC) < deadline) {
        for (long i = 0; i < procs; i++) {
            int status;
            if (!done[i] && waitpid(pids[i], &status, WNOHANG) == pids[i]) {
                done[i] = true;
                note_exit(out, status, false);
            }
        }
        struct timespec ts = {0, 2L * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (long i = 0; i < procs; i++)
        if (!done[i] && kill(pids[i], SIGKILL) == 0) out->killed++;
    for (long i = 0; i < procs; i++) {
        int status;
        if (!done[i] && waitpid(pids[i], &status, 0) == pids[i]) note_exit(out, status, true);
    }
    free(done);
}

static bool run_workers(const stress *s, outcome *out) {
    int fds[2];
    pid_t *pids = calloc((size_t)s->opt.procs, sizeof *pids);
    if (!pids || pipe(fds) != 0) {
        perror("stress: pipe");
        free(pids);
        return false;
    }
    fflush(NULL);
    int64_t start = now_ms(CLOCK_MONOTONIC);
    long started = 0;
    for (; started < s->opt.procs; started++) {
        pid_t pid = fork();
        if (pid < 0) break;
        if (pid == 0) {
            close(fds[0]);
            free(pids);
            int rc = worker_main(s, (int)started, fds[1]);
            close(fds[1]);
            fflush(NULL);
            exit(rc);
        }
        pids[started] = pid;
    }
    close(fds[1]);
    if (started < s->opt.procs) {
        perror("stress: fork");
        out->bad_exits++;
    }
    if (s->opt.crash_after_ms) crash_workers(pids, started, s->opt.crash_after_ms, out);
    else {
        read_reports(fds[0], out, s->opt.procs);
        wait_all(pids, started, out);
    }
    out->seconds = (double)(now_ms(CLOCK_MONOTONIC) - start) / 1000.0;
    close(fds[0]);
    free(pids);
    return true;
}

/* ================================================================ parent: database checks */

static void parent_issue(outcome *out, const char *fmt, const char *a, const char *b) {
    if (out->inconsistencies++ >= ISSUES_SHOWN) return;
    fputs("stress: INCONSISTENT ", stderr);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    fprintf(stderr, fmt, a, b);
#pragma GCC diagnostic pop
    fputc('\n', stderr);
}

/* Runs a query whose first row's columns are integers; fills up to `n` of them. */
static bool query_i64(PGconn *db, const char *sql, int nparams, const char *const *params, int64_t *vals, int n) {
    PGresult *r = PQexecParams(db, sql, nparams, NULL, params, NULL, NULL, 0);
    bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) >= n;
    if (!ok) fprintf(stderr, "stress: query failed: %s", PQerrorMessage(db));
    for (int k = 0; ok && k < n; k++) ok = gl_parse_i64(PQgetvalue(r, 0, k), INT64_MIN, INT64_MAX, &vals[k]);
    PQclear(r);
    return ok;
}

static void i64_text(int64_t v, char *buf, size_t cap) { snprintf(buf, cap, "%" PRId64, v); }

typedef struct {
    __int128 posted, pending; /* sums of credits - debits */
} sums;

static void check_one_account(const stress *s, size_t i, const ledger_account *a, outcome *out) {
    char id[GL_ID_STR_LEN + 1];
    gl_id_format(&a->id, id);
    if (strcmp(a->currency, "EUR") != 0) parent_issue(out, "account %s has currency %s", id, a->currency);
    if (is_limited(s->cls[i]) &&
        (__int128)a->debits_pending + a->debits_posted > (__int128)a->credits_posted)
        parent_issue(out, "limited account %s is below zero%s", id, "");
    if (!(a->flags & LEDGER_AF_DEBITS_MUST_NOT_EXCEED_CREDITS) != !is_limited(s->cls[i]))
        parent_issue(out, "account %s has the wrong flags%s", id, "");
}

static void check_hot(const ledger_account *hot, long procs, outcome *out) {
    int64_t amount = 0, count = 0;
    for (long w = 0; w < procs; w++) {
        amount += out->reports[w].hot_amount;
        count += out->reports[w].hot_count;
    }
    char a[32], b[32];
    if (hot->credits_posted != amount) {
        i64_text(hot->credits_posted, a, sizeof a);
        i64_text(amount, b, sizeof b);
        parent_issue(out, "hot account credits_posted %s, workers saw %s accepted", a, b);
    }
    if (hot->version != count || hot->debits_posted || hot->debits_pending || hot->credits_pending) {
        i64_text(hot->version, a, sizeof a);
        i64_text(count, b, sizeof b);
        parent_issue(out, "hot account version %s, workers saw %s transfers into it", a, b);
    }
}

/* Worker reports are complete and certain: counts that depend on them can be compared. */
static bool reports_usable(const stress *s, const outcome *out) {
    if (s->opt.crash_after_ms || out->n_reports != s->opt.procs) return false;
    for (long w = 0; w < s->opt.procs; w++)
        if (out->reports[w].in_doubt || !out->reports[w].finished) return false;
    return true;
}

static bool check_accounts_in_snapshot(const stress *s, PGconn *db, outcome *out, sums *tp);

/* Conservation over the run's accounts, limits, and the hot account. */
static bool check_accounts(const stress *s, PGconn *db, outcome *out) {
    sums t = {0, 0};
    /* One snapshot for all the reads: a killed worker's backend may still commit
     * its last batch while we read, and per-statement snapshots would see half
     * of the accounts before it and half after. */
    PQclear(PQexec(db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
    bool ok = check_accounts_in_snapshot(s, db, out, &t);
    PQclear(PQexec(db, "COMMIT"));
    if (!ok) return false;
    if (t.posted != 0 || t.pending != 0)
        parent_issue(out, "run accounts do not balance: credits - debits is not 0 (%s%s)",
                     t.posted != 0 ? "posted" : "pending", "");
    return true;
}

static bool check_accounts_in_snapshot(const stress *s, PGconn *db, outcome *out, sums *tp) {
    sums t = {0, 0};
    for (size_t i = 0; i < s->n_accts; i++) {
        ledger_account a;
        gl_error e;
        int rc = ledger_account_get(db, &s->ids[i], &a, &e);
        if (rc < 0) {
            print_error("ledger_account_get", &e);
            return false;
        }
        if (rc == 0) {
            parent_issue(out, "an account of the run is missing%s%s", "", "");
            continue;
        }
        check_one_account(s, i, &a, out);
        t.posted += (__int128)a.credits_posted - a.debits_posted;
        t.pending += (__int128)a.credits_pending - a.debits_pending;
        if (s->cls[i] == ACC_HOT && reports_usable(s, out)) check_hot(&a, s->opt.procs, out);
    }
    *tp = t;
    return true;
}

static bool check_partition(PGconn *db, outcome *out) {
    int64_t v[3];
    if (!query_i64(db,
                   "SELECT count(*), count(*) FILTER (WHERE d_posted <> 0), count(*) FILTER (WHERE d_pending <> 0) "
                   "FROM (SELECT currency, sum(credits_posted - debits_posted) AS d_posted, "
                   "sum(credits_pending - debits_pending) AS d_pending FROM accounts GROUP BY currency) s",
                   0, NULL, v, 3))
        return false;
    if (v[1] || v[2]) parent_issue(out, "the partition does not balance for some currency%s%s", "", "");
    return true;
}

/* Every transfer of the run has its two entries; account versions = entry counts. */
static bool check_entries(const stress *s, PGconn *db, outcome *out) {
    char like[LEDGER_OWNER_MAX + 8], wlike[LEDGER_OWNER_MAX + 8];
    snprintf(like, sizeof like, "%s:%%", s->owner);
    snprintf(wlike, sizeof wlike, "%s:w%%", s->owner);
    const char *p[3] = {s->owner, like, wlike};
    int64_t v[4], bad;
    /* Statistics lag right after a run, and a nested loop over entries (no
     * index on transfer_id) would take minutes: ask for a hash join. */
    PQclear(PQexec(db, "SET enable_nestloop = off"));
    if (!query_i64(db,
                   "SELECT count(*), coalesce(sum(n), 0), count(*) FILTER (WHERE owner LIKE $3), "
                   "count(*) FILTER (WHERE n <> 2 OR good <> 2) FROM (SELECT t.id, t.owner, count(e.transfer_id) AS n, "
                   "count(*) FILTER (WHERE (e.side = 'D' AND e.account_id = t.debit_account_id) OR "
                   "(e.side = 'C' AND e.account_id = t.credit_account_id)) AS good "
                   "FROM transfers t LEFT JOIN entries e ON e.transfer_id = t.id "
                   "WHERE t.owner = $1 OR t.owner LIKE $2 GROUP BY t.id, t.owner) x",
                   3, p, v, 4) ||
        !query_i64(db,
                   "SELECT count(*) FROM accounts a WHERE a.owner = $1 AND a.version <> "
                   "(SELECT count(*) FROM entries e WHERE e.account_id = a.id)",
                   1, p, &bad, 1))
        return false;
    out->db_transfers = v[0];
    out->db_entries = v[1];
    out->db_worker_transfers = v[2];
    if (v[1] != 2 * v[0] || v[3]) parent_issue(out, "the run's transfers do not have exactly two entries each%s%s", "", "");
    if (bad) parent_issue(out, "some accounts' versions differ from their entry counts%s%s", "", "");
    PQclear(PQexec(db, "RESET enable_nestloop"));
    return true;
}

/* Uniform mode: every command succeeds, so each committed batch holds exactly N transfers. */
static bool check_batches(const stress *s, PGconn *db, outcome *out) {
    if (s->opt.mode != MODE_UNIFORM) return true;
    char wlike[LEDGER_OWNER_MAX + 8], n[24];
    snprintf(wlike, sizeof wlike, "%s:w%%", s->owner);
    snprintf(n, sizeof n, "%ld", s->opt.batch_size);
    const char *p[2] = {wlike, n};
    int64_t v[2];
    if (!query_i64(db,
                   "SELECT count(*), count(*) FILTER (WHERE c <> $2::int8) FROM (SELECT count(*) AS c FROM transfers "
                   "WHERE owner LIKE $1 GROUP BY owner, split_part(reference, '.', 1)) g",
                   2, p, v, 2))
        return false;
    out->db_batches = v[0];
    if (v[1]) parent_issue(out, "some committed batches are partial (not %s transfers)%s", n, "");
    return true;
}

/* Each worker's transfers in the database = the successes it was told about. */
static bool check_worker_counts(const stress *s, PGconn *db, outcome *out) {
    if (!reports_usable(s, out)) return true;
    for (long w = 0; w < s->opt.procs; w++) {
        char owner[LEDGER_OWNER_MAX + 1];
        snprintf(owner, sizeof owner, "%s:w%ld", s->owner, w);
        const char *p[1] = {owner};
        int64_t v[2];
        if (!query_i64(db,
                       "SELECT count(*) FILTER (WHERE flags & 16 = 0), count(*) FILTER (WHERE flags & 16 <> 0) "
                       "FROM transfers WHERE owner = $1",
                       1, p, v, 2))
            return false;
        const worker_report *r = &out->reports[w];
        if (v[0] != r->ok_transfers || v[1] < r->ok_expires) {
            char a[32], b[32];
            i64_text(v[0], a, sizeof a);
            i64_text(r->ok_transfers, b, sizeof b);
            parent_issue(out, "worker transfers in the database: %s, accepted results: %s", a, b);
        }
    }
    return true;
}

static void check_database(const stress *s, outcome *out) {
    gl_error e;
    PGconn *db = gl_region_connect(s->region, GL_ROLE_SERVICE, &e);
    if (!db) {
        print_error("connect for checks", &e);
        out->infra = true;
        return;
    }
    out->db_checked = check_accounts(s, db, out) && check_partition(db, out) && check_entries(s, db, out) &&
                      check_batches(s, db, out) && check_worker_counts(s, db, out);
    if (!out->db_checked) out->infra = true;
    PQfinish(db);
}

/* ================================================================ parent: summary */

typedef struct {
    worker_report sum; /* run_ms: the slowest worker's */
    int64_t transfers; /* accepted transfers, from reports or (crash) from the database */
} totals;

/* Accepted transfers per second of load: the slowest worker's batch time when
 * workers reported, else (crash) the time until the kill. */
static double rate(const outcome *out, const totals *t) {
    double secs = t->sum.run_ms > 0 ? (double)t->sum.run_ms / 1000.0 : out->seconds;
    return secs > 0 ? (double)t->transfers / secs : 0.0;
}

static totals sum_reports(const stress *s, const outcome *out) {
    totals t;
    memset(&t, 0, sizeof t);
    for (long w = 0; w < s->opt.procs; w++) {
        if (!out->have_report[w]) continue;
        const worker_report *r = &out->reports[w];
        for (int c = 0; c < LEDGER_CODE_COUNT; c++) t.sum.codes[c] += r->codes[c];
        t.sum.commands += r->commands;
        t.sum.ok_transfers += r->ok_transfers;
        t.sum.ok_expires += r->ok_expires;
        t.sum.due_expired += r->due_expired;
        t.sum.batches_committed += r->batches_committed;
        t.sum.infra_errors += r->infra_errors;
        t.sum.inconsistencies += r->inconsistencies;
        t.sum.in_doubt |= r->in_doubt;
        if (r->run_ms > t.sum.run_ms) t.sum.run_ms = r->run_ms;
    }
    t.transfers = out->n_reports ? t.sum.ok_transfers + t.sum.ok_expires : out->db_worker_transfers;
    return t;
}

static bool passed(const outcome *out, const totals *t) {
    return !out->infra && out->db_checked && out->inconsistencies == 0 && t->sum.inconsistencies == 0 &&
           out->bad_exits == 0 && out->inconsistent_exits == 0 && t->sum.infra_errors == 0;
}

/* " name=count" per refusal code, or "code_name=count\n" lines for the report. */
static void print_codes(FILE *f, const totals *t, bool lines) {
    for (int c = 0; c < LEDGER_CODE_COUNT; c++)
        if (c != LEDGER_OK && t->sum.codes[c])
            fprintf(f, lines ? "code_%s=%" PRId64 "\n" : " %s=%" PRId64, ledger_code_name((ledger_code)c),
                    t->sum.codes[c]);
}

static void print_summary(const stress *s, const outcome *out, const totals *t, int rc) {
    printf("stress: mode=%s region=%s procs=%ld tag=%s commands=%" PRId64 " ok=%" PRId64 " refused{",
           mode_names[s->opt.mode], s->region->name, s->opt.procs, s->tag, t->sum.commands, t->sum.codes[LEDGER_OK]);
    print_codes(stdout, t, false);
    printf(" } expired=%" PRId64 "+%" PRId64 "(due) batches=%" PRId64 " infra_errors=%" PRId64, t->sum.ok_expires,
           t->sum.due_expired, t->sum.batches_committed, t->sum.infra_errors);
    if (s->opt.crash_after_ms) printf(" killed=%d committed_worker_transfers=%" PRId64, out->killed,
                                      out->db_worker_transfers);
    printf(" seconds=%.2f transfers/s=%.0f inconsistencies=%" PRId64 " result=%s\n", out->seconds,
           rate(out, t), out->inconsistencies + t->sum.inconsistencies,
           rc == 0 ? "PASS" : rc == EXIT_INFRA ? "ERROR" : "FAIL");
}

static void write_report(const stress *s, const outcome *out, const totals *t, int rc) {
    if (!s->opt.report) return;
    FILE *f = fopen(s->opt.report, "w");
    if (!f) {
        perror("stress: --report");
        return;
    }
    fprintf(f, "mode=%s\nregion=%s\nprocs=%ld\nbatch_size=%ld\ntag=%s\nowner=%s\n", mode_names[s->opt.mode],
            s->region->name, s->opt.procs, s->opt.batch_size, s->tag, s->owner);
    fprintf(f, "commands=%" PRId64 "\nok=%" PRId64 "\ntransfers=%" PRId64 "\nbatches_committed=%" PRId64 "\n",
            t->sum.commands, t->sum.codes[LEDGER_OK], t->transfers, t->sum.batches_committed);
    fprintf(f, "infra_errors=%" PRId64 "\nin_doubt=%d\nreports=%d\nkilled=%d\n", t->sum.infra_errors,
            t->sum.in_doubt, out->n_reports, out->killed);
    fprintf(f, "db_checked=%d\ndb_transfers=%" PRId64 "\ndb_entries=%" PRId64 "\ndb_worker_transfers=%" PRId64 "\n",
            out->db_checked, out->db_transfers, out->db_entries, out->db_worker_transfers);
    fprintf(f, "db_batches=%" PRId64 "\nseconds=%.3f\ntransfers_per_s=%.0f\n", out->db_batches, out->seconds,
            rate(out, t));
    fprintf(f, "inconsistencies=%" PRId64 "\nresult=%s\n", out->inconsistencies + t->sum.inconsistencies,
            rc == 0 ? "pass" : rc == EXIT_INFRA ? "error" : "fail");
    fprintf(f, "ok_expires=%" PRId64 "\ndue_expired=%" PRId64 "\n", t->sum.ok_expires, t->sum.due_expired);
    print_codes(f, t, true);
    if (fclose(f) != 0) perror("stress: --report");
}

static int finish(const stress *s, const outcome *out) {
    totals t = sum_reports(s, out);
    int rc = passed(out, &t) ? 0 : (out->inconsistencies || t.sum.inconsistencies || out->inconsistent_exits ||
                                    out->bad_exits)
                                       ? EXIT_INCONSISTENT
                                       : EXIT_INFRA;
    if (!s->opt.crash_after_ms && out->n_reports != s->opt.procs)
        fprintf(stderr, "stress: only %d of %ld workers reported\n", out->n_reports, s->opt.procs);
    if (out->bad_exits) fprintf(stderr, "stress: %d workers died unexpectedly\n", out->bad_exits);
    print_summary(s, out, &t, rc);
    write_report(s, out, &t, rc);
    return rc;
}

/* ================================================================ main */

static bool stress_init(stress *s) {
    gl_error e;
    if (!gl_config_load(s->opt.config, &s->cfg, &e)) {
        print_error(s->opt.config, &e);
        return false;
    }
    s->region = gl_region_by_name(&s->cfg, s->opt.region);
    if (!s->region) {
        fprintf(stderr, "stress: no region '%s' in %s\n", s->opt.region, s->opt.config);
        return false;
    }
    if (s->opt.tag) snprintf(s->tag, sizeof s->tag, "%s", s->opt.tag);
    else snprintf(s->tag, sizeof s->tag, "s%llup%ld", s->opt.seed, (long)getpid());
    snprintf(s->owner, sizeof s->owner, "stress:%s", s->tag);
    s->n_accts = (size_t)s->opt.accounts;
    s->ids = calloc(s->n_accts, sizeof *s->ids);
    s->cls = calloc(s->n_accts, sizeof *s->cls);
    if (!s->ids || !s->cls) return false;
    for (size_t i = 0; i < s->n_accts; i++) s->cls[i] = class_of(&s->opt, i);
    /* More than every command of the run could take from one account. */
    s->rich_fund = (int64_t)MAX_AMOUNT * s->opt.procs * s->opt.batches * s->opt.batch_size + MAX_AMOUNT;
    return true;
}

static void stress_free(stress *s) {
    free(s->ids);
    free(s->cls);
    gl_config_free(&s->cfg);
}

int main(int argc, char **argv) {
    stress s;
    memset(&s, 0, sizeof s);
    int rc = parse_options(argc, argv, &s.opt);
    if (rc) return rc < 0 ? 0 : rc;
    signal(SIGPIPE, SIG_IGN);
    outcome out;
    memset(&out, 0, sizeof out);
    out.reports = calloc((size_t)s.opt.procs, sizeof *out.reports);
    out.have_report = calloc((size_t)s.opt.procs, sizeof *out.have_report);
    if (!out.reports || !out.have_report || !stress_init(&s) || !setup(&s) || !run_workers(&s, &out)) rc = EXIT_INFRA;
    if (rc == 0) {
        check_database(&s, &out);
        rc = finish(&s, &out);
    }
    free(out.reports);
    free(out.have_report);
    stress_free(&s);
    return rc;
}
