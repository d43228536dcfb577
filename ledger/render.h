/*
 * render.h — the JSON shapes of API.md (account, transfer, statement entry,
 * event), shared by ledgerd's responses, its webhook and stream deliveries and
 * `ledgerctl --json`, so all print the same.
 * Here, beside the types they render, so that neither program reaches into
 * the other's folder for them.
 */
#ifndef GL_RENDER_H
#define GL_RENDER_H

#include <jansson.h>

#include "events.h"
#include "ledger.h"

json_t *gl_id_json(const gl_id *id); /* null for the nil id */
/* region: the name of the account's home region (the ledger does not know its
 * regions: the caller finds it by the id), "?" when NULL. */
json_t *gl_account_json(const ledger_account *a, const char *region);
json_t *gl_transfer_json(const ledger_transfer *t);
json_t *gl_entry_json(const ledger_entry *e);
/* {id, type, region, created_at, data: {the ids that apply, amount, currency}}:
 * the feed's page item, a webhook's body, a stream entry's payload. region:
 * the name of the region whose outbox holds it. */
json_t *gl_event_json(const ledger_event *e, const char *region);

#endif
