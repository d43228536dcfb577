#include "apply.h"

#include <string.h>

#include <jansson.h>

#include "currency.h"

static bool owner_valid(const char *s) {
    size_t n = strnlen(s, LEDGER_OWNER_MAX + 1);
    if (n == 0 || n > LEDGER_OWNER_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  strchr("._:@-/", ch) != NULL;
        if (!ok) return false;
    }
    return true;
}

/* References are client-chosen: printable ASCII, so they survive logs and CSV. */
static bool reference_valid(const char *s) {
    size_t n = strnlen(s, LEDGER_REFERENCE_MAX + 1);
    if (n > LEDGER_REFERENCE_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) return false;
    return true;
}

static bool kind_valid(const char *s) {
    size_t n = strnlen(s, LEDGER_KIND_MAX + 1);
    if (n == 0 || n > LEDGER_KIND_MAX || !(s[0] >= 'a' && s[0] <= 'z')) return false;
    for (size_t i = 1; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_')) return false;
    }
    return true;
}

/* Metadata is stored as jsonb: it must be a JSON object, checked here so one
 * caller's bad metadata is that command's error, not the whole batch's. */
static bool metadata_valid(const char *m) {
    if (!m) return true;
    size_t n = strnlen(m, LEDGER_METADATA_MAX + 1);
    if (n < 2 || n > LEDGER_METADATA_MAX) return false;
    json_t *j = json_loadb(m, n, JSON_REJECT_DUPLICATES, NULL);
    bool ok = json_is_object(j);
    json_decref(j);
    return ok;
}

static ledger_code validate_create_account(const ledger_cmd *c) {
    if (!gl_currency_find(c->currency)) return LEDGER_CURRENCY_INVALID;
    if (!kind_valid(c->account_kind)) return LEDGER_KIND_INVALID;
    uint32_t limits = LEDGER_AF_DEBITS_MUST_NOT_EXCEED_CREDITS | LEDGER_AF_CREDITS_MUST_NOT_EXCEED_DEBITS;
    if ((c->account_flags & ~limits) != 0 || (c->account_flags & limits) == limits)
        return LEDGER_ACCOUNT_FLAGS_INVALID;
    return LEDGER_OK;
}

static ledger_code validate_transfer(const ledger_cmd *c) {
    if (c->amount <= 0) return LEDGER_AMOUNT_INVALID;
    if (!gl_currency_find(c->currency)) return LEDGER_CURRENCY_INVALID;
    if (gl_id_cmp(&c->debit_account_id, &c->credit_account_id) == 0) return LEDGER_SAME_ACCOUNT;
    if (c->timeout_s < 0 || c->timeout_s > LEDGER_TIMEOUT_MAX_S || (c->timeout_s && !c->pending))
        return LEDGER_TIMEOUT_INVALID;
    return LEDGER_OK;
}

ledger_code ledger_validate_cmd(const ledger_cmd *c) {
    if (!owner_valid(c->owner)) return LEDGER_OWNER_INVALID;
    if (!reference_valid(c->reference)) return LEDGER_REFERENCE_INVALID;
    if (!metadata_valid(c->metadata)) return LEDGER_METADATA_INVALID;
    if (!gl_id_is_nil(&c->mandate_id) && c->kind != LEDGER_CMD_TRANSFER) return LEDGER_MANDATE_INVALID;
    switch (c->kind) {
    case LEDGER_CMD_CREATE_ACCOUNT: return validate_create_account(c);
    case LEDGER_CMD_TRANSFER: return validate_transfer(c);
    case LEDGER_CMD_POST:
    case LEDGER_CMD_REVERSE: return c->amount < 0 ? LEDGER_AMOUNT_INVALID : LEDGER_OK;
    case LEDGER_CMD_VOID:
    case LEDGER_CMD_EXPIRE:
    case LEDGER_CMD_CLOSE_ACCOUNT: return c->amount != 0 ? LEDGER_AMOUNT_INVALID : LEDGER_OK;
    }
    return LEDGER_OK;
}

ledger_code ledger_check_accounts(const ledger_acct *dr, const ledger_acct *cr, const char *currency) {
    if (!dr || !cr) return LEDGER_ACCOUNT_NOT_FOUND;
    if ((dr->flags | cr->flags) & LEDGER_AF_CLOSED) return LEDGER_ACCOUNT_CLOSED;
    if (strcmp(dr->currency, currency) != 0 || strcmp(cr->currency, currency) != 0)
        return LEDGER_CURRENCY_MISMATCH;
    return LEDGER_OK;
}

#define US_PER_DAY (86400LL * 1000000)

static int64_t utc_day(int64_t now_us) { return now_us / US_PER_DAY; } /* batch clocks are after 1970 */

ledger_code ledger_check_mandate(const ledger_mandate *m, const ledger_cmd *c, int64_t now_us) {
    if (!m || m->revoked || now_us >= m->expires_at_us || gl_id_cmp(&m->wallet_account_id, &c->debit_account_id) != 0 ||
        strcmp(m->grantee, c->owner) != 0 || strcmp(m->currency, c->currency) != 0)
        return LEDGER_MANDATE_INVALID;
    if (c->amount > m->max_per_charge) return LEDGER_MANDATE_LIMIT_EXCEEDED;
    int64_t spent = m->day == utc_day(now_us) ? m->spent_today : 0;
    /* spent <= max_per_day always holds, so the subtraction cannot overflow. */
    if (c->amount > m->max_per_day - spent) return LEDGER_MANDATE_LIMIT_EXCEEDED;
    return LEDGER_OK;
}

void ledger_mandate_consume(ledger_mandate *m, int64_t amount, int64_t now_us) {
    int64_t today = utc_day(now_us);
    if (m->day != today) {
        m->day = today;
        m->spent_today = 0;
    }
    m->spent_today += amount; /* checked by ledger_check_mandate: stays <= max_per_day */
    m->touched = true;
}

typedef struct {
    int64_t debits_pending, debits_posted, credits_pending, credits_posted;
} counters;

static counters counters_of(const ledger_acct *a) {
    return (counters){a->debits_pending, a->debits_posted, a->credits_pending, a->credits_posted};
}

/* Limits checked on the state after the change; __int128 so the sum of two
 * int64 counters cannot overflow inside the comparison. */
static ledger_code check_limits(uint32_t flags, const counters *k) {
    if ((flags & LEDGER_AF_DEBITS_MUST_NOT_EXCEED_CREDITS) &&
        (__int128)k->debits_pending + k->debits_posted > (__int128)k->credits_posted)
        return LEDGER_INSUFFICIENT_FUNDS;
    if ((flags & LEDGER_AF_CREDITS_MUST_NOT_EXCEED_DEBITS) &&
        (__int128)k->credits_pending + k->credits_posted > (__int128)k->debits_posted)
        return LEDGER_EXCEEDS_DEBITS;
    return LEDGER_OK;
}

static bool add_overflows(int64_t a, int64_t b, int64_t *out) { return __builtin_add_overflow(a, b, out); }

static void store(ledger_acct *a, const counters *k) {
    a->debits_pending = k->debits_pending;
    a->debits_posted = k->debits_posted;
    a->credits_pending = k->credits_pending;
    a->credits_posted = k->credits_posted;
    a->version++;
    a->touched = true;
}

/* Applies deltas to the debit side of dr and the credit side of cr, all or nothing. */
static ledger_code apply_deltas(ledger_acct *dr, ledger_acct *cr, int64_t pending_delta, int64_t posted_delta) {
    counters d = counters_of(dr), c = counters_of(cr);
    if (add_overflows(d.debits_pending, pending_delta, &d.debits_pending) ||
        add_overflows(d.debits_posted, posted_delta, &d.debits_posted) ||
        add_overflows(c.credits_pending, pending_delta, &c.credits_pending) ||
        add_overflows(c.credits_posted, posted_delta, &c.credits_posted))
        return LEDGER_BALANCE_OVERFLOW;
    /* Debit side first: a payer without funds is the more useful answer. */
    ledger_code rc = check_limits(dr->flags, &d);
    if (rc == LEDGER_OK) rc = check_limits(cr->flags, &c);
    if (rc != LEDGER_OK) return rc;
    store(dr, &d);
    store(cr, &c);
    return LEDGER_OK;
}

ledger_code ledger_apply_transfer(ledger_acct *dr, ledger_acct *cr, int64_t amount, bool pending) {
    if (amount <= 0) return LEDGER_AMOUNT_INVALID;
    return pending ? apply_deltas(dr, cr, amount, 0) : apply_deltas(dr, cr, 0, amount);
}

ledger_code ledger_apply_resolve(ledger_acct *dr, ledger_acct *cr, int64_t held, int64_t posted) {
    if (held <= 0 || posted < 0 || posted > held) return LEDGER_AMOUNT_INVALID;
    return apply_deltas(dr, cr, -held, posted);
}

static ledger_code resolved_code(char state) {
    switch (state) {
    case 'P': return LEDGER_ALREADY_POSTED;
    case 'V': return LEDGER_ALREADY_VOIDED;
    default: return LEDGER_PENDING_EXPIRED;
    }
}

ledger_code ledger_check_resolve(const ledger_target *t, ledger_cmd_kind kind, int64_t requested,
                                 int64_t now_us, int64_t *amount_out) {
    if (!t) return LEDGER_PENDING_NOT_FOUND;
    if (!(t->flags & LEDGER_TF_PENDING)) return LEDGER_NOT_PENDING;
    if (t->state != 'p') return resolved_code(t->state);
    bool timed_out = t->expires_at_us != 0 && now_us >= t->expires_at_us;
    if (kind == LEDGER_CMD_EXPIRE) {
        if (!timed_out) return LEDGER_PENDING_NOT_EXPIRED;
        *amount_out = t->amount;
        return LEDGER_OK;
    }
    if (timed_out) return LEDGER_PENDING_EXPIRED;
    if (kind == LEDGER_CMD_VOID) {
        *amount_out = t->amount;
        return LEDGER_OK;
    }
    if (requested < 0) return LEDGER_AMOUNT_INVALID;
    if (requested > t->amount) return LEDGER_EXCEEDS_PENDING_AMOUNT;
    *amount_out = requested == 0 ? t->amount : requested;
    return LEDGER_OK;
}

ledger_code ledger_check_reverse(const ledger_target *t, int64_t requested, int64_t *amount_out) {
    if (!t) return LEDGER_TRANSFER_NOT_FOUND;
    uint32_t not_reversible =
        LEDGER_TF_PENDING | LEDGER_TF_VOID | LEDGER_TF_EXPIRE | LEDGER_TF_REVERSAL;
    if (t->flags & not_reversible) return LEDGER_NOT_REVERSIBLE;
    if (requested < 0) return LEDGER_AMOUNT_INVALID;
    int64_t left = t->amount - t->amount_reversed; /* both in 0..INT64_MAX, no overflow */
    if (left <= 0 || requested > left) return LEDGER_EXCEEDS_REVERSIBLE_AMOUNT;
    *amount_out = requested == 0 ? left : requested;
    return LEDGER_OK;
}
