/*
 * kinds.h — the account kinds the API knows: each one's normal balance and
 * whether it may go below zero (API.md "Account kinds", DESIGN §6).
 *
 * "Below zero" is from the kind's normal side: a credit-normal account (a
 * user's wallet: money the platform owes the user) is below zero when its
 * debits exceed its credits. An account that may not go below zero gets the
 * engine's limit flag for its side whoever creates it, so no principal can
 * spend money an account does not hold. The kinds that may go below zero are
 * where money enters or leaves the ledger (funding, issuance) or sits between
 * systems (clearing, settlement); an account of one of them can create money
 * inside the ledger, so only a principal with the `accounts:issue` scope or
 * `admin` may open one (api/handlers.c enforces that).
 *
 * The engine itself accepts any kind that matches the account_kind domain
 * (`ledgerctl` and operators may use their own); the API accepts only these.
 */
#ifndef GL_KINDS_H
#define GL_KINDS_H

#include <stdbool.h>
#include <stdint.h>

typedef enum { GL_NORMAL_CREDIT, GL_NORMAL_DEBIT } gl_normal_balance;

typedef struct {
    const char *name;
    gl_normal_balance normal;
    bool may_go_below_zero; /* true: creating one needs accounts:issue or admin */
    const char *what;       /* one line for the docs and error messages */
} gl_account_kind;

/* The kind named `name`, or NULL. */
const gl_account_kind *gl_account_kind_find(const char *name);
/* The table, in documentation order; *n gets its length. */
const gl_account_kind *gl_account_kinds(int *n);
/* The engine flag that keeps an account of kind k at or above zero on its
 * normal side (LEDGER_AF_...), or 0 for a kind that may go below zero. */
uint32_t gl_account_kind_floor_flag(const gl_account_kind *k);

#endif
