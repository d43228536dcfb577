/*
 * migrate.h — versioned schema migrations for one partition.
 *
 * Files in the migrations directory named NNNN_name.sql are applied in order,
 * each in its own transaction, under an advisory lock, and recorded in
 * schema_migrations with their SHA-256. A migration that was applied and has
 * since changed on disk is refused: history is never rewritten silently.
 */
#ifndef GL_MIGRATE_H
#define GL_MIGRATE_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "error.h"

typedef void (*ledger_migrate_log_fn)(void *arg, const char *version, const char *name, bool applied_now);

/*
 * Applies pending migrations from `dir` on `admin_db`, then records (or checks)
 * which region this partition is: a database already stamped with another
 * region's code or name is refused. Returns the number newly applied, or -1.
 */
int ledger_migrate(PGconn *admin_db, const char *dir, uint8_t region_code, const char *region_name,
                   ledger_migrate_log_fn log, void *arg, gl_error *err);

#endif
