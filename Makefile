# geoledger — the one entry point. `make help` lists the targets.
#
# Everything a fresh Debian 12 machine lacks is installed by scripts/deps.sh
# (apt-get when root, otherwise it prints the exact command).

CC      ?= gcc
BUILD   ?= build
PREFIX  ?= /usr/local
DESTDIR ?=
SAN     ?=

PG_BIN  := /usr/lib/postgresql/15/bin
SQL_DIR_INSTALLED := $(PREFIX)/share/geoledger/sql

# pkg-config is only queried when building (so `make help`/`clean` work anywhere).
PKGS     := libpq libconfig openssl uuid jansson libmicrohttpd gnutls hiredis
CPPFLAGS += -D_GNU_SOURCE -DGL_SQL_DIR='"$(GL_SQL_DIR)"'
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c17 -Wall -Wextra -Werror -Wshadow -Wvla -fno-strict-aliasing -pthread
LDLIBS   += -lpthread
ifeq ($(SAN),1)
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all -O1
LDFLAGS  += -fsanitize=address,undefined
endif
GL_SQL_DIR ?= $(CURDIR)/sql

# api/ledgerd.c (main) is not in the library; the rest of api/ is.
LIB_SRC  := $(wildcard ledger/*.c regions/*.c auth/*.c reconciliation/*.c) $(filter-out api/ledgerd.c,$(wildcard api/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB      := $(BUILD)/libgeoledger.a
CLI_SRC  := $(wildcard cli/*.c)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
LEDGERCTL := $(BUILD)/bin/ledgerctl
LEDGERD  := $(BUILD)/bin/ledgerd
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
ITEST_SRC := $(wildcard tests/integration/test_*.c)
ITEST_BIN := $(ITEST_SRC:tests/integration/%.c=$(BUILD)/tests/%)
TOOL_SRC := $(wildcard tests/tools/*.c)
TOOL_BIN := $(TOOL_SRC:tests/tools/%.c=$(BUILD)/tests/%)
BENCH_BIN := $(BUILD)/bin/ledger-bench $(BUILD)/bin/recon-seed

.PHONY: all deps build run stop clean-var test unit asan chaos bench lint install clean help
# Keep object files of test programs (otherwise make deletes them as intermediates).
.SECONDARY:

all: build

help:
	@echo "make            build ledgerctl and the library (installs missing packages)"
	@echo "make run        start a local 3-region PostgreSQL cluster, Redis and ledgerd under ./var, migrate, print usage"
	@echo "make stop       stop them"
	@echo "make clean-var  stop it and remove ./var (data, keys, CA, passfiles)"
	@echo "make test       unit + integration tests against real PostgreSQL (non-zero on failure)"
	@echo "make asan       the test suite under AddressSanitizer + UndefinedBehaviorSanitizer"
	@echo "make chaos      fault injection under a bank workload, 5x longer than in make test (tests/chaos.sh)"
	@echo "make fuzz       libFuzzer harnesses of every parser of untrusted bytes, bounded (fuzz/README.md)"
	@echo "make bench      pgbench tpcb-like vs the engine (uniform, hot)"
	@echo "make lint       cppcheck + clang-tidy"
	@echo "make install    install ledgerctl, ledgerd and the migrations (PREFIX, DESTDIR)"
	@echo "make clean      remove build outputs (not ./var)"

deps:
	@scripts/deps.sh build

build: deps
	@$(MAKE) --no-print-directory $(LEDGERCTL) $(LEDGERD) $(UNIT_BIN) $(ITEST_BIN) $(TOOL_BIN) $(BENCH_BIN)

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS))
CHECK_LIBS = $(shell pkg-config --libs check)
# Test tools (load and chaos clients) and ledgerd's webhook sender (api/webhookd.c) speak HTTP through libcurl.
CURL_LIBS  = $(shell pkg-config --libs libcurl)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(LEDGERCTL): $(CLI_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(LEDGERD): $(BUILD)/obj/api/ledgerd.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CURL_LIBS) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CHECK_LIBS) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/integration/%.o $(BUILD)/obj/tests/integration/itest.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CHECK_LIBS) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/tools/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CURL_LIBS) $(LDLIBS)

$(BUILD)/bin/ledger-bench: $(BUILD)/obj/bench/ledger_bench.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

$(BUILD)/bin/recon-seed: $(BUILD)/obj/bench/recon_seed.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(LDLIBS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- local cluster ----
RUN_DIR  := $(CURDIR)/var
# The servers listen on TCP (TLS), so clusters cannot share ports: make run uses
# 5461-5463, make test 5441-5443 (TEST_PG_PORT_BASE), its chaos step 5451-5453
# (CHAOS_PG_PORT_BASE), make bench 5450 (BENCH_PG_PORT).
REGIONS  := eu:5461:1 us:5462:2 sg:5463:3
API_PORT := 8080
# The Redis of make run (its streams: the events of each region), loopback only.
REDIS_PORT := 6390

run: build
	@scripts/deps.sh test
	@scripts/cluster.sh start $(RUN_DIR)/pg $(foreach r,$(REGIONS),$(word 1,$(subst :, ,$(r))):$(word 2,$(subst :, ,$(r))))
	@scripts/cluster.sh conf $(RUN_DIR)/pg $(RUN_DIR)/ledger.conf $(REGIONS)
	@LEDGERD_CLIENT_CERTS=optional scripts/ledgerd-conf.sh $(RUN_DIR)/ledger.conf $(RUN_DIR)/dev-hs256.key $(API_PORT)
	@scripts/redis-run.sh conf $(RUN_DIR)/ledger.conf $(RUN_DIR)/redis $(REDIS_PORT)
	@timeout 300 $(LEDGERCTL) --config $(RUN_DIR)/ledger.conf migrate
	@scripts/dev-keys.sh $(RUN_DIR)
	@scripts/redis-run.sh start $(RUN_DIR)/redis $(REDIS_PORT)
	@scripts/ledgerd-run.sh start $(RUN_DIR) $(LEDGERD) $(API_PORT)
	@scripts/usage.sh $(RUN_DIR)/ledger.conf $(LEDGERCTL) $(API_PORT)

stop:
	@scripts/ledgerd-run.sh stop $(RUN_DIR)
	@scripts/redis-run.sh stop $(RUN_DIR)/redis
	@scripts/cluster.sh stop $(RUN_DIR)/pg

# Stop and remove ./var: its data, keys, CA and passfiles (the next make run starts afresh).
clean-var: stop
	rm -rf $(RUN_DIR)

# ---- tests ----
test: build
	@scripts/deps.sh test
	@BUILD=$(BUILD) tests/run.sh

asan:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/asan SAN=1 test

# The scenarios of make test, each five times longer; figures printed, like a benchmark.
chaos: build
	@scripts/deps.sh test
	@BUILD=$(BUILD) CHAOS_SOAK=1 tests/chaos.sh

bench: build
	@scripts/deps.sh bench
	@BUILD=$(BUILD) bench/run.sh

lint: deps
	@scripts/deps.sh lint
	cppcheck --enable=warning,style,performance,portability --error-exitcode=1 --inline-suppr -q \
	  --suppress=missingIncludeSystem --std=c11 -D_GNU_SOURCE $(shell pkg-config --cflags-only-I $(PKGS)) \
	  ledger regions auth reconciliation api cli bench tests
	clang-tidy --quiet $(LIB_SRC) $(CLI_SRC) bench/*.c $(UNIT_SRC) $(ITEST_SRC) tests/integration/itest.c $(TOOL_SRC) -- $(CPPFLAGS) $(PKG_CFLAGS) -std=c17

# The binaries look for migrations in the build tree by default: set
# migrations_dir = "$(PREFIX)/share/geoledger/sql" in ledger.conf when installed.
install: $(LEDGERCTL) $(LEDGERD)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SQL_DIR_INSTALLED)
	install -m 0755 $(LEDGERCTL) $(DESTDIR)$(PREFIX)/bin/ledgerctl
	install -m 0755 $(LEDGERD) $(DESTDIR)$(PREFIX)/bin/ledgerd
	install -m 0644 sql/*.sql $(DESTDIR)$(SQL_DIR_INSTALLED)

clean:
	rm -rf $(BUILD)
include fuzz/fuzz.mk
