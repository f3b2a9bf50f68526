#!/bin/sh
# Regenerates bench/client-hot.ld, the plain client's hot functions that the
# release link puts together (build.rs, issue 18). The release binary runs
# as a plain client of a server (the standard items of the solo work, as
# bench_client runs them) under callgrind; its counters are zeroed once
# start-up and the trim (footprint.rs) are over, and dumped SECS seconds
# later (default 200: three 1-minute rounds, twenty heartbeats). Every
# function of the binary one of whose instructions ran in that window
# (instruction addresses mapped to input sections by the link map build.rs
# writes) becomes one glob of the script: hashes and crate disambiguators
# are globbed away, as they change with the build's metadata while the
# paths do not, and a function that no longer exists matches nothing.
#
# Run: sh bench/client-order.sh [SECS]   (needs valgrind and python3;
# builds the release binary first, then rebuild it to use the new script).
set -eu
cd "$(dirname "$0")/.."
secs=${1:-200}
for t in valgrind callgrind_control python3; do
  command -v $t >/dev/null || { echo "client-order: $t is needed" >&2; exit 1; }
done
cargo build --release --bin hbmon
bin=$PWD/target/release/hbmon
linkmap=$(ls -t target/release/build/hbmon-*/out/hbmon.map | head -1)
dir=$(mktemp -d)
spid= cpid=
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
# The server runs its own copy, as on another host.
cp "$bin" "$dir/hbmon-server"
"$dir/hbmon-server" -c "$dir/srv/hbmon.conf" start -i 2>/dev/null & spid=$!
sleep 1
valgrind --tool=callgrind --dump-instr=yes --dump-line=no --compress-pos=no \
  --compress-strings=no --callgrind-out-file="$dir/cg.%p" \
  "$bin" -c "$dir/cli/hbmon.conf" start -i 2>"$dir/vg.log" & cpid=$!
# Start-up under valgrind is slow: past the trim (30 s into the loop) and
# a first round.
sleep 70
grep " $bin\$" /proc/$cpid/maps > "$dir/maps"
callgrind_control --zero $cpid >/dev/null
echo "client-order: collecting ${secs} s of the steady state" >&2
sleep "$secs"
callgrind_control --dump $cpid >/dev/null
out=$(ls -t "$dir"/cg.$cpid* | head -1)
python3 bench/client-order.py "$out" "$dir/maps" "$linkmap" > "$dir/hot.ld"
mv "$dir/hot.ld" bench/client-hot.ld
echo "client-order: $(grep -c '^ *\*(' bench/client-hot.ld) functions in bench/client-hot.ld" >&2
