#!/usr/bin/env bash
# Runs every test (unit and integration; examples are built, not run) and
# closes with one summary line over all test binaries.
set -uo pipefail
cd "$(dirname "$0")/../.."
log=$(mktemp)
cargo build --examples || exit $?
cargo test --no-fail-fast --lib --bins --tests -- --test-threads="${TEST_THREADS:-2}" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "\ntotal: %d passed, %d failed\n", p, f }' "$log"
rm -f "$log"
exit "$rc"
