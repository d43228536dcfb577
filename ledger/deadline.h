/*
 * deadline.h — a client-side time limit on whatever a thread does with a
 * libpq connection.
 *
 * statement_timeout is enforced by the server, so it cannot help when the
 * server (or the network to it) stops answering: libpq's blocking calls then
 * wait forever on a Unix socket, and for minutes on TCP. A thread arms a
 * deadline on its connection before a database hop and disarms it after; if
 * the deadline passes first, one watchdog thread shuts the connection's socket
 * down, so the blocked call returns at once with the connection broken
 * (CONNECTION_BAD), in any state: a query, a pipeline, a COPY, a COMMIT.
 *
 * The socket is shut down only while the slot is armed, and the owner disarms
 * (under the same lock) before it closes the connection, so a descriptor that
 * was closed and reused elsewhere is never touched.
 */
#ifndef GL_DEADLINE_H
#define GL_DEADLINE_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#define GL_DEADLINE_SLOTS 1024 /* connections guarded at once, process-wide */

/* A handle on an armed deadline; slot < 0: nothing armed (no slot free, no socket). */
typedef struct {
    int slot;
    uint64_t generation;
} gl_deadline;

/* Arms a deadline of timeout_ms (> 0) on db. Without a free slot or a socket
 * nothing is armed (the server-side timeouts still apply). */
gl_deadline gl_deadline_arm(PGconn *db, int timeout_ms);
/* Disarms; true when the deadline had fired (the connection is then broken
 * and must be closed). Safe on an unarmed handle. */
bool gl_deadline_disarm(gl_deadline *d);
/* Fires every armed deadline now (a shutdown whose own deadline passed ends
 * the database hops that would not finish). */
void gl_deadline_fire_all(void);
/* How many deadlines fired since the start (for /metrics). */
uint64_t gl_deadline_fired_total(void);

#endif
