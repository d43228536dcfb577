/*
 * server.h — ledgerd's internals shared by its files (not a public API).
 *
 * A request's path: MHD thread -> http.c (body) -> handlers.c (routing, auth)
 * -> an endpoint (accounts.c, transfers.c, mandates_ep.c, probes.c). Reads
 * run on a connection leased from the home region's pool (reads.c).
 * Writes become a job on the home region's writer (writer.c), the connection is
 * suspended, the writer runs many jobs as one engine batch (group commit),
 * stores idempotency rows in the same transaction, and resumes the connection
 * only after COMMIT.
 */
#ifndef GL_SERVER_H
#define GL_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <microhttpd.h>

#include "../auth/authconf.h"
#include "../auth/jwt.h"
#include "../ledger/ledger.h"
#include "../regions/breaker.h"
#include "../regions/pool.h"
#include "../regions/regions.h"
#include "auditq.h"
#include "log.h"
#include "metrics.h"
#include "clients.h"
#include "ratelimit.h"
#include "tls.h"
#include "webhooks.h"

#define GL_IDEM_KEY_MAX 255
#define GL_PATH_MAX 256

/* Limits on clients before and around authentication (abuse: floods of bad
 * tokens, idle or slow sockets). An address is an IPv4 address or an IPv6 /64. */
typedef struct {
    int per_address_connections; /* open connections per address (MHD); 0 = no limit */
    int unauth_rate_per_s;       /* unauthenticated or failed-auth requests per address; 0 = no limit */
    int unauth_burst;
    int idle_timeout_s;          /* a connection with no traffic is closed after this */
    int read_timeout_ms;         /* a request must be read within this, from connect or the last response */
} gl_clients_config;

typedef struct {
    char listen[64];
    int port;
    int threads;
    size_t body_limit;
    int batch_max;     /* commands per engine batch */
    int writers_per_region; /* parallel batches per region (connections) */
    int queue_depth;   /* jobs waiting per region */
    int idem_ttl_h;    /* >= 24 */
    int rate_per_s; /* per principal; 0 = unlimited */
    int rate_burst;
    char log_level[8];
    char audit_region[GL_REGION_NAME_MAX + 1]; /* "" = the first region */
    gl_auth_config auth; /* ../auth/authconf.h */
    gl_clients_config clients;
    int handler_threads; /* run requests off the HTTP threads (http.c) */
    int handler_queue;   /* requests waiting for a handler thread */
    int read_pool_size;  /* read connections per region */
    int read_acquire_ms; /* how long a request waits for one */
    gl_breaker_config breaker;
    int shutdown_timeout_ms;
    gl_tls_config tls; /* tls.enabled false: plain_http = true was configured */
    gl_webhooks_config webhooks;
    bool bench_without_events; /* measuring the outbox's cost only: no events at all (events.h) */
} gl_server_config;

#define GL_HANDLERS_MAX 256

/* A finished response: what the client gets, and what an idempotent replay returns. */
typedef struct {
    unsigned status;
    char *body; /* malloc'd JSON */
    char retry_after[24];
    bool replayed;
    const char *content_type; /* NULL: application/json */
    const char *code;         /* an error response's code (static text), for the log, the audit and nothing
                               * re-parsing the body; NULL otherwise (or for a replay: its stored body says) */
} gl_response;

typedef struct gl_job gl_job;
typedef struct gl_server gl_server;

/* Builds the response of a job from its results, inside the batch's transaction
 * (so it may read what the batch wrote); sets job->resp. */
typedef bool (*gl_job_respond_fn)(gl_job *job, PGconn *db, gl_error *err);

struct gl_job {
    gl_server *srv;
    struct MHD_Connection *conn;
    const gl_region *region;
    char principal[LEDGER_OWNER_MAX + 1];
    char request_id[33];
    char source[64]; /* the client's address, for the audit log */
    /* idempotency (key "" = none) */
    char idem_key[GL_IDEM_KEY_MAX + 1];
    char method[8];
    char path[GL_PATH_MAX];
    unsigned char request_hash[32];
    /* the work */
    ledger_cmd *cmds;
    ledger_code *refused; /* NULL, or per command what its endpoint routed it to: LEDGER_OK runs, else its refusal */
    char *metadata; /* JSON text the commands point to, owned by the job */
    void *extra;    /* what a command-less job's respond() needs (free()d with the job) */
    ledger_result *results;
    size_t n;
    bool atomic;
    gl_job_respond_fn respond;
    gl_response resp;
    /* completion */
    bool answered; /* the writer has its response (an idempotent replay) */
    atomic_bool done;
    gl_job *next;
};

#define GL_WORKERS_MAX 8

typedef struct gl_writer gl_writer;

/* One connection taking batches off its region's queue. Several per region let
 * batches that touch different accounts commit in parallel; batches that share
 * accounts wait on the row locks (taken in id order, so they never deadlock). */
typedef struct {
    gl_writer *w;
    pthread_t thread;
    PGconn *db;
    bool housekeeper; /* the first worker also expires holds and keys */
} gl_worker;

struct gl_writer {
    const gl_region *region;
    gl_server *srv;
    gl_worker workers[GL_WORKERS_MAX];
    int n_workers;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    gl_job *head, *tail;
    int depth;
    bool stopping;
    atomic_bool up;
    atomic_int depth_seen; /* queue depth for /metrics, read without the lock */
    atomic_bool lookup_first; /* the region's last keyed batch met a replay: look keys up before running */
    atomic_bool abandon;      /* shutdown past its deadline: queued jobs are answered 503, not run */
    gl_breaker *breaker;      /* the region's (shared with its reads) */
    atomic_uint_fast64_t deadlines_fired; /* batches cut by the request deadline */
};

/* Requests waiting for a handler thread (http.c). */
typedef struct gl_req gl_req;
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    gl_req *head, *tail;
    int depth;
    bool stopping;
    bool abandon; /* past the shutdown deadline: queued requests are answered 503 */
    int n_threads;
    pthread_t threads[GL_HANDLERS_MAX];
} gl_handlers;

struct gl_server {
    gl_server_config cfg;
    gl_config regions;
    gl_jwt_verifier jwt;
    gl_writer *writers;   /* one per region */
    gl_breaker *breakers; /* one per region: shared by its reads and its writers */
    gl_pool *pools;       /* one per region: the reads */
    gl_handlers handlers;
    struct MHD_Daemon *daemon;
    pthread_mutex_t inflight_mu;
    json_t *inflight; /* "principal\x1fkey" -> true while a request with that key runs */
    gl_metrics *metrics;
    gl_ratelimit *ratelimit; /* NULL: no per-principal limit */
    gl_clients *clients;     /* limits before authentication */
    gl_auditq *audit;        /* auth failures, denials, admin requests */
    gl_tls tls;              /* HTTPS: certificate, key, client CA (tls.c) */
    struct gl_webhookd *webhookd; /* the webhook worker's threads (webhookd.c); NULL when off */
};

/* The connection leases a request holds, one per region it read from. */
#define GL_REQ_LEASES_MAX 4

/* One HTTP request, from its first byte to its response. */
struct gl_req {
    gl_server *srv;
    struct MHD_Connection *conn;
    char request_id[33];
    char traceparent[56];
    char client_ip[64]; /* where from (audit) */
    char address_key[GL_ADDRESS_KEY_MAX]; /* what unauthenticated traffic is counted by (clients.h) */
    char method[8];
    char url[GL_PATH_MAX];
    char route[64]; /* the matched route template, for logs and metrics */
    char *body;
    size_t body_len;
    bool body_too_large;
    struct timespec start;
    gl_jwt_claims claims;
    const char *region_name; /* for the log line */
    gl_job *job;             /* set while a write waits for its batch */
    bool inflight_held;
    bool items_charged; /* a batch's transfers were counted against the rate (once, whichever thread runs it) */
    char inflight_key[LEDGER_OWNER_MAX + GL_IDEM_KEY_MAX + 2];
    /* reads (reads.c): leased connections, released when the handler returns */
    gl_lease leases[GL_REQ_LEASES_MAX];
    int n_leases;
    int retry_after_s;  /* from the breaker, for the 503 */
    gl_error_kind read_error; /* how the last failed read failed (reads.c gl_read_error) */
    char read_sqlstate[6];
    /* handler threads (http.c) */
    bool inline_only;   /* running on the HTTP thread: the first read sets would_block instead of waiting */
    bool would_block;   /* ... and the request runs again, from the start, on a handler thread */
    bool authenticated; /* its token was verified and its rate counted (claims set) */
    gl_response reply;  /* the answer a handler thread made */
    bool replied;
    char tls_client_cn[GL_TLS_CN_MAX + 1]; /* the verified client certificate's subject CN, "" = none (tls.c) */
    gl_req *next;
};

/* handlers.c: answers the request now (returns a response) or queues a job
 * (returns resp.status 0 and sets req->job). With req->inline_only (the HTTP
 * thread), the first database read instead sets req->would_block and the
 * answer is to be discarded: nothing was done that running it again from the
 * start on a handler thread would do twice. */
gl_response gl_handle(gl_req *req);

/* The route table (handlers.c): method, path template (literal segments and
 * {id}), the scope it needs (GL_SCOPE_COUNT: public, no token), the handler
 * (id: the {id} segment, NULL when the template has none). It drives
 * dispatch, scope checks and the metrics' route labels. */
typedef gl_response (*gl_route_fn)(gl_req *req, const gl_id *id);
typedef struct {
    const char *method;
    const char *path;
    gl_jwt_scope scope;
    gl_route_fn fn;
} gl_route;
const gl_route *gl_routes(size_t *n);
/* The row for `method` and the n path segments (is_id[i]: seg[i] parses as an id), or NULL. */
const gl_route *gl_route_find(const char *method, char **seg, int n, const bool *is_id);
/* Before a request's body is read (http.c): 429 when its address has spent
 * its allowance of requests without a valid token (clients.h), so no body is
 * buffered for it; status 0 otherwise, and for the probes. */
gl_response gl_handle_admit(gl_req *req);
/* Gives back the read connections the handler leased (called once it returned). */
void gl_handle_release(gl_req *req);
gl_response gl_respond_error(const gl_req *req, unsigned status, const char *code, const char *message,
                             const char *param);
gl_response gl_respond_json(unsigned status, json_t *body); /* steals body */

/* tls.c: after the token verified, the client certificate (if any) must name
 * its principal; with client_certs = required there must be one. */
gl_response gl_tls_check_principal(gl_req *req);

/* config.c */
bool gl_server_config_load(const char *path, gl_server_config *cfg, gl_error *err);

/* writer.c */
bool gl_writers_start(gl_server *srv, gl_error *err);
/* Lets the writers finish every queued job until deadline_ms; past it, queued
 * jobs are answered 503 and database hops in flight are cut (their jobs get
 * 503 too). False when a writer still had not stopped 2 s after that. */
bool gl_writers_stop(gl_server *srv, int deadline_ms);
/* Queues a job; false when the region's queue is full or its breaker is open
 * (caller answers 503; *retry_after_s says when to come back). */
bool gl_writer_submit(gl_server *srv, gl_job *job, int *retry_after_s);
gl_writer *gl_writer_of(gl_server *srv, const gl_region *r);

/* webhookd.c: per region, webhooks.senders threads that turn events into
 * deliveries and send them (nothing when webhooks.enabled is false). _stop
 * cuts the sends in flight (their leases are given back) and joins them. */
bool gl_webhookd_start(gl_server *srv, gl_error *err);
void gl_webhookd_stop(gl_server *srv);

/* http.c */
bool gl_handlers_start(gl_server *srv, gl_error *err);
/* Runs what is queued, then stops the handler threads within deadline_ms;
 * past it, answers what is still queued 503 and cuts the round trips in
 * flight. False when a thread still had not finished 2 s after that. */
bool gl_handlers_stop(gl_server *srv, int deadline_ms);
bool gl_http_start(gl_server *srv, gl_error *err);
void gl_http_quiesce(gl_server *srv);
void gl_http_stop(gl_server *srv);

/* responses (http.c) */
char *gl_error_body(const char *type, const char *code, const char *message, const char *param,
                    const char *request_id);
unsigned gl_status_of_code(ledger_code c);
const char *gl_type_of_status(unsigned status);

#endif
