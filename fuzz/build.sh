#!/bin/sh
# Builds the fuzz targets on a stable toolchain, as `cargo fuzz build -s none`
# would: libFuzzer's coverage instrumentation without a sanitizer.
# RUSTC_BOOTSTRAP=1 unlocks what libfuzzer-sys needs on stable; an explicit
# --target keeps RUSTFLAGS off build scripts and proc-macros (as cargo fuzz does).
set -e
cd "$(dirname "$0")"
RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Cpasses=sancov-module \
 -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
 -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares \
 --cfg fuzzing -Cdebug-assertions -Coverflow-checks" \
 cargo build --release --bins --target "$(rustc -vV | sed -n "s/^host: //p")" "$@"
