"""Per-flow forwarding entries: what identifies a flow, and the flow-mods that pin it to a path."""

from __future__ import annotations

from typing import NamedTuple

from controller.openflow.messages import CONTROLLER, SEND_FLOW_REM, FlowMod, Match, SetFields
from controller.openflow.packets import ETH_IPV4, PROTO_TCP, PROTO_UDP, TCP_FIN, Ipv4

FLOW_PRIORITY = 100
WATCH_IDLE_S = 0      # none: a watch matches once at most, so an idle timeout would end it mid-connection;
                      # deleted with its connection, or as a previous instance's (Balancer.flow_stats)
_PROTO_NAMES = {1: "icmp", PROTO_TCP: "tcp", PROTO_UDP: "udp"}


class FlowKey(NamedTuple):
    """The 5-tuple for TCP/UDP; source, destination and protocol for other IPv4."""
    src_ip: str
    dst_ip: str
    proto: int
    src_port: int | None = None
    dst_port: int | None = None

    @classmethod
    def of(cls, ip: Ipv4) -> FlowKey:
        return cls(ip.src, ip.dst, ip.proto, ip.src_port, ip.dst_port)

    @property
    def installable(self) -> bool:
        """False for TCP/UDP without ports (a later fragment): an entry without ports would
        capture every flow of that protocol between the two hosts."""
        return self.proto not in (PROTO_TCP, PROTO_UDP) or self.src_port is not None

    @property
    def kind(self) -> tuple[int, int | None]:
        """What flows of one service share: protocol and destination port."""
        return self.proto, self.dst_port

    def reverse(self) -> FlowKey:
        """The key of the connection's other direction."""
        return FlowKey(self.dst_ip, self.src_ip, self.proto, self.dst_port, self.src_port)

    def match(self, in_port: int) -> Match:
        ports = {}
        if self.proto in (PROTO_TCP, PROTO_UDP) and self.src_port is not None:
            prefix = "tcp" if self.proto == PROTO_TCP else "udp"
            ports = {f"{prefix}_src": self.src_port, f"{prefix}_dst": self.dst_port}
        return Match(in_port=in_port, eth_type=ETH_IPV4, ipv4_src=self.src_ip,
                     ipv4_dst=self.dst_ip, ip_proto=self.proto, **ports)

    def __str__(self) -> str:
        name = _PROTO_NAMES.get(self.proto, f"ip{self.proto}")
        if self.src_port is None:
            return f"{name} {self.src_ip} > {self.dst_ip}"
        return f"{name} {self.src_ip}:{self.src_port} > {self.dst_ip}:{self.dst_port}"


def plan(key: FlowKey, hops: list[tuple[int, int, int]], cookie: int, idle_timeout_s: int,
         rewrite: SetFields = (), watch: tuple[int, int] | None = None) -> list[FlowMod]:
    """Flow-mods for every switch of the path, egress first, so that by the time the
    ingress entry exists the rest of the path is (being) installed. The ingress entry
    reports its removal, which is how the controller forgets a finished flow. `rewrite` is
    applied at the egress switch (a service's address translation). A `watch` (TCP flag,
    cookie) at the ingress switch sends the flow's packets with that flag to the controller,
    one priority above: a FIN (a response's end) is copied there and still forwarded; a SYN
    (a new connection on the flow's 5-tuple) goes there only, to be decided anew."""
    mods = []
    last = len(hops) - 1
    for i, (dpid, in_port, out_port) in enumerate(hops):
        set_fields = rewrite if i == last else ()
        mods.append(FlowMod(dpid, key.match(in_port), (out_port,), FLOW_PRIORITY, cookie,
                            idle_timeout_s, SEND_FLOW_REM if i == 0 else 0, set_fields))
        if i == 0 and watch is not None:
            flag, watch_cookie = watch
            fin = flag == TCP_FIN
            mods.append(FlowMod(dpid, key.match(in_port)._replace(tcp_flags=flag),
                                (out_port, CONTROLLER) if fin else (CONTROLLER,), FLOW_PRIORITY + 1,
                                watch_cookie, WATCH_IDLE_S, 0, set_fields if fin else ()))
    return mods[::-1]
