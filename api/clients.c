#include "clients.h"

#include <arpa/inet.h>
#include <assert.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../ledger/clock.h"
#include "log.h"

#define WATCHDOG_TICK_MS 100
/* due_ns of a connection the watchdog has taken to cut: nothing rearms it,
 * and a request read after that moment is not run (see gl_clients_request_read). */
#define DUE_CUT UINT64_MAX

/* One open connection: our duplicate of its socket (so a descriptor number
 * that MHD closed and the process reused is never shut down) and the
 * instant by which its next request must have been read (0: none due). */
typedef struct conn_watch {
    struct conn_watch *prev, *next;
    int fd;
    atomic_uint_fast64_t due_ns;
} conn_watch;

struct gl_clients {
    gl_ratelimit *unauth; /* NULL: no limit */
    uint64_t read_timeout_ns;
    pthread_mutex_t mu; /* the list */
    conn_watch *head;
    pthread_t watchdog;
    bool stop;
};

static void *watchdog_main(void *arg) {
    gl_clients *c = arg;
    const struct timespec tick = {.tv_sec = 0, .tv_nsec = WATCHDOG_TICK_MS * 1000000L};
    for (;;) {
        nanosleep(&tick, NULL);
        uint64_t now = gl_monotonic_ns();
        int cut = 0;
        pthread_mutex_lock(&c->mu);
        bool stop = c->stop;
        for (conn_watch *w = c->head; w && !stop; w = w->next) {
            uint64_t due = atomic_load(&w->due_ns);
            if (due == 0 || due == DUE_CUT || now < due) continue;
            /* Only if the request has not been read meanwhile (the MHD thread
             * swaps due for 0 when it has): one of the two wins, never both. */
            if (!atomic_compare_exchange_strong(&w->due_ns, &due, DUE_CUT)) continue;
            /* shutdown, not close: MHD sees the connection end and cleans up. */
            (void)shutdown(w->fd, SHUT_RDWR);
            cut++;
        }
        pthread_mutex_unlock(&c->mu);
        if (stop) return NULL;
        /* One line per tick, not per connection: a slowloris cannot flood the log. */
        if (cut) gl_log(GL_LOG_INFO, "request_read_timeout", "%d connection(s) closed: no whole request within %llu ms",
                        cut, (unsigned long long)(c->read_timeout_ns / 1000000u));
    }
}

gl_clients *gl_clients_new(int unauth_rate_per_s, int unauth_burst, int read_timeout_ms, gl_error *err) {
    if (unauth_rate_per_s < 0 || unauth_burst < 1 || read_timeout_ms < 1) {
        gl_error_set(err, GL_ERR_CONFIG, "ledgerd.clients: rates >= 0, burst and read_timeout_ms >= 1");
        return NULL;
    }
    gl_clients *c = calloc(1, sizeof *c);
    if (!c) {
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory");
        return NULL;
    }
    c->read_timeout_ns = (uint64_t)read_timeout_ms * 1000000u;
    if (unauth_rate_per_s > 0) {
        gl_ratelimit_config rc;
        gl_ratelimit_config_init(&rc);
        rc.rate_per_s = (uint32_t)unauth_rate_per_s;
        rc.burst = (uint32_t)unauth_burst;
        if (!(c->unauth = gl_ratelimit_new(&rc, err))) {
            free(c);
            return NULL;
        }
    }
    pthread_mutex_init(&c->mu, NULL);
    if (pthread_create(&c->watchdog, NULL, watchdog_main, c) != 0) {
        gl_error_set(err, GL_ERR_INTERNAL, "cannot start the request read watchdog");
        pthread_mutex_destroy(&c->mu);
        gl_ratelimit_free(c->unauth);
        free(c);
        return NULL;
    }
    return c;
}

void gl_clients_free(gl_clients *c) {
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->stop = true;
    pthread_mutex_unlock(&c->mu);
    pthread_join(c->watchdog, NULL);
    assert(!c->head); /* every connection closed (MHD stopped) before */
    pthread_mutex_destroy(&c->mu);
    gl_ratelimit_free(c->unauth);
    free(c);
}

bool gl_address_key(const char *ip, char out[GL_ADDRESS_KEY_MAX]) {
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, ip, &a4) == 1) return inet_ntop(AF_INET, &a4, out, GL_ADDRESS_KEY_MAX) != NULL;
    if (inet_pton(AF_INET6, ip, &a6) != 1) return false;
    if (IN6_IS_ADDR_V4MAPPED(&a6)) return inet_ntop(AF_INET, a6.s6_addr + 12, out, GL_ADDRESS_KEY_MAX) != NULL;
    memset(a6.s6_addr + 8, 0, 8); /* the /64 */
    char text[INET6_ADDRSTRLEN];
    if (!inet_ntop(AF_INET6, &a6, text, sizeof text)) return false;
    return snprintf(out, GL_ADDRESS_KEY_MAX, "%s/64", text) < GL_ADDRESS_KEY_MAX;
}

static uint64_t now_us(void) { return gl_monotonic_ns() / 1000u; }

bool gl_clients_admit(gl_clients *c, const char *key, uint64_t *retry_after_s) {
    assert(c && key && retry_after_s);
    *retry_after_s = 0;
    return !c->unauth || gl_ratelimit_has(c->unauth, key, now_us(), retry_after_s);
}

void gl_clients_charge(gl_clients *c, const char *key) {
    assert(c && key);
    if (c->unauth) (void)gl_ratelimit_take(c->unauth, key, now_us(), NULL);
}

static void watch_start(gl_clients *c, struct MHD_Connection *conn, void **socket_context) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    int fd = ci ? fcntl(ci->connect_fd, F_DUPFD_CLOEXEC, 0) : -1;
    conn_watch *w = fd >= 0 ? calloc(1, sizeof *w) : NULL;
    if (!w) { /* no read deadline for this one: the idle timeout still holds */
        if (fd >= 0) close(fd);
        *socket_context = NULL;
        return;
    }
    w->fd = fd;
    atomic_store(&w->due_ns, gl_monotonic_ns() + c->read_timeout_ns);
    pthread_mutex_lock(&c->mu);
    w->next = c->head;
    if (c->head) c->head->prev = w;
    c->head = w;
    pthread_mutex_unlock(&c->mu);
    *socket_context = w;
}

static void watch_end(gl_clients *c, void **socket_context) {
    conn_watch *w = *socket_context;
    if (!w) return;
    pthread_mutex_lock(&c->mu);
    if (w->prev) w->prev->next = w->next;
    else c->head = w->next;
    if (w->next) w->next->prev = w->prev;
    pthread_mutex_unlock(&c->mu);
    close(w->fd);
    free(w);
    *socket_context = NULL;
}

void gl_clients_on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                              enum MHD_ConnectionNotificationCode code) {
    gl_clients *c = cls;
    if (!c) return;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) watch_start(c, conn, socket_context);
    else if (code == MHD_CONNECTION_NOTIFY_CLOSED) watch_end(c, socket_context);
}

static conn_watch *watch_of(struct MHD_Connection *conn) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

bool gl_clients_request_read(struct MHD_Connection *conn) {
    conn_watch *w = watch_of(conn);
    if (!w) return true;
    uint64_t due = atomic_load(&w->due_ns);
    while (due != 0 && due != DUE_CUT && !atomic_compare_exchange_weak(&w->due_ns, &due, 0)) {
    }
    return due != DUE_CUT;
}

void gl_clients_response_done(gl_clients *c, struct MHD_Connection *conn) {
    conn_watch *w = c ? watch_of(conn) : NULL;
    if (!w) return;
    uint64_t due = atomic_load(&w->due_ns); /* a connection being cut stays cut */
    while (due != DUE_CUT && !atomic_compare_exchange_weak(&w->due_ns, &due, gl_monotonic_ns() + c->read_timeout_ns)) {
    }
}
