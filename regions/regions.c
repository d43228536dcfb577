/*
 * regions.c — loads ledger.conf into a gl_config, routes ids to regions and
 * opens libpq connections for a region's roles.
 *
 * Every validation failure names file:line so an operator can fix the file
 * without reading this code; nothing is ever truncated or guessed silently.
 */
#include "regions.h"

#include "../ledger/deadline.h"
#include "../ledger/pg.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#ifndef GL_SQL_DIR
#define GL_SQL_DIR "sql"
#endif

_Static_assert(sizeof GL_SQL_DIR <= sizeof ((gl_config *)0)->migrations_dir,
               "GL_SQL_DIR does not fit gl_config.migrations_dir");

#define DEFAULT_CONFIG_PATH "ledger.conf"
#define RECON_USER "geoledger_recon"
#define REPORT_USER "geoledger_report"

/* Every key a region group may hold; anything else is a typo we refuse. */
static const char *const region_keys[] = {
    "name",           "code",     "conninfo",
    "admin_conninfo", "recon_conninfo", "report_conninfo",
    "replicas",       "large_transaction_threshold", "timeouts",
};
#define REGION_KEYS_HINT                                                                        \
    "known settings: name, code, conninfo, admin_conninfo, recon_conninfo, report_conninfo, " \
    "replicas, large_transaction_threshold, timeouts"

/* What every helper needs to report a problem. */
typedef struct {
    const char *path; /* the file we were asked to load */
    gl_error *err;
} loader;

/* ------------------------------------------------------------------ errors */

static bool fail_at(const loader *ld, const config_setting_t *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets a GL_ERR_CONFIG error prefixed with the file:line of `s`; returns false. */
static bool fail_at(const loader *ld, const config_setting_t *s, const char *fmt, ...) {
    char what[sizeof ld->err->message];
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    /* With @include a setting may come from another file than the one we opened. */
    const char *file = config_setting_source_file(s);
    gl_error_set(ld->err, GL_ERR_CONFIG, "%s:%u: %s", file ? file : ld->path,
                 (unsigned)config_setting_source_line(s), what);
    return false;
}

/* libpq messages end in a newline that would break one-line logs. */
static int trimmed_len(const char *msg) {
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' ')) n--;
    return n > INT_MAX ? INT_MAX : (int)n;
}

/* ----------------------------------------------------------------- scalars */

/* Raw string at `key` (NULL if absent); false if present but not a string. */
static bool lookup_string(const loader *ld, const config_setting_t *group, const char *key,
                          const config_setting_t **at, const char **value) {
    *value = NULL;
    *at = config_setting_get_member(group, key);
    if (!*at) return true;
    *value = config_setting_get_string(*at);
    if (!*value) return fail_at(ld, *at, "%s must be a string", key);
    return true;
}

/* Copies `value` into dst or fails: a cut-off conninfo would connect elsewhere. */
static bool copy_string(const loader *ld, const config_setting_t *at, const char *key,
                        const char *value, char *dst, size_t dst_size) {
    size_t len = strlen(value);
    if (len >= dst_size)
        return fail_at(ld, at, "%s is too long (%zu bytes, at most %zu)", key, len, dst_size - 1);
    memcpy(dst, value, len + 1);
    return true;
}

/*
 * Looks for `key = <integer>` (or `key: <integer>`) on `line`. Returns whether
 * any such literal was found; *matches says whether one of them equals value.
 */
static bool literal_on_line(const char *line, const char *key, int64_t value, bool *matches) {
    size_t key_len = strlen(key);
    bool found = false;
    *matches = false;
    /* Several groups may share a line ({ code = 1; }, { code = 2; }): any match is enough. */
    for (const char *p = strstr(line, key); p; p = strstr(p + 1, key)) {
        if (p > line && (isalnum((unsigned char)p[-1]) || p[-1] == '_')) continue; /* xcode = */
        const char *q = p + key_len;
        while (*q == ' ' || *q == '\t') q++;
        if (*q != '=' && *q != ':') continue;
        q++;
        char *end;
        errno = 0;
        long long parsed = strtoll(q, &end, 0);
        if (end == q) continue;
        found = true;
        if (errno != ERANGE && parsed == value) *matches = true;
    }
    return found;
}

/*
 * libconfig 1.5 (the Debian 12 package) wraps an integer literal without the
 * L suffix to 32 bits with no error: 4294967297 loads as 1, 5000000000 as
 * 705032704. For a region code or a money threshold that is a silent
 * misconfiguration, so re-read the literal from its source line and refuse a
 * mismatch. Only a literal we can find and that disagrees is an error.
 */
static bool integer_literal_intact(const config_setting_t *s, int64_t value) {
    const char *file = config_setting_source_file(s);
    unsigned want = config_setting_source_line(s);
    if (config_setting_type(s) != CONFIG_TYPE_INT || !file || want == 0) return true;
    FILE *f = fopen(file, "r");
    if (!f) return true;
    char *line = NULL;
    size_t cap = 0;
    bool intact = true;
    for (unsigned n = 1; getline(&line, &cap, f) != -1; n++) {
        if (n < want) continue;
        bool matches;
        if (literal_on_line(line, config_setting_name(s), value, &matches)) intact = matches;
        break;
    }
    free(line);
    (void)fclose(f); /* read-only: nothing to lose on close */
    return intact;
}

/* Integer at `key` (*at NULL if absent); false if present but not an integer. */
static bool lookup_int64(const loader *ld, const config_setting_t *group, const char *key,
                         const config_setting_t **at, int64_t *value) {
    *at = config_setting_get_member(group, key);
    if (!*at) return true;
    long long v;
    int type = config_setting_type(*at);
    if ((type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) ||
        config_setting_lookup_int64(group, key, &v) != CONFIG_TRUE)
        return fail_at(ld, *at, "%s must be an integer", key);
    if (!integer_literal_intact(*at, v)) {
        fail_at(ld, *at, "%s does not fit in 32 bits", key);
        gl_error_hint(ld->err, "write values above 2147483647 with the L suffix, e.g. 5000000000L");
        return false;
    }
    *value = v;
    return true;
}

/* ------------------------------------------------------------- conninfo */

/* Parsing here turns a typo into a file:line error now, not a failed connect later. */
static bool check_conninfo(const loader *ld, const config_setting_t *at, const char *key,
                           const char *conninfo) {
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &why);
    if (opts) {
        PQconninfoFree(opts);
        return true;
    }
    fail_at(ld, at, "%s is not a valid libpq connection string", key);
    if (why) {
        gl_error_detail(ld->err, "%.*s", trimmed_len(why), why);
        PQfreemem(why);
    }
    return false;
}

static bool is_uri(const char *conninfo) {
    return strncmp(conninfo, "postgresql://", 13) == 0 || strncmp(conninfo, "postgres://", 11) == 0;
}

/*
 * Default for a role without its own conninfo: the service conninfo with the
 * role's user appended. libpq keeps the last value of a repeated keyword, in
 * key=value strings and in URI query parameters alike, so this overrides any
 * user= already present.
 */
static bool derive_conninfo(const loader *ld, const config_setting_t *conninfo_at, const char *key,
                            const char *conninfo, const char *user, char *dst, size_t dst_size) {
    const char *sep = " user=";
    if (is_uri(conninfo)) sep = strchr(conninfo, '?') ? "&user=" : "?user=";
    int n = snprintf(dst, dst_size, "%s%s%s", conninfo, sep, user);
    if (n < 0 || (size_t)n >= dst_size) {
        dst[0] = '\0';
        fail_at(ld, conninfo_at, "conninfo is too long to derive %s from it", key);
        gl_error_hint(ld->err, "set %s explicitly", key);
        return false;
    }
    return true;
}

/* An optional conninfo: copied and checked if present, else derived from conninfo. */
static bool load_role_conninfo(const loader *ld, const config_setting_t *group,
                               const config_setting_t *conninfo_at, const char *conninfo,
                               const char *key, const char *user, char *dst, size_t dst_size) {
    const config_setting_t *at;
    const char *value;
    if (!lookup_string(ld, group, key, &at, &value)) return false;
    if (!value) {
        if (!user) return copy_string(ld, conninfo_at, key, conninfo, dst, dst_size);
        return derive_conninfo(ld, conninfo_at, key, conninfo, user, dst, dst_size);
    }
    if (value[0] == '\0') return fail_at(ld, at, "%s is empty", key);
    return copy_string(ld, at, key, value, dst, dst_size) && check_conninfo(ld, at, key, dst);
}

static bool load_conninfos(const loader *ld, const config_setting_t *group, gl_region *r) {
    const config_setting_t *at;
    const char *value;
    if (!lookup_string(ld, group, "conninfo", &at, &value)) return false;
    if (!value) {
        fail_at(ld, group, "region \"%s\" has no conninfo", r->name);
        gl_error_hint(ld->err, "add conninfo = \"host=... port=... dbname=... user=...\";");
        return false;
    }
    if (value[0] == '\0') return fail_at(ld, at, "conninfo is empty");
    if (!copy_string(ld, at, "conninfo", value, r->conninfo, sizeof r->conninfo) ||
        !check_conninfo(ld, at, "conninfo", r->conninfo))
        return false;
    return load_role_conninfo(ld, group, at, r->conninfo, "admin_conninfo", NULL,
                              r->admin_conninfo, sizeof r->admin_conninfo) &&
           load_role_conninfo(ld, group, at, r->conninfo, "recon_conninfo", RECON_USER,
                              r->recon_conninfo, sizeof r->recon_conninfo) &&
           load_role_conninfo(ld, group, at, r->conninfo, "report_conninfo", REPORT_USER,
                              r->report_conninfo, sizeof r->report_conninfo);
}

/* ------------------------------------------------------------ one region */

static bool check_keys(const loader *ld, const config_setting_t *group) {
    for (int i = 0; i < config_setting_length(group); i++) {
        const config_setting_t *m = config_setting_get_elem(group, (unsigned)i);
        const char *name = config_setting_name(m);
        bool known = false;
        for (size_t k = 0; k < sizeof region_keys / sizeof region_keys[0] && !known; k++)
            known = strcmp(name, region_keys[k]) == 0;
        if (!known) {
            fail_at(ld, m, "unknown setting \"%s\" in region", name);
            gl_error_hint(ld->err, REGION_KEYS_HINT);
            return false;
        }
    }
    return true;
}

/* Names appear in account keys and URLs, hence the tight alphabet. */
static bool valid_region_name(const char *s) {
    size_t len = strlen(s);
    if (len < 1 || len > GL_REGION_NAME_MAX) return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
    }
    return true;
}

static bool load_name(const loader *ld, const config_setting_t *group, gl_region *r) {
    const config_setting_t *at;
    const char *value;
    if (!lookup_string(ld, group, "name", &at, &value)) return false;
    if (!value) return fail_at(ld, group, "region has no name");
    if (!valid_region_name(value)) {
        fail_at(ld, at, "region name \"%s\" is invalid", value);
        gl_error_hint(ld->err, "use 1 to %d characters from a-z, 0-9, _ and -", GL_REGION_NAME_MAX);
        return false;
    }
    return copy_string(ld, at, "name", value, r->name, sizeof r->name);
}

static bool load_code(const loader *ld, const config_setting_t *group, gl_region *r) {
    const config_setting_t *at;
    int64_t code = 0;
    if (!lookup_int64(ld, group, "code", &at, &code)) return false;
    if (!at) return fail_at(ld, group, "region \"%s\" has no code", r->name);
    /* 0 is reserved: gl_id_partition() returns 0 for ids that are not ours. */
    if (code < 1 || code > 255)
        return fail_at(ld, at, "region code %lld is out of range (1..255)", (long long)code);
    r->code = (uint8_t)code;
    return true;
}

static bool load_replicas(const loader *ld, const config_setting_t *group, gl_region *r) {
    const config_setting_t *list = config_setting_get_member(group, "replicas");
    if (!list) return true;
    if (!config_setting_is_aggregate(list) || config_setting_is_group(list))
        return fail_at(ld, list, "replicas must be a list of conninfo strings");
    int n = config_setting_length(list);
    if (n > GL_REPLICAS_MAX)
        return fail_at(ld, list, "too many replicas (%d, at most %d)", n, GL_REPLICAS_MAX);
    for (int i = 0; i < n; i++) {
        const config_setting_t *at = config_setting_get_elem(list, (unsigned)i);
        const char *value = config_setting_get_string(at);
        if (!value) return fail_at(ld, at, "replica %d must be a conninfo string", i + 1);
        if (value[0] == '\0') return fail_at(ld, at, "replica %d is empty", i + 1);
        if (!copy_string(ld, at, "replica conninfo", value, r->replicas[i], sizeof r->replicas[i]) ||
            !check_conninfo(ld, at, "replica conninfo", r->replicas[i]))
            return false;
    }
    r->n_replicas = n;
    return true;
}

static bool load_threshold(const loader *ld, const config_setting_t *group, gl_region *r) {
    const config_setting_t *at;
    int64_t v = 0;
    if (!lookup_int64(ld, group, "large_transaction_threshold", &at, &v)) return false;
    if (v < 0)
        return fail_at(ld, at, "large_transaction_threshold must be >= 0 (minor units), got %lld",
                       (long long)v);
    r->large_transaction_threshold = v;
    return true;
}

/* The keys of a region's `timeouts` group, their fields and their bounds. */
typedef struct {
    const char *key;
    size_t offset;
    int min, max;
} timeout_key;

#define TIMEOUT_KEY(k, field, lo, hi) {k, offsetof(gl_region_timeouts, field), lo, hi}
static const timeout_key timeout_keys[] = {
    TIMEOUT_KEY("connect_s", connect_s, 2, 60),
    TIMEOUT_KEY("statement_ms", statement_ms, 0, 3600000),
    TIMEOUT_KEY("lock_ms", lock_ms, 0, 3600000),
    TIMEOUT_KEY("idle_in_transaction_ms", idle_in_tx_ms, 0, 3600000),
    TIMEOUT_KEY("keepalives_idle_s", keepalives_idle_s, 1, 3600),
    TIMEOUT_KEY("keepalives_interval_s", keepalives_interval_s, 1, 3600),
    TIMEOUT_KEY("keepalives_count", keepalives_count, 1, 100),
    TIMEOUT_KEY("tcp_user_timeout_ms", tcp_user_timeout_ms, 0, 3600000),
    TIMEOUT_KEY("request_ms", request_ms, 100, 600000),
};

static bool load_timeouts(const loader *ld, const config_setting_t *group, gl_region *r) {
    r->timeouts = GL_TIMEOUTS_DEFAULT;
    const config_setting_t *t = config_setting_get_member(group, "timeouts");
    if (!t) return true;
    if (!config_setting_is_group(t)) return fail_at(ld, t, "timeouts must be a group: timeouts = { connect_s = 2; }");
    for (int i = 0; i < config_setting_length(t); i++) {
        const config_setting_t *m = config_setting_get_elem(t, (unsigned)i);
        const timeout_key *k = NULL;
        for (size_t j = 0; j < sizeof timeout_keys / sizeof timeout_keys[0] && !k; j++)
            if (strcmp(config_setting_name(m), timeout_keys[j].key) == 0) k = &timeout_keys[j];
        if (!k) {
            fail_at(ld, m, "unknown setting \"%s\" in timeouts", config_setting_name(m));
            gl_error_hint(ld->err, "known settings: connect_s, statement_ms, lock_ms, idle_in_transaction_ms, "
                                   "keepalives_idle_s, keepalives_interval_s, keepalives_count, "
                                   "tcp_user_timeout_ms, request_ms");
            return false;
        }
        const config_setting_t *at;
        int64_t v = 0;
        if (!lookup_int64(ld, t, k->key, &at, &v)) return false;
        if (v < k->min || v > k->max)
            return fail_at(ld, at, "timeouts.%s must be %d..%d, got %lld", k->key, k->min, k->max, (long long)v);
        *(int *)(void *)((char *)&r->timeouts + k->offset) = (int)v;
    }
    return true;
}

static bool load_region(const loader *ld, const config_setting_t *group, gl_region *r) {
    if (!config_setting_is_group(group))
        return fail_at(ld, group, "each region must be a group: { name = ...; code = ...; }");
    return check_keys(ld, group) && load_name(ld, group, r) && load_code(ld, group, r) &&
           load_conninfos(ld, group, r) && load_replicas(ld, group, r) && load_threshold(ld, group, r) &&
           load_timeouts(ld, group, r);
}

/* ------------------------------------------------------------ all regions */

/* Region i against regions 0..i-1: names and codes must be unique. */
static bool check_unique(const loader *ld, const config_setting_t *list, const gl_config *cfg, int i) {
    const gl_region *r = &cfg->regions[i];
    const config_setting_t *group = config_setting_get_elem(list, (unsigned)i);
    for (int j = 0; j < i; j++) {
        const gl_region *o = &cfg->regions[j];
        const config_setting_t *first = config_setting_get_elem(list, (unsigned)j);
        bool same_name = strcmp(r->name, o->name) == 0;
        if (!same_name && r->code != o->code) continue;
        const char *key = same_name ? "name" : "code";
        const config_setting_t *at = config_setting_get_member(group, key);
        const config_setting_t *first_at = config_setting_get_member(first, key);
        const char *file = config_setting_source_file(first_at);
        if (same_name)
            fail_at(ld, at, "region name \"%s\" is used twice", r->name);
        else
            fail_at(ld, at, "region code %u is used twice (regions \"%s\" and \"%s\")",
                    (unsigned)r->code, o->name, r->name);
        gl_error_detail(ld->err, "first defined at %s:%u", file ? file : ld->path,
                        (unsigned)config_setting_source_line(first_at));
        return false;
    }
    return true;
}

static bool load_regions(const loader *ld, const config_setting_t *root, gl_config *cfg) {
    const config_setting_t *list = config_setting_get_member(root, "regions");
    if (!list) {
        gl_error_set(ld->err, GL_ERR_CONFIG, "%s: no regions configured", ld->path);
        gl_error_hint(ld->err, "add regions = ( { name = \"eu\"; code = 1; conninfo = \"...\"; } );");
        return false;
    }
    if (!config_setting_is_list(list))
        return fail_at(ld, list, "regions must be a list of groups: regions = ( { ... }, ... )");
    int n = config_setting_length(list);
    if (n < 1) return fail_at(ld, list, "no regions configured (the list is empty)");
    if (n > GL_REGIONS_MAX)
        return fail_at(ld, list, "too many regions (%d, at most %d)", n, GL_REGIONS_MAX);
    cfg->regions = calloc((size_t)n, sizeof *cfg->regions);
    if (!cfg->regions) {
        gl_error_set(ld->err, GL_ERR_INTERNAL, "out of memory loading %d regions", n);
        return false;
    }
    for (int i = 0; i < n; i++) {
        if (!load_region(ld, config_setting_get_elem(list, (unsigned)i), &cfg->regions[i]) ||
            !check_unique(ld, list, cfg, i))
            return false;
        cfg->n_regions = i + 1;
    }
    return true;
}

static bool load_migrations_dir(const loader *ld, const config_setting_t *root, gl_config *cfg) {
    const config_setting_t *at;
    const char *value;
    if (!lookup_string(ld, root, "migrations_dir", &at, &value)) return false;
    if (!value) {
        memcpy(cfg->migrations_dir, GL_SQL_DIR, sizeof GL_SQL_DIR);
        return true;
    }
    if (value[0] == '\0') return fail_at(ld, at, "migrations_dir is empty");
    return copy_string(ld, at, "migrations_dir", value, cfg->migrations_dir,
                       sizeof cfg->migrations_dir);
}

/* Parses the file; on failure says where and why (libconfig's own words). */
static bool read_file(const loader *ld, config_t *lc) {
    errno = 0;
    if (config_read_file(lc, ld->path) == CONFIG_TRUE) return true;
    int saved_errno = errno; /* libconfig returns right after fopen fails: still fopen's errno */
    if (config_error_type(lc) == CONFIG_ERR_FILE_IO) {
        gl_error_set(ld->err, GL_ERR_CONFIG, "cannot read configuration file \"%s\"", ld->path);
        if (saved_errno != 0) gl_error_detail(ld->err, "%s", strerror(saved_errno));
        gl_error_hint(ld->err, "pass --config or set GEOLEDGER_CONFIG");
        return false;
    }
    const char *file = config_error_file(lc);
    gl_error_set(ld->err, GL_ERR_CONFIG, "%s:%d: %s", file ? file : ld->path,
                 config_error_line(lc), config_error_text(lc));
    gl_error_hint(ld->err, "the file uses libconfig syntax: name = value; groups { }; lists ( )");
    return false;
}

/* ------------------------------------------------------------- public API */

bool gl_config_load(const char *path, gl_config *cfg, gl_error *err) {
    assert(path && cfg);
    memset(cfg, 0, sizeof *cfg);
    loader ld = {.path = path, .err = err};
    config_t lc;
    config_init(&lc);
    bool ok = read_file(&ld, &lc);
    if (ok) {
        const config_setting_t *root = config_root_setting(&lc);
        ok = load_regions(&ld, root, cfg) && load_migrations_dir(&ld, root, cfg);
    }
    config_destroy(&lc);
    /* A caller never sees half a configuration. */
    if (!ok) gl_config_free(cfg);
    return ok;
}

void gl_config_free(gl_config *cfg) {
    if (!cfg) return;
    free(cfg->regions);
    memset(cfg, 0, sizeof *cfg);
}

const char *gl_config_default_path(const char *flag_value) {
    if (flag_value && flag_value[0] != '\0') return flag_value;
    const char *env = getenv("GEOLEDGER_CONFIG");
    if (env && env[0] != '\0') return env;
    return DEFAULT_CONFIG_PATH;
}

/* A linear scan: at most 255 regions, and callers resolve a region once per request. */
const gl_region *gl_region_by_name(const gl_config *cfg, const char *name) {
    assert(cfg);
    if (!name) return NULL;
    for (int i = 0; i < cfg->n_regions; i++)
        if (strcmp(cfg->regions[i].name, name) == 0) return &cfg->regions[i];
    return NULL;
}

const gl_region *gl_region_by_code(const gl_config *cfg, uint8_t code) {
    assert(cfg);
    for (int i = 0; i < cfg->n_regions; i++)
        if (cfg->regions[i].code == code) return &cfg->regions[i];
    return NULL;
}

const gl_region *gl_region_of_id(const gl_config *cfg, const gl_id *id) {
    assert(cfg && id);
    uint8_t code = gl_id_partition(id);
    return code == 0 ? NULL : gl_region_by_code(cfg, code);
}

const char *gl_region_name_of_id(const gl_config *cfg, const gl_id *id) {
    const gl_region *r = gl_region_of_id(cfg, id);
    return r ? r->name : NULL;
}

static const char *role_conninfo(const gl_region *r, gl_db_role role) {
    switch (role) {
    case GL_ROLE_SERVICE: return r->conninfo;
    case GL_ROLE_ADMIN: return r->admin_conninfo;
    case GL_ROLE_RECON: return r->recon_conninfo;
    case GL_ROLE_REPORT: return r->report_conninfo;
    }
    return NULL;
}

static const char *role_name(gl_db_role role) {
    switch (role) {
    case GL_ROLE_SERVICE: return "service";
    case GL_ROLE_ADMIN: return "admin";
    case GL_ROLE_RECON: return "recon";
    case GL_ROLE_REPORT: return "report";
    }
    return "unknown";
}

/* The service role's session limits, set once per connection (parameterized:
 * SET cannot take parameters, set_config can). */
static bool set_session_timeouts(PGconn *conn, const gl_region_timeouts *t, gl_error *err) {
    char stmt[16], lock[16], idle[16];
    snprintf(stmt, sizeof stmt, "%d", t->statement_ms);
    snprintf(lock, sizeof lock, "%d", t->lock_ms);
    snprintf(idle, sizeof idle, "%d", t->idle_in_tx_ms);
    const char *values[3] = {stmt, lock, idle};
    /* A round trip of its own, under the connection's deadline. */
    PGresult *res = gl_pg_exec(conn,
                               "SELECT set_config('statement_timeout', $1, false), "
                               "set_config('lock_timeout', $2, false), "
                               "set_config('idle_in_transaction_session_timeout', $3, false)",
                               3, values, err);
    PQclear(res);
    return res != NULL;
}

PGconn *gl_region_connect(const gl_region *r, gl_db_role role, gl_error *err) {
    assert(r);
    const char *conninfo = role_conninfo(r, role);
    if (!conninfo || conninfo[0] == '\0') {
        gl_error_set(err, GL_ERR_INVALID, "region %s has no conninfo for role %s", r->name,
                     role_name(role));
        return NULL;
    }
    /* The region's limits come first: a keyword in the conninfo (expanded
     * from dbname, last) overrides them. */
    const gl_region_timeouts *t = &r->timeouts;
    char connect_s[16], idle[16], interval[16], count[16], user_timeout[16];
    snprintf(connect_s, sizeof connect_s, "%d", t->connect_s);
    snprintf(idle, sizeof idle, "%d", t->keepalives_idle_s);
    snprintf(interval, sizeof interval, "%d", t->keepalives_interval_s);
    snprintf(count, sizeof count, "%d", t->keepalives_count);
    snprintf(user_timeout, sizeof user_timeout, "%d", t->tcp_user_timeout_ms);
    const char *const keys[] = {"connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
                                "keepalives_count", "tcp_user_timeout", "dbname", NULL};
    const char *const values[] = {connect_s, "1", idle, interval, count, user_timeout, conninfo, NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
    if (!conn) { /* libpq returns NULL only when it cannot allocate */
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory connecting to region %s", r->name);
        return NULL;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        const char *why = PQerrorMessage(conn);
        gl_error_set(err, GL_ERR_UNAVAILABLE, "cannot connect to region %s (%s)", r->name, role_name(role));
        gl_error_detail(err, "%.*s", trimmed_len(why), why);
        PQfinish(conn);
        return NULL;
    }
    /* The service role is what serves requests: every round trip it makes is
     * under the region's request deadline (ledger/deadline.h). */
    if (role == GL_ROLE_SERVICE && !gl_deadline_guard(conn, t->request_ms)) {
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory guarding a connection to region %s", r->name);
        PQfinish(conn);
        return NULL;
    }
    if (role == GL_ROLE_SERVICE && !set_session_timeouts(conn, t, err)) {
        PQfinish(conn);
        return NULL;
    }
    return conn;
}
