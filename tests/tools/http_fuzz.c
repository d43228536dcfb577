/*
 * http_fuzz.c — an HTTP/1.1 fuzzer for ledgerd, over raw TCP to 127.0.0.1.
 *
 *   http_fuzz --port P [--token-file F] [--key-file F] [--ids-file F]
 *             [--seconds S] [--requests N] [--seed X] [--connections C]
 *             [--pid PID] [--known-regions-only] [--region-names eu,us,sg]
 *             [--timeout-ms MS] [--save-dir DIR] [--verbose]
 *   http_fuzz --port P --replay FILE [FILE...]     (send saved requests as they are)
 *
 * Sends at most N requests during at most S seconds from C connections (one
 * thread each) to every route of ledgerd (api/handlers.c) and to unknown ones:
 *   - ids: the real ids of --ids-file (driver-made accounts, transfers, holds,
 *     mandates; and ids learnt from 201 answers), the same with their region
 *     byte (byte 9: hex digits 19-20 of the text) replaced, synthetic UUIDv7s
 *     for all 256 values of that byte, the nil and the max UUID, UUIDv4s, v7s
 *     with a wrong variant, uppercase, and malformed strings;
 *   - bodies: the valid bodies of API.md, then fields removed, duplicated,
 *     added, retyped, numbers huge/negative/float, deep nesting, huge strings,
 *     invalid UTF-8, NULs, broken top-level JSON;
 *   - headers: Authorization missing / garbage / valid (--token-file) /
 *     minted with odd claims (--key-file: sub, scope, regions, exp, nbf, iss,
 *     aud), Idempotency-Key of odd lengths and bytes (and a small shared pool,
 *     so that replays, reuse and in-flight conflicts happen), Content-Length
 *     lies, chunked bodies (good and bad), traceparent garbage, odd
 *     Content-Type, Expect, Connection, junk and oversize headers;
 *   - methods, paths and query strings: odd methods, percent-encoding, dot
 *     segments, very long paths, many segments, repeated and empty params;
 *   - a few requests are then mutated byte by byte, and some are sent in
 *     pieces, or pipelined behind a body that lies about its length.
 *
 * A crash is ledgerd's process gone (--pid) or ledgerd refusing connections
 * and failing /healthz: checked after every request answered by nothing, and
 * at the end. Then the requests each connection sent last are printed (the
 * culprit is among them; --save-dir keeps their raw bytes for --replay).
 *
 * Exit status: 0 no finding; 1 a 5xx other than 503 (or a 505 to a request
 * that was HTTP/1.x), or a well-formed request left without an answer for
 * --timeout-ms (a hang); 2 usage; 3 ledgerd died, or was not reachable at the
 * start. The summary gives the requests sent, the count of every status and
 * outcome, per-route counts and requests/s.
 *
 * --ids-file: one id per line, optionally "KIND VALUE" with KIND account,
 * transfer, pending, mandate or reference ("reference" lines give values for
 * ?reference=). --token-file: one JWT per line, the first one the owner of
 * the ids' objects. HTTPFUZZ_KNOWN_REGIONS_ONLY=1 in the environment is
 * --known-regions-only: only ids whose region byte is a configured region's
 * code (learnt from the ids file) are generated.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
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
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include <jansson.h>

#include "../../auth/jwt.h"
#include "../../ledger/error.h"
#include "../../ledger/id.h"
#include "../../ledger/text.h"

enum { EXIT_FINDING = 1, EXIT_USAGE = 2, EXIT_DEAD = 3 };

#define MAX_CONNS 32
#define MAX_TOKENS 64
#define MAX_SUBS 64
#define MAX_REGION_NAMES 16
#define HISTORY 4           /* requests remembered per connection, for a crash report */
#define HISTORY_BYTES 65536 /* of each */
#define SHOWN_BYTES 1500    /* of a request printed in full */
#define MAX_RESPONSE (16u << 20)
#define MAX_FIELDS 24
#define DYN_SLOTS 512
#define IDEM_POOL 8
#define REPORTS_SHOWN 20
#define NOTES_503 5 /* 503 answers shown (allowed: but a 503 the client caused is worth a look) */
#define BODY_LIMIT 1048576 /* ledgerd's default body_limit */
#define NONFRAMED_TIMEOUT_MS 250 /* for a request ledgerd may leave unanswered */

/* ================================================================ small tools */

static void die_oom(void) {
    fputs("http_fuzz: out of memory\n", stderr);
    exit(EXIT_DEAD);
}

typedef struct {
    char *p;
    size_t n, cap;
} buf;

static void b_reserve(buf *b, size_t extra) {
    if (b->n + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) die_oom();
    b->p = p;
    b->cap = cap;
}

static void b_put(buf *b, const void *d, size_t n) {
    b_reserve(b, n);
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void b_str(buf *b, const char *s) { b_put(b, s, strlen(s)); }

static void b_ch(buf *b, char c) { b_put(b, &c, 1); }

static void b_rep(buf *b, char c, size_t n) {
    b_reserve(b, n);
    memset(b->p + b->n, c, n);
    b->n += n;
    b->p[b->n] = '\0';
}

__attribute__((format(printf, 2, 3))) static void b_fmt(buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char tmp[512];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        b_put(b, tmp, (size_t)n);
        return;
    }
    b_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->p + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
}

static void b_reset(buf *b) {
    b->n = 0;
    if (b->p) b->p[0] = '\0';
}

static void b_free(buf *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* splitmix64: each connection has its own stream, from --seed and its index. */
typedef struct {
    uint64_t s;
} rng;

static uint64_t r64(rng *r) {
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint32_t rn(rng *r, uint32_t n) { return n ? (uint32_t)(r64(r) % n) : 0; }

static bool chance(rng *r, unsigned pct) { return rn(r, 100) < pct; }

static const char *pick(rng *r, const char *const *list, size_t n) { return list[rn(r, (uint32_t)n)]; }

#define PICK(r, arr) pick((r), (arr), sizeof(arr) / sizeof(arr)[0])
/* A mutation's dice: never for a clean request. */
#define FUZZ(c, pct) (!(c)->clean && chance(&(c)->r, (pct)))

/* Printable text of raw bytes: \r\n kept as a line break, others escaped. */
static void show_bytes(FILE *f, const char *p, size_t n, size_t max) {
    bool cut = n > max;
    size_t shown = cut ? max : n;
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\r' && i + 1 < shown && p[i + 1] == '\n') {
            fputs("\\r\\n\n    ", f);
            i++;
        } else if (c == '\\') fputs("\\\\", f);
        else if (c >= 0x20 && c < 0x7f) fputc(c, f);
        else fprintf(f, "\\x%02x", c);
    }
    if (cut) fprintf(f, "... (%zu bytes in all)", n);
    fputc('\n', f);
}

/* ================================================================ options and inputs */

typedef struct {
    int port;
    const char *token_file, *key_file, *ids_file, *save_dir;
    double seconds;
    int64_t requests;
    uint64_t seed;
    int conns;
    int64_t pid;
    bool known_only, verbose;
    int timeout_ms;
    char region_names[MAX_REGION_NAMES][17];
    int n_region_names;
} options;

static options opt;

enum { K_ACCOUNT, K_TRANSFER, K_PENDING, K_MANDATE, K_ANY, K_COUNT };
static const char *const kind_names[K_COUNT] = {"account", "transfer", "pending", "mandate", "id"};

typedef struct {
    gl_id *v;
    size_t n, cap;
} id_list;

static id_list ids[K_COUNT];
static char **refs;
static size_t n_refs;
static bool known_code[256];
static int n_known_codes;
static uint8_t known_codes[256];

static char *tokens[MAX_TOKENS];
static int n_tokens;
static char subs[MAX_SUBS][GL_JWT_SUB_MAX + 1];
static int n_subs;
static char issuer[256] = "geoledger-dev", audience[256] = "geoledger";
static unsigned char *sign_key;
static size_t sign_key_len;

/* Ids learnt from 201 answers, shared by the connections. */
static struct {
    pthread_mutex_t mu;
    gl_id v[DYN_SLOTS];
    size_t n, next;
} dyn[K_COUNT];

static void id_add(id_list *l, const gl_id *id) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        gl_id *v = realloc(l->v, cap * sizeof *v);
        if (!v) die_oom();
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = *id;
}

static void learn_code(const gl_id *id) {
    uint8_t c = gl_id_partition(id);
    if (c && !known_code[c]) {
        known_code[c] = true;
        known_codes[n_known_codes++] = c;
    }
}

static char *trim(char *s) {
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t')) s[--n] = '\0';
    return s;
}

static bool load_ids(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "http_fuzz: %s: %s\n", path, strerror(errno));
        return false;
    }
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char *s = trim(line);
        if (!*s || *s == '#') continue;
        char *sp = strpbrk(s, " \t");
        int kind = K_ANY;
        char *val = s;
        if (sp) {
            *sp = '\0';
            val = trim(sp + 1);
            kind = -1;
            for (int k = 0; k < K_COUNT; k++)
                if (strcmp(s, kind_names[k]) == 0) kind = k;
            if (strcmp(s, "reference") == 0) {
                char **r = realloc(refs, (n_refs + 1) * sizeof *r);
                if (!r || !(r[n_refs] = strdup(val))) die_oom();
                refs = r;
                n_refs++;
                continue;
            }
            if (kind < 0) {
                fprintf(stderr, "http_fuzz: %s: unknown kind '%s' (account, transfer, pending, mandate, reference)\n", path, s);
                fclose(f);
                return false;
            }
        }
        gl_id id;
        if (!gl_id_parse(val, &id)) {
            fprintf(stderr, "http_fuzz: %s: '%s' is not an id\n", path, val);
            fclose(f);
            return false;
        }
        id_add(&ids[kind], &id);
        learn_code(&id);
    }
    fclose(f);
    return true;
}

/* base64url without padding -> bytes (NUL-terminated); NULL if not base64url. */
static char *b64url_decode(const char *s, size_t n) {
    char *out = malloc(n + 1);
    if (!out) die_oom();
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int v = c >= 'A' && c <= 'Z'   ? c - 'A'
                : c >= 'a' && c <= 'z' ? c - 'a' + 26
                : c >= '0' && c <= '9' ? c - '0' + 52
                : c == '-'             ? 62
                : c == '_'             ? 63
                                       : -1;
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[o] = '\0';
    return out;
}

static void add_sub(const char *s) {
    for (int i = 0; i < n_subs; i++)
        if (strcmp(subs[i], s) == 0) return;
    if (n_subs < MAX_SUBS && strlen(s) <= GL_JWT_SUB_MAX) snprintf(subs[n_subs++], sizeof subs[0], "%s", s);
}

/* The claims of a token from the file: its sub (for owner/grantee fields), iss, aud. */
static void learn_token(const char *tok) {
    const char *d1 = strchr(tok, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d2) return;
    char *payload = b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1));
    json_t *c = payload ? json_loads(payload, 0, NULL) : NULL;
    free(payload);
    if (!c) return;
    const char *sub = json_string_value(json_object_get(c, "sub"));
    const char *iss = json_string_value(json_object_get(c, "iss"));
    const char *aud = json_string_value(json_object_get(c, "aud"));
    if (sub) add_sub(sub);
    if (iss) snprintf(issuer, sizeof issuer, "%s", iss);
    if (aud) snprintf(audience, sizeof audience, "%s", aud);
    json_decref(c);
}

static bool load_tokens(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "http_fuzz: %s: %s\n", path, strerror(errno));
        return false;
    }
    char line[16384];
    while (fgets(line, sizeof line, f) && n_tokens < MAX_TOKENS) {
        char *s = trim(line);
        if (!*s || *s == '#') continue;
        if (!(tokens[n_tokens] = strdup(s))) die_oom();
        learn_token(tokens[n_tokens++]);
    }
    fclose(f);
    return true;
}

/* The HS256 secret as ledgerd reads it: the file's bytes less one final newline. */
static bool load_key(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "http_fuzz: %s: %s\n", path, strerror(errno));
        return false;
    }
    unsigned char tmp[GL_JWT_KEY_FILE_BYTES_MAX + 1];
    size_t n = fread(tmp, 1, sizeof tmp, f);
    fclose(f);
    if (n >= 1 && tmp[n - 1] == '\n') n--;
    if (n >= 1 && tmp[n - 1] == '\r') n--;
    if (!(sign_key = malloc(n ? n : 1))) die_oom();
    memcpy(sign_key, tmp, n);
    sign_key_len = n;
    return true;
}

/* ================================================================ shared results */

enum { O_NONE = 0, O_TIMEOUT, O_REFUSED, O_GARBLED, O_ABANDONED, O_COUNT }; /* outcomes without a status */
static const char *const outcome_names[O_COUNT] = {"no response (connection closed)", "timeout", "connection refused",
                                                  "unparseable response", "abandoned by us (reset before the answer)"};

typedef enum {
    R_ACC_CREATE,
    R_ACC_GET,
    R_ACC_BALANCE,
    R_ACC_ENTRIES,
    R_TR_LIST,
    R_TR_CREATE,
    R_TR_BATCH,
    R_TR_GET,
    R_TR_POST,
    R_TR_VOID,
    R_TR_REVERSE,
    R_MAN_CREATE,
    R_MAN_GET,
    R_MAN_DELETE,
    R_HEALTHZ,
    R_READYZ,
    R_METRICS,
    R_UNKNOWN,
    R_RAW,
    R_COUNT
} route_id;

static const struct {
    const char *name, *method;
    unsigned weight;
} routes[R_COUNT] = {
    [R_ACC_CREATE] = {"POST /v1/accounts", "POST", 7},
    [R_ACC_GET] = {"GET /v1/accounts/{id}", "GET", 6},
    [R_ACC_BALANCE] = {"GET /v1/accounts/{id}/balance", "GET", 6},
    [R_ACC_ENTRIES] = {"GET /v1/accounts/{id}/entries", "GET", 6},
    [R_TR_LIST] = {"GET /v1/transfers", "GET", 6},
    [R_TR_CREATE] = {"POST /v1/transfers", "POST", 12},
    [R_TR_BATCH] = {"POST /v1/transfers/batch", "POST", 7},
    [R_TR_GET] = {"GET /v1/transfers/{id}", "GET", 6},
    [R_TR_POST] = {"POST /v1/transfers/{id}/post", "POST", 6},
    [R_TR_VOID] = {"POST /v1/transfers/{id}/void", "POST", 5},
    [R_TR_REVERSE] = {"POST /v1/transfers/{id}/reverse", "POST", 6},
    [R_MAN_CREATE] = {"POST /v1/mandates", "POST", 6},
    [R_MAN_GET] = {"GET /v1/mandates/{id}", "GET", 5},
    [R_MAN_DELETE] = {"DELETE /v1/mandates/{id}", "DELETE", 4},
    [R_HEALTHZ] = {"GET /healthz", "GET", 2},
    [R_READYZ] = {"GET /readyz", "GET", 2},
    [R_METRICS] = {"GET /metrics", "GET", 2},
    [R_UNKNOWN] = {"unknown paths", "GET", 4},
    [R_RAW] = {"raw garbage", "GET", 2},
};

static atomic_long hist[600];           /* by status */
static atomic_long outcomes[O_COUNT];   /* by outcome without a status */
static atomic_long route_total[R_COUNT], route_2xx[R_COUNT], route_4xx[R_COUNT], route_5xx[R_COUNT],
    route_none[R_COUNT];
static atomic_long started;             /* requests taken */
static atomic_long sent;                /* requests sent (at least partly) */
static atomic_long n_5xx, n_hangs, n_503_shown;
static atomic_bool stop_flag, dead_flag;
static atomic_int sweep;                /* region byte of the next synthetic id */
static atomic_bool byte_seen[256];       /* region bytes of well-formed ids sent */
static atomic_long special_seen[4];      /* nil, max, v4, malformed */
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t t_start, t_end;
static char dead_detail[512];

/* ================================================================ per connection */

typedef struct {
    char desc[320];
    buf raw;
    bool has_raw;
    int status; /* -1 while in flight */
} hist_entry;

typedef struct {
    int index;
    rng r;
    int fd; /* a kept-alive connection, or -1 */
    buf method, target, version, headers, body, raw, resp;
    char desc[256];
    uint8_t pref_code; /* the region this request's real ids come from, mostly */
    bool clean;        /* a valid request of the owner: real ids, no mutation (reaches the engine) */
    route_id route;
    bool framed, keep, odd_version, head, half_close, split, abandon;
    int timeout_ms;
    hist_entry histo[HISTORY];
    unsigned hist_next;
    char idem_pool[IDEM_POOL][48];
    pthread_t th;
} conn;

static void desc_add(conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void desc_add(conn *c, const char *fmt, ...) {
    size_t n = strlen(c->desc);
    if (n + 2 >= sizeof c->desc) return;
    if (n) c->desc[n++] = ' ';
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->desc + n, sizeof c->desc - n, fmt, ap);
    va_end(ap);
}

/* ================================================================ ids */

static void id_text(const gl_id *id, char out[GL_ID_STR_LEN + 1]) { gl_id_format(id, out); }

static void note_id(const gl_id *id) {
    if (gl_id_is_nil(id)) atomic_fetch_add(&special_seen[0], 1);
    else {
        static const gl_id max = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff}};
        if (gl_id_cmp(id, &max) == 0) atomic_fetch_add(&special_seen[1], 1);
    }
    atomic_store(&byte_seen[id->b[9]], true);
}

static void v7(rng *r, uint8_t code, gl_id *id) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    uint64_t a = r64(r), b = r64(r);
    for (int i = 0; i < 6; i++) id->b[i] = (uint8_t)(ms >> (40 - 8 * i));
    memcpy(&id->b[6], &a, 8);
    memcpy(&id->b[14], &b, 2);
    id->b[6] = (uint8_t)(0x70 | (id->b[6] & 0x0f));
    id->b[8] = (uint8_t)(0x80 | (id->b[8] & 0x3f));
    id->b[9] = code;
}

/* The next value of the region-byte sweep: every byte in turn (configured ones only in known-only mode). */
static uint8_t sweep_code(void) {
    int k = atomic_fetch_add(&sweep, 1);
    if (opt.known_only) return known_codes[(unsigned)k % (unsigned)n_known_codes];
    return (uint8_t)((unsigned)k & 0xff);
}

/* One of n ids, preferring those of the request's region (so that the two
 * accounts of a transfer, or the items of a batch, often share a region). */
static bool pick_from(conn *c, const gl_id *v, size_t n, gl_id *out) {
    if (!n) return false;
    if (c->pref_code && chance(&c->r, 75)) {
        size_t start = rn(&c->r, (uint32_t)n);
        for (size_t k = 0; k < n; k++)
            if (v[(start + k) % n].b[9] == c->pref_code) {
                *out = v[(start + k) % n];
                return true;
            }
    }
    *out = v[rn(&c->r, (uint32_t)n)];
    return true;
}

static bool real_id(conn *c, int kind, gl_id *out) {
    /* learnt ids first, sometimes */
    if (kind != K_ANY && chance(&c->r, 35)) {
        pthread_mutex_lock(&dyn[kind].mu);
        bool have = pick_from(c, dyn[kind].v, dyn[kind].n, out);
        pthread_mutex_unlock(&dyn[kind].mu);
        if (have) return true;
    }
    const id_list *l = &ids[kind];
    if (!l->n) {
        for (int k = 0; k < K_COUNT && !l->n; k++) l = &ids[(kind + k) % K_COUNT];
    }
    return pick_from(c, l->v, l->n, out);
}

/* A malformed id text. */
static void bad_id(conn *c, buf *out) {
    gl_id id;
    char s[GL_ID_STR_LEN + 1];
    if (!real_id(c, K_ANY, &id)) v7(&c->r, 1, &id);
    id_text(&id, s);
    atomic_fetch_add(&special_seen[3], 1);
    switch (rn(&c->r, 16)) {
    case 0: b_put(out, s, 35); break;                              /* one short */
    case 1: b_str(out, s); b_ch(out, '0'); break;                  /* one long */
    case 2: b_ch(out, '{'); b_str(out, s); b_ch(out, '}'); break;  /* braces */
    case 3: /* no dashes */
        for (const char *p = s; *p; p++)
            if (*p != '-') b_ch(out, *p);
        break;
    case 4: s[rn(&c->r, 36)] = 'g'; b_str(out, s); break; /* not hex */
    case 5: s[8] = '_'; b_str(out, s); break;             /* dash moved */
    case 6: break;                                        /* empty */
    case 7: b_rep(out, 'a', 36); break;
    case 8: b_str(out, "00000000-0000-0000-0000-00000000000"); break;
    case 9: b_str(out, " "); b_put(out, s, 35); break;
    case 10: b_rep(out, 'f', 1000 + rn(&c->r, 5000)); break;
    case 11: b_str(out, "urn:uuid:"); b_str(out, s); break;
    case 12: s[rn(&c->r, 36)] = (char)(0x80 + rn(&c->r, 0x80)); b_str(out, s); break;
    case 13: b_str(out, "../../"); b_str(out, s); break;
    case 14: s[14] = '\t'; b_str(out, s); break;
    default: b_str(out, "-1"); break;
    }
}

/*
 * An id for a field or a path segment, as text (not escaped). Mostly a real
 * one of the wanted kind; else the region-byte sweep, the special ones or a
 * malformed text. Known-only mode keeps to ids whose region is configured.
 */
static void gen_id(conn *c, int kind, buf *out) {
    gl_id id;
    char s[GL_ID_STR_LEN + 1];
    uint32_t roll = rn(&c->r, 100);
    if (opt.known_only && roll >= 62 && roll < 72) roll = 30; /* no nil/max/v4/bad variant */
    bool have = false;
    if (c->clean || roll < 45) have = real_id(c, kind, &id);
    else if (roll < 55) have = real_id(c, chance(&c->r, 50) ? K_ANY : (kind + 1) % K_COUNT, &id);
    else if (roll < 62 && (have = real_id(c, kind, &id))) id.b[9] = sweep_code(); /* a real id moved to another region byte */
    if (!have && roll < 62) roll = 72 + rn(&c->r, 16); /* no real id: a synthetic one */
    if (have) {
        /* as it is */
    } else if (roll < 64) {
        memset(id.b, 0, sizeof id.b); /* nil */
    } else if (roll < 66) {
        memset(id.b, 0xff, sizeof id.b); /* max */
    } else if (roll < 69) {
        v7(&c->r, (uint8_t)rn(&c->r, 256), &id); /* UUIDv4 */
        id.b[6] = (uint8_t)(0x40 | (id.b[6] & 0x0f));
        atomic_fetch_add(&special_seen[2], 1);
    } else if (roll < 72) {
        v7(&c->r, (uint8_t)rn(&c->r, 256), &id); /* v7, wrong variant */
        id.b[8] &= 0x3f;
    } else if (roll < 88) {
        v7(&c->r, sweep_code(), &id);
    } else {
        bad_id(c, out);
        return;
    }
    note_id(&id);
    id_text(&id, s);
    if (FUZZ(c, 4))
        for (char *p = s; *p; p++)
            if (*p >= 'a' && *p <= 'f') *p = (char)(*p - 'a' + 'A');
    b_str(out, s);
}

/* ================================================================ text pieces */

static void json_str(buf *out, const char *s, size_t n) {
    b_ch(out, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            b_ch(out, '\\');
            b_ch(out, (char)ch);
        } else if (ch < 0x20) b_fmt(out, "\\u%04x", ch);
        else b_ch(out, (char)ch);
    }
    b_ch(out, '"');
}

static void pct(buf *out, const char *s, size_t n, bool all) {
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        bool plain = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                     ch == '_' || ch == '.' || ch == '~';
        if (plain && !all) b_ch(out, (char)ch);
        else {
            b_ch(out, '%');
            b_ch(out, hex[ch >> 4]);
            b_ch(out, hex[ch & 15]);
        }
    }
}

/* Odd bytes for a string: long, unicode, invalid UTF-8, control, format directives, NUL. */
static void weird_text(conn *c, buf *out) {
    static const char *const pieces[] = {
        "",          " ",        "\xc3\xa9t\xc3\xa9",      "\xf0\x9f\x98\x80",       "\342\200\256abc",
        "\xff",      "\xc0\x80", "\xed\xa0\x80",           "\xf4\x90\x80\x80",       "\x80",
        "\x01\x1f",  "\x7f",     "%s%s%n%x%p",             "'; DROP TABLE accounts; --", "\\",
        "\"",        "../../etc/passwd", "\r\nX-Injected: 1", "null", "\xef\xbb\xbf",
    };
    switch (rn(&c->r, 6)) {
    case 0: {
        static const size_t lens[] = {128, 129, 255, 256, 4096, 4097, 70000};
        b_rep(out, (char)('a' + rn(&c->r, 26)), lens[rn(&c->r, sizeof lens / sizeof lens[0])]);
        break;
    }
    case 1: b_put(out, "a\0b", 3); break;
    default: {
        int k = 1 + (int)rn(&c->r, 3);
        for (int i = 0; i < k; i++) b_str(out, PICK(&c->r, pieces));
    }
    }
}

static void rfc3339(conn *c, buf *out, bool valid) {
    time_t t = time(NULL) + (valid ? (time_t)3600 + (time_t)rn(&c->r, 86400) : (time_t)rn(&c->r, 7200) - 3600);
    struct tm tm;
    gmtime_r(&t, &tm);
    char s[64];
    strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
    b_str(out, s);
    if (!valid || chance(&c->r, 70)) {
        if (chance(&c->r, 30)) b_fmt(out, ".%06u", rn(&c->r, 1000000));
        b_str(out, chance(&c->r, 80) ? "Z" : "+00:00");
        return;
    }
    static const char *const odd[] = {
        ".123456789012345678901234567890Z", "+24:00", "-23:59", "+99:99", "z", "Z ", "", "+0000", ".Z", "..1Z", "Z\x01",
    };
    b_str(out, PICK(&c->r, odd));
}

static void odd_time(conn *c, buf *out) {
    static const char *const t[] = {
        "2026-02-30T00:00:00Z",           "9999-12-31T23:59:59Z",     "0000-01-01T00:00:00Z",
        "1970-01-01T00:00:00Z",           "2026-12-31T23:59:60Z",     "2026-01-01T00:00:00+24:00",
        "2026-01-01t00:00:00z",           "2026-01-01 00:00:00Z",     "",
        "now",                            "-2026-01-01T00:00:00Z",    "+292278994-08-17T07:12:55Z",
        "99999-01-01T00:00:00Z",          "2026-13-01T00:00:00Z",     "2026-00-00T00:00:00Z",
        "2026-01-01T25:61:61Z",           "2026-01-01T00:00:00.-1Z",  "1900-01-01T00:00:00-23:59",
        "2026-01-01T00:00:00.999999999999999999999Z", "2026-1-1T0:0:0Z", "20260101T000000Z",
        "2026-01-01T00:00:00+01:00:00",   "-9223372036854775808",     "292278-12-31T23:59:59Z",
        "2262-04-11T23:47:16.854775807Z", "1677-09-21T00:12:43.145224192Z", "2026-01-01T00:00:00Z\x00x",
    };
    if (chance(&c->r, 40)) rfc3339(c, out, chance(&c->r, 50));
    else b_str(out, PICK(&c->r, t));
}

static const char *const currencies_ok[] = {"EUR", "EUR", "EUR", "EUR", "USD", "JPY", "BHD", "SGD"};
static const char *const currencies_bad[] = {"eur", "", "EU", "EURO", "XXX", "ZZZ", "E\xc3\x9aR", "EUR ", "123", "EUR\x00"};
static const char *const kinds[] = {"wallet", "funding", "issuance", "clearing", "settlement", "psp_clearing",
                                    "revenue", "escrow", "WALLET", "", "x"};

static void principal(conn *c, buf *out) {
    if (n_subs && chance(&c->r, 85)) b_str(out, subs[rn(&c->r, (uint32_t)n_subs)]);
    else if (chance(&c->r, 50)) b_fmt(out, "fz-%u", rn(&c->r, 1000));
    else weird_text(c, out);
}

static void region_name(conn *c, buf *out) {
    if (opt.n_region_names && chance(&c->r, 85)) b_str(out, opt.region_names[rn(&c->r, (uint32_t)opt.n_region_names)]);
    else b_str(out, PICK(&c->r, ((const char *const[]){"mars", "", "EU", "eu ", "global", "eu\x00us", "aaaaaaaaaaaaaaaaa"})));
}

/* ================================================================ JSON values */

typedef enum { V_ID_ACC, V_ID_PEND, V_ID_TR, V_AMOUNT, V_CURRENCY, V_REGION, V_REF, V_PRINCIPAL, V_KIND, V_FLAGS,
               V_META, V_BOOL, V_TIMEOUT, V_TIME, V_ITEMS } vkind;

typedef struct {
    const char *name;
    vkind kind;
    bool required;
} fspec;

/* An object's fields as texts: keys (inside the quotes) and JSON values. */
typedef struct {
    struct {
        buf key, val;
    } f[MAX_FIELDS];
    int n;
} jobj;

static const fspec spec_account[] = {{"currency", V_CURRENCY, true}, {"region", V_REGION, true},
                                     {"owner", V_PRINCIPAL, false},  {"kind", V_KIND, false},
                                     {"flags", V_FLAGS, false},      {"metadata", V_META, false},
                                     {NULL, V_BOOL, false}};
static const fspec spec_transfer[] = {{"debit_account_id", V_ID_ACC, true},  {"credit_account_id", V_ID_ACC, true},
                                      {"amount", V_AMOUNT, true},            {"currency", V_CURRENCY, true},
                                      {"reference", V_REF, true},            {"metadata", V_META, false},
                                      {"pending", V_BOOL, false},            {"timeout_seconds", V_TIMEOUT, false},
                                      {NULL, V_BOOL, false}};
static const fspec spec_batch[] = {{"atomic", V_BOOL, true}, {"transfers", V_ITEMS, true}, {NULL, V_BOOL, false}};
static const fspec spec_post[] = {{"amount", V_AMOUNT, false}, {NULL, V_BOOL, false}};
static const fspec spec_void[] = {{NULL, V_BOOL, false}};
static const fspec spec_reverse[] = {{"amount", V_AMOUNT, false}, {"reference", V_REF, true}, {NULL, V_BOOL, false}};
static const fspec spec_mandate[] = {{"wallet_account_id", V_ID_ACC, true},  {"grantee", V_PRINCIPAL, true},
                                     {"currency", V_CURRENCY, true},          {"max_amount_per_charge", V_AMOUNT, true},
                                     {"max_amount_per_day", V_AMOUNT, true},  {"expires_at", V_TIME, true},
                                     {NULL, V_BOOL, false}};

static const char *const big_numbers[] = {
    "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
    "18446744073709551615", "18446744073709551616", "123456789012345678901234567890", "0", "-0", "-1",
    "1.0", "1e3", "1E400", "-1e-400", "0.5", "01", "0x10", "NaN", "Infinity", "-Infinity", "1.7976931348623157e308",
    "4611686018427387904", "2147483648", "-2147483649", "1e18", "9223372036854775807.5", "+1", ".5", "1.",
};

static void gen_items(conn *c, buf *out, int depth);

/* A random JSON value of any type (for retyping). */
static void any_value(conn *c, buf *out, int depth) {
    switch (rn(&c->r, depth > 2 ? 7 : 10)) {
    case 0: b_str(out, "null"); break;
    case 1: b_str(out, chance(&c->r, 50) ? "true" : "false"); break;
    case 2: b_str(out, PICK(&c->r, big_numbers)); break;
    case 3: b_fmt(out, "%u", rn(&c->r, 100000)); break;
    case 4: json_str(out, "x", 1); break;
    case 5: b_str(out, "\"\""); break;
    case 6: b_str(out, "[]"); break;
    case 7: b_str(out, "{}"); break;
    case 8: b_str(out, "["); any_value(c, out, depth + 1); b_str(out, ","); any_value(c, out, depth + 1); b_str(out, "]"); break;
    default: b_str(out, "{\"a\":"); any_value(c, out, depth + 1); b_str(out, "}"); break;
    }
}

static void gen_value(conn *c, vkind k, buf *out, bool valid, int depth) {
    switch (k) {
    case V_ID_ACC:
    case V_ID_PEND:
    case V_ID_TR: {
        buf t = {0};
        gen_id(c, k == V_ID_ACC ? K_ACCOUNT : k == V_ID_PEND ? K_PENDING : K_TRANSFER, &t);
        json_str(out, t.p ? t.p : "", t.n);
        b_free(&t);
        break;
    }
    case V_AMOUNT:
        if (valid) b_fmt(out, "%u", 1 + rn(&c->r, chance(&c->r, 90) ? 1000 : 1000000));
        else if (chance(&c->r, 25)) b_str(out, "9223372036854775807");
        else b_str(out, PICK(&c->r, big_numbers));
        break;
    case V_CURRENCY: {
        const char *s = c->clean && chance(&c->r, 90) ? "EUR" : valid ? PICK(&c->r, currencies_ok) : PICK(&c->r, currencies_bad);
        json_str(out, s, strlen(s));
        break;
    }
    case V_REGION: {
        buf t = {0};
        region_name(c, &t);
        json_str(out, t.p ? t.p : "", t.n);
        b_free(&t);
        break;
    }
    case V_REF: {
        buf t = {0};
        if (valid && n_refs && chance(&c->r, 20)) b_str(&t, refs[rn(&c->r, (uint32_t)n_refs)]);
        else if (valid) b_fmt(&t, "fz-%d-%" PRIx64, c->index, r64(&c->r));
        else if (chance(&c->r, 30)) b_rep(&t, 'r', 128 + rn(&c->r, 3));
        else weird_text(c, &t);
        json_str(out, t.p ? t.p : "", t.n);
        b_free(&t);
        break;
    }
    case V_PRINCIPAL: {
        buf t = {0};
        if (c->clean && n_subs > 1) b_str(&t, subs[1 + rn(&c->r, (uint32_t)n_subs - 1)]); /* not the owner */
        else principal(c, &t);
        json_str(out, t.p ? t.p : "", t.n);
        b_free(&t);
        break;
    }
    case V_KIND: {
        const char *s = PICK(&c->r, kinds);
        json_str(out, s, strlen(s));
        break;
    }
    case V_FLAGS:
        switch (rn(&c->r, valid ? 3 : 6)) {
        case 0: b_str(out, "{\"debits_must_not_exceed_credits\":true}"); break;
        case 1: b_str(out, "{\"credits_must_not_exceed_debits\":true,\"debits_must_not_exceed_credits\":false}"); break;
        case 2: b_str(out, "{}"); break;
        case 3: b_str(out, "{\"debits_must_not_exceed_credits\":1}"); break;
        case 4: b_str(out, "{\"closed\":true}"); break;
        default: b_str(out, "{\"debits_must_not_exceed_credits\":true,\"credits_must_not_exceed_debits\":true}"); break;
        }
        break;
    case V_META:
        switch (rn(&c->r, valid ? 3 : 7)) {
        case 0: b_str(out, "{\"name\":\"fuzz\"}"); break;
        case 1: b_fmt(out, "{\"order\":%u,\"tags\":[\"a\",\"b\"],\"nested\":{\"x\":null}}", rn(&c->r, 1000)); break;
        case 2: b_str(out, "{}"); break;
        case 3: { /* around the 4096-byte limit of the compact text */
            size_t n = 4096 - 8 + rn(&c->r, 3);
            b_str(out, "{\"a\":\"");
            b_rep(out, 'm', n - 2);
            b_str(out, "\"}");
            break;
        }
        case 4: b_str(out, "{\"k\":\"\\ud83d\\ude00\\u00e9\",\"\\u202e\":1.5e300}"); break;
        case 5: { /* deep, but within jansson's depth limit */
            unsigned d = 10 + rn(&c->r, 2000);
            for (unsigned i = 0; i < d; i++) b_str(out, "{\"a\":");
            b_str(out, "1");
            b_rep(out, '}', d);
            break;
        }
        default: b_str(out, "{\"big\":"); b_str(out, PICK(&c->r, big_numbers)); b_str(out, "}"); break;
        }
        break;
    case V_BOOL: b_str(out, chance(&c->r, 50) ? "true" : "false"); break;
    case V_TIMEOUT:
        if (valid) b_fmt(out, "%u", 1 + rn(&c->r, 3600));
        else b_str(out, PICK(&c->r, ((const char *const[]){"31622400", "31622401", "0", "-1", "9223372036854775807", "1.5"})));
        break;
    case V_TIME: {
        buf t = {0};
        if (valid) rfc3339(c, &t, true);
        else odd_time(c, &t);
        json_str(out, t.p ? t.p : "", t.n);
        b_free(&t);
        break;
    }
    case V_ITEMS: gen_items(c, out, depth + 1); break;
    }
}

static void field_add(jobj *o, const char *key, size_t klen) {
    if (o->n >= MAX_FIELDS) return;
    int i = o->n++;
    b_reset(&o->f[i].key);
    b_reset(&o->f[i].val);
    b_put(&o->f[i].key, key, klen);
}

/* One mutation of the field list (name and value texts). */
static void mutate_fields(conn *c, jobj *o, const fspec *spec) {
    int n = o->n;
    int i = n ? (int)rn(&c->r, (uint32_t)n) : 0;
    switch (rn(&c->r, 16)) {
    case 0: /* drop */
        if (!n) break;
        desc_add(c, "drop:%s", o->f[i].key.p);
        {
            buf k = o->f[i].key, v = o->f[i].val;
            memmove(&o->f[i], &o->f[i + 1], (size_t)(n - i - 1) * sizeof o->f[0]);
            o->f[n - 1].key = k;
            o->f[n - 1].val = v;
            o->n--;
        }
        break;
    case 1: /* duplicate, with another value */
        if (!n || n >= MAX_FIELDS) break;
        desc_add(c, "dup:%s", o->f[i].key.p);
        field_add(o, o->f[i].key.p, o->f[i].key.n);
        any_value(c, &o->f[o->n - 1].val, 0);
        break;
    case 2: /* unknown field */
        desc_add(c, "unknown-field");
        field_add(o, "colour", 6);
        if (o->n) any_value(c, &o->f[o->n - 1].val, 0);
        break;
    case 3: case 4: /* retype */
        if (!n) break;
        desc_add(c, "retype:%s", o->f[i].key.p);
        b_reset(&o->f[i].val);
        any_value(c, &o->f[i].val, 0);
        break;
    case 5: /* extreme number */
        if (!n) break;
        desc_add(c, "number:%s", o->f[i].key.p);
        b_reset(&o->f[i].val);
        b_str(&o->f[i].val, PICK(&c->r, big_numbers));
        break;
    case 6: { /* huge string */
        if (!n) break;
        size_t len = PICK(&c->r, ((const char *const[]){"s", "m", "l"}))[0] == 'l' ? BODY_LIMIT + 10 : 1000 + rn(&c->r, 100000);
        desc_add(c, "huge:%s:%zu", o->f[i].key.p, len);
        b_reset(&o->f[i].val);
        b_ch(&o->f[i].val, '"');
        b_rep(&o->f[i].val, 'h', len);
        b_ch(&o->f[i].val, '"');
        break;
    }
    case 7: /* invalid UTF-8 or odd text, raw */
        if (!n) break;
        desc_add(c, "odd-text:%s", o->f[i].key.p);
        b_reset(&o->f[i].val);
        b_ch(&o->f[i].val, '"');
        weird_text(c, &o->f[i].val);
        b_ch(&o->f[i].val, '"');
        break;
    case 8: /* NUL, escaped or raw */
        if (!n) break;
        desc_add(c, "nul:%s", o->f[i].key.p);
        b_reset(&o->f[i].val);
        if (chance(&c->r, 50)) b_str(&o->f[i].val, "\"EUR\\u0000x\"");
        else b_put(&o->f[i].val, "\"EU\0R\"", 6);
        break;
    case 9: { /* deep nesting */
        if (!n) break;
        static const unsigned depths[] = {64, 2047, 2048, 2049, 100000};
        unsigned d = depths[rn(&c->r, 5)];
        desc_add(c, "deep:%s:%u", o->f[i].key.p, d);
        b_reset(&o->f[i].val);
        b_rep(&o->f[i].val, '[', d);
        b_rep(&o->f[i].val, ']', chance(&c->r, 90) ? d : d / 2);
        break;
    }
    case 10: /* key case or bytes */
        if (!n) break;
        desc_add(c, "key:%s", o->f[i].key.p);
        if (chance(&c->r, 50) && o->f[i].key.n) o->f[i].key.p[0] = (char)(o->f[i].key.p[0] ^ 0x20);
        else b_str(&o->f[i].key, PICK(&c->r, ((const char *const[]){"\\u0000", "\xff", " ", "\\\"", "\\ud800"})));
        break;
    case 11: /* null */
        if (!n) break;
        desc_add(c, "null:%s", o->f[i].key.p);
        b_reset(&o->f[i].val);
        b_str(&o->f[i].val, "null");
        break;
    case 12: /* an invalid value of the field's own kind */
        if (!n) break;
        for (const fspec *f = spec; f->name; f++)
            if (strcmp(f->name, o->f[i].key.p) == 0) {
                desc_add(c, "bad:%s", f->name);
                b_reset(&o->f[i].val);
                gen_value(c, f->kind, &o->f[i].val, false, 1);
            }
        break;
    case 13: /* many fields */
        desc_add(c, "many-fields");
        while (o->n < MAX_FIELDS) {
            char k[16];
            int kl = snprintf(k, sizeof k, "f%d", o->n);
            field_add(o, k, (size_t)kl);
            b_str(&o->f[o->n - 1].val, "1");
        }
        break;
    case 14: /* empty string */
        if (!n) break;
        desc_add(c, "empty:%s", o->f[i].key.p);
        b_reset(&o->f[i].val);
        b_str(&o->f[i].val, "\"\"");
        break;
    default: /* negative */
        if (!n) break;
        desc_add(c, "negative:%s", o->f[i].key.p);
        b_reset(&o->f[i].val);
        b_fmt(&o->f[i].val, "-%u", 1 + rn(&c->r, 1000));
        break;
    }
}

static void fields_json(conn *c, const jobj *o, buf *out) {
    bool ws = chance(&c->r, 5);
    b_str(out, ws ? "{ \n" : "{");
    for (int i = 0; i < o->n; i++) {
        if (i) b_str(out, ws ? " ,\t" : ",");
        b_ch(out, '"');
        b_put(out, o->f[i].key.p, o->f[i].key.n);
        b_str(out, ws ? "\" : " : "\":");
        b_put(out, o->f[i].val.p, o->f[i].val.n);
    }
    b_str(out, ws ? "\n}\n" : "}");
}

/* A valid object of the spec (optional fields sometimes), then 0..3 mutations (mutate: percent). */
static void gen_object(conn *c, const fspec *spec, buf *out, unsigned mutate, int depth) {
    jobj o;
    memset(&o, 0, sizeof o);
    bool pending = false;
    for (const fspec *f = spec; f->name; f++) {
        if (!f->required && !chance(&c->r, 40)) continue;
        if (f->kind == V_TIMEOUT && !pending && chance(&c->r, 80)) continue;
        field_add(&o, f->name, strlen(f->name));
        gen_value(c, f->kind, &o.f[o.n - 1].val, true, depth);
        if (strcmp(f->name, "pending") == 0) pending = strcmp(o.f[o.n - 1].val.p, "true") == 0;
    }
    if (spec == spec_mandate && o.n >= 5 && chance(&c->r, 80)) { /* per day >= per charge, mostly */
        long charge = strtol(o.f[3].val.p, NULL, 10);
        b_reset(&o.f[4].val);
        b_fmt(&o.f[4].val, "%ld", charge + (long)rn(&c->r, 1000));
    }
    if (FUZZ(c, mutate)) {
        int k = 1 + (int)rn(&c->r, 3);
        for (int i = 0; i < k; i++) mutate_fields(c, &o, spec);
    }
    fields_json(c, &o, out);
    for (int i = 0; i < MAX_FIELDS; i++) {
        b_free(&o.f[i].key);
        b_free(&o.f[i].val);
    }
}

static void gen_items(conn *c, buf *out, int depth) {
    static const unsigned counts[] = {1, 1, 2, 2, 3, 5, 10, 0, 64, 300, 8189, 8190};
    unsigned n = depth > 3 ? 1 : counts[rn(&c->r, sizeof counts / sizeof counts[0])];
    bool tiny = n > 300; /* big batches: items that fail fast, so the body stays under the limit */
    if (n > 64) desc_add(c, "items:%u", n);
    b_ch(out, '[');
    for (unsigned i = 0; i < n; i++) {
        if (i) b_ch(out, ',');
        if (tiny) b_str(out, chance(&c->r, 99) ? "{}" : "1");
        else if (chance(&c->r, 4)) any_value(c, out, 2);
        else gen_object(c, spec_transfer, out, 15, depth);
    }
    b_ch(out, ']');
}

/* Whole-body breakage: not an object, truncated, trailing bytes, BOM, comments. */
static void break_body(conn *c, buf *body) {
    switch (rn(&c->r, 10)) {
    case 0:
        desc_add(c, "body:truncated");
        if (body->n) {
            body->n = rn(&c->r, (uint32_t)body->n);
            body->p[body->n] = '\0';
        }
        break;
    case 1: desc_add(c, "body:trailing"); b_str(body, PICK(&c->r, ((const char *const[]){" {}", "x", "\x00", "]", "\n\n"}))); break;
    case 2: {
        desc_add(c, "body:bom");
        buf t = {0};
        b_str(&t, "\xef\xbb\xbf");
        b_put(&t, body->p, body->n);
        b_free(body);
        *body = t;
        break;
    }
    case 3: desc_add(c, "body:array"); b_reset(body); b_str(body, "[{\"amount\":1}]"); break;
    case 4: desc_add(c, "body:scalar"); b_reset(body); b_str(body, PICK(&c->r, ((const char *const[]){"1", "\"x\"", "null", "true", "-0"}))); break;
    case 5: desc_add(c, "body:empty"); b_reset(body); break;
    case 6: desc_add(c, "body:ws"); b_reset(body); b_str(body, " \r\n\t "); break;
    case 7: desc_add(c, "body:comment"); b_reset(body); b_str(body, "/* x */ {}"); break;
    case 8: desc_add(c, "body:deep"); b_reset(body); { unsigned d = 3000 + rn(&c->r, 100000); b_rep(body, '[', d); b_rep(body, ']', d); } break;
    default: desc_add(c, "body:binary"); b_reset(body); for (int i = 0, k = 1 + (int)rn(&c->r, 400); i < k; i++) b_ch(body, (char)rn(&c->r, 256)); break;
    }
}

/* ================================================================ tokens */

static char *mint(conn *c) {
    if (!sign_key) return NULL;
    json_t *cl = json_object();
    time_t now = time(NULL);
    /* iss, aud */
    uint32_t roll = rn(&c->r, 100);
    json_object_set_new(cl, "iss", json_string(roll < 92 ? issuer : roll < 96 ? "evil" : ""));
    roll = rn(&c->r, 100);
    if (roll < 85) json_object_set_new(cl, "aud", json_string(audience));
    else if (roll < 92) json_object_set_new(cl, "aud", json_pack("[s,s]", "x", audience));
    else if (roll < 96) json_object_set_new(cl, "aud", json_integer(1));
    /* sub */
    roll = rn(&c->r, 100);
    buf s = {0};
    if (roll < 80) principal(c, &s);
    else if (roll < 90) b_rep(&s, 'p', 120 + rn(&c->r, 20));
    else weird_text(c, &s);
    if (roll < 97) json_object_set_new(cl, "sub", json_stringn(s.p ? s.p : "", s.n));
    else json_object_set_new(cl, "sub", json_integer(7));
    b_free(&s);
    /* scope */
    static const char *const scopes[] = {
        "accounts:read accounts:write transfers:read transfers:write mandates:write",
        "admin",
        "accounts:read",
        "transfers:write",
        "",
        "accounts:issue accounts:read accounts:write transfers:write",
        "bogus admin:x  accounts:read",
        "admin accounts:read accounts:write transfers:read transfers:write mandates:write events:read",
    };
    if (chance(&c->r, 95)) json_object_set_new(cl, "scope", json_string(PICK(&c->r, scopes)));
    /* regions */
    roll = rn(&c->r, 100);
    if (roll < 25 && opt.n_region_names) {
        json_t *a = json_array();
        int k = (int)rn(&c->r, 3);
        for (int i = 0; i < k; i++) json_array_append_new(a, json_string(opt.region_names[rn(&c->r, (uint32_t)opt.n_region_names)]));
        json_object_set_new(cl, "regions", a);
    } else if (roll < 30) {
        json_t *a = json_array();
        for (int i = 0; i < 17; i++) json_array_append_new(a, json_string("eu"));
        json_object_set_new(cl, "regions", a);
    } else if (roll < 35) {
        json_object_set_new(cl, "regions", chance(&c->r, 50) ? json_string("eu") : json_pack("[s,i,s]", "mars", 1, "EU"));
    }
    /* times */
    roll = rn(&c->r, 100);
    json_int_t exp = roll < 85 ? (json_int_t)now + 600 : roll < 90 ? (json_int_t)now - 3600 : roll < 95 ? INT64_C(253402300800) : -1;
    if (chance(&c->r, 97)) json_object_set_new(cl, "exp", chance(&c->r, 98) ? json_integer(exp) : json_real(1.5));
    if (chance(&c->r, 10)) json_object_set_new(cl, "nbf", json_integer((json_int_t)now + (chance(&c->r, 50) ? 3600 : -10)));
    /* iat: ledgerd requires it (a maximum token lifetime), so mostly a good one */
    if (chance(&c->r, 95)) {
        roll = rn(&c->r, 100);
        json_int_t iat = roll < 90 ? (json_int_t)now - 10 : roll < 95 ? (json_int_t)now - 30 * 86400 : INT64_MAX;
        json_object_set_new(cl, "iat", json_integer(iat));
    }
    char *tok = NULL;
    gl_error err;
    if (!gl_jwt_sign("HS256", sign_key, sign_key_len, cl, &tok, &err)) tok = NULL;
    json_decref(cl);
    return tok;
}

static void auth_header(conn *c, buf *h) {
    const char *tok = n_tokens ? tokens[c->clean || chance(&c->r, 55) ? 0 : rn(&c->r, (uint32_t)n_tokens)] : NULL;
    uint32_t roll = c->clean ? 50 : rn(&c->r, 100);
    if (roll < 7) {
        desc_add(c, "auth:none");
        return;
    }
    if (roll < 70 && tok) {
        b_fmt(h, "Authorization: Bearer %s\r\n", tok);
        return;
    }
    if (roll < 82) {
        char *m = mint(c);
        if (m) {
            desc_add(c, "auth:minted");
            b_fmt(h, "Authorization: Bearer %s\r\n", m);
            free(m);
            return;
        }
    }
    desc_add(c, "auth:garbage");
    b_str(h, "Authorization: ");
    switch (rn(&c->r, 14)) {
    case 0: b_str(h, "Bearer"); break;
    case 1: b_str(h, "Bearer "); break;
    case 2: b_str(h, "Bearer x.y.z"); break;
    case 3: b_str(h, "Basic YWxpY2U6eA=="); break;
    case 4: b_fmt(h, "bearer %s", tok ? tok : "a.b.c"); break;
    case 5: b_str(h, "Bearer "); if (tok) { size_t n = strlen(tok); b_put(h, tok, rn(&c->r, (uint32_t)n)); } break;
    case 6: b_str(h, "Bearer "); if (tok) { b_str(h, tok); h->p[h->n - 1 - rn(&c->r, 20)] ^= 1; } break;
    case 7: b_fmt(h, "Bearer %s.x", tok ? tok : "a.b.c"); break;
    case 8: b_str(h, "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhIiwiZXhwIjo5OTk5OTk5OTk5fQ."); break;
    case 9: b_str(h, "Bearer "); b_rep(h, 'A', 8100 + rn(&c->r, 200)); break;
    case 10: b_str(h, "Bearer "); b_rep(h, 'A', 70000); break;
    case 11: b_str(h, "Bearer ...."); break;
    case 12: b_fmt(h, "Bearer  %s", tok ? tok : "a.b.c"); break;
    default: b_str(h, "Bearer a==.b==.c=="); break;
    }
    b_str(h, "\r\n");
    if (tok && chance(&c->r, 30)) b_fmt(h, "Authorization: Bearer %s\r\n", tok); /* a second one */
}

/* ================================================================ request assembly */

typedef enum { FR_CL, FR_NONE, FR_CL_SHORT, FR_CL_LONG, FR_CL_BAD, FR_CL_HUGE, FR_CL_DUP, FR_CHUNKED, FR_CHUNKED_BAD,
               FR_CHUNKED_CL } framing;

static void idem_header(conn *c, buf *h, bool post) {
    if (c->clean ? !post : !chance(&c->r, post ? 85 : 8)) {
        if (post) desc_add(c, "idem:none");
        return;
    }
    uint32_t roll = c->clean ? 0 : rn(&c->r, 100);
    if (roll < 55) {
        b_fmt(h, "Idempotency-Key: fz%d-%" PRIx64 "\r\n", c->index, r64(&c->r));
        return;
    }
    if (roll < 75) { /* shared keys: replays, reuse with another body, in flight */
        desc_add(c, "idem:pooled");
        b_fmt(h, "Idempotency-Key: %s\r\n", c->idem_pool[rn(&c->r, IDEM_POOL)]);
        return;
    }
    desc_add(c, "idem:odd");
    b_str(h, "Idempotency-Key: ");
    switch (rn(&c->r, 9)) {
    case 0: break;
    case 1: b_ch(h, 'k'); break;
    case 2: b_rep(h, 'k', 255); break;
    case 3: b_rep(h, 'k', 256); break;
    case 4: b_rep(h, 'k', 4000 + rn(&c->r, 4000)); break;
    case 5: b_str(h, "a\001b"); break;
    case 6: b_str(h, "caf\xc3\xa9\xff"); break;
    case 7: b_str(h, "a b\tc"); break;
    default: b_str(h, "\x7f"); break;
    }
    b_str(h, "\r\n");
}

static void trace_header(conn *c, buf *h) {
    if (!FUZZ(c, 15)) return;
    static const char *const tp[] = {
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "garbage",
        "",
        "00--------",
        "00-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-zzzzzzzzzzzzzzzz-zz",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\x01",
    };
    desc_add(c, "traceparent");
    if (chance(&c->r, 10)) {
        b_str(h, "traceparent: 00-");
        b_rep(h, 'a', 5000);
        b_str(h, "\r\n");
    } else b_fmt(h, "traceparent: %s\r\n", PICK(&c->r, tp));
}

static void junk_headers(conn *c, buf *h) {
    if (!FUZZ(c, 12)) return;
    switch (rn(&c->r, 9)) {
    case 0: /* MHD may refuse these by closing: no answer owed */
        desc_add(c, "hdr:many");
        for (int i = 0, k = 50 + (int)rn(&c->r, 400); i < k; i++) b_fmt(h, "X-F%d: %d\r\n", i, i);
        c->framed = false;
        break;
    case 1:
        desc_add(c, "hdr:long");
        b_str(h, "X-Long: ");
        b_rep(h, 'v', 1000 + rn(&c->r, 60000));
        b_str(h, "\r\n");
        c->framed = false;
        break;
    case 2: desc_add(c, "hdr:fold"); b_str(h, "X-Fold: a\r\n b\r\n"); c->framed = false; break;
    case 3: desc_add(c, "hdr:nocolon"); b_str(h, "X-No-Colon\r\n"); c->framed = false; break;
    case 4: desc_add(c, "hdr:emptyname"); b_str(h, ": x\r\n"); c->framed = false; break;
    case 5: desc_add(c, "hdr:expect"); b_str(h, chance(&c->r, 80) ? "Expect: 100-continue\r\n" : "Expect: 999-x\r\n"); break;
    case 6: desc_add(c, "hdr:connection"); b_str(h, PICK(&c->r, ((const char *const[]){"Connection: close\r\n", "Connection: keep-alive, Upgrade\r\nUpgrade: h2c\r\n", "Connection: \x01\r\n"}))); c->keep = false; break;
    case 7: desc_add(c, "hdr:te"); b_str(h, "Transfer-Encoding: gzip\r\n"); c->framed = false; break;
    default: desc_add(c, "hdr:bytes"); b_str(h, "X-Bytes: \xff\xfe\x80\r\n"); break;
    }
}

static void content_type(conn *c, buf *h, bool has_body) {
    uint32_t roll = c->clean ? 0 : rn(&c->r, 100);
    if (has_body ? roll < 88 : roll < 10) b_str(h, "Content-Type: application/json\r\n");
    else if (roll < 96) {
        desc_add(c, "ctype");
        b_fmt(h, "Content-Type: %s\r\n",
              PICK(&c->r, ((const char *const[]){"text/plain", "application/x-www-form-urlencoded",
                                                  "multipart/form-data; boundary=xyz", "application/json; charset=latin1",
                                                  "", "*/*"})));
    }
}

/* Query strings. */
static void query_value(conn *c, buf *q, const char *name) {
    static const char *const ints[] = {"1",  "10", "100", "101", "0", "-1", "9223372036854775807", "9223372036854775808",
                                       "abc", "",  "1.5", "%201", "1%20", "%2B1", "0x10", "99999999999999999999",
                                       "%00", "1%002"};
    b_str(q, name);
    if (chance(&c->r, 4)) return; /* no '=' */
    b_ch(q, '=');
    buf t = {0};
    if (strcmp(name, "as_of") == 0) {
        if (chance(&c->r, 60)) rfc3339(c, &t, chance(&c->r, 50));
        else odd_time(c, &t);
        if (chance(&c->r, 90)) pct(q, t.p ? t.p : "", t.n, false);
        else b_put(q, t.p ? t.p : "", t.n); /* a raw '+' is a space to MHD */
    } else if (strcmp(name, "account_id") == 0) {
        gen_id(c, K_ACCOUNT, &t);
        pct(q, t.p ? t.p : "", t.n, chance(&c->r, 5));
    } else if (strcmp(name, "reference") == 0) {
        if (n_refs && chance(&c->r, 60)) b_str(&t, refs[rn(&c->r, (uint32_t)n_refs)]);
        else if (chance(&c->r, 50)) b_rep(&t, 'r', 127 + rn(&c->r, 3));
        else weird_text(c, &t);
        pct(q, t.p ? t.p : "", t.n, false);
    } else if (chance(&c->r, 60)) {
        b_fmt(q, "%u", 1 + rn(&c->r, 100));
    } else b_str(q, PICK(&c->r, ints));
    b_free(&t);
}

static void query(conn *c, buf *target, const char *const *names, size_t n_names, unsigned pct_any) {
    if (!n_names || !chance(&c->r, pct_any)) return;
    b_ch(target, '?');
    int k = 1 + (int)rn(&c->r, 3);
    for (int i = 0; i < k; i++) {
        if (i) b_ch(target, '&');
        if (chance(&c->r, 5)) {
            b_str(target, PICK(&c->r, ((const char *const[]){"", "&", "=", "=x", "x", "%zz=1", "a[]=1", "%00=%00"})));
            desc_add(c, "query:odd");
            continue;
        }
        query_value(c, target, names[rn(&c->r, (uint32_t)n_names)]);
    }
    if (chance(&c->r, 8)) { /* the same param again */
        desc_add(c, "query:repeat");
        b_ch(target, '&');
        query_value(c, target, names[rn(&c->r, (uint32_t)n_names)]);
    }
}

static void id_segment(conn *c, buf *target, int kind) {
    buf t = {0};
    gen_id(c, kind, &t);
    if (chance(&c->r, 5)) {
        desc_add(c, "path:pct-id");
        pct(target, t.p ? t.p : "", t.n, true);
    } else pct(target, t.p ? t.p : "", t.n, false);
    b_free(&t);
}

/* Odd paths, for the unknown-path route and as mutations of the others. */
static void odd_path(conn *c, buf *target) {
    b_reset(target);
    static const char *const fixed[] = {
        "/", "", "*", "/v1", "/v1/", "/v2/accounts", "/v1/events", "/v1/payments", "/v1/payments/x/events",
        "/v1/webhook_endpoints", "/V1/ACCOUNTS", "/healthz/", "/healthz/x", "/metrics?x=1", "/readyz%00",
        "/v1/accounts/../accounts", "//v1//accounts", "/v1/%2e%2e/v1/accounts", "http://127.0.0.1/v1/accounts",
        "/v1/transfers/batch/x", "/v1/mandates/a/b", "/v1/accounts/%", "/v1/accounts/%zz", "/%00", "/v1/\xff\xfe",
        "/v1/transfers/?reference=", "/v1/accounts#frag", "/v1/accounts;x=1", "/v1/transfers/batch?atomic=true",
        "/v1/accounts/\x01", "/./v1/./accounts", "/v1/transfers/post", "/v1/transfers/void/void",
    };
    switch (rn(&c->r, 6)) {
    case 0: { /* many segments */
        desc_add(c, "path:segments");
        b_str(target, "/v1");
        for (int i = 0, k = 3 + (int)rn(&c->r, 300); i < k; i++) {
            b_ch(target, '/');
            if (chance(&c->r, 30)) id_segment(c, target, K_ACCOUNT);
            else b_str(target, PICK(&c->r, ((const char *const[]){"accounts", "transfers", "post", "x", "", "mandates", "balance"})));
        }
        break;
    }
    case 1: /* very long */
        desc_add(c, "path:long");
        b_str(target, "/v1/accounts/");
        b_rep(target, 'a', chance(&c->r, 50) ? 200 + rn(&c->r, 300) : 1000 + rn(&c->r, 100000));
        break;
    case 2: { /* a route with one segment percent-encoded */
        desc_add(c, "path:pct");
        const char *r = PICK(&c->r, ((const char *const[]){"/v1/accounts", "/v1/transfers", "/v1/mandates", "/healthz"}));
        size_t k = 1 + rn(&c->r, (uint32_t)strlen(r) - 1);
        b_put(target, r, k);
        pct(target, r + k, strlen(r) - k, true);
        break;
    }
    default: desc_add(c, "path:fixed"); b_str(target, PICK(&c->r, fixed)); break;
    }
}

static route_id pick_route(conn *c) {
    unsigned total = 0;
    for (int i = 0; i < R_COUNT; i++) total += routes[i].weight;
    unsigned x = rn(&c->r, total);
    for (int i = 0; i < R_COUNT; i++) {
        if (x < routes[i].weight) return (route_id)i;
        x -= routes[i].weight;
    }
    return R_HEALTHZ;
}

/* A request line and headers that are not HTTP at all, or barely. */
static void raw_garbage(conn *c) {
    b_reset(&c->raw);
    switch (rn(&c->r, 8)) {
    case 0: for (int i = 0, k = 1 + (int)rn(&c->r, 2000); i < k; i++) b_ch(&c->raw, (char)rn(&c->r, 256)); break;
    case 1: b_str(&c->raw, "GET /healthz\r\n\r\n"); break; /* HTTP/0.9 */
    case 2: b_str(&c->raw, "\r\n\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); break;
    case 3: b_str(&c->raw, "GET /healthz HTTP/1.1\nHost: x\n\n"); break; /* bare LF */
    case 4: b_str(&c->raw, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"); break;
    case 5: b_str(&c->raw, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); break; /* never ends */
    case 6: b_str(&c->raw, "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"); break; /* a TLS hello */
    default: b_str(&c->raw, "POST /v1/transfers HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef"); break;
    }
    c->framed = false;
    c->odd_version = true; /* 505 is a fair answer to these */
    desc_add(c, "raw");
}

/* Byte-level damage to an assembled request. */
static void mutate_bytes(conn *c) {
    if (!c->raw.n) return;
    int k = 1 + (int)rn(&c->r, 8);
    desc_add(c, "bytes:%d", k);
    for (int i = 0; i < k; i++) {
        size_t at = rn(&c->r, (uint32_t)c->raw.n);
        switch (rn(&c->r, 4)) {
        case 0: c->raw.p[at] = (char)(c->raw.p[at] ^ (1 << rn(&c->r, 8))); break;
        case 1: c->raw.p[at] = (char)rn(&c->r, 256); break;
        case 2: memmove(c->raw.p + at, c->raw.p + at + 1, c->raw.n - at - 1); c->raw.n--; break;
        default: { /* insert a byte */
            b_ch(&c->raw, 0);
            memmove(c->raw.p + at + 1, c->raw.p + at, c->raw.n - at - 1);
            c->raw.p[at] = (char)PICK(&c->r, ((const char *const[]){"\r", "\n", " ", ":", "\x00", "%", "/", "?"}))[0];
            break;
        }
        }
    }
    c->framed = false;
    c->odd_version = true; /* the version may be what changed */
}

/* A request ledgerd may leave unanswered: a fresh connection, no long wait. */
static void unframed(conn *c) {
    if (c->framed) return;
    c->keep = false;
    c->half_close = true;
    c->timeout_ms = c->timeout_ms < NONFRAMED_TIMEOUT_MS ? c->timeout_ms : NONFRAMED_TIMEOUT_MS;
}

static void gen_request(conn *c) {
    c->desc[0] = '\0';
    c->framed = true;
    c->keep = true;
    c->odd_version = false;
    c->head = false;
    c->half_close = false;
    c->split = false;
    c->abandon = false;
    c->timeout_ms = opt.timeout_ms;
    b_reset(&c->method);
    b_reset(&c->target);
    b_reset(&c->version);
    b_reset(&c->headers);
    b_reset(&c->body);
    b_reset(&c->raw);
    route_id r = c->route = pick_route(c);
    c->pref_code = n_known_codes ? known_codes[rn(&c->r, (uint32_t)n_known_codes)] : 0;
    c->clean = r != R_RAW && r != R_UNKNOWN && chance(&c->r, 25);
    if (c->clean) desc_add(c, "clean");
    if (r == R_RAW) {
        raw_garbage(c);
        unframed(c);
        return;
    }
    b_str(&c->method, routes[r].method);
    /* target */
    static const char *const entries_q[] = {"limit", "starting_after"};
    static const char *const balance_q[] = {"as_of"};
    static const char *const list_q[] = {"reference", "reference", "account_id", "account_id", "limit", "starting_after"};
    const fspec *spec = NULL;
    switch (r) {
    case R_ACC_CREATE: b_str(&c->target, "/v1/accounts"); spec = spec_account; break;
    case R_ACC_GET: b_str(&c->target, "/v1/accounts/"); id_segment(c, &c->target, K_ACCOUNT); break;
    case R_ACC_BALANCE:
        b_str(&c->target, "/v1/accounts/");
        id_segment(c, &c->target, K_ACCOUNT);
        b_str(&c->target, "/balance");
        query(c, &c->target, balance_q, 1, 60);
        break;
    case R_ACC_ENTRIES:
        b_str(&c->target, "/v1/accounts/");
        id_segment(c, &c->target, K_ACCOUNT);
        b_str(&c->target, "/entries");
        query(c, &c->target, entries_q, 2, 60);
        break;
    case R_TR_LIST: b_str(&c->target, "/v1/transfers"); query(c, &c->target, list_q, 6, 95); break;
    case R_TR_CREATE: b_str(&c->target, "/v1/transfers"); spec = spec_transfer; break;
    case R_TR_BATCH: b_str(&c->target, "/v1/transfers/batch"); spec = spec_batch; break;
    case R_TR_GET: b_str(&c->target, "/v1/transfers/"); id_segment(c, &c->target, chance(&c->r, 50) ? K_TRANSFER : K_PENDING); break;
    case R_TR_POST:
    case R_TR_VOID:
    case R_TR_REVERSE:
        b_str(&c->target, "/v1/transfers/");
        id_segment(c, &c->target, r == R_TR_REVERSE ? K_TRANSFER : K_PENDING);
        b_str(&c->target, r == R_TR_POST ? "/post" : r == R_TR_VOID ? "/void" : "/reverse");
        spec = r == R_TR_POST ? spec_post : r == R_TR_VOID ? spec_void : spec_reverse;
        break;
    case R_MAN_CREATE: b_str(&c->target, "/v1/mandates"); spec = spec_mandate; break;
    case R_MAN_GET:
    case R_MAN_DELETE: b_str(&c->target, "/v1/mandates/"); id_segment(c, &c->target, K_MANDATE); break;
    case R_HEALTHZ: b_str(&c->target, "/healthz"); break;
    case R_READYZ: b_str(&c->target, "/readyz"); break;
    case R_METRICS: b_str(&c->target, "/metrics"); break;
    default: odd_path(c, &c->target); break;
    }
    if (r != R_UNKNOWN && FUZZ(c, 6)) {
        desc_add(c, "path:odd");
        if (chance(&c->r, 50)) b_str(&c->target, PICK(&c->r, ((const char *const[]){"/", "//", "/x", "?", "??a", "#", "%20", "/.."})));
        else odd_path(c, &c->target);
    }
    /* body */
    bool post = strcmp(routes[r].method, "POST") == 0;
    if (spec) {
        if (spec != spec_void || chance(&c->r, 40)) gen_object(c, spec, &c->body, 45, 0);
        if (FUZZ(c, 5)) break_body(c, &c->body);
    } else if (FUZZ(c, 3)) {
        desc_add(c, "body:unexpected");
        b_str(&c->body, "{\"a\":1}");
    }
    /* method */
    if (FUZZ(c, 7)) {
        b_reset(&c->method);
        b_str(&c->method, PICK(&c->r, ((const char *const[]){"GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS",
                                                            "TRACE", "CONNECT", "get", "FOO", "POSTX", "DELETEDELETE",
                                                            "G\x01T", "M-SEARCH"})));
        if (chance(&c->r, 3)) b_rep(&c->method, 'X', 100 + rn(&c->r, 5000));
        desc_add(c, "method:%.12s", c->method.p);
        if (strchr(c->method.p, '\x01') || strcmp(c->method.p, "CONNECT") == 0) c->framed = false;
        post = strcmp(c->method.p, "POST") == 0;
    }
    c->head = strcmp(c->method.p, "HEAD") == 0;
    /* version */
    if (FUZZ(c, 3)) {
        const char *v = PICK(&c->r, ((const char *const[]){"HTTP/1.0", "HTTP/2.0", "HTTP/1.2", "HTTP/9.9", "HTTP/1.1 x",
                                                          "http/1.1", "HTTP/01.1", "HTTP/1", ""}));
        b_str(&c->version, v);
        desc_add(c, "version:%s", v);
        c->odd_version = strcmp(v, "HTTP/1.0") != 0;
        c->keep = false;
        if (c->odd_version) c->framed = false;
    } else b_str(&c->version, "HTTP/1.1");
    /* headers */
    if (!FUZZ(c, 2)) b_fmt(&c->headers, "Host: 127.0.0.1:%d\r\n", opt.port);
    else desc_add(c, "hdr:nohost");
    bool probe = r == R_HEALTHZ || r == R_READYZ || r == R_METRICS;
    if (!probe || chance(&c->r, 10)) auth_header(c, &c->headers);
    idem_header(c, &c->headers, post);
    trace_header(c, &c->headers);
    content_type(c, &c->headers, c->body.n > 0);
    junk_headers(c, &c->headers);
    if (FUZZ(c, 2)) {
        desc_add(c, "hdr:close");
        b_str(&c->headers, "Connection: close\r\n");
        c->keep = false;
    }
    /* framing */
    framing fr = FR_CL;
    uint32_t roll = rn(&c->r, 100);
    if (c->clean) roll = roll < 90 ? 0 : 91 + rn(&c->r, 6); /* Content-Length, or good chunks */
    if (roll < 76) fr = c->body.n || post ? FR_CL : FR_NONE;
    else if (roll < 80) fr = FR_NONE;
    else if (roll < 83) fr = FR_CL_SHORT;
    else if (roll < 85) fr = FR_CL_LONG;
    else if (roll < 88) fr = FR_CL_BAD;
    else if (roll < 90) fr = FR_CL_HUGE;
    else if (roll < 91) fr = FR_CL_DUP;
    else if (roll < 97) fr = FR_CHUNKED;
    else if (roll < 99) fr = FR_CHUNKED_BAD;
    else fr = FR_CHUNKED_CL;
    if (c->body.n > BODY_LIMIT / 2) c->framed = false; /* ledgerd may answer 413 and close while we send */
    switch (fr) {
    case FR_CL: b_fmt(&c->headers, "Content-Length: %zu\r\n", c->body.n); break;
    case FR_NONE:
        if (c->body.n) {
            desc_add(c, "cl:none");
            c->framed = false;
            c->keep = false;
        }
        break;
    case FR_CL_SHORT:
        desc_add(c, "cl:short");
        b_fmt(&c->headers, "Content-Length: %u\r\n", c->body.n ? rn(&c->r, (uint32_t)c->body.n) : 0u);
        c->framed = false;
        c->keep = false;
        break;
    case FR_CL_LONG:
        desc_add(c, "cl:long");
        b_fmt(&c->headers, "Content-Length: %zu\r\n", c->body.n + 1 + rn(&c->r, 5000));
        c->framed = false;
        break;
    case FR_CL_BAD:
        desc_add(c, "cl:bad");
        b_fmt(&c->headers, "Content-Length: %s\r\n",
              PICK(&c->r, ((const char *const[]){"abc", "-1", "1 2", "+5", "0x10", "99999999999999999999999", "",
                                                  "18446744073709551615", "18446744073709551616", " 5", "5,5"})));
        c->framed = false;
        break;
    case FR_CL_HUGE:
        desc_add(c, "cl:huge");
        b_fmt(&c->headers, "Content-Length: %u\r\n", BODY_LIMIT + 1 + rn(&c->r, 1u << 30));
        c->framed = false;
        break;
    case FR_CL_DUP:
        desc_add(c, "cl:dup");
        b_fmt(&c->headers, "Content-Length: %zu\r\nContent-Length: %zu\r\n", c->body.n,
              chance(&c->r, 50) ? c->body.n : c->body.n + 1);
        c->framed = false;
        break;
    case FR_CHUNKED:
    case FR_CHUNKED_BAD:
    case FR_CHUNKED_CL: {
        desc_add(c, fr == FR_CHUNKED ? "chunked" : fr == FR_CHUNKED_BAD ? "chunked:bad" : "chunked+cl");
        if (c->odd_version || strcmp(c->version.p, "HTTP/1.0") == 0) c->framed = false;
        b_str(&c->headers, chance(&c->r, 90) ? "Transfer-Encoding: chunked\r\n" : "Transfer-Encoding: CHUNKED\r\n");
        if (fr == FR_CHUNKED_CL) b_fmt(&c->headers, "Content-Length: %zu\r\n", c->body.n / 2);
        buf t = {0};
        size_t at = 0;
        bool bad = fr == FR_CHUNKED_BAD;
        while (at < c->body.n) {
            size_t k = 1 + rn(&c->r, (uint32_t)(c->body.n - at < 4096 ? c->body.n - at : 4096));
            if (bad && chance(&c->r, 30)) {
                b_str(&t, PICK(&c->r, ((const char *const[]){"ffffffffffffffff\r\n", "-1\r\n", "zz\r\n", "\r\n",
                                                             "10000000000000000\r\n", "1;\r\n", "7fffffffffffffff\r\n"})));
            } else {
                b_fmt(&t, chance(&c->r, 50) ? "%zx" : "%zX", k);
                if (chance(&c->r, 5)) b_str(&t, ";ext=1");
                b_str(&t, "\r\n");
            }
            b_put(&t, c->body.p + at, k);
            b_str(&t, bad && chance(&c->r, 20) ? "\n" : "\r\n");
            at += k;
        }
        if (!bad || chance(&c->r, 50)) b_str(&t, chance(&c->r, 90) ? "0\r\n\r\n" : "0\r\nX-Trailer: 1\r\n\r\n");
        b_free(&c->body);
        c->body = t;
        if (bad || fr == FR_CHUNKED_CL) {
            c->framed = false;
        }
        break;
    }
    }
    /* assemble */
    b_put(&c->raw, c->method.p, c->method.n);
    b_ch(&c->raw, ' ');
    b_put(&c->raw, c->target.p, c->target.n);
    if (c->version.n) {
        b_ch(&c->raw, ' ');
        b_put(&c->raw, c->version.p, c->version.n);
    }
    b_str(&c->raw, "\r\n");
    b_put(&c->raw, c->headers.p, c->headers.n);
    b_str(&c->raw, "\r\n");
    b_put(&c->raw, c->body.p, c->body.n);
    /* a path with a space or a control byte, or oversize parts, may be refused by closing */
    for (size_t i = 0; i < c->target.n; i++)
        if ((unsigned char)c->target.p[i] <= 0x20 || (unsigned char)c->target.p[i] >= 0x7f) c->framed = false;
    if (c->target.n > 4000 || c->headers.n > 8000 || c->method.n > 64) c->framed = false;
    if (FUZZ(c, 4)) mutate_bytes(c);
    if (chance(&c->r, 8)) {
        c->split = true;
        desc_add(c, "split");
    }
    if (chance(&c->r, 3)) { /* the client goes away while ledgerd works on it (a write is suspended meanwhile) */
        c->abandon = true;
        desc_add(c, "abandon");
    }
    unframed(c);
}

/* ================================================================ network */

static int dial(int *err) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* close with RST: no TIME_WAIT pile-up over tens of thousands of connections */
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
    if (errno != EINPROGRESS) {
        *err = errno;
        close(fd);
        return -1;
    }
    struct pollfd p = {fd, POLLOUT, 0};
    int rc = poll(&p, 1, 3000);
    int soerr = 0;
    socklen_t sl = sizeof soerr;
    if (rc <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr) {
        *err = rc == 0 ? ETIMEDOUT : soerr ? soerr : errno;
        close(fd);
        return -1;
    }
    return fd;
}

/* 0 all sent; else errno (EPIPE, ECONNRESET, ETIMEDOUT). */
static int send_all(int fd, const char *p, size_t n, int64_t deadline) {
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
            continue;
        }
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return errno;
        int64_t left = deadline - now_ms();
        if (left <= 0) return ETIMEDOUT;
        struct pollfd pf = {fd, POLLOUT, 0};
        poll(&pf, 1, (int)left);
    }
    return 0;
}

static bool line_has(const char *hdr, size_t n, const char *name, const char *value) {
    size_t nl = strlen(name);
    for (const char *p = hdr; p && p < hdr + n;) {
        const char *e = memchr(p, '\n', (size_t)(hdr + n - p));
        size_t len = e ? (size_t)(e - p) : (size_t)(hdr + n - p);
        if (len > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            if (!value) return true;
            char v[128];
            size_t vl = len - nl - 1 < sizeof v - 1 ? len - nl - 1 : sizeof v - 1;
            memcpy(v, p + nl + 1, vl);
            v[vl] = '\0';
            if (strcasestr(v, value)) return true;
        }
        p = e ? e + 1 : NULL;
    }
    return false;
}

static long long header_ll(const char *hdr, size_t n, const char *name) {
    size_t nl = strlen(name);
    for (const char *p = hdr; p && p < hdr + n;) {
        const char *e = memchr(p, '\n', (size_t)(hdr + n - p));
        size_t len = e ? (size_t)(e - p) : (size_t)(hdr + n - p);
        if (len > nl && strncasecmp(p, name, nl) == 0 && p[nl] == ':') return strtoll(p + nl + 1, NULL, 10);
        p = e ? e + 1 : NULL;
    }
    return -1;
}

/* Where a chunked body ends in b (from off), or 0 if not complete yet. */
static size_t chunked_end(const char *b, size_t n, size_t off) {
    size_t at = off;
    for (;;) {
        const char *e = memmem(b + at, n - at, "\r\n", 2);
        if (!e) return 0;
        unsigned long long k = strtoull(b + at, NULL, 16);
        at = (size_t)(e - b) + 2;
        if (k == 0) {
            const char *end = memmem(b + at - 2, n - (at - 2), "\r\n\r\n", 4);
            return end ? (size_t)(end - b) + 4 : 0;
        }
        if (k > n || at + k + 2 > n) return 0;
        at += (size_t)k + 2;
    }
}

typedef enum { RD_OK, RD_CLOSED, RD_TIMEOUT, RD_GARBLED } rd_result;

/* Reads one response into c->resp: status, and whether the connection may be reused. */
static rd_result read_response(conn *c, int fd, int64_t deadline, int *status, bool *reusable) {
    buf *b = &c->resp;
    b_reset(b);
    *status = 0;
    *reusable = false;
    size_t hdr_end = 0;
    long long clen = -1;
    bool chunked = false;
    for (;;) {
        if (hdr_end == 0) {
            const char *e = b->n ? memmem(b->p, b->n, "\r\n\r\n", 4) : NULL;
            if (e) {
                if (b->n < 12 || strncmp(b->p, "HTTP/", 5) != 0) return RD_GARBLED;
                const char *sp = memchr(b->p, ' ', (size_t)(e - b->p));
                int st = sp ? atoi(sp + 1) : 0;
                if (st < 100 || st > 599) return RD_GARBLED;
                size_t end = (size_t)(e - b->p) + 4;
                if (st < 200) { /* 100 Continue: drop it */
                    memmove(b->p, b->p + end, b->n - end);
                    b->n -= end;
                    b->p[b->n] = '\0';
                    continue;
                }
                *status = st;
                hdr_end = end;
                clen = header_ll(b->p, hdr_end, "Content-Length");
                chunked = line_has(b->p, hdr_end, "Transfer-Encoding", "chunked");
                *reusable = !line_has(b->p, hdr_end, "Connection", "close") && strncmp(b->p, "HTTP/1.1", 8) == 0;
                if (c->head || st == 204 || st == 304) clen = 0;
            }
        }
        if (hdr_end) {
            if (!chunked && clen >= 0 && b->n >= hdr_end + (size_t)clen) return RD_OK;
            if (chunked && chunked_end(b->p, b->n, hdr_end)) return RD_OK;
        }
        if (b->n > MAX_RESPONSE) return RD_GARBLED;
        int64_t left = deadline - now_ms();
        if (left <= 0) return hdr_end ? RD_OK : RD_TIMEOUT;
        struct pollfd pf = {fd, POLLIN, 0};
        int rc = poll(&pf, 1, (int)left);
        if (rc < 0 && errno == EINTR) continue;
        if (rc == 0) continue;
        b_reserve(b, 65536);
        ssize_t k = recv(fd, b->p + b->n, 65536, 0);
        if (k > 0) {
            b->n += (size_t)k;
            b->p[b->n] = '\0';
            continue;
        }
        if (k < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        /* EOF or reset */
        *reusable = false;
        if (hdr_end) return RD_OK; /* a body that runs to EOF, or a short one: the status stands */
        return b->n ? RD_GARBLED : RD_CLOSED;
    }
}

/* /proc/PID/stat says Z for a zombie: that is dead too. */
static bool pid_alive(long pid) {
    if (pid <= 0) return true;
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) return false;
    char path[64], st[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t n = fread(st, 1, sizeof st - 1, f);
    fclose(f);
    st[n] = '\0';
    const char *p = strrchr(st, ')');
    return !(p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X'));
}

/* GET /healthz on a new connection: the status, or 0. */
static int healthz(int timeout_ms) {
    int err = 0;
    int fd = dial(&err);
    if (fd < 0) return 0;
    static const char q[] = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    int64_t deadline = now_ms() + timeout_ms;
    int st = 0;
    if (send_all(fd, q, sizeof q - 1, deadline) == 0) {
        char b[1024];
        size_t n = 0;
        while (n < sizeof b - 1) {
            int64_t left = deadline - now_ms();
            struct pollfd pf = {fd, POLLIN, 0};
            if (left <= 0 || poll(&pf, 1, (int)left) <= 0) break;
            ssize_t k = recv(fd, b + n, sizeof b - 1 - n, 0);
            if (k <= 0) break;
            n += (size_t)k;
            b[n] = '\0';
            if (strstr(b, "\r\n")) break;
        }
        b[n] = '\0';
        if (n > 12 && strncmp(b, "HTTP/1.", 7) == 0) st = atoi(b + 9);
    }
    close(fd);
    return st;
}

/* Is ledgerd still there? The process (--pid), then /healthz, a few tries. */
static bool ledgerd_alive(char *why, size_t cap) {
    for (int i = 0; i < 4; i++) {
        if (!pid_alive(opt.pid)) {
            snprintf(why, cap, "process %ld is gone", opt.pid);
            return false;
        }
        int st = healthz(5000);
        if (st == 200) return true;
        snprintf(why, cap, "/healthz: %s", st ? "not 200" : "no answer (refused, reset or timeout)");
        sleep_ms(300 * (i + 1));
    }
    return false;
}

/* ================================================================ reporting */

static void save_request(const conn *c, const char *tag, long n, const char *p, size_t len) {
    if (!opt.save_dir) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s-c%d-%ld.http", opt.save_dir, tag, c->index, n);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(p, 1, len, f);
    fclose(f);
    fprintf(stdout, "  saved as %s\n", path);
}

static void remember(conn *c) {
    hist_entry *h = &c->histo[c->hist_next++ % HISTORY];
    snprintf(h->desc, sizeof h->desc, "%s [%s]", routes[c->route].name, c->desc);
    b_reset(&h->raw);
    b_put(&h->raw, c->raw.p, c->raw.n < HISTORY_BYTES ? c->raw.n : HISTORY_BYTES);
    h->has_raw = true;
    h->status = -1;
}

static void report_request(conn *c, const char *what, int status) {
    long k = atomic_load(&n_5xx) + atomic_load(&n_hangs);
    if (k > REPORTS_SHOWN) return;
    pthread_mutex_lock(&out_mu);
    printf("FINDING %s", what);
    if (status) printf(" %d", status);
    printf(" — %s [%s]\n  request (%zu bytes):\n    ", routes[c->route].name, c->desc, c->raw.n);
    show_bytes(stdout, c->raw.p, c->raw.n, SHOWN_BYTES);
    if (c->resp.n) {
        printf("  response:\n    ");
        show_bytes(stdout, c->resp.p, c->resp.n, 800);
    }
    save_request(c, status ? "5xx" : "hang", k, c->raw.p, c->raw.n);
    pthread_mutex_unlock(&out_mu);
    fflush(stdout);
}

/* Ids of what a 201 created (the top-level "id"), for the next requests. */
static void learn_ids(conn *c) {
    int kind = c->route == R_ACC_CREATE ? K_ACCOUNT
               : c->route == R_MAN_CREATE ? K_MANDATE
               : c->route == R_TR_CREATE || c->route == R_TR_BATCH || c->route == R_TR_REVERSE ||
                         c->route == R_TR_POST
                   ? K_TRANSFER
                   : -1;
    if (kind < 0) return;
    const char *body = memmem(c->resp.p, c->resp.n, "\r\n\r\n", 4);
    for (const char *p = body; p && (p = strstr(p, "\"id\":\"")) != NULL; p += 6) {
        char s[GL_ID_STR_LEN + 1];
        gl_id id;
        if (strlen(p + 6) < GL_ID_STR_LEN) break;
        memcpy(s, p + 6, GL_ID_STR_LEN);
        s[GL_ID_STR_LEN] = '\0';
        if (!gl_id_parse(s, &id)) continue;
        int k = kind;
        if (kind == K_TRANSFER && strstr(p, "\"status\":\"pending\"") && strstr(p, "\"status\":\"pending\"") - p < 600)
            k = K_PENDING;
        pthread_mutex_lock(&dyn[k].mu);
        dyn[k].v[dyn[k].next++ % DYN_SLOTS] = id;
        if (dyn[k].n < DYN_SLOTS) dyn[k].n++;
        pthread_mutex_unlock(&dyn[k].mu);
    }
}

/* ================================================================ the loop */

static bool time_left(void) { return now_ms() < t_end && !atomic_load(&stop_flag); }

static void one_request(conn *c) {
    gen_request(c);
    remember(c);
    rd_result rd = RD_CLOSED;
    int status = 0;
    bool reusable = false;
    for (int attempt = 0; attempt < 2; attempt++) {
        bool reused = c->fd >= 0;
        if (c->fd < 0) {
            int err = 0;
            c->fd = dial(&err);
            if (c->fd < 0) {
                atomic_fetch_add(&outcomes[O_REFUSED], 1);
                atomic_fetch_add(&route_none[c->route], 1);
                char why[256];
                if (!ledgerd_alive(why, sizeof why)) {
                    snprintf(dead_detail, sizeof dead_detail, "connect: %s; %s", strerror(err), why);
                    atomic_store(&dead_flag, true);
                    atomic_store(&stop_flag, true);
                }
                return;
            }
        }
        int64_t deadline = now_ms() + c->timeout_ms;
        int serr = 0;
        atomic_fetch_add(&sent, 1);
        if (c->split && c->raw.n > 2) { /* in pieces, a little apart */
            size_t a = 1 + rn(&c->r, (uint32_t)c->raw.n - 1), b2 = a + rn(&c->r, (uint32_t)(c->raw.n - a));
            serr = send_all(c->fd, c->raw.p, a, deadline);
            sleep_ms(1 + (int)rn(&c->r, 3));
            if (!serr) serr = send_all(c->fd, c->raw.p + a, b2 - a, deadline);
            sleep_ms(1 + (int)rn(&c->r, 3));
            if (!serr) serr = send_all(c->fd, c->raw.p + b2, c->raw.n - b2, deadline);
        } else serr = send_all(c->fd, c->raw.p, c->raw.n, deadline);
        if (!serr && c->abandon) {
            sleep_ms((int)rn(&c->r, 15));
            close(c->fd); /* SO_LINGER 0: a reset */
            c->fd = -1;
            atomic_fetch_add(&route_total[c->route], 1);
            atomic_fetch_add(&route_none[c->route], 1);
            atomic_fetch_add(&outcomes[O_ABANDONED], 1);
            c->histo[(c->hist_next - 1) % HISTORY].status = -5;
            return;
        }
        if (!serr && c->half_close) shutdown(c->fd, SHUT_WR);
        rd = read_response(c, c->fd, deadline, &status, &reusable);
        if (rd == RD_CLOSED && reused && attempt == 0) { /* a kept-alive connection closed under us: once more */
            close(c->fd);
            c->fd = -1;
            atomic_fetch_sub(&sent, 1);
            continue;
        }
        break;
    }
    if (!(rd == RD_OK && reusable && c->keep && chance(&c->r, 80))) {
        close(c->fd);
        c->fd = -1;
    }
    atomic_fetch_add(&route_total[c->route], 1);
    c->histo[(c->hist_next - 1) % HISTORY].status = rd == RD_OK ? status : -2 - (int)rd;
    if (rd == RD_OK) {
        atomic_fetch_add(&hist[status], 1);
        if (status >= 200 && status < 300) {
            atomic_fetch_add(&route_2xx[c->route], 1);
            if (status == 201) learn_ids(c);
        } else if (status >= 400 && status < 500) atomic_fetch_add(&route_4xx[c->route], 1);
        else if (status >= 500) atomic_fetch_add(&route_5xx[c->route], 1);
        bool allowed_5xx = status == 503 || (status == 505 && c->odd_version);
        if (status >= 500 && !allowed_5xx) {
            atomic_fetch_add(&n_5xx, 1);
            report_request(c, "5xx", status);
        }
        if (status == 503 && atomic_fetch_add(&n_503_shown, 1) < NOTES_503) { /* allowed, but shown: is it the client's fault? */
            pthread_mutex_lock(&out_mu);
            printf("note: 503 (allowed) — %s [%s]\n  request:\n    ", routes[c->route].name, c->desc);
            show_bytes(stdout, c->raw.p, c->raw.n, 700);
            pthread_mutex_unlock(&out_mu);
        }
        if (opt.verbose) {
            pthread_mutex_lock(&out_mu);
            const char *code = c->resp.p ? strstr(c->resp.p, "\"code\":\"") : NULL;
            const char *q = code ? strchr(code + 8, '"') : NULL;
            printf("c%d %d %.*s %s [%s]\n", c->index, status, q ? (int)(q - code - 8) : 0, q ? code + 8 : "",
                   routes[c->route].name, c->desc);
            pthread_mutex_unlock(&out_mu);
        }
        return;
    }
    atomic_fetch_add(&route_none[c->route], 1);
    atomic_fetch_add(&outcomes[rd == RD_TIMEOUT ? O_TIMEOUT : rd == RD_GARBLED ? O_GARBLED : O_NONE], 1);
    if (opt.verbose) {
        pthread_mutex_lock(&out_mu);
        printf("c%d %s%s %s [%s]\n", c->index, outcome_names[rd == RD_TIMEOUT ? O_TIMEOUT : rd == RD_GARBLED ? O_GARBLED : O_NONE],
               c->framed ? " (well-formed)" : "", routes[c->route].name, c->desc);
        pthread_mutex_unlock(&out_mu);
    }
    /* Nothing came back: is ledgerd still there? (Always for a well-formed
     * request; for the others only if the process is gone, which is cheap.) */
    char why[256];
    bool alive = c->framed ? ledgerd_alive(why, sizeof why) : pid_alive(opt.pid);
    if (!c->framed && !alive) snprintf(why, sizeof why, "process %ld is gone", opt.pid);
    if (!alive) {
        snprintf(dead_detail, sizeof dead_detail, "%s", why);
        atomic_store(&dead_flag, true);
        atomic_store(&stop_flag, true);
        return;
    }
    if (c->framed && rd == RD_TIMEOUT) {
        atomic_fetch_add(&n_hangs, 1);
        report_request(c, "hang (no answer in time to a well-formed request)", 0);
    }
}

static void *conn_main(void *arg) {
    conn *c = arg;
    for (int i = 0; i < IDEM_POOL; i++) snprintf(c->idem_pool[i], sizeof c->idem_pool[i], "fz-shared-%d-%" PRIx64, i, opt.seed);
    while (time_left() && atomic_fetch_add(&started, 1) < opt.requests) one_request(c);
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    return NULL;
}

/* ================================================================ replay */

static int replay(char **files, int n) {
    int rc = 0;
    conn c;
    memset(&c, 0, sizeof c);
    c.timeout_ms = opt.timeout_ms;
    for (int i = 0; i < n; i++) {
        FILE *f = fopen(files[i], "rb");
        if (!f) {
            fprintf(stderr, "http_fuzz: %s: %s\n", files[i], strerror(errno));
            rc = EXIT_USAGE;
            break;
        }
        b_reset(&c.raw);
        char tmp[65536];
        size_t k;
        while ((k = fread(tmp, 1, sizeof tmp, f)) > 0) b_put(&c.raw, tmp, k);
        fclose(f);
        int err = 0, fd = dial(&err);
        if (fd < 0) {
            printf("%s: connect: %s\n", files[i], strerror(err));
            rc = EXIT_DEAD;
            break;
        }
        int64_t deadline = now_ms() + opt.timeout_ms;
        int serr = send_all(fd, c.raw.p ? c.raw.p : "", c.raw.n, deadline);
        if (serr) printf("%s: send: %s\n", files[i], strerror(serr));
        int st = 0;
        bool reusable;
        c.head = c.raw.n >= 5 && memcmp(c.raw.p, "HEAD ", 5) == 0;
        rd_result rd = read_response(&c, fd, deadline, &st, &reusable);
        close(fd);
        printf("%s: %s", files[i], rd == RD_OK ? "" : rd == RD_TIMEOUT ? "timeout" : rd == RD_CLOSED ? "closed, no response" : "garbled");
        if (c.resp.n) {
            printf("\n    ");
            show_bytes(stdout, c.resp.p, c.resp.n, 2000);
        } else printf("\n");
        char why[256];
        if (!ledgerd_alive(why, sizeof why)) {
            printf("ledgerd died: %s\n", why);
            rc = EXIT_DEAD;
            break;
        }
        if (st >= 500 && st != 503) rc = EXIT_FINDING;
    }
    b_free(&c.raw);
    b_free(&c.resp);
    return rc;
}

/* ================================================================ main */

static void usage(FILE *f) {
    fputs("usage: http_fuzz --port P [--token-file F] [--key-file F] [--ids-file F] [--seconds S]\n"
          "                 [--requests N] [--seed X] [--connections C] [--pid PID] [--known-regions-only]\n"
          "                 [--region-names eu,us,sg] [--timeout-ms MS] [--save-dir DIR] [--verbose]\n"
          "       http_fuzz --port P [--pid PID] --replay FILE [FILE...]\n",
          f);
}

int main(int argc, char **argv) {
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},         {"token-file", required_argument, NULL, 't'},
        {"key-file", required_argument, NULL, 'k'},     {"ids-file", required_argument, NULL, 'i'},
        {"seconds", required_argument, NULL, 's'},      {"requests", required_argument, NULL, 'n'},
        {"seed", required_argument, NULL, 'S'},         {"connections", required_argument, NULL, 'c'},
        {"pid", required_argument, NULL, 'P'},          {"known-regions-only", no_argument, NULL, 'K'},
        {"region-names", required_argument, NULL, 'R'}, {"timeout-ms", required_argument, NULL, 'T'},
        {"save-dir", required_argument, NULL, 'D'},     {"verbose", no_argument, NULL, 'v'},
        {"replay", no_argument, NULL, 'r'},             {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    opt.seconds = 30;
    opt.requests = 20000;
    opt.seed = (uint64_t)time(NULL);
    opt.conns = 8;
    opt.timeout_ms = 15000;
    bool do_replay = false;
    const char *regions_arg = "eu,us,sg";
    const char *e = getenv("HTTPFUZZ_KNOWN_REGIONS_ONLY");
    if (e && *e && strcmp(e, "0") != 0) opt.known_only = true;
    int ch;
    long v;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'p': if (!gl_parse_i64(optarg, 1, 65535, &v)) goto bad; opt.port = (int)v; break;
        case 't': opt.token_file = optarg; break;
        case 'k': opt.key_file = optarg; break;
        case 'i': opt.ids_file = optarg; break;
        case 's': {
            char *end;
            opt.seconds = strtod(optarg, &end);
            if (*end || opt.seconds <= 0) goto bad;
            break;
        }
        case 'n': if (!gl_parse_i64(optarg, 1, 1000000000L, &opt.requests)) goto bad; break;
        case 'S': opt.seed = strtoull(optarg, NULL, 0); break;
        case 'c': if (!gl_parse_i64(optarg, 1, MAX_CONNS, &v)) goto bad; opt.conns = (int)v; break;
        case 'P': if (!gl_parse_i64(optarg, 1, 1L << 30, &opt.pid)) goto bad; break;
        case 'K': opt.known_only = true; break;
        case 'R': regions_arg = optarg; break;
        case 'T': if (!gl_parse_i64(optarg, 100, 600000, &v)) goto bad; opt.timeout_ms = (int)v; break;
        case 'D': opt.save_dir = optarg; break;
        case 'v': opt.verbose = true; break;
        case 'r': do_replay = true; break;
        case 'h': usage(stdout); return 0;
        default: goto bad;
        }
    }
    if (!opt.port) goto bad;
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (do_replay) {
        if (optind >= argc) goto bad;
        return replay(argv + optind, argc - optind);
    }
    if (optind < argc) goto bad;
    {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s", regions_arg);
        for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t && opt.n_region_names < MAX_REGION_NAMES;
             t = strtok_r(NULL, ",", &save))
            snprintf(opt.region_names[opt.n_region_names++], sizeof opt.region_names[0], "%s", t);
    }
    if (opt.ids_file && !load_ids(opt.ids_file)) return EXIT_USAGE;
    if (opt.token_file && !load_tokens(opt.token_file)) return EXIT_USAGE;
    if (opt.key_file && !load_key(opt.key_file)) return EXIT_USAGE;
    if (opt.known_only && !n_known_codes) {
        fputs("http_fuzz: --known-regions-only needs --ids-file with ids of the configured regions\n", stderr);
        return EXIT_USAGE;
    }
    for (int k = 0; k < K_COUNT; k++) pthread_mutex_init(&dyn[k].mu, NULL);

    char why[256];
    if (!ledgerd_alive(why, sizeof why)) {
        printf("http_fuzz: ledgerd is not reachable on 127.0.0.1:%d at the start: %s\n", opt.port, why);
        return EXIT_DEAD;
    }
    printf("http_fuzz: 127.0.0.1:%d, seed %" PRIu64 ", %d connections, up to %ld requests in %.0f s; "
           "%d tokens, signing key %s; ids: %zu accounts, %zu transfers, %zu holds, %zu mandates, %zu other, %zu references; "
           "region codes in use:",
           opt.port, opt.seed, opt.conns, opt.requests, opt.seconds, n_tokens, sign_key ? "yes" : "no", ids[K_ACCOUNT].n,
           ids[K_TRANSFER].n, ids[K_PENDING].n, ids[K_MANDATE].n, ids[K_ANY].n, n_refs);
    for (int i = 0; i < n_known_codes; i++) printf(" %u", known_codes[i]);
    printf("%s\n", opt.known_only ? " (known-regions-only: no other region byte, no nil/max/v4 ids)" : "");

    conn *cs = calloc((size_t)opt.conns, sizeof *cs);
    if (!cs) die_oom();
    rng master = {opt.seed};
    t_start = now_ms();
    t_end = t_start + (int64_t)(opt.seconds * 1000);
    for (int i = 0; i < opt.conns; i++) {
        cs[i].index = i;
        cs[i].fd = -1;
        cs[i].r.s = r64(&master); /* distinct streams, not shifted copies of one */
        if (pthread_create(&cs[i].th, NULL, conn_main, &cs[i]) != 0) {
            fputs("http_fuzz: cannot start a thread\n", stderr);
            return EXIT_DEAD;
        }
    }
    for (int i = 0; i < opt.conns; i++) pthread_join(cs[i].th, NULL);
    int64_t t_done = now_ms();
    if (!atomic_load(&dead_flag) && !ledgerd_alive(why, sizeof why)) {
        snprintf(dead_detail, sizeof dead_detail, "at the end: %s", why);
        atomic_store(&dead_flag, true);
    }

    /* summary */
    double secs = (double)(t_done - t_start) / 1000.0;
    long total = atomic_load(&sent);
    printf("\nrequests sent: %ld in %.1f s (%.0f req/s), %d connections, seed %" PRIu64 "\n", total, secs,
           secs > 0 ? (double)total / secs : 0.0, opt.conns, opt.seed);
    printf("status counts:");
    for (int s = 100; s < 600; s++)
        if (atomic_load(&hist[s])) printf(" %d:%ld", s, atomic_load(&hist[s]));
    printf("\n");
    for (int o = 0; o < O_COUNT; o++)
        if (atomic_load(&outcomes[o])) printf("%s: %ld\n", outcome_names[o], atomic_load(&outcomes[o]));
    printf("%-34s %7s %6s %6s %6s %6s\n", "route", "sent", "2xx", "4xx", "5xx", "none");
    for (int r = 0; r < R_COUNT; r++)
        printf("%-34s %7ld %6ld %6ld %6ld %6ld\n", routes[r].name, atomic_load(&route_total[r]), atomic_load(&route_2xx[r]),
               atomic_load(&route_4xx[r]), atomic_load(&route_5xx[r]), atomic_load(&route_none[r]));
    int bytes = 0;
    for (int i = 0; i < 256; i++) bytes += atomic_load(&byte_seen[i]);
    printf("ids sent: %d/256 region-byte values, nil %ld, max %ld, v4 %ld, malformed %ld\n", bytes,
           atomic_load(&special_seen[0]), atomic_load(&special_seen[1]), atomic_load(&special_seen[2]),
           atomic_load(&special_seen[3]));
    long k5 = atomic_load(&n_5xx), kh = atomic_load(&n_hangs);
    printf("5xx other than 503: %ld; hangs: %ld; ledgerd: %s\n", k5, kh, atomic_load(&dead_flag) ? "DIED" : "alive");
    int rc = 0;
    if (atomic_load(&dead_flag)) {
        printf("\nCRASH: ledgerd died (%s). The last requests of each connection, oldest first (the culprit is among "
               "those with NO ANSWER):\n",
               dead_detail);
        for (int i = 0; i < opt.conns; i++) {
            conn *c = &cs[i];
            for (unsigned j = 0; j < HISTORY; j++) {
                hist_entry *h = &c->histo[(c->hist_next + j) % HISTORY];
                if (!h->has_raw) continue;
                char st[48];
                if (h->status >= 100) snprintf(st, sizeof st, "answered %d", h->status);
                else snprintf(st, sizeof st, "%s", h->status == -1 ? "NO ANSWER (in flight)" : h->status == -3 ? "NO ANSWER (closed)"
                                                   : h->status == -4 ? "NO ANSWER (timeout)" : h->status == -5 ? "NO ANSWER (abandoned by us)" : "NO ANSWER (garbled)");
                printf("- connection %d, %s: %s\n", i, st, h->desc);
                if (h->status >= 100) continue;
                printf("    ");
                show_bytes(stdout, h->raw.p, h->raw.n, SHOWN_BYTES);
                if (h->status < 0) save_request(c, "crash", (long)j, h->raw.p, h->raw.n);
            }
        }
        rc = EXIT_DEAD;
    } else if (k5 || kh) rc = EXIT_FINDING;
    for (int i = 0; i < opt.conns; i++) {
        conn *c = &cs[i];
        b_free(&c->method); b_free(&c->target); b_free(&c->version); b_free(&c->headers); b_free(&c->body);
        b_free(&c->raw); b_free(&c->resp);
        for (int j = 0; j < HISTORY; j++) b_free(&c->histo[j].raw);
    }
    free(cs);
    return rc;
bad:
    usage(stderr);
    return EXIT_USAGE;
}
