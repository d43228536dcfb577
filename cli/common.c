/*
 * common.c — what every ledgerctl command shares: error output, JSON output,
 * and finding and connecting to a region.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <jansson.h>

#include "cli.h"

/* ---------- output ---------- */

/* `fmt` is always a literal with one %s, filled with `arg`. */
int cli_fail_usage(const char *fmt, const char *arg) {
    char msg[512];
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    snprintf(msg, sizeof msg, fmt, arg ? arg : "");
#pragma GCC diagnostic pop
    fprintf(stderr, "ledgerctl: %s\nTry 'ledgerctl --help'.\n", msg);
    return EXIT_USAGE;
}

int cli_fail_error(const cli *c, const gl_error *e) {
    if (c->json) {
        json_t *o = json_pack("{s:{s:s,s:s,s:s}}", "error", "message", e->message, "detail", e->detail, "hint", e->hint);
        char *s = json_dumps(o, JSON_COMPACT);
        if (s) puts(s);
        free(s);
        json_decref(o);
    }
    fprintf(stderr, "ledgerctl: error: %s\n", e->message);
    if (e->detail[0]) fprintf(stderr, "DETAIL: %s\n", e->detail);
    if (e->hint[0]) fprintf(stderr, "HINT: %s\n", e->hint);
    return EXIT_INFRA;
}

void cli_emit_json(json_t *o) {
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s) puts(s);
    free(s);
    json_decref(o);
}

/* ---------- region plumbing ---------- */

const gl_region *cli_region_named(const cli *c, const char *name) {
    const gl_region *r = gl_region_by_name(&c->cfg, name);
    if (!r) fprintf(stderr, "ledgerctl: no region named '%s' in %s\n", name, c->config_path);
    return r;
}

PGconn *cli_connect_region(const cli *c, const gl_region *r, gl_db_role role) {
    gl_error e;
    PGconn *db = gl_region_connect(r, role, &e);
    if (!db) cli_fail_error(c, &e);
    return db;
}



