#!/usr/bin/env python3
"""Sends hand-made heartbeat datagrams, built with Python's zlib (not with
hbmon's encoder), to an hbmon server: udp_craft.py ADDR PORT CASE [NAME]
[KEY]. Prints nothing; the test reads the server's counters."""
import hashlib
import hmac
import socket
import sys
import time
import zlib


def dgram(ident, payload, key=None):
    if key is not None:
        sig = hmac.new(key.encode(), payload.encode(), hashlib.sha256).hexdigest()
        payload = payload + ";sig=" + sig
    return b"!" + ident.encode() + b":" + zlib.compress(payload.encode())


def htb(name, seq, ts=None, extra=""):
    ts = time.time() if ts is None else ts
    return "name=%s;ts=%.5f;seq=%d;interval=1;rtt=0.50000;acks=%d;ver=py-craft%s" % (
        name, ts, seq, max(seq - 1, 0), extra)


def cases(name, key):
    now = time.time()
    bomb = zlib.compress(b"a=" + b"0" * (20 * 1024 * 1024))
    return {
        "htb": [dgram("HTB", htb(name, 1, extra=";boot=1"))],
        "htb_space": [b"!HTB: " + zlib.compress(htb(name, 2).encode())],
        "plg": [dgram("PLG", "name=%s;plugin=disk;used_pct=42.50000;free_gb=10" % name)],
        "json_semicolon": [dgram("PLG", 'name=%s;plugin=app;info=@{"a":"x;y=z","n":[1,2]};count=3' % name)],
        "truncated": [dgram("HTB", htb(name, 3))[:-6]],
        "zipbomb": [b"!HTB:" + bomb],
        "bad_utf8": [b"!HTB:" + zlib.compress(b"name=\xff\xfe;seq=1")],
        "big": [b"!HTB:" + bytes(65000)],
        "novalue": [dgram("HTB", "name=%s;seq;ts" % name)],
        "garbage": [b"hello world"],
        "signed": [dgram("HTB", htb(name, 10), key)],
        "unsigned": [dgram("HTB", htb(name, 11))],
        "forged": [dgram("HTB", htb(name, 12), (key or "") + "x")],
        "replayed": [dgram("HTB", htb(name, 13, ts=now - 3600), key)],
    }


def main():
    addr, port, case = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    name = sys.argv[4] if len(sys.argv) > 4 else "py.example.org"
    key = sys.argv[5] if len(sys.argv) > 5 else None
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for d in cases(name, key)[case]:
        s.sendto(d, (addr, port))


if __name__ == "__main__":
    main()
