/*
 * webhooks.c — see webhooks.h: target checks, signatures, and the rows of
 * webhook_endpoints and webhook_deliveries (sql/0012_webhooks.sql).
 */
#include "webhooks.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "../ledger/events.h"
#include "../ledger/pg.h"
#include "../ledger/render.h"

void gl_webhooks_config_defaults(gl_webhooks_config *c) {
    assert(c);
    memset(c, 0, sizeof *c);
    c->enabled = true;
    /* Standard Webhooks' suggested schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h. */
    static const int schedule[] = {5000, 300000, 1800000, 7200000, 18000000, 36000000};
    c->n_retry = (int)(sizeof schedule / sizeof schedule[0]);
    memcpy(c->retry_ms, schedule, sizeof schedule);
    c->connect_timeout_ms = 5000;
    c->timeout_ms = 10000;
    c->lease_ms = 60000;
    c->disable_after_s = 3 * 24 * 3600;
    c->senders = 2;
    c->poll_ms = 1000;
    c->retention_h = 7 * 24;
}

/* ---------- targets ---------- */

static bool in_v4(uint32_t a, uint32_t net, int bits) {
    uint32_t mask = bits == 0 ? 0 : 0xffffffffu << (32 - bits);
    return (a & mask) == (net & mask);
}

/* Why an IPv4 address (host order) may not be a target, or NULL. */
static const char *v4_forbidden(uint32_t a) {
    static const struct {
        uint32_t net;
        int bits;
        const char *why;
    } nets[] = {
        {0x00000000, 8, "the address is in 0.0.0.0/8 (this network)"},
        {0x0a000000, 8, "the address is private (10.0.0.0/8)"},
        {0x64400000, 10, "the address is shared (100.64.0.0/10)"},
        {0x7f000000, 8, "the address is loopback (127.0.0.0/8)"},
        {0xa9fe0000, 16, "the address is link-local (169.254.0.0/16)"},
        {0xac100000, 12, "the address is private (172.16.0.0/12)"},
        {0xc0000000, 24, "the address is reserved (192.0.0.0/24)"},
        {0xc0000200, 24, "the address is for documentation (192.0.2.0/24)"},
        {0xc0a80000, 16, "the address is private (192.168.0.0/16)"},
        {0xc6120000, 15, "the address is for benchmarking (198.18.0.0/15)"},
        {0xc6336400, 24, "the address is for documentation (198.51.100.0/24)"},
        {0xcb007100, 24, "the address is for documentation (203.0.113.0/24)"},
        {0xe0000000, 4, "the address is multicast (224.0.0.0/4)"},
        {0xf0000000, 4, "the address is reserved (240.0.0.0/4)"},
    };
    for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++)
        if (in_v4(a, nets[i].net, nets[i].bits)) return nets[i].why;
    return NULL;
}

/* Why an IPv6 address may not be a target, or NULL. Addresses that embed an
 * IPv4 one (mapped, NAT64, 6to4) are judged by it. */
static const char *v6_forbidden(const unsigned char *b) {
    static const unsigned char zero[16] = {0};
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    if (memcmp(b, zero, 15) == 0) return b[15] == 1 ? "the address is loopback (::1)" : "the address is unspecified (::)";
    if (memcmp(b, mapped, 12) == 0 || memcmp(b, nat64, 12) == 0)
        return v4_forbidden((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15]);
    if (b[0] == 0x20 && b[1] == 0x02) /* 6to4: 2002:AABB:CCDD::/48 */
        return v4_forbidden((uint32_t)b[2] << 24 | (uint32_t)b[3] << 16 | (uint32_t)b[4] << 8 | b[5]);
    if ((b[0] & 0xfe) == 0xfc) return "the address is unique-local (fc00::/7)";
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return "the address is link-local (fe80::/10)";
    if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return "the address is site-local (fec0::/10)";
    if (b[0] == 0xff) return "the address is multicast (ff00::/8)";
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return "the address is for documentation";
    if (memcmp(b, zero, 8) == 0) return "the address is reserved (::/64)"; /* IPv4-compatible and the like */
    if (b[0] == 0x01 && b[1] == 0 && memcmp(b + 2, zero, 6) == 0) return "the address is for discarding (100::/64)";
    return NULL;
}

static const char *addr_forbidden(const struct sockaddr *sa) {
    if (sa->sa_family == AF_INET) return v4_forbidden(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->sa_family == AF_INET6) return v6_forbidden(((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr);
    return "the address family is not IP";
}

/* scheme://host[:port][/path][?query]: scheme, host and port into t. */
static const char *parse_url(const char *url, gl_webhook_target *t) {
    size_t len = strlen(url);
    if (len > GL_WEBHOOK_URL_MAX) return "the url is over 2048 bytes";
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f) return "the url has a space, a control or a non-ASCII character";
    const char *p;
    if (strncmp(url, "https://", 8) == 0) t->https = true, p = url + 8;
    else if (strncmp(url, "http://", 7) == 0) t->https = false, p = url + 7;
    else return "the url's scheme must be http or https";
    if (strchr(url, '#')) return "the url may not have a fragment";
    size_t auth = strcspn(p, "/?");
    if (memchr(p, '@', auth)) return "the url may not carry a user name or password";
    const char *host = p, *port = NULL;
    size_t host_len;
    if (*p == '[') { /* an IPv6 literal */
        const char *close = memchr(p, ']', auth);
        if (!close) return "the url's IPv6 address has no closing bracket";
        host = p + 1;
        host_len = (size_t)(close - host);
        if (close + 1 < p + auth) {
            if (close[1] != ':') return "the url's host is malformed";
            port = close + 2;
        }
    } else {
        const char *colon = memchr(p, ':', auth);
        host_len = colon ? (size_t)(colon - p) : auth;
        if (colon) port = colon + 1;
    }
    if (host_len == 0 || host_len >= sizeof t->host) return "the url has no host, or one over 255 bytes";
    memcpy(t->host, host, host_len);
    t->host[host_len] = '\0';
    for (size_t i = 0; i < host_len; i++)
        if (!isalnum((unsigned char)t->host[i]) && !strchr(".-:", t->host[i])) return "the url's host is malformed";
    t->port = t->https ? 443 : 80;
    if (port) {
        size_t plen = (size_t)(p + auth - port);
        int v = 0;
        if (plen == 0 || plen > 5) return "the url's port must be 1..65535";
        for (size_t i = 0; i < plen; i++) {
            if (!isdigit((unsigned char)port[i])) return "the url's port must be 1..65535";
            v = v * 10 + (port[i] - '0');
        }
        if (v < 1 || v > 65535) return "the url's port must be 1..65535";
        t->port = v;
    }
    return NULL;
}

bool gl_webhook_target_check(const char *url, bool allow_private, gl_webhook_target *t, const char **why) {
    assert(url && t && why);
    memset(t, 0, sizeof *t);
    *why = parse_url(url, t);
    if (*why) return false;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    struct addrinfo *res = NULL;
    unsigned char probe[16];
    t->host_is_literal = inet_pton(AF_INET, t->host, probe) == 1 || inet_pton(AF_INET6, t->host, probe) == 1;
    if (t->host_is_literal) hints.ai_flags = AI_NUMERICHOST;
    if (getaddrinfo(t->host, NULL, &hints, &res) != 0 || !res) {
        *why = "the url's host does not resolve";
        return false;
    }
    /* Every address must pass, not only the first: curl is pinned to the
     * first, but a name that also answers a private address is refused. */
    for (const struct addrinfo *a = res; a && !*why; a = a->ai_next)
        if (!allow_private) *why = addr_forbidden(a->ai_addr);
    const void *bin = res->ai_family == AF_INET ? (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr
                                                : (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr;
    if (!*why && !inet_ntop(res->ai_family, bin, t->addr, sizeof t->addr)) *why = "the url's host has no usable address";
    freeaddrinfo(res);
    return *why == NULL;
}

/* ---------- signatures ---------- */

bool gl_webhook_secret_new(char out[GL_WEBHOOK_SECRET_LEN + 1]) {
    unsigned char key[32];
    if (RAND_bytes(key, sizeof key) != 1) return false;
    snprintf(out, GL_WEBHOOK_SECRET_LEN + 1, "whsec_");
    EVP_EncodeBlock((unsigned char *)out + 6, key, sizeof key); /* 44 characters and a NUL */
    OPENSSL_cleanse(key, sizeof key);
    return true;
}

/* The HMAC key of a "whsec_" secret: its base64 decoded, 24..64 bytes (the
 * Standard Webhooks range; ours are 32). Returns the length, or -1. */
static int secret_key(const char *secret, unsigned char key[66]) {
    size_t len = strlen(secret);
    if (len < 6 + 32 || len > 6 + 88 || strncmp(secret, "whsec_", 6) != 0 || (len - 6) % 4 != 0) return -1;
    const char *b64 = secret + 6;
    size_t n64 = len - 6, pad = (b64[n64 - 1] == '=') + (b64[n64 - 2] == '=');
    int n = EVP_DecodeBlock(key, (const unsigned char *)b64, (int)n64); /* counts the padding as zero bytes */
    n -= (int)pad;
    return n >= 24 && n <= 64 ? n : -1;
}

bool gl_webhook_sign(const char *secret, const char *msg_id, int64_t timestamp, const char *body, size_t body_len,
                     char out[GL_WEBHOOK_SIGNATURE_MAX + 1]) {
    assert(secret && msg_id && out && (body || body_len == 0));
    unsigned char key[66];
    int key_len = secret_key(secret, key);
    char head[160];
    int n = snprintf(head, sizeof head, "%s.%lld.", msg_id, (long long)timestamp);
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t got = 0;
    EVP_MAC *alg = key_len > 0 && n > 0 && (size_t)n < sizeof head ? EVP_MAC_fetch(NULL, "HMAC", NULL) : NULL;
    EVP_MAC_CTX *ctx = alg ? EVP_MAC_CTX_new(alg) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0), OSSL_PARAM_construct_end()};
    bool ok = ctx && EVP_MAC_init(ctx, key, (size_t)key_len, params) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)head, (size_t)n) == 1 &&
              EVP_MAC_update(ctx, (const unsigned char *)body, body_len) == 1 &&
              EVP_MAC_final(ctx, mac, &got, sizeof mac) == 1 && got == 32;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(alg);
    OPENSSL_cleanse(key, sizeof key);
    if (!ok) return false;
    snprintf(out, GL_WEBHOOK_SIGNATURE_MAX + 1, "v1,");
    EVP_EncodeBlock((unsigned char *)out + 3, mac, 32); /* 44 characters and a NUL */
    return true;
}

/* ---------- endpoints ---------- */

#define ENDPOINT_COLUMNS                                                                                          \
    "id, owner, owner_is_admin, url, array_to_string(event_types, ','), status = 'disabled', "                    \
    "(extract(epoch FROM created_at) * 1000000)::int8, (extract(epoch FROM failing_since) * 1000000)::int8, " \
    "(extract(epoch FROM disabled_at) * 1000000)::int8"

static void endpoint_from_row(const PGresult *r, int row, gl_webhook_endpoint *e) {
    memset(e, 0, sizeof *e);
    gl_pg_get_id(r, row, 0, &e->id);
    gl_pg_get_text(r, row, 1, e->owner, sizeof e->owner);
    e->owner_is_admin = PQgetvalue(r, row, 2)[0] == 't';
    gl_pg_get_text(r, row, 3, e->url, sizeof e->url);
    if (!ledger_event_types_parse(PQgetvalue(r, row, 4), &e->types)) e->types = 0; /* the API writes only names */
    e->disabled = PQgetvalue(r, row, 5)[0] == 't';
    e->created_at_us = gl_pg_get_i64(r, row, 6);
    e->failing_since_us = gl_pg_get_i64(r, row, 7);
    e->disabled_at_us = gl_pg_get_i64(r, row, 8);
}

/* Runs a statement returning ENDPOINT_COLUMNS into out[0..cap): rows read, or -1. */
static int endpoint_query(PGconn *db, const char *sql, int n, const char *const *params, gl_webhook_endpoint *out,
                          int cap, gl_error *err) {
    PGresult *r = gl_pg_exec(db, sql, n, params, err);
    if (!r) return -1;
    int rows = PQntuples(r) < cap ? PQntuples(r) : cap;
    for (int i = 0; i < rows; i++) endpoint_from_row(r, i, &out[i]);
    PQclear(r);
    return rows;
}

int gl_webhook_insert(PGconn *db, gl_webhook_endpoint *e, gl_error *err) {
    assert(db && e && e->owner[0] && e->url[0] && e->secret[0]);
    char id[GL_ID_STR_LEN + 1], types[512], limit[8];
    gl_id_format(&e->id, id);
    if (!ledger_event_types_literal(e->types, types, sizeof types)) {
        gl_error_set(err, GL_ERR_INTERNAL, "event types do not fit");
        return -1;
    }
    snprintf(limit, sizeof limit, "%d", GL_WEBHOOK_PER_OWNER_MAX);
    const char *p[7] = {id, e->owner, e->owner_is_admin ? "t" : "f", e->url, types, e->secret, limit};
    char secret[GL_WEBHOOK_SECRET_LEN + 1];
    memcpy(secret, e->secret, sizeof secret);
    /* The cap is checked in the statement: no row when the owner is at it. */
    int rc = endpoint_query(db,
                            "INSERT INTO webhook_endpoints (id, owner, owner_is_admin, url, event_types, secret) "
                            "SELECT $1::uuid, $2::text, $3::bool, $4::text, $5::text[], $6::text WHERE (SELECT count(*) "
                            "FROM webhook_endpoints WHERE owner = $2::text) < $7::int RETURNING " ENDPOINT_COLUMNS,
                            7, p, e, 1, err);
    memcpy(e->secret, secret, sizeof secret); /* the row read does not carry it back */
    OPENSSL_cleanse(secret, sizeof secret);
    return rc;
}

int gl_webhook_get(PGconn *db, const gl_id *id, gl_webhook_endpoint *out, gl_error *err) {
    char ids[GL_ID_STR_LEN + 1];
    gl_id_format(id, ids);
    const char *p[1] = {ids};
    return endpoint_query(db, "SELECT " ENDPOINT_COLUMNS " FROM webhook_endpoints WHERE id = $1::uuid", 1, p, out, 1,
                          err);
}

int gl_webhook_list(PGconn *db, const char *owner, gl_webhook_endpoint *out, int cap, gl_error *err) {
    assert(db && out && cap > 0 && cap <= GL_WEBHOOK_LIST_MAX + 1);
    char limit[8];
    snprintf(limit, sizeof limit, "%d", cap);
    const char *p[2] = {owner, limit};
    return endpoint_query(db,
                          "SELECT " ENDPOINT_COLUMNS " FROM webhook_endpoints WHERE ($1::text IS NULL OR owner = $1) "
                          "ORDER BY created_at, id LIMIT $2::int",
                          2, p, out, cap, err);
}

int gl_webhook_delete(PGconn *db, const gl_id *id, gl_error *err) {
    char ids[GL_ID_STR_LEN + 1];
    gl_id_format(id, ids);
    const char *p[1] = {ids};
    PGresult *r = gl_pg_exec(db, "DELETE FROM webhook_endpoints WHERE id = $1::uuid RETURNING 1", 1, p, err);
    if (!r) return -1;
    int n = PQntuples(r);
    PQclear(r);
    return n > 0;
}

int gl_webhook_enable(PGconn *db, const gl_id *id, gl_webhook_endpoint *out, gl_error *err) {
    char ids[GL_ID_STR_LEN + 1];
    gl_id_format(id, ids);
    const char *p[1] = {ids};
    return endpoint_query(db,
                          "UPDATE webhook_endpoints SET status = 'active', disabled_at = NULL, failing_since = NULL "
                          "WHERE id = $1::uuid RETURNING " ENDPOINT_COLUMNS,
                          1, p, out, 1, err);
}

static json_t *time_or_null(int64_t us) {
    if (!us) return json_null();
    char buf[40];
    gl_format_rfc3339_us(us, buf, sizeof buf);
    return json_string(buf);
}

json_t *gl_webhook_json(const gl_webhook_endpoint *e, const char *region) {
    json_t *types = json_array();
    for (int t = 0; t < LEDGER_EV_COUNT; t++)
        if (e->types & (1u << t)) json_array_append_new(types, json_string(ledger_event_type_name((ledger_event_type)t)));
    json_t *o = json_object();
    json_object_set_new(o, "id", gl_id_json(&e->id));
    json_object_set_new(o, "region", json_string(region ? region : "?"));
    json_object_set_new(o, "owner", json_string(e->owner));
    json_object_set_new(o, "url", json_string(e->url));
    json_object_set_new(o, "event_types", types);
    json_object_set_new(o, "status", json_string(e->disabled ? "disabled" : "active"));
    json_object_set_new(o, "failing_since", time_or_null(e->failing_since_us));
    json_object_set_new(o, "created_at", time_or_null(e->created_at_us));
    json_object_set_new(o, "disabled_at", time_or_null(e->disabled_at_us));
    if (e->secret[0]) json_object_set_new(o, "secret", json_string(e->secret));
    return o;
}

/* ---------- deliveries ---------- */

static const char *const state_names[] = {[GL_DELIVERY_PENDING] = "pending", [GL_DELIVERY_DELIVERED] = "delivered",
                                          [GL_DELIVERY_DEAD] = "dead"};

bool gl_delivery_state_parse(const char *s, gl_delivery_state *out) {
    for (int i = GL_DELIVERY_PENDING; s && i <= GL_DELIVERY_DEAD; i++)
        if (strcmp(s, state_names[i]) == 0) {
            *out = (gl_delivery_state)i;
            return true;
        }
    return false;
}

enum { D_ID, D_EVENT_ID, D_SEQ, D_TYPE, D_STATE, D_ATTEMPTS, D_NEXT, D_STATUS, D_ERROR, D_CREATED, D_DELIVERED };

/* The delivery of row `row`, without its attempts. */
static json_t *delivery_json(const PGresult *r, int row, const gl_id *endpoint) {
    gl_id id, event;
    gl_pg_get_id(r, row, D_ID, &id);
    gl_pg_get_id(r, row, D_EVENT_ID, &event);
    bool pending = strcmp(PQgetvalue(r, row, D_STATE), "pending") == 0;
    json_t *o = json_object();
    json_object_set_new(o, "id", gl_id_json(&id));
    json_object_set_new(o, "endpoint_id", gl_id_json(endpoint));
    json_object_set_new(o, "event_id", gl_id_json(&event));
    json_object_set_new(o, "event_type", json_string(PQgetvalue(r, row, D_TYPE)));
    json_object_set_new(o, "state", json_string(PQgetvalue(r, row, D_STATE)));
    json_object_set_new(o, "attempt_count", json_integer(gl_pg_get_i64(r, row, D_ATTEMPTS)));
    json_object_set_new(o, "next_attempt_at", pending ? time_or_null(gl_pg_get_i64(r, row, D_NEXT)) : json_null());
    json_object_set_new(o, "last_status",
                        PQgetisnull(r, row, D_STATUS) ? json_null() : json_integer(gl_pg_get_i64(r, row, D_STATUS)));
    json_object_set_new(o, "last_error",
                        PQgetisnull(r, row, D_ERROR) ? json_null() : json_string(PQgetvalue(r, row, D_ERROR)));
    json_object_set_new(o, "created_at", time_or_null(gl_pg_get_i64(r, row, D_CREATED)));
    json_object_set_new(o, "delivered_at", time_or_null(gl_pg_get_i64(r, row, D_DELIVERED)));
    json_object_set_new(o, "attempts", json_array());
    return o;
}

/* Puts the latest attempts of each delivery of `data` (ids in the same order) into its "attempts". */
static bool add_attempts(PGconn *db, json_t *data, const char *ids_literal, gl_error *err) {
    char shown[8];
    snprintf(shown, sizeof shown, "%d", GL_WEBHOOK_ATTEMPTS_SHOWN);
    const char *p[2] = {ids_literal, shown};
    PGresult *r = gl_pg_exec(db,
                             "SELECT a.delivery_id, a.attempt_no, (extract(epoch FROM a.at) * 1000000)::int8, "
                             "a.http_status, a.error, a.duration_ms FROM webhook_attempts a JOIN webhook_deliveries d "
                             "ON d.id = a.delivery_id WHERE a.delivery_id = ANY ($1::uuid[]) "
                             "AND a.attempt_no > d.attempts - $2::int ORDER BY a.delivery_id, a.attempt_no",
                             2, p, err);
    if (!r) return false;
    for (int row = 0; row < PQntuples(r); row++) {
        const char *did = PQgetvalue(r, row, 0);
        size_t i;
        json_t *d;
        json_array_foreach(data, i, d) {
            if (strcmp(json_string_value(json_object_get(d, "id")), did) != 0) continue;
            json_t *a = json_object();
            json_object_set_new(a, "attempt", json_integer(gl_pg_get_i64(r, row, 1)));
            json_object_set_new(a, "at", time_or_null(gl_pg_get_i64(r, row, 2)));
            json_object_set_new(a, "status", PQgetisnull(r, row, 3) ? json_null() : json_integer(gl_pg_get_i64(r, row, 3)));
            json_object_set_new(a, "error", PQgetisnull(r, row, 4) ? json_null() : json_string(PQgetvalue(r, row, 4)));
            json_object_set_new(a, "duration_ms", json_integer(gl_pg_get_i64(r, row, 5)));
            json_array_append_new(json_object_get(d, "attempts"), a);
            break;
        }
    }
    PQclear(r);
    return true;
}

int gl_webhook_deliveries(PGconn *db, const gl_id *endpoint, gl_delivery_state state, int64_t before, int limit,
                          const gl_id *only, json_t **data, int64_t *next, gl_error *err) {
    assert(db && endpoint && data && next && limit >= 1 && limit <= GL_WEBHOOK_PAGE_MAX && before >= 0);
    char ep[GL_ID_STR_LEN + 1], one[GL_ID_STR_LEN + 1], before_s[24], limit_s[8];
    gl_id_format(endpoint, ep);
    if (only) gl_id_format(only, one);
    snprintf(before_s, sizeof before_s, "%lld", (long long)before);
    snprintf(limit_s, sizeof limit_s, "%d", limit + 1); /* one more: is there a next page */
    const char *p[5] = {ep, state == GL_DELIVERY_ANY ? NULL : state_names[state], before_s, limit_s, only ? one : NULL};
    PGresult *r = gl_pg_exec(db,
                             "SELECT id, event_id, event_seq, event_type, state, attempts, "
                             "(extract(epoch FROM next_attempt_at) * 1000000)::int8, last_status, last_error, "
                             "(extract(epoch FROM created_at) * 1000000)::int8, "
                             "(extract(epoch FROM delivered_at) * 1000000)::int8 FROM webhook_deliveries "
                             "WHERE endpoint_id = $1::uuid AND ($2::text IS NULL OR state = $2) "
                             "AND ($3::int8 = 0 OR event_seq < $3::int8) AND ($5::uuid IS NULL OR id = $5::uuid) "
                             "ORDER BY event_seq DESC LIMIT $4::int",
                             5, p, err);
    if (!r) return -1;
    int rows = PQntuples(r) < limit ? PQntuples(r) : limit;
    *next = PQntuples(r) > limit ? gl_pg_get_i64(r, rows - 1, D_SEQ) : 0;
    *data = json_array();
    gl_buf ids = {0};
    gl_buf_puts(&ids, "{");
    for (int row = 0; row < rows; row++) {
        json_array_append_new(*data, delivery_json(r, row, endpoint));
        gl_buf_puts(&ids, row ? "," : "");
        gl_buf_puts(&ids, PQgetvalue(r, row, D_ID));
    }
    gl_buf_puts(&ids, "}");
    PQclear(r);
    bool ok = !ids.failed && (rows == 0 || add_attempts(db, *data, gl_buf_cstr(&ids), err));
    if (ids.failed) gl_error_set(err, GL_ERR_INTERNAL, "out of memory");
    gl_buf_free(&ids);
    if (!ok) {
        json_decref(*data);
        *data = NULL;
        return -1;
    }
    return rows;
}

int gl_webhook_redeliver(PGconn *db, const gl_id *endpoint, const gl_id *delivery, gl_error *err) {
    char ep[GL_ID_STR_LEN + 1], d[GL_ID_STR_LEN + 1];
    gl_id_format(endpoint, ep);
    gl_id_format(delivery, d);
    const char *p[2] = {ep, d};
    /* One statement: the row as it was (pending or not) and the change. */
    PGresult *r = gl_pg_exec(db,
                             "WITH cur AS (SELECT id, state FROM webhook_deliveries WHERE id = $2::uuid "
                             "AND endpoint_id = $1::uuid FOR UPDATE), upd AS (UPDATE webhook_deliveries d SET "
                             "state = 'pending', next_attempt_at = now(), attempts_before = d.attempts, "
                             "delivered_at = NULL, lease_until = NULL, leased_by = NULL FROM cur WHERE d.id = cur.id "
                             "AND cur.state <> 'pending' RETURNING 1) SELECT cur.state, (SELECT count(*) FROM upd) FROM cur",
                             2, p, err);
    if (!r) return -1;
    int rc = PQntuples(r) == 0 ? 0 : strcmp(PQgetvalue(r, 0, 0), "pending") == 0 ? 2 : 1;
    PQclear(r);
    return rc;
}
