#!/bin/sh
# make bench: the footprint and throughput figures of the README
# ("Performance"), in one run of about 6 minutes: binary size, the client's
# RSS/PSS and CPU, 100,000 hosts at 10 s on a real server, ingest at
# saturation (pinned, beside a plain loop and Python), PING under a flood.
# BENCH=all runs every examples/bench_*.rs instead (much longer).
set -eu
cd "$(dirname "$0")/.."
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
echo "binary: target/release/hbmon $(stat -c %s target/release/hbmon) bytes"
if [ "${BENCH:-}" = all ]; then
  list=$(ls examples/bench_*.rs)
else
  list="examples/bench_client.rs examples/bench_udp_daemon.rs examples/bench_saturation.rs examples/bench_flood_ping.rs"
fi
for ex in $list; do
  name=$(basename "$ex" .rs)
  echo
  echo "== $name"
  case $name in
    bench_client) cargo run -q --release --example "$name" -- "${CLIENT_SECS:-120}" ;;
    *) cargo run -q --release --example "$name" ;;
  esac
done
