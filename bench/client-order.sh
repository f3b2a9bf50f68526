#!/bin/sh
# Regenerates bench/client-hot.ld, the plain client's hot functions that the
# release link puts together (build.rs, issue 18). The release binary runs
# as a plain client of a server (the standard items of the solo work, as
# bench_client runs them) under callgrind; its counters are zeroed at the
# trim (footprint.rs), when start-up is over, and dumped SECS seconds
# later (default 240: four 1-minute rounds, 24 heartbeats). Every
# function of the binary one of whose instructions ran in that window
# (instruction addresses mapped to input sections by the link map build.rs
# writes) becomes a pattern of the script: a glob, its hash and crate
# disambiguators left out, as they change with the build's metadata while
# the paths do not; or, for a generic whose other instances would come
# along (they differ only in their hashes), the exact names. A name that no
# longer exists matches nothing: the function stays where it would be.
#
# Run: [KEEP=1] [BIN_ONLY=1] sh bench/client-order.sh [SECS]   (needs
# valgrind and python3; builds the release binary first, then rebuild it to
# use the new script).
set -eu
cd "$(dirname "$0")/.."
secs=${1:-240}
for t in valgrind callgrind_control python3; do
  command -v $t >/dev/null || { echo "client-order: $t is needed" >&2; exit 1; }
done
# Built as `make bench` builds it (with examples, so with the features
# dev-dependencies add), or with BIN_ONLY=1 as `make build` does: the two
# differ in their symbols' hashes, so run it for each (KEEP=1 the second).
if [ -n "${BIN_ONLY:-}" ]; then
  cargo build --release --bin hbmon
else
  cargo build --release --bin hbmon --example bench_client
fi
bin=$PWD/target/release/hbmon
linkmap=$(ls -t target/release/build/hbmon-*/out/hbmon.map | head -1)
dir=$(mktemp -d)
spid='' cpid=''
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
  --compress-strings=no --callgrind-out-file="$dir/cg.%p" --trace-syscalls=yes \
  --log-file="$dir/vg.log" "$bin" -c "$dir/cli/hbmon.conf" start -i 2>/dev/null & cpid=$!
# The window starts at the trim (footprint.rs: its madvise(MADV_RANDOM), the
# only one the daemon makes), as bench_client's steady state does: code
# that first runs after it (a round's first history write) counts too.
n=0
until grep -q 'sys_madvise ( 0x[0-9a-f]*, [0-9]*, 1 )' "$dir/vg.log" 2>/dev/null; do
  n=$((n + 1))
  [ $n -gt 600 ] && { echo "client-order: no trim seen in 300 s" >&2; exit 1; }
  sleep 0.5
done
callgrind_control --zero $cpid >/dev/null
grep " $bin\$" /proc/$cpid/maps > "$dir/maps"
echo "client-order: trimmed; collecting ${secs} s of the steady state" >&2
sleep "$secs"
callgrind_control --dump $cpid >/dev/null
out=$(ls -t "$dir"/cg.$cpid* | head -1)
# KEEP=1: also keep the current script's functions that still exist.
python3 bench/client-order.py "$out" "$dir/maps" "$linkmap" ${KEEP:+bench/client-hot.ld} > "$dir/hot.ld"
mv "$dir/hot.ld" bench/client-hot.ld
echo "client-order: $(grep -c '^ *\*(' bench/client-hot.ld) functions in bench/client-hot.ld" >&2
