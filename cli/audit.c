/*
 * audit.c — `ledgerctl audit verify|show`: the hash-chained audit log of each
 * region (ledger/audit.h, sql/0005_audit.sql). Both connect as the report
 * role, which can read the log and nothing can write through.
 *
 *   audit verify [--region R [--expect-head SEQ:HASH]]
 *                                        recompute every region's chain; exit 4 on violation
 *   audit show [--region R] [--limit N]  the last N rows (default 20), newest first
 *
 * With --json each prints one JSON object. `verify` ends with the head of each
 * chain (last seq and hash): record it elsewhere, and pass it back later with
 * --expect-head to detect rows cut from the end or a chain rewritten from some
 * row on, which a chain cannot show by itself.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../ledger/audit.h"
#include "../ledger/pg.h"

#include "cli.h"

#define SHOW_LIMIT_DEFAULT 20
#define JSON_VIOLATIONS_MAX 1000 /* listed per region in --json; all are counted */

typedef struct {
    const char *region;
    int limit;
    int64_t head_seq; /* --expect-head; 0 when not given */
    char head_hash[GL_AUDIT_HASH_HEX + 1];
} audit_opts;

/* SEQ:HASH as printed by `audit verify`. */
static bool parse_head(const char *s, audit_opts *o) {
    char *end;
    errno = 0;
    long long seq = strtoll(s, &end, 10);
    if (errno || end == s || *end != ':' || seq < 1) return false;
    const char *hex = end + 1;
    if (strlen(hex) != GL_AUDIT_HASH_HEX || strspn(hex, "0123456789abcdef") != GL_AUDIT_HASH_HEX)
        return false;
    o->head_seq = seq;
    memcpy(o->head_hash, hex, sizeof o->head_hash);
    return true;
}

/* `verify` takes --expect-head, `show` takes --limit. */
static int parse_audit_opts(const cli *c, int argc, char **argv, audit_opts *o, bool verify) {
    static const struct option longopts[] = {{"region", required_argument, NULL, 'r'},
                                             {"limit", required_argument, NULL, 'l'},
                                             {"expect-head", required_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof *o);
    o->limit = SHOW_LIMIT_DEFAULT;
    optind = 0; /* glibc: full re-initialization */
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (ch == 'r') {
            o->region = optarg;
        } else if (ch == 'h' && verify) {
            if (!parse_head(optarg, o))
                return cli_fail_usage("--expect-head wants SEQ:HASH (64 lower-case hex digits), got '%s'", optarg);
        } else if (ch == 'l' && !verify) {
            char *end;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || *end || end == optarg || v < 1 || v > GL_AUDIT_FETCH_ROWS)
                return cli_fail_usage("--limit must be 1..10000, got '%s'", optarg);
            o->limit = (int)v;
        } else {
            return cli_fail_usage("audit %s: bad option", argv[0]);
        }
    }
    if (optind < argc) return cli_fail_usage("unexpected argument '%s'", argv[optind]);
    if (o->head_seq && !o->region) return cli_fail_usage("--expect-head needs --region%s", "");
    if (o->region && !cli_region_named(c, o->region)) return EXIT_USAGE;
    return 0;
}

/* Whether region `r` is selected by --region (all regions without it). */
static bool selected(const audit_opts *o, const gl_region *r) { return !o->region || strcmp(o->region, r->name) == 0; }

/* Prints `s` on one line: control characters (a forged line break in an actor
 * name, say) come out as \xNN, so every row stays one line. */
static void print_escaped(const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == '\\') printf("\\x%02x", *p);
        else putchar(*p);
    }
}

/* ---------- verify ---------- */

typedef struct {
    const cli *c;
    const char *region;
    json_t *listed; /* --json: the violations listed so far */
} verify_ctx;

static void on_violation(void *arg, const gl_audit_violation *v) {
    verify_ctx *x = arg;
    const char *kind = gl_audit_violation_kind_name(v->kind);
    if (!x->c->json) {
        printf("VIOLATION region %s audit %s: ", x->region, kind);
        print_escaped(v->message);
        putchar('\n');
        return;
    }
    if (json_array_size(x->listed) >= JSON_VIOLATIONS_MAX) return;
    json_t *o = json_pack("{s:s,s:I,s:s}", "kind", kind, "seq", (json_int_t)v->seq, "message", v->message);
    if (o && v->expected_seq) json_object_set_new(o, "expected_seq", json_integer(v->expected_seq));
    json_array_append_new(x->listed, o);
}

static void print_verify_summary(const char *region, const gl_audit_summary *s) {
    if (s->violations)
        printf("region %s: audit log VIOLATED: %lld violation(s) in %lld rows; head seq %lld hash %s\n", region,
               (long long)s->violations, (long long)s->rows, (long long)s->last_seq, s->last_hash_hex);
    else
        printf("region %s: audit log intact: %lld rows; head seq %lld hash %s\n", region, (long long)s->rows,
               (long long)s->last_seq, s->last_hash_hex);
}

/* Compares the head recorded earlier; a mismatch is one more violation. */
static bool check_head(PGconn *db, const audit_opts *o, verify_ctx *x, gl_audit_summary *s, gl_error *e) {
    char why[160];
    int same = gl_audit_check_head(db, o->head_seq, o->head_hash, why, sizeof why, e);
    if (same < 0) return false;
    if (!same) {
        s->violations++;
        if (x->c->json) {
            if (json_array_size(x->listed) < JSON_VIOLATIONS_MAX)
                json_array_append_new(x->listed, json_pack("{s:s,s:I,s:s}", "kind", "head_mismatch", "seq",
                                                           (json_int_t)o->head_seq, "message", why));
        } else {
            printf("VIOLATION region %s audit head_mismatch: %s\n", x->region, why);
        }
    }
    return true;
}

/* Verifies one region; adds its summary to `regions` (--json). False on a database error. */
static bool verify_region(const cli *c, const gl_region *r, const audit_opts *o, json_t *regions,
                          int64_t *violations) {
    PGconn *db = cli_connect_region(c, r, GL_ROLE_REPORT);
    if (!db) return false;
    verify_ctx x = {c, r->name, json_array()};
    gl_audit_summary s;
    gl_error e;
    bool ok = gl_audit_verify(db, on_violation, &x, &s, &e) && (!o->head_seq || check_head(db, o, &x, &s, &e));
    PQfinish(db);
    if (!ok) {
        json_decref(x.listed);
        fprintf(stderr, "ledgerctl: region %s: ", r->name);
        cli_fail_error(c, &e);
        return false;
    }
    *violations += s.violations;
    if (c->json)
        json_array_append_new(regions, json_pack("{s:s,s:b,s:I,s:I,s:s,s:I,s:o}", "region", r->name, "ok",
                                                 s.violations == 0, "rows", (json_int_t)s.rows, "last_seq",
                                                 (json_int_t)s.last_seq, "last_hash", s.last_hash_hex,
                                                 "violations_total", (json_int_t)s.violations, "violations",
                                                 x.listed));
    else {
        json_decref(x.listed);
        print_verify_summary(r->name, &s);
    }
    return true;
}

static int audit_verify(cli *c, int argc, char **argv) {
    audit_opts o;
    int rc = parse_audit_opts(c, argc, argv, &o, true);
    if (rc) return rc;
    json_t *regions = json_array();
    int64_t violations = 0;
    for (int i = 0; i < c->cfg.n_regions; i++) {
        const gl_region *r = &c->cfg.regions[i];
        if (!selected(&o, r)) continue;
        if (!verify_region(c, r, &o, regions, &violations)) {
            json_decref(regions);
            return EXIT_INFRA;
        }
    }
    if (c->json)
        cli_emit_json(json_pack("{s:b,s:I,s:o}", "ok", violations == 0, "violations", (json_int_t)violations,
                                "regions", regions));
    else json_decref(regions);
    return violations ? EXIT_VIOLATIONS : 0;
}

/* ---------- show ---------- */

typedef struct {
    const cli *c;
    const char *region;
    json_t *rows; /* --json */
} show_ctx;

static json_t *row_json(const char *region, const gl_audit_row *row) {
    char at[40], prev[GL_AUDIT_HASH_HEX + 1], hash[GL_AUDIT_HASH_HEX + 1];
    gl_format_rfc3339_us(row->at_us, at, sizeof at);
    gl_audit_hex(row->prev_hash, prev);
    gl_audit_hex(row->hash, hash);
    /* The detail as JSON when it parses (it always should), else as the stored text. */
    json_t *detail = json_loads(row->detail, 0, NULL);
    if (!detail) detail = json_string(row->detail);
    return json_pack("{s:s,s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:s}", "region", region, "seq", (json_int_t)row->seq,
                     "at", at, "actor", row->actor, "action", row->action, "object", row->object, "source",
                     row->source, "outcome", row->outcome, "detail", detail, "prev_hash", prev, "hash", hash);
}

static bool on_row(void *arg, const gl_audit_row *row) {
    const show_ctx *x = arg;
    if (x->c->json) {
        json_array_append_new(x->rows, row_json(x->region, row));
        return true;
    }
    char at[40];
    gl_format_rfc3339_us(row->at_us, at, sizeof at);
    printf("%s #%lld %s %s ", x->region, (long long)row->seq, at, row->outcome);
    const char *labels[] = {"actor=", " action=", " object=", " source=", " detail="};
    const char *values[] = {row->actor, row->action, row->object, row->source, row->detail};
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++) {
        fputs(labels[i], stdout);
        print_escaped(values[i]);
    }
    putchar('\n');
    return true;
}

static int audit_show(cli *c, int argc, char **argv) {
    audit_opts o;
    int rc = parse_audit_opts(c, argc, argv, &o, false);
    if (rc) return rc;
    json_t *rows = json_array();
    for (int i = 0; i < c->cfg.n_regions; i++) {
        const gl_region *r = &c->cfg.regions[i];
        if (!selected(&o, r)) continue;
        PGconn *db = cli_connect_region(c, r, GL_ROLE_REPORT);
        if (!db) {
            json_decref(rows);
            return EXIT_INFRA;
        }
        show_ctx x = {c, r->name, rows};
        gl_error e;
        int n = gl_audit_tail(db, o.limit, on_row, &x, &e);
        PQfinish(db);
        if (n < 0) {
            json_decref(rows);
            fprintf(stderr, "ledgerctl: region %s: ", r->name);
            return cli_fail_error(c, &e);
        }
        if (!c->json && n == 0) printf("%s: the audit log is empty\n", r->name);
    }
    if (c->json) cli_emit_json(json_pack("{s:o}", "rows", rows));
    else json_decref(rows);
    return 0;
}

int cmd_audit(cli *c, int argc, char **argv) {
    if (argc < 2) return cli_fail_usage("audit needs verify|show%s", "");
    if (strcmp(argv[1], "verify") == 0) return audit_verify(c, argc - 1, argv + 1);
    if (strcmp(argv[1], "show") == 0) return audit_show(c, argc - 1, argv + 1);
    return cli_fail_usage("unknown audit command '%s'", argv[1]);
}
