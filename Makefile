# Railyard build.  Plain make: pattern rules, objects under build/, -MMD deps.
# Every pkg/<module>/*.c and cmd/railyard/*.c is picked up automatically.

PKGS      := libevent libpcre2-8 jansson yaml-0.1
# Opened with dlopen on first use (pkg/lazylib), so never linked: only
# their headers are needed at build time.  GSSAPI and LDAP are libpq's,
# OpenSSL libpq's and pkg/hash's.
LAZY_PKGS := libsystemd libxml-2.0 libcurl libarchive krb5-gssapi ldap openssl
# libpq is linked in (libpq-dev's libpq.a and the server headers' common
# and port code it calls), so that its GSSAPI and LDAP libraries load on
# first use too: through libpq.so they were 19 of the 30 libraries every
# `railyard submit` mapped (docs/ARCHITECTURE.md, "Loading libraries").
# OpenSSL, which it calls too, loads on first use as well.  Expanded when
# used, as CFLAGS and LDLIBS are: `make test` installs the packages
# (check-deps) after the Makefile is read.
PG_PKGLIBDIR = $(shell pg_config --pkglibdir)
LIBPQ_A   = $(shell pkg-config --variable=libdir libpq)/libpq.a \
            $(PG_PKGLIBDIR)/libpgcommon_shlib.a $(PG_PKGLIBDIR)/libpgport_shlib.a
VERSION   := $(shell cat VERSION)
CC        ?= cc
WARN      := -Wall -Wextra -Wmissing-prototypes -Wstrict-prototypes -Wformat=2 \
             -Wvla -Wwrite-strings -Wno-format-nonliteral
CFLAGS    ?= -O2 -g
CFLAGS    += -std=c11 -D_GNU_SOURCE $(WARN) -Ipkg -MMD -MP \
             -DRY_VERSION='"$(VERSION)"' $(shell pkg-config --cflags libpq $(PKGS) $(LAZY_PKGS))
LDLIBS    += $(LIBPQ_A) $(shell pkg-config --libs $(PKGS)) -lm
ifdef CI
CFLAGS    += -Werror
endif
ifdef SANITIZE
CFLAGS    += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
LDFLAGS   += -fsanitize=$(SANITIZE)
BUILD     := build/san
else ifdef COVERAGE
# Atomic counters: the worker's threads (libcurl's resolver, libpq) would
# otherwise race on them and leave negative counts gcovr cannot parse.
CFLAGS    += --coverage -fprofile-update=atomic -O0
LDFLAGS   += --coverage
BUILD     := build/cov
else
BUILD     := build/rel
endif

PKG_SRC   := $(wildcard pkg/*/*.c)
CMD_SRC   := $(wildcard cmd/railyard/*.c)
PKG_OBJ   := $(PKG_SRC:%.c=$(BUILD)/%.o)
CMD_OBJ   := $(CMD_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/sqlfiles.o
SQL_FILES := $(sort $(wildcard migrations/*.sql)) $(sort $(wildcard sql/*.sql))
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
HELPER_SRC := $(wildcard tests/helpers/*.c)
HELPER_BIN := $(HELPER_SRC:tests/helpers/%.c=$(BUILD)/tests/helpers/%)
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

all: railyard

$(BUILD)/railyard: $(CMD_OBJ) $(PKG_OBJ)
	@for a in $(LIBPQ_A); do [ -f "$$a" ] || { echo "error: $$a is missing:" \
		"install libpq-dev and postgresql-server-dev-15 (scripts/install-deps.sh)" >&2; exit 1; }; done
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

railyard: $(BUILD)/railyard
	cp $< $@.tmp && mv -f $@.tmp $@

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/gen/sqlfiles.c: $(SQL_FILES) scripts/embed-sql.sh
	@mkdir -p $(dir $@)
	scripts/embed-sql.sh $@ $(SQL_FILES)

$(BUILD)/gen/sqlfiles.o: $(BUILD)/gen/sqlfiles.c
	$(CC) $(CFLAGS) -Icmd/railyard -c -o $@ $<

# Each unit test links only the modules it tests and what they need
# (test_NAME_MODS, plus pkg/lazylib, which stands in for the libraries it
# loads), so a neighbour can be faked; test_NAME_LDFLAGS adds link options
# (--wrap), test_NAME_LDLIBS libraries the test itself calls.  A test
# without a list links every module.
test_core_MODS   := core
test_graph_MODS  := core graph
test_spec_MODS   := core spec graph match archive hash exec
test_demo_MODS   := core demo spec graph match archive hash exec
test_config_MODS := core config
test_exec_MODS   := core exec
test_match_MODS  := core match db
test_sched_MODS  := core sched
test_metrics_MODS := core metrics
test_webhook_MODS := core webhook curlev hash
test_curlev_MODS := core curlev
test_container_MODS := core container
test_throttle_MODS := core throttle
test_pressure_MODS := core agent throttle
test_embed_MODS  := core embed
test_embed_LDFLAGS := -Wl,--wrap=pipe2
test_lazylib_MODS := core
test_junit_LDLIBS := $(shell pkg-config --libs libxml-2.0)
test_archive_LDLIBS := $(shell pkg-config --libs libarchive)

mods_obj = $(if $($(1)_MODS),$(foreach m,$($(1)_MODS) lazylib,$(filter $(BUILD)/pkg/$(m)/%,$(PKG_OBJ))),$(PKG_OBJ))

.SECONDEXPANSION:
$(BUILD)/tests/%: tests/unit/%.c $$(call mods_obj,$$*)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $($*_LDFLAGS) -o $@ $^ $($*_LDLIBS) $(LDLIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/bench/%: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Benchmarks that measure modules link them.
$(BUILD)/bench/bench_cache_lookup $(BUILD)/bench/task_start: $(PKG_OBJ)

# Test drivers run by integration scripts (not unit tests themselves).
$(BUILD)/tests/helpers/%: tests/helpers/%.c $(PKG_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

unit: $(UNIT_BIN) $(HELPER_BIN)

# ---- fuzzing: libFuzzer targets for every parser (clang) ---------------------
# `make fuzz` builds build/fuzz/fuzz_NAME for each tests/fuzz/fuzz_NAME.c
# from the modules fuzz_NAME_MODS lists;
# `make fuzz-run FUZZ_SECONDS=N` runs each for N seconds from its seeds in
# tests/fuzz/corpus/NAME (new inputs go to build/fuzz/corpus/NAME, crashes
# to build/fuzz/crash-NAME-*) and fails on the first crash, leak or
# undefined behaviour.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS  := -g -O1 -fno-omit-frame-pointer -std=c11 -D_GNU_SOURCE $(WARN) -Ipkg -MMD -MP \
                $(shell pkg-config --cflags libpq $(PKGS) $(LAZY_PKGS)) $(FUZZ_SAN)
FUZZ_NAMES   := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN     := $(FUZZ_NAMES:%=build/fuzz/fuzz_%)
fuzz_spec_MODS     := core spec graph match archive hash exec
fuzz_pg_array_MODS := core db
fuzz_config_MODS   := core config
fuzz_archive_MODS  := core archive hash exec
fuzz_ciimport_MODS := core ciimport spec graph match archive hash exec
fuzz_inventory_MODS := core inventory
fuzz_deps_config_MODS := core deps plan spec graph match archive hash exec
fuzz_deps_lines_MODS  := core deps spec graph match archive hash exec

build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

fuzz_objs = $(patsubst %.c,build/fuzz/obj/%.o,$(foreach m,$(fuzz_$(1)_MODS) lazylib,$(wildcard pkg/$(m)/*.c)))

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $$(call fuzz_objs,$$*)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz: $(FUZZ_BIN)

fuzz-run: fuzz
	@for n in $(FUZZ_NAMES); do \
		mkdir -p build/fuzz/corpus/$$n; \
		echo "fuzz_$$n: $(FUZZ_SECONDS) s from tests/fuzz/corpus/$$n"; \
		build/fuzz/fuzz_$$n -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=1024 -max_len=65536 \
			-print_final_stats=1 -artifact_prefix=build/fuzz/crash-$$n- \
			build/fuzz/corpus/$$n tests/fuzz/corpus/$$n 2>build/fuzz/$$n.log || \
			{ tail -n 40 build/fuzz/$$n.log; echo "fuzz_$$n FAILED (build/fuzz/$$n.log)"; exit 1; }; \
		grep -E '^stat::number_of_executed_units|^Done' build/fuzz/$$n.log | tr '\n' ' '; echo; \
	done

deps:
	@scripts/install-deps.sh

check-deps:
	@scripts/install-deps.sh --check

test: check-deps railyard unit
	@tests/run.sh $(BUILD)

demo: check-deps railyard
	./railyard demo

bench: check-deps railyard $(BENCH_BIN)
	@bench/run.sh $(BUILD) $(BENCH)

# ---- coverage: C (gcov, gcovr) and PL/pgSQL (plpgsql_check) -----------------
# Builds build/cov with --coverage, runs every test (RY_COVERAGE makes the
# test cluster count PL/pgSQL statements), then prints line and branch
# coverage per module and per PL/pgSQL function, writes
# build/coverage/coverage.txt and coverage.json, and fails when a module of
# scheduling and dependency resolution is below 90 % (scripts/coverage-report).
coverage: check-deps
	$(MAKE) COVERAGE=1 build/cov/railyard unit
	@find build/cov -name '*.gcda' -delete
	@rm -rf build/coverage && mkdir -p build/coverage
	@RY_COVERAGE=$(CURDIR)/build/coverage tests/run.sh build/cov; rc=$$?; \
		scripts/coverage-report build/cov build/coverage || rc=1; exit $$rc

clean:
	rm -rf build railyard test-results.json

.PHONY: all railyard unit deps check-deps test demo bench clean fuzz fuzz-run coverage
-include $(PKG_OBJ:.o=.d) $(CMD_OBJ:.o=.d) $(wildcard build/fuzz/obj/*/*/*.d)
