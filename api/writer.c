/*
 * writer.c — per region, a queue and writers_per_region threads: group commit.
 *
 * Requests that change the ledger queue a job here; the writer takes every job
 * waiting (up to batch_max commands), answers idempotent replays from the
 * database, runs the rest as ONE engine batch whose before-commit hook builds
 * each job's response and stores its idempotency row in the same transaction,
 * and resumes the suspended connections only after COMMIT. Between batches it
 * expires timed-out holds and idempotency keys past their lifetime.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../ledger/clock.h"
#include "../ledger/deadline.h"
#include "../ledger/pg.h"
#include "../ledger/text.h"
#include "../regions/route.h"
#include "server.h"

#define HOUSEKEEPING_INTERVAL_S 5
#define IDEM_RACE_RETRIES 3
#define IDEM_RACE "idempotency_key_race" /* the constraint name of a batch that lost one (sql/0009) */

gl_writer *gl_writer_of(gl_server *srv, const gl_region *r) {
    for (int i = 0; i < srv->regions.n_regions; i++)
        if (srv->writers[i].region == r) return &srv->writers[i];
    return NULL;
}

bool gl_writer_submit(gl_server *srv, gl_job *job, int *retry_after_s) {
    gl_writer *w = gl_writer_of(srv, job->region);
    *retry_after_s = 1;
    if (!w || gl_breaker_refuses(w->breaker, retry_after_s)) return false; /* down: no point queueing */
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

static void job_fail(gl_job *job, unsigned status, const char *type, const char *code, const char *msg,
                     int retry_after_s) {
    free(job->resp.body);
    job->resp = (gl_response){.status = status, .code = code};
    job->resp.body = gl_error_body(type, code, msg, NULL, job->request_id);
    if (status == 503) snprintf(job->resp.retry_after, sizeof job->resp.retry_after, "%d", retry_after_s);
    job_finish(job);
}

/* Every job of a batch that cannot run: 503 region_unavailable, cause logged once. */
static void fail_unavailable(gl_writer *w, gl_job **jobs, size_t n, int retry_after_s, const char *cause) {
    if (n == 0) return;
    gl_log(GL_LOG_WARN, "batch_unavailable", "region %s: %zu jobs answered 503: %s", w->region->name, n, cause);
    for (size_t j = 0; j < n; j++)
        job_fail(jobs[j], 503, "unavailable", "region_unavailable", "the account's region is unavailable, retry later",
                 retry_after_s);
}

/* ---------- idempotency ---------- */

/* Answers from a stored row: the same request is replayed, another one refused. */
static void idem_answer(gl_job *job, const PGresult *r, int row) {
    char hash[65];
    gl_hex(job->request_hash, 32, hash);
    bool same = strcmp(PQgetvalue(r, row, 2), job->path) == 0 && strcmp(PQgetvalue(r, row, 3), hash) == 0;
    free(job->resp.body);
    if (same) {
        job->resp = (gl_response){.status = (unsigned)strtoul(PQgetvalue(r, row, 4), NULL, 10), .replayed = true};
        job->resp.body = strdup(PQgetvalue(r, row, 5));
    } else {
        job->resp = (gl_response){.status = 422, .code = "idempotency_key_reused"};
        job->resp.body = gl_error_body("rejected", "idempotency_key_reused",
                                       "this Idempotency-Key was used with another request", NULL, job->request_id);
    }
}

/* One query for every keyed job of the batch; replayed jobs get `answered`. */
static bool idem_lookup_all(PGconn *db, gl_job **jobs, size_t n, gl_error *err) {
    gl_buf principals = {0}, keys = {0};
    gl_bin_array_begin(&principals, GL_OID_TEXT);
    gl_bin_array_begin(&keys, GL_OID_TEXT);
    int32_t m = 0;
    for (size_t j = 0; j < n; j++) {
        if (!jobs[j]->idem_key[0]) continue;
        gl_bin_text(&principals, jobs[j]->principal);
        gl_bin_text(&keys, jobs[j]->idem_key);
        m++;
    }
    bool ok = true;
    if (m > 0) {
        gl_bin_array_finish(&principals, m);
        gl_bin_array_finish(&keys, m);
        gl_buf *p[2] = {&principals, &keys};
        PGresult *r = gl_pg_exec_bin(db,
                                     "SELECT i.principal, i.key, i.path, encode(i.request_hash, 'hex'), i.status, "
                                     "i.response_body FROM idempotency_keys i JOIN unnest($1::text[], $2::text[]) "
                                     "AS u(principal, key) ON i.principal = u.principal AND i.key = u.key "
                                     "WHERE i.expires_at > now()",
                                     2, p, err);
        ok = r != NULL;
        for (int row = 0; ok && row < PQntuples(r); row++) {
            for (size_t j = 0; j < n; j++) {
                gl_job *job = jobs[j];
                if (!job->answered && job->idem_key[0] && strcmp(job->principal, PQgetvalue(r, row, 0)) == 0 &&
                    strcmp(job->idem_key, PQgetvalue(r, row, 1)) == 0) {
                    idem_answer(job, r, row);
                    job->answered = true;
                }
            }
        }
        PQclear(r);
    }
    gl_buf_free(&principals);
    gl_buf_free(&keys);
    return ok;
}

/* Stores every keyed job's response in one INSERT, inside the batch's transaction. */
static bool idem_store_all(PGconn *db, const gl_server *srv, gl_job **jobs, size_t n, gl_error *err) {
    static const unsigned oids[7] = {GL_OID_TEXT, GL_OID_TEXT, GL_OID_TEXT, GL_OID_TEXT,
                                     GL_OID_TEXT, GL_OID_INT4, GL_OID_TEXT};
    gl_buf col[7] = {{0}};
    for (int c = 0; c < 7; c++) gl_bin_array_begin(&col[c], oids[c]);
    int32_t m = 0;
    for (size_t j = 0; j < n; j++) {
        const gl_job *job = jobs[j];
        /* A 400 from the engine's validation had no effect: not stored, so the
         * client may fix and retry. A job answered from a stored row has one. */
        if (!job->idem_key[0] || job->resp.status == 400 || job->answered) continue;
        char hash[65];
        gl_hex(job->request_hash, 32, hash);
        gl_bin_text(&col[0], job->principal);
        gl_bin_text(&col[1], job->idem_key);
        gl_bin_text(&col[2], job->method);
        gl_bin_text(&col[3], job->path);
        gl_bin_text(&col[4], hash);
        gl_bin_i32(&col[5], (int32_t)job->resp.status);
        gl_bin_text(&col[6], job->resp.body ? job->resp.body : "{}");
        m++;
    }
    bool ok = true;
    if (m > 0) {
        gl_buf *p[9];
        for (int c = 0; c < 7; c++) {
            gl_bin_array_finish(&col[c], m);
            p[c] = &col[c];
        }
        gl_buf ttl = {0}, count = {0};
        gl_bin_i32_raw(&ttl, srv->cfg.idem_ttl_h);
        gl_bin_i32_raw(&count, m);
        p[7] = &ttl;
        p[8] = &count;
        /* A live key already stored (a replay the batch ran without looking up,
         * or another process's commit) fails the count check, and with it the
         * batch, which is rolled back; the retry looks the keys up and replays.
         * An expired row that housekeeping has not deleted yet is replaced.
         * In a pipelined batch this is only queued, and fails the COMMIT queued after it. */
        ok = gl_pg_run_bin(db,
                           "WITH stored AS (INSERT INTO idempotency_keys AS i (principal, key, method, path, "
                           "request_hash, status, response_body, expires_at) SELECT u.p, u.k, u.m, u.path, "
                           "decode(u.h, 'hex'), u.s, u.b, now() + make_interval(hours => $8) FROM unnest($1::text[], "
                           "$2::text[], $3::text[], $4::text[], $5::text[], $6::int4[], $7::text[]) "
                           "AS u(p, k, m, path, h, s, b) ON CONFLICT (principal, key) DO UPDATE SET "
                           "method = excluded.method, path = excluded.path, request_hash = excluded.request_hash, "
                           "status = excluded.status, response_body = excluded.response_body, created_at = now(), "
                           "expires_at = excluded.expires_at WHERE i.expires_at <= now() RETURNING 1) "
                           "SELECT expect_rows(count(*), $9, '" IDEM_RACE "') FROM stored",
                           9, p, err);
        gl_buf_free(&ttl);
        gl_buf_free(&count);
    }
    for (int c = 0; c < 7; c++) gl_buf_free(&col[c]);
    return ok;
}

/* ---------- the batch ---------- */

typedef struct {
    gl_server *srv;
    gl_job **jobs;
    size_t n_jobs;
} batch_ctx;

static bool refused_with_key(const gl_job *job) { return job->idem_key[0] && job->resp.status == 400; }

/* A job the engine refused with 400 stores no key (nothing happened), so the
 * idempotency insert does not check its key: when that key is already stored,
 * the stored row answers (replay, or 422 for another request), as the lookup
 * before the batch used to. One query, only in a batch with such a job. */
static bool answer_refused_from_stored_keys(PGconn *db, gl_job **jobs, size_t n, gl_error *err) {
    size_t m = 0;
    for (size_t j = 0; j < n; j++) m += refused_with_key(jobs[j]);
    if (m == 0) return true;
    gl_job **refused = calloc(m, sizeof(gl_job *));
    if (!refused) {
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory");
        return false;
    }
    m = 0;
    for (size_t j = 0; j < n; j++)
        if (refused_with_key(jobs[j])) refused[m++] = jobs[j];
    bool ok = idem_lookup_all(db, refused, m, err);
    free(refused);
    return ok;
}

static bool before_commit(void *arg, PGconn *db, const ledger_result *results, size_t n, gl_error *err) {
    batch_ctx *b = arg;
    size_t off = 0;
    for (size_t j = 0; j < b->n_jobs; j++) {
        gl_job *job = b->jobs[j];
        if (off + job->n > n) break;
        if (job->n) memcpy(job->results, results + off, job->n * sizeof *results);
        off += job->n;
        free(job->resp.body);
        job->resp = (gl_response){0};
        if (!job->respond(job, db, err)) return false;
    }
    return answer_refused_from_stored_keys(db, b->jobs, b->n_jobs, err) &&
           idem_store_all(db, b->srv, b->jobs, b->n_jobs, err);
}

/* A batch of command-less jobs (mandates) has no engine batch to ride on: the
 * same hook runs in a transaction of its own. */
static bool run_without_engine(PGconn *db, batch_ctx *ctx, gl_error *err) {
    if (!gl_pg_run(db, "BEGIN", 0, NULL, err)) return false;
    if (before_commit(ctx, db, NULL, 0, err) && gl_pg_run(db, "COMMIT", 0, NULL, err)) return true;
    gl_pg_rollback(db);
    return false;
}

/* Connects if needed; bounded by the region's connect timeout. A failure trips
 * the breaker, so the next attempt waits for its open period (the backoff). */
static bool ensure_connected(gl_worker *k, gl_error *err) {
    gl_writer *w = k->w;
    if (gl_pg_reusable(k->db)) return true;
    PQfinish(k->db);
    k->db = gl_region_connect(w->region, GL_ROLE_SERVICE, err);
    atomic_store(&w->up, k->db != NULL);
    if (!k->db) {
        gl_breaker_trip(w->breaker);
        gl_log(GL_LOG_ERROR, "region_down", "region %s: %s%s%s", w->region->name, err->message,
               err->detail[0] ? ": " : "", err->detail);
    }
    return k->db != NULL;
}

/* After a failed try: the connection is dropped when it is not usable or the
 * server said it cannot serve (read-only after a failover, shutting down), so
 * the next batch connects again (to the new primary, with a multi-host
 * conninfo); the breaker hears what the failure says of the database: a cut
 * round trip trips it, an unavailable server counts against it, an answer
 * (an error of the statement, a statement or lock timeout) is a sign of life. */
static void after_failure(gl_worker *k, bool fired, const gl_error *err) {
    gl_writer *w = k->w;
    if (fired) atomic_fetch_add(&w->deadlines_fired, 1);
    if (fired || err->kind == GL_ERR_UNAVAILABLE || !gl_pg_reusable(k->db)) {
        PQfinish(k->db);
        k->db = NULL;
        atomic_store(&w->up, false);
    }
    if (fired) gl_breaker_trip(w->breaker);
    else if (err->kind == GL_ERR_UNAVAILABLE) gl_breaker_failure(w->breaker);
    else gl_breaker_success(w->breaker);
}

/* Answers replays; returns the jobs that still need executing (compacted in place). */
static size_t resolve_replays(gl_worker *k, gl_job **jobs, size_t n, gl_error *err, bool *db_failed) {
    if (!idem_lookup_all(k->db, jobs, n, err)) {
        *db_failed = true;
        return n;
    }
    size_t m = 0;
    for (size_t j = 0; j < n; j++) {
        /* After job_finish the connection's thread may free the job: touch it no more. */
        if (jobs[j]->answered) job_finish(jobs[j]);
        else jobs[m++] = jobs[j];
    }
    return m;
}

/* Whether any job of the batch carries an Idempotency-Key. */
static bool any_keyed(gl_job **jobs, size_t n) {
    for (size_t j = 0; j < n; j++)
        if (jobs[j]->idem_key[0]) return true;
    return false;
}

/* The batch's commands in one array, as the engine takes them: the one copy
 * of a command between its endpoint and the engine. *refused stays NULL
 * unless an endpoint refused a command (gl_job_set_route); then it holds
 * every command's route in the same order. */
static bool gather_commands(gl_job **jobs, size_t n, size_t total, ledger_cmd **cmds, ledger_code **refused) {
    bool any_refused = false;
    for (size_t j = 0; j < n; j++) any_refused = any_refused || jobs[j]->refused;
    *cmds = malloc((total + 1) * sizeof **cmds);
    *refused = any_refused ? calloc(total, sizeof **refused) : NULL; /* calloc: LEDGER_OK */
    if (!*cmds || (any_refused && !*refused)) return false;
    for (size_t j = 0, off = 0; j < n; off += jobs[j]->n, j++) {
        if (jobs[j]->n) memcpy(*cmds + off, jobs[j]->cmds, jobs[j]->n * sizeof **cmds); /* mandates: none */
        if (jobs[j]->refused) memcpy(*refused + off, jobs[j]->refused, jobs[j]->n * sizeof **refused);
    }
    return true;
}

/* One try of a batch on the worker's connection: replays answered first when
 * asked (n shrinks to the jobs left to run), then one engine batch whose hook
 * builds the responses and stores the keys. */
static bool try_batch(gl_worker *k, gl_job **jobs, size_t *n, bool look_up_first, gl_error *err) {
    gl_writer *w = k->w;
    if (look_up_first && any_keyed(jobs, *n)) {
        size_t before = *n;
        bool db_failed = false;
        *n = resolve_replays(k, jobs, *n, err, &db_failed);
        if (db_failed) return false;
        atomic_store(&w->lookup_first, *n < before);
        if (*n == 0) return true;
    }
    size_t total = 0;
    for (size_t j = 0; j < *n; j++) total += jobs[j]->n;
    ledger_cmd *cmds = NULL;
    ledger_code *refused = NULL;
    ledger_result *res = malloc((total + 1) * sizeof *res);
    bool ok = res && gather_commands(jobs, *n, total, &cmds, &refused);
    if (!ok) gl_error_set(err, GL_ERR_INTERNAL, "out of memory for a batch of %zu commands", total);
    batch_ctx ctx = {w->srv, jobs, *n};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (ok && total == 0) ok = run_without_engine(k->db, &ctx, err);
    else ok = ok && gl_route_execute_routed(w->region, k->db, cmds, refused, total, res, before_commit, &ctx, err);
    free(cmds);
    free(refused);
    free(res);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    uint64_t us = (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000LL + (t1.tv_nsec - t0.tv_nsec) / 1000);
    if (ok) gl_metrics_batch(w->srv->metrics, (int)(w - w->srv->writers), total, us);
    return ok;
}

/* Keys are first assumed new, as the engine assumes references are: the
 * common case saves the lookup's round trip, and a replay makes the batch's
 * idempotency insert fail, so the batch is rolled back and run again with the
 * keys looked up. After a batch that met a replay, the region's next batches
 * look up first until one finds none (a client retrying a burst costs one
 * wasted batch).
 *
 * Faults: every try runs under the region's request deadline, so a database
 * that stops answering costs the batch at most timeouts.request_ms. A batch
 * the database could not serve (connection lost, deadline, shutdown,
 * failover, server-side timeout) is answered 503: nothing of it committed,
 * unless the connection broke after COMMIT was sent, and then a keyed retry
 * replays the stored answer. */
static void run_batch(gl_worker *k, gl_job **jobs, size_t n) {
    gl_writer *w = k->w;
    gl_error err;
    gl_error_clear(&err);
    int retry_after_s = 1;
    if (atomic_load(&w->abandon)) {
        fail_unavailable(w, jobs, n, 1, "shutting down past the deadline");
        return;
    }
    if (!gl_breaker_allow(w->breaker, &retry_after_s, NULL)) {
        fail_unavailable(w, jobs, n, retry_after_s, "circuit open");
        return;
    }
    bool fired = false;
    for (int attempt = 0;; attempt++) {
        if (!ensure_connected(k, &err)) {
            fail_unavailable(w, jobs, n, 1, err.message);
            return;
        }
        (void)gl_deadline_take_fired(k->db);
        bool ok = try_batch(k, jobs, &n, attempt > 0 || atomic_load(&w->lookup_first), &err);
        fired = gl_deadline_take_fired(k->db);
        if (ok) { /* committed: the answers stand, whatever happened to the connection after */
            after_failure(k, false, &err);
            for (size_t j = 0; j < n; j++) job_finish(jobs[j]);
            return;
        }
        bool race = !fired && gl_error_is_constraint(&err, IDEM_RACE); /* a replay, or another process's commit */
        if (!race) gl_metrics_db_error(w->srv->metrics, (int)(w - w->srv->writers));
        if (!race || attempt >= IDEM_RACE_RETRIES || atomic_load(&w->abandon)) break;
    }
    after_failure(k, fired, &err);
    if (fired || err.kind == GL_ERR_UNAVAILABLE || err.kind == GL_ERR_BUSY) {
        fail_unavailable(w, jobs, n, 1, err.message);
        return;
    }
    if (n > 1 && !atomic_load(&w->abandon)) {
        /* One job's failure must not fail the others that shared its batch:
         * nothing committed, so each runs again alone and only the bad one fails. */
        gl_log(GL_LOG_WARN, "batch_split", "batch of %zu jobs failed (%s): running them one by one", n, err.message);
        for (size_t j = 0; j < n; j++) run_batch(k, jobs + j, 1);
        return;
    }
    gl_log(GL_LOG_ERROR, "batch_failed", "region %s: %s%s%s%s%s", w->region->name, err.message,
           err.sqlstate[0] ? " SQLSTATE " : "", err.sqlstate, err.constraint[0] ? " constraint " : "", err.constraint);
    for (size_t j = 0; j < n; j++) job_fail(jobs[j], 500, "internal", "internal", "the batch could not be committed", 0);
}

/* Takes queued jobs up to batch_max commands (at least one job). */
static size_t take_jobs(gl_writer *w, gl_job **out, size_t cap) {
    size_t n = 0, cmds = 0;
    while (w->head && n < cap) {
        gl_job *j = w->head;
        assert(j->region == w->region); /* routed where its request was: not routed again here */
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

/* Expires due holds and dead idempotency keys. It is also the region's probe
 * while the breaker is not closed, so a region that is back serves again
 * without waiting for a request to try it. */
static void housekeeping(gl_worker *k) {
    gl_writer *w = k->w;
    gl_error err;
    gl_error_clear(&err);
    if (!gl_breaker_allow(w->breaker, NULL, NULL) || !ensure_connected(k, &err)) return;
    (void)gl_deadline_take_fired(k->db);
    ledger_ctx ctx = {.partition_code = w->region->code};
    bool ok = ledger_expire_due(k->db, &ctx, 1000, &err) >= 0;
    PGresult *r = ok ? gl_pg_exec(k->db,
                                  "DELETE FROM idempotency_keys WHERE ctid = ANY (ARRAY(SELECT ctid FROM "
                                  "idempotency_keys WHERE expires_at < now() LIMIT 10000))",
                                  0, NULL, &err)
                     : NULL;
    ok = ok && r != NULL;
    PQclear(r);
    bool fired = gl_deadline_take_fired(k->db);
    if (!ok) gl_log(GL_LOG_WARN, "housekeeping_failed", "region %s: %s", w->region->name, err.message);
    after_failure(k, fired, &err); /* on success too: it tells the breaker the region answered */
}

/* Waits (at most 1 s) for jobs and takes them. *stop: stopping with nothing
 * queued (the thread ends); *stopping: the writer's flag. */
static size_t wait_for_jobs(gl_writer *w, gl_job **jobs, size_t cap, bool *stop, bool *stopping) {
    pthread_mutex_lock(&w->mu);
    if (!w->head && !w->stopping) {
        struct timespec until = gl_realtime_in(1000);
        pthread_cond_timedwait(&w->cv, &w->mu, &until);
    }
    *stop = w->stopping && !w->head;
    *stopping = w->stopping;
    size_t n = jobs ? take_jobs(w, jobs, cap) : 0;
    pthread_mutex_unlock(&w->mu);
    return n;
}

static void *writer_main(void *arg) {
    gl_worker *k = arg;
    gl_writer *w = k->w;
    size_t cap = (size_t)w->srv->cfg.batch_max;
    gl_job **jobs = calloc(cap, sizeof(gl_job *));
    time_t last_housekeeping = 0;
    for (;;) {
        bool stop, stopping;
        size_t n = wait_for_jobs(w, jobs, cap, &stop, &stopping);
        if (stop) break;
        if (n > 0) run_batch(k, jobs, n); /* answers 503 at once past the shutdown deadline */
        time_t now = time(NULL);
        bool probe = gl_breaker_state_now(w->breaker) != GL_BREAKER_CLOSED;
        if (k->housekeeper && !stopping && (probe || now - last_housekeeping >= HOUSEKEEPING_INTERVAL_S)) {
            housekeeping(k);
            last_housekeeping = now;
        }
    }
    free(jobs);
    PQfinish(k->db);
    k->db = NULL;
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
        w->breaker = &srv->breakers[i];
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, NULL);
        w->n_workers = srv->cfg.writers_per_region;
        for (int k = 0; k < w->n_workers; k++) {
            gl_worker *wk = &w->workers[k];
            wk->w = w;
            wk->housekeeper = k == 0;
            gl_error ce;
            ensure_connected(wk, &ce); /* a region that is down now is probed by housekeeping */
            if (pthread_create(&wk->thread, NULL, writer_main, wk) != 0) {
                gl_error_set(err, GL_ERR_INTERNAL, "cannot start the writers of region %s", w->region->name);
                return false;
            }
        }
    }
    return true;
}

/* Joins every worker thread by the absolute (CLOCK_REALTIME) time `until`;
 * true when all have stopped. A joined thread's handle is zeroed. */
static bool join_until(gl_server *srv, const struct timespec *until) {
    bool all = true;
    for (int i = 0; i < srv->regions.n_regions; i++) {
        gl_writer *w = &srv->writers[i];
        for (int k = 0; k < w->n_workers; k++) {
            gl_worker *wk = &w->workers[k];
            if (!wk->thread) continue;
            if (pthread_timedjoin_np(wk->thread, NULL, until) == 0) wk->thread = 0;
            else all = false;
        }
    }
    return all;
}

static void set_flags(gl_server *srv, bool stopping, bool abandon) {
    for (int i = 0; i < srv->regions.n_regions; i++) {
        gl_writer *w = &srv->writers[i];
        pthread_mutex_lock(&w->mu);
        w->stopping = w->stopping || stopping;
        if (abandon) atomic_store(&w->abandon, true);
        pthread_cond_broadcast(&w->cv);
        pthread_mutex_unlock(&w->mu);
    }
}

bool gl_writers_stop(gl_server *srv, int deadline_ms) {
    if (!srv->writers) return true;
    set_flags(srv, true, false);
    struct timespec until = gl_realtime_in(deadline_ms);
    if (join_until(srv, &until)) return true;
    /* Past the deadline: what is queued is answered 503, what is in flight is
     * cut by shutting its socket (its jobs get 503 too). */
    gl_log(GL_LOG_WARN, "shutdown_deadline", "writers still busy after %d ms: answering the rest 503", deadline_ms);
    set_flags(srv, true, true);
    gl_deadline_fire_all();
    until = gl_realtime_in(2000);
    return join_until(srv, &until);
}
