"""OpenFlow 1.3 messages as plain data: what the pure core asks the adapter to send.

Numbers are the protocol's own (OpenFlow 1.3 spec), so the core needs no framework.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

CONTROLLER = 0xFFFFFFFD        # OFPP_CONTROLLER
COOKIE_BASE = 0x4C42 << 48      # "LB": every flow we install carries it in the top 16 bits,
COOKIE_MASK = 0xFFFF << 48      # then the controller instance's generation (16 bits), then
GENERATION_SHIFT = 32           # the flow's id (32 bits; 0 for the base entries)
INSTANCE_MASK = COOKIE_MASK | 0xFFFF << GENERATION_SHIFT
FLOW_ID_MASK = (1 << GENERATION_SHIFT) - 1
SEND_FLOW_REM = 1               # OFPFF_SEND_FLOW_REM


def generation_of(cookie: int) -> int:
    return cookie >> GENERATION_SHIFT & 0xFFFF


def flow_id_of(cookie: int) -> int:
    """0 for the base entries, which every flow's entries rest on."""
    return cookie & FLOW_ID_MASK


class Match(NamedTuple):
    """OXM fields by their OpenFlow names, in the order prerequisites need; None means
    wildcard. A named tuple: every new flow builds one per switch of its path."""
    in_port: int | None = None
    eth_type: int | None = None
    eth_src: str | None = None
    eth_dst: str | None = None
    ipv4_src: str | None = None
    ipv4_dst: str | None = None
    ip_proto: int | None = None
    tcp_src: int | None = None
    tcp_dst: int | None = None
    udp_src: int | None = None
    udp_dst: int | None = None
    tcp_flags: int | None = None    # these TCP flag bits set (others any): ONF's OXM in 1.3

    def oxm(self) -> dict:
        return {name: v for name, v in zip(self._fields, self) if v is not None}


SetFields = tuple[tuple[str, object], ...]
"""Header rewrites, as (OXM field name, value) pairs applied in order before the outputs:
a service's virtual IP is rewritten to a member's address this way (OpenFlow 1.3 set-field)."""


@dataclass(frozen=True)
class FlowMod:
    """Add (or replace) one flow entry; out_ports empty means drop."""
    dpid: int
    match: Match
    out_ports: tuple[int, ...]
    priority: int
    cookie: int = COOKIE_BASE
    idle_timeout_s: int = 0
    flags: int = 0
    set_fields: SetFields = ()


@dataclass(frozen=True)
class FlowDelete:
    """Delete every flow whose cookie matches `cookie` under `cookie_mask` (0: all)."""
    dpid: int
    cookie: int = COOKIE_BASE
    cookie_mask: int = COOKIE_MASK


@dataclass(frozen=True)
class PacketOut:
    """Send a frame out of the given ports of one switch (rewritten by set_fields first)."""
    dpid: int
    out_ports: tuple[int, ...]
    data: bytes
    set_fields: SetFields = ()


@dataclass(frozen=True)
class PortStatsRequest:
    dpid: int
    poll: float | None = None     # the poll that asks: its reply answers it (matched by xid)


@dataclass(frozen=True)
class FlowStatsRequest:
    """Statistics of our flow entries (those whose cookie matches COOKIE_BASE under COOKIE_MASK)."""
    dpid: int
    poll: float | None = None


@dataclass(frozen=True)
class EchoRequest:
    dpid: int
    data: bytes


Message = FlowMod | FlowDelete | PacketOut | PortStatsRequest | FlowStatsRequest | EchoRequest
