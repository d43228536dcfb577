/*
 * test_ratelimit.c — unit tests for api/ratelimit.c: burst then refusal
 * with the right Retry-After, exact integer refill over simulated time,
 * clocks that step back, independent principals, the table-full eviction
 * policy, configuration errors, and four threads hammering one table.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../api/ratelimit.h"

#define S UINT64_C(1000000) /* one second in microseconds */
#define T0 (UINT64_C(1000) * S)
#define THREADS 4
#define THREAD_TAKES 10000

static gl_ratelimit *make(uint32_t rate_per_s, uint32_t burst, uint32_t capacity) {
    gl_ratelimit_config cfg;
    gl_ratelimit_config_init(&cfg);
    cfg.rate_per_s = rate_per_s;
    cfg.burst = burst;
    if (capacity) cfg.capacity = capacity;
    gl_error err;
    gl_ratelimit *rl = gl_ratelimit_new(&cfg, &err);
    ck_assert_msg(rl != NULL, "gl_ratelimit_new: %s", err.message);
    return rl;
}

/* Takes until refused; returns how many were granted. */
static int drain(gl_ratelimit *rl, const char *who, uint64_t now_us) {
    uint64_t retry;
    int n = 0;
    while (gl_ratelimit_take(rl, who, now_us, &retry)) {
        ck_assert_uint_eq(retry, 0);
        n++;
        ck_assert_int_lt(n, 10000000);
    }
    return n;
}

START_TEST(test_burst_then_refusal) {
    gl_ratelimit *rl = make(10, 5, 0);
    uint64_t retry = 99;
    for (int i = 0; i < 5; i++) {
        ck_assert(gl_ratelimit_take(rl, "app:a", T0, &retry));
        ck_assert_uint_eq(retry, 0);
    }
    ck_assert(!gl_ratelimit_take(rl, "app:a", T0, &retry));
    ck_assert_uint_eq(retry, 1); /* 0.1 s rounds up to the whole second Retry-After can say */
    ck_assert(!gl_ratelimit_take(rl, "app:a", T0, NULL));
    gl_ratelimit_free(rl);
}
END_TEST

START_TEST(test_retry_after) {
    gl_ratelimit *rl = make(2, 10, 0);
    ck_assert_int_eq(drain(rl, "app:a", T0), 10);
    uint64_t retry;
    ck_assert(!gl_ratelimit_take_n(rl, "app:a", 10, T0, &retry));
    ck_assert_uint_eq(retry, 5); /* 10 tokens at 2/s */
    ck_assert(!gl_ratelimit_take_n(rl, "app:a", 3, T0, &retry));
    ck_assert_uint_eq(retry, 2); /* 1.5 s rounds up */
    /* 0.4 s later 0.8 tokens are there: 0.1 s missing for one token -> 1 s. */
    ck_assert(!gl_ratelimit_take(rl, "app:a", T0 + 400000, &retry));
    ck_assert_uint_eq(retry, 1);
    gl_ratelimit_free(rl);

    /* Retry-After is exact: one microsecond early fails, on time succeeds. */
    rl = make(1, 10, 0);
    ck_assert_int_eq(drain(rl, "app:b", T0), 10);
    ck_assert(!gl_ratelimit_take_n(rl, "app:b", 7, T0, &retry));
    ck_assert_uint_eq(retry, 7);
    ck_assert(!gl_ratelimit_take_n(rl, "app:b", 7, T0 + 7 * S - 1, &retry));
    ck_assert_uint_eq(retry, 1);
    ck_assert(gl_ratelimit_take_n(rl, "app:b", 7, T0 + 7 * S, &retry));
    ck_assert_uint_eq(retry, 0);
    gl_ratelimit_free(rl);
}
END_TEST

START_TEST(test_refill) {
    gl_ratelimit *rl = make(10, 5, 0);
    ck_assert_int_eq(drain(rl, "app:a", T0), 5);
    uint64_t retry;
    ck_assert(!gl_ratelimit_take(rl, "app:a", T0 + 99999, &retry)); /* 0.99999 token */
    ck_assert(gl_ratelimit_take(rl, "app:a", T0 + 100000, &retry)); /* exactly one: nothing was rounded */
    ck_assert(!gl_ratelimit_take(rl, "app:a", T0 + 100000, &retry));
    /* 0.25 s -> 2.5 tokens: two takes, and the half token is kept for later. */
    ck_assert_int_eq(drain(rl, "app:a", T0 + 350000), 2);
    ck_assert_int_eq(drain(rl, "app:a", T0 + 400000), 1);
    /* A long pause fills the bucket to burst, not beyond. */
    ck_assert_int_eq(drain(rl, "app:a", T0 + 3600 * S), 5);
    /* Many small steps add up exactly: 1000 steps of 100 us = 0.1 s = one token. */
    uint64_t now = T0 + 3600 * S;
    for (int i = 0; i < 999; i++) {
        now += 100;
        ck_assert(!gl_ratelimit_take(rl, "app:a", now, &retry));
    }
    ck_assert(gl_ratelimit_take(rl, "app:a", now + 100, &retry));
    gl_ratelimit_free(rl);
}
END_TEST

START_TEST(test_clock_steps_back) {
    gl_ratelimit *rl = make(10, 2, 0);
    ck_assert_int_eq(drain(rl, "app:a", T0), 2);
    uint64_t retry;
    /* An older timestamp (another thread read the clock first) adds nothing and moves nothing back. */
    ck_assert(!gl_ratelimit_take(rl, "app:a", T0 - 10 * S, &retry));
    ck_assert_uint_eq(retry, 1);
    ck_assert(gl_ratelimit_take(rl, "app:a", T0 + 100000, &retry));
    ck_assert(!gl_ratelimit_take(rl, "app:a", T0 + 100000, &retry));
    gl_ratelimit_free(rl);
}
END_TEST

START_TEST(test_principals_are_independent) {
    gl_ratelimit *rl = make(1, 3, 0);
    ck_assert_int_eq(drain(rl, "app:a", T0), 3);
    ck_assert_int_eq(drain(rl, "app:b", T0), 3);
    ck_assert_int_eq(drain(rl, "app:ab", T0), 3);
    ck_assert_int_eq(drain(rl, "app:A", T0), 3); /* case-sensitive, like `sub` */
    uint64_t retry;
    ck_assert(!gl_ratelimit_take(rl, "app:a", T0, &retry));
    gl_ratelimit_stats st;
    gl_ratelimit_get_stats(rl, &st);
    ck_assert_uint_eq(st.principals, 4);
    ck_assert_uint_eq(st.evictions + st.lossy_evictions, 0);
    gl_ratelimit_free(rl);
}
END_TEST

START_TEST(test_bad_arguments) {
    gl_ratelimit *rl = make(1, 3, 0);
    uint64_t retry = 0;
    char long_p[GL_RATELIMIT_PRINCIPAL_MAX + 2];
    memset(long_p, 'x', sizeof long_p - 1);
    long_p[sizeof long_p - 1] = '\0';
    ck_assert(!gl_ratelimit_take(rl, long_p, T0, &retry)); /* 129 bytes: fail closed */
    ck_assert_uint_eq(retry, 1);
    long_p[GL_RATELIMIT_PRINCIPAL_MAX] = '\0';
    ck_assert(gl_ratelimit_take(rl, long_p, T0, &retry)); /* 128 bytes: fine */
    ck_assert(!gl_ratelimit_take(rl, "", T0, &retry));
    ck_assert_uint_eq(retry, 1);
    ck_assert(!gl_ratelimit_take(rl, NULL, T0, &retry));
    ck_assert(!gl_ratelimit_take(NULL, "app:a", T0, &retry));
    ck_assert_uint_eq(retry, 1);
    ck_assert(gl_ratelimit_take_n(rl, "app:a", 0, T0, &retry)); /* free */
    ck_assert(!gl_ratelimit_take_n(rl, "app:a", 4, T0, &retry)); /* more than burst: never */
    ck_assert_uint_eq(retry, 0);
    ck_assert(gl_ratelimit_take_n(rl, "app:a", 3, T0, &retry)); /* ... and it took nothing */
    gl_ratelimit_free(rl);
    gl_ratelimit_free(NULL);
    gl_ratelimit_stats st;
    gl_ratelimit_get_stats(NULL, &st);
    ck_assert_uint_eq(st.principals, 0);
}
END_TEST

START_TEST(test_config_errors) {
    static const struct {
        uint32_t rate, burst, capacity;
    } bad[] = {
        {0, 10, 65536},       {GL_RATELIMIT_RATE_MAX + 1, 10, 65536},
        {10, 0, 65536},       {10, GL_RATELIMIT_BURST_MAX + 1, 65536},
        {10, 10, 0},          {10, 10, 8},
        {10, 10, 1000},       {10, 10, GL_RATELIMIT_CAPACITY_MAX * 2},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gl_ratelimit_config cfg = {.rate_per_s = bad[i].rate, .burst = bad[i].burst, .capacity = bad[i].capacity};
        gl_error err;
        gl_error_clear(&err);
        ck_assert_ptr_null(gl_ratelimit_new(&cfg, &err));
        ck_assert_int_eq(err.kind, GL_ERR_CONFIG);
        ck_assert_str_ne(err.message, "");
        ck_assert_str_ne(err.hint, "");
    }
    gl_error err;
    ck_assert_ptr_null(gl_ratelimit_new(NULL, &err));
    ck_assert_int_eq(err.kind, GL_ERR_CONFIG);
    gl_ratelimit_config cfg;
    gl_ratelimit_config_init(&cfg);
    ck_assert_uint_eq(cfg.capacity, GL_RATELIMIT_CAPACITY_DEFAULT);
    gl_ratelimit *rl = gl_ratelimit_new(&cfg, NULL);
    ck_assert_ptr_nonnull(rl);
    gl_ratelimit_free(rl);
    cfg.rate_per_s = GL_RATELIMIT_RATE_MAX; /* the extremes are accepted and cannot overflow */
    cfg.burst = GL_RATELIMIT_BURST_MAX;
    cfg.capacity = GL_RATELIMIT_CAPACITY_MIN;
    rl = gl_ratelimit_new(&cfg, NULL);
    ck_assert_ptr_nonnull(rl);
    uint64_t retry;
    ck_assert(gl_ratelimit_take_n(rl, "x", GL_RATELIMIT_BURST_MAX, T0, &retry));
    ck_assert(gl_ratelimit_take_n(rl, "x", GL_RATELIMIT_BURST_MAX, UINT64_MAX, &retry));
    gl_ratelimit_free(rl);
}
END_TEST

/* Capacity 16 is one group: the eviction policy becomes fully predictable. */
START_TEST(test_table_full_policy) {
    gl_ratelimit *rl = make(1, 1, GL_RATELIMIT_CAPACITY_MIN); /* refills in 1 s */
    char name[16];
    uint64_t retry;
    for (int i = 0; i < 16; i++) {
        snprintf(name, sizeof name, "p%d", i);
        ck_assert(gl_ratelimit_take(rl, name, T0 + (uint64_t)i * 1000, &retry)); /* p0 is the LRU */
    }
    gl_ratelimit_stats st;
    gl_ratelimit_get_stats(rl, &st);
    ck_assert_uint_eq(st.principals, 16);

    /* Full: a newcomer is not refused; the LRU (p0, still empty) gives up its slot. */
    ck_assert(gl_ratelimit_take(rl, "p16", T0 + 20000, &retry));
    gl_ratelimit_get_stats(rl, &st);
    ck_assert_uint_eq(st.principals, 16);
    ck_assert_uint_eq(st.evictions, 0);
    ck_assert_uint_eq(st.lossy_evictions, 1);
    /* Still-tracked principals keep their state: p15 and p16 are empty. */
    ck_assert(!gl_ratelimit_take(rl, "p15", T0 + 20000, &retry));
    ck_assert(!gl_ratelimit_take(rl, "p16", T0 + 20000, &retry));
    /* The evicted p0 comes back with a full bucket (lenient by design), evicting p1. */
    ck_assert(gl_ratelimit_take(rl, "p0", T0 + 20000, &retry));
    gl_ratelimit_get_stats(rl, &st);
    ck_assert_uint_eq(st.lossy_evictions, 2);

    /* Two seconds later p2.. are full again: evicting one loses nothing. */
    ck_assert(gl_ratelimit_take(rl, "p17", T0 + 2 * S, &retry));
    gl_ratelimit_get_stats(rl, &st);
    ck_assert_uint_eq(st.evictions, 1);
    ck_assert_uint_eq(st.lossy_evictions, 2);
    ck_assert_uint_eq(st.principals, 16);
    gl_ratelimit_free(rl);
}
END_TEST

START_TEST(test_large_table_accounting) {
    gl_ratelimit *rl = make(1, 1, 0);
    char name[32];
    uint64_t retry;
    const int n = 100000;
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "app:%d", i);
        ck_assert(gl_ratelimit_take(rl, name, T0 + (uint64_t)i, &retry));
        /* The principal just seen is always tracked: an immediate second take is refused. */
        ck_assert(!gl_ratelimit_take(rl, name, T0 + (uint64_t)i, &retry));
    }
    gl_ratelimit_stats st;
    gl_ratelimit_get_stats(rl, &st);
    ck_assert_uint_le(st.principals, GL_RATELIMIT_CAPACITY_DEFAULT);
    ck_assert_uint_gt(st.principals, GL_RATELIMIT_CAPACITY_DEFAULT * 9 / 10); /* the hash spreads well */
    ck_assert_uint_eq(st.principals + st.evictions + st.lossy_evictions, (uint64_t)n);
    gl_ratelimit_free(rl);
}
END_TEST

/* ---- four threads hammering ---- */

typedef struct {
    gl_ratelimit *rl;    /* roomy: "shared" and 50 own principals per thread */
    gl_ratelimit *churn; /* tiny: 500 principals per thread race through 64 slots */
    int id;
    int granted_shared;
    int granted_own;
} worker_args;

static void *worker(void *arg) {
    worker_args *a = arg;
    char own[32];
    uint64_t retry;
    for (int i = 0; i < THREAD_TAKES; i++) {
        if (gl_ratelimit_take(a->rl, "shared", T0, &retry)) a->granted_shared++;
        snprintf(own, sizeof own, "t%d:%d", a->id, i % 50);
        if (gl_ratelimit_take(a->rl, own, T0, &retry)) a->granted_own++;
        snprintf(own, sizeof own, "t%d:%d", a->id, i % 500);
        gl_ratelimit_take(a->churn, own, T0 + (uint64_t)i, &retry);
    }
    return NULL;
}

START_TEST(test_threads) {
    /* No time passes, so exactly `burst` takes of a principal may succeed in total. */
    gl_ratelimit *rl = make(1, 1000, 0);
    gl_ratelimit *churn = make(1, 2, 64);
    pthread_t t[THREADS];
    worker_args a[THREADS];
    for (int i = 0; i < THREADS; i++) {
        a[i] = (worker_args){.rl = rl, .churn = churn, .id = i};
        ck_assert_int_eq(pthread_create(&t[i], NULL, worker, &a[i]), 0);
    }
    int shared = 0, own = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        shared += a[i].granted_shared;
        own += a[i].granted_own;
    }
    ck_assert_int_eq(shared, 1000);
    ck_assert_int_eq(own, (intmax_t)THREADS * 50 * 200); /* 200 takes each, all within burst */
    gl_ratelimit_stats st;
    gl_ratelimit_get_stats(rl, &st);
    ck_assert_uint_eq(st.principals, 1 + THREADS * 50);
    ck_assert_uint_eq(st.evictions + st.lossy_evictions, 0);
    gl_ratelimit_get_stats(churn, &st);
    ck_assert_uint_eq(st.principals, 64);
    ck_assert_uint_gt(st.evictions + st.lossy_evictions, 0);
    gl_ratelimit_free(rl);
    gl_ratelimit_free(churn);
}
END_TEST

/* gl_ratelimit_has looks without taking: it never changes the bucket. */
START_TEST(test_has_does_not_take) {
    gl_ratelimit *rl = make(1, 3, 0);
    uint64_t retry = 99;
    for (int i = 0; i < 10; i++) ck_assert(gl_ratelimit_has(rl, "10.0.0.1", T0, &retry));
    ck_assert_uint_eq(retry, 0);
    ck_assert_int_eq(drain(rl, "10.0.0.1", T0), 3);
    ck_assert(!gl_ratelimit_has(rl, "10.0.0.1", T0, &retry));
    ck_assert_uint_eq(retry, 1);
    ck_assert(gl_ratelimit_has(rl, "10.0.0.1", T0 + 1000000, &retry)); /* one token a second */
    ck_assert(gl_ratelimit_take(rl, "10.0.0.1", T0 + 1000000, &retry));
    ck_assert(!gl_ratelimit_has(rl, "10.0.0.1", T0 + 1000000, &retry));
    ck_assert(!gl_ratelimit_has(NULL, "10.0.0.1", T0, &retry)); /* fails closed */
    gl_ratelimit_free(rl);
}
END_TEST

static Suite *ratelimit_suite(void) {
    Suite *s = suite_create("ratelimit");
    TCase *bucket = tcase_create("bucket");
    tcase_add_test(bucket, test_burst_then_refusal);
    tcase_add_test(bucket, test_retry_after);
    tcase_add_test(bucket, test_refill);
    tcase_add_test(bucket, test_clock_steps_back);
    tcase_add_test(bucket, test_principals_are_independent);
    tcase_add_test(bucket, test_bad_arguments);
    tcase_add_test(bucket, test_config_errors);
    tcase_add_test(bucket, test_has_does_not_take);
    suite_add_tcase(s, bucket);

    TCase *table = tcase_create("table");
    tcase_set_timeout(table, 60);
    tcase_add_test(table, test_table_full_policy);
    tcase_add_test(table, test_large_table_accounting);
    tcase_add_test(table, test_threads);
    suite_add_tcase(s, table);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(ratelimit_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
