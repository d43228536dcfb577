/*
 * request.c — see request.h.
 */
#include "request.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ledger/pg.h"

const char *gl_code_message(ledger_code c) {
    switch (c) {
    case LEDGER_INSUFFICIENT_FUNDS: return "the debit account's balance does not cover the amount";
    case LEDGER_CURRENCY_MISMATCH: return "the transfer's currency differs from an account's currency";
    case LEDGER_ACCOUNT_CLOSED: return "an account of the transfer is closed";
    case LEDGER_ACCOUNT_NOT_FOUND: return "account not found";
    case LEDGER_PENDING_EXPIRED: return "the pending transfer has expired";
    case LEDGER_EXCEEDS_PENDING_AMOUNT: return "the amount exceeds the pending amount";
    case LEDGER_ALREADY_POSTED: return "the pending transfer was already posted";
    case LEDGER_ALREADY_VOIDED: return "the pending transfer was already voided";
    case LEDGER_EXCEEDS_REVERSIBLE_AMOUNT: return "the amount exceeds what is left to reverse";
    case LEDGER_CROSS_REGION_REQUIRES_SAGA: return "the accounts live in different regions: use /v1/payments";
    case LEDGER_EXISTS_WITH_DIFFERENT_FIELDS: return "this reference was used for a different transfer";
    case LEDGER_MANDATE_INVALID: return "no live mandate lets you debit this account in this currency";
    case LEDGER_MANDATE_LIMIT_EXCEEDED: return "the amount is above the mandate's per-charge or per-day cap";
    default: return "the ledger refused the request";
    }
}

/* The API's names where API.md names a refusal differently from the engine. */
const char *gl_api_code(ledger_code c) {
    switch (c) {
    case LEDGER_EXISTS_WITH_DIFFERENT_FIELDS: return "reference_conflict";
    case LEDGER_PENDING_EXPIRED: return "pending_transfer_expired";
    case LEDGER_MANDATE_INVALID: return "mandate_required";
    default: return ledger_code_name(c);
    }
}

gl_response gl_region_forbidden(const gl_req *req, const char *param) {
    return gl_respond_error(req, 403, "region_forbidden", "not allowed in this region", param);
}

/* Parses the body as one JSON object with only the listed fields, of their types. */
json_t *gl_parse_body(const gl_req *req, const gl_field_spec *spec, gl_response *fail) {
    json_error_t je;
    json_t *o = req->body_len ? json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!o || !json_is_object(o)) {
        json_decref(o);
        *fail = gl_respond_error(req, 400, "invalid_json", "the body must be one JSON object", NULL);
        return NULL;
    }
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        const gl_field_spec *f = spec;
        while (f->name && strcmp(f->name, key) != 0) f++;
        if (!f->name) {
            *fail = gl_respond_error(req, 400, "unknown_field", "unknown field", key);
            json_decref(o);
            return NULL;
        }
        bool type_ok = json_typeof(v) == f->type || (f->type == JSON_TRUE && json_is_boolean(v)) ||
                       (!f->required && json_is_null(v));
        if (!type_ok) {
            *fail = gl_respond_error(req, 400, "invalid_type", "wrong type for this field", key);
            json_decref(o);
            return NULL;
        }
    }
    for (const gl_field_spec *f = spec; f->name; f++) {
        if (f->required && !json_object_get(o, f->name)) {
            *fail = gl_respond_error(req, 400, "missing_field", "a required field is missing", f->name);
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

const char *gl_str_field(json_t *o, const char *name) {
    json_t *v = json_object_get(o, name);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Amounts: JSON integers 1..2^63-1 (jansson refuses larger integers at parse time). */
bool gl_amount_field(json_t *o, const char *name, bool required, int64_t *out) {
    json_t *v = json_object_get(o, name);
    if (!v || json_is_null(v)) {
        *out = 0;
        return !required;
    }
    *out = (int64_t)json_integer_value(v);
    return *out > 0;
}

bool gl_copy_str(char *dst, size_t cap, const char *src) {
    size_t n = src ? strlen(src) : 0;
    if (!src || n >= cap) return false;
    memcpy(dst, src, n + 1);
    return true;
}

const char *gl_query(const gl_req *req, const char *name) {
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM), nothing else. */
bool gl_rfc3339_valid(const char *s) {
    int64_t us;
    return gl_parse_rfc3339_us(s, &us);
}

/* Well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF):
 * what a PostgreSQL text column accepts from a query string. */
bool gl_utf8_valid(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
        if (n < 0 || (n == 1 && c < 0xC2) || (n == 3 && c > 0xF4)) return false;
        unsigned cp = n == 0 ? c : c & (0x3Fu >> n);
        for (int i = 1; i <= n; i++) {
            if ((p[i] & 0xC0) != 0x80) return false;
            cp = cp << 6 | (p[i] & 0x3Fu);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        p += n + 1;
    }
    return true;
}
