#include "migrate.h"

#include "text.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "buf.h"
#include "pg.h"

#define MIGRATIONS_MAX 1000
#define MIGRATION_FILE_MAX ((size_t)16 * 1024 * 1024)

typedef struct {
    char version[5]; /* "0001" */
    char file[256];
} migration;

static int migration_cmp(const void *a, const void *b) {
    return strcmp(((const migration *)a)->file, ((const migration *)b)->file);
}

/* NNNN_name.sql, lowercase name: anything else in the directory is ignored. */
static bool migration_name_ok(const char *f) {
    size_t n = strlen(f);
    if (n < 10 || n >= 256 || strcmp(f + n - 4, ".sql") != 0 || f[4] != '_') return false;
    for (int i = 0; i < 4; i++)
        if (f[i] < '0' || f[i] > '9') return false;
    return true;
}

static int list_migrations(const char *dir, migration *out, gl_error *err) {
    DIR *d = opendir(dir);
    if (!d) {
        gl_error_set(err, GL_ERR_CONFIG, "cannot open migrations directory \"%s\"", dir);
        gl_error_hint(err, "set migrations_dir in ledger.conf");
        return -1;
    }
    int n = 0;
    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!migration_name_ok(e->d_name)) continue;
        if (n == MIGRATIONS_MAX) {
            closedir(d);
            gl_error_set(err, GL_ERR_CONFIG, "more than %d migrations in \"%s\"", MIGRATIONS_MAX, dir);
            return -1;
        }
        memcpy(out[n].version, e->d_name, 4);
        out[n].version[4] = '\0';
        snprintf(out[n].file, sizeof out[n].file, "%s", e->d_name);
        n++;
    }
    closedir(d);
    qsort(out, (size_t)n, sizeof *out, migration_cmp);
    for (int i = 1; i < n; i++) {
        if (strcmp(out[i].version, out[i - 1].version) == 0) {
            gl_error_set(err, GL_ERR_CONFIG, "two migrations share version %s: %s and %s", out[i].version,
                         out[i - 1].file, out[i].file);
            return -1;
        }
    }
    return n;
}

static bool read_file(const char *path, gl_buf *out, gl_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        gl_error_set(err, GL_ERR_CONFIG, "cannot read migration \"%s\"", path);
        return false;
    }
    char chunk[8192];
    size_t got;
    gl_buf_reset(out);
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        gl_buf_append(out, chunk, got);
        if (out->len > MIGRATION_FILE_MAX) break;
    }
    bool ok = !ferror(f) && !out->failed && out->len <= MIGRATION_FILE_MAX;
    fclose(f);
    if (!ok) gl_error_set(err, GL_ERR_CONFIG, "cannot read migration \"%s\" (error or larger than 16 MiB)", path);
    return ok;
}

static void sha256_hex(const gl_buf *data, char hex[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data->data ? data->data : "", data->len, md, &len, EVP_sha256(), NULL);
    gl_hex(md, len < 32 ? len : 32, hex);
}

static bool ensure_bookkeeping(PGconn *db, gl_error *err) {
    return gl_pg_run(db, "SET client_min_messages = warning", 0, NULL, err) &&
           gl_pg_run(db,
                     "CREATE TABLE IF NOT EXISTS schema_migrations ("
                     " version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                     " applied_at timestamptz NOT NULL DEFAULT now())",
                     0, NULL, err) &&
           /* One migrator at a time per partition. */
           gl_pg_run(db, "SELECT pg_advisory_lock(7349001)", 0, NULL, err);
}

/* Returns 1 applied now, 0 already applied (checksum verified), -1 error. */
static int apply_one(PGconn *db, const char *dir, const migration *m, gl_buf *sql, gl_error *err) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, m->file);
    if (!read_file(path, sql, err)) return -1;
    char sum[65];
    sha256_hex(sql, sum);
    const char *p[1] = {m->version};
    PGresult *r = gl_pg_exec(db, "SELECT checksum, name FROM schema_migrations WHERE version = $1", 1, p, err);
    if (!r) return -1;
    if (PQntuples(r) == 1) {
        bool same = strcmp(PQgetvalue(r, 0, 0), sum) == 0;
        if (!same) {
            gl_error_set(err, GL_ERR_CONFIG, "applied migration %s has changed on disk", m->file);
            gl_error_detail(err, "recorded checksum %s, file now %s", PQgetvalue(r, 0, 0), sum);
            gl_error_hint(err, "never edit an applied migration; add a new one");
        }
        PQclear(r);
        return same ? 0 : -1;
    }
    PQclear(r);
    /* Simple-query protocol: a migration file holds many statements. */
    gl_buf script = {0};
    gl_buf_puts(&script, "BEGIN;\n");
    gl_buf_append(&script, sql->data, sql->len);
    gl_buf_puts(&script, "\n;INSERT INTO schema_migrations (version, name, checksum) VALUES ('");
    gl_buf_puts(&script, m->version); /* digits only: checked by migration_name_ok */
    gl_buf_puts(&script, "', '");
    gl_buf_puts(&script, m->file); /* [0-9]{4}_*.sql from our own directory; quotes rejected below */
    gl_buf_puts(&script, "', '");
    gl_buf_puts(&script, sum);
    gl_buf_puts(&script, "');\nCOMMIT;");
    if (strchr(m->file, '\'') || script.failed) {
        gl_buf_free(&script);
        gl_error_set(err, GL_ERR_CONFIG, "bad migration file name \"%s\"", m->file);
        return -1;
    }
    r = PQexec(db, gl_buf_cstr(&script));
    gl_buf_free(&script);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        gl_pg_error(err, db, r, m->file);
        PQclear(r);
        PQclear(PQexec(db, "ROLLBACK"));
        return -1;
    }
    PQclear(r);
    return 1;
}

static bool stamp_partition(PGconn *db, uint8_t code, const char *name, gl_error *err) {
    char code_s[8];
    snprintf(code_s, sizeof code_s, "%u", (unsigned)code);
    const char *p[2] = {code_s, name};
    if (!gl_pg_run(db,
                   "INSERT INTO partition_info (region_code, region_name) VALUES ($1::int2, $2) "
                   "ON CONFLICT (singleton) DO NOTHING",
                   2, p, err))
        return false;
    PGresult *r = gl_pg_exec(db, "SELECT region_code, region_name FROM partition_info", 0, NULL, err);
    if (!r) return false;
    bool ok = PQntuples(r) == 1 && gl_pg_get_i64(r, 0, 0) == code && strcmp(PQgetvalue(r, 0, 1), name) == 0;
    if (!ok) {
        gl_error_set(err, GL_ERR_CONFIG, "database belongs to region %s (code %s), not %s (code %u)",
                     PQntuples(r) ? PQgetvalue(r, 0, 1) : "?", PQntuples(r) ? PQgetvalue(r, 0, 0) : "?", name,
                     (unsigned)code);
        gl_error_hint(err, "check the region's conninfo in ledger.conf");
    }
    PQclear(r);
    return ok;
}

int ledger_migrate(PGconn *db, const char *dir, uint8_t region_code, const char *region_name,
                   ledger_migrate_log_fn log, void *arg, gl_error *err) {
    migration *list = calloc(MIGRATIONS_MAX, sizeof *list);
    if (!list) {
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory");
        return -1;
    }
    int n = list_migrations(dir, list, err);
    int applied = 0;
    gl_buf sql = {0};
    if (n >= 0 && !ensure_bookkeeping(db, err)) n = -1;
    for (int i = 0; n >= 0 && i < n; i++) {
        int rc = apply_one(db, dir, &list[i], &sql, err);
        if (rc < 0) {
            applied = -1;
            break;
        }
        applied += rc;
        if (log) log(arg, list[i].version, list[i].file, rc == 1);
    }
    if (n < 0) applied = -1;
    if (applied >= 0 && !stamp_partition(db, region_code, region_name, err)) applied = -1;
    if (n >= 0) PQclear(PQexec(db, "SELECT pg_advisory_unlock_all()"));
    gl_buf_free(&sql);
    free(list);
    return applied;
}
