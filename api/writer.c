/*
 * writer.c — one writer thread per region: group commit.
 *
 * Requests that change the ledger queue a job here; the writer takes every job
 * waiting (up to batch_max commands), answers idempotent replays from the
 * database, runs the rest as ONE engine batch whose before-commit hook builds
 * each job's response and stores its idempotency row in the same transaction,
 * and resumes the suspended connections only after COMMIT. Between batches it
 * expires timed-out holds and idempotency keys past their lifetime.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../ledger/pg.h"
#include "../regions/route.h"
#include "server.h"

#define HOUSEKEEPING_INTERVAL_S 5
#define IDEM_RACE_RETRIES 3

gl_writer *gl_writer_of(gl_server *srv, const gl_region *r) {
    for (int i = 0; i < srv->regions.n_regions; i++)
        if (srv->writers[i].region == r) return &srv->writers[i];
    return NULL;
}

bool gl_writer_submit(gl_server *srv, gl_job *job) {
    gl_writer *w = gl_writer_of(srv, job->region);
    if (!w) return false;
    pthread_mutex_lock(&w->mu);
    bool ok = !w->stopping && w->depth < srv->cfg.queue_depth;
    if (ok) {
        job->next = NULL;
        if (w->tail) w->tail->next = job;
        else w->head = job;
        w->tail = job;
        w->depth++;
        atomic_store(&w->depth_seen, w->depth);
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return ok;
}

static void job_finish(gl_job *job) {
    atomic_store(&job->done, true);
    MHD_resume_connection(job->conn);
}

static void job_fail(gl_job *job, unsigned status, const char *type, const char *code, const char *msg) {
    free(job->resp.body);
    job->resp = (gl_response){.status = status};
    job->resp.body = gl_error_body(type, code, msg, NULL, job->request_id);
    if (status == 503) snprintf(job->resp.retry_after, sizeof job->resp.retry_after, "1");
    job_finish(job);
}

/* ---------- idempotency ---------- */

static void hex32(const unsigned char *h, char out[65]) {
    for (int i = 0; i < 32; i++) snprintf(out + 2 * (size_t)i, 3, "%02x", h[i]);
}

/* A stored response for this job's key: replay it (same request) or refuse (another request). */
static int idem_lookup(PGconn *db, gl_job *job, gl_error *err) {
    const char *p[2] = {job->principal, job->idem_key};
    PGresult *r = gl_pg_exec(db,
                             "SELECT path, encode(request_hash, 'hex'), status, response_body FROM idempotency_keys "
                             "WHERE principal = $1 AND key = $2 AND expires_at > now()",
                             2, p, err);
    if (!r) return -1;
    int found = PQntuples(r) == 1;
    if (found) {
        char hash[65];
        hex32(job->request_hash, hash);
        bool same = strcmp(PQgetvalue(r, 0, 0), job->path) == 0 && strcmp(PQgetvalue(r, 0, 1), hash) == 0;
        free(job->resp.body);
        if (same) {
            job->resp = (gl_response){.status = (unsigned)strtoul(PQgetvalue(r, 0, 2), NULL, 10), .replayed = true};
            job->resp.body = strdup(PQgetvalue(r, 0, 3));
        } else {
            job->resp = (gl_response){.status = 422};
            job->resp.body = gl_error_body("rejected", "idempotency_key_reused",
                                           "this Idempotency-Key was used with another request", NULL, job->request_id);
        }
    }
    PQclear(r);
    return found;
}

static bool idem_store(PGconn *db, const gl_server *srv, const gl_job *job, gl_error *err) {
    char hash[68], status[8], ttl[16];
    memcpy(hash, "\\x", 2);
    hex32(job->request_hash, hash + 2);
    snprintf(status, sizeof status, "%u", job->resp.status);
    snprintf(ttl, sizeof ttl, "%d", srv->cfg.idem_ttl_h);
    const char *p[7] = {job->principal, job->idem_key, job->method, job->path, hash, status, job->resp.body};
    const char *q[8] = {p[0], p[1], p[2], p[3], p[4], p[5], p[6], ttl};
    PGresult *r = gl_pg_exec(db,
                             "INSERT INTO idempotency_keys (principal, key, method, path, request_hash, status, "
                             "response_body, expires_at) VALUES ($1, $2, $3, $4, $5::bytea, $6::int2, $7, "
                             "now() + make_interval(hours => $8::int)) ON CONFLICT DO NOTHING",
                             8, q, err);
    if (!r) return false;
    bool inserted = strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    /* Another process committed this key meanwhile: roll back, and the retry replays it. */
    if (!inserted) gl_error_set(err, GL_ERR_INVALID, "idempotency key race");
    return inserted;
}

/* ---------- the batch ---------- */

typedef struct {
    gl_server *srv;
    gl_job **jobs;
    size_t n_jobs;
} batch_ctx;

static bool before_commit(void *arg, PGconn *db, const ledger_result *results, size_t n, gl_error *err) {
    batch_ctx *b = arg;
    size_t off = 0;
    for (size_t j = 0; j < b->n_jobs; j++) {
        gl_job *job = b->jobs[j];
        if (off + job->n > n) break;
        memcpy(job->results, results + off, job->n * sizeof *results);
        off += job->n;
        free(job->resp.body);
        job->resp = (gl_response){0};
        if (!job->respond(job, db, err)) return false;
        /* A 400 from the engine's validation had no effect: not stored, so the client may fix and retry. */
        if (job->idem_key[0] && job->resp.status != 400 && !idem_store(db, b->srv, job, err)) return false;
    }
    return true;
}

static bool ensure_connected(gl_writer *w) {
    if (w->db && PQstatus(w->db) == CONNECTION_OK) return true;
    PQfinish(w->db);
    gl_error e;
    w->db = gl_region_connect(w->region, GL_ROLE_SERVICE, &e);
    atomic_store(&w->up, w->db != NULL);
    if (!w->db) fprintf(stderr, "{\"level\":\"error\",\"event\":\"region_down\",\"region\":\"%s\"}\n", w->region->name);
    return w->db != NULL;
}

/* Answers replays; returns the jobs that still need executing (compacted in place). */
static size_t resolve_replays(gl_writer *w, gl_job **jobs, size_t n, gl_error *err, bool *db_failed) {
    size_t m = 0;
    for (size_t j = 0; j < n; j++) {
        int found = jobs[j]->idem_key[0] ? idem_lookup(w->db, jobs[j], err) : 0;
        if (found < 0) {
            *db_failed = true;
            return n;
        }
        if (found) job_finish(jobs[j]);
        else jobs[m++] = jobs[j];
    }
    return m;
}

static void run_batch(gl_writer *w, gl_job **jobs, size_t n) {
    gl_error err;
    for (int attempt = 0; n > 0; attempt++) {
        bool db_failed = false;
        if (!ensure_connected(w)) break;
        n = resolve_replays(w, jobs, n, &err, &db_failed);
        if (db_failed || n == 0) break;
        size_t total = 0;
        for (size_t j = 0; j < n; j++) total += jobs[j]->n;
        ledger_cmd *cmds = malloc(total * sizeof *cmds);
        ledger_result *res = malloc(total * sizeof *res);
        bool ok = cmds && res;
        for (size_t j = 0, off = 0; ok && j < n; off += jobs[j]->n, j++)
            memcpy(cmds + off, jobs[j]->cmds, jobs[j]->n * sizeof *cmds);
        batch_ctx ctx = {w->srv, jobs, n};
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        ok = ok && gl_route_execute_hooked(&w->srv->regions, w->region, w->db, cmds, total, res, before_commit, &ctx,
                                           &err);
        free(cmds);
        free(res);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        int ri = (int)(w - w->srv->writers);
        uint64_t us = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000LL + (t1.tv_nsec - t0.tv_nsec) / 1000);
        if (ok) gl_metrics_batch(w->srv->metrics, ri, total, us);
        else gl_metrics_db_error(w->srv->metrics, ri);
        if (ok) {
            for (size_t j = 0; j < n; j++) job_finish(jobs[j]);
            return;
        }
        bool race = strcmp(err.message, "idempotency key race") == 0;
        if (!race || attempt >= IDEM_RACE_RETRIES) break;
    }
    bool down = !w->db || PQstatus(w->db) != CONNECTION_OK;
    if (down) atomic_store(&w->up, false);
    for (size_t j = 0; j < n; j++) {
        if (atomic_load(&jobs[j]->done)) continue;
        if (down) job_fail(jobs[j], 503, "unavailable", "region_unavailable", "the account's region is unavailable");
        else job_fail(jobs[j], 500, "internal", "internal", "the batch could not be committed");
    }
}

/* Takes queued jobs up to batch_max commands (at least one job). */
static size_t take_jobs(gl_writer *w, gl_job **out, size_t cap) {
    size_t n = 0, cmds = 0;
    while (w->head && n < cap) {
        gl_job *j = w->head;
        if (n > 0 && cmds + j->n > (size_t)w->srv->cfg.batch_max) break;
        w->head = j->next;
        if (!w->head) w->tail = NULL;
        w->depth--;
        atomic_store(&w->depth_seen, w->depth);
        out[n++] = j;
        cmds += j->n;
    }
    return n;
}

static void housekeeping(gl_writer *w) {
    if (!ensure_connected(w)) return;
    ledger_ctx ctx = {.partition_code = w->region->code};
    gl_error err;
    if (ledger_expire_due(w->db, &ctx, 1000, &err) < 0)
        fprintf(stderr, "{\"level\":\"warn\",\"event\":\"expire_failed\",\"region\":\"%s\"}\n", w->region->name);
    PQclear(PQexec(w->db, "DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(SELECT ctid FROM idempotency_keys "
                          "WHERE expires_at < now() LIMIT 10000))"));
}

static void *writer_main(void *arg) {
    gl_writer *w = arg;
    size_t cap = (size_t)w->srv->cfg.batch_max;
    gl_job **jobs = calloc(cap, sizeof *jobs);
    time_t last_housekeeping = 0;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (!w->head && !w->stopping) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 1;
            pthread_cond_timedwait(&w->cv, &w->mu, &until);
            if (!w->head) break;
        }
        bool stop = w->stopping && !w->head;
        size_t n = jobs ? take_jobs(w, jobs, cap) : 0;
        pthread_mutex_unlock(&w->mu);
        if (stop) break;
        if (n > 0) run_batch(w, jobs, n);
        time_t now = time(NULL);
        if (now - last_housekeeping >= HOUSEKEEPING_INTERVAL_S) {
            housekeeping(w);
            last_housekeeping = now;
        }
    }
    free(jobs);
    PQfinish(w->db);
    return NULL;
}

bool gl_writers_start(gl_server *srv, gl_error *err) {
    int n = srv->regions.n_regions;
    srv->writers = calloc((size_t)n, sizeof *srv->writers);
    if (!srv->writers) {
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory");
        return false;
    }
    for (int i = 0; i < n; i++) {
        gl_writer *w = &srv->writers[i];
        w->region = &srv->regions.regions[i];
        w->srv = srv;
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, NULL);
        ensure_connected(w); /* a region that is down now is retried per batch */
        if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
            gl_error_set(err, GL_ERR_INTERNAL, "cannot start the writer of region %s", w->region->name);
            return false;
        }
    }
    return true;
}

/* Finishes every queued job (in-flight batches commit), then joins the threads. */
void gl_writers_stop(gl_server *srv) {
    for (int i = 0; srv->writers && i < srv->regions.n_regions; i++) {
        gl_writer *w = &srv->writers[i];
        pthread_mutex_lock(&w->mu);
        w->stopping = true;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
    for (int i = 0; srv->writers && i < srv->regions.n_regions; i++) pthread_join(srv->writers[i].thread, NULL);
}
