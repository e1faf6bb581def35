"""One-way delay probes between two Mininet hosts, which share the machine's clock.

    python -m topologies.owd recv --port P --count N --timeout S     (prints a JSON summary)
    python -m topologies.owd send --dst IP --port P --sport Q --count N --interval S

Each probe carries its sequence number and send time; the receiver subtracts. The source
port is fixed so that the whole train is one flow, placed on one path.
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


def receive(port: int, count: int, timeout_s: float) -> dict:
    delays = {}
    deadline = time.monotonic() + timeout_s
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", port))
        while len(delays) < count and (left := deadline - time.monotonic()) > 0:
            s.settimeout(left)
            try:
                data, _ = s.recvfrom(2048)
            except TimeoutError:
                break
            now = time.time_ns()
            if len(data) >= _PROBE.size:
                seq, sent = _PROBE.unpack_from(data)
                delays.setdefault(seq, (now - sent) / 1e6)
    values = sorted(delays.values())
    return {"sent": count, "received": len(values),
            "mean_ms": sum(values) / len(values) if values else None,
            "median_ms": values[len(values) // 2] if values else None, "delays_ms": values}


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m topologies.owd")
    sub = p.add_subparsers(dest="mode", required=True)
    r = sub.add_parser("recv")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--count", type=int, required=True)
    r.add_argument("--timeout", type=float, required=True)
    s = sub.add_parser("send")
    s.add_argument("--dst", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--sport", type=int, required=True)
    s.add_argument("--count", type=int, required=True)
    s.add_argument("--interval", type=float, required=True)
    args = p.parse_args()
    if args.mode == "recv":
        print(json.dumps(receive(args.port, args.count, args.timeout)))
    else:
        send(args.dst, args.port, args.sport, args.count, args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
