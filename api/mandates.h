/*
 * mandates.h — the database side of mandates (API.md /v1/mandates, DESIGN §6).
 *
 * A mandate lets a grantee (a mini-app) debit a user's wallet it does not own,
 * in one currency, within a per-charge and a per-day cap, until it expires or
 * is revoked. The engine enforces the caps (ledger_cmd.mandate_id); this file
 * creates, revokes, finds and renders mandates. Create and revoke run inside a
 * writer batch's transaction, so they commit with their idempotency row and
 * their audit record.
 */
#ifndef GL_MANDATES_H
#define GL_MANDATES_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "../ledger/error.h"
#include "../ledger/id.h"
#include "../ledger/ledger.h"

#define GL_MANDATE_MAX_LIFETIME_S (5LL * 366 * 24 * 3600)

/* A mandate is a ledger_mandate (../ledger/ledger.h), decoded where the engine decodes it. */

/* 1 found, 0 not found, -1 error. */
int gl_mandate_get(PGconn *db, const gl_id *id, ledger_mandate *out, gl_error *err);

/* The live (not revoked, not expired) mandate letting `grantee` debit `wallet`
 * in `currency`: 1 found (*id set), 0 none, -1 error. */
int gl_mandate_find_live(PGconn *db, const gl_id *wallet, const char *grantee, const char *currency, gl_id *id,
                         gl_error *err);

/* Inserts `m` (id, wallet, grantee, currency, caps, expires_at_us, created_by
 * set by the caller). An expired mandate for the same wallet, grantee and
 * currency is retired first. Returns 1 created (m completed from the row),
 * 0 a live mandate already exists (nothing written), -1 error. */
int gl_mandate_insert(PGconn *db, ledger_mandate *m, gl_error *err);

/* Revokes mandate `id` by `by`. 1 revoked now, 0 was already revoked (m holds
 * the row either way), -1 error (including not found: GL_ERR_NOT_FOUND). */
int gl_mandate_revoke(PGconn *db, const gl_id *id, const char *by, ledger_mandate *m, gl_error *err);

/* {id, wallet_account_id, grantee, currency, max_amount_per_charge,
 *  max_amount_per_day, spent_today, status: active|revoked|expired,
 *  expires_at, created_by, created_at, revoked_at, revoked_by (null while live)} */
json_t *gl_mandate_json(const ledger_mandate *m);

#endif
