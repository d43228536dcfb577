/*
 * recon.c — `ledgerctl recon run` and `ledgerctl recon decrypt`.
 *
 *   recon run --region R --source stripe|adyen|generic --file F --account ID
 *             [--from T --to T] [--out DIR] [--pan-keys F] [--seal-keys F]
 *             [--window-hours N] [--memory-mb N] [--work-dir DIR]
 *   recon decrypt FILE [--seal-keys F] [--out F]
 *
 * The job connects as the reconciliation role (reads the ledger, writes only
 * recon tables and the audit log). Key files default to $GEOLEDGER_PAN_KEYS and
 * $GEOLEDGER_SEAL_KEYS. Exit status: 0 clean, 4 unexplained breaks or malformed
 * lines remain, 2 usage, 3 the run failed.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../ledger/audit.h"
#include "../ledger/pg.h"
#include "../reconciliation/recon.h"
#include "../reconciliation/report.h"
#include "cli.h"

#define DAY_US (86400LL * 1000000)

typedef struct {
    const char *region, *source, *file, *account, *from, *to, *out, *pan_keys, *seal_keys, *work_dir;
    int64_t window_h, memory_mb;
} recon_opts;

static int parse_run_opts(int argc, char **argv, recon_opts *o) {
    static const struct option longopts[] = {
        {"region", required_argument, NULL, 'r'},   {"source", required_argument, NULL, 's'},
        {"file", required_argument, NULL, 'f'},     {"account", required_argument, NULL, 'a'},
        {"from", required_argument, NULL, 'F'},     {"to", required_argument, NULL, 'T'},
        {"out", required_argument, NULL, 'o'},      {"pan-keys", required_argument, NULL, 'p'},
        {"seal-keys", required_argument, NULL, 'k'}, {"window-hours", required_argument, NULL, 'w'},
        {"memory-mb", required_argument, NULL, 'm'}, {"work-dir", required_argument, NULL, 'W'},
        {NULL, 0, NULL, 0}};
    o->window_h = GL_RECON_DEFAULT_WINDOW_S / 3600;
    o->memory_mb = GL_RECON_DEFAULT_MEMORY_MB;
    o->out = ".";
    o->pan_keys = getenv("GEOLEDGER_PAN_KEYS");
    o->seal_keys = getenv("GEOLEDGER_SEAL_KEYS");
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'r': o->region = optarg; break;
        case 's': o->source = optarg; break;
        case 'f': o->file = optarg; break;
        case 'a': o->account = optarg; break;
        case 'F': o->from = optarg; break;
        case 'T': o->to = optarg; break;
        case 'o': o->out = optarg; break;
        case 'p': o->pan_keys = optarg; break;
        case 'k': o->seal_keys = optarg; break;
        case 'W': o->work_dir = optarg; break;
        case 'w':
            if (!gl_parse_i64(optarg, 0, 24LL * 366, &o->window_h)) return cli_fail_usage("--window-hours: 0..8784, not '%s'", optarg);
            break;
        case 'm':
            if (!gl_parse_i64(optarg, 8, 65536, &o->memory_mb)) return cli_fail_usage("--memory-mb: 8..65536, not '%s'", optarg);
            break;
        default: return cli_fail_usage("%s", "recon run: bad option");
        }
    }
    if (optind < argc) return cli_fail_usage("recon run: unexpected argument '%s'", argv[optind]);
    const char *missing = !o->region ? "--region" : !o->source ? "--source" : !o->file ? "--file"
                          : !o->account ? "--account" : !o->pan_keys ? "--pan-keys (or $GEOLEDGER_PAN_KEYS)"
                          : !o->seal_keys ? "--seal-keys (or $GEOLEDGER_SEAL_KEYS)" : NULL;
    if (missing) return cli_fail_usage("recon run: %s is required", missing);
    if ((o->from == NULL) != (o->to == NULL)) return cli_fail_usage("%s", "recon run: give both --from and --to, or neither");
    return 0;
}

/* Default period: yesterday, UTC. */
static bool period(const recon_opts *ro, int64_t *from, int64_t *to, gl_error *e) {
    if (!ro->from) {
        int64_t today = (int64_t)time(NULL) / 86400 * DAY_US;
        *from = today - DAY_US;
        *to = today;
        return true;
    }
    if (!gl_report_parse_time(ro->from, from, e) || !gl_report_parse_time(ro->to, to, e)) return false;
    if (*from >= *to) {
        gl_error_set(e, GL_ERR_INVALID, "the period is empty: --to must be after --from");
        return false;
    }
    return true;
}

static void print_summary(const cli *c, const gl_recon_summary *s) {
    char id[GL_ID_STR_LEN + 1];
    gl_id_format(&s->run_id, id);
    if (c->json) {
        json_t *classes = json_object();
        for (int k = 0; k < GL_BREAK_CLASSES; k++)
            json_object_set_new(classes, gl_break_class_name((gl_break_class)k), json_integer((json_int_t)s->by_class[k]));
        json_t *timings = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "partitions", (json_int_t)s->partitions,
                                    "file_ms", (json_int_t)s->file_ms,
                                    "file_cpu_ms", (json_int_t)s->file_cpu_ms, "ledger_ms", (json_int_t)s->ledger_ms,
                                    "ledger_cpu_ms", (json_int_t)s->ledger_cpu_ms, "match_ms", (json_int_t)s->match_ms,
                                    "output_ms", (json_int_t)s->output_ms);
        cli_emit_json(json_pack("{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:s,s:s,s:o}", "run_id", id, "lines",
                                (json_int_t)s->lines, "malformed_lines", (json_int_t)s->malformed, "pans_masked",
                                (json_int_t)s->pans_masked, "ledger_transfers", (json_int_t)s->ledger_transfers,
                                "matched", (json_int_t)s->matched, "matched_by_amount", (json_int_t)s->matched_by_amount,
                                "breaks", (json_int_t)s->breaks, "unexplained", (json_int_t)s->unexplained, "by_class",
                                classes, "report_json", s->json_path, "report_csv", s->csv_path, "timings", timings));
        return;
    }
    printf("recon run %s\n", id);
    printf("  settlement lines   %llu (%llu malformed, %llu card numbers masked)\n", (unsigned long long)s->lines,
           (unsigned long long)s->malformed, (unsigned long long)s->pans_masked);
    printf("  ledger transfers   %llu in the period\n", (unsigned long long)s->ledger_transfers);
    printf("  matched            %llu by reference, %llu by amount and time\n", (unsigned long long)s->matched,
           (unsigned long long)s->matched_by_amount);
    printf("  breaks             %llu (%llu unexplained)\n", (unsigned long long)s->breaks,
           (unsigned long long)s->unexplained);
    for (int k = 0; k < GL_BREAK_CLASSES; k++)
        if (s->by_class[k])
            printf("    %-22s %llu\n", gl_break_class_name((gl_break_class)k), (unsigned long long)s->by_class[k]);
    printf("  reports (sealed)   %s\n                     %s\n", s->json_path, s->csv_path);
}

static int recon_run(cli *c, int argc, char **argv) {
    recon_opts ro = {0};
    int rc = parse_run_opts(argc, argv, &ro);
    if (rc) return rc;
    gl_recon_options o = {.file_path = ro.file, .out_dir = ro.out, .work_dir = ro.work_dir,
                          .window_us = ro.window_h * 3600 * 1000000, .memory_budget = (size_t)ro.memory_mb << 20};
    if (!gl_settlement_source_parse(ro.source, &o.source))
        return cli_fail_usage("recon run: --source must be stripe, adyen or generic, not '%s'", ro.source);
    if (!gl_id_parse(ro.account, &o.clearing_account)) return cli_fail_usage("recon run: --account '%s' is not an id", ro.account);
    const gl_region *r = cli_region_named(c, ro.region);
    if (!r) return EXIT_USAGE;
    gl_error e;
    if (!period(&ro, &o.from_us, &o.to_us, &e)) return cli_fail_usage("recon run: %s", e.message);
    /* An id of no configured region (NULL) is not this region's either. */
    if (gl_region_of_id(&c->cfg, &o.clearing_account) != r)
        return cli_fail_usage("recon run: the account %s does not live in this region", ro.account);
    static gl_pan_keyring pan;
    static gl_seal_keyring seal;
    if (!gl_pan_keyring_load(ro.pan_keys, &pan, &e) || !gl_seal_keyring_load(ro.seal_keys, &seal, &e))
        return cli_fail_error(c, &e);
    o.pan_keys = &pan;
    o.seal_keys = &seal;
    char actor[GL_AUDIT_ACTOR_MAX + 1], source[GL_AUDIT_SOURCE_MAX + 1];
    gl_audit_local_actor(actor, sizeof actor);
    gl_audit_local_source(source, sizeof source);
    o.operator_name = actor;
    o.host = source;
    PGconn *db = cli_connect_region(c, r, GL_ROLE_RECON);
    gl_recon_summary sum;
    bool ok = db && gl_recon_run(db, &o, &sum, &e);
    PQfinish(db);
    gl_pan_keyring_clear(&pan);
    gl_seal_keyring_clear(&seal);
    if (!db) return EXIT_INFRA;
    if (!ok) return cli_fail_error(c, &e);
    print_summary(c, &sum);
    return sum.unexplained || sum.malformed ? EXIT_VIOLATIONS : 0;
}

/* Decrypts to a temporary file next to the target and renames it into place
 * only once every chunk verified: a tampered file leaves nothing behind. */
static int recon_decrypt(cli *c, int argc, char **argv) {
    static const struct option longopts[] = {{"seal-keys", required_argument, NULL, 'k'},
                                             {"out", required_argument, NULL, 'o'},
                                             {NULL, 0, NULL, 0}};
    const char *keys = getenv("GEOLEDGER_SEAL_KEYS"), *out = NULL;
    optind = 1;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (ch == 'k') keys = optarg;
        else if (ch == 'o') out = optarg;
        else return cli_fail_usage("%s", "recon decrypt: bad option");
    }
    if (optind != argc - 1) return cli_fail_usage("%s", "recon decrypt: give one FILE");
    if (!keys) return cli_fail_usage("%s", "recon decrypt: --seal-keys (or $GEOLEDGER_SEAL_KEYS) is required");
    static gl_seal_keyring ring;
    gl_error e;
    if (!gl_seal_keyring_load(keys, &ring, &e)) return cli_fail_error(c, &e);
    FILE *in = fopen(argv[optind], "rb");
    if (!in) {
        gl_error_set(&e, GL_ERR_INVALID, "cannot open %s", argv[optind]);
        gl_seal_keyring_clear(&ring);
        return cli_fail_error(c, &e);
    }
    char tmp[4200];
    FILE *f = stdout;
    if (out) {
        snprintf(tmp, sizeof tmp, "%s.tmp", out);
        f = fopen(tmp, "wb");
    }
    bool ok = f && gl_sealed_decrypt_stream(in, f, &ring, &e);
    if (!f) gl_error_set(&e, GL_ERR_INVALID, "cannot create %s", tmp);
    fclose(in);
    gl_seal_keyring_clear(&ring);
    if (out && f) {
        ok = fclose(f) == 0 && ok;
        if (ok && rename(tmp, out) != 0) ok = false;
        if (!ok) unlink(tmp);
    }
    return ok ? 0 : cli_fail_error(c, &e);
}

int cmd_recon(cli *c, int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "run") == 0) return recon_run(c, argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "decrypt") == 0) return recon_decrypt(c, argc - 1, argv + 1);
    return cli_fail_usage("%s", "recon: use 'recon run' or 'recon decrypt'");
}
