#!/bin/sh
# The tools `make bench` needs beside cargo: python3 (the asyncio baseline,
# bench/py_udp_server.py) and taskset (util-linux: it pins that baseline to
# core 0). Installs the missing Debian packages as root, else names them
# and fails; warns when there are fewer than 2 cores (pinned figures need 2).
set -eu
missing=''
command -v python3 >/dev/null 2>&1 || missing="$missing python3"
command -v taskset >/dev/null 2>&1 || missing="$missing util-linux"
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "bench tools: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq $missing
  else
    echo "bench tools missing:$missing (as root: apt-get install -y$missing)" >&2
    exit 1
  fi
fi
if [ "$(nproc)" -lt 2 ]; then
  echo "warning: $(nproc) core: the pinned saturation figures need 2" >&2
fi
