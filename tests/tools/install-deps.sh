#!/bin/sh
# Makes sure the real tools the tests use are present: installs the Debian
# packages that are missing when running as root, else names them and fails.
set -eu

# command-or-file  debian-package
need='
nc                                   netcat-openbsd
sqlite3                              sqlite3
/usr/lib/nagios/plugins/check_load   monitoring-plugins-basic
shellcheck                           shellcheck
systemd-analyze                      systemd
python3                              python3
/usr/bin/python3                     python3
msmtp                                msmtp-mta
/usr/lib/python3/dist-packages/aiosmtpd python3-aiosmtpd
/usr/bin/prometheus-alertmanager     prometheus-alertmanager
pgrep                                procps
nft                                  nftables
ip                                   iproute2
faketime                             faketime
promtool                             prometheus
/usr/bin/prometheus                  prometheus
tmux                                 tmux
chromium                             chromium
/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf fonts-dejavu-core
man                                  man-db
readelf                              binutils
strip                                binutils
make                                 make
openssl                              openssl
unshare                              util-linux
mount                                mount
'

missing=''
echo "$need" | while read -r what pkg; do
  [ -n "$what" ] || continue
  case "$what" in
    /*) [ -e "$what" ] || echo "$pkg" ;;
    *) command -v "$what" >/dev/null 2>&1 || echo "$pkg" ;;
  esac
done > /tmp/hbmon-missing.$$
missing=$(sort -u /tmp/hbmon-missing.$$ | tr '\n' ' ')
rm -f /tmp/hbmon-missing.$$

if [ -z "$(echo "$missing" | tr -d ' ')" ]; then
  echo "test tools: all present"
  exit 0
fi
if [ "$(id -u)" = 0 ]; then
  echo "test tools: installing $missing"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq $missing
else
  echo "test tools missing: $missing" >&2
  echo "install them (as root: apt-get install -y $missing) and run make test again" >&2
  exit 1
fi
