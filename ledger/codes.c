#include <string.h>

#include "ledger.h"

/* Stable, snake_case names: they appear in the CLI's JSON and the HTTP API. */
static const char *const code_names[LEDGER_CODE_COUNT] = {
    [LEDGER_OK] = "ok",
    [LEDGER_EXISTS] = "exists",
    [LEDGER_EXISTS_WITH_DIFFERENT_FIELDS] = "exists_with_different_fields",
    [LEDGER_LINKED_EVENT_FAILED] = "linked_event_failed",
    [LEDGER_LINKED_EVENT_CHAIN_OPEN] = "linked_event_chain_open",
    [LEDGER_AMOUNT_INVALID] = "amount_invalid",
    [LEDGER_CURRENCY_INVALID] = "currency_invalid",
    [LEDGER_CURRENCY_MISMATCH] = "currency_mismatch",
    [LEDGER_SAME_ACCOUNT] = "same_account",
    [LEDGER_ACCOUNT_NOT_FOUND] = "account_not_found",
    [LEDGER_ACCOUNT_CLOSED] = "account_closed",
    [LEDGER_ACCOUNT_FLAGS_INVALID] = "account_flags_invalid",
    [LEDGER_OWNER_INVALID] = "owner_invalid",
    [LEDGER_KIND_INVALID] = "kind_invalid",
    [LEDGER_REFERENCE_INVALID] = "reference_invalid",
    [LEDGER_METADATA_INVALID] = "metadata_invalid",
    [LEDGER_TIMEOUT_INVALID] = "timeout_invalid",
    [LEDGER_INSUFFICIENT_FUNDS] = "insufficient_funds",
    [LEDGER_EXCEEDS_DEBITS] = "exceeds_debits",
    [LEDGER_BALANCE_OVERFLOW] = "balance_overflow",
    [LEDGER_TRANSFER_NOT_FOUND] = "transfer_not_found",
    [LEDGER_PENDING_NOT_FOUND] = "pending_not_found",
    [LEDGER_NOT_PENDING] = "not_pending",
    [LEDGER_PENDING_EXPIRED] = "pending_expired",
    [LEDGER_PENDING_NOT_EXPIRED] = "pending_not_expired",
    [LEDGER_ALREADY_POSTED] = "already_posted",
    [LEDGER_ALREADY_VOIDED] = "already_voided",
    [LEDGER_EXCEEDS_PENDING_AMOUNT] = "exceeds_pending_amount",
    [LEDGER_NOT_REVERSIBLE] = "not_reversible",
    [LEDGER_EXCEEDS_REVERSIBLE_AMOUNT] = "exceeds_reversible_amount",
    [LEDGER_CROSS_REGION_REQUIRES_SAGA] = "cross_region_requires_saga",
    [LEDGER_WRONG_REGION] = "wrong_region",
    [LEDGER_MANDATE_INVALID] = "mandate_invalid",
    [LEDGER_MANDATE_LIMIT_EXCEEDED] = "mandate_limit_exceeded",
};

const char *ledger_code_name(ledger_code c) {
    if ((unsigned)c >= LEDGER_CODE_COUNT || !code_names[c]) return "unknown";
    return code_names[c];
}

bool ledger_code_from_name(const char *name, ledger_code *out) {
    for (int i = 0; i < LEDGER_CODE_COUNT; i++) {
        if (code_names[i] && strcmp(code_names[i], name) == 0) {
            *out = (ledger_code)i;
            return true;
        }
    }
    return false;
}

void ledger_cmd_init(ledger_cmd *cmd, ledger_cmd_kind kind) {
    memset(cmd, 0, sizeof *cmd);
    cmd->kind = kind;
    memcpy(cmd->account_kind, "wallet", sizeof "wallet");
}

int64_t ledger_balance(int64_t credits, int64_t debits, int64_t pending) {
    __int128 v = (__int128)credits - debits - pending;
    return v > INT64_MAX ? INT64_MAX : v < INT64_MIN ? INT64_MIN : (int64_t)v;
}
