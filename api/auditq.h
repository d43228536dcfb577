/*
 * auditq.h — ledgerd's audit trail for events that have no transaction of
 * their own to join: authentication failures, denied requests, admin requests
 * (PCI DSS 10.2.1.2, 10.2.1.4). A bounded queue, drained by one thread that
 * appends to the hash-chained audit_log (ledger/audit.h) of the audit region
 * (ledgerd.audit_region, default: the first region) in batches.
 *
 * Recording never blocks a request: when the queue is full the event is
 * dropped, counted (gl_auditq_dropped) and logged, never silently lost.
 * Events that change state (mandates) are appended inside their own batch's
 * transaction instead, so they commit with the change they record.
 */
#ifndef GL_AUDITQ_H
#define GL_AUDITQ_H

#include <stdbool.h>
#include <stdint.h>

#include "../ledger/audit.h"
#include "../regions/regions.h"

#define GL_AUDITQ_CAP 4096     /* events waiting */
#define GL_AUDITQ_FLUSH_MS 500 /* the longest an event waits while the region is up */

typedef struct gl_auditq gl_auditq;

/* Starts the draining thread for region `r`; NULL on failure (err set). */
gl_auditq *gl_auditq_start(const gl_region *r, gl_error *err);
/* Queues one event (strings are copied; detail_text only, no json_t). */
void gl_auditq_record(gl_auditq *q, const gl_audit_event *ev);
/* Appends what is queued (one last try) and stops the thread, waiting at most
 * deadline_ms (past it the events left are logged as lost and the thread is
 * left to the exiting process). */
void gl_auditq_stop(gl_auditq *q, int deadline_ms);
uint64_t gl_auditq_dropped(const gl_auditq *q);
uint64_t gl_auditq_written(const gl_auditq *q);

#endif
