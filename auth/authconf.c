#include "authconf.h"

#include <assert.h>
#include <string.h>

#include "../regions/settings.h"

bool gl_auth_config_read(const config_setting_t *ledgerd, gl_auth_config *c, gl_error *err) {
    assert(ledgerd && c);
    memset(c, 0, sizeof *c);
    c->skew_s = 60;
    c->max_lifetime_s = 86400;
    const config_setting_t *a = config_setting_get_member(ledgerd, "auth");
    if (!a) {
        gl_error_set(err, GL_ERR_CONFIG, "ledgerd: the auth group is required (every request is authenticated)");
        return false;
    }
    return gl_settings_str(a, "algorithm", c->alg, sizeof c->alg, true, err) &&
           gl_settings_str(a, "key_file", c->key_file, sizeof c->key_file, true, err) &&
           gl_settings_str(a, "issuer", c->issuer, sizeof c->issuer, true, err) &&
           gl_settings_str(a, "audience", c->audience, sizeof c->audience, true, err) &&
           gl_settings_int(a, "clock_skew_s", 0, GL_JWT_CLOCK_SKEW_S_MAX, &c->skew_s, err) &&
           gl_settings_int(a, "max_token_lifetime_s", 0, GL_JWT_LIFETIME_S_MAX, &c->max_lifetime_s, err);
}

bool gl_auth_config_load(const char *path, gl_auth_config *c, gl_error *err) {
    assert(path && c);
    config_t cf;
    config_init(&cf);
    const config_setting_t *g = NULL;
    bool ok = gl_settings_open(&cf, path, &g, err) && gl_auth_config_read(g, c, err);
    config_destroy(&cf);
    return ok;
}

void gl_auth_jwt_config(const gl_auth_config *c, gl_jwt_config *jc) {
    assert(c && jc);
    gl_jwt_config_init(jc);
    jc->alg = c->alg;
    jc->issuer = c->issuer;
    jc->audience = c->audience;
    jc->clock_skew_s = c->skew_s;
    jc->max_lifetime_s = c->max_lifetime_s;
}
