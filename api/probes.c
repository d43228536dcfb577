/*
 * probes.c — GET /readyz (each region's breaker and writers) and /metrics.
 */
#include "endpoints.h"

/* A region is up while its breaker is closed and its writers hold a connection. */
static bool region_up(gl_server *srv, int i) {
    return gl_breaker_state_now(&srv->breakers[i]) == GL_BREAKER_CLOSED && atomic_load(&srv->writers[i].up);
}

gl_response gl_readyz(gl_req *req) {
    json_t *regions = json_object(), *breakers = json_object();
    int up = 0;
    for (int i = 0; i < req->srv->regions.n_regions; i++) {
        bool ok = region_up(req->srv, i);
        up += ok;
        const char *name = req->srv->regions.regions[i].name;
        json_object_set_new(regions, name, json_string(ok ? "up" : "down"));
        json_object_set_new(breakers, name,
                            json_string(gl_breaker_state_name(gl_breaker_state_now(&req->srv->breakers[i]))));
    }
    const char *status = up == req->srv->regions.n_regions ? "ok" : up ? "degraded" : "down";
    gl_response r = gl_respond_json(up ? 200 : 503, json_pack("{s:s,s:o,s:o}", "status", status, "regions", regions,
                                                             "breakers", breakers));
    if (!up) snprintf(r.retry_after, sizeof r.retry_after, "5");
    return r;
}

gl_response gl_metrics_page(gl_req *req) {
    gl_server *srv = req->srv;
    for (int i = 0; i < srv->regions.n_regions; i++) {
        const gl_writer *w = &srv->writers[i];
        gl_pool *p = &srv->pools[i];
        gl_metrics_gauge_set(srv->metrics, GL_GAUGE_REGION_UP, i, region_up(srv, i) ? 1 : 0);
        gl_metrics_gauge_set(srv->metrics, GL_GAUGE_QUEUE_DEPTH, i, atomic_load(&w->depth_seen));
        gl_metrics_gauge_set(srv->metrics, GL_GAUGE_DB_POOL_SIZE, i, p->size);
        gl_metrics_gauge_set(srv->metrics, GL_GAUGE_DB_POOL_IN_USE, i, atomic_load(&p->in_use));
        gl_metrics_gauge_set(srv->metrics, GL_GAUGE_BREAKER_STATE, i, gl_breaker_state_now(&srv->breakers[i]));
        gl_metrics_gauge_set(srv->metrics, GL_GAUGE_BREAKER_OPENINGS, i,
                             (int64_t)gl_breaker_opened_total(&srv->breakers[i]));
        gl_metrics_gauge_set(srv->metrics, GL_GAUGE_DB_TIMEOUTS, i,
                             (int64_t)(atomic_load(&p->deadlines_fired) + atomic_load(&w->deadlines_fired)));
        gl_metrics_gauge_set(srv->metrics, GL_GAUGE_POOL_TIMEOUTS, i, (int64_t)atomic_load(&p->acquire_timeouts));
    }
    gl_response r = {.status = 200, .content_type = GL_METRICS_CONTENT_TYPE};
    r.body = gl_metrics_render(srv->metrics);
    return r;
}
