# ctl — a Swift reimplementation of conntrack(8).
#   make run     install dependencies, build, and list this host's table
#   make test    install dependencies, build, run unit and integration tests
#   make bench   ctl against conntrack on a 100,000-entry table
#   make install PREFIX=/usr DESTDIR=...   binary, man page, completions (make uninstall)
SHELL := /bin/bash
export PATH := $(PATH):/opt/swift/usr/bin

PREFIX ?= /usr/local
DESTDIR ?=
SWIFT ?= swift
RELEASE := .build/release/ctl

.PHONY: all deps build run test unit integration bench install uninstall clean fixtures

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

# Recaptures the decoder's byte fixtures from this kernel (in a private namespace).
fixtures:
	$(SWIFT) build -c release --product ctl-capture
	bash scripts/capture-fixtures.sh $(CURDIR)/.build/release/ctl-capture Tests/CTCoreTests/Fixtures

# Where each shell looks for completions under PREFIX: bash-completion's
# on-demand directory, Debian's zsh vendor directory, fish's vendor
# directory. BIN=path installs that binary instead of building one.
BIN ?= $(RELEASE)
BINDIR = $(DESTDIR)$(PREFIX)/sbin
MANDIR = $(DESTDIR)$(PREFIX)/share/man/man8
BASHDIR = $(DESTDIR)$(PREFIX)/share/bash-completion/completions
ZSHDIR = $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions
FISHDIR = $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d

install: $(if $(filter $(RELEASE),$(BIN)),build)
	install -D -m 0755 $(BIN) $(BINDIR)/ctl
	install -D -m 0644 man/ctl.8 $(MANDIR)/ctl.8
	install -D -m 0644 completions/ctl.bash $(BASHDIR)/ctl
	install -D -m 0644 completions/_ctl $(ZSHDIR)/_ctl
	install -D -m 0644 completions/ctl.fish $(FISHDIR)/ctl.fish

uninstall:
	rm -f $(BINDIR)/ctl $(MANDIR)/ctl.8 $(BASHDIR)/ctl $(ZSHDIR)/_ctl $(FISHDIR)/ctl.fish

clean:
	rm -rf .build
