#include "kinds.h"

#include <assert.h>
#include <string.h>

#include "ledger.h"

/* The one table (README "Account kinds" and openapi.yaml repeat it for readers). */
static const gl_account_kind kinds[] = {
    {"wallet", GL_NORMAL_CREDIT, false, "a user's wallet: what the platform owes the user"},
    {"merchant", GL_NORMAL_CREDIT, false, "a merchant's or mini-app's balance: what the platform owes it"},
    {"earnings", GL_NORMAL_CREDIT, false, "a driver's or seller's earnings not yet paid out"},
    {"fee", GL_NORMAL_CREDIT, false, "the platform's fee revenue"},
    {"escrow", GL_NORMAL_CREDIT, false, "money held for an order or a ride until it completes"},
    {"funding", GL_NORMAL_DEBIT, true, "where money enters the ledger (top-ups from a bank or card)"},
    {"issuance", GL_NORMAL_DEBIT, true, "where stored value or promotional credit is issued"},
    {"clearing", GL_NORMAL_DEBIT, true, "money between the ledger and a payment processor, not yet settled"},
    {"settlement", GL_NORMAL_DEBIT, true, "what a processor or bank owes the platform until it settles"},
};

const gl_account_kind *gl_account_kind_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i].name, name) == 0) return &kinds[i];
    return NULL;
}

const gl_account_kind *gl_account_kinds(int *n) {
    assert(n);
    *n = (int)(sizeof kinds / sizeof kinds[0]);
    return kinds;
}

uint32_t gl_account_kind_floor_flag(const gl_account_kind *k) {
    assert(k);
    if (k->may_go_below_zero) return 0;
    return k->normal == GL_NORMAL_CREDIT ? LEDGER_AF_DEBITS_MUST_NOT_EXCEED_CREDITS
                                         : LEDGER_AF_CREDITS_MUST_NOT_EXCEED_DEBITS;
}
