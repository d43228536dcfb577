/*
 * audit.c — `ledgerctl audit verify|show`: the hash-chained audit log of each
 * region (ledger/audit.h, sql/0005_audit.sql). Both connect as the report
 * role, which can read the log and nothing can write through.
 *
 *   audit verify [--region R [--expect-head SEQ:HASH]]
 *                                        recompute every region's chain, check the
 *                                        other regions' anchors of it; exit 4 on violation
 *   audit anchor                         record every region's head in the other regions' logs
 *   audit show [--region R] [--limit N]  the last N rows (default 20), newest first
 *
 * With --json each prints one JSON object. A chain cut at its end, or rewritten
 * from some row on by someone who can write the table, is still a valid chain:
 * only a head recorded elsewhere shows it. Two ways: `verify` prints each head
 * (pass it back later with --expect-head), and `anchor` (run it from a
 * scheduler) writes each region's head into the other regions' logs as an
 * `audit.anchor` event, which every later `verify` checks. Rows appended after
 * the latest anchor are covered from the next one on.
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
            int64_t v;
            if (!gl_parse_i64(optarg, 1, GL_AUDIT_FETCH_ROWS, &v))
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

/* Adds one violation found outside the chain walk (head or anchor mismatch). */
static void extra_violation(verify_ctx *x, gl_audit_summary *s, const char *kind, int64_t seq, const char *msg) {
    s->violations++;
    if (!x->c->json) {
        printf("VIOLATION region %s audit %s: ", x->region, kind);
        print_escaped(msg);
        putchar('\n');
    } else if (json_array_size(x->listed) < JSON_VIOLATIONS_MAX) {
        json_array_append_new(x->listed, json_pack("{s:s,s:I,s:s}", "kind", kind, "seq", (json_int_t)seq, "message", msg));
    }
}

/* Compares the head recorded earlier; a mismatch is one more violation. */
static bool check_head(PGconn *db, const audit_opts *o, verify_ctx *x, gl_audit_summary *s, gl_error *e) {
    char why[160];
    int same = gl_audit_check_head(db, o->head_seq, o->head_hash, why, sizeof why, e);
    if (same < 0) return false;
    if (!same) extra_violation(x, s, "head_mismatch", o->head_seq, why);
    return true;
}

/* ---------- cross-region anchors ---------- */

#define ANCHOR_ACTION "audit.anchor"

/* "region:<name>": the object of the anchors of a region. */
static void anchor_object(const char *region, char *buf, size_t cap) { snprintf(buf, cap, "region:%s", region); }

/* The latest anchor of region `of` that `holder`'s log holds: 1 found (seq,
 * hash), 0 none, -1 error (or a malformed anchor). The detail is what anchor_into() wrote. */
static int latest_anchor(PGconn *holder, const char *of, int64_t *seq, char hash[GL_AUDIT_HASH_HEX + 1],
                         gl_error *e) {
    char object[GL_AUDIT_OBJECT_MAX];
    anchor_object(of, object, sizeof object);
    const char *p[2] = {ANCHOR_ACTION, object};
    PGresult *r = gl_pg_exec(holder,
                             "SELECT detail FROM audit_log WHERE action = $1 AND object = $2 ORDER BY seq DESC LIMIT 1",
                             2, p, e);
    if (!r) return -1;
    int found = PQntuples(r) == 1;
    if (found) {
        json_t *d = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
        const char *h = json_string_value(json_object_get(d, "hash"));
        *seq = json_integer_value(json_object_get(d, "seq"));
        found = h && strlen(h) == GL_AUDIT_HASH_HEX && *seq > 0 ? 1 : -1;
        if (found > 0) memcpy(hash, h, GL_AUDIT_HASH_HEX + 1);
        else gl_error_set(e, GL_ERR_DB, "a malformed %s event in the audit log", ANCHOR_ACTION);
        json_decref(d);
    }
    PQclear(r);
    return found;
}

/* Checks the latest anchor of region r held by every other region. A region
 * that cannot be read is reported on stderr and skipped: its anchors are a
 * second line of defence, not a reason to fail r's verification. */
static bool check_anchors(const cli *c, const gl_region *r, PGconn *db, verify_ctx *x, gl_audit_summary *s,
                          gl_error *e) {
    for (int i = 0; i < c->cfg.n_regions; i++) {
        const gl_region *holder = &c->cfg.regions[i];
        if (holder == r) continue;
        PGconn *hdb = cli_connect_region(c, holder, GL_ROLE_REPORT);
        int64_t seq = 0;
        char hash[GL_AUDIT_HASH_HEX + 1];
        gl_error he;
        gl_error_clear(&he);
        int found = hdb ? latest_anchor(hdb, r->name, &seq, hash, &he) : -1;
        PQfinish(hdb);
        if (found < 0) {
            fprintf(stderr, "ledgerctl: region %s: cannot read region %s's anchors of it%s%s\n", r->name,
                    holder->name, he.message[0] ? ": " : "", he.message);
            continue;
        }
        if (found == 0) continue;
        char why[160];
        int same = gl_audit_check_head(db, seq, hash, why, sizeof why, e);
        if (same < 0) return false;
        if (!same) {
            char msg[320];
            snprintf(msg, sizeof msg, "region %s's anchor of seq %lld: %s", holder->name, (long long)seq, why);
            extra_violation(x, s, "anchor_mismatch", seq, msg);
        }
    }
    return true;
}

/* The head (last seq and hash) of region r's log; seq 0 when it is empty. */
typedef struct {
    int64_t seq;
    char hash[GL_AUDIT_HASH_HEX + 1];
} head;

static bool on_head_row(void *arg, const gl_audit_row *row) {
    head *h = arg;
    h->seq = row->seq;
    gl_audit_hex(row->hash, h->hash);
    return false;
}

/* Reads every region's head (seq 0: empty); known[i] false where it could not be read. */
static void read_heads(const cli *c, head *heads, bool *known) {
    for (int i = 0; i < c->cfg.n_regions; i++) {
        PGconn *db = cli_connect_region(c, &c->cfg.regions[i], GL_ROLE_REPORT);
        gl_error e;
        known[i] = db && gl_audit_tail(db, 1, on_head_row, &heads[i], &e) >= 0;
        if (db && !known[i]) fprintf(stderr, "ledgerctl: region %s: %s\n", c->cfg.regions[i].name, e.message);
        PQfinish(db);
    }
}

/* Whether region k's log gets an anchor of region i: another region whose head is known and not empty. */
static bool anchorable(int k, int i, const head *heads, const bool *known) {
    return i != k && known[i] && heads[i].seq > 0;
}

/* Appends to region k's log an audit.anchor event per anchorable region, all
 * in one transaction; reports them. */
static bool anchor_into(const cli *c, int k, const head *heads, const bool *known, json_t *anchors) {
    const gl_region *in = &c->cfg.regions[k];
    int n = c->cfg.n_regions, m = 0;
    gl_audit_event *ev = calloc((size_t)n, sizeof *ev);
    char(*objects)[GL_AUDIT_OBJECT_MAX] = calloc((size_t)n, sizeof *objects);
    json_t **details = calloc((size_t)n, sizeof(json_t *));
    char actor[GL_AUDIT_ACTOR_MAX], source[GL_AUDIT_SOURCE_MAX];
    gl_audit_local_actor(actor, sizeof actor);
    gl_audit_local_source(source, sizeof source);
    bool ok = ev && objects && details;
    for (int i = 0; ok && i < n; i++) {
        if (!anchorable(k, i, heads, known)) continue;
        anchor_object(c->cfg.regions[i].name, objects[m], sizeof objects[m]);
        details[m] = json_pack("{s:s,s:I,s:s}", "region", c->cfg.regions[i].name, "seq", (json_int_t)heads[i].seq,
                               "hash", heads[i].hash);
        ev[m] = (gl_audit_event){.actor = actor, .action = ANCHOR_ACTION, .object = objects[m], .source = source,
                                 .outcome = GL_AUDIT_SUCCESS, .detail = details[m]};
        m++;
    }
    gl_error e;
    gl_error_clear(&e);
    PGconn *db = ok && m ? cli_connect_region(c, in, GL_ROLE_ADMIN) : NULL;
    if (ok && m) ok = db && gl_audit_append(db, ev, (size_t)m, &e);
    PQfinish(db);
    if (!ok && e.message[0]) fprintf(stderr, "ledgerctl: region %s: %s\n", in->name, e.message);
    for (int a = 0; a < m; a++) json_decref(details[a]);
    for (int i = 0; ok && i < n; i++) {
        if (!anchorable(k, i, heads, known)) continue;
        const char *region = c->cfg.regions[i].name;
        if (c->json)
            json_array_append_new(anchors, json_pack("{s:s,s:s,s:I,s:s}", "in", in->name, "region", region, "seq",
                                                     (json_int_t)heads[i].seq, "hash", heads[i].hash));
        else
            printf("region %s: anchored %s at seq %lld hash %s\n", in->name, region, (long long)heads[i].seq,
                   heads[i].hash);
    }
    free(ev);
    free(objects);
    free(details);
    return ok;
}

static int audit_anchor(cli *c, int argc, char **argv) {
    if (argc > 1) return cli_fail_usage("audit anchor takes no arguments, got '%s'", argv[1]);
    int n = c->cfg.n_regions;
    head *heads = calloc((size_t)n, sizeof *heads);
    bool *known = calloc((size_t)n, sizeof *known);
    json_t *anchors = json_array();
    bool ok = heads && known && anchors;
    if (ok) read_heads(c, heads, known);
    /* A region that is down is neither anchored nor holds anchors this time;
     * the others still are (exit 3 says so). */
    for (int k = 0; heads && known && k < n; k++) ok = anchor_into(c, k, heads, known, anchors) && ok;
    for (int i = 0; known && i < n; i++) ok = ok && known[i];
    if (c->json && ok) cli_emit_json(json_pack("{s:b,s:o}", "ok", true, "anchors", anchors));
    else json_decref(anchors);
    free(heads);
    free(known);
    return ok ? 0 : EXIT_INFRA;
}

/* Verifies one region; adds its summary to `regions` (--json). False on a database error. */
static bool verify_region(const cli *c, const gl_region *r, const audit_opts *o, json_t *regions,
                          int64_t *violations) {
    PGconn *db = cli_connect_region(c, r, GL_ROLE_REPORT);
    if (!db) return false;
    verify_ctx x = {c, r->name, json_array()};
    gl_audit_summary s;
    gl_error e;
    bool ok = gl_audit_verify(db, on_violation, &x, &s, &e) && (!o->head_seq || check_head(db, o, &x, &s, &e)) &&
              check_anchors(c, r, db, &x, &s, &e);
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
    if (argc < 2) return cli_fail_usage("audit needs verify|anchor|show%s", "");
    if (strcmp(argv[1], "verify") == 0) return audit_verify(c, argc - 1, argv + 1);
    if (strcmp(argv[1], "anchor") == 0) return audit_anchor(c, argc - 1, argv + 1);
    if (strcmp(argv[1], "show") == 0) return audit_show(c, argc - 1, argv + 1);
    return cli_fail_usage("unknown audit command '%s'", argv[1]);
}
