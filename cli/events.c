/*
 * events.c — `ledgerctl events tail` (read the outbox, and follow it) and
 * `ledgerctl events prune` (retention: delete old events every consumer has
 * passed). The outbox is sql/0011_events.sql; the rules are ledger/outbox.h.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../ledger/audit.h"
#include "../ledger/events.h"
#include "../ledger/outbox.h"
#include "../ledger/pg.h"
#include "../ledger/render.h"

#include "cli.h"

#define TAIL_LIMIT_DEFAULT 100
#define TAIL_LIMIT_MAX 100000000
#define TAIL_PAGE 500
#define TAIL_SCAN 100000
#define FOLLOW_INTERVAL_MS 500 /* between polls of a followed outbox that had nothing new */
#define PRUNE_BATCH 10000
#define PRUNE_DAYS_MAX 36500
#define UNPASSED_WINDOW 1000000 /* seqs counted above the bound, for the report */

/* ---------- tail ---------- */

static volatile sig_atomic_t interrupted;
static void on_interrupt(int sig) {
    (void)sig;
    interrupted = 1;
}

typedef struct {
    const char *region;
    int64_t after;
    int64_t limit; /* events printed in all, then exit */
    bool follow;
} tail_opts;

/* Per region: its connection (NULL: not connected) and how far it was read. */
typedef struct {
    const gl_region *r;
    PGconn *db;
    int64_t cursor;
} tail_src;

static int parse_tail(const cli *c, int argc, char **argv, tail_opts *o) {
    static const struct option longopts[] = {{"region", required_argument, NULL, 'r'},
                                             {"after", required_argument, NULL, 'a'},
                                             {"limit", required_argument, NULL, 'l'},
                                             {"follow", no_argument, NULL, 'f'},
                                             {NULL, 0, NULL, 0}};
    *o = (tail_opts){.limit = TAIL_LIMIT_DEFAULT};
    bool limit_given = false;
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (ch == 'r') o->region = optarg;
        else if (ch == 'f') o->follow = true;
        else if (ch == 'a' && !gl_parse_i64(optarg, 0, LEDGER_EVENTS_SEQ_MAX, &o->after))
            return cli_fail_usage("--after must be a seq (0 or more), got '%s'", optarg);
        else if (ch == 'l' && !(limit_given = gl_parse_i64(optarg, 1, TAIL_LIMIT_MAX, &o->limit)))
            return cli_fail_usage("--limit must be 1..100000000, got '%s'", optarg);
        else if (ch != 'a' && ch != 'l') return cli_fail_usage("events tail: bad option%s", "");
    }
    if (optind < argc) return cli_fail_usage("unexpected argument '%s'", argv[optind]);
    if (o->follow && !limit_given) o->limit = TAIL_LIMIT_MAX; /* follow until interrupted */
    if (o->region && !cli_region_named(c, o->region)) return EXIT_USAGE;
    return 0;
}

/* One line per event: region, seq, time, type, then what it names. */
static void print_event(const cli *c, const gl_region *r, const ledger_event *e) {
    json_t *o = gl_event_json(e, r->name);
    if (c->json) {
        cli_emit_json(o);
        return;
    }
    printf("%s %lld %s %s", r->name, (long long)e->seq, json_string_value(json_object_get(o, "created_at")),
           json_string_value(json_object_get(o, "type")));
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(o, "data"), k, v) {
        if (json_is_string(v)) printf(" %s=%s", k, json_string_value(v));
        else printf(" %s=%lld", k, (long long)json_integer_value(v));
    }
    printf(" id=%s\n", json_string_value(json_object_get(o, "id")));
    json_decref(o);
}

/* Prints what one region has after its cursor, up to `room` events; returns
 * how many, or -1 when the region could not be read (its connection is closed). */
static int tail_page(const cli *c, tail_src *s, int64_t room, ledger_event *buf) {
    gl_error e;
    if (!s->db) s->db = gl_region_connect(s->r, GL_ROLE_REPORT, &e);
    if (!s->db) {
        fprintf(stderr, "ledgerctl: region %s: %s\n", s->r->name, e.message);
        return -1;
    }
    ledger_events_query q = {.after = s->cursor, .limit = room < TAIL_PAGE ? (int)room : TAIL_PAGE, .scan_max = TAIL_SCAN};
    int64_t scanned_to = 0, head = 0;
    int n = ledger_events_list(s->db, &q, buf, &scanned_to, &head, &e);
    if (n < 0) {
        fprintf(stderr, "ledgerctl: region %s: %s\n", s->r->name, e.message);
        PQfinish(s->db);
        s->db = NULL;
        return -1;
    }
    for (int i = 0; i < n; i++) print_event(c, s->r, &buf[i]);
    s->cursor = scanned_to;
    fflush(stdout);
    return n;
}

/* Reads every selected region until each has nothing more (or the limit);
 * returns the events printed, -1 when a region failed and we do not follow. */
static int64_t tail_round(const cli *c, tail_src *src, int n_src, const tail_opts *o, int64_t printed,
                          ledger_event *buf) {
    int64_t round = 0;
    for (int i = 0; i < n_src && !interrupted && printed + round < o->limit; i++) {
        int n;
        do {
            n = tail_page(c, &src[i], o->limit - printed - round, buf);
            if (n < 0 && !o->follow) return -1;
            round += n > 0 ? n : 0;
        } while (n == TAIL_PAGE && printed + round < o->limit && !interrupted);
    }
    return round;
}

static void sleep_ms(int ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL); /* a SIGINT cuts it short */
}

static int cmd_events_tail(cli *c, int argc, char **argv) {
    tail_opts o;
    int rc = parse_tail(c, argc, argv, &o);
    if (rc) return rc;
    int n_src = 0;
    tail_src *src = calloc((size_t)c->cfg.n_regions, sizeof *src);
    ledger_event *buf = calloc(TAIL_PAGE, sizeof *buf);
    if (!src || !buf) {
        free(src);
        free(buf);
        fprintf(stderr, "ledgerctl: out of memory\n");
        return EXIT_INFRA;
    }
    for (int i = 0; i < c->cfg.n_regions; i++)
        if (!o.region || strcmp(o.region, c->cfg.regions[i].name) == 0)
            src[n_src++] = (tail_src){.r = &c->cfg.regions[i], .cursor = o.after};
    struct sigaction sa = {.sa_handler = on_interrupt}; /* no SA_RESTART: the sleep ends at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int64_t printed = 0;
    rc = 0;
    while (!interrupted && printed < o.limit) {
        int64_t got = tail_round(c, src, n_src, &o, printed, buf);
        if (got < 0) {
            rc = EXIT_INFRA;
            break;
        }
        printed += got;
        if (!o.follow) break;
        if (got == 0) sleep_ms(FOLLOW_INTERVAL_MS);
    }
    for (int i = 0; i < n_src; i++)
        if (src[i].db) PQfinish(src[i].db);
    free(src);
    free(buf);
    return rc;
}

/* ---------- prune ---------- */

typedef struct {
    const char *region;
    int64_t days;
    bool dry_run;
} prune_opts;

static int parse_prune(const cli *c, int argc, char **argv, prune_opts *o) {
    static const struct option longopts[] = {{"region", required_argument, NULL, 'r'},
                                             {"older-than", required_argument, NULL, 'o'},
                                             {"dry-run", no_argument, NULL, 'n'},
                                             {NULL, 0, NULL, 0}};
    *o = (prune_opts){.days = -1};
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (ch == 'r') o->region = optarg;
        else if (ch == 'n') o->dry_run = true;
        else if (ch == 'o' && !gl_parse_i64(optarg, 0, PRUNE_DAYS_MAX, &o->days))
            return cli_fail_usage("--older-than must be a number of days, 0..36500, got '%s'", optarg);
        else if (ch != 'o') return cli_fail_usage("events prune: bad option%s", "");
    }
    if (optind < argc) return cli_fail_usage("unexpected argument '%s'", argv[optind]);
    if (o->days < 0) return cli_fail_usage("events prune needs --older-than DAYS%s", "");
    if (o->region && !cli_region_named(c, o->region)) return EXIT_USAGE;
    return 0;
}

/* Pruning events is an admin action: recorded in the batch's own transaction. */
static bool audit_prune(PGconn *db, const ledger_prune_step *p, const ledger_prune_result *res, gl_error *err) {
    char actor[GL_AUDIT_ACTOR_MAX + 1], source[GL_AUDIT_SOURCE_MAX + 1], cutoff[40];
    gl_audit_local_actor(actor, sizeof actor);
    gl_audit_local_source(source, sizeof source);
    gl_format_rfc3339_us(p->cutoff_us, cutoff, sizeof cutoff);
    json_t *detail = json_pack("{s:I,s:I,s:I,s:I,s:s}", "pruned", (json_int_t)res->count, "after",
                               (json_int_t)p->after, "last", (json_int_t)res->last, "bound", (json_int_t)res->bound,
                               "cutoff", cutoff);
    gl_audit_event ev = {.actor = actor, .action = "admin.events.prune", .object = "events", .source = source,
                         .outcome = GL_AUDIT_SUCCESS, .detail = detail};
    bool ok = gl_audit_append(db, &ev, 1, err);
    json_decref(detail);
    return ok;
}

/* One batch: its pruning and its audit record commit together, or neither. */
static bool prune_batch(PGconn *db, const ledger_prune_step *p, ledger_prune_result *res, gl_error *err) {
    if (p->dry_run) return ledger_events_prune_step(db, p, res, err);
    bool ok = gl_pg_run(db, "BEGIN", 0, NULL, err) && ledger_events_prune_step(db, p, res, err) &&
              (res->count == 0 || audit_prune(db, p, res, err)) && gl_pg_run(db, "COMMIT", 0, NULL, err);
    if (!ok) gl_pg_rollback(db);
    return ok;
}

typedef struct {
    int64_t pruned, horizon, bound, unpassed;
    bool unpassed_capped;
    ledger_outbox_status st;
} prune_report;

static void print_prune(const cli *c, const gl_region *r, const prune_opts *o, const prune_report *rep) {
    if (c->json) {
        json_t *cons = json_array();
        for (int i = 0; i < rep->st.n_consumers; i++)
            json_array_append_new(cons, json_pack("{s:s,s:I}", "name", rep->st.consumers[i].name, "position",
                                                  (json_int_t)rep->st.consumers[i].position));
        cli_emit_json(json_pack("{s:s,s:b,s:I,s:I,s:I,s:I,s:b,s:I,s:o}", "region", r->name, "dry_run", o->dry_run,
                                "older_than_days", (json_int_t)o->days, "pruned", (json_int_t)rep->pruned, "bound",
                                (json_int_t)rep->bound, "kept_unpassed", (json_int_t)rep->unpassed,
                                "kept_unpassed_capped", rep->unpassed_capped, "head", (json_int_t)rep->st.head,
                                "consumers", cons));
        return;
    }
    printf("region %s: %s %lld events older than %lld days (the feed %s after seq %lld; every consumer has passed "
           "seq %lld)\n",
           r->name, o->dry_run ? "would prune" : "pruned", (long long)rep->pruned, (long long)o->days,
           o->dry_run ? "would start" : "starts", (long long)rep->horizon, (long long)rep->bound);
    printf("  kept %s%lld older events a consumer has not passed yet; newer events are kept by age (head %lld)\n",
           rep->unpassed_capped ? "at least " : "", (long long)rep->unpassed, (long long)rep->st.head);
    if (rep->st.n_consumers == 0) printf("  no consumers registered: only age decides\n");
    for (int i = 0; i < rep->st.n_consumers; i++)
        printf("  consumer %s at %lld (%lld behind the head)%s\n", rep->st.consumers[i].name,
               (long long)rep->st.consumers[i].position, (long long)(rep->st.head - rep->st.consumers[i].position),
               rep->st.consumers[i].position == rep->bound && rep->unpassed > 0 ? "  <- holds the rest back" : "");
}

/* Batches until one comes back short, then what was kept and why. */
static int prune_region(const cli *c, const gl_region *r, const prune_opts *o, int64_t cutoff_us) {
    PGconn *db = cli_connect_region(c, r, GL_ROLE_SERVICE);
    if (!db) return EXIT_INFRA;
    prune_report rep = {0};
    ledger_prune_step p = {.cutoff_us = cutoff_us, .limit = PRUNE_BATCH, .dry_run = o->dry_run};
    ledger_prune_result res = {0};
    gl_error e;
    bool ok;
    do {
        ok = prune_batch(db, &p, &res, &e);
        if (ok) {
            rep.pruned += res.count;
            rep.horizon = res.last;
            rep.bound = res.bound;
            p.after = res.last;
        }
    } while (ok && res.count == PRUNE_BATCH);
    ok = ok && (rep.unpassed = ledger_events_count_unpassed(db, rep.bound, cutoff_us, UNPASSED_WINDOW,
                                                            &rep.unpassed_capped, &e)) >= 0;
    ok = ok && ledger_outbox_status_read(db, &rep.st, &e);
    PQfinish(db);
    if (!ok) {
        fprintf(stderr, "ledgerctl: region %s: %lld events %s before the failure\n", r->name, (long long)rep.pruned,
                o->dry_run ? "counted" : "pruned");
        return cli_fail_error(c, &e);
    }
    print_prune(c, r, o, &rep);
    return 0;
}

static int cmd_events_prune(cli *c, int argc, char **argv) {
    prune_opts o;
    int rc = parse_prune(c, argc, argv, &o);
    if (rc) return rc;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t cutoff_us = ((int64_t)now.tv_sec - o.days * 86400) * 1000000 + now.tv_nsec / 1000;
    for (int i = 0; i < c->cfg.n_regions && rc == 0; i++)
        if (!o.region || strcmp(o.region, c->cfg.regions[i].name) == 0)
            rc = prune_region(c, &c->cfg.regions[i], &o, cutoff_us);
    return rc;
}

int cmd_events(cli *c, int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "tail") == 0) return cmd_events_tail(c, argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "prune") == 0) return cmd_events_prune(c, argc - 1, argv + 1);
    return cli_fail_usage("events: want 'tail' or 'prune'%s", "");
}
