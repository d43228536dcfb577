/*
 * test_recon_csv.c — unit tests for reconciliation/csv.c: RFC 4180 records,
 * line numbers, bad records and recovery, limits, and refills (small buffers
 * so that records are cut by the end of the buffer at every possible place).
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../reconciliation/csv.h"

/* ---- helpers ------------------------------------------------------------ */

static FILE *input_n(const char *data, size_t len) {
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    if (len > 0) ck_assert_int_eq(fwrite(data, 1, len, f), len);
    rewind(f);
    return f;
}

static FILE *input(const char *data) { return input_n(data, strlen(data)); }

typedef struct {
    FILE *f;
    gl_csv_reader *r;
    gl_csv_record rec;
    gl_error err;
} reader;

static void open_reader(reader *rd, FILE *f, const gl_csv_options *opts) {
    rd->f = f;
    rd->r = gl_csv_reader_new(f, opts, &rd->err);
    ck_assert_msg(rd->r != NULL, "reader: %s", rd->err.message);
}

static void close_reader(reader *rd) {
    gl_csv_reader_free(rd->r);
    fclose(rd->f);
}

static gl_csv_status next(reader *rd) {
    gl_error_clear(&rd->err);
    return gl_csv_next(rd->r, &rd->rec, &rd->err);
}

/* The next record must be `want` (fields joined by '|') starting at line `line`. */
static void expect_record(reader *rd, const char *want, uint64_t line) {
    gl_csv_status s = next(rd);
    ck_assert_msg(s == GL_CSV_RECORD, "want \"%s\", got status %d (%s)", want, s, rd->err.message);
    char joined[1024];
    size_t off = 0;
    for (size_t i = 0; i < rd->rec.n_fields; i++) {
        const gl_csv_field *fl = &rd->rec.fields[i];
        ck_assert_int_eq(fl->ptr[fl->len], '\0');
        ck_assert_uint_lt(off + fl->len + 1, sizeof joined);
        if (i > 0) joined[off++] = '|';
        memcpy(joined + off, fl->ptr, fl->len);
        off += fl->len;
    }
    joined[off] = '\0';
    ck_assert_str_eq(joined, want);
    ck_assert_msg(rd->rec.line_no == line, "\"%s\": line %llu, want %llu", want,
                  (unsigned long long)rd->rec.line_no, (unsigned long long)line);
}

static void expect_bad(reader *rd, uint64_t line, const char *needle) {
    gl_csv_status s = next(rd);
    ck_assert_msg(s == GL_CSV_BAD_RECORD, "want a bad record at line %llu, got %d", (unsigned long long)line, s);
    ck_assert_int_eq(rd->rec.line_no, line);
    ck_assert_msg(strstr(rd->err.message, needle) != NULL, "\"%s\" not in \"%s\"", needle, rd->err.message);
}

static void expect_end(reader *rd) {
    gl_csv_status s = next(rd);
    ck_assert_msg(s == GL_CSV_END, "want the end, got %d (%s)", s, rd->err.message);
    ck_assert_int_eq(next(rd), GL_CSV_END); /* and it stays there */
}

/* ---- well-formed input -------------------------------------------------- */

START_TEST(test_simple_lf_crlf_and_no_final_newline) {
    reader rd;
    open_reader(&rd, input("a,b,c\n1,2,3\r\nx,,z\n,\nlast,one"), NULL);
    expect_record(&rd, "a|b|c", 1);
    expect_record(&rd, "1|2|3", 2);
    expect_record(&rd, "x||z", 3);
    expect_record(&rd, "|", 4);
    expect_record(&rd, "last|one", 5);
    expect_end(&rd);
    close_reader(&rd);
}
END_TEST

START_TEST(test_quoted_fields) {
    reader rd;
    open_reader(&rd,
                input("\"a,b\",\"say \"\"hi\"\"\",\"\"\n"
                      "\"multi\nline\",after\n"
                      "\"crlf\r\ninside\",x\r\n"
                      "plain,\"q\"\r\n"
                      "\"\",\"\"\n"
                      "\"bare\rcr\",\"trailing quote\"\"\""),
                NULL);
    expect_record(&rd, "a,b|say \"hi\"|", 1);
    expect_record(&rd, "multi\nline|after", 2);
    expect_record(&rd, "crlf\r\ninside|x", 4); /* line ends inside quotes are kept as they are */
    expect_record(&rd, "plain|q", 6);
    expect_record(&rd, "|", 7);
    expect_record(&rd, "bare\rcr|trailing quote\"", 8);
    expect_end(&rd);
    close_reader(&rd);
}
END_TEST

START_TEST(test_line_numbers_after_embedded_newlines) {
    reader rd;
    open_reader(&rd, input("h1,h2\n\"one\ntwo\nthree\",x\nnext,row\n\"a\n\",\"\nb\"\nend,row\n"), NULL);
    expect_record(&rd, "h1|h2", 1);
    expect_record(&rd, "one\ntwo\nthree|x", 2);
    expect_record(&rd, "next|row", 5);
    expect_record(&rd, "a\n|\nb", 6);
    expect_record(&rd, "end|row", 9);
    expect_end(&rd);
    close_reader(&rd);
}
END_TEST

START_TEST(test_bom_and_blank_lines) {
    reader rd;
    open_reader(&rd, input("\xEF\xBB\xBFid,amount\n\n1,2\r\n\r\n"), NULL);
    expect_record(&rd, "id|amount", 1); /* the BOM is not part of "id" */
    ck_assert(!rd.rec.blank);
    expect_record(&rd, "", 2);
    ck_assert(rd.rec.blank);
    ck_assert_int_eq(rd.rec.n_fields, 1);
    expect_record(&rd, "1|2", 3);
    expect_record(&rd, "", 4);
    ck_assert(rd.rec.blank);
    expect_end(&rd);
    close_reader(&rd);

    /* A BOM later in the file is data; a quoted empty field is not a blank line. */
    open_reader(&rd, input("a\n\xEF\xBB\xBF" "b\n\"\"\n"), NULL);
    expect_record(&rd, "a", 1);
    expect_record(&rd, "\xEF\xBB\xBF" "b", 2);
    expect_record(&rd, "", 3);
    ck_assert(!rd.rec.blank);
    expect_end(&rd);
    close_reader(&rd);
}
END_TEST

START_TEST(test_empty_inputs) {
    reader rd;
    open_reader(&rd, input_n("", 0), NULL);
    expect_end(&rd);
    close_reader(&rd);
    open_reader(&rd, input("\xEF\xBB\xBF"), NULL);
    expect_end(&rd);
    close_reader(&rd);
    open_reader(&rd, input("\n"), NULL);
    expect_record(&rd, "", 1);
    expect_end(&rd);
    close_reader(&rd);
}
END_TEST

START_TEST(test_fields_are_writable) {
    reader rd;
    open_reader(&rd, input("abc,\"d,e\"\n"), NULL);
    ck_assert_int_eq(next(&rd), GL_CSV_RECORD);
    rd.rec.fields[0].ptr[1] = '*';
    rd.rec.fields[1].ptr[0] = '*';
    ck_assert_str_eq(rd.rec.fields[0].ptr, "a*c");
    ck_assert_str_eq(rd.rec.fields[1].ptr, "*,e");
    close_reader(&rd);
}
END_TEST

/* ---- bad records and recovery ------------------------------------------- */

START_TEST(test_bad_records_are_skipped) {
    reader rd;
    open_reader(&rd,
                input("ok,1\n"
                      "a,b\"c,d\n"           /* quote in an unquoted field */
                      "ok,2\n"
                      "\"x\"y,z\n"           /* text after a closing quote */
                      "ok,3\n"
                      "\"multi\nline\"oops\n" /* error on the record's second line */
                      "ok,4\n"
                      "\"open\nstill open"), /* never closed */
                NULL);
    expect_record(&rd, "ok|1", 1);
    expect_bad(&rd, 2, "quote inside an unquoted field (field 2)");
    expect_record(&rd, "ok|2", 3);
    expect_bad(&rd, 4, "after the closing quote");
    expect_record(&rd, "ok|3", 5);
    expect_bad(&rd, 6, "after the closing quote");
    expect_record(&rd, "ok|4", 8);
    expect_bad(&rd, 9, "not closed");
    expect_end(&rd);
    close_reader(&rd);
}
END_TEST

START_TEST(test_nul_byte) {
    static const char data[] = "a,b\nc,d\0e\n\"q\0\",f\nok,1\n";
    reader rd;
    open_reader(&rd, input_n(data, sizeof data - 1), NULL);
    expect_record(&rd, "a|b", 1);
    expect_bad(&rd, 2, "NUL");
    expect_bad(&rd, 3, "NUL");
    expect_record(&rd, "ok|1", 4);
    expect_end(&rd);
    close_reader(&rd);
}
END_TEST

START_TEST(test_too_many_fields) {
    gl_csv_options o = {64, 32, 3};
    reader rd;
    open_reader(&rd, input("a,b,c\na,b,c,d\n\"a\",b,c,\"d\"\nx,y\n"), &o);
    expect_record(&rd, "a|b|c", 1);
    expect_bad(&rd, 2, "more than 3 fields");
    expect_bad(&rd, 3, "more than 3 fields");
    expect_record(&rd, "x|y", 4);
    expect_end(&rd);
    close_reader(&rd);
}
END_TEST

/* ---- limits ------------------------------------------------------------- */

/* A record of exactly record_max bytes passes, one more byte fails for good. */
START_TEST(test_record_limit) {
    gl_csv_options o = {40, 16, 8};
    reader rd;
    open_reader(&rd, input("0123456789abcdef\r\n\"23456789abcde\"\n0123456789abcdefX\nnever,read\n"), &o);
    expect_record(&rd, "0123456789abcdef", 1);
    expect_record(&rd, "23456789abcde", 2);
    ck_assert_int_eq(next(&rd), GL_CSV_ERROR);
    ck_assert_ptr_nonnull(strstr(rd.err.message, "line 3"));
    ck_assert_ptr_nonnull(strstr(rd.err.message, "longer than 16 bytes"));
    ck_assert_int_eq(next(&rd), GL_CSV_ERROR); /* final */
    close_reader(&rd);

    /* Quoted, spanning lines: still the record that is too long. */
    open_reader(&rd, input("a\n\"0123456\n89abcdef\"\n"), &o);
    expect_record(&rd, "a", 1);
    ck_assert_int_eq(next(&rd), GL_CSV_ERROR);
    ck_assert_ptr_nonnull(strstr(rd.err.message, "line 2"));
    close_reader(&rd);

    /* A line with no end at all, bigger than the buffer. */
    char big[200];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    open_reader(&rd, input(big), &o);
    ck_assert_int_eq(next(&rd), GL_CSV_ERROR);
    ck_assert_ptr_nonnull(strstr(rd.err.message, "line 1"));
    close_reader(&rd);
}
END_TEST

START_TEST(test_default_limit_64k) {
    const size_t max = GL_CSV_RECORD_MAX;
    char *data = malloc(max + 16);
    ck_assert_ptr_nonnull(data);
    reader rd;

    /* Exactly 64 KiB (its CRLF not counted) is fine. */
    data[0] = 'h';
    data[1] = '\n';
    memset(data + 2, 'y', max);
    data[2 + max] = '\r';
    data[3 + max] = '\n';
    open_reader(&rd, input_n(data, max + 4), NULL);
    expect_record(&rd, "h", 1);
    ck_assert_int_eq(next(&rd), GL_CSV_RECORD);
    ck_assert_uint_eq(rd.rec.fields[0].len, max);
    expect_end(&rd);
    close_reader(&rd);

    /* One byte more is not. */
    memset(data + 2, 'y', max + 1);
    data[3 + max] = '\n';
    open_reader(&rd, input_n(data, max + 4), NULL);
    expect_record(&rd, "h", 1);
    ck_assert_int_eq(next(&rd), GL_CSV_ERROR);
    ck_assert_ptr_nonnull(strstr(rd.err.message, "line 2: record longer than 65536 bytes"));
    close_reader(&rd);
    free(data);
}
END_TEST

START_TEST(test_bad_options_and_read_error) {
    gl_error err;
    FILE *f = input("a\n");
    gl_csv_options too_small = {19, 16, 4}; /* buffer must be >= record_max + 4 */
    ck_assert_ptr_null(gl_csv_reader_new(f, &too_small, &err));
    gl_csv_options zero = {64, 0, 4};
    ck_assert_ptr_null(gl_csv_reader_new(f, &zero, &err));
    ck_assert_ptr_null(gl_csv_reader_new(NULL, NULL, &err));
    fclose(f);

    /* Reading a write-only stream sets its error flag. */
    FILE *w = fopen("/dev/null", "w");
    ck_assert_ptr_nonnull(w);
    reader rd;
    open_reader(&rd, w, NULL);
    ck_assert_int_eq(next(&rd), GL_CSV_ERROR);
    ck_assert_ptr_nonnull(strstr(rd.err.message, "could not read"));
    close_reader(&rd);
}
END_TEST

/* ---- refills: many records through small and default buffers ------------ */

static uint64_t rng_state;

static unsigned rnd(unsigned n) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (unsigned)(rng_state % n);
}

typedef struct {
    char text[16]; /* what the field holds */
} field_value;

#define RECORDS 400
#define FIELDS_PER_RECORD_MAX 6

typedef struct {
    size_t n_fields;
    field_value fields[FIELDS_PER_RECORD_MAX];
    uint64_t line;
} expected_record;

/* Encodes one field, quoting it when it must be (and sometimes when not). */
static size_t encode_field(const char *v, char *out) {
    bool must_quote = strpbrk(v, ",\"\r\n") != NULL || v[0] == '\0';
    size_t o = 0;
    if (!must_quote && rnd(4) != 0) {
        for (const char *p = v; *p; p++) out[o++] = *p;
        return o;
    }
    out[o++] = '"';
    for (const char *p = v; *p; p++) {
        if (*p == '"') out[o++] = '"';
        out[o++] = *p;
    }
    out[o++] = '"';
    return o;
}

/* Random records in RFC 4180; `exp` gets what a reader must return. */
static size_t make_random_file(char *buf, size_t cap, expected_record *exp) {
    static const char alphabet[] = "ab1 ,\"\n\r-";
    size_t off = 0;
    uint64_t line = 1;
    for (int r = 0; r < RECORDS; r++) {
        expected_record *e = &exp[r];
        e->n_fields = 1 + rnd(FIELDS_PER_RECORD_MAX);
        e->line = line;
        for (size_t k = 0; k < e->n_fields; k++) {
            size_t len = rnd(10);
            for (size_t c = 0; c < len; c++) e->fields[k].text[c] = alphabet[rnd(sizeof alphabet - 1)];
            e->fields[k].text[len] = '\0';
            if (k > 0) buf[off++] = ',';
            off += encode_field(e->fields[k].text, buf + off);
            for (const char *p = e->fields[k].text; *p; p++) line += *p == '\n';
        }
        bool last = r == RECORDS - 1;
        if (!last || rnd(2)) {
            if (rnd(2)) buf[off++] = '\r';
            buf[off++] = '\n';
            line++;
        }
        ck_assert_uint_lt(off, cap - 200);
    }
    return off;
}

static void check_random_file(const char *data, size_t len, const expected_record *exp, const gl_csv_options *o) {
    reader rd;
    open_reader(&rd, input_n(data, len), o);
    for (int r = 0; r < RECORDS; r++) {
        ck_assert_msg(next(&rd) == GL_CSV_RECORD, "record %d: %s", r, rd.err.message);
        ck_assert_uint_eq(rd.rec.n_fields, exp[r].n_fields);
        ck_assert_uint_eq(rd.rec.line_no, exp[r].line);
        for (size_t k = 0; k < exp[r].n_fields; k++) {
            ck_assert_uint_eq(rd.rec.fields[k].len, strlen(exp[r].fields[k].text));
            ck_assert_str_eq(rd.rec.fields[k].ptr, exp[r].fields[k].text);
        }
    }
    expect_end(&rd);
    close_reader(&rd);
}

START_TEST(test_random_round_trip_small_buffers) {
    static char data[RECORDS * 160];
    static expected_record exp[RECORDS];
    for (uint64_t seed = 1; seed <= 20; seed++) {
        rng_state = seed * 0x9E3779B97F4A7C15u;
        size_t len = make_random_file(data, sizeof data, exp);
        /* Records are at most 6 * (2 * 9 + 2) + 5 + 2 bytes: 127. */
        static const size_t buffers[] = {132, 133, 137, 160, 257, 4096};
        for (size_t b = 0; b < sizeof buffers / sizeof buffers[0]; b++) {
            gl_csv_options o = {buffers[b], 128, 16};
            check_random_file(data, len, exp, &o);
        }
        check_random_file(data, len, exp, NULL);
    }
}
END_TEST

/* More than one default buffer (1 MiB) of lines: counts and line numbers hold. */
START_TEST(test_many_lines_default_buffer) {
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    const int lines = 30000;
    for (int i = 0; i < lines; i++)
        fprintf(f, "txn_%08d,2026-11-20 10:00:00,usd,%d.%02d,\"desc, with comma %d\"\n", i, i, i % 100, i);
    rewind(f);
    reader rd;
    open_reader(&rd, f, NULL);
    for (int i = 0; i < lines; i++) {
        ck_assert_int_eq(next(&rd), GL_CSV_RECORD);
        ck_assert_uint_eq(rd.rec.line_no, (uint64_t)i + 1);
        ck_assert_uint_eq(rd.rec.n_fields, 5);
        char want[32];
        snprintf(want, sizeof want, "txn_%08d", i);
        ck_assert_str_eq(rd.rec.fields[0].ptr, want);
    }
    expect_end(&rd);
    close_reader(&rd);
}
END_TEST

static Suite *csv_suite(void) {
    Suite *s = suite_create("recon_csv");
    TCase *ok = tcase_create("well_formed");
    tcase_add_test(ok, test_simple_lf_crlf_and_no_final_newline);
    tcase_add_test(ok, test_quoted_fields);
    tcase_add_test(ok, test_line_numbers_after_embedded_newlines);
    tcase_add_test(ok, test_bom_and_blank_lines);
    tcase_add_test(ok, test_empty_inputs);
    tcase_add_test(ok, test_fields_are_writable);
    suite_add_tcase(s, ok);

    TCase *bad = tcase_create("bad_records");
    tcase_add_test(bad, test_bad_records_are_skipped);
    tcase_add_test(bad, test_nul_byte);
    tcase_add_test(bad, test_too_many_fields);
    suite_add_tcase(s, bad);

    TCase *lim = tcase_create("limits");
    tcase_add_test(lim, test_record_limit);
    tcase_add_test(lim, test_default_limit_64k);
    tcase_add_test(lim, test_bad_options_and_read_error);
    suite_add_tcase(s, lim);

    TCase *refill = tcase_create("refill");
    tcase_set_timeout(refill, 30);
    tcase_add_test(refill, test_random_round_trip_small_buffers);
    tcase_add_test(refill, test_many_lines_default_buffer);
    suite_add_tcase(s, refill);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(csv_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
