/*
 * jwt.c — JWT verification and signing; the rules are in jwt.h.
 *
 * Reading order: gl_jwt_verify() calls decode_token, check_header,
 * check_signature and check_claims, each of which either passes or returns
 * the reason the token is refused. Key loading and signing come after.
 * Only OpenSSL 3 EVP/PEM/ECDSA_SIG calls are used (nothing deprecated), and
 * every OpenSSL failure path clears the thread's error queue so a refused
 * token cannot leave stale errors for the next OpenSSL user on that thread.
 */
#include "jwt.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/pem.h>

#define HS256_MAC_BYTES 32
#define ES256_HALF_BYTES 32
#define ES256_SIG_BYTES 64
/* SEQUENCE { INTEGER r, INTEGER s }, each at most 33 bytes (a 0x00 before a high bit). */
#define ES256_DER_BYTES_MAX 72
#define GROUP_NAME_MAX 64
#define PEM_BEGIN "-----BEGIN"

static const char header_es256[] = "{\"alg\":\"ES256\",\"typ\":\"JWT\"}";
static const char header_hs256[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

static const char *const reason_names[] = {
    [GL_JWT_OK] = "ok",
    [GL_JWT_TOKEN_MALFORMED] = "token_malformed",
    [GL_JWT_TOKEN_TOO_LONG] = "token_too_long",
    [GL_JWT_TOKEN_ALGORITHM_REJECTED] = "token_algorithm_rejected",
    [GL_JWT_TOKEN_SIGNATURE_INVALID] = "token_signature_invalid",
    [GL_JWT_TOKEN_EXPIRED] = "token_expired",
    [GL_JWT_TOKEN_NOT_YET_VALID] = "token_not_yet_valid",
    [GL_JWT_TOKEN_LIFETIME_INVALID] = "token_lifetime_invalid",
    [GL_JWT_TOKEN_ISSUER_INVALID] = "token_issuer_invalid",
    [GL_JWT_TOKEN_AUDIENCE_INVALID] = "token_audience_invalid",
    [GL_JWT_TOKEN_CLAIMS_INVALID] = "token_claims_invalid",
    [GL_JWT_INTERNAL] = "internal_error",
};

static const char *const scope_names[GL_SCOPE_COUNT] = {
    [GL_SCOPE_ACCOUNTS_READ] = "accounts:read",
    [GL_SCOPE_ACCOUNTS_WRITE] = "accounts:write",
    [GL_SCOPE_TRANSFERS_WRITE] = "transfers:write",
    [GL_SCOPE_TRANSFERS_READ] = "transfers:read",
    [GL_SCOPE_EVENTS_READ] = "events:read",
    [GL_SCOPE_MANDATES_WRITE] = "mandates:write",
    [GL_SCOPE_RECONCILIATION_RUN] = "reconciliation:run",
    [GL_SCOPE_REPORTS_READ] = "reports:read",
    [GL_SCOPE_ACCOUNTS_ISSUE] = "accounts:issue",
    [GL_SCOPE_WEBHOOKS_WRITE] = "webhooks:write",
    [GL_SCOPE_ADMIN] = "admin",
};

_Static_assert(sizeof reason_names / sizeof reason_names[0] == GL_JWT_TOKEN_LIFETIME_INVALID + 1,
               "every reason has a name");
_Static_assert(GL_SCOPE_COUNT <= 32, "scopes fit the uint32_t bitmask");

/* ---- names ---- */

const char *gl_jwt_reason_name(gl_jwt_reason reason) {
    if ((unsigned)reason > (unsigned)GL_JWT_TOKEN_LIFETIME_INVALID) return "unknown";
    return reason_names[reason];
}

const char *gl_jwt_scope_name(gl_jwt_scope scope) {
    if ((unsigned)scope >= (unsigned)GL_SCOPE_COUNT) return NULL;
    return scope_names[scope];
}

bool gl_jwt_scope_from_name(const char *name, size_t name_len, gl_jwt_scope *out) {
    if (!name || !out) return false;
    for (int i = 0; i < GL_SCOPE_COUNT; i++) {
        if (strlen(scope_names[i]) == name_len && memcmp(scope_names[i], name, name_len) == 0) {
            *out = (gl_jwt_scope)i;
            return true;
        }
    }
    return false;
}

bool gl_jwt_has_scope(const gl_jwt_claims *claims, gl_jwt_scope scope) {
    if (!claims || (unsigned)scope >= (unsigned)GL_SCOPE_COUNT) return false;
    return (claims->scopes & (UINT32_C(1) << scope)) != 0;
}

static const char *alg_name(gl_jwt_alg alg) {
    switch (alg) {
    case GL_JWT_ES256: return "ES256";
    case GL_JWT_HS256: return "HS256";
    default: return "";
    }
}

/* Exact, case-sensitive: "es256" is as foreign as "none". */
static bool parse_alg(const char *name, gl_jwt_alg *out) {
    if (!name) return false;
    if (strcmp(name, "ES256") == 0) {
        *out = GL_JWT_ES256;
        return true;
    }
    if (strcmp(name, "HS256") == 0) {
        *out = GL_JWT_HS256;
        return true;
    }
    return false;
}

/* ---- small helpers ---- */

static gl_jwt_reason reject(gl_error *err, gl_jwt_reason reason, const char *message) {
    gl_error_set(err, reason == GL_JWT_INTERNAL ? GL_ERR_INTERNAL : GL_ERR_INVALID, "%s", message);
    return reason;
}

/* Secrets must not linger in freed heap memory. */
static void wipe_free(void *p, size_t n) {
    if (!p) return;
    OPENSSL_cleanse(p, n);
    free(p);
}

/* The JSON string's bytes equal want's (length first: no prefix matches). */
static bool json_string_is(const json_t *j, const char *want) {
    if (!json_is_string(j)) return false;
    size_t n = strlen(want);
    return json_string_length(j) == n && memcmp(json_string_value(j), want, n) == 0;
}

/* ---- strict base64url (RFC 4648 §5, no padding) ---- */

static const char b64url_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* The 6-bit value of c, or -1 outside the alphabet ('=', '+', '/', spaces...). */
static int b64url_value(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

/* Bytes that n characters decode to; n % 4 == 1 encodes nothing and is refused by the decoder. */
static size_t b64url_decoded_len(size_t n) {
    return n / 4 * 3 + (n % 4 == 0 ? 0 : n % 4 - 1);
}

static size_t b64url_encoded_len(size_t n) {
    return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

/*
 * out must hold b64url_decoded_len(n) bytes. Leftover bits after the last
 * full byte must be zero: otherwise "QQ" and "QR" would both decode to "A",
 * and a token would have several spellings (and several cache keys).
 */
static bool b64url_decode(const char *in, size_t n, unsigned char *out, size_t *out_len) {
    if (n % 4 == 1) return false;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0) return false;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (UINT32_C(1) << bits) - 1;
        }
    }
    if (acc != 0) return false;
    *out_len = o;
    return true;
}

/* out must hold b64url_encoded_len(n) characters; no NUL is written. */
static void b64url_encode(const unsigned char *in, size_t n, char *out) {
    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = b64url_alphabet[(v >> 18) & 63];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
        out[o++] = b64url_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64url_alphabet[(v >> 18) & 63];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = b64url_alphabet[(v >> 18) & 63];
        out[o++] = b64url_alphabet[(v >> 12) & 63];
        out[o++] = b64url_alphabet[(v >> 6) & 63];
    }
}

/* ---- ES256 signature encodings: JWS uses raw R||S, OpenSSL wants DER ---- */

static bool es256_raw_to_der(const unsigned char *raw, unsigned char *der, size_t der_cap, size_t *der_len) {
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, ES256_HALF_BYTES, NULL);
    BIGNUM *s = BN_bin2bn(raw + ES256_HALF_BYTES, ES256_HALF_BYTES, NULL);
    if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        ERR_clear_error();
        return false;
    }
    /* sig owns r and s from here. */
    int n = i2d_ECDSA_SIG(sig, NULL);
    bool ok = n > 0 && (size_t)n <= der_cap;
    if (ok) {
        unsigned char *p = der;
        ok = i2d_ECDSA_SIG(sig, &p) == n;
        *der_len = (size_t)n;
    }
    ECDSA_SIG_free(sig);
    if (!ok) ERR_clear_error();
    return ok;
}

static bool es256_der_to_raw(const unsigned char *der, size_t der_len, unsigned char *raw) {
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    bool ok = sig != NULL;
    if (ok) {
        const BIGNUM *r = NULL;
        const BIGNUM *s = NULL;
        ECDSA_SIG_get0(sig, &r, &s);
        ok = BN_bn2binpad(r, raw, ES256_HALF_BYTES) == ES256_HALF_BYTES &&
             BN_bn2binpad(s, raw + ES256_HALF_BYTES, ES256_HALF_BYTES) == ES256_HALF_BYTES;
    }
    ECDSA_SIG_free(sig);
    if (!ok) ERR_clear_error();
    return ok;
}

/* ---- primitives ---- */

static bool hmac_sha256(EVP_MAC *mac, const unsigned char *key, size_t key_len, const unsigned char *data, size_t len,
                        unsigned char *out) {
    char digest[] = "SHA256"; /* OSSL_PARAM wants a mutable string */
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_end(),
    };
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
    size_t out_len = 0;
    bool ok = ctx && EVP_MAC_init(ctx, key, key_len, params) == 1 && EVP_MAC_update(ctx, data, len) == 1 &&
              EVP_MAC_final(ctx, out, &out_len, HS256_MAC_BYTES) == 1 && out_len == HS256_MAC_BYTES;
    EVP_MAC_CTX_free(ctx);
    if (!ok) ERR_clear_error();
    return ok;
}

/* 1 valid, 0 invalid, -1 OpenSSL could not run the check. */
static int es256_verify_der(EVP_PKEY *key, const unsigned char *der, size_t der_len, const unsigned char *data,
                            size_t len) {
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int rc = -1;
    if (md && EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, key, NULL) == 1)
        rc = EVP_DigestVerify(md, der, der_len, data, len) == 1 ? 1 : 0;
    EVP_MD_CTX_free(md);
    ERR_clear_error(); /* a bad signature also queues errors */
    return rc;
}

/* ---- verification ---- */

/* The three segments as received, and their decoded bytes (one allocation). */
typedef struct {
    const char *signing_input; /* "header.payload", what the signature covers */
    size_t signing_input_len;
    unsigned char *buf;
    unsigned char *header, *payload, *sig;
    size_t header_len, payload_len, sig_len;
} decoded_token;

/* Splits at exactly two dots; seg_len[i] are the encoded lengths. */
static bool split_token(const char *token, size_t len, const char **seg, size_t *seg_len) {
    const char *end = token + len;
    const char *start = token;
    for (int i = 0; i < 2; i++) {
        const char *dot = memchr(start, '.', (size_t)(end - start));
        if (!dot) return false;
        seg[i] = start;
        seg_len[i] = (size_t)(dot - start);
        start = dot + 1;
    }
    if (memchr(start, '.', (size_t)(end - start))) return false;
    seg[2] = start;
    seg_len[2] = (size_t)(end - start);
    return true;
}

static gl_jwt_reason decode_token(const char *token, size_t len, decoded_token *t, gl_error *err) {
    memset(t, 0, sizeof *t);
    const char *seg[3];
    size_t seg_len[3];
    if (!split_token(token, len, seg, seg_len))
        return reject(err, GL_JWT_TOKEN_MALFORMED, "token is not three dot-separated segments");
    size_t cap[3];
    for (int i = 0; i < 3; i++) {
        if (seg_len[i] % 4 == 1) return reject(err, GL_JWT_TOKEN_MALFORMED, "token is not valid base64url");
        cap[i] = b64url_decoded_len(seg_len[i]);
    }
    /* +1: malloc(0) may return NULL for an all-empty token. */
    t->buf = malloc(cap[0] + cap[1] + cap[2] + 1);
    if (!t->buf) return reject(err, GL_JWT_INTERNAL, "out of memory");
    t->header = t->buf;
    t->payload = t->header + cap[0];
    t->sig = t->payload + cap[1];
    if (!b64url_decode(seg[0], seg_len[0], t->header, &t->header_len) ||
        !b64url_decode(seg[1], seg_len[1], t->payload, &t->payload_len) ||
        !b64url_decode(seg[2], seg_len[2], t->sig, &t->sig_len))
        return reject(err, GL_JWT_TOKEN_MALFORMED, "token is not valid base64url");
    t->signing_input = token;
    t->signing_input_len = seg_len[0] + 1 + seg_len[1];
    return GL_JWT_OK;
}

/* A JSON object, duplicate keys refused (two parsers must never disagree on a claim). */
static gl_jwt_reason parse_object(const unsigned char *data, size_t len, const char *what, json_t **out,
                                  gl_error *err) {
    json_error_t jerr;
    json_t *j = json_loadb((const char *)data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        if (json_error_code(&jerr) == json_error_out_of_memory) return reject(err, GL_JWT_INTERNAL, "out of memory");
        reject(err, GL_JWT_TOKEN_MALFORMED, "token part is not valid JSON");
        /* Not jerr.text: it quotes the input, and token bytes must not reach the logs. */
        gl_error_detail(err, "%s: invalid JSON at byte %d", what, jerr.position);
        return GL_JWT_TOKEN_MALFORMED;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        reject(err, GL_JWT_TOKEN_MALFORMED, "token part is not a JSON object");
        gl_error_detail(err, "%s", what);
        return GL_JWT_TOKEN_MALFORMED;
    }
    *out = j;
    return GL_JWT_OK;
}

static gl_jwt_reason check_header_fields(const gl_jwt_verifier *v, const json_t *h, gl_error *err) {
    if (!json_string_is(json_object_get(h, "alg"), alg_name(v->alg))) {
        reject(err, GL_JWT_TOKEN_ALGORITHM_REJECTED, "token algorithm is not the configured one");
        gl_error_detail(err, "only %s is accepted", alg_name(v->alg));
        return GL_JWT_TOKEN_ALGORITHM_REJECTED;
    }
    const json_t *typ = json_object_get(h, "typ");
    if (typ && !json_string_is(typ, "JWT"))
        return reject(err, GL_JWT_TOKEN_MALFORMED, "token header typ is not \"JWT\"");
    if (json_object_get(h, "crit"))
        return reject(err, GL_JWT_TOKEN_MALFORMED, "token header has critical extensions (crit)");
    return GL_JWT_OK;
}

static gl_jwt_reason check_header(const gl_jwt_verifier *v, const decoded_token *t, gl_error *err) {
    json_t *h = NULL;
    gl_jwt_reason r = parse_object(t->header, t->header_len, "header", &h, err);
    if (r != GL_JWT_OK) return r;
    r = check_header_fields(v, h, err);
    json_decref(h);
    return r;
}

static gl_jwt_reason check_hs256(const gl_jwt_verifier *v, const decoded_token *t, gl_error *err) {
    unsigned char mac[HS256_MAC_BYTES];
    if (!hmac_sha256(v->hmac, v->secret, v->secret_len, (const unsigned char *)t->signing_input, t->signing_input_len,
                     mac))
        return reject(err, GL_JWT_INTERNAL, "HMAC-SHA-256 failed");
    /* Constant time: a byte-by-byte early exit would let a client guess the MAC a byte at a time. */
    bool ok = t->sig_len == sizeof mac && CRYPTO_memcmp(mac, t->sig, sizeof mac) == 0;
    OPENSSL_cleanse(mac, sizeof mac);
    return ok ? GL_JWT_OK : reject(err, GL_JWT_TOKEN_SIGNATURE_INVALID, "token signature is invalid");
}

static gl_jwt_reason check_es256(const gl_jwt_verifier *v, const decoded_token *t, gl_error *err) {
    if (t->sig_len != ES256_SIG_BYTES) {
        reject(err, GL_JWT_TOKEN_SIGNATURE_INVALID, "token signature is invalid");
        gl_error_detail(err, "an ES256 signature is 64 bytes (R||S), this one is %zu", t->sig_len);
        return GL_JWT_TOKEN_SIGNATURE_INVALID;
    }
    unsigned char der[ES256_DER_BYTES_MAX];
    size_t der_len = 0;
    if (!es256_raw_to_der(t->sig, der, sizeof der, &der_len))
        return reject(err, GL_JWT_INTERNAL, "cannot encode the ECDSA signature");
    int rc =
        es256_verify_der(v->public_key, der, der_len, (const unsigned char *)t->signing_input, t->signing_input_len);
    if (rc < 0) return reject(err, GL_JWT_INTERNAL, "ECDSA verification could not run");
    return rc == 1 ? GL_JWT_OK : reject(err, GL_JWT_TOKEN_SIGNATURE_INVALID, "token signature is invalid");
}

static gl_jwt_reason check_signature(const gl_jwt_verifier *v, const decoded_token *t, gl_error *err) {
    return v->alg == GL_JWT_HS256 ? check_hs256(v, t, err) : check_es256(v, t, err);
}

/* 1 present and valid, 0 absent, -1 present but not an integer time. */
static int read_time(const json_t *claims, const char *name, int64_t *out) {
    const json_t *j = json_object_get(claims, name);
    if (!j) return 0;
    if (!json_is_integer(j)) return -1; /* 1.0, 1e9, "1", true */
    json_int_t n = json_integer_value(j);
    if (n < 0 || n > GL_JWT_TIME_S_MAX) return -1;
    *out = (int64_t)n;
    return 1;
}

static gl_jwt_reason read_times(const json_t *p, gl_jwt_claims *c, gl_error *err) {
    int exp = read_time(p, "exp", &c->exp_s);
    if (exp == 0) return reject(err, GL_JWT_TOKEN_CLAIMS_INVALID, "token has no exp claim");
    int nbf = read_time(p, "nbf", &c->nbf_s);
    int iat = read_time(p, "iat", &c->iat_s);
    if (exp < 0 || nbf < 0 || iat < 0) {
        reject(err, GL_JWT_TOKEN_CLAIMS_INVALID, "token time claim is not an integer time");
        gl_error_detail(err, "exp, nbf and iat must be JSON integers, seconds since 1970 (before year 10000)");
        return GL_JWT_TOKEN_CLAIMS_INVALID;
    }
    c->has_nbf = nbf == 1;
    c->has_iat = iat == 1;
    return GL_JWT_OK;
}

static bool sub_char_ok(unsigned char ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           (ch != '\0' && strchr("._:@/-", ch) != NULL);
}

static gl_jwt_reason read_sub(const json_t *p, gl_jwt_claims *c, gl_error *err) {
    const json_t *j = json_object_get(p, "sub");
    size_t n = json_is_string(j) ? json_string_length(j) : 0;
    bool ok = n >= 1 && n <= GL_JWT_SUB_MAX;
    const char *s = ok ? json_string_value(j) : "";
    for (size_t i = 0; ok && i < n; i++) ok = sub_char_ok((unsigned char)s[i]);
    if (!ok) {
        reject(err, GL_JWT_TOKEN_CLAIMS_INVALID, "token sub claim is missing or invalid");
        gl_error_detail(err, "sub must be 1..%d characters of [A-Za-z0-9._:@/-]", GL_JWT_SUB_MAX);
        return GL_JWT_TOKEN_CLAIMS_INVALID;
    }
    memcpy(c->sub, s, n);
    c->sub[n] = '\0';
    return GL_JWT_OK;
}

/* Space-separated names; runs of spaces are tolerated, unknown names ignored (other services' scopes). */
static gl_jwt_reason read_scope(const json_t *p, gl_jwt_claims *c, gl_error *err) {
    const json_t *j = json_object_get(p, "scope");
    if (!j) return GL_JWT_OK;
    if (!json_is_string(j) || json_string_length(j) > GL_JWT_SCOPE_BYTES_MAX) {
        reject(err, GL_JWT_TOKEN_CLAIMS_INVALID, "token scope claim is invalid");
        gl_error_detail(err, "scope must be a string of at most %d bytes", GL_JWT_SCOPE_BYTES_MAX);
        return GL_JWT_TOKEN_CLAIMS_INVALID;
    }
    const char *s = json_string_value(j);
    size_t n = json_string_length(j);
    size_t i = 0;
    while (i < n) {
        if (s[i] == ' ') {
            i++;
            continue;
        }
        size_t start = i;
        while (i < n && s[i] != ' ') i++;
        gl_jwt_scope scope;
        if (gl_jwt_scope_from_name(s + start, i - start, &scope)) c->scopes |= UINT32_C(1) << scope;
    }
    return GL_JWT_OK;
}

/* The region-name rule of ledger.conf (regions.c): [a-z0-9_-]{1,16}. */
static bool region_name_ok(const json_t *j) {
    if (!json_is_string(j)) return false;
    size_t n = json_string_length(j);
    const char *s = json_string_value(j);
    if (n < 1 || n > GL_JWT_REGION_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-')) return false;
    }
    return true;
}

static gl_jwt_reason read_regions(const json_t *p, gl_jwt_claims *c, gl_error *err) {
    const json_t *j = json_object_get(p, "regions");
    if (!j) return GL_JWT_OK;
    bool ok = json_is_array(j) && json_array_size(j) <= GL_JWT_REGIONS_MAX;
    for (size_t i = 0; ok && i < json_array_size(j); i++) ok = region_name_ok(json_array_get(j, i));
    if (!ok) {
        reject(err, GL_JWT_TOKEN_CLAIMS_INVALID, "token regions claim is invalid");
        gl_error_detail(err, "regions must be an array of at most %d names of [a-z0-9_-]{1,%d}", GL_JWT_REGIONS_MAX,
                        GL_JWT_REGION_MAX);
        return GL_JWT_TOKEN_CLAIMS_INVALID;
    }
    c->has_regions = true;
    c->n_regions = json_array_size(j);
    for (size_t i = 0; i < c->n_regions; i++) {
        const json_t *r = json_array_get(j, i);
        size_t n = json_string_length(r); /* <= GL_JWT_REGION_MAX, checked above */
        memcpy(c->regions[i], json_string_value(r), n);
        c->regions[i][n] = '\0';
    }
    return GL_JWT_OK;
}

static gl_jwt_reason check_issuer(const gl_jwt_verifier *v, const json_t *p, gl_error *err) {
    if (json_string_is(json_object_get(p, "iss"), v->issuer)) return GL_JWT_OK;
    return reject(err, GL_JWT_TOKEN_ISSUER_INVALID, "token issuer is not the configured one");
}

static gl_jwt_reason check_audience(const gl_jwt_verifier *v, const json_t *p, gl_error *err) {
    const json_t *aud = json_object_get(p, "aud");
    if (json_string_is(aud, v->audience)) return GL_JWT_OK;
    if (!json_is_array(aud)) return reject(err, GL_JWT_TOKEN_AUDIENCE_INVALID, "token audience is not this service");
    size_t n = json_array_size(aud);
    bool ok = n <= GL_JWT_AUD_ARRAY_MAX;
    bool found = false;
    for (size_t i = 0; ok && i < n; i++) {
        const json_t *a = json_array_get(aud, i);
        ok = json_is_string(a);
        found = found || json_string_is(a, v->audience);
    }
    if (!ok) {
        reject(err, GL_JWT_TOKEN_CLAIMS_INVALID, "token aud claim is invalid");
        gl_error_detail(err, "aud must be a string or an array of at most %d strings", GL_JWT_AUD_ARRAY_MAX);
        return GL_JWT_TOKEN_CLAIMS_INVALID;
    }
    return found ? GL_JWT_OK : reject(err, GL_JWT_TOKEN_AUDIENCE_INVALID, "token audience is not this service");
}

/* RFC 7519 §4.1.4: valid strictly before exp; the skew forgives clocks that disagree. */
static gl_jwt_reason check_times(const gl_jwt_verifier *v, const gl_jwt_claims *c, int64_t now_s, gl_error *err) {
    int64_t skew_s = v->clock_skew_s;
    if (now_s >= c->exp_s + skew_s) {
        reject(err, GL_JWT_TOKEN_EXPIRED, "token has expired");
        gl_error_detail(err, "exp is %" PRId64 " s before now (clock skew allowed: %" PRId64 " s)", now_s - c->exp_s,
                        skew_s);
        return GL_JWT_TOKEN_EXPIRED;
    }
    if (c->has_nbf && c->nbf_s > now_s + skew_s) {
        reject(err, GL_JWT_TOKEN_NOT_YET_VALID, "token is not valid yet");
        gl_error_detail(err, "nbf is %" PRId64 " s after now", c->nbf_s - now_s);
        return GL_JWT_TOKEN_NOT_YET_VALID;
    }
    if (c->has_iat && c->iat_s > now_s + skew_s) {
        reject(err, GL_JWT_TOKEN_NOT_YET_VALID, "token was issued in the future");
        gl_error_detail(err, "iat is %" PRId64 " s after now", c->iat_s - now_s);
        return GL_JWT_TOKEN_NOT_YET_VALID;
    }
    if (v->max_lifetime_s > 0 && (!c->has_iat || c->exp_s - c->iat_s > v->max_lifetime_s)) {
        reject(err, GL_JWT_TOKEN_LIFETIME_INVALID, "token lives too long");
        gl_error_detail(err, "iat is required and exp - iat must be at most %" PRId64 " s", v->max_lifetime_s);
        return GL_JWT_TOKEN_LIFETIME_INVALID;
    }
    return GL_JWT_OK;
}

/* Types and shapes first (a bad token is claims_invalid whatever else), then iss, aud, times. */
static gl_jwt_reason check_claims(const gl_jwt_verifier *v, const decoded_token *t, int64_t now_s, gl_jwt_claims *c,
                                  gl_error *err) {
    json_t *p = NULL;
    gl_jwt_reason r = parse_object(t->payload, t->payload_len, "claims", &p, err);
    if (r != GL_JWT_OK) return r;
    r = read_times(p, c, err);
    if (r == GL_JWT_OK) r = read_sub(p, c, err);
    if (r == GL_JWT_OK) r = read_scope(p, c, err);
    if (r == GL_JWT_OK) r = read_regions(p, c, err);
    if (r == GL_JWT_OK) r = check_issuer(v, p, err);
    if (r == GL_JWT_OK) r = check_audience(v, p, err);
    if (r == GL_JWT_OK) r = check_times(v, c, now_s, err);
    json_decref(p);
    return r;
}

gl_jwt_reason gl_jwt_verify(const gl_jwt_verifier *v, const char *token, time_t now, gl_jwt_claims *out,
                            gl_error *err) {
    gl_error_clear(err);
    if (out) memset(out, 0, sizeof *out);
    if (!v || v->alg == GL_JWT_ALG_NONE || !out) return reject(err, GL_JWT_INTERNAL, "JWT verifier is not initialized");
    int64_t now_s = (int64_t)now;
    if (now_s < 0 || now_s > GL_JWT_TIME_S_MAX) return reject(err, GL_JWT_INTERNAL, "clock is out of range");
    if (!token) return reject(err, GL_JWT_TOKEN_MALFORMED, "token is missing");
    /* strnlen: never read past the limit, whatever the caller passed. */
    size_t len = strnlen(token, v->max_token_bytes + 1);
    if (len > v->max_token_bytes) {
        reject(err, GL_JWT_TOKEN_TOO_LONG, "token is too long");
        gl_error_detail(err, "the limit is %zu bytes", v->max_token_bytes);
        return GL_JWT_TOKEN_TOO_LONG;
    }
    decoded_token t;
    gl_jwt_reason r = decode_token(token, len, &t, err);
    if (r == GL_JWT_OK) r = check_header(v, &t, err);
    if (r == GL_JWT_OK) r = check_signature(v, &t, err);
    gl_jwt_claims claims;
    memset(&claims, 0, sizeof claims);
    if (r == GL_JWT_OK) r = check_claims(v, &t, now_s, &claims, err);
    free(t.buf);
    if (r == GL_JWT_OK) *out = claims; /* all or nothing: no half-checked claims reach the caller */
    return r;
}

/* ---- configuration and keys ---- */

void gl_jwt_config_init(gl_jwt_config *cfg) {
    if (!cfg) return;
    memset(cfg, 0, sizeof *cfg);
    cfg->clock_skew_s = GL_JWT_CLOCK_SKEW_S_DEFAULT;
    cfg->max_token_bytes = GL_JWT_MAX_TOKEN_BYTES_DEFAULT;
}

/* Printable ASCII only: these strings end up in logs and error messages. */
static bool config_string_ok(const char *s, size_t max) {
    if (!s) return false;
    size_t n = strnlen(s, max + 1);
    if (n < 1 || n > max) return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e) return false;
    }
    return true;
}

static bool check_config(const gl_jwt_config *cfg, gl_jwt_alg *alg, gl_error *err) {
    if (!cfg) {
        gl_error_set(err, GL_ERR_CONFIG, "JWT configuration is missing");
        return false;
    }
    if (!parse_alg(cfg->alg, alg)) {
        gl_error_set(err, GL_ERR_CONFIG, "JWT algorithm \"%.32s\" is not supported", cfg->alg ? cfg->alg : "");
        gl_error_hint(err, "use \"ES256\" (recommended) or \"HS256\", spelled exactly so");
        return false;
    }
    if (!config_string_ok(cfg->issuer, GL_JWT_ISSUER_MAX) || !config_string_ok(cfg->audience, GL_JWT_AUDIENCE_MAX)) {
        gl_error_set(err, GL_ERR_CONFIG, "JWT issuer and audience must be set, in printable ASCII");
        gl_error_detail(err, "each is 1..%d characters from 0x20..0x7e", GL_JWT_ISSUER_MAX);
        return false;
    }
    if (cfg->clock_skew_s < 0 || cfg->clock_skew_s > GL_JWT_CLOCK_SKEW_S_MAX) {
        gl_error_set(err, GL_ERR_CONFIG, "JWT clock skew %d s is out of range", cfg->clock_skew_s);
        gl_error_detail(err, "allowed: 0..%d s", GL_JWT_CLOCK_SKEW_S_MAX);
        return false;
    }
    if (cfg->max_lifetime_s < 0 || cfg->max_lifetime_s > GL_JWT_LIFETIME_S_MAX) {
        gl_error_set(err, GL_ERR_CONFIG, "JWT max token lifetime %d s is out of range", cfg->max_lifetime_s);
        gl_error_detail(err, "allowed: 0 (no limit)..%d s", GL_JWT_LIFETIME_S_MAX);
        return false;
    }
    if (cfg->max_token_bytes < GL_JWT_MAX_TOKEN_BYTES_MIN || cfg->max_token_bytes > GL_JWT_MAX_TOKEN_BYTES_LIMIT) {
        gl_error_set(err, GL_ERR_CONFIG, "JWT max token length %zu is out of range", cfg->max_token_bytes);
        gl_error_detail(err, "allowed: %d..%d bytes", GL_JWT_MAX_TOKEN_BYTES_MIN, GL_JWT_MAX_TOKEN_BYTES_LIMIT);
        return false;
    }
    return true;
}

static bool check_secret(const unsigned char *key, size_t len, gl_error *err) {
    if (len < GL_JWT_SECRET_BYTES_MIN || len > GL_JWT_SECRET_BYTES_MAX) {
        gl_error_set(err, GL_ERR_CONFIG, "HS256 secret is %zu bytes", len);
        gl_error_detail(err, "it must be %d..%d bytes", GL_JWT_SECRET_BYTES_MIN, GL_JWT_SECRET_BYTES_MAX);
        gl_error_hint(err, "generate one with: openssl rand -base64 48");
        return false;
    }
    /* A PEM key as HMAC secret is exactly what the algorithm-confusion attack needs. */
    if (memmem(key, len, PEM_BEGIN, strlen(PEM_BEGIN))) {
        gl_error_set(err, GL_ERR_CONFIG, "HS256 secret is a PEM key");
        gl_error_hint(err, "an HS256 secret is random bytes; PEM keys go with ES256");
        return false;
    }
    return true;
}

/* Refuses RSA, other curves, and explicit curve parameters (which hide the curve's identity). */
static bool require_p256(const EVP_PKEY *key, gl_error *err) {
    if (!EVP_PKEY_is_a(key, "EC")) {
        const char *type = EVP_PKEY_get0_type_name(key);
        gl_error_set(err, GL_ERR_CONFIG, "ES256 key is %.32s, not EC P-256", type ? type : "of unknown type");
        return false;
    }
    char group[GROUP_NAME_MAX] = "";
    char encoding[GROUP_NAME_MAX] = "";
    size_t n = 0;
    bool named = EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING, encoding, sizeof encoding, &n) == 1 &&
                 strcmp(encoding, OSSL_PKEY_EC_ENCODING_GROUP) == 0;
    bool p256 = named && EVP_PKEY_get_group_name(key, group, sizeof group, &n) == 1 &&
                (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0);
    ERR_clear_error();
    if (!p256) {
        gl_error_set(err, GL_ERR_CONFIG, "ES256 key is on curve \"%.32s\", not P-256", named ? group : "explicit");
        return false;
    }
    return true;
}

/* Never prompt on a terminal for an encrypted key: a service has no one to answer. */
static int no_password(char *buf, int size, int rwflag, void *u) {
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)u;
    return -1;
}

static bool key_len_ok(size_t len, gl_error *err) {
    if (len >= 1 && len <= GL_JWT_KEY_FILE_BYTES_MAX) return true;
    gl_error_set(err, GL_ERR_CONFIG, "JWT key is %zu bytes", len);
    gl_error_detail(err, "a PEM key is 1..%d bytes", GL_JWT_KEY_FILE_BYTES_MAX);
    return false;
}

static EVP_PKEY *load_public_p256(const unsigned char *pem, size_t len, gl_error *err) {
    if (!key_len_ok(len, err)) return NULL;
    /* The verifier needs the public half only; a private key here is a key in the wrong place. */
    if (memmem(pem, len, "PRIVATE KEY", strlen("PRIVATE KEY"))) {
        gl_error_set(err, GL_ERR_CONFIG, "ES256 verification key contains a private key");
        gl_error_hint(err, "give ledgerd only the public key: openssl ec -in KEY -pubout");
        return NULL;
    }
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *key = bio ? PEM_read_bio_PUBKEY_ex(bio, NULL, no_password, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    ERR_clear_error();
    if (!key) {
        gl_error_set(err, GL_ERR_CONFIG, "ES256 key is not a PEM public key");
        gl_error_hint(err, "expected -----BEGIN PUBLIC KEY----- (openssl ec -in KEY -pubout)");
        return NULL;
    }
    if (!require_p256(key, err)) {
        EVP_PKEY_free(key);
        return NULL;
    }
    return key;
}

static EVP_PKEY *load_private_p256(const unsigned char *pem, size_t len, gl_error *err) {
    if (!key_len_ok(len, err)) return NULL;
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *key = bio ? PEM_read_bio_PrivateKey_ex(bio, NULL, no_password, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    ERR_clear_error();
    if (!key) {
        gl_error_set(err, GL_ERR_CONFIG, "ES256 signing key is not an unencrypted PEM private key");
        gl_error_hint(err, "generate one with: openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256");
        return NULL;
    }
    if (!require_p256(key, err)) {
        EVP_PKEY_free(key);
        return NULL;
    }
    return key;
}

/*
 * Reads a whole key file (at most GL_JWT_KEY_FILE_BYTES_MAX). fstat on the
 * open descriptor, not stat on the path, so the checks apply to the file
 * actually read. *out is freed with wipe_free(*out, GL_JWT_KEY_FILE_BYTES_MAX + 1).
 */
static bool read_key_file(const char *path, bool secret, unsigned char **out, size_t *out_len, gl_error *err) {
    *out = NULL;
    *out_len = 0;
    if (!path || !*path) {
        gl_error_set(err, GL_ERR_CONFIG, "JWT key file is not set");
        return false;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;
        gl_error_set(err, GL_ERR_CONFIG, "cannot open JWT key file \"%s\"", path);
        gl_error_detail(err, "%s", strerror(e));
        return false;
    }
    struct stat st;
    const char *problem = NULL;
    if (fstat(fd, &st) != 0)
        problem = "cannot be examined";
    else if (!S_ISREG(st.st_mode))
        problem = "is not a regular file";
    else if (secret && (st.st_mode & (S_IRWXO | S_IWGRP)) != 0)
        problem = "is accessible to other users";
    else if (st.st_size > GL_JWT_KEY_FILE_BYTES_MAX)
        problem = "is too large";
    unsigned char *buf = problem ? NULL : malloc(GL_JWT_KEY_FILE_BYTES_MAX + 1);
    size_t n = 0;
    if (!problem && !buf) problem = "cannot be read: out of memory";
    /* Read to one byte past the limit: the file may have grown since fstat. */
    while (!problem && n <= GL_JWT_KEY_FILE_BYTES_MAX) {
        ssize_t got = read(fd, buf + n, GL_JWT_KEY_FILE_BYTES_MAX + 1 - n);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) problem = "cannot be read";
        if (got <= 0) break;
        n += (size_t)got;
    }
    close(fd);
    if (!problem && n > GL_JWT_KEY_FILE_BYTES_MAX) problem = "is too large";
    if (!problem && n == 0) problem = "is empty";
    if (problem) {
        wipe_free(buf, GL_JWT_KEY_FILE_BYTES_MAX + 1);
        gl_error_set(err, GL_ERR_CONFIG, "JWT key file \"%s\" %s", path, problem);
        if (strcmp(problem, "is accessible to other users") == 0)
            gl_error_hint(err, "chmod 600 %s", path);
        else if (strcmp(problem, "is too large") == 0)
            gl_error_detail(err, "the limit is %d bytes", GL_JWT_KEY_FILE_BYTES_MAX);
        return false;
    }
    *out = buf;
    *out_len = n;
    return true;
}

/* An editor's or echo's final newline must not silently change an HS256 secret. */
static size_t strip_final_newline(const unsigned char *s, size_t n) {
    if (n >= 1 && s[n - 1] == '\n') n--;
    if (n >= 1 && s[n - 1] == '\r') n--;
    return n;
}

static bool init_hs256(gl_jwt_verifier *v, const unsigned char *key, size_t key_len, gl_error *err) {
    if (!check_secret(key, key_len, err)) return false;
    v->secret = malloc(key_len);
    v->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (!v->secret || !v->hmac) {
        ERR_clear_error();
        gl_error_set(err, GL_ERR_INTERNAL, "cannot set up HMAC-SHA-256");
        return false;
    }
    memcpy(v->secret, key, key_len);
    v->secret_len = key_len;
    return true;
}

static bool init_es256(gl_jwt_verifier *v, const unsigned char *key, size_t key_len, gl_error *err) {
    v->public_key = load_public_p256(key, key_len, err);
    return v->public_key != NULL;
}

bool gl_jwt_verifier_init(gl_jwt_verifier *v, const gl_jwt_config *cfg, const unsigned char *key, size_t key_len,
                          gl_error *err) {
    if (!v) {
        gl_error_set(err, GL_ERR_INTERNAL, "no JWT verifier to initialize");
        return false;
    }
    memset(v, 0, sizeof *v);
    gl_jwt_alg alg = GL_JWT_ALG_NONE;
    if (!check_config(cfg, &alg, err)) return false;
    if (!key) {
        gl_error_set(err, GL_ERR_CONFIG, "JWT key is missing");
        return false;
    }
    bool ok = alg == GL_JWT_HS256 ? init_hs256(v, key, key_len, err) : init_es256(v, key, key_len, err);
    if (!ok) {
        gl_jwt_verifier_free(v);
        return false;
    }
    /* Lengths were checked by check_config, so these copies are whole. */
    memcpy(v->issuer, cfg->issuer, strlen(cfg->issuer) + 1);
    memcpy(v->audience, cfg->audience, strlen(cfg->audience) + 1);
    v->clock_skew_s = cfg->clock_skew_s;
    v->max_lifetime_s = cfg->max_lifetime_s;
    v->max_token_bytes = cfg->max_token_bytes;
    v->alg = alg; /* last: only a complete verifier is usable */
    return true;
}

bool gl_jwt_verifier_init_from_files(gl_jwt_verifier *v, const gl_jwt_config *cfg, const char *key_path,
                                     gl_error *err) {
    if (v) memset(v, 0, sizeof *v);
    gl_jwt_alg alg = GL_JWT_ALG_NONE;
    if (!check_config(cfg, &alg, err)) return false;
    unsigned char *key = NULL;
    size_t key_len = 0;
    if (!read_key_file(key_path, alg == GL_JWT_HS256, &key, &key_len, err)) return false;
    if (alg == GL_JWT_HS256) key_len = strip_final_newline(key, key_len);
    bool ok = gl_jwt_verifier_init(v, cfg, key, key_len, err);
    wipe_free(key, GL_JWT_KEY_FILE_BYTES_MAX + 1);
    if (!ok && err) { /* name the file, keeping what init said about its content */
        char said[sizeof err->detail];
        memcpy(said, err->detail, sizeof said);
        gl_error_detail(err, "%s%skey file: %s", said, said[0] ? "; " : "", key_path);
    }
    return ok;
}

void gl_jwt_verifier_free(gl_jwt_verifier *v) {
    if (!v) return;
    wipe_free(v->secret, v->secret_len);
    EVP_MAC_free(v->hmac);
    EVP_PKEY_free(v->public_key);
    memset(v, 0, sizeof *v);
}

/* ---- signing (ledgerctl token, tests) ---- */

static bool sign_hs256(const unsigned char *key, size_t key_len, const char *input, size_t len, unsigned char *sig,
                       size_t *sig_len, gl_error *err) {
    if (!check_secret(key, key_len, err)) return false;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    bool ok = mac && hmac_sha256(mac, key, key_len, (const unsigned char *)input, len, sig);
    EVP_MAC_free(mac);
    ERR_clear_error();
    if (!ok) gl_error_set(err, GL_ERR_INTERNAL, "HMAC-SHA-256 failed");
    *sig_len = HS256_MAC_BYTES;
    return ok;
}

static bool sign_es256(const unsigned char *key, size_t key_len, const char *input, size_t len, unsigned char *sig,
                       size_t *sig_len, gl_error *err) {
    EVP_PKEY *pkey = load_private_p256(key, key_len, err);
    if (!pkey) return false;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[ES256_DER_BYTES_MAX];
    size_t der_len = sizeof der;
    bool ok = md && EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, pkey, NULL) == 1 &&
              EVP_DigestSign(md, der, &der_len, (const unsigned char *)input, len) == 1 &&
              es256_der_to_raw(der, der_len, sig);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(pkey);
    ERR_clear_error();
    if (!ok) gl_error_set(err, GL_ERR_INTERNAL, "ECDSA signing failed");
    *sig_len = ES256_SIG_BYTES;
    return ok;
}

/* base64url(header) "." base64url(claims), NUL-terminated, with room for "." and the signature. */
static char *signing_input(gl_jwt_alg alg, const json_t *claims, size_t *input_len, size_t *cap, gl_error *err) {
    const char *header = alg == GL_JWT_HS256 ? header_hs256 : header_es256;
    char *payload = json_dumps(claims, JSON_COMPACT);
    if (!payload) {
        gl_error_set(err, GL_ERR_INTERNAL, "cannot serialize JWT claims");
        return NULL;
    }
    size_t h_len = strlen(header);
    size_t p_len = strlen(payload);
    size_t sig_chars = b64url_encoded_len(ES256_SIG_BYTES); /* the longer of the two */
    *input_len = b64url_encoded_len(h_len) + 1 + b64url_encoded_len(p_len);
    *cap = *input_len + 1 + sig_chars + 1;
    char *out = NULL;
    if (*cap - 1 > GL_JWT_MAX_TOKEN_BYTES_DEFAULT) {
        gl_error_set(err, GL_ERR_INVALID, "JWT claims are too large");
        gl_error_detail(err, "the token would exceed %d bytes", GL_JWT_MAX_TOKEN_BYTES_DEFAULT);
    } else if (!(out = malloc(*cap))) {
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory");
    } else {
        b64url_encode((const unsigned char *)header, h_len, out);
        size_t o = b64url_encoded_len(h_len);
        out[o++] = '.';
        b64url_encode((const unsigned char *)payload, p_len, out + o);
        out[*input_len] = '\0';
    }
    free(payload);
    return out;
}

bool gl_jwt_sign(const char *alg, const unsigned char *key, size_t key_len, const json_t *claims, char **token_out,
                 gl_error *err) {
    if (!token_out) {
        gl_error_set(err, GL_ERR_INTERNAL, "no place for the token");
        return false;
    }
    *token_out = NULL;
    gl_jwt_alg a = GL_JWT_ALG_NONE;
    if (!parse_alg(alg, &a)) {
        gl_error_set(err, GL_ERR_INVALID, "JWT algorithm \"%.32s\" is not supported", alg ? alg : "");
        gl_error_hint(err, "use \"ES256\" or \"HS256\"");
        return false;
    }
    if (!json_is_object(claims) || !key) {
        gl_error_set(err, GL_ERR_INVALID, "JWT claims must be a JSON object, and a key is needed");
        return false;
    }
    size_t input_len = 0;
    size_t cap = 0;
    char *token = signing_input(a, claims, &input_len, &cap, err);
    if (!token) return false;
    unsigned char sig[ES256_SIG_BYTES];
    size_t sig_len = 0;
    bool ok = a == GL_JWT_HS256 ? sign_hs256(key, key_len, token, input_len, sig, &sig_len, err)
                                : sign_es256(key, key_len, token, input_len, sig, &sig_len, err);
    if (!ok) {
        free(token);
        return false;
    }
    token[input_len] = '.';
    b64url_encode(sig, sig_len, token + input_len + 1);
    token[input_len + 1 + b64url_encoded_len(sig_len)] = '\0';
    *token_out = token;
    return true;
}

bool gl_jwt_sign_from_file(const char *alg, const char *key_path, const json_t *claims, char **token_out,
                           gl_error *err) {
    if (token_out) *token_out = NULL;
    gl_jwt_alg a = GL_JWT_ALG_NONE;
    if (!parse_alg(alg, &a)) {
        gl_error_set(err, GL_ERR_INVALID, "JWT algorithm \"%.32s\" is not supported", alg ? alg : "");
        gl_error_hint(err, "use \"ES256\" or \"HS256\"");
        return false;
    }
    unsigned char *key = NULL;
    size_t key_len = 0;
    if (!read_key_file(key_path, true, &key, &key_len, err)) return false;
    if (a == GL_JWT_HS256) key_len = strip_final_newline(key, key_len);
    bool ok = gl_jwt_sign(alg, key, key_len, claims, token_out, err);
    wipe_free(key, GL_JWT_KEY_FILE_BYTES_MAX + 1);
    return ok;
}
