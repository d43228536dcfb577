/*
 * ledgerctl — operator CLI for geoledger.
 *
 * Reading order: main() parses the global options, finds the subcommand in
 * `commands`, and each cmd_* function builds ledger commands, routes them to
 * the home region (regions/route.h) and prints the outcome as text or JSON.
 *
 * Exit status: 0 success; 1 the ledger refused the command (its result code is
 * printed); 2 usage error; 3 configuration or database error; 4 verify found
 * violations.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "../ledger/audit.h"
#include "../ledger/currency.h"
#include "../ledger/kinds.h"
#include "../ledger/ledger.h"
#include "../ledger/migrate.h"
#include "../regions/regions.h"
#include "../regions/route.h"
#include "../auth/authconf.h"
#include "../ledger/render.h"

#include "cli.h"

#define DEFAULT_OWNER "operator"

static void print_account(const cli *c, const ledger_account *a) {
    const char *region = gl_region_name_of_id(&c->cfg, &a->id);
    if (c->json) {
        cli_emit_json(gl_account_json(a, region));
        return;
    }
    char id[GL_ID_STR_LEN + 1];
    gl_id_format(&a->id, id);
    printf("account %s\n  region %s  currency %s  owner %s  kind %s  version %lld%s\n", id, region ? region : "?",
           a->currency, a->owner, a->kind, (long long)a->version, (a->flags & LEDGER_AF_CLOSED) ? "  CLOSED" : "");
    printf("  debits  posted %lld  pending %lld\n  credits posted %lld  pending %lld\n", (long long)a->debits_posted,
           (long long)a->debits_pending, (long long)a->credits_posted, (long long)a->credits_pending);
    printf("  posted %lld  available %lld  (credits - debits, minor units)\n",
           (long long)(a->credits_posted - a->debits_posted),
           (long long)(a->credits_posted - a->debits_posted - a->debits_pending));
}

static void print_transfer(const cli *c, const ledger_transfer *t) {
    if (c->json) {
        cli_emit_json(gl_transfer_json(t));
        return;
    }
    char id[GL_ID_STR_LEN + 1], dr[GL_ID_STR_LEN + 1], cr[GL_ID_STR_LEN + 1];
    gl_id_format(&t->id, id);
    gl_id_format(&t->debit_account_id, dr);
    gl_id_format(&t->credit_account_id, cr);
    printf("transfer %s  %s\n  %lld %s  from %s\n  to %s\n  reference %s  reversed %lld  created %s\n", id, t->status,
           (long long)t->amount, t->currency, dr, cr, t->reference[0] ? t->reference : "-",
           (long long)t->amount_reversed, t->created_at);
}

/* Prints one command's outcome; returns the exit status it implies. */
static int print_result(const cli *c, const char *what, const ledger_result *r) {
    bool ok = r->code == LEDGER_OK || r->code == LEDGER_EXISTS;
    if (c->json) {
        cli_emit_json(json_pack("{s:s,s:s,s:o}", "result", ledger_code_name(r->code), "object", what, "id", gl_id_json(&r->id)));
    } else if (ok) {
        char id[GL_ID_STR_LEN + 1];
        gl_id_format(&r->id, id);
        printf("%s %s%s\n", what, id, r->code == LEDGER_EXISTS ? " (exists: replay of an earlier request)" : "");
    } else {
        fprintf(stderr, "ledgerctl: %s refused: %s\n", what, ledger_code_name(r->code));
    }
    return ok ? 0 : EXIT_REFUSED;
}

/* ---------- argument parsing ---------- */

static bool copy_arg(char *dst, size_t cap, const char *src) {
    size_t n = strlen(src);
    if (n >= cap) return false;
    memcpy(dst, src, n + 1);
    return true;
}

static bool parse_account_flags(const char *s, uint32_t *flags) {
    char buf[256];
    if (!copy_arg(buf, sizeof buf, s)) return false;
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (strcmp(tok, "debits_must_not_exceed_credits") == 0) *flags |= LEDGER_AF_DEBITS_MUST_NOT_EXCEED_CREDITS;
        else if (strcmp(tok, "credits_must_not_exceed_debits") == 0)
            *flags |= LEDGER_AF_CREDITS_MUST_NOT_EXCEED_DEBITS;
        else return false;
    }
    return true;
}

/* Shared options of commands that write. */
typedef struct {
    const char *region, *owner, *reference, *metadata, *currency, *kind, *flags, *as_of;
    const char *from, *to, *amount, *timeout, *after, *limit;
    bool pending;
} opts;

static int parse_opts(int argc, char **argv, opts *o, int *first_positional) {
    static const struct option longopts[] = {
        {"region", required_argument, NULL, 'r'},    {"owner", required_argument, NULL, 'o'},
        {"reference", required_argument, NULL, 'R'}, {"metadata", required_argument, NULL, 'm'},
        {"currency", required_argument, NULL, 'c'},  {"kind", required_argument, NULL, 'k'},
        {"flags", required_argument, NULL, 'f'},     {"as-of", required_argument, NULL, 'A'},
        {"from", required_argument, NULL, 'F'},      {"to", required_argument, NULL, 'T'},
        {"amount", required_argument, NULL, 'a'},    {"timeout", required_argument, NULL, 't'},
        {"after-version", required_argument, NULL, 'V'}, {"limit", required_argument, NULL, 'l'},
        {"pending", no_argument, NULL, 'p'},         {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    optind = 0; /* 0, not 1: glibc then fully re-initializes (and permutes options after ids) */
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'r': o->region = optarg; break;
        case 'o': o->owner = optarg; break;
        case 'R': o->reference = optarg; break;
        case 'm': o->metadata = optarg; break;
        case 'c': o->currency = optarg; break;
        case 'k': o->kind = optarg; break;
        case 'f': o->flags = optarg; break;
        case 'A': o->as_of = optarg; break;
        case 'F': o->from = optarg; break;
        case 'T': o->to = optarg; break;
        case 'a': o->amount = optarg; break;
        case 't': o->timeout = optarg; break;
        case 'V': o->after = optarg; break;
        case 'l': o->limit = optarg; break;
        case 'p': o->pending = true; break;
        default: return cli_fail_usage("%s: bad option", argv[0]);
        }
    }
    *first_positional = optind;
    return 0;
}

static int need_id(int argc, char **argv, int pos, gl_id *id) {
    if (pos >= argc) return cli_fail_usage("%s: missing id", argv[0]);
    if (pos + 1 < argc) return cli_fail_usage("unexpected argument '%s'", argv[pos + 1]);
    if (!gl_id_parse(argv[pos], id)) return cli_fail_usage("'%s' is not a UUID", argv[pos]);
    return 0;
}

static int set_common(ledger_cmd *cmd, const opts *o) {
    if (!copy_arg(cmd->owner, sizeof cmd->owner, o->owner ? o->owner : DEFAULT_OWNER))
        return cli_fail_usage("--owner is longer than %s characters", "128");
    if (o->reference && !copy_arg(cmd->reference, sizeof cmd->reference, o->reference))
        return cli_fail_usage("--reference is longer than %s characters", "128");
    if (o->metadata) {
        json_error_t je;
        json_t *m = json_loads(o->metadata, JSON_REJECT_DUPLICATES, &je);
        bool object = json_is_object(m);
        json_decref(m);
        if (!object) return cli_fail_usage("--metadata must be a JSON object: %s", je.text);
        cmd->metadata = o->metadata;
    }
    return 0;
}

/* An operator's command is an admin action (PCI DSS 10.2.1.2): audited as
 * "admin.<object>.<verb>" by the OS user, from this host and process. */
static const char *admin_action(ledger_cmd_kind k) {
    switch (k) {
    case LEDGER_CMD_CREATE_ACCOUNT: return "admin.account.create";
    case LEDGER_CMD_CLOSE_ACCOUNT: return "admin.account.close";
    case LEDGER_CMD_TRANSFER: return "admin.transfer.create";
    case LEDGER_CMD_POST: return "admin.transfer.post";
    case LEDGER_CMD_VOID: return "admin.transfer.void";
    case LEDGER_CMD_EXPIRE: return "admin.transfer.expire";
    case LEDGER_CMD_REVERSE: return "admin.transfer.reverse";
    }
    return "admin.command";
}

static bool audit_command(PGconn *db, const ledger_cmd *cmd, const ledger_result *res, const char *failure,
                          gl_error *err) {
    char actor[GL_AUDIT_ACTOR_MAX + 1], source[GL_AUDIT_SOURCE_MAX + 1], object[GL_ID_STR_LEN + 1] = "";
    gl_audit_local_actor(actor, sizeof actor);
    gl_audit_local_source(source, sizeof source);
    bool done = res && (res->code == LEDGER_OK || res->code == LEDGER_EXISTS);
    const gl_id *id = done ? &res->id : &cmd->target_id;
    if (!gl_id_is_nil(id)) gl_id_format(id, object);
    json_t *detail = json_pack("{s:s,s:s,s:I}", "result", res ? ledger_code_name(res->code) : failure, "owner",
                               cmd->owner, "amount", (json_int_t)cmd->amount);
    gl_audit_event ev = {.actor = actor, .action = admin_action(cmd->kind), .object = object, .source = source,
                         .outcome = done ? GL_AUDIT_SUCCESS : GL_AUDIT_FAILURE, .detail = detail};
    bool ok = gl_audit_append(db, &ev, 1, err);
    json_decref(detail);
    return ok;
}

/* Appends the audit event inside the command's own transaction: the effect
 * and its record commit together, or neither does. */
static bool audit_before_commit(void *arg, PGconn *db, const ledger_result *results, size_t n, gl_error *err) {
    return n == 1 && audit_command(db, arg, results, NULL, err);
}

/* Runs one command in its home region and prints the outcome. */
static int run_one(const cli *c, const gl_region *r, const ledger_cmd *cmd, const char *what) {
    PGconn *db = cli_connect_region(c, r, GL_ROLE_SERVICE);
    if (!db) return EXIT_INFRA;
    ledger_result res;
    gl_error e;
    bool ok = gl_route_execute_hooked(&c->cfg, r, db, cmd, 1, &res, audit_before_commit, (void *)cmd, &e);
    if (!ok) {
        gl_error ae; /* the failure is recorded too; the command's own error is the one reported */
        audit_command(db, cmd, NULL, e.message, &ae);
    }
    PQfinish(db);
    return ok ? print_result(c, what, &res) : cli_fail_error(c, &e);
}

/* ---------- commands ---------- */

static void migrate_log(void *arg, const char *version, const char *name, bool applied_now) {
    const cli *c = arg;
    if (!c->json) printf("  %s %s%s\n", version, name, applied_now ? "  applied" : "  ok");
}

/* Schema changes are admin actions: recorded once they are in (not on a no-op run). */
static bool audit_migration(PGconn *db, int applied, gl_error *err) {
    char actor[GL_AUDIT_ACTOR_MAX + 1], source[GL_AUDIT_SOURCE_MAX + 1];
    gl_audit_local_actor(actor, sizeof actor);
    gl_audit_local_source(source, sizeof source);
    json_t *detail = json_pack("{s:i}", "applied", applied);
    gl_audit_event ev = {.actor = actor, .action = "admin.migrate", .object = "schema", .source = source,
                         .outcome = GL_AUDIT_SUCCESS, .detail = detail};
    bool ok = gl_audit_append(db, &ev, 1, err);
    json_decref(detail);
    return ok;
}

static int cmd_migrate(cli *c, int argc, char **argv) {
    opts o;
    int pos = 0, rc = parse_opts(argc, argv, &o, &pos);
    if (rc) return rc;
    json_t *out = json_array();
    for (int i = 0; i < c->cfg.n_regions; i++) {
        const gl_region *r = &c->cfg.regions[i];
        if (o.region && strcmp(o.region, r->name) != 0) continue;
        if (!c->json) printf("region %s:\n", r->name);
        PGconn *db = cli_connect_region(c, r, GL_ROLE_ADMIN);
        if (!db) return EXIT_INFRA;
        gl_error e;
        int n = ledger_migrate(db, c->cfg.migrations_dir, r->code, r->name, migrate_log, c, &e);
        if (n > 0 && !audit_migration(db, n, &e)) n = -1;
        PQfinish(db);
        if (n < 0) {
            json_decref(out);
            fprintf(stderr, "ledgerctl: region %s: ", r->name);
            return cli_fail_error(c, &e);
        }
        json_array_append_new(out, json_pack("{s:s,s:i}", "region", r->name, "applied", n));
    }
    if (c->json) cli_emit_json(out);
    else json_decref(out);
    return 0;
}

static int cmd_account_create(cli *c, int argc, char **argv) {
    opts o;
    int pos = 0, rc = parse_opts(argc, argv, &o, &pos);
    if (rc) return rc;
    if (!o.region || !o.currency) return cli_fail_usage("account create needs --region and --currency%s", "");
    const gl_region *r = cli_region_named(c, o.region);
    if (!r) return EXIT_USAGE;
    ledger_cmd cmd;
    ledger_cmd_init(&cmd, LEDGER_CMD_CREATE_ACCOUNT);
    if ((rc = set_common(&cmd, &o))) return rc;
    if (!copy_arg(cmd.currency, sizeof cmd.currency, o.currency) || !gl_currency_find(cmd.currency))
        return cli_fail_usage("'%s' is not an ISO 4217 currency code", o.currency);
    if (o.kind && !copy_arg(cmd.account_kind, sizeof cmd.account_kind, o.kind))
        return cli_fail_usage("--kind '%s' is too long", o.kind);
    if (o.flags && !parse_account_flags(o.flags, &cmd.account_flags))
        return cli_fail_usage("--flags '%s': use debits_must_not_exceed_credits and/or credits_must_not_exceed_debits",
                          o.flags);
    /* The kinds of ledger/kinds.h mean here what they mean to ledgerd: one
     * that never goes below zero carries its floor flag (other kinds, for
     * operators' own purposes, take the flags given). */
    const gl_account_kind *k = gl_account_kind_find(cmd.account_kind);
    uint32_t floor = k ? gl_account_kind_floor_flag(k) : 0;
    uint32_t limits = LEDGER_AF_DEBITS_MUST_NOT_EXCEED_CREDITS | LEDGER_AF_CREDITS_MUST_NOT_EXCEED_DEBITS;
    if (floor && (cmd.account_flags & limits & ~floor))
        return cli_fail_usage("--kind %s never goes below zero: it takes no other limit flag (use a funding kind)",
                              cmd.account_kind);
    cmd.account_flags |= floor;
    return run_one(c, r, &cmd, "account");
}

/* An id of no configured region is answered as an unknown id of a known
 * region is (ledgerd answers 404 alike): the refusal, exit status 1. */
static int not_found(cli *c, const char *what, ledger_code code, const gl_id *id) {
    ledger_result res = {.code = code, .id = *id};
    return print_result(c, what, &res);
}

static int show_account(cli *c, const gl_id *id, const char *as_of) {
    const gl_region *r = gl_region_of_id(&c->cfg, id);
    if (!r) return not_found(c, "account", LEDGER_ACCOUNT_NOT_FOUND, id);
    PGconn *db = cli_connect_region(c, r, GL_ROLE_SERVICE);
    if (!db) return EXIT_INFRA;
    ledger_account a;
    gl_error e;
    int found = as_of ? ledger_account_get_as_of(db, id, as_of, &a, &e) : ledger_account_get(db, id, &a, &e);
    PQfinish(db);
    if (found < 0) return cli_fail_error(c, &e);
    if (!found) {
        ledger_result res = {.code = LEDGER_ACCOUNT_NOT_FOUND, .id = *id};
        return print_result(c, "account", &res);
    }
    print_account(c, &a);
    return 0;
}

static int cmd_account_show(cli *c, int argc, char **argv) {
    opts o;
    gl_id id;
    int pos = 0, rc = parse_opts(argc, argv, &o, &pos);
    if (rc || (rc = need_id(argc, argv, pos, &id))) return rc;
    return show_account(c, &id, NULL);
}

static int cmd_balance(cli *c, int argc, char **argv) {
    opts o;
    gl_id id;
    int pos = 0, rc = parse_opts(argc, argv, &o, &pos);
    if (rc || (rc = need_id(argc, argv, pos, &id))) return rc;
    return show_account(c, &id, o.as_of);
}

static int cmd_account_close(cli *c, int argc, char **argv) {
    opts o;
    gl_id id;
    int pos = 0, rc = parse_opts(argc, argv, &o, &pos);
    if (rc || (rc = need_id(argc, argv, pos, &id))) return rc;
    const gl_region *r = gl_region_of_id(&c->cfg, &id);
    if (!r) return not_found(c, "account", LEDGER_ACCOUNT_NOT_FOUND, &id);
    ledger_cmd cmd;
    ledger_cmd_init(&cmd, LEDGER_CMD_CLOSE_ACCOUNT);
    if ((rc = set_common(&cmd, &o))) return rc;
    cmd.target_id = id;
    return run_one(c, r, &cmd, "account");
}

static int cmd_account(cli *c, int argc, char **argv) {
    if (argc < 2) return cli_fail_usage("account needs create|show|close%s", "");
    if (strcmp(argv[1], "create") == 0) return cmd_account_create(c, argc - 1, argv + 1);
    if (strcmp(argv[1], "show") == 0) return cmd_account_show(c, argc - 1, argv + 1);
    if (strcmp(argv[1], "close") == 0) return cmd_account_close(c, argc - 1, argv + 1);
    return cli_fail_usage("unknown account command '%s'", argv[1]);
}

static int cmd_transfer(cli *c, int argc, char **argv) {
    opts o;
    int pos = 0, rc = parse_opts(argc, argv, &o, &pos);
    if (rc) return rc;
    if (pos < argc) return cli_fail_usage("unexpected argument '%s'", argv[pos]);
    ledger_cmd cmd;
    ledger_cmd_init(&cmd, LEDGER_CMD_TRANSFER);
    if ((rc = set_common(&cmd, &o))) return rc;
    if (!o.from || !gl_id_parse(o.from, &cmd.debit_account_id)) return cli_fail_usage("--from must be an account id%s", "");
    if (!o.to || !gl_id_parse(o.to, &cmd.credit_account_id)) return cli_fail_usage("--to must be an account id%s", "");
    if (!gl_parse_i64(o.amount, 1, INT64_MAX, &cmd.amount))
        return cli_fail_usage("--amount must be a positive integer of minor units, got '%s'", o.amount);
    if (!o.currency || !copy_arg(cmd.currency, sizeof cmd.currency, o.currency))
        return cli_fail_usage("--currency is required%s", "");
    cmd.pending = o.pending;
    if (o.timeout && (!o.pending || !gl_parse_i64(o.timeout, 1, INT64_MAX, &cmd.timeout_s)))
        return cli_fail_usage("--timeout needs --pending and a positive number of seconds, got '%s'", o.timeout);
    const gl_region *r = gl_region_of_id(&c->cfg, &cmd.debit_account_id);
    return r ? run_one(c, r, &cmd, "transfer") : not_found(c, "transfer", LEDGER_ACCOUNT_NOT_FOUND, &cmd.debit_account_id);
}

/* post, void, reverse: act on an existing transfer. */
static int cmd_on_transfer(cli *c, int argc, char **argv, ledger_cmd_kind kind) {
    opts o;
    ledger_cmd cmd;
    ledger_cmd_init(&cmd, kind);
    int pos = 0, rc = parse_opts(argc, argv, &o, &pos);
    if (rc || (rc = need_id(argc, argv, pos, &cmd.target_id)) || (rc = set_common(&cmd, &o))) return rc;
    if (o.amount && (kind == LEDGER_CMD_VOID || !gl_parse_i64(o.amount, 1, INT64_MAX, &cmd.amount)))
        return cli_fail_usage("--amount must be a positive integer of minor units (post, reverse only), got '%s'", o.amount);
    const gl_region *r = gl_region_of_id(&c->cfg, &cmd.target_id);
    ledger_code missing = kind == LEDGER_CMD_REVERSE ? LEDGER_TRANSFER_NOT_FOUND : LEDGER_PENDING_NOT_FOUND;
    return r ? run_one(c, r, &cmd, "transfer") : not_found(c, "transfer", missing, &cmd.target_id);
}

static int cmd_post(cli *c, int argc, char **argv) { return cmd_on_transfer(c, argc, argv, LEDGER_CMD_POST); }
static int cmd_void(cli *c, int argc, char **argv) { return cmd_on_transfer(c, argc, argv, LEDGER_CMD_VOID); }
static int cmd_reverse(cli *c, int argc, char **argv) { return cmd_on_transfer(c, argc, argv, LEDGER_CMD_REVERSE); }

static int cmd_transfer_show(cli *c, int argc, char **argv) {
    opts o;
    gl_id id;
    int pos = 0, rc = parse_opts(argc, argv, &o, &pos);
    if (rc || (rc = need_id(argc, argv, pos, &id))) return rc;
    const gl_region *r = gl_region_of_id(&c->cfg, &id);
    if (!r) return not_found(c, "transfer", LEDGER_TRANSFER_NOT_FOUND, &id);
    PGconn *db = cli_connect_region(c, r, GL_ROLE_SERVICE);
    if (!db) return EXIT_INFRA;
    ledger_transfer t;
    gl_error e;
    int found = ledger_transfer_get(db, &id, &t, &e);
    PQfinish(db);
    if (found < 0) return cli_fail_error(c, &e);
    if (!found) {
        ledger_result res = {.code = LEDGER_TRANSFER_NOT_FOUND, .id = id};
        return print_result(c, "transfer", &res);
    }
    print_transfer(c, &t);
    return 0;
}

static int cmd_expire(cli *c, int argc, char **argv) {
    opts o;
    int pos = 0, rc = parse_opts(argc, argv, &o, &pos);
    if (rc) return rc;
    int64_t limit = LEDGER_BATCH_MAX;
    if (o.limit && (!gl_parse_i64(o.limit, 1, LEDGER_BATCH_MAX, &limit)))
        return cli_fail_usage("--limit must be 1..8189, got '%s'", o.limit);
    json_t *out = json_array();
    for (int i = 0; i < c->cfg.n_regions; i++) {
        const gl_region *r = &c->cfg.regions[i];
        if (o.region && strcmp(o.region, r->name) != 0) continue;
        PGconn *db = cli_connect_region(c, r, GL_ROLE_SERVICE);
        if (!db) {
            json_decref(out);
            return EXIT_INFRA;
        }
        ledger_ctx ctx = {.partition_code = r->code};
        gl_error e;
        int n = ledger_expire_due(db, &ctx, (int)limit, &e);
        PQfinish(db);
        if (n < 0) {
            json_decref(out);
            return cli_fail_error(c, &e);
        }
        if (!c->json) printf("region %s: %d holds expired\n", r->name, n);
        json_array_append_new(out, json_pack("{s:s,s:i}", "region", r->name, "expired", n));
    }
    if (c->json) cli_emit_json(out);
    else json_decref(out);
    return 0;
}

static void print_entry(const cli *c, const ledger_entry *e) {
    char tid[GL_ID_STR_LEN + 1];
    gl_id_format(&e->transfer_id, tid);
    int64_t posted = ledger_balance(e->credits_posted, e->debits_posted, 0);
    if (c->json) {
        cli_emit_json(gl_entry_json(e));
        return;
    }
    printf("%6lld  %s  %c  pending %+lld  posted %+lld  -> posted balance %lld  (%s)\n", (long long)e->version,
           e->created_at, e->side, (long long)e->pending_delta, (long long)e->posted_delta, (long long)posted, tid);
}

static int cmd_statement(cli *c, int argc, char **argv) {
    opts o;
    gl_id id;
    int pos = 0, rc = parse_opts(argc, argv, &o, &pos);
    if (rc || (rc = need_id(argc, argv, pos, &id))) return rc;
    int64_t after = 0, limit = 100;
    if (o.after && (!gl_parse_i64(o.after, 0, INT64_MAX, &after))) return cli_fail_usage("bad --after-version '%s'", o.after);
    if (o.limit && (!gl_parse_i64(o.limit, 1, 10000, &limit)))
        return cli_fail_usage("--limit must be 1..10000, got '%s'", o.limit);
    const gl_region *r = gl_region_of_id(&c->cfg, &id);
    if (!r) return not_found(c, "account", LEDGER_ACCOUNT_NOT_FOUND, &id);
    PGconn *db = cli_connect_region(c, r, GL_ROLE_SERVICE);
    if (!db) return EXIT_INFRA;
    ledger_entry *entries = calloc((size_t)limit, sizeof *entries);
    gl_error e;
    int n = entries ? ledger_entries_list(db, &id, after, (int)limit, entries, &e) : -1;
    PQfinish(db);
    if (n < 0) {
        free(entries);
        if (!entries) gl_error_set(&e, GL_ERR_INTERNAL, "out of memory");
        return cli_fail_error(c, &e);
    }
    for (int i = 0; i < n; i++) print_entry(c, &entries[i]);
    free(entries);
    return 0;
}

typedef struct {
    const cli *c;
    const char *region;
} verify_arg;

static void verify_report(void *arg, int invariant, const char *what) {
    const verify_arg *v = arg;
    if (v->c->json) cli_emit_json(json_pack("{s:s,s:i,s:s}", "region", v->region, "invariant", invariant, "violation", what));
    else printf("VIOLATION region %s invariant %d: %s\n", v->region, invariant, what);
}

static int cmd_verify(cli *c, int argc, char **argv) {
    opts o;
    int pos = 0, rc = parse_opts(argc, argv, &o, &pos);
    if (rc) return rc;
    int total = 0;
    for (int i = 0; i < c->cfg.n_regions; i++) {
        const gl_region *r = &c->cfg.regions[i];
        if (o.region && strcmp(o.region, r->name) != 0) continue;
        PGconn *db = cli_connect_region(c, r, GL_ROLE_REPORT);
        if (!db) return EXIT_INFRA;
        verify_arg va = {c, r->name};
        gl_error e;
        int n = ledger_verify(db, verify_report, &va, &e);
        PQfinish(db);
        if (n < 0) return cli_fail_error(c, &e);
        if (!c->json) printf("region %s: %s\n", r->name, n ? "invariants VIOLATED" : "invariants 1-6 hold");
        total += n;
    }
    return total ? EXIT_VIOLATIONS : 0;
}

/* Mints a token signed with the configured key (dev use: `make run` prints one). */
/* "eu,us" -> ["eu","us"] (empty names skipped; ledgerd checks the names). */
static json_t *region_list(const char *csv) {
    json_t *a = json_array();
    char buf[256];
    snprintf(buf, sizeof buf, "%s", csv);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
        json_array_append_new(a, json_string(t));
    return a;
}

static int cmd_token(cli *c, int argc, char **argv) {
    static const struct option longopts[] = {{"sub", required_argument, NULL, 's'},
                                             {"scope", required_argument, NULL, 'S'},
                                             {"ttl", required_argument, NULL, 't'},
                                             {"key", required_argument, NULL, 'k'},
                                             {"regions", required_argument, NULL, 'r'},
                                             {NULL, 0, NULL, 0}};
    const char *sub = NULL, *key = NULL, *regions = NULL,
               *scope = "accounts:read accounts:write transfers:read transfers:write events:read mandates:write "
                                   "webhooks:write";
    int64_t ttl = 3600;
    optind = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (ch == 's') sub = optarg;
        else if (ch == 'S') scope = optarg;
        else if (ch == 'k') key = optarg;
        else if (ch == 'r') regions = optarg;
        else if (ch == 't') {
            if (!gl_parse_i64(optarg, 1, 30LL * 86400, &ttl))
                return cli_fail_usage("--ttl must be 1..2592000 seconds, got '%s'", optarg);
        } else return cli_fail_usage("%s: bad option", argv[0]);
    }
    if (!sub) return cli_fail_usage("token needs --sub PRINCIPAL%s", "");
    gl_auth_config ac;
    gl_error e;
    if (!gl_auth_config_load(c->config_path, &ac, &e)) return cli_fail_error(c, &e);
    if (ac.max_lifetime_s > 0 && ttl > ac.max_lifetime_s)
        return cli_fail_usage("--ttl is over ledgerd's max_token_lifetime_s (%s): ledgerd would refuse the token",
                              "auth.max_token_lifetime_s in ledger.conf");
    time_t now = time(NULL);
    json_t *claims = json_pack("{s:s,s:s,s:s,s:s,s:I,s:I}", "iss", ac.issuer, "aud", ac.audience, "sub", sub,
                               "scope", scope, "iat", (json_int_t)now, "exp", (json_int_t)now + (json_int_t)ttl);
    if (claims && regions) json_object_set_new(claims, "regions", region_list(regions));
    char *token = NULL;
    bool ok = claims && gl_jwt_sign_from_file(ac.alg, key ? key : ac.key_file, claims, &token, &e);
    json_decref(claims);
    if (!ok) return cli_fail_error(c, &e);
    if (c->json) cli_emit_json(json_pack("{s:s}", "token", token));
    else puts(token);
    free(token);
    return 0;
}

static void usage(FILE *f) {
    fputs("usage: ledgerctl [--config FILE] [--json] COMMAND [ARGS]\n"
          "\n"
          "  migrate [--region R]                      apply sql/ migrations to each region\n"
          "  account create --region R --currency CUR [--owner O] [--kind K]\n"
          "                 [--flags debits_must_not_exceed_credits|credits_must_not_exceed_debits]\n"
          "                 [--metadata JSON]\n"
          "  account show ID | account close ID\n"
          "  transfer --from ID --to ID --amount MINOR --currency CUR [--reference REF]\n"
          "           [--pending [--timeout SECONDS]] [--owner O] [--metadata JSON]\n"
          "  transfer-show ID\n"
          "  post ID [--amount MINOR]                  capture a hold (partial: the rest is released)\n"
          "  void ID                                   release a hold\n"
          "  reverse ID [--amount MINOR] --reference REF   refund (partial ok)\n"
          "  expire [--region R] [--limit N]           void holds whose timeout passed\n"
          "  balance ID [--as-of TIME]                 balances now or at a past time (RFC 3339)\n"
          "  statement ID [--after-version N] [--limit N]\n"
          "  verify [--region R]                       check ledger invariants 1-6 (exit 4 on violation)\n"
          "  audit verify [--region R [--expect-head SEQ:HASH]] | audit show [--region R] [--limit N]\n"
          "  audit anchor                              record each region's audit head in the other regions\n"
          "  recon run --region R --source stripe|adyen|generic --file F --account ID [--from T --to T]\n"
          "            [--out DIR] [--pan-keys F] [--seal-keys F]   match a PSP file (exit 4: breaks)\n"
          "  recon decrypt FILE [--seal-keys F] [--out F]   open a sealed recon report\n"
          "  report regional --region R --from T --to T [--format json|csv|html] [--out FILE] [--threshold MINOR]\n"
          "                 [--structuring-count N] [--structuring-band-pct P] [--max-rows N]   compliance report\n"
          "  events tail [--region R] [--after SEQ] [--limit N] [--follow]   the outbox, one line per event\n"
          "  events prune --older-than DAYS [--region R] [--dry-run]   delete old events every consumer has passed\n"
          "  token --sub PRINCIPAL [--scope \"a b\"] [--regions eu,us] [--ttl S] [--key F]   mint a ledgerd token (dev)\n"
          "\n"
          "Amounts are integers of minor units (cents). The config file is --config,\n"
          "else $GEOLEDGER_CONFIG, else ./ledger.conf.\n"
          "Exit status: 0 ok, 1 refused by the ledger, 2 usage, 3 config/database error, 4 violations.\n",
          f);
}

typedef struct {
    const char *name;
    int (*fn)(cli *, int, char **);
} command;

static const command commands[] = {
    {"migrate", cmd_migrate},   {"account", cmd_account},   {"transfer", cmd_transfer},
    {"transfer-show", cmd_transfer_show}, {"post", cmd_post}, {"void", cmd_void},
    {"reverse", cmd_reverse},   {"expire", cmd_expire},     {"balance", cmd_balance},
    {"statement", cmd_statement}, {"verify", cmd_verify}, {"token", cmd_token},
    {"audit", cmd_audit},
    {"events", cmd_events},
    {"report", cmd_report},
    {"recon", cmd_recon},
};

int main(int argc, char **argv) {
    cli c = {0};
    const char *config_flag = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--json") == 0) c.json = true;
        else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) config_flag = argv[++i];
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else return cli_fail_usage("unknown option '%s'", argv[i]);
    }
    if (i >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const command *cmd = NULL;
    for (size_t k = 0; k < sizeof commands / sizeof commands[0]; k++)
        if (strcmp(commands[k].name, argv[i]) == 0) cmd = &commands[k];
    if (!cmd) return cli_fail_usage("unknown command '%s'", argv[i]);
    c.config_path = gl_config_default_path(config_flag);
    gl_error e;
    if (!gl_config_load(c.config_path, &c.cfg, &e)) return cli_fail_error(&c, &e);
    int rc = cmd->fn(&c, argc - i, argv + i);
    gl_config_free(&c.cfg);
    return rc;
}
