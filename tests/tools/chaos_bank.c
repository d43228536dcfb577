/*
 * chaos_bank.c — a Jepsen-style bank workload against ledgerd, and its checker
 * (driven by tests/chaos.sh). HTTPS to localhost (--cacert: the CA of ledgerd's
 * certificate, verified as any client would) or, without --cacert, plain HTTP to
 * 127.0.0.1 (a ledgerd with plain_http = true), through libcurl. Every mode
 * that talks to ledgerd (setup, run) takes --cacert FILE.
 *
 *   chaos_bank setup --port P --token T --principal NAME --state F
 *                    [--regions eu,us,sg] [--accounts 5] [--fund 100000] [--currency EUR]
 *   chaos_bank run   --port P --token T --state F --seconds S --clients C
 *                    --acks F --series F [--unknown F] [--readers N] [--regions eu,us,sg]
 *                    [--max-amount 5000] [--seed N] [--timeout-ms 5000] [--connect-timeout-ms 1000]
 *   chaos_bank stats --series F --from EPOCH_S --to EPOCH_S
 *   chaos_bank check --state F --acks F [--unknown F] --db REGION=CONNINFO [--db ...]
 *
 * setup: per region, one funding account (kind funding: it may go negative, so the token needs accounts:issue; the only
 *   money source) and N bank accounts with debits_must_not_exceed_credits, each
 *   funded from the funding account; writes the state file (JSON: principal,
 *   currency, per region the funding id, the bank ids and the initial total).
 *
 * run: C client threads, each with its own CURL handle. Client i serves region
 *   i mod R (the regions are dealt round-robin to the clients), so a client that
 *   keeps retrying a request to a region that is down does not take throughput
 *   from the other regions: what the figures measure is ledgerd's isolation, not
 *   the client's. Loop: two distinct bank accounts of the region, a random
 *   amount, a fresh Idempotency-Key (= the reference); POST /v1/transfers. On
 *   503, 409 idempotency_key_in_use, 429, other 5xx, a connection error or a
 *   client timeout the SAME request (same key, same body) is sent again after
 *   50-200 ms (at least Retry-After, at most 1 s of it), until a definitive
 *   answer: 200/201 = acknowledged (a line in --acks), another 4xx = refused (a
 *   line in --unknown with status "refused"). A request still unanswered when
 *   the run ends (--seconds, or SIGTERM/SIGINT: the transfer in flight is cut)
 *   is "unknown": it may or may not have committed (a line in --unknown with
 *   status "unknown"). --readers N more threads (reader j serves region j mod
 *   R) GET a random bank account of their region in a loop (20 ms apart; after
 *   an error 50-200 ms or Retry-After): a read balance below zero is a "bad
 *   read" (and exit status 1); reads are what ties up ledgerd's HTTP threads
 *   when a region hangs. Every second and region one JSON line goes to --series:
 *   {"t","ts" (epoch s of the second's start),"region","acked","refused","e503",
 *   "e409","e429","e5xx","conn","timeouts" (writes and reads),"reads","bad_reads",
 *   "p50_ms","p99_ms" (acknowledged transfer attempts),"max_ms" (any answered attempt),"max_503_ms","max_attempt_ms"
 *   (answered or timed out),"h" (latency histogram of acknowledged attempts,
 *   [[bucket, count], ...], bucket i <= 0.1 ms * 1.25^i)}. An attempt counts in
 *   the second it ended. A summary is printed at the end.
 *
 * stats: merges the series' whole seconds inside [from, to) per region and
 *   prints one JSON line per region (rate, counts, p50/p99 from the merged
 *   histograms, maxima).
 *
 * check: per region, on the region's database (admin conninfo): every
 *   acknowledged transfer exists once, with its key as reference, its id, amount
 *   and accounts; no key or id acknowledged twice; the bank-to-bank transfers in
 *   the database number at least the acknowledged ones and at most acknowledged
 *   + unknown, and each has an acknowledged or unknown key (no phantom write);
 *   no refused key has a transfer; the bank and funding accounts sum to 0, no
 *   pending amounts, the bank accounts hold exactly the initial funding, no bank
 *   account is below zero, and every account's balance equals its transfers.
 *
 * Exit status: 0 ok; 1 check failed (check) or nothing acknowledged (run);
 * 2 usage; 3 setup/infrastructure error.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "../../ledger/text.h"

enum { EXIT_BAD = 1, EXIT_USAGE = 2, EXIT_INFRA = 3 };

#define MAX_REGIONS 16
#define MAX_ACCOUNTS 64
#define MAX_CLIENTS 256
#define ID_LEN 36
#define KEY_MAX 128
#define BODY_MAX 65536
#define NB 64              /* latency histogram buckets: bucket i <= HIST_BASE_MS * HIST_STEP^i */
#define HIST_BASE_MS 0.1
#define HIST_STEP 1.25
#define SETUP_SECONDS 60.0 /* setup gives up after this long */

/* ================================================================ small helpers */

static double mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static double unix_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static atomic_bool g_stop;                /* SIGTERM/SIGINT */
static _Atomic double g_deadline_ms = 1e300; /* mono_ms() at which the run ends */

static void on_signal(int sig) {
    (void)sig;
    atomic_store(&g_stop, true);
}

static bool must_stop(void) { return atomic_load(&g_stop) || mono_ms() >= atomic_load(&g_deadline_ms); }

/* Sleeps ms milliseconds in short slices; returns early when the run ends. */
static void nap(double ms) {
    double until = mono_ms() + ms;
    while (!must_stop()) {
        double left = until - mono_ms();
        if (left <= 0) break;
        if (left > 20) left = 20;
        struct timespec ts = {0, (long)(left * 1e6)};
        nanosleep(&ts, NULL);
    }
}

static uint64_t rng_next(uint64_t *s) { /* xorshift64* */
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 2685821657736338717ULL;
}

static bool parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) return false;
    *out = v;
    return true;
}

static bool safe_token(const char *s, size_t max) { /* names, ids, keys: no quoting needed anywhere */
    size_t n = strlen(s);
    if (n == 0 || n > max) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.') return false;
    return true;
}

/* ================================================================ state file */

typedef struct {
    char name[32];
    char funding[ID_LEN + 1];
    int n_accounts;
    char accounts[MAX_ACCOUNTS][ID_LEN + 1];
    long long initial; /* total funding of the bank accounts */
} region_state;

typedef struct {
    char principal[129];
    char currency[4];
    char run[64];
    int n_regions;
    region_state regions[MAX_REGIONS];
} bank_state;

static bool copy_json_str(char *dst, size_t cap, json_t *v) {
    const char *s = json_string_value(v);
    if (!s || strlen(s) >= cap) return false;
    memcpy(dst, s, strlen(s) + 1);
    return true;
}

static bool state_load(const char *path, bank_state *st) {
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    memset(st, 0, sizeof *st);
    if (!root) {
        fprintf(stderr, "chaos_bank: %s: %s (line %d)\n", path, je.text, je.line);
        return false;
    }
    bool ok = copy_json_str(st->principal, sizeof st->principal, json_object_get(root, "principal")) &&
              copy_json_str(st->currency, sizeof st->currency, json_object_get(root, "currency")) &&
              copy_json_str(st->run, sizeof st->run, json_object_get(root, "run"));
    json_t *regs = json_object_get(root, "regions");
    if (!json_is_array(regs) || json_array_size(regs) == 0 || json_array_size(regs) > MAX_REGIONS) ok = false;
    size_t i;
    json_t *r;
    json_array_foreach(regs, i, r) {
        if (!ok) break;
        region_state *rs = &st->regions[st->n_regions++];
        json_t *accts = json_object_get(r, "accounts");
        ok = copy_json_str(rs->name, sizeof rs->name, json_object_get(r, "name")) &&
             copy_json_str(rs->funding, sizeof rs->funding, json_object_get(r, "funding")) &&
             json_is_integer(json_object_get(r, "initial")) && json_is_array(accts) && json_array_size(accts) >= 2 &&
             json_array_size(accts) <= MAX_ACCOUNTS;
        rs->initial = ok ? (long long)json_integer_value(json_object_get(r, "initial")) : 0;
        size_t j;
        json_t *a;
        json_array_foreach(accts, j, a) {
            if (!ok) break;
            ok = copy_json_str(rs->accounts[rs->n_accounts++], ID_LEN + 1, a);
        }
    }
    json_decref(root);
    if (!ok) fprintf(stderr, "chaos_bank: %s is not a chaos_bank state file\n", path);
    return ok;
}

static const region_state *state_region(const bank_state *st, const char *name) {
    for (int i = 0; i < st->n_regions; i++)
        if (strcmp(st->regions[i].name, name) == 0) return &st->regions[i];
    return NULL;
}

/* "eu,us,sg" -> names; false on a bad list. */
static bool split_regions(const char *list, char names[][32], int *n) {
    *n = 0;
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0 || len >= 32 || *n >= MAX_REGIONS) return false;
        memcpy(names[*n], p, len);
        names[*n][len] = '\0';
        if (!safe_token(names[*n], 31)) return false;
        (*n)++;
        p += len;
        if (*p == ',') p++;
    }
    return *n > 0;
}

/* ================================================================ HTTP client */

typedef struct {
    CURL *h;
    int port;
    char auth[8192];
    char body[BODY_MAX];
    size_t body_n;
    int retry_after; /* seconds, -1 when absent */
    bool replayed;
    long timeout_ms, connect_timeout_ms;
} client;

typedef enum { R_ACK, R_REFUSED, R_503, R_409, R_429, R_5XX, R_CONN, R_TIMEOUT, R_ABORTED } outcome;

typedef struct {
    long status; /* 0: no HTTP answer */
    CURLcode cc;
    double ms;
    int retry_after;
    bool replayed;
    char code[64];   /* error.code of an error body */
    char id[ID_LEN + 1]; /* "id" of a 2xx body */
    bool have_balances;  /* an account body: its balances */
    long long posted, available;
    outcome out;
} answer;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
    client *c = ud;
    size_t len = size * nmemb, room = sizeof c->body - 1 - c->body_n;
    size_t take = len < room ? len : room;
    memcpy(c->body + c->body_n, ptr, take);
    c->body_n += take;
    c->body[c->body_n] = '\0';
    return len;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud) {
    client *c = ud;
    size_t len = size * nmemb;
    if (len > 12 && strncasecmp(ptr, "Retry-After:", 12) == 0) {
        long v = strtol(ptr + 12, NULL, 10);
        c->retry_after = v < 0 ? 0 : v > 3600 ? 3600 : (int)v;
    } else if (len > 20 && strncasecmp(ptr, "Idempotent-Replayed:", 20) == 0) {
        c->replayed = strstr(ptr + 20, "true") != NULL;
    }
    return len;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    (void)ud, (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return must_stop() ? 1 : 0; /* cuts the transfer in flight when the run ends */
}

/* --cacert: ledgerd serves HTTPS with a certificate from this CA; NULL: plain HTTP. */
static const char *g_cacert;

static bool client_init(client *c, int port, const char *token, long timeout_ms, long connect_timeout_ms) {
    memset(c, 0, sizeof *c);
    c->port = port;
    c->timeout_ms = timeout_ms;
    c->connect_timeout_ms = connect_timeout_ms;
    if (snprintf(c->auth, sizeof c->auth, "Authorization: Bearer %s", token) >= (int)sizeof c->auth) return false;
    c->h = curl_easy_init();
    if (!c->h) return false;
    curl_easy_setopt(c->h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->h, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
    curl_easy_setopt(c->h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c->h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(c->h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c->h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c->h, CURLOPT_PROTOCOLS_STR, g_cacert ? "https" : "http");
    curl_easy_setopt(c->h, CURLOPT_NOPROXY, "*");
    if (g_cacert) {
        curl_easy_setopt(c->h, CURLOPT_CAINFO, g_cacert);
        curl_easy_setopt(c->h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(c->h, CURLOPT_SSL_VERIFYHOST, 2L);
    }
    return true;
}

static void client_free(client *c) {
    if (c->h) curl_easy_cleanup(c->h);
    c->h = NULL;
}

/* One attempt: POST path with body (GET when body is NULL) and Idempotency-Key key. */
static void client_send(client *c, const char *path, const char *body, const char *key, answer *a) {
    char url[256];
    memset(a, 0, sizeof *a);
    snprintf(url, sizeof url, g_cacert ? "https://localhost:%d%s" : "http://127.0.0.1:%d%s", c->port, path);
    struct curl_slist *hdrs = curl_slist_append(NULL, c->auth);
    hdrs = curl_slist_append(hdrs, "Expect:");
    if (body) hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (key) {
        char keyh[KEY_MAX + 32];
        snprintf(keyh, sizeof keyh, "Idempotency-Key: %s", key);
        hdrs = curl_slist_append(hdrs, keyh);
    }
    c->body_n = 0;
    c->body[0] = '\0';
    c->retry_after = -1;
    c->replayed = false;
    curl_easy_setopt(c->h, CURLOPT_URL, url);
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, hdrs);
    if (body) {
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    } else {
        curl_easy_setopt(c->h, CURLOPT_HTTPGET, 1L);
    }
    double t0 = mono_ms();
    a->cc = curl_easy_perform(c->h);
    a->ms = mono_ms() - t0;
    curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    if (a->cc == CURLE_OK) curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &a->status);
    a->retry_after = c->retry_after;
    a->replayed = c->replayed;
    if (a->status) {
        json_t *j = json_loads(c->body, 0, NULL);
        if (j) {
            const char *code = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
            const char *id = json_string_value(json_object_get(j, "id"));
            if (code) snprintf(a->code, sizeof a->code, "%s", code);
            if (id && strlen(id) == ID_LEN) memcpy(a->id, id, ID_LEN + 1);
            json_t *bal = json_object_get(j, "balances");
            if (json_is_integer(json_object_get(bal, "posted")) && json_is_integer(json_object_get(bal, "available"))) {
                a->have_balances = true;
                a->posted = (long long)json_integer_value(json_object_get(bal, "posted"));
                a->available = (long long)json_integer_value(json_object_get(bal, "available"));
            }
            json_decref(j);
        }
    }
    if (a->cc == CURLE_ABORTED_BY_CALLBACK) a->out = R_ABORTED;
    else if (a->cc == CURLE_OPERATION_TIMEDOUT) a->out = R_TIMEOUT;
    else if (a->cc != CURLE_OK) a->out = R_CONN;
    else if (a->status == 200 || a->status == 201) a->out = a->id[0] ? R_ACK : R_5XX; /* no id: not an answer */
    else if (a->status == 503) a->out = R_503;
    else if (a->status == 409 && strcmp(a->code, "idempotency_key_in_use") == 0) a->out = R_409;
    else if (a->status == 429) a->out = R_429;
    else if (a->status >= 500) a->out = R_5XX;
    else a->out = R_REFUSED;
}

static bool retryable(outcome o) { return o != R_ACK && o != R_REFUSED && o != R_ABORTED; }

/* The pause before the same request goes again. */
static double backoff_ms(const answer *a, uint64_t *rng) {
    double ms = 50.0 + (double)(rng_next(rng) % 151);
    if (a->retry_after >= 0) {
        double ra = a->retry_after * 1000.0;
        if (ra > 1000.0) ra = 1000.0;
        if (ra > ms) ms = ra;
    }
    return ms;
}

/* ================================================================ per-second statistics */

typedef struct {
    uint32_t acked, refused, e503, e409, e429, e5xx, conn, timeouts;
    uint32_t reads, bad_reads; /* account reads answered 200; of them, a bank account below zero */
    double max_answered_ms, max_503_ms, max_attempt_ms;
    uint32_t hist[NB];
} bucket;

static bucket *g_stats; /* [g_nsec][g_nreg] */
static int g_nsec, g_nreg, g_last_sec = -1;
static double g_t0_mono, g_t0_unix;
static pthread_mutex_t g_stats_mu = PTHREAD_MUTEX_INITIALIZER;

static int hist_index(double ms) {
    double ub = HIST_BASE_MS;
    int i = 0;
    while (ms > ub && i < NB - 1) {
        ub *= HIST_STEP;
        i++;
    }
    return i;
}

static double hist_ub(int i) {
    double ub = HIST_BASE_MS;
    for (int k = 0; k < i; k++) ub *= HIST_STEP;
    return ub;
}

/* The p-quantile (upper bound of its bucket, at most max). */
static double hist_quantile(const uint64_t *h, uint64_t total, double p, double max) {
    if (total == 0) return 0;
    uint64_t target = (uint64_t)(p * (double)total + 0.999999), cum = 0;
    if (target < 1) target = 1;
    for (int i = 0; i < NB; i++) {
        cum += h[i];
        if (cum >= target) {
            double v = hist_ub(i);
            return v < max ? v : max;
        }
    }
    return max;
}

static void record(int region, const answer *a, double end_mono, bool read) {
    if (a->out == R_ABORTED) return; /* cut by the run's end: neither an answer nor a timeout */
    int s = (int)((end_mono - g_t0_mono) / 1000.0);
    if (s < 0) s = 0;
    if (s >= g_nsec) s = g_nsec - 1;
    pthread_mutex_lock(&g_stats_mu);
    bucket *b = &g_stats[(size_t)s * (size_t)g_nreg + (size_t)region];
    if (s > g_last_sec) g_last_sec = s;
    switch (a->out) {
    case R_ACK:
        if (read) {
            b->reads++;
            if (!a->have_balances || a->posted < 0 || a->available < 0) b->bad_reads++;
        } else {
            b->acked++;
            b->hist[hist_index(a->ms)]++;
        }
        break;
    case R_REFUSED: b->refused++; break;
    case R_503:
        b->e503++;
        if (a->ms > b->max_503_ms) b->max_503_ms = a->ms;
        break;
    case R_409: b->e409++; break;
    case R_429: b->e429++; break;
    case R_5XX: b->e5xx++; break;
    case R_CONN: b->conn++; break;
    case R_TIMEOUT: b->timeouts++; break;
    case R_ABORTED: break;
    }
    if (a->status && a->ms > b->max_answered_ms) b->max_answered_ms = a->ms;
    if (a->ms > b->max_attempt_ms) b->max_attempt_ms = a->ms;
    pthread_mutex_unlock(&g_stats_mu);
}

/* ================================================================ run */

typedef struct {
    int id;
    int region; /* index into g_run.regions */
    bool reader;
    uint64_t rng;
    uint64_t acked, refused, unknown, attempts;
    pthread_t thread;
} worker;

static struct {
    bank_state st;
    const region_state *regions[MAX_REGIONS];
    int port;
    const char *token;
    long max_amount, timeout_ms, connect_timeout_ms;
    char prefix[96];
    FILE *acks, *unknown, *series;
    pthread_mutex_t out_mu;
    atomic_bool series_done;
} g_run = {.out_mu = PTHREAD_MUTEX_INITIALIZER};

/* A reader: GET a random bank account of its region, again and again (20 ms apart,
 * 50-200 ms / Retry-After after an error); a balance below zero is a violation. */
static void reader_loop(worker *w, client *c, const region_state *rs) {
    char path[128];
    while (!must_stop()) {
        int ia = (int)(rng_next(&w->rng) % (uint64_t)rs->n_accounts);
        snprintf(path, sizeof path, "/v1/accounts/%s", rs->accounts[ia]);
        answer a;
        client_send(c, path, NULL, NULL, &a);
        record(w->region, &a, mono_ms(), true);
        w->attempts++;
        if (a.out == R_ACK) {
            w->acked++;
            if (!a.have_balances || a.posted < 0 || a.available < 0) {
                w->refused++; /* readers: bad reads */
                fprintf(stderr, "chaos_bank: BAD READ: account %s: %.300s\n", rs->accounts[ia], c->body);
            }
            nap(20);
        } else if (a.out != R_ABORTED) {
            nap(backoff_ms(&a, &w->rng));
        }
    }
}

static void *client_main(void *arg) {
    worker *w = arg;
    const region_state *rs = g_run.regions[w->region];
    client c;
    if (!client_init(&c, g_run.port, g_run.token, g_run.timeout_ms, g_run.connect_timeout_ms)) {
        fprintf(stderr, "chaos_bank: client %d: curl_easy_init failed\n", w->id);
        return NULL;
    }
    char key[KEY_MAX + 1], body[512];
    if (w->reader) {
        reader_loop(w, &c, rs);
        client_free(&c);
        return NULL;
    }
    for (uint64_t seq = 0; !must_stop(); seq++) {
        int ia = (int)(rng_next(&w->rng) % (uint64_t)rs->n_accounts);
        int ib = (int)(rng_next(&w->rng) % (uint64_t)(rs->n_accounts - 1));
        if (ib >= ia) ib++;
        long long amount = 1 + (long long)(rng_next(&w->rng) % (uint64_t)g_run.max_amount);
        snprintf(key, sizeof key, "%.60s-%.31s-c%d-%" PRIu64, g_run.prefix, rs->name, w->id, seq);
        snprintf(body, sizeof body,
                 "{\"debit_account_id\":\"%s\",\"credit_account_id\":\"%s\",\"amount\":%lld,\"currency\":\"%s\","
                 "\"reference\":\"%s\"}",
                 rs->accounts[ia], rs->accounts[ib], amount, g_run.st.currency, key);
        double first = mono_ms();
        int attempts = 0;
        answer a;
        memset(&a, 0, sizeof a);
        a.out = R_ABORTED;
        while (!must_stop()) {
            attempts++;
            client_send(&c, "/v1/transfers", body, key, &a);
            double end = mono_ms();
            record(w->region, &a, end, false);
            if (!retryable(a.out)) {
                if (a.out == R_ACK) {
                    pthread_mutex_lock(&g_run.out_mu);
                    fprintf(g_run.acks,
                            "{\"key\":\"%s\",\"id\":\"%s\",\"region\":\"%s\",\"amount\":%lld,\"debit\":\"%s\","
                            "\"credit\":\"%s\",\"status\":%ld,\"replayed\":%s,\"attempts\":%d,\"t_ms\":%.0f,"
                            "\"lat_ms\":%.2f,\"e2e_ms\":%.2f}\n",
                            key, a.id, rs->name, amount, rs->accounts[ia], rs->accounts[ib], a.status,
                            a.replayed ? "true" : "false", attempts, g_t0_unix + (end - g_t0_mono), a.ms, end - first);
                    fflush(g_run.acks);
                    pthread_mutex_unlock(&g_run.out_mu);
                    w->acked++;
                }
                break;
            }
            nap(backoff_ms(&a, &w->rng));
        }
        w->attempts += (uint64_t)attempts;
        if (a.out == R_ACK) continue;
        if (attempts == 0) continue; /* never sent */
        bool refused = a.out == R_REFUSED;
        if (refused) w->refused++;
        else w->unknown++;
        if (g_run.unknown) {
            pthread_mutex_lock(&g_run.out_mu);
            fprintf(g_run.unknown,
                    "{\"key\":\"%s\",\"region\":\"%s\",\"amount\":%lld,\"debit\":\"%s\",\"credit\":\"%s\","
                    "\"status\":\"%s\",\"http\":%ld,\"code\":\"%s\",\"attempts\":%d}\n",
                    key, rs->name, amount, rs->accounts[ia], rs->accounts[ib], refused ? "refused" : "unknown",
                    a.status, a.code, attempts);
            fflush(g_run.unknown);
            pthread_mutex_unlock(&g_run.out_mu);
        }
    }
    client_free(&c);
    return NULL;
}

static void write_second(int s) {
    for (int r = 0; r < g_nreg; r++) {
        bucket *b = &g_stats[(size_t)s * (size_t)g_nreg + (size_t)r];
        uint64_t h[NB];
        for (int i = 0; i < NB; i++) h[i] = b->hist[i];
        double p50 = hist_quantile(h, b->acked, 0.50, b->max_answered_ms);
        double p99 = hist_quantile(h, b->acked, 0.99, b->max_answered_ms);
        fprintf(g_run.series,
                "{\"t\":%d,\"ts\":%.3f,\"region\":\"%s\",\"acked\":%u,\"refused\":%u,\"e503\":%u,\"e409\":%u,"
                "\"e429\":%u,\"e5xx\":%u,\"conn\":%u,\"timeouts\":%u,\"reads\":%u,\"bad_reads\":%u,\"p50_ms\":%.2f,"
                "\"p99_ms\":%.2f,\"max_ms\":%.2f,\"max_503_ms\":%.2f,\"max_attempt_ms\":%.2f,\"h\":[",
                s, g_t0_unix / 1000.0 + s, g_run.regions[r]->name, b->acked, b->refused, b->e503, b->e409, b->e429,
                b->e5xx, b->conn, b->timeouts, b->reads, b->bad_reads, p50, p99, b->max_answered_ms, b->max_503_ms,
                b->max_attempt_ms);
        bool first = true;
        for (int i = 0; i < NB; i++) {
            if (!b->hist[i]) continue;
            fprintf(g_run.series, "%s[%d,%u]", first ? "" : ",", i, b->hist[i]);
            first = false;
        }
        fputs("]}\n", g_run.series);
    }
    fflush(g_run.series);
}

/* Writes each second's lines once the second is over (attempts count when they end). */
static void *series_main(void *arg) {
    (void)arg;
    int next = 0;
    while (!atomic_load(&g_run.series_done)) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&g_stats_mu);
        while (next < g_nsec - 1 && mono_ms() >= g_t0_mono + (next + 1) * 1000.0 + 150.0) write_second(next++);
        pthread_mutex_unlock(&g_stats_mu);
    }
    pthread_mutex_lock(&g_stats_mu);
    int last = (int)((mono_ms() - g_t0_mono) / 1000.0);
    if (last < g_last_sec) last = g_last_sec;
    if (last > g_nsec - 1) last = g_nsec - 1;
    while (next <= last) write_second(next++);
    pthread_mutex_unlock(&g_stats_mu);
    return NULL;
}

static int cmd_run(int port, const char *token, const char *state_path, const char *region_list, long seconds,
                   long clients, long readers, const char *acks_path, const char *series_path, const char *unknown_path,
                   long max_amount, unsigned long long seed, long timeout_ms, long connect_timeout_ms) {
    if (!state_load(state_path, &g_run.st)) return EXIT_INFRA;
    char names[MAX_REGIONS][32];
    int n = 0;
    if (region_list) {
        if (!split_regions(region_list, names, &n)) {
            fprintf(stderr, "chaos_bank: bad --regions '%s'\n", region_list);
            return EXIT_USAGE;
        }
    } else {
        for (int i = 0; i < g_run.st.n_regions; i++) snprintf(names[n++], sizeof names[0], "%s", g_run.st.regions[i].name);
    }
    for (int i = 0; i < n; i++) {
        g_run.regions[i] = state_region(&g_run.st, names[i]);
        if (!g_run.regions[i]) {
            fprintf(stderr, "chaos_bank: region %s is not in %s\n", names[i], state_path);
            return EXIT_USAGE;
        }
    }
    if (n == 0) {
        fprintf(stderr, "chaos_bank: no region to run in\n");
        return EXIT_USAGE;
    }
    g_nreg = n;
    g_run.port = port;
    g_run.token = token;
    g_run.max_amount = max_amount;
    g_run.timeout_ms = timeout_ms;
    g_run.connect_timeout_ms = connect_timeout_ms;
    snprintf(g_run.prefix, sizeof g_run.prefix, "%.40s-%llx", g_run.st.run, (unsigned long long)unix_ms() & 0xffffffffffULL);
    g_run.acks = fopen(acks_path, "w");
    g_run.series = fopen(series_path, "w");
    g_run.unknown = unknown_path ? fopen(unknown_path, "w") : NULL;
    if (!g_run.acks || !g_run.series || (unknown_path && !g_run.unknown)) {
        fprintf(stderr, "chaos_bank: cannot open an output file: %s\n", strerror(errno));
        return EXIT_INFRA;
    }
    g_nsec = (int)seconds + 30;
    g_stats = calloc((size_t)g_nsec * (size_t)g_nreg, sizeof *g_stats);
    long total = clients + readers;
    worker *ws = calloc((size_t)total, sizeof *ws);
    if (!g_stats || !ws) {
        fprintf(stderr, "chaos_bank: out of memory\n");
        free(ws);
        return EXIT_INFRA;
    }
    g_t0_mono = mono_ms();
    g_t0_unix = unix_ms();
    atomic_store(&g_deadline_ms, g_t0_mono + (double)seconds * 1000.0);
    printf("chaos_bank run: %ld clients, %ld readers, %d regions, %ld s, keys %s-*\n", clients, readers, n, seconds,
           g_run.prefix);
    fflush(stdout);
    pthread_t series_thread;
    if (pthread_create(&series_thread, NULL, series_main, NULL) != 0) {
        free(ws);
        return EXIT_INFRA;
    }
    long started = 0;
    for (long i = 0; i < total; i++) {
        ws[i].id = (int)i;
        ws[i].reader = i >= clients;
        ws[i].region = (int)((ws[i].reader ? i - clients : i) % n);
        ws[i].rng = (seed ^ 0x9e3779b97f4a7c15ULL) * (uint64_t)(i + 1) + (uint64_t)i;
        if (!ws[i].rng) ws[i].rng = 1;
        if (pthread_create(&ws[i].thread, NULL, client_main, &ws[i]) != 0) {
            fprintf(stderr, "chaos_bank: cannot start client %ld\n", i);
            atomic_store(&g_stop, true);
            break;
        }
        started++;
    }
    for (long i = 0; i < started; i++) pthread_join(ws[i].thread, NULL); /* started: a prefix of ws */
    double elapsed = (mono_ms() - g_t0_mono) / 1000.0;
    atomic_store(&g_run.series_done, true);
    pthread_join(series_thread, NULL);

    /* summary */
    uint64_t tot_ack = 0, tot_unknown = 0, tot_refused = 0, tot_bad = 0;
    printf("chaos_bank run: %.1f s%s\n", elapsed, atomic_load(&g_stop) ? " (stopped by a signal)" : "");
    for (int r = 0; r < n; r++) {
        uint64_t acked = 0, refused = 0, unknown = 0, reads = 0, bad_reads = 0, e503 = 0, e409 = 0, e429 = 0, e5xx = 0, conn = 0, tmo = 0;
        uint64_t h[NB] = {0};
        double maxa = 0, max503 = 0;
        for (long i = 0; i < started; i++)
            if (ws[i].region == r && ws[i].reader) {
                reads += ws[i].acked;
                bad_reads += ws[i].refused;
            } else if (ws[i].region == r) {
                acked += ws[i].acked;
                refused += ws[i].refused;
                unknown += ws[i].unknown;
            }
        for (int s = 0; s < g_nsec; s++) {
            const bucket *b = &g_stats[(size_t)s * (size_t)g_nreg + (size_t)r];
            e503 += b->e503, e409 += b->e409, e429 += b->e429, e5xx += b->e5xx, conn += b->conn, tmo += b->timeouts;
            for (int i = 0; i < NB; i++) h[i] += b->hist[i];
            if (b->max_answered_ms > maxa) maxa = b->max_answered_ms;
            if (b->max_503_ms > max503) max503 = b->max_503_ms;
        }
        uint64_t hacked = 0;
        for (int i = 0; i < NB; i++) hacked += h[i];
        printf("  region %-4s acked %" PRIu64 " (%.0f/s) refused %" PRIu64 " unknown %" PRIu64 " reads %" PRIu64
               " bad-reads %" PRIu64 " | 503 %" PRIu64
               " 409-in-use %" PRIu64 " 429 %" PRIu64 " 5xx %" PRIu64 " conn-errors %" PRIu64 " client-timeouts %" PRIu64
               " | ack latency p50 %.1f ms p99 %.1f ms, max answered %.1f ms, max 503 %.1f ms\n",
               g_run.regions[r]->name, acked, elapsed > 0 ? (double)acked / elapsed : 0.0, refused, unknown, reads,
               bad_reads, e503, e409,
               e429, e5xx, conn, tmo, hist_quantile(h, hacked, 0.5, maxa), hist_quantile(h, hacked, 0.99, maxa), maxa,
               max503);
        tot_ack += acked, tot_unknown += unknown, tot_refused += refused, tot_bad += bad_reads;
    }
    printf("chaos_bank run: acked %" PRIu64 " refused %" PRIu64 " unknown %" PRIu64 " bad-reads %" PRIu64 "\n", tot_ack,
           tot_refused, tot_unknown, tot_bad);
    fclose(g_run.acks);
    fclose(g_run.series);
    if (g_run.unknown) fclose(g_run.unknown);
    free(ws);
    free(g_stats);
    return tot_ack > 0 && tot_bad == 0 ? 0 : EXIT_BAD;
}

/* ================================================================ setup */

/* Sends one request until a definitive answer (setup: nothing is down yet, but be patient). */
static bool send_definitive(client *c, const char *path, const char *body, const char *key, answer *a) {
    uint64_t rng = (uint64_t)mono_ms() | 1;
    for (;;) {
        client_send(c, path, body, key, a);
        if (!retryable(a->out)) break;
        nap(backoff_ms(a, &rng));
    }
    if (a->out == R_ACK) return true;
    fprintf(stderr, "chaos_bank setup: POST %s: %s (HTTP %ld %s, curl %d): %.300s\n", path,
            a->out == R_ABORTED ? "gave up" : "refused", a->status, a->code, (int)a->cc, c->body);
    return false;
}

static int cmd_setup(int port, const char *token, const char *principal, const char *state_path,
                     const char *region_list, long accounts, long fund, const char *currency) {
    char names[MAX_REGIONS][32];
    int n;
    if (!split_regions(region_list, names, &n) || !safe_token(principal, 128) || strlen(currency) != 3) {
        fprintf(stderr, "chaos_bank setup: bad --regions, --principal or --currency\n");
        return EXIT_USAGE;
    }
    client c;
    if (!client_init(&c, port, token, 10000, 1000)) return EXIT_INFRA;
    atomic_store(&g_deadline_ms, mono_ms() + SETUP_SECONDS * 1000.0);
    char run[64], key[KEY_MAX + 1], body[512];
    snprintf(run, sizeof run, "cb%llx", ((unsigned long long)unix_ms() ^ ((unsigned long long)getpid() << 20)) & 0xffffffffffffULL);
    json_t *regs = json_array();
    answer a;
    int rc = 0;
    for (int r = 0; r < n && !rc; r++) {
        snprintf(key, sizeof key, "%.40s-%.31s-funding", run, names[r]);
        snprintf(body, sizeof body,
                 "{\"currency\":\"%.3s\",\"region\":\"%.31s\",\"kind\":\"funding\",\"metadata\":{\"chaos\":\"funding\"}}",
                 currency, names[r]);
        if (!send_definitive(&c, "/v1/accounts", body, key, &a)) {
            rc = EXIT_INFRA;
            break;
        }
        char funding[ID_LEN + 1];
        memcpy(funding, a.id, sizeof funding);
        json_t *ids = json_array();
        for (long i = 0; i < accounts && !rc; i++) {
            snprintf(key, sizeof key, "%.40s-%.31s-acct%ld", run, names[r], i);
            snprintf(body, sizeof body,
                     "{\"currency\":\"%.3s\",\"region\":\"%.31s\",\"flags\":{\"debits_must_not_exceed_credits\":true},"
                     "\"metadata\":{\"chaos\":\"bank\"}}",
                     currency, names[r]);
            if (!send_definitive(&c, "/v1/accounts", body, key, &a)) rc = EXIT_INFRA;
            else json_array_append_new(ids, json_string(a.id));
        }
        for (long i = 0; i < accounts && !rc; i++) {
            snprintf(key, sizeof key, "%.40s-%.31s-fund%ld", run, names[r], i);
            snprintf(body, sizeof body,
                     "{\"debit_account_id\":\"%s\",\"credit_account_id\":\"%s\",\"amount\":%ld,\"currency\":\"%s\","
                     "\"reference\":\"%s\"}",
                     funding, json_string_value(json_array_get(ids, (size_t)i)), fund, currency, key);
            if (!send_definitive(&c, "/v1/transfers", body, key, &a)) rc = EXIT_INFRA;
        }
        json_array_append_new(regs, json_pack("{s:s,s:s,s:o,s:I}", "name", names[r], "funding", funding, "accounts", ids,
                                              "initial", (json_int_t)accounts * (json_int_t)fund));
    }
    client_free(&c);
    if (rc) {
        json_decref(regs);
        return rc;
    }
    json_t *st = json_pack("{s:s,s:s,s:s,s:I,s:o}", "principal", principal, "currency", currency, "run", run,
                           "fund_per_account", (json_int_t)fund, "regions", regs);
    if (!st || json_dump_file(st, state_path, JSON_INDENT(1)) != 0) {
        fprintf(stderr, "chaos_bank setup: cannot write %s\n", state_path);
        json_decref(st);
        return EXIT_INFRA;
    }
    json_decref(st);
    printf("chaos_bank setup: %d regions x %ld accounts funded with %ld each (run %s) -> %s\n", n, accounts, fund, run,
           state_path);
    return 0;
}

/* ================================================================ stats */

typedef struct {
    char name[32];
    int seconds;
    uint64_t acked, refused, e503, e409, e429, e5xx, conn, timeouts, reads, bad_reads;
    double max_ms, max_503_ms, max_attempt_ms;
    uint64_t hist[NB];
} window;

static uint64_t jint(json_t *o, const char *k) {
    json_int_t v = json_integer_value(json_object_get(o, k));
    return v > 0 ? (uint64_t)v : 0;
}

static double jnum(json_t *o, const char *k) { return json_number_value(json_object_get(o, k)); }

static int cmd_stats(const char *series_path, double from, double to) {
    FILE *f = fopen(series_path, "r");
    if (!f) {
        fprintf(stderr, "chaos_bank stats: %s: %s\n", series_path, strerror(errno));
        return EXIT_INFRA;
    }
    window ws[MAX_REGIONS];
    int n = 0;
    memset(ws, 0, sizeof ws);
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        if (!o) continue;
        double ts = jnum(o, "ts");
        const char *name = json_string_value(json_object_get(o, "region"));
        if (name && ts >= from - 1e-6 && ts + 1.0 <= to + 1e-6) {
            int r = 0;
            while (r < n && strcmp(ws[r].name, name) != 0) r++;
            if (r == n && n < MAX_REGIONS) snprintf(ws[n++].name, sizeof ws[0].name, "%s", name);
            if (r < n) {
                window *w = &ws[r];
                w->seconds++;
                w->acked += jint(o, "acked"), w->refused += jint(o, "refused"), w->e503 += jint(o, "e503");
                w->e409 += jint(o, "e409"), w->e429 += jint(o, "e429"), w->e5xx += jint(o, "e5xx");
                w->conn += jint(o, "conn"), w->timeouts += jint(o, "timeouts");
                w->reads += jint(o, "reads"), w->bad_reads += jint(o, "bad_reads");
                if (jnum(o, "max_ms") > w->max_ms) w->max_ms = jnum(o, "max_ms");
                if (jnum(o, "max_503_ms") > w->max_503_ms) w->max_503_ms = jnum(o, "max_503_ms");
                if (jnum(o, "max_attempt_ms") > w->max_attempt_ms) w->max_attempt_ms = jnum(o, "max_attempt_ms");
                size_t i;
                json_t *pair;
                json_array_foreach(json_object_get(o, "h"), i, pair) {
                    json_int_t b = json_integer_value(json_array_get(pair, 0)), c = json_integer_value(json_array_get(pair, 1));
                    if (b >= 0 && b < NB && c > 0) w->hist[b] += (uint64_t)c;
                }
            }
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
    for (int r = 0; r < n; r++) {
        window *w = &ws[r];
        uint64_t h = 0;
        for (int i = 0; i < NB; i++) h += w->hist[i];
        printf("{\"region\":\"%s\",\"seconds\":%d,\"rate\":%.1f,\"acked\":%" PRIu64 ",\"refused\":%" PRIu64
               ",\"e503\":%" PRIu64 ",\"e409\":%" PRIu64 ",\"e429\":%" PRIu64 ",\"e5xx\":%" PRIu64 ",\"conn\":%" PRIu64
               ",\"timeouts\":%" PRIu64 ",\"reads\":%" PRIu64 ",\"bad_reads\":%" PRIu64 ",\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f,\"max_503_ms\":%.2f,"
               "\"max_attempt_ms\":%.2f}\n",
               w->name, w->seconds, w->seconds ? (double)w->acked / w->seconds : 0.0, w->acked, w->refused, w->e503,
               w->e409, w->e429, w->e5xx, w->conn, w->timeouts, w->reads, w->bad_reads, hist_quantile(w->hist, h, 0.5, w->max_ms),
               hist_quantile(w->hist, h, 0.99, w->max_ms), w->max_ms, w->max_503_ms, w->max_attempt_ms);
    }
    return 0;
}

/* ================================================================ check */

typedef struct {
    char key[KEY_MAX + 1];
    char id[ID_LEN + 1];
    char debit[ID_LEN + 1], credit[ID_LEN + 1];
    long long amount;
    int region;       /* index in the state */
    bool unknown;     /* unknown-file lines: status "unknown" */
} rec;

typedef struct {
    rec *v;
    size_t n, cap;
} recs;

static bool recs_push(recs *r, const rec *x) {
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 1024;
        rec *v = realloc(r->v, cap * sizeof *v);
        if (!v) return false;
        r->v = v, r->cap = cap;
    }
    r->v[r->n++] = *x;
    return true;
}

/* Loads an acks (with_id) or unknown file; lines of other regions are an error. */
static bool load_recs(const char *path, const bank_state *st, bool with_id, recs *acked, recs *unknown, recs *refused) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "chaos_bank check: %s: %s\n", path, strerror(errno));
        return false;
    }
    char *line = NULL;
    size_t cap = 0;
    long no = 0;
    bool ok = true;
    while (ok && getline(&line, &cap, f) > 0) {
        no++;
        json_t *o = json_loads(line, 0, NULL);
        rec x;
        memset(&x, 0, sizeof x);
        const char *reg = o ? json_string_value(json_object_get(o, "region")) : NULL;
        const char *status = o ? json_string_value(json_object_get(o, "status")) : NULL;
        x.region = -1;
        for (int i = 0; reg && i < st->n_regions; i++)
            if (strcmp(st->regions[i].name, reg) == 0) x.region = i;
        ok = o && x.region >= 0 && copy_json_str(x.key, sizeof x.key, json_object_get(o, "key")) && safe_token(x.key, KEY_MAX) &&
             copy_json_str(x.debit, sizeof x.debit, json_object_get(o, "debit")) &&
             copy_json_str(x.credit, sizeof x.credit, json_object_get(o, "credit")) &&
             json_is_integer(json_object_get(o, "amount")) &&
             (!with_id || copy_json_str(x.id, sizeof x.id, json_object_get(o, "id"))) && (with_id || status);
        if (ok) {
            x.amount = (long long)json_integer_value(json_object_get(o, "amount"));
            if (with_id) ok = recs_push(acked, &x);
            else if (strcmp(status, "refused") == 0) ok = recs_push(refused, &x);
            else {
                x.unknown = true;
                ok = recs_push(unknown, &x);
            }
        } else {
            fprintf(stderr, "chaos_bank check: %s:%ld: not a chaos_bank line: %.200s", path, no, line);
        }
        json_decref(o);
    }
    free(line);
    fclose(f);
    return ok;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* Number of values that occur more than once (sorts a copy of the pointers). */
static size_t duplicates(const char **v, size_t n, const char **example) {
    qsort(v, n, sizeof *v, cmp_str);
    size_t d = 0;
    for (size_t i = 1; i < n; i++)
        if (strcmp(v[i], v[i - 1]) == 0) {
            if (!d && example) *example = v[i];
            d++;
        }
    return d;
}

/* Appends "{a,b,c}" of the field selected by off for the records of one region. */
typedef struct {
    char *p;
    size_t n, cap;
} text;

static bool text_add(text *t, const char *s, size_t len) {
    if (t->n + len + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (t->n + len + 1 > cap) cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) return false;
        t->p = p, t->cap = cap;
    }
    memcpy(t->p + t->n, s, len);
    t->n += len;
    t->p[t->n] = '\0';
    return true;
}

typedef enum { F_KEY, F_ID, F_AMOUNT, F_DEBIT, F_CREDIT } field;

static bool array_of(text *t, const recs *r, int region, field f) {
    t->n = 0;
    bool ok = text_add(t, "{", 1), first = true;
    char num[32];
    for (size_t i = 0; ok && i < r->n; i++) {
        const rec *x = &r->v[i];
        if (x->region != region) continue;
        const char *s = f == F_KEY ? x->key : f == F_ID ? x->id : f == F_DEBIT ? x->debit : f == F_CREDIT ? x->credit : num;
        if (f == F_AMOUNT) snprintf(num, sizeof num, "%lld", x->amount);
        ok = (first || text_add(t, ",", 1)) && text_add(t, s, strlen(s));
        first = false;
    }
    return ok && text_add(t, "}", 1);
}

static PGresult *query(PGconn *db, const char *sql, int n, const char *const *params) {
    PGresult *res = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "chaos_bank check: query failed: %s", PQerrorMessage(db));
        PQclear(res);
        return NULL;
    }
    return res;
}

static long long val(PGresult *res, int row, int col) { return strtoll(PQgetvalue(res, row, col), NULL, 10); }

static int violations;

static void bad(const char *region, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bad(const char *region, const char *fmt, ...) {
    violations++;
    printf("  VIOLATION %s: ", region);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static int check_region(PGconn *db, const bank_state *st, int ri, const recs *acked, const recs *unknown,
                        const recs *refused) {
    const region_state *rs = &st->regions[ri];
    const char *R = rs->name;
    size_t n_ack = 0, n_unk = 0, n_ref = 0;
    for (size_t i = 0; i < acked->n; i++) n_ack += acked->v[i].region == ri;
    for (size_t i = 0; i < unknown->n; i++) n_unk += unknown->v[i].region == ri;
    for (size_t i = 0; i < refused->n; i++) n_ref += refused->v[i].region == ri;
    int v0 = violations;
    text keys = {0}, ids = {0}, amounts = {0}, debits = {0}, credits = {0}, bank = {0}, all = {0}, known = {0}, ref = {0};
    bool ok = array_of(&keys, acked, ri, F_KEY) && array_of(&ids, acked, ri, F_ID) &&
              array_of(&amounts, acked, ri, F_AMOUNT) && array_of(&debits, acked, ri, F_DEBIT) &&
              array_of(&credits, acked, ri, F_CREDIT) && array_of(&ref, refused, ri, F_KEY) &&
              array_of(&known, unknown, ri, F_KEY) && text_add(&bank, "{", 1) && text_add(&all, "{", 1);
    for (int i = 0; ok && i < rs->n_accounts; i++)
        ok = (i == 0 || text_add(&bank, ",", 1)) && text_add(&bank, rs->accounts[i], ID_LEN) &&
             text_add(&all, rs->accounts[i], ID_LEN) && text_add(&all, ",", 1);
    ok = ok && text_add(&bank, "}", 1) && text_add(&all, rs->funding, ID_LEN) && text_add(&all, "}", 1);
    /* known = acknowledged keys + unknown keys */
    if (ok && keys.n > 2) {
        known.p[known.n - 1] = '\0';
        known.n--;
        ok = (known.n == 1 || text_add(&known, ",", 1)) && text_add(&known, keys.p + 1, keys.n - 1);
    }
    if (!ok) fprintf(stderr, "chaos_bank check: out of memory\n");
    int rc = ok ? 0 : EXIT_INFRA;

    /* 1. every acknowledged transfer, by its key (the reference), is the acknowledged one */
    const char *p1[] = {keys.p, ids.p, amounts.p, debits.p, credits.p, st->principal};
    PGresult *res = rc ? NULL
                       : query(db,
                          "SELECT a.key, a.id::text, coalesce(t.id::text, '(none)') "
                          "FROM unnest($1::text[], $2::uuid[], $3::bigint[], $4::uuid[], $5::uuid[]) AS a(key, id, amount, deb, cred) "
                          "LEFT JOIN transfers t ON t.owner = $6 AND t.reference = a.key "
                          "WHERE t.id IS DISTINCT FROM a.id OR t.amount IS DISTINCT FROM a.amount "
                          "   OR t.debit_account_id IS DISTINCT FROM a.deb OR t.credit_account_id IS DISTINCT FROM a.cred",
                          6, p1);
    if (!res) rc = EXIT_INFRA;
    else {
        for (int i = 0; i < PQntuples(res) && i < 10; i++) {
            violations++;
            printf("  VIOLATION %s: acknowledged key %s (transfer %s) is %s in the database\n", R, PQgetvalue(res, i, 0),
                   PQgetvalue(res, i, 1),
                   strcmp(PQgetvalue(res, i, 2), "(none)") == 0 ? "missing" : "another transfer or different");
        }
        if (PQntuples(res) > 10) bad(R, "... %d acknowledged transfers are missing or different in all", PQntuples(res));
        PQclear(res);
    }
    /* every acknowledged id exists (by id too) */
    const char *p1b[] = {ids.p};
    res = rc ? NULL : query(db, "SELECT count(*) FROM transfers WHERE id = ANY($1::uuid[])", 1, p1b);
    if (!res) rc = EXIT_INFRA;
    else {
        if ((size_t)val(res, 0, 0) != n_ack)
            bad(R, "only %lld of the %zu acknowledged transfer ids exist", val(res, 0, 0), n_ack);
        PQclear(res);
    }

    /* 2. the bank-to-bank transfers: acked <= n <= acked + unknown, none with a foreign or refused key */
    const char *p2[] = {bank.p, known.p, ref.p, st->principal};
    res = rc ? NULL
             : query(db,
                     "WITH bt AS (SELECT id, owner, reference FROM transfers WHERE debit_account_id = ANY($1::uuid[])), "
                     "     k AS (SELECT DISTINCT unnest($2::text[]) AS key), r AS (SELECT DISTINCT unnest($3::text[]) AS key) "
                     "SELECT (SELECT count(*) FROM bt), "
                     "       (SELECT count(*) FROM bt WHERE bt.owner <> $4 OR bt.reference IS NULL "
                     "                                  OR NOT EXISTS (SELECT 1 FROM k WHERE k.key = bt.reference)), "
                     "       (SELECT count(*) FROM bt JOIN r ON r.key = bt.reference), "
                     "       (SELECT min(reference) FROM bt WHERE NOT EXISTS (SELECT 1 FROM k WHERE k.key = bt.reference))",
                     4, p2);
    long long n_db = -1;
    if (!res) rc = EXIT_INFRA;
    else {
        n_db = val(res, 0, 0);
        if (n_db < (long long)n_ack)
            bad(R, "%lld bank transfers in the database, fewer than the %zu acknowledged", n_db, n_ack);
        if (n_db > (long long)n_ack + (long long)n_unk)
            bad(R, "%lld bank transfers in the database, more than acknowledged + unknown = %zu", n_db, n_ack + n_unk);
        if (val(res, 0, 1))
            bad(R, "phantom writes: %lld transfers whose key was neither acknowledged nor unknown (e.g. %s)",
                val(res, 0, 1), PQgetvalue(res, 0, 3));
        if (val(res, 0, 2)) bad(R, "%lld refused requests committed a transfer", val(res, 0, 2));
        PQclear(res);
    }

    /* 3. money: sum 0, no pending, the bank holds the initial funding, nothing below zero */
    const char *p3[] = {all.p, rs->funding};
    res = rc ? NULL
             : query(db,
                     "SELECT count(*), coalesce(sum(credits_posted - debits_posted), 0), "
                     "       coalesce(sum(debits_pending + credits_pending), 0), "
                     "       coalesce(sum(credits_posted - debits_posted) FILTER (WHERE id <> $2::uuid), 0), "
                     "       count(*) FILTER (WHERE id <> $2::uuid AND credits_posted - debits_posted < 0), "
                     "       coalesce(min(credits_posted - debits_posted) FILTER (WHERE id <> $2::uuid), 0), "
                     "       coalesce(sum(credits_posted - debits_posted) FILTER (WHERE id = $2::uuid), 0) "
                     "FROM accounts WHERE id = ANY($1::uuid[])",
                     2, p3);
    long long bank_total = 0, funding_bal = 0, min_bal = 0;
    if (!res) rc = EXIT_INFRA;
    else {
        if (val(res, 0, 0) != rs->n_accounts + 1)
            bad(R, "only %lld of the %d accounts exist", val(res, 0, 0), rs->n_accounts + 1);
        if (val(res, 0, 1) != 0) bad(R, "money not conserved: the accounts sum to %lld, not 0", val(res, 0, 1));
        if (val(res, 0, 2) != 0) bad(R, "pending amounts %lld (the workload makes none)", val(res, 0, 2));
        bank_total = val(res, 0, 3);
        min_bal = val(res, 0, 5);
        funding_bal = val(res, 0, 6);
        if (bank_total != rs->initial)
            bad(R, "the bank accounts hold %lld, not the initial funding %lld", bank_total, rs->initial);
        if (val(res, 0, 4)) bad(R, "%lld bank accounts below zero (min %lld)", val(res, 0, 4), min_bal);
        PQclear(res);
    }

    /* 4. every account's balance is the sum of its transfers */
    const char *p4[] = {all.p};
    res = rc ? NULL
             : query(db,
                     "WITH mv AS (SELECT credit_account_id AS id, amount AS d FROM transfers WHERE credit_account_id = ANY($1::uuid[]) "
                     "            UNION ALL "
                     "            SELECT debit_account_id, -amount FROM transfers WHERE debit_account_id = ANY($1::uuid[])), "
                     "     s AS (SELECT id, sum(d) AS d FROM mv GROUP BY id) "
                     "SELECT a.id::text, a.credits_posted - a.debits_posted, coalesce(s.d, 0) "
                     "FROM accounts a LEFT JOIN s USING (id) "
                     "WHERE a.id = ANY($1::uuid[]) AND a.credits_posted - a.debits_posted <> coalesce(s.d, 0)",
                     1, p4);
    if (!res) rc = EXIT_INFRA;
    else {
        for (int i = 0; i < PQntuples(res); i++)
            bad(R, "account %s: balance %lld but its transfers sum to %lld", PQgetvalue(res, i, 0), val(res, i, 1),
                val(res, i, 2));
        PQclear(res);
    }
    free(keys.p), free(ids.p), free(amounts.p), free(debits.p), free(credits.p), free(bank.p), free(all.p);
    free(known.p), free(ref.p);
    if (rc) return rc;
    printf("%s check %s: acked %zu, unknown %zu, refused %zu, bank transfers in db %lld; bank total %lld (initial %lld), "
           "funding %lld, lowest bank balance %lld\n",
           violations == v0 ? "ok" : "FAIL", R, n_ack, n_unk, n_ref, n_db, bank_total, rs->initial, funding_bal, min_bal);
    return 0;
}

static int cmd_check(const char *state_path, const char *acks_path, const char *unknown_path, char **dbs, int n_dbs) {
    bank_state st;
    if (!state_load(state_path, &st)) return EXIT_INFRA;
    recs acked = {0}, unknown = {0}, refused = {0};
    const char **v = NULL;
    if (!load_recs(acks_path, &st, true, &acked, &unknown, &refused) ||
        (unknown_path && !load_recs(unknown_path, &st, false, &acked, &unknown, &refused)) ||
        !(v = malloc((acked.n + 1) * sizeof *v))) {
        free(acked.v), free(unknown.v), free(refused.v);
        return EXIT_INFRA;
    }
    /* no key acknowledged twice, no transfer id acknowledged for two keys */
    const char *ex = NULL;
    for (size_t i = 0; i < acked.n; i++) v[i] = acked.v[i].key;
    size_t d = duplicates(v, acked.n, &ex);
    if (d) bad("all", "%zu keys acknowledged more than once (e.g. %s)", d, ex);
    for (size_t i = 0; i < acked.n; i++) v[i] = acked.v[i].id;
    d = duplicates(v, acked.n, &ex);
    if (d) bad("all", "%zu transfer ids acknowledged for two keys (e.g. %s)", d, ex);
    free(v);

    int rc = 0;
    for (int r = 0; r < st.n_regions && !rc; r++) {
        const char *ci = NULL;
        size_t len = strlen(st.regions[r].name);
        for (int i = 0; i < n_dbs; i++)
            if (strncmp(dbs[i], st.regions[r].name, len) == 0 && dbs[i][len] == '=') ci = dbs[i] + len + 1;
        if (!ci) {
            fprintf(stderr, "chaos_bank check: no --db %s=CONNINFO\n", st.regions[r].name);
            rc = EXIT_USAGE;
            break;
        }
        char conninfo[2048];
        snprintf(conninfo, sizeof conninfo, "%s connect_timeout=5 options='-c statement_timeout=30000'", ci);
        PGconn *db = PQconnectdb(conninfo);
        if (PQstatus(db) != CONNECTION_OK) {
            fprintf(stderr, "chaos_bank check: region %s: %s", st.regions[r].name, PQerrorMessage(db));
            rc = EXIT_INFRA;
        } else {
            rc = check_region(db, &st, r, &acked, &unknown, &refused);
        }
        PQfinish(db);
    }
    free(acked.v), free(unknown.v), free(refused.v);
    if (rc) return rc;
    printf("chaos_bank check: %s (%d violations)\n", violations ? "FAILED" : "ok", violations);
    return violations ? EXIT_BAD : 0;
}

/* ================================================================ main */

static void usage(FILE *f) {
    fputs("usage: chaos_bank setup --port P --token T --principal NAME --state F [--regions eu,us,sg] [--cacert F]\n"
          "                        [--accounts 5] [--fund 100000] [--currency EUR]\n"
          "       chaos_bank run   --port P --token T --state F --seconds S --clients C --acks F --series F\n"
          "                        [--unknown F] [--readers N] [--regions eu,us,sg] [--max-amount 5000] [--seed N]\n"
          "                        [--timeout-ms 5000] [--connect-timeout-ms 1000] [--cacert F]\n"
          "       chaos_bank stats --series F --from EPOCH_S --to EPOCH_S\n"
          "       chaos_bank check --state F --acks F [--unknown F] --db REGION=CONNINFO [--db ...]\n",
          f);
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : 0;
    }
    const char *mode = argv[1];
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},       {"token", required_argument, NULL, 't'},
        {"principal", required_argument, NULL, 'P'},  {"state", required_argument, NULL, 's'},
        {"regions", required_argument, NULL, 'r'},    {"accounts", required_argument, NULL, 'a'},
        {"fund", required_argument, NULL, 'f'},       {"currency", required_argument, NULL, 'c'},
        {"seconds", required_argument, NULL, 'S'},    {"clients", required_argument, NULL, 'C'},
        {"readers", required_argument, NULL, 'R'},
        {"acks", required_argument, NULL, 'A'},       {"series", required_argument, NULL, 'E'},
        {"unknown", required_argument, NULL, 'U'},    {"max-amount", required_argument, NULL, 'm'},
        {"seed", required_argument, NULL, 'x'},       {"timeout-ms", required_argument, NULL, 'T'},
        {"connect-timeout-ms", required_argument, NULL, 'k'},
        {"from", required_argument, NULL, 'F'},       {"to", required_argument, NULL, 'o'},
        {"db", required_argument, NULL, 'd'},         {"cacert", required_argument, NULL, 'K'},
        {NULL, 0, NULL, 0}};
    int64_t port = 0, accounts = 5, fund = 100000, seconds = 0, clients = 0, readers = 0, max_amount = 5000,
            timeout_ms = 5000, connect_timeout_ms = 1000, seed = 42;
    const char *token = getenv("CHAOS_TOKEN"), *principal = NULL, *state = NULL, *regions = NULL, *currency = "EUR",
               *acks = NULL, *series = NULL, *unknown = NULL;
    double from = 0, to = 0;
    bool have_from = false, have_to = false;
    char *dbs[MAX_REGIONS];
    int n_dbs = 0;
    optind = 2;
    int ch;
    bool bad_opt = false;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'p': bad_opt |= !gl_parse_i64(optarg, 1, 65535, &port); break;
        case 't': token = optarg; break;
        case 'P': principal = optarg; break;
        case 's': state = optarg; break;
        case 'r': regions = optarg; break;
        case 'a': bad_opt |= !gl_parse_i64(optarg, 2, MAX_ACCOUNTS, &accounts); break;
        case 'f': bad_opt |= !gl_parse_i64(optarg, 1, 1000000000000L, &fund); break;
        case 'c': currency = optarg; break;
        case 'S': bad_opt |= !gl_parse_i64(optarg, 1, 86400, &seconds); break;
        case 'C': bad_opt |= !gl_parse_i64(optarg, 1, MAX_CLIENTS, &clients); break;
        case 'R': bad_opt |= !gl_parse_i64(optarg, 0, MAX_CLIENTS, &readers); break;
        case 'A': acks = optarg; break;
        case 'E': series = optarg; break;
        case 'U': unknown = optarg; break;
        case 'm': bad_opt |= !gl_parse_i64(optarg, 1, 1000000000L, &max_amount); break;
        case 'x': bad_opt |= !gl_parse_i64(optarg, 0, 0x7fffffffL, &seed); break;
        case 'T': bad_opt |= !gl_parse_i64(optarg, 100, 600000, &timeout_ms); break;
        case 'k': bad_opt |= !gl_parse_i64(optarg, 10, 60000, &connect_timeout_ms); break;
        case 'F': bad_opt |= !(have_from = parse_double(optarg, &from)); break;
        case 'o': bad_opt |= !(have_to = parse_double(optarg, &to)); break;
        case 'K': g_cacert = optarg; break;
        case 'd':
            if (n_dbs < MAX_REGIONS && strchr(optarg, '=')) dbs[n_dbs++] = optarg;
            else bad_opt = true;
            break;
        default: bad_opt = true;
        }
    }
    if (bad_opt || optind != argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(mode, "stats") == 0) {
        if (!series || !have_from || !have_to) return usage(stderr), EXIT_USAGE;
        return cmd_stats(series, from, to);
    }
    if (strcmp(mode, "check") == 0) {
        if (!state || !acks || n_dbs == 0) return usage(stderr), EXIT_USAGE;
        return cmd_check(state, acks, unknown, dbs, n_dbs);
    }
    bool is_setup = strcmp(mode, "setup") == 0, is_run = strcmp(mode, "run") == 0;
    if (!is_setup && !is_run) return usage(stderr), EXIT_USAGE;
    if (!port || !token || !*token || !state) return usage(stderr), EXIT_USAGE;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return EXIT_INFRA;
    int rc;
    if (is_setup) {
        rc = principal ? cmd_setup((int)port, token, principal, state, regions ? regions : "eu,us,sg", accounts, fund,
                                   currency)
                       : (usage(stderr), EXIT_USAGE);
    } else {
        rc = seconds && clients && acks && series
                 ? cmd_run((int)port, token, state, regions, seconds, clients, readers, acks, series, unknown, max_amount,
                           (unsigned long long)seed, timeout_ms, connect_timeout_ms)
                 : (usage(stderr), EXIT_USAGE);
    }
    curl_global_cleanup();
    return rc;
}
