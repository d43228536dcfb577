/*
 * stream.c — the outbox threads (stream.h): the outbox's status for /metrics
 * and the Redis stream publisher, one thread per region.
 *
 * Exactly once in the stream, with no error string parsed: the events of a
 * round trip go to Redis as ONE script (EVAL, below). Redis runs a script
 * atomically; it reads the stream's last-generated-id, passes over every
 * event at or below it (already published: a crash between XADD and moving
 * our position, or two ledgerd processes on one database) and appends the
 * rest in seq order, stopping at the first refusal (out of memory, ...). So
 * the stream holds a prefix of the outbox, in order, each event once, whatever
 * fails where; the reply says how many of the batch are now in the stream.
 * (XADD's own refusal of a smaller id, "ERR The ID specified in XADD is equal
 * or smaller than the target stream top item", would do the same, but hiredis
 * hands over only that text, and a later event of a pipeline could land after
 * an earlier one failed for another reason: a hole the id check then hides.)
 */
#include "stream.h"

#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libconfig.h>

#include "../ledger/buf.h"
#include "../ledger/clock.h"
#include "../ledger/events.h"
#include "../ledger/outbox.h"
#include "../ledger/render.h"
#include "../regions/settings.h"
#include "log.h"

#define STATUS_EVERY_MS 1000 /* how often the outbox's head and consumers are read for /metrics */
#define SCAN_MAX 100000      /* seqs looked at per read: only pruned holes are passed over */
#define BACKOFF_MIN_MS 100

/* KEYS[1] the stream; ARGV[1] MAXLEN; then (seq, type, event JSON) per event.
 * Returns {added, skipped, refusal or "", the stream's top seq before}. */
static const char PUBLISH_LUA[] =
    "local key, top = KEYS[1], 0\n"
    "if redis.call('EXISTS', key) == 1 then\n"
    "  local info = redis.call('XINFO', 'STREAM', key)\n"
    "  for i = 1, #info, 2 do\n"
    "    if info[i] == 'last-generated-id' then top = tonumber(string.match(info[i + 1], '^(%d+)')) end\n"
    "  end\n"
    "end\n"
    "local added, skipped = 0, 0\n"
    "for i = 2, #ARGV, 3 do\n"
    "  if tonumber(ARGV[i]) <= top then\n"
    "    skipped = skipped + 1\n"
    "  else\n"
    "    local r = redis.pcall('XADD', key, 'MAXLEN', '~', ARGV[1], ARGV[i] .. '-0', 'type', ARGV[i + 1],\n"
    "                          'event', ARGV[i + 2])\n"
    "    if type(r) == 'table' and r.err then return {added, skipped, r.err, top} end\n"
    "    added = added + 1\n"
    "  end\n"
    "end\n"
    "return {added, skipped, '', top}\n";

/* ---- configuration ---- */

/* A string setting of the redis group (regions/settings.h), which may not be empty when given. */
static bool cfg_str(const config_setting_t *g, const char *name, char *dst, size_t cap, gl_error *err) {
    if (!gl_settings_str(g, name, dst, cap, false, err)) return false;
    if (config_setting_get_member(g, name) && !dst[0]) {
        gl_error_set(err, GL_ERR_CONFIG, "redis: %s must be 1..%zu characters", name, cap - 1);
        return false;
    }
    return true;
}

/* The password, first line of a file only its owner may read (like a TLS key). */
static bool read_password(const char *path, char *dst, size_t cap, gl_error *err) {
    struct stat st;
    FILE *f = fopen(path, "r");
    if (!f || fstat(fileno(f), &st) != 0) {
        gl_error_set(err, GL_ERR_CONFIG, "redis: password_file %s cannot be read", path);
        if (f) fclose(f);
        return false;
    }
    bool ok = (st.st_mode & 077) == 0;
    if (!ok) gl_error_set(err, GL_ERR_CONFIG, "redis: password_file %s may be read by group or others (chmod 600)", path);
    if (ok && !fgets(dst, (int)cap, f)) dst[0] = '\0';
    fclose(f);
    dst[strcspn(dst, "\r\n")] = '\0';
    if (ok && !dst[0]) {
        gl_error_set(err, GL_ERR_CONFIG, "redis: password_file %s is empty", path);
        ok = false;
    }
    return ok;
}

static void stream_defaults(gl_stream_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->host, sizeof c->host, "127.0.0.1");
    c->port = 6379;
    snprintf(c->key_prefix, sizeof c->key_prefix, "geoledger:events:");
    c->stream_maxlen = 1000000;
    c->batch = 500;
    c->poll_ms = 200;
    c->timeout_ms = 2000;
    c->reconnect_max_ms = 5000;
}

bool gl_stream_config_load(const char *path, gl_stream_config *c, gl_error *err) {
    assert(path && c);
    stream_defaults(c);
    config_t cf;
    config_init(&cf);
    if (config_read_file(&cf, path) != CONFIG_TRUE) {
        gl_error_set(err, GL_ERR_CONFIG, "%s:%d: %s", path, config_error_line(&cf), config_error_text(&cf));
        config_destroy(&cf);
        return false;
    }
    const config_setting_t *g = config_lookup(&cf, "redis");
    char pass_file[4096] = "";
    bool ok = !g || (cfg_str(g, "host", c->host, sizeof c->host, err) && gl_settings_int(g, "port", 1, 65535, &c->port, err) &&
                     cfg_str(g, "key_prefix", c->key_prefix, sizeof c->key_prefix, err) &&
                     gl_settings_int(g, "stream_maxlen", 1, 1000000000, &c->stream_maxlen, err) &&
                     gl_settings_int(g, "batch", 1, GL_STREAM_BATCH_MAX, &c->batch, err) &&
                     gl_settings_int(g, "poll_ms", 10, 60000, &c->poll_ms, err) &&
                     gl_settings_int(g, "timeout_ms", 100, 60000, &c->timeout_ms, err) &&
                     gl_settings_int(g, "reconnect_max_ms", BACKOFF_MIN_MS, 600000, &c->reconnect_max_ms, err) &&
                     cfg_str(g, "password_file", pass_file, sizeof pass_file, err));
    if (ok && pass_file[0]) ok = read_password(pass_file, c->password, sizeof c->password, err);
    c->enabled = ok && g;
    config_destroy(&cf);
    return ok;
}

/* ---- the threads ---- */

typedef struct gl_streams gl_streams;

/* One region's thread and what /metrics reads of it. */
typedef struct {
    gl_streams *owner;
    const gl_region *region;
    pthread_t thread;
    bool started;
    char key[192];
    /* the thread's own */
    PGconn *db;
    redisContext *rc;
    bool have_position; /* `stored` was read since the thread started */
    int64_t stored;     /* the position in event_consumers */
    int64_t cursor;     /* the last seq in the stream, as far as we know */
    int db_backoff_ms, redis_backoff_ms;
    uint64_t db_retry_at, redis_retry_at, status_due, ping_due; /* monotonic ms */
    ledger_event events[GL_STREAM_BATCH_MAX];
    /* a batch's script arguments: EVAL, the script, 1, the key, MAXLEN, then (seq, type, JSON) per event */
    char maxlen[16];
    const char *argv[5 + 3 * GL_STREAM_BATCH_MAX];
    size_t lens[5 + 3 * GL_STREAM_BATCH_MAX];
    char seqs[GL_STREAM_BATCH_MAX][24];
    /* for /metrics: the status under mu, the counters as atomics */
    pthread_mutex_t mu;
    ledger_outbox_status status;
    int64_t status_at_us; /* wall clock of the last read; 0 = never */
    atomic_bool redis_up;
    _Atomic int64_t cursor_seen;
    _Atomic uint64_t published, skipped, errors;
    _Atomic int64_t last_publish_us;
} region_pub;

struct gl_streams {
    gl_stream_config cfg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stopping;
    int n;
    region_pub *pubs;
};

static int64_t wall_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Doubles the backoff up to the configured cap and returns when to retry. */
static uint64_t backoff(int *ms, int cap) {
    *ms = *ms < BACKOFF_MIN_MS ? BACKOFF_MIN_MS : (*ms * 2 > cap ? cap : *ms * 2);
    return gl_monotonic_ms() + (uint64_t)*ms;
}

static void db_failed(region_pub *p, const char *what, const gl_error *e) {
    gl_log(GL_LOG_WARN, "outbox_db_error", "region %s: %s: %s", p->region->name, what, e->message);
    if (p->db) PQfinish(p->db);
    p->db = NULL;
    p->db_retry_at = backoff(&p->db_backoff_ms, p->owner->cfg.reconnect_max_ms);
}

static void redis_failed(region_pub *p, const char *what, const char *why) {
    gl_log(GL_LOG_WARN, "stream_redis_error", "region %s: %s: %s", p->region->name, what, why);
    atomic_fetch_add(&p->errors, 1);
    atomic_store(&p->redis_up, false);
    if (p->rc) redisFree(p->rc);
    p->rc = NULL;
    p->redis_retry_at = backoff(&p->redis_backoff_ms, p->owner->cfg.reconnect_max_ms);
}

/* The region's connection and, when publishing, our stored position. */
static void db_open(region_pub *p) {
    gl_error e;
    p->db = gl_region_connect(p->region, GL_ROLE_SERVICE, &e);
    if (!p->db) {
        db_failed(p, "connect", &e);
        return;
    }
    if (p->owner->cfg.enabled) {
        int64_t pos = ledger_events_consumer_position(p->db, GL_STREAM_CONSUMER, &e);
        if (pos < 0) {
            db_failed(p, "read the stream's position", &e);
            return;
        }
        p->stored = pos;
        if (!p->have_position) p->cursor = pos;
        p->have_position = true;
    }
    p->db_backoff_ms = 0;
}

static void status_refresh(region_pub *p) {
    ledger_outbox_status st;
    gl_error e;
    if (!ledger_outbox_status_read(p->db, &st, &e)) {
        db_failed(p, "read the outbox status", &e);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->status = st;
    p->status_at_us = wall_us();
    pthread_mutex_unlock(&p->mu);
}

/* One EVAL of the publish script; argv[0..argc) as built by the caller. NULL
 * when the connection failed (then it is closed). */
static redisReply *run_script(region_pub *p, int argc, const char **argv, const size_t *lens) {
    redisReply *r = redisCommandArgv(p->rc, argc, argv, lens);
    if (!r) redis_failed(p, "EVAL", p->rc->errstr[0] ? p->rc->errstr : "connection lost");
    return r;
}

/* {added, skipped, refusal, top}: false when the reply has another shape. */
static bool script_reply(const redisReply *r, long long *added, long long *skipped, const char **refusal,
                         long long *top) {
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 || r->element[0]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->type != REDIS_REPLY_INTEGER || r->element[2]->type != REDIS_REPLY_STRING ||
        r->element[3]->type != REDIS_REPLY_INTEGER)
        return false;
    *added = r->element[0]->integer;
    *skipped = r->element[1]->integer;
    *refusal = r->element[2]->str;
    *top = r->element[3]->integer;
    return true;
}

/* Connects, authenticates and learns the stream's top: if Redis lost entries
 * we had published (a restart that did not fsync them), publishing resumes
 * from its top, so the stream is filled again from the outbox. */
static void redis_open(region_pub *p) {
    const gl_stream_config *c = &p->owner->cfg;
    struct timeval tv = {.tv_sec = c->timeout_ms / 1000, .tv_usec = (suseconds_t)(c->timeout_ms % 1000) * 1000};
    p->rc = redisConnectWithTimeout(c->host, c->port, tv);
    if (!p->rc || p->rc->err) {
        redis_failed(p, "connect", p->rc ? p->rc->errstr : "out of memory");
        return;
    }
    redisSetTimeout(p->rc, tv);
    redisEnableKeepAlive(p->rc);
    if (c->password[0]) {
        redisReply *a = redisCommand(p->rc, "AUTH %s", c->password);
        bool ok = a && a->type != REDIS_REPLY_ERROR;
        char why[160];
        snprintf(why, sizeof why, "%s", !a ? "connection lost" : ok ? "" : a->str);
        if (a) freeReplyObject(a);
        if (!ok) {
            redis_failed(p, "AUTH", why);
            return;
        }
    }
    redisReply *r = run_script(p, 5, p->argv, p->lens); /* no events: only the top */
    if (!r) return;
    long long added, skipped, top;
    const char *refusal;
    bool ok = script_reply(r, &added, &skipped, &refusal, &top);
    char why[256];
    snprintf(why, sizeof why, "%s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    freeReplyObject(r);
    if (!ok) {
        redis_failed(p, "read the stream's top", why);
        return;
    }
    if (top < p->cursor) {
        gl_log(GL_LOG_WARN, "stream_behind", "region %s: %s ends at %lld, we had published up to %lld: Redis lost "
               "entries; publishing again from %lld", p->region->name, p->key, top, (long long)p->cursor, top);
        p->cursor = top;
    }
    p->redis_backoff_ms = 0;
    atomic_store(&p->redis_up, true);
    gl_log(GL_LOG_INFO, "stream_connected", "region %s: publishing to %s from seq %lld", p->region->name, p->key,
           (long long)p->cursor + 1);
}

/* The script's arguments for events[0..n), after the 5 fixed ones. The
 * JSON texts are malloc'd into json[]; false when out of memory. */
static bool build_args(region_pub *p, int n, char **json) {
    for (int i = 0; i < n; i++) {
        const ledger_event *e = &p->events[i];
        json_t *o = gl_event_json(e, p->region->name);
        json[i] = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(o);
        if (!json[i]) return false;
        snprintf(p->seqs[i], sizeof p->seqs[i], "%" PRId64, e->seq);
        const char *type = ledger_event_type_name(e->type);
        p->argv[5 + 3 * i] = p->seqs[i];
        p->argv[6 + 3 * i] = type ? type : "unknown";
        p->argv[7 + 3 * i] = json[i];
    }
    for (int i = 5; i < 5 + 3 * n; i++) p->lens[i] = strlen(p->argv[i]);
    return true;
}

/* Sends events[0..n) in one script; returns how many of them are now in the
 * stream (added or there already), -1 when the round trip failed. */
static int send_events(region_pub *p, int n) {
    char *json[GL_STREAM_BATCH_MAX] = {0};
    int done = -1;
    if (!build_args(p, n, json)) {
        gl_log(GL_LOG_ERROR, "stream_publish_error", "region %s: out of memory rendering %d events", p->region->name, n);
        atomic_fetch_add(&p->errors, 1);
    } else {
        redisReply *r = run_script(p, 5 + 3 * n, p->argv, p->lens);
        long long added = 0, skipped = 0, top = 0;
        const char *refusal = "";
        if (r && script_reply(r, &added, &skipped, &refusal, &top) && added + skipped <= n) {
            done = (int)(added + skipped);
            atomic_fetch_add(&p->published, (uint64_t)added);
            atomic_fetch_add(&p->skipped, (uint64_t)skipped);
            if (added > 0) atomic_store(&p->last_publish_us, wall_us());
            if (refusal[0]) redis_failed(p, "XADD refused", refusal);
        } else if (r) {
            redis_failed(p, "EVAL", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        }
        if (r) freeReplyObject(r);
    }
    for (int i = 0; i < n; i++) free(json[i]);
    return done;
}

/* Stores the position once the stream has the events up to it. */
static void store_position(region_pub *p) {
    atomic_store(&p->cursor_seen, p->cursor);
    if (p->cursor <= p->stored) return;
    gl_error e;
    if (!ledger_events_consumer_advance(p->db, GL_STREAM_CONSUMER, p->cursor, &e)) {
        db_failed(p, "store the stream's position", &e);
        return;
    }
    p->stored = p->cursor;
}

/* An idle publisher sends nothing: a PING now and then notices a Redis that
 * went away (geoledger_stream_up), before there is something to publish. */
static void ping_when_due(region_pub *p) {
    uint64_t now = gl_monotonic_ms();
    if (now < p->ping_due) return;
    p->ping_due = now + STATUS_EVERY_MS;
    redisReply *r = redisCommand(p->rc, "PING");
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    char why[160] = "connection lost";
    if (!r && p->rc->errstr[0]) snprintf(why, sizeof why, "%s", p->rc->errstr);
    if (r && !ok) snprintf(why, sizeof why, "%s", r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
    if (r) freeReplyObject(r);
    if (!ok) redis_failed(p, "PING", why);
}

/* One read of the outbox and one round trip to Redis. True when a full batch
 * went (more may be waiting: no pause before the next). */
static bool publish_once(region_pub *p) {
    ledger_events_query q = {.after = p->cursor, .limit = p->owner->cfg.batch, .scan_max = SCAN_MAX};
    int64_t scanned_to = 0, head = 0;
    gl_error e;
    int n = ledger_events_list(p->db, &q, p->events, &scanned_to, &head, &e);
    if (n < 0) {
        db_failed(p, "read events", &e);
        return false;
    }
    if (n == 0) {
        ping_when_due(p);
        if (!p->rc) return false;
    }
    int done = n > 0 ? send_events(p, n) : 0;
    if (done < 0) return false;
    /* All of them: up to where the read got (past pruned holes too); else the last one in. */
    int64_t to = done == n ? scanned_to : (done > 0 ? p->events[done - 1].seq : p->cursor);
    if (to > p->cursor) p->cursor = to;
    store_position(p);
    return n == q.limit && done == n;
}

static bool wait_ms(gl_streams *s, int ms) {
    struct timespec until = gl_realtime_in(ms);
    pthread_mutex_lock(&s->mu);
    if (!s->stopping) pthread_cond_timedwait(&s->cv, &s->mu, &until);
    bool stop = s->stopping;
    pthread_mutex_unlock(&s->mu);
    return !stop;
}

static bool stopping(gl_streams *s) {
    pthread_mutex_lock(&s->mu);
    bool stop = s->stopping;
    pthread_mutex_unlock(&s->mu);
    return stop;
}

/* One turn: reconnect what is due, read the status when due, publish once.
 * True when a full batch went (more may be waiting: no pause before the next). */
static bool step(region_pub *p) {
    const gl_stream_config *c = &p->owner->cfg;
    uint64_t now = gl_monotonic_ms();
    if (!p->db && now >= p->db_retry_at) db_open(p);
    if (p->db && now >= p->status_due) {
        status_refresh(p);
        p->status_due = now + STATUS_EVERY_MS;
    }
    if (!c->enabled || !p->db || !p->have_position) return false;
    if (!p->rc && now >= p->redis_retry_at) redis_open(p);
    return p->rc && publish_once(p);
}

static void *region_loop(void *arg) {
    region_pub *p = arg;
    gl_streams *s = p->owner;
    int pause_ms = s->cfg.enabled ? s->cfg.poll_ms : STATUS_EVERY_MS;
    while (!stopping(s)) {
        if (!step(p) && !wait_ms(s, pause_ms)) break;
    }
    if (p->rc) redisFree(p->rc);
    if (p->db) PQfinish(p->db);
    return NULL;
}

/* ---- /metrics ---- */

static void family(gl_buf *b, const char *name, const char *type, const char *help) {
    gl_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void outbox_families(gl_buf *b, const gl_streams *s, const ledger_outbox_status *st, const int64_t *at,
                            const bool *seen) {
    family(b, "geoledger_outbox_head", "gauge", "The last committed event seq of the region's outbox.");
    for (int i = 0; i < s->n; i++)
        if (seen[i]) gl_buf_printf(b, "geoledger_outbox_head{region=\"%s\"} %" PRId64 "\n", s->pubs[i].region->name, st[i].head);
    family(b, "geoledger_outbox_status_timestamp_seconds", "gauge",
           "When the outbox's head and consumers were last read (they are stale while the region is down).");
    for (int i = 0; i < s->n; i++)
        if (seen[i])
            gl_buf_printf(b, "geoledger_outbox_status_timestamp_seconds{region=\"%s\"} %" PRId64 ".%06" PRId64 "\n",
                          s->pubs[i].region->name, at[i] / 1000000, at[i] % 1000000);
    static const char *const names[2] = {"geoledger_outbox_consumer_position", "geoledger_outbox_consumer_lag"};
    static const char *const helps[2] = {"The last event seq a consumer of the outbox has passed.",
                                         "Events committed that a consumer has not passed yet (head - position)."};
    for (int k = 0; k < 2; k++) {
        family(b, names[k], "gauge", helps[k]);
        for (int i = 0; i < s->n; i++)
            for (int c = 0; seen[i] && c < st[i].n_consumers; c++) {
                const ledger_outbox_consumer *oc = &st[i].consumers[c];
                int64_t v = k == 0 ? oc->position : (st[i].head > oc->position ? st[i].head - oc->position : 0);
                gl_buf_printf(b, "%s{region=\"%s\",consumer=\"%s\"} %" PRId64 "\n", names[k], s->pubs[i].region->name,
                              oc->name, v);
            }
    }
}

/* The publisher's own series, from its atomics (and the head last read). */
static void stream_families(gl_buf *b, gl_streams *s, const ledger_outbox_status *st, const bool *seen) {
    static const struct {
        const char *name, *type, *help;
    } f[] = {{"geoledger_stream_up", "gauge", "Whether the publisher is connected to Redis (1) or not (0)."},
             {"geoledger_stream_position", "gauge", "The last event seq the publisher knows is in the stream."},
             {"geoledger_stream_lag", "gauge", "Events in the outbox not yet in the stream (head - position)."},
             {"geoledger_stream_published_total", "counter", "Events appended to the stream."},
             {"geoledger_stream_skipped_total", "counter", "Events the stream already held (published before a crash)."},
             {"geoledger_stream_publish_errors_total", "counter", "Failed connections, round trips and refusals of Redis."},
             {"geoledger_stream_last_publish_timestamp_seconds", "gauge", "When events were last appended (0: never)."}};
    for (size_t k = 0; k < sizeof f / sizeof f[0]; k++) {
        family(b, f[k].name, f[k].type, f[k].help);
        for (int i = 0; i < s->n; i++) {
            region_pub *p = &s->pubs[i];
            int64_t pos = atomic_load(&p->cursor_seen), last = atomic_load(&p->last_publish_us);
            int64_t v[] = {atomic_load(&p->redis_up), pos, seen[i] && st[i].head > pos ? st[i].head - pos : 0,
                           (int64_t)atomic_load(&p->published), (int64_t)atomic_load(&p->skipped),
                           (int64_t)atomic_load(&p->errors), last};
            gl_buf_printf(b, "%s{region=\"%s\"} %" PRId64, f[k].name, p->region->name, k == 6 ? v[k] / 1000000 : v[k]);
            if (k == 6) gl_buf_printf(b, ".%06" PRId64, v[k] % 1000000); /* microseconds as seconds */
            gl_buf_putc(b, '\n');
        }
    }
}

/* gl_metrics_extra_fn: copies of what the threads hold; no I/O. */
static char *render_metrics(void *ctx) {
    gl_streams *s = ctx;
    ledger_outbox_status *st = calloc((size_t)s->n, sizeof *st);
    int64_t *at = calloc((size_t)s->n, sizeof *at);
    bool *seen = calloc((size_t)s->n, sizeof *seen);
    gl_buf b = {0};
    if (st && at && seen) {
        for (int i = 0; i < s->n; i++) {
            pthread_mutex_lock(&s->pubs[i].mu);
            st[i] = s->pubs[i].status;
            at[i] = s->pubs[i].status_at_us;
            seen[i] = at[i] > 0;
            pthread_mutex_unlock(&s->pubs[i].mu);
        }
        outbox_families(&b, s, st, at, seen);
        if (s->cfg.enabled) stream_families(&b, s, st, seen);
    }
    free(st);
    free(at);
    free(seen);
    if (b.failed || !st || !at || !seen) {
        gl_buf_free(&b);
        return NULL;
    }
    return b.data; /* the caller frees it */
}

/* ---- lifecycle ---- */

gl_streams *gl_streams_start(const gl_config *regions, const gl_stream_config *c, gl_metrics *m, gl_error *err) {
    assert(regions && c && regions->n_regions > 0);
    gl_streams *s = calloc(1, sizeof *s);
    if (s) s->pubs = calloc((size_t)regions->n_regions, sizeof *s->pubs);
    if (!s || !s->pubs) {
        free(s);
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    s->cfg = *c;
    s->n = regions->n_regions;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    for (int i = 0; i < s->n; i++) {
        region_pub *p = &s->pubs[i];
        p->owner = s;
        p->region = &regions->regions[i];
        snprintf(p->key, sizeof p->key, "%s%s", c->key_prefix, p->region->name);
        snprintf(p->maxlen, sizeof p->maxlen, "%d", c->stream_maxlen);
        const char *fixed[5] = {"EVAL", PUBLISH_LUA, "1", p->key, p->maxlen};
        for (int k = 0; k < 5; k++) {
            p->argv[k] = fixed[k];
            p->lens[k] = strlen(fixed[k]);
        }
        pthread_mutex_init(&p->mu, NULL);
    }
    gl_metrics_add_extra(m, render_metrics, s);
    for (int i = 0; i < s->n; i++) {
        int rc = pthread_create(&s->pubs[i].thread, NULL, region_loop, &s->pubs[i]);
        if (rc != 0) {
            gl_error_set(err, GL_ERR_INTERNAL, "cannot start the outbox thread of region %s", s->pubs[i].region->name);
            gl_streams_stop(s, 3000);
            return NULL;
        }
        s->pubs[i].started = true;
    }
    return s;
}

bool gl_streams_stop(gl_streams *s, int deadline_ms) {
    if (!s) return true;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    bool all = true;
    for (int i = 0; i < s->n; i++) {
        if (!s->pubs[i].started) continue;
        struct timespec until = gl_realtime_in(deadline_ms);
        if (pthread_timedjoin_np(s->pubs[i].thread, NULL, &until) != 0) all = false;
    }
    if (!all) return false; /* a thread still runs: its memory must stay */
    for (int i = 0; i < s->n; i++) pthread_mutex_destroy(&s->pubs[i].mu);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->pubs);
    free(s);
    return true;
}
