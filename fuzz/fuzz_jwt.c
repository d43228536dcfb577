/*
 * fuzz_jwt.c — libFuzzer harness for JWT verification (auth/jwt.c:
 * gl_jwt_verify and, through it, the strict base64url decoder, the header
 * parser, the HS256/ES256 signature checks and the claims parser), plus
 * gl_jwt_sign round trips.
 *
 * Byte 0 (mod 4) picks a mode, the rest is the fuzzed data:
 *   0  the data is the whole token (what follows "Bearer "), checked by an
 *      HS256 and an ES256 verifier: what an unauthenticated client reaches.
 *   1  the data is the claims (payload bytes, any bytes); the harness builds
 *      {"alg":"HS256","typ":"JWT"}.<payload> and signs it with the verifier's
 *      key, so the claims parser is reached past the signature check.
 *   2  the data is <header bytes> NUL <payload bytes>, both signed likewise
 *      (header parser and claims parser with a valid signature).
 *   3  the data is parsed by jansson; a JSON object is signed by gl_jwt_sign
 *      (HS256; ES256 too when bit 2 of byte 0 is set) and verified.
 * Keys are made once in LLVMFuzzerInitialize (fixed HS256 secret; a fresh
 * P-256 key pair). now = 1700000000.
 *
 * Oracles besides "no crash / no sanitizer report":
 *   - a token the harness signed is never refused for its signature or its
 *     algorithm, and never GL_JWT_INTERNAL; modes 1-2: TOO_LONG exactly when
 *     longer than 8192 bytes; mode 3: a token from gl_jwt_sign is never
 *     malformed or too long;
 *   - accepted claims obey jwt.h (sub 1..128 of [A-Za-z0-9._:@/-], regions
 *     <= 16 names of [a-z0-9_-]{1,16}, times within 0..year 9999, not
 *     expired); a refusal leaves the claims zeroed;
 *   - a refusal always carries a message.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "../auth/jwt.h"

/* A broken invariant: say where, then abort (libFuzzer keeps the input as a crash). */
#define FAIL() (fprintf(stderr, "%s:%d: invariant violated\n", __FILE__, __LINE__), abort())

#define ISS "https://auth.geoledger.test"
#define AUD "ledgerd"
#define NOW ((time_t)1700000000)
#define HS_HDR "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"

static const unsigned char hs_key[] = "fuzz-hs256-secret-0123456789abcdef"; /* 34 bytes */
#define HS_KEY_LEN (sizeof hs_key - 1)

static gl_jwt_verifier hs, es;
static char *es_priv_pem;
static size_t es_priv_len;

static char *pem_of(EVP_PKEY *key, bool priv, size_t *len) {
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio) abort();
    int ok = priv ? PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) : PEM_write_bio_PUBKEY(bio, key);
    if (ok != 1) abort();
    char *p = NULL;
    long n = BIO_get_mem_data(bio, &p);
    char *out = malloc((size_t)n + 1);
    if (!out) abort();
    memcpy(out, p, (size_t)n);
    out[n] = '\0';
    *len = (size_t)n;
    BIO_free(bio);
    return out;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    gl_error err;
    gl_jwt_config cfg;
    gl_jwt_config_init(&cfg);
    cfg.alg = "HS256";
    cfg.issuer = ISS;
    cfg.audience = AUD;
    if (!gl_jwt_verifier_init(&hs, &cfg, hs_key, HS_KEY_LEN, &err)) abort();

    EVP_PKEY *ec = EVP_EC_gen("P-256");
    if (!ec) abort();
    size_t pub_len;
    char *pub = pem_of(ec, false, &pub_len);
    es_priv_pem = pem_of(ec, true, &es_priv_len);
    EVP_PKEY_free(ec);
    cfg.alg = "ES256";
    if (!gl_jwt_verifier_init(&es, &cfg, (const unsigned char *)pub, pub_len, &err)) abort();
    free(pub);
    return 0;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Appends base64url (no padding) of in[0, n) at out; returns the new end. */
static char *b64url(char *out, const unsigned char *in, size_t n) {
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        *out++ = b64[v >> 18 & 63];
        *out++ = b64[v >> 12 & 63];
        *out++ = b64[v >> 6 & 63];
        *out++ = b64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        *out++ = b64[v >> 18 & 63];
        *out++ = b64[v >> 12 & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        *out++ = b64[v >> 18 & 63];
        *out++ = b64[v >> 12 & 63];
        *out++ = b64[v >> 6 & 63];
    }
    return out;
}

/* header.payload.HS256(signing input), NUL-terminated, malloc'd. */
static char *hs_token(const unsigned char *h, size_t h_len, const unsigned char *p, size_t p_len, size_t *len) {
    char *tok = malloc((h_len + p_len) / 3 * 4 + 8 + 64);
    if (!tok) abort();
    char *e = b64url(tok, h, h_len);
    *e++ = '.';
    e = b64url(e, p, p_len);
    unsigned char mac[32];
    unsigned mac_len = 0;
    if (!HMAC(EVP_sha256(), hs_key, (int)HS_KEY_LEN, (const unsigned char *)tok, (size_t)(e - tok), mac, &mac_len))
        abort();
    *e++ = '.';
    e = b64url(e, mac, mac_len);
    *e = '\0';
    *len = (size_t)(e - tok);
    return tok;
}

static bool all_zero(const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i]) return false;
    return true;
}

static void check_result(gl_jwt_reason r, const gl_jwt_claims *c, const gl_error *err) {
    if ((int)r < GL_JWT_OK || r > GL_JWT_INTERNAL) FAIL();
    if (r != GL_JWT_OK) {
        if (!all_zero(c, sizeof *c) || !err->message[0]) FAIL();
        return;
    }
    size_t n = strnlen(c->sub, sizeof c->sub);
    if (n < 1 || n > GL_JWT_SUB_MAX) FAIL();
    for (size_t i = 0; i < n; i++) {
        char ch = c->sub[i];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                  strchr("._:@/-", ch);
        if (!ok) FAIL();
    }
    if (c->n_regions > GL_JWT_REGIONS_MAX || (!c->has_regions && c->n_regions)) FAIL();
    for (size_t k = 0; k < c->n_regions; k++) {
        size_t m = strnlen(c->regions[k], sizeof c->regions[k]);
        if (m < 1 || m > GL_JWT_REGION_MAX) FAIL();
        for (size_t i = 0; i < m; i++) {
            char ch = c->regions[k][i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-')) FAIL();
        }
    }
    if (c->exp_s < 0 || c->exp_s > GL_JWT_TIME_S_MAX || NOW >= c->exp_s + GL_JWT_CLOCK_SKEW_S_DEFAULT)
        FAIL();
    if ((c->has_nbf && (c->nbf_s < 0 || c->nbf_s > NOW + GL_JWT_CLOCK_SKEW_S_DEFAULT)) ||
        (c->has_iat && (c->iat_s < 0 || c->iat_s > NOW + GL_JWT_CLOCK_SKEW_S_DEFAULT)))
        FAIL();
    if (c->scopes >> GL_SCOPE_COUNT) FAIL();
}

static gl_jwt_reason verify(const gl_jwt_verifier *v, const char *token) {
    gl_jwt_claims c;
    memset(&c, 0x5a, sizeof c);
    gl_error err;
    gl_jwt_reason r = gl_jwt_verify(v, token, NOW, &c, &err);
    check_result(r, &c, &err);
    return r;
}

/* A token this harness (or gl_jwt_sign) signed with the right key. */
static gl_jwt_reason verify_signed(const char *token, size_t len, bool header_fixed) {
    gl_jwt_reason r = verify(&hs, token);
    if (r == GL_JWT_TOKEN_SIGNATURE_INVALID || r == GL_JWT_INTERNAL) FAIL();
    if ((r == GL_JWT_TOKEN_TOO_LONG) != (len > GL_JWT_MAX_TOKEN_BYTES_DEFAULT)) FAIL();
    if (header_fixed && r == GL_JWT_TOKEN_ALGORITHM_REJECTED) FAIL();
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0] % 4;
    bool es_too = (data[0] >> 2) & 1;
    data++;
    size--;

    if (mode == 0) {
        char *tok = malloc(size + 1);
        if (!tok) return 0;
        memcpy(tok, data, size);
        tok[size] = '\0';
        verify(&hs, tok);
        verify(&es, tok);
        free(tok);
    } else if (mode == 1) {
        size_t len;
        char *tok = hs_token((const unsigned char *)HS_HDR, strlen(HS_HDR), data, size, &len);
        verify_signed(tok, len, true);
        free(tok);
    } else if (mode == 2) {
        const uint8_t *nul = memchr(data, 0, size);
        size_t h_len = nul ? (size_t)(nul - data) : size;
        const uint8_t *p = nul ? nul + 1 : data + size;
        size_t len;
        char *tok = hs_token(data, h_len, p, size - h_len - (nul ? 1 : 0), &len);
        verify_signed(tok, len, false);
        free(tok);
    } else {
        json_error_t jerr;
        json_t *claims = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
        if (claims && json_is_object(claims)) {
            char *tok = NULL;
            gl_error err;
            if (gl_jwt_sign("HS256", hs_key, HS_KEY_LEN, claims, &tok, &err)) {
                size_t len = strlen(tok);
                gl_jwt_reason r = verify_signed(tok, len, true);
                if (r == GL_JWT_TOKEN_MALFORMED || r == GL_JWT_TOKEN_TOO_LONG) FAIL();
                free(tok);
            } else if (err.kind == GL_ERR_NONE) {
                FAIL();
            }
            if (es_too && gl_jwt_sign("ES256", (const unsigned char *)es_priv_pem, es_priv_len, claims, &tok, &err)) {
                gl_jwt_reason r = verify(&es, tok);
                if (r == GL_JWT_TOKEN_SIGNATURE_INVALID || r == GL_JWT_TOKEN_ALGORITHM_REJECTED ||
                    r == GL_JWT_TOKEN_MALFORMED || r == GL_JWT_TOKEN_TOO_LONG || r == GL_JWT_INTERNAL)
                    FAIL();
                free(tok);
            }
        }
        json_decref(claims);
    }
    return 0;
}
