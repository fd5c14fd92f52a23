# lockd: build, test and run. `make run` and `make test` work on a fresh
# Debian 12 machine: both first install the Debian packages we build with
# (scripts/deps.sh, idempotent).
#
#   make            build build/lockd (and build/lockctl once it exists)
#   make run        start a single node on :2080, data in ./lockd-data
#   make test       unit tests (cmocka) + black-box tests (pytest) + client suites
#   make test-clients  the Python, Ruby and Java client suites (clients/)
#   make asan       the same binaries with ASan+UBSan, black-box tests on them
#   make bench      scripts/bench.sh against a fresh node
#   make lint       clang-format check

BUILD   ?= build
CC      ?= gcc
PYTHON  ?= /usr/bin/python3
OPT     ?= -O2
SAN     ?=
PKGS    := libh2o-evloop lmdb libprotobuf-c raft libuv openssl

# gcc here links with --as-needed and would drop jemalloc (nothing references
# it by name), so force it in; ASan brings its own allocator instead.
# (Before CFLAGS: := expands MALLOC_DEFS where it stands.)
ifeq ($(SAN),)
MALLOC_LIBS := -Wl,--no-as-needed -ljemalloc -Wl,--as-needed
MALLOC_DEFS := -DLOCKD_WITH_JEMALLOC
endif
CFLAGS  := -std=c11 -D_GNU_SOURCE -DH2O_USE_LIBUV=0 $(OPT) -g -fno-omit-frame-pointer \
           -Wall -Wextra -Werror -Wno-unused-parameter -Wno-missing-field-initializers \
           -I. -I$(BUILD) $(SAN) $(MALLOC_DEFS) $(EXTRA_CFLAGS)
LDFLAGS := $(SAN) -rdynamic
LIBS     = $(shell pkg-config --libs $(PKGS) 2>/dev/null) $(MALLOC_LIBS) -lpthread -lm

PROTO_SRC := $(wildcard proto/*.proto)
PROTO_GEN := $(patsubst %.proto,$(BUILD)/%.pb-c.c,$(PROTO_SRC))
PROTO_HDR := $(PROTO_GEN:.c=.h)

LIB_SRC  := $(wildcard common/*.c proto/*.c shm/*.c worker/*.c raftproc/*.c) \
            $(filter-out master/main.c,$(wildcard master/*.c))
LIB_OBJ  := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(patsubst $(BUILD)/%.c,$(BUILD)/obj/%.o,$(PROTO_GEN))
include ui/ui.mk
LOCKCTL_SRC := $(wildcard lockctl/*.c)

UNIT_SRC := $(wildcard tests/unit/*/test_*.c)
UNIT_BIN := $(patsubst %.c,$(BUILD)/%,$(UNIT_SRC))

DEPS_STAMP := $(BUILD)/.deps-installed

# Generated protobuf code is not an intermediate file to delete afterwards.
.SECONDARY: $(PROTO_GEN) $(PROTO_HDR)

.PHONY: all deps run test unit blackbox asan bench bench-peers lint clean
all: $(BUILD)/lockd $(if $(LOCKCTL_SRC),$(BUILD)/lockctl)

deps: $(DEPS_STAMP)
$(DEPS_STAMP): scripts/deps.sh
	./scripts/deps.sh
	@mkdir -p $(@D) && touch $@

$(BUILD)/%.pb-c.c $(BUILD)/%.pb-c.h: %.proto | $(DEPS_STAMP)
	@mkdir -p $(@D)
	protoc-c --c_out=$(BUILD) $<

# Objects depend on the Makefile too: a change of flags (say MALLOC_DEFS)
# must rebuild them, not leave objects compiled without it.
$(BUILD)/obj/%.o: %.c $(PROTO_HDR) Makefile | $(DEPS_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# generated code is not ours to warn about
$(BUILD)/obj/proto/%.pb-c.o: $(BUILD)/proto/%.pb-c.c
	@mkdir -p $(@D)
	$(CC) $(filter-out -Werror -Wextra,$(CFLAGS)) -c $< -o $@

$(BUILD)/liblockd.a: $(LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/lockd: $(BUILD)/obj/master/main.o $(BUILD)/liblockd.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# Objects live under $(BUILD)/obj/ so that $(BUILD)/lockctl can be the binary.
LOCKCTL_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(LOCKCTL_SRC))
$(BUILD)/lockctl: $(LOCKCTL_OBJ) $(BUILD)/liblockd.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/unit/%: tests/unit/%.c $(BUILD)/liblockd.a $(PROTO_HDR) Makefile
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/liblockd.a $(LIBS) -lcmocka

run: all
	mkdir -p lockd-data
	exec $(BUILD)/lockd --data-dir ./lockd-data

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

blackbox: all
	LOCKD_BIN=$(abspath $(BUILD)/lockd) LOCKCTL_BIN=$(abspath $(BUILD)/lockctl) \
	    $(PYTHON) -m pytest -q -p no:cacheprovider tests/blackbox $(PYTEST_ARGS)

test: all unit blackbox test-clients

# Client libraries (clients/): each suite in its own runner against real lockd
# processes, nginx and a scripted fake server (clients/testing/harness.py).
JUNIT_JAR := /usr/share/java/junit-platform-console-standalone.jar
CLIENTS_JAVA := $(BUILD)/clients/java
.PHONY: test-clients test-clients-python test-clients-ruby test-clients-java
test-clients: test-clients-python test-clients-ruby test-clients-java
test-clients-python: all
	LOCKD_BIN=$(abspath $(BUILD)/lockd) $(PYTHON) -m pytest -q -p no:cacheprovider clients/python/tests $(PYTEST_ARGS)
test-clients-ruby: all
	cd clients/ruby && LOCKD_BIN=$(abspath $(BUILD)/lockd) PYTHON=$(PYTHON) rake test
test-clients-java: all
	rm -rf $(CLIENTS_JAVA) && mkdir -p $(CLIENTS_JAVA)/classes $(CLIENTS_JAVA)/test-classes
	javac --release 17 -Xlint:all -Werror -d $(CLIENTS_JAVA)/classes $$(find clients/java/src/main/java -name '*.java')
	javac --release 17 -Xlint:all -Werror -cp $(CLIENTS_JAVA)/classes:$(JUNIT_JAR) -d $(CLIENTS_JAVA)/test-classes \
	    $$(find clients/java/src/test/java -name '*.java')
	LOCKD_BIN=$(abspath $(BUILD)/lockd) java -Dlockd.root=$(CURDIR) -Dlockd.python=$(PYTHON) \
	    -Dlockd.classes=$(abspath $(CLIENTS_JAVA)/classes) -jar $(JUNIT_JAR) --disable-banner \
	    --disable-ansi-colors --details=tree --fail-if-no-tests \
	    --config=junit.jupiter.execution.timeout.default=90s \
	    -cp $(CLIENTS_JAVA)/classes:$(CLIENTS_JAVA)/test-classes --scan-classpath $(CLIENTS_JAVA)/test-classes

asan:
	$(MAKE) BUILD=build-asan OPT=-O1 SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" all unit blackbox

bench: all
	./scripts/bench.sh

# lockd against etcd, Redis and nginx on this machine (~7 min; QUICK=1 ~80 s)
bench-peers: all
	./scripts/bench-peers.sh

lint:
	clang-format --dry-run --Werror $(LIB_SRC) $(LOCKCTL_SRC) master/main.c $(wildcard */*.h)

clean:
	rm -rf build build-asan

include packaging/packaging.mk

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
