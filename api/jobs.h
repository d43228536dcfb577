/*
 * jobs.h — a write's life, from the request to the writer and back:
 * the Idempotency-Key it carries, the job that holds its commands, queueing
 * it on the region's writer, and the answer of a key that already completed.
 * Internal to api/.
 */
#ifndef GL_JOBS_H
#define GL_JOBS_H

#include "server.h"

bool gl_idem_key_valid(const char *k);
/* A job of n commands for region r (n = 0: rows of its own, e.g. mandates), or
 * NULL. r may be NULL when the endpoint learns it while filling the commands
 * in place; it must be set before the job is submitted. */
gl_job *gl_job_new(gl_req *req, const gl_region *r, size_t n);
void gl_job_free(gl_job *job);
/* Where command i was routed (regions/route.h): LEDGER_OK runs it in the
 * job's region, any other code is its result without running (e.g.
 * cross_region_requires_saga); the writer trusts it. false: out of memory. */
bool gl_job_set_route(gl_job *job, size_t i, ledger_code code);
/* Queues the job; status 0 means the answer comes after COMMIT. */
gl_response gl_submit(gl_req *req, gl_job *job);
/* The same, after taking the Idempotency-Key (required: 400 without one). */
gl_response gl_submit_keyed(gl_req *req, gl_job *job, bool key_required);
/* A refusal as the job's response (from the writer's hooks). */
bool gl_job_respond_error(gl_job *job, unsigned status, const char *code, const char *msg);
/* A JSON body (stolen) as the job's response; false when out of memory. */
bool gl_job_respond_json(gl_job *job, unsigned status, json_t *o);
/* Audits the job's change of `object` in the writer's transaction (PCI DSS
 * 10.2.1: both commit, or neither). detail (stolen, may be NULL) gets the
 * request id. */
bool gl_job_audit(PGconn *db, const gl_job *job, const char *action, const char *object, json_t *detail,
                  gl_error *err);
/* A keyed POST refused by today's authorization: its stored response if it
 * completed, 409 while it runs, 503 if the region cannot say, else `refusal`. */
gl_response gl_replay_or(gl_req *req, const gl_region *r, gl_response refusal);

#endif
