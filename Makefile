# hbmon — build, run, test, bench, install.
CARGO   ?= cargo
DESTDIR ?=
PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/sbin
VARDIR  ?= /var/lib/hbmon
SYSTEMD ?= /lib/systemd/system
INITDIR ?= /etc/init.d
MANDIR  ?= $(PREFIX)/share/man
ETCDIR  ?= /etc/hbmon
# What install-files copies: the release build by default; a test passes its own.
BIN     ?= target/release/hbmon
MANGEN  ?= target/release/examples/mangen
MANOUT  ?= target/man

.PHONY: all build run test test-deps lint bench man install install-files uninstall clean mutants

all: build

build:
	$(CARGO) build --release

# Builds, then runs hbmon in the foreground (Ctrl-C stops it) on its embedded default (solo, all roles, 127.0.0.1).
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

# Benchmarks (see README "Performance"): builds the release binary and the
# benches, runs them, ends with a table of every figure against its aim.
# BENCH=ab: this tree against an older commit's binary (bench/ab.sh);
# BENCH=all: every examples/bench_*.rs.
bench:
	sh bench/run.sh

# hbmon(8) and hbmon-COMMAND(8) from the clap definitions (examples/mangen.rs).
man:
	$(CARGO) build --release --example mangen

# The binary (stripped), man pages, probes, init files and a commented
# conf.example; an existing /etc/hbmon/conf or work is never touched.
install: build man install-files

install-files:
	rm -rf $(MANOUT) && $(MANGEN) $(MANOUT)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(VARDIR)/probes $(DESTDIR)$(SYSTEMD) $(DESTDIR)$(INITDIR) $(DESTDIR)$(ETCDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -s -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/hbmon
	for p in probes/*; do [ -f "$$p" ] && [ "$${p##*.}" != "md" ] && install -m 0755 "$$p" $(DESTDIR)$(VARDIR)/probes/; done; true
	sed 's|/usr/local/sbin/hbmon|$(BINDIR)/hbmon|g' init/hbmon.service > $(DESTDIR)$(SYSTEMD)/hbmon.service
	chmod 0644 $(DESTDIR)$(SYSTEMD)/hbmon.service
	sed 's|/usr/local/sbin/hbmon|$(BINDIR)/hbmon|g' init/hbmon.init > $(DESTDIR)$(INITDIR)/hbmon
	chmod 0755 $(DESTDIR)$(INITDIR)/hbmon
	install -m 0644 init/conf.example $(DESTDIR)$(ETCDIR)/conf.example
	[ -e $(DESTDIR)$(ETCDIR)/work.example ] || install -m 0644 work/fleet.work $(DESTDIR)$(ETCDIR)/work.example
	install -m 0644 $(MANOUT)/*.8 $(DESTDIR)$(MANDIR)/man8/
	install -m 0644 man/*.5 $(DESTDIR)$(MANDIR)/man5/

# Removes what install put in place; state, logs, conf and work stay.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/hbmon $(DESTDIR)$(SYSTEMD)/hbmon.service $(DESTDIR)$(INITDIR)/hbmon
	rm -f $(DESTDIR)$(ETCDIR)/conf.example $(DESTDIR)$(ETCDIR)/work.example
	rm -f $(DESTDIR)$(MANDIR)/man8/hbmon.8 $(DESTDIR)$(MANDIR)/man8/hbmon-*.8
	rm -f $(DESTDIR)$(MANDIR)/man5/hbmon.conf.5 $(DESTDIR)$(MANDIR)/man5/hbmon-work.5
	for p in probes/*; do rm -f $(DESTDIR)$(VARDIR)/probes/$${p##*/}; done
	-rmdir $(DESTDIR)$(VARDIR)/probes $(DESTDIR)$(ETCDIR) 2>/dev/null

clean:
	$(CARGO) clean

# Mutation testing of the pure core (cargo-mutants; not in CI: slow). Cheap
# mutants: only the lib's unit-test binary is rebuilt, without debuginfo (the
# `mutants` profile, own target dir), in place, one job, the baseline once,
# each module against its own tree's tests with a 30 s timeout; see
# tests/tools/mutants.sh. MUTANTS="wire parse/4" narrows it (NAME/K = every
# K-th mutant). Report in mutants.out/ (summary kept in docs/mutants/),
# figures in the README; equivalent mutants are excluded in .cargo/mutants.toml.
MUTANTS ?=
mutants:
	bash tests/tools/mutants.sh $(MUTANTS)
