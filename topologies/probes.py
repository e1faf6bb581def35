"""Probes between Mininet hosts: one-way delay (the hosts share the machine's clock),
round-trip time (a UDP echo), timed TCP transfers, and flow churn.

    python -m topologies.probes recv --port P --count N --timeout S     (prints a JSON summary)
    python -m topologies.probes send --dst IP --port P --sport Q --count N --interval S
    python -m topologies.probes echo --port P --count N --timeout S     (reflects N probes)
    python -m topologies.probes rtt --dst IP --port P --sport Q --count N --interval S  (prints JSON)
    python -m topologies.probes sink --port P --timeout S                (takes one TCP transfer)
    python -m topologies.probes push --dst IP --port P --sport Q --bytes N --timeout S  (prints JSON)
    python -m topologies.probes churn --dst IP[,IP...] --port P --rate R --seconds S
        (one datagram from each of R new source ports a second: R new flows a second)

A push's completion time runs from its connect() to the sink's acknowledgement of the last
byte: what a user waits. (iperf3's own report stops counting with bytes still in flight.)

Each probe carries its sequence number and send time; the receiver subtracts. The source
port is fixed so that the whole train is one flow, placed on one path; its echoes are the
reverse flow. Unlike ICMP ping, whose entries cover a host pair, every train with a new source
port is a new flow and so a new decision of the load balancer.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import time

_PROBE = struct.Struct("!Iq")
PAD = 64


def send(dst: str, port: int, sport: int, count: int, interval_s: float) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", sport))
        for seq in range(count):
            s.sendto(_PROBE.pack(seq, time.time_ns()).ljust(PAD, b"\0"), (dst, port))
            time.sleep(interval_s)


def _collect(s: socket.socket, count: int, deadline: float, reply: bool = False) -> dict[int, float]:
    """Read probes until count arrived or the deadline: {seq: ms since its send time};
    with reply, send each one back to where it came from."""
    delays: dict[int, float] = {}
    while len(delays) < count and (left := deadline - time.monotonic()) > 0:
        s.settimeout(left)
        try:
            data, peer = s.recvfrom(2048)
        except TimeoutError:
            break
        now = time.time_ns()
        if len(data) >= _PROBE.size:
            seq, sent = _PROBE.unpack_from(data)
            delays.setdefault(seq, (now - sent) / 1e6)
            if reply:
                s.sendto(data, peer)
    return delays


def _summary(count: int, delays: dict[int, float]) -> dict:
    values = sorted(delays.values())
    return {"sent": count, "received": len(values),
            "mean_ms": sum(values) / len(values) if values else None,
            "median_ms": values[len(values) // 2] if values else None, "delays_ms": values}


def receive(port: int, count: int, timeout_s: float, reply: bool = False) -> dict:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", port))
        return _summary(count, _collect(s, count, time.monotonic() + timeout_s, reply))


def rtt(dst: str, port: int, sport: int, count: int, interval_s: float, wait_s: float = 1.0) -> dict:
    """Send the train; echoes arriving meanwhile and up to wait_s after it count."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", sport))
        s.setblocking(False)
        delays: dict[int, float] = {}
        for seq in range(count):
            s.sendto(_PROBE.pack(seq, time.time_ns()).ljust(PAD, b"\0"), (dst, port))
            delays.update(_collect(s, count, time.monotonic() + interval_s))
        delays.update(_collect(s, count - len(delays), time.monotonic() + wait_s))
        return _summary(count, delays)


def sink(port: int, timeout_s: float) -> None:
    with socket.create_server(("0.0.0.0", port)) as server:
        server.settimeout(timeout_s)
        conn, _ = server.accept()
        with conn:
            conn.settimeout(timeout_s)
            while conn.recv(1 << 16):
                pass
            conn.sendall(b"k")


def push(dst: str, port: int, sport: int, size: int, timeout_s: float) -> dict:
    """Bounded as a whole by timeout_s (a socket timeout bounds each call, not their sum)."""
    block = b"\0" * (1 << 16)
    start = time.monotonic()
    deadline = start + timeout_s

    def left() -> float:
        if (remaining := deadline - time.monotonic()) <= 0:
            raise TimeoutError
        return remaining

    try:
        with socket.create_connection((dst, port), timeout=timeout_s, source_address=("0.0.0.0", sport)) as s:
            todo = size
            while todo > 0:
                s.settimeout(left())
                todo -= s.send(block[:min(todo, len(block))])
            s.shutdown(socket.SHUT_WR)
            s.settimeout(left())
            done = s.recv(1) == b"k"
    except OSError:           # TimeoutError included
        done = False
    return {"bytes": size, "seconds": time.monotonic() - start, "complete": done}


def churn(dsts: list[str], port: int, rate: float, seconds: float, first_sport: int = 20000) -> int:
    """New flows at `rate` per second for `seconds`, round robin over the destinations; the
    number sent. Source ports cycle through 20000 (a flow's entries are gone long before reuse)."""
    start, sent = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("0.0.0.0", first_sport + sent % 20000))
            s.sendto(b"churn", (dsts[sent % len(dsts)], port))
        sent += 1
        time.sleep(max(0.0, start + sent / rate - time.monotonic()))
    return sent


MODES = {"recv": ("port", "count", "timeout"), "echo": ("port", "count", "timeout"),
         "send": ("dst", "port", "sport", "count", "interval"), "rtt": ("dst", "port", "sport", "count", "interval"),
         "sink": ("port", "timeout"), "push": ("dst", "port", "sport", "bytes", "timeout"),
         "churn": ("dst", "port", "rate", "seconds")}
TYPES = {"dst": str, "port": int, "sport": int, "count": int, "bytes": int, "timeout": float, "interval": float,
         "rate": float, "seconds": float}


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m topologies.probes")
    sub = p.add_subparsers(dest="mode", required=True)
    for mode, options in MODES.items():
        sub_parser = sub.add_parser(mode)
        for option in options:
            sub_parser.add_argument(f"--{option}", type=TYPES[option], required=True)
    args = p.parse_args()
    if args.mode == "churn":
        print(json.dumps({"sent": churn(args.dst.split(","), args.port, args.rate, args.seconds)}))
    elif args.mode == "sink":
        sink(args.port, args.timeout)
    elif args.mode == "push":
        print(json.dumps(push(args.dst, args.port, args.sport, args.bytes, args.timeout)))
    elif args.mode in ("recv", "echo"):
        result = receive(args.port, args.count, args.timeout, reply=args.mode == "echo")
        if args.mode == "recv":
            print(json.dumps(result))
    elif args.mode == "rtt":
        print(json.dumps(rtt(args.dst, args.port, args.sport, args.count, args.interval)))
    else:
        send(args.dst, args.port, args.sport, args.count, args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
