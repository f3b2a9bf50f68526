# hbmon — build, run, test, bench, install.
CARGO   ?= cargo
DESTDIR ?=
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/sbin
VARDIR  ?= /var/lib/hbmon
SYSTEMD ?= /lib/systemd/system
INITDIR ?= /etc/init.d

.PHONY: all build run test test-deps lint bench install clean mutants

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

# Mutation testing of the pure core (cargo-mutants; not in CI: slow). Unit
# tests only (--lib), in place (no tree copy, reuses target/; so one job): the
# machine is shared. Narrow it with MUTANTS_FILES=src/command.rs. Report in
# mutants.out/ (summary kept in docs/mutants/); figures in the README.
MUTANTS_FILES ?= src/wire/mod.rs src/wire/sig.rs src/command.rs src/work/parse.rs \
	src/client/fitness.rs src/server/detector.rs src/notify/rules.rs src/notify/noise.rs
mutants:
	$(CARGO) mutants --version >/dev/null 2>&1 || $(CARGO) install --locked cargo-mutants
	$(CARGO) mutants --in-place --no-shuffle --timeout 300 \
		$(foreach f,$(MUTANTS_FILES),-f $(f)) -- --lib

install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(VARDIR)/probes $(DESTDIR)$(SYSTEMD) $(DESTDIR)$(INITDIR) $(DESTDIR)/etc/hbmon
	install -m 0755 target/release/hbmon $(DESTDIR)$(BINDIR)/hbmon
	for p in probes/*; do [ -f "$$p" ] && [ "$${p##*.}" != "md" ] && install -m 0755 "$$p" $(DESTDIR)$(VARDIR)/probes/; done; true
	install -m 0644 init/hbmon.service $(DESTDIR)$(SYSTEMD)/hbmon.service
	install -m 0755 init/hbmon.init $(DESTDIR)$(INITDIR)/hbmon
	[ -e $(DESTDIR)/etc/hbmon/work.example ] || install -m 0644 work/fleet.work $(DESTDIR)/etc/hbmon/work.example

clean:
	$(CARGO) clean
