/*
 * settings.h — reading groups of ledger.conf (libconfig): the `ledgerd` group
 * for ledgerd's settings (api/config.c) and the token settings that ledgerctl
 * needs as well (auth/authconf.c), the `redis` group (api/stream.c). The
 * regions themselves are read by regions.h, with file:line in every message;
 * here a message names the group and the setting ("ledgerd: port must be ...").
 */
#ifndef GL_SETTINGS_H
#define GL_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>

#include <libconfig.h>

#include "../ledger/error.h"

/* Reads `path` into cf (config_init'ed by the caller, who config_destroy()s it
 * either way) and finds its top-level `ledgerd` group. */
bool gl_settings_open(config_t *cf, const char *path, const config_setting_t **ledgerd, gl_error *err);

/* g.name into dst[cap]; an absent setting is an error only when required (dst untouched). */
bool gl_settings_str(const config_setting_t *g, const char *name, char *dst, size_t cap, bool required,
                     gl_error *err);

/* g.name into *dst when present; min..max, else an error. */
bool gl_settings_int(const config_setting_t *g, const char *name, int min, int max, int *dst, gl_error *err);

#endif
