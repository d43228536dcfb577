/*
 * reads.h — the reads a request makes before it becomes a job (api/README.md):
 * a connection leased per region from that region's read pool and held until
 * the handler returns, what a failed read answers, whether the caller may see
 * an account or a transfer, and the cache of account owners that spares the
 * hot path of a transfer its read. Internal to api/.
 */
#ifndef GL_READS_H
#define GL_READS_H

#include "server.h"

bool gl_is_admin(const gl_req *req);
/* The token's `regions` claim allows region r (no claim: every region). */
bool gl_region_allowed(const gl_req *req, const gl_region *r);
/* The same for the region an id names; an id of no configured region passes
 * (its handler answers 404, as for an unknown id of a known region). */
bool gl_id_region_allowed(const gl_req *req, const gl_id *id);

/* The request's connection to region r (leased on first use, held until
 * gl_handle_release); NULL when the region cannot serve now (logged), or on
 * the HTTP thread (req->would_block: the request runs again on a handler thread). */
PGconn *gl_read_conn(gl_req *req, const gl_region *r);
/* Gives region r's lease back early (a fan-out holds one region at a time). */
void gl_read_release(gl_req *req, const gl_region *r);
/* A read on region r failed: logged, and the breaker told when the database was the cause. */
void gl_read_failed(gl_req *req, const gl_region *r, const gl_error *err);
/* The answer to a failed read: 503 (region unavailable), 400 (SQLSTATE class 22) or 500. */
gl_response gl_read_error(const gl_req *req);

/* 1 the caller's (or admin), 0 missing, 2 someone else's, -1 region unavailable. */
int gl_account_visible(gl_req *req, const gl_id *id, ledger_account *out);
/* 1 the caller's (or admin), 0 missing or someone else's, -1 region unavailable. */
int gl_transfer_visible(gl_req *req, const gl_id *id, ledger_transfer *out);
/* Like gl_account_visible when only the owner matters, from the owner cache
 * when it can; *unbounded (may be NULL): whether debits may take it below zero. */
int gl_account_owned(gl_req *req, const gl_id *id, bool *unbounded);
/* An account without its floor flag may go below zero when debited. */
bool gl_account_unbounded(uint32_t flags);

#endif
