#!/bin/sh
# Regenerates bench/client-hot.ld, the plain client's hot functions that the
# release link puts together (build.rs, issue 18): a plain client of a server
# (the standard items of the solo work, as bench_client runs it) runs under
# callgrind; its counters are zeroed once start-up and the trim are over and
# dumped after SECS more seconds (default 200: three 1-minute rounds, twenty
# heartbeats), and every function that ran in that window becomes one line
# of the linker script, in the order of first use... by cost (most first).
# Names are kept without their `17h<hash>E` tail, as a glob: the hash
# changes with the build's metadata (profile, dependencies), the path does
# not, and a function that no longer exists simply matches nothing.
#
# Run: sh bench/client-order.sh [SECS]   (needs valgrind; builds the debug
# binary: its functions are the release's plus the ones LTO inlines away,
# which match nothing there).
set -eu
cd "$(dirname "$0")/.."
secs=${1:-200}
command -v valgrind >/dev/null || { echo "client-order: valgrind is needed" >&2; exit 1; }
cargo build --bin hbmon
bin=$PWD/target/debug/hbmon
dir=$(mktemp -d)
trap 'kill $spid $cpid 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
srv=127.14.1.1 cli=127.14.1.2
port=$(python3 -c "import socket; s=socket.socket(); s.bind(('$srv',0)); print(s.getsockname()[1])")
{
  printf 'host srv.bench.example srv %s\nhost cli.bench.example cli %s\nserver srv\nport %s\nhb_port %s\n' "$srv" "$cli" "$port" "$port"
  grep -E '^(get|fit) ' work/solo.work
} > "$dir/work"
for n in srv cli; do
  mkdir -p "$dir/$n"
  ip=$srv; extra="workconf $dir/work"
  [ $n = cli ] && { ip=$cli; extra="server $srv:$port"; }
  printf 'hostname %s.bench.example\nbind %s\nvardir %s/var\nlogdir %s/log\nrundir %s/run\nloglvl quiet\n%s\n' \
    $n "$ip" "$dir/$n" "$dir/$n" "$dir/$n" "$extra" > "$dir/$n/hbmon.conf"
done
"$bin" -c "$dir/srv/hbmon.conf" start -i 2>/dev/null & spid=$!
sleep 2
valgrind --tool=callgrind --demangle=no --callgrind-out-file="$dir/cg.%p" \
  "$bin" -c "$dir/cli/hbmon.conf" start -i 2>"$dir/vg.log" & cpid=$!
# Start-up under valgrind is ~50x slower: wait for the trim (footprint.rs,
# 30 s into the loop) and a first round.
sleep 100
callgrind_control --zero $cpid >/dev/null
echo "client-order: collecting ${secs} s of the steady state" >&2
sleep "$secs"
callgrind_control --dump $cpid >/dev/null
sleep 2
# The last dump: functions (fn= lines, compressed names) with their cost.
out=$(ls -t "$dir"/cg.$cpid* | head -1)
python3 bench/client-order.py "$out" > bench/client-hot.ld
echo "client-order: $(grep -c '^ *\*(' bench/client-hot.ld) functions in bench/client-hot.ld" >&2
