#include "id.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>
#include <uuid/uuid.h>

/* Monotonic within a process: same ms -> counter+1; counter exhausted -> borrow the next ms. */
static pthread_mutex_t id_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t last_ms;
static uint16_t counter;

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool gl_id_new(uint8_t partition_code, gl_id *out, gl_error *err) {
    uint8_t rnd[9];
    if (partition_code == 0) {
        gl_error_set(err, GL_ERR_INVALID, "partition code must be 1..255");
        return false;
    }
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        gl_error_set(err, GL_ERR_INTERNAL, "random generator failed");
        return false;
    }
    uint64_t ms = now_ms();
    uint16_t seq;
    pthread_mutex_lock(&id_lock);
    if (ms > last_ms) {
        last_ms = ms;
        counter = (uint16_t)(((unsigned)rnd[0] << 8 | rnd[1]) & 0x07FF); /* start in lower half: room to count */
    } else if (counter >= 0x0FFF) {
        last_ms++; /* clock went back or 4096 ids this ms: stay monotonic */
        counter = 0;
    } else {
        counter++;
    }
    ms = last_ms;
    seq = counter;
    pthread_mutex_unlock(&id_lock);

    for (int i = 0; i < 6; i++) out->b[i] = (uint8_t)(ms >> (40 - 8 * i));
    out->b[6] = (uint8_t)(0x70 | ((seq >> 8) & 0x0F));
    out->b[7] = (uint8_t)(seq & 0xFF);
    out->b[8] = (uint8_t)(0x80 | (rnd[2] & 0x3F));
    out->b[9] = partition_code;
    memcpy(&out->b[10], &rnd[3], 6);
    return true;
}

bool gl_id_parse(const char *s, gl_id *out) {
    if (!s || strlen(s) != GL_ID_STR_LEN) return false;
    return uuid_parse(s, out->b) == 0;
}

void gl_id_format(const gl_id *id, char *buf) { uuid_unparse_lower(id->b, buf); }

uint8_t gl_id_partition(const gl_id *id) {
    if ((id->b[6] >> 4) != 7 || (id->b[8] & 0xC0) != 0x80) return 0;
    return id->b[9];
}

uint64_t gl_id_time_ms(const gl_id *id) {
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++) ms = (ms << 8) | id->b[i];
    return ms;
}

int gl_id_cmp(const gl_id *a, const gl_id *b) { return memcmp(a->b, b->b, sizeof a->b); }

bool gl_id_is_nil(const gl_id *id) {
    static const gl_id nil;
    return memcmp(id->b, nil.b, sizeof nil.b) == 0;
}
