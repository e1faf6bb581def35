"""Frames for tests, built byte by byte (independently of the code under test where it matters)."""

from __future__ import annotations

import struct

from controller.openflow.packets import ETH_IPV4, ethernet, ip_bytes


def ipv4_frame(src_mac: str, dst_mac: str, src_ip: str, dst_ip: str, proto: int = 6,
               sport: int = 40000, dport: int = 5201, tcp_flags: int = 0, seq: int = 0, ack: int = 0,
               data: bytes = b"") -> bytes:
    l4 = (struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 0x50, tcp_flags, 0, 0, 0) if proto == 6
          else struct.pack("!HH", sport, dport) + bytes(16) if proto == 17 else bytes(8)) + data
    header = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(l4), 0, 0, 64, proto, 0)
    return ethernet(dst_mac, src_mac, ETH_IPV4, header + ip_bytes(src_ip) + ip_bytes(dst_ip) + l4)
