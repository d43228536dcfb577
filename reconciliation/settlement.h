/*
 * settlement.h — streaming readers for PSP settlement files.
 *
 * A reader turns one file (Stripe itemized payout reconciliation, Adyen
 * settlement details, or the generic CSV documented in reconciliation/FORMATS.md)
 * into a stream of normalized `gl_settlement_line`s, one callback per data row,
 * in bounded memory whatever the file size.
 *
 * PCI DSS 3.4.1: every field is passed through the PAN guard (pan.h) inside the
 * reader, before the line is handed out: a full card number never leaves this
 * module, not in a line, not in an error message.
 *
 * Malformed rows are never skipped silently: each one is reported to the
 * `on_error` callback with its line number and a reason (the row's text is not
 * echoed, it may hold card data), and counted in `gl_settlement_stats`.
 */
#ifndef GL_SETTLEMENT_H
#define GL_SETTLEMENT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../ledger/error.h"
#include "pan.h"

typedef enum {
    GL_SOURCE_STRIPE,
    GL_SOURCE_ADYEN,
    GL_SOURCE_GENERIC,
} gl_settlement_source;

#define GL_SETTLEMENT_KEY_MAX 128 /* = the ledger's reference limit */
#define GL_SETTLEMENT_TYPE_MAX 64

typedef struct {
    uint64_t line_no;                      /* physical line where the row starts (header = 1) */
    char reference[GL_SETTLEMENT_KEY_MAX + 1]; /* merchant reference; "" when the row has none */
    char psp_id[GL_SETTLEMENT_KEY_MAX + 1];    /* PSP's own id for the payment; "" when none */
    char type[GL_SETTLEMENT_TYPE_MAX + 1];     /* reporting_category / Type / type, lower case */
    char currency[4];                      /* ISO 4217, upper case, known to ledger/currency.h */
    int64_t gross_minor;                   /* signed: refunds and chargebacks are negative */
    int64_t fee_minor;                     /* PSP fee, > 0 as charged (< 0: a fee given back) */
    int64_t net_minor;                     /* gross - fee, as stated by the file (checked) */
    int64_t created_at_us;                 /* payment time, µs since the Unix epoch (UTC) */
    int64_t settled_at_us;                 /* available_on / settlement date; 0 when absent (Adyen: always) */
    gl_pan_masked card;                    /* card found in any field; card.present false if none */
} gl_settlement_line;

typedef struct {
    uint64_t rows;        /* data rows read (good + bad) */
    uint64_t good;        /* rows handed to on_line */
    uint64_t bad;         /* rows reported to on_error */
    uint64_t pans_masked; /* PANs found and masked, over all fields */
} gl_settlement_stats;

/* Return false from on_line to stop the read (gl_settlement_read then fails with
 * the error the callback set). */
typedef bool (*gl_settlement_line_fn)(void *arg, const gl_settlement_line *line, gl_error *err);
typedef void (*gl_settlement_error_fn)(void *arg, uint64_t line_no, const char *reason);

/* "stripe" | "adyen" | "generic"; false if unknown. */
bool gl_settlement_source_parse(const char *name, gl_settlement_source *out);
const char *gl_settlement_source_name(gl_settlement_source s);

/*
 * Reads `f` to the end. Fails (false, err set) only when the file cannot be
 * read as a whole: I/O error, missing required header columns, a row longer
 * than the record limit, or on_line returning false. A bad data row is not a
 * failure: it goes to on_error and the read goes on.
 * `pan_keys` is the HMAC key ring used to tokenize any card number found.
 */
bool gl_settlement_read(FILE *f, gl_settlement_source source, const gl_pan_keyring *pan_keys,
                        gl_settlement_line_fn on_line, gl_settlement_error_fn on_error, void *arg,
                        gl_settlement_stats *stats, gl_error *err);

#endif
