/*
 * render.h — the JSON shapes of API.md (account, transfer, statement entry),
 * shared by ledgerd's responses and `ledgerctl --json`, so both print the same.
 */
#ifndef GL_RENDER_H
#define GL_RENDER_H

#include <jansson.h>

#include "../ledger/ledger.h"
#include "../regions/regions.h"

json_t *gl_id_json(const gl_id *id); /* null for the nil id */
json_t *gl_account_json(const gl_config *cfg, const ledger_account *a);
json_t *gl_transfer_json(const ledger_transfer *t);
json_t *gl_entry_json(const ledger_entry *e);

#endif
