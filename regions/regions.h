/*
 * regions.h — the region registry (from ledger.conf, libconfig syntax),
 * id -> region routing, and connections to a region's partition.
 *
 * ledger.conf:
 *   regions = (
 *     { name = "eu"; code = 1;
 *       conninfo = "host=db port=5432 dbname=geoledger user=geoledger_service sslmode=verify-full sslrootcert=... passfile=...";
 *       admin_conninfo = "host=db port=5432 dbname=geoledger user=postgres sslmode=verify-full ...";   # migrations
 *       recon_conninfo = "...";  report_conninfo = "...";                          # optional
 *       replicas = ( "host=... port=..." );                                       # optional
 *       large_transaction_threshold = 1000000;                                    # optional, minor units
 *       timeouts = { connect_s = 2; statement_ms = 1500; request_ms = 2000; ... };   # optional
 *     }, ...
 *   );
 *   migrations_dir = "sql";   # optional; default: compiled-in GL_SQL_DIR
 */
#ifndef GL_REGIONS_H
#define GL_REGIONS_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "../ledger/error.h"
#include "../ledger/id.h"

#define GL_REGION_NAME_MAX 16
#define GL_REGIONS_MAX 255
#define GL_REPLICAS_MAX 8
#define GL_CONNINFO_MAX 1024

typedef enum {
    GL_ROLE_SERVICE, /* conninfo: the ledger writer (least privilege) */
    GL_ROLE_ADMIN,   /* admin_conninfo: migrations */
    GL_ROLE_RECON,   /* recon_conninfo (falls back to conninfo with user=geoledger_recon) */
    GL_ROLE_REPORT,  /* report_conninfo (falls back to conninfo with user=geoledger_report) */
} gl_db_role;

/* How long a region's database may take (ledger.conf: a region's `timeouts`
 * group; regions/README.md). connect_s, the keepalives and tcp_user_timeout
 * apply to every role; the session timeouts to the service role only (recon,
 * reports and migrations run long statements on purpose); request_ms is the
 * client-side deadline on each round trip of a service-role connection
 * (ledger/deadline.h). */
typedef struct {
    int connect_s;          /* libpq connect_timeout (libpq's minimum is 2) */
    int statement_ms;       /* statement_timeout */
    int lock_ms;            /* lock_timeout */
    int idle_in_tx_ms;      /* idle_in_transaction_session_timeout */
    int keepalives_idle_s;  /* TCP only: ignored on a Unix socket */
    int keepalives_interval_s;
    int keepalives_count;
    int tcp_user_timeout_ms;
    int request_ms;         /* a round trip the server does not answer within this is cut */
} gl_region_timeouts;

#define GL_TIMEOUTS_DEFAULT                                                                               \
    (gl_region_timeouts) {                                                                               \
        .connect_s = 2, .statement_ms = 1500, .lock_ms = 1000, .idle_in_tx_ms = 10000,                   \
        .keepalives_idle_s = 10, .keepalives_interval_s = 3, .keepalives_count = 3,                      \
        .tcp_user_timeout_ms = 10000, .request_ms = 2000                                                 \
    }

typedef struct {
    char name[GL_REGION_NAME_MAX + 1]; /* [a-z0-9_-]{1,16} */
    uint8_t code;                      /* 1..255, unique */
    char conninfo[GL_CONNINFO_MAX];
    char admin_conninfo[GL_CONNINFO_MAX];
    char recon_conninfo[GL_CONNINFO_MAX];
    char report_conninfo[GL_CONNINFO_MAX];
    int n_replicas;
    char replicas[GL_REPLICAS_MAX][GL_CONNINFO_MAX];
    int64_t large_transaction_threshold; /* minor units; 0 = not configured */
    gl_region_timeouts timeouts;
} gl_region;

typedef struct {
    int n_regions;
    gl_region *regions; /* n_regions entries, heap */
    char migrations_dir[4096];
} gl_config;

/* Loads and validates the file; every problem is reported with file:line. */
bool gl_config_load(const char *path, gl_config *cfg, gl_error *err);
void gl_config_free(gl_config *cfg);
/* Path from --config, else $GEOLEDGER_CONFIG, else "ledger.conf". */
const char *gl_config_default_path(const char *flag_value);

const gl_region *gl_region_by_name(const gl_config *cfg, const char *name);
const gl_region *gl_region_by_code(const gl_config *cfg, uint8_t code);
/* The home region of an id (by its embedded code); NULL if no configured region has it. */
const gl_region *gl_region_of_id(const gl_config *cfg, const gl_id *id);
/* The name of that region, NULL when none (what ledger/render.h's gl_account_json takes). */
const char *gl_region_name_of_id(const gl_config *cfg, const gl_id *id);

/* Opens a connection for `role` with the region's timeouts; on failure err
 * (GL_ERR_UNAVAILABLE) says which region and why. Bounded by timeouts.connect_s
 * (and, for the service role, whose connections are guarded by
 * timeouts.request_ms per round trip, by one more round trip that sets the
 * session timeouts). */
PGconn *gl_region_connect(const gl_region *r, gl_db_role role, gl_error *err);

#endif
