/*
 * authconf.h — the token settings, `ledgerd.auth` in ledger.conf:
 *
 *   ledgerd = { ...
 *     auth = { algorithm = "HS256"; key_file = "var/dev-hs256.key";
 *              issuer = "geoledger-dev"; audience = "geoledger"; clock_skew_s = 60;
 *              max_token_lifetime_s = 86400; };   # exp - iat at most (iat required); 0 = no limit
 *   };
 *
 * ledgerd verifies tokens under them (api/config.c reads them with the rest
 * of its group); `ledgerctl token` signs under the same ones, so a token it
 * mints is one ledgerd accepts.
 */
#ifndef GL_AUTHCONF_H
#define GL_AUTHCONF_H

#include <stdbool.h>

#include <libconfig.h>

#include "../ledger/error.h"
#include "jwt.h"

typedef struct {
    char alg[8];
    char key_file[1024];
    char issuer[128];
    char audience[128];
    int skew_s;
    int max_lifetime_s; /* exp - iat at most; 0 = no limit */
} gl_auth_config;

/* The `auth` group of the `ledgerd` group g (required), over the defaults. */
bool gl_auth_config_read(const config_setting_t *ledgerd, gl_auth_config *c, gl_error *err);

/* Only ledgerd.auth of the file at path: what `ledgerctl token` needs. */
bool gl_auth_config_load(const char *path, gl_auth_config *c, gl_error *err);

/* The verifier's settings (jc borrows c's strings). */
void gl_auth_jwt_config(const gl_auth_config *c, gl_jwt_config *jc);

#endif
