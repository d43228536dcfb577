#include "render.h"

#include <assert.h>

#include "pg.h"

json_t *gl_id_json(const gl_id *id) {
    if (gl_id_is_nil(id)) return json_null();
    char s[GL_ID_STR_LEN + 1];
    gl_id_format(id, s);
    return json_string(s);
}

/* posted = credits - debits and available = posted - debits_pending, as API.md
 * defines them for credit-normal accounts (user wallets). */
/* Stored metadata as JSON (null when none, or if it somehow does not parse). */
static json_t *metadata_json(const char *text) {
    json_t *m = text && text[0] ? json_loads(text, 0, NULL) : NULL;
    return m ? m : json_null();
}

json_t *gl_account_json(const ledger_account *a, const char *region) {
    assert(a);
    json_t *flags = json_pack("{s:b,s:b,s:b}", "debits_must_not_exceed_credits",
                              (a->flags & LEDGER_AF_DEBITS_MUST_NOT_EXCEED_CREDITS) != 0,
                              "credits_must_not_exceed_debits",
                              (a->flags & LEDGER_AF_CREDITS_MUST_NOT_EXCEED_DEBITS) != 0, "closed",
                              (a->flags & LEDGER_AF_CLOSED) != 0);
    json_t *bal = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "debits_posted", (json_int_t)a->debits_posted,
                            "credits_posted", (json_int_t)a->credits_posted, "debits_pending",
                            (json_int_t)a->debits_pending, "credits_pending", (json_int_t)a->credits_pending, "posted",
                            (json_int_t)ledger_balance(a->credits_posted, a->debits_posted, 0), "available",
                            (json_int_t)ledger_balance(a->credits_posted, a->debits_posted, a->debits_pending));
    return json_pack("{s:o,s:s,s:s,s:s,s:s,s:o,s:o,s:I,s:s,s:o}", "id", gl_id_json(&a->id), "region",
                     region ? region : "?", "currency", a->currency, "owner", a->owner, "kind", a->kind, "flags", flags,
                     "balances", bal, "version", (json_int_t)a->version, "created_at", a->created_at, "metadata",
                     metadata_json(a->metadata));
}

json_t *gl_transfer_json(const ledger_transfer *t) {
    json_t *o = json_pack("{s:o,s:s?,s:o,s:o,s:I,s:s,s:s}", "id", gl_id_json(&t->id), "reference",
                          t->reference[0] ? t->reference : NULL, "debit_account_id",
                          gl_id_json(&t->debit_account_id), "credit_account_id", gl_id_json(&t->credit_account_id),
                          "amount", (json_int_t)t->amount, "currency", t->currency, "status", t->status);
    if (!gl_id_is_nil(&t->pending_id)) json_object_set_new(o, "pending_id", gl_id_json(&t->pending_id));
    if (!gl_id_is_nil(&t->reverses_id)) json_object_set_new(o, "reverses_id", gl_id_json(&t->reverses_id));
    if (t->flags & LEDGER_TF_PENDING) json_object_set_new(o, "amount_posted", json_integer(t->amount_posted));
    json_object_set_new(o, "amount_reversed", json_integer(t->amount_reversed));
    if (t->expires_at[0]) json_object_set_new(o, "expires_at", json_string(t->expires_at));
    json_object_set_new(o, "created_at", json_string(t->created_at));
    json_object_set_new(o, "metadata", metadata_json(t->metadata));
    return o;
}

json_t *gl_entry_json(const ledger_entry *e) {
    return json_pack("{s:I,s:o,s:s#,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s}", "version", (json_int_t)e->version,
                     "transfer_id", gl_id_json(&e->transfer_id), "side", &e->side, (size_t)1, "pending_delta",
                     (json_int_t)e->pending_delta, "posted_delta", (json_int_t)e->posted_delta, "debits_pending",
                     (json_int_t)e->debits_pending, "debits_posted", (json_int_t)e->debits_posted, "credits_pending",
                     (json_int_t)e->credits_pending, "credits_posted", (json_int_t)e->credits_posted, "posted",
                     (json_int_t)ledger_balance(e->credits_posted, e->debits_posted, 0), "created_at",
                     e->created_at);
}

json_t *gl_event_json(const ledger_event *e, const char *region) {
    char at[40];
    gl_format_rfc3339_us(e->created_at_us, at, sizeof at);
    json_t *data = json_object();
    const struct {
        const char *name;
        const gl_id *id;
    } ids[] = {{"account_id", &e->account_id},
               {"transfer_id", &e->transfer_id},
               {"debit_account_id", &e->debit_account_id},
               {"credit_account_id", &e->credit_account_id},
               {"pending_id", &e->pending_id},
               {"reverses_id", &e->reverses_id},
               {"mandate_id", &e->mandate_id}};
    for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++)
        if (!gl_id_is_nil(ids[k].id)) json_object_set_new(data, ids[k].name, gl_id_json(ids[k].id));
    if (e->amount > 0) json_object_set_new(data, "amount", json_integer(e->amount));
    if (e->currency[0]) json_object_set_new(data, "currency", json_string(e->currency));
    const char *type = ledger_event_type_name(e->type);
    return json_pack("{s:o,s:s,s:s,s:s,s:o}", "id", gl_id_json(&e->id), "type", type ? type : "unknown", "region",
                     region ? region : "?", "created_at", at, "data", data);
}
