/*
 * csv.c — see csv.h for what is accepted and what is not.
 *
 * Two parsers share the buffer:
 *   - the plain-line parser, for a record whose first physical line holds no
 *     '"' (nearly every line of a settlement file): it finds the line end and
 *     checks for quotes with memchr, then cuts the line into fields in place
 *     (SSE2 when available), replacing each ',' and the line end by '\0'.
 *     No copy.
 *   - the quoted parser, a byte-at-a-time state machine that unescapes the
 *     record into a separate buffer (the input must stay intact: a record cut
 *     by the end of the buffer is parsed again from its start after a refill).
 *
 * Both only look at one record's worth of bytes (record_max + CRLF) from the
 * record start, so a record that does not end within that window is "too
 * long" whatever the buffer holds after it, and every record that is not too
 * long fits in the buffer after a refill (buffer_size >= record_max + 4).
 */
#include "csv.h"

#include <stdlib.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

struct gl_csv_reader {
    FILE *f;
    char *buf;  /* cap + 1 bytes: the slack byte holds the '\0' after the last
                   field of a file that does not end with a line end */
    size_t cap;
    size_t pos; /* unread data is buf[pos, end) */
    size_t end;
    bool eof;
    bool started; /* the first fread (and the BOM check) happened */
    bool failed;  /* GL_CSV_ERROR is final */
    char *out;    /* quoted records are unescaped here: record_max + 4 bytes */
    gl_csv_field *fields;
    size_t fields_max;
    size_t record_max;
    uint64_t line_no; /* physical line where the next record starts */
    char why[96];     /* reason of the last bad record */
};

typedef enum { PARSE_DONE, PARSE_BAD, PARSE_NEED_MORE, PARSE_TOO_LONG } parse_result;

/* How much of buf[pos...] one parse used up (also for a bad record). */
typedef struct {
    size_t bytes;
    uint64_t lines;
} consumed;

/* ---------- reader lifetime ---------- */

static bool options_ok(const gl_csv_options *o) {
    return o->record_max >= 1 && o->fields_max >= 1 && o->record_max <= SIZE_MAX / 2 &&
           o->fields_max <= SIZE_MAX / sizeof(gl_csv_field) && o->buffer_size >= o->record_max + 4 &&
           o->buffer_size < SIZE_MAX;
}

gl_csv_reader *gl_csv_reader_new(FILE *f, const gl_csv_options *opts, gl_error *err) {
    gl_csv_options o = {GL_CSV_BUFFER_SIZE, GL_CSV_RECORD_MAX, GL_CSV_FIELDS_MAX};
    if (opts) o = *opts;
    if (f == NULL || !options_ok(&o)) {
        gl_error_set(err, GL_ERR_INVALID, "CSV reader: bad arguments");
        gl_error_detail(err, "buffer_size must be at least record_max + 4");
        return NULL;
    }
    gl_csv_reader *r = calloc(1, sizeof *r);
    if (r) {
        r->buf = malloc(o.buffer_size + 1);
        r->out = malloc(o.record_max + 4);
        r->fields = calloc(o.fields_max, sizeof *r->fields);
    }
    if (!r || !r->buf || !r->out || !r->fields) {
        gl_csv_reader_free(r);
        gl_error_set(err, GL_ERR_INTERNAL, "CSV reader: out of memory");
        return NULL;
    }
    r->f = f;
    r->cap = o.buffer_size;
    r->record_max = o.record_max;
    r->fields_max = o.fields_max;
    r->line_no = 1;
    return r;
}

void gl_csv_reader_free(gl_csv_reader *r) {
    if (!r) return;
    free(r->buf);
    free(r->out);
    free(r->fields);
    free(r);
}

/* ---------- input ---------- */

/* A UTF-8 byte order mark (spreadsheet exports) is not part of the first field. */
static void skip_bom(gl_csv_reader *r) {
    static const char bom[3] = {'\xEF', '\xBB', '\xBF'};
    if (r->end - r->pos >= 3 && memcmp(r->buf + r->pos, bom, 3) == 0) r->pos += 3;
}

/* Moves the unread bytes to the start of the buffer and reads more after them.
 * There is always room: a parse asks for more only with fewer than
 * record_max + 2 unread bytes, and cap >= record_max + 4. */
static bool refill(gl_csv_reader *r, gl_error *err) {
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->end - r->pos);
        r->end -= r->pos;
        r->pos = 0;
    }
    size_t want = r->cap - r->end;
    size_t got = fread(r->buf + r->end, 1, want, r->f);
    r->end += got;
    if (got < want) { /* fread is short only at end of file or on error */
        if (ferror(r->f)) {
            gl_error_set(err, GL_ERR_INVALID, "could not read the CSV file near line %llu",
                         (unsigned long long)r->line_no);
            return false;
        }
        r->eof = true;
    }
    if (!r->started) {
        r->started = true;
        skip_bom(r);
    }
    return true;
}

/* ---------- plain lines (no quote) ---------- */

static parse_result bad(gl_csv_reader *r, const char *why) {
    snprintf(r->why, sizeof r->why, "%s", why);
    return PARSE_BAD;
}

static parse_result too_many_fields(gl_csv_reader *r) {
    snprintf(r->why, sizeof r->why, "more than %zu fields", r->fields_max);
    return PARSE_BAD;
}

/* The field ending at line[at] (a ',' or the end of the line), cut in place. */
static bool add_plain_field(gl_csv_reader *r, char *line, size_t *field_start, size_t at, size_t *n) {
    if (*n == r->fields_max) return false;
    r->fields[*n].ptr = line + *field_start;
    r->fields[*n].len = at - *field_start;
    (*n)++;
    line[at] = '\0';
    *field_start = at + 1;
    return true;
}

/*
 * Cuts line[0, content) into fields at each ','; line[content] is ours to
 * overwrite. Returns false on too many fields, or on a NUL byte (*nul set):
 * a NUL would end the field early for any C string function, hiding the rest
 * of it, the PAN guard included. With SSE2 (every x86-64) the commas and NULs
 * of 16 bytes are found at once; one memchr call per field costs more than
 * the splitting itself on short fields.
 */
static bool split_plain_line(gl_csv_reader *r, char *line, size_t content, size_t *n_fields, bool *nul) {
    size_t n = 0, field_start = 0, i = 0;
    *nul = false;
#if defined(__SSE2__)
    const __m128i commas = _mm_set1_epi8(',');
    const __m128i zeros = _mm_setzero_si128();
    for (; i + 16 <= content; i += 16) {
        __m128i chunk = _mm_loadu_si128((const __m128i *)(const void *)(line + i));
        if (_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, zeros)) != 0) {
            *nul = true;
            return false;
        }
        unsigned mask = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, commas));
        while (mask != 0) {
            size_t at = i + (size_t)__builtin_ctz(mask);
            mask &= mask - 1;
            if (!add_plain_field(r, line, &field_start, at, &n)) return false;
        }
    }
#endif
    for (; i < content; i++) {
        if (line[i] == '\0') {
            *nul = true;
            return false;
        }
        if (line[i] == ',' && !add_plain_field(r, line, &field_start, i, &n)) return false;
    }
    if (!add_plain_field(r, line, &field_start, content, &n)) return false;
    *n_fields = n;
    return true;
}

/* Cuts line[0, line_len) (its '\n', if any, not included) into fields in place. */
static parse_result parse_plain_line(gl_csv_reader *r, char *line, size_t line_len, bool has_newline,
                                     gl_csv_record *rec, consumed *used) {
    size_t content = line_len;
    if (content > 0 && line[content - 1] == '\r') content--;
    if (content > r->record_max) return PARSE_TOO_LONG;
    used->bytes = line_len + (has_newline ? 1 : 0);
    used->lines = has_newline ? 1 : 0;
    bool nul;
    if (!split_plain_line(r, line, content, &rec->n_fields, &nul))
        return nul ? bad(r, "NUL byte in the record") : too_many_fields(r);
    rec->blank = content == 0;
    return PARSE_DONE;
}

/* ---------- quoted records ---------- */

typedef enum { AT_FIELD_START, IN_UNQUOTED, IN_QUOTED, AFTER_QUOTE, AFTER_QUOTE_CR } quote_state;

/* The unescaped record being built in r->out. */
typedef struct {
    gl_csv_reader *r;
    size_t out_len;
    size_t n; /* fields begun, may exceed fields_max (then only counted) */
} unescaper;

static void field_begin(unescaper *u) {
    if (u->n < u->r->fields_max) u->r->fields[u->n].ptr = u->r->out + u->out_len;
    u->n++;
}

static void field_end(unescaper *u) {
    if (u->n <= u->r->fields_max) {
        gl_csv_field *f = &u->r->fields[u->n - 1];
        f->len = (size_t)(u->r->out + u->out_len - f->ptr);
    }
    u->r->out[u->out_len++] = '\0';
}

static size_t current_field_len(const unescaper *u) {
    if (u->n > u->r->fields_max) return 1; /* only used to tell "empty or not" */
    return (size_t)(u->r->out + u->out_len - u->r->fields[u->n - 1].ptr);
}

/*
 * After a syntax error at s[i] the record cannot be trusted to end where the
 * quotes say: skip to the end of the physical line the error is on.
 */
static parse_result skip_bad_line(gl_csv_reader *r, const char *s, size_t i, size_t limit, size_t avail,
                                  bool window_full, consumed *used) {
    const char *nl = memchr(s + i, '\n', limit - i);
    if (nl) {
        used->bytes = (size_t)(nl - s) + 1;
        used->lines++;
        return PARSE_BAD;
    }
    if (window_full) return PARSE_TOO_LONG;
    if (!r->eof) return PARSE_NEED_MORE;
    used->bytes = avail;
    return PARSE_BAD;
}

/*
 * The record starting at s (avail bytes available) has a '"' on its first
 * line. `content` is the record's length without its line end.
 */
static parse_result parse_quoted_record(gl_csv_reader *r, const char *s, size_t avail, gl_csv_record *rec,
                                        consumed *used) {
    const size_t window = r->record_max + 2;
    const bool window_full = avail >= window;
    const size_t limit = window_full ? window : avail;
    unescaper u = {r, 0, 0};
    quote_state st = AT_FIELD_START;
    const char *why = NULL; /* a problem that still lets the record be read to its end */
    size_t content = 0;
    bool ended = false;
    size_t i = 0;

    used->lines = 0;
    field_begin(&u);
    while (i < limit && !ended) {
        char c = s[i];
        switch (st) {
        case AT_FIELD_START:
            if (c == '"') {
                st = IN_QUOTED;
                i++;
            } else {
                st = IN_UNQUOTED; /* look at c again as part of an unquoted field */
            }
            break;
        case IN_UNQUOTED:
            if (c == ',') {
                field_end(&u);
                field_begin(&u);
                st = AT_FIELD_START;
            } else if (c == '\n') {
                content = i;
                /* An unquoted field maps byte for byte to its output: a '\r' just
                 * before is the CR of CRLF when the field is not empty. */
                if (i > 0 && s[i - 1] == '\r' && current_field_len(&u) > 0) {
                    u.out_len--;
                    content--;
                }
                ended = true;
            } else if (c == '"') {
                snprintf(r->why, sizeof r->why, "quote inside an unquoted field (field %zu)", u.n);
                return skip_bad_line(r, s, i, limit, avail, window_full, used);
            } else {
                if (c == '\0') why = "NUL byte in the record";
                r->out[u.out_len++] = c;
            }
            i++;
            break;
        case IN_QUOTED:
            if (c == '"') {
                st = AFTER_QUOTE;
            } else {
                if (c == '\n') used->lines++;
                if (c == '\0') why = "NUL byte in the record";
                r->out[u.out_len++] = c;
            }
            i++;
            break;
        case AFTER_QUOTE:
        case AFTER_QUOTE_CR:
            if (c == '"' && st == AFTER_QUOTE) {
                r->out[u.out_len++] = '"'; /* "" inside quotes */
                st = IN_QUOTED;
            } else if (c == ',' && st == AFTER_QUOTE) {
                field_end(&u);
                field_begin(&u);
                st = AT_FIELD_START;
            } else if (c == '\r' && st == AFTER_QUOTE) {
                st = AFTER_QUOTE_CR;
            } else if (c == '\n') {
                content = st == AFTER_QUOTE_CR ? i - 1 : i;
                ended = true;
            } else {
                snprintf(r->why, sizeof r->why, "text after the closing quote of field %zu", u.n);
                return skip_bad_line(r, s, i, limit, avail, window_full, used);
            }
            i++;
            break;
        }
    }

    if (ended) {
        used->lines++;
    } else { /* no line end within reach */
        if (window_full) return PARSE_TOO_LONG;
        if (!r->eof) return PARSE_NEED_MORE;
        if (st == IN_QUOTED) {
            used->bytes = avail;
            return bad(r, "quoted field not closed at the end of the file");
        }
        content = avail;
        if (st == AFTER_QUOTE_CR) {
            content--; /* a final CR is a line end */
        } else if (st == IN_UNQUOTED && current_field_len(&u) > 0 && s[avail - 1] == '\r') {
            u.out_len--;
            content--;
        }
    }
    used->bytes = i;
    if (content > r->record_max) return PARSE_TOO_LONG;
    field_end(&u);
    if (u.n > r->fields_max) return too_many_fields(r);
    if (why) return bad(r, why);
    rec->n_fields = u.n;
    rec->blank = false;
    return PARSE_DONE;
}

/* ---------- one record ---------- */

static parse_result parse_record(gl_csv_reader *r, gl_csv_record *rec, consumed *used) {
    char *start = r->buf + r->pos;
    size_t avail = r->end - r->pos;
    size_t window = r->record_max + 2; /* the longest record plus CRLF */
    size_t scan = avail < window ? avail : window;
    const char *nl = memchr(start, '\n', scan);
    size_t line_len;
    if (nl) {
        line_len = (size_t)(nl - start);
    } else if (avail >= window) {
        return PARSE_TOO_LONG;
    } else if (!r->eof) {
        return PARSE_NEED_MORE;
    } else {
        line_len = avail; /* the last line of a file without a final line end */
    }
    if (memchr(start, '"', line_len) == NULL) return parse_plain_line(r, start, line_len, nl != NULL, rec, used);
    return parse_quoted_record(r, start, avail, rec, used);
}

static gl_csv_status fail(gl_csv_reader *r) {
    r->failed = true;
    return GL_CSV_ERROR;
}

gl_csv_status gl_csv_next(gl_csv_reader *r, gl_csv_record *rec, gl_error *err) {
    if (r == NULL || rec == NULL) {
        gl_error_set(err, GL_ERR_INVALID, "CSV reader: bad arguments");
        return GL_CSV_ERROR;
    }
    if (r->failed) {
        gl_error_set(err, GL_ERR_INVALID, "CSV reader: used after an error");
        return GL_CSV_ERROR;
    }
    for (;;) {
        if (r->pos == r->end) {
            if (r->eof) return GL_CSV_END;
            if (!refill(r, err)) return fail(r);
            continue;
        }
        consumed used = {0, 0};
        parse_result res = parse_record(r, rec, &used);
        if (res == PARSE_NEED_MORE) {
            if (!refill(r, err)) return fail(r);
            continue;
        }
        if (res == PARSE_TOO_LONG) {
            gl_error_set(err, GL_ERR_INVALID, "line %llu: record longer than %zu bytes",
                         (unsigned long long)r->line_no, r->record_max);
            return fail(r);
        }
        rec->line_no = r->line_no;
        rec->fields = r->fields;
        r->pos += used.bytes;
        r->line_no += used.lines;
        if (res == PARSE_BAD) {
            rec->n_fields = 0;
            rec->blank = false;
            gl_error_set(err, GL_ERR_INVALID, "%s", r->why);
            return GL_CSV_BAD_RECORD;
        }
        return GL_CSV_RECORD;
    }
}
