"""A Balancer booted on the H1-H7 spec: switches up, every LLDP probe delivered as the
wiring says, so links are discovered exactly as on a real network."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.balancer import Balancer
from controller.messages import PacketOut
from controller.packets import ARP_REQUEST, BROADCAST, arp_frame
from controller.policy import make_policy
from controller.settings import Settings
from tests.fakeof import FakeOFNetwork
from topologies.spec import load_spec

SPEC = Path(__file__).resolve().parents[2] / "topologies" / "h1h7.json"


class Booted:
    def __init__(self, spec_path: Path = SPEC, policy: str = "shortest") -> None:
        self.spec = load_spec(spec_path)
        self.of = FakeOFNetwork(self.spec)
        self.balancer = Balancer(Settings(), make_policy(policy), self.spec)
        self.now = 100.0
        for s in self.spec.switches:
            self.deliver(self.balancer.switch_up(s.dpid, self.of.ports(s.name), self.now))
        self.deliver(self.balancer.tick(self.now))   # probes again, now that every switch is up

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


@pytest.fixture
def booted() -> Booted:
    return Booted()
