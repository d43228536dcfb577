# fuzz/fuzz.mk — libFuzzer harnesses for the parsers of untrusted bytes
# (fuzz/README.md). Included at the end of the top-level Makefile.
#
#   make fuzz                              build every harness, run each FUZZ_SECONDS
#   make fuzz FUZZ_SECONDS=120 FUZZ_ONLY="pan uuid"
#   make fuzz FUZZ_MERGE=1                 merge new interesting inputs into fuzz/corpus/
#
# Harnesses are built with clang (-fsanitize=fuzzer,address,undefined) from the
# library sources they need, into $(BUILD)/fuzz/ (never $(BUILD)/obj); fuzz/run.sh
# installs clang when it is missing, builds, runs and reports.

FUZZ_HARNESSES := jwt body csv settlement decimal rfc3339 uuid pan sealed keyring
FUZZ_ONLY    ?=
FUZZ_SECONDS ?= 20
FUZZ_MERGE   ?= 0
FUZZ_CC      ?= clang
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_CFLAGS  ?= -g -O1
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_FLAGS    = $(FUZZ_CFLAGS) -std=c17 -pthread $(FUZZ_SAN)

# The library sources each harness is linked with (compiled here with clang and
# the sanitizers; the harness itself is the only file with a main, libFuzzer's).
FUZZ_LIB_jwt        := auth/jwt.c ledger/error.c
FUZZ_LIB_csv        := reconciliation/csv.c ledger/error.c
FUZZ_LIB_settlement := fuzz/pan_oracle.c ledger/text.c reconciliation/settlement.c reconciliation/csv.c reconciliation/decimal.c \
                       reconciliation/pan.c reconciliation/keyring.c ledger/money.c ledger/currency.c ledger/error.c
FUZZ_LIB_decimal    := reconciliation/decimal.c ledger/money.c ledger/error.c
FUZZ_LIB_rfc3339    := ledger/pg.c ledger/deadline.c ledger/clock.c reconciliation/report.c ledger/buf.c ledger/id.c ledger/error.c ledger/text.c
FUZZ_LIB_uuid       := ledger/id.c ledger/error.c
FUZZ_LIB_pan        := fuzz/pan_oracle.c reconciliation/pan.c reconciliation/keyring.c ledger/text.c ledger/error.c
FUZZ_LIB_sealed     := reconciliation/sealed.c reconciliation/keyring.c ledger/error.c
FUZZ_LIB_keyring    := reconciliation/keyring.c ledger/error.c
# fuzz_body.c calls the endpoints (api/endpoints.h): the whole library but the
# webhook sender (libcurl; only ledgerd's main starts it).
FUZZ_LIB_body       := $(filter-out api/webhookd.c,$(LIB_SRC))

FUZZ_BINS := $(FUZZ_HARNESSES:%=$(FUZZ_DIR)/bin/fuzz_%)

.PHONY: fuzz fuzz-build

fuzz:
	@BUILD='$(BUILD)' FUZZ_SECONDS='$(FUZZ_SECONDS)' FUZZ_MERGE='$(FUZZ_MERGE)' FUZZ_CC='$(FUZZ_CC)' \
	  MAKE='$(MAKE)' fuzz/run.sh $(if $(strip $(FUZZ_ONLY)),$(FUZZ_ONLY),$(FUZZ_HARNESSES))

# Build only (no deps check, no run): make fuzz-build
fuzz-build: $(FUZZ_BINS)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(PKG_CFLAGS) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

define FUZZ_HARNESS_RULE
$(FUZZ_DIR)/bin/fuzz_$(1): $(FUZZ_DIR)/obj/fuzz/fuzz_$(1).o $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(FUZZ_LIB_$(1)))
	@mkdir -p $$(dir $$@)
	$$(FUZZ_CC) $$(FUZZ_FLAGS) -fsanitize=fuzzer -o $$@ $$^ $$(PKG_LIBS) $$(LDLIBS)
endef
$(foreach h,$(FUZZ_HARNESSES),$(eval $(call FUZZ_HARNESS_RULE,$(h))))

-include $(shell find $(FUZZ_DIR)/obj -name '*.d' 2>/dev/null)
