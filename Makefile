# ctl — a Swift reimplementation of conntrack(8).
#   make run     install dependencies, build, and list this host's table
#   make test    install dependencies, build, run unit tests (also under ASan), library tests, fuzz-check,
#                integration tests
#   make bench   ctl against conntrack on a 100,000-entry table
#   make stress  a 1,000,000-entry table, dumps and deletes under churn, a minute of each fuzzer
#   make fuzz    libFuzzer on the decoders and formatters (FUZZ_SECONDS=600)
#   make fuzz-args    libFuzzer on the argument and -R line parsers (FUZZ_SECONDS=600)
#   make fuzz-check   both for FUZZ_CHECK_SECONDS=60 each, as make test runs them
#   make unit-asan    unit tests under AddressSanitizer, as make test runs them
#   make library-tests   CTCore's public API against the running kernel (root, namespaces of its own)
#   make install PREFIX=/usr DESTDIR=...   binary, man page, completions (make uninstall)
SHELL := /bin/bash
export PATH := $(PATH):/opt/swift/usr/bin

PREFIX ?= /usr/local
DESTDIR ?=
SWIFT ?= swift
RELEASE := .build/release/ctl

.PHONY: all deps build run test unit unit-asan library-tests integration bench stress install uninstall clean fixtures \
	fuzz fuzz-args fuzz-build fuzz-check

all: build

deps:
	@bash scripts/deps.sh

build:
	$(SWIFT) build -c release --product ctl

run: deps build
	$(RELEASE) -L

# The unit tests need no kernel: they leave out the library tests
# (CTCoreKernelTests), which make library-tests runs.
KERNEL_TESTS := CTCoreKernelTests

unit:
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --skip $(KERNEL_TESTS)

# The unit tests built with AddressSanitizer (own build folder); leaks of
# the toolchain's libraries are suppressed (scripts/lsan.supp).
unit-asan:
	$(SWIFT) build --build-tests --scratch-path .build-asan -Xswiftc -sanitize=address
	LSAN_OPTIONS=suppressions=$(CURDIR)/scripts/lsan.supp $(SWIFT) test --skip-build --scratch-path .build-asan \
		--skip $(KERNEL_TESTS)

# CTCore through its public API only, against the running kernel: every
# operation in network namespaces of the tests' own (ip netns add/delete),
# with conntrack as the oracle. Needs root.
# ExpectationTests is not run yet (unfinished: it hung once, before
# its namespace setup was debugged; see the branch's report);
# LIBRARY_TESTS=CTCoreKernelTests runs every class.
LIBRARY_TESTS ?= CTCoreKernelTests.(FlowTableTests|NamespaceTests|EventStreamTests)
library-tests:
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --filter '$(LIBRARY_TESTS)'


integration: build
	CTL=$(CURDIR)/$(RELEASE) python3 -m pytest -q -p no:cacheprovider Tests/integration

test: deps build
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory unit-asan
	$(MAKE) --no-print-directory library-tests
	$(MAKE) --no-print-directory fuzz-check
	$(MAKE) --no-print-directory integration

# libFuzzer (with AddressSanitizer) on everything that reads kernel bytes:
# CTCore's FuzzEntry. Seeds are the kernel-captured fixtures, as payloads
# and as netlink messages; new inputs collect in $(FUZZ_DIR)/corpus, and a
# crashing input is written to $(FUZZ_DIR)/artifacts (copy it into
# Tests/CTCoreTests/Fixtures/fuzz-regressions once fixed). Replay an input
# without libFuzzer: swift run ctl-fuzz-decoder FILE...
FUZZ_DIR := .build-fuzz
FUZZER := $(FUZZ_DIR)/release/ctl-fuzz-decoder
FUZZ_SECONDS ?= 600
FUZZ_CHECK_SECONDS ?= 60
REGRESSIONS := Tests/CTCoreTests/Fixtures/fuzz-regressions
# The same for the argument parser, the option checks and -R's line parser
# (CTCommands' FuzzArguments): seeds are command lines and -R files using
# every option, the dictionary every option name the parser knows; a crash
# goes to $(FUZZ_DIR)/args-artifacts, and once fixed into ARGS_REGRESSIONS
# (replayed by the unit tests). Replay: swift run ctl-fuzz-args FILE...
DECODER_FUZZ = $(FUZZER) -timeout=10 -print_final_stats=1 \
	-artifact_prefix=$(FUZZ_DIR)/artifacts/ $(FUZZ_DIR)/corpus $(FUZZ_DIR)/seeds $(REGRESSIONS)
ARGS_FUZZER := $(FUZZ_DIR)/release/ctl-fuzz-args
ARGS_REGRESSIONS := Tests/CTCommandsTests/Fixtures/fuzz-args-regressions
ARGS_FUZZ = $(ARGS_FUZZER) -timeout=10 -max_len=4096 -print_final_stats=1 -dict=$(FUZZ_DIR)/args.dict \
	-artifact_prefix=$(FUZZ_DIR)/args-artifacts/ $(FUZZ_DIR)/args-corpus $(FUZZ_DIR)/args-seeds $(ARGS_REGRESSIONS)
# libFuzzer's running report, without the per-input lines and dictionary.
QUIET_FUZZ = 2>&1 | grep -v '^\#[0-9]\|^\s*"\|dictionary' ; exit $${PIPESTATUS[0]}

fuzz-build:
	$(SWIFT) build -c release --scratch-path $(FUZZ_DIR) --product ctl-fuzz-decoder \
		-Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
	$(SWIFT) build -c release --scratch-path $(FUZZ_DIR) --product ctl-fuzz-args \
		-Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
	python3 scripts/fuzz-corpus.py seeds $(FUZZ_DIR)/seeds
	python3 scripts/fuzz-args-corpus.py seeds $(FUZZ_DIR)/args-seeds
	python3 scripts/fuzz-args-corpus.py dict $(FUZZ_DIR)/args.dict
	mkdir -p $(FUZZ_DIR)/corpus $(FUZZ_DIR)/artifacts $(FUZZ_DIR)/args-corpus $(FUZZ_DIR)/args-artifacts

fuzz: fuzz-build
	$(DECODER_FUZZ) -max_total_time=$(FUZZ_SECONDS)

fuzz-args: fuzz-build
	$(ARGS_FUZZ) -max_total_time=$(FUZZ_SECONDS)

# Bounded, in make test: fails on any crash, leak, failed check, or input
# slower than 10 s.
fuzz-check: fuzz-build
	$(DECODER_FUZZ) -max_total_time=$(FUZZ_CHECK_SECONDS) $(QUIET_FUZZ)
	$(ARGS_FUZZ) -max_total_time=$(FUZZ_CHECK_SECONDS) $(QUIET_FUZZ)

bench: deps build
	python3 scripts/bench.py $(CURDIR)/$(RELEASE)

# Raises nf_conntrack_max in the initial namespace for the run (restored after).
stress: deps build fuzz-build
	python3 scripts/stress.py $(CURDIR)/$(RELEASE) --fuzz-seconds 60 --fuzzer $(FUZZER) \
		--corpus $(FUZZ_DIR)/seeds $(REGRESSIONS) --args-fuzzer $(ARGS_FUZZER) \
		--args-corpus $(FUZZ_DIR)/args-seeds $(ARGS_REGRESSIONS) --args-dict $(FUZZ_DIR)/args.dict $(STRESS_ARGS)

# Recaptures the decoder's byte fixtures from this kernel (in a private namespace).
fixtures:
	$(SWIFT) build -c release --product ctl-capture
	bash scripts/capture-fixtures.sh $(CURDIR)/.build/release/ctl-capture Tests/CTCoreTests/Fixtures

# Where each file goes under PREFIX: man's section 8, bash-completion's
# on-demand directory, zsh's (Debian's zsh reads vendor-completions under
# /usr and site-functions under /usr/local), fish's vendor directory (fish
# reads it under each XDG_DATA_DIRS entry; /usr/share when that is unset).
# Each may be set on the command line. BIN=path installs that binary
# instead of building one.
BIN ?= $(RELEASE)
BINDIR ?= $(PREFIX)/sbin
MANDIR ?= $(PREFIX)/share/man/man8
BASHDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHDIR ?= $(PREFIX)/share/zsh/$(if $(filter /usr,$(PREFIX)),vendor-completions,site-functions)
FISHDIR ?= $(PREFIX)/share/fish/vendor_completions.d

install: $(if $(filter $(RELEASE),$(BIN)),build)
	install -D -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/ctl
	install -D -m 0644 man/ctl.8 $(DESTDIR)$(MANDIR)/ctl.8
	install -D -m 0644 completions/ctl.bash $(DESTDIR)$(BASHDIR)/ctl
	install -D -m 0644 completions/_ctl $(DESTDIR)$(ZSHDIR)/_ctl
	install -D -m 0644 completions/ctl.fish $(DESTDIR)$(FISHDIR)/ctl.fish

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/ctl $(DESTDIR)$(MANDIR)/ctl.8 $(DESTDIR)$(BASHDIR)/ctl \
	      $(DESTDIR)$(ZSHDIR)/_ctl $(DESTDIR)$(FISHDIR)/ctl.fish

clean:
	rm -rf .build .build-fuzz .build-asan
