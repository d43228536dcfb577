/*
 * fuzz_body.c — libFuzzer harness for ledgerd's request-body validation: the
 * real endpoint code (api/accounts.c, transfers.c, mandates_ep.c, through the
 * functions the route table calls, api/endpoints.h) on a server with no
 * region configured, so that every request stops at validation or at the
 * (absent) account/region, before any database, job or writer:
 *
 *   byte 0 (mod 8)  0 gl_create_account   POST /v1/accounts
 *                   1 gl_create_transfer  POST /v1/transfers
 *                   2 gl_create_batch     POST /v1/transfers/batch
 *                   3 gl_create_mandate   POST /v1/mandates
 *                   4 post / 5 void / 6 reverse  POST /v1/transfers/{id}/...
 *                   7 the query-string and header validators: gl_parse_i64
 *                     (limit, starting_after), gl_rfc3339_valid (as_of),
 *                     gl_idem_key_valid (Idempotency-Key), gl_id_parse (path
 *                     ids), gl_currency_find
 *   the rest        the body (exactly body_len bytes, as MHD hands it over)
 *
 * Reached this way: gl_parse_body (json_loadb with JSON_REJECT_DUPLICATES,
 * the field whitelist and types), the field readers, the transfer command's
 * field checks (ids, amounts, currency, reference, pending/timeout_seconds),
 * the mandate's fields (gl_parse_rfc3339_us included), the batch's per-item
 * re-serialization and checks, the kinds, flags and metadata checks of an
 * account. Not reached (they need an HTTP connection or a database): routing
 * and authentication (handlers.c: MHD lookups), the Idempotency-Key header
 * read (its validator is mode 7), and what follows a successful account lookup.
 *
 * Oracles besides "no crash / no sanitizer report / no leak":
 *   - every answer is a 400 or 404 (nothing else is possible without
 *     regions) with a JSON body {"error":{"code":...}};
 *   - any JSON text jansson accepts (duplicates rejected) dumps and reloads
 *     to an equal value.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../api/endpoints.h"
#include "../api/jobs.h"
#include "../api/request.h"
#include "../ledger/currency.h"
#include "../ledger/text.h"

/* A broken invariant: say where, then abort (libFuzzer keeps the input as a crash). */
#define FAIL() (fprintf(stderr, "%s:%d: invariant violated\n", __FILE__, __LINE__), abort())

static gl_server srv; /* zero regions: gl_region_of_id/gl_region_by_name find nothing */

static void check_response(gl_response r) {
    if (r.status != 400 && r.status != 404) FAIL();
    if (!r.body) FAIL();
    json_error_t je;
    json_t *o = json_loads(r.body, 0, &je);
    json_t *e = json_object_get(o, "error");
    if (!json_is_string(json_object_get(e, "code")) || !json_is_string(json_object_get(e, "message")))
        FAIL();
    json_decref(o);
    free(r.body);
}

static void check_json_roundtrip(const char *body, size_t len) {
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!j) return;
    char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text) FAIL();
    json_t *again = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!again || !json_equal(j, again)) FAIL();
    json_decref(again);
    json_decref(j);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int mode = data[0] % 8;
    data++;
    size--;
    char *body = malloc(size ? size : 1); /* exactly size bytes, not NUL-terminated (as from MHD) */
    if (!body) return 0;
    memcpy(body, data, size);

    gl_req *req = calloc(1, sizeof *req);
    if (!req) abort();
    req->srv = &srv;
    snprintf(req->request_id, sizeof req->request_id, "fuzz");
    snprintf(req->method, sizeof req->method, "POST");
    snprintf(req->url, sizeof req->url, "/v1/transfers");
    snprintf(req->claims.sub, sizeof req->claims.sub, "app:shop-42");
    req->claims.scopes = (1u << GL_SCOPE_COUNT) - 1;
    req->claims.exp_s = 1700003600;
    req->body = body;
    req->body_len = size;

    static const gl_id target = {{0x01, 0x8f, 0x00, 0x00, 0x00, 0x00, 0x70, 0x00, 0x80, 0x01, 1, 2, 3, 4, 5, 6}};
    switch (mode) {
    case 0: check_response(gl_create_account(req)); break;
    case 1: check_response(gl_create_transfer(req)); break;
    case 2: check_response(gl_create_batch(req)); break;
    case 3: check_response(gl_create_mandate(req)); break;
    case 4: check_response(gl_act_on_transfer(req, &target, LEDGER_CMD_POST)); break;
    case 5: check_response(gl_act_on_transfer(req, &target, LEDGER_CMD_VOID)); break;
    case 6: check_response(gl_act_on_transfer(req, &target, LEDGER_CMD_REVERSE)); break;
    default: {
        char *s = malloc(size + 1);
        if (!s) abort();
        memcpy(s, data, size);
        s[size] = '\0';
        int64_t v = 0;
        if (gl_parse_i64(s, 1, 100, &v) && (v < 1 || v > 100)) FAIL();
        if (gl_parse_i64(s, 0, INT64_MAX, &v) && v < 0) FAIL();
        (void)gl_rfc3339_valid(s);
        (void)gl_idem_key_valid(s);
        gl_id id;
        (void)gl_id_parse(s, &id);
        (void)gl_currency_find(s);
        free(s);
        break;
    }
    }
    check_json_roundtrip(body, size);
    free(req);
    free(body);
    return 0;
}
