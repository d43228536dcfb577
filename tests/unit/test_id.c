/*
 * test_id.c — unit tests for ledger/id.c: time-ordered UUIDv7-style ids that
 * carry a partition (region) code.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <uuid/uuid.h>

#include "../../ledger/id.h"

#define SEQUENCE_LEN 100000

/*
 * Test seam: a controllable wall clock. This definition of clock_gettime in
 * the executable interposes on glibc's (ELF symbol resolution prefers the
 * executable), so id.c's now_ms() reads fake_realtime_ms while it is >= 0.
 * That is the only way to reach, deterministically and without touching
 * id.c, the paths a real clock rarely takes in a unit test: 4096 ids in one
 * millisecond (~1000/ms is the measured rate) and the clock stepping back.
 * Every other clock, and the real time when not frozen, comes from the kernel.
 */
static int64_t fake_realtime_ms = -1;

int clock_gettime(clockid_t clk, struct timespec *ts) {
    if (clk == CLOCK_REALTIME && fake_realtime_ms >= 0) {
        ts->tv_sec = (time_t)(fake_realtime_ms / 1000);
        ts->tv_nsec = (long)(fake_realtime_ms % 1000) * 1000000L;
        return 0;
    }
    return (int)syscall(SYS_clock_gettime, clk, ts);
}

static uint64_t wall_ms(void) {
    struct timespec ts;
    ck_assert_int_eq(clock_gettime(CLOCK_REALTIME, &ts), 0);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static gl_id new_id(uint8_t partition) {
    gl_id id;
    gl_error err;
    gl_error_clear(&err);
    ck_assert_msg(gl_id_new(partition, &id, &err), "gl_id_new(%u): %s", partition,
                  err.message);
    return id;
}

START_TEST(test_layout_bits) {
    static const uint8_t partitions[] = {1, 2, 17, 128, 254, 255};
    for (size_t i = 0; i < sizeof partitions; i++) {
        gl_id id = new_id(partitions[i]);
        ck_assert_uint_eq(id.b[6] >> 4, 7);       /* version 7 */
        ck_assert_uint_eq(id.b[8] & 0xC0, 0x80);  /* RFC 9562 variant 0b10 */
        ck_assert_uint_eq(id.b[9], partitions[i]); /* documented byte */
        ck_assert_uint_eq(gl_id_partition(&id), partitions[i]);
        ck_assert(!gl_id_is_nil(&id));
    }
}
END_TEST

/* libuuid agrees on version and variant: interop with other UUID code. */
START_TEST(test_libuuid_agrees) {
    gl_id id = new_id(9);
    ck_assert_int_eq(uuid_type(id.b), 7);
    ck_assert_int_eq(uuid_variant(id.b), UUID_VARIANT_DCE);
}
END_TEST

START_TEST(test_partition_zero_rejected) {
    gl_id id;
    memset(&id, 0xAB, sizeof id);
    gl_error err;
    gl_error_clear(&err);
    ck_assert(!gl_id_new(0, &id, &err));
    ck_assert_int_eq(err.kind, GL_ERR_INVALID);
    ck_assert_str_ne(err.message, "");
    ck_assert_uint_eq(id.b[0], 0xAB); /* output untouched on failure */
    ck_assert(!gl_id_new(0, &id, NULL)); /* NULL err is allowed */
}
END_TEST

/* Time-ordered ids keep btree inserts at the right edge: each must sort after
 * the previous one byte-wise, including when many land in one millisecond. */
START_TEST(test_strictly_increasing) {
    gl_id prev = new_id(3);
    for (int i = 1; i < SEQUENCE_LEN; i++) {
        gl_id next = new_id(3);
        ck_assert_msg(memcmp(prev.b, next.b, sizeof prev.b) < 0, "id %d not after id %d", i,
                      i - 1);
        ck_assert_int_lt(gl_id_cmp(&prev, &next), 0);
        ck_assert_int_gt(gl_id_cmp(&next, &prev), 0);
        prev = next;
    }
    ck_assert_int_eq(gl_id_cmp(&prev, &prev), 0);
}
END_TEST

/* Ids from different partitions share one sequence in a process and still
 * keep their own partition byte. */
START_TEST(test_increasing_across_partitions) {
    gl_id prev = new_id(1);
    for (int i = 1; i < 10000; i++) {
        uint8_t p = (uint8_t)(1 + i % 255);
        gl_id next = new_id(p);
        ck_assert_int_lt(memcmp(prev.b, next.b, sizeof prev.b), 0);
        ck_assert_uint_eq(gl_id_partition(&next), p);
        prev = next;
    }
}
END_TEST

/* Frozen clock: the 12-bit counter runs out after at most 4096 ids and the
 * generator must borrow the next millisecond instead of wrapping. */
START_TEST(test_counter_exhaustion_borrows_next_ms) {
    /* A little ahead of anything generated so far, but close enough to now
     * that later tests still see sane times when run with CK_FORK=no. */
    const int64_t t0 = (int64_t)wall_ms() + 1000;
    fake_realtime_ms = t0;
    gl_id prev = new_id(4);
    ck_assert_uint_eq(gl_id_time_ms(&prev), (uint64_t)t0);
    for (int i = 1; i < 3 * 4096; i++) {
        gl_id next = new_id(4);
        ck_assert_msg(memcmp(prev.b, next.b, sizeof prev.b) < 0, "id %d not after id %d", i,
                      i - 1);
        prev = next;
    }
    /* 12288 ids from a counter starting below 0x800 must have borrowed at
     * least 2 and at most 4 milliseconds. */
    uint64_t t = gl_id_time_ms(&prev);
    ck_assert_uint_ge(t, (uint64_t)t0 + 2);
    ck_assert_uint_le(t, (uint64_t)t0 + 4);
    fake_realtime_ms = -1;
}
END_TEST

/* The wall clock stepping back (NTP) must not make ids go back in order. */
START_TEST(test_clock_step_back_stays_monotonic) {
    const int64_t t0 = (int64_t)wall_ms() + 2000;
    fake_realtime_ms = t0;
    gl_id before = new_id(6);
    fake_realtime_ms = t0 - 5000;
    gl_id prev = before;
    for (int i = 0; i < 5000; i++) {
        gl_id next = new_id(6);
        ck_assert_int_lt(memcmp(prev.b, next.b, sizeof prev.b), 0);
        ck_assert_uint_ge(gl_id_time_ms(&next), (uint64_t)t0);
        prev = next;
    }
    /* Once the clock passes the last used ms, it is used as is again. */
    fake_realtime_ms = t0 + 100;
    gl_id later = new_id(6);
    ck_assert_int_lt(memcmp(prev.b, later.b, sizeof prev.b), 0);
    ck_assert_uint_eq(gl_id_time_ms(&later), (uint64_t)(t0 + 100));
    fake_realtime_ms = -1;
}
END_TEST

START_TEST(test_time_ms_near_now) {
    uint64_t before = wall_ms();
    gl_id id = new_id(5);
    uint64_t after = wall_ms();
    uint64_t t = gl_id_time_ms(&id);
    /* A few seconds of slack: the generator may borrow future milliseconds
     * under load, and an earlier test may just have generated 100k ids. */
    ck_assert_uint_ge(t + 5000u, before);
    ck_assert_uint_le(t, after + 5000u);
    ck_assert_uint_gt(t, 1700000000000u); /* after Nov 2023: not zero, not seconds */
}
END_TEST

START_TEST(test_time_ms_decodes_bytes) {
    gl_id id;
    memset(&id, 0, sizeof id);
    static const uint8_t t[6] = {0x01, 0x8F, 0x12, 0x34, 0x56, 0x78};
    memcpy(id.b, t, sizeof t);
    ck_assert_uint_eq(gl_id_time_ms(&id), 0x018F12345678u);
}
END_TEST

START_TEST(test_format_parse_round_trip) {
    for (int i = 0; i < 1000; i++) {
        gl_id id = new_id((uint8_t)(1 + i % 255));
        char buf[GL_ID_STR_LEN + 1];
        memset(buf, 'Z', sizeof buf);
        gl_id_format(&id, buf);
        ck_assert_uint_eq(strlen(buf), GL_ID_STR_LEN);
        ck_assert(buf[8] == '-' && buf[13] == '-' && buf[18] == '-' && buf[23] == '-');
        for (int k = 0; k < GL_ID_STR_LEN; k++) {
            if (k == 8 || k == 13 || k == 18 || k == 23) continue;
            ck_assert_msg((buf[k] >= '0' && buf[k] <= '9') || (buf[k] >= 'a' && buf[k] <= 'f'),
                          "not lowercase hex: %s", buf);
        }
        gl_id back;
        memset(&back, 0, sizeof back);
        ck_assert(gl_id_parse(buf, &back));
        ck_assert_int_eq(gl_id_cmp(&id, &back), 0);
    }
}
END_TEST

START_TEST(test_format_known_value) {
    gl_id id;
    for (int i = 0; i < 16; i++) id.b[i] = (uint8_t)(i * 0x11);
    char buf[GL_ID_STR_LEN + 1];
    gl_id_format(&id, buf);
    ck_assert_str_eq(buf, "00112233-4455-6677-8899-aabbccddeeff");
}
END_TEST

START_TEST(test_parse_either_case) {
    gl_id a, b;
    ck_assert(gl_id_parse("01890a5d-ac96-774b-bcce-b302099a8057", &a));
    ck_assert(gl_id_parse("01890A5D-AC96-774B-BCCE-B302099A8057", &b));
    ck_assert_int_eq(gl_id_cmp(&a, &b), 0);
    ck_assert_uint_eq(a.b[0], 0x01);
    ck_assert_uint_eq(a.b[9], 0xCE);
    ck_assert_uint_eq(a.b[15], 0x57);
    ck_assert_uint_eq(gl_id_partition(&a), 0xCE);
}
END_TEST

START_TEST(test_parse_rejects_bad_strings) {
    static const char *const bad[] = {
        "",
        "01890a5d-ac96-774b-bcce-b302099a805",   /* 35 chars */
        "01890a5d-ac96-774b-bcce-b302099a80577", /* 37 chars */
        "01890a5d-ac96-774b-bcce-b302099a805g",  /* bad hex */
        "01890a5d-ac96-774b-bcce-b302099a805 ",  /* trailing space */
        " 1890a5d-ac96-774b-bcce-b302099a8057",  /* leading space */
        "01890a5dac96-774b-bcce-b302099a8057",   /* missing dash (35) */
        "01890a5d0ac96-774b-bcce-b302099a8057",  /* dash replaced by hex (36) */
        "01890a5d-ac960774b-bcce-b302099a8057",
        "01890a5d-ac96-774b0bcce-b302099a8057",
        "01890a5d-ac96-774b-bcce0b302099a8057",
        "01890a5-dac96-774b-bcce-b302099a8057",  /* dash in wrong place */
        "01890a5dac96774bbcceb302099a80570000",  /* 36 hex, no dashes */
        "{1890a5d-ac96-774b-bcce-b302099a8057",
        "01890a5d-ac96-774b-bcce-b302099a805\n",
        "0x890a5d-ac96-774b-bcce-b302099a8057",
        "01890a5d_ac96_774b_bcce_b302099a8057",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gl_id id;
        ck_assert_msg(!gl_id_parse(bad[i], &id), "accepted \"%s\"", bad[i]);
    }
    gl_id id;
    ck_assert(!gl_id_parse(NULL, &id));
}
END_TEST

/* A random (v4) UUID from some other system is not one of ours. */
START_TEST(test_partition_of_foreign_uuid) {
    for (int i = 0; i < 100; i++) {
        gl_id id;
        uuid_generate_random(id.b);
        ck_assert_int_eq(uuid_type(id.b), 4);
        ck_assert_uint_eq(gl_id_partition(&id), 0);
    }
    gl_id nil;
    memset(&nil, 0, sizeof nil);
    ck_assert(gl_id_is_nil(&nil));
    ck_assert_uint_eq(gl_id_partition(&nil), 0);
    /* v7 bits right but variant wrong (0b11): still not ours */
    gl_id id = new_id(7);
    id.b[8] |= 0xC0;
    ck_assert_uint_eq(gl_id_partition(&id), 0);
}
END_TEST

static Suite *id_suite(void) {
    Suite *s = suite_create("id");
    TCase *gen = tcase_create("generate");
    tcase_set_timeout(gen, 60); /* 100k ids under ASan */
    tcase_add_test(gen, test_layout_bits);
    tcase_add_test(gen, test_libuuid_agrees);
    tcase_add_test(gen, test_partition_zero_rejected);
    tcase_add_test(gen, test_strictly_increasing);
    tcase_add_test(gen, test_increasing_across_partitions);
    tcase_add_test(gen, test_time_ms_near_now);
    tcase_add_test(gen, test_counter_exhaustion_borrows_next_ms);
    tcase_add_test(gen, test_clock_step_back_stays_monotonic);
    tcase_add_test(gen, test_time_ms_decodes_bytes);
    suite_add_tcase(s, gen);

    TCase *text = tcase_create("text");
    tcase_add_test(text, test_format_parse_round_trip);
    tcase_add_test(text, test_format_known_value);
    tcase_add_test(text, test_parse_either_case);
    tcase_add_test(text, test_parse_rejects_bad_strings);
    tcase_add_test(text, test_partition_of_foreign_uuid);
    suite_add_tcase(s, text);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(id_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
