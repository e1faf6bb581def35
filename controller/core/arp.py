"""Proxy ARP: the controller answers ARP itself, so no broadcast crosses an inter-switch link.

A request for a known host is answered directly. A request for an unknown one is copied to
the edge ports only (never to a link, so it cannot loop), at most once a second per
(asker, target) pair; the target's reply comes back to the controller, which then knows
it and answers the asker itself. Every answer is built from what the controller knows: the
Balancer admits a sender (bound to its port) before anything here sees its ARP, and no
host's own bytes are relayed, so no host can tell another where an address is.
"""

from __future__ import annotations

from controller.core.discovery import End
from controller.openflow.messages import PacketOut
from controller.core.network import HostLocation, Network
from controller.openflow.packets import ARP_REPLY, ARP_REQUEST, BROADCAST, Arp, arp_frame

FLOOD_HOLDOFF_S = 1.0
FLOOD_MEMORY = 4096                      # (asker, target) pairs flooded per holdoff, at most
CONTROLLER_MAC = "02:4c:42:00:00:01"     # locally administered: the controller's own ARP probes


class ArpProxy:
    def __init__(self, net: Network) -> None:
        self.net = net
        self._flooded: dict[tuple[str, str], float] = {}

    def handle(self, arp: Arp, eth_dst: str, at: End, now: float) -> list[PacketOut]:
        """An ARP from an admitted sender at `at` (or an address probe, sender 0.0.0.0)."""
        if arp.op == ARP_REQUEST:
            if arp.target_ip == arp.sender_ip:     # gratuitous announcement: learning was all
                return []
            target = self.net.host_by_ip(arp.target_ip)
            if target is None:
                request = arp_frame(ARP_REQUEST, arp.sender_mac, arp.sender_ip, "00:00:00:00:00:00",
                                    arp.target_ip, eth_dst=BROADCAST)
                return self._flood((arp.sender_ip, arp.target_ip), request, at, now)
            return [] if target.at == at else [self._answer(target, arp.sender_mac, arp.sender_ip, at)]
        # A reply from the sender, now known: answer the asker, if we know where it is.
        sender, asker = self.net.host_by_ip(arp.sender_ip), self.net.hosts.get(eth_dst)
        if sender is None or asker is None or asker.at == at or asker.ip != arp.target_ip:
            return []
        return [self._answer(sender, asker.mac, asker.ip, asker.at)]

    @staticmethod
    def _answer(known: HostLocation, to_mac: str, to_ip: str, at: End) -> PacketOut:
        return ArpProxy.answer(known.mac, known.ip, to_mac, to_ip, at)

    @staticmethod
    def answer(mac: str, ip: str, to_mac: str, to_ip: str, at: End) -> PacketOut:
        """An ARP reply 'ip is at mac', out of port `at` to (to_mac, to_ip)."""
        return PacketOut(at.dpid, (at.port,), arp_frame(ARP_REPLY, mac, ip, to_mac, to_ip, eth_dst=to_mac))

    def locate(self, asker: HostLocation, target_ip: str, now: float) -> list[PacketOut]:
        """An IPv4 packet for a host not seen yet, as after a controller restart while hosts
        kept their ARP caches: ask for the target as the sender would. Its reply teaches us
        where it is, and the sender's next packet is routed."""
        request = arp_frame(ARP_REQUEST, asker.mac, asker.ip, "00:00:00:00:00:00", target_ip, eth_dst=BROADCAST)
        return self._flood((asker.ip, target_ip), request, asker.at, now)

    def seek(self, hosts: list[tuple[str, int]], now: float) -> list[PacketOut]:
        """An ARP probe (sender address 0.0.0.0, RFC 5227) for each (ip, dpid), on the edge
        ports of that switch only: the host's reply comes to the controller and teaches where
        it is. Flooding each probe to every switch would cost hosts x switches packet-outs."""
        edge = self.net.edge_ports(now)
        return [PacketOut(dpid, tuple(edge[dpid]), arp_frame(ARP_REQUEST, CONTROLLER_MAC, "0.0.0.0",
                                                             "00:00:00:00:00:00", ip, eth_dst=BROADCAST))
                for ip, dpid in hosts if edge.get(dpid)]

    def _flood(self, pair: tuple[str, str], data: bytes, at: End, now: float) -> list[PacketOut]:
        """Copy a request to every edge port but the asker's, at most once per FLOOD_HOLDOFF_S
        per (asker, target), and for at most FLOOD_MEMORY pairs per FLOOD_HOLDOFF_S in all: the
        holdoff table is kept in time order, so forgetting expired pairs costs only them."""
        while self._flooded and now - next(iter(self._flooded.values())) >= FLOOD_HOLDOFF_S:
            del self._flooded[next(iter(self._flooded))]
        if pair in self._flooded or len(self._flooded) >= FLOOD_MEMORY:
            return []
        self._flooded[pair] = now
        outs = []
        for dpid, ports in self.net.edge_ports(now).items():
            ports = tuple(p for p in ports if End(dpid, p) != at)
            if ports:
                outs.append(PacketOut(dpid, ports, data))
        return outs
