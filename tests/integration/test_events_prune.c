/*
 * test_events_prune.c — retention of the outbox (ledger/outbox.h) against real
 * PostgreSQL: a prune deletes only events older than the cutoff AND at or
 * below every consumer's position, never one a consumer has not passed; the
 * dry run counts the same and deletes nothing; batches are bounded; the
 * status reads the head and the positions. Other tests' consumers may exist
 * in the same database, so every expectation is taken from the bound the
 * database holds (min of all positions), read independently.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../ledger/events.h"
#include "../../ledger/outbox.h"
#include "itest.h"

#define REGION "us" /* the integration tests of events leave a consumer in eu that holds every prune there back */

static int64_t now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t head(void) { return itest_sql_i64(REGION, "SELECT last_seq FROM event_head", 0, NULL); }
static int64_t bound(void) {
    return itest_sql_i64(REGION, "SELECT least(h.last_seq, coalesce((SELECT min(position) FROM event_consumers), "
                             "h.last_seq)) FROM event_head h", 0, NULL);
}
/* Events the feed still shows with lo < seq <= hi (above the prune horizon). */
static int64_t count_range(int64_t lo, int64_t hi) {
    char a[24], b[24];
    snprintf(a, sizeof a, "%lld", (long long)lo);
    snprintf(b, sizeof b, "%lld", (long long)hi);
    const char *p[2] = {a, b};
    return itest_sql_i64(REGION, "SELECT count(*) FROM event_feed f, event_horizon h WHERE f.seq > greatest($1::int8, "
                                 "h.pruned_through) AND f.seq <= $2::int8", 2, p);
}

/* `events` rows (account and mandate events) left at or below seq hi. */
static int64_t rows_left(int64_t hi) {
    char b[24];
    snprintf(b, sizeof b, "%lld", (long long)hi);
    const char *p[1] = {b};
    return itest_sql_i64(REGION, "SELECT count(*) FROM events WHERE seq <= $1::int8", 1, p);
}

/* n transfers between two new accounts: n + 2 events. */
static void make_events(int n) {
    char owner[64];
    itest_unique(owner, sizeof owner, "prune");
    gl_id a = itest_account(REGION, "EUR", 0, owner), b = itest_account(REGION, "EUR", 0, owner);
    for (int i = 0; i < n; i++) {
        ledger_cmd t = itest_transfer(owner, NULL, a, b, 1, "EUR");
        itest_assert_code(itest_exec1(REGION, &t).code, LEDGER_OK);
    }
}

/* The consumers this test made are removed again (as admin: the service role
 * may not delete them): left behind, they would hold back later prunes. */
static void drop_consumer(const char *name) {
    const char *p[1] = {name};
    free(itest_sql_value(REGION, "WITH d AS (DELETE FROM event_consumers WHERE name = $1 RETURNING 1) SELECT count(*) FROM d", 1, p));
}

/* A consumer of this test at `position`. */
static void consumer_at(const char *name, int64_t position) {
    gl_error err;
    ck_assert_int_ge(ledger_events_consumer_position(itest_db(REGION, GL_ROLE_SERVICE), name, &err), 0);
    ck_assert_msg(ledger_events_consumer_advance(itest_db(REGION, GL_ROLE_SERVICE), name, position, &err), "%s", err.message);
}

/* Prunes in batches of `limit` until a short one; returns the events deleted (or counted). */
static int64_t prune_all(int64_t cutoff_us, int limit, bool dry_run, int64_t *used_bound) {
    ledger_prune_step p = {.cutoff_us = cutoff_us, .limit = limit, .dry_run = dry_run};
    ledger_prune_result r;
    gl_error err;
    int64_t total = 0;
    do {
        ck_assert_msg(ledger_events_prune_step(itest_db(REGION, GL_ROLE_SERVICE), &p, &r, &err), "%s", err.message);
        ck_assert_int_le(r.count, limit);
        total += r.count;
        p.after = r.last;
    } while (r.count == limit);
    *used_bound = r.bound;
    return total;
}

START_TEST(test_prune_keeps_what_a_consumer_has_not_passed) {
    make_events(10);
    char name[64];
    itest_unique(name, sizeof name, "itest:prune");
    int64_t h = head();
    consumer_at(name, h - 5); /* has not passed the last 5 */
    int64_t b = bound();
    ck_assert_int_le(b, h - 5);
    int64_t above = count_range(b, h);
    ck_assert_int_eq(above, h - b); /* nothing above the bound was ever pruned: dense */

    int64_t used;
    int64_t would = prune_all(now_us() + 1000000, 3, true, &used);
    ck_assert_int_eq(used, b);
    ck_assert_int_eq(count_range(0, b), would); /* the dry run counted exactly what is there, deleted nothing */

    ck_assert_int_gt(rows_left(b), 0); /* the two accounts' events at least */
    int64_t deleted = prune_all(now_us() + 1000000, 3, false, &used);
    ck_assert_int_eq(deleted, would);
    ck_assert_int_eq(count_range(0, b), 0);
    ck_assert_int_eq(rows_left(b), 0);
    ck_assert_int_eq(itest_sql_i64(REGION, "SELECT pruned_through FROM event_horizon", 0, NULL), b);
    ck_assert_int_eq(count_range(b, h), above); /* every event a consumer has not passed is kept */

    /* The consumer moves on: what it passed may go now (up to the slowest other consumer). */
    consumer_at(name, h);
    int64_t b2 = bound();
    prune_all(now_us() + 1000000, 1000, false, &used);
    ck_assert_int_eq(used, b2);
    ck_assert_int_eq(count_range(0, b2), 0);
    ck_assert_int_eq(count_range(b2, head()), head() - b2);
    drop_consumer(name);
}
END_TEST

START_TEST(test_prune_respects_the_age) {
    make_events(3);
    int64_t before = count_range(0, head()), rows = rows_left(head()), used;
    /* A cutoff an hour ago: everything made by the tests is younger. */
    ck_assert_int_eq(prune_all(now_us() - (int64_t)3600 * 1000000, 100, false, &used), 0);
    ck_assert_int_eq(count_range(0, head()), before);
    ck_assert_int_eq(rows_left(head()), rows);
}
END_TEST

START_TEST(test_status_reads_head_and_consumers) {
    char name[64];
    itest_unique(name, sizeof name, "itest:status");
    make_events(1);
    int64_t h = head();
    consumer_at(name, h - 1);
    ledger_outbox_status st;
    gl_error err;
    ck_assert_msg(ledger_outbox_status_read(itest_db(REGION, GL_ROLE_SERVICE), &st, &err), "%s", err.message);
    ck_assert_int_ge(st.head, h);
    bool found = false;
    for (int i = 0; i < st.n_consumers; i++)
        if (strcmp(st.consumers[i].name, name) == 0) found = st.consumers[i].position == h - 1;
    ck_assert_msg(found || st.more_consumers, "consumer %s at %lld not in the status", name, (long long)(h - 1));
    drop_consumer(name);
}
END_TEST

static Suite *prune_suite(void) {
    const itest_group groups[] = {
        {"prune", 60, {test_prune_keeps_what_a_consumer_has_not_passed, test_prune_respects_the_age,
                       test_status_reads_head_and_consumers, NULL}},
    };
    return itest_suite("events_prune", groups, sizeof groups / sizeof groups[0]);
}

int main(void) { return itest_run(prune_suite()); }
