#include "settings.h"

#include <assert.h>
#include <string.h>

bool gl_settings_open(config_t *cf, const char *path, const config_setting_t **ledgerd, gl_error *err) {
    assert(cf && path && ledgerd);
    *ledgerd = NULL;
    if (config_read_file(cf, path) != CONFIG_TRUE) {
        gl_error_set(err, GL_ERR_CONFIG, "%s:%d: %s", path, config_error_line(cf), config_error_text(cf));
        return false;
    }
    *ledgerd = config_lookup(cf, "ledgerd");
    if (!*ledgerd) gl_error_set(err, GL_ERR_CONFIG, "%s: no ledgerd group", path);
    return *ledgerd != NULL;
}

bool gl_settings_str(const config_setting_t *g, const char *name, char *dst, size_t cap, bool required,
                     gl_error *err) {
    assert(g && name && dst && cap > 0);
    const char *v = NULL;
    if (!config_setting_lookup_string(g, name, &v)) {
        if (required) gl_error_set(err, GL_ERR_CONFIG, "%s: %s is required", config_setting_name(g), name);
        return !required;
    }
    if (strlen(v) >= cap) {
        gl_error_set(err, GL_ERR_CONFIG, "%s: %s is too long", config_setting_name(g), name);
        return false;
    }
    memcpy(dst, v, strlen(v) + 1);
    return true;
}

bool gl_settings_int(const config_setting_t *g, const char *name, int min, int max, int *dst, gl_error *err) {
    assert(g && name && dst && min <= max);
    int v;
    if (!config_setting_lookup_int(g, name, &v)) return true;
    if (v < min || v > max) {
        gl_error_set(err, GL_ERR_CONFIG, "%s: %s must be %d..%d", config_setting_name(g), name, min, max);
        return false;
    }
    *dst = v;
    return true;
}
