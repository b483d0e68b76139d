# SPDX-License-Identifier: Apache-2.0
# Klaxon build: one Makefile, everything generated goes to $(BUILD)/.
#   make            build hub + sensor (installs deps first)
#   make test       unit (cmocka) + integration (pytest, real daemons)
#   make run        local nats-server + hub + sensor (scripts/run.sh)
#   make bench      benchmarks -> bench/RESULTS.md
#   V=1             verbose commands
.DELETE_ON_ERROR:
.SECONDARY:
.SUFFIXES:
.DEFAULT_GOAL := all
SHELL := /bin/bash

BUILD   ?= build
VERSION := 0.1.0
CC      ?= cc
CLANG   ?= clang
BPFTOOL ?= bpftool
PYTHON  ?= /usr/bin/python3
Q       := $(if $(filter 1,$(V)),,@)

PKGS     := libnats libcurl libcjson libwebsockets yaml-0.1
CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter -fno-strict-aliasing -pthread
CPPFLAGS += -Ilib -Ihub -Ioutputs -Iresponders -I$(BUILD)/gen -D_GNU_SOURCE -DKX_VERSION=\"$(VERSION)\" -MMD -MP
LDLIBS_COMMON = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
LDLIBS_HUB    = $(shell pkg-config --libs rdkafka 2>/dev/null) $(shell pkg-config --libs openssl) -ldl
# The hub parses and frees thousands of small JSON nodes per batch; glibc's
# malloc spends half the hub's CPU on that (bench/RESULTS.md), jemalloc does
# not. Not under sanitizers, which bring their own allocator.
HUB_MALLOC    = $(if $(SAN),,-ljemalloc)
ifneq ($(SAN),)
CFLAGS  += -fsanitize=$(SAN) -fno-sanitize-recover=all -fno-omit-frame-pointer
LDFLAGS += -fsanitize=$(SAN)
endif

LIB_SRC    := $(wildcard lib/*.c)
HUB_SRC    := $(wildcard hub/*.c) $(wildcard outputs/*.c) $(wildcard responders/*.c)
SENSOR_SRC := $(wildcard sensor/*.c)
BPF_SRC    := $(wildcard sensor/bpf/*.bpf.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
LIB_OBJ    := $(call obj,$(LIB_SRC))
UI_FILES   := $(wildcard hub/ui/*)
UI_OBJ     := $(BUILD)/obj/gen/ui_files.o
HUB_OBJ    := $(call obj,$(HUB_SRC)) $(UI_OBJ)
HUB_CORE   := $(filter-out $(BUILD)/obj/hub/main.o,$(HUB_OBJ))
SENSOR_OBJ := $(call obj,$(SENSOR_SRC))
SENSOR_CORE:= $(filter-out $(BUILD)/obj/sensor/main.o,$(SENSOR_OBJ))
SKELS      := $(patsubst sensor/bpf/%.bpf.c,$(BUILD)/gen/%.skel.h,$(BPF_SRC))
UNIT_BIN   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
LIBKX      := $(BUILD)/lib/libklaxon.a
ARCH       := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')

.PHONY: all deps hub sensor test unit unit-san fuzz integration run bench clean format lint
all: hub sensor

deps:
	$(Q)bash scripts/deps.sh

# Everything that compiles needs the packages; order-only so a no-op deps run
# never forces a rebuild.
$(LIB_OBJ) $(HUB_OBJ) $(SENSOR_OBJ) $(BUILD)/gen/vmlinux.h: | deps

hub: $(BUILD)/bin/klaxon-hub
sensor: $(BUILD)/bin/klaxon-sensor

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(LIBKX): $(LIB_OBJ)
	@mkdir -p $(@D)
	$(Q)$(AR) rcs $@ $^

# The web UI (hub/ui/) goes into the binary as bytes: nothing to install.
$(BUILD)/gen/ui_files.c: $(UI_FILES) scripts/embed-ui.sh
	@mkdir -p $(@D)
	$(Q)sh scripts/embed-ui.sh hub/ui > $@

$(UI_OBJ): $(BUILD)/gen/ui_files.c
	@mkdir -p $(@D)
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BUILD)/bin/klaxon-hub: $(HUB_OBJ) $(LIBKX)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) $^ -o $@ $(LDLIBS_HUB) $(HUB_MALLOC) $(LDLIBS_COMMON)

# --- sensor: CO-RE BPF objects -> skeletons -> loader ------------------------
$(BUILD)/gen/vmlinux.h:
	@mkdir -p $(@D)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@

$(BUILD)/gen/%.bpf.o: sensor/bpf/%.bpf.c $(BUILD)/gen/vmlinux.h $(wildcard sensor/*.h)
	$(if $(Q),@echo "  BPF     $<")
	$(Q)$(CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -I$(BUILD)/gen -Isensor -c $< -o $@
	$(Q)llvm-strip -g $@ 2>/dev/null || true

$(BUILD)/gen/%.skel.h: $(BUILD)/gen/%.bpf.o
	$(Q)$(BPFTOOL) gen skeleton $< > $@

$(SENSOR_OBJ): $(SKELS)
$(SENSOR_OBJ): CPPFLAGS += -Isensor

$(BUILD)/bin/klaxon-sensor: $(SENSOR_OBJ) $(LIBKX)
	@mkdir -p $(@D)
	$(if $(Q),@echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) $(CFLAGS) $^ -o $@ $(LDLIBS_COMMON) -lbpf -lelf -lz

# --- tests -------------------------------------------------------------------
# Each unit test links libklaxon plus the daemon objects (minus main) it tests.
$(BUILD)/tests/%: tests/unit/%.c $(LIBKX) $(HUB_CORE) $(SENSOR_CORE) | deps
	@mkdir -p $(@D)
	$(if $(Q),@echo "  TEST    $@")
	$(Q)$(CC) $(CPPFLAGS) -Ihub -Isensor -Ioutputs $(CFLAGS) $< $(HUB_CORE) $(SENSOR_CORE) $(LIBKX) \
	    -o $@ $(LDFLAGS) $(LDLIBS_HUB) $(LDLIBS_COMMON) -lbpf -lelf -lz -lcmocka

# --- responder plugins: .so files the "plugin" responder dlopen()s --------------
# Built the way third-party plugins are: -fPIC, only kx_responder_plugin
# exported, linked to libcjson themselves (the hub exports none of its own).
RESP_PLUGIN_SO := $(BUILD)/lib/klaxon-responder-sample.so
# Deliberately broken ones for the loader's test (responders/plugins/broken.c).
RESP_TEST_SO   := $(patsubst %,$(BUILD)/lib/test/klaxon-responder-%.so,nosym badabi noact badrc)
RESP_SO_FLAGS   = -shared -fPIC -fvisibility=hidden -Ilib -Iresponders -D_GNU_SOURCE
RESP_SO_LIBS    = $(shell pkg-config --libs libcjson)

.PHONY: responder-plugins
all: responder-plugins
responder-plugins: $(RESP_PLUGIN_SO)

$(RESP_PLUGIN_SO): responders/plugins/sample_label.c responders/responders.h $(wildcard lib/*.h) | deps
	@mkdir -p $(@D)
	$(if $(Q),@echo "  SO      $@")
	$(Q)$(CC) $(CFLAGS) $(RESP_SO_FLAGS) $< -o $@ $(LDFLAGS) $(RESP_SO_LIBS)

$(BUILD)/lib/test/klaxon-responder-%.so: responders/plugins/broken.c responders/responders.h \
                                         $(wildcard lib/*.h) | deps
	@mkdir -p $(@D)
	$(if $(Q),@echo "  SO      $@")
	$(Q)$(CC) $(CFLAGS) $(RESP_SO_FLAGS) -DBROKEN_$(shell echo $* | tr a-z A-Z) $< -o $@ \
	    $(LDFLAGS) $(RESP_SO_LIBS)

# The loader's test finds them in its own build's lib/ (unit and unit-san alike).
$(BUILD)/tests/test_responders_plugin: $(RESP_PLUGIN_SO) $(RESP_TEST_SO)

unit: $(UNIT_BIN)
	$(Q)set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

# The unit tests again under AddressSanitizer + UBSan (a build of its own).
unit-san:
	$(Q)$(MAKE) --no-print-directory BUILD=$(BUILD)/san SAN=address,undefined unit

# libFuzzer targets, one per parser; new inputs go to build/, seeds stay put.
FUZZ_BIN     := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 10
FUZZ_FLAGS   := -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -Ilib -Ihub -Ioutputs -D_GNU_SOURCE -DKX_VERSION=\"$(VERSION)\"
$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB_SRC) hub/dedupe.c hub/filter.c sensor/ruleset.c sensor/rule_expr.c \
                 sensor/rule_fields.c sensor/rule_output.c sensor/kinds.c \
                 $(wildcard lib/*.h hub/*.h sensor/*.h) | deps
	@mkdir -p $(@D)
	$(if $(Q),@echo "  FUZZ    $@")
	$(Q)$(CLANG) $(FUZZ_FLAGS) -Isensor $< $(LIB_SRC) hub/dedupe.c hub/filter.c sensor/ruleset.c sensor/rule_expr.c \
	    sensor/rule_fields.c sensor/rule_output.c sensor/kinds.c -o $@ $(LDLIBS_COMMON)

fuzz: $(FUZZ_BIN)
	$(Q)set -e; for t in $(FUZZ_BIN); do n=$${t##*/fuzz_}; mkdir -p $(BUILD)/fuzz/corpus-$$n; \
	    echo "== $$t ($(FUZZ_SECONDS)s)"; \
	    $$t -max_total_time=$(FUZZ_SECONDS) -timeout=5 -artifact_prefix=$(BUILD)/fuzz/ -rss_limit_mb=2048 -print_final_stats=1 \
	        $(BUILD)/fuzz/corpus-$$n tests/fuzz/corpus/$$n 2>&1 | grep -E '^(stat::number_of_executed_units|==|SUMMARY)' || true; \
	    test $${PIPESTATUS[0]} -eq 0; done

# Test double for the Kafka output: librdkafka's mock cluster as a process.
$(BUILD)/tests/fakes/kafka_mock: tests/fakes/kafka_mock.c | deps
	@mkdir -p $(@D)
	$(if $(Q),@echo "  FAKE    $@")
	$(Q)$(CC) $(CFLAGS) -D_GNU_SOURCE $< -o $@ $(LDFLAGS) $(shell pkg-config --libs rdkafka libcjson)

integration: all $(BUILD)/tests/fakes/kafka_mock
	$(Q)bash scripts/test-deps.sh
	$(Q)cd tests/integration && KX_BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test: all
	$(Q)$(MAKE) --no-print-directory unit
	$(Q)$(MAKE) --no-print-directory unit-san
	$(Q)$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(or $(TEST_FUZZ_SECONDS),5)
	$(Q)$(MAKE) --no-print-directory integration

run: all
	$(Q)bash scripts/run.sh

bench: all $(BUILD)/bench/sink $(BUILD)/bench/pub $(BUILD)/bench/wsclients
	$(Q)bash bench/run.sh

# The benchmark's own load generator and receiver, in C so they stay cheap.
$(BUILD)/bench/%: bench/%.c | deps
	@mkdir -p $(@D)
	$(Q)$(CC) -O2 -Wall -Wextra -Werror -D_GNU_SOURCE $< -o $@ $(shell pkg-config --libs libnats) -lcrypto

format:
	$(Q)clang-format -i $(LIB_SRC) $(HUB_SRC) $(SENSOR_SRC) $(BPF_SRC) $(UNIT_SRC) $(wildcard lib/*.h hub/*.h sensor/*.h outputs/*.h responders/*.h)

lint:
	$(Q)cppcheck --quiet --error-exitcode=1 --enable=warning,portability -Ilib $(LIB_SRC) $(HUB_SRC) $(SENSOR_SRC)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
