/*
 * clients.h — what ledgerd allows a client before it has authenticated:
 * floods of bad tokens and idle or slow sockets must not exhaust it.
 *
 *  - Requests without a valid token (none, malformed, expired, forged) are
 *    counted per client address in a token bucket (unauth_rate_per_s,
 *    unauth_burst); once an address has used its bucket up, its requests are
 *    answered 429 before their token is even verified (verifying costs CPU,
 *    an ES256 signature most). Requests with a valid token do not count. An
 *    address is an IPv4 address or an IPv6 /64 (what one host usually holds).
 *  - A request (head and body) must have arrived within read_timeout_ms of
 *    the connection's start or of its previous response: a client that
 *    trickles its headers or body (slowloris) or holds a keep-alive socket
 *    idle has its connection shut down by a watchdog. libmicrohttpd's own
 *    timeout only measures silence, which a byte every few seconds defeats.
 *  - The cap on connections per address and the idle timeout are
 *    libmicrohttpd options (http.c).
 */
#ifndef GL_CLIENTS_H
#define GL_CLIENTS_H

#include <stdbool.h>
#include <stdint.h>

#include <microhttpd.h>

#include "../ledger/error.h"
#include "ratelimit.h"

#define GL_ADDRESS_KEY_MAX 48

typedef struct gl_clients gl_clients;

/* NULL with err on a bad setting or out of memory. */
gl_clients *gl_clients_new(int unauth_rate_per_s, int unauth_burst, int read_timeout_ms, gl_error *err);
/* Stops the watchdog; no connection may still be open (after MHD_stop_daemon). NULL is fine. */
void gl_clients_free(gl_clients *c);

/* The address key of a client address text (inet_ntop's): the IPv4 address,
 * or the /64 of an IPv6 one. False for text that is neither. */
bool gl_address_key(const char *ip, char out[GL_ADDRESS_KEY_MAX]);

/* Whether an unauthenticated request from `key` may be looked at; false:
 * answer 429 with *retry_after_s. */
bool gl_clients_admit(gl_clients *c, const char *key, uint64_t *retry_after_s);
/* A request from `key` failed authentication: it counts against the address. */
void gl_clients_charge(gl_clients *c, const char *key);

/* libmicrohttpd's MHD_OPTION_NOTIFY_CONNECTION callback (cls: the gl_clients). */
void gl_clients_on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                              enum MHD_ConnectionNotificationCode code);
/* The connection's request has been read whole: its read deadline is off.
 * False when the deadline had already passed and the watchdog is cutting the
 * connection: the request must not be run (its client will see the reset). */
bool gl_clients_request_read(struct MHD_Connection *conn);
/* A response went out: the next request's read deadline starts. */
void gl_clients_response_done(gl_clients *c, struct MHD_Connection *conn);

#endif
