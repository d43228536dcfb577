/*
 * jwt.h — JSON Web Token verification for ledgerd, and dev-token signing for
 * `ledgerctl token` (auth/README.md).
 *
 * Every request to ledgerd carries `Authorization: Bearer <JWT>` (API.md,
 * "Tokens"). This module turns that string into trusted claims, or into one
 * stable reason code that becomes the 401 error's `code`. It knows nothing of
 * HTTP; authorization (scope and object checks) is the caller's job.
 *
 * Rules, in the order they are checked (DESIGN §6: zero trust):
 *  1. Length: at most max_token_bytes (default 8 KiB), before anything else
 *     is looked at.                                          -> token_too_long
 *  2. Shape: exactly three dot-separated segments, each strict base64url
 *     without padding: no '=', no character outside [A-Za-z0-9_-], no
 *     impossible length, no stray bits after the last byte (so one token has
 *     exactly one spelling).                                 -> token_malformed
 *  3. Header: a JSON object (duplicate keys rejected). `alg` must equal the
 *     configured algorithm byte for byte: "none", "None", "hs256", and the
 *     other supported algorithm are all refused. Pinning the algorithm in
 *     configuration, never believing the token, is what defeats algorithm
 *     confusion (an HS256 token "signed" with the ES256 public key as HMAC
 *     secret).                                    -> token_algorithm_rejected
 *     `typ`, if present, must be "JWT"; `crit` is refused (we implement no
 *     extension, and RFC 7515 §4.1.11 says a verifier must then reject);
 *     `kid`, `jku`, `jwk`, `x5u`, `x5c` are ignored: keys come only from
 *     configuration, never from the token.                   -> token_malformed
 *  4. Signature, over the segments exactly as received:
 *     HS256: HMAC-SHA-256, 32 bytes, compared in constant time.
 *     ES256: ECDSA P-256 SHA-256, the raw 64-byte R||S of RFC 7518 §3.4;
 *     a DER-encoded signature (70-72 bytes) or any other length is refused.
 *     The payload's JSON is not parsed until the signature holds, so an
 *     unauthenticated sender reaches only the base64 decoder and the header
 *     parser.                                     -> token_signature_invalid
 *  5. Claims: a JSON object (duplicate keys rejected).    -> token_malformed
 *     Numbers must be JSON integers (1.0, 1e3 and "1" are refused) within
 *     0..year 9999.
 *     `exp` required; `nbf`, `iat` optional; `sub` required, 1..128 chars of
 *     [A-Za-z0-9._:@/-]; `scope` optional string (<= 1024 bytes) of
 *     space-separated names, unknown names ignored; `regions` optional array
 *     of <= 16 region names ([a-z0-9_-]{1,16}, as in ledger.conf); other
 *     claims ignored; an `aud` array that is not <= 16 strings.
 *                                                      -> token_claims_invalid
 *     `iss` must equal the configured issuer.         -> token_issuer_invalid
 *     `aud` must be the configured audience, or an array (<= 16 strings)
 *     containing it.                                -> token_audience_invalid
 *     now >= exp + skew                                      -> token_expired
 *     nbf > now + skew, or iat > now + skew (a token from the future means a
 *     broken issuer clock or a forgery)                -> token_not_yet_valid
 *     with max_lifetime_s set: no iat, or exp - iat > max_lifetime_s (a
 *     leaked long-lived token stays usable for long; issuers must mint
 *     short-lived ones)                               -> token_lifetime_invalid
 *
 * Keys: HS256 takes 32..1024 secret bytes, and refuses a PEM block as secret
 * (that is the confusion attack's precondition). ES256 takes a PEM
 * "PUBLIC KEY" (SubjectPublicKeyInfo) on the P-256 curve; RSA, P-384,
 * explicit curve parameters and private keys are configuration errors.
 * Key files are at most 16 KiB and must be regular files; secret files (the
 * HS256 secret, an ES256 private key for signing) must not be readable by
 * others nor writable by the group (like PostgreSQL's ssl_key_file). A
 * secret file is used byte for byte, except that one trailing newline
 * ("\n" or "\r\n") is dropped so that an editor or `echo` cannot change the
 * key; it is not base64-decoded (`openssl rand -base64 48 > jwt.secret`
 * gives a 64-byte text secret).
 *
 * Errors: gl_jwt_verify fills err with kind GL_ERR_INVALID (GL_ERR_INTERNAL
 * for GL_JWT_INTERNAL), a short message and sometimes a detail; none of them
 * repeat token content, so they are safe to log. Send the client only
 * gl_jwt_reason_name(): a finer answer would help an attacker.
 *
 * Threads: an initialized verifier is read-only; gl_jwt_verify may run on it
 * from any number of threads at once.
 */
#ifndef GL_JWT_H
#define GL_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>
#include <openssl/types.h>

#include "../ledger/error.h"

#define GL_JWT_CLOCK_SKEW_S_DEFAULT 60
#define GL_JWT_CLOCK_SKEW_S_MAX 300
#define GL_JWT_LIFETIME_S_MAX (30 * 86400)
#define GL_JWT_MAX_TOKEN_BYTES_DEFAULT 8192
#define GL_JWT_MAX_TOKEN_BYTES_MIN 64
#define GL_JWT_MAX_TOKEN_BYTES_LIMIT 65536
#define GL_JWT_ISSUER_MAX 255
#define GL_JWT_AUDIENCE_MAX 255
#define GL_JWT_SECRET_BYTES_MIN 32
#define GL_JWT_SECRET_BYTES_MAX 1024
#define GL_JWT_KEY_FILE_BYTES_MAX 16384
#define GL_JWT_SUB_MAX 128
#define GL_JWT_SCOPE_BYTES_MAX 1024
#define GL_JWT_AUD_ARRAY_MAX 16
#define GL_JWT_REGIONS_MAX 16
#define GL_JWT_REGION_MAX 16                    /* = GL_REGION_NAME_MAX in regions/regions.h */
#define GL_JWT_TIME_S_MAX INT64_C(253402300799) /* 9999-12-31T23:59:59Z */

typedef enum {
    GL_JWT_ALG_NONE = 0, /* not configured; never accepted */
    GL_JWT_ES256 = 1,
    GL_JWT_HS256 = 2,
} gl_jwt_alg;

/* Stable values and names: the names are API error codes. Never renumber. */
typedef enum {
    GL_JWT_OK = 0,
    GL_JWT_TOKEN_MALFORMED = 1,
    GL_JWT_TOKEN_TOO_LONG = 2,
    GL_JWT_TOKEN_ALGORITHM_REJECTED = 3,
    GL_JWT_TOKEN_SIGNATURE_INVALID = 4,
    GL_JWT_TOKEN_EXPIRED = 5,
    GL_JWT_TOKEN_NOT_YET_VALID = 6,
    GL_JWT_TOKEN_ISSUER_INVALID = 7,
    GL_JWT_TOKEN_AUDIENCE_INVALID = 8,
    GL_JWT_TOKEN_CLAIMS_INVALID = 9,
    GL_JWT_INTERNAL = 10, /* out of memory, OpenSSL failure, uninitialized verifier: a 500 */
    GL_JWT_TOKEN_LIFETIME_INVALID = 11,
} gl_jwt_reason;

/* The scopes of API.md; a bit (1u << scope) each in gl_jwt_claims.scopes. */
typedef enum {
    GL_SCOPE_ACCOUNTS_READ = 0,
    GL_SCOPE_ACCOUNTS_WRITE,
    GL_SCOPE_TRANSFERS_WRITE,
    GL_SCOPE_TRANSFERS_READ,
    GL_SCOPE_EVENTS_READ,
    GL_SCOPE_MANDATES_WRITE,
    GL_SCOPE_RECONCILIATION_RUN,
    GL_SCOPE_REPORTS_READ,
    GL_SCOPE_ACCOUNTS_ISSUE, /* open accounts that may go below zero (ledger/kinds.h) */
    GL_SCOPE_WEBHOOKS_WRITE, /* register, delete, re-enable webhook endpoints; redeliver */
    GL_SCOPE_ADMIN,
    GL_SCOPE_COUNT
} gl_jwt_scope;

typedef struct {
    const char *alg;        /* "ES256" or "HS256", exactly; anything else is a config error */
    const char *issuer;     /* expected `iss`, 1..255 printable ASCII */
    const char *audience;   /* expected `aud` (this service), 1..255 printable ASCII */
    int clock_skew_s;       /* 0..300 */
    int max_lifetime_s;     /* 0: any; else exp - iat must be <= this, and iat is required (1..GL_JWT_LIFETIME_S_MAX) */
    size_t max_token_bytes; /* 64..65536 */
} gl_jwt_config;

/* Fields are private to jwt.c; the struct is public only so callers can embed it. */
typedef struct {
    gl_jwt_alg alg; /* GL_JWT_ALG_NONE until init succeeds */
    char issuer[GL_JWT_ISSUER_MAX + 1];
    char audience[GL_JWT_AUDIENCE_MAX + 1];
    int64_t clock_skew_s;
    int64_t max_lifetime_s; /* 0: no limit */
    size_t max_token_bytes;
    unsigned char *secret; /* HS256: heap copy, cleansed on free */
    size_t secret_len;
    EVP_MAC *hmac;        /* HS256: fetched once, shared read-only by threads */
    EVP_PKEY *public_key; /* ES256 */
} gl_jwt_verifier;

/* Trusted claims; only meaningful when gl_jwt_verify returned GL_JWT_OK (else all zero). */
typedef struct {
    char sub[GL_JWT_SUB_MAX + 1];
    uint32_t scopes;  /* bit (1u << gl_jwt_scope) per granted scope */
    bool has_regions; /* false: no `regions` claim; what that means is the caller's policy */
    size_t n_regions;
    char regions[GL_JWT_REGIONS_MAX][GL_JWT_REGION_MAX + 1];
    int64_t exp_s; /* seconds since the epoch */
    bool has_nbf;
    int64_t nbf_s;
    bool has_iat;
    int64_t iat_s;
} gl_jwt_claims;

/* Defaults: clock_skew_s 60, max_token_bytes 8192; alg, issuer, audience NULL (must be set). */
void gl_jwt_config_init(gl_jwt_config *cfg);

/*
 * key: HS256 secret bytes, or ES256 PEM public key text (key_len bytes, no
 * NUL needed). On failure (GL_ERR_CONFIG, or GL_ERR_INTERNAL) v is left
 * zeroed and gl_jwt_verifier_free(v) is still safe.
 */
bool gl_jwt_verifier_init(gl_jwt_verifier *v, const gl_jwt_config *cfg, const unsigned char *key, size_t key_len,
                          gl_error *err);
/* The same with the key read from key_path (see "Keys" above for the file rules). */
bool gl_jwt_verifier_init_from_files(gl_jwt_verifier *v, const gl_jwt_config *cfg, const char *key_path, gl_error *err);
/* Releases the key (the secret is cleansed) and zeroes v. NULL and repeated calls are fine. */
void gl_jwt_verifier_free(gl_jwt_verifier *v);

/* token: NUL-terminated, without "Bearer ". now: the caller's clock (a parameter for tests). */
gl_jwt_reason gl_jwt_verify(const gl_jwt_verifier *v, const char *token, time_t now, gl_jwt_claims *out, gl_error *err);

/* "token_malformed", ...; "unknown" for a value outside the enum. */
const char *gl_jwt_reason_name(gl_jwt_reason reason);

/* Exactly the granted bit: `admin` does not imply other scopes here (that is policy). */
bool gl_jwt_has_scope(const gl_jwt_claims *claims, gl_jwt_scope scope);
/* name[0..name_len) e.g. "transfers:write" -> true and *out; unknown -> false. */
bool gl_jwt_scope_from_name(const char *name, size_t name_len, gl_jwt_scope *out);
/* "accounts:read", ...; NULL for a value outside the enum. */
const char *gl_jwt_scope_name(gl_jwt_scope scope);

/*
 * Signs `claims` (a JSON object, copied as is: no claim is added or checked)
 * under header {"alg":alg,"typ":"JWT"}. key: HS256 secret bytes (same rules
 * as the verifier) or ES256 PEM private key (P-256; an encrypted key is
 * refused rather than prompting for a password). *token_out is a
 * NUL-terminated heap string the caller free()s; at most 8 KiB so that a
 * default verifier accepts its length.
 */
bool gl_jwt_sign(const char *alg, const unsigned char *key, size_t key_len, const json_t *claims, char **token_out,
                 gl_error *err);
bool gl_jwt_sign_from_file(const char *alg, const char *key_path, const json_t *claims, char **token_out,
                           gl_error *err);

#endif
