/*
 * webhooks.h — signed webhooks (API.md /v1/webhook_endpoints, DESIGN §3a,
 * sql/0012_webhooks.sql): the settings, the target check (SSRF), the
 * Standard Webhooks signature, and the database side of endpoints and
 * deliveries. The HTTP endpoints are webhooks_ep.c; the dispatcher and the
 * sender, ledgerd threads, are webhookd.c.
 *
 * An endpoint belongs to one region and receives that region's events whose
 * owners include the endpoint's owner (all of them when an admin made it),
 * of its event types (none named: all). Each such event becomes one delivery
 * row; the sender posts it, signed, until a 2xx, with backoff on a schedule,
 * then gives up (state dead: a dead letter, redeliverable by hand). Internal
 * to api/.
 */
#ifndef GL_WEBHOOKS_H
#define GL_WEBHOOKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "../ledger/error.h"
#include "../ledger/id.h"
#include "../ledger/ledger.h"

#define GL_WEBHOOK_URL_MAX 2048
#define GL_WEBHOOK_SECRET_LEN 50 /* "whsec_" + base64 of 32 bytes (44) */
#define GL_WEBHOOK_SIGNATURE_MAX 64 /* "v1," + base64 of 32 bytes */
#define GL_WEBHOOK_TYPES_MAX 16
#define GL_WEBHOOK_PER_OWNER_MAX 16  /* endpoints per principal and region */
#define GL_WEBHOOK_LIST_MAX 100      /* endpoints per region in one GET */
#define GL_WEBHOOK_PAGE_MAX 100      /* deliveries per page */
#define GL_WEBHOOK_ATTEMPTS_SHOWN 20 /* the latest attempts of a delivery a page shows */
#define GL_WEBHOOK_RETRIES_MAX 16    /* steps of the retry schedule */
#define GL_WEBHOOK_SENDERS_MAX 8     /* sender threads per region */

/* The `webhooks` group of ledgerd's settings (api/config.c). */
typedef struct {
    bool enabled;               /* the dispatcher and senders run (default true) */
    bool allow_private_targets; /* loopback, private, link-local targets allowed (tests, dev) */
    int retry_ms[GL_WEBHOOK_RETRIES_MAX]; /* delay before retry k (k = 1..n_retry); then dead */
    int n_retry;
    int connect_timeout_ms, timeout_ms; /* per attempt */
    int lease_ms;        /* a claimed delivery is its sender's for this long (> timeout_ms) */
    int disable_after_s; /* an endpoint failing continuously this long is disabled */
    int senders;         /* threads per region */
    int poll_ms;         /* idle wait between rounds */
    int retention_h;     /* delivered deliveries are deleted after this */
} gl_webhooks_config;

void gl_webhooks_config_defaults(gl_webhooks_config *c);

/* ---- targets (SSRF) ---- */

/* A URL checked for sending: where curl must connect (addr, pinned with
 * CURLOPT_RESOLVE so DNS cannot change it between the check and the send). */
typedef struct {
    bool https;
    char host[256]; /* as in the URL, without brackets */
    int port;
    char addr[64];  /* the checked numeric address */
    bool host_is_literal;
} gl_webhook_target;

/* Parses `url` (http or https, a host, an optional port, no userinfo, no
 * fragment), resolves the host and refuses it when any address is loopback,
 * private, link-local, shared, multicast, reserved or unspecified, unless
 * allow_private. false with *why (static text) on refusal. Blocks on DNS. */
bool gl_webhook_target_check(const char *url, bool allow_private, gl_webhook_target *t, const char **why);

/* ---- signatures (Standard Webhooks) ---- */

/* A new secret: "whsec_" + base64 of 32 random bytes. */
bool gl_webhook_secret_new(char out[GL_WEBHOOK_SECRET_LEN + 1]);
/* "v1," + base64(HMAC-SHA256(decoded secret, id "." timestamp "." body));
 * false on a malformed secret (not whsec_ + base64 of 24..64 bytes). */
bool gl_webhook_sign(const char *secret, const char *msg_id, int64_t timestamp, const char *body, size_t body_len,
                     char out[GL_WEBHOOK_SIGNATURE_MAX + 1]);

/* ---- endpoints ---- */

typedef struct {
    gl_id id;
    char owner[LEDGER_OWNER_MAX + 1];
    bool owner_is_admin;
    char url[GL_WEBHOOK_URL_MAX + 1];
    uint32_t types; /* bit (1 << ledger_event_type); 0 = all */
    char secret[GL_WEBHOOK_SECRET_LEN + 1]; /* set at creation only: never read back */
    bool disabled;
    int64_t created_at_us, failing_since_us, disabled_at_us; /* 0 = none */
} gl_webhook_endpoint;

/* Inserts e (id, owner, owner_is_admin, url, types, secret set); completes it
 * from the row. 1 created, 0 the owner has GL_WEBHOOK_PER_OWNER_MAX in the
 * region already (nothing written), -1 error. */
int gl_webhook_insert(PGconn *db, gl_webhook_endpoint *e, gl_error *err);
/* 1 found, 0 not, -1 error. */
int gl_webhook_get(PGconn *db, const gl_id *id, gl_webhook_endpoint *out, gl_error *err);
/* The owner's endpoints (owner NULL: all), oldest first, at most cap. -1 on error. */
int gl_webhook_list(PGconn *db, const char *owner, gl_webhook_endpoint *out, int cap, gl_error *err);
/* Deletes it with its deliveries and their attempts: 1 deleted, 0 not there, -1 error. */
int gl_webhook_delete(PGconn *db, const gl_id *id, gl_error *err);
/* Active again, its failure run forgotten: 1 done (out: the row), 0 not there, -1 error. */
int gl_webhook_enable(PGconn *db, const gl_id *id, gl_webhook_endpoint *out, gl_error *err);
/* {id, region, owner, url, event_types, status, failing_since, created_at,
 *  disabled_at} and `secret` when e->secret is set (the creation's answer). */
json_t *gl_webhook_json(const gl_webhook_endpoint *e, const char *region);

/* ---- deliveries ---- */

typedef enum { GL_DELIVERY_ANY, GL_DELIVERY_PENDING, GL_DELIVERY_DELIVERED, GL_DELIVERY_DEAD } gl_delivery_state;
bool gl_delivery_state_parse(const char *s, gl_delivery_state *out);

/* A page of an endpoint's deliveries, newest event first, each with its
 * latest attempts: `limit` (1..GL_WEBHOOK_PAGE_MAX) with event seq < before
 * (0: from the newest), of `state`; only delivery `only` when not NULL.
 * *data gets the JSON array, *next the cursor of the next page (0: none).
 * -1 on error. */
int gl_webhook_deliveries(PGconn *db, const gl_id *endpoint, gl_delivery_state state, int64_t before, int limit,
                          const gl_id *only, json_t **data, int64_t *next, gl_error *err);
/* A dead or delivered delivery of the endpoint made pending again, due now,
 * its retry schedule restarted: 1 done, 0 no such delivery, 2 it is still
 * pending (nothing changed), -1 error. */
int gl_webhook_redeliver(PGconn *db, const gl_id *endpoint, const gl_id *delivery, gl_error *err);

#endif
