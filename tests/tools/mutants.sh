#!/usr/bin/env bash
# Mutation testing of the pure core (issue 19), what `make mutants` runs.
# Not in CI: even made cheap it is minutes per module on a shared machine.
#
# Cheap mutants: each mutant rebuilds only the lib's unit-test binary
# (`-C --lib`, so neither the bin nor tests/*.rs), in the `mutants` profile
# (no debuginfo, its own target dir: the everyday debug build stays valid),
# in place (no tree copy), one at a time; the baseline runs once here and
# cargo-mutants skips its own; each module runs only its own tree's tests,
# which are fast, so a short timeout ends infinite-loop mutants.
#
# Usage: tests/tools/mutants.sh [NAME[/K]...]   (default: every module below)
# NAME/K tests every K-th mutant of the module only (a round-robin sample:
# an estimate when there is no time for all of them; the summary says so);
# NAME/K:S takes the S-th such sample (0 <= S < K), to widen one later.
# Report: mutants.out/NAME/mutants.out/{caught,missed,timeout,unviable}.txt
# and one summary line per module on stdout and in mutants.out/summary.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."

# name        file                    tests (filter)   functions (-F regex, "-" = all)
SPECS='
timers        src/timers.rs           timers::         -
noise         src/notify/noise.rs     notify::         -
command       src/command.rs          command::        -
sig           src/wire/sig.rs         wire::           -
rules         src/notify/rules.rs     notify::         -
ival          src/ranges.rs           ranges::         parse_ival
fitness       src/client/fitness.rs   client::         -
parse         src/work/parse/mod.rs       work::           -
wire          src/wire/mod.rs         wire::           -
detector      src/server/detector/mod.rs  server::         -
decide        src/notify/engine/decide/mod.rs   notify::   -
decide-tick   src/notify/engine/decide/tick.rs  notify::   -
'
TIMEOUT=${MUTANTS_TIMEOUT:-30}

cargo mutants --version >/dev/null 2>&1 || cargo install --locked cargo-mutants
echo "baseline: cargo test --profile mutants --lib"
cargo test --profile mutants --lib -q >/dev/null 2>&1 || { echo "baseline failed"; exit 1; }

mkdir -p mutants.out
echo "$SPECS" | while read -r name file filter fns; do
	[ -n "$name" ] || continue
	k=1 s=0 out=mutants.out/$name
	if [ $# -gt 0 ]; then
		arg=$(printf '%s\n' "$@" | grep -E "^$name(/[0-9]+(:[0-9]+)?)?$" | head -1 || true)
		[ -n "$arg" ] || continue
		[[ "$arg" != */* ]] || k=${arg#*/}
		[[ "$k" != *:* ]] || { s=${k#*:} k=${k%:*} out=$out-$s-of-$k; }
	fi
	rm -rf "$out"
	sel=(-f "$file")
	[ "$fns" = - ] || sel+=(-F "$fns")
	[ "$k" = 1 ] || sel+=(--shard "$s/$k" --sharding round-robin)
	start=$(date +%s)
	# Exit status 2/3 = some mutants missed/timed out: that is the report.
	cargo mutants --in-place --no-shuffle --baseline skip --profile mutants \
		--timeout "$TIMEOUT" --build-timeout 300 -C --lib "${sel[@]}" -o "$out" \
		-- -- "$filter" >"$out.log" 2>&1 || true
	secs=$(($(date +%s) - start))
	# -F lets cargo-mutants' "delete field" mutants of other functions
	# through: count only the named functions' mutants.
	pat=$([ "$fns" = - ] && echo . || echo "$fns")
	n() { cat "$out/mutants.out/$1.txt" 2>/dev/null | grep -cE "$pat" || true; }
	c=$(n caught) m=$(n missed) t=$(n timeout) u=$(n unviable)
	v=$((c + m + t))
	pct=$([ "$v" -gt 0 ] && echo $(((c + t) * 100 / v)) || echo -)
	sample=$([ "$k" = 1 ] || echo ", sample $s of $k: every ${k}th mutant only")
	line="$name $file: caught $c, timeout $t, missed $m, unviable $u; $((c + t))/$v = $pct % ($secs s$sample)"
	echo "$line" | tee -a mutants.out/summary.txt
done
