#!/bin/sh
# bench/ab.sh [COMMIT] (also `BENCH=ab make bench`): "the existing benches
# no slower" (issue 14). Builds COMMIT's release binary in its own target
# dir (target/ab/, from `git archive`, so no worktree is touched), then runs
# the daemon benches against both binaries, interleaved (old new, new old,
# ...), each bench's server started from $HBMON_BENCH_BIN (load generators
# and the bench programs themselves are this tree's). Prints the median of
# every figure per side and the ratio new/old.
#
# COMMIT defaults to 299b88f, the last commit on main before issue 14's
# store threads (2efc936 "server.db and the notifier on one store thread").
# AB_ROUNDS=N runs per side (default 3); AB_BENCHES="bench_cmd ..." the
# benches (default below: those that existed before issue 14, start a
# daemon and end in a minute or so; bench_client takes minutes per run).
# A bench that measures library code in-process (bench_history,
# bench_udp_ingest, bench_saturation's hbmon loop) has nothing to swap.
# `bench/ab.sh --table LOG...` prints the table again from the figure
# lines of one or more earlier runs' logs (their samples pooled).
set -eu
cd "$(dirname "$0")/.."

# figure|SIDE|BENCH|NAME|VALUE|UNIT|BETTER lines on stdin -> the table.
table() {
  echo "| bench | figure | old | new | new/old | reading |"
  echo "|---|---|---|---|---|---|"
  grep '^figure|' | awk -F'|' '
    function median(s,   a, n, i, j, t) {
      n = split(s, a, " ")
      for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function num(x) { return (x >= 1000 || x <= -1000) ? sprintf("%.0f", x) : sprintf("%.4g", x) }
    {
      k = $3 "|" $4
      if (!(k in unit)) { order[++nk] = k; unit[k] = $6; better[k] = $7 }
      v[k, $2] = v[k, $2] " " $5
      c[k, $2]++
    }
    END {
      for (i = 1; i <= nk; i++) {
        k = order[i]; split(k, bn, "|")
        if (v[k, "old"] == "" || v[k, "new"] == "") { printf "| %s | %s | %s | %s | | missing on one side |\n", bn[1], bn[2], v[k, "old"], v[k, "new"]; continue }
        o = median(v[k, "old"]); n = median(v[k, "new"])
        r = o != 0 ? n / o : (n == 0 ? 1 : 0)
        # Within 10 %: noise on this shared machine.
        good = better[k] == "lower" ? r < 0.9 : r > 1.1
        bad = better[k] == "lower" ? r > 1.1 : r < 0.9
        reading = good ? "better" : bad ? "**worse**" : "same (within 10 %)"
        u = unit[k] == "" ? "" : unit[k] ", "
        printf "| %s | %s (%s%s is better; runs %d/%d) | %s | %s | %.2f | %s |\n", bn[1], bn[2], u, better[k], c[k, "old"], c[k, "new"], num(o), num(n), r, reading
      }
    }'
}
if [ "${1:-}" = --table ]; then
  shift
  cat "$@" | table
  exit 0
fi
base=${1:-${AB_BASE:-299b88f}}
rounds=${AB_ROUNDS:-3}
benches=${AB_BENCHES:-bench_cmd bench_fleet bench_alert bench_udp_daemon bench_hostile}
commit=$(git rev-parse --verify --short "$base^{commit}")
src=target/ab/src-$commit

if [ ! -f "$src/Cargo.toml" ]; then
  rm -rf "$src"
  mkdir -p "$src"
  git archive "$commit" | tar -x -C "$src"
fi
# Its own profile (the commit's Cargo.toml) and target dir; rebuilt only
# when missing, since the sources never change.
(cd "$src" && cargo build --release --bin hbmon --target-dir ../target)
old=$PWD/target/ab/target/release/hbmon
# shellcheck disable=SC2046
cargo build --release --bin hbmon $(for e in $benches; do printf -- '--example %s ' "$e"; done)
new=$PWD/target/release/hbmon

mkdir -p target/bench
log=${BENCH_LOG:-target/bench/ab-$(date -u +%Y%m%dT%H%M%SZ).log}
args() {
  case $1 in
    bench_alert) echo 5 ;;
    *) echo ;;
  esac
}
{
  echo "A/B: old = $commit ($(git log -1 --format=%s "$commit" | cut -c1-70)), new = $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo ' + local changes')"
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  r=1
  while [ "$r" -le "$rounds" ]; do
    for b in $benches; do
      if [ $((r % 2)) = 1 ]; then order="old new"; else order="new old"; fi
      for side in $order; do
        if [ "$side" = old ]; then bin=$old; else bin=$new; fi
        echo "== round $r/$rounds $b $side (load average $(cut -d' ' -f1-3 /proc/loadavg))"
        # shellcheck disable=SC2046
        HBMON_BENCH_BIN=$bin "target/release/examples/$b" $(args "$b") 2>&1 |
          sed "s/^figure|/figure|$side|/"
      done
    done
    r=$((r + 1))
  done
  echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$log"

# figure|SIDE|BENCH|NAME|VALUE|UNIT|BETTER -> medians and new/old.
{
  echo
  echo "## A/B: $commit (old) vs $(git rev-parse --short HEAD) (new), medians of $rounds runs each, interleaved"
  echo
  table < "$log"
  echo
  echo "(full output: $log)"
} | tee -a "$log"
