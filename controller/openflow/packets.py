"""Parsing and building the few frames the controller reads or writes: Ethernet, ARP, IPv4.

Hand-written with struct so the pure core needs no framework: packet-ins carry untrusted
bytes, and every malformed input must end in ParseError, never in another exception.
Frames decode to named tuples, the cheapest immutable records: every packet-in builds a few.
"""

from __future__ import annotations

import socket
import struct
from typing import NamedTuple

ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
ETH_VLAN = 0x8100
ETH_LLDP = 0x88CC
ETH_IPV6 = 0x86DD
PROTO_ICMP, PROTO_TCP, PROTO_UDP = 1, 6, 17
TCP_FIN, TCP_SYN, TCP_RST, TCP_ACK = 0x01, 0x02, 0x04, 0x10
ARP_REQUEST, ARP_REPLY = 1, 2
BROADCAST = "ff:ff:ff:ff:ff:ff"


class ParseError(ValueError):
    """A frame too short or inconsistent to act on."""


class Arp(NamedTuple):
    op: int
    sender_mac: str
    sender_ip: str
    target_mac: str
    target_ip: str


class Ipv4(NamedTuple):
    src: str
    dst: str
    proto: int
    src_port: int | None = None  # TCP/UDP only
    dst_port: int | None = None


class Tcp(NamedTuple):
    src_port: int
    dst_port: int
    seq: int
    ack: int
    flags: int

    @property
    def opens(self) -> bool:
        """A SYN alone, what opens a connection: with ACK it answers one, with RST or FIN a
        listener drops it (Linux does)."""
        return self.flags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN) == TCP_SYN


class Frame(NamedTuple):
    eth_dst: str
    eth_src: str
    eth_type: int
    payload: bytes
    arp: Arp | None = None
    ipv4: Ipv4 | None = None


def mac_str(raw: bytes) -> str:
    return raw.hex(":")


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def ip_str(raw: bytes) -> str:
    return socket.inet_ntoa(raw)


def ip_bytes(ip: str) -> bytes:
    return socket.inet_pton(socket.AF_INET, ip)


def is_unicast(mac: str) -> bool:
    return not int(mac[:2], 16) & 1


def parse(data: bytes) -> Frame:
    """Decode an Ethernet frame; raise ParseError if it is too short or inconsistent."""
    if len(data) < 14:
        raise ParseError(f"frame of {len(data)} bytes is shorter than an Ethernet header")
    dst, src, eth_type = mac_str(data[0:6]), mac_str(data[6:12]), _u16(data, 12)
    offset = 14
    if eth_type == ETH_VLAN:
        if len(data) < 18:
            raise ParseError("truncated 802.1Q tag")
        eth_type, offset = _u16(data, 16), 18
    payload = data[offset:]
    if eth_type == ETH_ARP:
        return Frame(dst, src, eth_type, payload, arp=_parse_arp(payload))
    if eth_type == ETH_IPV4:
        return Frame(dst, src, eth_type, payload, ipv4=_parse_ipv4(payload))
    return Frame(dst, src, eth_type, payload)


def _u16(data: bytes, offset: int) -> int:
    return struct.unpack_from("!H", data, offset)[0]


def _parse_arp(p: bytes) -> Arp:
    if len(p) < 28:
        raise ParseError(f"ARP payload of {len(p)} bytes, need 28")
    htype, ptype, hlen, plen, op = struct.unpack_from("!HHBBH", p)
    if (htype, ptype, hlen, plen) != (1, ETH_IPV4, 6, 4):
        raise ParseError(f"ARP for hardware {htype}/protocol {ptype:#x} is not Ethernet/IPv4")
    if op not in (ARP_REQUEST, ARP_REPLY):
        raise ParseError(f"ARP opcode {op} is neither request nor reply")
    return Arp(op, mac_str(p[8:14]), ip_str(p[14:18]), mac_str(p[18:24]), ip_str(p[24:28]))


def _parse_ipv4(p: bytes) -> Ipv4:
    if len(p) < 20:
        raise ParseError(f"IPv4 packet of {len(p)} bytes is shorter than its header")
    version, ihl = p[0] >> 4, (p[0] & 0x0F) * 4
    if version != 4 or ihl < 20 or len(p) < ihl:
        raise ParseError(f"bad IPv4 header (version {version}, header length {ihl})")
    proto, src, dst = p[9], ip_str(p[12:16]), ip_str(p[16:20])
    fragment_offset = _u16(p, 6) & 0x1FFF
    if proto in (PROTO_TCP, PROTO_UDP) and fragment_offset == 0:
        if len(p) < ihl + 4:
            raise ParseError("truncated TCP/UDP header")
        sport, dport = struct.unpack_from("!HH", p, ihl)
        return Ipv4(src, dst, proto, sport, dport)
    return Ipv4(src, dst, proto)


def ethernet(dst: str, src: str, eth_type: int, payload: bytes) -> bytes:
    return mac_bytes(dst) + mac_bytes(src) + struct.pack("!H", eth_type) + payload


def arp_frame(op: int, sender_mac: str, sender_ip: str, target_mac: str, target_ip: str,
              eth_dst: str) -> bytes:
    body = struct.pack("!HHBBH", 1, ETH_IPV4, 6, 4, op) + mac_bytes(sender_mac) + \
        ip_bytes(sender_ip) + mac_bytes(target_mac) + ip_bytes(target_ip)
    return ethernet(eth_dst, sender_mac, ETH_ARP, body)


def tcp_of(frame: Frame) -> Tcp | None:
    """The TCP header of an IPv4 frame (None for anything else, or a later fragment); read
    apart from parse(), which every packet-in pays for, because few frames need more than ports."""
    ip = frame.ipv4
    if ip is None or ip.proto != PROTO_TCP or ip.src_port is None:
        return None
    ihl = (frame.payload[0] & 0x0F) * 4
    if len(frame.payload) < ihl + 14:
        raise ParseError("truncated TCP header")
    sport, dport, seq, ack, _, flags = struct.unpack_from("!HHIIBB", frame.payload, ihl)
    return Tcp(sport, dport, seq, ack, flags)


def reset_for(frame: Frame, tcp: Tcp) -> Tcp | None:
    """The RST answering a segment no connection owns (RFC 793, "Reset Generation"): none to an
    RST; with an ACK, the RST's sequence number is that ACK; without, sequence 0 and an ACK of all
    the segment occupied (data, SYN, FIN), so the sender accepts it in any state."""
    if tcp.flags & TCP_RST:
        return None
    if tcp.flags & TCP_ACK:
        return Tcp(tcp.dst_port, tcp.src_port, tcp.ack, 0, TCP_RST)
    ihl = (frame.payload[0] & 0x0F) * 4
    data = struct.unpack_from("!H", frame.payload, 2)[0] - ihl - (frame.payload[ihl + 12] >> 4) * 4
    length = max(data, 0) + bool(tcp.flags & TCP_SYN) + bool(tcp.flags & TCP_FIN)
    return Tcp(tcp.dst_port, tcp.src_port, 0, (tcp.seq + length) & 0xFFFFFFFF, TCP_RST | TCP_ACK)


def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data + bytes(len(data) % 2)))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def tcp_frame(eth_dst: str, eth_src: str, ip_src: str, ip_dst: str, tcp: Tcp, window: int = 0) -> bytes:
    """A TCP segment without options or payload, both checksums filled in (a host drops it otherwise)."""
    src, dst = ip_bytes(ip_src), ip_bytes(ip_dst)
    segment = struct.pack("!HHIIBBHHH", tcp.src_port, tcp.dst_port, tcp.seq, tcp.ack, 5 << 4, tcp.flags,
                          window, 0, 0)
    segment = segment[:16] + struct.pack("!H", _checksum(src + dst + struct.pack("!BBH", 0, PROTO_TCP, 20)
                                                         + segment)) + segment[18:]
    header = struct.pack("!BBHHHBBH", 0x45, 0, 40, 0, 0x4000, 64, PROTO_TCP, 0) + src + dst
    header = header[:10] + struct.pack("!H", _checksum(header)) + header[12:]
    return ethernet(eth_dst, eth_src, ETH_IPV4, header + segment)
