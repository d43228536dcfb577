/*
 * csv.h — a streaming RFC 4180 CSV reader for settlement files.
 *
 * The file is read with fread into one fixed buffer (1 MiB by default), so
 * memory is bounded whatever the file size, and there is no allocation per
 * record: a record's fields are (pointer, length) views into the reader's own
 * memory, valid until the next gl_csv_next call.
 *
 * What is accepted:
 *   - fields separated by ',', records ended by LF or CRLF (the last record
 *     may have no line end);
 *   - quoted fields ("a,b"), with "" for a literal quote and line ends inside
 *     the quotes (kept as they are: a CRLF inside quotes stays CRLF);
 *   - a UTF-8 byte order mark at the very start of the file (skipped).
 * What is a bad record (reported, and the reader goes on with the next one):
 *   - a '"' inside an unquoted field, text between a closing quote and the
 *     next ',' or line end, a quoted field still open at the end of the file,
 *     a NUL byte, more than `fields_max` fields.
 * What stops the reader (GL_CSV_ERROR, and every later call fails too):
 *   - a record longer than `record_max` bytes (its line end not counted),
 *   - a read error.
 *
 * Line numbers are physical lines (1-based): a record that holds quoted line
 * ends spans several lines, and the record after it starts further down.
 */
#ifndef GL_CSV_H
#define GL_CSV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../ledger/error.h"

#define GL_CSV_BUFFER_SIZE ((size_t)1 << 20) /* bytes read per fread */
#define GL_CSV_RECORD_MAX ((size_t)64 << 10) /* longest record, without its line end */
#define GL_CSV_FIELDS_MAX 512                /* most fields in one record */

/* Limits, for tests that want small buffers; NULL in gl_csv_reader_new = the defaults above. */
typedef struct {
    size_t buffer_size; /* must be >= record_max + 4 */
    size_t record_max;  /* >= 1 */
    size_t fields_max;  /* >= 1 */
} gl_csv_options;

/* One field: ptr[len] is always '\0'. The caller may rewrite the bytes in
 * [ptr, ptr + len) in place (the PAN guard does) until the next record. */
typedef struct {
    char *ptr;
    size_t len;
} gl_csv_field;

typedef struct {
    uint64_t line_no;     /* physical line where the record starts (first line = 1) */
    size_t n_fields;      /* >= 1 for GL_CSV_RECORD: an empty line is one empty field */
    gl_csv_field *fields; /* the reader's array; valid until the next call */
    bool blank;           /* the record is an empty line (no bytes at all) */
} gl_csv_record;

typedef enum {
    GL_CSV_END,        /* no more records */
    GL_CSV_RECORD,     /* *rec holds the next record */
    GL_CSV_BAD_RECORD, /* a malformed record was skipped: rec->line_no is where it
                          started, err->message says why (never the record's text) */
    GL_CSV_ERROR,      /* cannot go on: err says why (with the line number) */
} gl_csv_status;

typedef struct gl_csv_reader gl_csv_reader;

/* NULL on failure (bad options, out of memory). The reader does not own `f`. */
gl_csv_reader *gl_csv_reader_new(FILE *f, const gl_csv_options *opts, gl_error *err);
void gl_csv_reader_free(gl_csv_reader *r);

/* The next record. See gl_csv_status for what each result means. */
gl_csv_status gl_csv_next(gl_csv_reader *r, gl_csv_record *rec, gl_error *err);

#endif
