/*
 * test_events.c — the outbox (ledger/events.h, sql/0011_events.sql) against
 * real PostgreSQL: one event per effect and none for a refusal, a replay or a
 * rolled-back chain; a reader that follows the cursor while writers commit
 * concurrently (some holding their transaction open after numbering their
 * events) sees every seq exactly once, in order; the principal filter; the
 * scan window; a cursor read twice gives the same page.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../ledger/events.h"
#include "../../ledger/pg.h"
#include "itest.h"

#define EU "eu"
#define OWNER(name)                                                                                                    \
    char name[64];                                                                                                     \
    itest_unique(name, sizeof name, "ev")

static ledger_cmd hold(const char *owner, gl_id from, gl_id to, int64_t amount, int64_t timeout_s) {
    ledger_cmd c = itest_transfer(owner, NULL, from, to, amount, "EUR");
    c.pending = true;
    c.timeout_s = timeout_s;
    return c;
}

/* How many events name `id` in any id column, and the type of the last one. */
static int64_t events_naming(gl_id id, const char *type) {
    const char *p[2] = {itest_id(id), type};
    return itest_sql_i64(EU,
                         "SELECT count(*) FROM event_feed WHERE $1::uuid IN (account_id, transfer_id) AND type = $2", 2, p);
}

static int64_t events_total(void) { return itest_sql_i64(EU, "SELECT count(*) FROM event_feed", 0, NULL); }

static void assert_one_event(gl_id id, const char *type) {
    int64_t n = events_naming(id, type);
    ck_assert_msg(n == 1, "%s events for %s: %lld, want 1", type, itest_id(id), (long long)n);
}

START_TEST(test_every_effect_has_one_event) {
    OWNER(owner);
    int64_t before = events_total();
    gl_id a = itest_account(EU, "EUR", 0, owner);
    gl_id b = itest_account(EU, "EUR", LEDGER_AF_DEBITS_MUST_NOT_EXCEED_CREDITS, owner);
    assert_one_event(a, "account.created");
    assert_one_event(b, "account.created");

    ledger_cmd t = itest_transfer(owner, "ev-t1", a, b, 100, "EUR");
    ledger_result tr = itest_exec1(EU, &t);
    itest_assert_code(tr.code, LEDGER_OK);
    assert_one_event(tr.id, "transfer.created");
    const char *p[2] = {itest_id(tr.id), owner};
    ck_assert_int_eq(itest_sql_i64(EU, "SELECT amount FROM event_feed WHERE transfer_id = $1::uuid", 1, p), 100);
    ck_assert_int_eq(itest_sql_i64(EU, "SELECT count(*) FROM event_feed WHERE transfer_id = $1::uuid AND $2 IN (owner1, owner2, owner3) "
                                       "AND debit_account_id IS NOT NULL AND currency = 'EUR'",
                                   2, p),
                     1);

    /* no effect, no event: a replay, a refusal, a chain rolled back */
    int64_t mid = events_total();
    itest_assert_code(itest_exec1(EU, &t).code, LEDGER_EXISTS);
    ledger_cmd too_much = itest_transfer(owner, "ev-t2", b, a, 1000, "EUR");
    itest_assert_code(itest_exec1(EU, &too_much).code, LEDGER_INSUFFICIENT_FUNDS);
    ledger_cmd chain[2] = {itest_transfer(owner, "ev-c1", a, b, 1, "EUR"), itest_transfer(owner, "ev-c2", b, a, 1000, "EUR")};
    chain[0].linked = true;
    ledger_result cr[2];
    itest_exec_ok(EU, chain, 2, cr);
    itest_assert_code(cr[0].code, LEDGER_LINKED_EVENT_FAILED);
    ck_assert_int_eq(events_total(), mid);

    /* holds: placed, captured (with the amount), released, expired */
    ledger_cmd h1 = hold(owner, b, a, 30, 0), h2 = hold(owner, b, a, 10, 0), h3 = hold(owner, b, a, 5, 1);
    ledger_result h1r = itest_exec1(EU, &h1), h2r = itest_exec1(EU, &h2), h3r = itest_exec1(EU, &h3);
    assert_one_event(h1r.id, "transfer.pending");
    ledger_cmd post = itest_on(LEDGER_CMD_POST, owner, NULL, h1r.id, 20);
    ledger_result pr = itest_exec1(EU, &post);
    itest_assert_code(pr.code, LEDGER_OK);
    assert_one_event(pr.id, "transfer.posted");
    const char *pp[2] = {itest_id(pr.id), itest_id(h1r.id)};
    ck_assert_int_eq(
        itest_sql_i64(EU, "SELECT count(*) FROM event_feed WHERE transfer_id = $1::uuid AND pending_id = $2::uuid AND amount = 20",
                      2, pp),
        1);
    ledger_cmd vd = itest_on(LEDGER_CMD_VOID, owner, NULL, h2r.id, 0);
    ledger_result vr = itest_exec1(EU, &vd);
    assert_one_event(vr.id, "transfer.voided");
    struct timespec ts = {1, 150000000};
    nanosleep(&ts, NULL);
    ledger_ctx ctx = {.partition_code = 1};
    gl_error err;
    gl_error_clear(&err);
    ck_assert_int_ge(ledger_expire_due(itest_db(EU, GL_ROLE_SERVICE), &ctx, 0, &err), 1);
    const char *hp[1] = {itest_id(h3r.id)};
    ck_assert_int_eq(itest_sql_i64(EU, "SELECT count(*) FROM event_feed WHERE pending_id = $1::uuid AND type = 'transfer.expired'",
                                   1, hp),
                     1);

    /* a refund, and an account closed */
    ledger_cmd rv = itest_on(LEDGER_CMD_REVERSE, owner, "ev-r1", tr.id, 40);
    ledger_result rr = itest_exec1(EU, &rv);
    itest_assert_code(rr.code, LEDGER_OK);
    assert_one_event(rr.id, "transfer.reversed");
    gl_id c = itest_account(EU, "EUR", 0, owner);
    ledger_cmd close = itest_on(LEDGER_CMD_CLOSE_ACCOUNT, owner, NULL, c, 0);
    itest_assert_code(itest_exec1(EU, &close).code, LEDGER_OK);
    assert_one_event(c, "account.closed");

    /* 3 accounts, transfer, 3 holds, post, void, expiry, reversal, close: 12, each concerning the owner */
    const char *op[1] = {owner};
    ck_assert_int_eq(itest_sql_i64(EU, "SELECT count(*) FROM event_feed WHERE $1 IN (owner1, owner2, owner3)", 1, op), 12);
    ck_assert_int_ge(events_total() - before, 12);
}
END_TEST

/* ---- the race: writers commit in an order other than the one they started in ---- */

#define RACE_WRITERS 4
#define RACE_ROUNDS 40

typedef struct {
    int no;
    char owner[64];
    gl_id a, b; /* made before the threads start: itest's helpers share one connection */
    atomic_int *done;
    char failure[512];
} race_writer;

/* Half the rounds number their events and then hold the transaction open a
 * little (the head's lock makes the others wait: none may commit a higher
 * seq first); the other half are engine batches with a transfer each. */
static void *race_write(void *arg) {
    race_writer *w = arg;
    PGconn *db = itest_connect(EU, GL_ROLE_SERVICE);
    gl_id a = w->a, b = w->b;
    const gl_region *r = itest_region(EU);
    for (int round = 0; round < RACE_ROUNDS && !w->failure[0]; round++) {
        gl_error err;
        gl_error_clear(&err);
        if (round % 2) {
            ledger_cmd t = itest_transfer(w->owner, NULL, a, b, 1, "EUR");
            ledger_result res;
            if (!gl_route_execute(&itest_cfg, r, db, &t, 1, &res, &err) || res.code != LEDGER_OK)
                snprintf(w->failure, sizeof w->failure, "batch: %s %s", err.message, ledger_code_name(res.code));
            continue;
        }
        ledger_event ev[3];
        memset(ev, 0, sizeof ev);
        size_t n = 1 + (size_t)(round % 3);
        for (size_t k = 0; k < n; k++) {
            ev[k].type = LEDGER_EV_ACCOUNT_CREATED;
            ev[k].account_id = a;
            ev[k].created_at_us = 1;
            ledger_event_add_owner(&ev[k], w->owner);
        }
        char sleep_sql[64];
        snprintf(sleep_sql, sizeof sleep_sql, "SELECT pg_sleep(0.00%d)", 1 + (w->no + round) % 9);
        bool ok = gl_pg_run(db, "BEGIN", 0, NULL, &err) && ledger_events_write(db, ev, n, &err) &&
                  gl_pg_run(db, sleep_sql, 0, NULL, &err) && gl_pg_run(db, "COMMIT", 0, NULL, &err);
        if (!ok) snprintf(w->failure, sizeof w->failure, "events: %s", err.message);
    }
    PQfinish(db);
    atomic_fetch_add(w->done, 1);
    return NULL;
}

START_TEST(test_reader_never_skips_or_repeats) {
    atomic_int done = 0;
    race_writer w[RACE_WRITERS];
    pthread_t th[RACE_WRITERS];
    PGconn *db = itest_connect(EU, GL_ROLE_SERVICE);
    int64_t cursor = itest_sql_i64(EU, "SELECT last_seq FROM event_head", 0, NULL), start = cursor;
    for (int i = 0; i < RACE_WRITERS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].no = i;
        w[i].done = &done;
        itest_unique(w[i].owner, sizeof w[i].owner, "race");
        w[i].a = itest_account(EU, "EUR", 0, w[i].owner);
        w[i].b = itest_account(EU, "EUR", 0, w[i].owner);
    }
    for (int i = 0; i < RACE_WRITERS; i++) {
        ck_assert_int_eq(pthread_create(&th[i], NULL, race_write, &w[i]), 0);
    }
    static ledger_event page[7];
    int64_t expect = cursor + 1, polls = 0, head = 0;
    /* Poll while they write: every page must continue exactly where the last ended. */
    for (;;) {
        bool writers_done = atomic_load(&done) == RACE_WRITERS;
        ledger_events_query q = {.after = cursor, .limit = 7, .scan_max = 10000};
        gl_error err;
        int64_t to = 0;
        int n = ledger_events_list(db, &q, page, &to, &head, &err);
        ck_assert_msg(n >= 0, "list: %s", err.message);
        for (int k = 0; k < n; k++) {
            ck_assert_msg(page[k].seq == expect, "poll %lld: seq %lld after %lld (a skip or a repeat)", (long long)polls,
                          (long long)page[k].seq, (long long)expect - 1);
            expect++;
        }
        ck_assert_msg(to == expect - 1, "cursor %lld, last seen %lld", (long long)to, (long long)expect - 1);
        cursor = to;
        polls++;
        if (writers_done && cursor == head) break;
    }
    for (int i = 0; i < RACE_WRITERS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(!w[i].failure[0], "writer %d: %s", i, w[i].failure);
    }
    /* Each writer: 2 accounts, 20 transfers, 20 rounds of 1..3 events (40 in all). */
    int64_t want = RACE_WRITERS * (2 + RACE_ROUNDS / 2 + 40);
    ck_assert_msg(head - start >= want, "%lld events read, want at least %lld", (long long)(head - start), (long long)want);
    ck_assert_int_eq(itest_sql_i64(EU, "SELECT count(*) FROM event_feed", 0, NULL),
                     itest_sql_i64(EU, "SELECT count(DISTINCT seq) FROM event_feed", 0, NULL));
    ck_assert_int_eq(itest_sql_i64(EU, "SELECT max(seq) - min(seq) + 1 - count(*) FROM event_feed", 0, NULL), 0);
    ck_assert_int_gt(polls, 3);
    PQfinish(db);
}
END_TEST

/* ---- who sees what, and how far a reader scans ---- */

START_TEST(test_principal_filter_and_scan_window) {
    OWNER(mine);
    OWNER(theirs);
    PGconn *db = itest_db(EU, GL_ROLE_SERVICE);
    int64_t start = itest_sql_i64(EU, "SELECT last_seq FROM event_head", 0, NULL);
    gl_id m = itest_account(EU, "EUR", 0, mine);
    for (int i = 0; i < 6; i++) (void)itest_account(EU, "EUR", 0, theirs);
    gl_id m2 = itest_account(EU, "EUR", 0, mine);

    ledger_event page[10];
    int64_t to = 0, head = 0;
    gl_error err;
    ledger_events_query q = {.after = start, .limit = 10, .principal = mine, .scan_max = 10000};
    int n = ledger_events_list(db, &q, page, &to, &head, &err);
    ck_assert_int_eq(n, 2);
    ck_assert(gl_id_cmp(&page[0].account_id, &m) == 0 && gl_id_cmp(&page[1].account_id, &m2) == 0);
    ck_assert_int_eq(to, head); /* the others' events were passed over */

    /* a window of 3: the reader moves on without seeing theirs, page by page */
    q.scan_max = 3;
    int64_t cursor = start, seen = 0, calls = 0;
    do {
        q.after = cursor;
        n = ledger_events_list(db, &q, page, &to, &head, &err);
        ck_assert_int_ge(n, 0);
        seen += n;
        ck_assert_int_le(to - cursor, 3);
        cursor = to;
        calls++;
    } while (cursor < head && calls < 100);
    ck_assert_int_eq(seen, 2);
    ck_assert_int_ge(calls, 3);

    /* types filter, and a cursor read twice gives the same page */
    q = (ledger_events_query){.after = start, .limit = 4, .principal = theirs, .scan_max = 10000,
                              .types = 1u << LEDGER_EV_ACCOUNT_CREATED};
    ledger_event again[10];
    int64_t to2 = 0;
    ck_assert_int_eq(ledger_events_list(db, &q, page, &to, &head, &err), 4);
    ck_assert_int_eq(ledger_events_list(db, &q, again, &to2, &head, &err), 4);
    for (int k = 0; k < 4; k++) ck_assert(gl_id_cmp(&page[k].id, &again[k].id) == 0 && page[k].seq == again[k].seq);
    ck_assert_int_eq(to, to2);
    ck_assert_int_eq(to, page[3].seq); /* a full page resumes after its last event */
    q.types = 1u << LEDGER_EV_TRANSFER_POSTED;
    ck_assert_int_eq(ledger_events_list(db, &q, page, &to, &head, &err), 0);
}
END_TEST

/* The table refuses edits, also to its owner; the service may not edit the head by hand to rewind it. */
START_TEST(test_events_are_append_only) {
    OWNER(owner);
    (void)itest_account(EU, "EUR", 0, owner);
    char state[6], msg[256];
    itest_sql_try(itest_db(EU, GL_ROLE_SERVICE), "UPDATE events SET amount = 1 WHERE seq = (SELECT max(seq) FROM events)",
                  state, msg, sizeof msg);
    ck_assert_msg(strcmp(state, "42501") == 0, "service UPDATE events: %s %s", state, msg);
    itest_sql_try(itest_db(EU, GL_ROLE_ADMIN), "UPDATE events SET amount = 1 WHERE seq = (SELECT max(seq) FROM events)",
                  state, msg, sizeof msg);
    ck_assert_msg(strcmp(state, "42501") == 0, "admin UPDATE events: %s %s", state, msg);
    itest_sql_try(itest_db(EU, GL_ROLE_REPORT), "UPDATE event_head SET last_seq = 0", state, msg, sizeof msg);
    ck_assert_msg(strcmp(state, "42501") == 0, "report UPDATE event_head: %s %s", state, msg);
}
END_TEST

/* An event's id is derived from (region, seq, time): the same on every read,
 * a UUIDv7 of the region, one per event. */
START_TEST(test_event_ids_are_stable_and_of_the_region) {
    OWNER(owner);
    gl_id a = itest_account(EU, "EUR", 0, owner), b = itest_account(EU, "EUR", 0, owner);
    ledger_cmd t = itest_transfer(owner, NULL, a, b, 7, "EUR");
    itest_assert_code(itest_exec1(EU, &t).code, LEDGER_OK);
    PGconn *db = itest_db(EU, GL_ROLE_SERVICE);
    ledger_events_query q = {.after = itest_sql_i64(EU, "SELECT last_seq - 3 FROM event_head", 0, NULL), .limit = 3,
                             .principal = owner, .scan_max = 1000};
    ledger_event first[3], again[3];
    int64_t to, head;
    gl_error err;
    ck_assert_int_eq(ledger_events_list(db, &q, first, &to, &head, &err), 3);
    ck_assert_int_eq(ledger_events_list(db, &q, again, &to, &head, &err), 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(gl_id_cmp(&first[i].id, &again[i].id) == 0, "event %lld: two ids", (long long)first[i].seq);
        ck_assert_int_eq(gl_id_partition(&first[i].id), itest_region(EU)->code);
        ck_assert_int_eq((int64_t)gl_id_time_ms(&first[i].id), first[i].created_at_us / 1000);
        for (int j = 0; j < i; j++) ck_assert(gl_id_cmp(&first[i].id, &first[j].id) != 0);
    }
    ck_assert_int_eq(first[2].type, LEDGER_EV_TRANSFER_CREATED);
    ck_assert_int_eq(itest_sql_i64(EU, "SELECT count(DISTINCT id) - count(*) FROM event_feed", 0, NULL), 0);
}
END_TEST

static int outbox_violations;
static void count_outbox_violation(void *arg, int invariant, const char *what) {
    (void)arg;
    if (invariant == 6) outbox_violations++;
    fprintf(stderr, "    (expected) invariant %d: %s\n", invariant, what);
}

static int verify_outbox(void) {
    gl_error err;
    outbox_violations = 0;
    ck_assert_msg(ledger_verify(itest_db(EU, GL_ROLE_ADMIN), count_outbox_violation, NULL, &err) >= 0, "%s", err.message);
    return outbox_violations;
}

/* ledgerctl verify's outbox check finds a number on no event and a number on two. */
START_TEST(test_verify_finds_holes_and_repeats_in_the_outbox) {
    ck_assert_int_eq(verify_outbox(), 0);
    free(itest_sql_value(EU, "UPDATE event_head SET last_seq = last_seq + 1 RETURNING last_seq", 0, NULL));
    int hole = verify_outbox();
    free(itest_sql_value(EU, "UPDATE event_head SET last_seq = last_seq - 1 RETURNING last_seq", 0, NULL));
    ck_assert_int_eq(hole, 1);
    /* An events row on a number a transfer already carries. */
    free(itest_sql_value(EU, "INSERT INTO events (seq, type, created_at, owner1) SELECT max(event_seq), "
                             "'account.created', now(), 'x' FROM transfers RETURNING seq", 0, NULL));
    int repeat = verify_outbox();
    free(itest_sql_value(EU, "DELETE FROM events WHERE seq = (SELECT max(event_seq) FROM transfers) RETURNING seq", 0, NULL));
    ck_assert_int_eq(repeat, 1);
    ck_assert_int_eq(verify_outbox(), 0);
}
END_TEST

/* A before-commit hook with effects of its own (ledgerd's mandate jobs) numbers
 * its events in the batch's transaction, before the batch's transfers: in a
 * pipelined batch and in a COPY batch, every number is on exactly one event,
 * the hook's first, then the transfers in command order. */
static bool hook_writes_an_event(void *arg, PGconn *db, const ledger_result *res, size_t n, gl_error *err) {
    (void)res, (void)n;
    ledger_event e;
    memset(&e, 0, sizeof e);
    e.type = LEDGER_EV_MANDATE_CREATED;
    e.created_at_us = 1;
    ledger_event_add_owner(&e, arg);
    return ledger_events_write(db, &e, 1, err);
}

START_TEST(test_hook_events_and_batch_events_share_the_numbering) {
    OWNER(owner);
    gl_id a = itest_account(EU, "EUR", 0, owner), b = itest_account(EU, "EUR", 0, owner);
    const size_t sizes[2] = {3, LEDGER_PIPELINE_MAX + 1};
    ledger_cmd *cmds = calloc(sizes[1], sizeof *cmds);
    ledger_result *res = calloc(sizes[1], sizeof *res);
    ck_assert(cmds && res);
    for (int pass = 0; pass < 2; pass++) {
        size_t n = sizes[pass];
        for (size_t i = 0; i < n; i++) cmds[i] = itest_transfer(owner, NULL, a, b, (int64_t)i + 1, "EUR");
        int64_t before = itest_sql_i64(EU, "SELECT last_seq FROM event_head", 0, NULL);
        ledger_ctx ctx = {.partition_code = itest_region(EU)->code, .before_commit = hook_writes_an_event,
                          .before_commit_arg = owner};
        gl_error err;
        ck_assert_msg(ledger_execute(itest_db(EU, GL_ROLE_SERVICE), &ctx, cmds, n, res, &err), "%s", err.message);
        char from[24];
        snprintf(from, sizeof from, "%lld", (long long)before);
        const char *p[1] = {from};
        /* (no other writer in this test binary: the numbers after `before` are this batch's) */
        ck_assert_int_eq(itest_sql_i64(EU, "SELECT last_seq FROM event_head", 0, NULL), before + (int64_t)n + 1);
        ck_assert_int_eq(itest_sql_i64(EU, "SELECT count(*) FROM event_feed WHERE seq = $1::int8 + 1 "
                                           "AND type = 'mandate.created'", 1, p), 1);
        ck_assert_int_eq(itest_sql_i64(EU, "SELECT count(*) FROM transfer_events t JOIN transfers r ON r.id = t.transfer_id "
                                           "WHERE t.seq > $1::int8 AND t.seq - $1::int8 - 1 = r.amount", 1, p), (int64_t)n);
        ck_assert_int_eq(verify_outbox(), 0);
    }
    free(cmds);
    free(res);
}
END_TEST

START_TEST(test_consumer_positions_only_move_forward) {
    char name[64];
    itest_unique(name, sizeof name, "consumer");
    for (char *c = name; *c; c++) *c = (char)(*c == '-' ? '_' : *c);
    PGconn *db = itest_db(EU, GL_ROLE_SERVICE);
    gl_error err;
    ck_assert_int_eq(ledger_events_consumer_position(db, name, &err), 0);
    ck_assert(ledger_events_consumer_advance(db, name, 5, &err));
    ck_assert(ledger_events_consumer_advance(db, name, 3, &err)); /* a late, slower writer */
    ck_assert_int_eq(ledger_events_consumer_position(db, name, &err), 5);
    /* an advance rolled back with its transaction leaves the position */
    ck_assert(gl_pg_run(db, "BEGIN", 0, NULL, &err) && ledger_events_consumer_advance(db, name, 9, &err));
    gl_pg_rollback(db);
    ck_assert_int_eq(ledger_events_consumer_position(db, name, &err), 5);
    /* A consumer that no longer runs holds retention back (events prune): this one goes. */
    const char *p[1] = {name};
    free(itest_sql_value(EU, "DELETE FROM event_consumers WHERE name = $1 RETURNING name", 1, p));
}
END_TEST

static Suite *events_suite(void) {
    const itest_group groups[] = {
        {"effects", 30, {test_every_effect_has_one_event, NULL}},
        {"race", 120, {test_reader_never_skips_or_repeats, NULL}},
        {"reads", 30, {test_principal_filter_and_scan_window, test_events_are_append_only, test_consumer_positions_only_move_forward, NULL}},
        {"ids", 30, {test_event_ids_are_stable_and_of_the_region, NULL}},
        {"verify", 120, {test_verify_finds_holes_and_repeats_in_the_outbox, test_hook_events_and_batch_events_share_the_numbering, NULL}},
    };
    return itest_suite("events", groups, sizeof groups / sizeof groups[0]);
}

int main(void) { return itest_run(events_suite()); }
