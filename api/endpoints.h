/*
 * endpoints.h — the endpoints of API.md, one file per resource (accounts.c,
 * transfers.c, mandates_ep.c, events_ep.c, webhooks_ep.c, probes.c), each a row of the route table in
 * handlers.c. id: the {id} of the path (NULL when it has none). Internal to api/.
 */
#ifndef GL_ENDPOINTS_H
#define GL_ENDPOINTS_H

#include "server.h"

#define ENTRIES_PAGE_MAX 100
#define ENTRIES_PAGE_DEFAULT 10

gl_response gl_create_account(gl_req *req);
gl_response gl_get_account(gl_req *req, const gl_id *id);
gl_response gl_get_balance(gl_req *req, const gl_id *id);
gl_response gl_get_entries(gl_req *req, const gl_id *id);

gl_response gl_create_transfer(gl_req *req);
gl_response gl_create_batch(gl_req *req);
gl_response gl_get_transfer(gl_req *req, const gl_id *id);
gl_response gl_list_transfers(gl_req *req);
/* post, void, reverse: a new transfer naming an existing one the caller made. */
gl_response gl_act_on_transfer(gl_req *req, const gl_id *id, ledger_cmd_kind kind);

gl_response gl_create_mandate(gl_req *req);
gl_response gl_get_mandate(gl_req *req, const gl_id *id);
gl_response gl_revoke_mandate(gl_req *req, const gl_id *id);

/* GET /v1/events (events_ep.c). */
gl_response gl_list_events(gl_req *req);

/* /v1/webhook_endpoints (webhooks_ep.c). */
gl_response gl_create_webhook_endpoint(gl_req *req);
gl_response gl_list_webhook_endpoints(gl_req *req);
gl_response gl_get_webhook_endpoint(gl_req *req, const gl_id *id);
gl_response gl_delete_webhook_endpoint(gl_req *req, const gl_id *id);
gl_response gl_enable_webhook_endpoint(gl_req *req, const gl_id *id);
gl_response gl_list_webhook_deliveries(gl_req *req, const gl_id *id);
/* POST .../{id}/deliveries/{delivery_id}/redeliver: the delivery id is read from the path. */
gl_response gl_redeliver_webhook(gl_req *req, const gl_id *id);

gl_response gl_readyz(gl_req *req);
gl_response gl_metrics_page(gl_req *req);

/* One cursor page of an owned account's entries: `limit` (1..100) after
 * `starting_after` (an entry version). Shared by /entries and /v1/transfers. */
typedef struct {
    ledger_entry e[ENTRIES_PAGE_MAX + 1];
    int n;
    bool more;
    PGconn *db; /* the home region's read connection, for follow-up reads */
    const gl_region *region;
} gl_entries_page;

bool gl_read_entries_page(gl_req *req, const gl_id *id, const char *param, gl_entries_page *pg, gl_response *fail);
gl_response gl_page_response(json_t *data, const gl_entries_page *pg);

#endif
