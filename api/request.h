/*
 * request.h — what every endpoint uses to read a request and to answer it:
 * the ledger result codes as API error codes and messages, the strict JSON
 * body checker, fields, query parameters. Internal to api/.
 */
#ifndef GL_REQUEST_H
#define GL_REQUEST_H

#include "server.h"

/* The API's name and message for a ledger result code (API.md errors). */
const char *gl_api_code(ledger_code c);
const char *gl_code_message(ledger_code c);
gl_response gl_region_forbidden(const gl_req *req, const char *param);

/* A body field: name, JSON type (JSON_TRUE: a boolean), required. */
typedef struct {
    const char *name;
    json_type type;
    bool required;
} gl_field_spec;

/* The body as a JSON object with only `spec`'s fields, of their types
 * (unknown field, wrong type, duplicate key, not an object: *fail is the 400). */
json_t *gl_parse_body(const gl_req *req, const gl_field_spec *spec, gl_response *fail);
const char *gl_str_field(json_t *o, const char *name);
/* An amount: a JSON integer 1..2^63-1 (absent and !required: true, *out untouched). */
bool gl_amount_field(json_t *o, const char *name, bool required, int64_t *out);
/* Copies src (NULL: "") into dst; false when it does not fit. */
bool gl_copy_str(char *dst, size_t cap, const char *src);
/* A query-string argument, or NULL. */
const char *gl_query(const gl_req *req, const char *name);
bool gl_rfc3339_valid(const char *s);
bool gl_utf8_valid(const char *s);

#endif
