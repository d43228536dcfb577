/*
 * currency.h — ISO 4217 alpha-3 codes and their minor-unit exponents.
 */
#ifndef GL_CURRENCY_H
#define GL_CURRENCY_H

#include <stdbool.h>

typedef struct {
    char code[4];     /* "EUR", NUL-terminated */
    unsigned numeric; /* ISO 4217 numeric code, e.g. 978 */
    int exponent;     /* minor-unit digits: JPY 0, USD 2, BHD 3, CLF 4 */
} gl_currency;

/* Looks up an active ISO 4217 code (exactly 3 uppercase letters). NULL if unknown. */
const gl_currency *gl_currency_find(const char *code);
/* Number of currencies in the table, and the i-th (for listing/tests). */
int gl_currency_count(void);
const gl_currency *gl_currency_at(int i);

#endif
