#include "deadline.h"

#include "clock.h"

#include <assert.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libpq-events.h>

#define WATCHDOG_TICK_MS 20 /* how late a deadline may fire */

typedef struct {
    bool armed;
    bool fired;
    int fd;              /* our duplicate of the connection's socket */
    uint64_t generation; /* tells an old handle from the slot's next user */
    uint64_t deadline_ns;
} slot;

static slot slots[GL_DEADLINE_SLOTS];
static int high_water; /* slots[0..high_water) have been used */
static uint64_t next_generation = 1;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_uint_fast64_t fired_total;
static atomic_bool warned_full;

/* Caller holds mu. */
static void fire(slot *s) {
    if (!s->armed || s->fired) return;
    /* shutdown, not close: every blocked read and write on the socket
     * returns now, through libpq's descriptor as through ours. */
    (void)shutdown(s->fd, SHUT_RDWR);
    s->fired = true;
    atomic_fetch_add(&fired_total, 1);
}

static void *watchdog(void *arg) {
    (void)arg;
    const struct timespec tick = {.tv_sec = 0, .tv_nsec = WATCHDOG_TICK_MS * 1000000L};
    for (;;) {
        nanosleep(&tick, NULL);
        uint64_t now = gl_monotonic_ns();
        pthread_mutex_lock(&mu);
        for (int i = 0; i < high_water; i++)
            if (slots[i].armed && now >= slots[i].deadline_ns) fire(&slots[i]);
        pthread_mutex_unlock(&mu);
    }
    return NULL;
}

static void start_watchdog(void) {
    pthread_t t;
    if (pthread_create(&t, NULL, watchdog, NULL) == 0) pthread_detach(t);
}

static void warn_once(const char *why) {
    if (!atomic_exchange(&warned_full, true))
        fprintf(stderr, "{\"level\":\"warn\",\"event\":\"deadline_unarmed\",\"msg\":\"%s: a round trip runs "
                        "without a client-side deadline\"}\n", why);
}

gl_deadline gl_deadline_arm(PGconn *db, int timeout_ms) {
    assert(timeout_ms > 0);
    gl_deadline d = {.slot = -1};
    int sock = db ? PQsocket(db) : -1;
    if (sock < 0) return d;
    int fd = fcntl(sock, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
        warn_once("no descriptor to spare");
        return d;
    }
    pthread_once(&once, start_watchdog);
    pthread_mutex_lock(&mu);
    for (int i = 0; i < GL_DEADLINE_SLOTS; i++) {
        if (slots[i].armed) continue;
        slots[i] = (slot){.armed = true, .fd = fd, .generation = next_generation++,
                          .deadline_ns = gl_monotonic_ns() + (uint64_t)timeout_ms * 1000000u};
        if (i >= high_water) high_water = i + 1;
        d = (gl_deadline){.slot = i, .generation = slots[i].generation};
        break;
    }
    pthread_mutex_unlock(&mu);
    if (d.slot < 0) {
        close(fd);
        warn_once("every deadline slot is in use");
    }
    return d;
}

bool gl_deadline_disarm(gl_deadline *d) {
    if (!d || d->slot < 0 || d->slot >= GL_DEADLINE_SLOTS) return false;
    pthread_mutex_lock(&mu);
    slot *s = &slots[d->slot];
    bool mine = s->armed && s->generation == d->generation;
    bool fired = mine && s->fired;
    int fd = mine ? s->fd : -1;
    if (mine) s->armed = false;
    pthread_mutex_unlock(&mu);
    if (fd >= 0) close(fd);
    d->slot = -1;
    return fired;
}

void gl_deadline_fire_all(void) {
    pthread_mutex_lock(&mu);
    for (int i = 0; i < high_water; i++) fire(&slots[i]);
    pthread_mutex_unlock(&mu);
}

uint64_t gl_deadline_fired_total(void) { return atomic_load(&fired_total); }

/* ---------- guards: libpq instance data of the connection ---------- */

typedef struct {
    int hop_ms;
    bool fired; /* a round trip was cut (read and cleared by the connection's user) */
} guard;

static int guard_event(PGEventId id, void *info, void *pass) {
    (void)pass;
    if (id == PGEVT_CONNDESTROY) {
        const PGEventConnDestroy *e = info;
        free(PQinstanceData(e->conn, guard_event));
    }
    return 1;
}

bool gl_deadline_guard(PGconn *db, int hop_ms) {
    assert(db && hop_ms > 0);
    guard *g = PQinstanceData(db, guard_event);
    if (g) {
        g->hop_ms = hop_ms;
        return true;
    }
    g = calloc(1, sizeof *g);
    if (!g) return false;
    g->hop_ms = hop_ms;
    if (!PQregisterEventProc(db, guard_event, "geoledger deadline", NULL) || !PQsetInstanceData(db, guard_event, g)) {
        free(g);
        return false;
    }
    return true;
}

bool gl_deadline_take_fired(PGconn *db) {
    guard *g = db ? PQinstanceData(db, guard_event) : NULL;
    bool fired = g && g->fired;
    if (g) g->fired = false;
    return fired;
}

gl_deadline gl_hop_begin(PGconn *db) {
    const guard *g = db ? PQinstanceData(db, guard_event) : NULL;
    return g ? gl_deadline_arm(db, g->hop_ms) : (gl_deadline){.slot = -1};
}

bool gl_hop_end(PGconn *db, gl_deadline *d) {
    if (!gl_deadline_disarm(d)) return false;
    guard *g = PQinstanceData(db, guard_event);
    if (g) g->fired = true;
    return true;
}
