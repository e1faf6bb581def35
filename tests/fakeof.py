"""A fake OpenFlow network for unit tests: per-switch flow tables that apply our FlowMod /
FlowDelete messages, wired as a topology spec says, through which a packet can be traced
(in the spirit of FAUCET's clib/fakeoftable.py)."""

from __future__ import annotations

from controller.messages import CONTROLLER, FlowDelete, FlowMod, Message, PacketOut
from controller.packets import Frame
from topologies.spec import Spec


def packet_fields(frame: Frame, in_port: int) -> dict:
    """The OXM fields a switch would match this frame on."""
    fields = {"in_port": in_port, "eth_type": frame.eth_type, "eth_src": frame.eth_src,
              "eth_dst": frame.eth_dst}
    if frame.ipv4:
        ip = frame.ipv4
        fields.update(ipv4_src=ip.src, ipv4_dst=ip.dst, ip_proto=ip.proto)
        if ip.src_port is not None:
            prefix = {6: "tcp", 17: "udp"}[ip.proto]
            fields.update({f"{prefix}_src": ip.src_port, f"{prefix}_dst": ip.dst_port})
    return fields


class FakeOFNetwork:
    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.dpid = {s.name: s.dpid for s in spec.switches}
        self.tables: dict[int, list[FlowMod]] = {s.dpid: [] for s in spec.switches}
        self.packet_outs: list[PacketOut] = []
        self.wire: dict[tuple[str, int], tuple[str, int]] = {}
        for lk, pa, pb in spec.link_ports():
            self.wire[(lk.a, pa)], self.wire[(lk.b, pb)] = (lk.b, pb), (lk.a, pa)

    def name(self, dpid: int) -> str:
        return next(n for n, d in self.dpid.items() if d == dpid)

    def ports(self, switch: str) -> set[int]:
        return {p for (n, p) in self.wire if n == switch}

    def peer(self, dpid: int, port: int) -> tuple[str, int]:
        return self.wire[(self.name(dpid), port)]

    def apply(self, messages: list[Message]) -> None:
        for m in messages:
            if isinstance(m, FlowMod):
                table = self.tables[m.dpid]
                table[:] = [e for e in table if (e.match, e.priority) != (m.match, m.priority)]
                table.append(m)
            elif isinstance(m, FlowDelete):
                table = self.tables[m.dpid]
                table[:] = [e for e in table if e.cookie & m.cookie_mask != m.cookie & m.cookie_mask]
            elif isinstance(m, PacketOut):
                self.packet_outs.append(m)

    def lookup(self, dpid: int, fields: dict) -> FlowMod | None:
        hits = [e for e in self.tables[dpid]
                if all(fields.get(k) == v for k, v in e.match.oxm().items())]
        return max(hits, key=lambda e: e.priority, default=None)

    def trace(self, switch: str, in_port: int, fields: dict) -> tuple[list[str], str]:
        """Follow a packet from (switch, in_port): the switches it crosses and where it ends:
        'host:<name>', 'controller', 'drop' or 'loop'."""
        path: list[str] = []
        while True:
            if switch in path:
                return path, "loop"
            path.append(switch)
            entry = self.lookup(self.dpid[switch], {**fields, "in_port": in_port})
            if entry is None or not entry.out_ports:
                return path, "drop"
            if entry.out_ports == (CONTROLLER,):
                return path, "controller"
            node, in_port = self.wire[(switch, entry.out_ports[0])]
            if node not in self.dpid:
                return path, f"host:{node}"
            switch = node
