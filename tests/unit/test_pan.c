/*
 * test_pan.c — unit tests for reconciliation/pan.c: Luhn, finding and masking
 * card numbers in text, HMAC tokens, key ring loading and rotation.
 *
 * Expected tokens were computed independently (Python hmac/hashlib).
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../reconciliation/pan.h"

/* Key 00 01 02 .. 1f, and the same card: HMAC-SHA256 in hex. */
#define KEY_SEQ_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define TOKEN_SEQ_4111 "0622241201382a45912fb22828b3f7db5153cf2072722a73ded22623ea79abc9"
/* Key aa * 32. */
#define KEY_AA_HEX "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define TOKEN_AA_4111 "4cd7fc010cb381ac8a90c2fc8a27496ff8144bb7f8280adcc4996ceedc1c863e"

/* ---- helpers ------------------------------------------------------------ */

static char tmp_dir[64];

static const char *const tmp_files[] = {"ok.keys", "bad.keys", "p.keys", "ro.keys"};

static void make_tmp_dir(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/test_pan.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
}

static void remove_tmp_dir(void) {
    char path[128];
    for (size_t i = 0; i < sizeof tmp_files / sizeof tmp_files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmp_dir, tmp_files[i]);
        unlink(path);
    }
    rmdir(tmp_dir);
}

/* Writes `text` to tmp_dir/name with exactly `mode`; returns the path (static buffer). */
static const char *write_key_file(const char *name, const char *text, mode_t mode) {
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    size_t len = strlen(text);
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    ck_assert_int_eq(fchmod(fd, mode), 0); /* not subject to the umask */
    close(fd);
    return path;
}

static void load_ok(const char *text, gl_pan_keyring *ring) {
    gl_error err;
    const char *path = write_key_file("ok.keys", text, 0600);
    ck_assert_msg(gl_pan_keyring_load(path, ring, &err), "load failed: %s", err.message);
}

/* Loading must fail, the error must mention `needle`, and never the key. */
static void load_fails(const char *text, mode_t mode, const char *needle) {
    gl_pan_keyring ring;
    gl_error err;
    const char *path = write_key_file("bad.keys", text, mode);
    ck_assert(!gl_pan_keyring_load(path, &ring, &err));
    ck_assert_int_eq(ring.n_keys, 0);
    ck_assert_msg(strstr(err.message, needle) != NULL, "\"%s\" not in \"%s\"", needle, err.message);
    ck_assert_ptr_null(strstr(err.message, "aaaaaaaa"));
    ck_assert_ptr_null(strstr(err.detail, "aaaaaaaa"));
}

/* Masks a copy of `in` and checks the result and the count. */
static void assert_masks(const char *in, const char *want, int want_count) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", in);
    int n = gl_pan_mask_text(buf, NULL, NULL);
    ck_assert_msg(n == want_count, "\"%s\": %d masked, want %d", in, n, want_count);
    ck_assert_str_eq(buf, want);
    ck_assert_int_eq(strlen(buf), strlen(in));
    ck_assert(!gl_pan_text_has_pan(buf));
    ck_assert(gl_pan_text_has_pan(in) == (want_count > 0));
}

static void assert_untouched(const char *in) { assert_masks(in, in, 0); }

/* ---- Luhn --------------------------------------------------------------- */

START_TEST(test_luhn) {
    ck_assert(gl_pan_luhn_ok("4111111111111111", 16));
    ck_assert(gl_pan_luhn_ok("378282246310005", 15));
    ck_assert(gl_pan_luhn_ok("5555555555554444", 16));
    ck_assert(gl_pan_luhn_ok("4222222222222", 13));
    ck_assert(gl_pan_luhn_ok("6221260000000000001", 19));
    ck_assert(gl_pan_luhn_ok("0", 1));
    ck_assert(!gl_pan_luhn_ok("4111111111111112", 16));
    ck_assert(!gl_pan_luhn_ok("4111111111111111", 15)); /* len is respected */
    ck_assert(!gl_pan_luhn_ok("4111 1111", 9));         /* digits only */
    ck_assert(!gl_pan_luhn_ok("", 0));
    ck_assert(!gl_pan_luhn_ok(NULL, 3));
}
END_TEST

/* ---- finding and masking ------------------------------------------------ */

START_TEST(test_mask_forms) {
    assert_masks("4111111111111111", "411111******1111", 1);
    assert_masks("card 4111 1111 1111 1111 ok", "card 4111 11** **** 1111 ok", 1);
    assert_masks("4111-1111-1111-1111", "4111-11**-****-1111", 1);
    assert_masks("4111-1111 1111-1111", "4111-11** ****-1111", 1); /* mixed separators */
    assert_masks("x4111111111111111y", "x411111******1111y", 1);   /* glued to letters */
    assert_masks("378282246310005", "37828******0005", 1);          /* Amex, 15: 5 + 4 shown */
    assert_masks("30569309025904", "3056******5904", 1);            /* Diners, 14: 4 + 4 */
    assert_masks("4222222222222", "422******2222", 1);              /* 13: 3 + 4 */
    assert_masks("6221260000000000001", "622126*********0001", 1);  /* 19 */
    assert_masks("a 4111111111111111, b 5555555555554444", "a 411111******1111, b 555555******4444", 2);
}
END_TEST

START_TEST(test_not_pans) {
    assert_untouched("4111111111111112");       /* Luhn fails */
    assert_untouched("411111111117");           /* 12 digits, Luhn-valid */
    assert_untouched("4111    1111 1111 1111"); /* 4 separators end the run: 4 + 12 digits */
    assert_untouched("4111 - - 1111 1111 1111");
    assert_untouched("4111,1111,1111,1111");    /* ',' is not a separator */
    assert_untouched("4111*1111*1111*1111");    /* nor '*' (the mask) */
    assert_untouched("4111|1111|1111|1111");
    assert_untouched("2026-11-20 10:00:00");
    assert_untouched("txn_1PAbCdEfGhIjKlMnOpQr");
    assert_untouched("79789102448594807559");   /* 20 digits, no Luhn-valid 13..19 window */
    assert_untouched("");
    assert_untouched("short");
    ck_assert(!gl_pan_text_has_pan(NULL));
    ck_assert_int_eq(gl_pan_mask_text(NULL, NULL, NULL), 0);
}
END_TEST

START_TEST(test_long_runs) {
    /* A card followed by a year: 20 digits, the first 16 pass Luhn. The whole
     * run is masked but for its first 6 and last 4. */
    assert_masks("41111111111111112026", "411111**********2026", 1);
    assert_masks("4111 1111 1111 1111 2026", "4111 11** **** **** 2026", 1);
    /* The card in the middle of a longer run. */
    assert_masks("9994111111111111111999", "999411************1999", 1);

    /* The card described is the first Luhn-valid window, 16 digits tried first. */
    char buf[64];
    gl_pan_masked m;
    snprintf(buf, sizeof buf, "ref 41111111111111112026 end");
    ck_assert_int_eq(gl_pan_mask_text(buf, NULL, &m), 1);
    ck_assert(m.present);
    ck_assert_str_eq(m.bin, "411111");
    ck_assert_str_eq(m.last4, "1111");
    ck_assert_str_eq(buf, "ref 411111**********2026 end");
}
END_TEST

/* A grouped card with other digits next to it: 13..19 digits in all, so the
 * run as a whole fails Luhn, but whole groups of it hold the card. */
START_TEST(test_card_next_to_other_digits) {
    /* ('/' is a separator: "12/26" joins the run, 20 digits, masked whole) */
    assert_masks("exp 4242 4242 4242 4242 12/26", "exp 4242 42** **** **** 12/26", 1);
    assert_masks("exp 4242 4242 4242 4242, 12/26", "exp 4242 42** **** 4242, 12/26", 1);
    assert_masks("qty 2 5105105105105100", "qty 2 51051*******5100", 1);
    assert_masks("12 4111-1111-1111-1111", "12 4111-****-****-1111", 1); /* the run keeps its first 6 digits */
    char buf[64];
    gl_pan_masked m;
    snprintf(buf, sizeof buf, "qty 2 5105105105105100");
    ck_assert_int_eq(gl_pan_mask_text(buf, NULL, &m), 1);
    ck_assert_str_eq(m.bin, "510510");
    ck_assert_str_eq(m.last4, "5100");
    /* Group boundaries only: an unseparated 17..19-digit id is judged whole. */
    assert_untouched("id 123456789012345678");
    assert_untouched("order 1234 5678 9012 3456 78");
}
END_TEST

START_TEST(test_first_card_and_token) {
    gl_pan_keyring ring;
    memset(&ring, 0, sizeof ring);
    ring.n_keys = 1;
    snprintf(ring.keys[0].id, sizeof ring.keys[0].id, "k2026");
    for (int i = 0; i < 32; i++) ring.keys[0].key[i] = (uint8_t)i;

    char buf[128];
    snprintf(buf, sizeof buf, "pay 4111 1111 1111 1111 then 5555555555554444");
    gl_pan_masked m;
    ck_assert_int_eq(gl_pan_mask_text(buf, &ring, &m), 2);
    ck_assert(m.present);
    ck_assert_str_eq(m.bin, "411111");
    ck_assert_str_eq(m.last4, "1111");
    ck_assert_str_eq(m.key_id, "k2026");
    ck_assert_str_eq(m.token, TOKEN_SEQ_4111); /* over the digits only: separators do not matter */
    ck_assert(!gl_pan_text_has_pan(buf));

    /* Same card without separators: same token. */
    snprintf(buf, sizeof buf, "4111111111111111");
    ck_assert_int_eq(gl_pan_mask_text(buf, &ring, &m), 1);
    ck_assert_str_eq(m.token, TOKEN_SEQ_4111);

    /* No ring: BIN and last 4, no token. */
    snprintf(buf, sizeof buf, "4111111111111111");
    ck_assert_int_eq(gl_pan_mask_text(buf, NULL, &m), 1);
    ck_assert(m.present);
    ck_assert_str_eq(m.token, "");
    ck_assert_str_eq(m.key_id, "");

    /* Nothing found: present false, strings empty. */
    snprintf(buf, sizeof buf, "no card here, just 12345");
    ck_assert_int_eq(gl_pan_mask_text(buf, &ring, &m), 0);
    ck_assert(!m.present);
    ck_assert_str_eq(m.bin, "");
    ck_assert_str_eq(m.token, "");
}
END_TEST

START_TEST(test_mask_buf_respects_len) {
    char buf[40] = "4111111111111111";
    /* The first 15 bytes only: no 16-digit card, and 15 digits fail Luhn. */
    ck_assert_int_eq(gl_pan_mask_buf(buf, 15, NULL, NULL), 0);
    ck_assert_str_eq(buf, "4111111111111111");
    ck_assert(!gl_pan_buf_has_pan(buf, 15));
    ck_assert(gl_pan_buf_has_pan(buf, 16));
    /* A NUL inside the buffer is just a non-digit. */
    char raw[18] = {'x', '\0'};
    static const char card[] = "4111111111111111";
    for (size_t i = 0; i < 16; i++) raw[2 + i] = card[i]; /* no NUL after it */
    ck_assert_int_eq(gl_pan_mask_buf(raw, sizeof raw, NULL, NULL), 1);
    ck_assert_int_eq(memcmp(raw + 2, "411111******1111", 16), 0);
}
END_TEST

/* ---- the spelling corpus (issue 11: PCI DSS 3.4.1) ------------------------ */

/* Test cards of each length, how they are grouped, and what may be shown. */
typedef struct {
    const char *digits;
    const int *groups; /* digits per group, 0-terminated */
    const char *bin;   /* the first kept_prefix(n) digits: 3, 4, 5 or 6 */
} corpus_card;

static const int G4444[] = {4, 4, 4, 4, 0}, G465[] = {4, 6, 5, 0}, G4_6_4[] = {4, 6, 4, 0},
                 G4_4_5[] = {4, 4, 5, 0}, G44443[] = {4, 4, 4, 4, 3, 0};
static const corpus_card CARDS[] = {
    {"4222222222222", G4_4_5, "422"},         /* 13: 3 + 4 shown */
    {"30569309025904", G4_6_4, "3056"},       /* 14 */
    {"378282246310005", G465, "37828"},       /* 15 (Amex) */
    {"4111111111111111", G4444, "411111"},    /* 16 */
    {"5555555555554444", G4444, "555555"},    /* 16 */
    {"6221260000000000001", G44443, "622126"} /* 19 */
};

/* What goes between groups: every separator alone, repeated, mixed; UTF-8. */
static const char *const SEPS[] = {
    " ", "\t", "-", ".", "/", "_", ":", "+", "  ", "   ", " - ", "--", "..", "__", "::", " / ", "-.-", " _ ",
    ") (", ")(", "][", "] [", "}{", "} {", "\t-\t",
    "\xc2\xa0",                 /* U+00A0 NBSP */
    "\xe2\x80\xaf",             /* U+202F narrow NBSP */
    "\xe2\x80\x87",             /* U+2007 figure space */
    "\xe2\x80\x89",             /* U+2009 thin space */
    "\xe2\x80\x8b",             /* U+200B zero-width space */
    "\xe2\x80\x90", "\xe2\x80\x91", "\xe2\x80\x92", "\xe2\x80\x93", "\xe2\x80\x94", "\xe2\x80\x95", /* U+2010..2015 */
    "\xe2\x88\x92",             /* U+2212 minus */
    "\xe3\x80\x80",             /* U+3000 ideographic space */
    "\xef\xbc\x8d",             /* U+FF0D fullwidth hyphen-minus */
    "\xc2\xad",                 /* U+00AD soft hyphen */
    "\xe2\x81\xa0",             /* U+2060 word joiner */
    "\xef\xbb\xbf",             /* U+FEFF */
    "\xc2\xb7", "\xe2\x80\xa2", /* middle dot, bullet */
    "\xc2\xa0-\xc2\xa0",        /* NBSP dash NBSP: 3 characters, 5 bytes */
    "\xe2\x80\x93\xe2\x80\x93\xe2\x80\x93"};

/* Around the card: nothing, words, letters glued on, punctuation. */
static const char *const AROUND[][2] = {{"", ""},           {"card ", " ok"},   {"card", "x"},
                                        {"ref:", ";end"},    {"Paid with ", "."}, {"(", ")"},
                                        {"[", "]"},          {"no.", ",exp 12/26x"}};

/* card's digits in its groups joined by sep, between before and after */
static void spell(char *out, size_t cap, const corpus_card *c, const char *sep, const char *before, const char *after) {
    size_t off = (size_t)snprintf(out, cap, "%s", before), d = 0;
    for (const int *g = c->groups; *g; g++) {
        if (g != c->groups) off += (size_t)snprintf(out + off, cap - off, "%s", sep);
        off += (size_t)snprintf(out + off, cap - off, "%.*s", *g, c->digits + d);
        d += (size_t)*g;
    }
    ck_assert_uint_eq(d, strlen(c->digits));
    snprintf(out + off, cap - off, "%s", after);
}

/* The digits of text, in order (what a scan that ignores every separator sees). */
static size_t digits_of(const char *text, char *out, size_t cap) {
    size_t n = 0;
    for (const char *p = text; *p && n + 1 < cap; p++)
        if (*p >= '0' && *p <= '9') out[n++] = *p;
    out[n] = '\0';
    return n;
}

/* Masks one spelling; checks count, shape, what is kept and what is described. */
static void assert_spelling_masked(const corpus_card *c, const char *in) {
    char buf[256], digits_in[256], digits_out[256];
    snprintf(buf, sizeof buf, "%s", in);
    gl_pan_masked m;
    int n = gl_pan_mask_text(buf, NULL, &m);
    ck_assert_msg(n == 1, "\"%s\": %d masked, want 1", in, n);
    ck_assert_uint_eq(strlen(buf), strlen(in));
    for (size_t i = 0; in[i]; i++) /* only digits change, and only to '*' */
        ck_assert_msg(buf[i] == in[i] || (in[i] >= '0' && in[i] <= '9' && buf[i] == '*'), "\"%s\" byte %zu", in, i);
    ck_assert_msg(!gl_pan_text_has_pan(buf), "\"%s\" still has a PAN: \"%s\"", in, buf);
    ck_assert_msg(gl_pan_text_has_pan(in), "\"%s\": has_pan false", in);
    digits_of(in, digits_in, sizeof digits_in);
    digits_of(buf, digits_out, sizeof digits_out);
    ck_assert_msg(strstr(digits_out, c->digits) == NULL, "\"%s\" -> \"%s\" keeps the card", in, buf);
    /* the card's own digits as masked: the kept prefix and last 4, nothing between */
    const char *at = strstr(digits_in, c->digits);
    ck_assert_ptr_nonnull(at);
    size_t len = strlen(c->digits), shown = 0;
    char masked_card[32] = {0};
    size_t k = 0, pos = 0; /* walk the output's digits/stars at the card's digit positions */
    size_t want_from = (size_t)(at - digits_in);
    for (size_t i = 0; buf[i] && k < len; i++) {
        bool was_digit = in[i] >= '0' && in[i] <= '9';
        if (!was_digit) continue;
        if (pos++ < want_from) continue;
        masked_card[k++] = buf[i];
        if (buf[i] != '*') shown++;
    }
    ck_assert_uint_eq(k, len);
    ck_assert_msg(shown <= strlen(c->bin) + 4 && len - shown >= 6, "\"%s\": %zu of %zu digits shown (%s)", in, shown,
                  len, masked_card);
    ck_assert(m.present);
    ck_assert_str_eq(m.bin, c->bin);
    ck_assert_str_eq(m.last4, c->digits + len - 4);
}

START_TEST(test_corpus_spellings) {
    char in[256];
    int checked = 0;
    for (size_t c = 0; c < sizeof CARDS / sizeof CARDS[0]; c++)
        for (size_t s = 0; s < sizeof SEPS / sizeof SEPS[0]; s++)
            for (size_t a = 0; a < sizeof AROUND / sizeof AROUND[0]; a++) {
                spell(in, sizeof in, &CARDS[c], SEPS[s], AROUND[a][0], AROUND[a][1]);
                assert_spelling_masked(&CARDS[c], in);
                checked++;
            }
    ck_assert_int_eq(checked, 6 * 46 * 8); /* the corpus is what it says */
}
END_TEST

/* Every group in its own brackets, and mixed separators within one number. */
START_TEST(test_corpus_brackets_and_mixed) {
    static const char *const forms[] = {
        "(4111) (1111) (1111) (1111)", "(4111)(1111)(1111)(1111)", "[4111] [1111] [1111] [1111]",
        "{4111}{1111}{1111}{1111}", "4111 1111-1111.1111", "4111_1111/1111:1111", "4111 \xc2\xa0""1111\t1111--1111",
        "4111.-1111 -1111/ 1111", "(4111)-(1111)-(1111)-(1111)", "card#4111+1111+1111+1111&exp=1226",
        "4\xe2\x80\x8b""1\xe2\x80\x8b""1\xe2\x80\x8b""1\xe2\x80\x8b""111111111111", /* zero-width spaces between digits */
        "4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1", "4-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1", "txn_4111111111111111_x"};
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) assert_spelling_masked(&CARDS[3], forms[i]);
}
END_TEST

/* Luhn-invalid lookalikes, too-far-apart groups, dates, amounts: left alone. */
START_TEST(test_corpus_not_cards) {
    char in[256];
    static const corpus_card wrong[] = {{"4111111111111112", G4444, ""}, {"378282246310006", G465, ""},
                                        {"4222222222223", G4_4_5, ""}, {"4000000000000000007", G44443, ""}};
    for (size_t c = 0; c < sizeof wrong / sizeof wrong[0]; c++)
        for (size_t s = 0; s < sizeof SEPS / sizeof SEPS[0]; s++) {
            spell(in, sizeof in, &wrong[c], SEPS[s], "ref ", " end");
            assert_untouched(in);
        }
    /* 4 separator characters: not one number (each part is too short to be a card) */
    assert_untouched("4111 1111    1111 1111");
    assert_untouched("4111 1111 \xc2\xa0\xc2\xa0\xc2\xa0\xc2\xa0""1111 1111");
    assert_untouched("(4111) ( 1111 ) (1111)");
    /* dates and times, alone or as ranges (a 14..22-digit run in the time columns) */
    assert_untouched("2026-11-20 10:00:00");
    assert_untouched("2026-11-20 10:00:07");
    assert_untouched("2026-11-25 16:27:20.000000+00");
    assert_untouched("2026-11-25 16:27:20.123456+05:30");
    assert_untouched("2026-11-25 16:27:20-0800");
    assert_untouched("20/11/2026 10:00:03");
    assert_untouched("11.20.2026 23:59:59");
    assert_untouched("2026-11-01 - 2026-11-30");
    assert_untouched("2026-11-01 10:00:00 / 2026-11-30 10:00:00");
    assert_untouched("1,234,567.89 EUR");
    assert_untouched("01a21388-8a1c-728b-ab01-68bce9160ad0");
    assert_untouched("+44 20 7946 0958");
    /* ... but a card next to a date is a card (and the date is masked with it) */
    assert_masks("2026-11-20 10:00:00 4111111111111111", "2026-11-** **:**:** ************1111", 1);
    assert_masks("4111 1111 1111 1111 2026-11-20", "4111 11** **** **** ****-11-20", 1);
}
END_TEST

START_TEST(test_kept_digits_rule) {
    /* first min(6, n - 10) and last 4: at least 6 hidden, never more than 10 shown */
    assert_masks("4222222222222", "422******2222", 1);
    assert_masks("30569309025904", "3056******5904", 1);
    assert_masks("378282246310005", "37828******0005", 1);
    assert_masks("4111111111111111", "411111******1111", 1);
    assert_masks("4000000000000000006", "400000*********0006", 1);
    assert_masks("4222-2222-22222", "422*-****-*2222", 1);
    char buf[64];
    gl_pan_masked m;
    snprintf(buf, sizeof buf, "x 3782 822463 10005 y");
    ck_assert_int_eq(gl_pan_mask_text(buf, NULL, &m), 1);
    ck_assert_str_eq(m.bin, "37828");
    ck_assert_str_eq(m.last4, "0005");
    ck_assert_str_eq(buf, "x 3782 8***** *0005 y");
}
END_TEST

START_TEST(test_token_any_spelling) {
    gl_pan_keyring ring;
    memset(&ring, 0, sizeof ring);
    ring.n_keys = 1;
    snprintf(ring.keys[0].id, sizeof ring.keys[0].id, "k");
    for (int i = 0; i < 32; i++) ring.keys[0].key[i] = (uint8_t)i;
    char out[GL_PAN_TOKEN_HEX + 1];
    gl_error err;
    ck_assert(gl_pan_token_with(&ring, "k", "4111.1111.1111.1111", out, sizeof out, &err));
    ck_assert_str_eq(out, TOKEN_SEQ_4111);
    ck_assert(gl_pan_token_with(&ring, "k", "(4111)\xc2\xa0(1111) 1111_1111", out, sizeof out, &err));
    ck_assert_str_eq(out, TOKEN_SEQ_4111);
    ck_assert(!gl_pan_token_with(&ring, "k", "4111,1111,1111,1111", out, sizeof out, &err));
    char buf[64];
    gl_pan_masked m;
    snprintf(buf, sizeof buf, "4111\xe2\x80\x93""1111\xe2\x80\x93""1111\xe2\x80\x93""1111");
    ck_assert_int_eq(gl_pan_mask_text(buf, &ring, &m), 1);
    ck_assert_str_eq(m.token, TOKEN_SEQ_4111); /* the same card, the same token, however written */
}
END_TEST

/* ---- tokens with a chosen key ------------------------------------------- */

START_TEST(test_token_with) {
    gl_pan_keyring ring;
    load_ok("new " KEY_SEQ_HEX "\nold " KEY_AA_HEX "\n", &ring);
    char out[GL_PAN_TOKEN_HEX + 1];
    gl_error err;
    ck_assert(gl_pan_token_with(&ring, "old", "4111 1111 1111 1111", out, sizeof out, &err));
    ck_assert_str_eq(out, TOKEN_AA_4111);
    ck_assert(gl_pan_token_with(&ring, "new", "4111-1111-1111-1111", out, sizeof out, &err));
    ck_assert_str_eq(out, TOKEN_SEQ_4111);

    ck_assert(!gl_pan_token_with(&ring, "gone", "4111111111111111", out, sizeof out, &err));
    ck_assert_int_eq(err.kind, GL_ERR_NOT_FOUND);
    ck_assert_str_eq(out, "");
    ck_assert(!gl_pan_token_with(&ring, "new", "4111x1111", out, sizeof out, &err));
    ck_assert(!gl_pan_token_with(&ring, "new", "411111111111", out, sizeof out, &err));       /* 12 digits */
    ck_assert(!gl_pan_token_with(&ring, "new", "41111111111111111111", out, sizeof out, &err)); /* 20 */
    ck_assert(!gl_pan_token_with(&ring, "new", "4111111111111111", out, 10, &err));          /* small */
    ck_assert(!gl_pan_token_with(NULL, "new", "4111111111111111", out, sizeof out, &err));
    gl_pan_keyring_clear(&ring);
}
END_TEST

/* ---- key ring ----------------------------------------------------------- */

START_TEST(test_keyring_load) {
    gl_pan_keyring ring;
    load_ok("# PAN token keys\n"
            "\n"
            "k2027\t" KEY_SEQ_HEX "   # active since 2027-01\r\n"
            "  k2026 " KEY_AA_HEX "\n"
            "# end",
            &ring);
    ck_assert_int_eq(ring.n_keys, 2);
    ck_assert_str_eq(ring.keys[0].id, "k2027");
    ck_assert_str_eq(ring.keys[1].id, "k2026");
    ck_assert_int_eq(ring.keys[0].key[31], 0x1f);
    ck_assert_int_eq(ring.keys[1].key[0], 0xaa);

    gl_pan_keyring_clear(&ring);
    ck_assert_int_eq(ring.n_keys, 0);
    static const uint8_t zeros[32] = {0};
    ck_assert_int_eq(memcmp(ring.keys[0].key, zeros, 32), 0);
    ck_assert_int_eq(memcmp(ring.keys[1].key, zeros, 32), 0);
    ck_assert_str_eq(ring.keys[0].id, "");
}
END_TEST

START_TEST(test_keyring_permissions_refused) {
    const char *text = "k1 " KEY_AA_HEX "\n";
    load_fails(text, 0640, "group or others");
    load_fails(text, 0604, "group or others");
    load_fails(text, 0644, "group or others");
    load_fails(text, 0620, "group or others"); /* group-writable: the key could be replaced */
    gl_pan_keyring ring;
    gl_error err;
    const char *path = write_key_file("p.keys", text, 0644);
    ck_assert(!gl_pan_keyring_load(path, &ring, &err));
    ck_assert_int_eq(err.kind, GL_ERR_CONFIG);
    ck_assert_ptr_nonnull(strstr(err.hint, "chmod 600"));
    path = write_key_file("ro.keys", text, 0400);
    ck_assert_msg(gl_pan_keyring_load(path, &ring, &err), "0400 refused: %s", err.message);
    gl_pan_keyring_clear(&ring);
}
END_TEST

START_TEST(test_keyring_malformed) {
    load_fails("", 0600, "no key");
    load_fails("# only a comment\n\n", 0600, "no key");
    load_fails("k1 " KEY_AA_HEX "a\n", 0600, "line 1");                   /* 65 hex */
    load_fails("k1 aaaa\n", 0600, "64 hex");
    char not_hex[80];
    snprintf(not_hex, sizeof not_hex, "k1 zz%.62s\n", KEY_AA_HEX);
    load_fails(not_hex, 0600, "64 hex");
    load_fails("bad.id " KEY_AA_HEX "\n", 0600, "key id");
    load_fails("0123456789012345678901234567890123 " KEY_AA_HEX "\n", 0600, "key id"); /* 34 chars */
    load_fails("k1 " KEY_AA_HEX "\nk1 " KEY_SEQ_HEX "\n", 0600, "duplicate");
    load_fails("k1 " KEY_AA_HEX " extra\n", 0600, "unexpected text");
    load_fails("# a\nk1\n", 0600, "line 2");

    char many[17 * 100];
    size_t off = 0;
    for (int i = 0; i < 17; i++)
        off += (size_t)snprintf(many + off, sizeof many - off, "key%d %s\n", i, KEY_AA_HEX);
    load_fails(many, 0600, "too many keys");

    gl_pan_keyring ring;
    gl_error err;
    ck_assert(!gl_pan_keyring_load("/nonexistent/pan.keys", &ring, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "cannot open"));
    ck_assert(!gl_pan_keyring_load(tmp_dir, &ring, &err)); /* a directory */
    ck_assert_ptr_nonnull(strstr(err.message, "not a regular file"));
    ck_assert(!gl_pan_keyring_load(NULL, &ring, &err));
}
END_TEST

/* Tokens made before a rotation can still be recognised afterwards. */
START_TEST(test_rotation) {
    gl_pan_keyring before, after;
    load_ok("k2026 " KEY_AA_HEX "\n", &before);
    char buf[32];
    gl_pan_masked old_card, new_card;
    snprintf(buf, sizeof buf, "4111111111111111");
    ck_assert_int_eq(gl_pan_mask_text(buf, &before, &old_card), 1);
    ck_assert_str_eq(old_card.key_id, "k2026");
    ck_assert_str_eq(old_card.token, TOKEN_AA_4111);

    /* Rotation: the new key goes first, the old one stays. */
    load_ok("k2027 " KEY_SEQ_HEX "\nk2026 " KEY_AA_HEX "\n", &after);
    snprintf(buf, sizeof buf, "4111111111111111");
    ck_assert_int_eq(gl_pan_mask_text(buf, &after, &new_card), 1);
    ck_assert_str_eq(new_card.key_id, "k2027"); /* new tokens: the active key */
    ck_assert_str_eq(new_card.token, TOKEN_SEQ_4111);
    ck_assert_str_ne(new_card.token, old_card.token);

    char again[GL_PAN_TOKEN_HEX + 1];
    gl_error err;
    ck_assert(gl_pan_token_with(&after, old_card.key_id, "4111111111111111", again, sizeof again, &err));
    ck_assert_str_eq(again, old_card.token);
    gl_pan_keyring_clear(&before);
    gl_pan_keyring_clear(&after);
}
END_TEST

static Suite *pan_suite(void) {
    Suite *s = suite_create("pan");
    TCase *scan = tcase_create("scan");
    tcase_add_test(scan, test_luhn);
    tcase_add_test(scan, test_mask_forms);
    tcase_add_test(scan, test_not_pans);
    tcase_add_test(scan, test_long_runs);
    tcase_add_test(scan, test_card_next_to_other_digits);
    tcase_add_test(scan, test_first_card_and_token);
    tcase_add_test(scan, test_mask_buf_respects_len);
    tcase_add_test(scan, test_corpus_spellings);
    tcase_add_test(scan, test_corpus_brackets_and_mixed);
    tcase_add_test(scan, test_corpus_not_cards);
    tcase_add_test(scan, test_kept_digits_rule);
    tcase_add_test(scan, test_token_any_spelling);
    suite_add_tcase(s, scan);

    TCase *keys = tcase_create("keys");
    tcase_add_checked_fixture(keys, make_tmp_dir, remove_tmp_dir);
    tcase_add_test(keys, test_token_with);
    tcase_add_test(keys, test_keyring_load);
    tcase_add_test(keys, test_keyring_permissions_refused);
    tcase_add_test(keys, test_keyring_malformed);
    tcase_add_test(keys, test_rotation);
    suite_add_tcase(s, keys);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(pan_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
