/*
 * stream.h — ledgerd's outbox threads: one per region, which keep the
 * outbox's head and its consumers' positions for /metrics and, when
 * ledger.conf has a `redis` group, publish the region's events to the Redis
 * stream `<key_prefix><region>` (api/README.md "Redis stream").
 *
 *   redis = {
 *     host = "127.0.0.1"; port = 6390;
 *     password_file = "var/redis.pass";   # optional: AUTH; refused if group/other may read it
 *     key_prefix = "geoledger:events:";   # the stream of region eu: geoledger:events:eu
 *     stream_maxlen = 1000000;            # XADD MAXLEN ~ N: Redis keeps about the last N
 *     batch = 500;                        # events per round trip (1..1000)
 *     poll_ms = 200;                      # how often an idle publisher looks for new events
 *     timeout_ms = 2000;                  # connect and each command to Redis
 *     reconnect_max_ms = 5000;            # the cap of the backoff while Redis (or the region) is down
 *   };
 *
 * A publisher is consumer "stream:redis" in event_consumers: it reads events
 * after its position, appends them with the event's seq as the stream id
 * (`<seq>-0`), and only then moves its position. A crash in between appends
 * them again, which the stream refuses (ids only grow): nothing twice, nothing
 * skipped. It never writes to what the ledger's writers lock; when Redis or
 * the region is down it only lags, and retries with a capped backoff.
 */
#ifndef GL_STREAM_H
#define GL_STREAM_H

#include <stdbool.h>

#include "../ledger/error.h"
#include "../regions/regions.h"
#include "metrics.h"

#define GL_STREAM_CONSUMER "stream:redis"
#define GL_STREAM_BATCH_MAX 1000

typedef struct {
    bool enabled; /* the file has a redis group */
    char host[256];
    int port;
    char password[512]; /* "" = no AUTH; read from password_file */
    char key_prefix[128];
    int stream_maxlen;
    int batch;
    int poll_ms;
    int timeout_ms;
    int reconnect_max_ms;
} gl_stream_config;

/* The top-level `redis` group of the file; none: enabled = false. */
bool gl_stream_config_load(const char *path, gl_stream_config *c, gl_error *err);

typedef struct gl_streams gl_streams;

/* Starts one thread per region and registers their metrics with m. The
 * regions and m must outlive gl_streams_stop. NULL with err on failure. */
gl_streams *gl_streams_start(const gl_config *regions, const gl_stream_config *c, gl_metrics *m, gl_error *err);
/* Stops the threads and frees s; false when one was still busy after
 * deadline_ms (a Redis or database round trip in flight past its timeout). */
bool gl_streams_stop(gl_streams *s, int deadline_ms);

#endif
