#!/bin/sh
# make bench: every benchmark, one after the other (see README "Performance").
set -eu
cd "$(dirname "$0")/.."
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
for ex in examples/bench_*.rs; do
  name=$(basename "$ex" .rs)
  echo
  echo "== $name"
  cargo run -q --release --example "$name"
done
