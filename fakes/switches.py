"""A fake OpenFlow network for unit tests: per-switch flow tables that apply our FlowMod /
FlowDelete messages, wired as a topology spec says, through which a packet can be traced
(in the spirit of FAUCET's clib/fakeoftable.py)."""

from __future__ import annotations

from pathlib import Path

from controller.core.balancer import Balancer
from controller.openflow.messages import CONTROLLER, FlowDelete, FlowMod, Message, PacketOut
from controller.openflow.packets import ARP_REQUEST, BROADCAST, PROTO_TCP, Frame, arp_frame, tcp_of
from controller.policies import make_policy
from controller.policies.members import member_policy_factory
from controller.core.settings import Settings
from controller.core.spec import Spec
from controller.files import load_spec

SPEC = Path(__file__).resolve().parents[1] / "topologies" / "h1h7.json"


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
            if ip.proto == PROTO_TCP:
                fields["tcp_flags"] = tcp_of(frame).flags
    return fields


def matches(field: str, value: object, packet: object) -> bool:
    """A packet's field against an entry's: TCP flags as Open vSwitch matches our Match's (the
    entry's bits set, any others too), the rest exactly."""
    if field == "tcp_flags":
        return packet is not None and packet & value == value
    return packet == value


# OXM prerequisites (OpenFlow 1.3, 7.2.3.6): a field implies the fields it can only appear with.
_IMPLIED = {"ipv4_src": {"eth_type": 0x0800}, "ipv4_dst": {"eth_type": 0x0800}, "ip_proto": {"eth_type": 0x0800},
            **{f"{proto}_{end}": {"eth_type": 0x0800, "ip_proto": number}
               for proto, number in (("tcp", 6), ("udp", 17)) for end in ("src", "dst")}}


class AmbiguousFlowMod(AssertionError):
    """An ADD of an entry that some packet would match as well as an existing entry of the same
    priority: which one a switch applies is undefined (OpenFlow 1.3, 6.4)."""


def with_prerequisites(match: Match) -> dict:
    fields = match.oxm()
    for name in list(fields):
        fields.update(_IMPLIED.get(name, {}))
    return {**fields, **match.oxm()}     # a field set explicitly keeps its value (a conflict stays one)


def overlap(a: Match, b: Match) -> bool:
    """Whether some packet could match both: no field that both constrain to different values."""
    fa, fb = with_prerequisites(a), with_prerequisites(b)
    return all(fa[k] == fb[k] for k in fa.keys() & fb.keys())


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
                clash = next((e for e in table if e.priority == m.priority and e.match != m.match
                              and overlap(e.match, m.match)), None)
                if clash is not None:
                    raise AmbiguousFlowMod(f"switch {self.name(m.dpid)}: {m.match.oxm()} overlaps "
                                           f"{clash.match.oxm()} at priority {m.priority}")
                table[:] = [e for e in table if (e.match, e.priority) != (m.match, m.priority)]
                table.append(m)
            elif isinstance(m, FlowDelete):
                table = self.tables[m.dpid]
                table[:] = [e for e in table if e.cookie & m.cookie_mask != m.cookie & m.cookie_mask]
            elif isinstance(m, PacketOut):
                self.packet_outs.append(m)

    def lookup(self, dpid: int, fields: dict) -> FlowMod | None:
        hits = [e for e in self.tables[dpid] if all(matches(k, v, fields.get(k)) for k, v in e.match.oxm().items())]
        return max(hits, key=lambda e: e.priority, default=None)

    def trace(self, switch: str, in_port: int, fields: dict) -> tuple[list[str], str]:
        """Follow a packet from (switch, in_port): the switches it crosses and where it ends:
        'host:<name>', 'controller', 'drop' or 'loop'. Entries' rewrites change `fields`."""
        path: list[str] = []
        while True:
            if switch in path:
                return path, "loop"
            path.append(switch)
            entry = self.lookup(self.dpid[switch], {**fields, "in_port": in_port})
            if entry is None or not entry.out_ports:
                return path, "drop"
            fields.update(entry.set_fields)
            if entry.out_ports == (CONTROLLER,):
                return path, "controller"
            node, in_port = self.wire[(switch, entry.out_ports[0])]
            if node not in self.dpid:
                return path, f"host:{node}"
            switch = node


class Booted:
    """A Balancer booted on a spec: switches up, every LLDP probe delivered as the wiring
    says, so links are discovered exactly as on a real network."""

    def __init__(self, spec: Spec | Path = SPEC, policy: str = "shortest", settings: Settings | None = None,
                 probe_round: bool = True) -> None:
        self.spec = spec if isinstance(spec, Spec) else load_spec(spec)
        self.of = FakeOFNetwork(self.spec)
        settings = settings or Settings()
        self.balancer = Balancer(settings, make_policy(policy, settings), self.spec,
                                 member_policy=member_policy_factory(settings.service_policy, settings))
        self.now = 100.0
        for s in self.spec.switches:     # each one's probes reach only the switches already up
            self.deliver(self.balancer.switch_up(s.dpid, self.of.ports(s.name), self.now))
        if probe_round:                  # probes again, now that every switch is up
            self.deliver(self.balancer.tick(self.now))

    def deliver(self, messages) -> list:
        """Apply messages to the fake tables; hand LLDP probes to the neighbouring switch."""
        self.of.apply(messages)
        rest = []
        for m in messages:
            if isinstance(m, PacketOut) and m.data[12:14] == b"\x88\xcc":
                node, port = self.of.peer(m.dpid, m.out_ports[0])
                if node in self.of.dpid:
                    self.deliver(self.balancer.packet_in(self.of.dpid[node], port, m.data, self.now))
            else:
                rest.append(m)
        return rest

    def probe_round(self, sent_at: float, delay_s: float = 0.0, cut: tuple[str, str] | None = None) -> list:
        """A probe interval at sent_at (Balancer.tick): each LLDP probe reaches the neighbouring
        switch delay_s later, except across the link `cut` (two switch names), where probes are
        lost. Everything else the balancer sends is applied to the fake tables and returned."""
        rest = []
        for m in self.balancer.tick(sent_at):
            if isinstance(m, PacketOut) and m.data[12:14] == b"\x88\xcc":
                node, port = self.of.peer(m.dpid, m.out_ports[0])
                if node in self.of.dpid and {self.of.name(m.dpid), node} != set(cut or ()):
                    self.of.apply(reply := self.balancer.packet_in(self.of.dpid[node], port, m.data,
                                                                   sent_at + delay_s))
                    rest += reply
            else:
                self.of.apply([m])
                rest.append(m)
        return rest

    def host_port(self, host: str) -> tuple[int, int]:
        """(dpid, port) where a host is attached."""
        (switch, port), = [(n, p) for (n, p), (peer, _) in self.of.wire.items() if peer == host]
        return self.of.dpid[switch], port

    def send(self, host: str, data: bytes) -> list:
        dpid, port = self.host_port(host)
        return self.deliver(self.balancer.packet_in(dpid, port, data, self.now))

    def arp(self, asker: str, target: str) -> list:
        a, t = self.spec.host(asker), self.spec.host(target)
        return self.send(asker, arp_frame(ARP_REQUEST, a.mac, a.ip, "00:00:00:00:00:00", t.ip,
                                          eth_dst=BROADCAST))
