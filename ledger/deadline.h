/*
 * deadline.h — a client-side time limit on each round trip to a database.
 *
 * statement_timeout is enforced by the server, so it cannot help when the
 * server (or the network to it) stops answering: libpq's blocking calls then
 * wait forever on a Unix socket, and for minutes on TCP. A connection that is
 * guarded (gl_deadline_guard) has every round trip that ledger/pg.c makes on
 * it armed with the guard's hop time: if no answer has come by then, one
 * watchdog thread shuts the connection's socket down, so the blocked call
 * returns at once with the connection broken (CONNECTION_BAD), in any state:
 * a query, a pipeline, a COPY, a COMMIT.
 *
 * The limit is per round trip, not per request: a request that makes many
 * quick round trips to a healthy server is never cut, and a cut means the
 * server did not answer one of them for hop_ms (longer than the service
 * role's statement_timeout, so a server that is merely slow answers with an
 * error first).
 *
 * Each armed deadline holds its own duplicate of the socket descriptor, which
 * it shuts down and closes: a descriptor number that libpq closed and the
 * process reused is never touched. The guard's state lives in libpq's
 * instance data of the connection and is freed by PQfinish.
 */
#ifndef GL_DEADLINE_H
#define GL_DEADLINE_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#define GL_DEADLINE_SLOTS 1024 /* round trips armed at once, process-wide */

/* An armed deadline; slot < 0: nothing armed. */
typedef struct {
    int slot;
    uint64_t generation;
} gl_deadline;

/* Arms a deadline of timeout_ms (> 0) on db. Without a free slot, a socket or
 * a descriptor to spare nothing is armed (logged to stderr once). */
gl_deadline gl_deadline_arm(PGconn *db, int timeout_ms);
/* Disarms; true when it had fired (the connection is broken). Safe on an
 * unarmed handle, and twice. */
bool gl_deadline_disarm(gl_deadline *d);
/* Fires every armed deadline now (a shutdown past its own deadline ends the
 * round trips that would not finish). */
void gl_deadline_fire_all(void);
/* How many deadlines fired since the start (for /metrics). */
uint64_t gl_deadline_fired_total(void);

/* Guards db: every round trip of ledger/pg.c on it gets hop_ms (> 0). False
 * when libpq could not register the guard (out of memory). */
bool gl_deadline_guard(PGconn *db, int hop_ms);
/* Whether a round trip on db was cut since the last call (clears it). */
bool gl_deadline_take_fired(PGconn *db);

/* ledger/pg.c, around one round trip: begin arms when db is guarded; end
 * disarms and returns true when the round trip was cut. */
gl_deadline gl_hop_begin(PGconn *db);
bool gl_hop_end(PGconn *db, gl_deadline *d);

#endif
