/*
 * test_jobs.c — a write's job (api/jobs.c) without a database: made from its
 * request, its commands' routes, a refusal as its response, queued on its
 * region's writer (or refused 503 when the writer cannot take it), and the
 * Idempotency-Key taken from a real request (libmicrohttpd on the loopback)
 * and held in flight, so a second request under the key is 409.
 *
 * Left to the integration and HTTP tests (they need PostgreSQL and a running
 * writer): a job's run in a batch, its answer after COMMIT (writer.c's
 * job_finish resumes the connection), and gl_replay_or's lookup of a stored key.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>

#include <jansson.h>
#include <microhttpd.h>

#include "../../api/jobs.h"
#include "unit.h"

static gl_server srv;
static gl_region region_eu;
static FILE *log_sink; /* the 503s log a warning: not on the test's output */

/* One region whose writer has no thread: a queued job stays where the test sees it. */
static void server_setup(void) {
    memset(&srv, 0, sizeof srv);
    memset(&region_eu, 0, sizeof region_eu);
    snprintf(region_eu.name, sizeof region_eu.name, "eu");
    region_eu.code = 1;
    srv.regions.n_regions = 1;
    srv.regions.regions = &region_eu;
    srv.cfg.queue_depth = 2;
    srv.breakers = calloc(1, sizeof *srv.breakers);
    srv.writers = calloc(1, sizeof *srv.writers);
    ck_assert(srv.breakers && srv.writers);
    gl_breaker_init(&srv.breakers[0], GL_BREAKER_DEFAULT);
    srv.writers[0].region = &region_eu;
    srv.writers[0].srv = &srv;
    srv.writers[0].breaker = &srv.breakers[0];
    pthread_mutex_init(&srv.writers[0].mu, NULL);
    pthread_cond_init(&srv.writers[0].cv, NULL);
    pthread_mutex_init(&srv.inflight_mu, NULL);
    srv.inflight = json_object();
    log_sink = fopen("/dev/null", "w");
    ck_assert_ptr_nonnull(log_sink);
    gl_log_set_output(log_sink);
}

static void server_teardown(void) {
    gl_writer *w = &srv.writers[0];
    while (w->head) {
        gl_job *next = w->head->next;
        gl_job_free(w->head);
        w->head = next;
    }
    gl_breaker_destroy(&srv.breakers[0]);
    json_decref(srv.inflight);
    free(srv.writers);
    free(srv.breakers);
    gl_log_set_output(stderr);
    fclose(log_sink);
}

/* A request of principal `sub` as the handlers leave it for an endpoint. */
static void req_init(gl_req *req, const char *sub) {
    memset(req, 0, sizeof *req);
    req->srv = &srv;
    snprintf(req->request_id, sizeof req->request_id, "req-%s", sub);
    snprintf(req->client_ip, sizeof req->client_ip, "192.0.2.7");
    snprintf(req->method, sizeof req->method, "POST");
    snprintf(req->url, sizeof req->url, "/v1/transfers");
    snprintf(req->claims.sub, sizeof req->claims.sub, "%s", sub);
}

static const char *error_code_of(const gl_response *r) {
    static char code[64];
    json_t *o = json_loads(r->body ? r->body : "", 0, NULL);
    const char *c = json_string_value(json_object_get(json_object_get(o, "error"), "code"));
    snprintf(code, sizeof code, "%s", c ? c : "(none)");
    json_decref(o);
    return code;
}

START_TEST(test_idem_key_valid) {
    char longest[GL_IDEM_KEY_MAX + 2];
    memset(longest, 'k', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    ck_assert(!gl_idem_key_valid(longest)); /* one over */
    longest[GL_IDEM_KEY_MAX] = '\0';
    ck_assert(gl_idem_key_valid(longest));
    ck_assert(gl_idem_key_valid("order-42/retry:1"));
    ck_assert(gl_idem_key_valid("!~"));
    ck_assert(!gl_idem_key_valid(""));
    ck_assert(!gl_idem_key_valid("two words"));
    ck_assert(!gl_idem_key_valid("tab\there"));
    ck_assert(!gl_idem_key_valid("del\x7f"));
    ck_assert(!gl_idem_key_valid("caf\xc3\xa9"));
}
END_TEST

START_TEST(test_job_new_takes_the_request) {
    gl_req req;
    req_init(&req, "alice");
    gl_job *job = gl_job_new(&req, &region_eu, 3);
    ck_assert_ptr_nonnull(job);
    ck_assert_ptr_eq(job->srv, &srv);
    ck_assert_ptr_eq(job->region, &region_eu);
    ck_assert_uint_eq(job->n, 3);
    ck_assert_str_eq(job->principal, "alice");
    ck_assert_str_eq(job->request_id, "req-alice");
    ck_assert_str_eq(job->source, "192.0.2.7");
    ck_assert_str_eq(job->idem_key, ""); /* no key until gl_submit_keyed takes one */
    ck_assert_ptr_null(job->refused);
    ck_assert_ptr_nonnull(job->cmds);
    ck_assert_ptr_nonnull(job->results);
    for (size_t i = 0; i < 3; i++) { /* filled in place by the endpoint, from zero */
        ck_assert_int_eq(job->cmds[i].amount, 0);
        ck_assert(!job->cmds[i].linked);
        ck_assert_int_eq(job->results[i].code, LEDGER_OK);
    }
    gl_job_free(job);
    /* Mandates: no command, the batch's transaction only. */
    job = gl_job_new(&req, NULL, 0);
    ck_assert_ptr_nonnull(job);
    ck_assert_ptr_null(job->cmds);
    ck_assert_ptr_null(job->results);
    ck_assert_ptr_null(job->region);
    job->extra = malloc(16); /* owned by the job */
    job->metadata = strdup("{}");
    gl_job_free(job);
    gl_job_free(NULL);
}
END_TEST

START_TEST(test_set_route) {
    gl_req req;
    req_init(&req, "alice");
    gl_job *job = gl_job_new(&req, &region_eu, 3);
    ck_assert(gl_job_set_route(job, 0, LEDGER_OK));
    ck_assert(gl_job_set_route(job, 2, LEDGER_OK));
    ck_assert_ptr_null(job->refused); /* every command runs: nothing allocated, the writer passes NULL */
    ck_assert(gl_job_set_route(job, 1, LEDGER_CROSS_REGION_REQUIRES_SAGA));
    ck_assert_ptr_nonnull(job->refused);
    ck_assert_int_eq(job->refused[0], LEDGER_OK);
    ck_assert_int_eq(job->refused[1], LEDGER_CROSS_REGION_REQUIRES_SAGA);
    ck_assert_int_eq(job->refused[2], LEDGER_OK);
    ck_assert(gl_job_set_route(job, 2, LEDGER_ACCOUNT_NOT_FOUND));
    ck_assert(gl_job_set_route(job, 1, LEDGER_OK)); /* decided again: runs */
    ck_assert_int_eq(job->refused[1], LEDGER_OK);
    ck_assert_int_eq(job->refused[2], LEDGER_ACCOUNT_NOT_FOUND);
    gl_job_free(job);
}
END_TEST

START_TEST(test_respond_error) {
    gl_req req;
    req_init(&req, "alice");
    gl_job *job = gl_job_new(&req, &region_eu, 1);
    ck_assert(gl_job_respond_error(job, 422, "cross_region_requires_saga", "use /v1/payments"));
    ck_assert_uint_eq(job->resp.status, 422);
    ck_assert_str_eq(job->resp.code, "cross_region_requires_saga");
    json_t *o = json_loads(job->resp.body, 0, NULL);
    ck_assert_ptr_nonnull(o);
    json_t *e = json_object_get(o, "error");
    ck_assert_str_eq(json_string_value(json_object_get(e, "type")), "rejected");
    ck_assert_str_eq(json_string_value(json_object_get(e, "code")), "cross_region_requires_saga");
    ck_assert_str_eq(json_string_value(json_object_get(e, "message")), "use /v1/payments");
    ck_assert_str_eq(json_string_value(json_object_get(e, "request_id")), "req-alice");
    json_decref(o);
    gl_job_free(job);
}
END_TEST

START_TEST(test_submit_queues_on_its_region) {
    gl_req req;
    req_init(&req, "alice");
    gl_job *job = gl_job_new(&req, &region_eu, 1);
    gl_response r = gl_submit(&req, job);
    ck_assert_uint_eq(r.status, 0); /* answered after COMMIT */
    ck_assert_ptr_eq(req.job, job);
    ck_assert_str_eq(req.region_name, "eu");
    ck_assert_ptr_eq(srv.writers[0].head, job);
    ck_assert_int_eq(srv.writers[0].depth, 1);
    gl_req req2;
    req_init(&req2, "bob");
    gl_job *job2 = gl_job_new(&req2, &region_eu, 1);
    ck_assert_uint_eq(gl_submit(&req2, job2).status, 0);
    ck_assert_ptr_eq(srv.writers[0].head->next, job2); /* in order */
    ck_assert_ptr_eq(srv.writers[0].tail, job2);
}
END_TEST

/* A queue at queue_depth: 503 at once, Retry-After, the job freed (not queued). */
START_TEST(test_submit_full_queue_is_503) {
    gl_req req[3];
    for (int i = 0; i < 2; i++) {
        req_init(&req[i], "alice");
        ck_assert_uint_eq(gl_submit(&req[i], gl_job_new(&req[i], &region_eu, 1)).status, 0);
    }
    req_init(&req[2], "alice");
    gl_response r = gl_submit(&req[2], gl_job_new(&req[2], &region_eu, 1));
    ck_assert_uint_eq(r.status, 503);
    ck_assert_str_eq(r.code, "region_unavailable");
    ck_assert_str_eq(error_code_of(&r), "region_unavailable");
    ck_assert_str_eq(r.retry_after, "1");
    ck_assert_ptr_null(req[2].job);
    ck_assert_int_eq(srv.writers[0].depth, 2);
    free(r.body);
}
END_TEST

/* A region whose breaker is open, or a writer that is stopping, takes nothing. */
START_TEST(test_submit_refused_when_down) {
    gl_breaker_trip(&srv.breakers[0]);
    gl_req req;
    req_init(&req, "alice");
    gl_response r = gl_submit(&req, gl_job_new(&req, &region_eu, 1));
    ck_assert_uint_eq(r.status, 503);
    ck_assert_int_ge(atoi(r.retry_after), 1);
    ck_assert_ptr_null(srv.writers[0].head);
    free(r.body);
    gl_breaker_success(&srv.breakers[0]);
    srv.writers[0].stopping = true;
    req_init(&req, "alice");
    r = gl_submit(&req, gl_job_new(&req, &region_eu, 1));
    ck_assert_uint_eq(r.status, 503);
    ck_assert_ptr_null(srv.writers[0].head);
    free(r.body);
}
END_TEST

/* ---------- the Idempotency-Key, from a real request ---------- */

static struct MHD_Daemon *daemon_;
static uint16_t port_;
static gl_req *pending_;       /* the request the next exchange fills (conn) and submits */
static bool key_required_;
static gl_response outcome_;   /* what the scenario answered */

static gl_response submit_keyed_scenario(gl_req *req, gl_job *job) { return gl_submit_keyed(req, job, key_required_); }
/* What the server does with the exchange's request and a fresh job of one command. */
static gl_response (*scenario_)(gl_req *req, gl_job *job) = submit_keyed_scenario;

/* Runs the scenario on pending_ under the connection's headers; answers 202 when queued.
 * The response goes out after this returns: the client's exchange ends after it. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    (void)cls, (void)url, (void)method, (void)version, (void)upload_data;
    if (!*con_cls) { /* headers only: the body (none) comes next */
        *con_cls = &daemon_;
        return MHD_YES;
    }
    *upload_data_size = 0;
    pending_->conn = conn;
    outcome_ = scenario_(pending_, gl_job_new(pending_, &region_eu, 1));
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ok = MHD_queue_response(conn, outcome_.status ? outcome_.status : 202, resp);
    MHD_destroy_response(resp);
    return ok;
}

static void daemon_setup(void) {
    server_setup();
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
                               (struct sockaddr *)&a, MHD_OPTION_END);
    ck_assert_ptr_nonnull(daemon_);
    port_ = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT)->port;
    ck_assert_uint_ne(port_, 0);
}

static void daemon_teardown(void) {
    MHD_stop_daemon(daemon_);
    server_teardown();
}

/* POSTs req->url with Idempotency-Key `key` (NULL: none); returns the HTTP status. */
static int exchange(gl_req *req, const char *key, bool required) {
    pending_ = req;
    key_required_ = required;
    memset(&outcome_, 0, sizeof outcome_);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port_)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char msg[1024];
    int len = snprintf(msg, sizeof msg, "POST %s HTTP/1.1\r\nHost: localhost\r\n%s%s%sContent-Length: 0\r\nConnection: close\r\n\r\n",
                       req->url, key ? "Idempotency-Key: " : "", key ? key : "", key ? "\r\n" : "");
    ck_assert(len > 0 && (size_t)len < sizeof msg);
    ck_assert_int_eq(send(fd, msg, (size_t)len, 0), len);
    char got[512] = "";
    size_t n = 0;
    ssize_t r;
    while (n < sizeof got - 1 && (r = recv(fd, got + n, sizeof got - 1 - n, 0)) > 0) n += (size_t)r;
    got[n] = '\0';
    close(fd);
    int status = 0;
    ck_assert_msg(sscanf(got, "HTTP/1.1 %d", &status) == 1, "answer: %s", got);
    return status;
}

static bool in_flight(const char *sub, const char *key) {
    char k[600];
    snprintf(k, sizeof k, "%s\x1f%s", sub, key);
    pthread_mutex_lock(&srv.inflight_mu);
    bool held = json_object_get(srv.inflight, k) != NULL;
    pthread_mutex_unlock(&srv.inflight_mu);
    return held;
}

START_TEST(test_key_required) {
    gl_req req;
    req_init(&req, "alice");
    ck_assert_int_eq(exchange(&req, NULL, true), 400);
    ck_assert_str_eq(error_code_of(&outcome_), "idempotency_key_required");
    ck_assert(!req.inflight_held);
    ck_assert_ptr_null(srv.writers[0].head); /* the job was freed, not queued */
    free(outcome_.body);
    /* Where a key is optional (POST /v1/accounts), a request without one is queued unkeyed. */
    req_init(&req, "alice");
    ck_assert_int_eq(exchange(&req, NULL, false), 202);
    ck_assert_ptr_eq(srv.writers[0].head, req.job);
    ck_assert_str_eq(req.job->idem_key, "");
    ck_assert(!req.inflight_held);
    ck_assert_uint_eq(json_object_size(srv.inflight), 0);
}
END_TEST

START_TEST(test_key_invalid) {
    char key[GL_IDEM_KEY_MAX + 2];
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    gl_req req;
    req_init(&req, "alice");
    ck_assert_int_eq(exchange(&req, key, false), 400); /* a key that is sent is checked, required or not */
    ck_assert_str_eq(error_code_of(&outcome_), "idempotency_key_invalid");
    ck_assert(!req.inflight_held);
    ck_assert_ptr_null(srv.writers[0].head);
    ck_assert_uint_eq(json_object_size(srv.inflight), 0);
    free(outcome_.body);
}
END_TEST

/* The key is held for the principal while its request runs: the same key
 * again is 409, another principal's same key is its own. */
START_TEST(test_key_in_flight) {
    gl_req first;
    req_init(&first, "alice");
    ck_assert_int_eq(exchange(&first, "k-1", true), 202);
    gl_job *job = first.job;
    ck_assert_ptr_eq(srv.writers[0].head, job);
    ck_assert_str_eq(job->idem_key, "k-1");
    ck_assert_str_eq(job->method, "POST");
    ck_assert_str_eq(job->path, "/v1/transfers");
    ck_assert(first.inflight_held);
    ck_assert(in_flight("alice", "k-1"));

    gl_req again;
    req_init(&again, "alice");
    ck_assert_int_eq(exchange(&again, "k-1", true), 409);
    ck_assert_str_eq(error_code_of(&outcome_), "idempotency_key_in_use");
    ck_assert(!again.inflight_held); /* its end must not release the first one's key */
    ck_assert_int_eq(srv.writers[0].depth, 1);
    free(outcome_.body);

    gl_req bob;
    req_init(&bob, "bob");
    ck_assert_int_eq(exchange(&bob, "k-1", true), 202);
    ck_assert(in_flight("bob", "k-1"));
    ck_assert_int_eq(srv.writers[0].depth, 2);
    /* The same request (method, path, body) hashes alike whoever sends it. */
    ck_assert_mem_eq(bob.job->request_hash, job->request_hash, sizeof job->request_hash);
}
END_TEST

/* Another body or path under a key: another request_hash (a replay of it is 422, writer.c). */
START_TEST(test_request_hash_covers_the_request) {
    gl_req a, b, c;
    req_init(&a, "alice");
    a.body = "{\"amount\":1}";
    a.body_len = strlen(a.body);
    ck_assert_int_eq(exchange(&a, "k-a", true), 202);
    req_init(&b, "alice");
    b.body = "{\"amount\":2}";
    b.body_len = strlen(b.body);
    ck_assert_int_eq(exchange(&b, "k-b", true), 202);
    ck_assert_mem_ne(a.job->request_hash, b.job->request_hash, sizeof a.job->request_hash);
    srv.cfg.queue_depth = 3;
    req_init(&c, "alice");
    c.body = a.body;
    c.body_len = a.body_len;
    snprintf(c.url, sizeof c.url, "/v1/transfers/batch");
    ck_assert_int_eq(exchange(&c, "k-c", true), 202);
    ck_assert_mem_ne(a.job->request_hash, c.job->request_hash, sizeof a.job->request_hash);
    ck_assert_str_eq(c.job->path, "/v1/transfers/batch");
}
END_TEST

static gl_response refused_403(gl_req *req) {
    return gl_respond_error(req, 403, "mandate_required", "no live mandate", NULL);
}

/* gl_replay_or of a 403, on the exchange's request (region eu, or none). */
static const gl_region *replay_region_;
static gl_response replay_or_scenario(gl_req *req, gl_job *job) {
    gl_job_free(job); /* a refused request never queues */
    return gl_replay_or(req, replay_region_, refused_403(req));
}

/* A keyed request that today's authorization refuses while the key's first
 * request is still in flight is told so (409), not refused: it may yet
 * commit. Without a key, or a region to ask, the refusal stands as it was.
 * (A key not in flight is looked up in the region's database: api.sh.) */
START_TEST(test_replay_or_without_a_database) {
    gl_req first;
    req_init(&first, "alice");
    ck_assert_int_eq(exchange(&first, "k-9", true), 202);
    scenario_ = replay_or_scenario;
    replay_region_ = &region_eu;
    gl_req later;
    req_init(&later, "alice");
    ck_assert_int_eq(exchange(&later, "k-9", true), 409);
    ck_assert_str_eq(error_code_of(&outcome_), "idempotency_key_in_use");
    free(outcome_.body);
    req_init(&later, "alice");
    ck_assert_int_eq(exchange(&later, NULL, true), 403);
    ck_assert_str_eq(error_code_of(&outcome_), "mandate_required");
    free(outcome_.body);
    replay_region_ = NULL;
    req_init(&later, "alice");
    ck_assert_int_eq(exchange(&later, "k-9", true), 403);
    ck_assert_str_eq(outcome_.code, "mandate_required");
    free(outcome_.body);
    ck_assert(in_flight("alice", "k-9")); /* the first request's key is untouched */
}
END_TEST

static Suite *jobs_suite(void) {
    Suite *s = suite_create("jobs");
    TCase *tc = tcase_create("job");
    tcase_add_checked_fixture(tc, server_setup, server_teardown);
    tcase_add_test(tc, test_idem_key_valid);
    tcase_add_test(tc, test_job_new_takes_the_request);
    tcase_add_test(tc, test_set_route);
    tcase_add_test(tc, test_respond_error);
    tcase_add_test(tc, test_submit_queues_on_its_region);
    tcase_add_test(tc, test_submit_full_queue_is_503);
    tcase_add_test(tc, test_submit_refused_when_down);
    suite_add_tcase(s, tc);
    TCase *tk = tcase_create("key");
    tcase_add_checked_fixture(tk, daemon_setup, daemon_teardown);
    tcase_add_test(tk, test_key_required);
    tcase_add_test(tk, test_key_invalid);
    tcase_add_test(tk, test_key_in_flight);
    tcase_add_test(tk, test_request_hash_covers_the_request);
    tcase_add_test(tk, test_replay_or_without_a_database);
    suite_add_tcase(s, tk);
    return s;
}

int main(void) { return unit_run(jobs_suite()); }
