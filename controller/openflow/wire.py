"""OpenFlow 1.3 encodings, with struct and by the spec's layouts, of the two messages every new
flow costs: flow-mods (add) and packet-outs. The framework's generic serialiser builds and
checks an object per match field; py-spy showed it taking about 60% of the packet-in handler,
more than the decision itself.
"""

from __future__ import annotations

import struct

from controller.openflow.messages import CONTROLLER, FlowMod, Match, PacketOut
from controller.openflow.packets import ip_bytes, mac_bytes

VERSION, OFPT_PACKET_OUT, OFPT_FLOW_MOD = 4, 13, 14
OFPFC_ADD, OFP_NO_BUFFER, OFPP_ANY, OFPG_ANY = 0, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF
OFPIT_APPLY_ACTIONS, OFPCML_NO_BUFFER = 4, 0xFFFF
_U8, _U16, _U32 = (struct.Struct(f).pack for f in ("!B", "!H", "!I"))
# OXM basic class fields: (number, encoder)
_OXM = {"in_port": (0, _U32), "eth_dst": (3, mac_bytes), "eth_src": (4, mac_bytes), "eth_type": (5, _U16),
        "ip_proto": (10, _U8), "ipv4_src": (11, ip_bytes), "ipv4_dst": (12, ip_bytes), "tcp_src": (13, _U16),
        "tcp_dst": (14, _U16), "udp_src": (15, _U16), "udp_dst": (16, _U16)}
_SIZE = {_U8: 1, _U16: 2, _U32: 4, mac_bytes: 6, ip_bytes: 4}
# OpenFlow 1.3 has no TCP flags field; Open vSwitch takes ONF's experimenter OXM (extensions
# pack 1, EXT-109): class 0xFFFF, field 42, the ONF id, then the flags and, as a mask, the same
# bits ("these set, the others any").
ONF_EXPERIMENTER_ID, ONF_TCP_FLAGS = 0x4F4E4600, 42
_TCP_FLAGS_HEAD = _U32(0xFFFF << 16 | ONF_TCP_FLAGS << 9 | 1 << 8 | 8) + _U32(ONF_EXPERIMENTER_ID)


def _basic(name: str) -> tuple[bytes, object]:
    number, encode = _OXM[name]
    return _U32(0x8000 << 16 | number << 9 | _SIZE[encode]), encode


# (OXM header, encoder) of each of Match's fields, in its order, which puts prerequisites first
_FIELDS = tuple((_TCP_FLAGS_HEAD, lambda flags: _U16(flags) * 2) if name == "tcp_flags" else _basic(name)
                for name in Match._fields)
OFPAT_SET_FIELD = 25


def match(m: Match) -> bytes:
    oxms = b"".join(head + encode(v) for (head, encode), v in zip(_FIELDS, m) if v is not None)
    return struct.pack("!HH", 1, 4 + len(oxms)) + oxms + bytes(-(4 + len(oxms)) % 8)


def _output(port: int) -> bytes:
    return struct.pack("!HHIH6x", 0, 16, port, OFPCML_NO_BUFFER)   # whole packets to the controller


def _set_field(name: str, value) -> bytes:
    head, encode = _basic(name)
    oxm = head + encode(value)
    size = 4 + len(oxm) + (-(4 + len(oxm)) % 8)
    return struct.pack("!HH", OFPAT_SET_FIELD, size) + oxm + bytes(size - 4 - len(oxm))


def _actions(set_fields, out_ports) -> bytes:
    """Rewrites first, then outputs (the order in which an apply-actions list runs)."""
    return b"".join(_set_field(n, v) for n, v in set_fields) + b"".join(_output(p) for p in out_ports)


def flow_mod(m: FlowMod, xid: int = 0) -> bytes:
    actions = _actions(m.set_fields, m.out_ports)
    instructions = struct.pack("!HH4x", OFPIT_APPLY_ACTIONS, 8 + len(actions)) + actions
    body = struct.pack("!QQBBHHHIIIH2x", m.cookie, 0, 0, OFPFC_ADD, m.idle_timeout_s, 0, m.priority,
                       OFP_NO_BUFFER, OFPP_ANY, OFPG_ANY, m.flags) + match(m.match) + instructions
    return struct.pack("!BBHI", VERSION, OFPT_FLOW_MOD, 8 + len(body), xid) + body


def packet_out(p: PacketOut, xid: int = 0) -> bytes:
    encoded = _actions(p.set_fields, p.out_ports)
    body = struct.pack("!IIH6x", OFP_NO_BUFFER, CONTROLLER, len(encoded)) + encoded + p.data
    return struct.pack("!BBHI", VERSION, OFPT_PACKET_OUT, 8 + len(body), xid) + body
