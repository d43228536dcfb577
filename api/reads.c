/*
 * reads.c — see reads.h.
 */
#include "reads.h"

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ledger/pg.h"
#include "log.h"

static gl_lease *lease_of(gl_req *req, const gl_region *r) {
    gl_pool *pool = &req->srv->pools[r - req->srv->regions.regions];
    for (int i = 0; i < req->n_leases; i++)
        if (req->leases[i].pool == pool) return &req->leases[i];
    return NULL;
}

/* The request's connection to a region, leased from the region's pool on
 * first use and held until the handler returns (gl_handle_release). NULL when
 * the region cannot serve now (breaker open, pool busy, connect failed): the
 * cause is logged and the caller answers 503. */
PGconn *gl_read_conn(gl_req *req, const gl_region *r) {
    assert(r); /* callers answer 404 for an id of no configured region before reading */
    if (req->inline_only) { /* on the HTTP thread: a read is a handler thread's job */
        req->would_block = true;
        return NULL;
    }
    gl_pool *pool = &req->srv->pools[r - req->srv->regions.regions];
    gl_lease *held = lease_of(req, r);
    if (held) return held->db;
    gl_error err;
    gl_error_clear(&err);
    int retry_after_s = 1;
    if (req->n_leases == GL_REQ_LEASES_MAX) {
        gl_log(GL_LOG_ERROR, "read_leases", "request %s needs more than %d regions at once", req->request_id,
               GL_REQ_LEASES_MAX);
        return NULL;
    }
    gl_lease *l = &req->leases[req->n_leases];
    if (!gl_pool_acquire(pool, l, &retry_after_s, &err)) {
        req->retry_after_s = retry_after_s;
        gl_log(GL_LOG_WARN, "region_unavailable", "request %s: %s%s%s", req->request_id, err.message,
               err.detail[0] ? ": " : "", err.detail);
        return NULL;
    }
    req->n_leases++;
    return l->db;
}

/* Gives one region's lease back early (a fan-out over every region holds one at a time). */
void gl_read_release(gl_req *req, const gl_region *r) {
    gl_lease *l = lease_of(req, r);
    if (!l) return;
    gl_pool_release(l);
    *l = req->leases[--req->n_leases];
}

void gl_handle_release(gl_req *req) {
    for (int i = 0; i < req->n_leases; i++) gl_pool_release(&req->leases[i]);
    req->n_leases = 0;
}

/* A read query on region r failed: logged, and its lease tells the breaker
 * when the database was the cause. */
void gl_read_failed(gl_req *req, const gl_region *r, const gl_error *err) {
    gl_lease *l = lease_of(req, r);
    if (l) gl_lease_failed(l, err);
    req->read_error = err->kind;
    snprintf(req->read_sqlstate, sizeof req->read_sqlstate, "%s", err->sqlstate);
    gl_log(GL_LOG_WARN, "read_failed", "request %s, region %s: %s%s%s", req->request_id, r->name, err->message,
           err->sqlstate[0] ? " SQLSTATE " : "", err->sqlstate);
}

bool gl_is_admin(const gl_req *req) { return gl_jwt_has_scope(&req->claims, GL_SCOPE_ADMIN); }

bool gl_region_allowed(const gl_req *req, const gl_region *r) {
    if (!req->claims.has_regions) return true;
    for (size_t i = 0; i < req->claims.n_regions; i++)
        if (strcmp(req->claims.regions[i], r->name) == 0) return true;
    return false;
}

/* The `regions` claim holds on every route (API.md): an id names its region,
 * so a request about an id of a region the token does not cover is refused
 * before anything is read. An id of no configured region passes here and is
 * answered 404 by the handler, like an unknown id of a known region. */
bool gl_id_region_allowed(const gl_req *req, const gl_id *id) {
    const gl_region *r = gl_region_of_id(&req->srv->regions, id);
    return !r || gl_region_allowed(req, r);
}

/* 1 owned (or admin), 0 missing, 2 someone else's (callers answer 404 for reads:
 * existence is not leaked), -1 region unavailable. */
int gl_account_visible(gl_req *req, const gl_id *id, ledger_account *out) {
    const gl_region *r = gl_region_of_id(&req->srv->regions, id);
    if (!r) return 0;
    PGconn *db = gl_read_conn(req, r);
    if (!db) return -1;
    gl_error err;
    int found = ledger_account_get(db, id, out, &err);
    if (found < 0) gl_read_failed(req, r, &err);
    if (found <= 0) return found;
    return gl_is_admin(req) || strcmp(out->owner, req->claims.sub) == 0 ? 1 : 2;
}

int gl_transfer_visible(gl_req *req, const gl_id *id, ledger_transfer *out) {
    const gl_region *r = gl_region_of_id(&req->srv->regions, id);
    if (!r) return 0;
    PGconn *db = gl_read_conn(req, r);
    if (!db) return -1;
    gl_error err;
    int found = ledger_transfer_get(db, id, out, &err);
    if (found < 0) {
        gl_read_failed(req, r, &err);
        return -1;
    }
    return found && (gl_is_admin(req) || strcmp(out->owner, req->claims.sub) == 0);
}

/* Account owners never change, so a payer's owner is cached: the hot path of a
 * transfer then needs no read query. Direct-mapped, fixed size, striped locks.
 * With it whether the account may go below zero (no floor flag), which does
 * not change either (a migration may only add the flag: stricter). */
#define OWNER_CACHE_SLOTS 65536
#define OWNER_CACHE_STRIPES 64

typedef struct {
    gl_id id;
    char owner[LEDGER_OWNER_MAX + 1];
    bool unbounded;
} owner_slot;

static owner_slot *owner_cache;
static pthread_mutex_t owner_locks[OWNER_CACHE_STRIPES];
static pthread_once_t owner_once = PTHREAD_ONCE_INIT;

static void owner_cache_init(void) {
    owner_cache = calloc(OWNER_CACHE_SLOTS, sizeof *owner_cache);
    for (int i = 0; i < OWNER_CACHE_STRIPES; i++) pthread_mutex_init(&owner_locks[i], NULL);
}

static size_t owner_slot_of(const gl_id *id) {
    uint32_t h = 0; /* the random tail of a UUIDv7 spreads well */
    for (int i = 10; i < 16; i++) h = h * 31u + id->b[i];
    return h % OWNER_CACHE_SLOTS;
}

static bool owner_cached(const gl_id *id, char *owner, size_t cap, bool *unbounded) {
    pthread_once(&owner_once, owner_cache_init);
    /* An empty slot holds the nil id: a nil id must not find it. */
    if (!owner_cache || gl_id_is_nil(id)) return false;
    size_t i = owner_slot_of(id);
    pthread_mutex_lock(&owner_locks[i % OWNER_CACHE_STRIPES]);
    bool hit = gl_id_cmp(&owner_cache[i].id, id) == 0;
    if (hit) {
        snprintf(owner, cap, "%s", owner_cache[i].owner);
        *unbounded = owner_cache[i].unbounded;
    }
    pthread_mutex_unlock(&owner_locks[i % OWNER_CACHE_STRIPES]);
    return hit;
}

static void owner_remember(const gl_id *id, const char *owner, bool unbounded) {
    if (!owner_cache) return;
    size_t i = owner_slot_of(id);
    pthread_mutex_lock(&owner_locks[i % OWNER_CACHE_STRIPES]);
    owner_cache[i].id = *id;
    snprintf(owner_cache[i].owner, sizeof owner_cache[i].owner, "%s", owner);
    owner_cache[i].unbounded = unbounded;
    pthread_mutex_unlock(&owner_locks[i % OWNER_CACHE_STRIPES]);
}

/* An account without its floor flag may go below zero when debited. */
bool gl_account_unbounded(uint32_t flags) { return !(flags & LEDGER_AF_DEBITS_MUST_NOT_EXCEED_CREDITS); }

/* Like gl_account_visible, when only the owner matters (1 / 0 / 2 / -1);
 * *unbounded (may be NULL): whether debits may take it below zero. */
int gl_account_owned(gl_req *req, const gl_id *id, bool *unbounded) {
    char owner[LEDGER_OWNER_MAX + 1];
    bool unb = false;
    int v;
    if (owner_cached(id, owner, sizeof owner, &unb)) {
        v = gl_is_admin(req) || strcmp(owner, req->claims.sub) == 0 ? 1 : 2;
    } else {
        ledger_account a;
        v = gl_account_visible(req, id, &a);
        unb = v > 0 && gl_account_unbounded(a.flags);
        if (v > 0) owner_remember(id, a.owner, unb);
    }
    if (unbounded) *unbounded = unb;
    return v;
}

/* The answer to a read that failed (gl_read_conn or gl_read_failed logged why): 503
 * when the region could not serve it (no connection, a timeout, a lost
 * connection), 400 when the database refused the request's data (SQLSTATE
 * class 22: a value the checks before it let through), else 500. */
gl_response gl_read_error(const gl_req *req) {
    if (req->read_error == GL_ERR_DB && strncmp(req->read_sqlstate, "22", 2) == 0)
        return gl_respond_error(req, 400, "invalid_value", "the database refused a value of the request", NULL);
    if (req->read_error != GL_ERR_NONE && req->read_error != GL_ERR_UNAVAILABLE)
        return gl_respond_error(req, 500, "internal", "a read failed", NULL);
    gl_response r = gl_respond_error(req, 503, "region_unavailable", "the region is unavailable, retry later", NULL);
    snprintf(r.retry_after, sizeof r.retry_after, "%d", req->retry_after_s > 0 ? req->retry_after_s : 1);
    return r;
}

