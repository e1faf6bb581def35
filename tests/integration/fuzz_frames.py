"""Malformed frames from inside a Mininet host, built with scapy: fuzz()ed IPv4/TCP/UDP/ICMP/ARP
headers, garbled LLDP and IPv6, truncated headers and frames of random bytes. The sender
keeps its own MAC (and, in ARP, its own IP) so that what is tested is parsing, not spoofing,
which the spec check stops anyway. Prints how many frames were sent.

    python -m tests.integration.fuzz_frames --iface h1-eth0 --mac M --ip A --peers A,B --count N
"""

from __future__ import annotations

import argparse
import random
import socket
import time

from scapy.all import ARP, ICMP, IP, TCP, UDP, Ether, IPv6, Raw, fuzz, raw


def frames(mac: str, ip: str, peers: list[str], count: int, rng: random.Random):
    for i in range(count):
        eth = Ether(src=mac, dst=rng.choice(["ff:ff:ff:ff:ff:ff", "00:00:00:00:00:07", "01:80:c2:00:00:0e"]))
        kind = i % 8
        if kind == 0:
            frame = eth / fuzz(IP(src=ip, dst=rng.choice(peers)) / UDP())
        elif kind == 1:
            frame = eth / fuzz(IP(src=ip, dst=rng.choice(peers)) / TCP())
        elif kind == 2:
            frame = eth / fuzz(IP(src=ip, dst=rng.choice(peers)) / ICMP())
        elif kind == 3:
            frame = eth / fuzz(ARP(hwsrc=mac, psrc=ip))
        elif kind == 4:
            frame = Ether(src=mac, dst="01:80:c2:00:00:0e", type=0x88CC) / Raw(rng.randbytes(rng.randrange(0, 300)))
        elif kind == 5:
            frame = eth / fuzz(IPv6())
        elif kind == 6:   # a well-formed header cut short
            whole = raw(eth / IP(src=ip, dst=rng.choice(peers)) / TCP(sport=rng.randrange(65536)))
            frame = Raw(whole[:rng.randrange(14, len(whole))])
        else:             # bytes, any type
            frame = Raw(raw(eth)[:12] + rng.randbytes(rng.randrange(2, 1500)))
        yield frame


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--iface", required=True)
    p.add_argument("--mac", required=True)
    p.add_argument("--ip", required=True)
    p.add_argument("--peers", required=True)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    rng = random.Random(args.seed)
    random.seed(args.seed)    # scapy's fuzz() draws from the random module
    sent = 0
    # a raw socket, not scapy's sendp: scapy looks interfaces up outside the host's namespace
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((args.iface, 0))
        for frame in frames(args.mac, args.ip, args.peers.split(","), args.count, rng):
            s.send(raw(frame)[:1514])
            sent += 1
            time.sleep(0.002)
    print(sent)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
