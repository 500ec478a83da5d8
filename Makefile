# ctl — a Swift reimplementation of conntrack(8).
#   make run     install dependencies, build, and list this host's table
#   make test    install dependencies, build, check CTCore's public surface, run unit tests, docs, examples,
#                unit tests under ASan, library tests, fuzz-check, integration tests, and the kernel-sensitive
#                integration tests inside Debian's 6.1 kernel under qemu
#   make api-check    CTCore's public symbols by kind; fails if an internal one is public
#   make test-kernels   those tests inside Debian's 6.1 and 6.12 kernels (KERNELS="6.12" picks)
#   make bench   ctl against conntrack on a 100,000-entry table, and -V -C -L -D of 500 entries
#                (BASELINE=path/to/an/older/ctl times that build in the same rounds)
#   make stress  a 1,000,000-entry table, dumps and deletes under churn, a minute of each fuzzer
#   make fuzz    libFuzzer on the decoders and formatters (FUZZ_SECONDS=600)
#   make fuzz-args    libFuzzer on the argument and -R line parsers (FUZZ_SECONDS=600)
#   make fuzz-check   both for FUZZ_CHECK_SECONDS=60 each, as make test runs them
#   make unit-asan    unit tests under AddressSanitizer, as make test runs them
#   make docs    CTCore's DocC documentation (fails on any warning)
#   make examples     builds and runs Examples/ConntrackTour (as root), a package using CTCore
#   make library-tests   CTCore's public API against the running kernel (root, namespaces of its own)
#   make install PREFIX=/usr DESTDIR=...   binary, man page, completions (make uninstall)
#   make deb     ctl_VERSION_amd64.deb (dpkg-deb, dpkg-shlibdeps), checked with lintian
SHELL := /bin/bash
export PATH := $(PATH):/opt/swift/usr/bin

PREFIX ?= /usr/local
DESTDIR ?=
SWIFT ?= swift
RELEASE := .build/release/ctl

.PHONY: all deps build run test api-check unit unit-asan library-tests integration bench stress install uninstall \
	clean fixtures fuzz fuzz-args fuzz-build fuzz-check docs examples deb version-check test-kernels

all: build

deps:
	@bash scripts/deps.sh

build:
	$(SWIFT) build -c release --product ctl --disable-local-rpath

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
LIBRARY_TESTS ?= CTCoreKernelTests
library-tests:
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --filter '$(LIBRARY_TESTS)'


# CTCore's DocC catalog (Sources/CTCore/CTCore.docc) through swift-docc-plugin,
# into .build/plugins/Swift-DocC/outputs/CTCore.doccarchive (serve it with
# any static web server). Fails on any warning, of docc or of the compiler,
# and when a recipe's code in the catalog is not the code that
# Examples/ConntrackTour compiles (Sources/Recipes).
DOCS_LOG := .build/docs.log
docs:
	python3 scripts/check-doc-snippets.py Sources/CTCore/CTCore.docc Examples/ConntrackTour/Sources/Recipes
	@mkdir -p .build
	set -o pipefail; $(SWIFT) package --disable-sandbox generate-documentation --target CTCore \
		--warnings-as-errors 2>&1 | tee $(DOCS_LOG)
	@! grep -n 'warning:' $(DOCS_LOG) || { echo 'make docs: warnings (above)'; exit 1; }

# Packages that use CTCore as another package would (by path, public API
# only): each is built warning-free and run. The tour needs root: it makes
# a network namespace of its own (deleted at the end) and works in it.
EXAMPLES := Examples/ConntrackTour
examples:
	@for dir in $(EXAMPLES); do \
		echo "== $$dir"; \
		( cd $$dir && mkdir -p .build && set -o pipefail && $(SWIFT) build 2>&1 | tee .build/make.log ) || exit 1; \
		! grep -n 'warning:' $$dir/.build/make.log || { echo "make examples: warnings in $$dir"; exit 1; }; \
		$$dir/.build/debug/$$(basename $$dir) || exit 1; \
	done

integration: build
	CTL=$(CURDIR)/$(RELEASE) python3 -m pytest -q -p no:cacheprovider Tests/integration

# CTCore's public surface by kind; fails if an internal symbol is public.
api-check:
	bash scripts/api-surface.sh

test: deps build
	$(MAKE) --no-print-directory api-check
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory docs
	$(MAKE) --no-print-directory examples
	$(MAKE) --no-print-directory unit-asan
	$(MAKE) --no-print-directory library-tests
	$(MAKE) --no-print-directory fuzz-check
	$(MAKE) --no-print-directory integration
	KERNEL_TIMEOUT=1800 KERNEL_LIST=scripts/kernel-tests-ci.txt \
		$(MAKE) --no-print-directory test-kernels KERNELS="$(TEST_KERNELS)"

# The kernel-sensitive part of the integration tests (scripts/kernel-tests.txt)
# inside Debian's own kernels, each booted under qemu with software emulation
# (scripts/test-kernels.sh: packages fetched with apt-get download and kept in
# .build-kernels/, this machine's root shared read-only). make test runs the
# CI part (scripts/kernel-tests-ci.txt) on the 6.1 kernel (TEST_KERNELS),
# make test-kernels the whole list on every kernel in KERNELS.
KERNELS ?= 6.1 6.12
TEST_KERNELS ?= 6.1
test-kernels: deps build
	$(SWIFT) build -c release --product ctl-capture
	KERNELS="$(KERNELS)" CTL=$(CURDIR)/$(RELEASE) nice -n 10 bash scripts/test-kernels.sh

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
	$(SWIFT) build -c release --product ctl-lib-bench
	cc -O2 -o .build/dump-floor scripts/bench/dump-floor.c
	python3 scripts/bench.py $(CURDIR)/$(RELEASE) --floor $(CURDIR)/.build/dump-floor \
		$(if $(BASELINE),--baseline $(abspath $(BASELINE)))

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

# The version's one source is `version` in Messages.swift (ctl -V); the
# manual's .TH line, the README's "Version" line and CHANGELOG.md's newest
# section must name the same (version-check; test_deb.py too).
VERSION := $(shell sed -n 's/^let version = "\(.*\)"$$/\1/p' Sources/CTCommands/Messages.swift)
version-check:
	@test -n "$(VERSION)" || { echo "no version in Sources/CTCommands/Messages.swift" >&2; exit 1; }
	@grep -q '^\.TH CTL 8 [^ ]* "ctl $(VERSION)"' man/ctl.8 || { echo "man/ctl.8: .TH does not say ctl $(VERSION)" >&2; exit 1; }
	@grep -q '^Version: $(VERSION) ' README.md || { echo "README.md: no 'Version: $(VERSION)' line" >&2; exit 1; }
	@test "$$(sed -n 's/^## \([^ ]*\) .*/\1/p' CHANGELOG.md | head -1)" = "$(VERSION)" || \
		{ echo "CHANGELOG.md: newest section is not $(VERSION)" >&2; exit 1; }

# make deb: the Debian package, with Debian's own tools (no debian/ source
# package: ctl is built by SwiftPM). The tree is make install's, with
# PREFIX=/usr, under $(DEB_ROOT); then: the binary stripped as dh_strip
# does, the manual and changelog compressed as dh_installman and
# dh_installchangelogs do, the copyright file (packaging/copyright), the
# Debian changelog made from CHANGELOG.md (scripts/deb-changelog.py),
# md5sums, Depends from dpkg-shlibdeps (libc6, libmnl0), and the control
# file from packaging/control. Files are owned by root (--root-owner-group,
# no fakeroot needed). DEB_DIR is where the .deb goes; BIN works as for
# make install.
#
# lintian runs on the result, showing informational tags too, and fails the
# build on any warning or error (LINTIAN=: skips it). Two informational
# tags remain; they are suppressed (--suppress-tags, rather than an
# override file shipped in the package) because:
#   hardening-no-fortify-functions: ctl is Swift, which has no
#     _FORTIFY_SOURCE; the unchecked libc calls lintian finds (memcpy,
#     read, ...) are made by Swift code and by the Swift runtime linked in,
#     whose bounds are Swift's own checks.
#   spelling-error-in-binary: the "words" (UNKNOW, THROUG, ADDRES, ...) are
#     fragments of the Swift standard library's compressed Unicode
#     character-name tables, in every statically linked Swift program.
DEB_DIR ?= $(CURDIR)
DEB := ctl_$(VERSION)_amd64.deb
DEB_BUILD := .build/deb
DEB_ROOT := $(DEB_BUILD)/root
MAINTAINER ?= ctl developers <dev@ctl.invalid>
LINTIAN ?= lintian
LINTIAN_SUPPRESS := hardening-no-fortify-functions,spelling-error-in-binary

deb: version-check $(if $(filter $(RELEASE),$(BIN)),build)
	rm -rf $(DEB_BUILD)
	$(MAKE) --no-print-directory install PREFIX=/usr DESTDIR=$(CURDIR)/$(DEB_ROOT) BIN=$(BIN)
	strip --remove-section=.comment --remove-section=.note --strip-unneeded $(DEB_ROOT)/usr/sbin/ctl
	gzip -9n $(DEB_ROOT)/usr/share/man/man8/ctl.8
	install -D -m 0644 packaging/copyright $(DEB_ROOT)/usr/share/doc/ctl/copyright
	python3 scripts/deb-changelog.py CHANGELOG.md "$(MAINTAINER)" | gzip -9n > $(DEB_ROOT)/usr/share/doc/ctl/changelog.gz
	chmod 0644 $(DEB_ROOT)/usr/share/doc/ctl/changelog.gz
	mkdir -p $(DEB_ROOT)/DEBIAN $(DEB_BUILD)/debian
	cd $(DEB_ROOT) && find usr -type f | LC_ALL=C sort | xargs md5sum > DEBIAN/md5sums
	chmod 0644 $(DEB_ROOT)/DEBIAN/md5sums
	printf 'Source: ctl\n\nPackage: ctl\nArchitecture: amd64\n' > $(DEB_BUILD)/debian/control
	cd $(DEB_BUILD) && dpkg-shlibdeps -O root/usr/sbin/ctl | sed -n 's/^shlibs:Depends=//p' > depends
	test -s $(DEB_BUILD)/depends
	# The packed relative relocations (DT_RELR, Package.swift) need glibc
	# 2.36: a version need without a symbol, which dpkg-shlibdeps misses.
	if readelf -V $(DEB_ROOT)/usr/sbin/ctl | grep -q GLIBC_ABI_DT_RELR; then \
	    sed -i -E 's/libc6 \(>= 2\.([0-9]|[12][0-9]|3[0-5])(\.[0-9]+)?\)/libc6 (>= 2.36)/' $(DEB_BUILD)/depends; fi
	sed -e 's/@VERSION@/$(VERSION)/' -e 's/@MAINTAINER@/$(MAINTAINER)/' \
	    -e "s/@SIZE@/$$(du -s -k --apparent-size --exclude=DEBIAN $(DEB_ROOT) | cut -f1)/" \
	    -e "s/@DEPENDS@/$$(cat $(DEB_BUILD)/depends)/" packaging/control > $(DEB_ROOT)/DEBIAN/control
	dpkg-deb --root-owner-group -Zxz --build $(DEB_ROOT) $(DEB_DIR)/$(DEB)
	$(if $(filter :,$(LINTIAN)),,$(LINTIAN) --info --fail-on warning,error $(if $(LINTIAN_SUPPRESS),--suppress-tags $(LINTIAN_SUPPRESS)) $(DEB_DIR)/$(DEB))

clean:
	rm -rf .build .build-fuzz .build-asan .build-kernels $(addsuffix /.build,$(EXAMPLES))
