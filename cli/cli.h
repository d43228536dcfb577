/*
 * cli.h — what the ledgerctl commands share. Each group of subcommands lives in
 * its own file (ledgerctl.c: ledger commands; recon.c, report.c, audit.c) and
 * is registered in the `commands` table of ledgerctl.c.
 */
#ifndef GL_CLI_H
#define GL_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "../ledger/error.h"
#include "../ledger/id.h"
#include "../ledger/text.h"
#include "../regions/regions.h"

/* Exit status of every command. */
enum { EXIT_REFUSED = 1, EXIT_USAGE = 2, EXIT_INFRA = 3, EXIT_VIOLATIONS = 4 };

typedef struct {
    const char *config_path;
    bool json;
    gl_config cfg;
} cli;

/* Prints "ledgerctl: <fmt with arg>" and the --help hint; returns EXIT_USAGE.
 * `fmt` is always a literal with one %s. */
int cli_fail_usage(const char *fmt, const char *arg);
/* Prints the error (and as JSON with --json); returns EXIT_INFRA. */
int cli_fail_error(const cli *c, const gl_error *e);
/* Prints `o` as one compact JSON line and releases it. */
void cli_emit_json(json_t *o);

/* The region named `name`, or NULL after printing why. */
const gl_region *cli_region_named(const cli *c, const char *name);
/* A connection to region `r` as `role`, or NULL after printing the error. */
PGconn *cli_connect_region(const cli *c, const gl_region *r, gl_db_role role);

/* Subcommand groups defined outside ledgerctl.c (argv[0] is the group name). */
int cmd_recon(cli *c, int argc, char **argv);
int cmd_report(cli *c, int argc, char **argv);
int cmd_audit(cli *c, int argc, char **argv);
int cmd_events(cli *c, int argc, char **argv);

#endif
