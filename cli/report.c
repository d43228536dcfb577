/*
 * report.c — `ledgerctl report regional`: the regional compliance report of
 * one region (reconciliation/report.h; definitions in reconciliation/README.md).
 *
 *   ledgerctl report regional --region R --from T --to T [--format json|csv|html]
 *             [--out FILE] [--threshold MINOR] [--structuring-count N]
 *             [--structuring-band-pct P] [--max-rows N]
 *
 * Reads that region's partition only, as the read-only report role, in one
 * snapshot. The whole report is built before a byte is written, and --out
 * writes a temporary file that is renamed into place, so a failed run never
 * leaves a partial report. Exit status: 0; 2 usage; 3 database or write
 * error; 4 the report was written but the residency attestation failed.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../reconciliation/report.h"
#include "cli.h"

typedef struct {
    const char *region, *from, *to, *out;
    gl_report_format format;
    gl_report_params params;
} report_opts;

/* An integer in [min, max]; false for anything else (no atoi: junk is an error). */
/* A gl_error about the caller's input, printed as a usage error (exit 2). */
static int fail_invalid(const gl_error *e) {
    int rc = cli_fail_usage("%s", e->message);
    if (e->hint[0]) fprintf(stderr, "HINT: %s\n", e->hint);
    return rc;
}

static int parse_number_opt(int ch, const char *arg, report_opts *o) {
    int64_t v;
    switch (ch) {
    case 't':
        if (!gl_parse_i64(arg, 1, INT64_MAX, &v))
            return cli_fail_usage("--threshold must be a positive integer of minor units, got '%s'", arg);
        o->params.threshold_override = v;
        return 0;
    case 'n':
        if (!gl_parse_i64(arg, 2, GL_REPORT_STRUCTURING_COUNT_MAX, &v))
            return cli_fail_usage("--structuring-count must be 2..1000, got '%s'", arg);
        o->params.structuring_count = (int)v;
        return 0;
    case 'b':
        if (!gl_parse_i64(arg, 1, 99, &v)) return cli_fail_usage("--structuring-band-pct must be 1..99, got '%s'", arg);
        o->params.structuring_band_pct = (int)v;
        return 0;
    default:
        if (!gl_parse_i64(arg, 1, GL_REPORT_ROWS_MAX, &v))
            return cli_fail_usage("--max-rows must be 1..100000, got '%s'", arg);
        o->params.max_rows = (int)v;
        return 0;
    }
}

static int parse_report_opts(int argc, char **argv, report_opts *o) {
    static const struct option longopts[] = {
        {"region", required_argument, NULL, 'r'},
        {"from", required_argument, NULL, 'F'},
        {"to", required_argument, NULL, 'T'},
        {"format", required_argument, NULL, 'f'},
        {"out", required_argument, NULL, 'o'},
        {"threshold", required_argument, NULL, 't'},
        {"structuring-count", required_argument, NULL, 'n'},
        {"structuring-band-pct", required_argument, NULL, 'b'},
        {"max-rows", required_argument, NULL, 'm'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->format = GL_REPORT_JSON;
    gl_report_params_init(&o->params);
    optind = 0; /* glibc: a full re-initialization, as in ledgerctl.c */
    int ch, rc;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'r': o->region = optarg; break;
        case 'F': o->from = optarg; break;
        case 'T': o->to = optarg; break;
        case 'o': o->out = optarg; break;
        case 'f':
            if (!gl_report_format_parse(optarg, &o->format))
                return cli_fail_usage("--format must be json, csv or html, got '%s'", optarg);
            break;
        case 't': case 'n': case 'b': case 'm':
            if ((rc = parse_number_opt(ch, optarg, o))) return rc;
            break;
        default: return cli_fail_usage("%s: bad option", argv[0]);
        }
    }
    if (optind < argc) return cli_fail_usage("unexpected argument '%s'", argv[optind]);
    if (!o->region || !o->from || !o->to) return cli_fail_usage("report regional needs --region, --from and --to%s", "");
    gl_error e;
    gl_error_clear(&e);
    if (!gl_report_parse_time(o->from, &o->params.from_us, &e) || !gl_report_parse_time(o->to, &o->params.to_us, &e) ||
        !gl_report_params_check(&o->params, &e))
        return fail_invalid(&e);
    return 0;
}

/* Writes to a temporary file next to `path` (mode 0600: a report names accounts
 * and owners) and renames it into place once it is complete and synced. */
static bool write_report_file(const gl_report *r, gl_report_format format, const char *path, gl_error *err) {
    size_t n = strlen(path);
    char *tmp = malloc(n + 8);
    if (!tmp) {
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory");
        return false;
    }
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".XXXXXX", 8);
    int fd = mkstemp(tmp);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        gl_error_set(err, GL_ERR_INTERNAL, "cannot create a file next to %.200s: %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        free(tmp);
        return false;
    }
    bool ok = gl_report_write(r, format, f, err);
    if (ok && fsync(fileno(f)) != 0) {
        gl_error_set(err, GL_ERR_INTERNAL, "cannot sync %.200s: %s", tmp, strerror(errno));
        ok = false;
    }
    if (fclose(f) != 0 && ok) {
        gl_error_set(err, GL_ERR_INTERNAL, "cannot write %.200s: %s", tmp, strerror(errno));
        ok = false;
    }
    if (ok && rename(tmp, path) != 0) {
        gl_error_set(err, GL_ERR_INTERNAL, "cannot rename the report to %.200s: %s", path, strerror(errno));
        ok = false;
    }
    if (!ok) unlink(tmp);
    free(tmp);
    return ok;
}

static int report_regional(cli *c, int argc, char **argv) {
    report_opts o;
    int rc = parse_report_opts(argc, argv, &o);
    if (rc) return rc;
    const gl_region *region = cli_region_named(c, o.region);
    if (!region) return EXIT_USAGE;
    PGconn *db = cli_connect_region(c, region, GL_ROLE_REPORT);
    if (!db) return EXIT_INFRA;
    gl_report rep;
    gl_error e;
    gl_error_clear(&e);
    bool built = gl_report_build(db, region, &o.params, &rep, &e);
    PQfinish(db);
    if (!built) {
        cli_fail_error(c, &e);
        return e.kind == GL_ERR_INVALID ? EXIT_USAGE : EXIT_INFRA;
    }
    bool written = o.out ? write_report_file(&rep, o.format, o.out, &e) : gl_report_write(&rep, o.format, stdout, &e);
    bool pass = rep.residency_pass;
    long long exceptions = (long long)rep.exceptions_total;
    gl_report_free(&rep);
    if (!written) return cli_fail_error(c, &e);
    if (!pass) {
        fprintf(stderr, "ledgerctl: region %s: residency attestation FAILED (%lld exceptions, listed in the report)\n",
                region->name, exceptions);
        return EXIT_VIOLATIONS;
    }
    return 0;
}

int cmd_report(cli *c, int argc, char **argv) {
    if (argc < 2) return cli_fail_usage("report needs a kind: regional%s", "");
    if (strcmp(argv[1], "regional") == 0) return report_regional(c, argc - 1, argv + 1);
    return cli_fail_usage("unknown report '%s' (known: regional)", argv[1]);
}
