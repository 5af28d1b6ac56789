# reactor: a file-transfer server and client on a hand-written event loop.
#
#   make            build build/reactord and build/reactorc (installs missing packages first)
#   make check      build and run the whole suite: epoll, poll, then ASan+UBSan
#   make demo       build, serve a ~200 MiB file from a temporary root, download and verify it
#   make fuzz       build the libFuzzer targets (clang) and run each for FUZZ_SECONDS (default 60)
#   make tsan       the hashing and commit threads under ThreadSanitizer
#   make deps       install missing Debian packages (as root) or print the command to run
#   make install    PREFIX=/usr/local DESTDIR= : binaries, man pages, bash and zsh completion
#   make clean      remove everything the build made
#
# SANITIZE=1 builds into build/asan with AddressSanitizer and UndefinedBehaviorSanitizer.

# Build on every core unless the caller chose a -j of their own.
ifeq (,$(filter -j%,$(MAKEFLAGS)))
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
endif

PREFIX  ?= /usr/local
DESTDIR ?=
# Shell completion (completions/): where bash-completion and zsh look under PREFIX.
BASH_COMPLETION_DIR ?= $(PREFIX)/share/bash-completion/completions
ZSH_COMPLETION_DIR  ?= $(PREFIX)/share/zsh/site-functions
CXX     ?= g++
# Every variable that calls pkg-config is recursive (=): it is expanded only when a
# recipe runs, after `deps` has installed pkg-config and the libraries.
PKGS     = openssl libcjson
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS))
CRIT_CFLAGS = $(shell pkg-config --cflags criterion)
CRIT_LIBS   = $(shell pkg-config --libs criterion)

WARNINGS = -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion \
           -Wnon-virtual-dtor -Wold-style-cast -Wcast-align -Wformat=2 -Wundef
CXXSTD   = -std=c++17
ifeq ($(SANITIZE),1)
BUILD   ?= build/asan
OPT      = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDSAN    = -fsanitize=address,undefined
else
BUILD   ?= build
OPT      = -O2 -g
LDSAN    =
endif
CPPFLAGS_ALL = -I. -D_GNU_SOURCE -DREACTOR_VERSION='"$(VERSION)"'
# -pthread: reactorc hashes downloads on a second thread (apps/reactorc/background_sha256.h).
CXXFLAGS_ALL = $(CXXSTD) $(OPT) $(WARNINGS) -pthread -MMD -MP $(PKG_CFLAGS) $(CXXFLAGS)
VERSION  = 0.1.0

REACTOR_SRCS  := $(sort $(wildcard reactor/*.cc))
PROTOCOL_SRCS := $(sort $(wildcard protocol/*.cc))
COMMON_SRCS   := $(sort $(wildcard apps/common/*.cc))
SERVER_SRCS   := $(sort $(wildcard apps/reactord/*.cc))
CLIENT_SRCS   := $(sort $(wildcard apps/reactorc/*.cc))
SUPPORT_SRCS  := $(sort $(wildcard tests/support/*.cc))
TEST_SRCS     := $(sort $(wildcard tests/test_*.cc))

obj = $(patsubst %.cc,$(BUILD)/obj/%.o,$(1))
LIBREACTOR  := $(BUILD)/libreactor.a
LIBPROTOCOL := $(BUILD)/libprotocol.a
LIBCOMMON   := $(BUILD)/libcommon.a
# The apps' own objects minus main.o go into a library too, so tests can link them.
SERVER_LIB  := $(BUILD)/libreactord.a
CLIENT_LIB  := $(BUILD)/libreactorc.a
REACTORD    := $(BUILD)/reactord
REACTORC    := $(BUILD)/reactorc
TEST_BINS   := $(patsubst tests/%.cc,$(BUILD)/tests/%,$(TEST_SRCS))
MANPAGES    := $(sort $(wildcard man/*.[0-9]))

.PHONY: all deps deps-fuzz check test demo bench install uninstall clean lint-man fuzz fuzz-smoke
.DEFAULT_GOAL := all
# Test objects are intermediate to make; keep them so a rebuild compiles only what changed.
.SECONDARY:

all: $(REACTORD) $(REACTORC)

deps:
	@scripts/deps.sh

deps-fuzz:
	@scripts/deps.sh fuzz

# Order-only: deps runs once per make invocation and never forces a rebuild.
$(BUILD)/obj/%.o: %.cc | deps
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS_ALL) $(CPPFLAGS) $(CXXFLAGS_ALL) -c $< -o $@

$(BUILD)/obj/tests/%.o: tests/%.cc | deps
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS_ALL) $(CPPFLAGS) $(CXXFLAGS_ALL) $(CRIT_CFLAGS) -c $< -o $@

$(LIBREACTOR): $(call obj,$(REACTOR_SRCS))
$(LIBPROTOCOL): $(call obj,$(PROTOCOL_SRCS))
$(LIBCOMMON): $(call obj,$(COMMON_SRCS))
$(SERVER_LIB): $(call obj,$(filter-out %/main.cc,$(SERVER_SRCS)))
$(CLIENT_LIB): $(call obj,$(filter-out %/main.cc,$(CLIENT_SRCS)))
$(BUILD)/%.a:
	@mkdir -p $(dir $@)
	@rm -f $@
	ar rcs $@ $^

APP_LIBS = $(LIBCOMMON) $(LIBPROTOCOL) $(LIBREACTOR)

$(REACTORD): $(call obj,apps/reactord/main.cc) $(SERVER_LIB) $(APP_LIBS)
	$(CXX) $(LDSAN) -pthread $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(REACTORC): $(call obj,apps/reactorc/main.cc) $(CLIENT_LIB) $(APP_LIBS)
	$(CXX) $(LDSAN) -pthread $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(call obj,$(SUPPORT_SRCS)) $(SERVER_LIB) $(CLIENT_LIB) $(APP_LIBS)
	@mkdir -p $(dir $@)
	$(CXX) $(LDSAN) -pthread $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(CRIT_LIBS)

# The fault-injection shim the tests preload into reactord (tests/faults/inject.c).
FAULT_SHIM := $(BUILD)/libfaultinject.so
$(FAULT_SHIM): tests/faults/inject.c
	@mkdir -p $(dir $@)
	$(CC) -shared -fPIC -O2 -Wall -Wextra -o $@ $< -ldl

tests: $(TEST_BINS) $(REACTORD) $(REACTORC) $(FAULT_SHIM)
.PHONY: tests

# libFuzzer targets (tests/fuzz/fuzz_*.cc), built with clang under ASan+UBSan into
# build/fuzz, with the code they exercise compiled for coverage. Seed corpora live in
# tests/fuzz/corpus/NAME; what a run finds goes to build/fuzz/corpus/NAME.
FUZZ_DIR    := build/fuzz
FUZZ_CXX    ?= clang++
FUZZ_FLAGS   = -std=c++17 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
               -fno-sanitize-recover=undefined -pthread $(PKG_CFLAGS)
FUZZ_SRCS   := $(sort $(wildcard tests/fuzz/fuzz_*.cc))
FUZZ_BINS   := $(patsubst tests/fuzz/%.cc,$(FUZZ_DIR)/%,$(FUZZ_SRCS))
FUZZ_CODE   := $(REACTOR_SRCS) $(PROTOCOL_SRCS) $(COMMON_SRCS) $(filter-out %/main.cc %/server.cc,$(SERVER_SRCS)) \
               $(filter-out %/main.cc,$(CLIENT_SRCS))
FUZZ_OBJS   := $(patsubst %.cc,$(FUZZ_DIR)/obj/%.o,$(FUZZ_CODE))
FUZZ_SECONDS ?= 60

$(FUZZ_DIR)/obj/%.o: %.cc | deps-fuzz
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(CPPFLAGS_ALL) $(FUZZ_FLAGS) -MMD -MP -c $< -o $@

$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/obj/tests/fuzz/fuzz_%.o $(FUZZ_OBJS)
	$(FUZZ_CXX) -fsanitize=fuzzer,address,undefined -pthread -o $@ $^ $(PKG_LIBS)

fuzz: $(FUZZ_BINS)
	@scripts/fuzz.sh run $(FUZZ_DIR) $(FUZZ_SECONDS)

# The threads (hashing, the commit worker, get -c's chunk check) under ThreadSanitizer: a plain driver, since
# Criterion does not run under TSan. Part of make check.
TSAN_DIR  := build/tsan
TSAN_FLAGS = $(CXXSTD) -O1 -g -fsanitize=thread -pthread $(PKG_CFLAGS)
TSAN_CODE := $(REACTOR_SRCS) $(PROTOCOL_SRCS) $(COMMON_SRCS) apps/reactorc/partial_download.cc
TSAN_BIN  := $(TSAN_DIR)/tsan_threads

$(TSAN_DIR)/obj/%.o: %.cc | deps
	@mkdir -p $(dir $@)
	$(CXX) $(CPPFLAGS_ALL) $(TSAN_FLAGS) -MMD -MP -c $< -o $@

$(TSAN_BIN): $(patsubst %.cc,$(TSAN_DIR)/obj/%.o,tests/tsan/tsan_threads.cc $(TSAN_CODE))
	$(CXX) -fsanitize=thread -pthread -o $@ $^ $(PKG_LIBS)

tsan: $(TSAN_BIN)
	@TSAN_OPTIONS="halt_on_error=1 exitcode=66" $(TSAN_BIN)
.PHONY: tsan

# A few seconds per target over its seed corpus: part of make check.
fuzz-smoke: $(FUZZ_BINS)
	@scripts/fuzz.sh smoke $(FUZZ_DIR)

# The whole suite: the man pages through mandoc's linter, both poller backends, then the
# same under ASan+UBSan. A failing phase does not stop the next: the run always ends with
# scripts/run-tests.sh's summary line, and fails if anything failed.
check: all tests lint-man $(FUZZ_BINS) $(TSAN_BIN)
	@scripts/run-tests.sh --reset
	@status=0; \
	scripts/run-tests.sh $(BUILD) epoll poll || status=1; \
	scripts/fuzz.sh smoke $(FUZZ_DIR) || status=1; \
	TSAN_OPTIONS="halt_on_error=1 exitcode=66" $(TSAN_BIN) || { echo "FAIL  tsan threads" >&2; status=1; }; \
	if [ "$(SANITIZE)" != 1 ]; then \
	  { $(MAKE) --no-print-directory SANITIZE=1 tests && scripts/run-tests.sh build/asan epoll poll; } || status=1; \
	fi; \
	scripts/run-tests.sh --summary || status=1; \
	exit $$status

# Runs the unsanitized suite only, for quick iteration.
test: all tests
	@scripts/run-tests.sh $(BUILD) epoll

lint-man: | deps
	@scripts/lint-man.sh $(MANPAGES)

demo: all
	@scripts/demo.sh $(BUILD)

bench: all
	@bench/run.sh $(BUILD)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	           $(DESTDIR)$(PREFIX)/share/man/man7 $(DESTDIR)$(PREFIX)/share/man/man8 \
	           $(DESTDIR)$(BASH_COMPLETION_DIR) $(DESTDIR)$(ZSH_COMPLETION_DIR)
	install -m 0755 $(REACTORD) $(REACTORC) $(DESTDIR)$(PREFIX)/bin/
	for page in $(MANPAGES); do \
	  section=$${page##*.}; \
	  install -m 0644 $$page $(DESTDIR)$(PREFIX)/share/man/man$$section/; \
	done
	for prog in reactorc reactord; do \
	  install -m 0644 completions/$$prog.bash $(DESTDIR)$(BASH_COMPLETION_DIR)/$$prog; \
	  install -m 0644 completions/_$$prog $(DESTDIR)$(ZSH_COMPLETION_DIR)/_$$prog; \
	done

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/reactord $(DESTDIR)$(PREFIX)/bin/reactorc
	for page in $(MANPAGES); do \
	  section=$${page##*.}; \
	  rm -f $(DESTDIR)$(PREFIX)/share/man/man$$section/$${page##*/}; \
	done
	rm -f $(DESTDIR)$(BASH_COMPLETION_DIR)/reactorc $(DESTDIR)$(BASH_COMPLETION_DIR)/reactord \
	      $(DESTDIR)$(ZSH_COMPLETION_DIR)/_reactorc $(DESTDIR)$(ZSH_COMPLETION_DIR)/_reactord

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
