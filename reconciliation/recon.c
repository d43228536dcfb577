/*
 * recon.c — the reconciliation job (see recon.h for the algorithm).
 *
 * Reading order: records and partition files, the two inputs (settlement
 * file, ledger cursor), the two matching passes, the outputs (breaks table,
 * sealed reports), and gl_recon_run() which strings them together.
 */
#include "recon.h"

#include "../ledger/text.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "../ledger/audit.h"
#include "../ledger/buf.h"
#include "../ledger/pg.h"

#define PARTITIONS_MAX 1024
#define PARTITION_BUF 65536
#define COPY_FLUSH_BYTES (1 << 20)
#define CARD_TEXT_MAX (6 + 1 + 4 + 1 + GL_PAN_KEY_ID_MAX + 1 + GL_PAN_TOKEN_HEX)

static const char *const class_names[GL_BREAK_CLASSES] = {
    [GL_BREAK_MISSING_IN_LEDGER] = "missing_in_ledger",
    [GL_BREAK_MISSING_IN_SETTLEMENT] = "missing_in_settlement",
    [GL_BREAK_AMOUNT_MISMATCH] = "amount_mismatch",
    [GL_BREAK_FEE_MISMATCH] = "fee_mismatch",
    [GL_BREAK_CURRENCY_MISMATCH] = "currency_mismatch",
    [GL_BREAK_DUPLICATE] = "duplicate",
    [GL_BREAK_TIMING] = "timing",
};

const char *gl_break_class_name(gl_break_class c) { return c < GL_BREAK_CLASSES ? class_names[c] : "unknown"; }

/* ---------- records ----------
 * One settlement line or ledger transfer, as stored in partition files and
 * loaded back into memory unchanged: a fixed header, then the strings (not
 * NUL-terminated), padded to 8 bytes. */
typedef struct {
    uint32_t size; /* whole record, header included */
    uint8_t side;  /* 'S' settlement, 'L' ledger */
    uint8_t has_fee;
    uint8_t spare;
    uint8_t in_period;
    uint16_t key_len, psp_len, type_len, card_len;
    uint64_t hash;
    uint64_t line_no;
    int64_t amount, fee, at_us, settled_us;
    gl_id transfer_id;
    char currency[4];
    /* Its index in its partition file. Partitions are matched from read-only
     * maps, so "matched" is a flag array indexed by this, not a field. */
    uint32_t ord;
} rec;

static const char *rec_key(const rec *r) { return (const char *)(r + 1); }
static const char *rec_psp(const rec *r) { return rec_key(r) + r->key_len; }
static const char *rec_type(const rec *r) { return rec_psp(r) + r->psp_len; }
static const char *rec_card(const rec *r) { return rec_type(r) + r->type_len; }

static uint64_t fnv1a(const void *p, size_t n, uint64_t h) {
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ULL;
    return h;
}
#define FNV_SEED 1469598103934665603ULL

static uint64_t amount_hash(const rec *r) {
    uint64_t h = fnv1a(r->currency, 3, FNV_SEED);
    return fnv1a(&r->amount, sizeof r->amount, h);
}

/* ---------- partition files ---------- */

typedef struct {
    unsigned n;
    FILE *f[PARTITIONS_MAX];
    char *buf[PARTITIONS_MAX];
    uint32_t count[PARTITIONS_MAX]; /* records written to each */
} partition_set;

/* Matching runs on MATCHERS threads; each owns its breaks file and its pass-2
 * partitions, so no output is shared while they run. */
#define MATCHERS 2

typedef struct {
    char dir[4096];
    partition_set pass1_s, pass1_l;
    partition_set pass2_s[MATCHERS], pass2_l[MATCHERS];
    FILE *breaks[MATCHERS]; /* break records: an 8-byte head + up to two records */
    FILE *malformed;        /* "line\treason\n" */
} workspace;

static void part_path(const workspace *w, const char *name, unsigned i, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s.%u", w->dir, name, i);
}

static bool parts_open(workspace *w, partition_set *ps, const char *name, unsigned n, gl_error *err) {
    ps->n = n;
    for (unsigned i = 0; i < n; i++) {
        char path[4200];
        part_path(w, name, i, path, sizeof path);
        ps->f[i] = fopen(path, "w+b");
        ps->buf[i] = malloc(PARTITION_BUF);
        if (!ps->f[i] || !ps->buf[i]) {
            gl_error_set(err, GL_ERR_INTERNAL, "cannot create work file %s: %s", path, strerror(errno));
            return false;
        }
        setvbuf(ps->f[i], ps->buf[i], _IOFBF, PARTITION_BUF);
    }
    return true;
}

static void parts_close(partition_set *ps) {
    for (unsigned i = 0; i < ps->n; i++) {
        if (ps->f[i]) fclose(ps->f[i]);
        free(ps->buf[i]);
        ps->f[i] = NULL;
        ps->buf[i] = NULL;
    }
    ps->n = 0;
}

/* Each work file has one writer thread: no stdio lock per record. */
static bool rec_write(FILE *f, const rec *r, gl_error *err) {
    if (fwrite_unlocked(r, r->size, 1, f) == 1) return true;
    gl_error_set(err, GL_ERR_INTERNAL, "cannot write a work file: %s", strerror(errno));
    return false;
}

/* Writes r as the next record of partition p, numbering it. */
static bool part_put(partition_set *ps, unsigned p, rec *r, gl_error *err) {
    r->ord = ps->count[p]++;
    return rec_write(ps->f[p], r, err);
}

/* A partition file mapped read-only. MAP_POPULATE maps every page in one
 * call: the file was just written, so its pages are in the page cache, and
 * a page fault per 4 KiB (or a copy into a buffer) costs more than the match. */
typedef struct {
    const char *data;
    size_t len;
} part_map;

static bool part_map_open(FILE *f, part_map *pm, gl_error *err) {
    struct stat st;
    *pm = (part_map){0};
    if (fflush(f) != 0 || fstat(fileno(f), &st) != 0) {
        gl_error_set(err, GL_ERR_INTERNAL, "cannot read a work file: %s", strerror(errno));
        return false;
    }
    if (st.st_size == 0) return true;
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fileno(f), 0);
    if (p == MAP_FAILED) {
        gl_error_set(err, GL_ERR_INTERNAL, "cannot map a work file of %lld bytes: %s", (long long)st.st_size,
                     strerror(errno));
        return false;
    }
    pm->data = p;
    pm->len = (size_t)st.st_size;
    return true;
}

static void part_map_close(part_map *pm) {
    if (pm->data) munmap((void *)pm->data, pm->len);
    *pm = (part_map){0};
}

/* Work files are read back into a gl_buf. Matchers keep theirs from one
 * partition to the next (gl_buf_reset keeps the memory): fresh allocations of
 * tens of MB per partition cost a page fault and a zeroed page for every 4 KiB. */

/* Appends the whole work file f (its records, in order) to b. */
static bool load_append(gl_buf *b, FILE *f, gl_error *err) {
    assert(b && f);
    if (fflush(f) != 0 || fseeko(f, 0, SEEK_END) != 0) goto io;
    off_t n = ftello(f);
    if (n < 0 || fseeko(f, 0, SEEK_SET) != 0) goto io;
    if (!gl_buf_reserve(b, (size_t)n)) {
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory loading a work file of %lld bytes", (long long)n);
        return false;
    }
    if (n > 0 && fread(b->data + b->len, (size_t)n, 1, f) != 1) goto io;
    b->len += (size_t)n;
    b->data[b->len] = '\0';
    return true;
io:
    gl_error_set(err, GL_ERR_INTERNAL, "cannot read a work file: %s", strerror(errno));
    return false;
}

/* File i of every matcher's set, one after the other (pass 2's partition i; the breaks). */
static bool load_all(gl_buf *b, partition_set *sets, unsigned i, gl_error *err) {
    gl_buf_reset(b);
    for (int k = 0; k < MATCHERS; k++)
        if (!load_append(b, sets[k].f[i], err)) return false;
    return true;
}

/* Builds a record in `scratch` (which must hold sizeof(rec) + strings + 8). */
static rec *rec_build(void *scratch, const char *key, const char *psp, const char *type, const char *card) {
    rec *r = scratch;
    memset(r, 0, sizeof *r);
    r->key_len = (uint16_t)strlen(key);
    r->psp_len = (uint16_t)strlen(psp);
    r->type_len = (uint16_t)strlen(type);
    r->card_len = (uint16_t)strlen(card);
    char *p = (char *)(r + 1);
    memcpy(p, key, r->key_len);
    memcpy(p += r->key_len, psp, r->psp_len);
    memcpy(p += r->psp_len, type, r->type_len);
    memcpy(p + r->type_len, card, r->card_len);
    size_t size = sizeof *r + r->key_len + r->psp_len + r->type_len + r->card_len;
    r->size = (uint32_t)((size + 7) & ~(size_t)7);
    r->hash = fnv1a(key, r->key_len, FNV_SEED);
    return r;
}

#define REC_SCRATCH (sizeof(rec) + (size_t)4 * (GL_SETTLEMENT_KEY_MAX + 1) + CARD_TEXT_MAX + 16)

/* ---------- the job's state ---------- */

typedef struct {
    const gl_recon_options *o;
    gl_recon_summary *sum;
    workspace w;
    char currency[4]; /* the clearing account's */
    _Alignas(8) char scratch[REC_SCRATCH];
} job;

/* One matching thread: partitions first, first + MATCHERS, ...; its outputs
 * and counters are its own until they are merged after the join. */
typedef struct {
    job *j;
    unsigned first;
    FILE *breaks;
    partition_set *p2s, *p2l;
    gl_buf s, l;     /* pass 2's partition being matched, reused for the next one */
    const rec **slots; /* the hash table's storage (rec_slot), likewise reused */
    size_t slots_bytes;
    uint8_t *flags; /* the table's matched flags' storage, likewise reused */
    size_t flags_cap;
    uint64_t breaks_n, unexplained, matched, matched_by_amount, by_class[GL_BREAK_CLASSES];
    bool ok;
    gl_error err;
} matcher;

static bool in_period(const job *j, int64_t at_us) { return at_us >= j->o->from_us && at_us < j->o->to_us; }

/* A break: its class and the records on each side (either may be NULL). */
static bool emit_break(matcher *m, gl_break_class c, const rec *s, const rec *l) {
    /* 8 bytes, so the records after it stay 8-aligned when loaded back */
    uint8_t head[8] = {(uint8_t)c, (uint8_t)((s ? 1 : 0) | (l ? 2 : 0))};
    if (fwrite(head, sizeof head, 1, m->breaks) != 1 || (s && !rec_write(m->breaks, s, &m->err)) ||
        (l && !rec_write(m->breaks, l, &m->err))) {
        if (m->err.kind == GL_ERR_NONE)
            gl_error_set(&m->err, GL_ERR_INTERNAL, "cannot write the breaks file: %s", strerror(errno));
        return false;
    }
    m->breaks_n++;
    m->by_class[c]++;
    if (c != GL_BREAK_TIMING) m->unexplained++;
    return true;
}

/* ---------- input 1: the settlement file ---------- */

static void card_text(const gl_pan_masked *c, char *out, size_t cap) {
    if (c->present) snprintf(out, cap, "%s:%s:%s:%s", c->bin, c->last4, c->key_id, c->token);
    else out[0] = '\0';
}

static bool on_line(void *arg, const gl_settlement_line *line, gl_error *err) {
    job *j = arg;
    char card[CARD_TEXT_MAX + 1];
    card_text(&line->card, card, sizeof card);
    /* The key: a charge's merchant reference when the file has one, else the
     * PSP's id of the line. Refunds and chargebacks repeat their payment's
     * merchant reference, so they are keyed by their own PSP id (the ledger
     * reversal may carry it as its reference) and otherwise paired by amount. */
    const char *key = line->reference[0] && line->gross_minor >= 0 ? line->reference : line->psp_id;
    rec *r = rec_build(j->scratch, key, line->psp_id, line->type, card);
    r->side = 'S';
    r->line_no = line->line_no;
    r->amount = line->gross_minor;
    r->fee = line->fee_minor;
    r->has_fee = 1;
    r->at_us = line->created_at_us;
    r->settled_us = line->settled_at_us ? line->settled_at_us : line->created_at_us;
    r->in_period = in_period(j, r->settled_us);
    memcpy(r->currency, line->currency, sizeof r->currency);
    partition_set *ps = &j->w.pass1_s;
    return part_put(ps, (unsigned)(r->hash % ps->n), r, err);
}

static void on_malformed(void *arg, uint64_t line_no, const char *reason) {
    job *j = arg;
    char clean[257];
    size_t k = 0;
    /* tabs and newlines would break the COPY row */
    for (const char *p = reason; *p && k < sizeof clean - 1; p++) clean[k++] = (*p == '\t' || *p == '\n') ? ' ' : *p;
    clean[k] = '\0';
    fprintf(j->w.malformed, "%llu\t%s\n", (unsigned long long)line_no, clean);
}

/* A FILE that hashes what is read through it: the run records the file's
 * SHA-256 without a second read of a file that may be gigabytes. */
typedef struct {
    FILE *in;
    EVP_MD_CTX *md;
} hashing_reader;

static ssize_t hashing_read(void *cookie, char *buf, size_t size) {
    hashing_reader *h = cookie;
    size_t n = fread(buf, 1, size, h->in);
    if (n > 0) EVP_DigestUpdate(h->md, buf, n);
    if (n == 0 && ferror(h->in)) return -1;
    return (ssize_t)n;
}

static bool read_settlement(job *j, FILE *in, uint8_t sha256[32], gl_error *err) {
    hashing_reader h = {in, EVP_MD_CTX_new()};
    cookie_io_functions_t io = {.read = hashing_read};
    FILE *f = h.md && EVP_DigestInit_ex(h.md, EVP_sha256(), NULL) ? fopencookie(&h, "r", io) : NULL;
    if (!f) {
        EVP_MD_CTX_free(h.md);
        gl_error_set(err, GL_ERR_INTERNAL, "cannot set up the file reader");
        return false;
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    gl_settlement_stats st = {0};
    bool ok = gl_settlement_read(f, j->o->source, j->o->pan_keys, on_line, on_malformed, j, &st, err);
    fclose(f);
    unsigned len = 0;
    EVP_DigestFinal_ex(h.md, sha256, &len);
    EVP_MD_CTX_free(h.md);
    j->sum->lines = st.rows;
    j->sum->malformed = st.bad;
    j->sum->pans_masked = st.pans_masked;
    return ok;
}

/* ---------- input 2: the ledger ---------- */

static void str_of(char *dst, size_t cap, const char *src, size_t n) {
    if (n >= cap) n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}


#define PG_EPOCH_OFFSET_US 946684800000000LL /* 2000-01-01 in Unix microseconds */

/* A strict non-negative integer from the metadata ("psp_fee"); false otherwise. */
static bool parse_fee(const char *s, int len, int64_t *out) {
    if (len < 1 || len > 18) return false;
    int64_t v = 0;
    for (int i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* The fields of one binary COPY tuple: (pointer, length), length -1 for NULL. */
#define LEDGER_COLS 6
typedef struct {
    const char *p[LEDGER_COLS];
    int32_t len[LEDGER_COLS];
} copy_tuple;

static uint64_t be64(const char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | (unsigned char)p[i];
    return v;
}

static int32_t be32(const char *p) {
    return (int32_t)((uint32_t)(unsigned char)p[0] << 24 | (uint32_t)(unsigned char)p[1] << 16 |
                     (uint32_t)(unsigned char)p[2] << 8 | (uint32_t)(unsigned char)p[3]);
}

/* Splits one CopyData message; skips the file header on the first one.
 * Returns 1 tuple, 0 trailer, -1 malformed. */
static int copy_tuple_parse(const char *buf, int n, bool first, copy_tuple *t) {
    const char *p = buf, *end = buf + n;
    if (first) {
        if (n < 19 || memcmp(p, "PGCOPY\n\377\r\n\0", 11) != 0) return -1;
        p += 15;
        int32_t ext = be32(p);
        p += 4 + ext;
    }
    if (end - p < 2) return -1;
    int16_t fields = (int16_t)((unsigned char)p[0] << 8 | (unsigned char)p[1]);
    p += 2;
    if (fields == -1) return 0;
    if (fields != LEDGER_COLS) return -1;
    for (int i = 0; i < LEDGER_COLS; i++) {
        if (end - p < 4) return -1;
        t->len[i] = be32(p);
        p += 4;
        if (t->len[i] < -1 || end - p < (t->len[i] > 0 ? t->len[i] : 0)) return -1;
        t->p[i] = p;
        if (t->len[i] > 0) p += t->len[i];
    }
    return 1;
}

/* The clearing account's money-moving transfers (no holds, voids or expiries)
 * of the period widened by the timing window, as binary COPY: the cheapest way
 * to move a million rows out of PostgreSQL. COPY takes no parameters, so the
 * values travel as transaction-local settings set by a parameterized
 * set_config(). The columns are the cheapest forms: the sign, the fee and the
 * time are worked out here. Scalar subqueries, so each setting is read once
 * (an InitPlan), not per row.
 *
 * A sequential scan of transfers: there is no index by account or by time
 * (each would cost every transfer an insert). The server's side of this scan
 * is the run's critical path (timings.ledger_ms). Splitting it over two
 * connections by page range was tried: a TID range scan of the whole table
 * costs 1.4-2x a sequential scan in PostgreSQL 15, which ate the gain. */
#define RECON_SETTING(name, type) "(SELECT current_setting('geoledger.recon_" name "')::" type ")"
#define RECON_ACCOUNT RECON_SETTING("account", "uuid")
static const char ledger_copy_sql[] =
    "COPY (SELECT reference, id, debit_account_id = " RECON_ACCOUNT ", amount, metadata->>'psp_fee', created_at "
    "FROM transfers WHERE (debit_account_id = " RECON_ACCOUNT " OR credit_account_id = " RECON_ACCOUNT ") "
    "AND created_at >= " RECON_SETTING("from", "timestamptz") " AND created_at < " RECON_SETTING("to", "timestamptz") " "
    "AND reference IS NOT NULL AND flags & 21 = 0) TO STDOUT (FORMAT binary)";

/* The ledger side: read on its own thread while the file is parsed. */
typedef struct {
    job *j;
    PGconn *db;
    uint64_t transfers; /* in the period */
    int64_t cpu_ms;
    bool ok;
    gl_error err;
    _Alignas(8) char scratch[REC_SCRATCH];
} ledger_reader;

/* One transfer (reference, id, debits the account?, amount, psp_fee text,
 * created_at) into the ledger partitions. */
static bool ledger_row(ledger_reader *ls, const copy_tuple *t) {
    job *j = ls->j;
    char ref[GL_SETTLEMENT_KEY_MAX + 1];
    if (t->len[0] < 0 || t->len[1] != 16 || t->len[2] != 1 || t->len[3] != 8 || t->len[5] != 8) {
        gl_error_set(&ls->err, GL_ERR_DB, "reading the ledger: unexpected row shape");
        return false;
    }
    str_of(ref, sizeof ref, t->p[0], (size_t)t->len[0]);
    /* The settlement side's keys went through the PAN guard: a card-like
     * reference must be masked the same way to match (FORMATS.md), and must
     * not reach recon_breaks or the reports in full. */
    gl_pan_mask_text(ref, NULL, NULL);
    rec *x = rec_build(ls->scratch, ref, "", "", "");
    x->side = 'L';
    memcpy(x->transfer_id.b, t->p[1], 16);
    int64_t amount = (int64_t)be64(t->p[3]);
    x->amount = t->p[2][0] ? amount : -amount;
    memcpy(x->currency, j->currency, sizeof x->currency); /* the engine keeps every transfer in its accounts' currency */
    x->has_fee = t->len[4] > 0 && parse_fee(t->p[4], t->len[4], &x->fee);
    x->at_us = (int64_t)be64(t->p[5]) + PG_EPOCH_OFFSET_US;
    x->settled_us = x->at_us;
    x->in_period = in_period(j, x->at_us);
    ls->transfers += x->in_period;
    partition_set *ps = &j->w.pass1_l;
    return part_put(ps, (unsigned)(x->hash % ps->n), x, &ls->err);
}

static bool ledger_copy_rows(ledger_reader *ls) {
    bool ok = true, first = true;
    char *buf = NULL;
    int n;
    while ((n = PQgetCopyData(ls->db, &buf, 0)) > 0) {
        copy_tuple t;
        int rc = ok ? copy_tuple_parse(buf, n, first, &t) : 0;
        first = false;
        if (rc < 0) {
            gl_error_set(&ls->err, GL_ERR_DB, "reading the ledger: malformed COPY data");
            ok = false;
        } else if (rc == 1) {
            ok = ledger_row(ls, &t);
        }
        PQfreemem(buf);
    }
    PGresult *r = PQgetResult(ls->db);
    if (n == -2 || PQresultStatus(r) != PGRES_COMMAND_OK) {
        if (ok) gl_pg_error(&ls->err, ls->db, r, "reading the ledger");
        ok = false;
    }
    PQclear(r);
    while ((r = PQgetResult(ls->db))) PQclear(r);
    return ok;
}

static bool ledger_read(ledger_reader *ls) {
    const gl_recon_options *o = ls->j->o;
    char acct[GL_ID_STR_LEN + 1], from[48], to[48];
    gl_id_format(&o->clearing_account, acct);
    gl_format_ts_us(o->from_us - o->window_us, from, sizeof from);
    gl_format_ts_us(o->to_us + o->window_us, to, sizeof to);
    const char *p[3] = {acct, from, to};
    if (!gl_pg_run(ls->db, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, &ls->err)) return false;
    /* jit off: compiling this scan's expressions costs more than it saves
     * (measured +30-80% on a million rows), and a big table's cost estimate
     * would turn it on. */
    bool ok = gl_pg_run(ls->db,
                        "SELECT set_config('geoledger.recon_account', $1, true), "
                        "set_config('geoledger.recon_from', $2, true), set_config('geoledger.recon_to', $3, true), "
                        "set_config('jit', 'off', true)",
                        3, p, &ls->err);
    PGresult *r = ok ? PQexec(ls->db, ledger_copy_sql) : NULL;
    if (ok && PQresultStatus(r) != PGRES_COPY_OUT) {
        gl_pg_error(&ls->err, ls->db, r, "reading the ledger");
        ok = false;
    }
    PQclear(r);
    ok = ok && ledger_copy_rows(ls);
    PQclear(PQexec(ls->db, ok ? "COMMIT" : "ROLLBACK"));
    return ok;
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t thread_cpu_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *ledger_reader_main(void *arg) {
    ledger_reader *ls = arg;
    int64_t t0 = now_ms(), c0 = thread_cpu_ms();
    ls->ok = ledger_read(ls);
    ls->j->sum->ledger_ms = now_ms() - t0;
    ls->cpu_ms = thread_cpu_ms() - c0;
    return NULL;
}

/* The two inputs are independent: the ledger streams in (mostly server work)
 * while this thread parses the file. */
static bool read_inputs(job *j, PGconn *db, FILE *in, uint8_t sha[32], gl_error *err) {
    ledger_reader *ls = calloc(1, sizeof *ls);
    if (!ls) {
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory");
        return false;
    }
    ls->j = j;
    ls->db = db;
    pthread_t t;
    bool threaded = pthread_create(&t, NULL, ledger_reader_main, ls) == 0;
    if (!threaded) ledger_reader_main(ls);
    int64_t t0 = now_ms(), c0 = thread_cpu_ms();
    bool ok = read_settlement(j, in, sha, err);
    j->sum->file_ms = now_ms() - t0;
    j->sum->file_cpu_ms = thread_cpu_ms() - c0;
    if (threaded) pthread_join(t, NULL);
    if (ok && !ls->ok) *err = ls->err;
    ok = ok && ls->ok;
    j->sum->ledger_transfers = ls->transfers;
    j->sum->ledger_cpu_ms = ls->cpu_ms;
    free(ls);
    return ok;
}

/* ---------- matching ---------- */

/* Open addressing over the settlement records of one partition, with their
 * matched flags (indexed by rec.ord). */
typedef const rec *rec_slot; /* a settlement record, or NULL: empty */
typedef struct {
    rec_slot *slots;
    size_t cap;
    uint8_t *matched;
} rec_table;

/* Anonymous memory in 2 MiB pages where the kernel allows it: the table is
 * rebuilt for every partition, and a fault per 4 KiB page is expensive. */
#define HUGE_PAGE ((size_t)2 << 20)
static void *huge_alloc(size_t *bytes) {
    *bytes = (*bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    void *p = mmap(NULL, *bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    (void)madvise(p, *bytes, MADV_HUGEPAGE); /* advice only: 4 KiB pages work too */
    return p;
}

/* Sizes m's reused table storage for n records and clears it. */
static bool table_reserve(matcher *m, rec_table *t, size_t n) {
    t->cap = 16;
    while (t->cap < 2 * n) t->cap *= 2;
    if (t->cap * sizeof(rec_slot) > m->slots_bytes) {
        if (m->slots) munmap(m->slots, m->slots_bytes);
        m->slots_bytes = t->cap * sizeof(rec_slot);
        m->slots = huge_alloc(&m->slots_bytes);
        if (!m->slots) m->slots_bytes = 0;
    }
    if (n > m->flags_cap) {
        free(m->flags);
        m->flags = malloc(n);
        m->flags_cap = m->flags ? n : 0;
    }
    if (!m->slots || (n > 0 && !m->flags)) {
        gl_error_set(&m->err, GL_ERR_INTERNAL, "out of memory for a partition's hash table");
        return false;
    }
    t->slots = m->slots;
    t->matched = m->flags;
    memset(t->slots, 0, t->cap * sizeof(rec_slot));
    if (n > 0) memset(t->matched, 0, n);
    return true;
}

/* Builds the table over a partition's n settlement records, numbered 0..n-1
 * by ord. The table is bigger than the caches: each insert's slot is
 * prefetched PREFETCH_AHEAD records before it is written. */
#define PREFETCH_AHEAD 8
static bool table_build(matcher *m, rec_table *t, const char *data, size_t len, size_t n, bool by_amount) {
    if (!table_reserve(m, t, n)) return false;
    const rec *ring[PREFETCH_AHEAD] = {NULL};
    size_t home[PREFETCH_AHEAD] = {0}, mask = t->cap - 1, off = 0;
    /* Insert in file order: a later line with the same key lands later in
     * probe order, so the first line is the one matched and later ones are
     * the duplicates. Record k is read at step k, inserted at step k + AHEAD. */
    for (size_t k = 0; k < n + PREFETCH_AHEAD; k++) {
        size_t q = k % PREFETCH_AHEAD;
        if (k >= PREFETCH_AHEAD && ring[q]) {
            size_t i = home[q];
            while (t->slots[i]) i = (i + 1) & mask;
            t->slots[i] = ring[q];
        }
        ring[q] = NULL;
        if (k < n && off < len) {
            const rec *r = (const rec *)(const void *)(data + off);
            off += r->size;
            ring[q] = r;
            home[q] = (by_amount ? amount_hash(r) : r->hash) & mask;
            __builtin_prefetch(&t->slots[home[q]], 1);
        }
    }
    return true;
}

static bool same_key(const rec *a, const rec *b) {
    return a->hash == b->hash && a->key_len == b->key_len && memcmp(rec_key(a), rec_key(b), a->key_len) == 0;
}

/* The first unmatched settlement record with l's key; *seen tells whether any
 * record had the key at all (then a miss means l is a duplicate). */
static const rec *probe_key(const rec_table *t, const rec *l, bool *seen) {
    *seen = false;
    for (size_t i = l->hash & (t->cap - 1); t->slots[i]; i = (i + 1) & (t->cap - 1)) {
        const rec *s = t->slots[i];
        if (!same_key(s, l)) continue;
        *seen = true;
        if (!t->matched[s->ord]) return s;
    }
    return NULL;
}

static int64_t abs_diff(int64_t a, int64_t b) { return a > b ? a - b : b - a; }

/* The closest unmatched settlement record of l's currency and amount within the window. */
static const rec *probe_amount(const rec_table *t, const rec *l, int64_t window_us) {
    const rec *best = NULL;
    for (size_t i = amount_hash(l) & (t->cap - 1); t->slots[i]; i = (i + 1) & (t->cap - 1)) {
        const rec *s = t->slots[i];
        if (t->matched[s->ord] || s->amount != l->amount || memcmp(s->currency, l->currency, 3) != 0) continue;
        if (abs_diff(s->at_us, l->at_us) > window_us) continue;
        if (!best || abs_diff(s->at_us, l->at_us) < abs_diff(best->at_us, l->at_us)) best = s;
    }
    return best;
}

/* Compares a pair found by key; the most serious difference names the break. */
static bool judge_pair(matcher *m, const rec *s, const rec *l) {
    if (memcmp(s->currency, l->currency, 3) != 0) return emit_break(m, GL_BREAK_CURRENCY_MISMATCH, s, l);
    if (s->amount != l->amount) return emit_break(m, GL_BREAK_AMOUNT_MISMATCH, s, l);
    if (l->has_fee && s->fee != l->fee) return emit_break(m, GL_BREAK_FEE_MISMATCH, s, l);
    if (s->in_period != l->in_period) return emit_break(m, GL_BREAK_TIMING, s, l);
    if (l->in_period) m->matched++;
    return true;
}

/* Leftovers of pass 1 go to pass 2's partitions, by (currency, amount). */
static bool to_pass2(partition_set *ps, const rec *r, gl_error *err) {
    return rec_write(ps->f[amount_hash(r) % ps->n], r, err);
}

/* Probes one ledger record against pass 1's table. */
static bool match_ledger_by_key(matcher *m, rec_table *t, const rec *l) {
    bool seen = false;
    const rec *s = l->key_len ? probe_key(t, l, &seen) : NULL;
    if (s) {
        t->matched[s->ord] = 1;
        return judge_pair(m, s, l);
    }
    if (seen) return emit_break(m, GL_BREAK_DUPLICATE, NULL, l); /* a second transfer with the same reference */
    return !l->in_period || to_pass2(m->p2l, l, &m->err);
}

static bool match_partition_by_key(matcher *m, unsigned i) {
    job *j = m->j;
    part_map sm = {0}, lm = {0};
    rec_table t = {0};
    bool ok = part_map_open(j->w.pass1_s.f[i], &sm, &m->err) && part_map_open(j->w.pass1_l.f[i], &lm, &m->err) &&
              table_build(m, &t, sm.data, sm.len, j->w.pass1_s.count[i], false);
    for (size_t off = 0; ok && off < lm.len;) {
        const rec *l = (const rec *)(const void *)(lm.data + off);
        off += l->size;
        ok = match_ledger_by_key(m, &t, l);
    }
    /* Settlement lines left: a repeat of a matched key is a duplicate, the rest try pass 2. */
    for (size_t off = 0; ok && off < sm.len;) {
        const rec *s = (const rec *)(const void *)(sm.data + off);
        off += s->size;
        if (t.matched[s->ord]) continue;
        bool seen = false;
        for (size_t k = s->hash & (t.cap - 1); t.slots[k] && t.slots[k] != s; k = (k + 1) & (t.cap - 1))
            if (same_key(t.slots[k], s)) seen = true;
        ok = seen && s->key_len ? emit_break(m, GL_BREAK_DUPLICATE, s, NULL) : to_pass2(m->p2s, s, &m->err);
    }
    part_map_close(&sm);
    part_map_close(&lm);
    return ok;
}

/* Pass 2's partition i is the matchers' files i one after the other, loaded
 * into a buffer: its records are renumbered 0..n-1 for the matched flags
 * (*n, when asked). */
static bool load_pass2(gl_buf *b, partition_set *sets, unsigned i, size_t *n, gl_error *err) {
    if (!load_all(b, sets, i, err)) return false;
    uint32_t ord = 0;
    for (size_t off = 0; off < b->len; off += ((rec *)(void *)(b->data + off))->size)
        ((rec *)(void *)(b->data + off))->ord = ord++;
    if (n) *n = ord;
    return true;
}

static bool match_partition_by_amount(matcher *m, unsigned i) {
    job *j = m->j;
    rec_table t = {0};
    size_t sn = 0;
    bool ok = load_pass2(&m->s, j->w.pass2_s, i, &sn, &m->err) && load_pass2(&m->l, j->w.pass2_l, i, NULL, &m->err) &&
              table_build(m, &t, m->s.data, m->s.len, sn, true);
    for (size_t off = 0; ok && off < m->l.len;) {
        const rec *l = (const rec *)(const void *)(m->l.data + off);
        off += l->size;
        const rec *s = probe_amount(&t, l, j->o->window_us);
        if (s) {
            t.matched[s->ord] = 1;
            m->matched_by_amount++;
        } else {
            ok = emit_break(m, GL_BREAK_MISSING_IN_SETTLEMENT, NULL, l);
        }
    }
    for (size_t off = 0; ok && off < m->s.len;) {
        const rec *s = (const rec *)(const void *)(m->s.data + off);
        off += s->size;
        if (!t.matched[s->ord]) ok = emit_break(m, GL_BREAK_MISSING_IN_LEDGER, s, NULL);
    }
    return ok;
}

static void *pass1_main(void *arg) {
    matcher *m = arg;
    for (unsigned i = m->first; m->ok && i < m->j->w.pass1_s.n; i += MATCHERS) m->ok = match_partition_by_key(m, i);
    return NULL;
}

static void *pass2_main(void *arg) {
    matcher *m = arg;
    for (unsigned i = m->first; m->ok && i < m->j->w.pass1_s.n; i += MATCHERS) m->ok = match_partition_by_amount(m, i);
    return NULL;
}

/* Runs `fn` on every matcher, on its own thread (inline if none can start). */
static void run_matchers(matcher *ms, void *(*fn)(void *)) {
    pthread_t t[MATCHERS];
    bool started[MATCHERS];
    for (int k = 0; k < MATCHERS; k++) {
        started[k] = pthread_create(&t[k], NULL, fn, &ms[k]) == 0;
        if (!started[k]) fn(&ms[k]);
    }
    for (int k = 0; k < MATCHERS; k++)
        if (started[k]) pthread_join(t[k], NULL);
}

/* Partitions are independent: both passes run on MATCHERS threads. Pass 2
 * starts when every pass-1 leftover is written. */
static bool match_all(job *j, gl_error *err) {
    matcher ms[MATCHERS];
    memset(ms, 0, sizeof ms);
    for (int k = 0; k < MATCHERS; k++)
        ms[k] = (matcher){.j = j, .first = (unsigned)k, .breaks = j->w.breaks[k], .p2s = &j->w.pass2_s[k],
                          .p2l = &j->w.pass2_l[k], .ok = true};
    run_matchers(ms, pass1_main);
    bool ok = true;
    for (int k = 0; k < MATCHERS; k++) ok = ok && ms[k].ok;
    if (ok) run_matchers(ms, pass2_main);
    gl_recon_summary *sum = j->sum;
    for (int k = 0; k < MATCHERS; k++) {
        gl_buf_free(&ms[k].s);
        gl_buf_free(&ms[k].l);
        if (ms[k].slots) munmap(ms[k].slots, ms[k].slots_bytes);
        free(ms[k].flags);
        if (ok && !ms[k].ok) *err = ms[k].err;
        ok = ok && ms[k].ok;
        sum->breaks += ms[k].breaks_n;
        sum->unexplained += ms[k].unexplained;
        sum->matched += ms[k].matched;
        sum->matched_by_amount += ms[k].matched_by_amount;
        for (int c = 0; c < GL_BREAK_CLASSES; c++) sum->by_class[c] += ms[k].by_class[c];
    }
    if (!ok && err->kind == GL_ERR_NONE)
        for (int k = 0; k < MATCHERS; k++)
            if (!ms[k].ok) *err = ms[k].err; /* pass 1 failed: pass 2 did not run */
    return ok;
}

/* ---------- outputs ---------- */

/* One break as read back from the breaks file. */
typedef struct {
    gl_break_class cls;
    const rec *s, *l;
} break_item;

typedef struct {
    char *data;
    size_t len, off;
} breaks_reader;

static bool breaks_next(breaks_reader *b, break_item *out) {
    if (b->off + 8 > b->len) return false;
    const uint8_t *h = (const uint8_t *)b->data + b->off;
    b->off += 8;
    out->cls = (gl_break_class)h[0];
    out->s = out->l = NULL;
    if (h[1] & 1) {
        out->s = (const rec *)(const void *)(b->data + b->off);
        b->off += out->s->size;
    }
    if (h[1] & 2) {
        out->l = (const rec *)(const void *)(b->data + b->off);
        b->off += out->l->size;
    }
    return true;
}

typedef struct {
    char key[GL_SETTLEMENT_KEY_MAX + 1], psp[GL_SETTLEMENT_KEY_MAX + 1];
    char bin[7], last4[5], token[GL_PAN_KEY_ID_MAX + 1 + GL_PAN_TOKEN_HEX + 1];
    char transfer_id[GL_ID_STR_LEN + 1];
} brk_text;


static void brk_texts(const break_item *b, brk_text *t) {
    memset(t, 0, sizeof *t);
    const rec *any = b->s ? b->s : b->l;
    str_of(t->key, sizeof t->key, rec_key(any), any->key_len);
    if (b->s) str_of(t->psp, sizeof t->psp, rec_psp(b->s), b->s->psp_len);
    if (b->l) gl_id_format(&b->l->transfer_id, t->transfer_id);
    if (b->s && b->s->card_len) {
        char card[CARD_TEXT_MAX + 1];
        str_of(card, sizeof card, rec_card(b->s), b->s->card_len);
        /* "bin:last4:key_id:token" -> bin, last4, "key_id:token" */
        char *c1 = strchr(card, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c1 && c2) {
            str_of(t->bin, sizeof t->bin, card, (size_t)(c1 - card));
            str_of(t->last4, sizeof t->last4, c1 + 1, (size_t)(c2 - c1 - 1));
            snprintf(t->token, sizeof t->token, "%s", c2 + 1);
        }
    }
}

static json_t *brk_json(uint64_t n, const break_item *b, const brk_text *t) {
    char at[40];
    json_t *o = json_pack("{s:I,s:s,s:b,s:s}", "n", (json_int_t)n, "class", gl_break_class_name(b->cls), "explained",
                          b->cls == GL_BREAK_TIMING, "reference", t->key);
    if (b->s) {
        gl_format_rfc3339_us(b->s->settled_us, at, sizeof at);
        json_object_set_new(o, "settlement", json_pack("{s:I,s:s,s:I,s:I,s:s#,s:s}", "line", (json_int_t)b->s->line_no,
                                                       "psp_id", t->psp, "amount", (json_int_t)b->s->amount, "fee",
                                                       (json_int_t)b->s->fee, "currency", b->s->currency, 3, "at", at));
        if (t->bin[0])
            json_object_set_new(json_object_get(o, "settlement"), "card",
                                json_pack("{s:s,s:s,s:s}", "bin", t->bin, "last4", t->last4, "token", t->token));
    }
    if (b->l) {
        gl_format_rfc3339_us(b->l->at_us, at, sizeof at);
        json_t *l = json_pack("{s:s,s:I,s:s#,s:s}", "transfer_id", t->transfer_id, "amount", (json_int_t)b->l->amount,
                              "currency", b->l->currency, 3, "at", at);
        if (b->l->has_fee) json_object_set_new(l, "fee", json_integer(b->l->fee));
        json_object_set_new(o, "ledger", l);
    }
    return o;
}

/* A break as the columns of recon_breaks (after run_id) and of the CSV
 * report, in that order; NULL when a side does not have the value. */
enum { BREAK_COLS = 18, COL_REFERENCE = 3, COL_PSP_ID = 4 };
static const char *const break_col_names[BREAK_COLS] = {
    "n",          "class",          "explained",         "reference",       "psp_id",
    "transfer_id", "line",          "ledger_amount",     "settlement_amount", "ledger_fee",
    "settlement_fee", "ledger_currency", "settlement_currency", "ledger_at",   "settlement_at",
    "card_bin",   "card_last4",     "card_token"};

typedef struct {
    const char *v[BREAK_COLS];
    char n[24], line[24], num[4][24], lcur[4], scur[4], lat[40], sat[40];
} break_row;

static const char *opt_i64(bool present, int64_t v, char buf[24]) {
    if (!present) return NULL;
    snprintf(buf, 24, "%lld", (long long)v);
    return buf;
}

static const char *opt_str(const char *s) { return s[0] ? s : NULL; }

static void break_row_fill(break_row *r, uint64_t n, const break_item *b, const brk_text *t) {
    memset(r, 0, sizeof *r);
    const rec *s = b->s, *l = b->l;
    r->v[0] = opt_i64(true, (int64_t)n, r->n);
    r->v[1] = gl_break_class_name(b->cls);
    r->v[2] = b->cls == GL_BREAK_TIMING ? "true" : "false";
    r->v[COL_REFERENCE] = opt_str(t->key);
    r->v[COL_PSP_ID] = opt_str(t->psp);
    r->v[5] = l ? t->transfer_id : NULL;
    r->v[6] = opt_i64(s, s ? (int64_t)s->line_no : 0, r->line);
    r->v[7] = opt_i64(l, l ? l->amount : 0, r->num[0]);
    r->v[8] = opt_i64(s, s ? s->amount : 0, r->num[1]);
    r->v[9] = opt_i64(l && l->has_fee, l ? l->fee : 0, r->num[2]);
    r->v[10] = opt_i64(s, s ? s->fee : 0, r->num[3]);
    if (l) memcpy(r->lcur, l->currency, 3), r->v[11] = r->lcur;
    if (s) memcpy(r->scur, s->currency, 3), r->v[12] = r->scur;
    if (l) gl_format_rfc3339_us(l->at_us, r->lat, sizeof r->lat), r->v[13] = r->lat;
    if (s) gl_format_rfc3339_us(s->settled_us, r->sat, sizeof r->sat), r->v[14] = r->sat;
    r->v[15] = opt_str(t->bin);
    r->v[16] = opt_str(t->last4);
    r->v[17] = opt_str(t->token);
}

/* CSV: absent is empty; the PSP's own strings are quoted, quotes doubled. */
static void break_row_csv(gl_buf *out, const break_row *r) {
    for (int c = 0; c < BREAK_COLS; c++) {
        if (c) gl_buf_append(out, ",", 1);
        const char *v = r->v[c] ? r->v[c] : "";
        if (c != COL_REFERENCE && c != COL_PSP_ID) {
            gl_buf_puts(out, v);
            continue;
        }
        gl_buf_append(out, "\"", 1);
        for (const char *p = v; *p; p++) gl_buf_append(out, *p == '"' ? "\"\"" : p, *p == '"' ? 2 : 1);
        gl_buf_append(out, "\"", 1);
    }
    gl_buf_append(out, "\n", 1);
}

/* COPY text format: absent is \N, the rest escaped. */
static void break_row_copy(gl_buf *out, const char *run, const break_row *r) {
    gl_buf_puts(out, run);
    for (int c = 0; c < BREAK_COLS; c++) {
        gl_buf_append(out, "\t", 1);
        if (r->v[c]) gl_buf_copy_text(out, r->v[c]);
        else gl_buf_append(out, "\\N", 2);
    }
    gl_buf_append(out, "\n", 1);
}

/* Sealed report files: written to "<path>.tmp", renamed into place when sealed. */
typedef struct {
    char path[4096], tmp[4200];
    FILE *f;
    gl_sealed_writer *w;
} sealed_file;

static bool sealed_open(sealed_file *s, const char *dir, const gl_id *run, const char *ext,
                        const gl_seal_keyring *keys, gl_error *err) {
    char id[GL_ID_STR_LEN + 1];
    gl_id_format(run, id);
    snprintf(s->path, sizeof s->path, "%s/recon-%s.%s.sealed", dir, id, ext);
    snprintf(s->tmp, sizeof s->tmp, "%s.tmp", s->path);
    int fd = open(s->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    s->f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (!s->f) {
        if (fd >= 0) close(fd);
        gl_error_set(err, GL_ERR_INTERNAL, "cannot create %s: %s", s->tmp, strerror(errno));
        return false;
    }
    s->w = gl_sealed_open_write(s->f, keys, err);
    return s->w != NULL;
}

static bool sealed_put(sealed_file *s, const gl_buf *b, gl_error *err) {
    return gl_sealed_write(s->w, b->data, b->len, err);
}

static bool sealed_finish(sealed_file *s, bool ok, gl_error *err) {
    if (ok) ok = gl_sealed_close(s->w, err);
    else gl_sealed_abort(s->w);
    s->w = NULL;
    if (s->f) {
        if (ok && (fflush(s->f) != 0 || fsync(fileno(s->f)) != 0)) {
            gl_error_set(err, GL_ERR_INTERNAL, "cannot write %s: %s", s->tmp, strerror(errno));
            ok = false;
        }
        fclose(s->f);
        s->f = NULL;
    }
    if (ok && rename(s->tmp, s->path) != 0) {
        gl_error_set(err, GL_ERR_INTERNAL, "cannot rename %s: %s", s->tmp, strerror(errno));
        ok = false;
    }
    if (!ok) unlink(s->tmp);
    return ok;
}

static json_t *summary_json(const job *j) {
    const gl_recon_summary *s = j->sum;
    char id[GL_ID_STR_LEN + 1], from[40], to[40], acct[GL_ID_STR_LEN + 1];
    gl_id_format(&s->run_id, id);
    gl_id_format(&j->o->clearing_account, acct);
    gl_format_rfc3339_us(j->o->from_us, from, sizeof from);
    gl_format_rfc3339_us(j->o->to_us, to, sizeof to);
    json_t *classes = json_object();
    for (int c = 0; c < GL_BREAK_CLASSES; c++)
        json_object_set_new(classes, gl_break_class_name((gl_break_class)c), json_integer((json_int_t)s->by_class[c]));
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o}", "run_id", id, "source",
                     gl_settlement_source_name(j->o->source), "clearing_account", acct, "from", from, "to", to, "lines",
                     (json_int_t)s->lines, "malformed_lines", (json_int_t)s->malformed, "pans_masked",
                     (json_int_t)s->pans_masked, "ledger_transfers", (json_int_t)s->ledger_transfers, "matched",
                     (json_int_t)s->matched, "matched_by_amount", (json_int_t)s->matched_by_amount, "breaks",
                     (json_int_t)s->breaks, "unexplained", (json_int_t)s->unexplained, "by_class", classes);
}

static bool copy_flush(PGconn *db, gl_buf *b, gl_error *err) {
    if (b->failed) {
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory building COPY data");
        return false;
    }
    if (b->len && PQputCopyData(db, b->data, (int)b->len) != 1) {
        gl_error_set(err, GL_ERR_DB, "COPY failed: %s", PQerrorMessage(db));
        return false;
    }
    gl_buf_reset(b);
    return true;
}

static bool copy_end(PGconn *db, bool ok, gl_error *err) {
    if (PQputCopyEnd(db, ok ? NULL : "recon aborted") != 1) ok = false;
    PGresult *r = PQgetResult(db);
    if (ok && PQresultStatus(r) != PGRES_COMMAND_OK) {
        gl_pg_error(err, db, r, "COPY");
        ok = false;
    }
    PQclear(r);
    while ((r = PQgetResult(db))) PQclear(r);
    return ok;
}

static bool copy_begin(PGconn *db, const char *sql, gl_error *err) {
    PGresult *r = PQexec(db, sql);
    bool ok = PQresultStatus(r) == PGRES_COPY_IN;
    if (!ok) gl_pg_error(err, db, r, "COPY");
    PQclear(r);
    return ok;
}

/* One pass over the breaks: the table, the sealed JSON and the sealed CSV. */
static bool write_breaks(job *j, PGconn *db, gl_error *err) {
    partition_set files[MATCHERS]; /* one "partition" per matcher: its breaks file */
    for (int k = 0; k < MATCHERS; k++) files[k] = (partition_set){.n = 1, .f = {j->w.breaks[k]}};
    gl_buf all = {0};
    if (!load_all(&all, files, 0, err)) {
        gl_buf_free(&all);
        return false;
    }
    breaks_reader br = {.data = all.data, .len = all.len};
    char run[GL_ID_STR_LEN + 1];
    gl_id_format(&j->sum->run_id, run);
    sealed_file js = {0}, cs = {0};
    gl_buf row = {0}, jb = {0}, cb = {0};
    bool ok = sealed_open(&js, j->o->out_dir, &j->sum->run_id, "json", j->o->seal_keys, err) &&
              sealed_open(&cs, j->o->out_dir, &j->sum->run_id, "csv", j->o->seal_keys, err);
    if (ok) {
        json_t *sum = summary_json(j);
        char *s = json_dumps(sum, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(sum);
        s[strlen(s) - 1] = '\0'; /* drop the closing brace: the breaks array follows */
        gl_buf_printf(&jb, "%s,\"items\":[", s); /* "breaks" is the count */
        free(s);
        for (int c = 0; c < BREAK_COLS; c++) gl_buf_printf(&cb, "%s%s", c ? "," : "", break_col_names[c]);
        gl_buf_append(&cb, "\n", 1);
    }
    ok = ok && gl_pg_run(db, "BEGIN", 0, NULL, err) &&
         copy_begin(db,
                    "COPY recon_breaks (run_id, n, class, explained, reference, psp_id, transfer_id, line_no, "
                    "ledger_amount, settlement_amount, ledger_fee, settlement_fee, ledger_currency, "
                    "settlement_currency, ledger_at, settlement_at, card_bin, card_last4, card_token) FROM STDIN",
                    err);
    bool copying = ok;
    break_item b;
    for (uint64_t n = 1; ok && breaks_next(&br, &b); n++) {
        brk_text t;
        brk_texts(&b, &t);
        break_row cols;
        break_row_fill(&cols, n, &b, &t);
        break_row_copy(&row, run, &cols);
        json_t *o = brk_json(n, &b, &t);
        char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(o);
        gl_buf_printf(&jb, "%s%s", n > 1 ? "," : "", s ? s : "null");
        free(s);
        break_row_csv(&cb, &cols);
        if (row.len >= COPY_FLUSH_BYTES) ok = copy_flush(db, &row, err);
        if (ok && jb.len >= COPY_FLUSH_BYTES) ok = sealed_put(&js, &jb, err), gl_buf_reset(&jb);
        if (ok && cb.len >= COPY_FLUSH_BYTES) ok = sealed_put(&cs, &cb, err), gl_buf_reset(&cb);
    }
    gl_buf_printf(&jb, "]}\n");
    if (copying) ok = copy_flush(db, &row, err) && copy_end(db, ok, err) && ok;
    ok = ok && sealed_put(&js, &jb, err) && sealed_put(&cs, &cb, err);
    ok = sealed_finish(&js, ok, err) && ok;
    ok = sealed_finish(&cs, ok, err) && ok;
    if (ok) ok = gl_pg_run(db, "COMMIT", 0, NULL, err);
    else PQclear(PQexec(db, "ROLLBACK"));
    snprintf(j->sum->json_path, sizeof j->sum->json_path, "%s", js.path);
    snprintf(j->sum->csv_path, sizeof j->sum->csv_path, "%s", cs.path);
    gl_buf_free(&row);
    gl_buf_free(&jb);
    gl_buf_free(&cb);
    free(br.data);
    return ok;
}

static bool write_malformed(job *j, PGconn *db, gl_error *err) {
    if (j->sum->malformed == 0) return true;
    gl_buf all = {0};
    if (!load_append(&all, j->w.malformed, err)) {
        gl_buf_free(&all);
        return false;
    }
    const char *data = all.data;
    size_t len = all.len;
    char run[GL_ID_STR_LEN + 1];
    gl_id_format(&j->sum->run_id, run);
    gl_buf b = {0};
    bool ok = copy_begin(db, "COPY recon_malformed (run_id, line_no, reason) FROM STDIN", err);
    for (size_t off = 0; ok && off < len;) {
        const char *nl = memchr(data + off, '\n', len - off);
        size_t n = nl ? (size_t)(nl - (data + off)) + 1 : len - off;
        gl_buf_printf(&b, "%s\t", run);
        gl_buf_append(&b, data + off, n);
        off += n;
        if (b.len >= COPY_FLUSH_BYTES) ok = copy_flush(db, &b, err);
    }
    if (ok) ok = copy_flush(db, &b, err);
    ok = copy_end(db, ok, err) && ok;
    gl_buf_free(&b);
    gl_buf_free(&all);
    return ok;
}

/* ---------- the run record and the audit trail ---------- */

/* The clearing account must exist here; its currency is every one of its transfers'. */
static bool load_clearing_account(job *j, PGconn *db, gl_error *err) {
    char acct[GL_ID_STR_LEN + 1];
    gl_id_format(&j->o->clearing_account, acct);
    const char *p[1] = {acct};
    PGresult *r = gl_pg_exec(db, "SELECT currency FROM accounts WHERE id = $1::uuid", 1, p, err);
    if (!r) return false;
    bool found = PQntuples(r) == 1;
    if (found) gl_pg_get_text(r, 0, 0, j->currency, sizeof j->currency);
    else gl_error_set(err, GL_ERR_NOT_FOUND, "clearing account %s not found in this region", acct);
    PQclear(r);
    return found;
}

static bool insert_run(job *j, PGconn *db, gl_error *err) {
    const gl_recon_options *o = j->o;
    char id[GL_ID_STR_LEN + 1], acct[GL_ID_STR_LEN + 1], from[48], to[48];
    gl_id_format(&j->sum->run_id, id);
    gl_id_format(&o->clearing_account, acct);
    gl_format_ts_us(o->from_us, from, sizeof from);
    gl_format_ts_us(o->to_us, to, sizeof to);
    const char *p[8] = {id, gl_settlement_source_name(o->source), o->file_path, acct, from, to, o->operator_name,
                        o->host};
    return gl_pg_run(db,
                     "INSERT INTO recon_runs (id, source, file_name, clearing_account, period_from, period_to, "
                     "operator, host) VALUES ($1::uuid, $2, $3, $4::uuid, $5::timestamptz, $6::timestamptz, $7, $8)",
                     8, p, err);
}

static bool finish_run(job *j, PGconn *db, bool ok, const uint8_t sha[32], const gl_error *failure, gl_error *err) {
    const gl_recon_summary *s = j->sum;
    char id[GL_ID_STR_LEN + 1], hex[65], v[9][24];
    gl_id_format(&s->run_id, id);
    gl_hex(sha, 32, hex);
    uint64_t vals[9] = {s->lines, s->malformed, s->ledger_transfers, s->matched, s->matched_by_amount,
                        s->breaks, s->unexplained, s->pans_masked, 0};
    for (int i = 0; i < 9; i++) snprintf(v[i], sizeof v[i], "%llu", (unsigned long long)vals[i]);
    const char *status = !ok ? "failed" : s->unexplained || s->malformed ? "breaks" : "clean";
    const char *p[13] = {id, status, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], ok ? NULL : failure->message,
                         ok ? hex : NULL, NULL};
    bool updated = gl_pg_run(db,
                             "UPDATE recon_runs SET finished_at = now(), status = $2, lines = $3::int8, "
                             "malformed_lines = $4::int8, ledger_transfers = $5::int8, matched = $6::int8, "
                             "matched_by_amount = $7::int8, breaks = $8::int8, unexplained = $9::int8, "
                             "pans_masked = $10::int8, error = $11 WHERE id = $1::uuid",
                             11, p, err);
    /* file_sha256 is set at insert time only; record it in the audit detail instead. */
    json_t *detail = summary_json(j);
    json_object_set_new(detail, "file", json_string(j->o->file_path));
    if (ok) json_object_set_new(detail, "file_sha256", json_string(hex));
    json_object_set_new(detail, "status", json_string(status));
    if (!ok) json_object_set_new(detail, "error", json_string(failure->message));
    gl_audit_event ev = {.actor = j->o->operator_name, .action = "recon.run", .object = id, .source = j->o->host,
                         .outcome = ok ? GL_AUDIT_SUCCESS : GL_AUDIT_FAILURE, .detail = detail};
    bool audited = gl_audit_append(db, &ev, 1, updated ? err : NULL);
    json_decref(detail);
    return updated && audited;
}

/* ---------- the run ---------- */

static unsigned partitions_for(const char *path, size_t budget) {
    struct stat st;
    if (strcmp(path, "-") == 0 || stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 64; /* size unknown */
    /* A partition in memory holds its settlement records (about 1.3 bytes per
     * byte of file), as many ledger records and the hash table: about 3 bytes
     * per byte of file must fit in the budget, for each matcher. */
    uint64_t per = budget / ((uint64_t)3 * MATCHERS); /* MATCHERS partitions are in memory at once */
    if (per == 0) per = 1;
    uint64_t n = ((uint64_t)st.st_size + per - 1) / per;
    n = (n + MATCHERS - 1) / MATCHERS * MATCHERS; /* every matcher gets as many partitions */
    return n > PARTITIONS_MAX ? PARTITIONS_MAX : (unsigned)n;
}

static bool workspace_open(job *j, gl_error *err) {
    const char *base = j->o->work_dir && j->o->work_dir[0] ? j->o->work_dir : getenv("TMPDIR");
    snprintf(j->w.dir, sizeof j->w.dir, "%s/geoledger-recon.XXXXXX", base && base[0] ? base : "/tmp");
    if (!mkdtemp(j->w.dir)) { /* mode 0700: the partitions hold settlement data */
        gl_error_set(err, GL_ERR_INTERNAL, "cannot create a work directory in %s: %s", base ? base : "/tmp",
                     strerror(errno));
        j->w.dir[0] = '\0';
        return false;
    }
    unsigned n = partitions_for(j->o->file_path, j->o->memory_budget);
    j->sum->partitions = n;
    char path[4200];
    bool ok = true;
    for (int k = 0; k < MATCHERS; k++) {
        snprintf(path, sizeof path, "%s/breaks.%d", j->w.dir, k);
        ok = (j->w.breaks[k] = fopen(path, "w+b")) != NULL && ok;
    }
    snprintf(path, sizeof path, "%s/malformed", j->w.dir);
    j->w.malformed = fopen(path, "w+b");
    if (!ok || !j->w.malformed) {
        gl_error_set(err, GL_ERR_INTERNAL, "cannot create work files in %s: %s", j->w.dir, strerror(errno));
        return false;
    }
    ok = parts_open(&j->w, &j->w.pass1_s, "s1", n, err) && parts_open(&j->w, &j->w.pass1_l, "l1", n, err);
    for (int k = 0; ok && k < MATCHERS; k++) {
        char s2[16], l2[16]; /* "s2.<int>": 8 bytes are too few for -Wformat-truncation at -O1 (make asan) */
        snprintf(s2, sizeof s2, "s2.%d", k);
        snprintf(l2, sizeof l2, "l2.%d", k);
        ok = parts_open(&j->w, &j->w.pass2_s[k], s2, n, err) && parts_open(&j->w, &j->w.pass2_l[k], l2, n, err);
    }
    return ok;
}

static void parts_remove(workspace *w, partition_set *ps, const char *name) {
    unsigned n = ps->n;
    parts_close(ps);
    for (unsigned i = 0; i < n; i++) {
        char path[4200];
        part_path(w, name, i, path, sizeof path);
        unlink(path);
    }
}

/* Closes and deletes every work file: nothing of the file outlives the run. */
static void workspace_close(job *j) {
    workspace *w = &j->w;
    parts_remove(w, &w->pass1_s, "s1");
    parts_remove(w, &w->pass1_l, "l1");
    char path[4200];
    for (int k = 0; k < MATCHERS; k++) {
        snprintf(path, sizeof path, "s2.%d", k);
        parts_remove(w, &w->pass2_s[k], path);
        snprintf(path, sizeof path, "l2.%d", k);
        parts_remove(w, &w->pass2_l[k], path);
        if (w->breaks[k]) fclose(w->breaks[k]);
        if (!w->dir[0]) continue;
        snprintf(path, sizeof path, "%s/breaks.%d", w->dir, k);
        unlink(path);
    }
    if (w->malformed) fclose(w->malformed);
    if (!w->dir[0]) return;
    snprintf(path, sizeof path, "%s/malformed", w->dir);
    unlink(path);
    rmdir(w->dir);
}

bool gl_recon_run(PGconn *db, const gl_recon_options *o, gl_recon_summary *out, gl_error *err) {
    memset(out, 0, sizeof *out);
    job *j = calloc(1, sizeof *j);
    if (!j) {
        gl_error_set(err, GL_ERR_INTERNAL, "out of memory");
        return false;
    }
    j->o = o;
    j->sum = out;
    uint8_t sha[32] = {0};
    gl_error failure;
    gl_error_clear(&failure);
    bool started = gl_id_new(1, &out->run_id, err);
    /* The run's id carries the partition's region code like every other row. */
    PGresult *code = started ? gl_pg_exec(db, "SELECT region_code FROM partition_info", 0, NULL, err) : NULL;
    if (code && PQntuples(code) == 1) started = gl_id_new((uint8_t)gl_pg_get_i64(code, 0, 0), &out->run_id, err);
    else started = false;
    PQclear(code);
    started = started && load_clearing_account(j, db, err) && insert_run(j, db, err);
    if (!started) {
        free(j);
        return false;
    }
    FILE *in = strcmp(o->file_path, "-") == 0 ? stdin : fopen(o->file_path, "rb");
    bool ok = in != NULL;
    if (!ok) gl_error_set(&failure, GL_ERR_INVALID, "cannot open %s: %s", o->file_path, strerror(errno));
    ok = ok && workspace_open(j, &failure) && read_inputs(j, db, in, sha, &failure);
    int64_t t0 = now_ms();
    ok = ok && match_all(j, &failure);
    int64_t t1 = now_ms();
    ok = ok && write_malformed(j, db, &failure) && write_breaks(j, db, &failure);
    out->match_ms = t1 - t0;
    out->output_ms = now_ms() - t1;
    if (in && in != stdin) fclose(in);
    workspace_close(j);
    bool recorded = finish_run(j, db, ok, sha, &failure, err);
    if (!ok && err) *err = failure;
    free(j);
    return ok && recorded;
}
