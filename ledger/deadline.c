#include "deadline.h"

#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>

#define WATCHDOG_TICK_MS 20 /* how late a deadline may fire */

typedef struct {
    bool armed;
    bool fired;
    int fd;
    uint64_t generation; /* tells an old handle from the slot's next user */
    uint64_t deadline_ns;
} slot;

static slot slots[GL_DEADLINE_SLOTS];
static int high_water; /* slots[0..high_water) have been used */
static uint64_t next_generation = 1;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_uint_fast64_t fired_total;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Caller holds mu. */
static void fire(slot *s) {
    if (!s->armed || s->fired) return;
    /* shutdown, not close: the descriptor stays the connection's until its
     * owner closes it; every blocked read and write on it returns now. */
    (void)shutdown(s->fd, SHUT_RDWR);
    s->fired = true;
    atomic_fetch_add(&fired_total, 1);
}

static void *watchdog(void *arg) {
    (void)arg;
    const struct timespec tick = {.tv_sec = 0, .tv_nsec = WATCHDOG_TICK_MS * 1000000L};
    for (;;) {
        nanosleep(&tick, NULL);
        uint64_t now = now_ns();
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

gl_deadline gl_deadline_arm(PGconn *db, int timeout_ms) {
    assert(timeout_ms > 0);
    gl_deadline d = {.slot = -1};
    int fd = db ? PQsocket(db) : -1;
    if (fd < 0) return d;
    pthread_once(&once, start_watchdog);
    pthread_mutex_lock(&mu);
    for (int i = 0; i < GL_DEADLINE_SLOTS; i++) {
        if (slots[i].armed) continue;
        slots[i] = (slot){.armed = true, .fd = fd, .generation = next_generation++,
                          .deadline_ns = now_ns() + (uint64_t)timeout_ms * 1000000u};
        if (i >= high_water) high_water = i + 1;
        d = (gl_deadline){.slot = i, .generation = slots[i].generation};
        break;
    }
    pthread_mutex_unlock(&mu);
    return d;
}

/* Caller holds mu: the slot if the handle still owns it. */
static slot *owned(const gl_deadline *d) {
    if (!d || d->slot < 0 || d->slot >= GL_DEADLINE_SLOTS) return NULL;
    slot *s = &slots[d->slot];
    return s->armed && s->generation == d->generation ? s : NULL;
}

bool gl_deadline_disarm(gl_deadline *d) {
    pthread_mutex_lock(&mu);
    slot *s = owned(d);
    bool fired = s && s->fired;
    if (s) s->armed = false;
    pthread_mutex_unlock(&mu);
    if (d) d->slot = -1;
    return fired;
}

void gl_deadline_fire_all(void) {
    pthread_mutex_lock(&mu);
    for (int i = 0; i < high_water; i++) fire(&slots[i]);
    pthread_mutex_unlock(&mu);
}

uint64_t gl_deadline_fired_total(void) { return atomic_load(&fired_total); }
