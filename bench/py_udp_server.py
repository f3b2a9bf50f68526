#!/usr/bin/env python3
"""Minimal asyncio UDP heartbeat server, the comparison point for hbmon's
ingest figures: for each datagram it checks the `!ID:` header, inflates,
splits key=value (an `@` value parsed as JSON), updates a per-host dict and
answers HTB with a zlib ACK -- the same work hbmon's server does.

Usage: py_udp_server.py [--bind 127.0.0.1] [--port 50003]
Prints its counters on SIGTERM/SIGINT; a datagram `STATS` (plain text)
is answered with `received N accepted N refused N cpu_seconds X`.
"""
import argparse
import asyncio
import json
import os
import signal
import sys
import time
import zlib

MAX_DATAGRAM = 64 * 1024
MAX_INFLATED = 256 * 1024


def parse(payload):
    out = {}
    i, n = 0, len(payload)
    while i < n:
        if payload[i] == ";":
            i += 1
            continue
        eq = payload.find("=", i)
        semi = payload.find(";", i)
        if eq < 0 or (0 <= semi < eq):
            raise ValueError("key without value")
        key = payload[i:eq]
        i = eq + 1
        if payload.startswith("@", i):
            val, end = json.JSONDecoder().raw_decode(payload, i + 1)
            i = end
        else:
            end = payload.find(";", i)
            end = n if end < 0 else end
            val = payload[i:end]
            i = end
        out[key] = val
    return out


class Server(asyncio.DatagramProtocol):
    def __init__(self):
        self.hosts = {}
        self.received = self.accepted = self.refused = 0

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        if data == b"STATS":
            cpu = sum(os.times()[:2])
            self.transport.sendto(
                f"received {self.received} accepted {self.accepted} "
                f"refused {self.refused} cpu_seconds {cpu:.2f}".encode(), addr)
            return
        self.received += 1
        try:
            if len(data) > MAX_DATAGRAM or data[:1] != b"!" or data[4:5] != b":":
                raise ValueError("header")
            ident = data[1:4].decode()
            body = data[5:]
            if body[:1] == b" ":
                body = body[1:]
            d = zlib.decompressobj()
            text = d.decompress(body, MAX_INFLATED + 1)
            if len(text) > MAX_INFLATED or not d.eof:
                raise ValueError("inflate")
            msg = parse(text.decode())
        except (ValueError, zlib.error, UnicodeDecodeError):
            self.refused += 1
            return
        self.accepted += 1
        name = msg.get("name")
        h = self.hosts.setdefault(name, {})
        h.update(msg)
        h["last_seen"] = time.monotonic()
        if ident == "HTB":
            ack = "seq=%s;ts=%s;srv_ts=%.5f;work=0" % (msg.get("seq", ""), msg.get("ts", ""), time.time())
            self.transport.sendto(b"!ACK:" + zlib.compress(ack.encode(), 1), addr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=50003)
    a = ap.parse_args()
    if not (a.bind.startswith("127.") or a.bind == "::1"):
        sys.exit("bench server binds to loopback only")
    loop = asyncio.new_event_loop()
    proto = Server()
    loop.run_until_complete(loop.create_datagram_endpoint(lambda: proto, local_addr=(a.bind, a.port)))
    stop = asyncio.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    loop.run_until_complete(stop.wait())
    cpu = sum(os.times()[:2])
    print(f"received {proto.received} accepted {proto.accepted} refused {proto.refused} "
          f"hosts {len(proto.hosts)} cpu_seconds {cpu:.2f}", flush=True)


if __name__ == "__main__":
    main()
