/*
 * test_jwt.c — unit tests for auth/jwt.c: every rule of jwt.h, the classic
 * attacks (alg none, algorithm confusion, DER signatures, duplicate keys),
 * key configuration, and signing round trips.
 *
 * Tokens under test are built here with OpenSSL directly, not with jwt.c's
 * encoder and signer, so a mistake shared by signer and verifier (the wrong
 * base64 alphabet, DER where JWS wants R||S) cannot hide; RFC 7515's
 * published examples pin interoperability with other implementations.
 * Keys are generated at start-up into a mkdtemp directory removed at exit.
 */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "../../auth/jwt.h"

#define ISS "https://auth.geoledger.test"
#define AUD "ledgerd"
#define SUB "app:shop-42"
#define NOW ((time_t)1700000000)
#define HS_HDR "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define ES_HDR "{\"alg\":\"ES256\",\"typ\":\"JWT\"}"
#define MAX_FILES 16
#define THREADS 4
#define THREAD_ROUNDS 100

/* ---- key material, made once in main() before the (forked) tests run ---- */

static char g_dir[64];
static char g_secret[65];     /* 64 hex characters: a text secret, as an operator stores one */
static EVP_PKEY *g_ec;        /* signs the ES256 tokens */
static EVP_PKEY *g_ec_other;  /* a stranger's key */
static char *g_ec_pub_pem;    /* what an ES256 verifier is given */
static char *g_ec_priv_pem;   /* for gl_jwt_sign */
static char *g_rsa_pub_pem;   /* must be refused by an ES256 verifier */
static char *g_p384_pub_pem;  /* likewise */
static char *g_p384_priv_pem; /* must be refused by the ES256 signer */
static char *g_encrypted_pem; /* must be refused, without prompting for a password */
static char *g_explicit_pem;  /* P-256 spelled as explicit curve parameters: refused */
static char g_files[MAX_FILES][128];
static int g_n_files;

/* Set-up runs in main(), outside any test, where ck_assert cannot report. */
static void require(bool ok, const char *what) {
    if (ok) return;
    fprintf(stderr, "test_jwt: set-up failed: %s\n", what);
    ERR_print_errors_fp(stderr);
    abort();
}

static char *pem_of(EVP_PKEY *key, bool private_key, const char *passphrase) {
    BIO *bio = BIO_new(BIO_s_mem());
    require(bio != NULL, "BIO_new");
    int ok = private_key ? PEM_write_bio_PrivateKey(bio, key, passphrase ? EVP_aes_256_cbc() : NULL,
                                                    (const unsigned char *)passphrase,
                                                    passphrase ? (int)strlen(passphrase) : 0, NULL, NULL)
                         : PEM_write_bio_PUBKEY(bio, key);
    require(ok == 1, "PEM_write");
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    require(n > 0, "BIO_get_mem_data");
    char *out = malloc((size_t)n + 1);
    require(out != NULL, "malloc");
    memcpy(out, data, (size_t)n);
    out[n] = '\0';
    BIO_free(bio);
    return out;
}

/* Writes a file with exactly `mode` (fchmod: the umask must not decide the test). */
static const char *write_file(const char *name, const void *data, size_t len, mode_t mode) {
    require(g_n_files < MAX_FILES, "MAX_FILES");
    char *path = g_files[g_n_files++];
    snprintf(path, sizeof g_files[0], "%s/%s", g_dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    require(fd >= 0, path);
    require(fchmod(fd, mode) == 0, path);
    require(write(fd, data, len) == (ssize_t)len, path);
    require(close(fd) == 0, path);
    return path;
}

static const char *file_path(const char *name) {
    for (int i = 0; i < g_n_files; i++) {
        const char *slash = strrchr(g_files[i], '/');
        if (slash && strcmp(slash + 1, name) == 0) return g_files[i];
    }
    ck_abort_msg("no test file %s", name);
    return NULL;
}

/* A P-256 key whose PEM carries the curve's parameters instead of its name. */
static EVP_PKEY *explicit_p256(void) {
    char group[] = "P-256";
    char encoding[] = OSSL_PKEY_EC_ENCODING_EXPLICIT;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING, encoding, 0),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *key = NULL;
    require(ctx && EVP_PKEY_keygen_init(ctx) == 1 && EVP_PKEY_CTX_set_params(ctx, params) == 1 &&
                EVP_PKEY_generate(ctx, &key) == 1,
            "explicit P-256 key");
    EVP_PKEY_CTX_free(ctx);
    return key;
}

static void make_keys(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/test_jwt.XXXXXX");
    require(mkdtemp(g_dir) != NULL, "mkdtemp");
    unsigned char raw[32];
    require(RAND_bytes(raw, sizeof raw) == 1, "RAND_bytes");
    for (size_t i = 0; i < sizeof raw; i++) snprintf(g_secret + 2 * i, 3, "%02x", raw[i]);

    g_ec = EVP_EC_gen("P-256");
    g_ec_other = EVP_EC_gen("P-256");
    EVP_PKEY *p384 = EVP_EC_gen("P-384");
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    require(g_ec && g_ec_other && p384 && rsa, "key generation");
    g_ec_pub_pem = pem_of(g_ec, false, NULL);
    g_ec_priv_pem = pem_of(g_ec, true, NULL);
    g_rsa_pub_pem = pem_of(rsa, false, NULL);
    g_p384_pub_pem = pem_of(p384, false, NULL);
    g_p384_priv_pem = pem_of(p384, true, NULL);
    g_encrypted_pem = pem_of(g_ec, true, "correct horse battery staple");
    EVP_PKEY *explicit_key = explicit_p256();
    g_explicit_pem = pem_of(explicit_key, false, NULL);
    require(strlen(g_explicit_pem) > strlen(g_ec_pub_pem) + 100, "explicit parameters in the PEM");
    EVP_PKEY_free(explicit_key);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(rsa);

    char secret_nl[sizeof g_secret + 1];
    snprintf(secret_nl, sizeof secret_nl, "%s\n", g_secret); /* as `echo` would write it */
    write_file("hs.secret", secret_nl, strlen(secret_nl), 0600);
    write_file("hs-group-read.secret", g_secret, strlen(g_secret), 0640);
    write_file("hs-world-read.secret", g_secret, strlen(g_secret), 0604);
    write_file("hs-group-write.secret", g_secret, strlen(g_secret), 0620);
    write_file("empty.secret", "", 0, 0600);
    write_file("ec-pub.pem", g_ec_pub_pem, strlen(g_ec_pub_pem), 0644);
    write_file("ec-priv.pem", g_ec_priv_pem, strlen(g_ec_priv_pem), 0600);
    static char big[GL_JWT_KEY_FILE_BYTES_MAX + 2];
    memset(big, 'k', sizeof big);
    write_file("big.secret", big, sizeof big, 0600);
}

static void free_keys(void) {
    for (int i = 0; i < g_n_files; i++) unlink(g_files[i]);
    rmdir(g_dir);
    EVP_PKEY_free(g_ec);
    EVP_PKEY_free(g_ec_other);
    free(g_ec_pub_pem);
    free(g_ec_priv_pem);
    free(g_rsa_pub_pem);
    free(g_p384_pub_pem);
    free(g_p384_priv_pem);
    free(g_encrypted_pem);
    free(g_explicit_pem);
}

/* ---- an independent token builder ---- */

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding into out (NUL-terminated); returns the length. */
static size_t b64url(const void *data, size_t n, char *out) {
    const unsigned char *in = data;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        if (i + 1 < n) out[o++] = alphabet[(v >> 6) & 63];
        if (i + 2 < n) out[o++] = alphabet[v & 63];
    }
    out[o] = '\0';
    return o;
}

/* Lenient decoder, for the RFC's known-answer values only. */
static size_t unb64url(const char *in, unsigned char *out) {
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (; *in; in++) {
        const char *p = strchr(alphabet, *in);
        ck_assert_ptr_nonnull(p);
        acc = (acc << 6) | (uint32_t)(p - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
        }
    }
    return o;
}

/* "b64(header).b64(payload)" in a buffer with room for ".signature". */
static char *signing_input(const char *header, const char *payload, size_t *len) {
    size_t hl = strlen(header);
    size_t pl = strlen(payload);
    char *s = malloc(2 * (hl + pl) + 256);
    ck_assert_ptr_nonnull(s);
    size_t o = b64url(header, hl, s);
    s[o++] = '.';
    o += b64url(payload, pl, s + o);
    *len = o;
    return s;
}

static char *with_signature(char *s, size_t len, const unsigned char *sig, size_t sig_len) {
    s[len] = '.';
    b64url(sig, sig_len, s + len + 1);
    return s;
}

static char *token_hmac(const char *header, const char *payload, const void *key, size_t key_len) {
    size_t len = 0;
    char *s = signing_input(header, payload, &len);
    unsigned char mac[32];
    size_t mac_len = 0;
    ck_assert_ptr_nonnull(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, key_len, (unsigned char *)s, len, mac,
                                    sizeof mac, &mac_len));
    return with_signature(s, len, mac, mac_len);
}

static size_t ecdsa_der(EVP_PKEY *key, const char *data, size_t len, unsigned char *der, size_t cap) {
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ck_assert_ptr_nonnull(md);
    ck_assert_int_eq(EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, key, NULL), 1);
    size_t der_len = cap;
    ck_assert_int_eq(EVP_DigestSign(md, der, &der_len, (const unsigned char *)data, len), 1);
    EVP_MD_CTX_free(md);
    return der_len;
}

/* der: sign like most X.509 code does (DER), which a JWS verifier must refuse. */
static char *token_ecdsa(const char *header, const char *payload, EVP_PKEY *key, bool der) {
    size_t len = 0;
    char *s = signing_input(header, payload, &len);
    unsigned char sig[80];
    size_t sig_len = ecdsa_der(key, s, len, sig, sizeof sig);
    if (der) return with_signature(s, len, sig, sig_len);
    const unsigned char *p = sig;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sig_len);
    ck_assert_ptr_nonnull(es);
    unsigned char raw[64];
    ck_assert_int_eq(BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32), 32);
    ck_assert_int_eq(BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32), 32);
    ECDSA_SIG_free(es);
    return with_signature(s, len, raw, sizeof raw);
}

static char *token_unsigned(const char *header, const char *payload) {
    size_t len = 0;
    char *s = signing_input(header, payload, &len);
    return with_signature(s, len, (const unsigned char *)"", 0);
}

/* These take ownership of payload (a claims_with() result). */
static char *sign_hs(const char *header, char *payload) {
    char *t = token_hmac(header, payload, g_secret, strlen(g_secret));
    free(payload);
    return t;
}

static char *sign_es(const char *header, char *payload) {
    char *t = token_ecdsa(header, payload, g_ec, false);
    free(payload);
    return t;
}

static json_t *std_claims(void) {
    json_t *c = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s, s:[s,s]}", "iss", ISS, "aud", AUD, "sub", SUB, "exp",
                          (json_int_t)NOW + 300, "nbf", (json_int_t)NOW - 10, "iat", (json_int_t)NOW - 10, "scope",
                          "accounts:read transfers:write unknown:scope admin", "regions", "eu", "us");
    ck_assert_ptr_nonnull(c);
    return c;
}

/* A change to the standard claims: set `name` to the JSON text `json`, or delete it (json NULL). */
typedef struct {
    const char *name;
    const char *json;
} claim_change;

static char *claims_with(const claim_change *changes, size_t n) {
    json_t *c = std_claims();
    for (size_t i = 0; i < n; i++) {
        if (!changes[i].json) {
            json_object_del(c, changes[i].name);
            continue;
        }
        json_error_t e;
        json_t *v = json_loads(changes[i].json, JSON_DECODE_ANY, &e);
        ck_assert_msg(v != NULL, "bad test JSON %s: %s", changes[i].json, e.text);
        json_object_set_new(c, changes[i].name, v);
    }
    char *s = json_dumps(c, JSON_COMPACT);
    json_decref(c);
    ck_assert_ptr_nonnull(s);
    return s;
}

/* CLAIMS({"exp", NULL}, {"aud", "[\"x\"]"}): the standard claims with those changes. */
#define CLAIMS(...)                                                                                                    \
    claims_with((const claim_change[]){__VA_ARGS__}, sizeof((const claim_change[]){__VA_ARGS__}) / sizeof(claim_change))

static char *claims_std(void) {
    return claims_with(NULL, 0);
}

static char *dup_str(const char *s) {
    char *d = strdup(s);
    ck_assert_ptr_nonnull(d);
    return d;
}

/* ---- verifiers ---- */

static gl_jwt_verifier hv; /* HS256, g_secret */
static gl_jwt_verifier ev; /* ES256, g_ec's public key */

static bool make_verifier(gl_jwt_verifier *v, const char *alg, const void *key, size_t key_len, int skew_s,
                          size_t max_bytes, gl_error *err) {
    gl_jwt_config cfg;
    gl_jwt_config_init(&cfg);
    cfg.alg = alg;
    cfg.issuer = ISS;
    cfg.audience = AUD;
    cfg.clock_skew_s = skew_s;
    cfg.max_token_bytes = max_bytes;
    gl_error_clear(err);
    return gl_jwt_verifier_init(v, &cfg, key, key_len, err);
}

static void setup(void) {
    gl_error err;
    ck_assert_msg(make_verifier(&hv, "HS256", g_secret, strlen(g_secret), 60, 8192, &err), "%s", err.message);
    ck_assert_msg(make_verifier(&ev, "ES256", g_ec_pub_pem, strlen(g_ec_pub_pem), 60, 8192, &err), "%s", err.message);
}

static void teardown(void) {
    gl_jwt_verifier_free(&hv);
    gl_jwt_verifier_free(&ev);
}

/* Verifies at NOW, frees the token, and checks the reason; the claims are returned. */
static gl_jwt_claims expect_at(const gl_jwt_verifier *v, char *token, time_t now, gl_jwt_reason want, int line) {
    gl_jwt_claims c;
    gl_error err;
    gl_error_clear(&err);
    gl_jwt_reason got = gl_jwt_verify(v, token, now, &c, &err);
    free(token);
    ck_assert_msg(got == want, "line %d: got %s (%s; %s), want %s", line, gl_jwt_reason_name(got), err.message,
                  err.detail, gl_jwt_reason_name(want));
    ck_assert_msg((got == GL_JWT_OK) == (err.kind == GL_ERR_NONE), "line %d: error kind %d", line, err.kind);
    return c;
}
#define EXPECT(v, token, want) expect_at((v), (token), NOW, (want), __LINE__)
#define EXPECT_AT(v, token, now, want) expect_at((v), (token), (now), (want), __LINE__)

/* ---- valid tokens ---- */

static void check_std_claims(const gl_jwt_claims *c) {
    ck_assert_str_eq(c->sub, SUB);
    ck_assert(gl_jwt_has_scope(c, GL_SCOPE_ACCOUNTS_READ));
    ck_assert(gl_jwt_has_scope(c, GL_SCOPE_TRANSFERS_WRITE));
    ck_assert(gl_jwt_has_scope(c, GL_SCOPE_ADMIN));
    ck_assert(!gl_jwt_has_scope(c, GL_SCOPE_TRANSFERS_READ));
    ck_assert(!gl_jwt_has_scope(c, GL_SCOPE_REPORTS_READ));
    ck_assert_uint_eq(c->scopes,
                      (1u << GL_SCOPE_ACCOUNTS_READ) | (1u << GL_SCOPE_TRANSFERS_WRITE) | (1u << GL_SCOPE_ADMIN));
    ck_assert(c->has_regions);
    ck_assert_uint_eq(c->n_regions, 2);
    ck_assert_str_eq(c->regions[0], "eu");
    ck_assert_str_eq(c->regions[1], "us");
    ck_assert_int_eq(c->exp_s, (int64_t)NOW + 300);
    ck_assert(c->has_nbf && c->nbf_s == (int64_t)NOW - 10);
    ck_assert(c->has_iat && c->iat_s == (int64_t)NOW - 10);
}

START_TEST(test_hs256_valid) {
    gl_jwt_claims c = EXPECT(&hv, sign_hs(HS_HDR, claims_std()), GL_JWT_OK);
    check_std_claims(&c);
}
END_TEST

START_TEST(test_es256_valid) {
    gl_jwt_claims c = EXPECT(&ev, sign_es(ES_HDR, claims_std()), GL_JWT_OK);
    check_std_claims(&c);
    /* aud as an array, no typ, extra header fields and unknown claims are all fine */
    c = EXPECT(&ev,
               sign_es("{\"alg\":\"ES256\",\"kid\":\"k1\",\"jku\":\"https://evil.test/keys\"}",
                       CLAIMS({"aud", "[\"other\",\"" AUD "\"]"}, {"nbf", NULL}, {"iat", NULL}, {"regions", NULL},
                              {"scope", NULL}, {"https://example.com/is_root", "true"})),
               GL_JWT_OK);
    ck_assert(!c.has_nbf && !c.has_iat && !c.has_regions);
    ck_assert_uint_eq(c.scopes, 0);
}
END_TEST

/* RFC 7515 A.1 (HS256) and A.3 (ES256): other implementations' tokens verify. */
START_TEST(test_rfc7515_vectors) {
    static const char a1_key[] =
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
    static const char a1[] = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
                             "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0"
                             "cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    static const char a3[] =
        "eyJhbGciOiJFUzI1NiJ9."
        "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0"
        "cnVlfQ.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
    const time_t then = 1300819300;
    gl_jwt_config cfg;
    gl_jwt_config_init(&cfg);
    cfg.issuer = "joe";
    cfg.audience = AUD;
    gl_error err;

    unsigned char key[64];
    ck_assert_uint_eq(unb64url(a1_key, key), sizeof key);
    gl_jwt_verifier v;
    cfg.alg = "HS256";
    ck_assert_msg(gl_jwt_verifier_init(&v, &cfg, key, sizeof key, &err), "%s", err.message);
    /* The examples carry no sub: claims_invalid is reached only past a good signature. */
    EXPECT_AT(&v, dup_str(a1), then, GL_JWT_TOKEN_CLAIMS_INVALID);
    char *bad = dup_str(a1);
    bad[strlen(bad) - 1] = 'g'; /* k -> g: still canonical base64, different MAC */
    EXPECT_AT(&v, bad, then, GL_JWT_TOKEN_SIGNATURE_INVALID);
    gl_jwt_verifier_free(&v);

    unsigned char point[65] = {0x04};
    ck_assert_uint_eq(unb64url("f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", point + 1), 32);
    ck_assert_uint_eq(unb64url("x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", point + 33), 32);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    ck_assert_ptr_nonnull(bld);
    ck_assert_int_eq(OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0), 1);
    ck_assert_int_eq(OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point), 1);
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    EVP_PKEY *pub = NULL;
    ck_assert(params && ctx && EVP_PKEY_fromdata_init(ctx) == 1);
    ck_assert_int_eq(EVP_PKEY_fromdata(ctx, &pub, EVP_PKEY_PUBLIC_KEY, params), 1);
    char *pem = pem_of(pub, false, NULL);
    cfg.alg = "ES256";
    ck_assert_msg(gl_jwt_verifier_init(&v, &cfg, (const unsigned char *)pem, strlen(pem), &err), "%s", err.message);
    EXPECT_AT(&v, dup_str(a3), then, GL_JWT_TOKEN_CLAIMS_INVALID);
    bad = dup_str(a3);
    bad[strlen(bad) - 1] = 'A'; /* Q -> A: still canonical base64, different S */
    EXPECT_AT(&v, bad, then, GL_JWT_TOKEN_SIGNATURE_INVALID);
    gl_jwt_verifier_free(&v);
    free(pem);
    EVP_PKEY_free(pub);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
}
END_TEST

/* ---- algorithm pinning ---- */

START_TEST(test_alg_none) {
    static const char *const nones[] = {"{\"alg\":\"none\"}", "{\"alg\":\"none\",\"typ\":\"JWT\"}",
                                        "{\"alg\":\"None\"}", "{\"alg\":\"NONE\"}", "{\"alg\":\"nOnE\"}"};
    for (size_t i = 0; i < sizeof nones / sizeof nones[0]; i++) {
        char *payload = claims_std();
        EXPECT(&hv, token_unsigned(nones[i], payload), GL_JWT_TOKEN_ALGORITHM_REJECTED);
        EXPECT(&ev, token_unsigned(nones[i], payload), GL_JWT_TOKEN_ALGORITHM_REJECTED);
        /* with a signature (valid for the secret, even) it is still "none" */
        EXPECT(&hv, token_hmac(nones[i], payload, g_secret, strlen(g_secret)), GL_JWT_TOKEN_ALGORITHM_REJECTED);
        EXPECT(&ev, token_ecdsa(nones[i], payload, g_ec, false), GL_JWT_TOKEN_ALGORITHM_REJECTED);
        free(payload);
    }
}
END_TEST

START_TEST(test_alg_spelling) {
    static const char *const hs_wrong[] = {
        "{\"alg\":\"hs256\"}",
        "{\"alg\":\"Hs256\"}",
        "{\"alg\":\"HS256 \"}",
        "{\"alg\":\" HS256\"}",
        "{\"alg\":\"HS384\"}",
        "{\"alg\":\"HS512\"}",
        "{\"alg\":\"\"}",
        "{\"alg\":256}",
        "{\"alg\":null}",
        "{\"alg\":[\"HS256\"]}",
        "{\"typ\":\"JWT\"}",
        "{}",
        "{\"alg\":\"HS256\\u0000\"}",
    };
    for (size_t i = 0; i < sizeof hs_wrong / sizeof hs_wrong[0]; i++) {
        gl_jwt_reason want = strstr(hs_wrong[i], "u0000") ? GL_JWT_TOKEN_MALFORMED : GL_JWT_TOKEN_ALGORITHM_REJECTED;
        EXPECT(&hv, sign_hs(hs_wrong[i], claims_std()), want);
    }
    EXPECT(&ev, sign_es("{\"alg\":\"es256\"}", claims_std()), GL_JWT_TOKEN_ALGORITHM_REJECTED);
    EXPECT(&ev, sign_es("{\"alg\":\"ES384\"}", claims_std()), GL_JWT_TOKEN_ALGORITHM_REJECTED);
    EXPECT(&ev, sign_es("{\"alg\":\"ES256K\"}", claims_std()), GL_JWT_TOKEN_ALGORITHM_REJECTED);
    /* each verifier refuses the other algorithm, however well signed */
    EXPECT(&hv, sign_es(ES_HDR, claims_std()), GL_JWT_TOKEN_ALGORITHM_REJECTED);
    EXPECT(&ev, sign_hs(HS_HDR, claims_std()), GL_JWT_TOKEN_ALGORITHM_REJECTED);
}
END_TEST

/* The classic: HS256 "signed" with the server's public key as HMAC secret. */
START_TEST(test_key_confusion) {
    char *payload = claims_std();
    EXPECT(&ev, token_hmac(HS_HDR, payload, g_ec_pub_pem, strlen(g_ec_pub_pem)), GL_JWT_TOKEN_ALGORITHM_REJECTED);
    /* also with the PEM's trailing newline dropped, as some libraries do */
    EXPECT(&ev, token_hmac(HS_HDR, payload, g_ec_pub_pem, strlen(g_ec_pub_pem) - 1), GL_JWT_TOKEN_ALGORITHM_REJECTED);
    /* and claiming ES256 while carrying an HMAC: the 32-byte "signature" is refused */
    EXPECT(&ev, token_hmac(ES_HDR, payload, g_ec_pub_pem, strlen(g_ec_pub_pem)), GL_JWT_TOKEN_SIGNATURE_INVALID);
    free(payload);
    /* and no HS256 verifier can be configured with a PEM key as its secret */
    gl_jwt_verifier v;
    gl_error err;
    ck_assert(!make_verifier(&v, "HS256", g_ec_pub_pem, strlen(g_ec_pub_pem), 60, 8192, &err));
    ck_assert_int_eq(err.kind, GL_ERR_CONFIG);
    gl_jwt_verifier_free(&v);
}
END_TEST

/* ---- configuration ---- */

static void expect_config_error(const char *alg, const void *key, size_t key_len, int skew_s, size_t max_bytes,
                                int line) {
    gl_jwt_verifier v;
    gl_error err;
    ck_assert_msg(!make_verifier(&v, alg, key, key_len, skew_s, max_bytes, &err), "line %d: accepted", line);
    ck_assert_msg(err.kind == GL_ERR_CONFIG, "line %d: kind %d (%s)", line, err.kind, err.message);
    ck_assert_msg(err.message[0] != '\0', "line %d: no message", line);
    /* a failed verifier is zeroed: usable by nothing, safe to free */
    gl_jwt_claims c;
    ck_assert_int_eq(gl_jwt_verify(&v, "a.b.c", NOW, &c, &err), GL_JWT_INTERNAL);
    gl_jwt_verifier_free(&v);
}
#define EXPECT_CONFIG_ERROR(alg, key, len, skew, max) expect_config_error(alg, key, len, skew, max, __LINE__)

START_TEST(test_config_keys) {
    EXPECT_CONFIG_ERROR("ES256", g_rsa_pub_pem, strlen(g_rsa_pub_pem), 60, 8192);
    EXPECT_CONFIG_ERROR("ES256", g_p384_pub_pem, strlen(g_p384_pub_pem), 60, 8192);
    EXPECT_CONFIG_ERROR("ES256", g_explicit_pem, strlen(g_explicit_pem), 60, 8192);
    EXPECT_CONFIG_ERROR("ES256", g_ec_priv_pem, strlen(g_ec_priv_pem), 60, 8192);
    EXPECT_CONFIG_ERROR("ES256", "not a key", 9, 60, 8192);
    EXPECT_CONFIG_ERROR("ES256", "", 0, 60, 8192);
    EXPECT_CONFIG_ERROR("ES256", NULL, 0, 60, 8192);
    EXPECT_CONFIG_ERROR("HS256", g_secret, 31, 60, 8192);
    EXPECT_CONFIG_ERROR("HS256", g_secret, 0, 60, 8192);
    EXPECT_CONFIG_ERROR("HS256", NULL, 0, 60, 8192);
    static char huge[GL_JWT_SECRET_BYTES_MAX + 1];
    memset(huge, 's', sizeof huge);
    EXPECT_CONFIG_ERROR("HS256", huge, sizeof huge, 60, 8192);

    gl_jwt_verifier v;
    gl_error err;
    ck_assert_msg(make_verifier(&v, "HS256", g_secret, 32, 60, 8192, &err), "%s", err.message);
    gl_jwt_verifier_free(&v);
    gl_jwt_verifier_free(&v); /* twice is harmless */
    gl_jwt_verifier_free(NULL);
    ck_assert(make_verifier(&v, "HS256", huge, GL_JWT_SECRET_BYTES_MAX, 60, 8192, &err));
    gl_jwt_verifier_free(&v);
}
END_TEST

START_TEST(test_config_settings) {
    static const char *const algs[] = {"RS256", "none", "None", "es256", "hs256", "ES256 ", "PS256", "EdDSA", ""};
    for (size_t i = 0; i < sizeof algs / sizeof algs[0]; i++)
        EXPECT_CONFIG_ERROR(algs[i], g_secret, strlen(g_secret), 60, 8192);
    EXPECT_CONFIG_ERROR(NULL, g_secret, strlen(g_secret), 60, 8192);
    EXPECT_CONFIG_ERROR("HS256", g_secret, strlen(g_secret), -1, 8192);
    EXPECT_CONFIG_ERROR("HS256", g_secret, strlen(g_secret), GL_JWT_CLOCK_SKEW_S_MAX + 1, 8192);
    EXPECT_CONFIG_ERROR("HS256", g_secret, strlen(g_secret), 60, GL_JWT_MAX_TOKEN_BYTES_MIN - 1);
    EXPECT_CONFIG_ERROR("HS256", g_secret, strlen(g_secret), 60, GL_JWT_MAX_TOKEN_BYTES_LIMIT + 1);

    gl_jwt_config cfg;
    gl_jwt_config_init(&cfg);
    ck_assert_int_eq(cfg.clock_skew_s, 60);
    ck_assert_uint_eq(cfg.max_token_bytes, 8192);
    cfg.alg = "HS256";
    static const char *const bad_names[] = {NULL, "", "has\nnewline", "tab\there"};
    gl_jwt_verifier v;
    gl_error err;
    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        cfg.issuer = bad_names[i];
        cfg.audience = AUD;
        ck_assert(!gl_jwt_verifier_init(&v, &cfg, (const unsigned char *)g_secret, strlen(g_secret), &err));
        ck_assert_int_eq(err.kind, GL_ERR_CONFIG);
        cfg.issuer = ISS;
        cfg.audience = bad_names[i];
        ck_assert(!gl_jwt_verifier_init(&v, &cfg, (const unsigned char *)g_secret, strlen(g_secret), &err));
        ck_assert_int_eq(err.kind, GL_ERR_CONFIG);
    }
    ck_assert(!gl_jwt_verifier_init(&v, NULL, (const unsigned char *)g_secret, strlen(g_secret), &err));
    ck_assert(!gl_jwt_verifier_init(NULL, &cfg, (const unsigned char *)g_secret, strlen(g_secret), &err));
    /* the edges of the ranges are accepted */
    ck_assert(make_verifier(&v, "HS256", g_secret, strlen(g_secret), 0, GL_JWT_MAX_TOKEN_BYTES_MIN, &err));
    gl_jwt_verifier_free(&v);
    ck_assert(make_verifier(&v, "HS256", g_secret, strlen(g_secret), GL_JWT_CLOCK_SKEW_S_MAX,
                            GL_JWT_MAX_TOKEN_BYTES_LIMIT, &err));
    gl_jwt_verifier_free(&v);
}
END_TEST

static bool init_from_file(gl_jwt_verifier *v, const char *alg, const char *path, gl_error *err) {
    gl_jwt_config cfg;
    gl_jwt_config_init(&cfg);
    cfg.alg = alg;
    cfg.issuer = ISS;
    cfg.audience = AUD;
    gl_error_clear(err);
    return gl_jwt_verifier_init_from_files(v, &cfg, path, err);
}

START_TEST(test_key_files) {
    gl_jwt_verifier v;
    gl_error err;
    /* the secret file ends in "\n"; the token was signed with the secret alone */
    ck_assert_msg(init_from_file(&v, "HS256", file_path("hs.secret"), &err), "%s", err.message);
    EXPECT(&v, sign_hs(HS_HDR, claims_std()), GL_JWT_OK);
    gl_jwt_verifier_free(&v);
    ck_assert_msg(init_from_file(&v, "HS256", file_path("hs-group-read.secret"), &err), "%s", err.message);
    gl_jwt_verifier_free(&v);
    ck_assert_msg(init_from_file(&v, "ES256", file_path("ec-pub.pem"), &err), "%s", err.message);
    EXPECT(&v, sign_es(ES_HDR, claims_std()), GL_JWT_OK);
    gl_jwt_verifier_free(&v);

    char missing[160];
    snprintf(missing, sizeof missing, "%s/missing", g_dir);
    const char *const bad[][2] = {
        {"HS256", file_path("hs-world-read.secret")},
        {"HS256", file_path("hs-group-write.secret")},
        {"HS256", file_path("empty.secret")},
        {"HS256", file_path("big.secret")},
        {"HS256", missing},
        {"HS256", g_dir},
        {"HS256", ""},
        {"HS256", NULL},
        {"ES256", file_path("ec-priv.pem")},
        {"RS256", file_path("ec-pub.pem")},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(!init_from_file(&v, bad[i][0], bad[i][1], &err), "accepted %s", bad[i][1]);
        ck_assert_msg(err.kind == GL_ERR_CONFIG, "%s: kind %d", bad[i][1], err.kind);
        gl_jwt_verifier_free(&v);
    }
    ck_assert(!init_from_file(&v, "HS256", file_path("hs-world-read.secret"), &err));
    ck_assert_ptr_nonnull(strstr(err.hint, "chmod 600"));
}
END_TEST

/* ---- signatures ---- */

START_TEST(test_wrong_key) {
    char *payload = claims_std();
    EXPECT(&ev, token_ecdsa(ES_HDR, payload, g_ec_other, false), GL_JWT_TOKEN_SIGNATURE_INVALID);
    static const char other_secret[] = "0123456789abcdef0123456789abcdef0123456789abcdef";
    EXPECT(&hv, token_hmac(HS_HDR, payload, other_secret, strlen(other_secret)), GL_JWT_TOKEN_SIGNATURE_INVALID);
    /* the right secret but one byte short */
    EXPECT(&hv, token_hmac(HS_HDR, payload, g_secret, strlen(g_secret) - 1), GL_JWT_TOKEN_SIGNATURE_INVALID);
    free(payload);
}
END_TEST

/* Replaces the segment `seg` of token with that of `from`. */
static char *swap_segment(const char *token, const char *from, int seg) {
    const char *t[4];
    const char *f[4];
    t[0] = token;
    f[0] = from;
    for (int i = 1; i < 3; i++) {
        t[i] = strchr(t[i - 1], '.') + 1;
        f[i] = strchr(f[i - 1], '.') + 1;
    }
    t[3] = token + strlen(token) + 1;
    f[3] = from + strlen(from) + 1;
    char *out = malloc(strlen(token) + strlen(from) + 1);
    ck_assert_ptr_nonnull(out);
    size_t o = 0;
    for (int i = 0; i < 3; i++) {
        const char *s = i == seg ? f[i] : t[i];
        size_t n = (size_t)((i == seg ? f[i + 1] : t[i + 1]) - s) - 1;
        memcpy(out + o, s, n);
        o += n;
        if (i < 2) out[o++] = '.';
    }
    out[o] = '\0';
    return out;
}

START_TEST(test_tampered_payload) {
    char *good_es = sign_es(ES_HDR, claims_std());
    char *good_hs = sign_hs(HS_HDR, claims_std());
    char *other = sign_hs(HS_HDR, CLAIMS({"sub", "\"app:attacker\""}, {"scope", "\"admin\""}));
    EXPECT(&ev, swap_segment(good_es, other, 1), GL_JWT_TOKEN_SIGNATURE_INVALID);
    EXPECT(&hv, swap_segment(good_hs, other, 1), GL_JWT_TOKEN_SIGNATURE_INVALID);
    char *flipped = dup_str(good_hs);
    char *payload = strchr(flipped, '.') + 1;
    payload[5] = payload[5] == 'A' ? 'B' : 'A';
    EXPECT(&hv, flipped, GL_JWT_TOKEN_SIGNATURE_INVALID);
    /* the header is covered too */
    char *hdr = sign_hs("{\"typ\":\"JWT\",\"alg\":\"HS256\"}", claims_std());
    EXPECT(&hv, swap_segment(good_hs, hdr, 0), GL_JWT_TOKEN_SIGNATURE_INVALID);
    free(hdr);
    free(other);
    free(good_es);
    free(good_hs);
}
END_TEST

/* The token with `extra` bytes appended to (extra > 0) or cut from (extra < 0) its signature. */
static char *resize_signature(char *token, int extra) {
    char *sig = strrchr(token, '.') + 1;
    unsigned char raw[128] = {0};
    size_t n = unb64url(sig, raw);
    ck_assert(extra >= 0 || n >= (size_t)-extra);
    size_t new_len = extra >= 0 ? n + (size_t)extra : n - (size_t)-extra;
    char *out = malloc(strlen(token) + 16);
    ck_assert_ptr_nonnull(out);
    size_t prefix = (size_t)(sig - token);
    memcpy(out, token, prefix);
    b64url(raw, new_len, out + prefix);
    free(token);
    return out;
}

START_TEST(test_tampered_signature) {
    char *t = sign_es(ES_HDR, claims_std());
    char *sig = strrchr(t, '.') + 1;
    ck_assert_uint_eq(strlen(sig), 86);
    sig[0] = sig[0] == 'A' ? 'B' : 'A';
    EXPECT(&ev, t, GL_JWT_TOKEN_SIGNATURE_INVALID);

    t = sign_hs(HS_HDR, claims_std());
    sig = strrchr(t, '.') + 1;
    ck_assert_uint_eq(strlen(sig), 43);
    sig[10] = sig[10] == 'A' ? 'B' : 'A';
    EXPECT(&hv, t, GL_JWT_TOKEN_SIGNATURE_INVALID);

    /* a good signature with a byte more or less is not a good signature */
    EXPECT(&ev, resize_signature(sign_es(ES_HDR, claims_std()), 1), GL_JWT_TOKEN_SIGNATURE_INVALID);
    EXPECT(&ev, resize_signature(sign_es(ES_HDR, claims_std()), -1), GL_JWT_TOKEN_SIGNATURE_INVALID);
    EXPECT(&hv, resize_signature(sign_hs(HS_HDR, claims_std()), 1), GL_JWT_TOKEN_SIGNATURE_INVALID);
    EXPECT(&hv, resize_signature(sign_hs(HS_HDR, claims_std()), -1), GL_JWT_TOKEN_SIGNATURE_INVALID);
    EXPECT(&hv, resize_signature(sign_hs(HS_HDR, claims_std()), 0), GL_JWT_OK); /* the helper itself is sound */

    /* wrong lengths: 63 bytes, 65 bytes, empty, all zero (r = s = 0) */
    t = sign_es(ES_HDR, claims_std());
    t[strlen(t) - 2] = '\0';
    EXPECT(&ev, t, GL_JWT_TOKEN_SIGNATURE_INVALID);
    size_t len = 0;
    char *payload = claims_std();
    unsigned char sig65[65] = {0};
    t = signing_input(ES_HDR, payload, &len);
    EXPECT(&ev, with_signature(t, len, sig65, 65), GL_JWT_TOKEN_SIGNATURE_INVALID);
    t = signing_input(ES_HDR, payload, &len);
    EXPECT(&ev, with_signature(t, len, sig65, 64), GL_JWT_TOKEN_SIGNATURE_INVALID);
    EXPECT(&ev, token_unsigned(ES_HDR, payload), GL_JWT_TOKEN_SIGNATURE_INVALID);
    EXPECT(&hv, token_unsigned(HS_HDR, payload), GL_JWT_TOKEN_SIGNATURE_INVALID);
    free(payload);
}
END_TEST

/* DER is what OpenSSL emits; JWS wants R||S, and accepting both would be two spellings of one token. */
START_TEST(test_der_signature) {
    char *payload = claims_std();
    for (int i = 0; i < 8; i++) /* DER length varies (70..72) with the leading bits of r and s */
        EXPECT(&ev, token_ecdsa(ES_HDR, payload, g_ec, true), GL_JWT_TOKEN_SIGNATURE_INVALID);
    EXPECT(&ev, token_ecdsa(ES_HDR, payload, g_ec, false), GL_JWT_OK);
    free(payload);
}
END_TEST

/* ---- time ---- */

static char *with_time(const char *name, int64_t t) {
    char text[32];
    snprintf(text, sizeof text, "%lld", (long long)t);
    return CLAIMS({name, text});
}

START_TEST(test_expiry) {
    EXPECT(&hv, sign_hs(HS_HDR, with_time("exp", (int64_t)NOW - 61)), GL_JWT_TOKEN_EXPIRED);
    EXPECT(&hv, sign_hs(HS_HDR, with_time("exp", (int64_t)NOW - 60)), GL_JWT_TOKEN_EXPIRED);
    EXPECT(&hv, sign_hs(HS_HDR, with_time("exp", (int64_t)NOW - 59)), GL_JWT_OK);
    EXPECT(&hv, sign_hs(HS_HDR, with_time("exp", (int64_t)NOW - 30)), GL_JWT_OK); /* within skew */
    EXPECT(&ev, sign_es(ES_HDR, with_time("exp", (int64_t)NOW - 3600)), GL_JWT_TOKEN_EXPIRED);
    EXPECT(&hv, sign_hs(HS_HDR, with_time("exp", GL_JWT_TIME_S_MAX)), GL_JWT_OK);
    EXPECT(&hv, sign_hs(HS_HDR, with_time("exp", 0)), GL_JWT_TOKEN_EXPIRED);

    gl_jwt_verifier strict;
    gl_error err;
    ck_assert(make_verifier(&strict, "HS256", g_secret, strlen(g_secret), 0, 8192, &err));
    EXPECT(&strict, sign_hs(HS_HDR, with_time("exp", (int64_t)NOW)), GL_JWT_TOKEN_EXPIRED);
    EXPECT(&strict, sign_hs(HS_HDR, with_time("exp", (int64_t)NOW + 1)), GL_JWT_OK);
    gl_jwt_verifier_free(&strict);
}
END_TEST

START_TEST(test_not_before) {
    EXPECT(&hv, sign_hs(HS_HDR, with_time("nbf", (int64_t)NOW + 61)), GL_JWT_TOKEN_NOT_YET_VALID);
    EXPECT(&hv, sign_hs(HS_HDR, with_time("nbf", (int64_t)NOW + 60)), GL_JWT_OK);
    EXPECT(&ev, sign_es(ES_HDR, with_time("nbf", (int64_t)NOW + 86400)), GL_JWT_TOKEN_NOT_YET_VALID);
    EXPECT(&hv, sign_hs(HS_HDR, with_time("iat", (int64_t)NOW + 61)), GL_JWT_TOKEN_NOT_YET_VALID);
    EXPECT(&hv, sign_hs(HS_HDR, with_time("iat", (int64_t)NOW + 60)), GL_JWT_OK);
    /* the same token, later, is fine */
    EXPECT_AT(&hv, sign_hs(HS_HDR, with_time("nbf", (int64_t)NOW + 100)), NOW + 100, GL_JWT_OK);
    /* a clock the verifier cannot reason about */
    EXPECT_AT(&hv, sign_hs(HS_HDR, claims_std()), (time_t)-1, GL_JWT_INTERNAL);
}
END_TEST

START_TEST(test_time_claim_types) {
    EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"exp", NULL})), GL_JWT_TOKEN_CLAIMS_INVALID);
    static const char *const bad[] = {"1700000300.0", "1.7000003e9", "\"1700000300\"", "true", "null", "-1",
                                      "[1700000300]", "{}",          "253402300800"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"exp", bad[i]})), GL_JWT_TOKEN_CLAIMS_INVALID);
        EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"nbf", bad[i]})), GL_JWT_TOKEN_CLAIMS_INVALID);
        EXPECT(&ev, sign_es(ES_HDR, CLAIMS({"iat", bad[i]})), GL_JWT_TOKEN_CLAIMS_INVALID);
    }
    /* beyond int64: the JSON parser itself refuses it */
    EXPECT(&hv,
           sign_hs(HS_HDR, dup_str("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"" SUB
                                   "\",\"exp\":100000000000000000000}")),
           GL_JWT_TOKEN_MALFORMED);
}
END_TEST

/* ---- iss, aud, sub, scope, regions ---- */

START_TEST(test_issuer) {
    static const char *const bad[] = {"\"https://evil.test\"",
                                      "\"https://auth.geoledger.test/\"",
                                      "\"https://auth.geoledger.tes\"",
                                      "\"HTTPS://AUTH.GEOLEDGER.TEST\"",
                                      "\"\"",
                                      "1",
                                      "null",
                                      "[\"https://auth.geoledger.test\"]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"iss", bad[i]})), GL_JWT_TOKEN_ISSUER_INVALID);
        EXPECT(&ev, sign_es(ES_HDR, CLAIMS({"iss", bad[i]})), GL_JWT_TOKEN_ISSUER_INVALID);
    }
    EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"iss", NULL})), GL_JWT_TOKEN_ISSUER_INVALID);
}
END_TEST

START_TEST(test_audience) {
    static const char *const bad[] = {"\"other\"", "\"ledgerd \"",         "\"LEDGERD\"", "\"ledger\"",
                                      "\"\"",      "[\"other\",\"x\"]",    "[]",          "5",
                                      "null",      "{\"aud\":\"ledgerd\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"aud", bad[i]})), GL_JWT_TOKEN_AUDIENCE_INVALID);
        EXPECT(&ev, sign_es(ES_HDR, CLAIMS({"aud", bad[i]})), GL_JWT_TOKEN_AUDIENCE_INVALID);
    }
    EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"aud", NULL})), GL_JWT_TOKEN_AUDIENCE_INVALID);
    EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"aud", "[\"" AUD "\"]"})), GL_JWT_OK);
    EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"aud", "[\"a\",\"b\",\"" AUD "\"]"})), GL_JWT_OK);
    /* malformed arrays are refused even when they contain us */
    EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"aud", "[\"" AUD "\",1]"})), GL_JWT_TOKEN_CLAIMS_INVALID);
    EXPECT(&hv,
           sign_hs(HS_HDR, CLAIMS({"aud", "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\","
                                          "\"12\",\"13\",\"14\",\"15\",\"16\",\"" AUD "\"]"})),
           GL_JWT_TOKEN_CLAIMS_INVALID);
    EXPECT(&hv,
           sign_hs(HS_HDR, CLAIMS({"aud", "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\","
                                          "\"12\",\"13\",\"14\",\"15\",\"" AUD "\"]"})),
           GL_JWT_OK);
}
END_TEST

START_TEST(test_subject) {
    static const char *const bad[] = {"\"\"",    "\"a b\"", "\"caf\\u00e9\"", "\"a\\n\"",         "\"a+b\"",
                                      "\"a#b\"", "5",       "null",           "[\"app:shop-42\"]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"sub", bad[i]})), GL_JWT_TOKEN_CLAIMS_INVALID);
    EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"sub", NULL})), GL_JWT_TOKEN_CLAIMS_INVALID);
    EXPECT(&ev, sign_es(ES_HDR, CLAIMS({"sub", NULL})), GL_JWT_TOKEN_CLAIMS_INVALID);

    char text[GL_JWT_SUB_MAX + 8];
    memset(text, 'x', sizeof text);
    text[0] = '"';
    text[GL_JWT_SUB_MAX + 1] = '"';
    text[GL_JWT_SUB_MAX + 2] = '\0';
    gl_jwt_claims c = EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"sub", text})), GL_JWT_OK);
    ck_assert_uint_eq(strlen(c.sub), GL_JWT_SUB_MAX);
    text[GL_JWT_SUB_MAX + 1] = 'x';
    text[GL_JWT_SUB_MAX + 2] = '"';
    text[GL_JWT_SUB_MAX + 3] = '\0';
    EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"sub", text})), GL_JWT_TOKEN_CLAIMS_INVALID);
    c = EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"sub", "\"op:alice_b@example.com/Team-1.2\""})), GL_JWT_OK);
    ck_assert_str_eq(c.sub, "op:alice_b@example.com/Team-1.2");
}
END_TEST

START_TEST(test_scope) {
    gl_jwt_claims c = EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"scope", NULL})), GL_JWT_OK);
    ck_assert_uint_eq(c.scopes, 0);
    c = EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"scope", "\"\""})), GL_JWT_OK);
    ck_assert_uint_eq(c.scopes, 0);
    c = EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"scope", "\"admin\""})), GL_JWT_OK);
    ck_assert_uint_eq(c.scopes, 1u << GL_SCOPE_ADMIN);
    ck_assert(!gl_jwt_has_scope(&c, GL_SCOPE_ACCOUNTS_READ)); /* admin implies nothing here */
    c = EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"scope", "\"  accounts:read   events:read \""})), GL_JWT_OK);
    ck_assert_uint_eq(c.scopes, (1u << GL_SCOPE_ACCOUNTS_READ) | (1u << GL_SCOPE_EVENTS_READ));
    c = EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"scope", "\"Admin ADMIN admin:all accounts:read:x\""})), GL_JWT_OK);
    ck_assert_uint_eq(c.scopes, 0);
    c = EXPECT(
        &hv,
        sign_hs(HS_HDR, CLAIMS({"scope", "\"accounts:read accounts:write transfers:write transfers:read events:read "
                                         "mandates:write reconciliation:run reports:read accounts:issue webhooks:write admin\""})),
        GL_JWT_OK);
    ck_assert_uint_eq(c.scopes, (1u << GL_SCOPE_COUNT) - 1);
    EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"scope", "[\"admin\"]"})), GL_JWT_TOKEN_CLAIMS_INVALID);
    EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"scope", "7"})), GL_JWT_TOKEN_CLAIMS_INVALID);

    char text[GL_JWT_SCOPE_BYTES_MAX + 8];
    memset(text, ' ', sizeof text);
    text[0] = '"';
    memcpy(text + 1, "admin", 5);
    text[GL_JWT_SCOPE_BYTES_MAX + 1] = '"';
    text[GL_JWT_SCOPE_BYTES_MAX + 2] = '\0';
    c = EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"scope", text})), GL_JWT_OK);
    ck_assert(gl_jwt_has_scope(&c, GL_SCOPE_ADMIN));
    text[GL_JWT_SCOPE_BYTES_MAX + 1] = ' ';
    text[GL_JWT_SCOPE_BYTES_MAX + 2] = '"';
    text[GL_JWT_SCOPE_BYTES_MAX + 3] = '\0';
    EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"scope", text})), GL_JWT_TOKEN_CLAIMS_INVALID);
}
END_TEST

START_TEST(test_regions) {
    gl_jwt_claims c = EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"regions", NULL})), GL_JWT_OK);
    ck_assert(!c.has_regions);
    c = EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"regions", "[]"})), GL_JWT_OK);
    ck_assert(c.has_regions);
    ck_assert_uint_eq(c.n_regions, 0);
    c = EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"regions", "[\"eu\",\"ap_south-1\",\"abcdefghijklmnop\"]"})), GL_JWT_OK);
    ck_assert_uint_eq(c.n_regions, 3);
    ck_assert_str_eq(c.regions[1], "ap_south-1");
    ck_assert_str_eq(c.regions[2], "abcdefghijklmnop");
    static const char *const sixteen = "[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\","
                                       "\"m\",\"n\",\"o\",\"p\"]";
    c = EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"regions", sixteen})), GL_JWT_OK);
    ck_assert_uint_eq(c.n_regions, 16);
    ck_assert_str_eq(c.regions[15], "p");
    static const char *const bad[] = {
        "[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\",\"i\",\"j\",\"k\",\"l\",\"m\",\"n\",\"o\",\"p\",\"q\"]",
        "\"eu\"",
        "[\"EU\"]",
        "[\"\"]",
        "[\"abcdefghijklmnopq\"]",
        "[1]",
        "[\"eu\",null]",
        "[\"e u\"]",
        "{}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        EXPECT(&hv, sign_hs(HS_HDR, CLAIMS({"regions", bad[i]})), GL_JWT_TOKEN_CLAIMS_INVALID);
}
END_TEST

/* max_lifetime_s: exp - iat at most, iat required; checked after the times
 * (an expired token says expired); 0 = no limit. */
static void lifetime_verifier(gl_jwt_verifier *v, int max_lifetime_s) {
    gl_jwt_config cfg;
    gl_jwt_config_init(&cfg);
    cfg.alg = "HS256";
    cfg.issuer = ISS;
    cfg.audience = AUD;
    cfg.max_lifetime_s = max_lifetime_s;
    gl_error err;
    gl_error_clear(&err);
    ck_assert_msg(gl_jwt_verifier_init(v, &cfg, (const unsigned char *)g_secret, strlen(g_secret), &err), "%s", err.message);
}

START_TEST(test_lifetime) {
    gl_jwt_verifier lv;
    lifetime_verifier(&lv, 310); /* the standard claims live exactly 310 s (iat NOW - 10, exp NOW + 300) */
    EXPECT(&lv, sign_hs(HS_HDR, claims_std()), GL_JWT_OK);
    EXPECT(&lv, sign_hs(HS_HDR, CLAIMS({"iat", NULL})), GL_JWT_TOKEN_LIFETIME_INVALID);
    EXPECT(&lv, sign_hs(HS_HDR, CLAIMS({"exp", "1699999900"}, {"iat", "1699998900"})), GL_JWT_TOKEN_EXPIRED);
    gl_jwt_verifier_free(&lv);
    lifetime_verifier(&lv, 309);
    EXPECT(&lv, sign_hs(HS_HDR, claims_std()), GL_JWT_TOKEN_LIFETIME_INVALID);
    gl_jwt_verifier_free(&lv);
    lifetime_verifier(&lv, 0);
    EXPECT(&lv, sign_hs(HS_HDR, CLAIMS({"iat", NULL})), GL_JWT_OK);
    gl_jwt_verifier_free(&lv);
    ck_assert_str_eq(gl_jwt_reason_name(GL_JWT_TOKEN_LIFETIME_INVALID), "token_lifetime_invalid");

    gl_jwt_config cfg;
    gl_jwt_config_init(&cfg);
    cfg.alg = "HS256";
    cfg.issuer = ISS;
    cfg.audience = AUD;
    gl_error err;
    cfg.max_lifetime_s = -1;
    ck_assert(!gl_jwt_verifier_init(&lv, &cfg, (const unsigned char *)g_secret, strlen(g_secret), &err));
    cfg.max_lifetime_s = GL_JWT_LIFETIME_S_MAX + 1;
    ck_assert(!gl_jwt_verifier_init(&lv, &cfg, (const unsigned char *)g_secret, strlen(g_secret), &err));
    ck_assert_int_eq(err.kind, GL_ERR_CONFIG);
}
END_TEST

START_TEST(test_names) {
    static const char *const want[] = {"ok",
                                       "token_malformed",
                                       "token_too_long",
                                       "token_algorithm_rejected",
                                       "token_signature_invalid",
                                       "token_expired",
                                       "token_not_yet_valid",
                                       "token_issuer_invalid",
                                       "token_audience_invalid",
                                       "token_claims_invalid",
                                       "internal_error"};
    for (int r = GL_JWT_OK; r <= GL_JWT_INTERNAL; r++) ck_assert_str_eq(gl_jwt_reason_name((gl_jwt_reason)r), want[r]);
    ck_assert_str_eq(gl_jwt_reason_name((gl_jwt_reason)99), "unknown");
    ck_assert_str_eq(gl_jwt_reason_name((gl_jwt_reason)-1), "unknown");

    for (int s = 0; s < GL_SCOPE_COUNT; s++) {
        const char *name = gl_jwt_scope_name((gl_jwt_scope)s);
        ck_assert_ptr_nonnull(name);
        gl_jwt_scope back = GL_SCOPE_COUNT;
        ck_assert(gl_jwt_scope_from_name(name, strlen(name), &back));
        ck_assert_int_eq(back, s);
    }
    gl_jwt_scope out;
    ck_assert(gl_jwt_scope_from_name("transfers:write", 15, &out) && out == GL_SCOPE_TRANSFERS_WRITE);
    ck_assert(gl_jwt_scope_from_name("reconciliation:run", 18, &out) && out == GL_SCOPE_RECONCILIATION_RUN);
    ck_assert(!gl_jwt_scope_from_name("admin", 4, &out));
    ck_assert(!gl_jwt_scope_from_name("admin ", 6, &out));
    ck_assert(!gl_jwt_scope_from_name("", 0, &out));
    ck_assert(!gl_jwt_scope_from_name(NULL, 5, &out));
    ck_assert_ptr_null(gl_jwt_scope_name(GL_SCOPE_COUNT));
    gl_jwt_claims c;
    memset(&c, 0xff, sizeof c);
    ck_assert(!gl_jwt_has_scope(&c, GL_SCOPE_COUNT));
    ck_assert(!gl_jwt_has_scope(NULL, GL_SCOPE_ADMIN));
}
END_TEST

/* ---- malformed tokens ---- */

/* Sets the last character of the segment ending at `end` to have a stray low bit. */
static void stray_bit(char *last) {
    const char *p = strchr(alphabet, *last);
    ck_assert_ptr_nonnull(p);
    *last = alphabet[(p - alphabet) | 1];
}

START_TEST(test_garbage) {
    static const char *const junk[] = {"",      "abc",     "a.b",     "a.b.c.d",       "..", "...",
                                       ".e30.", "e30.e30", "a b.c.d", "eyJhb.e30.abc", "\n", "Bearer x.y.z"};
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
        EXPECT(&hv, dup_str(junk[i]), GL_JWT_TOKEN_MALFORMED);
        EXPECT(&ev, dup_str(junk[i]), GL_JWT_TOKEN_MALFORMED);
    }
    gl_jwt_claims c;
    gl_error err;
    ck_assert_int_eq(gl_jwt_verify(&hv, NULL, NOW, &c, &err), GL_JWT_TOKEN_MALFORMED);

    char *good = sign_hs(HS_HDR, claims_std());
    size_t n = strlen(good);
    char *t = malloc(n + 8);
    ck_assert_ptr_nonnull(t);
    snprintf(t, n + 8, "%s.x", good);
    EXPECT(&hv, t, GL_JWT_TOKEN_MALFORMED); /* four segments */
    t = malloc(n + 8);
    ck_assert_ptr_nonnull(t);
    snprintf(t, n + 8, " %s", good);
    EXPECT(&hv, t, GL_JWT_TOKEN_MALFORMED);
    t = malloc(n + 8);
    ck_assert_ptr_nonnull(t);
    snprintf(t, n + 8, "%s\n", good);
    EXPECT(&hv, t, GL_JWT_TOKEN_MALFORMED);
    t = malloc(n + 8);
    ck_assert_ptr_nonnull(t);
    snprintf(t, n + 8, "%s=", good); /* padding, as standard base64 would have it (43 + 1) */
    EXPECT(&hv, t, GL_JWT_TOKEN_MALFORMED);
    static const char bad_chars[] = {'+', '/', '=', '*', ' ', '\x80', '\xff'};
    for (size_t i = 0; i < sizeof bad_chars; i++) {
        t = dup_str(good);
        t[2] = bad_chars[i]; /* in the header */
        EXPECT(&hv, t, GL_JWT_TOKEN_MALFORMED);
        t = dup_str(good);
        t[n - 3] = bad_chars[i]; /* in the signature */
        EXPECT(&hv, t, GL_JWT_TOKEN_MALFORMED);
    }
    t = dup_str(good);
    stray_bit(t + n - 1); /* 43 characters: the last carries 2 unused bits */
    EXPECT(&hv, t, GL_JWT_TOKEN_MALFORMED);
    free(good);

    /* a 16-byte header is 22 characters; standard base64 pads it with "==" */
    char *p = claims_std();
    good = token_hmac("{\"alg\":\"HS256\"} ", p, g_secret, strlen(g_secret));
    EXPECT(&hv, dup_str(good), GL_JWT_OK);
    char *dot = strchr(good, '.');
    ck_assert_int_eq(dot - good, 22);
    t = malloc(strlen(good) + 3);
    ck_assert_ptr_nonnull(t);
    snprintf(t, strlen(good) + 3, "%.22s==%s", good, dot);
    EXPECT(&hv, t, GL_JWT_TOKEN_MALFORMED);
    t = dup_str(good);
    stray_bit(t + 21); /* 22 characters: the last carries 4 unused bits */
    EXPECT(&hv, t, GL_JWT_TOKEN_MALFORMED);
    free(good);
    free(p);
}
END_TEST

START_TEST(test_header_not_object) {
    static const char *const headers[] = {"[]",
                                          "\"JWT\"",
                                          "null",
                                          "42",
                                          "{",
                                          "not json",
                                          "",
                                          "{\"alg\":\"HS256\"} x",
                                          "{\"alg\":\"HS256\"}{}",
                                          "[\"alg\",\"HS256\"]"};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++)
        EXPECT(&hv, sign_hs(headers[i], claims_std()), GL_JWT_TOKEN_MALFORMED);
    /* and the claims must be an object too */
    static const char *const payloads[] = {"[]", "\"x\"", "null", "{", "", "{} {}"};
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        EXPECT(&hv, sign_hs(HS_HDR, dup_str(payloads[i])), GL_JWT_TOKEN_MALFORMED);
        EXPECT(&ev, sign_es(ES_HDR, dup_str(payloads[i])), GL_JWT_TOKEN_MALFORMED);
    }
}
END_TEST

/* Two parsers that disagree on which duplicate wins let a token mean two things. */
START_TEST(test_duplicate_keys) {
    EXPECT(&hv, sign_hs("{\"alg\":\"HS256\",\"alg\":\"none\"}", claims_std()), GL_JWT_TOKEN_MALFORMED);
    EXPECT(&hv, sign_hs("{\"alg\":\"none\",\"alg\":\"HS256\"}", claims_std()), GL_JWT_TOKEN_MALFORMED);
    EXPECT(&ev, sign_es("{\"alg\":\"ES256\",\"typ\":\"JWT\",\"typ\":\"JWT\"}", claims_std()), GL_JWT_TOKEN_MALFORMED);
    char *p = claims_std();
    size_t n = strlen(p) + 64;
    char *dup = malloc(n);
    ck_assert_ptr_nonnull(dup);
    snprintf(dup, n, "{\"sub\":\"app:attacker\",%s", p + 1);
    free(p);
    EXPECT(&hv, sign_hs(HS_HDR, dup), GL_JWT_TOKEN_MALFORMED);
    p = claims_std();
    dup = malloc(n);
    ck_assert_ptr_nonnull(dup);
    snprintf(dup, n, "{\"scope\":\"admin\",%s", p + 1);
    free(p);
    EXPECT(&ev, sign_es(ES_HDR, dup), GL_JWT_TOKEN_MALFORMED);
}
END_TEST

START_TEST(test_too_long) {
    char *huge = malloc(100001);
    ck_assert_ptr_nonnull(huge);
    memset(huge, 'a', 100000);
    huge[100000] = '\0';
    EXPECT(&hv, dup_str(huge), GL_JWT_TOKEN_TOO_LONG);
    huge[8193] = '\0';
    EXPECT(&ev, dup_str(huge), GL_JWT_TOKEN_TOO_LONG);
    huge[8192] = '\0';
    EXPECT(&ev, dup_str(huge), GL_JWT_TOKEN_MALFORMED); /* at the limit: looked at, and refused as junk */
    free(huge);

    char *good = sign_hs(HS_HDR, claims_std());
    size_t n = strlen(good);
    gl_jwt_verifier tight;
    gl_error err;
    ck_assert(make_verifier(&tight, "HS256", g_secret, strlen(g_secret), 60, n, &err));
    EXPECT(&tight, dup_str(good), GL_JWT_OK);
    gl_jwt_verifier_free(&tight);
    ck_assert(make_verifier(&tight, "HS256", g_secret, strlen(g_secret), 60, n - 1, &err));
    EXPECT(&tight, dup_str(good), GL_JWT_TOKEN_TOO_LONG);
    gl_jwt_verifier_free(&tight);
    free(good);
}
END_TEST

START_TEST(test_header_params) {
    EXPECT(&hv, sign_hs("{\"alg\":\"HS256\",\"typ\":\"JWT\",\"crit\":[\"exp\"],\"exp\":1}", claims_std()),
           GL_JWT_TOKEN_MALFORMED);
    EXPECT(&hv, sign_hs("{\"alg\":\"HS256\",\"crit\":[]}", claims_std()), GL_JWT_TOKEN_MALFORMED);
    EXPECT(&ev, sign_es("{\"alg\":\"ES256\",\"crit\":[\"b64\"],\"b64\":false}", claims_std()), GL_JWT_TOKEN_MALFORMED);
    EXPECT(&hv, sign_hs("{\"alg\":\"HS256\",\"typ\":\"jwt\"}", claims_std()), GL_JWT_TOKEN_MALFORMED);
    EXPECT(&hv, sign_hs("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", claims_std()), GL_JWT_TOKEN_MALFORMED);
    EXPECT(&hv, sign_hs("{\"alg\":\"HS256\",\"typ\":1}", claims_std()), GL_JWT_TOKEN_MALFORMED);
    EXPECT(&hv, sign_hs("{\"alg\":\"HS256\",\"typ\":null}", claims_std()), GL_JWT_TOKEN_MALFORMED);
    EXPECT(&hv, sign_hs("{\"alg\":\"HS256\"}", claims_std()), GL_JWT_OK);
    EXPECT(
        &hv,
        sign_hs("{\"kid\":\"2024-01\",\"alg\":\"HS256\",\"typ\":\"JWT\",\"x5u\":\"https://evil.test\"}", claims_std()),
        GL_JWT_OK);
}
END_TEST

/* No half-checked claims may reach a caller that forgets to look at the reason. */
START_TEST(test_out_cleared) {
    gl_jwt_claims c;
    gl_error err;
    memset(&c, 0xAA, sizeof c);
    char *t = sign_hs(HS_HDR, with_time("exp", (int64_t)NOW - 3600));
    ck_assert_int_eq(gl_jwt_verify(&hv, t, NOW, &c, &err), GL_JWT_TOKEN_EXPIRED);
    free(t);
    const unsigned char *bytes = (const unsigned char *)&c;
    for (size_t i = 0; i < sizeof c; i++) ck_assert_uint_eq(bytes[i], 0);
    ck_assert_int_eq(err.kind, GL_ERR_INVALID);
    ck_assert_str_eq(err.message, "token has expired");

    gl_jwt_verifier blank;
    memset(&blank, 0, sizeof blank);
    t = sign_hs(HS_HDR, claims_std());
    ck_assert_int_eq(gl_jwt_verify(&blank, t, NOW, &c, &err), GL_JWT_INTERNAL);
    ck_assert_int_eq(err.kind, GL_ERR_INTERNAL);
    ck_assert_int_eq(gl_jwt_verify(NULL, t, NOW, &c, &err), GL_JWT_INTERNAL);
    ck_assert_int_eq(gl_jwt_verify(&hv, t, NOW, NULL, &err), GL_JWT_INTERNAL);
    ck_assert_int_eq(gl_jwt_verify(&hv, t, NOW, &c, NULL), GL_JWT_OK); /* err is optional */
    free(t);
}
END_TEST

/* ---- signing ---- */

/* Checks gl_jwt_sign's ES256 output with OpenSSL directly, not with jwt.c. */
static void verify_independently(const char *token) {
    const char *sig_b64 = strrchr(token, '.') + 1;
    ck_assert_uint_eq(strlen(sig_b64), 86);
    unsigned char raw[66];
    ck_assert_uint_eq(unb64url(sig_b64, raw), 64);
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, 32, NULL);
    BIGNUM *s = BN_bin2bn(raw + 32, 32, NULL);
    ck_assert(es && r && s && ECDSA_SIG_set0(es, r, s) == 1);
    unsigned char der[80];
    unsigned char *p = der;
    int der_len = i2d_ECDSA_SIG(es, &p);
    ck_assert_int_gt(der_len, 0);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ck_assert_int_eq(EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, g_ec, NULL), 1);
    ck_assert_int_eq(
        EVP_DigestVerify(md, der, (size_t)der_len, (const unsigned char *)token, (size_t)(sig_b64 - 1 - token)), 1);
    EVP_MD_CTX_free(md);
    ECDSA_SIG_free(es);
}

START_TEST(test_sign_round_trip) {
    json_t *c = std_claims();
    char *t = NULL;
    gl_error err;
    ck_assert_msg(gl_jwt_sign("HS256", (const unsigned char *)g_secret, strlen(g_secret), c, &t, &err), "%s",
                  err.message);
    ck_assert_uint_eq(strlen(strrchr(t, '.') + 1), 43);
    gl_jwt_claims got = EXPECT(&hv, t, GL_JWT_OK);
    check_std_claims(&got);

    ck_assert_msg(gl_jwt_sign("ES256", (const unsigned char *)g_ec_priv_pem, strlen(g_ec_priv_pem), c, &t, &err), "%s",
                  err.message);
    verify_independently(t);
    got = EXPECT(&ev, t, GL_JWT_OK);
    check_std_claims(&got);

    ck_assert_msg(gl_jwt_sign_from_file("ES256", file_path("ec-priv.pem"), c, &t, &err), "%s", err.message);
    EXPECT(&ev, t, GL_JWT_OK);
    ck_assert_msg(gl_jwt_sign_from_file("HS256", file_path("hs.secret"), c, &t, &err), "%s", err.message);
    EXPECT(&hv, t, GL_JWT_OK); /* the file's final newline is not part of the secret */
    json_decref(c);
}
END_TEST

static void expect_sign_error(const char *alg, const char *key, size_t key_len, const json_t *c, gl_error_kind kind,
                              int line) {
    char *t = (char *)"untouched";
    gl_error err;
    gl_error_clear(&err);
    ck_assert_msg(!gl_jwt_sign(alg, (const unsigned char *)key, key_len, c, &t, &err), "line %d: signed", line);
    ck_assert_msg(t == NULL, "line %d: token not cleared", line);
    ck_assert_msg(err.kind == kind, "line %d: kind %d (%s)", line, err.kind, err.message);
}
#define EXPECT_SIGN_ERROR(alg, key, len, c, kind) expect_sign_error(alg, key, len, c, kind, __LINE__)

START_TEST(test_sign_errors) {
    json_t *c = std_claims();
    EXPECT_SIGN_ERROR("none", g_secret, strlen(g_secret), c, GL_ERR_INVALID);
    EXPECT_SIGN_ERROR("hs256", g_secret, strlen(g_secret), c, GL_ERR_INVALID);
    EXPECT_SIGN_ERROR(NULL, g_secret, strlen(g_secret), c, GL_ERR_INVALID);
    EXPECT_SIGN_ERROR("HS256", g_secret, 31, c, GL_ERR_CONFIG);
    EXPECT_SIGN_ERROR("HS256", g_ec_pub_pem, strlen(g_ec_pub_pem), c, GL_ERR_CONFIG);
    EXPECT_SIGN_ERROR("HS256", NULL, 0, c, GL_ERR_INVALID);
    EXPECT_SIGN_ERROR("ES256", g_ec_pub_pem, strlen(g_ec_pub_pem), c, GL_ERR_CONFIG);
    EXPECT_SIGN_ERROR("ES256", g_p384_priv_pem, strlen(g_p384_priv_pem), c, GL_ERR_CONFIG);
    EXPECT_SIGN_ERROR("ES256", g_encrypted_pem, strlen(g_encrypted_pem), c, GL_ERR_CONFIG);
    EXPECT_SIGN_ERROR("ES256", g_secret, strlen(g_secret), c, GL_ERR_CONFIG);
    json_t *array = json_array();
    EXPECT_SIGN_ERROR("HS256", g_secret, strlen(g_secret), array, GL_ERR_INVALID);
    EXPECT_SIGN_ERROR("HS256", g_secret, strlen(g_secret), NULL, GL_ERR_INVALID);
    json_decref(array);
    char *big = malloc(7000);
    ck_assert_ptr_nonnull(big);
    memset(big, 'x', 6999);
    big[6999] = '\0';
    json_object_set_new(c, "pad", json_string(big));
    free(big);
    EXPECT_SIGN_ERROR("HS256", g_secret, strlen(g_secret), c, GL_ERR_INVALID);
    json_decref(c);

    c = std_claims();
    char *t = NULL;
    gl_error err;
    ck_assert(!gl_jwt_sign_from_file("HS256", file_path("hs-world-read.secret"), c, &t, &err));
    ck_assert_int_eq(err.kind, GL_ERR_CONFIG);
    ck_assert(!gl_jwt_sign_from_file("ES256", file_path("ec-pub.pem"), c, &t, &err)); /* 0644, and public */
    ck_assert(!gl_jwt_sign_from_file("ES256", NULL, c, &t, &err));
    ck_assert(!gl_jwt_sign("HS256", (const unsigned char *)g_secret, strlen(g_secret), c, NULL, &err));
    ck_assert_ptr_null(t);
    json_decref(c);
}
END_TEST

/* ---- concurrency: one verifier, many threads (run it under TSan/ASan too) ---- */

typedef struct {
    const char *hs;
    const char *es;
    int failures;
} thread_job;

static void *verify_many(void *arg) {
    thread_job *job = arg;
    for (int i = 0; i < THREAD_ROUNDS; i++) {
        gl_jwt_claims c;
        gl_error err;
        if (gl_jwt_verify(&hv, job->hs, NOW, &c, &err) != GL_JWT_OK) job->failures++;
        if (gl_jwt_verify(&ev, job->es, NOW, &c, &err) != GL_JWT_OK) job->failures++;
        if (gl_jwt_verify(&ev, job->hs, NOW, &c, &err) != GL_JWT_TOKEN_ALGORITHM_REJECTED) job->failures++;
    }
    return NULL;
}

START_TEST(test_threads) {
    char *hs = sign_hs(HS_HDR, claims_std());
    char *es = sign_es(ES_HDR, claims_std());
    pthread_t th[THREADS];
    thread_job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (thread_job){hs, es, 0};
        ck_assert_int_eq(pthread_create(&th[i], NULL, verify_many, &jobs[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
        ck_assert_int_eq(jobs[i].failures, 0);
    }
    free(hs);
    free(es);
}
END_TEST

static Suite *jwt_suite(void) {
    Suite *s = suite_create("jwt");
    TCase *valid = tcase_create("valid");
    tcase_add_checked_fixture(valid, setup, teardown);
    tcase_add_test(valid, test_hs256_valid);
    tcase_add_test(valid, test_es256_valid);
    tcase_add_test(valid, test_rfc7515_vectors);
    tcase_add_test(valid, test_threads);
    suite_add_tcase(s, valid);

    TCase *alg = tcase_create("algorithm");
    tcase_add_checked_fixture(alg, setup, teardown);
    tcase_add_test(alg, test_alg_none);
    tcase_add_test(alg, test_alg_spelling);
    tcase_add_test(alg, test_key_confusion);
    suite_add_tcase(s, alg);

    TCase *cfg = tcase_create("config");
    tcase_add_checked_fixture(cfg, setup, teardown);
    tcase_add_test(cfg, test_config_keys);
    tcase_add_test(cfg, test_config_settings);
    tcase_add_test(cfg, test_key_files);
    suite_add_tcase(s, cfg);

    TCase *sig = tcase_create("signature");
    tcase_add_checked_fixture(sig, setup, teardown);
    tcase_add_test(sig, test_wrong_key);
    tcase_add_test(sig, test_tampered_payload);
    tcase_add_test(sig, test_tampered_signature);
    tcase_add_test(sig, test_der_signature);
    suite_add_tcase(s, sig);

    TCase *claims_tc = tcase_create("claims");
    tcase_add_checked_fixture(claims_tc, setup, teardown);
    tcase_add_test(claims_tc, test_expiry);
    tcase_add_test(claims_tc, test_not_before);
    tcase_add_test(claims_tc, test_time_claim_types);
    tcase_add_test(claims_tc, test_issuer);
    tcase_add_test(claims_tc, test_audience);
    tcase_add_test(claims_tc, test_subject);
    tcase_add_test(claims_tc, test_scope);
    tcase_add_test(claims_tc, test_regions);
    tcase_add_test(claims_tc, test_names);
    tcase_add_test(claims_tc, test_lifetime);
    tcase_add_test(claims_tc, test_out_cleared);
    suite_add_tcase(s, claims_tc);

    TCase *shape = tcase_create("shape");
    tcase_add_checked_fixture(shape, setup, teardown);
    tcase_add_test(shape, test_garbage);
    tcase_add_test(shape, test_header_not_object);
    tcase_add_test(shape, test_duplicate_keys);
    tcase_add_test(shape, test_too_long);
    tcase_add_test(shape, test_header_params);
    suite_add_tcase(s, shape);

    TCase *sign = tcase_create("sign");
    tcase_add_checked_fixture(sign, setup, teardown);
    tcase_add_test(sign, test_sign_round_trip);
    tcase_add_test(sign, test_sign_errors);
    suite_add_tcase(s, sign);
    return s;
}

int main(void) {
    make_keys();
    SRunner *sr = srunner_create(jwt_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    free_keys();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
