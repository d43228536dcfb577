/*
 * events_ep.c — GET /v1/events: the outbox (ledger/events.h) as a feed.
 *
 * One region (?region=eu) or the merged view of every region the token may
 * act in. The cursor names a position per region: "eu:120,us:7" (a region it
 * does not name starts at 0). A region's events come in seq order, which is
 * commit order with no gaps, so following next_cursor never skips an event
 * and never returns one twice. The merged view interleaves the regions by
 * event time and moves each region's position only past what it returned.
 * A region that cannot answer keeps its position (the page says so in
 * `regions_unavailable`): the others are served, nothing is skipped.
 *
 * A principal sees the events it is an owner of (its accounts, its mandates,
 * what it did); admin sees all.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ledger/events.h"
#include "../ledger/pg.h"
#include "../ledger/render.h"
#include "../ledger/text.h"
#include "endpoints.h"
#include "reads.h"
#include "request.h"

#define EVENTS_LIMIT_DEFAULT 100
#define EVENTS_CURSOR_MAX 512
/* At most this many events are looked at per region and request, whatever
 * the principal may see of them: a reader of rare events pages through the
 * rest quickly, and no request scans a region's whole history. */
#define EVENTS_SCAN_MAX 10000

typedef struct {
    const gl_region *region;
    int64_t pos;        /* the request's position */
    int64_t scanned_to; /* where this read ended */
    int64_t head;
    ledger_event *ev;
    int n, used; /* read, and put on the page */
    bool down;
} region_feed;

/* "eu:120,us:7" into each region's position; false for anything else
 * (an empty part, a region twice, an unknown region, a bad number). */
static bool parse_cursor(gl_req *req, const char *cursor, region_feed *f, int nf) {
    if (!cursor[0] || strlen(cursor) > EVENTS_CURSOR_MAX) return false;
    char buf[EVENTS_CURSOR_MAX + 1];
    snprintf(buf, sizeof buf, "%s", cursor);
    const gl_region *seen[EVENTS_CURSOR_MAX / 3];
    int n_seen = 0;
    for (char *part = buf, *next; part; part = next) {
        next = strchr(part, ',');
        if (next) *next++ = '\0';
        char *colon = strchr(part, ':');
        if (!colon || colon == part) return false;
        *colon = '\0';
        const gl_region *r = gl_region_by_name(&req->srv->regions, part);
        int64_t pos;
        /* A position is a seq: far below INT64_MAX, so position + window never overflows. */
        if (!r || !gl_parse_i64(colon + 1, 0, LEDGER_EVENTS_SEQ_MAX, &pos)) return false;
        for (int k = 0; k < n_seen; k++)
            if (seen[k] == r) return false;
        seen[n_seen++] = r;
        for (int i = 0; i < nf; i++)
            if (f[i].region == r) f[i].pos = pos; /* a region not read now is not on this page */
    }
    return true;
}

static void read_region(gl_req *req, region_feed *f, int limit, uint32_t types) {
    PGconn *db = gl_read_conn(req, f->region);
    ledger_events_query q = {.after = f->pos, .limit = limit, .principal = gl_is_admin(req) ? NULL : req->claims.sub,
                             .types = types, .scan_max = EVENTS_SCAN_MAX};
    gl_error err;
    gl_error_clear(&err);
    f->n = db ? ledger_events_list(db, &q, f->ev, &f->scanned_to, &f->head, &err) : -1;
    if (f->n < 0 && db) gl_read_failed(req, f->region, &err);
    if (db) gl_read_release(req, f->region);
    f->down = f->n < 0;
    if (f->down) {
        f->n = 0;
        f->scanned_to = f->head = f->pos;
    }
}

/* The next event of the merged view: the earliest, ties by region order. */
static region_feed *next_feed(region_feed *f, int nf) {
    region_feed *best = NULL;
    for (int i = 0; i < nf; i++) {
        if (f[i].used >= f[i].n) continue;
        if (!best || f[i].ev[f[i].used].created_at_us < best->ev[best->used].created_at_us) best = &f[i];
    }
    return best;
}

/* Where a region resumes: past everything it read when all of it is on the
 * page, else just past the last of its events the page holds. */
static int64_t resume_at(const region_feed *f) {
    if (f->used == f->n) return f->scanned_to;
    return f->used > 0 ? f->ev[f->used - 1].seq : f->pos;
}

static gl_response page(region_feed *f, int nf, int limit) {
    json_t *data = json_array(), *down = json_array();
    for (int k = 0; k < limit; k++) {
        region_feed *b = next_feed(f, nf);
        if (!b) break;
        json_array_append_new(data, gl_event_json(&b->ev[b->used++], b->region->name));
    }
    char cursor[EVENTS_CURSOR_MAX + 1] = "";
    bool more = false;
    for (int i = 0; i < nf; i++) {
        int64_t at = resume_at(&f[i]);
        more = more || at < f[i].head || f[i].used < f[i].n;
        size_t len = strlen(cursor);
        snprintf(cursor + len, sizeof cursor - len, "%s%s:%lld", len ? "," : "", f[i].region->name, (long long)at);
        if (f[i].down) json_array_append_new(down, json_string(f[i].region->name));
    }
    json_t *o = json_pack("{s:o,s:b,s:s}", "data", data, "has_more", more, "next_cursor", cursor);
    if (json_array_size(down)) json_object_set_new(o, "regions_unavailable", down);
    else json_decref(down);
    return gl_respond_json(200, o);
}

/* The regions of the request: ?region= or every one the token may act in. */
static int pick_regions(gl_req *req, region_feed *f, gl_response *fail) {
    const char *only = gl_query(req, "region");
    int nf = 0;
    if (only) {
        const gl_region *r = gl_region_by_name(&req->srv->regions, only);
        if (!r) *fail = gl_respond_error(req, 400, "invalid_value", "no such region", "region");
        else if (!gl_region_allowed(req, r)) *fail = gl_region_forbidden(req, "region");
        else f[nf++].region = r;
        return r && nf ? nf : -1;
    }
    for (int i = 0; i < req->srv->regions.n_regions; i++)
        if (gl_region_allowed(req, &req->srv->regions.regions[i])) f[nf++].region = &req->srv->regions.regions[i];
    if (nf == 0) *fail = gl_region_forbidden(req, "region");
    return nf ? nf : -1;
}

gl_response gl_list_events(gl_req *req) {
    gl_response fail;
    int64_t limit = EVENTS_LIMIT_DEFAULT;
    uint32_t types = 0;
    const char *after = gl_query(req, "after"), *type_list = gl_query(req, "types"), *lim = gl_query(req, "limit");
    if (lim && !gl_parse_i64(lim, 1, LEDGER_EVENTS_PAGE_MAX, &limit))
        return gl_respond_error(req, 400, "invalid_value", "limit must be 1..1000", "limit");
    if (type_list && (!ledger_event_types_parse(type_list, &types) || types == 0))
        return gl_respond_error(req, 400, "invalid_value", "types must be event types separated by commas", "types");
    int nregions = req->srv->regions.n_regions;
    region_feed *f = calloc((size_t)nregions, sizeof *f);
    if (!f) return gl_respond_error(req, 500, "internal", "out of memory", NULL);
    int nf = pick_regions(req, f, &fail);
    if (nf > 0 && after && !parse_cursor(req, after, f, nf)) {
        fail = gl_respond_error(req, 400, "invalid_value", "after must be a next_cursor of this feed", "after");
        nf = -1;
    }
    bool ok = nf > 0;
    for (int i = 0; ok && i < nf; i++) {
        f[i].ev = calloc((size_t)limit, sizeof *f[i].ev);
        if (!f[i].ev) {
            fail = gl_respond_error(req, 500, "internal", "out of memory", NULL);
            ok = false;
        }
    }
    for (int i = 0; ok && i < nf; i++) read_region(req, &f[i], (int)limit, types);
    gl_response resp = ok ? page(f, nf, (int)limit) : fail;
    for (int i = 0; i < nregions; i++) free(f[i].ev);
    free(f);
    return resp;
}
