/*
 * fuzz_csv.c — libFuzzer harness for the streaming RFC 4180 reader
 * (reconciliation/csv.c: gl_csv_reader_new / gl_csv_next), which every
 * settlement file goes through.
 *
 * Input: 3 bytes of reader options, then the file.
 *   byte 0  record_max: 1 + b % 128, times 16 when b >= 128 (1..2033)
 *   byte 1  fields_max: 1 + b % 32, or 512 (the default) when b >= 128
 *   byte 2  buffer slack: buffer_size = record_max + 4 + b % 32, so records
 *           are cut by the end of the buffer all the time (the refill path)
 *
 * Oracles besides "no crash / no sanitizer report":
 *   - the file is read twice, with that small buffer and with a buffer that
 *     holds the whole file (same record and field limits): the sequence of
 *     results (status, line number, fields, blank flag, error message) must
 *     be identical — the buffer size must never change what is read;
 *   - a record has 1..fields_max fields, each NUL-terminated at ptr[len], no
 *     NUL inside, at most record_max bytes; a blank record is one empty field;
 *     line numbers only go up, the first record is on line 1;
 *   - GL_CSV_ERROR and GL_CSV_END are final;
 *   - the caller may rewrite the field bytes in place (as the PAN guard does):
 *     the harness does so, ASan checks the bounds.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../reconciliation/csv.h"

/* A broken invariant: say where, then abort (libFuzzer keeps the input as a crash). */
#define FAIL() (fprintf(stderr, "%s:%d: invariant violated\n", __FILE__, __LINE__), abort())

typedef struct {
    char *p;
    size_t len, cap;
} trace;

static void put(trace *t, const void *data, size_t n) {
    if (t->len + n > t->cap) {
        size_t cap = t->cap ? t->cap : 4096;
        while (cap < t->len + n) cap *= 2;
        char *p = realloc(t->p, cap);
        if (!p) abort();
        t->p = p;
        t->cap = cap;
    }
    memcpy(t->p + t->len, data, n);
    t->len += n;
}

static FILE *open_input(const uint8_t *data, size_t len) {
    return len ? fmemopen((void *)data, len, "r") : fopen("/dev/null", "r");
}

/* Reads the whole file, appending every result to *t. */
static void read_all(const uint8_t *data, size_t len, const gl_csv_options *o, trace *t) {
    FILE *f = open_input(data, len);
    if (!f) abort();
    gl_error err;
    gl_error_clear(&err);
    gl_csv_reader *r = gl_csv_reader_new(f, o, &err);
    if (!r) FAIL(); /* the options are valid */
    uint64_t last_line = 0;
    for (int calls = 0;; calls++) {
        gl_csv_record rec;
        memset(&rec, 0, sizeof rec);
        gl_error_clear(&err);
        gl_csv_status s = gl_csv_next(r, &rec, &err);
        unsigned char sb = (unsigned char)s;
        put(t, &sb, 1);
        if (s == GL_CSV_END || s == GL_CSV_ERROR) {
            put(t, err.message, strlen(err.message) + 1);
            gl_csv_record again;
            gl_csv_status s2 = gl_csv_next(r, &again, &err);
            if (s2 != s) FAIL(); /* final */
            break;
        }
        if (rec.line_no <= last_line || (last_line == 0 && rec.line_no != 1)) FAIL();
        last_line = rec.line_no;
        put(t, &rec.line_no, sizeof rec.line_no);
        if (s == GL_CSV_BAD_RECORD) {
            if (err.kind == GL_ERR_NONE || !err.message[0]) FAIL();
            put(t, err.message, strlen(err.message) + 1);
            continue;
        }
        if (s != GL_CSV_RECORD) FAIL();
        if (rec.n_fields < 1 || rec.n_fields > o->fields_max) FAIL();
        if (rec.blank && (rec.n_fields != 1 || rec.fields[0].len != 0)) FAIL();
        put(t, &rec.n_fields, sizeof rec.n_fields);
        put(t, &rec.blank, sizeof rec.blank);
        for (size_t k = 0; k < rec.n_fields; k++) {
            gl_csv_field *fl = &rec.fields[k];
            if (fl->len > o->record_max || fl->ptr[fl->len] != '\0' || memchr(fl->ptr, '\0', fl->len))
                FAIL();
            put(t, &fl->len, sizeof fl->len);
            put(t, fl->ptr, fl->len);
            for (size_t i = 0; i < fl->len; i++) /* in-place rewrite, as the PAN guard does */
                if (fl->ptr[i] >= '0' && fl->ptr[i] <= '9') fl->ptr[i] = '*';
        }
        if (calls > 1000000) FAIL(); /* no progress */
    }
    gl_csv_reader_free(r);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    gl_csv_options small;
    small.record_max = 1 + (size_t)(data[0] % 128) * (data[0] >= 128 ? 16 : 1);
    small.fields_max = data[1] >= 128 ? GL_CSV_FIELDS_MAX : 1 + (size_t)(data[1] % 32);
    small.buffer_size = small.record_max + 4 + (size_t)(data[2] % 32);
    data += 3;
    size -= 3;

    gl_csv_options big = small;
    big.buffer_size = (size > small.buffer_size ? size : small.buffer_size) + 4;

    trace a = {0}, b = {0};
    read_all(data, size, &small, &a);
    read_all(data, size, &big, &b);
    if (a.len != b.len || memcmp(a.p, b.p, a.len) != 0) FAIL();
    free(a.p);
    free(b.p);
    return 0;
}
