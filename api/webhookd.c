/*
 * webhookd.c — ledgerd's webhook worker: per region, `webhooks.senders`
 * threads, each on a connection of its own (not the writers', not the read
 * pool's: a slow receiver never holds what requests need).
 *
 * The first thread of a region is also its dispatcher: in one transaction it
 * reads the outbox after the "webhooks" consumer's position (whose row lock
 * serializes the dispatchers of every ledgerd on the region), inserts one
 * delivery per matching endpoint (UNIQUE (endpoint_id, event_id): a re-read
 * is harmless) and advances the position. A crash before COMMIT re-reads the
 * same events; nothing is ever skipped.
 *
 * Every thread sends: it claims due deliveries with a lease (FOR UPDATE SKIP
 * LOCKED: another thread or ledgerd takes other rows), only the oldest
 * pending delivery of each endpoint (a receiver sees an endpoint's events in
 * order; a failing one holds the later ones back), posts each with libcurl,
 * Standard Webhooks signed, and records the attempt, the outcome and the next
 * try in one statement. A sender killed mid-send leaves its lease to expire:
 * the delivery is sent again, with the same webhook-id (at least once).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "../ledger/clock.h"
#include "../ledger/events.h"
#include "../ledger/pg.h"
#include "../ledger/render.h"
#include "server.h"

#define CONSUMER "webhooks"
#define DISPATCH_PAGE 200          /* events per dispatch transaction */
#define CLAIM_MAX 8                /* deliveries claimed at once by a thread */
#define RESPONSE_BODY_MAX 4096     /* bytes of a receiver's answer read, the rest cut */
#define HOUSEKEEPING_INTERVAL_MS 5000
#define PRUNE_BATCH 1000
#define RECONNECT_MAX_MS 5000

typedef struct {
    gl_server *srv;
    struct gl_webhookd *d;
    const gl_region *region;
    int metric_region;
    bool dispatcher; /* the region's first thread: also dispatches and keeps house */
    pthread_t thread;
    bool started;
    PGconn *db;
    char leased_by[128]; /* host:pid:region:thread, on the rows it claims */
    unsigned seed;       /* jitter */
} sender;

struct gl_webhookd {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_bool stopping;
    int n;
    sender s[];
};

/* Waits up to ms, or until stop. */
static void pause_ms(struct gl_webhookd *d, int ms) {
    pthread_mutex_lock(&d->mu);
    if (!atomic_load(&d->stopping)) {
        struct timespec until = gl_realtime_in(ms);
        pthread_cond_timedwait(&d->cv, &d->mu, &until);
    }
    pthread_mutex_unlock(&d->mu);
}

static void log_db(const sender *s, const char *what, const gl_error *err) {
    gl_log(GL_LOG_WARN, "webhook_db_error", "region %s: %s: %s%s%s", s->region->name, what, err->message,
           err->sqlstate[0] ? " SQLSTATE " : "", err->sqlstate);
}

/* ---------- dispatch: events -> deliveries ---------- */

enum { DV_SEQ, DV_ID, DV_TYPE, DV_AT, DV_PAYLOAD, DV_O1, DV_O2, DV_O3, DV_COLS };

/* Inserts the deliveries of events[0..n): one per active endpoint of the
 * region whose owner is one of the event's owners (or that an admin made),
 * of a type it wants, made before the event. */
static bool insert_deliveries(sender *s, const ledger_event *ev, int n, gl_error *err) {
    static const unsigned oids[DV_COLS] = {GL_OID_INT8, GL_OID_UUID, GL_OID_TEXT, GL_OID_TIMESTAMPTZ,
                                           GL_OID_TEXT, GL_OID_TEXT, GL_OID_TEXT, GL_OID_TEXT};
    gl_buf col[DV_COLS];
    gl_buf *params[DV_COLS];
    memset(col, 0, sizeof col);
    for (int c = 0; c < DV_COLS; c++) {
        gl_bin_array_begin(&col[c], oids[c]);
        params[c] = &col[c];
    }
    bool ok = true;
    for (int i = 0; ok && i < n; i++) {
        json_t *o = gl_event_json(&ev[i], s->region->name);
        char *payload = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(o);
        ok = payload != NULL;
        if (ok) {
            gl_bin_i64(&col[DV_SEQ], ev[i].seq);
            gl_bin_uuid(&col[DV_ID], &ev[i].id);
            gl_bin_text(&col[DV_TYPE], ledger_event_type_name(ev[i].type));
            gl_bin_ts_us(&col[DV_AT], ev[i].created_at_us);
            gl_bin_text(&col[DV_PAYLOAD], payload);
            for (int k = 0; k < LEDGER_EVENT_OWNERS; k++) gl_bin_opt_text(&col[DV_O1 + k], ev[i].owners[k]);
        }
        free(payload);
    }
    for (int c = 0; c < DV_COLS; c++) {
        gl_bin_array_finish(&col[c], n);
        ok = ok && !col[c].failed;
    }
    if (!ok) gl_error_set(err, GL_ERR_INTERNAL, "out of memory encoding %d deliveries", n);
    ok = ok && gl_pg_run_bin(s->db,
                             "INSERT INTO webhook_deliveries (endpoint_id, event_seq, event_id, event_type, payload) "
                             "SELECT w.id, u.seq, u.id, u.type, u.payload FROM unnest($1::int8[], $2::uuid[], "
                             "$3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::text[], $8::text[]) "
                             "AS u(seq, id, type, at, payload, o1, o2, o3) JOIN webhook_endpoints w "
                             "ON w.status = 'active' AND w.created_at <= u.at "
                             "AND (w.owner_is_admin OR w.owner IN (u.o1, u.o2, u.o3)) "
                             "AND (cardinality(w.event_types) = 0 OR u.type = ANY (w.event_types)) "
                             "ORDER BY u.seq ON CONFLICT (endpoint_id, event_id) DO NOTHING",
                             DV_COLS, params, err);
    for (int c = 0; c < DV_COLS; c++) gl_buf_free(&col[c]);
    return ok;
}

/* What the dispatcher needs to know first, in one read (one snapshot) and no
 * write, so an idle region costs no transaction per poll: the committed head,
 * whether it is past the position, and whether the region has an active
 * endpoint. */
typedef struct {
    int64_t head;
    bool waiting, endpoints;
} outbox_state;

static bool read_outbox_state(sender *s, outbox_state *st, gl_error *err) {
    const char *p[1] = {CONSUMER};
    PGresult *r = gl_pg_exec(s->db,
                             "SELECT h.last_seq, h.last_seq > coalesce((SELECT position FROM event_consumers "
                             "WHERE name = $1), 0), EXISTS (SELECT 1 FROM webhook_endpoints WHERE status = 'active') "
                             "FROM event_head h WHERE h.id = 1",
                             1, p, err);
    if (!r) return false;
    bool ok = PQntuples(r) == 1;
    if (ok) {
        st->head = gl_pg_get_i64(r, 0, 0);
        st->waiting = PQgetvalue(r, 0, 1)[0] == 't';
        st->endpoints = PQgetvalue(r, 0, 2)[0] == 't';
    } else {
        gl_error_set(err, GL_ERR_INTERNAL, "event_head has no row");
    }
    PQclear(r);
    return ok;
}

/* One page of the outbox into deliveries, and the position past it, in one
 * transaction. Without an active endpoint the position moves straight to the
 * head: every event up to it committed before the read, so before any
 * endpoint made since (an endpoint gets events from its creation on), and a
 * region with a long history and no endpoints costs one read, not one per
 * page. (The INSERT's join sees the endpoints of its own snapshot: one made
 * in between gets what its creation time admits, as the join decides.)
 * Returns the events handed on, or -1. */
static int dispatch(sender *s, ledger_event *ev, gl_error *err) {
    outbox_state st;
    if (!read_outbox_state(s, &st, err)) return -1;
    if (!st.waiting) return 0;
    if (!st.endpoints) return ledger_events_consumer_advance(s->db, CONSUMER, st.head, err) ? 0 : -1;
    if (!gl_pg_run(s->db, "BEGIN", 0, NULL, err)) return -1;
    /* (its upsert takes the consumer row's lock until COMMIT: one dispatcher at a time per region) */
    int64_t pos = ledger_events_consumer_position(s->db, CONSUMER, err);
    ledger_events_query q = {.after = pos < 0 ? 0 : pos, .limit = DISPATCH_PAGE, .scan_max = DISPATCH_PAGE};
    int64_t scanned_to = 0, head = 0;
    int n = pos < 0 ? -1 : ledger_events_list(s->db, &q, ev, &scanned_to, &head, err);
    bool ok = n >= 0 && (n == 0 || insert_deliveries(s, ev, n, err)) &&
              (scanned_to <= pos || ledger_events_consumer_advance(s->db, CONSUMER, scanned_to, err)) &&
              gl_pg_run(s->db, "COMMIT", 0, NULL, err);
    if (!ok) gl_pg_rollback(s->db);
    return ok ? n : -1;
}

/* ---------- send ---------- */

typedef struct {
    gl_id id;
    char event_id[GL_ID_STR_LEN + 1];
    char *payload;
    int attempts, attempts_before;
    char url[GL_WEBHOOK_URL_MAX + 1];
    char secret[GL_WEBHOOK_SECRET_LEN + 1];
} claimed;

/* Leases up to cap due deliveries, each the oldest pending one of its
 * endpoint; a row another sender has locked or leased is passed over. */
static int claim(sender *s, claimed *out, int cap, gl_error *err) {
    char lease[16], limit[8];
    snprintf(lease, sizeof lease, "%d", s->srv->cfg.webhooks.lease_ms);
    snprintf(limit, sizeof limit, "%d", cap);
    const char *p[3] = {s->leased_by, lease, limit};
    PGresult *r = gl_pg_exec(
        s->db,
        "UPDATE webhook_deliveries d SET lease_until = now() + make_interval(secs => $2::int / 1000.0), "
        "leased_by = $1 FROM webhook_endpoints w WHERE w.id = d.endpoint_id AND d.id IN (SELECT x.id FROM "
        "webhook_deliveries x JOIN webhook_endpoints e ON e.id = x.endpoint_id AND e.status = 'active' "
        "WHERE x.state = 'pending' AND x.next_attempt_at <= now() AND (x.lease_until IS NULL OR x.lease_until < now()) "
        "AND NOT EXISTS (SELECT 1 FROM webhook_deliveries y WHERE y.endpoint_id = x.endpoint_id "
        "AND y.state = 'pending' AND y.event_seq < x.event_seq) "
        "ORDER BY x.next_attempt_at LIMIT $3::int FOR UPDATE OF x SKIP LOCKED) "
        "RETURNING d.id, d.event_id, d.payload, d.attempts, d.attempts_before, w.url, w.secret",
        3, p, err);
    if (!r) return -1;
    int n = 0;
    for (int row = 0; row < PQntuples(r) && n < cap; row++) {
        claimed *c = &out[n];
        memset(c, 0, sizeof *c);
        c->payload = strdup(PQgetvalue(r, row, 2));
        if (!c->payload) continue; /* its lease expires and it is claimed again */
        gl_pg_get_id(r, row, 0, &c->id);
        gl_pg_get_text(r, row, 1, c->event_id, sizeof c->event_id);
        c->attempts = (int)gl_pg_get_i64(r, row, 3);
        c->attempts_before = (int)gl_pg_get_i64(r, row, 4);
        gl_pg_get_text(r, row, 5, c->url, sizeof c->url);
        gl_pg_get_text(r, row, 6, c->secret, sizeof c->secret);
        n++;
    }
    PQclear(r);
    return n;
}

typedef struct {
    long status;    /* 0: no answer */
    char error[256]; /* "" when it answered 2xx */
    int duration_ms;
    bool aborted;   /* shutdown: no attempt to record */
} outcome;

static size_t read_body(char *ptr, size_t size, size_t nmemb, void *arg) {
    (void)ptr;
    size_t *seen = arg;
    *seen += size * nmemb;
    return *seen > RESPONSE_BODY_MAX ? 0 : size * nmemb; /* 0 cuts the transfer: the status is known by then */
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t e) {
    (void)a, (void)b, (void)c, (void)e;
    return atomic_load(&((struct gl_webhookd *)arg)->stopping) ? 1 : 0;
}

/* The headers of one attempt: Standard Webhooks' three, and ours. */
static struct curl_slist *attempt_headers(const claimed *c, int64_t ts, bool *ok) {
    char sig[GL_WEBHOOK_SIGNATURE_MAX + 1], h[160];
    *ok = gl_webhook_sign(c->secret, c->event_id, ts, c->payload, strlen(c->payload), sig);
    if (!*ok) return NULL;
    struct curl_slist *l = NULL;
    const char *fixed[] = {"Content-Type: application/json", "Expect:"}; /* no 100-continue round trip */
    for (size_t i = 0; i < 2; i++) l = curl_slist_append(l, fixed[i]);
    snprintf(h, sizeof h, "webhook-id: %s", c->event_id);
    l = curl_slist_append(l, h);
    snprintf(h, sizeof h, "webhook-timestamp: %lld", (long long)ts);
    l = curl_slist_append(l, h);
    snprintf(h, sizeof h, "webhook-signature: %s", sig);
    l = curl_slist_append(l, h);
    return l;
}

/* Sets up the transfer: pinned to the checked address, http(s) only, no
 * redirects, no proxy, bounded in time and in what it reads. */
static void configure(CURL *h, const sender *s, const claimed *c, const gl_webhook_target *t, struct curl_slist *hdr,
                      struct curl_slist **pin, size_t *seen) {
    const gl_webhooks_config *w = &s->srv->cfg.webhooks;
    curl_easy_setopt(h, CURLOPT_URL, c->url);
    if (!t->host_is_literal) {
        char entry[400];
        bool v6 = strchr(t->addr, ':') != NULL;
        snprintf(entry, sizeof entry, "%s:%d:%s%s%s", t->host, t->port, v6 ? "[" : "", t->addr, v6 ? "]" : "");
        *pin = curl_slist_append(NULL, entry);
        curl_easy_setopt(h, CURLOPT_RESOLVE, *pin);
    }
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROXY, "");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)w->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)w->timeout_ms);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "geoledger-webhooks/1");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->payload);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(c->payload));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, read_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, seen);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, s->d);
}

/* One attempt at one delivery. The target is checked again first: a host
 * that now resolves to a forbidden address fails as an attempt. */
static outcome post(sender *s, const claimed *c) {
    outcome o = {0};
    uint64_t t0 = gl_monotonic_ms();
    gl_webhook_target t;
    const char *why = NULL;
    bool ok = false;
    if (!gl_webhook_target_check(c->url, s->srv->cfg.webhooks.allow_private_targets, &t, &why)) {
        snprintf(o.error, sizeof o.error, "target refused: %s", why);
        o.duration_ms = (int)(gl_monotonic_ms() - t0);
        return o;
    }
    struct curl_slist *hdr = attempt_headers(c, (int64_t)time(NULL), &ok), *pin = NULL;
    CURL *h = ok ? curl_easy_init() : NULL;
    if (!h) {
        snprintf(o.error, sizeof o.error, "%s",
                 ok ? "cannot start a transfer (out of memory)" : "the endpoint's secret is malformed");
        curl_slist_free_all(hdr);
        return o;
    }
    size_t seen = 0;
    configure(h, s, c, &t, hdr, &pin, &seen);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &o.status);
    o.duration_ms = (int)(gl_monotonic_ms() - t0);
    o.aborted = rc == CURLE_ABORTED_BY_CALLBACK;
    bool cut = rc == CURLE_WRITE_ERROR && seen > RESPONSE_BODY_MAX; /* we stopped reading: it answered */
    if (rc != CURLE_OK && !cut) {
        snprintf(o.error, sizeof o.error, "%s", curl_easy_strerror(rc));
        if (rc == CURLE_OPERATION_TIMEDOUT) o.status = 0;
    } else if (o.status < 200 || o.status > 299) {
        snprintf(o.error, sizeof o.error, "HTTP %ld%s", o.status,
                 o.status >= 300 && o.status < 400 ? " (redirects are not followed)" : "");
    }
    if (o.status < 100 || o.status > 599) o.status = 0;
    curl_easy_cleanup(h);
    curl_slist_free_all(hdr);
    curl_slist_free_all(pin);
    return o;
}

/* The delay before the next try after a failed attempt, or -1: the schedule is spent (dead). */
static int64_t retry_delay_ms(sender *s, const claimed *c) {
    const gl_webhooks_config *w = &s->srv->cfg.webhooks;
    int step = c->attempts + 1 - c->attempts_before; /* this attempt's place in the current cycle, 1-based */
    if (step > w->n_retry) return -1;
    int64_t base = w->retry_ms[step - 1];
    /* +-20 % jitter: receivers that failed together do not all come back at once. */
    int64_t spread = base / 5;
    return spread > 0 ? base - spread + (int64_t)(rand_r(&s->seed) % (unsigned)(2 * spread + 1)) : base;
}

/* Records the attempt and its consequences in one statement: the attempt row,
 * the delivery's state and next try, and the endpoint's failure run (disabled
 * past disable_after_s). Only while the lease is still this sender's. */
static bool record(sender *s, const claimed *c, const outcome *o, gl_error *err) {
    bool delivered = o->error[0] == '\0';
    int64_t delay = delivered ? 0 : retry_delay_ms(s, c);
    const char *state = delivered ? "delivered" : delay < 0 ? "dead" : "pending";
    char id[GL_ID_STR_LEN + 1], status[8], dur[16], delay_s[24], disable[16];
    gl_id_format(&c->id, id);
    snprintf(status, sizeof status, "%ld", o->status);
    snprintf(dur, sizeof dur, "%d", o->duration_ms);
    snprintf(delay_s, sizeof delay_s, "%lld", (long long)(delay < 0 ? 0 : delay));
    snprintf(disable, sizeof disable, "%d", s->srv->cfg.webhooks.disable_after_s);
    const char *p[8] = {id, s->leased_by, o->status ? status : NULL, delivered ? NULL : o->error, dur, state, delay_s,
                        disable};
    PGresult *r = gl_pg_exec(
        s->db,
        "WITH d AS (UPDATE webhook_deliveries SET attempts = attempts + 1, state = $6, "
        "next_attempt_at = now() + make_interval(secs => $7::int8 / 1000.0), "
        "delivered_at = CASE WHEN $6 = 'delivered' THEN now() END, lease_until = NULL, leased_by = NULL, "
        "last_status = $3::int, last_error = $4 WHERE id = $1::uuid AND leased_by = $2 "
        "RETURNING id, endpoint_id, attempts), "
        "a AS (INSERT INTO webhook_attempts (delivery_id, attempt_no, http_status, error, duration_ms) "
        "SELECT id, attempts, $3::int, $4, $5::int FROM d), "
        "e AS (UPDATE webhook_endpoints w SET "
        "failing_since = CASE WHEN $6 = 'delivered' THEN NULL ELSE coalesce(w.failing_since, now()) END, "
        "status = CASE WHEN $6 <> 'delivered' AND w.failing_since < now() - make_interval(secs => $8::int) "
        "THEN 'disabled' ELSE w.status END, "
        "disabled_at = CASE WHEN $6 <> 'delivered' AND w.failing_since < now() - make_interval(secs => $8::int) "
        "THEN coalesce(w.disabled_at, now()) ELSE w.disabled_at END FROM d WHERE w.id = d.endpoint_id "
        "RETURNING w.status = 'disabled' AND w.disabled_at = now() AS disabled_now) "
        "SELECT (SELECT count(*) FROM d), coalesce((SELECT bool_or(disabled_now) FROM e), false)",
        8, p, err);
    if (!r) return false;
    bool mine = gl_pg_get_i64(r, 0, 0) == 1, disabled_now = PQgetvalue(r, 0, 1)[0] == 't';
    PQclear(r);
    if (!mine)
        gl_log(GL_LOG_WARN, "webhook_lease_lost",
               "region %s: delivery %s was sent, but its lease had expired or its endpoint was deleted: not recorded",
               s->region->name, id);
    if (disabled_now)
        gl_log(GL_LOG_WARN, "webhook_endpoint_disabled",
               "region %s: an endpoint failing for over %d s was disabled (delivery %s)", s->region->name,
               s->srv->cfg.webhooks.disable_after_s, id);
    if (mine) gl_metrics_webhook(s->srv->metrics, s->metric_region,
                                 delivered ? GL_WEBHOOK_DELIVERED : delay < 0 ? GL_WEBHOOK_DEAD : GL_WEBHOOK_FAILED);
    return true;
}

/* A send cut by shutdown: the lease is given back, so another ledgerd (or
 * this one after its restart) sends it without waiting for it to expire. */
static void release(sender *s, const claimed *c) {
    char id[GL_ID_STR_LEN + 1];
    gl_id_format(&c->id, id);
    const char *p[2] = {id, s->leased_by};
    gl_error err;
    if (!gl_pg_run(s->db, "UPDATE webhook_deliveries SET lease_until = NULL, leased_by = NULL "
                          "WHERE id = $1::uuid AND leased_by = $2", 2, p, &err))
        log_db(s, "releasing a lease", &err);
}

/* Claims and sends what is due. Returns the deliveries attempted, or -1. */
static int send_round(sender *s, gl_error *err) {
    const gl_webhooks_config *w = &s->srv->cfg.webhooks;
    /* The whole claim must be sent within its lease, every attempt taking its full timeout. */
    int cap = (w->lease_ms - 1) / w->timeout_ms;
    cap = cap < 1 ? 1 : cap > CLAIM_MAX ? CLAIM_MAX : cap;
    claimed c[CLAIM_MAX];
    int n = claim(s, c, cap, err);
    bool ok = n >= 0;
    for (int i = 0; i < n; i++) {
        outcome o = {0};
        if (ok && !atomic_load(&s->d->stopping)) o = post(s, &c[i]);
        else o.aborted = true;
        if (ok && o.aborted) release(s, &c[i]);
        else if (ok && !record(s, &c[i], &o, err)) ok = false; /* the lease expires: sent again */
        free(c[i].payload);
        OPENSSL_cleanse(c[i].secret, sizeof c[i].secret);
    }
    return ok ? n : -1;
}

/* ---------- housekeeping ---------- */

/* The gauges, and retention: finished deliveries past retention_hours go,
 * a bounded batch at a time (their attempts with them). */
static bool housekeeping(sender *s, gl_error *err) {
    char hours[16], batch[16];
    snprintf(hours, sizeof hours, "%d", s->srv->cfg.webhooks.retention_h);
    snprintf(batch, sizeof batch, "%d", PRUNE_BATCH);
    const char *p[2] = {hours, batch};
    if (!gl_pg_run(s->db,
                   "DELETE FROM webhook_deliveries WHERE id IN (SELECT id FROM webhook_deliveries WHERE "
                   "state <> 'pending' AND created_at < now() - make_interval(hours => $1::int) LIMIT $2::int)",
                   2, p, err))
        return false;
    PGresult *r = gl_pg_exec(s->db,
                             "SELECT (SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'), "
                             "(SELECT count(*) FROM webhook_deliveries WHERE state = 'dead')",
                             0, NULL, err);
    if (!r) return false;
    gl_metrics_gauge_set(s->srv->metrics, GL_GAUGE_WEBHOOK_PENDING, s->metric_region, gl_pg_get_i64(r, 0, 0));
    gl_metrics_gauge_set(s->srv->metrics, GL_GAUGE_WEBHOOK_DEAD, s->metric_region, gl_pg_get_i64(r, 0, 1));
    PQclear(r);
    return true;
}

/* ---------- the threads ---------- */

/* One round: dispatch (the first thread), house (now and then), send.
 * Returns whether there was work (then the next round starts at once). */
static bool round_once(sender *s, ledger_event *ev, uint64_t *last_house, gl_error *err) {
    int dispatched = 0;
    if (s->dispatcher) {
        dispatched = dispatch(s, ev, err);
        if (dispatched < 0) return false;
        uint64_t now = gl_monotonic_ms();
        if (now - *last_house >= HOUSEKEEPING_INTERVAL_MS) {
            if (!housekeeping(s, err)) return false;
            *last_house = now;
        }
    }
    int sent = send_round(s, err);
    if (sent < 0) return false;
    return dispatched > 0 || sent > 0;
}

static void *sender_main(void *arg) {
    sender *s = arg;
    ledger_event *ev = s->dispatcher ? calloc(DISPATCH_PAGE, sizeof *ev) : NULL;
    int backoff_ms = s->srv->cfg.webhooks.poll_ms;
    uint64_t last_house = 0;
    while (!atomic_load(&s->d->stopping)) {
        gl_error err;
        gl_error_clear(&err);
        if (s->dispatcher && !ev) {
            gl_log(GL_LOG_ERROR, "webhook_worker", "region %s: out of memory for the dispatcher", s->region->name);
            pause_ms(s->d, RECONNECT_MAX_MS);
            ev = calloc(DISPATCH_PAGE, sizeof *ev);
            continue;
        }
        if (!gl_pg_reusable(s->db)) {
            PQfinish(s->db);
            s->db = gl_region_connect(s->region, GL_ROLE_SERVICE, &err);
        }
        bool busy = s->db && round_once(s, ev, &last_house, &err);
        if (err.message[0]) { /* a failure: logged, the connection checked, a growing pause */
            if (!s->db) gl_log(GL_LOG_WARN, "webhook_region_down", "region %s: %s", s->region->name, err.message);
            else log_db(s, "webhook round", &err);
            pause_ms(s->d, backoff_ms);
            backoff_ms = backoff_ms * 2 > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : backoff_ms * 2;
            continue;
        }
        backoff_ms = s->srv->cfg.webhooks.poll_ms;
        if (!busy) pause_ms(s->d, s->srv->cfg.webhooks.poll_ms);
    }
    free(ev);
    PQfinish(s->db);
    s->db = NULL;
    return NULL;
}

bool gl_webhookd_start(gl_server *srv, gl_error *err) {
    assert(srv);
    const gl_webhooks_config *w = &srv->cfg.webhooks;
    if (!w->enabled) return true;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        gl_error_set(err, GL_ERR_INTERNAL, "webhooks: libcurl does not initialize");
        return false;
    }
    int n = srv->regions.n_regions * w->senders;
    struct gl_webhookd *d = calloc(1, sizeof *d + (size_t)n * sizeof(sender));
    if (!d) {
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory");
        return false;
    }
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    d->n = n;
    srv->webhookd = d;
    char host[64] = "?";
    gethostname(host, sizeof host - 1);
    for (int i = 0; i < n; i++) {
        sender *s = &d->s[i];
        s->srv = srv;
        s->d = d;
        s->region = &srv->regions.regions[i / w->senders];
        s->metric_region = gl_metrics_find_region(srv->metrics, s->region->name);
        s->dispatcher = i % w->senders == 0;
        s->seed = (unsigned)(time(NULL) ^ (getpid() << 8) ^ i);
        snprintf(s->leased_by, sizeof s->leased_by, "%s:%d:%s:%d", host, (int)getpid(), s->region->name, i % w->senders);
        if (pthread_create(&s->thread, NULL, sender_main, s) != 0) {
            gl_error_set(err, GL_ERR_INTERNAL, "webhooks: cannot start the threads of region %s", s->region->name);
            return false;
        }
        s->started = true;
    }
    return true;
}

void gl_webhookd_stop(gl_server *srv) {
    struct gl_webhookd *d = srv->webhookd;
    if (!d) return;
    pthread_mutex_lock(&d->mu);
    atomic_store(&d->stopping, true);
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    /* A send in flight is cut by its progress callback; a database round trip by its deadline. */
    for (int i = 0; i < d->n; i++)
        if (d->s[i].started) pthread_join(d->s[i].thread, NULL);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    free(d);
    srv->webhookd = NULL;
    curl_global_cleanup();
}
