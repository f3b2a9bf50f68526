#!/bin/sh
# make bench: every figure issues 18 and 14 ask for, in one run of about
# 8 minutes after the build: binary size, the plain client's RSS/PSS and CPU
# (bench_client), 100,000 hosts at 10 s on a real server (bench_udp_daemon),
# ingest at saturation pinned beside a plain loop and Python
# (bench_saturation), PING during and after a 10 s flood (bench_flood_ping),
# a 10,000-host outage (bench_outage); then a table of every figure against
# its aim, ready for the README's "Performance" section.
#
# The whole output is kept in target/bench/run-DATE.log (BENCH_LOG=FILE to
# choose). CLIENT_SECS=N measures the client for N s (default 120).
# BENCH=all runs every examples/bench_*.rs instead (much longer, no table);
# BENCH=ab runs bench/ab.sh (this tree against an older commit's binary).
set -eu
cd "$(dirname "$0")/.."
case "${BENCH:-}" in
  ab) exec sh bench/ab.sh "$@" ;;
esac
sh bench/deps.sh

if [ "${BENCH:-}" = all ]; then
  list=$(for f in examples/bench_*.rs; do basename "$f" .rs; done)
else
  list="bench_client bench_udp_daemon bench_saturation bench_flood_ping bench_outage"
fi
# One cargo call for the binary and every example: each is a fat-LTO link.
# shellcheck disable=SC2046
cargo build --release --bin hbmon $(for e in $list; do printf -- '--example %s ' "$e"; done)

mkdir -p target/bench
log=${BENCH_LOG:-target/bench/run-$(date -u +%Y%m%dT%H%M%SZ).log}
load() { cut -d' ' -f1-3 /proc/loadavg; }
start=$(date +%s)
{
  echo "make bench: $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
  echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "load average at start: $(load)"
  size=$(stat -c %s target/release/hbmon)
  echo "binary: target/release/hbmon $size bytes"
  echo "summary| release binary size (stripped) | $(awk -v s="$size" 'BEGIN {printf "%.2f MB", s / 1e6}') | | - |"
  for name in $list; do
    echo
    echo "== $name (load average $(load))"
    case $name in
      bench_client) set -- "${CLIENT_SECS:-120}" ;;
      *) set -- ;;
    esac
    if ! "target/release/examples/$name" "$@"; then
      echo "summary| $name | failed (see above) | | **not met** |"
    fi
  done
  echo
  echo "load average at end: $(load); $(( $(date +%s) - start )) s"
} 2>&1 | tee "$log"

# The table: every bench's `summary|` lines (hbmon::bench_daemon::summary).
{
  echo
  echo "## Summary ($(date -u '+%Y-%m-%d %H:%M UTC'), load average $(grep -m1 '^load average at start' "$log" | cut -d' ' -f5-7) at start, $(grep -m1 '^load average at end' "$log" | cut -d' ' -f5-7 | tr -d ';') at end)"
  echo
  echo "| what | result | aim | |"
  echo "|---|---|---|---|"
  grep '^summary|' "$log" | sed 's/^summary|/|/'
  echo
  echo "(full output: $log)"
} | tee -a "$log"
