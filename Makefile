# Railyard build.  Plain make: pattern rules, objects under build/, -MMD deps.
# Every pkg/<module>/*.c and cmd/railyard/*.c is picked up automatically.

PKGS      := libpq libevent openssl libpcre2-8 jansson yaml-0.1 libsystemd libxml-2.0 libcurl libarchive
VERSION   := $(shell cat VERSION)
CC        ?= cc
WARN      := -Wall -Wextra -Wmissing-prototypes -Wstrict-prototypes -Wformat=2 \
             -Wvla -Wwrite-strings -Wno-format-nonliteral
CFLAGS    ?= -O2 -g
CFLAGS    += -std=c11 -D_GNU_SOURCE $(WARN) -Ipkg -MMD -MP \
             -DRY_VERSION='"$(VERSION)"' $(shell pkg-config --cflags $(PKGS))
LDLIBS    += $(shell pkg-config --libs $(PKGS)) -lm
ifdef CI
CFLAGS    += -Werror
endif
ifdef SANITIZE
CFLAGS    += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
LDFLAGS   += -fsanitize=$(SANITIZE)
BUILD     := build/san
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

$(BUILD)/tests/%: tests/unit/%.c $(PKG_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(shell pkg-config --libs cmocka)

$(BUILD)/bench/%: bench/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Benchmarks that measure modules link them.
$(BUILD)/bench/bench_cache_lookup: $(PKG_OBJ)

# Test drivers run by integration scripts (not unit tests themselves).
$(BUILD)/tests/helpers/%: tests/helpers/%.c $(PKG_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

unit: $(UNIT_BIN) $(HELPER_BIN)

deps:
	@scripts/install-deps.sh

check-deps:
	@scripts/install-deps.sh --check

test: check-deps railyard unit
	@tests/run.sh $(BUILD)

demo: check-deps railyard
	./railyard demo

bench: check-deps railyard $(BENCH_BIN)
	@bench/run.sh $(BUILD)

clean:
	rm -rf build railyard test-results.json

.PHONY: all railyard unit deps check-deps test demo bench clean
-include $(PKG_OBJ:.o=.d) $(CMD_OBJ:.o=.d)
