"""Raw frames in and out of a Mininet host's interface, for the hostile-host tests: sends
frames given as hex, or captures frames of one EtherType for a bounded time and prints them
as hex, one per line. A raw socket in the host's namespace, not scapy's sendp, which looks
interfaces up outside it.

    python -m tests.integration.frames_io send --iface h5-eth0 --file FRAMES   (one hex frame a line)
    python -m tests.integration.frames_io capture --iface h2-eth0 --ethertype 0x88cc --count 1 --seconds 5
"""

from __future__ import annotations

import argparse
import socket
import time

ETH_P_ALL = 0x0003


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("action", choices=("send", "capture"))
    p.add_argument("--iface", required=True)
    p.add_argument("--ethertype", type=lambda v: int(v, 0), default=None)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--file", help="frames to send, one hex string a line")
    args = p.parse_args()
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)) as s:
        s.bind((args.iface, 0))
        if args.action == "send":
            with open(args.file) as frames:
                for line in frames:
                    s.send(bytes.fromhex(line))
            return 0
        deadline, got = time.monotonic() + args.seconds, 0
        while got < args.count and time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                frame, (_, _, pkttype, *_) = s.recvfrom(65535)
            except TimeoutError:
                break
            if pkttype != socket.PACKET_OUTGOING and (args.ethertype is None or frame[12:14] == args.ethertype.to_bytes(2, "big")):
                print(frame.hex(), flush=True)
                got += 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
