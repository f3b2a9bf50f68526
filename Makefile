# hbmon — build, run, test, bench, install.
CARGO   ?= cargo
DESTDIR ?=
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/sbin
VARDIR  ?= /var/lib/hbmon
SYSTEMD ?= /lib/systemd/system
INITDIR ?= /etc/init.d

.PHONY: all build run test test-deps lint bench install clean

all: build

build:
	$(CARGO) build --release

# Builds, then runs hbmon in the foreground on its embedded default (solo, all roles, 127.0.0.1).
run: build
	./target/release/hbmon start -i

# The whole suite: first the tools the tests use, then lint, then every test.
test: test-deps lint
	bash tests/tools/run-tests.sh

test-deps:
	sh tests/tools/install-deps.sh

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# Benchmarks: each prints its parameters, medians and ratios (see README "Performance").
bench: build
	sh bench/run.sh

install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(VARDIR)/probes $(DESTDIR)$(SYSTEMD) $(DESTDIR)$(INITDIR) $(DESTDIR)/etc/hbmon
	install -m 0755 target/release/hbmon $(DESTDIR)$(BINDIR)/hbmon
	for p in probes/*; do [ -f "$$p" ] && [ "$${p##*.}" != "md" ] && install -m 0755 "$$p" $(DESTDIR)$(VARDIR)/probes/; done; true
	install -m 0644 init/hbmon.service $(DESTDIR)$(SYSTEMD)/hbmon.service
	install -m 0755 init/hbmon.init $(DESTDIR)$(INITDIR)/hbmon
	[ -e $(DESTDIR)/etc/hbmon/work.example ] || install -m 0644 work/fleet.work $(DESTDIR)/etc/hbmon/work.example

clean:
	$(CARGO) clean
