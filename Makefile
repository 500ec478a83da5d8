# ctl — a Swift reimplementation of conntrack(8).
#   make run     install dependencies, build, and list this host's table
#   make test    install dependencies, build, run unit and integration tests
#   make bench   ctl against conntrack on a 100,000-entry table
#   make stress  a 1,000,000-entry table, dumps and deletes under churn
#   make install PREFIX=/usr DESTDIR=...   binary, man page, completions (make uninstall)
SHELL := /bin/bash
export PATH := $(PATH):/opt/swift/usr/bin

PREFIX ?= /usr/local
DESTDIR ?=
SWIFT ?= swift
RELEASE := .build/release/ctl

.PHONY: all deps build run test unit integration bench stress install uninstall clean fixtures

all: build

deps:
	@bash scripts/deps.sh

build:
	$(SWIFT) build -c release --product ctl

run: deps build
	$(RELEASE) -L

unit:
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

integration: build
	CTL=$(CURDIR)/$(RELEASE) python3 -m pytest -q -p no:cacheprovider Tests/integration

test: deps build
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory integration

bench: deps build
	python3 scripts/bench.py $(CURDIR)/$(RELEASE)

# Raises nf_conntrack_max in the initial namespace for the run (restored after).
stress: deps build
	python3 scripts/stress.py $(CURDIR)/$(RELEASE) $(STRESS_ARGS)

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
	rm -rf .build
